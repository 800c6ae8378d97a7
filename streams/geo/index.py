"""Spatial indexes of the geofence, built from polygon rings into flat numpy arrays.

This module owns the step from polygons (lists of lon/lat rings) to the arrays the numba
kernels in ``streams.geo.kernels`` read: the point-in-polygon grid pack and the distance
index with its hierarchy of exact candidate lists. It does no file I/O; calling a builder
compiles the build kernels on first use (never at import).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streams.geo import kernels as K

Ring = np.ndarray  # float64[n, 2] lon/lat, closed or not
PolygonRings = Sequence[Ring]  # outer ring first, then holes (even-odd rule makes order moot)
_A = np.ndarray
PipArrays = tuple[_A, _A, _A, _A, _A, _A, _A, _A]
DistArrays = tuple[_A, _A, _A, _A, _A, _A]

# PIP grid size per polygon: about 8 cells per edge keeps mixed cells to a few edges each while
# the whole grid of the 21,848-vertex polygon stays under 1 MB; the bounds keep tiny user fences
# at a useful resolution and huge ones from allocating without limit.
PIP_CELLS_PER_EDGE = 8
PIP_MIN_CELLS = 4096
PIP_MAX_CELLS = 1 << 21
# Global distance grid: 18° root cells refined four times to 1.125°; every point on Earth gets
# an exact (if longer) candidate list without a brute-force fallback. 1.125°, not 4.5° (before
# 2026-12-07): a far point scanned 134 edges on average at 4.5°, and far points are most of the
# scoring (the march's steps too). Measured then with a throwaway script: the issue-17 world
# feed's positions scored 25 % faster and random world points with closest approach 37 %, for an
# index of the same size (13.7 MB) and bitwise-equal output.
GLOBAL_ROOT_DEG = 18.0
GLOBAL_LEVELS = 4
# The fine distance grid covers the polygon's box plus this margin (about 670 km of latitude),
# enough for every point within 500 km of Mexico, then is halved this many times from 1.125°:
# 1.125 / 2**4 ≈ 0.07° (about 7.8 km) keeps lists near the coast to a few dozen edges.
FINE_MARGIN_DEG = 6.0
FINE_LEVELS = 4
# Piece-count margin of ``densify``: a 100 km lon/lat edge's pieces differ in length by well under 2 %.
_DENSIFY_MARGIN = 1.02


@dataclass(frozen=True, slots=True)
class PipPack:
    """K polygons' point-in-polygon grids flattened into one set of arrays (see kernels)."""

    pg: np.ndarray
    cell_off: np.ndarray
    cell_slot: np.ndarray
    slot_start: np.ndarray
    slot_items: np.ndarray
    slot_ref: np.ndarray
    slot_refin: np.ndarray
    pe: np.ndarray

    def as_tuple(self) -> PipArrays:
        return (self.pg, self.cell_off, self.cell_slot, self.slot_start, self.slot_items,
                self.slot_ref, self.slot_refin, self.pe)

    @property
    def size(self) -> int:
        return int(self.pg.shape[0])

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.as_tuple()))


@dataclass(frozen=True, slots=True)
class DistIndex:
    """Distance index of one polygon boundary (see kernels for the layout)."""

    E: np.ndarray
    dg: np.ndarray
    g_start: np.ndarray
    g_items: np.ndarray
    f_start: np.ndarray
    f_items: np.ndarray

    def as_tuple(self) -> DistArrays:
        return (self.E, self.dg, self.g_start, self.g_items, self.f_start, self.f_items)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.as_tuple()))


def polygon_edges(polygons: Sequence[PolygonRings]) -> np.ndarray:
    """All ring edges of the polygons as float64[n, 4] (lon0, lat0, lon1, lat1), zero-length dropped."""
    parts: list[np.ndarray] = []
    for rings in polygons:
        for ring in rings:
            r = np.asarray(ring, dtype=np.float64)
            if r.ndim != 2 or r.shape[0] < 3 or r.shape[1] < 2:
                continue
            r = r[:, :2]
            if not np.array_equal(r[0], r[-1]):
                r = np.vstack([r, r[:1]])
            e = np.hstack([r[:-1], r[1:]])
            keep = (e[:, 0] != e[:, 2]) | (e[:, 1] != e[:, 3])
            parts.append(e[keep])
    if not parts:
        return np.zeros((0, 4))
    return np.ascontiguousarray(np.vstack(parts))


