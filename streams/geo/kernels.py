"""Numba kernels of the geofence: arrays in, arrays out, no objects and no I/O.

This module owns the numerical core: point-in-polygon over a uniform lon/lat grid, the
distance to Mexico's boundary over a hierarchy of exact candidate lists on the conformal
sphere, and the straight-track march that predicts entry and closest approach. It also holds
the build kernels that make those indexes (``streams.geo.index`` wraps them).

Nothing here compiles at import: every function is ``@njit(cache=True)`` without signatures, so
numba compiles on the first call (``Geofence.warm`` makes that call at worker start) and reuses
the on-disk cache afterwards.

Geometry conventions
--------------------
* Containment treats edges as straight lines in lon/lat, exactly as GeoJSON and shapely do.
* Distances are computed on the *conformal* sphere of WGS 84 (conformal latitude, radius ``a``):
  it preserves angles, so its metric is isotropic and differs from the ellipsoid's only by a
  scale factor ``k(lat)`` that varies by less than 0.1 % across Mexico. A distance is the
  great-circle angle times ``a`` times ``k`` at the two ends' mean, which agrees with the
  geodesic on the ellipsoid to about 0.01 % at 500 km. Polygon edges longer than
  ``DENSIFY_M`` are split (along the lon/lat line) before the distance index is built, so
  great-circle pieces follow the GeoJSON edge to well under a metre.

Index layouts (all produced by ``streams.geo.index``)
-----------------------------------------------------
PIP pack (K polygons, flattened): ``pg`` float64[K, 6] grid (x0, y0, dx, dy, nx, ny);
``cell_off`` int64[K+1]; ``cell_slot`` int32[ncells] (-1 outside, -2 inside, >= 0 a mixed
cell's slot); ``slot_start`` int64[nslots+1]; ``slot_items`` int32 edge ids;
``slot_ref`` float64[nslots, 2] reference point; ``slot_refin`` uint8 its status;
``pe`` float64[nedges, 4] edges (x0, y0, x1, y1).

Distance index: ``E`` float64[nedges, 16] per edge A(3) B(3) n(3) u(3) w(3) kA, where n is
the unit normal of the arc's plane, u = n x A and w = B x n bound the arc's lune, and kA is
the scale factor at A; ``dg`` float64[12] the global grid then the fine grid (x0, y0, dx, dy,
nx, ny each); CSR ``g_start``/``g_items`` and ``f_start``/``f_items`` list, per cell, every
edge that can be nearest to some point of the cell.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

A_WGS84 = 6378137.0
F_WGS84 = 1.0 / 298.257223563
E2_WGS84 = F_WGS84 * (2.0 - F_WGS84)
E_WGS84 = math.sqrt(E2_WGS84)
# Snyder (1987) eq. 3-5 coefficients, conformal -> geodetic latitude; accurate to ~1e-10 rad.
_C2 = E2_WGS84 / 2 + 5 * E2_WGS84**2 / 24 + E2_WGS84**3 / 12 + 13 * E2_WGS84**4 / 360
_C4 = 7 * E2_WGS84**2 / 48 + 29 * E2_WGS84**3 / 240 + 811 * E2_WGS84**4 / 11520
_C6 = 7 * E2_WGS84**3 / 120 + 81 * E2_WGS84**4 / 1120
_C8 = 4279 * E2_WGS84**4 / 161280
# Snyder (1987) eq. 3-4 coefficients, geodetic -> conformal latitude (chi = phi - delta).
_F2 = E2_WGS84 / 2 + 5 * E2_WGS84**2 / 24 + 3 * E2_WGS84**3 / 32 + 281 * E2_WGS84**4 / 5760
_F4 = 5 * E2_WGS84**2 / 48 + 7 * E2_WGS84**3 / 80 + 697 * E2_WGS84**4 / 11520
_F6 = 13 * E2_WGS84**3 / 480 + 461 * E2_WGS84**4 / 13440
_F8 = 1363 * E2_WGS84**4 / 53760
# Latitudes are clamped this close to the poles so the isometric latitude stays finite; nothing
# the geofence cares about is within 0.0001° of a pole.
_MAX_LAT = 89.9999
NM = 1852.0
KT = NM / 3600.0
# Edges longer than this are split before the distance index is built: a 2 km lon/lat segment and
# the great-circle arc between its ends differ by under 0.1 m at Mexico's latitudes.
DENSIFY_M = 2000.0
# Sphere-tracing steps are shortened by this factor so the small mismatch between the step's
# metric (scale at the current point) and the distance's metric (scale at the mid-point) can
# never carry a step across the boundary.
_STEP_SAFETY = 0.999
# Below this distance to the boundary the march stops trusting free-space steps and tests the
# track exactly against the edges, so grazing tracks cost a few exact segments, not hundreds of
# shrinking steps.
NEAR_M = 20000.0
# Track pieces tested exactly are at most this long: a 5 km great-circle piece and its lon/lat
# chord differ by under 1 m, far below what a prediction minutes ahead can claim.
_SUB_M = 5000.0
# Iteration cap of the march: steps are never shorter than NEAR_M, so a 2 h horizon at 600 kt
# (2,222 km) needs at most 112; the cap only guards against a horizon set absurdly long.
MAX_MARCH_ITER = 512
# Far from the boundary a march step is the whole distance to it (times _STEP_SAFETY): nothing can
# be crossed within that ball, and the closest-approach search bounds what lies between samples,
# so denser samples would only cost time (0.5 measured 25 % slower for the same answers).
_FAR_STEP = 1.0
# Distance evaluations refining the closest approach, at most: a smooth minimum needs about a
# dozen, and this caps the rare track that grazes a long wiggly coast.
_CPA_EVALS = 64
# A point farther from the boundary than this many times the horizon's track length cannot
# enter within the horizon: the march's along-track metres are true to ~1e-6, so 1e-4 of margin
# leaves every case it could still call an entry to the march itself.
_UNREACHABLE = 1.0001


# ----------------------------------------------------------------------------- conformal sphere


@njit(cache=True)
def to_unit(lat_deg: float, lon_deg: float) -> tuple[float, float, float, float]:
    """Unit vector on the conformal sphere and the ellipsoid/sphere scale factor k at a point.

    Conformal latitude by its series in sin 2φ..sin 8φ (Snyder 1987, eq. 3-4; within 4e-11 rad
    of the closed form), applied as a small rotation so only one sin/cos pair of latitude is
    evaluated: the closed form costs four more transcendental calls per point.
    """
    lat = min(max(lat_deg, -_MAX_LAT), _MAX_LAT)
    phi = math.radians(lat)
    s = math.sin(phi)
    c = math.cos(phi)
    s2 = 2.0 * s * c
    c2 = c * c - s * s
    s4 = 2.0 * s2 * c2
    c4 = c2 * c2 - s2 * s2
    s6 = s4 * c2 + c4 * s2
    s8 = 2.0 * s4 * c4
    d = _F2 * s2 - _F4 * s4 + _F6 * s6 - _F8 * s8
    dd = d * d
    sd = d * (1.0 - dd / 6.0 + dd * dd / 120.0)
    cd = 1.0 - dd / 2.0 + dd * dd / 24.0
    schi = s * cd - c * sd
    cchi = c * cd + s * sd
    lam = math.radians(lon_deg)
    k = c / (cchi * math.sqrt(1.0 - E2_WGS84 * s * s))
    return cchi * math.cos(lam), cchi * math.sin(lam), schi, k


@njit(cache=True)
def from_unit(x: float, y: float, z: float) -> tuple[float, float]:
    """Geodetic (lat, lon) in degrees of a point on the conformal sphere."""
    chi = math.atan2(z, math.sqrt(x * x + y * y))
    s2 = math.sin(2.0 * chi)
    c2 = math.cos(2.0 * chi)
    s4 = 2.0 * s2 * c2
    c4 = c2 * c2 - s2 * s2
    s6 = s4 * c2 + c4 * s2
    s8 = 2.0 * s4 * c4
    phi = chi + _C2 * s2 + _C4 * s4 + _C6 * s6 + _C8 * s8
    return math.degrees(phi), math.degrees(math.atan2(y, x))


@njit(cache=True)
def scale_at(lat_deg: float) -> float:
    """Scale factor k (ellipsoid metres per conformal-sphere metre of radius a) at a latitude."""
    return to_unit(lat_deg, 0.0)[3]


# ----------------------------------------------------------------------------- point in polygon


@njit(cache=True)
def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True)
def _crosses(px: float, py: float, rx: float, ry: float, ax: float, ay: float, bx: float, by: float) -> bool:
    """Whether segment p-r crosses edge a-b.

    A zero orientation counts as positive on both tests. That is a consistent symbolic
    perturbation: a vertex lying exactly on p-r is treated as nudged to the same side for both
    edges that share it, so the crossing parity stays right.
    """
    if (_orient(ax, ay, bx, by, px, py) >= 0.0) == (_orient(ax, ay, bx, by, rx, ry) >= 0.0):
        return False
    return (_orient(px, py, rx, ry, ax, ay) >= 0.0) != (_orient(px, py, rx, ry, bx, by) >= 0.0)


@njit(cache=True)
def _pip_mixed(
    v: int, x: float, y: float, slot_start: np.ndarray, slot_items: np.ndarray, slot_ref: np.ndarray,
    slot_refin: np.ndarray, pe: np.ndarray,
) -> bool:
    """Status of (x, y) in mixed cell slot v: the reference point's, flipped per edge crossed."""
    rx = slot_ref[v, 0]
    ry = slot_ref[v, 1]
    inside = slot_refin[v] != 0
    for t in range(slot_start[v], slot_start[v + 1]):
        e = slot_items[t]
        if _crosses(x, y, rx, ry, pe[e, 0], pe[e, 1], pe[e, 2], pe[e, 3]):
            inside = not inside
    return inside


