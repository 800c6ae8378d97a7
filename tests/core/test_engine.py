"""The engine end to end on real recorded flights, with the real geofence.

DAL1812 (readsb trace of ac671b) crosses Yucatán: one entry, one exit. BOE004 (the Boeing
787 test flight) passes ~26 nm from Mexico near Laredo: an approach, no entry. Both are
civil, so alerts need policy "all" (or a watchlist). The streaming agents and ``skyfence
analyze`` feed the engine in different batch sizes and restart it from exported state: the
alerts must not change.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
from jsonschema import Draft202012Validator

from streams.core.config import EngineConfig
from streams.core.engine import Engine, EngineOutput

from .conftest import CORE_DATA

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ALERT_SCHEMA = Draft202012Validator(json.loads((SCHEMAS / "alert.v1.json").read_text()))
TRACK_SCHEMA = Draft202012Validator(json.loads((SCHEMAS / "track.v1.json").read_text()))


@pytest.fixture(scope="module")
def geofence():
    from streams.geo import Geofence

    g = Geofence.load()
    g.warm()
    return g


@pytest.fixture(scope="module")
def make(geofence, classifier, places):
    def _make(**cfg):
        cfg.setdefault("alert_policy", "all")
        return Engine(EngineConfig(**cfg), geofence, classifier, places)

    return _make


def run(engine, positions, batch=None, advance=False, close=False):
    """Feed like the agent: batches, optionally advance(max event time) after each."""
    out = EngineOutput()
    batch = batch or max(1, len(positions))
    wm = -math.inf
    for i in range(0, len(positions), batch):
        chunk = positions[i : i + batch]
        out.extend(engine.process(chunk))
        if advance and chunk:
            wm = max(wm, max(p.event_time for p in chunk))
            out.extend(engine.advance(wm))
    out.extend(engine.flush())
    if close:
        out.extend(engine.advance(math.inf))
    return out


def by_id(alerts):
    return sorted(alerts, key=lambda a: (a["icao24"], a["alert_id"], a["seq"]))


def sovereign(alerts, transition=None):
    return [a for a in alerts if a["zone"] == "sovereign" and (transition is None or a["transition"] == transition)]


def time_ordered(*flights):
    return sorted((p for f in flights for p in f), key=lambda p: p.event_time)


# ---------------------------------------------------------------------------- the done-when checks
def test_dal1812_enters_and_exits_mexico_once(make, dal1812):
    out = run(make(), dal1812)
    alerts = out.alerts
    assert len({a["event_id"] for a in alerts}) == len(alerts)
    (entered,) = sovereign(alerts, "entered")
    (exited,) = sovereign(alerts, "exited")
    assert entered["alert_id"] == exited["alert_id"]
    assert len({a["alert_id"] for a in sovereign(alerts)}) == 1
    assert [a["seq"] for a in by_id(alerts)] == list(range(len(alerts)))
    # Entry over southern Quintana Roo, after a 6-minute coverage hole; exit across the
    # 48-minute hole over Yucatán and the Gulf. Both crossings happened inside a hole, so both
    # are placed at the estimated crossing: on the boundary, between the fixes either side.
    from streams.geo import Geofence

    fence = Geofence.load()
    for a in (entered, exited):
        c = a["crossing"]
        assert a["crossing_estimated"] and c["estimated"] and a["distance_to_boundary_m"] == 0.0
        assert c["before"]["event_time"] < a["event_time"] < c["after"]["event_time"]
        assert c["gap_s"] == pytest.approx(c["after"]["event_time"] - c["before"]["event_time"])
        assert a["silence_s"] == c["gap_s"] and "estimated" in a["headline"]
        p = a["position"]
        d = float(fence.score([p["lat"]], [p["lon"]], closest_approach=False).dist_m[0])
        assert abs(d) < 50.0, d  # the estimate is on the sovereign boundary itself (checked independently)
        # the fix before the hole is on the other side
        assert (c["before"]["distance_to_boundary_m"] > 0) == (a["transition"] == "entered")
    assert entered["crossing"]["gap_s"] == pytest.approx(360.0, abs=60.0)
    # The estimate lies on the Mexico-Belize border, so it is described from the nearest Belizean town.
    assert entered["callsign"] == "DAL1812" and entered["description"] == "21 km N of Orange Walk, Belize"
    assert exited["silence_s"] == pytest.approx(2887.27, abs=0.01)
    assert exited["predicted_entry_s"] is None
    assert exited["status"] == "closed" and exited["close_reason"] == "exited"
    assert entered["event_time"] < exited["event_time"]
    assert sovereign(alerts)[0]["transition"] == "approaching"
    assert exited["closest_approach"]["distance_m"] < -100_000  # flew > 100 km deep
    # Civil aircraft: low/info severity under policy "all".
    assert entered["severity"] == "low" and exited["severity"] == "info"


def test_boe004_approaches_near_laredo_without_entering(make, boe004):
    out = run(make(), boe004)
    sov = sovereign(out.alerts)
    assert sovereign(out.alerts, "approaching")
    assert not sovereign(out.alerts, "entered") and not sovereign(out.alerts, "exited")
    closed = sovereign(out.alerts, "closed")[-1]
    assert closed["close_reason"] == "receded"
    cpa = closed["closest_approach"]
    assert 40_000 < cpa["distance_m"] < 60_000  # ~26 nm
    assert "Laredo" in cpa["description"]
    assert {a["alert_id"] for a in sov} == {sov[0]["alert_id"]}  # one episode, no flapping
    track = out.track_updates[-1]
    assert track["time_in_zone_s"]["sovereign"] == 0.0
    assert track["closest_approach"]["distance_m"] == pytest.approx(cpa["distance_m"])


# ---------------------------------------------------------------------------- determinism
def test_big_releases_and_sweeps_in_chunks_give_the_same_output(make, dal1812, boe004, monkeypatch):
    """A release bigger than RELEASE_CHUNK goes through the kernels in chunks of whole aircraft
    (the working arrays of a 75,000-position burst were ~150 MB), and a sweep in chunks of
    SWEEP_CHUNK aircraft (its worst-case rows were ~100 MB at 100,000): the output must not change."""
    import streams.core.engine as engine_module

    # Twelve aircraft: the two real flights, each under six addresses, all in one batch, so the
    # flush at the end is one release of every position.
    fleet = [replace(p, icao24=f"{i:02x}{p.icao24[2:]}") for i in range(6) for p in (*dal1812, *boe004)]
    whole = run(make(), fleet, close=True)
    monkeypatch.setattr(engine_module, "RELEASE_CHUNK", 97)  # each chunk ends inside an aircraft
    monkeypatch.setattr(engine_module, "SWEEP_CHUNK", 5)  # the closing sweep in three chunks
    chunked = run(make(), fleet, close=True)
    assert len(whole.alerts) >= 12 and len(whole.track_updates) >= 12
    assert sum(a["transition"] == "closed" for a in whole.alerts) >= 6  # the closing sweep ended the BOE004s
    assert chunked.alerts == whole.alerts
    # Track updates come per chunk (segments, events, then the chunk's touched aircraft), so
    # they interleave differently across aircraft; each aircraft's own (its Kafka key's) order holds.
    def per_aircraft(docs):
        return sorted(docs, key=lambda d: d["icao24"])  # stable: keeps each aircraft's order

    assert per_aircraft(chunked.track_updates) == per_aircraft(whole.track_updates)
    assert len(chunked.track_updates) == len(whole.track_updates)
    assert chunked.coverage == whole.coverage and chunked.missions == whole.missions
    assert chunked.touched == whole.touched and chunked.counters == whole.counters


def test_replays_are_deterministic(make, dal1812, boe004):
    stream = time_ordered(dal1812, boe004)
    a = run(make(), stream, batch=250, advance=True, close=True)
    b = run(make(), stream, batch=250, advance=True, close=True)
    assert a.alerts == b.alerts
    assert a.track_updates == b.track_updates
    assert len(a.alerts) >= 10


def test_advance_steps_release_in_parts_of_whole_aircraft_with_advances_output(make, dal1812, boe004):
    """Engine.advance_steps: what advance releases at once, in parts of about max_release
    positions (whole aircraft), the sweep in the last part; together the same output."""
    fleet = [replace(p, icao24=f"{i:02x}{p.icao24[2:]}") for i in range(6) for p in (*dal1812[:60], *boe004[:60])]
    end = max(p.event_time for p in fleet) + 3600.0  # past every timeout: the sweep closes episodes
    whole, stepped = make(reorder_tolerance_s=1e6), make(reorder_tolerance_s=1e6)
    for e in (whole, stepped):
        assert not e.process(fleet).counters["accepted"]  # all buffered: nothing older than 1e6 s
    once = whole.advance(end + 1e6)
    parts = list(stepped.advance_steps(end + 1e6, max_release=100))
    released = [o.counters["accepted"] + sum(v for k, v in o.counters.items() if k.startswith("rejected."))
                for o in parts]
    assert sum(released) == len(fleet) and len(parts) >= 6
    assert all(n <= 100 + 60 for n in released)  # whole aircraft of 60 positions each
    merged = EngineOutput()
    for o in parts:
        merged.extend(o)
    assert merged.alerts == once.alerts and len(once.alerts) >= 6
    def per_aircraft(docs):
        return sorted(docs, key=lambda d: d["icao24"])  # stable: keeps each aircraft's order

    assert per_aircraft(merged.track_updates) == per_aircraft(once.track_updates)
    assert merged.coverage == once.coverage and merged.missions == once.missions
    assert stepped.pending_count == whole.pending_count == 0
    assert sorted(stepped.aircraft()) == sorted(whole.aircraft())
    assert all(stepped.export_state_bytes(a) == whole.export_state_bytes(a) for a in whole.aircraft())


@pytest.mark.parametrize("batch", [1, 7, 64, 999])
@pytest.mark.parametrize("advance", [False, True])
def test_batch_size_does_not_change_alerts(make, dal1812, boe004, batch, advance):
    stream = time_ordered(dal1812, boe004)
    whole = run(make(), stream, close=True)
    split = run(make(), stream, batch=batch, advance=advance, close=True)
    assert by_id(split.alerts) == by_id(whole.alerts)
    closed_segments = sorted((t for t in whole.track_updates if t["segment_closed"]), key=lambda t: t["segment_id"])
    assert (
        sorted((t for t in split.track_updates if t["segment_closed"]), key=lambda t: t["segment_id"])
        == closed_segments
    )


@pytest.mark.parametrize("form", ["json", "bytes"])
@pytest.mark.parametrize("cut", [60, 70, 88, 95, 1500])
def test_restart_from_exported_state_continues_identically(make, dal1812, cut, form):
    whole = run(make(), dal1812, batch=10, advance=True, close=True)
    first = make()
    out = run_partial(first, dal1812[:cut])
    if form == "json":
        saved = {icao: orjson.dumps(first.export_state(icao)) for icao in first.aircraft()}
    else:
        saved = {icao: first.export_state_bytes(icao) for icao in first.aircraft()}
    assert first.pending_count > 0 or cut == 1500  # the reorder buffer travels too
    second = make()
    for icao, raw in saved.items():
        second.import_state_bytes(icao, raw)  # reads both forms
    assert {i: second.export_state(i) for i in second.aircraft()} == {i: first.export_state(i) for i in saved}
    # every column of the rows, named or not (the pattern detector's turn gate too), in both forms
    assert second.export_states_bytes(sorted(saved)) == first.export_states_bytes(sorted(saved))
    out.extend(run(second, dal1812[cut:], batch=10, advance=True, close=True))
    assert by_id(out.alerts) == by_id(whole.alerts)


def test_binary_state_is_compact_and_refused_by_another_layout(make, dal1812, geofence, classifier, places):
    e = make()
    run_partial(e, dal1812[:70])
    raw = e.export_state_bytes("ac671b")
    assert raw is not None and e.export_state_bytes("000000") is None
    assert len(raw) * 2 < len(orjson.dumps(e.export_state("ac671b")))
    with pytest.raises(ValueError, match="truncated"):
        make().import_state_bytes("ac671b", raw[:100])
    # An engine with a user fence has another row layout: its rows would be misread.
    fenced = Engine(EngineConfig(alert_policy="all"), _with_fence(geofence), classifier, places)
    with pytest.raises(ValueError, match="another layout"):
        fenced.import_state_bytes("ac671b", raw)
    fenced.import_state_bytes("ac671b", orjson.dumps(e.export_state("ac671b")))  # named JSON still maps
    assert fenced.export_state("ac671b")["alert"]["sovereign"] == e.export_state("ac671b")["alert"]["sovereign"]


class _FencedGeofence:
    """The real geofence, claiming one user fence (the engine sizes its rows from the names)."""

    def __init__(self, inner):
        self._inner = inner
        self.fence_names = ["test fence"]

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _with_fence(geofence):
    return _FencedGeofence(geofence)


def run_partial(engine, positions):
    out = EngineOutput()
    wm = -math.inf
    for i in range(0, len(positions), 10):
        chunk = positions[i : i + 10]
        out.extend(engine.process(chunk))
        wm = max(wm, max(p.event_time for p in chunk))
        out.extend(engine.advance(wm))
    return out


def test_touched_and_evicted_keep_a_state_table_sufficient_for_restarts(make, dal1812, boe004):
    """The track agent stores export_state() of every touched aircraft and deletes evicted ones;
    a worker restarted from that table alone must give the uninterrupted run's alerts."""
    stream = time_ordered(dal1812, boe004)
    whole = run(make(), stream, batch=25, advance=True, close=True)
    table: dict[str, bytes] = {}
    out = EngineOutput()
    engine = make()
    wm = -math.inf
    for n, i in enumerate(range(0, len(stream), 25)):
        if n % 17 == 16:  # "crash": a new worker restores lazily from the table
            engine = make()
            for icao, raw in table.items():
                engine.import_state(icao, orjson.loads(raw))
        chunk = stream[i : i + 25]
        res = engine.process(chunk)
        wm = max(wm, max(p.event_time for p in chunk))
        res.extend(engine.advance(wm))
        for icao in res.touched:
            table[icao] = orjson.dumps(engine.export_state(icao))
        for icao in res.evicted:
            table.pop(icao, None)
        out.extend(res)
    out.extend(engine.flush())
    out.extend(engine.advance(math.inf))
    assert by_id(out.alerts) == by_id(whole.alerts)


