"""Reference answers for the geofence, from shapely (inside/outside) and pyproj (distance).

Shared by ``tests/geo`` and ``bench/geofence_accuracy.py``. It does not use the geofence's own
geometry code, so agreement means something:

* inside: shapely 2 prepared ``contains_xy`` on the same GeoJSON polygon.
* distance: the geodesic (pyproj ``Geod(ellps='WGS84')``) distance to the nearest boundary
  point. Each query point gets its own azimuthal-equidistant frame from pyproj's inverse
  solution (distance and azimuth to each candidate vertex), where distances from the point are
  exact; the nearest point of each candidate edge (split into <= 1 km pieces along the lon/lat
  line, the GeoJSON meaning of an edge) is then a planar point-segment distance in that frame.
  Candidates come from a shapely STRtree and a great-circle pre-filter whose slack provably
  keeps the true nearest edge (see ``_SPHERE_SLACK``).
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Geod

GEOD = Geod(ellps="WGS84")
# Great-circle distances use the mean radius; for latitudes up to 50° the geodesic between two
# points is within [M_min/R, N_max/R] = [0.99442, 1.00305] of the great-circle distance, so an
# edge whose great-circle distance exceeds the best one by more than that ratio cannot be nearest.
_R = 6371008.8
_SPHERE_SLACK = 1.00305 / 0.99442 * 1.0005
# Reference edge pieces: a 1 km lon/lat piece and its great-circle arc differ by under 1 cm.
_PIECE_M = 1000.0
# Metres per degree of latitude can be no less than this (meridional radius at the equator), and
# of longitude no less than 111,319 m times cos(latitude); both give a box sure to hold every
# point within a given geodesic distance.
_M_PER_DEG_LAT_MIN = 110_574.0
_M_PER_DEG_LON_EQ = 111_319.0


def reference_inside(geom: shapely.Geometry, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    shapely.prepare(geom)
    return np.asarray(shapely.contains_xy(geom, lon, lat), dtype=bool)


def _pieces(pe: np.ndarray) -> np.ndarray:
    lat0 = np.radians(pe[:, 1])
    lat1 = np.radians(pe[:, 3])
    h = np.sin((lat1 - lat0) / 2) ** 2 + np.cos(lat0) * np.cos(lat1) * np.sin(
        np.radians(pe[:, 2] - pe[:, 0]) / 2) ** 2
    length = 2 * 6378137.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
    n = np.maximum(1, np.ceil(length / _PIECE_M)).astype(int)
    out = []
    for e, k in zip(pe, n, strict=True):
        t = np.linspace(0.0, 1.0, k + 1)
        x = e[0] + (e[2] - e[0]) * t
        y = e[1] + (e[3] - e[1]) * t
        out.append(np.column_stack([x[:-1], y[:-1], x[1:], y[1:]]))
    return np.vstack(out)


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la = np.radians(lat)
    lo = np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _arc_frames(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per arc a-b: unit normal n, and n x a, b x n bounding the arc's lune (zero arcs get empty lunes)."""
    n = np.cross(a, b)
    nn = np.linalg.norm(n, axis=1)
    ok = nn > 1e-15
    n[ok] /= nn[ok, None]
    u = np.cross(n, a)
    w = np.cross(b, n)
    u[~ok] = -a[~ok]
    w[~ok] = -a[~ok]
    return n, u, w


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, y)


def _gc_to_arc(p: np.ndarray, a: np.ndarray, b: np.ndarray, n: np.ndarray, u: np.ndarray,
               w: np.ndarray) -> np.ndarray:
    """Great-circle angle from unit vectors p to arcs a-b (rows paired), given their frames."""
    s = _dot(p, n)
    on_arc = (_dot(p, u) >= 0) & (_dot(p, w) >= 0)
    ca = np.linalg.norm(p - a, axis=1)
    cb = np.linalg.norm(p - b, axis=1)
    ang_end = 2 * np.arcsin(np.clip(np.minimum(ca, cb) / 2, 0, 1))
    ang_f = np.arcsin(np.clip(np.abs(s), 0, 1))
    return np.where(on_arc, np.minimum(ang_f, ang_end), ang_end)