@njit(cache=True)
def pip_one(
    k: int, x: float, y: float,
    pg: np.ndarray, cell_off: np.ndarray, cell_slot: np.ndarray, slot_start: np.ndarray,
    slot_items: np.ndarray, slot_ref: np.ndarray, slot_refin: np.ndarray, pe: np.ndarray,
) -> bool:
    """Is (x=lon, y=lat) inside polygon k of a PIP pack."""
    gx = (x - pg[k, 0]) / pg[k, 2]
    gy = (y - pg[k, 1]) / pg[k, 3]
    nx = pg[k, 4]
    # The grid covers the polygon's bounding box with padding, so off-grid (or NaN) is outside.
    if not (gx >= 0.0 and gx < nx and gy >= 0.0 and gy < pg[k, 5]):
        return False
    v = cell_slot[cell_off[k] + int(gy) * int(nx) + int(gx)]
    if v < 0:
        return v == -2
    return _pip_mixed(v, x, y, slot_start, slot_items, slot_ref, slot_refin, pe)


@njit(cache=True)
def _in_grid(pg: np.ndarray, k: int, x: float, y: float) -> bool:
    """Cheap box test before ``pip_one``, so polygons far from a point cost two comparisons."""
    return (x >= pg[k, 0] and y >= pg[k, 1] and x < pg[k, 0] + pg[k, 2] * pg[k, 4]
            and y < pg[k, 1] + pg[k, 3] * pg[k, 5])


@njit(cache=True)
def contains(
    lat: np.ndarray, lon: np.ndarray,
    pg: np.ndarray, cell_off: np.ndarray, cell_slot: np.ndarray, slot_start: np.ndarray,
    slot_items: np.ndarray, slot_ref: np.ndarray, slot_refin: np.ndarray, pe: np.ndarray,
    out: np.ndarray,
) -> None:
    """Containment of every point in polygon 0 of a PIP pack (single-threaded).

    The grid lookup is written out here with its constants hoisted, and only the rare mixed
    cells call out: that keeps the loop free of a many-array call per point (7x faster).
    """
    x0 = pg[0, 0]
    y0 = pg[0, 1]
    idx = 1.0 / pg[0, 2]
    idy = 1.0 / pg[0, 3]
    nx = pg[0, 4]
    ny = pg[0, 5]
    inx = int(nx)
    base = cell_off[0]
    for i in range(lat.shape[0]):
        x = lon[i]
        y = lat[i]
        gx = (x - x0) * idx
        gy = (y - y0) * idy
        if gx >= 0.0 and gx < nx and gy >= 0.0 and gy < ny:
            v = cell_slot[base + int(gy) * inx + int(gx)]
            if v < 0:
                out[i] = v == -2
            else:
                out[i] = _pip_mixed(v, x, y, slot_start, slot_items, slot_ref, slot_refin, pe)
        else:
            out[i] = False


@njit(cache=True, parallel=True)
def contains_par(
    lat: np.ndarray, lon: np.ndarray,
    pg: np.ndarray, cell_off: np.ndarray, cell_slot: np.ndarray, slot_start: np.ndarray,
    slot_items: np.ndarray, slot_ref: np.ndarray, slot_refin: np.ndarray, pe: np.ndarray,
    out: np.ndarray,
) -> None:
    """``contains`` over numba's thread pool."""
    x0 = pg[0, 0]
    y0 = pg[0, 1]
    idx = 1.0 / pg[0, 2]
    idy = 1.0 / pg[0, 3]
    nx = pg[0, 4]
    ny = pg[0, 5]
    inx = int(nx)
    base = cell_off[0]
    for i in prange(lat.shape[0]):
        x = lon[i]
        y = lat[i]
        gx = (x - x0) * idx
        gy = (y - y0) * idy
        if gx >= 0.0 and gx < nx and gy >= 0.0 and gy < ny:
            v = cell_slot[base + int(gy) * inx + int(gx)]
            if v < 0:
                out[i] = v == -2
            else:
                out[i] = _pip_mixed(v, x, y, slot_start, slot_items, slot_ref, slot_refin, pe)
        else:
            out[i] = False