def test_a_buffered_position_marks_its_aircraft_touched(make, dal1812):
    e = make()
    first = e.process(dal1812[:1])
    assert e.pending_count == 1 and first.touched == ["ac671b"] and not first.track_updates


def test_export_state_is_plain_json(make, dal1812):
    e = make()
    run_partial(e, dal1812[:70])
    state = e.export_state("ac671b")
    assert json.loads(json.dumps(state, allow_nan=False)) == state
    assert state["alert"]["sovereign"]["st"] == 2  # inside Mexico at that point
    assert e.export_state("000000") is None
    with pytest.raises(ValueError, match="version"):
        e.import_state("ac671b", {**state, "v": 99})


# ---------------------------------------------------------------------------- gates on real data
def test_second_receiver_duplicates_change_nothing(make, dal1812):
    dup = []
    for p in dal1812:
        dup += [p, replace(p, event_time=p.event_time + 0.3, receiver="second")]
    base = run(make(), dal1812)
    out = run(make(), dup, batch=100)
    assert by_id(out.alerts) == by_id(base.alerts)
    reasons = [r for _, r in out.rejected]
    assert reasons.count("duplicate") >= len(dal1812) - 5
    assert all(pos.receiver == "second" for pos, r in out.rejected if r == "duplicate" and pos.receiver)


