"""Numba kernels for track assembly and the alert state machine: arrays in, arrays out.

This module owns the per-position sequential logic of the engine, the part that cannot be
written as whole-array numpy because each position depends on the state the previous one
left behind:

- :func:`gate`: duplicate suppression, readsb-style plausibility gate with recovery, and
  ground speed / track derivation for positions that lack them;
- :func:`track_step`: gap splitting into segments, per-segment statistics (closest approach,
  time in each zone), and the per-aircraft, per-zone alert state machine with hysteresis,
  minimum dwell, throttled updates and timeouts;
- :func:`sweep`: event-time timeouts and segment closing for aircraft that went silent;
- :func:`releasable`: which positions of the reorder buffer have waited long enough.

State lives in plain float64 arrays (one row per aircraft slot; column indices below), so
it can be exported as JSON and restored bit-for-bit. Kernels never allocate objects, do no
I/O, and are compiled lazily on first call (``cache=True``), never at import.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]

NAN = math.nan
KT_TO_MPS = 1852.0 / 3600.0
EARTH_RADIUS_M = 6_371_008.8

# ---------------------------------------------------------------- rejection reasons
ACCEPT = 0
R_DUPLICATE = 1
R_IMPLAUSIBLE = 2
R_LATE = 3
R_INVALID = 4
REASON_NAMES = ("accepted", "duplicate", "implausible_jump", "late", "invalid_position")

# ---------------------------------------------------------------- alert states / transitions
S_OUTSIDE = 0
S_APPROACHING = 1
S_INSIDE = 2
S_EXITED = 3
STATE_NAMES = ("outside", "approaching", "inside", "exited")

TR_APPROACHING = 1
TR_ENTERED = 2
TR_UPDATED = 3
TR_EXITED = 4
TR_CLOSED = 5
TRANSITION_NAMES = ("", "approaching", "entered", "updated", "exited", "closed")

CLOSE_NONE = 0
CLOSE_EXITED = 1
CLOSE_RECEDED = 2
CLOSE_TIMEOUT = 3
CLOSE_REASONS = ("", "exited", "receded", "timeout")

# ---------------------------------------------------------------- per-aircraft track row (T)
# Gate reference (last accepted position as the gate saw it).
T_G_T = 0
T_G_LAT = 1
T_G_LON = 2
T_G_GS = 3
T_G_TRK = 4
T_G_NREJ = 5  # consecutive implausible rejections
T_REL_T = 6  # latest event time released from the reorder buffer (older arrivals are late)
T_SEEN_MAX = 7  # latest event time seen at all (drives the reorder horizon and eviction)
# Latest accepted, scored position.
T_L_T = 8
T_L_LAT = 9
T_L_LON = 10
T_L_ALT = 11
T_L_GS = 12
T_L_TRK = 13
T_L_DIST = 14
T_L_BEAR = 15
T_L_TTE = 16
T_L_CTRY = 17
T_L_GZONE = 18
T_L_INSIDE = 19
T_L_DERIVED = 20  # bit 0: ground speed derived, bit 1: track derived
# Current segment.
T_SEG_OPEN = 21
T_SEG_START = 22
T_SEG_LAST = 23
T_SEG_N = 24
T_SEG_FIRST_LAT = 25
T_SEG_FIRST_LON = 26
T_CPA_D = 27
T_CPA_T = 28
T_CPA_LAT = 29
T_CPA_LON = 30
T_CPA_ALT = 31
T_N_ACC = 32  # accepted positions since the aircraft entered state
T_TRK_EMIT_T = 33  # event time of the last track update published
# Behaviour bookkeeping (streams.core.behaviour), kept in the row so it travels in the state.
T_PAT_BUCKET = 34  # sampling bucket of the last position given to the pattern detector
T_HEARD_BUCKET = 35  # sampling bucket of the last coverage ("heard") record
T_MISSION_SEG = 36  # segment start of the segment already counted as a mission
T_DARK_T = 37  # last-seen time of the silence already reported as a gone-dark candidate
T_ONSTATION = 38  # start of the pattern already reported as an on-station alert
T_GATE0 = 39  # first of streams.core.patterns.GATE_COLS columns: the pattern detector's turn gate
T_ZT0 = 45  # first of NZ time-in-geofence-zone bins, then F time-in-user-fence bins
T_FIXED = 45

# ---------------------------------------------------------------- per-aircraft, per-zone alert row (A)
A_ST = 0
A_PEND = 1  # pending target state, -1 = none
A_PEND_T = 2
A_PEND_LAT = 3
A_PEND_LON = 4
A_PEND_ALT = 5
A_PEND_DIST = 6
A_PEND_BEAR = 7
A_PEND_TTE = 8
A_PEND_CTRY = 9
A_PEND_GS = 10
A_PEND_TRK = 11
A_PEND_GZONE = 12
A_OPEN = 13
A_EP_START = 14
A_SEQ = 15
A_BEST_D = 16
A_BEST_T = 17
A_BEST_LAT = 18
A_BEST_LON = 19
A_BEST_ALT = 20
A_EMIT_D = 21
A_EMIT_T = 22
A_ENTERED = 23
A_SEEN_OUT = 24  # an outside position was seen since the last reset (entry was observed)
A_LAST_IN = 25  # previous position was inside this zone (time-in-fence accounting)
A_PEND_GAP = 26  # silence before the first position of the pending state (coverage hole)
# The fix before the first position of the pending state: a crossing inside a coverage hole is
# placed between the two (streams.core.crossings).
A_PEND_PT = 27
A_PEND_PLAT = 28
A_PEND_PLON = 29
A_PEND_PDIST = 30
A_COLS = 31

# ---------------------------------------------------------------- event row (E)
E_SLOT = 0
E_ZONE = 1
E_CODE = 2
E_T = 3
E_LAT = 4
E_LON = 5
E_ALT = 6
E_DIST = 7
E_BEAR = 8
E_TTE = 9
E_CTRY = 10
E_GS = 11
E_TRK = 12
E_GZONE = 13
E_EP_START = 14
E_SEQ = 15
E_BEST_D = 16
E_BEST_T = 17
E_BEST_LAT = 18
E_BEST_LON = 19
E_BEST_ALT = 20
E_REASON = 21
E_GAP = 22
E_CROSSING = 23
E_PREV = 24
E_TRIG = 25  # index of the accepted position that triggered it, -1 for sweeps
E_ISSUED_T = 26  # event time at which the transition was confirmed
E_ENTERED = 27
# Transitions only (NaN otherwise): the fix before the first position of the new state.
E_PREV_T = 28
E_PREV_LAT = 29
E_PREV_LON = 30
E_PREV_DIST = 31
E_COLS = 32

# ---------------------------------------------------------------- parameter vector (P)
P_DUP_WINDOW = 0
P_DUP_DIST = 1
P_MAX_SPEED = 2
P_MIN_SPEED = 3
P_UNKNOWN_SPEED = 4
P_SLACK = 5
P_SURF_SLACK = 6
P_SURF_MIN = 7
P_SURF_MAX = 8
P_STALE = 9
P_RESET_AFTER = 10
P_DERIVE_MIN_DT = 11
P_SEG_GAP = 12
P_EVICT = 13
P_APP_ENTER = 14
P_APP_LEAVE = 15
P_PRED_ENTER = 16
P_PRED_LEAVE = 17
P_EXIT_MARGIN = 18
P_DWELL = 19
P_TIMEOUT = 20
P_UPD_MARGIN = 21
P_UPD_FRAC = 22
P_UPD_INTERVAL = 23
P_RECEDE_DWELL = 24
P_COLS = 25


def new_track_rows(n: int, n_bins: int) -> F64:
    """Fresh track rows: NaN everywhere except counters and accumulators (zero)."""
    rows = np.full((n, T_FIXED + n_bins), np.nan)
    init_track_rows(rows)
    return rows


def init_track_rows(rows: F64) -> None:
    rows[:, :] = np.nan
    rows[:, T_G_NREJ] = 0.0
    rows[:, T_REL_T] = -np.inf
    rows[:, T_SEEN_MAX] = -np.inf
    rows[:, T_SEG_OPEN] = 0.0
    rows[:, T_SEG_N] = 0.0
    rows[:, T_CPA_D] = np.inf
    rows[:, T_N_ACC] = 0.0
    rows[:, T_ZT0:] = 0.0


def new_alert_rows(n: int, n_zones: int) -> F64:
    rows = np.empty((n, n_zones, A_COLS))
    init_alert_rows(rows)
    return rows


def init_alert_rows(rows: F64) -> None:
    rows[...] = np.nan
    rows[..., A_ST] = S_OUTSIDE
    rows[..., A_PEND] = -1.0
    rows[..., A_OPEN] = 0.0
    rows[..., A_SEQ] = 0.0
    rows[..., A_ENTERED] = 0.0
    rows[..., A_SEEN_OUT] = 0.0
    rows[..., A_LAST_IN] = 0.0


@njit(cache=True)
def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    if a > 1.0:
        a = 1.0
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@njit(cache=True)
def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


@njit(cache=True)
def gate(
    slot: I64,
    t: F64,
    lat: F64,
    lon: F64,
    gs: F64,
    trk: F64,
    ground: B1,
    T: F64,
    P: F64,
    reason: I64,
    gs_out: F64,
    trk_out: F64,
    derived: I64,
) -> int:
    """Gate positions sorted by (slot, event time); returns how many were recovered.

    Writes ``reason`` (ACCEPT or a rejection code), the ground speed and track to use
    (reported, else derived from the previous accepted position, else carried forward) and
    ``derived`` bits. Mirrors readsb's ``speed_check``: the allowed speed is 4/3 of the
    known speed with a floor (200 kt airborne; 20–150 kt on the surface), plus a fixed
    slack for position error; a reference older than ``P_STALE`` is not trusted, and after
    ``P_RESET_AFTER`` consecutive rejections the reference itself is presumed bad.
    """
    recovered = 0
    for i in range(slot.shape[0]):
        s = slot[i]
        ti = t[i]
        gs_out[i] = gs[i]
        trk_out[i] = trk[i]
        derived[i] = 0
        if ti < T[s, T_REL_T]:
            reason[i] = R_LATE
            continue
        T[s, T_REL_T] = ti
        have_ref = not math.isnan(T[s, T_G_T])
        dt = ti - T[s, T_G_T] if have_ref else NAN
        d = _haversine(T[s, T_G_LAT], T[s, T_G_LON], lat[i], lon[i]) if have_ref else NAN
        is_recovery = False
        if have_ref and dt <= P[P_DUP_WINDOW] and d <= P[P_DUP_DIST]:
            reason[i] = R_DUPLICATE
            continue
        if have_ref and dt <= P[P_STALE]:
            ref_gs = T[s, T_G_GS]
            if math.isnan(ref_gs):
                ref_gs = gs[i]
            elif not math.isnan(gs[i]) and gs[i] > ref_gs:
                ref_gs = gs[i]
            speed = P[P_UNKNOWN_SPEED] if math.isnan(ref_gs) else ref_gs * 4.0 / 3.0
            if ground[i]:
                speed = min(max(speed, P[P_SURF_MIN]), P[P_SURF_MAX])
                slack = P[P_SURF_SLACK]
            else:
                speed = max(speed, P[P_MIN_SPEED])
                slack = P[P_SLACK]
            speed = min(speed, P[P_MAX_SPEED])
            if d > slack + speed * KT_TO_MPS * max(dt, 0.0):
                T[s, T_G_NREJ] += 1.0
                if T[s, T_G_NREJ] < P[P_RESET_AFTER]:
                    reason[i] = R_IMPLAUSIBLE
                    continue
                is_recovery = True
                recovered += 1
        reason[i] = ACCEPT
        T[s, T_G_NREJ] = 0.0
        if have_ref and not is_recovery and dt <= P[P_STALE]:
            if math.isnan(gs_out[i]):
                if dt >= P[P_DERIVE_MIN_DT]:
                    gs_out[i] = d / dt / KT_TO_MPS
                else:
                    gs_out[i] = T[s, T_G_GS]
                derived[i] |= 1
            if math.isnan(trk_out[i]):
                if dt >= P[P_DERIVE_MIN_DT] and d > P[P_DUP_DIST]:
                    trk_out[i] = _bearing(T[s, T_G_LAT], T[s, T_G_LON], lat[i], lon[i])
                else:
                    trk_out[i] = T[s, T_G_TRK]
                derived[i] |= 2
        T[s, T_G_T] = ti
        T[s, T_G_LAT] = lat[i]
        T[s, T_G_LON] = lon[i]
        T[s, T_G_GS] = gs_out[i]
        T[s, T_G_TRK] = trk_out[i]
    return recovered


@njit(cache=True)
def _emit(
    E: F64, k: int, s: int, z: int, code: int, A: F64, t: float, lat: float, lon: float, alt: float,
    dist: float, bear: float, tte: float, ctry: float, gs: float, trk: float, gzone: float,
    reason: int, gap: float, prev: int, trig: int, issued: float,
) -> int:  # fmt: skip
    E[k, E_SLOT] = s
    E[k, E_ZONE] = z
    E[k, E_CODE] = code
    E[k, E_T] = t
    E[k, E_LAT] = lat
    E[k, E_LON] = lon
    E[k, E_ALT] = alt
    E[k, E_DIST] = dist
    E[k, E_BEAR] = bear
    E[k, E_TTE] = tte
    E[k, E_CTRY] = ctry
    E[k, E_GS] = gs
    E[k, E_TRK] = trk
    E[k, E_GZONE] = gzone
    E[k, E_EP_START] = A[s, z, A_EP_START]
    E[k, E_SEQ] = A[s, z, A_SEQ]
    E[k, E_BEST_D] = A[s, z, A_BEST_D]
    E[k, E_BEST_T] = A[s, z, A_BEST_T]
    E[k, E_BEST_LAT] = A[s, z, A_BEST_LAT]
    E[k, E_BEST_LON] = A[s, z, A_BEST_LON]
    E[k, E_BEST_ALT] = A[s, z, A_BEST_ALT]
    E[k, E_REASON] = reason
    E[k, E_GAP] = gap
    E[k, E_CROSSING] = A[s, z, A_SEEN_OUT]
    E[k, E_PREV] = prev
    E[k, E_TRIG] = trig
    E[k, E_ISSUED_T] = issued
    E[k, E_ENTERED] = A[s, z, A_ENTERED]
    E[k, E_PREV_T] = NAN
    E[k, E_PREV_LAT] = NAN
    E[k, E_PREV_LON] = NAN
    E[k, E_PREV_DIST] = NAN
    A[s, z, A_SEQ] += 1.0
    return k + 1


@njit(cache=True)
def _prev_fix(E: F64, k: int, A: F64, s: int, z: int) -> None:
    """Copy the pending state's preceding fix into event row k (a transition)."""
    E[k, E_PREV_T] = A[s, z, A_PEND_PT]
    E[k, E_PREV_LAT] = A[s, z, A_PEND_PLAT]
    E[k, E_PREV_LON] = A[s, z, A_PEND_PLON]
    E[k, E_PREV_DIST] = A[s, z, A_PEND_PDIST]