@njit(cache=True)
def _segment_first_crossing(
    x0: float, y0: float, x1: float, y1: float,
    pg: np.ndarray, cell_off: np.ndarray, cell_slot: np.ndarray, slot_start: np.ndarray,
    slot_items: np.ndarray, pe: np.ndarray,
) -> float:
    """Smallest parameter t in [0, 1] where segment (x0,y0)-(x1,y1) crosses polygon 0's boundary.

    Returns inf when it crosses nothing. Only mixed cells hold edges, so the cells of the
    segment's bounding box are enough.
    """
    dx = pg[0, 2]
    dy = pg[0, 3]
    nx = int(pg[0, 4])
    ny = int(pg[0, 5])
    ix0 = int(math.floor((min(x0, x1) - pg[0, 0]) / dx))
    ix1 = int(math.floor((max(x0, x1) - pg[0, 0]) / dx))
    iy0 = int(math.floor((min(y0, y1) - pg[0, 1]) / dy))
    iy1 = int(math.floor((max(y0, y1) - pg[0, 1]) / dy))
    if ix1 < 0 or iy1 < 0 or ix0 >= nx or iy0 >= ny:
        return np.inf
    ix0 = max(ix0, 0)
    iy0 = max(iy0, 0)
    ix1 = min(ix1, nx - 1)
    iy1 = min(iy1, ny - 1)
    best = np.inf
    ddx = x1 - x0
    ddy = y1 - y0
    for iy in range(iy0, iy1 + 1):
        for ix in range(ix0, ix1 + 1):
            v = cell_slot[cell_off[0] + iy * nx + ix]
            if v < 0:
                continue
            for t in range(slot_start[v], slot_start[v + 1]):
                e = slot_items[t]
                ax = pe[e, 0]
                ay = pe[e, 1]
                bx = pe[e, 2]
                by = pe[e, 3]
                if not _crosses(x0, y0, x1, y1, ax, ay, bx, by):
                    continue
                ex = bx - ax
                ey = by - ay
                den = ddx * ey - ddy * ex
                if den == 0.0:
                    continue
                u = ((ax - x0) * ey - (ay - y0) * ex) / den
                if u < best:
                    best = max(0.0, u)
    return best


# ----------------------------------------------------------------------------- distance


@njit(cache=True)
def _edge_c2(E: np.ndarray, j: int, px: float, py: float, pz: float) -> float:
    """Squared chord from unit vector p to the nearest point of great-circle arc j."""
    s = px * E[j, 6] + py * E[j, 7] + pz * E[j, 8]
    ta = px * E[j, 9] + py * E[j, 10] + pz * E[j, 11]
    tb = px * E[j, 12] + py * E[j, 13] + pz * E[j, 14]
    if ta >= 0.0 and tb >= 0.0:
        # The foot of p on the arc's great circle lies on the arc: chord^2 = 2(1 - cos θ) with
        # sin θ = |s|, written without cancellation.
        s2 = s * s
        return 2.0 * s2 / (1.0 + math.sqrt(max(0.0, 1.0 - s2)))
    dx = px - E[j, 0]
    dy = py - E[j, 1]
    dz = pz - E[j, 2]
    da = dx * dx + dy * dy + dz * dz
    dx = px - E[j, 3]
    dy = py - E[j, 4]
    dz = pz - E[j, 5]
    db = dx * dx + dy * dy + dz * dz
    return min(da, db)


@njit(cache=True)
def _edge_nearest(E: np.ndarray, j: int, px: float, py: float, pz: float) -> tuple[float, float, float]:
    """The nearest point of arc j to p, as a unit vector."""
    s = px * E[j, 6] + py * E[j, 7] + pz * E[j, 8]
    ta = px * E[j, 9] + py * E[j, 10] + pz * E[j, 11]
    tb = px * E[j, 12] + py * E[j, 13] + pz * E[j, 14]
    if ta >= 0.0 and tb >= 0.0:
        fx = px - s * E[j, 6]
        fy = py - s * E[j, 7]
        fz = pz - s * E[j, 8]
        nrm = math.sqrt(fx * fx + fy * fy + fz * fz)
        if nrm > 0.0:
            return fx / nrm, fy / nrm, fz / nrm
    dx = px - E[j, 0]
    dy = py - E[j, 1]
    dz = pz - E[j, 2]
    da = dx * dx + dy * dy + dz * dz
    dx = px - E[j, 3]
    dy = py - E[j, 4]
    dz = pz - E[j, 5]
    db = dx * dx + dy * dy + dz * dz
    if da <= db:
        return E[j, 0], E[j, 1], E[j, 2]
    return E[j, 3], E[j, 4], E[j, 5]


@njit(cache=True)
def _nearest_in(
    items: np.ndarray, t0: int, t1: int, E: np.ndarray, px: float, py: float, pz: float,
) -> tuple[float, int]:
    best = np.inf
    bj = -1
    for t in range(t0, t1):
        j = items[t]
        c2 = _edge_c2(E, j, px, py, pz)
        if c2 < best:
            best = c2
            bj = j
    return best, bj


@njit(cache=True)
def nearest_edge(
    lat: float, lon: float, px: float, py: float, pz: float,
    E: np.ndarray, dg: np.ndarray,
    g_start: np.ndarray, g_items: np.ndarray, f_start: np.ndarray, f_items: np.ndarray,
) -> tuple[float, int]:
    """(squared chord, edge id) of the boundary edge nearest to p: fine grid if inside it, else global."""
    fx = (lon - dg[6]) / dg[8]
    fy = (lat - dg[7]) / dg[9]
    if fx >= 0.0 and fx < dg[10] and fy >= 0.0 and fy < dg[11]:
        c = int(fy) * int(dg[10]) + int(fx)
        return _nearest_in(f_items, f_start[c], f_start[c + 1], E, px, py, pz)
    gnx = int(dg[4])
    gny = int(dg[5])
    ix = min(max(int(math.floor((lon - dg[0]) / dg[2])), 0), gnx - 1)
    iy = min(max(int(math.floor((lat - dg[1]) / dg[3])), 0), gny - 1)
    c = iy * gnx + ix
    return _nearest_in(g_items, g_start[c], g_start[c + 1], E, px, py, pz)