def test_out_of_order_within_tolerance_is_sorted_in_late_beyond_is_rejected(make, dal1812):
    cfg = {"reorder_tolerance_s": 30.0}
    shuffled = list(dal1812)
    for i in range(0, len(shuffled) - 1, 2):  # swap neighbours (10-20 s apart)
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    assert by_id(run(make(**cfg), shuffled, batch=1).alerts) == by_id(run(make(**cfg), dal1812).alerts)
    # A position that arrives after 200 newer ones is older than anything released: late.
    held = dal1812[1000]
    stream = dal1812[:1000] + dal1812[1001:1200] + [held] + dal1812[1200:]
    out = run(make(**cfg), stream, batch=50)
    assert [(p, r) for p, r in out.rejected if r == "late"] == [(held, "late")]


def test_without_a_reorder_tolerance_alerts_come_with_their_own_position(make, dal1812):
    """Tolerance 0 (SKYFENCE_REORDER_TOLERANCE_S=0): nothing is held, so each alert leaves the
    engine in the call that received the position confirming it; the alerts are the same as
    with the default tolerance, and an out-of-order position is refused as late."""
    held = run(make(), dal1812, batch=1, advance=True)
    engine = make(reorder_tolerance_s=0.0)
    at_once = []
    for p in dal1812:
        out = engine.process([p])
        assert engine.pending_count == 0
        at_once += [(a, p.event_time) for a in out.alerts]
    assert [a["alert_id"] for a, _ in at_once] == [a["alert_id"] for a in held.alerts if a["transition"] != "closed"]
    assert all(a["confirmed_event_time"] == t for a, t in at_once)
    late = make(reorder_tolerance_s=0.0)
    out = run(late, [dal1812[1], dal1812[0], dal1812[2]], batch=1)
    assert [(p, r) for p, r in out.rejected if r == "late"] == [(dal1812[0], "late")]


