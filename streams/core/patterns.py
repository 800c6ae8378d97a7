"""On-station pattern detection: orbits, racetracks, survey lines and loiters, per aircraft.

This module owns the pattern detector: :func:`sample_mask` thins each aircraft's positions to one
per :data:`SAMPLE_INTERVAL_S` bucket (batch-independent, vectorised), and :class:`PatternDetector`
keeps a bounded window of those samples per aircraft (the last hour at most) and decides, sample by
sample, whether the aircraft is on station and in which pattern. It emits ``pattern_started`` /
``pattern_updated`` / ``pattern_ended`` :class:`PatternEvent` s; the engine
(:mod:`streams.core.behaviour`) turns them into ``pattern.v1`` documents.

Method (turn history over trailing windows of 10, 20, 40 and 60 min): heading is taken from
successive sample positions (more robust than the reported track, which is the fallback); a window
is *on station* when the aircraft turned a lot (cumulative |heading change|) while staying in a
small area (path length several times the span it covers). The kind comes from the turn history
and the shape: one turn direction, lap after lap, around a centre that stays put is an orbit;
one turn direction with straight legs parallel to the principal (PCA) axis is a racetrack; straight
parallel legs with turns alternating direction is a survey (lawnmower); anything else on station is a loiter. Sources of
the rules: racetrack/orbit geometry as flown by tankers and ISR aircraft (ICAO Doc 8168 holding and
AAR anchor patterns: two legs joined by 180-degree turns in one direction); survey lines from
photogrammetric flight planning (parallel lines flown alternately, hence alternating turns);
thresholds were tuned on the "tuning" flights of ``tests/data/patterns`` (see LABELS.md there);
the lap-by-lap orbit test, the laps read back from the newest sample and the kind vote were then
tuned on every split labelled before "holdout5", which was labelled blind afterwards and run once
on the frozen detector.

Pure: no I/O, no clock; output depends only on the sequence of samples fed, so replays, any
batching, and export/import of state mid-stream all give the same events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# One sample per 20 s: a standard-rate turn (3 deg/s) then turns 60 degrees between samples, so a
# turn's direction is never ambiguous (< 180 deg), and an hour of history is 180 samples per aircraft.
# Faster sampling adds cost without helping: the patterns sought last tens of minutes.
SAMPLE_INTERVAL_S: float = 20.0

_R_EARTH = 6_371_008.8  # mean Earth radius (m), IUGG
_KINDS = ("orbit", "racetrack", "survey", "loiter")

# --- the turn gate (run by the engine over every sample, in numba, state in the track row)
# Most aircraft fly straight: only an aircraft that has been turning is given to the detector,
# which then keeps its history. Recent |heading change| decays with this time constant: 20 min,
# so a steady turn of r deg/s holds r x 1200 deg; a wide orbit (0.2 deg/s, a 30-min lap) 240.
GATE_TAU_S: float = 1200.0
# 200 deg of recent turning opens the gate: a pattern needs 720 deg, so nothing that could become
# one is missed (the wide orbit above opens it, a racetrack's first 180-deg end nearly does and its
# second does), while an airliner's turns on departure/arrival (~90 deg at a time) mostly do not.
GATE_OPEN_DEG: float = 200.0
# The gate stays open this long after the turning last exceeded the threshold: a racetrack's or a
# survey's straight legs last 5-20 min; 30 min holds the longest of them.
GATE_HOLD_S: float = 1800.0
# Gate codes per sample.
GATE_SKIP, GATE_FEED, GATE_CLOSE = 0, 1, 2


def _njit() -> Any:
    from numba import njit

    return njit(cache=True, nogil=True)


def turn_gate(slot: npt.NDArray[np.int64], t: F64, lat: F64, lon: F64, trk: F64, G: F64,
              c0: int = 0) -> npt.NDArray[np.int8]:
    """Gate codes for samples sorted by (slot, t): GATE_FEED (give it to the detector),
    GATE_CLOSE (the gate closed: end the aircraft's pattern, forget its history) or GATE_SKIP.
    ``G[slot, c0 : c0 + GATE_COLS]`` hold the gate state, updated in place (the engine passes its
    track rows), so any split of the samples into calls gives the same codes."""
    code = np.zeros(slot.size, dtype=np.int8)
    if slot.size:
        d = _DEFAULT
        _gate_kernel()(slot, t, lat, lon, trk, G, c0, code, GATE_TAU_S, GATE_OPEN_DEG, GATE_HOLD_S,
                       d.min_move_m, d.max_step_s)
    return code


# Gate state columns: last sample time, lat, lon, heading, recent |turn|, open until.
GATE_COLS = 6


_GATE: list[Any] = []


def _gate_kernel() -> Any:
    if _GATE:
        return _GATE[0]

    @_njit()
    def gate(slot: Any, t: Any, lat: Any, lon: Any, trk: Any, G: Any, c0: int, code: Any, tau: float, open_deg: float,
             hold: float, min_move: float, max_step: float) -> None:  # pragma: no cover - numba
        for i in range(slot.shape[0]):
            s = slot[i]
            pt = G[s, c0 + 0]
            recent = not math.isnan(pt) and t[i] - pt <= max_step
            hdg = math.nan
            if recent:
                k = math.cos(math.radians(0.5 * (G[s, c0 + 1] + lat[i])))
                dx = math.radians(lon[i] - G[s, c0 + 2]) * k * 6_371_008.8
                dy = math.radians(lat[i] - G[s, c0 + 1]) * 6_371_008.8
                if math.hypot(dx, dy) >= min_move:
                    hdg = math.degrees(math.atan2(dx, dy)) % 360.0
            if math.isnan(hdg) and not math.isnan(trk[i]):
                hdg = trk[i] % 360.0
            acc = G[s, c0 + 4]
            if math.isnan(acc) or math.isnan(pt):
                acc = 0.0
            else:
                acc *= math.exp(-max(t[i] - pt, 0.0) / tau)
            ph = G[s, c0 + 3]
            if recent and not math.isnan(hdg) and not math.isnan(ph):
                acc += abs((hdg - ph + 180.0) % 360.0 - 180.0)
            G[s, c0 + 0] = t[i]
            G[s, c0 + 1] = lat[i]
            G[s, c0 + 2] = lon[i]
            G[s, c0 + 3] = hdg
            G[s, c0 + 4] = acc
            until = G[s, c0 + 5]
            if acc >= open_deg:
                G[s, c0 + 5] = t[i] + hold
                code[i] = 1
            elif not math.isnan(until):
                if t[i] <= until:
                    code[i] = 1
                else:
                    G[s, c0 + 5] = math.nan
                    code[i] = 2

    _GATE.append(gate)
    return gate


def sample_mask(slot: npt.NDArray[np.int64], t: F64, last_bucket: F64) -> npt.NDArray[np.bool_]:
    """Which positions (sorted by (slot, t)) to feed: the first of each SAMPLE_INTERVAL_S bucket
    of each slot. ``last_bucket[slot]`` is the bucket last taken in earlier calls (NaN = none) and is
    updated in place, so splitting the input into several calls gives the same mask."""
    n = int(slot.size)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    b = np.floor(np.asarray(t, dtype=np.float64) / SAMPLE_INTERVAL_S)
    first = np.ones(n, dtype=np.bool_)
    first[1:] = slot[1:] != slot[:-1]
    prev = np.empty(n, dtype=np.float64)
    prev[1:] = b[:-1]
    prev[first] = last_bucket[slot[first]]
    # Within a slot buckets never decrease, so "differs from the previous position's bucket" is
    # "differs from the previous taken bucket". NaN (first ever) compares unequal: taken.
    mask = np.asarray(b != prev)
    last = np.ones(n, dtype=np.bool_)
    last[:-1] = slot[1:] != slot[:-1]
    last_bucket[slot[last]] = b[last]
    return mask


@dataclass(frozen=True, slots=True)
class PatternConfig:
    """Tuning constants of :class:`PatternDetector` (seconds, metres, degrees)."""

    # Trailing windows examined: 10 min catches tight orbits early; 60 min holds two or more laps of
    # a tanker racetrack (~15 min a lap) or survey lines (~10-17 min a line), whose span needs time.
    windows_s: tuple[float, ...] = (600.0, 1200.0, 2400.0, 3600.0)
    # A window counts only when samples cover this fraction of it: a 10 min window with 3 minutes of
    # data would make any turn look like a pattern, and the window is what "time on station" means.
    coverage_frac: float = 0.9
    # Cumulative |heading change| needed to start: 720 deg = two full circles, or four 180-deg ends
    # of racetrack/survey legs. A single 360 or a procedure turn (~360 deg in all) never qualifies.
    start_turn_deg: float = 720.0
    # Path flown / span covered needed to start: an aircraft on station keeps coming back; a transit
    # with turns (vectors, a detour) flies about its span (ratio 1-2).
    start_ratio: float = 2.5
    # Leading samples of a window farther than this many times the 75th-percentile distance from
    # the median point are the inbound transit: trimmed before the fit.
    trim_factor: float = 1.5
    # Least time on station before a pattern is reported (after trimming): 10 min, longer than a
    # 360 or a procedure turn (~4 min) and a published hold's single lap (4-6 min).
    min_on_station_s: float = 600.0
    # Hysteresis to stay on station: one full circle / two leg ends in the window, ratio 2.
    stay_turn_deg: float = 360.0
    stay_ratio: float = 2.0
    # Patterns larger than this are not "on station" in one area (largest ISR racetracks ~200 km).
    max_span_m: float = 250_000.0
    # Floor of the span in the ratio, so position noise of a near-stationary aircraft is no pattern.
    min_span_m: float = 1_000.0
    # Samples slower than this are skipped: taxiing and hovering turn a lot in a tiny area.
    min_speed_kt: float = 40.0
    # Heading is derived from positions only over at least this distance (ADS-B position error is
    # ~10-50 m; at 20 s sampling a 40 kt aircraft moves 400 m).
    min_move_m: float = 150.0
    # Consecutive samples farther apart than this carry no turn/path: the turn direction over a
    # coverage gap is unknown (a 2-min gap at 3 deg/s is a full circle).
    max_step_s: float = 120.0
    # Pre-check: below this |turn| over the longest window no fit is attempted (most aircraft fly
    # straight: this one comparison is their whole per-sample cost beyond the append).
    precheck_turn_deg: float = 300.0
    # A sample is on a straight leg when its heading changed less than this since the previous
    # one: 2 deg in 20 s (0.1 deg/s) is above the heading noise of positions 3 km apart (~1 deg)
    # and below the 0.3 deg/s of a wide orbit (a calibration orbit of 10-15 nm radius takes
    # ~20 min a lap: 6 deg between samples, which a looser threshold would call straight).
    straight_turn_deg: float = 2.0
    # Orbit: circling one point. Tested lap by lap over the newest laps, not by fitting one circle
    # to the ground track: an aircraft orbiting in a 30-40 kt wind flies a circle in the air mass,
    # which drifts downwind by ~3 km a lap over the ground (TV relay, CAL FIRE and calibration orbits
    # in tests/data/patterns), and a single ground-circle fit then fails while the centre of each lap
    # stays put. Laps are read back from the newest sample, one per 360 deg of |heading change| (so
    # a reversal over the same spot does not end the orbit), across the whole history (the windows
    # only decide that the aircraft is on station). Rules, as the flights were labelled (LABELS.md:
    # ">= 2 laps and >= 10 min around one spot, centre moving less than about one circle diameter"):
    # - each lap turns one way: |net| / total turn >= 0.8, not ~1, because where positions are
    #   sparse (a 1-2 min gap in a 4-min lap) some turns between samples read the wrong way;
    orbit_dominance: float = 0.8
    # - one lap that fails (the one holding a reversal) is skipped; a second ends the run;
    orbit_max_skip: int = 1
    # - a lap longer than 30 min is no lap of an orbit (the widest calibration orbits take ~20 min);
    orbit_max_lap_s: float = 1800.0
    # - at least 2 laps and 10 min (a 360 or a procedure turn is one lap in ~4 min);
    orbit_min_laps: int = 2
    orbit_min_s: float = 600.0
    # - lap centres within 0.35 of the median lap diameter of their common centre: the spread of
    #   the centres then stays under about 0.7 diameters ("less than one diameter" read
    #   conservatively); TV-relay circling that follows the race drifts ~half a diameter a lap and
    #   leaves the run within three laps. 0.35 was chosen over 0.5 on the splits labelled before
    #   holdout5 (orbit/racetrack kinds 40/52 against 37/52, loiters kept 18/29 against 22/29);
    orbit_max_drift: float = 0.35
    # - not elongated: the laps' points have a principal-axis aspect (sqrt of the eigenvalue
    #   ratio) <= 1.5, the racetrack's minimum; elongated laps over one spot are a racetrack.
    orbit_max_aspect: float = 1.5
    # - off: the laps of a run may turn either way (a reversal over the same spot stays one orbit),
    #   and consecutive lap centres may move any distance within orbit_max_drift. Requiring one way
    #   or <= 0.25-0.4 diameters between consecutive laps was tried against the TV relay's drifting,
    #   reversing circles: no better balance of orbit and loiter (bench/cv_patterns.py --grid 2).
    orbit_one_way: bool = False
    orbit_max_lap_drift: float = math.inf
    # Racetrack: one turn direction, straight legs parallel to the axis (axial resultant of the
    # straight headings), elongated.
    racetrack_dominance: float = 0.6
    racetrack_min_straight: float = 0.3
    racetrack_axial: float = 0.7
    racetrack_min_aspect: float = 1.5
    # Survey: turns alternate (low dominance), mostly straight, parallel lines.
    survey_max_dominance: float = 0.5
    survey_min_straight: float = 0.5
    survey_axial: float = 0.7
    # A new fit whose span exceeds the current one by this factor is the transit out, not the pattern.
    max_growth: float = 1.3
    # A change of kind is reported when the new kind won kind_majority of the last kind_votes fits
    # (one fit a minute: about 3 of the last 5 minutes), so it does not flap on single odd fits.
    kind_votes: int = 5
    kind_majority: int = 3
    # A change to loiter needs more: see below (3, 4 and 5 of 5 were compared in bench/cv_patterns.py).
    loiter_majority: int = 4
    # An open pattern ends ("pattern_broken") after its window stopped qualifying this long.
    break_s: float = 600.0
    # An open pattern ends ("silent") after this long without samples; also the gap after which the
    # history is forgotten (a new segment). Shorter than the engine's 1 h alert timeout.
    silence_end_s: float = 1200.0
    # Off station: an open pattern ends ("left_station") once the aircraft has stayed more than
    # leave_margin_frac of the pattern's span (at least leave_min_m) beyond its outline for leave_s
    # while turning less than leave_max_turn_deg. Without it a pattern outlived the departure by
    # break_s (10 min) plus as long as its windows still held the pattern: vancouver's racetrack
    # (holdout2) was "on station" 90 km away, london_heathrow's survey and a4acf2's loiter went on
    # into the labelled cruise legs after them. 2 spans, 300 s, 180 deg: the point an 18-point grid
    # (1 or 2 spans; 180 s, 300 s or off; 45/90/180 deg) scored best on every labelled flight by
    # bench/cv_patterns.py's rule (fewest transit patterns, most windows, best balanced kinds), and
    # in 74 of 75 of its leave-one-flight-out folds (--grid 4). 1 span cut Tour de France relays and
    # CAL FIRE orbits short: their outline lags the drifting circling. inf: off.
    leave_margin_frac: float = 2.0
    leave_min_m: float = 5_000.0  # the floor for tiny patterns: well past position noise and wind drift
    leave_s: float = 300.0
    leave_max_turn_deg: float = 180.0
    # The aircraft is still on station (its time on station runs) while within this fraction of the
    # span (at least min_span_m) of the outline: the outline is the extent of the pattern's own
    # samples, which a later lap may exceed by position noise and a slightly wider turn.
    near_frac: float = 0.1
    # pattern_updated at most this often (event time) while the pattern continues.
    update_interval_s: float = 300.0
    # Points of the circle outline of an orbit (10 deg apart).
    outline_points: int = 36
    # The window fits run at every this-many-th sample (one a minute at 20 s): patterns are
    # minutes-scale, and the fits are the detector's whole cost.
    fit_every: int = 3
    # An open pattern's dimensions never grow past this factor of those it started with: as the
    # aircraft leaves, the outbound leg enters the windows and would stretch them slowly.
    max_total_growth: float = 1.5

    def __post_init__(self) -> None:
        if not self.windows_s or any(w <= 0 for w in self.windows_s):
            raise ValueError("windows_s must be positive")
        if not (1 <= self.kind_majority <= self.kind_votes and 1 <= self.loiter_majority <= self.kind_votes):
            raise ValueError("kind_majority and loiter_majority must be between 1 and kind_votes")
        if self.stay_turn_deg > self.start_turn_deg or self.stay_ratio > self.start_ratio:
            raise ValueError("stay thresholds must not exceed start thresholds (hysteresis)")
        object.__setattr__(self, "windows_s", tuple(sorted(float(w) for w in self.windows_s)))


_DEFAULT = PatternConfig()


@dataclass(slots=True)
class PatternEvent:
    """One detector event (a pattern started, continues, or ended)."""

    transition: str  # "pattern_started" | "pattern_updated" | "pattern_ended"
    icao24: str
    pattern_start: float
    seq: int
    t: float
    kind: str
    centre_lat: float
    centre_lon: float
    radius_m: float | None
    leg_length_m: float | None
    width_m: float | None
    axis_deg: float | None
    span_m: float
    outline: list[tuple[float, float]]  # (lat, lon), closed ring
    time_on_station_s: float
    end_reason: str | None
    last_lat: float
    last_lon: float
    last_alt_ft: float | None


@dataclass(slots=True)
class _Fit:
    """What one qualifying window looks like."""

    kind: str
    start: float  # first sample of the pattern part of the window
    centre_lat: float
    centre_lon: float
    radius_m: float | None
    leg_length_m: float | None
    width_m: float | None
    axis_deg: float | None
    span_m: float
    outline: list[tuple[float, float]]


# History columns (float64: export/import must round-trip exactly).
_C_T, _C_LAT, _C_LON, _C_HDG, _C_TURN, _C_STEP, _C_ALT = range(7)
_NCOL = 7


# Spare rows of the history buffer beyond the longest window: a full buffer moves its newest rows
# to the front once per this many samples instead of copying itself at every sample.
_SPARE_ROWS = 32


@dataclass(slots=True)
class _Track:
    buf: F64 = field(default_factory=lambda: np.empty((0, _NCOL)))  # samples, oldest first: buf[:n]
    n: int = 0
    fed: int = 0  # samples appended since the history was last reset (the fit cadence)
    start_span: float = math.nan
    last_t: float = math.nan  # last sample fed (also skipped slow ones)
    last_lat: float = math.nan
    last_lon: float = math.nan
    last_alt: float = math.nan
    # open pattern
    open: bool = False
    start: float = math.nan
    seq: int = 0
    kind: str = ""
    votes: str = ""  # the kinds of the last fits, initials, newest last (the kind vote)
    last_q: float = math.nan  # last sample at which the pattern qualified
    last_emit: float = math.nan
    fit: _Fit | None = None
    # off station (see PatternConfig.leave_s): first sample beyond the margin of a run of them,
    # and the last sample near the outline (where time on station ends if the aircraft leaves)
    out_since: float = math.nan
    out_turn: float = 0.0  # |turn| since out_since
    last_on: float = math.nan
    # the fit, cos of its centre's latitude, its outline in metres about its centre (a cache)
    ring: tuple[_Fit, float, F64, F64] | None = None


def _wrap180(a: F64 | float) -> Any:
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


def _bearing_dist(lat0: float, lon0: float, lat1: float, lon1: float) -> tuple[float, float]:
    """Initial bearing (deg) and distance (m), equirectangular: samples are < ~10 km apart."""
    k = math.cos(math.radians(0.5 * (lat0 + lat1)))
    dx = math.radians(lon1 - lon0) * k * _R_EARTH
    dy = math.radians(lat1 - lat0) * _R_EARTH
    return math.degrees(math.atan2(dx, dy)) % 360.0, math.hypot(dx, dy)


def _beyond(rx: F64, ry: F64, px: float, py: float) -> float:
    """How far the point (px, py) lies outside the closed ring (rx, ry) (0 inside), metres."""
    if rx.size < 2:
        return 0.0  # no outline to leave
    ax, ay, bx, by = rx[:-1], ry[:-1], rx[1:], ry[1:]
    # even-odd rule: inside when a ray to +x crosses the ring an odd number of times
    cross = (ay > py) != (by > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = ax + (py - ay) * (bx - ax) / (by - ay)
    if int(np.count_nonzero(cross & (px < xs))) % 2:
        return 0.0
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.clip(np.where(ll > 0, ((px - ax) * dx + (py - ay) * dy) / ll, 0.0), 0.0, 1.0)
    return float(np.min(np.hypot(ax + u * dx - px, ay + u * dy - py)))


def _hull(x: F64, y: F64) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain), counter-clockwise, closed."""
    pts = sorted(set(zip(x.tolist(), y.tolist(), strict=True)))
    if len(pts) < 3:
        return pts + pts[:1]

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    ring = lower[:-1] + upper[:-1]
    return ring + ring[:1]


@dataclass(frozen=True, slots=True)
class _Frame:
    """Points in their principal-axis frame: the mean (cx, cy), the major axis (ax, ay), the
    extents along it and across it, and the eigenvalues of the covariance (ascending)."""

    cx: float
    cy: float
    ax: float
    ay: float
    a_lo: float
    a_hi: float
    c_lo: float
    c_hi: float
    evals: F64

    @property
    def axis_deg(self) -> float:
        """Bearing of the major axis, 0-180 deg."""
        return math.degrees(math.atan2(self.ax, self.ay)) % 180.0

    def centre(self) -> tuple[float, float]:
        """The middle of the extents (not the mean: a racetrack's samples bunch on its turns)."""
        mid_a, mid_c = 0.5 * (self.a_lo + self.a_hi), 0.5 * (self.c_lo + self.c_hi)
        return self.cx + self.ax * mid_a - self.ay * mid_c, self.cy + self.ay * mid_a + self.ax * mid_c


def _frame(x: F64, y: F64) -> _Frame | None:
    """The principal-axis frame of the points (PCA), None if their covariance is not finite."""
    cx, cy = float(x.mean()), float(y.mean())
    cov = np.cov(np.vstack((x - cx, y - cy)))
    if not np.all(np.isfinite(cov)):
        return None
    evals, evecs = np.linalg.eigh(cov)
    ax, ay = float(evecs[0, 1]), float(evecs[1, 1])  # major axis (largest eigenvalue last)
    along = (x - cx) * ax + (y - cy) * ay
    across = -(x - cx) * ay + (y - cy) * ax
    return _Frame(cx, cy, ax, ay, float(along.min()), float(along.max()), float(across.min()),
                  float(across.max()), evals)


def _stadium(fr: _Frame, points: int) -> tuple[F64, F64]:
    """Outline (x, y) of a racetrack in the frame ``fr``: two semicircles of diameter = the
    across extent joined by legs of length (along extent - across extent)."""
    length, width = fr.a_hi - fr.a_lo, fr.c_hi - fr.c_lo
    leg = max(length - width, 0.0)
    r = 0.5 * width
    mid_a, mid_c = 0.5 * (fr.a_lo + fr.a_hi), 0.5 * (fr.c_lo + fr.c_hi)
    m = max(points // 2, 4)
    th = np.linspace(-0.5 * math.pi, 0.5 * math.pi, m + 1)
    # along/across coordinates: end 1 at +leg/2, end 2 at -leg/2
    pa = np.concatenate((mid_a + 0.5 * leg + r * np.cos(th), mid_a - 0.5 * leg - r * np.cos(th)))
    pc = np.concatenate((mid_c + r * np.sin(th), mid_c - r * np.sin(th)))
    pa, pc = np.append(pa, pa[0]), np.append(pc, pc[0])  # closed ring
    return fr.cx + pa * fr.ax - pc * fr.ay, fr.cy + pa * fr.ay + pc * fr.ax


def _to_ll(lat0: float, lon0: float, k: float, px: F64, py: F64) -> list[tuple[float, float]]:
    """Local metres (equirectangular about (lat0, lon0), k = cos lat0) back to rounded (lat, lon)."""
    la = lat0 + np.degrees(py / _R_EARTH)
    lo = lon0 + np.degrees(px / (k * _R_EARTH))
    return [(round(float(a), 6), round(float(b), 6)) for a, b in zip(la, lo, strict=True)]


class PatternDetector:
    """Per-aircraft on-station pattern detection over a bounded window of samples."""

    def __init__(self, config: PatternConfig | None = None) -> None:
        self.config = config or PatternConfig()
        self._tracks: dict[str, _Track] = {}
        # History kept: the longest window plus a margin, in samples.
        self._keep = int(math.ceil(self.config.windows_s[-1] / SAMPLE_INTERVAL_S)) + 8

    # ------------------------------------------------------------------ feeding
    def feed(self, icao24: str, t: float, lat: float, lon: float, track_deg: float, gs_kt: float,
             alt_ft: float) -> list[PatternEvent]:
        """One downsampled sample (NaN allowed for track, speed, altitude), in time order."""
        cfg = self.config
        if not (math.isfinite(t) and math.isfinite(lat) and math.isfinite(lon)):
            return []
        tr = self._tracks.get(icao24)
        if tr is None:
            tr = self._tracks[icao24] = _Track(buf=np.empty((self._keep + _SPARE_ROWS, _NCOL)))
        out: list[PatternEvent] = []
        if math.isfinite(tr.last_t):
            if t < tr.last_t:
                return []  # out of order: the engine feeds in time order; ignore rather than corrupt
            if t - tr.last_t >= cfg.silence_end_s:
                if tr.open:
                    out.append(self._end(icao24, tr, tr.last_t + cfg.silence_end_s, "silent"))
                tr.n = tr.fed = 0
        tr.last_t, tr.last_lat, tr.last_lon = t, lat, lon
        tr.last_alt = alt_ft if math.isfinite(alt_ft) else math.nan

        h = tr.buf[: tr.n]
        n = tr.n
        hdg, turn, step = math.nan, 0.0, 0.0
        moved = 0.0
        if n:
            p = h[n - 1]
            dt = t - p[_C_T]
            brg, moved = _bearing_dist(p[_C_LAT], p[_C_LON], lat, lon)
            if dt <= cfg.max_step_s:
                step = moved
        slow = math.isfinite(gs_kt) and gs_kt < cfg.min_speed_kt
        if n and not math.isfinite(gs_kt):
            dt = t - h[n - 1, _C_T]
            slow = dt > 0 and dt <= cfg.max_step_s and moved / dt < cfg.min_speed_kt * 1852.0 / 3600.0
        if slow:
            # Taxiing / hovering: not part of any pattern, but an open one may still be broken.
            out.extend(self._evaluate(icao24, tr, t, qualifies=None))
            return out
        if n and moved >= cfg.min_move_m:
            hdg = brg
        elif math.isfinite(track_deg):
            hdg = track_deg % 360.0
        if n and step > 0 and math.isfinite(hdg) and math.isfinite(h[n - 1, _C_HDG]):
            turn = float(_wrap180(hdg - h[n - 1, _C_HDG]))
        if tr.n == tr.buf.shape[0]:  # full: keep the newest keep-1 rows, at the front
            tr.buf[: self._keep - 1] = tr.buf[tr.n - self._keep + 1 : tr.n]
            tr.n = self._keep - 1
        tr.buf[tr.n] = (t, lat, lon, hdg, turn, step, tr.last_alt)
        tr.n += 1
        tr.fed += 1
        if tr.open and tr.fit is not None and math.isfinite(cfg.leave_s) and self._left(tr, t, lat, lon, turn):
            # Off station: the time on station ended at the last sample near the outline (but not
            # before the last event sent: what that reported stays so), and the history is
            # forgotten so the windows, which still hold the pattern, do not start it again on the
            # way out.
            tr.last_q = max(min(tr.last_q, tr.last_on), tr.last_emit)
            out.append(self._end(icao24, tr, t, "left_station"))
            tr.n = tr.fed = 0
            return out
        if tr.fed % cfg.fit_every:
            return out
        if tr.open and math.isfinite(tr.out_since):
            # Beyond the margin, not yet confirmed: not on station, so no fit (and no update).
            out.extend(self._evaluate(icao24, tr, t, qualifies=None))
            return out
        h = tr.buf[max(0, tr.n - self._keep) : tr.n]
        out.extend(self._evaluate(icao24, tr, t, qualifies=self._qualify(h, tr.open)))
        return out

    def _left(self, tr: _Track, t: float, lat: float, lon: float, turn: float) -> bool:
        """Whether (lat, lon) at t confirms that the aircraft left its open pattern (see
        PatternConfig.leave_s); keeps ``out_since`` and ``last_on`` up to date."""
        cfg = self.config
        f = tr.fit
        assert f is not None
        if tr.ring is None or tr.ring[0] is not f:
            k = math.cos(math.radians(f.centre_lat))
            ring = np.array(f.outline, dtype=np.float64).reshape(-1, 2)
            # longitudes relative to the centre, wrapped: a pattern may straddle the antimeridian
            tr.ring = (f, k, np.radians(_wrap180(ring[:, 1] - f.centre_lon)) * k * _R_EARTH,
                       np.radians(ring[:, 0] - f.centre_lat) * _R_EARTH)
        _, k, rx, ry = tr.ring
        px = math.radians(float(_wrap180(lon - f.centre_lon))) * k * _R_EARTH
        py = math.radians(lat - f.centre_lat) * _R_EARTH
        off = _beyond(rx, ry, px, py)
        if off <= max(cfg.near_frac * f.span_m, cfg.min_span_m):
            tr.last_on, tr.out_since = t, math.nan
        elif off > max(cfg.leave_margin_frac * f.span_m, cfg.leave_min_m):
            if not math.isfinite(tr.out_since):
                tr.out_since, tr.out_turn = t, 0.0
            else:
                tr.out_turn += abs(turn)
                if tr.out_turn > cfg.leave_max_turn_deg:
                    tr.out_since = math.nan  # turning out there: circling that drifts, not leaving
        return math.isfinite(tr.out_since) and t - tr.out_since >= cfg.leave_s

    def close(self, icao24: str, t: float) -> list[PatternEvent]:
        """The engine's turn gate closed (no turning for a while): end an open pattern
        ("pattern_broken", at ``t``) and forget the aircraft's history."""
        tr = self._tracks.pop(icao24, None)
        if tr is None or not tr.open:
            return []
        return [self._end(icao24, tr, t, "pattern_broken")]

    def silent(self, icao24: str, now: float) -> list[PatternEvent]:
        """End an open pattern of an aircraft silent for config.silence_end_s (stamped last + that)."""
        tr = self._tracks.get(icao24)
        if tr is None or not tr.open or not (now - tr.last_t >= self.config.silence_end_s):
            return []
        ev = self._end(icao24, tr, tr.last_t + self.config.silence_end_s, "silent")
        self._tracks.pop(icao24, None)
        return [ev]

    def finish(self, icao24: str) -> list[PatternEvent]:
        """End of input: end an open pattern."""
        tr = self._tracks.get(icao24)
        if tr is None or not tr.open:
            return []
        return [self._end(icao24, tr, tr.last_t, "end_of_input")]

    def drop(self, icao24: str) -> None:
        self._tracks.pop(icao24, None)

    def active(self, icao24: str) -> bool:
        tr = self._tracks.get(icao24)
        return tr is not None and tr.open

    # ------------------------------------------------------------------ state
    def export_state(self, icao24: str) -> Any | None:
        """JSON-able state (floats round-trip exactly through orjson), None if nothing kept."""
        tr = self._tracks.get(icao24)
        if tr is None:
            return None
        f = tr.fit
        return {
            "h": tr.buf[max(0, tr.n - self._keep) : tr.n].ravel().tolist(),
            "fed": tr.fed,
            "span0": tr.start_span,
            "last": [tr.last_t, tr.last_lat, tr.last_lon, tr.last_alt],
            "open": tr.open,
            # [4] held a pending kind's start time before the vote (NaN in states of that
            # version, as "not off station" reads it now); [7] and [8] are newer: absent in older states
            "p": [tr.start, tr.seq, tr.kind, tr.votes, tr.out_since, tr.last_q, tr.last_emit, tr.last_on,
                  tr.out_turn],
            "fit": None if f is None else [f.kind, f.start, f.centre_lat, f.centre_lon, f.radius_m,
                                           f.leg_length_m, f.width_m, f.axis_deg, f.span_m,
                                           [list(p) for p in f.outline]],
        }

    def import_state(self, icao24: str, state: Any) -> None:
        if not state:
            self._tracks.pop(icao24, None)
            return

        def num(v: Any) -> float:
            return math.nan if v is None else float(v)  # orjson writes NaN as null

        tr = _Track(buf=np.empty((self._keep + _SPARE_ROWS, _NCOL)))
        h = np.array([num(v) for v in state["h"]], dtype=np.float64).reshape(-1, _NCOL)
        tr.buf[: h.shape[0]] = h
        tr.n = h.shape[0]
        tr.fed = int(state.get("fed", 0))
        tr.start_span = num(state.get("span0"))
        tr.last_t, tr.last_lat, tr.last_lon, tr.last_alt = (num(v) for v in state["last"])
        tr.open = bool(state["open"])
        p = state["p"]
        tr.start, tr.seq, tr.kind = num(p[0]), int(p[1]), str(p[2])
        # a state from before the vote holds one pending kind's full name here: its initial
        votes = str(p[3] or "")
        tr.votes = votes[0] if votes in _KINDS else "".join(c for c in votes if c in "orsl")
        tr.last_q, tr.last_emit = num(p[5]), num(p[6])
        tr.out_since = num(p[4])
        # a state from before the leave rule: on station as of its last qualifying fit
        tr.last_on = num(p[7]) if len(p) > 7 else tr.last_q
        tr.out_turn = num(p[8]) if len(p) > 8 else 0.0
        f = state.get("fit")
        if f is not None:
            opt = [None if v is None else float(v) for v in f[4:8]]
            tr.fit = _Fit(str(f[0]), num(f[1]), num(f[2]), num(f[3]), opt[0], opt[1], opt[2], opt[3], num(f[8]),
                          [(float(a), float(b)) for a, b in f[9]])
        self._tracks[icao24] = tr

    # ------------------------------------------------------------------ state machine
    def _evaluate(self, icao24: str, tr: _Track, t: float, qualifies: _Fit | None) -> list[PatternEvent]:
        cfg = self.config
        if qualifies is not None:
            fit = qualifies
            if not tr.open:
                tr.open, tr.seq, tr.start, tr.kind = True, 0, fit.start, fit.kind
                tr.votes, tr.last_q, tr.fit = "", t, fit
                tr.last_emit = t
                tr.last_on, tr.out_since = t, math.nan
                tr.start_span = fit.span_m
                return [self._event("pattern_started", icao24, tr, t, None)]
            tr.last_q = t
            changed = False
            # The kind is voted over the last kind_votes fits (initials, newest last, kept in
            # ``votes``): one odd fit - a window catching the transit in, a sparse lap - neither
            # changes the kind nor restarts the count towards a change.
            tr.votes = (tr.votes + fit.kind[0])[-cfg.kind_votes :]
            # Loiter is the absence of a recognised shape: a shape holds until loiter_majority of
            # the last kind_votes fits lost it (as _qualify prefers a shape over loiter), so a
            # racetrack that frays as the aircraft leaves is not relabelled on its way out (the
            # P-8 of tests/data/behaviour turned "loiter" in its last update with 3 of 5).
            need = cfg.loiter_majority if fit.kind == "loiter" else cfg.kind_majority
            if fit.kind != tr.kind and tr.votes.count(fit.kind[0]) >= need:
                tr.kind, tr.votes, changed = fit.kind, "", True
            # A pattern does not grow by a third between samples: a jump in span is the transit
            # out entering the window, so the previous dimensions are kept.
            grown = (tr.fit is not None and fit.span_m > cfg.max_growth * tr.fit.span_m) or not (
                fit.span_m <= cfg.max_total_growth * tr.start_span)
            if changed:  # a new kind: its own dimensions, whatever the old kind's were
                tr.fit, tr.start_span = fit, fit.span_m
            elif fit.kind == tr.kind and not grown:
                tr.fit = fit
                # the tightest fit of this kind so far bounds later growth (see max_total_growth)
                tr.start_span = min(tr.start_span, fit.span_m)
            if changed or t - tr.last_emit >= cfg.update_interval_s:
                tr.last_emit = t
                return [self._event("pattern_updated", icao24, tr, t, None)]
            return []
        if tr.open and t - tr.last_q >= cfg.break_s:
            return [self._end(icao24, tr, t, "pattern_broken")]
        return []

    def _end(self, icao24: str, tr: _Track, t: float, reason: str) -> PatternEvent:
        ev = self._event("pattern_ended", icao24, tr, t, reason)
        tr.open, tr.fit, tr.votes, tr.ring = False, None, "", None
        tr.start = tr.last_q = tr.last_emit = tr.out_since = tr.last_on = math.nan
        tr.kind = ""
        return ev

    def _event(self, transition: str, icao24: str, tr: _Track, t: float, reason: str | None) -> PatternEvent:
        f = tr.fit
        assert f is not None
        seq = tr.seq
        tr.seq += 1
        return PatternEvent(
            transition=transition, icao24=icao24, pattern_start=tr.start, seq=seq, t=t, kind=tr.kind,
            centre_lat=f.centre_lat, centre_lon=f.centre_lon, radius_m=f.radius_m, leg_length_m=f.leg_length_m,
            width_m=f.width_m, axis_deg=f.axis_deg, span_m=f.span_m, outline=list(f.outline),
            time_on_station_s=max(0.0, tr.last_q - tr.start), end_reason=reason,
            last_lat=tr.last_lat, last_lon=tr.last_lon,
            last_alt_ft=tr.last_alt if math.isfinite(tr.last_alt) else None,
        )

    # ------------------------------------------------------------------ the fit
    def _qualify(self, h: F64, is_open: bool) -> _Fit | None:
        """The best fit among the trailing windows that qualify, or None."""
        cfg = self.config
        n = h.shape[0]
        if n < 4:
            return None
        t = h[:, _C_T]
        t_last = float(t[-1])
        turn_min = cfg.stay_turn_deg if is_open else cfg.start_turn_deg
        ratio_min = cfg.stay_ratio if is_open else cfg.start_ratio
        absturn = np.abs(h[:, _C_TURN])
        if float(absturn.sum()) < min(turn_min, cfg.precheck_turn_deg):
            return None  # the cheap pre-check: not turning
        best: _Fit | None = None
        for w in cfg.windows_s:
            i0 = int(np.searchsorted(t, t_last - w, side="left"))
            if n - i0 < 4 or t_last - t[i0] < cfg.coverage_frac * w:
                break  # longer windows are not covered either
            if float(absturn[i0 + 1:].sum()) < turn_min:
                continue
            fit = self._fit(h[i0:], ratio_min)
            # Prefer a recognised shape over "loiter", then the tightest fit: a long window may
            # still hold part of the transit in or out, which inflates the dimensions.
            if fit is not None and (best is None or (fit.kind != "loiter", -fit.span_m)
                                    > (best.kind != "loiter", -best.span_m)):
                best = fit
        if best is not None and best.kind == "loiter":
            # Circling is an orbit only when its recent laps stay over one spot long enough; the
            # laps are read back from the newest sample over the whole history, not per window.
            orbit = self._orbit(h, best.start)
            if orbit is not None:
                best = orbit
        return best

    def _fit(self, w: F64, ratio_min: float) -> _Fit | None:
        cfg = self.config
        # Trim the inbound transit off the front of the window: leading samples far from where the
        # aircraft mostly is (median point) are not on station, and would inflate the span.
        k0 = math.cos(math.radians(float(np.median(w[:, _C_LAT]))))
        dx = np.radians(w[:, _C_LON] - np.median(w[:, _C_LON])) * k0 * _R_EARTH
        dy = np.radians(w[:, _C_LAT] - np.median(w[:, _C_LAT])) * _R_EARTH
        d = np.hypot(dx, dy)
        near = np.flatnonzero(d <= cfg.trim_factor * float(np.percentile(d, 75)) + cfg.min_span_m)
        if near.size:
            w = w[int(near[0]):]
        if w.shape[0] < 4 or float(w[-1, _C_T] - w[0, _C_T]) < cfg.min_on_station_s:
            return None
        lat, lon = w[:, _C_LAT], w[:, _C_LON]
        lat0 = float(lat.mean())
        lon0 = float(lon.mean())
        k = math.cos(math.radians(lat0))
        x = np.radians(lon - lon0) * k * _R_EARTH
        y = np.radians(lat - lat0) * _R_EARTH
        path = float(w[1:, _C_STEP].sum())
        fr = _frame(x, y)
        if fr is None:
            return None
        length, width = fr.a_hi - fr.a_lo, fr.c_hi - fr.c_lo
        span = max(length, width)
        if span > cfg.max_span_m or path < ratio_min * max(span, cfg.min_span_m):
            return None
        turns = w[1:, _C_TURN]
        absturn = float(np.abs(turns).sum())
        dominance = abs(float(turns.sum())) / absturn if absturn > 0 else 0.0
        # Steps across a gap (no path) carry no turn: they are neither straight nor turning.
        flown = w[1:, _C_STEP] > 0
        straight = (np.abs(turns) < cfg.straight_turn_deg) & flown
        straight_frac = float(straight.sum()) / max(int(flown.sum()), 1)
        hd = w[1:, _C_HDG][straight]
        hd = hd[np.isfinite(hd)]
        axial = 0.0
        if hd.size >= 3:
            a2 = np.radians(2.0 * hd)
            axial = float(math.hypot(float(np.cos(a2).mean()), float(np.sin(a2).mean())))
        aspect = length / max(width, 1.0)
        # Where the pattern part of the window starts: the first turn (an inbound straight leg in
        # the window is transit, not time on station).
        turning = np.flatnonzero(np.abs(turns) >= cfg.straight_turn_deg)
        start = float(w[1 + int(turning[0]), _C_T]) if turning.size else float(w[0, _C_T])

        def to_ll(px: F64, py: F64) -> list[tuple[float, float]]:
            return _to_ll(lat0, lon0, k, px, py)

        ox, oy = fr.centre()
        clat, clon = to_ll(np.array([ox]), np.array([oy]))[0]
        if (dominance >= cfg.racetrack_dominance and straight_frac >= cfg.racetrack_min_straight
                and axial >= cfg.racetrack_axial and aspect >= cfg.racetrack_min_aspect):
            ring = to_ll(*_stadium(fr, cfg.outline_points))
            return _Fit("racetrack", start, clat, clon, None, max(length - width, 0.0), width, fr.axis_deg, span,
                        ring)
        hull = _hull(x, y)
        ring = to_ll(np.array([p[0] for p in hull]), np.array([p[1] for p in hull]))
        if (dominance <= cfg.survey_max_dominance and straight_frac >= cfg.survey_min_straight
                and axial >= cfg.survey_axial):
            return _Fit("survey", start, clat, clon, None, length, width, fr.axis_deg, span, ring)
        return _Fit("loiter", start, clat, clon, None, None, None, None, span, ring)

    def _orbit(self, h: F64, start: float) -> _Fit | None:
        """The orbit (or racetrack) the newest laps make, or None. Laps are read back from the
        newest sample over the history ``h``, one per 360 deg of |heading change|, and taken while
        each turns one way (orbit_dominance; orbit_max_skip laps that do not are stepped over),
        lasts at most orbit_max_lap_s, and the lap centres (mean position over the lap: the middle
        of the lap even when the wind drifts it) stay within orbit_max_drift of the median lap
        diameter of their common centre. At least orbit_min_laps such laps over orbit_min_s make
        an orbit; if their points are elongated (aspect > orbit_max_aspect) they are a racetrack
        instead: runway circuits and anchor patterns also lap over one spot, with long sides."""
        cfg = self.config
        n = h.shape[0]
        if n < 6:
            return None
        t = h[::-1, _C_T]
        lat, lon = h[::-1, _C_LAT], h[::-1, _C_LON]
        lat0, lon0 = float(lat[0]), float(lon[0])
        k = math.cos(math.radians(lat0))
        x = np.radians(lon - lon0) * k * _R_EARTH
        y = np.radians(lat - lat0) * _R_EARTH
        # turns[i]: heading change between reversed samples i and i + 1 (stored on the later one)
        turns = h[:0:-1, _C_TURN]
        # Laps by absolute turning (each 360 deg of |heading change|), so circling that reverses
        # direction over the same spot stays one orbit: the lap holding the reversal turns both
        # ways and is skipped (orbit_max_skip), its neighbours each turn one way.
        cum = np.concatenate(([0.0], np.cumsum(np.abs(turns))))
        laps = int(cum[-1] // 360.0)
        if laps < cfg.orbit_min_laps:
            return None
        ends = np.searchsorted(cum, 360.0 * np.arange(1, laps + 1), side="left").tolist()
        cxs: list[float] = []
        cys: list[float] = []
        diam: list[float] = []
        i0 = end = 0
        taken = skipped = 0
        sign0 = 0.0
        for i1 in ends:
            seg = turns[i0:i1]
            tot = float(np.abs(seg).sum())
            if (t[i0] - t[i1] > cfg.orbit_max_lap_s or tot <= 0
                    or abs(float(seg.sum())) / tot < cfg.orbit_dominance):
                skipped += 1
                if skipped > cfg.orbit_max_skip:
                    break
                i0 = i1
                continue
            sx, sy = x[i0 : i1 + 1], y[i0 : i1 + 1]
            mx, my = float(sx.mean()), float(sy.mean())
            d = 2.0 * float(np.median(np.hypot(sx - mx, sy - my)))
            cx2, cy2, d2 = [*cxs, mx], [*cys, my], [*diam, d]
            ox, oy, dm = float(np.mean(cx2)), float(np.mean(cy2)), float(np.median(d2))
            if not dm > 0 or float(np.max(np.hypot(np.array(cx2) - ox, np.array(cy2) - oy))) > cfg.orbit_max_drift * dm:
                break
            sgn = 1.0 if float(seg.sum()) > 0 else -1.0
            if cfg.orbit_one_way and taken and sgn != sign0:
                break
            if taken and math.hypot(mx - cxs[-1], my - cys[-1]) > cfg.orbit_max_lap_drift * dm:
                break
            if not taken:
                sign0 = sgn
            cxs, cys, diam, taken, i0 = cx2, cy2, d2, taken + 1, i1
            end = i1
        i0 = end
        if taken < cfg.orbit_min_laps or t[0] - t[i0] < cfg.orbit_min_s:
            return None
        px, py = x[: i0 + 1], y[: i0 + 1]
        fr = _frame(px, py)
        ev = fr.evals if fr is not None else np.array([0.0, 0.0])
        elongated = ev[1] > 0 and math.sqrt(max(ev[1], 0.0) / max(ev[0], 1e-9)) > cfg.orbit_max_aspect
        ox, oy, radius = float(np.mean(cxs)), float(np.mean(cys)), 0.5 * float(np.median(diam))
        span = float(max(np.ptp(px), np.ptp(py)))
        first = min(start, float(t[i0]))
        if elongated and fr is not None:
            # Laps over one spot with long sides: a racetrack (runway circuits, an anchor pattern)
            # that the window fits missed, e.g. while an older phase was still in the windows.
            length, width = fr.a_hi - fr.a_lo, fr.c_hi - fr.c_lo
            ring = _to_ll(lat0, lon0, k, *_stadium(fr, cfg.outline_points))
            mx, my = fr.centre()
            clat, clon = _to_ll(lat0, lon0, k, np.array([mx]), np.array([my]))[0]
            return _Fit("racetrack", first, clat, clon, None, max(length - width, 0.0), width, fr.axis_deg, span,
                        ring)
        ang = np.radians(np.arange(cfg.outline_points + 1) * (360.0 / cfg.outline_points))
        ring = _to_ll(lat0, lon0, k, ox + radius * np.sin(ang), oy + radius * np.cos(ang))
        ring[-1] = ring[0]
        clat, clon = _to_ll(lat0, lon0, k, np.array([ox]), np.array([oy]))[0]
        return _Fit("orbit", first, clat, clon, radius, None, None, None, span, ring)
