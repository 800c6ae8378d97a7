"""Human- and JSON-facing answers of the geofence, for ``skyfence fences`` and the web map.

This module owns turning ``Scores`` into one JSON-able dict per point (``describe_points``),
parsing ``lat,lon[,alt_ft]`` lines (``check_lines``), the fence listing (``list_fences``),
one-point text for people checking a news story (``format_point``), and the zones as GeoJSON
(``zones_geojson``). It does no I/O of its own: the CLI reads stdin and writes stdout/stderr.
Each valid point also gets the alert's own place sentence, ``description`` ("83 km SW of Cabo
San Lucas"), from :class:`streams.core.places.Places`, loaded once per process on first use
unless the caller passes one.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from streams.geo.countries import COUNTRY_NAMES, COVERAGE_BOX, airspace_label
from streams.geo.fence import NM_M, Geofence
from streams.geo.zonefiles import WEB_FILE, data_path

if TYPE_CHECKING:
    from streams.core.places import Places

_COMPASS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")
# Lines are scored in batches this big: one kernel call per batch instead of per line, while a
# person typing lines still gets each answer at once (the CLI passes batch=1 for a terminal).
DEFAULT_BATCH = 256
# Contour raster of the web map's ring outlines: 0.05° (about 5 km) with linear interpolation puts
# the drawn line within a few hundred metres of the true ring, plenty for a map.
RING_RASTER_DEG = 0.05
OSM_CREDIT = "© OpenStreetMap contributors, ODbL 1.0"

_PLACES: list[Places] = []
_PLACES_LOCK = threading.Lock()


def default_places() -> Places:
    """The gazetteer alerts use (``Places.load()``), loaded once per process."""
    with _PLACES_LOCK:
        if not _PLACES:
            from streams.core.places import Places

            _PLACES.append(Places.load())
        return _PLACES[0]


@dataclass(frozen=True, slots=True)
class LineError:
    """A ``lat,lon[,alt_ft]`` line that could not be checked, with the reason."""

    line_no: int
    text: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line_no, "input": self.text, "error": self.reason}

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}: {self.text!r}"


def compass(bearing: float) -> str | None:
    if not math.isfinite(bearing):
        return None
    return _COMPASS[int((bearing % 360.0) / 22.5 + 0.5) % 16]


def _r(x: float, nd: int) -> float | None:
    return round(float(x), nd) if math.isfinite(x) else None


def _invalid_reason(lat: float, lon: float) -> str:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return "latitude and longitude must be finite numbers"
    if not -90.0 <= lat <= 90.0:
        return f"latitude {lat} is outside -90..90"
    return f"longitude {lon} is outside -180..180"


def describe_points(
    fence: Geofence,
    lat: Sequence[float] | np.ndarray,
    lon: Sequence[float] | np.ndarray,
    alt_ft: Sequence[float] | np.ndarray | None = None,
    places: Places | None = None,
) -> list[dict[str, Any]]:
    """One JSON-able dict per point: inside per zone, signed distance, bearing, airspace, fences.

    Keys: ``lat``, ``lon``, ``alt_ft``, ``valid``; for valid points ``inside`` (zone name ->
    bool; a ring is "inside" when 0 < distance <= ring, so the rings nest), ``zone`` (innermost
    zone name or None), ``signed_distance_m`` (negative inside), ``distance_km``,
    ``distance_nm``, ``bearing_deg`` and ``bearing_compass`` (towards the nearest boundary
    point), ``airspace`` (ISO3, 'INTL' or 'UNK'), ``airspace_label``, ``fences`` (name ->
    bool), a one-sentence ``summary`` and ``description``, the place sentence alerts use
    ("83 km SW of Cabo San Lucas"; ``places`` defaults to ``default_places()``). Invalid points
    get ``error`` instead.
    """
    la = np.asarray(lat, dtype=np.float64).reshape(-1)
    lo = np.asarray(lon, dtype=np.float64).reshape(-1)
    alt = np.full(la.shape[0], np.nan) if alt_ft is None else np.asarray(alt_ft, dtype=np.float64).reshape(-1)
    s = fence.score(la, lo, alt)
    names = fence.zone_names()
    ok = np.flatnonzero(s.valid)
    texts: list[str | None] = [None] * la.shape[0]
    if ok.size:
        gazetteer = places if places is not None else default_places()
        for i, t in zip(ok.tolist(), gazetteer.describe_many(la[ok], lo[ok]), strict=True):
            texts[i] = t
    out: list[dict[str, Any]] = []
    for i in range(la.shape[0]):
        d: dict[str, Any] = {"lat": float(la[i]), "lon": float(lo[i]), "alt_ft": _r(alt[i], 1)}
        if not s.valid[i]:
            d["valid"] = False
            d["error"] = _invalid_reason(float(la[i]), float(lo[i]))
            out.append(d)
            continue
        dist = float(s.dist_m[i])
        inside = bool(s.inside[i])
        zone = int(s.zone[i])
        ring_in = {names[k + 1]: (not inside) and dist <= float(fence.ring_m[k]) for k in range(len(fence.rings_nm))}
        country = COUNTRY_NAMES[int(s.country[i])]
        d.update({
            "valid": True,
            "inside": {names[0]: inside, **ring_in},
            "zone": names[zone] if zone >= 0 else None,
            "signed_distance_m": _r(dist, 1),
            "distance_km": _r(abs(dist) / 1000.0, 2),
            "distance_nm": _r(abs(dist) / NM_M, 2),
            "bearing_deg": _r(float(s.bearing_deg[i]), 1),
            "bearing_compass": compass(float(s.bearing_deg[i])),
            "airspace": country,
            "airspace_label": airspace_label(country),
            "fences": {name: bool(s.fences[i, k]) for k, name in enumerate(fence.fence_names)},
            "description": texts[i],
        })
        d["summary"] = _summary(d, fence)
        out.append(d)
    return out


def _summary(d: dict[str, Any], fence: Geofence) -> str:
    dist = abs(d["signed_distance_m"])
    how_far = f"{dist / 1000:.1f} km ({dist / NM_M:.1f} nm)"
    b = d["bearing_deg"]
    towards = f", nearest boundary point {d['bearing_compass']} ({b:03.0f}°)" if b is not None else ""
    if d["inside"]["MEX sovereign"]:
        text = f"Inside Mexican sovereign airspace, {how_far} from its edge{towards}"
    else:
        text = f"Outside Mexican sovereign airspace, {how_far} from its edge{towards}"
        if d["zone"] is not None:
            text += f"; {d['zone']}"
        text += f"; in {d['airspace_label']}"
    inside_fences = [n for n, v in d["fences"].items() if v]
    if inside_fences:
        text += "; inside fence " + ", ".join(repr(n) for n in inside_fences)
    return text + "."


def format_point(d: dict[str, Any]) -> str:
    """Several lines of plain text for one described point (``skyfence fences check LAT LON``)."""
    head = f"{d['lat']:.5f}, {d['lon']:.5f}" + (f" at {d['alt_ft']:.0f} ft" if d.get("alt_ft") is not None else "")
    if not d.get("valid"):
        return f"{head}\n  error: {d['error']}"
    lines = [head]
    if d.get("description"):
        lines.append(f"  {d['description']}")
    lines.append(f"  {d['summary']}")
    lines.append(f"  signed distance to the 12 nm boundary: {d['signed_distance_m']:.0f} m (negative = inside)")
    lines.append(f"  airspace: {d['airspace_label']}")
    zones = ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in d["inside"].items())
    lines.append(f"  zones: {zones}")
    if d["fences"]:
        lines.append("  fences: " + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in d["fences"].items()))
    return "\n".join(lines)


def parse_line(text: str) -> tuple[float, float, float] | str:
    """(lat, lon, alt_ft or NaN) from ``lat,lon[,alt_ft]``, or the reason it is unusable."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        return f"expected 'lat,lon[,alt_ft]', got {len(parts)} field(s)"
    vals: list[float] = []
    for name, p in zip(("lat", "lon", "alt_ft"), parts, strict=False):
        try:
            v = float(p)
        except ValueError:
            return f"{name} {p!r} is not a number"
        if not math.isfinite(v):
            return f"{name} must be finite"
        vals.append(v)
    if not -90.0 <= vals[0] <= 90.0:
        return f"latitude {vals[0]} is outside -90..90"
    if not -180.0 <= vals[1] <= 180.0:
        return f"longitude {vals[1]} is outside -180..180"
    return vals[0], vals[1], vals[2] if len(vals) == 3 else math.nan