def test_invalid_positions_are_rejected_with_a_reason(make, dal1812):
    bad = [
        replace(dal1812[5], lat=float("nan")),
        replace(dal1812[6], lon=200.0),
        replace(dal1812[7], event_time=math.inf),
    ]
    out = run(make(), dal1812[:5] + bad + dal1812[8:20])
    assert sorted(r for _, r in out.rejected if r == "invalid_position") == ["invalid_position"] * 3
    assert out.counters["positions_in"] == out.counters["accepted"] + len(out.rejected)


def test_gate_rejections_are_counted_and_returned(make, boe004):
    out = run(make(), boe004)
    assert out.counters["accepted"] + len(out.rejected) == len(boe004)
    assert out.counters["rejected.implausible_jump"] == sum(1 for _, r in out.rejected if r == "implausible_jump")


# ---------------------------------------------------------------------------- policy
def test_military_policy_tracks_civil_aircraft_but_raises_nothing(make, dal1812):
    out = run(make(alert_policy="military"), dal1812)
    assert out.alerts == []
    assert out.track_updates and out.counters["alerts_suppressed_by_policy"] >= 3
    # The same aircraft on the watchlist raises the same episodes, with watchlist severity.
    base = run(make(), dal1812)
    watched = run(make(alert_policy="military", watchlist=frozenset({"AC671B"})), dal1812)
    assert [a["event_id"] for a in watched.alerts] == [a["event_id"] for a in base.alerts]
    (entered,) = sovereign(watched.alerts, "entered")
    assert entered["severity"] == "high" and entered["watchlisted"] and entered["policy"] == "military"


