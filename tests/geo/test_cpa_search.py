"""The bounded closest-approach search against a full search and a dense walk of the same track.

Points are the real DAL1812 flight (readsb trace of ac671b: Belize, Yucatán, the Gulf and on
to the US), with the ground speed and track the aircraft reported.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from streams.geo import kernels as K
from streams.geo.fence import DEFAULT_CPA_TOL_M, Geofence, Scores
from streams.parsers import parse_bytes

pytestmark = pytest.mark.unit

TRACE = Path(__file__).parents[1] / "data" / "readsb_trace_full_ac671b.json.gz"
KT = 1852.0 / 3600.0
HORIZON_S = 7200.0
# cpa_m is the least metres of a search run on unit-sphere angles; metres are angles times
# scale factors that vary along the track, so the two minima may sit apart by this fraction.
REL = 1e-4


def _flight() -> dict[str, np.ndarray]:
    res = parse_bytes("trace", gzip.decompress(TRACE.read_bytes()))
    pos = res.positions

    def col(name: str) -> np.ndarray:
        return np.array([np.nan if getattr(p, name) is None else float(getattr(p, name)) for p in pos])

    return {"lat": col("lat"), "lon": col("lon"), "gs": col("ground_speed_kt"), "trk": col("track_deg")}


def _dense_track(
    fence: Geofence, lat: float, lon: float, trk: float, length_m: float, step_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Metres along and metres to the boundary every ``step_m`` of the march's great circle."""
    px, py, pz, k0 = K.to_unit(lat, lon)
    az = math.radians(trk)
    nz = math.hypot(px, py)
    cl, sl = px / nz, py / nz
    t = np.array(
        [
            math.cos(az) * (-pz * cl) - math.sin(az) * sl,
            math.cos(az) * (-pz * sl) + math.sin(az) * cl,
            math.cos(az) * nz,
        ]
    )
    t /= np.linalg.norm(t)
    s = np.arange(0.0, length_m + step_m, step_m)
    ang = s / (K.A_WGS84 * k0)
    x, y, z = (np.cos(ang) * c + np.sin(ang) * tc for c, tc in zip((px, py, pz), t, strict=True))
    chi = np.arctan2(z, np.hypot(x, y))
    phi = chi + sum(c * np.sin(2 * m * chi) for m, c in enumerate((K._C2, K._C4, K._C6, K._C8), start=1))
    d, _ = fence.distance(np.degrees(phi), np.degrees(np.arctan2(y, x)))
    return s, d


Scored = tuple[dict[str, np.ndarray], Scores, Scores, Geofence]


@pytest.fixture(scope="module")
def scored() -> Scored:
    tr = _flight()
    fast = Geofence.load(horizon_s=HORIZON_S)
    full = Geofence.load(horizon_s=HORIZON_S, cpa_tol_m=0.0)
    a = fast.score(tr["lat"], tr["lon"], None, tr["gs"], tr["trk"])
    b = full.score(tr["lat"], tr["lon"], None, tr["gs"], tr["trk"])
    return tr, a, b, fast


def test_bounded_search_is_within_tolerance_of_the_full_search(scored: Scored) -> None:
    _, a, b, _ = scored
    # Entry does not depend on the closest-approach search at all.
    assert np.array_equal(a.tte_s, b.tte_s, equal_nan=True)
    assert np.isfinite(a.tte_s).sum() > 50
    miss = np.isfinite(a.cpa_m) & np.isnan(a.tte_s)
    assert miss.sum() > 1000
    over = a.cpa_m[miss] - b.cpa_m[miss]
    # The full search continues where the bounded one stops, so it is never worse ...
    assert (over >= 0.0).all()
    # ... and the bounded one stops within the tolerance (plus the metres/angle spread).
    assert (over <= DEFAULT_CPA_TOL_M + REL * b.cpa_m[miss]).all()
    # Most points need no refinement the full search could improve on.
    assert np.median(over) < 1.0


def test_closest_approach_matches_a_dense_walk_of_the_track(scored: Scored) -> None:
    tr, a, _, fence = scored
    miss = np.nonzero(np.isfinite(a.cpa_m) & np.isnan(a.tte_s))[0]
    checked = 0
    for i in miss[::20]:
        v = tr["gs"][i] * KT
        horizon_m = v * HORIZON_S
        # The march converts metres to angles step by step, the walk with one scale factor:
        # walk 0.2 % further so its horizon covers the march's.
        s, d = _dense_track(fence, tr["lat"][i], tr["lon"][i], tr["trk"][i] % 360.0, horizon_m * 1.002, 50.0)
        ref = d.min()
        # Nothing on the track is closer than the walk finds (50 m steps miss < 1 m here) ...
        assert a.cpa_m[i] >= ref - 1.0, i
        j = int(np.argmin(d))
        if s[j] > 0.99 * horizon_m:
            continue  # the walk's minimum lies where its horizon and the march's differ
        checked += 1
        # ... and the search stops within its tolerance of the walk's minimum ...
        assert a.cpa_m[i] <= ref + DEFAULT_CPA_TOL_M + REL * ref, i
        # ... at a time when the walk is that close too (cpa_s locates cpa_m).
        at = np.interp(a.cpa_s[i] * v, s, d)
        assert abs(at - a.cpa_m[i]) <= 2 * DEFAULT_CPA_TOL_M + 2 * REL * ref + 0.002 * a.cpa_s[i] * v, i
    assert checked > 50


def test_a_tolerance_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="cpa_tol_m"):
        Geofence.load(cpa_tol_m=-1.0)


@pytest.mark.parametrize("horizon_s", [900.0, 3600.0])
def test_without_the_closest_approach_entry_predictions_are_unchanged(horizon_s: float) -> None:
    """The engine's call (no closest approach) skips the march for points the horizon cannot
    reach; its entry predictions must equal those of the full march, point for point."""
    tr = _flight()
    fence = Geofence.load(horizon_s=horizon_s)
    full = fence.score(tr["lat"], tr["lon"], None, tr["gs"], tr["trk"])
    short = fence.score(tr["lat"], tr["lon"], None, tr["gs"], tr["trk"], closest_approach=False)
    reach = tr["gs"] * KT * horizon_s
    skipped = (~full.inside) & (full.dist_m > reach * K._UNREACHABLE + 1.0)
    assert skipped.sum() > 100 and (~skipped & ~full.inside).sum() > 20  # both paths taken
    np.testing.assert_array_equal(short.tte_s, full.tte_s)
    assert np.isnan(short.tte_s[skipped]).all()
    for name in ("inside", "dist_m", "bearing_deg", "zone", "country"):
        np.testing.assert_array_equal(getattr(short, name), getattr(full, name))