@njit(cache=True)
def _metres(c2: float, k_p: float, k_q: float) -> float:
    theta = 2.0 * math.asin(min(1.0, 0.5 * math.sqrt(c2)))
    return A_WGS84 * theta * 0.5 * (k_p + k_q)


@njit(cache=True)
def unsigned_distance(
    lat: float, lon: float,
    E: np.ndarray, dg: np.ndarray,
    g_start: np.ndarray, g_items: np.ndarray, f_start: np.ndarray, f_items: np.ndarray,
) -> tuple[float, float]:
    """(metres to the nearest boundary point, initial bearing to it in degrees)."""
    px, py, pz, kp = to_unit(lat, lon)
    c2, j = nearest_edge(lat, lon, px, py, pz, E, dg, g_start, g_items, f_start, f_items)
    if j < 0:
        return np.nan, np.nan
    qx, qy, qz = _edge_nearest(E, j, px, py, pz)
    d = _metres(c2, kp, E[j, 15])
    # Local east and north on the conformal sphere; azimuths there equal azimuths on the
    # ellipsoid because the mapping is conformal.
    nz = math.sqrt(px * px + py * py)
    if c2 <= 0.0 or nz == 0.0:
        return d, np.nan
    cl = px / nz
    sl = py / nz
    e_c = qy * cl - qx * sl
    n_c = qz * nz - pz * (qx * cl + qy * sl)
    if e_c == 0.0 and n_c == 0.0:
        return d, np.nan
    return d, math.degrees(math.atan2(e_c, n_c)) % 360.0


@njit(cache=True)
def distances(
    lat: np.ndarray, lon: np.ndarray,
    E: np.ndarray, dg: np.ndarray,
    g_start: np.ndarray, g_items: np.ndarray, f_start: np.ndarray, f_items: np.ndarray,
    out_d: np.ndarray, out_b: np.ndarray,
) -> None:
    """Unsigned distance (m) and bearing (deg) to the boundary for every point (single-threaded)."""
    for i in range(lat.shape[0]):
        if not (math.isfinite(lat[i]) and math.isfinite(lon[i])):
            out_d[i] = np.nan
            out_b[i] = np.nan
            continue
        d, b = unsigned_distance(lat[i], lon[i], E, dg, g_start, g_items, f_start, f_items)
        out_d[i] = d
        out_b[i] = b


@njit(cache=True, parallel=True)
def distances_par(
    lat: np.ndarray, lon: np.ndarray,
    E: np.ndarray, dg: np.ndarray,
    g_start: np.ndarray, g_items: np.ndarray, f_start: np.ndarray, f_items: np.ndarray,
    out_d: np.ndarray, out_b: np.ndarray,
) -> None:
    """``distances`` over numba's thread pool."""
    for i in prange(lat.shape[0]):
        if not (math.isfinite(lat[i]) and math.isfinite(lon[i])):
            out_d[i] = np.nan
            out_b[i] = np.nan
            continue
        d, b = unsigned_distance(lat[i], lon[i], E, dg, g_start, g_items, f_start, f_items)
        out_d[i] = d
        out_b[i] = b


# ----------------------------------------------------------------------------- index builders


@njit(cache=True)
def build_edge_table(pe: np.ndarray) -> np.ndarray:
    """Per-edge float64[16] rows (A, B, n, u, w, kA) from lon/lat edges ``pe`` (x0, y0, x1, y1)."""
    n = pe.shape[0]
    E = np.zeros((n, 16))
    for j in range(n):
        ax, ay, az, ka = to_unit(pe[j, 1], pe[j, 0])
        bx, by, bz, _ = to_unit(pe[j, 3], pe[j, 2])
        cx = ay * bz - az * by
        cy = az * bx - ax * bz
        cz = ax * by - ay * bx
        nrm = math.sqrt(cx * cx + cy * cy + cz * cz)
        E[j, 0] = ax
        E[j, 1] = ay
        E[j, 2] = az
        E[j, 3] = bx
        E[j, 4] = by
        E[j, 5] = bz
        E[j, 15] = ka
        if nrm < 1e-15:
            # A zero-length arc has no plane; make its lune empty so only its end points count.
            E[j, 9] = -ax
            E[j, 10] = -ay
            E[j, 11] = -az
            E[j, 12] = -ax
            E[j, 13] = -ay
            E[j, 14] = -az
            continue
        cx /= nrm
        cy /= nrm
        cz /= nrm
        E[j, 6] = cx
        E[j, 7] = cy
        E[j, 8] = cz
        E[j, 9] = cy * az - cz * ay
        E[j, 10] = cz * ax - cx * az
        E[j, 11] = cx * ay - cy * ax
        E[j, 12] = by * cz - bz * cy
        E[j, 13] = bz * cx - bx * cz
        E[j, 14] = bx * cy - by * cx
    return E


@njit(cache=True)
def _cell_corners(x0: float, y0: float, dx: float, dy: float) -> np.ndarray:
    """Unit vectors of a lon/lat cell's corners, widened so their cone holds the whole cell.

    Meridians are great circles, parallels are not: a parallel sags up to about dλ²/16 rad
    equatorward of the great circle through its ends, so latitudes are widened by dλ²/8 (and a
    hair more for rounding). The cell then lies in the cone spanned by the four corners.
    """
    dlam = math.radians(dx)
    m = math.degrees(dlam * dlam / 8.0) * 1.01 + 1e-9
    la0 = max(y0 - m, -90.0)
    la1 = min(y0 + dy + m, 90.0)
    lo0 = x0 - 1e-9
    lo1 = x0 + dx + 1e-9
    c = np.empty((4, 3))
    ux, uy, uz, _ = to_unit(la0, lo0)
    c[0, 0] = ux
    c[0, 1] = uy
    c[0, 2] = uz
    ux, uy, uz, _ = to_unit(la0, lo1)
    c[1, 0] = ux
    c[1, 1] = uy
    c[1, 2] = uz
    ux, uy, uz, _ = to_unit(la1, lo0)
    c[2, 0] = ux
    c[2, 1] = uy
    c[2, 2] = uz
    ux, uy, uz, _ = to_unit(la1, lo1)
    c[3, 0] = ux
    c[3, 1] = uy
    c[3, 2] = uz
    return c