@njit(cache=True)
def _timeout_zones(T: F64, A: F64, s: int, E: F64, k: int, P: F64, trig: int) -> int:
    """Close every open episode of slot s at last-seen + timeout and reset its zone states."""
    t_close = T[s, T_L_T] + P[P_TIMEOUT]
    for z in range(A.shape[1]):
        if A[s, z, A_OPEN] == 1.0 and A[s, z, A_ST] == S_INSIDE and A[s, z, A_PEND] == S_EXITED:
            # It left and went silent before the dwell ran out: that is an exit (at the first
            # position past the exit margin), not an episode that timed out "inside".
            k = _emit(
                E, k, s, z, TR_EXITED, A, A[s, z, A_PEND_T], A[s, z, A_PEND_LAT], A[s, z, A_PEND_LON],
                A[s, z, A_PEND_ALT], A[s, z, A_PEND_DIST], A[s, z, A_PEND_BEAR], A[s, z, A_PEND_TTE],
                A[s, z, A_PEND_CTRY], A[s, z, A_PEND_GS], A[s, z, A_PEND_TRK], A[s, z, A_PEND_GZONE],
                CLOSE_EXITED, A[s, z, A_PEND_GAP], S_INSIDE, trig, t_close,
            )  # fmt: skip
            _prev_fix(E, k - 1, A, s, z)
        elif A[s, z, A_OPEN] == 1.0:
            k = _emit(
                E, k, s, z, TR_CLOSED, A, t_close, T[s, T_L_LAT], T[s, T_L_LON], T[s, T_L_ALT],
                T[s, T_L_DIST] if z == 0 else NAN, T[s, T_L_BEAR] if z == 0 else NAN,
                T[s, T_L_TTE] if z == 0 else NAN, T[s, T_L_CTRY], T[s, T_L_GS], T[s, T_L_TRK],
                T[s, T_L_GZONE], CLOSE_TIMEOUT, P[P_TIMEOUT], int(A[s, z, A_ST]), trig, t_close,
            )  # fmt: skip
        A[s, z, A_OPEN] = 0.0
        A[s, z, A_ST] = S_OUTSIDE
        A[s, z, A_PEND] = -1.0
        A[s, z, A_ENTERED] = 0.0
        A[s, z, A_SEEN_OUT] = 0.0
        A[s, z, A_LAST_IN] = 0.0
    return k


