"""The geofence: Mexico's sovereign airspace, approach rings, neighbours and user fences.

This module owns ``Geofence`` (loading the packaged zones and building their indexes once per
process, scoring batches of positions through the numba kernels) and ``Scores`` (the per-point
answers). It reads only the zone files shipped inside the package and, when asked, one user
fence file; it never reads the environment.

Semantics of ``Scores`` (arrays of length n):

* ``valid``: lat/lon finite and within ±90/±180. Invalid rows carry NaN distances, zone -1,
  country 'UNK' and no fences; callers turn them into dead letters.
* ``inside``: inside Mexico's sovereign airspace (land + 12 nm territorial sea; no upper limit).
* ``dist_m``: signed geodesic distance to the sovereign boundary in metres, negative inside.
* ``bearing_deg``: initial bearing (true, 0-360) from the point to the nearest boundary point;
  for a point inside, the way out. NaN only exactly on the boundary.
* ``zone``: 0 inside; k (1-based) for the smallest ring with 0 < dist <= ring k; -1 beyond all.
  Rings are distance buffers, not legal zones (no EEZ or FIR data is available).
* ``country``: int8 code of the airspace (``COUNTRY_NAMES``): MEX, a neighbour, INTL
  (international), or UNK outside the neighbour data's coverage box.
* ``tte_s``: seconds until the aircraft enters sovereign airspace if it holds its ground track
  (great circle) and ground speed; NaN if it does not enter within ``horizon_s``, or has no
  (or less than ``min_speed_kt``) speed or track. 0 for a point already inside.
* ``cpa_m``/``cpa_s``: closest predicted approach to the sovereign boundary along the same track
  within the horizon, and when. ``cpa_m`` is at most ``cpa_tol_m`` (default 25 m) above the
  closest approach on the conformal sphere, rendered in metres like ``dist_m`` (to ~0.01 %);
  ``cpa_s`` is when that distance is reached. If the track enters: 0 m at ``tte_s``. Already inside:
  ``cpa_m`` = ``dist_m`` (negative, how deep) and ``cpa_s`` = 0. No speed/track: NaN. Also NaN
  for a track that stays outside when ``score(..., closest_approach=False)`` skips the search.
* ``fences``: bool[n, n_fences], inside each user fence's polygon and altitude band. A fence with
  a band needs a known altitude: a NaN altitude is inside only fences with no band at all.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streams.geo import kernels as K
from streams.geo.countries import (
    CODE_INTL,
    CODE_MEX,
    CODE_UNK,
    COUNTRY_CODES,
    COUNTRY_NAMES,
    COVERAGE_BOX,
)
from streams.geo.index import DistIndex, PipPack, build_distance_index, build_pip_pack, polygon_edges
from streams.geo.zonefiles import (
    NEIGHBOURS_FILE,
    SOVEREIGN_FILE,
    UserFence,
    load_fence_file,
    load_packaged,
)

NM_M = K.NM
# Defaults of the approach rings (nm beyond the 12 nm boundary): 12 nm doubles the territorial sea
# (where the contiguous zone would be), 50 and 100 nm give about 6 and 12 minutes' warning at 500 kt.
DEFAULT_RINGS_NM: tuple[float, ...] = (12.0, 50.0, 100.0)
# Prediction horizon: beyond about two hours a straight-line extrapolation of a track says little
# (aircraft turn, climb, land), and two hours at 500 kt (about 1,850 km) already spans every
# approach to Mexico.
DEFAULT_HORIZON_S = 7200.0
# Below this ground speed the ADS-B track angle is noise (taxiing, hovering), so no prediction.
DEFAULT_MIN_SPEED_KT = 5.0
# Closest-approach tolerance: a straight-track prediction minutes ahead is good to kilometres, so
# 25 m is ample; the search's cost grows only with log(distance / tolerance) / 2.
DEFAULT_CPA_TOL_M = 25.0
# int8 zone codes leave room for this many rings after 0 (sovereign) and -1 (beyond).
MAX_RINGS = 126


@dataclass(frozen=True, slots=True)
class Scores:
    """Per-point answers of ``Geofence.score`` (see the module docstring for meanings)."""

    valid: np.ndarray
    inside: np.ndarray
    dist_m: np.ndarray
    bearing_deg: np.ndarray
    zone: np.ndarray
    country: np.ndarray
    tte_s: np.ndarray
    cpa_m: np.ndarray
    cpa_s: np.ndarray
    fences: np.ndarray

    def __len__(self) -> int:
        return int(self.inside.shape[0])

    def country_names(self) -> list[str]:
        return [COUNTRY_NAMES[int(c)] for c in self.country]


@dataclass(frozen=True, slots=True)
class _Zones:
    """The process-wide, immutable part: sovereign and neighbour indexes."""

    sov_pip: PipPack
    sov_dist: DistIndex
    sov_vertices: int
    sov_polygons: int
    nb_pip: PipPack
    nb_codes: np.ndarray
    nb_names: tuple[str, ...]
    source: str


_ZONES: dict[str, _Zones] = {}
_ZONES_LOCK = threading.Lock()


def _build_zones(sovereign_file: str, neighbours_file: str | None) -> _Zones:
    sov = load_packaged(sovereign_file)
    polys = [p for _, ps in sov for p in ps]
    pe = polygon_edges(polys)
    nb_sets: list[np.ndarray] = []
    nb_codes: list[int] = []
    nb_names: list[str] = []
    if neighbours_file is not None:
        for props, ps in load_packaged(neighbours_file):
            iso = str(props.get("isoA3", ""))
            if iso not in COUNTRY_CODES:
                raise ValueError(f"{neighbours_file}: neighbour {iso!r} has no country code")
            nb_sets.append(polygon_edges(ps))
            nb_codes.append(COUNTRY_CODES[iso])
            nb_names.append(iso)
    return _Zones(
        sov_pip=build_pip_pack([pe]),
        sov_dist=build_distance_index(pe),
        sov_vertices=sum(int(r.shape[0]) for p in polys for r in p),
        sov_polygons=len(polys),
        nb_pip=build_pip_pack(nb_sets),
        nb_codes=np.asarray(nb_codes, dtype=np.int8),
        nb_names=tuple(nb_names),
        source=sovereign_file,
    )


def _zones(sovereign_file: str, with_neighbours: bool) -> _Zones:
    key = f"{sovereign_file}|{with_neighbours}"
    with _ZONES_LOCK:
        z = _ZONES.get(key)
        if z is None:
            z = _build_zones(sovereign_file, NEIGHBOURS_FILE if with_neighbours else None)
            _ZONES[key] = z
        return z


def _as_f64(name: str, a: Sequence[float] | np.ndarray | None, n: int | None) -> np.ndarray:
    if a is None:
        if n is None:
            raise ValueError(f"{name} is required")
        return np.full(n, np.nan)
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values, lat has {n}")
    return arr


class Geofence:
    """Scores positions against Mexico's sovereign airspace, approach rings and user fences.

    Build with ``Geofence.load``; the sovereign and neighbour indexes are built once per process
    and shared by every instance, user fences and rings are per instance. Instances are
    immutable and safe to share between threads.
    """

    def __init__(
        self,
        zones: _Zones,
        rings_nm: Sequence[float],
        fences: Sequence[UserFence],
        horizon_s: float,
        min_speed_kt: float,
        cpa_tol_m: float = DEFAULT_CPA_TOL_M,
    ) -> None:
        rings = [float(r) for r in rings_nm]
        if len(rings) > MAX_RINGS:
            raise ValueError(f"at most {MAX_RINGS} rings")
        if any(not math.isfinite(r) or r <= 0 for r in rings):
            raise ValueError(f"ring distances must be positive nautical miles, got {rings}")
        if any(b <= a for a, b in itertools.pairwise(rings)):
            raise ValueError(f"ring distances must be strictly increasing, got {rings}")
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"horizon_s must be positive, got {horizon_s}")
        if not (math.isfinite(min_speed_kt) and min_speed_kt >= 0):
            raise ValueError(f"min_speed_kt must be >= 0, got {min_speed_kt}")
        if not (math.isfinite(cpa_tol_m) and cpa_tol_m >= 0):
            raise ValueError(f"cpa_tol_m must be >= 0, got {cpa_tol_m}")
        self._z = zones
        self.rings_nm: tuple[float, ...] = tuple(rings)
        self.ring_m: np.ndarray = np.asarray(rings, dtype=np.float64) * NM_M
        self.ring_m.setflags(write=False)
        self.fences: tuple[UserFence, ...] = tuple(fences)
        self.fence_names: list[str] = [f.name for f in self.fences]
        self.horizon_s = float(horizon_s)
        self.min_speed_kt = float(min_speed_kt)
        self.cpa_tol_m = float(cpa_tol_m)
        self._uf = build_pip_pack([polygon_edges(f.polygons) for f in self.fences])
        self._uf_lo = np.array([np.nan if f.lower_ft is None else f.lower_ft for f in self.fences], dtype=np.float64)
        self._uf_hi = np.array([np.nan if f.upper_ft is None else f.upper_ft for f in self.fences], dtype=np.float64)
        self._cover = np.asarray(COVERAGE_BOX, dtype=np.float64)

    @classmethod
    def load(
        cls,
        rings_nm: Sequence[float] = DEFAULT_RINGS_NM,
        user_fences: str | Path | None = None,
        *,
        horizon_s: float = DEFAULT_HORIZON_S,
        min_speed_kt: float = DEFAULT_MIN_SPEED_KT,
        cpa_tol_m: float = DEFAULT_CPA_TOL_M,
        sovereign_file: str = SOVEREIGN_FILE,
    ) -> Geofence:
        """Load the packaged zones (cached per process) plus an optional user fence file.

        ``sovereign_file`` names a packaged zone file; the default is the 10 m polygon, and
        ``mexico_sovereign_1000m.geojson`` exists for the benchmark. ``cpa_tol_m`` is how far
        above the true closest approach ``cpa_m`` may be; 0 searches to the evaluation cap (for
        reference runs only, several times slower). Raises ``FenceFileError``
        for a bad fence file and ``ValueError`` for bad rings or limits.
        """
        fences = load_fence_file(user_fences) if user_fences is not None else []
        zones = _zones(sovereign_file, with_neighbours=True)
        return cls(zones, rings_nm, fences, horizon_s, min_speed_kt, cpa_tol_m)

    # ------------------------------------------------------------------ introspection

    def zone_names(self) -> list[str]:
        """Zone labels by code: index 0 is sovereign, index k is ring k."""
        # A ring is named by what it is, in nautical miles (what aviation readers use) and km:
        # "ring 12 nm (buffer)" read like the 12 nm territorial sea itself.
        return ["MEX sovereign"] + [f"within {_fmt_nm(r)} nm ({r * 1.852:.0f} km) beyond the sovereign limit"
                                    for r in self.rings_nm]

    @property
    def sovereign_vertices(self) -> int:
        return self._z.sov_vertices

    @property
    def sovereign_polygons(self) -> int:
        return self._z.sov_polygons

    @property
    def neighbour_names(self) -> tuple[str, ...]:
        return self._z.nb_names

    @property
    def index_bytes(self) -> int:
        return self._z.sov_pip.nbytes + self._z.sov_dist.nbytes + self._z.nb_pip.nbytes + self._uf.nbytes

    # ------------------------------------------------------------------ kernels

    def warm(self) -> None:
        """Compile (or load from numba's on-disk cache) every kernel ``score`` uses."""
        one = np.array([23.0])
        self.score(one, np.array([-110.0]), np.array([30000.0]), np.array([450.0]), np.array([90.0]))

    def score(
        self,
        lat: Sequence[float] | np.ndarray,
        lon: Sequence[float] | np.ndarray,
        alt_ft: Sequence[float] | np.ndarray | None = None,
        gs_kt: Sequence[float] | np.ndarray | None = None,
        track_deg: Sequence[float] | np.ndarray | None = None,
        closest_approach: bool = True,
    ) -> Scores:
        """Score a batch of positions; all arrays float64 of one length, NaN where unknown.

        ``alt_ft``, ``gs_kt`` and ``track_deg`` may be None (all unknown). ``closest_approach``
        False skips the predicted closest approach of tracks that stay outside (``cpa_m`` and
        ``cpa_s`` NaN there), which is most of the prediction's cost. Raises ``ValueError``
        when lengths differ or an array is not one-dimensional.
        """
        la = _as_f64("lat", lat, None)
        n = la.shape[0]
        lo = _as_f64("lon", lon, n)
        alt = _as_f64("alt_ft", alt_ft, n)
        gs = _as_f64("gs_kt", gs_kt, n)
        trk = _as_f64("track_deg", track_deg, n)
        nf = len(self.fences)
        s = Scores(
            valid=np.empty(n, np.bool_),
            inside=np.empty(n, np.bool_),
            dist_m=np.empty(n),
            bearing_deg=np.empty(n),
            zone=np.empty(n, np.int8),
            country=np.empty(n, np.int8),
            tte_s=np.empty(n),
            cpa_m=np.empty(n),
            cpa_s=np.empty(n),
            fences=np.zeros((n, nf), np.bool_),
        )
        if n == 0:
            return s
        z = self._z
        K.score_points(
            la, lo, alt, gs, trk,
            z.sov_pip.as_tuple(), z.sov_dist.as_tuple(), z.nb_pip.as_tuple(), z.nb_codes, self._cover,
            self._uf.as_tuple(), self._uf_lo, self._uf_hi,
            self.ring_m, self.horizon_s, self.min_speed_kt, self.cpa_tol_m,
            CODE_MEX, CODE_INTL, CODE_UNK, closest_approach,
            s.valid, s.inside, s.dist_m, s.bearing_deg, s.zone, s.country, s.tte_s, s.cpa_m, s.cpa_s,
            s.fences,
        )
        return s

    # Lower-level entry points, used by the benchmark to time each kernel on its own.

    def contains(self, lat: np.ndarray, lon: np.ndarray, parallel: bool = False) -> np.ndarray:
        """Inside sovereign airspace, nothing else computed."""
        la = _as_f64("lat", lat, None)
        lo = _as_f64("lon", lon, la.shape[0])
        out = np.empty(la.shape[0], np.bool_)
        if parallel:
            K.contains_par(la, lo, *self._z.sov_pip.as_tuple(), out)
        else:
            K.contains(la, lo, *self._z.sov_pip.as_tuple(), out)
        return out

    def distance(self, lat: np.ndarray, lon: np.ndarray, parallel: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Unsigned metres to the sovereign boundary and bearing to its nearest point."""
        la = _as_f64("lat", lat, None)
        lo = _as_f64("lon", lon, la.shape[0])
        d = np.empty(la.shape[0])
        b = np.empty(la.shape[0])
        if parallel:
            K.distances_par(la, lo, *self._z.sov_dist.as_tuple(), d, b)
        else:
            K.distances(la, lo, *self._z.sov_dist.as_tuple(), d, b)
        return d, b


def _fmt_nm(r: float) -> str:
    return f"{r:g}"