# ---------------------------------------------------------------------------- event-time housekeeping
def test_watermark_times_out_and_evicts(make, dal1812):
    e = make()
    out = run_partial(e, dal1812[:88])  # ends inside Mexico, before the coverage hole
    out.extend(e.flush())
    last = max(p.event_time for p in dal1812[:88])
    out.extend(e.advance(last + 1000.0))
    assert not sovereign(out.alerts, "closed")
    timed = e.advance(last + 3600.0 + 10.0)
    (closed,) = sovereign(timed.alerts, "closed")
    assert closed["close_reason"] == "timeout" and closed["event_time"] == pytest.approx(last + 3600.0)
    assert closed["severity"] == "low"  # civil, lost while inside
    assert [t["segment_closed"] for t in timed.track_updates] == []  # segment closed earlier
    gone = e.advance(last + 7300.0)
    assert gone.evicted == ["ac671b"] and e.aircraft_count == 0
    # After eviction the next positions start afresh: no "exited" for the closed episode.
    rest = run(e, dal1812[88:])
    assert not sovereign(rest.alerts, "exited")


def test_segments_split_on_silence(make, dal1812):
    out = run(make(), dal1812)
    t = np.array([p.event_time for p in dal1812])
    closed = [u for u in out.track_updates if u["segment_closed"]]
    assert len(closed) == int((np.diff(t) >= 600.0).sum()) == 8
    for u in closed:
        assert sum(u["time_in_zone_s"].values()) == pytest.approx(u["last_seen"] - u["first_seen"])
    first = closed[0]
    assert first["callsign"] == "DAL1812"
    assert first["time_in_zone_s"]["sovereign"] > 600.0
    assert first["closest_approach"]["distance_m"] < 0
    assert len({u["segment_id"] for u in out.track_updates}) == 9