@njit(cache=True)
def _filter_cell(
    E: np.ndarray, cand: np.ndarray, t0: int, t1: int,
    x0: float, y0: float, dx: float, dy: float, out: np.ndarray, o0: int,
) -> int:
    """Write to out[o0:] the candidates that can be nearest to some point of the cell; return count.

    q is the boundary point nearest the cell centre. An edge e can be pruned when every corner c
    is strictly nearer to q than to any point of e: c·q > max over x in e of c·x. The left minus
    the right side is concave in c, so if it is positive at the four corners it is positive on
    their whole cone, which holds the cell: e is then never the nearest edge inside the cell.
    """
    cx, cy, cz, _ = to_unit(y0 + 0.5 * dy, x0 + 0.5 * dx)
    best = np.inf
    bj = -1
    for t in range(t0, t1):
        j = cand[t]
        c2 = _edge_c2(E, j, cx, cy, cz)
        if c2 < best:
            best = c2
            bj = j
    if bj < 0:
        return 0
    qx, qy, qz = _edge_nearest(E, bj, cx, cy, cz)
    corners = _cell_corners(x0, y0, dx, dy)
    dq = np.empty(4)
    for k in range(4):
        ddx = corners[k, 0] - qx
        ddy = corners[k, 1] - qy
        ddz = corners[k, 2] - qz
        # A relative slack of 1e-9 keeps near-ties: rounding may not prune a true candidate.
        dq[k] = (ddx * ddx + ddy * ddy + ddz * ddz) * (1.0 + 1e-9) + 1e-18
    n = 0
    for t in range(t0, t1):
        j = cand[t]
        keep = False
        for k in range(4):
            if _edge_c2(E, j, corners[k, 0], corners[k, 1], corners[k, 2]) <= dq[k]:
                keep = True
                break
        if keep:
            out[o0 + n] = j
            n += 1
    return n


