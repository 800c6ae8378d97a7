"""The one engine both the streaming agents and ``skyfence analyze`` run: positions in,
track updates, alerts and rejections out.

This module owns batch orchestration: it takes a batch as columns
(:class:`~streams.columns.PositionColumns`, or a list of :class:`~streams.messages.Position`
that it turns into columns), holds positions in an event-time reorder buffer
(:mod:`streams.core.reorder`), runs the gate kernel, scores every accepted position of the
batch with ONE call to :meth:`Geofence.score`, runs the track/alert kernel, and builds the
``track.v1`` and ``alert.v1`` documents. Per-aircraft state is a row of float arrays (see
:mod:`streams.core.kernels`) plus a callsign and any buffered positions, kept in slots here;
:meth:`Engine.export_state` / :meth:`Engine.import_state` turn it into plain JSON-able dicts,
and :meth:`Engine.export_state_bytes` / :meth:`Engine.import_state_bytes` into the compact
bytes the worker's changelog-backed table keeps (the format: :mod:`streams.core.snapshot`).

Time is event time only. :meth:`Engine.advance` is driven by the caller's watermark, never
by the wall clock, so a replay gives the same alerts (same ids) every time, whatever the
batch sizes, and a restart from exported state continues identically.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from streams.columns import PositionColumns
from streams.core import kernels as K
from streams.core.alerts import SOVEREIGN_ZONE, admitted, build_alert, opt
from streams.core.classify import Classification, Classifier
from streams.core.config import EngineConfig
from streams.core.crossings import estimate_hole_crossings
from streams.core.places import Places
from streams.core.reorder import Pending, ReorderBuffer
from streams.core.rules import RuleSet, judge, judge_facts
from streams.core.rules import apply as apply_rules
from streams.core.snapshot import StateCodec
from streams.messages import Position

TRACK_SCHEMA = "track.v1"

F64 = npt.NDArray[np.float64]

# Slots are allocated in chunks; growing by doubling keeps amortised cost O(1) per aircraft.
_INITIAL_CAPACITY = 1024
# Positions the kernels take at once when a release is big: their working arrays cost ~2 KB
# a position (memray: ~150 MB for one release of 75,000 in a burst of new aircraft), while a
# kernel call's fixed cost (tens of us) is nothing against 8,192 positions.
RELEASE_CHUNK = 8192
# Aircraft the sweep kernel takes at once: its worst-case output rows are ~1 KB an aircraft.
SWEEP_CHUNK = 16384
# Valid coordinate ranges; anything else (or NaN) is refused as invalid_position.
_LAT_MAX = 90.0
_LON_MAX = 180.0


class Scores(Protocol):
    """What :meth:`Geofence.score` returns (arrays of length n)."""

    inside: npt.NDArray[np.bool_]
    dist_m: F64
    bearing_deg: F64
    zone: npt.NDArray[np.integer[Any]]
    country: npt.NDArray[np.integer[Any]]
    tte_s: F64
    fences: npt.NDArray[np.bool_]


class GeofenceLike(Protocol):
    """The part of :class:`streams.geo.Geofence` the engine uses."""

    ring_m: Any
    fence_names: Any

    def score(self, lat: F64, lon: F64, alt_ft: F64, gs_kt: F64, track_deg: F64, closest_approach: bool = ...) -> Any:
        ...

    def zone_names(self) -> Any: ...


@dataclass(slots=True)
class EngineOutput:
    """What one :meth:`Engine.process` / :meth:`Engine.advance` call produced.

    ``counters`` (all per call; :attr:`Engine.totals` accumulates them): ``positions_in``,
    ``accepted``, ``rejected.<reason>``, ``recovered`` (plausibility gate reset on a new
    reference), ``events.<transition>`` (state-machine transitions, any aircraft),
    ``alerts.<transition>`` (published under the policy), ``alerts_suppressed_by_policy``,
    ``track_updates``, ``segments_closed``, ``evicted``.
    """

    # track.v1 documents, or what :attr:`Engine.track_encoder` made of each.
    track_updates: list[Any] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # Every refused position with its reason code (duplicate, implausible_jump, late,
    # invalid_position): nothing is dropped silently; the caller counts / dead-letters them.
    rejected: list[tuple[Position, str]] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    # Aircraft whose state changed (export these to the state table) and aircraft dropped
    # from state (delete their table entries).
    touched: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    # Cross-aircraft facts for the keyed stages (streams.core.behaviour): (coverage cell, heard /
    # gone-dark candidate / reappearance record) and missions for the ledger.
    coverage: list[tuple[str, Any]] = field(default_factory=list)
    missions: list[Any] = field(default_factory=list)

    def extend(self, other: EngineOutput) -> None:
        self.track_updates.extend(other.track_updates)
        self.alerts.extend(other.alerts)
        self.rejected.extend(other.rejected)
        self.counters.update(other.counters)
        seen = set(self.touched)
        self.touched.extend(x for x in other.touched if x not in seen)
        self.evicted.extend(other.evicted)
        self.coverage.extend(other.coverage)
        self.missions.extend(other.missions)


class Engine:
    """Tracks, classification and alert state machines for a stream of positions."""

    def __init__(self, config: EngineConfig, geofence: GeofenceLike, classifier: Classifier, places: Places,
                 rules: RuleSet | None = None) -> None:
        self.config = config
        # The users' alert rules (streams.core.rules), after the built-in emergency-squawk rule.
        self.rules = rules if rules is not None else RuleSet()
        self.geofence = geofence
        self.classifier = classifier
        self.places = places
        self._P = config.params()
        self.ring_names: list[str] = _ring_names(geofence)
        self.fence_names: list[str] = [str(f) for f in (getattr(geofence, "fence_names", None) or ())]
        self.country_names: dict[int, str] = _country_names(geofence)
        # Time-in-zone bins: [beyond all rings, sovereign, ring 1 .. ring R].
        self.zone_bin_names: list[str] = ["beyond", SOVEREIGN_ZONE, *self.ring_names]
        self.alert_zones: list[str] = [SOVEREIGN_ZONE, *self.fence_names]
        self._nzb = len(self.zone_bin_names)
        self._nbins = self._nzb + len(self.fence_names)
        self._cap = 0
        self._T: F64 = K.new_track_rows(0, self._nbins)
        self._A: F64 = K.new_alert_rows(0, len(self.alert_zones))
        self._slot: dict[str, int] = {}
        self._icao: list[str | None] = []
        self._callsign: list[str | None] = []
        self._squawk: list[str | None] = []  # latest squawk heard, for the alert rules
        self._cpa_desc: list[tuple[float, str | None] | None] = []
        self._cls: list[tuple[str | None, Classification] | None] = []
        self._free: list[int] = []
        self._used = np.zeros(0, dtype=np.bool_)
        self._next_sweep = -math.inf
        self._grow(_INITIAL_CAPACITY)
        self._pend = ReorderBuffer()
        self._released_slots = np.empty(0, dtype=np.int64)
        self._arrival = 0
        self.totals: Counter[str] = Counter()
        # When set, each track document is handed to it as soon as it is built and only its
        # result is kept: a burst (a catch-up releasing 75,000 first positions at once) then
        # holds 75,000 encoded records, not 75,000 nested dicts at ~10 KB each (seen: 1.1 GB).
        self.track_encoder: Callable[[dict[str, Any]], Any] | None = None
        from streams.core.behaviour import Behaviour

        self.behaviour = Behaviour(self)
        # Per-aircraft state in and out (export_state*, import_state*): the format's owner.
        self._state = StateCodec(self)

    # ================================================================== public API
    def process(self, batch: Sequence[Position] | PositionColumns) -> EngineOutput:
        """Feed a batch of positions (any order, any aircraft mix)."""
        out = EngineOutput()
        cols = batch if isinstance(batch, PositionColumns) else PositionColumns.from_positions(batch)
        out.counters["positions_in"] += len(cols)
        if len(cols):
            incoming = self._admit(cols, out)
            self._pend.add(incoming)
            self._release(self._pend.releasable(self._T, -math.inf, self.config.reorder_tolerance_s), out)
            # Buffered positions are state too: an aircraft whose position only entered the
            # reorder buffer must still be exported, or a restart would lose that position.
            # (Nothing buffered: every incoming position was released, as at tolerance 0.)
            if self._pend.size:
                out.touched.extend(self._icaos(np.setdiff1d(incoming.slot, self._released_slots)))
        self._finish(out)
        return out

    def advance(self, watermark_event_time: float) -> EngineOutput:
        """Move stream time to ``watermark_event_time`` (event time, never wall clock).

        Releases buffered positions older than the watermark minus the reorder tolerance,
        closes episodes silent for ``alert_timeout_s``, closes segments silent for
        ``segment_gap_s`` and evicts aircraft silent for ``evict_after_s``.
        """
        out = EngineOutput()
        now = float(watermark_event_time)
        # Positions newer than now - tolerance may still be joined by earlier ones: the sweep
        # judges silence from there, so it never times out an aircraft with a buffered position.
        horizon = now - self.config.reorder_tolerance_s
        if self._pend.size:
            self._release(self._pend.releasable(self._T, horizon, math.inf), out)
        if horizon >= self._next_sweep:
            self._next_sweep = horizon + self.config.sweep_interval_s
            used = np.flatnonzero(self._used).astype(np.int64)
            E, SEG, evict = self._sweep_rows(used, horizon)
            k, m = E.shape[0], SEG.shape[0]
            self._emit_events(E[:k], None, out)
            self._emit_segments(SEG[:m], None, out)
            n_cov, n_alerts = len(out.coverage), len(out.alerts)
            self.behaviour.sweep(used[~evict], horizon, out)
            changed = np.union1d(E[:k, K.E_SLOT], SEG[:m, -2]).astype(np.int64)
            if len(out.coverage) > n_cov or len(out.alerts) > n_alerts:  # behaviour bookkeeping changed rows
                changed = np.union1d(changed, self._behaviour_touched(out, n_cov, n_alerts))
            changed = np.setdiff1d(changed, used[evict])
            out.touched.extend(self._icaos(changed))
            for s in used[evict].tolist():
                out.evicted.append(str(self._icao[s]))
                self._free_slot(s)
            out.counters["evicted"] += int(evict.sum())
        self._finish(out)
        return out

    def _sweep_rows(self, used: npt.NDArray[np.int64], horizon: float) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
        """:func:`K.sweep` over these slots: (event rows, segment rows, evict flags).

        In chunks of SWEEP_CHUNK slots (the kernel's work is per slot, so the rows are the
        same), keeping only the rows written: its output arrays are sized for the worst case,
        every aircraft in state closing an episode per zone and a segment (~100 MB at 100,000)."""
        n_z = len(self.alert_zones)
        es: list[F64] = []
        segs: list[F64] = []
        evict = np.zeros(used.size, dtype=np.bool_)
        for lo in range(0, max(used.size, 1), SWEEP_CHUNK):
            u = used[lo : lo + SWEEP_CHUNK]
            E = np.empty((u.size * n_z, K.E_COLS))
            SEG = np.empty((u.size, self._T.shape[1] + 2))
            k, m = K.sweep(u, horizon, self._T, self._A, self._P, E, SEG, evict[lo : lo + SWEEP_CHUNK])
            es.append(E[:k].copy())
            segs.append(SEG[:m].copy())
        return np.concatenate(es), np.concatenate(segs), evict

    def advance_steps(self, watermark_event_time: float, max_release: int) -> Iterator[EngineOutput]:
        """:meth:`advance` as a series of outputs, each from releasing about ``max_release``
        buffered positions (whole aircraft, lowest slots first), the sweep in the last one.

        The outputs together are :meth:`advance`'s: each aircraft's positions are released
        together and in order either way. A caller that sends each output before taking the
        next holds one part's records at a time: when stream time jumps (a partition that
        lagged catches up, a burst of 80,000 new aircraft) one release made ~75,000 track
        records, 92 MB alive at once (memray)."""
        horizon = float(watermark_event_time) - self.config.reorder_tolerance_s
        while self._pend.size:
            mask = self._pend.releasable(self._T, horizon, math.inf)
            part = None if mask is None else self._pend.first_aircraft(mask, max_release)
            if part is None:
                break
            out = EngineOutput()
            self._release(part, out)
            self._finish(out)
            yield out
        yield self.advance(watermark_event_time)

    def flush(self) -> EngineOutput:
        """Release every buffered position (end of a replay); no timeouts, no eviction."""
        out = EngineOutput()
        if self._pend.size:
            self._release(self._pend.rows()[1].copy(), out)
        self._finish(out)
        return out

    @property
    def aircraft_count(self) -> int:
        return len(self._slot)

    @property
    def pending_count(self) -> int:
        return int(self._pend.size)

    @property
    def pending_capacity(self) -> int:
        """Rows allocated for the reorder buffer (it grows with a burst and gives it back)."""
        return self._pend.capacity

    def aircraft(self) -> list[str]:
        return list(self._slot)

    def has(self, icao24: str) -> bool:
        """Whether this aircraft is in state."""
        return icao24 in self._slot

    def unknown(self, icaos: Iterable[str]) -> list[str]:
        """Those of ``icaos`` not in state, in one pass (a method call per aircraft of every
        batch was 3 % of a live world worker)."""
        slot = self._slot
        return [x for x in icaos if x not in slot]

    def export_state(self, icao24: str) -> dict[str, Any] | None:
        """Plain JSON-able state of one aircraft (None if not in state); see :mod:`streams.core.snapshot`."""
        return self._state.export_state(icao24)

    def export_state_bytes(self, icao24: str) -> bytes | None:
        """The state the worker's table keeps: :meth:`export_state`'s content, compact
        (:meth:`streams.core.snapshot.StateCodec.export_states_bytes` says how)."""
        return self._state.export_states_bytes([icao24])[0]

    def export_states_bytes(self, icaos: Sequence[str]) -> list[bytes | None]:
        """:meth:`export_state_bytes` of many aircraft, their buffered positions read in one pass."""
        return self._state.export_states_bytes(icaos)

    def import_state_bytes(self, icao24: str, data: bytes) -> None:
        """Restore one aircraft from :meth:`export_state_bytes` (or JSON :meth:`export_state`)
        output. Raises ValueError for a state this engine cannot read (another layout: the
        engine's columns, zones or user fences changed since it was written)."""
        self._state.import_state_bytes(icao24, data)

    def import_state(self, icao24: str, state: dict[str, Any]) -> None:
        """Restore one aircraft from :meth:`export_state` output (replaces what is there)."""
        self._state.import_state(icao24, state)

    def warm(self) -> int:
        """Run a scratch engine over a short synthetic crossing into Mexico; returns its alerts.

        Every kernel (gate, geofence, track/alert, sweep) is compiled or loaded from numba's
        cache on its first call, which costs up to a few hundred milliseconds: a worker calls
        this before it joins, so its first real batch does not pay that (as alert latency).
        """
        scratch = Engine(replace(self.config, alert_policy="all"), self.geofence, self.classifier, self.places)
        t0 = 1_700_000_000.0
        # Southbound at 450 kt over San Diego into Tijuana, one position a minute.
        flight = [Position("0affff", t0 + 60.0 * k, 33.2 - 0.125 * k, -117.0, "warm-up", alt_baro_ft=30000.0,
                           ground_speed_kt=450.0, track_deg=180.0, callsign="WARM01") for k in range(12)]
        out = scratch.process(flight[:6])
        out.extend(scratch.advance(flight[5].event_time))
        out.extend(scratch.process(PositionColumns.from_positions(flight[6:])))
        out.extend(scratch.flush())
        out.extend(scratch.advance(math.inf))
        return len(out.alerts)

    def drop_state(self, icao24: str) -> None:
        """Forget one aircraft (e.g. its partition was reassigned to another worker)."""
        self.drop_states([icao24])

    def drop_states(self, icaos: Sequence[str]) -> None:
        """Forget these aircraft (a rebalance moves thousands at once: one pass of the buffer)."""
        slots = [self._slot[i] for i in icaos if i in self._slot]
        self._pend.drop_slots(np.array(slots, dtype=np.int64))
        for s in slots:
            self._free_slot(s)

    # ================================================================== batch pipeline
    def _admit(self, cols: PositionColumns, out: EngineOutput) -> Pending:
        """Slots for a batch; invalid and late positions are refused here."""
        n = len(cols)
        t, lat, lon = cols.event_time, cols.lat, cols.lon
        valid = (
            np.isfinite(t) & np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= _LAT_MAX) & (np.abs(lon) <= _LON_MAX)
        )
        get = self._slot.get
        icaos = cols.icao24.tolist()
        slots = np.array([get(x, -1) for x in icaos], dtype=np.int64)
        new = np.flatnonzero((slots < 0) & valid)
        for i in new.tolist():
            icao = icaos[i]
            s = self._slot.get(icao)
            slots[i] = self._alloc(icao) if s is None else s
        reason = np.zeros(n, dtype=np.int64)
        reason[~valid] = K.R_INVALID
        ok = np.flatnonzero(valid)
        late = t[ok] < self._T[slots[ok], K.T_REL_T]
        reason[ok[late]] = K.R_LATE
        keep = reason == K.ACCEPT
        if not keep.all():
            self._reject(cols.take(~keep), reason[~keep], out)
            cols = cols.take(keep)
        # Latest event time seen per aircraft: the reorder horizon and the eviction clock.
        ks = slots[keep]
        if ks.size:
            np.maximum.at(self._T[:, K.T_SEEN_MAX], ks, cols.event_time)
        arrival = np.arange(self._arrival, self._arrival + n, dtype=np.int64)[keep]
        self._arrival += n
        return Pending.of(ks, arrival, cols)

    def _release(self, mask: npt.NDArray[np.bool_] | None, out: EngineOutput) -> None:
        """Run gate → geofence → track/alert kernels over the released pending positions."""
        self._released_slots = np.empty(0, dtype=np.int64)
        if mask is None:
            return
        rel = self._pend.pop(mask)
        if rel.size <= RELEASE_CHUNK:
            self._release_rows(rel, out)
            return
        # A big release (a lagging partition catching up, 80,000 new aircraft in a burst) in
        # chunks of whole aircraft: each aircraft's positions still go through the kernels
        # together and in order, so the output is the same, but the per-position working
        # arrays (event and segment rows, scores, track-row copies) are one chunk's, not all.
        ends = np.searchsorted(rel.slot, rel.slot[np.arange(RELEASE_CHUNK - 1, rel.size, RELEASE_CHUNK)], "right")
        released = []
        lo = 0
        for hi in [*dict.fromkeys(ends.tolist()), rel.size]:
            if hi > lo:
                self._release_rows(rel.take(np.arange(lo, hi)), out)
                released.append(self._released_slots)
                lo = hi
        self._released_slots = np.concatenate(released)

    def _release_rows(self, rel: Pending, out: EngineOutput) -> None:
        """:meth:`_release` for rows sorted by (slot, event time, arrival)."""
        n = rel.size
        if not n:
            return
        reason = np.empty(n, dtype=np.int64)
        gs = np.empty(n)
        trk = np.empty(n)
        derived = np.empty(n, dtype=np.int64)
        recovered = K.gate(rel.slot, rel.t, rel.lat, rel.lon, rel.gs, rel.trk, rel.ground, self._T, self._P,
                           reason, gs, trk, derived)  # fmt: skip
        out.counters["recovered"] += int(recovered)
        acc = np.flatnonzero(reason == K.ACCEPT)
        if acc.size < n:
            bad = reason != K.ACCEPT
            self._reject(rel.cols.take(bad), reason[bad], out)
        out.counters["accepted"] += int(acc.size)
        # Callsigns are taken from every released position (a duplicate may carry the only one).
        cs = rel.cols.callsign
        sl = rel.slot  # sorted by slot: its distinct values without np.unique's sort
        touched = sl[np.r_[True, sl[1:] != sl[:-1]]]
        self._released_slots = touched
        if acc.size:
            slot = rel.slot[acc]
            lat, lon, alt = rel.lat[acc], rel.lon[acc], rel.alt[acc]
            g, tr = gs[acc], trk[acc]
            # The engine uses entry time, not the predicted closest approach (its search is most of
            # the prediction's cost); a track's closest approach is measured from its positions.
            sc = self.geofence.score(lat, lon, alt, g, tr, closest_approach=False)
            n_acc = acc.size
            if self.fence_names:
                fences = np.asarray(sc.fences, dtype=np.bool_).reshape(n_acc, len(self.fence_names))
            else:
                fences = np.zeros((n_acc, 0), dtype=np.bool_)
            E = np.empty((n_acc * len(self.alert_zones) * 2 + 1, K.E_COLS))
            SEG = np.empty((n_acc, self._T.shape[1] + 2))
            reset = np.zeros(n_acc, dtype=np.bool_)
            pre = self.behaviour.before(self._T, slot)
            k, m = K.track_step(
                slot, rel.t[acc], lat, lon, alt, g, tr, derived[acc],
                np.ascontiguousarray(sc.inside, dtype=np.bool_),
                np.ascontiguousarray(sc.dist_m, dtype=np.float64),
                np.ascontiguousarray(sc.bearing_deg, dtype=np.float64),
                np.ascontiguousarray(sc.zone, dtype=np.int64),
                np.ascontiguousarray(sc.country, dtype=np.float64),
                np.ascontiguousarray(sc.tte_s, dtype=np.float64),
                np.ascontiguousarray(fences),
                self._T, self._A, self._P, self._nzb, E, SEG, reset,
            )  # fmt: skip
            ctx = _ReleaseCtx(slot=rel.slot, cs=cs, sq=rel.cols.squawk, acc=acc, reset_rel=np.zeros(n, dtype=np.bool_))
            ctx.reset_rel[acc[reset]] = True
            # Segment snapshots first: they describe state before the events' positions.
            self._emit_segments(SEG[:m], ctx, out)
            self._emit_events(E[:k], ctx, out)
            c = ctx

            def callsign_at(s: int, i: int) -> str | None:
                return self._callsign_at(c, s, i, before=False) if i >= 0 else self._callsign[s]

            self.behaviour.after(slot, rel.t[acc], lat, lon, alt, g, tr,
                                 np.asarray(sc.dist_m, dtype=np.float64), np.asarray(sc.tte_s, dtype=np.float64),
                                 pre, callsign_at, out)
            self._update_latest(self._callsign, rel.slot, cs, ctx.reset_rel)
            self._update_latest(self._squawk, rel.slot, rel.cols.squawk, ctx.reset_rel)
        else:
            self._update_latest(self._callsign, rel.slot, cs, np.zeros(n, dtype=np.bool_))
            self._update_latest(self._squawk, rel.slot, rel.cols.squawk, np.zeros(n, dtype=np.bool_))
        self._touch(touched, out)

    def _reject(self, cols: PositionColumns, reasons: npt.NDArray[np.int64], out: EngineOutput) -> None:
        names = [K.REASON_NAMES[r] for r in reasons.tolist()]
        out.rejected.extend(zip(cols.to_positions(), names, strict=True))
        out.counters.update(f"rejected.{r}" for r in names)

    @staticmethod
    def _update_latest(store: list[str | None], slot: npt.NDArray[np.int64], col: npt.NDArray[np.object_],
                       reset: npt.NDArray[np.bool_]) -> None:
        """Remember each aircraft's latest non-empty value of a string column (released, sorted by
        slot): a column holds None or a trimmed, non-empty string. Array operations, not a loop
        over positions: a live world feed releases ~1,000 aircraft a batch, 50 batches a second."""
        idx = np.flatnonzero(col.astype(np.bool_))
        last = idx[:0]
        if idx.size:
            sl = slot[idx]
            last = idx[np.r_[sl[1:] != sl[:-1], True]]  # last position with a value, per aircraft
            for s, v in zip(slot[last].tolist(), col[last].tolist(), strict=True):
                store[s] = str(v)
        if reset.any():
            latest = dict(zip(slot[last].tolist(), last.tolist(), strict=True))
            for j in np.flatnonzero(reset).tolist():
                s = int(slot[j])
                if latest.get(s, -1) < j:  # wiped state, and no value heard since
                    store[s] = None

    def _row_facts(self, ev: F64, callsign: str | None, cls: Classification, ctx: _ReleaseCtx | None,
                   before: bool) -> dict[str, Any]:
        """What the alert rules match on, from an event row (before any document is built)."""
        s = int(ev[K.E_SLOT])
        ring = self._zone_bin_name(float(ev[K.E_GZONE]))
        zones = tuple(z for z in (self.alert_zones[int(ev[K.E_ZONE])], ring) if z)
        d, alt = float(ev[K.E_DIST]), float(ev[K.E_ALT])
        return {"category": cls.category, "type": cls.type_code, "registration": cls.registration,
                "callsign": callsign, "squawk": self._squawk_at(ctx, s, int(ev[K.E_TRIG]), before),
                "zone": zones or None, "distance_nm": d / 1852.0 if math.isfinite(d) else None,
                "altitude_ft": alt if math.isfinite(alt) else None, "pattern": None}

    def _squawk_at(self, ctx: _ReleaseCtx | None, s: int, trig: int, before: bool) -> str | None:
        """Squawk as known at accepted position ``trig``, as :meth:`_callsign_at` (batch-independent)."""
        if ctx is None or trig < 0:
            return self._squawk[s]
        j = int(ctx.acc[trig]) - (1 if before else 0)
        while j >= 0 and ctx.slot[j] == s:
            c = ctx.sq[j]
            if c and str(c).strip():
                return str(c).strip()
            if ctx.reset_rel[j]:
                return None
            j -= 1
        return self._squawk[s]

    def _callsign_at(self, ctx: _ReleaseCtx | None, s: int, trig: int, before: bool) -> str | None:
        """Callsign as known at accepted position ``trig`` (or just before it, for timeouts).

        Scans back through this batch's released positions of the aircraft, stopping at a
        state reset (positions before it belong to the aircraft's previous life), then falls
        back to the callsign stored before the batch. Independent of batch boundaries.
        """
        if ctx is None or trig < 0:
            return self._callsign[s]
        j = int(ctx.acc[trig]) - (1 if before else 0)
        while j >= 0 and ctx.slot[j] == s:
            c = ctx.cs[j]
            if c and str(c).strip():
                return str(c).strip()
            if ctx.reset_rel[j]:
                return None
            j -= 1
        return self._callsign[s]

    # ================================================================== outputs
    def _emit_events(self, E: F64, ctx: _ReleaseCtx | None, out: EngineOutput) -> None:
        if not E.shape[0]:
            return
        policy = self.config.alert_policy
        keep: list[tuple[int, str | None, Classification, bool]] = []
        may_admit = any(not r.exclude for r in self.rules.rules)
        for r in range(E.shape[0]):
            ev = E[r]
            s = int(ev[K.E_SLOT])
            icao = self._icao[s]
            assert icao is not None
            code = int(ev[K.E_CODE])
            is_timeout = code == K.TR_CLOSED and int(ev[K.E_REASON]) == K.CLOSE_TIMEOUT
            callsign = self._callsign_at(ctx, s, int(ev[K.E_TRIG]), before=is_timeout)
            cls = self._classify(s, icao, callsign)
            watch = icao in self.config.watchlist or cls.watchlisted
            out.counters[f"events.{K.TRANSITION_NAMES[code]}"] += 1
            if admitted(policy, cls, watch):
                keep.append((r, callsign, cls, watch))
            elif may_admit and judge_facts(self.rules, self._row_facts(ev, callsign, cls, ctx, is_timeout)).admits:
                # a user rule (or the emergency-squawk rule) lets out what the policy holds back;
                # judged here on the event row, so only those alerts are built
                keep.append((r, callsign, cls, watch))
            else:
                out.counters["alerts_suppressed_by_policy"] += 1
        if not keep:
            return
        rows = E[[r for r, *_ in keep]]
        first_fix = rows[:, [K.E_T, K.E_LAT, K.E_LON]].copy()  # before a crossing estimate moves them
        estimated = estimate_hole_crossings(rows, self.geofence, self.config.coverage_hole_s)
        descs = self.places.describe_many(rows[:, K.E_LAT], rows[:, K.E_LON])
        best = self.places.describe_many(rows[:, K.E_BEST_LAT], rows[:, K.E_BEST_LON])
        for j, (_, callsign, cls, watch) in enumerate(keep):
            ev = rows[j]
            s = int(ev[K.E_SLOT])
            icao = self._icao[s]
            assert icao is not None
            code = int(ev[K.E_CODE])
            ctry = ev[K.E_CTRY]
            is_timeout = code == K.TR_CLOSED and int(ev[K.E_REASON]) == K.CLOSE_TIMEOUT
            doc = build_alert(
                    ev=ev, icao24=icao, callsign=callsign, zone=self.alert_zones[int(ev[K.E_ZONE])],
                    ring_name=self._zone_bin_name(float(ev[K.E_GZONE])),
                    country=self.country_names.get(int(ctry)) if math.isfinite(ctry) else None,
                    cls=cls, watchlisted=watch, policy=policy, description=descs[j], closest_description=best[j],
                    hole_s=self.config.coverage_hole_s,
                    first_fix=tuple(first_fix[j].tolist()) if estimated[j] else None,
                    squawk=self._squawk_at(ctx, s, int(ev[K.E_TRIG]), before=is_timeout),
            )  # fmt: skip
            verdict = judge(self.rules, doc)
            if apply_rules(verdict, doc) is None:
                out.counters["alerts_excluded_by_rule"] += 1
                continue
            out.alerts.append(doc)
            out.counters[f"alerts.{K.TRANSITION_NAMES[code]}"] += 1
            # An alert forces the aircraft's next track update out, whatever the throttle.
            self._T[s, K.T_TRK_EMIT_T] = math.nan

    def _behaviour_touched(self, out: EngineOutput, n_cov: int, n_alerts: int) -> npt.NDArray[np.int64]:
        """Slots whose behaviour bookkeeping a sweep changed (their state must be written)."""
        icaos = {getattr(r, "icao24", None) for _c, r in out.coverage[n_cov:]}
        icaos |= {a.get("icao24") for a in out.alerts[n_alerts:]}
        return np.array(sorted(self._slot[i] for i in icaos if isinstance(i, str) and i in self._slot), dtype=np.int64)

    def _zone_bin_name(self, gz: float) -> str | None:
        """Name of a geofence zone code (-1 beyond, 0 sovereign, k ring k)."""
        if not math.isfinite(gz) or not -1 <= gz < self._nzb - 1:
            return None
        return self.zone_bin_names[int(gz) + 1]

    def _emit_segments(self, SEG: F64, ctx: _ReleaseCtx | None, out: EngineOutput) -> None:
        if not SEG.shape[0]:
            return
        slots = SEG[:, -2].astype(np.int64)
        for r in range(SEG.shape[0]):
            row = SEG[r, :-2]
            s = int(slots[r])
            self._describe_cpas(slots[r : r + 1], SEG[r : r + 1, :-2])
            callsign = self._callsign_at(ctx, s, int(SEG[r, -1]), before=True)
            out.track_updates.append(self._encoded(self._track_doc(s, row, closed=True, callsign=callsign)))
            out.counters["segments_closed"] += 1

    def _touch(self, slots: npt.NDArray[np.int64], out: EngineOutput) -> None:
        out.touched.extend(self._icaos(slots))
        T = self._T[slots]
        last = T[:, K.T_L_T]
        prev = T[:, K.T_TRK_EMIT_T]
        due = np.isfinite(last) & (T[:, K.T_SEG_OPEN] == 1.0)
        due &= ~(last - prev < self.config.track_update_interval_s)  # NaN prev (never / forced) → due
        emit = slots[due]
        if not emit.size:
            return
        self._describe_cpas(emit)
        for s in emit.tolist():
            row = self._T[s]
            out.track_updates.append(self._encoded(self._track_doc(s, row, closed=False)))
            row[K.T_TRK_EMIT_T] = row[K.T_L_T]
        out.counters["track_updates"] += int(emit.size)

    def _icaos(self, slots: npt.NDArray[np.int64]) -> list[str]:
        """The icao24 of each of these (allocated) slots."""
        icao = self._icao
        return cast(list[str], [icao[s] for s in slots.tolist()])

    def _encoded(self, doc: dict[str, Any]) -> Any:
        return doc if self.track_encoder is None else self.track_encoder(doc)

    def _describe_cpas(self, slots: npt.NDArray[np.int64], rows: F64 | None = None) -> None:
        """Refresh the cached place descriptions of the closest approaches, in one lookup."""
        R = self._T[slots] if rows is None else rows
        cpa_t = R[:, K.T_CPA_T]
        stale = np.isfinite(cpa_t) & (R[:, K.T_CPA_D] <= self.config.describe_within_m)
        cached = self._cpa_desc
        for j, s in enumerate(slots.tolist()):
            c = cached[s]
            if c is not None and c[0] == cpa_t[j]:
                stale[j] = False
        if not stale.any():
            return
        texts = self.places.describe_many(R[stale, K.T_CPA_LAT], R[stale, K.T_CPA_LON])
        for s, t, text in zip(slots[stale].tolist(), cpa_t[stale].tolist(), texts, strict=True):
            cached[s] = (t, text)

    def _classify(self, s: int, icao: str, callsign: str | None) -> Classification:
        """Classification of slot s, memoised per slot while the callsign stays the same."""
        memo = self._cls[s]
        if memo is not None and memo[0] == callsign:
            return memo[1]
        # Uncached: this per-slot memo is the cache, and a second one in the classifier kept
        # another ~200 B per aircraft alive (its key and dictionary entry).
        cls = self.classifier.classify(icao, callsign, cache=False)
        self._cls[s] = (callsign, cls)
        return cls

    def _track_doc(self, s: int, row: F64, closed: bool, callsign: str | None = None) -> dict[str, Any]:
        """The track.v1 document of slot s from its state row (or a closed segment's snapshot)."""
        icao = self._icao[s]
        assert icao is not None
        if not closed:
            callsign = self._callsign[s]
        cls = self._classify(s, icao, callsign)
        r = row.tolist()
        cached = self._cpa_desc[s]
        cpa_desc = cached[1] if cached is not None and cached[0] == r[K.T_CPA_T] else None
        ctry = r[K.T_L_CTRY]
        start = r[K.T_SEG_START]
        derived = int(r[K.T_L_DERIVED]) if math.isfinite(r[K.T_L_DERIVED]) else 0
        zt = r[K.T_ZT0 : K.T_ZT0 + self._nzb]
        ft = r[K.T_ZT0 + self._nzb : K.T_ZT0 + self._nbins]
        return {
            "schema": TRACK_SCHEMA,
            "icao24": icao,
            "callsign": callsign,
            "segment_id": f"{icao}-{start:.3f}",
            "segment_closed": closed,
            "first_seen": start,
            "last_seen": r[K.T_SEG_LAST],
            "positions": int(r[K.T_SEG_N]),
            "position": {
                "event_time": r[K.T_L_T],
                "lat": r[K.T_L_LAT],
                "lon": r[K.T_L_LON],
                "alt_ft": opt(r[K.T_L_ALT]),
                "ground_speed_kt": opt(r[K.T_L_GS]),
                "track_deg": opt(r[K.T_L_TRK]),
                "ground_speed_derived": bool(derived & 1),
                "track_derived": bool(derived & 2),
            },
            "geofence": {
                "inside": r[K.T_L_INSIDE] == 1.0,
                "distance_to_boundary_m": opt(r[K.T_L_DIST]),
                "bearing_to_boundary_deg": opt(r[K.T_L_BEAR]),
                "zone": self._zone_bin_name(r[K.T_L_GZONE]),
                "airspace_country": self.country_names.get(int(ctry)) if math.isfinite(ctry) else None,
                "predicted_entry_s": opt(r[K.T_L_TTE]),
            },
            "closest_approach": {
                "distance_m": opt(r[K.T_CPA_D]),
                "event_time": opt(r[K.T_CPA_T]),
                "lat": opt(r[K.T_CPA_LAT]),
                "lon": opt(r[K.T_CPA_LON]),
                "alt_ft": opt(r[K.T_CPA_ALT]),
                "description": cpa_desc,
            },
            "time_in_zone_s": dict(zip(self.zone_bin_names, zt, strict=True)),
            "time_in_fence_s": dict(zip(self.fence_names, ft, strict=True)),
            "alert_states": None
            if closed
            else {z: K.STATE_NAMES[int(self._A[s, i, K.A_ST])] for i, z in enumerate(self.alert_zones)},
            "classification": {
                "category": cls.category,
                "is_military_or_surveillance": cls.is_military_or_surveillance,
                "confidence": cls.confidence,
                "type_code": cls.type_code,
                "registration": cls.registration,
                "country": cls.country,
            },
        }

    def _finish(self, out: EngineOutput) -> None:
        # The alert rules on pattern documents (zone alerts were judged as they were built):
        # severity, channels, exclusion; which aircraft raise patterns stays the behaviour layer's.
        if any(a.get("schema") == "pattern.v1" for a in out.alerts):
            kept = []
            for a in out.alerts:
                if a.get("schema") == "pattern.v1" and "rules" not in a:
                    if apply_rules(judge(self.rules, a), a) is None:
                        out.counters["alerts_excluded_by_rule"] += 1
                        continue
                kept.append(a)
            out.alerts[:] = kept
        self.totals.update(out.counters)

    # ================================================================== slots
    def _grow(self, cap: int) -> None:
        old = self._cap
        # Uninitialised: _alloc initialises a row when it hands out its slot, and nothing reads
        # a slot never handed out. A large fresh array is mapped lazily, so only rows in use
        # become resident; initialising all of them made growth at 65,536 aircraft touch
        # 85 MB at once (the 100,000-aircraft memory phase's biggest step).
        T = np.empty((cap, self._T.shape[1]))
        A = np.empty((cap, *self._A.shape[1:]))
        T[:old] = self._T[:old]
        A[:old] = self._A[:old]
        self._T, self._A = T, A
        self._used = np.concatenate((self._used, np.zeros(cap - old, dtype=np.bool_)))
        self._icao.extend([None] * (cap - old))
        self._callsign.extend([None] * (cap - old))
        self._squawk.extend([None] * (cap - old))
        self._cpa_desc.extend([None] * (cap - old))
        self._cls.extend([None] * (cap - old))
        self._free.extend(range(cap - 1, old - 1, -1))
        self._cap = cap

    def _alloc(self, icao24: str) -> int:
        if not self._free:
            self._grow(self._cap * 2)
        s = self._free.pop()
        self._used[s] = True
        self._slot[icao24] = s
        self._icao[s] = icao24
        self._callsign[s] = None
        self._squawk[s] = None
        self._cpa_desc[s] = None
        self._cls[s] = None
        K.init_track_rows(self._T[s : s + 1])
        K.init_alert_rows(self._A[s : s + 1])
        return s

    def _free_slot(self, s: int) -> None:
        icao = self._icao[s]
        if icao is not None:
            del self._slot[icao]
            self.behaviour.forget(icao)
        self._icao[s] = None
        self._callsign[s] = None
        self._squawk[s] = None
        self._cpa_desc[s] = None
        self._cls[s] = None
        self._used[s] = False
        self._free.append(s)


