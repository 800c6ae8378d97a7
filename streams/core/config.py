"""Tuning constants of the track / classification / alert engine, in one frozen dataclass.

This module owns :class:`EngineConfig`: every window, threshold and gate the engine uses,
each with the reason for its default. It reads no environment: ``streams/settings.py``
builds one from the user's settings and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from streams.core import kernels as K

NM = 1852.0
ALERT_POLICIES = ("military", "all")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """All tuning constants of :class:`~streams.core.engine.Engine` (seconds, metres, knots)."""

    # --- event-time ordering
    # Positions are held this long (event time) so out-of-order arrivals can be sorted in;
    # receivers' clocks and network paths disagree by up to a second or two, and ADS-B
    # sends a position every 0.5 s, so 2 s delays alerts by no more than a few positions.
    reorder_tolerance_s: float = 2.0
    # --- duplicate suppression (same message heard by several receivers)
    # Aggregators stamp the same message from different receivers within ~1 s of each other.
    duplicate_window_s: float = 1.0
    # CPR decodes of one message are identical; an airborne aircraft moves > 30 m between
    # its own position messages (0.5 s at 120 kt), so 10 m only matches true duplicates.
    duplicate_distance_m: float = 10.0
    # --- plausibility gate (after readsb's speed_check)
    # Fastest thing plausibly on an ADS-B feed near Mexico (fighters at altitude, Mach ~2).
    max_plausible_speed_kt: float = 1400.0
    # readsb: airborne allowed speed never below 200 kt, whatever the reported speed.
    gate_min_speed_kt: float = 200.0
    # readsb: speed assumed (before the 4/3 margin) when neither fix reports one.
    gate_unknown_speed_kt: float = 600.0
    # readsb: 500 m airborne / 100 m surface base distance for position error.
    gate_slack_m: float = 500.0
    gate_surface_slack_m: float = 100.0
    # readsb: surface speed clamped to 20–150 kt.
    gate_surface_min_kt: float = 20.0
    gate_surface_max_kt: float = 150.0
    # readsb trusts no reference older than 120 s: after such a gap the next fix is accepted
    # (recovery after a gap); the speed bound would allow > 80 km anyway.
    gate_stale_s: float = 120.0
    # After this many consecutive rejections the reference fix is presumed to be the bad one
    # (e.g. the aircraft's first position was a CPR glitch) and the gate resets on the next.
    gate_reset_after: int = 3
    # Ground speed / track are derived from displacement only over at least 1 s: shorter
    # intervals amplify position noise (10 m error over 0.5 s is 40 kt).
    derive_min_dt_s: float = 1.0
    # --- segments and state lifetime
    # A silence this long starts a new track segment: 10 min is longer than ordinary coverage
    # holes mid-flight and shorter than a turnaround.
    segment_gap_s: float = 600.0
    # Aircraft silent this long are dropped from state (memory bound); must be at least the
    # alert timeout so no open episode is dropped without being closed.
    evict_after_s: float = 7200.0
    # --- alert state machine (zone "sovereign"); hysteresis: enter < leave
    # Within 50 nm of the 12 nm line, or predicted to cross within 15 min, is "approaching":
    # 50 nm is the middle geofence ring and ~6 min for an airliner, ~15 min for a P-8 on station.
    approach_enter_m: float = 50.0 * NM
    # Leaving "approaching" needs 60 nm (10 nm hysteresis) so a patrol orbit on the 50 nm
    # ring does not flap between states.
    approach_leave_m: float = 60.0 * NM
    predict_enter_s: float = 900.0
    # Predicted-entry hysteresis: 20 min to stop counting as approaching.
    predict_leave_s: float = 1200.0
    # Being outside needs 0.5 nm clearance of the boundary to count as "exited": an aircraft
    # tracking along the 12 nm line within position error does not flap inside/outside.
    exit_margin_m: float = 0.5 * NM
    # A state change is confirmed only after the new condition held this long (event time):
    # at least two positions 30 s apart, so a single glitch or a clipped corner does not alert.
    min_dwell_s: float = 30.0
    # An approach episode closes ("receded") only after the aircraft stayed beyond the leave
    # thresholds this long: a patrol racetrack straddling the ring stays one episode.
    recede_dwell_s: float = 900.0
    # An episode with no positions for this long is closed ("closed", reason timeout).
    # Coverage over Mexico's interior and the Gulf is patchy: the readsb trace of DAL1812
    # (ac671b) is silent 48 min while crossing Yucatán, and closing sooner would split one
    # crossing into two episodes and lose its exit.
    alert_timeout_s: float = 3600.0
    # Silence before a position of at least this long is a hole in coverage: ADS-B positions come
    # every 0.5-10 s where an aircraft is heard (feeders thin to ~5 s), so a minute without is
    # not the reporting interval. An entry/exit after such a hole is placed at the estimated
    # crossing (streams.core.crossings), and only then does an alert carry silence_s.
    coverage_hole_s: float = 60.0
    # "updated" is sent when the closest approach improved by max(5 km, 25 %) since the last
    # message, and at most every 2 min: roughly logarithmic spacing, a handful per episode.
    update_margin_m: float = 5000.0
    update_margin_frac: float = 0.25
    update_min_interval_s: float = 120.0
    # advance() sweeps every aircraft for timeouts/eviction at most this often (event time):
    # the sweep visits all state, timeouts are minutes long, and the events it emits are
    # stamped last-seen + timeout whenever it runs, so the interval changes no output.
    sweep_interval_s: float = 10.0
    # --- outputs
    # Track updates per aircraft at most this often (event time), plus on every alert and
    # segment end: a live map needs no more, and it bounds the track topic's volume.
    track_update_interval_s: float = 5.0
    # Closest approaches farther than this from the sovereign boundary get no place description
    # in track updates: the gazetteer covers Mexico and its border band, and "718 km N of
    # Ruidoso" says nothing to an analyst. Alerts are always described.
    describe_within_m: float = 500_000.0
    # "military": alerts only for military/surveillance aircraft and the watchlist;
    # "all": every aircraft (analysts, tests on civil recordings). Tracking is policy-free.
    alert_policy: str = "military"
    watchlist: frozenset[str] = field(default_factory=frozenset)
    # --- behaviour (streams.core.behaviour): patterns, missions, gone dark
    # Run the on-station pattern detector (benchmarks switch it off to measure what it adds).
    patterns: bool = True
    # An on-station pattern of an aircraft of interest this close to the sovereign boundary is an
    # alert of its own: 100 nm is the outermost approach ring (the default).
    on_station_alert_m: float = 100.0 * NM
    # A mission is a segment of an aircraft of interest that came within the outermost ring (the
    # report's definition); None takes the geofence's outermost ring.
    mission_ring_m: float | None = None
    # Silence after which an aircraft of interest near the line is a gone-dark candidate (5 min).
    dark_after_s: float = 300.0
    # Coverage ("heard") records are kept for positions this close to the boundary: the outer
    # ring (112 nm from the coast) plus a 15-min prediction at 450 kt is ~420 km, plus the 50 km
    # evidence radius; anything farther cannot be a neighbour of a candidate.
    heard_within_m: float = 500_000.0

    def __post_init__(self) -> None:
        if self.alert_policy not in ALERT_POLICIES:
            raise ValueError(f"alert_policy must be one of {ALERT_POLICIES}, not {self.alert_policy!r}")
        if self.approach_leave_m < self.approach_enter_m:
            raise ValueError("approach_leave_m must be >= approach_enter_m (hysteresis)")
        if self.predict_leave_s < self.predict_enter_s:
            raise ValueError("predict_leave_s must be >= predict_enter_s (hysteresis)")
        if self.evict_after_s < max(self.alert_timeout_s, self.segment_gap_s):
            raise ValueError("evict_after_s must be >= alert_timeout_s and segment_gap_s")
        if min(self.reorder_tolerance_s, self.min_dwell_s, self.recede_dwell_s) < 0 or self.gate_reset_after < 1:
            raise ValueError("tolerance and dwell times must be >= 0, gate_reset_after >= 1")
        object.__setattr__(self, "watchlist", frozenset(w.strip().lower() for w in self.watchlist))

    def with_(self, **changes: Any) -> EngineConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def params(self) -> np.ndarray:
        """The numeric parameters as the float vector the kernels take."""
        p = np.zeros(K.P_COLS)
        p[K.P_DUP_WINDOW] = self.duplicate_window_s
        p[K.P_DUP_DIST] = self.duplicate_distance_m
        p[K.P_MAX_SPEED] = self.max_plausible_speed_kt
        p[K.P_MIN_SPEED] = self.gate_min_speed_kt
        p[K.P_UNKNOWN_SPEED] = self.gate_unknown_speed_kt * 4.0 / 3.0
        p[K.P_SLACK] = self.gate_slack_m
        p[K.P_SURF_SLACK] = self.gate_surface_slack_m
        p[K.P_SURF_MIN] = self.gate_surface_min_kt
        p[K.P_SURF_MAX] = self.gate_surface_max_kt
        p[K.P_STALE] = self.gate_stale_s
        p[K.P_RESET_AFTER] = self.gate_reset_after
        p[K.P_DERIVE_MIN_DT] = self.derive_min_dt_s
        p[K.P_SEG_GAP] = self.segment_gap_s
        p[K.P_EVICT] = self.evict_after_s
        p[K.P_APP_ENTER] = self.approach_enter_m
        p[K.P_APP_LEAVE] = self.approach_leave_m
        p[K.P_PRED_ENTER] = self.predict_enter_s
        p[K.P_PRED_LEAVE] = self.predict_leave_s
        p[K.P_EXIT_MARGIN] = self.exit_margin_m
        p[K.P_DWELL] = self.min_dwell_s
        p[K.P_TIMEOUT] = self.alert_timeout_s
        p[K.P_UPD_MARGIN] = self.update_margin_m
        p[K.P_UPD_FRAC] = self.update_margin_frac
        p[K.P_UPD_INTERVAL] = self.update_min_interval_s
        p[K.P_RECEDE_DWELL] = self.recede_dwell_s
        return p
