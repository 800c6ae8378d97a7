"""Reading zone polygons: the packaged OSM-derived files and users' GeoJSON fence files.

This module owns turning GeoJSON into lists of lon/lat rings and validating user fences
(name, Polygon/MultiPolygon geometry, optional altitude band). Problems in a fence file raise
``FenceFileError`` naming the file, the feature and the reason; nothing is skipped silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

DATA_PACKAGE = "streams.geo"
SOVEREIGN_FILE = "mexico_sovereign.geojson"
SOVEREIGN_1000M_FILE = "mexico_sovereign_1000m.geojson"
NEIGHBOURS_FILE = "neighbours.geojson"
WEB_FILE = "mexico_sovereign_web.geojson"
# A user fence file bigger than this is almost certainly not a hand-drawn fence; refusing it keeps
# a mistaken path (a whole-world borders file) from eating the worker's memory.
MAX_FENCE_FILE_BYTES = 20 * 1024 * 1024

Polygon = list[np.ndarray]  # rings, float64[n, 2] lon/lat, outer first


class FenceFileError(ValueError):
    """A user fence file that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class UserFence:
    """One named user fence: polygons plus an optional altitude band in feet (None = open)."""

    name: str
    polygons: list[Polygon]
    lower_ft: float | None = None
    upper_ft: float | None = None

    @property
    def vertices(self) -> int:
        return sum(int(r.shape[0]) for p in self.polygons for r in p)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        pts = np.vstack([r for p in self.polygons for r in p])
        return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def data_path(name: str) -> Path:
    """Path of a packaged zone file (inside the installed package, never outside the repository)."""
    return Path(str(resources.files(DATA_PACKAGE).joinpath("data", name)))


def geometry_polygons(geom: dict[str, Any]) -> list[Polygon]:
    """Polygons of a Polygon, MultiPolygon or GeometryCollection of those (other types ignored)."""
    t = geom.get("type")
    if t == "Polygon":
        return [[np.asarray(r, dtype=np.float64)[:, :2] for r in geom["coordinates"]]]
    if t == "MultiPolygon":
        return [[np.asarray(r, dtype=np.float64)[:, :2] for r in poly] for poly in geom["coordinates"]]
    if t == "GeometryCollection":
        out: list[Polygon] = []
        for g in geom.get("geometries", []):
            out.extend(geometry_polygons(g))
        return out
    return []


def load_packaged(name: str) -> list[tuple[dict[str, Any], list[Polygon]]]:
    """(properties, polygons) of every feature of a packaged zone file."""
    doc = json.loads(data_path(name).read_text(encoding="utf-8"))
    return [(f.get("properties") or {}, geometry_polygons(f["geometry"])) for f in doc["features"]]


def _band(props: dict[str, Any], key: str, where: str) -> float | None:
    v = props.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FenceFileError(f"{where}: '{key}' must be a finite number of feet, got {v!r}")
    return float(v)


def _check_rings(rings: Sequence[Any], where: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise FenceFileError(f"{where}: a polygon needs at least one ring")
    out: Polygon = []
    for k, ring in enumerate(rings):
        try:
            arr = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise FenceFileError(f"{where}, ring {k}: coordinates are not numbers ({exc})") from None
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise FenceFileError(f"{where}, ring {k}: expected a list of [lon, lat] positions")
        arr = arr[:, :2]
        if not np.all(np.isfinite(arr)):
            raise FenceFileError(f"{where}, ring {k}: non-finite coordinate")
        if np.any(np.abs(arr[:, 0]) > 180) or np.any(np.abs(arr[:, 1]) > 90):
            raise FenceFileError(f"{where}, ring {k}: coordinates must be [lon, lat] within ±180/±90")
        if arr.shape[0] < 4 or not np.array_equal(arr[0], arr[-1]):
            raise FenceFileError(f"{where}, ring {k}: a linear ring needs >= 4 positions, first == last")
        if np.unique(arr[:-1], axis=0).shape[0] < 3:
            raise FenceFileError(f"{where}, ring {k}: ring has fewer than 3 distinct positions")
        out.append(np.ascontiguousarray(arr))
    return out


def parse_fences(doc: Any, source: str = "<fences>") -> list[UserFence]:
    """Validate a GeoJSON FeatureCollection, Feature or bare (Multi)Polygon into user fences.

    Feature properties: ``name`` (string; default ``fence <n>``), ``lower_ft`` and ``upper_ft``
    (optional numbers; either may be absent for an open band). Names must be unique.
    """
    if not isinstance(doc, dict):
        raise FenceFileError(f"{source}: expected a GeoJSON object")
    t = doc.get("type")
    if t == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise FenceFileError(f"{source}: 'features' must be a list")
    elif t == "Feature":
        feats = [doc]
    elif t in ("Polygon", "MultiPolygon"):
        feats = [{"type": "Feature", "properties": {}, "geometry": doc}]
    else:
        raise FenceFileError(f"{source}: expected a FeatureCollection, Feature, Polygon or MultiPolygon, got {t!r}")
    fences: list[UserFence] = []
    seen: set[str] = set()
    for i, f in enumerate(feats):
        where = f"{source}: feature {i}"
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise FenceFileError(f"{where}: not a GeoJSON Feature")
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise FenceFileError(f"{where}: 'properties' must be an object")
        name = props.get("name", f"fence {i + 1}")
        if not isinstance(name, str) or not name.strip():
            raise FenceFileError(f"{where}: 'name' must be a non-empty string")
        name = name.strip()
        if name in seen:
            raise FenceFileError(f"{where}: duplicate fence name {name!r}")
        seen.add(name)
        geom = f.get("geometry")
        if not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon"):
            gt = geom.get("type") if isinstance(geom, dict) else geom
            raise FenceFileError(f"{where} ({name}): geometry must be Polygon or MultiPolygon, got {gt!r}")
        coords = geom.get("coordinates")
        if geom["type"] == "Polygon":
            polys = [_check_rings(coords, f"{where} ({name})")]  # type: ignore[arg-type]
        else:
            if not isinstance(coords, list) or not coords:
                raise FenceFileError(f"{where} ({name}): MultiPolygon needs at least one polygon")
            polys = [_check_rings(p, f"{where} ({name}), polygon {k}") for k, p in enumerate(coords)]
        lower = _band(props, "lower_ft", f"{where} ({name})")
        upper = _band(props, "upper_ft", f"{where} ({name})")
        if lower is not None and upper is not None and lower > upper:
            raise FenceFileError(f"{where} ({name}): lower_ft {lower} is above upper_ft {upper}")
        fences.append(UserFence(name=name, polygons=polys, lower_ft=lower, upper_ft=upper))
    return fences


def load_fence_file(path: str | Path) -> list[UserFence]:
    """Read and validate a user fence file (see ``parse_fences``)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise FenceFileError(f"{p}: cannot read fence file ({exc.strerror})") from None
    if size > MAX_FENCE_FILE_BYTES:
        raise FenceFileError(f"{p}: {size} bytes is more than the {MAX_FENCE_FILE_BYTES} allowed for a fence file")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise FenceFileError(f"{p}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise FenceFileError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return parse_fences(doc, str(p))
