"""Evaluation of the on-station pattern detector on the hand-labelled real flights of
``tests/data/patterns`` (shared by ``tests/core/test_patterns.py`` and ``bench/eval_patterns.py``).

Each flight goes through the real engine (:func:`run_engine`: gate, geofence, tracks, the
sampling and turn gate of the behaviour layer, the detector), policy "all", as ``skyfence
analyze --close`` runs it; :func:`run` feeds the detector alone (its own unit tests).

A labelled window counts as detected when one detected pattern (from ``started_at`` to
``started_at + time_on_station_s`` of its last event) overlaps it by at least 50 % of the
window's duration; its kind is right when the kind that pattern reported in most of its
events (started, updated) inside the window equals the label (one pattern may change kind: a
TV relay circles over one spot, then follows the race). A false pattern on a transit leg is any pattern
whose started/updated events, or whose on-station interval, fall inside a labelled transit
(cruise) leg (pattern_ended is noticed only after the aircraft left, so its time is not counted).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from streams.core.patterns import SAMPLE_INTERVAL_S, PatternConfig, PatternDetector, PatternEvent, sample_mask
from streams.messages import Position
from streams.parsers import parse_bytes

DATA = Path(__file__).resolve().parents[1] / "data" / "patterns"
__all__ = ["SAMPLE_INTERVAL_S", "evaluate", "labels", "load", "patterns", "record", "replay", "run", "score"]
MIN_OVERLAP = 0.5  # fraction of a labelled window a pattern must cover to count as detecting it


def labels() -> list[dict[str, Any]]:
    return list(json.loads((DATA / "labels.json").read_text()))


def load(name: str, icao24: str | None = None) -> list[Position]:
    ps = parse_bytes("traffic-json", gzip.decompress((DATA / name).read_bytes())).positions
    ps = [p for p in ps if icao24 is None or p.icao24 == icao24]
    ps.sort(key=lambda p: p.event_time)
    return ps


def _f(v: float | None) -> float:
    return math.nan if v is None else float(v)


def sampled(ps: list[Position]) -> list[Position]:
    """The positions of one aircraft (in time order) that the engine's sampling feeds to the detector."""
    if not ps:
        return []
    t = np.array([p.event_time for p in ps])
    mask = sample_mask(np.zeros(len(ps), dtype=np.int64), t, np.full(1, np.nan))
    return [p for p, take in zip(ps, mask.tolist(), strict=True) if take]


def feed(det: PatternDetector, p: Position) -> list[PatternEvent]:
    """One sampled position into the detector, missing fields as NaN."""
    return det.feed(p.icao24, p.event_time, p.lat, p.lon, _f(p.track_deg), _f(p.ground_speed_kt), _f(p.alt_baro_ft))


def run(ps: list[Position], detector: PatternDetector | None = None) -> list[PatternEvent]:
    """parse -> sort -> sample_mask on one slot -> feed -> finish."""
    det = detector or PatternDetector()
    if not ps:
        return []
    evs: list[PatternEvent] = []
    for p in sampled(ps):
        evs += feed(det, p)
    evs += det.finish(ps[0].icao24)
    return evs


_ENGINE_PARTS: list[Any] = []


def _engine() -> Any:
    from streams.core.classify import Classifier
    from streams.core.config import EngineConfig
    from streams.core.engine import Engine
    from streams.core.places import Places
    from streams.geo import Geofence

    if not _ENGINE_PARTS:
        _ENGINE_PARTS.extend((Geofence.load(), Classifier.load(), Places.load()))
    fence, clf, places = _ENGINE_PARTS
    return Engine(EngineConfig(alert_policy="all"), fence, clf, places)


def _drive(engine: Any, ps: list[Position]) -> list[dict[str, Any]]:
    """One flight through ``engine`` to the end: its pattern.v1 documents."""
    from streams.columns import PositionColumns

    out = engine.process(PositionColumns.from_positions(ps))
    out.extend(engine.flush())
    out.extend(engine.advance(math.inf))
    return [a for a in out.alerts if a.get("schema") == "pattern.v1" and a["transition"] != "on_station"]


def run_engine(ps: list[Position]) -> list[dict[str, Any]]:
    """pattern.v1 documents of one flight through the real engine (policy "all"), to the end."""
    return _drive(_engine(), ps)


