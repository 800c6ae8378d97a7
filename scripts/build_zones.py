#!/usr/bin/env python3
"""Build skyfence's zone files in ``streams/geo/data/`` from OpenStreetMap maritime borders.

This script owns the step from the upstream npm packages to the committed, ODbL-licensed
zone files the geofence loads at runtime. It is a developer tool: it needs ``shapely`` and
``pyproj`` (the ``test`` extra) and, unless given local copies, ``npm`` to fetch the packages.

Outputs (all GeoJSON FeatureCollections, lon/lat WGS 84):

* ``mexico_sovereign.geojson``: Mexico's land plus 12 nm territorial sea at 10 m resolution,
  coordinates unchanged from ``@osm_borders/maritime_10m@1.1.0`` (21,848 vertices, 12 rings).
* ``mexico_sovereign_1000m.geojson``: the same area at 1000 m resolution (1,321 vertices), kept
  for the benchmark's vertex-count comparison.
* ``neighbours.geojson``: every other country of ``@osm_borders/maritime_1000m@1.1.0`` clipped to
  lon -125..-78, lat 5..40, with Mexico's 10 m polygon cut out and the thin slivers between the
  1000 m neighbour and the 10 m Mexican outline given to the neighbour (see ``_close_border_gap``).
* ``mexico_sovereign_web.geojson``: a simplified outline for the web map only.
* ``PROVENANCE.md``: sources, licence, counts and sha256 of every output.

Usage::

    .venv/bin/python scripts/build_zones.py                      # npm pack into a temp dir
    .venv/bin/python scripts/build_zones.py --src-10m A.json --src-1000m B.json
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.ops import unary_union

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "streams" / "geo" / "data"

PKG_10M = "@osm_borders/maritime_10m@1.1.0"
PKG_1000M = "@osm_borders/maritime_1000m@1.1.0"
# Pinned tarball digests (npm "integrity"), so a rebuild from the registry is byte-for-byte the
# same input or fails loudly.
INTEGRITY = {
    PKG_10M: "sha512-Mln0gqbYzjqNX7iGtEt3np16nfGwjwADTuUg7J5LQTqlqUBDxsWaxQmsKtkJCumvc/pl7QZu8lvEs41JMs+zbQ==",
    PKG_1000M: "sha512-R4mR3KCJNnMNM9JK+tWGap4YBeZxGVQB+9kFaQAreGvX0QoZ5rbDJiUCkaMs5CZ55FyZQdnswFkZfsPPoErXEA==",
}
# The vertex counts the issue and the shared README state; a different count means a different input.
EXPECTED_MEX_VERTICES_10M = 21_848
EXPECTED_MEX_VERTICES_1000M = 1_321
# Neighbour coverage: the region where US/Central American airspace can matter for aircraft near Mexico.
CLIP_BOX = (-125.0, 5.0, -78.0, 40.0)
# Width of the strip either side of Mexico's border in which gaps between the 1000 m neighbour
# outline and the 10 m Mexican outline are given to the neighbour: the 1000 m simplification
# moves the line by up to about 1 km, so 2 km covers it with margin.
BORDER_GAP_M = 2000.0
# Web-map outline tolerance in degrees (about 100 m): the map never needs the 10 m detail and the
# file stays small enough to ship to a browser.
WEB_SIMPLIFY_DEG = 0.001
# Decimal places kept in shapely-derived outputs: 1e-7° is about 1 cm, far below any resolution here.
COORD_DIGITS = 7
# Must match streams.geo.countries.COUNTRY_NAMES; the build refuses unknown countries so codes stay stable.
KNOWN_NEIGHBOURS = (
    "USA", "GTM", "BLZ", "HND", "SLV", "NIC", "CRI", "PAN", "COL", "ECU", "CUB", "BHS", "CYM", "JAM", "FRA",
)
# Lambert conformal conic over Mexico (INEGI-like parameters), used only to buffer in metres.
LCC_MEXICO = "+proj=lcc +lat_1=17.5 +lat_2=29.5 +lat_0=12 +lon_0=-102 +ellps=WGS84 +units=m"
LICENCE_NOTE = "© OpenStreetMap contributors, ODbL 1.0 (https://opendatacommons.org/licenses/odbl/)"


def _npm_pack(spec: str, workdir: Path) -> Path:
    """Fetch one package with npm, check its pinned integrity and return its borders.geo.json."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found; pass --src-10m/--src-1000m with local borders.geo.json copies")
    out = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(workdir)],
        check=True, capture_output=True, text=True, cwd=workdir,
    )
    info = json.loads(out.stdout)[0]
    tgz = workdir / info["filename"]
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    if digest != INTEGRITY[spec]:
        raise SystemExit(f"{spec}: tarball integrity {digest} != pinned {INTEGRITY[spec]}")
    dest = workdir / spec.replace("/", "_").replace("@", "")
    with tarfile.open(tgz) as tf:
        tf.extract("package/borders.geo.json", dest, filter="data")
    return dest / "package" / "borders.geo.json"


