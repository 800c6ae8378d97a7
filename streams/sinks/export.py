"""Evidence files a journalist can open: GeoJSON layers and a KML for Google Earth.

``skyfence export`` runs the report's pipeline on recorded files and writes, for the missions
(or the aircraft) in the window, one folder holding:

- ``tracks.geojson``: one LineString per track segment, coordinates ``[lon, lat, alt_m]``;
- ``closest_approach.geojson``: one Point per track, its closest approach to the 12 nm line;
- ``alerts.geojson``: one Point per zone alert (alert.v1), with its headline;
- ``patterns.geojson``: one Polygon per on-station pattern (its outline);
- ``zones.geojson``: Mexico's sovereign airspace (polygons) and the approach rings (lines);
- ``evidence.kml``: the same five layers as KML folders (written with ``simplekml``), the track
  with its altitude (absolute), the alerts as placemarks carrying the alert text, the zones
  styled as on the live map (sovereign red, rings dashed grey).

GeoJSON follows RFC 7946 (WGS 84 longitude, latitude, then altitude in metres); each layer has
one geometry type so that GIS tools (GDAL/QGIS) read it as one layer. Pure functions build the
dicts; :func:`write_export` does the file I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

FT_M = 0.3048  # international foot
LAYERS = ("tracks", "closest_approach", "alerts", "patterns", "zones")


def _fc(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def _feature(geometry: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def _alt_m(alt_ft: float | None) -> float | None:
    return None if alt_ft is None or not math.isfinite(alt_ft) else round(alt_ft * FT_M, 1)


def build_layers(report: dict[str, Any], alerts: Iterable[dict[str, Any]],
                 points: Sequence[tuple[str, float, float, float, float]],
                 zones: dict[str, Any], missions_only: bool = True) -> dict[str, dict[str, Any]]:
    """The five GeoJSON FeatureCollections from a report (``streams.report``), its run's alert
    documents and positions (icao24, t, lat, lon, alt ft) and the zones GeoJSON of the geofence."""
    tracks = [t for t in report["tracks"] if t["mission"] or not missions_only]
    by_icao: dict[str, list[tuple[float, float, float, float]]] = {}
    for icao, t, lat, lon, alt in points:
        by_icao.setdefault(icao, []).append((t, lat, lon, alt))
    for v in by_icao.values():
        v.sort()
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in LAYERS}
    seg_of: dict[str, list[tuple[float, float]]] = {}
    for tr in tracks:
        pts = [p for p in by_icao.get(tr["icao24"], []) if tr["first_seen"] <= p[0] <= tr["last_seen"]]
        seg_of.setdefault(tr["icao24"], []).append((tr["first_seen"], tr["last_seen"]))
        coords = []
        for _t, lat, lon, alt in pts:
            a = _alt_m(alt)
            coords.append([round(lon, 6), round(lat, 6)] + ([a] if a is not None else [0.0]))
        if len(coords) >= 2:
            out["tracks"].append(_feature({"type": "LineString", "coordinates": coords}, {
                "segment_id": tr["segment_id"], "icao24": tr["icao24"], "callsign": tr["callsign"],
                "category": tr["category"], "type_code": tr["type_code"], "registration": tr["registration"],
                "first_seen": tr["first_seen_iso"], "last_seen": tr["last_seen_iso"], "entered": tr["entered"],
                "mission": tr["mission"], "positions": len(coords),
            }))
        ca = tr["closest_approach"]
        if ca.get("lat") is not None and ca.get("lon") is not None:
            a = _alt_m(ca.get("alt_ft"))
            out["closest_approach"].append(_feature(
                {"type": "Point", "coordinates": [ca["lon"], ca["lat"]] + ([a] if a is not None else [])}, {
                    "segment_id": tr["segment_id"], "icao24": tr["icao24"], "callsign": tr["callsign"],
                    "distance_to_boundary_m": ca["distance_m"], "time": ca["time_iso"],
                    "description": ca.get("description"), "entered": tr["entered"],
                }))
        for p in tr["patterns"]:
            ring = [list(c) for c in p.get("outline") or []]
            if len(ring) >= 4:
                out["patterns"].append(_feature({"type": "Polygon", "coordinates": [ring]}, {
                    "pattern_id": p["pattern_id"], "icao24": tr["icao24"], "callsign": tr["callsign"],
                    "kind": p["kind"], "start": p["start_iso"], "end": p["end_iso"],
                    "time_on_station_s": p["time_on_station_s"], "distance_to_boundary_m": p["distance_to_boundary_m"],
                    "description": p["description"], "label": p["label"],
                }))
    for doc in alerts:
        if doc.get("schema") != "alert.v1":
            continue
        spans = seg_of.get(str(doc.get("icao24")), [])
        if not any(s0 - 3600.0 <= float(doc["event_time"]) <= s1 + 3600.0 for s0, s1 in spans):
            continue  # only the alerts of the exported tracks (closings come up to the timeout after)
        pos = doc["position"]
        alt_m = _alt_m(pos.get("alt_ft"))
        out["alerts"].append(_feature(
            {"type": "Point", "coordinates": [pos["lon"], pos["lat"]] + ([alt_m] if alt_m is not None else [])}, {
                "event_id": doc["event_id"], "icao24": doc["icao24"], "callsign": doc.get("callsign"),
                "transition": doc["transition"], "zone": doc["zone"], "time": doc["event_time_iso"],
                "severity": doc["severity"], "headline": doc["headline"], "description": doc.get("description"),
                "distance_to_boundary_m": doc.get("distance_to_boundary_m"),
                "crossing_estimated": doc.get("crossing_estimated", False),
            }))
    for f in zones.get("features", []):
        geom = f.get("geometry") or {}
        if geom.get("type") in ("Polygon", "MultiPolygon", "LineString", "MultiLineString"):
            props = dict(f.get("properties") or {})
            out["zones"].append(_feature(geom, props))
    # zones mix polygons (sovereign) and lines (rings): one layer each, so each has one geometry type
    layers = {k: _fc(v) for k, v in out.items() if k != "zones"}
    layers["zones"] = _fc([f for f in out["zones"] if "Polygon" in f["geometry"]["type"]])
    layers["rings"] = _fc([f for f in out["zones"] if "LineString" in f["geometry"]["type"]])
    return layers


def _kml(layers: dict[str, dict[str, Any]], title: str) -> str:
    import simplekml

    kml = simplekml.Kml(name=title)
    red, grey = "ff3c3cdc", "ff999999"  # aabbggrr: the live map's sovereign red and ring grey
    for name, fc in layers.items():
        folder = kml.newfolder(name=name)
        for f in fc["features"]:
            g, p = f["geometry"], f["properties"]
            label = str(p.get("callsign") or p.get("icao24") or p.get("name") or name)
            desc = "\n".join(f"{k}: {v}" for k, v in p.items() if v is not None)
            if g["type"] == "LineString" and name == "tracks":
                ls = folder.newlinestring(name=label, description=desc, coords=[tuple(c) for c in g["coordinates"]])
                ls.altitudemode = simplekml.AltitudeMode.absolute
                ls.extrude = 0
                ls.style.linestyle.color = "ff00a5ff"
                ls.style.linestyle.width = 2
            elif g["type"] == "Point":
                pt = folder.newpoint(name=p.get("transition") or label, description=p.get("headline") or desc,
                                     coords=[tuple(g["coordinates"][:2])])
                pt.timestamp.when = p.get("time")
            else:
                polys = ([g["coordinates"]] if g["type"] in ("Polygon", "LineString")
                         else g["coordinates"])
                for part in polys:
                    if "Polygon" in g["type"]:
                        pg = folder.newpolygon(name=label, description=desc,
                                               outerboundaryis=[tuple(c) for c in part[0]],
                                               innerboundaryis=[[tuple(c) for c in r] for r in part[1:]])
                        pg.style.polystyle.color = "40" + (red[2:] if name == "zones" else "ffa500")
                        pg.style.linestyle.color = red if name == "zones" else "ff00a5ff"
                    else:
                        ln = folder.newlinestring(name=label, description=desc, coords=[tuple(c) for c in part])
                        ln.style.linestyle.color = grey
    return str(kml.kml())


def write_export(out_dir: Path, layers: dict[str, dict[str, Any]], title: str) -> list[Path]:
    """Write one GeoJSON file per layer and ``evidence.kml``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fc in layers.items():
        p = out_dir / f"{name}.geojson"
        p.write_bytes(orjson.dumps(fc))
        written.append(p)
    k = out_dir / "evidence.kml"
    k.write_text(_kml(layers, title), encoding="utf-8")
    written.append(k)
    return written