def check_lines(
    fence: Geofence, lines: Iterable[str], batch: int = DEFAULT_BATCH, places: Places | None = None,
) -> Iterator[dict[str, Any] | LineError]:
    """For each input line, in order: a ``describe_points`` dict, or a ``LineError``.

    Blank lines and lines starting with '#' are skipped (they are not data). Each result dict
    also carries ``line`` (1-based input line number). Lines are scored ``batch`` at a time.
    """
    batch = max(1, int(batch))
    pending: list[tuple[int, str, tuple[float, float, float] | str]] = []

    def flush() -> Iterator[dict[str, Any] | LineError]:
        good = [(no, v) for no, _, v in pending if not isinstance(v, str)]
        described = iter(describe_points(
            fence,
            [v[0] for _, v in good], [v[1] for _, v in good], [v[2] for _, v in good], places,
        )) if good else iter(())
        for no, text, v in pending:
            if isinstance(v, str):
                yield LineError(no, text, v)
            else:
                d = next(described)
                d["line"] = no
                yield d
        pending.clear()

    for no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        pending.append((no, text, parse_line(text)))
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def list_fences(fence: Geofence) -> list[dict[str, Any]]:
    """Every zone the geofence reports, for ``skyfence fences`` (one dict per zone)."""
    out: list[dict[str, Any]] = [{
        "name": fence.zone_names()[0],
        "kind": "sovereign",
        "description": "Mexico's land plus 12 nm territorial sea (islands included)",
        "vertices": fence.sovereign_vertices,
        "polygons": fence.sovereign_polygons,
        "source": f"OpenStreetMap maritime borders, {OSM_CREDIT}",
    }]
    for name, nm in zip(fence.zone_names()[1:], fence.rings_nm, strict=True):
        out.append({
            "name": name,
            "kind": "buffer",
            "distance_nm": nm,
            "description": f"within {nm:g} nm beyond the 12 nm boundary; a distance buffer, not a legal "
                           "zone (no EEZ or FIR data is available)",
        })
    out.append({
        "name": "neighbour airspace",
        "kind": "airspace",
        "countries": list(fence.neighbour_names),
        "description": "land + 12 nm of neighbouring countries at 1000 m resolution, clipped to lon "
                       f"{COVERAGE_BOX[0]:g}..{COVERAGE_BOX[2]:g}, lat {COVERAGE_BOX[1]:g}..{COVERAGE_BOX[3]:g}",
        "source": f"OpenStreetMap maritime borders, {OSM_CREDIT}",
    })
    for f in fence.fences:
        out.append({
            "name": f.name,
            "kind": "user",
            "lower_ft": f.lower_ft,
            "upper_ft": f.upper_ft,
            "polygons": len(f.polygons),
            "vertices": f.vertices,
            "bbox": list(f.bbox),
        })
    return out