@njit(cache=True)
def _close_segment(T: F64, s: int, SEG: F64, m: int, trig: int) -> int:
    """Snapshot the open segment of slot s into SEG[m] and mark it closed.

    The two extra columns hold the slot and the index of the position that closed it (-1 for
    a sweep), so the caller can tell which callsign the segment flew under.
    """
    if T[s, T_SEG_OPEN] == 1.0:
        ncol = T.shape[1]
        for c in range(ncol):
            SEG[m, c] = T[s, c]
        SEG[m, ncol] = s
        SEG[m, ncol + 1] = trig
        m += 1
    T[s, T_SEG_OPEN] = 0.0
    return m


@njit(cache=True)
def track_step(
    slot: I64,
    t: F64,
    lat: F64,
    lon: F64,
    alt: F64,
    gs: F64,
    trk: F64,
    derived: I64,
    inside: B1,
    dist: F64,
    bear: F64,
    gzone: I64,
    ctry: F64,
    tte: F64,
    fences: B1,
    T: F64,
    A: F64,
    P: F64,
    n_gzone_bins: int,
    E: F64,
    SEG: F64,
    reset: B1,
) -> tuple[int, int]:
    """Segments, statistics and alert state machines for accepted, scored positions.

    Positions are sorted by (slot, event time). Returns (events written to E, segment
    snapshots written to SEG). ``reset[i]`` is set where slot state was wiped because the
    aircraft had been silent longer than the eviction time (what eviction would have done).
    """
    k = 0
    m = 0
    n_zones = A.shape[1]
    for i in range(slot.shape[0]):
        s = slot[i]
        ti = t[i]
        reset[i] = False
        last_t = T[s, T_L_T]
        gap = ti - last_t if not math.isnan(last_t) else NAN
        prev_lat = T[s, T_L_LAT]
        prev_lon = T[s, T_L_LON]
        prev_dist = T[s, T_L_DIST]
        if gap >= P[P_TIMEOUT]:
            k = _timeout_zones(T, A, s, E, k, P, i)
        if gap >= P[P_SEG_GAP]:
            m = _close_segment(T, s, SEG, m, i)
        if gap >= P[P_EVICT]:
            # Same state a freshly evicted-and-recreated aircraft would have: replays that do
            # and do not call advance() between the two positions give the same alerts.
            for c in range(T_G_NREJ, T.shape[1]):
                if c != T_REL_T and c != T_SEEN_MAX:
                    T[s, c] = NAN
            T[s, T_G_NREJ] = 0.0
            T[s, T_SEG_OPEN] = 0.0
            T[s, T_SEG_N] = 0.0
            T[s, T_CPA_D] = np.inf
            T[s, T_N_ACC] = 0.0
            for c in range(T_ZT0, T.shape[1]):
                T[s, c] = 0.0
            reset[i] = True
            gap = NAN
            last_t = NAN
        # ---- segment bookkeeping
        if T[s, T_SEG_OPEN] != 1.0:
            T[s, T_SEG_OPEN] = 1.0
            T[s, T_SEG_START] = ti
            T[s, T_SEG_N] = 0.0
            T[s, T_SEG_FIRST_LAT] = lat[i]
            T[s, T_SEG_FIRST_LON] = lon[i]
            T[s, T_CPA_D] = np.inf
            T[s, T_CPA_T] = NAN
            T[s, T_CPA_LAT] = NAN
            T[s, T_CPA_LON] = NAN
            T[s, T_CPA_ALT] = NAN
            for c in range(T_ZT0, T.shape[1]):
                T[s, c] = 0.0
        elif T[s, T_SEG_N] > 0:
            # Time between two positions is credited to the zone of the earlier one.
            dt = ti - T[s, T_SEG_LAST]
            gz = int(T[s, T_L_GZONE])
            if -1 <= gz < n_gzone_bins - 1:
                T[s, T_ZT0 + gz + 1] += dt
            for z in range(1, n_zones):
                if A[s, z, A_LAST_IN] == 1.0:
                    T[s, T_ZT0 + n_gzone_bins + z - 1] += dt
        T[s, T_SEG_N] += 1.0
        T[s, T_SEG_LAST] = ti
        T[s, T_N_ACC] += 1.0
        di = dist[i]
        if di < T[s, T_CPA_D]:
            T[s, T_CPA_D] = di
            T[s, T_CPA_T] = ti
            T[s, T_CPA_LAT] = lat[i]
            T[s, T_CPA_LON] = lon[i]
            T[s, T_CPA_ALT] = alt[i]
        T[s, T_L_T] = ti
        T[s, T_L_LAT] = lat[i]
        T[s, T_L_LON] = lon[i]
        T[s, T_L_ALT] = alt[i]
        T[s, T_L_GS] = gs[i]
        T[s, T_L_TRK] = trk[i]
        T[s, T_L_DIST] = di
        T[s, T_L_BEAR] = bear[i]
        T[s, T_L_TTE] = tte[i]
        T[s, T_L_CTRY] = ctry[i]
        T[s, T_L_GZONE] = gzone[i]
        T[s, T_L_INSIDE] = 1.0 if inside[i] else 0.0
        T[s, T_L_DERIVED] = derived[i]
        # ---- alert state machines: zone 0 = sovereign airspace, z >= 1 = user fence z-1
        for z in range(n_zones):
            if z == 0:
                ins = inside[i]
                d = di
                tt = tte[i]
                near_enter = d <= P[P_APP_ENTER] or tt <= P[P_PRED_ENTER]
                near_stay = d <= P[P_APP_LEAVE] or tt <= P[P_PRED_LEAVE]
                # NaN distance counts as far: an unscored position never pins an aircraft inside.
                out_exit = (not ins) and not (d < P[P_EXIT_MARGIN])
            else:
                ins = fences[i, z - 1]
                d = NAN
                tt = NAN
                near_enter = False
                near_stay = False
                out_exit = not ins
            A[s, z, A_LAST_IN] = 1.0 if ins else 0.0
            if not ins:
                A[s, z, A_SEEN_OUT] = 1.0
            st = int(A[s, z, A_ST])
            if st == S_OUTSIDE:
                target = S_INSIDE if ins else (S_APPROACHING if near_enter else S_OUTSIDE)
            elif st == S_APPROACHING:
                target = S_INSIDE if ins else (S_APPROACHING if near_stay else S_OUTSIDE)
            elif st == S_INSIDE:
                target = S_EXITED if out_exit else S_INSIDE
            else:
                target = S_INSIDE if ins else (S_EXITED if near_stay else S_OUTSIDE)
            # Symmetric hysteresis: an exit needs a position past the exit margin, and so does
            # cancelling a pending entry. An aircraft working along the line (dipping in for
            # seconds, never clearing the margin in between) is one entry, not none.
            if A[s, z, A_PEND] == S_INSIDE and target != S_INSIDE and not out_exit:
                target = S_INSIDE
            committed = False
            if target == st:
                A[s, z, A_PEND] = -1.0
            else:
                if A[s, z, A_PEND] != target:
                    A[s, z, A_PEND] = target
                    A[s, z, A_PEND_T] = ti
                    A[s, z, A_PEND_LAT] = lat[i]
                    A[s, z, A_PEND_LON] = lon[i]
                    A[s, z, A_PEND_ALT] = alt[i]
                    A[s, z, A_PEND_DIST] = d
                    A[s, z, A_PEND_BEAR] = bear[i] if z == 0 else NAN
                    A[s, z, A_PEND_TTE] = tt
                    A[s, z, A_PEND_CTRY] = ctry[i]
                    A[s, z, A_PEND_GS] = gs[i]
                    A[s, z, A_PEND_TRK] = trk[i]
                    A[s, z, A_PEND_GZONE] = gzone[i]
                    A[s, z, A_PEND_GAP] = gap
                    A[s, z, A_PEND_PT] = last_t
                    A[s, z, A_PEND_PLAT] = prev_lat
                    A[s, z, A_PEND_PLON] = prev_lon
                    A[s, z, A_PEND_PDIST] = prev_dist
                dwell = P[P_RECEDE_DWELL] if st == S_APPROACHING and target == S_OUTSIDE else P[P_DWELL]
                if ti - A[s, z, A_PEND_T] >= dwell:
                    committed = True
                    A[s, z, A_ST] = target
                    A[s, z, A_PEND] = -1.0
                    code = 0
                    close = CLOSE_NONE
                    if (st == S_OUTSIDE or st == S_EXITED) and (target == S_APPROACHING or target == S_INSIDE):
                        A[s, z, A_OPEN] = 1.0
                        A[s, z, A_EP_START] = A[s, z, A_PEND_T]
                        A[s, z, A_SEQ] = 0.0
                        A[s, z, A_ENTERED] = 0.0
                        A[s, z, A_BEST_D] = A[s, z, A_PEND_DIST]
                        A[s, z, A_BEST_T] = A[s, z, A_PEND_T]
                        A[s, z, A_BEST_LAT] = A[s, z, A_PEND_LAT]
                        A[s, z, A_BEST_LON] = A[s, z, A_PEND_LON]
                        A[s, z, A_BEST_ALT] = A[s, z, A_PEND_ALT]
                        code = TR_APPROACHING if target == S_APPROACHING else TR_ENTERED
                    elif st == S_APPROACHING and target == S_INSIDE:
                        code = TR_ENTERED
                    elif st == S_APPROACHING and target == S_OUTSIDE:
                        code = TR_CLOSED
                        close = CLOSE_RECEDED
                    elif st == S_INSIDE and target == S_EXITED:
                        code = TR_EXITED
                        close = CLOSE_EXITED
                    if code == TR_ENTERED:
                        A[s, z, A_ENTERED] = 1.0
                    if code != 0:
                        if z == 0 and di < A[s, z, A_BEST_D]:
                            A[s, z, A_BEST_D] = di
                            A[s, z, A_BEST_T] = ti
                            A[s, z, A_BEST_LAT] = lat[i]
                            A[s, z, A_BEST_LON] = lon[i]
                            A[s, z, A_BEST_ALT] = alt[i]
                        k = _emit(
                            E, k, s, z, code, A, A[s, z, A_PEND_T], A[s, z, A_PEND_LAT], A[s, z, A_PEND_LON],
                            A[s, z, A_PEND_ALT], A[s, z, A_PEND_DIST], A[s, z, A_PEND_BEAR], A[s, z, A_PEND_TTE],
                            A[s, z, A_PEND_CTRY], A[s, z, A_PEND_GS], A[s, z, A_PEND_TRK], A[s, z, A_PEND_GZONE],
                            close, A[s, z, A_PEND_GAP], st, i, ti,
                        )  # fmt: skip
                        _prev_fix(E, k - 1, A, s, z)
                        A[s, z, A_EMIT_D] = A[s, z, A_BEST_D]
                        A[s, z, A_EMIT_T] = ti
                        if close != CLOSE_NONE:
                            A[s, z, A_OPEN] = 0.0
            # ---- closest approach so far (every position of an open episode: the closing message
            # carries the true one), and throttled updates while an episode is open. No update
            # while a state change is pending: the transition itself will carry it.
            if z == 0 and A[s, z, A_OPEN] == 1.0 and di < A[s, z, A_BEST_D]:
                A[s, z, A_BEST_D] = di
                A[s, z, A_BEST_T] = ti
                A[s, z, A_BEST_LAT] = lat[i]
                A[s, z, A_BEST_LON] = lon[i]
                A[s, z, A_BEST_ALT] = alt[i]
            if z == 0 and A[s, z, A_OPEN] == 1.0 and not committed and A[s, z, A_PEND] == -1.0:
                emitted_d = A[s, z, A_EMIT_D]
                margin = max(P[P_UPD_MARGIN], P[P_UPD_FRAC] * abs(emitted_d))
                if emitted_d - A[s, z, A_BEST_D] >= margin and ti - A[s, z, A_EMIT_T] >= P[P_UPD_INTERVAL]:
                    k = _emit(
                        E, k, s, z, TR_UPDATED, A, ti, lat[i], lon[i], alt[i], di, bear[i], tte[i], ctry[i],
                        gs[i], trk[i], gzone[i], CLOSE_NONE, gap, int(A[s, z, A_ST]), i, ti,
                    )  # fmt: skip
                    A[s, z, A_EMIT_D] = A[s, z, A_BEST_D]
                    A[s, z, A_EMIT_T] = ti
    return k, m