def test_user_fence_has_its_own_episodes(classifier, places, dal1812, tmp_path):
    from streams.geo import Geofence

    # A box around Chetumal Bay that DAL1812 flies through.
    fence = {"type": "Feature", "properties": {"name": "chetumal-box"},
             "geometry": {"type": "Polygon", "coordinates": [[[-89.3, 18.0], [-88.0, 18.0], [-88.0, 19.0],
                                                              [-89.3, 19.0], [-89.3, 18.0]]]}}  # fmt: skip
    path = tmp_path / "fences.geojson"
    path.write_text(json.dumps(fence))
    g = Geofence.load(user_fences=path)
    out = run(Engine(EngineConfig(alert_policy="all"), g, classifier, places), dal1812)
    fz = [a for a in out.alerts if a["zone"] == "chetumal-box"]
    assert [a["transition"] for a in fz] == ["entered", "exited"]
    assert all(a["zone_kind"] == "fence" and a["distance_to_boundary_m"] is None for a in fz)
    assert len(sovereign(out.alerts, "entered")) == 1
    seg = next(u for u in out.track_updates if u["segment_closed"])
    assert seg["time_in_fence_s"]["chetumal-box"] > 0


# ---------------------------------------------------------------------------- schemas
def test_outputs_validate_against_schemas(make, dal1812, boe004, classifier, geofence, places):
    from streams.core.classify import Classifier

    outs = [run(make(), time_ordered(dal1812, boe004), batch=100, advance=True, close=True)]
    # A classifier that knows the two ER-2s and a watchlist gives the full evidence variety.
    clf = Classifier.load(extra_csv=CORE_DATA / "plane_alert_sample.csv", watchlist=["ac671b"])
    outs.append(run(Engine(EngineConfig(alert_policy="military"), geofence, clf, places), dal1812, close=True))
    n = 0
    for out in outs:
        for a in out.alerts:
            ALERT_SCHEMA.validate(orjson.loads(orjson.dumps(a)))
            n += 1
        for t in out.track_updates:
            TRACK_SCHEMA.validate(orjson.loads(orjson.dumps(t)))
    assert n >= 10
    # The schemas do reject what they should.
    bad = dict(outs[0].alerts[0], transition="teleported")
    assert not ALERT_SCHEMA.is_valid(bad)


def test_reorder_buffer_gives_back_a_burst(make):
    """A catch-up buffers 100,000 first positions at once; once they are released the buffer's
    capacity goes back to a few thousand rows instead of staying at the burst's size."""
    from streams.messages import Position

    e = make(reorder_tolerance_s=2.0)
    t0 = 1_750_000_000.0
    burst = [Position(f"{0x500000 + k:06x}", t0 + k * 1e-3, 10.0, float(k % 360 - 180), "test", 35000.0,
                      ground_speed_kt=450.0, track_deg=90.0) for k in range(100_000)]
    e.process(burst)
    assert e.pending_count == 100_000 and e.pending_capacity >= 100_000
    out = e.advance(t0 + 200.0)
    assert e.pending_count == 0 and out.counters["accepted"] == 100_000
    assert e.pending_capacity <= 4096
    more = [replace(p, event_time=p.event_time + 10.0, lat=10.01) for p in burst[:3000]]
    e.process(more)
    e.advance(t0 + 300.0)
    assert e.pending_count == 0 and e.totals["accepted"] == 103_000


def test_track_encoder_receives_each_document(make, dal1812):
    plain = run(make(), dal1812, batch=100, advance=True, close=True)
    e = make()
    e.track_encoder = lambda doc: ("encoded", orjson.dumps(doc))
    encoded = run(e, dal1812, batch=100, advance=True, close=True)
    assert plain.track_updates and len(encoded.track_updates) == len(plain.track_updates)
    assert all(tag == "encoded" for tag, _ in encoded.track_updates)
    assert [orjson.loads(v) for _, v in encoded.track_updates] == [orjson.loads(orjson.dumps(d)) for d in
                                                                   plain.track_updates]
    assert encoded.alerts == plain.alerts