# ---------------------------------------------------------------------------------- GeoJSON


def _contours(field: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float) -> list[list[list[float]]]:
    """Marching squares: polylines where ``field`` (indexed [iy, ix]) crosses ``level``."""
    above = field > level
    case = (above[:-1, :-1].astype(np.int8) | (above[:-1, 1:] << 1) | (above[1:, 1:] << 2) | (above[1:, :-1] << 3))

    def point(edge: tuple[int, int, int]) -> tuple[float, float]:
        kind, iy, ix = edge
        if kind == 0:  # horizontal edge (iy, ix)-(iy, ix+1)
            a, b = field[iy, ix], field[iy, ix + 1]
            t = (level - a) / (b - a)
            return float(xs[ix] + t * (xs[ix + 1] - xs[ix])), float(ys[iy])
        a, b = field[iy, ix], field[iy + 1, ix]
        t = (level - a) / (b - a)
        return float(xs[ix]), float(ys[iy] + t * (ys[iy + 1] - ys[iy]))

    # Cell corners: 0 = (iy, ix), 1 = (iy, ix+1), 2 = (iy+1, ix+1), 3 = (iy+1, ix).
    # Edges: bottom (0-1), right (1-2), top (3-2), left (0-3).
    table: dict[int, tuple[tuple[int, int], ...]] = {
        1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 6: ((0, 2),), 7: ((3, 2),),
        8: ((2, 3),), 9: ((2, 0),), 11: ((2, 1),), 12: ((1, 3),), 13: ((1, 0),), 14: ((0, 3),),
    }
    adj: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    for iy, ix in zip(*np.nonzero((case != 0) & (case != 15)), strict=True):
        c = int(case[iy, ix])
        edges = ((0, iy, ix), (1, iy, ix + 1), (0, iy + 1, ix), (1, iy, ix))
        if c in (5, 10):
            centre_above = field[iy:iy + 2, ix:ix + 2].mean() > level
            pairs: tuple[tuple[int, int], ...]
            # Saddles: the centre decides which diagonal pair of corners is joined.
            if (c == 5) != centre_above:
                pairs = ((3, 0), (1, 2))
            else:
                pairs = ((0, 1), (2, 3))
        else:
            pairs = table[c]
        for a, b in pairs:
            ea, eb = edges[a], edges[b]
            adj.setdefault(ea, []).append(eb)
            adj.setdefault(eb, []).append(ea)
    lines: list[list[list[float]]] = []
    seen: set[tuple[int, int, int]] = set()
    # Start at open ends first so open polylines come out whole, then close the loops.
    starts = [e for e, n in adj.items() if len(n) == 1] + list(adj)
    for s in starts:
        if s in seen:
            continue
        path = [s]
        seen.add(s)
        cur = s
        while True:
            nxt = [e for e in adj[cur] if e not in seen]
            if not nxt:
                if len(path) > 2 and s in adj[cur]:
                    path.append(s)
                break
            cur = nxt[0]
            seen.add(cur)
            path.append(cur)
        if len(path) >= 2:
            lines.append([[round(x, 5), round(y, 5)] for x, y in (point(e) for e in path)])
    return lines