@njit(cache=True, parallel=True)
def refine_lists(
    E: np.ndarray,
    pgrid: np.ndarray, p_start: np.ndarray, p_items: np.ndarray,
    cgrid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate lists of a child grid from its parent's; each child cell lies in one parent cell.

    Grids are float64[6] (x0, y0, dx, dy, nx, ny). The lists stay exact: a child's nearest edge
    for any point is in its parent's list, and ``_filter_cell`` only drops edges that cannot be
    nearest in the child.
    """
    cnx = int(cgrid[4])
    cny = int(cgrid[5])
    pnx = int(pgrid[4])
    pny = int(pgrid[5])
    ncell = cnx * cny
    parent = np.empty(ncell, np.int64)
    cap = np.zeros(ncell + 1, np.int64)
    for c in range(ncell):
        ix = c % cnx
        iy = c // cnx
        xc = cgrid[0] + (ix + 0.5) * cgrid[2]
        yc = cgrid[1] + (iy + 0.5) * cgrid[3]
        pix = min(max(int(math.floor((xc - pgrid[0]) / pgrid[2])), 0), pnx - 1)
        piy = min(max(int(math.floor((yc - pgrid[1]) / pgrid[3])), 0), pny - 1)
        p = piy * pnx + pix
        parent[c] = p
        cap[c + 1] = cap[c] + p_start[p + 1] - p_start[p]
    buf = np.empty(cap[ncell], np.int32)
    cnt = np.zeros(ncell, np.int64)
    for c in prange(ncell):
        ix = c % cnx
        iy = c // cnx
        p = parent[c]
        cnt[c] = _filter_cell(E, p_items, p_start[p], p_start[p + 1],
                              cgrid[0] + ix * cgrid[2], cgrid[1] + iy * cgrid[3],
                              cgrid[2], cgrid[3], buf, cap[c])
    start = np.zeros(ncell + 1, np.int64)
    for c in range(ncell):
        start[c + 1] = start[c] + cnt[c]
    items = np.empty(start[ncell], np.int32)
    for c in prange(ncell):
        for t in range(cnt[c]):
            items[start[c] + t] = buf[cap[c] + t]
    return start, items


@njit(cache=True)
def _seg_box_overlap(
    ax: float, ay: float, bx: float, by: float, x0: float, y0: float, x1: float, y1: float,
) -> bool:
    """Whether segment a-b meets the closed box [x0,x1]x[y0,y1] (Liang-Barsky clip)."""
    t0 = 0.0
    t1 = 1.0
    dx = bx - ax
    dy = by - ay
    for q in range(4):
        if q == 0:
            p = -dx
            r = ax - x0
        elif q == 1:
            p = dx
            r = x1 - ax
        elif q == 2:
            p = -dy
            r = ay - y0
        else:
            p = dy
            r = y1 - ay
        if p == 0.0:
            if r < 0.0:
                return False
        else:
            t = r / p
            if p < 0.0:
                if t > t1:
                    return False
                t0 = max(t0, t)
            else:
                if t < t0:
                    return False
                t1 = min(t1, t)
    return True


@njit(cache=True)
def _pip_bruteforce(x: float, y: float, pe: np.ndarray) -> bool:
    """Crossing number with a ray towards +x (half-open rule); used only while building."""
    inside = False
    for e in range(pe.shape[0]):
        ax = pe[e, 0]
        ay = pe[e, 1]
        bx = pe[e, 2]
        by = pe[e, 3]
        if (ay > y) != (by > y):
            xi = ax + (y - ay) * (bx - ax) / (by - ay)
            if xi > x:
                inside = not inside
    return inside


@njit(cache=True)
def _point_seg_d2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx = bx - ax
    dy = by - ay
    L2 = dx * dx + dy * dy
    t = 0.0
    if L2 > 0.0:
        t = min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / L2))
    qx = ax + t * dx - px
    qy = ay + t * dy - py
    return qx * qx + qy * qy


@njit(cache=True)
def _rasterize(
    pe: np.ndarray, grid: np.ndarray, counts: np.ndarray, start: np.ndarray, items: np.ndarray,
    fill: bool,
) -> None:
    """Count (fill=False) or list (fill=True, CSR ``start``) the edges meeting each grid cell."""
    x0 = grid[0]
    y0 = grid[1]
    dx = grid[2]
    dy = grid[3]
    nx = int(grid[4])
    ny = int(grid[5])
    pos = start[:-1].copy()
    # One part in 1e9 of a cell of slack: an edge on a cell line belongs to both cells.
    ex = dx * 1e-9
    ey = dy * 1e-9
    for e in range(pe.shape[0]):
        ax = pe[e, 0]
        ay = pe[e, 1]
        bx = pe[e, 2]
        by = pe[e, 3]
        ix0 = max(int(math.floor((min(ax, bx) - x0) / dx - 1e-9)), 0)
        ix1 = min(int(math.floor((max(ax, bx) - x0) / dx + 1e-9)), nx - 1)
        iy0 = max(int(math.floor((min(ay, by) - y0) / dy - 1e-9)), 0)
        iy1 = min(int(math.floor((max(ay, by) - y0) / dy + 1e-9)), ny - 1)
        for iy in range(iy0, iy1 + 1):
            for ix in range(ix0, ix1 + 1):
                cx0 = x0 + ix * dx
                cy0 = y0 + iy * dy
                if not _seg_box_overlap(ax, ay, bx, by, cx0 - ex, cy0 - ey, cx0 + dx + ex, cy0 + dy + ey):
                    continue
                c = iy * nx + ix
                if fill:
                    items[pos[c]] = e
                    pos[c] += 1
                else:
                    counts[c] += 1


@njit(cache=True)
def build_pip_grid(
    pe: np.ndarray, grid: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One polygon's PIP grid: (cell_slot, slot_start, slot_items, slot_ref, slot_refin)."""
    x0 = grid[0]
    y0 = grid[1]
    dx = grid[2]
    dy = grid[3]
    nx = int(grid[4])
    ny = int(grid[5])
    ncell = nx * ny
    ne = pe.shape[0]
    # Cells met by each edge, counted then filled (CSR by cell).
    counts = np.zeros(ncell, np.int64)
    start = np.zeros(ncell + 1, np.int64)
    items = np.empty(0, np.int32)
    _rasterize(pe, grid, counts, start, items, False)
    for c in range(ncell):
        start[c + 1] = start[c] + counts[c]
    items = np.empty(start[ncell], np.int32)
    _rasterize(pe, grid, counts, start, items, True)
    # Status of every cell centre, row by row: sorted crossings of the row's centre line.
    centre_in = np.zeros(ncell, np.uint8)
    xs = np.empty(ne)
    for iy in range(ny):
        yc = y0 + (iy + 0.5) * dy
        m = 0
        for e in range(ne):
            ay = pe[e, 1]
            by = pe[e, 3]
            if (ay > yc) != (by > yc):
                xs[m] = pe[e, 0] + (yc - ay) * (pe[e, 2] - pe[e, 0]) / (by - ay)
                m += 1
        row = np.sort(xs[:m])
        k = 0
        for ix in range(nx):
            xc = x0 + (ix + 0.5) * dx
            while k < m and row[k] <= xc:
                k += 1
            # Crossings to the right of the centre decide, as in the +x ray of _pip_bruteforce.
            centre_in[iy * nx + ix] = (m - k) % 2
    nslot = 0
    for c in range(ncell):
        if start[c + 1] > start[c]:
            nslot += 1
    cell_slot = np.empty(ncell, np.int32)
    slot_start = np.zeros(nslot + 1, np.int64)
    slot_items = np.empty(start[ncell], np.int32)
    slot_ref = np.empty((nslot, 2))
    slot_refin = np.zeros(nslot, np.uint8)
    s = 0
    for c in range(ncell):
        if start[c + 1] == start[c]:
            cell_slot[c] = -2 if centre_in[c] else -1
            continue
        cell_slot[c] = s
        n = start[c + 1] - start[c]
        slot_start[s + 1] = slot_start[s] + n
        for t in range(n):
            slot_items[slot_start[s] + t] = items[start[c] + t]
        ix = c % nx
        iy = c // nx
        rx = x0 + (ix + 0.5) * dx
        ry = y0 + (iy + 0.5) * dy
        # The reference point must be clear of every edge of its cell, or the crossing test
        # from it would be ambiguous; the centre almost always is.
        tol = (1e-7 * min(dx, dy)) ** 2
        ok = True
        for t in range(n):
            e = items[start[c] + t]
            if _point_seg_d2(rx, ry, pe[e, 0], pe[e, 1], pe[e, 2], pe[e, 3]) < tol:
                ok = False
                break
        if ok:
            slot_refin[s] = centre_in[c]
        else:
            found = False
            for trial in range(1, 64):
                fx = (trial * 0.6180339887) % 1.0
                fy = (trial * 0.7548776662) % 1.0
                rx = x0 + (ix + 0.05 + 0.9 * fx) * dx
                ry = y0 + (iy + 0.05 + 0.9 * fy) * dy
                good = True
                for t in range(n):
                    e = items[start[c] + t]
                    if _point_seg_d2(rx, ry, pe[e, 0], pe[e, 1], pe[e, 2], pe[e, 3]) < tol:
                        good = False
                        break
                if good:
                    found = True
                    break
            if not found:
                rx = x0 + (ix + 0.5) * dx
                ry = y0 + (iy + 0.5) * dy
            slot_refin[s] = 1 if _pip_bruteforce(rx, ry, pe) else 0
        slot_ref[s, 0] = rx
        slot_ref[s, 1] = ry
        s += 1
    return cell_slot, slot_start, slot_items, slot_ref, slot_refin


# ----------------------------------------------------------------------------- march (tte / cpa)


@njit(cache=True)
def _advance(
    px: float, py: float, pz: float, tx: float, ty: float, tz: float, ang: float,
) -> tuple[float, float, float]:
    c = math.cos(ang)
    s = math.sin(ang)
    return c * px + s * tx, c * py + s * ty, c * pz + s * tz


@njit(cache=True)
def _dist_on_track(
    px: float, py: float, pz: float, tx: float, ty: float, tz: float, ang: float,
    E: np.ndarray, dg: np.ndarray,
    g_start: np.ndarray, g_items: np.ndarray, f_start: np.ndarray, f_items: np.ndarray,
) -> tuple[float, float, float, float]:
    """(metres to the boundary, the same as an angle, lat, lon) of the point ``ang`` radians ahead."""
    x, y, z = _advance(px, py, pz, tx, ty, tz, ang)
    la, lo = from_unit(x, y, z)
    c2, j = nearest_edge(la, lo, x, y, z, E, dg, g_start, g_items, f_start, f_items)
    if j < 0:
        return np.inf, np.inf, la, lo
    return _metres(c2, scale_at(la), E[j, 15]), 2.0 * math.asin(min(1.0, 0.5 * math.sqrt(c2))), la, lo


@njit(cache=True)
def _gap_bound(a: float, b: float, dang: float) -> float:
    """Lowest angular distance to the boundary between two track points ``dang`` radians apart.

    Nothing of the boundary lies within ``a`` of the first point or ``b`` of the second (all
    angles on the unit sphere), so a point between them is at least as far as the nearer
    corner of the two caps' union: with the corner's foot x along the track and height h,
    cos a = cos x cos h and cos b = cos(dang - x) cos h (spherical Pythagoras).
    """
    if dang <= 0.0:
        return min(a, b)
    if a + b <= dang or a >= 0.5 * math.pi or b >= 0.5 * math.pi:
        # Caps that leave a gap, or wider than a hemisphere: only the 1-Lipschitz bound holds.
        return max(0.0, 0.5 * (a + b - dang))
    x = math.atan((math.cos(b) / math.cos(a) - math.cos(dang)) / math.sin(dang))
    if x <= 0.0 or x >= dang:
        # The corner's foot is beyond an end: that end is the nearest point to the corner.
        return min(a, b)
    ch = math.cos(a) / math.cos(x)
    return math.acos(ch) if ch < 1.0 else 0.0


@njit(cache=True)
def march(
    lat: float, lon: float, d0: float, track_deg: float, horizon_m: float,
    E: np.ndarray, dg: np.ndarray,
    g_start: np.ndarray, g_items: np.ndarray, f_start: np.ndarray, f_items: np.ndarray,
    pg: np.ndarray, cell_off: np.ndarray, cell_slot: np.ndarray, slot_start: np.ndarray,
    slot_items: np.ndarray, pe: np.ndarray, samples: np.ndarray, work: np.ndarray, cpa_tol_m: float,
    want_cpa: bool = True,
) -> tuple[float, float, float]:
    """Predicted (metres to entry, closest-approach metres, metres to closest approach).

    The track is the great circle (on the conformal sphere) leaving (lat, lon) at
    ``track_deg``, followed for ``horizon_m``; each step's metres become an angle with the
    scale factor where the step starts, and the angle walked becomes metres again with the
    mean of both ends' scale factors, so along-track distance stays true to about 1e-6.
    The point starts outside at distance ``d0``. Far from the boundary the march steps by
    the distance to it (no crossing can happen within that ball); within ``NEAR_M`` it tests the
    next ``NEAR_M`` of track exactly against the boundary edges. Entry metres is inf when the
    track stays outside within the horizon; the closest approach is then found by branch and
    bound over the samples' intervals: each interval's lowest possible distance follows from
    its end samples (``_gap_bound``), and the interval with the lowest bound is halved until
    none can beat the best found by ``cpa_tol_m``. That makes the closest approach on the
    conformal sphere exact to ``cpa_tol_m`` with no assumption about how many minima an
    interval holds; ``cpa_tol_m`` = 0 halves until ``_CPA_EVALS`` (reference runs).
    ``samples`` (float64[MAX_MARCH_ITER + 1, 4]) and ``work``
    (float64[MAX_MARCH_ITER + _CPA_EVALS, 7]) are scratch space. With ``want_cpa`` False a
    track that stays outside returns (inf, nan, nan) without the closest-approach search.
    """
    px, py, pz, k0 = to_unit(lat, lon)
    az = math.radians(track_deg)
    nz = math.sqrt(px * px + py * py)
    cl = px / nz
    sl = py / nz
    # Unit tangent of the track: north and east combined at the track's azimuth.
    tx = math.cos(az) * (-pz * cl) + math.sin(az) * (-sl)
    ty = math.cos(az) * (-pz * sl) + math.sin(az) * cl
    tz = math.cos(az) * nz
    tn = math.sqrt(tx * tx + ty * ty + tz * tz)
    tx /= tn
    ty /= tn
    tz /= tn
    s = 0.0
    ang = 0.0
    k = k0
    d = d0
    la = lat
    lo = lon
    samples[0, 0] = 0.0
    samples[0, 1] = 0.0
    samples[0, 2] = d0
    # The search below compares angles exactly, so the start's angle is taken from its nearest
    # edge rather than from d0 (whose metres mix two scale factors).
    c20, j0 = nearest_edge(lat, lon, px, py, pz, E, dg, g_start, g_items, f_start, f_items)
    samples[0, 3] = 2.0 * math.asin(min(1.0, 0.5 * math.sqrt(c20))) if j0 >= 0 else np.inf
    ns = 1
    for _ in range(MAX_MARCH_ITER):
        if s >= horizon_m:
            break
        m_per_rad = A_WGS84 * k
        if d >= NEAR_M:
            step = min(max(d * _FAR_STEP, NEAR_M), d * _STEP_SAFETY, horizon_m - s)
        else:
            step = min(NEAR_M, horizon_m - s)
            npieces = int(math.ceil(step / _SUB_M))
            a0 = s
            la0 = la
            lo0 = lo
            for q in range(npieces):
                a1 = s + step * (q + 1) / npieces
                x1, y1, z1 = _advance(px, py, pz, tx, ty, tz, ang + (a1 - s) / m_per_rad)
                la1, lo1 = from_unit(x1, y1, z1)
                t = _segment_first_crossing(lo0, la0, lo1, la1, pg, cell_off, cell_slot,
                                            slot_start, slot_items, pe)
                if t <= 1.0:
                    entry = a0 + t * (a1 - a0)
                    return entry, 0.0, entry
                a0 = a1
                la0 = la1
                lo0 = lo1
        # The horizon is reached in planned metres: the trapezoid's metres differ by ~1e-4 of
        # the step, and chasing that remainder would cost evaluations for nothing.
        last = step >= horizon_m - s
        dang = step / m_per_rad
        ang += dang
        d, th, la, lo = _dist_on_track(px, py, pz, tx, ty, tz, ang, E, dg, g_start, g_items, f_start, f_items)
        k_end = scale_at(la)
        # Metres of the step by the trapezoid rule: with the start's scale alone, a 1,000 km step
        # would be off by ~250 m (a second of flight) where the scale factor changes fastest.
        s += dang * A_WGS84 * 0.5 * (k + k_end)
        k = k_end
        samples[ns, 0] = s
        samples[ns, 1] = ang
        samples[ns, 2] = d
        samples[ns, 3] = th
        ns += 1
        if last:
            break
    if not want_cpa:
        return np.inf, np.nan, np.nan
    # Closest approach: branch and bound over the sample intervals, on the unit sphere where
    # ``_gap_bound`` is exact. ``work`` rows are intervals (a, b radians along the track, their
    # angular distances fa, fb, the lower bound, metres per radian, metres at a). The interval
    # with the lowest bound is halved until no interval can beat the best by the tolerance.
    # The search runs on angles; the answer is the least metres seen, which differ from angles
    # times one scale factor by under 0.01 % (see the module docstring).
    best_t = samples[0, 3]
    best_d = d0
    best_s = 0.0
    for i in range(1, ns):
        best_t = min(best_t, samples[i, 3])
        if samples[i, 2] < best_d:
            best_d = samples[i, 2]
            best_s = samples[i, 0]
    tol = cpa_tol_m / (A_WGS84 * k0)
    nw = 0
    for q in range(ns - 1):
        dang = samples[q + 1, 1] - samples[q, 1]
        lb = _gap_bound(samples[q, 3], samples[q + 1, 3], dang)
        if dang > 0.0 and lb < best_t - tol:
            work[nw, 0] = samples[q, 1]
            work[nw, 1] = samples[q + 1, 1]
            work[nw, 2] = samples[q, 3]
            work[nw, 3] = samples[q + 1, 3]
            work[nw, 4] = lb
            work[nw, 5] = (samples[q + 1, 0] - samples[q, 0]) / dang
            work[nw, 6] = samples[q, 0]
            nw += 1
    for _ in range(_CPA_EVALS):
        k = -1
        lb = best_t - tol
        for i in range(nw):
            if work[i, 4] < lb:
                lb = work[i, 4]
                k = i
        if k < 0:
            break
        a = work[k, 0]
        b = work[k, 1]
        mid = 0.5 * (a + b)
        dm, tm, _, _ = _dist_on_track(px, py, pz, tx, ty, tz, mid, E, dg, g_start, g_items, f_start, f_items)
        best_t = min(best_t, tm)
        if dm < best_d:
            best_d = dm
            best_s = work[k, 6] + (mid - a) * work[k, 5]
        # Halve: the left half stays in row k, the right half takes a new row.
        work[nw, 0] = mid
        work[nw, 1] = b
        work[nw, 2] = tm
        work[nw, 3] = work[k, 3]
        work[nw, 4] = _gap_bound(tm, work[k, 3], b - mid)
        work[nw, 5] = work[k, 5]
        work[nw, 6] = work[k, 6] + (mid - a) * work[k, 5]
        nw += 1
        work[k, 1] = mid
        work[k, 3] = tm
        work[k, 4] = _gap_bound(work[k, 2], tm, mid - a)
    return np.inf, best_d, best_s


# ----------------------------------------------------------------------------- full scoring


@njit(cache=True)
def score_points(
    lat: np.ndarray, lon: np.ndarray, alt_ft: np.ndarray, gs_kt: np.ndarray, trk: np.ndarray,
    sov: tuple, dist: tuple, nb: tuple, nb_codes: np.ndarray, cover: np.ndarray,
    uf: tuple, uf_lo: np.ndarray, uf_hi: np.ndarray,
    ring_m: np.ndarray, horizon_s: float, min_speed_kt: float, cpa_tol_m: float,
    code_mex: int, code_intl: int, code_unk: int, want_cpa: bool,
    o_valid: np.ndarray, o_inside: np.ndarray, o_dist: np.ndarray, o_bear: np.ndarray,
    o_zone: np.ndarray, o_country: np.ndarray, o_tte: np.ndarray, o_cpa_m: np.ndarray,
    o_cpa_s: np.ndarray, o_fences: np.ndarray,
) -> None:
    """Everything ``Geofence.score`` returns, for every point; see ``streams.geo.fence.Scores``.

    ``want_cpa`` False leaves ``o_cpa_m``/``o_cpa_s`` NaN for tracks that stay outside: the
    closest-approach search is most of the prediction's cost and the track engine does not use it.
    """
    pg, cell_off, cell_slot, slot_start, slot_items, slot_ref, slot_refin, pe = sov
    E, dg, g_start, g_items, f_start, f_items = dist
    n_pg, n_off, n_slot, n_sst, n_sit, n_ref, n_rin, n_pe = nb
    u_pg, u_off, u_slot, u_sst, u_sit, u_ref, u_rin, u_pe = uf
    n_nb = nb_codes.shape[0]
    n_uf = uf_lo.shape[0]
    n_ring = ring_m.shape[0]
    samples = np.empty((MAX_MARCH_ITER + 1, 4))
    work = np.empty((MAX_MARCH_ITER + _CPA_EVALS, 7))
    for i in range(lat.shape[0]):
        la = lat[i]
        lo = lon[i]
        ok = math.isfinite(la) and math.isfinite(lo) and -90.0 <= la <= 90.0 and -180.0 <= lo <= 180.0
        o_valid[i] = ok
        if not ok:
            o_inside[i] = False
            o_dist[i] = np.nan
            o_bear[i] = np.nan
            o_zone[i] = -1
            o_country[i] = code_unk
            o_tte[i] = np.nan
            o_cpa_m[i] = np.nan
            o_cpa_s[i] = np.nan
            for f in range(n_uf):
                o_fences[i, f] = False
            continue
        inside = pip_one(0, lo, la, pg, cell_off, cell_slot, slot_start, slot_items, slot_ref,
                         slot_refin, pe)
        d, b = unsigned_distance(la, lo, E, dg, g_start, g_items, f_start, f_items)
        o_inside[i] = inside
        o_dist[i] = -d if inside else d
        o_bear[i] = b
        if inside:
            o_zone[i] = 0
            o_country[i] = code_mex
        else:
            z = -1
            for r in range(n_ring):
                if d <= ring_m[r]:
                    z = r + 1
                    break
            o_zone[i] = z
            code = code_unk
            if cover[0] <= lo <= cover[2] and cover[1] <= la <= cover[3]:
                code = code_intl
            for k in range(n_nb):
                if _in_grid(n_pg, k, lo, la) and pip_one(k, lo, la, n_pg, n_off, n_slot, n_sst, n_sit,
                                                           n_ref, n_rin, n_pe):
                    code = nb_codes[k]
                    break
            o_country[i] = code
        alt = alt_ft[i]
        for f in range(n_uf):
            lo_f = uf_lo[f]
            hi_f = uf_hi[f]
            banded = math.isfinite(lo_f) or math.isfinite(hi_f)
            in_band = True
            if banded:
                if not math.isfinite(alt):
                    in_band = False
                else:
                    if math.isfinite(lo_f) and alt < lo_f:
                        in_band = False
                    if math.isfinite(hi_f) and alt > hi_f:
                        in_band = False
            o_fences[i, f] = in_band and _in_grid(u_pg, f, lo, la) and pip_one(
                f, lo, la, u_pg, u_off, u_slot, u_sst, u_sit, u_ref, u_rin, u_pe)
        if inside:
            o_tte[i] = 0.0
            o_cpa_m[i] = -d
            o_cpa_s[i] = 0.0
            continue
        g = gs_kt[i]
        t = trk[i]
        if not (math.isfinite(g) and math.isfinite(t)) or g < min_speed_kt:
            o_tte[i] = np.nan
            o_cpa_m[i] = np.nan
            o_cpa_s[i] = np.nan
            continue
        v = g * KT
        if not want_cpa and d > v * horizon_s * _UNREACHABLE + 1.0:
            # The boundary is farther than the horizon's whole track: no entry is possible, and
            # the march would only step out to the horizon to say so.
            o_tte[i] = np.nan
            o_cpa_m[i] = np.nan
            o_cpa_s[i] = np.nan
            continue
        entry_m, cpa_m, cpa_at = march(la, lo, d, t % 360.0, v * horizon_s, E, dg, g_start,
                                       g_items, f_start, f_items, pg, cell_off, cell_slot,
                                       slot_start, slot_items, pe, samples, work, cpa_tol_m, want_cpa)
        o_tte[i] = entry_m / v if math.isfinite(entry_m) else np.nan
        o_cpa_m[i] = cpa_m
        o_cpa_s[i] = cpa_at / v