def _group_min(group: np.ndarray, val: np.ndarray, n: int) -> np.ndarray:
    """Per-group minimum of ``val`` for sorted ``group`` ids in [0, n); inf for empty groups."""
    out = np.full(n, np.inf)
    if group.shape[0] == 0:
        return out
    if np.any(group[1:] < group[:-1]):
        order = np.argsort(group, kind="stable")
        group = group[order]
        val = val[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    out[group[starts]] = np.minimum.reduceat(val, starts)
    return out


class BoundaryReference:
    """Geodesic distance and azimuth to a polygon boundary given as lon/lat edges."""

    def __init__(self, pe: np.ndarray) -> None:
        self.pe = _pieces(np.asarray(pe, dtype=float))
        self.lines = shapely.linestrings(self.pe.reshape(-1, 2, 2))
        self.tree = shapely.STRtree(self.lines)
        # A second tree in lon scaled by cos(23.5°) finds a near-nearest edge for the upper bound.
        self._kx = np.cos(np.radians(23.5))
        scaled = self.pe.copy()
        scaled[:, 0] *= self._kx
        scaled[:, 2] *= self._kx
        self.tree_scaled = shapely.STRtree(shapely.linestrings(scaled.reshape(-1, 2, 2)))
        self.ua = _unit(self.pe[:, 1], self.pe[:, 0])
        self.ub = _unit(self.pe[:, 3], self.pe[:, 2])
        self.un, self.uu, self.uw = _arc_frames(self.ua, self.ub)

    def _edge_geodesic(self, plat: np.ndarray, plon: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Geodesic distance and azimuth from each point to the nearest point of its paired edge."""
        e = self.pe[edges]
        az_a, _, d_a = GEOD.inv(plon, plat, e[:, 0], e[:, 1])
        az_b, _, d_b = GEOD.inv(plon, plat, e[:, 2], e[:, 3])
        ax = d_a * np.sin(np.radians(az_a))
        ay = d_a * np.cos(np.radians(az_a))
        bx = d_b * np.sin(np.radians(az_b))
        by = d_b * np.cos(np.radians(az_b))
        dx = bx - ax
        dy = by - ay
        L2 = dx * dx + dy * dy
        t = np.where(L2 > 0, np.clip(-(ax * dx + ay * dy) / np.where(L2 > 0, L2, 1), 0, 1), 0)
        qx = ax + t * dx
        qy = ay + t * dy
        return np.hypot(qx, qy), np.degrees(np.arctan2(qx, qy)) % 360.0

    def distance(self, lat: np.ndarray, lon: np.ndarray, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """(geodesic metres to the boundary, azimuth in degrees to the nearest boundary point)."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        out_d = np.empty(lat.shape[0])
        out_az = np.empty(lat.shape[0])
        for s in range(0, lat.shape[0], chunk):
            sl = slice(s, min(s + chunk, lat.shape[0]))
            d, az = self._distance_chunk(lat[sl], lon[sl])
            out_d[sl] = d
            out_az[sl] = az
        return out_d, out_az

    def _distance_chunk(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = lat.shape[0]
        # 1. Upper bound: geodesic distance to a near-nearest edge.
        _, first = self.tree_scaled.query_nearest(shapely.points(lon * self._kx, lat), all_matches=False)
        ub, _ = self._edge_geodesic(lat, lon, first)
        # 2. Every edge that can be within ub lies in this lon/lat box.
        dlat = ub / _M_PER_DEG_LAT_MIN * 1.001 + 1e-6
        latmax = np.minimum(np.abs(lat) + dlat, 89.0)
        dlon = ub / (_M_PER_DEG_LON_EQ * np.cos(np.radians(latmax))) * 1.001 + 1e-6
        boxes = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        qi, ej = self.tree.query(boxes, predicate="intersects")
        # 3. Great-circle pre-filter with a slack that cannot drop the geodesic nearest edge.
        p = _unit(lat, lon)[qi]
        ang = _gc_to_arc(p, self.ua[ej], self.ub[ej], self.un[ej], self.uu[ej], self.uw[ej])
        best = _group_min(qi, ang, n)
        keep = ang <= best[qi] * _SPHERE_SLACK + 1.0 / _R
        qi = qi[keep]
        ej = ej[keep]
        # 4. Geodesic distance to the survivors.
        d, az = self._edge_geodesic(lat[qi], lon[qi], ej)
        out_d = _group_min(qi, d, n)
        is_min = d <= out_d[qi]
        out_az = np.full(n, np.nan)
        out_az[qi[is_min]] = az[is_min]
        return out_d, out_az