def zones_geojson(fence: Geofence) -> dict[str, Any]:
    """The zones for the web map as a GeoJSON FeatureCollection.

    Features: the sovereign polygon (the ~100 m simplified outline shipped for drawing), one
    MultiLineString per approach ring (contoured from the geofence's own distance field on a
    0.05° raster, so it is what the alerts use, to within a few hundred metres), and each user
    fence's polygons. Every feature has ``name``, ``kind`` and, for OSM-derived ones, ``credit``.
    """
    web = json.loads(data_path(WEB_FILE).read_text(encoding="utf-8"))
    feats: list[dict[str, Any]] = []
    for f in web["features"]:
        feats.append({
            "type": "Feature",
            "properties": {"name": fence.zone_names()[0], "kind": "sovereign", "credit": OSM_CREDIT,
                           "rings_nm": list(fence.rings_nm)},
            "geometry": f["geometry"],
        })
    if fence.rings_nm:
        feats.extend(_ring_features(fence))
    for uf in fence.fences:
        feats.append({
            "type": "Feature",
            "properties": {"name": uf.name, "kind": "user", "lower_ft": uf.lower_ft, "upper_ft": uf.upper_ft},
            "geometry": {"type": "MultiPolygon",
                         "coordinates": [[r.tolist() for r in poly] for poly in uf.polygons]},
        })
    return {"type": "FeatureCollection", "features": feats}


def _ring_features(fence: Geofence) -> list[dict[str, Any]]:
    box = json.loads(data_path(WEB_FILE).read_text(encoding="utf-8"))["features"][0]["geometry"]
    pts = np.array([c for poly in box["coordinates"] for ring in poly for c in ring])
    pad = float(fence.ring_m.max()) / 100_000.0 + 0.5  # degrees: generous (1° >= 100 km here)
    xs = np.arange(pts[:, 0].min() - pad, pts[:, 0].max() + pad, RING_RASTER_DEG)
    ys = np.arange(max(pts[:, 1].min() - pad, -89.0), min(pts[:, 1].max() + pad, 89.0), RING_RASTER_DEG)
    gx, gy = np.meshgrid(xs, ys)
    d, _ = fence.distance(gy.ravel(), gx.ravel())
    inside = fence.contains(gy.ravel(), gx.ravel())
    field = np.where(inside, -d, d).reshape(gy.shape)
    feats = []
    for name, nm, m in zip(fence.zone_names()[1:], fence.rings_nm, fence.ring_m, strict=True):
        feats.append({
            "type": "Feature",
            "properties": {"name": name, "kind": "buffer", "distance_nm": nm,
                           "note": "distance buffer, not a legal zone", "credit": OSM_CREDIT},
            "geometry": {"type": "MultiLineString", "coordinates": _contours(field, xs, ys, float(m))},
        })
    return feats