def _features_by_iso(path: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {f["properties"]["isoA3"]: f for f in doc["features"] if f.get("properties", {}).get("isoA3")}


def _polygonal(geom_json: dict[str, Any]) -> MultiPolygon:
    """Flatten the packages' GeometryCollection wrapper into one MultiPolygon."""
    parts: list[Polygon] = []
    g = shape(geom_json)
    for sub in getattr(g, "geoms", [g]):
        if isinstance(sub, Polygon):
            parts.append(sub)
        elif isinstance(sub, MultiPolygon):
            parts.extend(sub.geoms)
        elif not sub.is_empty:
            for s in getattr(sub, "geoms", []):
                if isinstance(s, Polygon):
                    parts.append(s)
    return MultiPolygon(parts)


def _raw_multipolygon_coords(geom_json: dict[str, Any]) -> list[Any]:
    """The feature's polygon coordinates exactly as published (no shapely round trip)."""
    if geom_json["type"] == "GeometryCollection":
        coords: list[Any] = []
        for g in geom_json["geometries"]:
            coords.extend(_raw_multipolygon_coords(g))
        return coords
    if geom_json["type"] == "MultiPolygon":
        return list(geom_json["coordinates"])
    if geom_json["type"] == "Polygon":
        return [geom_json["coordinates"]]
    return []


def _as_floats(mp_coords: list[Any]) -> list[Any]:
    """Same numbers, one spelling: the packages write some coordinates as integers."""
    return [[[[float(x), float(y)] for x, y in ring] for ring in poly] for poly in mp_coords]


def _count_vertices(mp_coords: list[Any]) -> int:
    return sum(len(ring) for poly in mp_coords for ring in poly)


def _close_border_gap(neigh: MultiPolygon, mex: MultiPolygon) -> Polygon | MultiPolygon:
    """Give the neighbour the slivers between its 1000 m outline and Mexico's 10 m outline.

    Without this a point a few hundred metres on the US side of the land border can fall in
    neither polygon and be reported as international airspace.
    """
    fwd = Transformer.from_crs("EPSG:4326", LCC_MEXICO, always_xy=True)
    inv = Transformer.from_crs(LCC_MEXICO, "EPSG:4326", always_xy=True)

    def project(g: Any, tr: Transformer) -> Any:
        return shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))

    n_m = project(neigh, fwd)
    m_m = project(mex, fwd)
    strip = n_m.buffer(BORDER_GAP_M).intersection(m_m.buffer(BORDER_GAP_M))
    fill = project(strip, inv) if not strip.is_empty else Polygon()
    out = unary_union([neigh, fill]).difference(mex)
    out = shapely.make_valid(out)
    polys = [g for g in getattr(out, "geoms", [out]) if isinstance(g, Polygon | MultiPolygon)]
    return unary_union(polys)


def _rounded(geom: Any) -> dict[str, Any]:
    """GeoJSON of a shapely-derived geometry with coordinates rounded to 1e-7° (about 1 cm).

    GEOS output carries 15+ digits that mean nothing at a 1000 m or 100 m resolution; rounding
    halves the files.
    """
    def rnd(c: Any) -> Any:
        if isinstance(c, list | tuple) and c and isinstance(c[0], float | int):
            return [round(float(v), COORD_DIGITS) for v in c]
        return [rnd(x) for x in c]

    m = mapping(geom)
    return {"type": m["type"], "coordinates": rnd(m["coordinates"])}


