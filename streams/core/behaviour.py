"""What aircraft are doing: on-station patterns, missions and gone-dark candidates.

This module owns the behaviour layer the engine runs after its track/alert kernel, over the
same released, accepted positions, so the worker and ``skyfence analyze`` see the same
behaviour. Per aircraft it

- samples the track (one position per :data:`streams.core.patterns.SAMPLE_INTERVAL_S`
  bucket) into the pattern detector and turns its events into ``pattern.v1`` documents,
  plus the ``on_station`` alert for an aircraft of interest on station near the line;
- marks the first position of a segment of an aircraft of interest inside the outermost
  ring as a :class:`~streams.core.missions.Mission` for the mission ledger;
- emits coverage records (:mod:`streams.core.coverage`): one "heard" record per aircraft
  per minute near Mexico, a gone-dark candidate when an aircraft of interest near the line
  falls silent, and its reappearance.

Missions and coverage records are cross-aircraft facts: the engine only emits them, keyed
(category, coverage cell); the ledger and the coverage stage that consume them are keyed
stages of their own, fed from every partition. Every decision here depends on event time
and the positions alone, never on how the stream was cut into batches.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from streams.core import kernels as K
from streams.core.alerts import _who, alert_id, iso, opt
from streams.core.coverage import DarkCandidate, Heard, Reappearance, cell_of, heard_cells, heard_mask
from streams.core.missions import Mission
from streams.core.patterns import GATE_CLOSE, PatternDetector, PatternEvent, sample_mask, turn_gate

if TYPE_CHECKING:
    from streams.core.classify import Classification
    from streams.core.engine import Engine, EngineOutput

F64 = npt.NDArray[np.float64]
PATTERN_SCHEMA = "pattern.v1"
NM = 1852.0

# Columns of a slot's latest position read before the kernel overwrites them.
_PRE = np.array((K.T_L_T, K.T_L_LAT, K.T_L_LON, K.T_L_ALT, K.T_L_GS, K.T_L_TRK, K.T_L_DIST, K.T_L_TTE,
                 K.T_DARK_T, K.T_SEG_OPEN, K.T_SEG_START, K.T_MISSION_SEG), dtype=np.int64)
(_P_T, _P_LAT, _P_LON, _P_ALT, _P_GS, _P_TRK, _P_DIST, _P_TTE, _P_DARK, _P_SEGOPEN, _P_SEGSTART,
 _P_MISSION) = range(len(_PRE))


class Behaviour:
    """The engine's behaviour layer (see module docstring); one per engine."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        cfg = engine.config
        self.detector: PatternDetector | None = PatternDetector() if cfg.patterns else None
        rings = np.atleast_1d(np.asarray(engine.geofence.ring_m, dtype=np.float64))
        self.mission_ring_m = float(cfg.mission_ring_m if cfg.mission_ring_m is not None
                                    else (rings.max() if rings.size else 100.0 * NM))
        # Aircraft with an open pattern: the sweep asks the detector only about these.
        self.active: set[str] = set()
        # Latest event time released to the kernels: a gone-dark silence is only claimed when the
        # stream itself went on that long (an end of input is not a silence).
        self.stream_t = -math.inf

    # ------------------------------------------------------------------ per batch
    @staticmethod
    def before(T: F64, slot: npt.NDArray[np.int64]) -> F64:
        """The slot rows' last-position columns as they were before this batch's kernel."""
        # Rows, then columns: np.ix_'s one outer-indexing pass took 1.6x as long (35 vs 21 µs
        # for 1,000 slots), and this runs on every batch of a live feed.
        return T[slot][:, _PRE] if slot.size else np.empty((0, len(_PRE)))

    def after(self, slot: npt.NDArray[np.int64], t: F64, lat: F64, lon: F64, alt: F64, gs: F64, trk: F64,
              dist: F64, tte: F64, pre: F64, callsign_at: Any, out: EngineOutput) -> None:
        """Behaviour of accepted positions (sorted by slot, then time) after the kernel ran.

        ``pre[i]`` holds slot[i]'s row before the batch; ``callsign_at(s, i)`` the callsign known
        at accepted position i.
        """
        n = slot.size
        if not n:
            return
        e = self.e
        cfg = e.config
        T = e._T
        self.stream_t = max(self.stream_t, float(t.max()))
        first = np.ones(n, dtype=np.bool_)
        first[1:] = slot[1:] != slot[:-1]
        prev_t = np.where(first, pre[:, _P_T], np.r_[np.nan, t[:-1]])
        gap = t - prev_t  # NaN for an aircraft's first position ever

        # --- coverage: one heard record per aircraft a minute, near Mexico only
        near = np.abs(dist) <= cfg.heard_within_m
        if near.any():
            idx = np.flatnonzero(near)
            take = heard_mask(slot[idx], t[idx], T[:, K.T_HEARD_BUCKET])  # updates the rows in place
            for i in idx[take].tolist():
                h = Heard(str(e._icao[int(slot[i])]), float(t[i]), float(lat[i]), float(lon[i]))
                for cell in heard_cells(h.lat, h.lon):
                    out.coverage.append((cell, h))

        # --- gone dark: a silence of an aircraft of interest that was near the line
        silent = np.flatnonzero(gap >= cfg.dark_after_s)
        if silent.size:
            prev_dist = np.where(first, pre[:, _P_DIST], np.r_[np.nan, dist[:-1]])
            prev_tte = np.where(first, pre[:, _P_TTE], np.r_[np.nan, tte[:-1]])
            for i in silent.tolist():
                if not self._near_line(prev_dist[i], prev_tte[i]):
                    continue
                s = int(slot[i])
                cls = self._cls(s, callsign_at(s, i))
                if not self._interest(s, cls):
                    continue
                if first[i]:
                    last = (pre[i, _P_LAT], pre[i, _P_LON], pre[i, _P_ALT], pre[i, _P_GS], pre[i, _P_TRK])
                    already = pre[i, _P_DARK] == prev_t[i]
                else:
                    last = (lat[i - 1], lon[i - 1], alt[i - 1], gs[i - 1], trk[i - 1])
                    already = False
                cell = cell_of(float(last[0]), float(last[1]))
                if not already:
                    out.coverage.append((cell, self._candidate(s, float(prev_t[i]), last, prev_dist[i], prev_tte[i],
                                                               callsign_at(s, i - 1) if not first[i] else None, cls)))
                out.coverage.append((cell, Reappearance(str(e._icao[s]), float(prev_t[i]), float(t[i]),
                                                        float(lat[i]), float(lon[i]))))

        # --- missions: the first position of a segment inside the outermost ring
        inring = np.flatnonzero(dist <= self.mission_ring_m)
        if inring.size:
            seg_start = _segment_starts(slot, t, gap, first, pre[:, _P_SEGOPEN], pre[:, _P_SEGSTART],
                                        cfg.segment_gap_s)
            done: dict[int, float] = {}
            for i in inring.tolist():
                s = int(slot[i])
                start = float(seg_start[i])
                prior = done.get(s, float(pre[i, _P_MISSION]))
                if prior == start or (math.isfinite(prior) and prior > start):
                    continue
                done[s] = start
                cls = self._cls(s, callsign_at(s, i))
                if self._interest(s, cls):
                    out.missions.append(self._mission(s, start, float(t[i]), "ring", callsign_at(s, i), cls))
            for s, start in done.items():
                T[s, K.T_MISSION_SEG] = start

        # --- on-station patterns
        if self.detector is not None:
            # The bucket column is a view of the track rows: sample_mask updates them in place.
            sampled = np.flatnonzero(sample_mask(slot, t, T[:, K.T_PAT_BUCKET]))
            if sampled.size:
                code = turn_gate(slot[sampled], t[sampled], lat[sampled], lon[sampled], trk[sampled], T, K.T_GATE0)
                for j in np.flatnonzero(code).tolist():
                    i = int(sampled[j])
                    s = int(slot[i])
                    cs = callsign_at(s, i)
                    cls = self._cls(s, cs)
                    if not self._admitted(s, cls):
                        continue
                    icao = str(e._icao[s])
                    if code[j] == GATE_CLOSE:
                        evs = self.detector.close(icao, float(t[i]))
                    else:
                        evs = self.detector.feed(icao, float(t[i]), float(lat[i]), float(lon[i]), float(trk[i]),
                                                 float(gs[i]), float(alt[i]))
                    if evs:
                        self._emit_patterns(s, evs, cs, cls, out)

    def sweep(self, used: npt.NDArray[np.int64], horizon: float, out: EngineOutput) -> None:
        """Timeouts of behaviour: patterns of silent aircraft end, silent aircraft near the
        line become gone-dark candidates. ``horizon`` is the engine's release horizon."""
        e = self.e
        T = e._T
        cfg = e.config
        if self.detector is not None and self.active:
            ending = math.isinf(horizon)
            for icao in sorted(self.active):
                s = e._slot.get(icao)
                evs = self.detector.finish(icao) if ending else self.detector.silent(icao, horizon)
                if evs and s is not None:
                    cs = e._callsign[s]
                    self._emit_patterns(s, evs, cs, self._cls(s, cs), out)
                elif evs:
                    self.active.discard(icao)
        # A silence is claimed only as far as the stream went on: at the end of a file nobody is dark.
        now = min(horizon, self.stream_t)
        if not used.size or not math.isfinite(now):
            return
        last_t = T[used, K.T_L_T]  # two columns, not T[used]: a copy of every row was 40 MB at 100,000 aircraft
        cand = (now - last_t >= cfg.dark_after_s) & ~(T[used, K.T_DARK_T] == last_t)
        for j in np.flatnonzero(cand).tolist():
            s = int(used[j])
            row = T[s]
            T[s, K.T_DARK_T] = row[K.T_L_T]  # examined: never again for this silence
            if not self._near_line(row[K.T_L_DIST], row[K.T_L_TTE]):
                continue
            cs = e._callsign[s]
            cls = self._cls(s, cs)
            if not self._interest(s, cls):
                continue
            last = (row[K.T_L_LAT], row[K.T_L_LON], row[K.T_L_ALT], row[K.T_L_GS], row[K.T_L_TRK])
            c = self._candidate(s, float(row[K.T_L_T]), last, row[K.T_L_DIST], row[K.T_L_TTE], cs, cls)
            out.coverage.append((cell_of(c.lat, c.lon), c))

    def forget(self, icao: str) -> None:
        if self.detector is not None:
            self.detector.drop(icao)
        self.active.discard(icao)

    def export_state(self, icao: str) -> Any:
        return None if self.detector is None else self.detector.export_state(icao)

    def import_state(self, icao: str, state: Any) -> None:
        if self.detector is not None and state is not None:
            self.detector.import_state(icao, state)
            if self.detector.active(icao):
                self.active.add(icao)

    # ------------------------------------------------------------------ helpers
    def _near_line(self, dist: float, tte: float) -> bool:
        """Within the approach ring, or predicted to enter (the alert state machine's thresholds)."""
        cfg = self.e.config
        return bool(dist <= cfg.approach_enter_m or tte <= cfg.predict_enter_s)

    def _cls(self, s: int, callsign: str | None) -> Classification:
        icao = self.e._icao[s]
        assert icao is not None
        return self.e._classify(s, icao, callsign)

    def _interest(self, s: int, cls: Classification) -> bool:
        return cls.is_military_or_surveillance or cls.watchlisted or self.e._icao[s] in self.e.config.watchlist

    def _admitted(self, s: int, cls: Classification) -> bool:
        return self.e.config.alert_policy == "all" or self._interest(s, cls)

    def _candidate(self, s: int, t_last: float, last: tuple[Any, ...], dist: float, tte: float,
                   callsign: str | None, cls: Classification) -> DarkCandidate:
        return DarkCandidate(
            icao24=str(self.e._icao[s]), callsign=callsign or self.e._callsign[s], t_last=t_last,
            lat=float(last[0]), lon=float(last[1]), alt_ft=opt(float(last[2])), gs_kt=opt(float(last[3])),
            trk_deg=opt(float(last[4])), distance_to_boundary_m=opt(float(dist)), predicted_entry_s=opt(float(tte)),
            classification=cls.to_dict(),
        )

    def _mission(self, s: int, seg_start: float, t: float, reason: str, callsign: str | None,
                 cls: Classification) -> Mission:
        icao = str(self.e._icao[s])
        return Mission(mission_id=f"{icao}-{seg_start:.3f}", icao24=icao, callsign=callsign,
                       category=cls.category, type_code=cls.type_code, t=t, reason=reason)

    def _emit_patterns(self, s: int, evs: list[PatternEvent], callsign: str | None, cls: Classification,
                       out: EngineOutput) -> None:
        e = self.e
        icao = str(e._icao[s])
        watch = cls.watchlisted or icao in e.config.watchlist
        interest = cls.is_military_or_surveillance or watch
        for ev in evs:
            if ev.transition == "pattern_ended":
                self.active.discard(icao)
            else:
                self.active.add(icao)
            doc = self.pattern_doc(ev, icao, callsign, cls, watch)
            out.alerts.append(doc)
            out.counters[f"alerts.{ev.transition}"] += 1
            d = doc["distance_to_boundary_m"]
            near = d is not None and d <= e.config.on_station_alert_m
            if (interest and near and ev.transition != "pattern_ended"
                    and not e._T[s, K.T_ONSTATION] == ev.pattern_start):
                e._T[s, K.T_ONSTATION] = ev.pattern_start
                out.alerts.append(self.on_station_doc(doc))
                out.counters["alerts.on_station"] += 1
                seg = float(e._T[s, K.T_SEG_START])
                if math.isfinite(seg) and not e._T[s, K.T_MISSION_SEG] == seg:
                    e._T[s, K.T_MISSION_SEG] = seg
                    out.missions.append(self._mission(s, seg, ev.t, "pattern", callsign, cls))

    def pattern_doc(self, ev: PatternEvent, icao: str, callsign: str | None, cls: Classification,
                    watch: bool) -> dict[str, Any]:
        """The pattern.v1 document of one detector event."""
        e = self.e
        ring = [(float(a), float(b)) for a, b in ev.outline] or [(ev.centre_lat, ev.centre_lon)]
        lats = np.array([p[0] for p in ring] + [ev.centre_lat])
        lons = np.array([p[1] for p in ring] + [ev.centre_lon])
        nan = np.full(lats.size, np.nan)
        sc = e.geofence.score(lats, lons, nan, nan, nan, closest_approach=False)
        d = np.asarray(sc.dist_m, dtype=np.float64)
        j = int(np.nanargmin(d)) if np.isfinite(d).any() else -1
        dist = float(d[j]) if j >= 0 else None
        ctry = float(np.asarray(sc.country)[-1])
        country = e.country_names.get(int(ctry)) if math.isfinite(ctry) else None
        inside = bool(np.asarray(sc.inside)[-1])
        desc = e.places.describe(ev.centre_lat, ev.centre_lon)
        interest = cls.is_military_or_surveillance or watch
        close = dist is not None and dist <= e.config.on_station_alert_m
        severity = ("medium" if close else "low") if interest else "info"
        # the same stable id scheme as zone alerts, with the pattern as the "zone"
        aid = alert_id(icao, "pattern", ev.pattern_start)
        who = _who(icao, callsign, cls)
        dims = _dims_text(ev)
        where = desc or f"{ev.centre_lat:.3f}, {ev.centre_lon:.3f}"
        line = "" if dist is None else (f", {abs(dist) / NM:.0f} nm inside the 12 nm line" if dist < 0
                                        else f", {dist / NM:.0f} nm from the 12 nm line")
        verb = {"pattern_started": "started", "pattern_updated": "flying", "pattern_ended": "ended"}[ev.transition]
        mins = ev.time_on_station_s / 60.0
        if ev.transition == "pattern_ended":
            headline = f"{who} ended a {ev.kind} {where} after {mins:.0f} min on station{line}"
        else:
            headline = f"{who} {verb} a {ev.kind} ({dims}) {where}{line}, {mins:.0f} min on station"
        return {
            "schema": PATTERN_SCHEMA,
            "alert_id": aid,
            "event_id": f"{aid}:{ev.seq}",
            "seq": ev.seq,
            "icao24": icao,
            "callsign": callsign,
            "transition": ev.transition,
            "status": "closed" if ev.transition == "pattern_ended" else "open",
            "zone": "pattern",
            "pattern_id": aid,
            "kind": ev.kind,
            "started_at": ev.pattern_start,
            "event_time": ev.t,
            "event_time_iso": iso(ev.t),
            "time_on_station_s": round(ev.time_on_station_s, 1),
            "centre": {"lat": ev.centre_lat, "lon": ev.centre_lon},
            "dimensions": {"radius_m": _r(ev.radius_m), "leg_length_m": _r(ev.leg_length_m),
                           "width_m": _r(ev.width_m), "axis_deg": _r(ev.axis_deg), "span_m": _r(ev.span_m)},
            "outline": [[round(b, 5), round(a, 5)] for a, b in ring],
            "distance_to_boundary_m": None if dist is None else round(dist, 1),
            "nearest_point": None if j < 0 else {"lat": float(lats[j]), "lon": float(lons[j])},
            "airspace_country": country,
            "inside_sovereign": inside,
            "description": desc,
            "end_reason": ev.end_reason,
            "position": {"lat": ev.last_lat, "lon": ev.last_lon, "alt_ft": ev.last_alt_ft},
            "classification": cls.to_dict(),
            "watchlisted": watch,
            "severity": severity,
            "policy": e.config.alert_policy,
            "headline": headline,
        }

    def on_station_doc(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The on_station alert: an aircraft of interest on station near the line (once per pattern)."""
        aid = alert_id(str(doc["icao24"]), "on_station", float(doc["started_at"]))
        out = dict(doc)
        out.update(alert_id=aid, event_id=f"{aid}:0", seq=0, transition="on_station", severity="high",
                   headline="ON STATION: " + str(doc["headline"]))
        return out


def _segment_starts(slot: npt.NDArray[np.int64], t: F64, gap: F64, first: npt.NDArray[np.bool_],
                    pre_open: F64, pre_start: F64, seg_gap: float) -> F64:
    new = gap >= seg_gap
    new |= first & ~(pre_open == 1.0)
    new |= np.isnan(gap)
    idx = np.where(new, np.arange(slot.size), -1)
    last_new = np.maximum.accumulate(idx)
    # A slot's leading positions with no new segment of their own continue the segment of the row.
    group_start = np.maximum.accumulate(np.where(first, np.arange(slot.size), 0))
    own = last_new >= group_start
    return np.where(own, t[np.maximum(last_new, 0)], pre_start)


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 1)


def _dims_text(ev: PatternEvent) -> str:
    if ev.kind == "orbit" and ev.radius_m:
        return f"radius {ev.radius_m / NM:.1f} nm"
    if ev.kind in ("racetrack", "survey") and ev.leg_length_m and ev.width_m is not None:
        axis = f", axis {ev.axis_deg:03.0f}°" if ev.axis_deg is not None and math.isfinite(ev.axis_deg) else ""
        return f"{ev.leg_length_m / NM:.0f} x {ev.width_m / NM:.0f} nm{axis}"
    return f"span {ev.span_m / NM:.0f} nm"
