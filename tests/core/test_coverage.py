"""The coverage stage (gone dark near the line) on real recorded flights.

The aircraft that goes dark is a real one: US Navy ae0455 (PSWRD35) flying out of San Diego
over Mexican waters off Baja California to a carrier and back (traffic's ``military``
sample). Its neighbours are real too: the traffic around one point south of Paris in
traffic's ``quickstart`` collection, 40 min of it, moved as a whole scene (every point kept
at its real distance and bearing from the scene's anchor, times shifted by one constant) so
that the anchor sits on ae0455's last position before the silence and the scene's minute 10
on its last-seen time. Only the placement is changed, never the motion.

The silence is made by cutting 10 min of ae0455's real positions (it flies on and is
seen again where it really was). With the scene heard throughout: one went_dark, then one
reappeared. With every aircraft of the area cut for the same span: nothing.

The engine's side (heard records, candidates, reappearances) is mimicked in ``_records``
with the helpers the engine uses (:func:`heard_mask`, :func:`heard_cells`, :func:`cell_of`)
and its rules: candidates only for military/surveillance aircraft (the real classifier)
within the approach distance or predicted to enter (the real geofence).
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from streams.core.classify import Classifier
from streams.core.config import EngineConfig
from streams.core.coverage import (
    NOT_SILENT,
    OUT_OF_COVERAGE,
    PENDING,
    WENT_DARK,
    CoverageConfig,
    CoverageStage,
    DarkCandidate,
    Heard,
    Reappearance,
    cell_of,
    dark_alert_id,
    evidence_text,
    heard_cells,
    heard_mask,
)
from streams.core.places import Places, destination, haversine_m, initial_bearing_deg
from streams.geo import Geofence
from streams.messages import Position
from streams.parsers import parse_bytes

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[1] / "data"
SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "schemas" / "dark.v1.json").read_text()))

DARK = "ae0455"
# The cut: 10 min of ae0455's return leg, from 10,250 s after its first position, when it is
# ~45 km off Baja California heading 062 at ~200 kt, predicted to enter Mexican airspace.
CUT_FROM_S = 10_250.0
CUT_S = 600.0
# The scene: quickstart rows within 80 km of this point, 2021-10-07 13:00-13:40 UTC.
SCENE_ANCHOR = (47.5, 2.5)
SCENE_T0 = 1_633_611_600.0
SCENE_SHIFT_AT = SCENE_T0 + 600.0  # scene minute 10 lands on the last-seen time

Record = tuple[str, Heard | DarkCandidate | Reappearance]


def _parse(name: str) -> list[Position]:
    res = parse_bytes("traffic-json", gzip.decompress((DATA / name).read_bytes()))
    # quickstart stores some squawks without their leading zero ("656"); the parser refuses those
    # rows as bad_squawk, as it would live. Nothing else may be refused.
    assert {d.reason for d in res.dead_letters} <= {"bad_squawk"}
    assert len(res.dead_letters) < len(res.positions) // 10
    return res.positions


@pytest.fixture(scope="module")
def fence() -> Geofence:
    return Geofence.load()


@pytest.fixture(scope="module")
def score(fence: Geofence) -> Callable[[float, float], tuple[bool, float]]:
    def f(lat: float, lon: float) -> tuple[bool, float]:
        s = fence.score(np.array([lat]), np.array([lon]))
        return bool(s.inside[0]), float(s.dist_m[0])

    return f


@pytest.fixture(scope="module")
def carrier() -> list[Position]:
    ps = _parse("traffic_military_aircraft_carrier.json.gz")
    assert {p.icao24 for p in ps} == {DARK}
    return sorted(ps, key=lambda p: p.event_time)


@pytest.fixture(scope="module")
def scene_raw() -> list[Position]:
    return _parse("traffic_quickstart_scene.json.gz")


def _move_scene(scene: list[Position], lat0: float, lon0: float, t0: float) -> list[Position]:
    """The whole scene moved so its anchor is at (lat0, lon0) and SCENE_SHIFT_AT at t0."""
    a_lat, a_lon = SCENE_ANCHOR
    lat = np.array([p.lat for p in scene])
    lon = np.array([p.lon for p in scene])
    d = haversine_m(a_lat, a_lon, lat, lon)
    b = initial_bearing_deg(a_lat, a_lon, lat, lon)
    out = []
    for p, di, bi in zip(scene, d.tolist(), b.tolist(), strict=True):
        nlat, nlon = destination(lat0, lon0, bi, di)
        out.append(_replace(p, event_time=p.event_time - SCENE_SHIFT_AT + t0, lat=nlat, lon=nlon))
    return out


def _replace(p: Position, **kw: Any) -> Position:
    import dataclasses

    return dataclasses.replace(p, **kw)


class World:
    """ae0455 with its 10-min cut, the moved scene, and the numbers the tests check against."""

    def __init__(self, carrier: list[Position], scene_raw: list[Position]) -> None:
        t_first = carrier[0].event_time
        cut0, cut1 = t_first + CUT_FROM_S, t_first + CUT_FROM_S + CUT_S
        before = [p for p in carrier if p.event_time < cut0]
        after = [p for p in carrier if p.event_time >= cut1]
        self.last, self.back = before[-1], after[0]
        self.dark = before + after
        self.scene = _move_scene(scene_raw, self.last.lat, self.last.lon, self.last.event_time)
        self.cut = (cut0, cut1)

    def positions(self, silent_area: bool = False) -> list[Position]:
        ps = self.dark + self.scene
        if silent_area:
            # Every aircraft within 150 km of the last position is cut for the same span.
            lo, hi = self.cut
            ps = [p for p in ps if not (lo <= p.event_time < hi
                                        and float(haversine_m(self.last.lat, self.last.lon, p.lat, p.lon)) < 150e3)]
        return ps


@pytest.fixture(scope="module")
def world(carrier: list[Position], scene_raw: list[Position]) -> World:
    return World(carrier, scene_raw)


def _records(positions: list[Position], fence: Geofence, classifier: Classifier,
             dark_after_s: float = 300.0) -> list[tuple[float, Record]]:
    """(emission event time, (cell, record)) as the engine would send them."""
    cfg = EngineConfig()
    ps = sorted(positions, key=lambda p: (p.icao24, p.event_time))
    icaos = sorted({p.icao24 for p in ps})
    slot_of = {k: i for i, k in enumerate(icaos)}
    slot = np.array([slot_of[p.icao24] for p in ps], dtype=np.int64)
    t = np.array([p.event_time for p in ps])
    take = heard_mask(slot, t, np.full(len(icaos), np.nan))
    out: list[tuple[float, Record]] = []
    for p, tk in zip(ps, take.tolist(), strict=True):
        if tk:
            h = Heard(p.icao24, p.event_time, p.lat, p.lon)
            out.extend((h.t, (c, h)) for c in heard_cells(h.lat, h.lon))
    nan = float("nan")
    s = fence.score(np.array([p.lat for p in ps]), np.array([p.lon for p in ps]),
                    np.array([p.alt_baro_ft if p.alt_baro_ft is not None else nan for p in ps]),
                    np.array([p.ground_speed_kt if p.ground_speed_kt is not None else nan for p in ps]),
                    np.array([p.track_deg if p.track_deg is not None else nan for p in ps]))
    for i in range(1, len(ps)):
        a, b = ps[i - 1], ps[i]
        if a.icao24 != b.icao24 or b.event_time - a.event_time < dark_after_s:
            continue
        dist, tte = float(s.dist_m[i - 1]), float(s.tte_s[i - 1])
        if not (dist <= cfg.approach_enter_m or tte <= cfg.predict_enter_s):
            continue
        cls = classifier.classify(a.icao24, a.callsign)
        if not cls.is_military_or_surveillance:
            continue
        c = DarkCandidate(
            icao24=a.icao24, callsign=a.callsign, t_last=a.event_time, lat=a.lat, lon=a.lon, alt_ft=a.alt_baro_ft,
            gs_kt=a.ground_speed_kt, trk_deg=a.track_deg, distance_to_boundary_m=dist,
            predicted_entry_s=tte if math.isfinite(tte) else None, classification=cls.to_dict())
        cell = cell_of(a.lat, a.lon)
        out.append((a.event_time + dark_after_s, (cell, c)))
        out.append((b.event_time, (cell, Reappearance(a.icao24, a.event_time, b.event_time, b.lat, b.lon))))
    out.sort(key=lambda x: x[0])
    return out


def _feed(stage: CoverageStage, recs: Iterable[Record]) -> None:
    for cell, r in recs:
        if isinstance(r, Heard):
            stage.heard(cell, r)
        elif isinstance(r, DarkCandidate):
            stage.candidate(cell, r)
        else:
            stage.reappeared(cell, r)


def _stream(stage: CoverageStage, recs: list[tuple[float, Record]], step_s: float = 30.0,
            stop: float = math.inf) -> list[dict[str, Any]]:
    """Feed in event-time batches of ``step_s``, advancing the watermark after each batch."""
    alerts: list[dict[str, Any]] = []
    i = 0
    while i < len(recs) and recs[i][0] <= stop:
        end = recs[i][0] + step_s
        j = i
        while j < len(recs) and recs[j][0] < end and recs[j][0] <= stop:
            j += 1
        _feed(stage, (r for _t, r in recs[i:j]))
        alerts.extend(stage.advance(recs[j - 1][0]))
        i = j
    return alerts


@pytest.fixture(scope="module")
def places() -> Places:
    return Places.load()


@pytest.fixture(scope="module")
def recs(world: World, fence: Geofence, classifier: Classifier) -> list[tuple[float, Record]]:
    return _records(world.positions(), fence, classifier)


@pytest.fixture(scope="module")
def alerts(recs: list[tuple[float, Record]], score: Callable[[float, float], tuple[bool, float]],
           places: Places) -> list[dict[str, Any]]:
    stage = CoverageStage(CoverageConfig(), score, places.describe)
    out = _stream(stage, recs)
    out.extend(stage.finish())
    return out


def _expected_neighbours(recs: list[tuple[float, Record]], c: DarkCandidate, radius_m: float,
                         window_s: float) -> list[str]:
    """Brute force over every heard record (no cells): other aircraft heard near the last position."""
    seen = {r for _t, (_c, r) in recs if isinstance(r, Heard)}
    return sorted({h.icao24 for h in seen if h.icao24 != c.icao24 and c.t_last < h.t <= c.t_last + window_s
                   and float(haversine_m(c.lat, c.lon, h.lat, h.lon)) <= radius_m})


# ------------------------------------------------------------------------------------------ tests
def test_went_dark_then_reappeared_with_neighbours_heard(
    world: World, recs: list[tuple[float, Record]], alerts: list[dict[str, Any]],
    score: Callable[[float, float], tuple[bool, float]],
) -> None:
    last, back = world.last, world.back
    assert [a["transition"] for a in alerts] == ["went_dark", "reappeared"]
    dark, reap = alerts
    for a in alerts:
        SCHEMA.validate(a)
    aid = dark_alert_id(DARK, last.event_time)
    assert (dark["alert_id"], dark["seq"], dark["status"], dark["event_id"]) == (aid, 0, "open", f"{aid}:0")
    assert (reap["alert_id"], reap["seq"], reap["status"]) == (aid, 1, "closed")
    assert dark["event_time"] == last.event_time + 300.0
    assert dark["last_seen"]["event_time"] == last.event_time
    assert (dark["last_seen"]["lat"], dark["last_seen"]["lon"]) == (last.lat, last.lon)
    assert dark["callsign"] == "PSWRD35"
    assert dark["classification"]["is_military_or_surveillance"]
    # Near the line: within the approach ring, and predicted to enter.
    assert 0 < dark["last_seen"]["distance_to_boundary_m"] < 92_600
    assert dark["last_seen"]["predicted_entry_s"] is not None

    # Coverage evidence: the other aircraft heard within 50 km in the 5 min after the last position.
    cand = next(r for _t, (_c, r) in recs if isinstance(r, DarkCandidate) and r.t_last == last.event_time)
    expected = _expected_neighbours(recs, cand, 50_000.0, 300.0)
    assert len(expected) >= 1
    assert dark["coverage"] == {"aircraft_heard": len(expected), "radius_m": 50_000.0, "window_s": 300.0,
                                "icao24s": expected}
    assert dark["evidence"] == f"{len(expected)} other aircraft heard within 50 km in the last 5 min"
    assert DARK not in dark["coverage"]["icao24s"]

    # Dead reckoning: 300 s along the last track at the last ground speed, on the great circle.
    assert last.ground_speed_kt is not None and last.track_deg is not None
    lat, lon = destination(last.lat, last.lon, last.track_deg, last.ground_speed_kt * 1852.0 / 3600.0 * 300.0)
    inside, dist = score(lat, lon)
    dr = dark["dead_reckoned"]
    assert dr["lat"] == pytest.approx(lat) and dr["lon"] == pytest.approx(lon)
    assert (dr["inside"], dr["distance_to_boundary_m"]) == (inside, pytest.approx(dist))
    assert dark["severity"] == ("high" if inside else "medium")
    assert dark["silence_s"] == 300.0
    assert dark["reappeared"] is None

    # The reappearance: the real first position after the cut.
    gap = back.event_time - last.event_time
    moved = float(haversine_m(last.lat, last.lon, back.lat, back.lon))
    assert gap >= CUT_S
    assert reap["event_time"] == back.event_time
    assert reap["reappeared"] == {"event_time": back.event_time, "lat": back.lat, "lon": back.lon,
                                  "gap_s": gap, "moved_m": pytest.approx(moved)}
    assert reap["silence_s"] == gap
    assert reap["coverage"] == dark["coverage"] and reap["severity"] == dark["severity"]
    # ae0455 really flew on at ~200 kt: it reappears tens of km away.
    assert 20_000 < moved < 80_000
    assert "went dark" in dark["headline"] and "PSWRD35" in dark["headline"]
    assert "reappeared" in reap["headline"] and f"{moved / 1000:.0f} km" in reap["headline"]


def test_natural_silences_on_the_carrier_are_out_of_coverage(
    world: World, recs: list[tuple[float, Record]], alerts: list[dict[str, Any]],
) -> None:
    """ae0455's real silences on the carrier's deck (~85 km off Baja, nobody else heard there)."""
    cands = [r for _t, (_c, r) in recs if isinstance(r, DarkCandidate)]
    natural = [c for c in cands if c.t_last != world.last.event_time]
    assert natural, "the recording has real gaps near the line"
    for c in natural:
        assert _expected_neighbours(recs, c, 50_000.0, 300.0) == []
    assert {a["alert_id"] for a in alerts} == {dark_alert_id(DARK, world.last.event_time)}


def test_whole_area_silent_gives_no_alert(
    world: World, fence: Geofence, classifier: Classifier, score: Callable[[float, float], tuple[bool, float]],
) -> None:
    recs = _records(world.positions(silent_area=True), fence, classifier)
    cand = [r for _t, (_c, r) in recs if isinstance(r, DarkCandidate) and r.t_last == world.last.event_time]
    assert len(cand) == 1  # the same silence is still a candidate...
    stage = CoverageStage(CoverageConfig(), score)
    alerts = _stream(stage, recs) + stage.finish()
    assert alerts == []  # ...but nobody was heard near it: out of coverage
    assert stage.decision(DARK, world.last.event_time) == OUT_OF_COVERAGE
    assert stage.counters["coverage.went_dark"] == 0


def test_decision_recorded(recs: list[tuple[float, Record]], world: World,
                           score: Callable[[float, float], tuple[bool, float]]) -> None:
    stage = CoverageStage(CoverageConfig(), score)
    t_eval = world.last.event_time + 300.0
    assert _stream(stage, recs, stop=t_eval - 1.0) == []
    (cand,) = [r for _t, (_c, r) in recs if isinstance(r, DarkCandidate) and r.t_last == world.last.event_time]
    cell = cell_of(cand.lat, cand.lon)
    stage.candidate(cell, cand)
    assert stage.decision(DARK, world.last.event_time) == PENDING
    assert stage.advance(t_eval - 0.5) == []  # the watermark has not reached t_eval yet
    assert stage.decision(DARK, world.last.event_time) == PENDING
    (doc,) = stage.advance(t_eval)
    assert doc["transition"] == "went_dark" and doc["event_time"] == t_eval
    assert stage.decision(DARK, world.last.event_time) == WENT_DARK
    assert stage.counters["coverage.went_dark"] == 1
    assert cell in stage.take_touched() and stage.take_touched() == []


def test_arrival_order_does_not_matter(recs: list[tuple[float, Record]], alerts: list[dict[str, Any]],
                                       score: Callable[[float, float], tuple[bool, float]], places: Places) -> None:
    rng = random.Random(15)
    for _ in range(3):
        shuffled = [r for _t, r in recs]
        rng.shuffle(shuffled)
        stage = CoverageStage(CoverageConfig(), score, places.describe)
        _feed(stage, shuffled)
        assert stage.finish() == alerts
    # Shuffled within each batch of a streamed run, with batches of another size.
    batches: dict[int, list[tuple[float, Record]]] = {}
    for tr in recs:
        batches.setdefault(int(tr[0] // 120), []).append(tr)
    stage = CoverageStage(CoverageConfig(), score, places.describe)
    out: list[dict[str, Any]] = []
    for k in sorted(batches):
        b = batches[k]
        rng.shuffle(b)
        _feed(stage, (r for _t, r in b))
        out.extend(stage.advance(max(t for t, _r in b)))
    out.extend(stage.finish())
    assert out == alerts


def test_two_workers_give_the_same_answer_as_one(recs: list[tuple[float, Record]], alerts: list[dict[str, Any]],
                                                 score: Callable[[float, float], tuple[bool, float]],
                                                 places: Places) -> None:
    cells = sorted({c for _t, (c, _r) in recs})
    assert len(cells) > 2
    for split in range(2):
        owner = {c: (i + split) % 2 for i, c in enumerate(cells)}
        workers = [CoverageStage(CoverageConfig(), score, places.describe) for _ in range(2)]
        out: list[dict[str, Any]] = []
        for w, stage in enumerate(workers):
            out.extend(_stream(stage, [r for r in recs if owner[r[1][0]] == w]))
            out.extend(stage.finish())
        out.sort(key=lambda d: (d["event_time"], d["alert_id"], d["seq"]))
        assert out == alerts


def test_redelivery_is_idempotent(recs: list[tuple[float, Record]], alerts: list[dict[str, Any]],
                                  score: Callable[[float, float], tuple[bool, float]], places: Places) -> None:
    doubled = sorted(recs + recs, key=lambda x: x[0])
    stage = CoverageStage(CoverageConfig(), score, places.describe)
    out = _stream(stage, doubled) + stage.finish()
    assert out == alerts
    # A candidate and reappearance re-delivered after the decision raise nothing new.
    again = [r for _t, r in recs if not isinstance(r, Heard)]
    _feed(stage, again)
    assert stage.advance(math.inf) == []


def test_export_import_round_trip(recs: list[tuple[float, Record]], alerts: list[dict[str, Any]],
                                  world: World, score: Callable[[float, float], tuple[bool, float]],
                                  places: Places) -> None:
    # Stop between the candidate's arrival and its evaluation, and between decision and reappearance.
    for stop in (world.last.event_time + 200.0, world.last.event_time + 400.0):
        a = CoverageStage(CoverageConfig(), score, places.describe)
        first = _stream(a, recs, stop=stop)
        b = CoverageStage(CoverageConfig(), score, places.describe)
        for cell in a.cells():
            data = a.export_state(cell)
            assert data is not None
            b.import_state(cell, data)
            assert b.export_state(cell) == data
        assert b.cells() == a.cells()
        rest = _stream(b, [r for r in recs if r[0] > stop]) + b.finish()
        assert first + rest == alerts
    with pytest.raises(ValueError):
        b.import_state("1d:32:-118", b"not json")
    with pytest.raises(ValueError):
        b.import_state("1d:32:-118", b'{"v": 99}')


def test_state_is_pruned(recs: list[tuple[float, Record]], score: Callable[[float, float], tuple[bool, float]]) -> None:
    stage = CoverageStage(CoverageConfig(), score)
    _stream(stage, recs)
    end = recs[-1][0]
    n_heard = sum(len(stage._cells[c].heard) for c in stage.cells())
    # No more than keep_s of heard records (one a minute per aircraft per cell) remain.
    assert n_heard <= 16 * 4 * len({r.icao24 for _t, (_c, r) in recs if isinstance(r, Heard)})
    assert all(k[1] >= end - 30.0 - CoverageConfig().keep_s for c in stage.cells() for k in stage._cells[c].heard)
    stage.advance(end + CoverageConfig().forget_after_s + 1)
    assert stage.cells() == []


def test_reappearance_before_threshold_is_not_silent(world: World, score: Callable[[float, float], tuple[bool, float]],
                                                     recs: list[tuple[float, Record]]) -> None:
    cand = next(r for _t, (_c, r) in recs if isinstance(r, DarkCandidate) and r.t_last == world.last.event_time)
    cell = cell_of(cand.lat, cand.lon)
    stage = CoverageStage(CoverageConfig(), score)
    _feed(stage, [r for _t, r in recs if isinstance(r, Heard)])
    stage.candidate(cell, cand)
    # A real later position of ae0455, 2 min after its last one (as if the cut were shorter).
    p = next(q for q in world.dark if q.event_time > cand.t_last)
    stage.reappeared(cell, Reappearance(DARK, cand.t_last, cand.t_last + 120.0, p.lat, p.lon))
    assert stage.finish() == []
    assert stage.decision(DARK, cand.t_last) == NOT_SILENT


def test_candidate_in_wrong_cell_is_refused(recs: list[tuple[float, Record]]) -> None:
    cand = next(r for _t, (_c, r) in recs if isinstance(r, DarkCandidate))
    with pytest.raises(ValueError, match="cell"):
        CoverageStage().candidate("1d:0:0", cand)


# ------------------------------------------------------------------------------------------ records
def test_records_round_trip_and_reject_bad_input(recs: list[tuple[float, Record]]) -> None:
    kinds: dict[type, Any] = {type(r): r for _t, (_c, r) in recs}
    for cls in (Heard, DarkCandidate, Reappearance):
        rec = kinds[cls]
        assert cls.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    h = kinds[Heard].to_dict()
    for bad in ({**h, "icao24": "AE0455"}, {**h, "lat": 91.0}, {**h, "t": "x"}, {**h, "t": float("nan")},
                {k: v for k, v in h.items() if k != "lon"}, {**h, "lat": True}):
        with pytest.raises(ValueError):
            Heard.from_dict(bad)
    c = kinds[DarkCandidate].to_dict()
    for bad in ({**c, "callsign": 5}, {**c, "classification": []}, {**c, "gs_kt": -1.0}, {**c, "t_last": None}):
        with pytest.raises(ValueError):
            DarkCandidate.from_dict(bad)
    r = kinds[Reappearance].to_dict()
    with pytest.raises(ValueError):
        Reappearance.from_dict({**r, "t": r["t_last"] - 1})
    with pytest.raises(ValueError):
        Heard.from_dict([])  # type: ignore[arg-type]


def test_evidence_text() -> None:
    assert evidence_text(3, 50_000.0, 300.0) == "3 other aircraft heard within 50 km in the last 5 min"
    assert evidence_text(1, 50_000.0, 450.0) == "1 other aircraft heard within 50 km in the last 7.5 min"
    assert evidence_text(2, 7_500.0, 600.0) == "2 other aircraft heard within 7.5 km in the last 10 min"


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        CoverageConfig(radius_m=80_000.0)  # beyond the fan-out: the evidence could never be complete
    with pytest.raises(ValueError):
        CoverageConfig(min_neighbours=0)
    with pytest.raises(ValueError):
        CoverageConfig(keep_s=100.0)
    with pytest.raises(ValueError):
        CoverageConfig(cell_deg=0.7)
    CoverageConfig(radius_m=80_000.0, fanout_m=80_000.0)


def test_alert_id_is_stable() -> None:
    assert dark_alert_id("ae0455", 1600130321.0) == dark_alert_id("ae0455", 1600130321.0004)
    assert dark_alert_id("ae0455", 1600130321.0) != dark_alert_id("ae0455", 1600130322.0)
    assert len(dark_alert_id("ae0455", 0.0)) == 20


# ------------------------------------------------------------------------------------------ keys
def test_heard_cells_cover_every_point_within_the_radius(world: World, dal1812: list[Position],
                                                         boe004: list[Position]) -> None:
    """For real points p, q within 50 km of each other, q's cell is among p's fan-out cells."""
    pts = [(p.lat, p.lon) for p in (world.dark + world.scene + dal1812 + boe004)[::7]]
    lat = np.array([p[0] for p in pts])
    lon = np.array([p[1] for p in pts])
    fan = [set(heard_cells(a, b)) for a, b in pts]
    own = [cell_of(a, b) for a, b in pts]
    assert all(own[i] == heard_cells(*pts[i])[0] for i in range(len(pts)))
    checked = crossing = 0
    for i in range(0, len(pts), 3):
        d = haversine_m(lat[i], lon[i], lat, lon)
        for j in np.flatnonzero(d <= 50_000.0).tolist():
            checked += 1
            crossing += own[j] != own[i]
            assert own[j] in fan[i]
    assert checked > 1000 and crossing > 50  # pairs across cell edges were exercised
    assert max(len(f) for f in fan) <= 6
    # Far cells are not in the fan-out: every fanned-out cell comes within the radius.
    assert cell_of(32.3, -117.9) == "1d:32:-118"
    assert cell_of(-0.5, 179.9) == "1d:-1:179" and cell_of(0.0, -180.0) == cell_of(0.0, 180.0)
    assert heard_cells(32.5, -118.0) == ["1d:32:-118", "1d:32:-119"]  # 55 km from the parallels
    assert set(heard_cells(32.2, -118.1)) == {"1d:32:-119", "1d:32:-118", "1d:31:-119", "1d:31:-118"}


def test_heard_mask_is_batch_independent(world: World) -> None:
    ps = sorted(world.dark + world.scene, key=lambda p: (p.icao24, p.event_time))
    icaos = sorted({p.icao24 for p in ps})
    slot_all = np.array([icaos.index(p.icao24) for p in ps], dtype=np.int64)
    t_all = np.array([p.event_time for p in ps])
    one = heard_mask(slot_all, t_all, np.full(len(icaos), np.nan))
    # One record per aircraft per minute bucket with positions, no more.
    buckets = {(p.icao24, math.floor(p.event_time / 60.0)) for p in ps}
    assert int(one.sum()) == len(buckets)
    # The same positions cut into time batches (each sorted by slot, then time).
    order = np.argsort(t_all, kind="stable")
    rng = random.Random(3)
    for _ in range(3):
        last = np.full(len(icaos), np.nan)
        got = np.zeros(len(ps), dtype=np.bool_)
        i = 0
        while i < len(order):
            j = min(len(order), i + rng.randint(1, 400))
            idx = order[i:j]
            idx = idx[np.lexsort((t_all[idx], slot_all[idx]))]
            got[idx] = heard_mask(slot_all[idx], t_all[idx], last)
            i = j
        assert (got == one).all()