def densify(pe: np.ndarray, max_m: float = K.DENSIFY_M) -> np.ndarray:
    """Split edges longer than ``max_m`` into equal pieces along the lon/lat straight line.

    Equal steps along a lon/lat line are not quite equal in length, so the piece count carries
    a margin (``_DENSIFY_MARGIN``) over the end-to-end great-circle length on the equatorial
    radius; pieces then come out at most ``max_m`` long.
    """
    lat0 = np.radians(pe[:, 1])
    lat1 = np.radians(pe[:, 3])
    dlat = lat1 - lat0
    dlon = np.radians(pe[:, 2] - pe[:, 0])
    h = np.sin(dlat / 2) ** 2 + np.cos(lat0) * np.cos(lat1) * np.sin(dlon / 2) ** 2
    length = 2 * K.A_WGS84 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    pieces = np.maximum(1, np.ceil(length * _DENSIFY_MARGIN / max_m)).astype(np.int64)
    idx = np.repeat(np.arange(pe.shape[0]), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    k = np.arange(idx.shape[0]) - first
    t0 = k / pieces[idx]
    t1 = (k + 1) / pieces[idx]
    a = pe[idx, :2]
    d = pe[idx, 2:] - a
    out = np.hstack([a + d * t0[:, None], a + d * t1[:, None]])
    return np.ascontiguousarray(out)


def pip_grid_for(pe: np.ndarray) -> np.ndarray:
    """Grid (x0, y0, dx, dy, nx, ny) covering an edge set's box with half a cell of padding."""
    x0 = float(min(pe[:, 0].min(), pe[:, 2].min()))
    x1 = float(max(pe[:, 0].max(), pe[:, 2].max()))
    y0 = float(min(pe[:, 1].min(), pe[:, 3].min()))
    y1 = float(max(pe[:, 1].max(), pe[:, 3].max()))
    target = min(max(PIP_CELLS_PER_EDGE * pe.shape[0], PIP_MIN_CELLS), PIP_MAX_CELLS)
    w = max(x1 - x0, 1e-6)
    h = max(y1 - y0, 1e-6)
    cell = math.sqrt(w * h / target)
    # Square cells in degrees, but never fewer than 4 across a thin polygon's short side.
    cell = min(cell, w / 4, h / 4)
    nx = int(math.ceil(w / cell)) + 1
    ny = int(math.ceil(h / cell)) + 1
    return np.array([x0 - cell / 2, y0 - cell / 2, cell, cell, float(nx), float(ny)])


def build_pip_pack(edge_sets: Sequence[np.ndarray]) -> PipPack:
    """One PIP grid per edge set, flattened into a pack (an empty set gives an always-outside entry)."""
    pgs: list[np.ndarray] = []
    slots: list[np.ndarray] = []
    sstarts: list[np.ndarray] = []
    sitems: list[np.ndarray] = []
    refs: list[np.ndarray] = []
    refins: list[np.ndarray] = []
    pes: list[np.ndarray] = []
    cell_off = [0]
    slot_base = 0
    item_base = 0
    edge_base = 0
    for pe in edge_sets:
        pe = np.ascontiguousarray(pe, dtype=np.float64).reshape(-1, 4)
        if pe.shape[0] == 0:
            # A degenerate fence: a 1x1 grid far away that is always "outside".
            grid = np.array([1e6, 1e6, 1.0, 1.0, 1.0, 1.0])
            cs = np.array([-1], np.int32)
            ss = np.zeros(1, np.int64)
            si = np.zeros(0, np.int32)
            rf = np.zeros((0, 2))
            ri = np.zeros(0, np.uint8)
        else:
            grid = pip_grid_for(pe)
            cs, ss, si, rf, ri = K.build_pip_grid(pe, grid)
        pgs.append(grid)
        slots.append(np.where(cs >= 0, cs + slot_base, cs).astype(np.int32))
        sstarts.append(ss[:-1] + item_base)
        sitems.append(si + edge_base)
        refs.append(rf)
        refins.append(ri)
        pes.append(pe)
        cell_off.append(cell_off[-1] + cs.shape[0])
        slot_base += rf.shape[0]
        item_base += si.shape[0]
        edge_base += pe.shape[0]
    if not pgs:
        return PipPack(np.zeros((0, 6)), np.zeros(1, np.int64), np.zeros(0, np.int32),
                       np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros((0, 2)),
                       np.zeros(0, np.uint8), np.zeros((0, 4)))
    slot_start = np.concatenate([*sstarts, np.array([item_base], np.int64)]).astype(np.int64)
    return PipPack(
        pg=np.ascontiguousarray(np.vstack(pgs)),
        cell_off=np.asarray(cell_off, np.int64),
        cell_slot=np.ascontiguousarray(np.concatenate(slots)),
        slot_start=slot_start,
        slot_items=np.ascontiguousarray(np.concatenate(sitems).astype(np.int32)),
        slot_ref=np.ascontiguousarray(np.vstack(refs)) if refs else np.zeros((0, 2)),
        slot_refin=np.ascontiguousarray(np.concatenate(refins).astype(np.uint8)),
        pe=np.ascontiguousarray(np.vstack(pes)),
    )


def _grid(x0: float, y0: float, d: float, nx: int, ny: int) -> np.ndarray:
    return np.array([x0, y0, d, d, float(nx), float(ny)])


def build_distance_index(pe: np.ndarray) -> DistIndex:
    """Exact nearest-edge candidate lists for a boundary given as lon/lat edges."""
    dense = densify(np.ascontiguousarray(pe, dtype=np.float64))
    E = K.build_edge_table(dense)
    ne = E.shape[0]
    root = _grid(-180.0, -90.0, 360.0, 1, 1)
    start = np.array([0, ne], np.int64)
    items = np.arange(ne, dtype=np.int32)
    d = GLOBAL_ROOT_DEG
    grid = _grid(-180.0, -90.0, d, int(360 / d), int(180 / d))
    start, items = K.refine_lists(E, root, start, items, grid)
    for _ in range(GLOBAL_LEVELS):
        d /= 2
        child = _grid(-180.0, -90.0, d, int(round(360 / d)), int(round(180 / d)))
        start, items = K.refine_lists(E, grid, start, items, child)
        grid = child
    g_grid, g_start, g_items = grid, start, items
    # Fine region aligned to the global cells so every fine cell sits in one global cell.
    bx0 = float(min(dense[:, 0].min(), dense[:, 2].min())) - FINE_MARGIN_DEG
    bx1 = float(max(dense[:, 0].max(), dense[:, 2].max())) + FINE_MARGIN_DEG
    by0 = float(min(dense[:, 1].min(), dense[:, 3].min())) - FINE_MARGIN_DEG
    by1 = float(max(dense[:, 1].max(), dense[:, 3].max())) + FINE_MARGIN_DEG
    ix0 = max(int(math.floor((bx0 + 180.0) / d)), 0)
    ix1 = min(int(math.ceil((bx1 + 180.0) / d)), int(round(360 / d)))
    iy0 = max(int(math.floor((by0 + 90.0) / d)), 0)
    iy1 = min(int(math.ceil((by1 + 90.0) / d)), int(round(180 / d)))
    fx0 = -180.0 + ix0 * d
    fy0 = -90.0 + iy0 * d
    nx = ix1 - ix0
    ny = iy1 - iy0
    for _ in range(FINE_LEVELS):
        d /= 2
        nx *= 2
        ny *= 2
        child = _grid(fx0, fy0, d, nx, ny)
        start, items = K.refine_lists(E, grid, start, items, child)
        grid = child
    dg = np.concatenate([g_grid, grid])
    return DistIndex(E=E, dg=dg, g_start=g_start, g_items=g_items, f_start=start, f_items=items)