@njit(cache=True)
def releasable(t: F64, slot: I64, alive: B1, T: F64, horizon: float, tolerance: float, out: B1) -> int:
    """Which reorder-buffer rows may leave: alive, and at least ``tolerance`` older than their
    aircraft's newest position, or older than ``horizon``. Returns how many.

    One pass over the buffer without temporaries: at a 2 s tolerance on a 20,000 positions/s
    feed the buffer holds ~40,000 rows and is checked every 10 ms batch.
    """
    n = 0
    for i in range(t.shape[0]):
        ok = alive[i] and (t[i] <= horizon or t[i] <= T[slot[i], T_SEEN_MAX] - tolerance)
        out[i] = ok
        if ok:
            n += 1
    return n


@njit(cache=True)
def sweep(slots: I64, now: float, T: F64, A: F64, P: F64, E: F64, SEG: F64, evict: B1) -> tuple[int, int]:
    """Event-time housekeeping for the given slots at stream time ``now``.

    Closes episodes silent for the alert timeout (stamped last-seen + timeout, exactly as
    :func:`track_step` would when the next position arrives), closes segments silent for the
    segment gap, and flags slots silent for the eviction time (the caller frees them).
    """
    k = 0
    m = 0
    for j in range(slots.shape[0]):
        s = slots[j]
        evict[j] = False
        last_t = T[s, T_L_T]
        if not math.isnan(last_t):
            if now - last_t >= P[P_TIMEOUT]:
                open_or_busy = False
                for z in range(A.shape[1]):
                    if A[s, z, A_OPEN] == 1.0 or A[s, z, A_ST] != S_OUTSIDE or A[s, z, A_PEND] != -1.0:
                        open_or_busy = True
                if open_or_busy:
                    k = _timeout_zones(T, A, s, E, k, P, -1)
            if now - last_t >= P[P_SEG_GAP]:
                m = _close_segment(T, s, SEG, m, -1)
        if now - T[s, T_SEEN_MAX] >= P[P_EVICT] and (math.isnan(last_t) or now - last_t >= P[P_EVICT]):
            evict[j] = True
    return k, m