def _fc(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def _write(path: Path, doc: dict[str, Any]) -> str:
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build(src_10m: Path, src_1000m: Path, out_dir: Path, source_note: str) -> dict[str, Any]:
    f10 = _features_by_iso(src_10m)
    f1000 = _features_by_iso(src_1000m)
    mex_coords = _as_floats(_raw_multipolygon_coords(f10["MEX"]["geometry"]))
    mex_1000_coords = _as_floats(_raw_multipolygon_coords(f1000["MEX"]["geometry"]))
    n10 = _count_vertices(mex_coords)
    n1000 = _count_vertices(mex_1000_coords)
    if n10 != EXPECTED_MEX_VERTICES_10M or n1000 != EXPECTED_MEX_VERTICES_1000M:
        raise SystemExit(f"unexpected vertex counts: 10 m {n10}, 1000 m {n1000}")
    holes = sum(len(p) - 1 for p in mex_coords)
    ring_sizes = [len(p[0]) for p in mex_coords]

    mex = _polygonal(f10["MEX"]["geometry"])
    clip = box(*CLIP_BOX)
    neighbours: list[dict[str, Any]] = []
    for iso, feat in sorted(f1000.items()):
        if iso == "MEX":
            continue
        g = _polygonal(feat["geometry"])
        if not g.intersects(clip):
            continue
        if iso not in KNOWN_NEIGHBOURS:
            raise SystemExit(f"{iso} intersects the clip box but has no country code; add it to COUNTRY_NAMES")
        clipped = g.intersection(clip)
        parts = [p for p in getattr(clipped, "geoms", [clipped]) if isinstance(p, Polygon)]
        fixed = _close_border_gap(MultiPolygon(parts), mex)
        if fixed.is_empty:
            continue
        neighbours.append({
            "type": "Feature",
            "properties": {"isoA3": iso, "resolution_m": 1000, "clipped_to": list(CLIP_BOX)},
            "geometry": _rounded(fixed),
        })

    web = shapely.simplify(mex, WEB_SIMPLIFY_DEG, preserve_topology=True)
    out_dir.mkdir(parents=True, exist_ok=True)

    def mex_feature(coords: list[Any], res: int, n: int) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": {"isoA3": "MEX", "zone": "sovereign", "resolution_m": res, "vertices": n,
                           "licence": LICENCE_NOTE},
            "geometry": {"type": "MultiPolygon", "coordinates": coords},
        }

    outputs = {
        "mexico_sovereign.geojson": _fc([mex_feature(mex_coords, 10, n10)]),
        "mexico_sovereign_1000m.geojson": _fc([mex_feature(mex_1000_coords, 1000, n1000)]),
        "neighbours.geojson": _fc(neighbours),
        "mexico_sovereign_web.geojson": _fc([{
            "type": "Feature",
            "properties": {"isoA3": "MEX", "zone": "sovereign", "simplified_deg": WEB_SIMPLIFY_DEG,
                           "vertices": int(shapely.get_num_coordinates(web)), "licence": LICENCE_NOTE},
            "geometry": _rounded(web),
        }]),
    }
    digests = {name: _write(out_dir / name, doc) for name, doc in outputs.items()}
    stats = {
        "mex_vertices_10m": n10,
        "mex_vertices_1000m": n1000,
        "mex_polygons": len(mex_coords),
        "mex_holes": holes,
        "mex_ring_sizes": ring_sizes,
        "neighbours": {f["properties"]["isoA3"]: int(shapely.get_num_coordinates(shape(f["geometry"])))
                       for f in neighbours},
        "web_vertices": int(shapely.get_num_coordinates(web)),
        "sha256": digests,
        "sizes": {name: (out_dir / name).stat().st_size for name in outputs},
    }
    _write_provenance(out_dir, stats, source_note)
    return stats


