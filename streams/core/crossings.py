"""Crossings inside a coverage hole: where and when the aircraft most likely crossed the line.

An entry or exit is reported at the first position of the new state. When the position before
it is a minute or more earlier (a hole in receiver coverage), that first position can be far
from the line: the readsb trace of DAL1812 (ac671b) leaves Yucatán after a 48-minute hole, and
its first fix outside is 416 km from the boundary. This module moves such a transition to the
estimated crossing point: the point where the great circle from the last fix on one side to the
first fix on the other crosses the sovereign boundary (found with the real geofence, so it is
the boundary itself, not an interpolation of distances), at the time interpolated along that
arc (constant ground speed over the hole). The alert says it is an estimate and how long the hole was.

Pure: arrays in, arrays out; the geofence is passed in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core import kernels as K

F64 = npt.NDArray[np.float64]

# Points scored along the arc before refining: 64 bracket the first boundary crossing to 1/64 of
# the arc (~7 km of DAL1812's 450 km), and a hole-crossing arc rarely crosses the line twice.
_SAMPLES = 64
# Bisection steps after bracketing: 1/64 / 2^16 of a 1,000 km arc is ~0.2 m, well below the
# position error of the fixes the estimate is built from.
_REFINE = 16


def _unit(lat: float, lon: float) -> F64:
    la, lo = math.radians(lat), math.radians(lon)
    return np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])


def _slerp(a: F64, b: F64, f: F64) -> tuple[F64, F64]:
    """Points at fractions ``f`` of the great-circle arc from unit vector a to b: (lat, lon) degrees."""
    omega = math.acos(max(-1.0, min(1.0, float(np.dot(a, b)))))
    if omega < 1e-12:
        p = np.outer(np.ones_like(f), a)
    else:
        so = math.sin(omega)
        p = (np.sin((1.0 - f) * omega)[:, None] * a + np.sin(f * omega)[:, None] * b) / so
    lat = np.degrees(np.arctan2(p[:, 2], np.hypot(p[:, 0], p[:, 1])))
    lon = np.degrees(np.arctan2(p[:, 1], p[:, 0]))
    return lat, lon


def _inside(geofence: Any, lat: F64, lon: F64) -> npt.NDArray[np.bool_]:
    nan = np.full(lat.size, np.nan)
    return np.asarray(geofence.score(lat, lon, nan, nan, nan, closest_approach=False).inside, dtype=np.bool_)


def crossing_point(geofence: Any, lat0: float, lon0: float, lat1: float, lon1: float,
                   into: bool) -> float | None:
    """Fraction of the arc from fix 0 to fix 1 at which it first crosses the sovereign boundary
    in the direction ``into`` (True: outside -> inside), or None when it does not."""
    a, b = _unit(lat0, lon0), _unit(lat1, lon1)
    f = np.linspace(0.0, 1.0, _SAMPLES + 1)
    la, lo = _slerp(a, b, f)
    ins = _inside(geofence, la, lo)
    hit = np.flatnonzero((ins[1:] == into) & (ins[:-1] != into))
    if not hit.size:
        return None
    lo_f, hi_f = float(f[hit[0]]), float(f[hit[0] + 1])
    for _ in range(_REFINE):
        mid = 0.5 * (lo_f + hi_f)
        ml, mo = _slerp(a, b, np.array([mid]))
        if bool(_inside(geofence, ml, mo)[0]) == into:
            hi_f = mid
        else:
            lo_f = mid
    return 0.5 * (lo_f + hi_f)


def estimate_hole_crossings(E: F64, geofence: Any, hole_s: float) -> npt.NDArray[np.bool_]:
    """Move entries/exits of the sovereign zone (zone 0) that follow a hole of at least ``hole_s``
    to the estimated crossing point and time, in place. Returns which rows were moved.

    A row qualifies when the fix before the hole is on the other side of the boundary (signed
    distance: negative inside). Its position becomes the crossing point, its time the
    interpolated time, its distance to the boundary 0; altitude, speed and track stay those of
    the first fix after the hole (the estimate says nothing about them)."""
    moved = np.zeros(E.shape[0], dtype=np.bool_)
    for r in range(E.shape[0]):
        ev = E[r]
        code = int(ev[K.E_CODE])
        if code not in (K.TR_ENTERED, K.TR_EXITED) or int(ev[K.E_ZONE]) != 0:
            continue
        gap, pd = float(ev[K.E_GAP]), float(ev[K.E_PREV_DIST])
        if not (gap >= hole_s) or not math.isfinite(pd) or not math.isfinite(float(ev[K.E_PREV_LAT])):
            continue
        into = code == K.TR_ENTERED
        if (pd < 0.0) == into:  # the fix before the hole was already on the new side
            continue
        f = crossing_point(geofence, float(ev[K.E_PREV_LAT]), float(ev[K.E_PREV_LON]),
                           float(ev[K.E_LAT]), float(ev[K.E_LON]), into)
        if f is None:
            continue
        la, lo = _slerp(_unit(float(ev[K.E_PREV_LAT]), float(ev[K.E_PREV_LON])),
                        _unit(float(ev[K.E_LAT]), float(ev[K.E_LON])), np.array([f]))
        t0 = float(ev[K.E_PREV_T])
        ev[K.E_T] = t0 + f * (float(ev[K.E_T]) - t0)
        ev[K.E_LAT], ev[K.E_LON] = float(la[0]), float(lo[0])
        ev[K.E_DIST] = 0.0
        ev[K.E_TTE] = math.nan
        moved[r] = True
    return moved