@dataclass(slots=True)
class _ReleaseCtx:
    """One release's positions (sorted by slot), for the callsign and squawk known at any of
    them (:meth:`Engine._callsign_at`, :meth:`Engine._squawk_at`)."""

    slot: npt.NDArray[np.int64]  # released positions, sorted
    cs: npt.NDArray[np.object_]
    sq: npt.NDArray[np.object_]
    acc: npt.NDArray[np.intp]  # accepted index -> released index
    reset_rel: npt.NDArray[np.bool_]


def _ring_names(geofence: GeofenceLike) -> list[str]:
    """Names of the approach rings: ``zone_names()`` lists sovereign first, then ring 1..R."""
    rings = np.atleast_1d(np.asarray(geofence.ring_m, dtype=np.float64))
    names = [str(x) for x in geofence.zone_names()]
    if len(names) == rings.size + 1:
        return names[1:]
    return [f"within {r / 1852.0:g} nm" for r in rings]


def _country_names(geofence: GeofenceLike) -> dict[int, str]:
    """Airspace country codes of ``Scores.country`` (the geofence's fixed int8 table)."""
    names: Any = getattr(geofence, "COUNTRY_NAMES", None)
    if names is None:
        from streams.geo.countries import COUNTRY_NAMES as names
    return {int(k): str(v) for k, v in dict(names).items()}