def _write_provenance(out_dir: Path, stats: dict[str, Any], source_note: str) -> None:
    rows = "\n".join(
        f"| `{name}` | {stats['sizes'][name]:,} | `{digest}` |" for name, digest in stats["sha256"].items()
    )
    neigh = ", ".join(f"{k} {v:,}" for k, v in stats["neighbours"].items())
    text = f"""# Provenance of the zone files

Map data {LICENCE_NOTE}. These files are derived from OpenStreetMap and stay under the
Open Database License 1.0; any public use must credit "© OpenStreetMap contributors".
The rest of skyfence is MIT; this directory is not.

## Sources

| package (npm) | file used | licence |
|---|---|---|
| `{PKG_10M}` | `package/borders.geo.json`, feature `isoA3=MEX` | ODbL 1.0 |
| `{PKG_1000M}` | `package/borders.geo.json`, all features | ODbL 1.0 |

Tarball integrity (checked by the build): `{INTEGRITY[PKG_10M]}` (10 m),
`{INTEGRITY[PKG_1000M]}` (1000 m). Built from: {source_note}.

## What each file is

- `mexico_sovereign.geojson`: Mexico's land plus 12 nm territorial sea, coordinates unchanged from
  the 10 m package: {stats['mex_vertices_10m']:,} vertices in {stats['mex_polygons']} polygons
  ({stats['mex_holes']} holes). One polygon is the mainland with Baja California and the islands whose
  12 nm seas touch it ({max(stats['mex_ring_sizes']):,} vertices). The other {stats['mex_polygons'] - 1} are
  island groups standing on their own 12 nm: Isla Guadalupe, Rocas Alijos, the Revillagigedo islands
  (San Benedicto, Socorro, Roca Partida, Clarión), Islas Marías, and the Campeche Bank reefs
  (Arrecife Alacranes, Cayo Arenas, Arrecife Triángulos, Cayo Arcas). Ring sizes, in file order:
  {stats['mex_ring_sizes']}.
- `mexico_sovereign_1000m.geojson`: the same feature at 1000 m resolution,
  {stats['mex_vertices_1000m']:,} vertices, for the benchmark's vertex-count comparison only.
- `neighbours.geojson`: every other country of the 1000 m package intersecting lon
  {CLIP_BOX[0]}..{CLIP_BOX[2]}, lat {CLIP_BOX[1]}..{CLIP_BOX[3]}, clipped to that box, with Mexico's
  10 m polygon cut out, and the slivers within {BORDER_GAP_M:.0f} m of both outlines given to the
  neighbour so the land border has no gap. Vertices: {neigh}.
- `mexico_sovereign_web.geojson`: the 10 m outline simplified by {WEB_SIMPLIFY_DEG}° (about 100 m,
  topology preserved, {stats['web_vertices']:,} vertices) for drawing on the web map only; the
  geofence never uses it.

No package on the reachable registries ships Mexico's 24 nm contiguous zone, its 200 nm EEZ or its
FIRs (MMFR, MMFO). The approach rings the geofence reports are distance buffers around the 12 nm
polygon, not legal zones.

## Outputs

| file | bytes | sha256 |
|---|---|---|
{rows}

## Rebuild

```
.venv/bin/pip install -e '.[test]'     # shapely + pyproj
.venv/bin/python scripts/build_zones.py   # runs `npm pack` for both packages in a temp dir
# or, from already-extracted copies:
.venv/bin/python scripts/build_zones.py --src-10m PATH/borders.geo.json --src-1000m PATH/borders.geo.json
```

The 10 m polygon is copied coordinate for coordinate, so its digest only changes if the package
does. The neighbours file goes through shapely (clip, buffer, difference); its digest may change
with the shapely/GEOS version, not its meaning. Last built {dt.date.today().isoformat()} with
shapely {shapely.__version__}.
"""
    (out_dir / "PROVENANCE.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src-10m", type=Path, help=f"borders.geo.json of {PKG_10M} (default: npm pack)")
    ap.add_argument("--src-1000m", type=Path, help=f"borders.geo.json of {PKG_1000M} (default: npm pack)")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="skyfence-zones-") as tmp:
        work = Path(tmp)
        if args.src_10m and args.src_1000m:
            src10, src1000 = args.src_10m, args.src_1000m
            note = f"local copies `{src10.name}` and `{src1000.name}` given with --src-10m/--src-1000m"
        elif args.src_10m or args.src_1000m:
            ap.error("give both --src-10m and --src-1000m, or neither")
        else:
            src10, src1000 = _npm_pack(PKG_10M, work), _npm_pack(PKG_1000M, work)
            note = "`npm pack` of both packages from registry.npmjs.org"
        stats = build(src10, src1000, args.out, note)
    json.dump(stats, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