class _Recorder(PatternDetector):
    """The shipped detector, logging the calls the engine makes of it, to replay them (:func:`replay`)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[Any, ...]] = []

    def feed(self, icao24: str, t: float, lat: float, lon: float, track_deg: float, gs_kt: float,
             alt_ft: float) -> list[PatternEvent]:
        self.log.append(("feed", icao24, t, lat, lon, track_deg, gs_kt, alt_ft))
        return super().feed(icao24, t, lat, lon, track_deg, gs_kt, alt_ft)

    def close(self, icao24: str, t: float) -> list[PatternEvent]:
        self.log.append(("close", icao24, t))
        return super().close(icao24, t)

    def drop(self, icao24: str) -> None:
        self.log.append(("drop", icao24))
        super().drop(icao24)


def record(ps: list[Position]) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """The detector calls the real engine makes for one flight (as :func:`run_engine` runs it), with
    the horizons of its sweeps, and the engine's pattern.v1 documents of that run: :func:`replay`
    gives the events of any PatternConfig from the calls without running the engine again (the
    engine's sampling and turn gate do not depend on it)."""
    engine = _engine()
    rec = _Recorder()
    engine.behaviour.detector = rec
    sweep = engine.behaviour.sweep

    def logged_sweep(used: Any, horizon: float, out: Any) -> None:
        rec.log.append(("sweep", horizon))
        sweep(used, horizon, out)

    engine.behaviour.sweep = logged_sweep
    docs = _drive(engine, ps)
    return rec.log, docs


def replay(log: list[tuple[Any, ...]], config: PatternConfig | None = None) -> list[dict[str, Any]]:
    """The pattern documents (the fields :func:`patterns_of_docs` reads) that a detector with
    ``config`` gives for a :func:`record` log; the engine's for the shipped configuration."""
    det = PatternDetector(config)
    evs: list[PatternEvent] = []
    seen: set[str] = set()
    for call in log:
        if call[0] == "feed":
            seen.add(call[1])
            evs += det.feed(*call[1:])
        elif call[0] == "close":
            evs += det.close(*call[1:])
        elif call[0] == "drop":
            det.drop(call[1])
        else:  # the engine's sweep: only aircraft with an open pattern are asked
            horizon = call[1]
            for icao in sorted(i for i in seen if det.active(i)):
                evs += det.finish(icao) if math.isinf(horizon) else det.silent(icao, horizon)
    return [{"pattern_id": f"{e.icao24}|{e.pattern_start!r}", "started_at": e.pattern_start, "event_time": e.t,
             "seq": e.seq, "transition": e.transition, "kind": e.kind,
             "time_on_station_s": round(e.time_on_station_s, 1)} for e in evs]


def patterns_of_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per detected pattern: start, end, kind reported most, kinds, event times."""
    out: dict[str, dict[str, Any]] = {}
    for d in sorted(docs, key=lambda d: (d["event_time"], d["seq"])):
        p = out.setdefault(d["pattern_id"], {"start": d["started_at"], "kinds": [], "events": []})
        p["end"] = d["started_at"] + d["time_on_station_s"]
        if d["transition"] != "pattern_ended":  # the end is noticed after leaving: not "on station" there
            p["events"].append(d["event_time"])
            p["kinds"].append(d["kind"])
            p.setdefault("timeline", []).append((d["event_time"], d["kind"]))
    for p in out.values():
        ks = p["kinds"] or ["loiter"]
        p["kind"] = max(sorted(set(ks)), key=ks.count)
    return list(out.values())


def patterns(evs: list[PatternEvent]) -> list[dict[str, Any]]:
    """One record per detected pattern: start, end, kinds reported, last event."""
    out: dict[float, dict[str, Any]] = {}
    for e in evs:
        p = out.setdefault(e.pattern_start, {"start": e.pattern_start, "kinds": [], "events": []})
        p["end"] = e.pattern_start + e.time_on_station_s
        p["kind"] = e.kind
        p["kinds"].append(e.kind)
        if e.transition != "pattern_ended":  # the end is noticed after leaving: not "on station" there
            p["events"].append(e.t)
    return list(out.values())


def evaluate(split: str | None = None) -> dict[str, Any]:
    """Per split: labelled windows, detected, right kind (orbit/racetrack), false patterns on transits."""
    res: dict[str, Any] = {}
    for lab in labels():
        if split is not None and lab["split"] != split:
            continue
        s = res.setdefault(lab["split"], {"flights": 0, "windows": 0, "detected": 0, "kind_checked": 0,
                                         "kind_right": 0, "transit_legs": 0, "transit_false": 0, "rows": []})
        f = score(lab, patterns_of_docs(run_engine(load(lab["file"], lab.get("icao24")))))
        s["flights"] += 1
        for k, v in f.items():
            s[k] += v
    return res


def score(lab: dict[str, Any], pats: list[dict[str, Any]]) -> dict[str, Any]:
    """One labelled flight against the patterns found in it (:func:`patterns_of_docs`): the counts
    :func:`evaluate` sums per split, and one row per labelled window and transit leg."""
    s: dict[str, Any] = {"windows": 0, "detected": 0, "kind_checked": 0, "kind_right": 0, "transit_legs": 0,
                         "transit_false": 0, "rows": []}
    for w in lab["windows"]:
        dur = w["end"] - w["start"]
        hit = [p for p in pats if min(p["end"], w["end"]) - max(p["start"], w["start"]) >= MIN_OVERLAP * dur]
        s["windows"] += 1
        s["detected"] += bool(hit)
        right = None
        if w["kind"] in ("orbit", "racetrack"):
            s["kind_checked"] += 1
            right = any(w["kind"] == _kind_in(p, w["start"], w["end"]) for p in hit)
            s["kind_right"] += bool(right)
        found = [_kind_in(p, w["start"], w["end"]) for p in hit]  # the kind each reported in the window
        s["rows"].append((lab["file"], w["kind"], bool(hit), found, right))
    for leg in lab["transit_legs"]:
        s["transit_legs"] += 1
        bad = [p for p in pats if any(leg["start"] <= t <= leg["end"] for t in p["events"])
               or (p["start"] < leg["end"] and p["end"] > leg["start"])]
        s["transit_false"] += len(bad)
        s["rows"].append((lab["file"], "transit", False, [p["kind"] for p in bad], None))
    return s


def _kind_in(p: dict[str, Any], start: float, end: float) -> str:
    """The kind a pattern reported most between ``start`` and ``end`` (its overall kind if no event fell there)."""
    ks = [k for t, k in p.get("timeline", ()) if start <= t <= end]
    return max(sorted(set(ks)), key=ks.count) if ks else str(p["kind"])
