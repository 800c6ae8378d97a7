"""The live map's state and its demand-driven follower, without a broker.

``follow_while_watched`` is given a stand-in for ``follow_topics`` that records each session,
so these tests see exactly when a follower would be started and stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streams.settings import Settings
from streams.web import live as live_mod
from streams.web.live import LiveState, add_live_routes, follow_while_watched

pytestmark = pytest.mark.unit

IDLE = 0.2


def track(icao: str = "abc123", lat: float = 20.0, lon: float = -90.0, t: float = 1.0) -> dict[str, Any]:
    return {"icao24": icao, "callsign": "DAL1812", "position": {"lat": lat, "lon": lon, "alt_ft": 35000},
            "geofence": {"zone": "MX", "distance_to_boundary_m": -1000.0}, "last_seen": t}


class FakeFollow:
    """Stands in for follow_topics: a session runs until its stop event is set."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0
        self.running = False
        self.states: list[LiveState] = []

    async def __call__(self, settings: Settings, state: LiveState, stop: asyncio.Event) -> None:
        self.started += 1
        self.running = True
        self.states.append(state)
        state.on_alert({"event_id": f"backfill-{self.started}"})  # what a backfill would bring
        try:
            await stop.wait()
        finally:
            self.running = False
            self.stopped += 1


async def until(cond: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def watcher(settings: Settings, state: LiveState, fake: FakeFollow,
                  idle_s: float = IDLE) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(follow_while_watched(settings, state, stop, idle_s=idle_s, follow=fake))
    try:
        yield stop
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not fake.running, "the follower outlived its watcher"
        assert not state.following


# --- SSE events only when someone listens ---------------------------------------------------------------------


def test_no_sse_work_without_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    state = LiveState()
    calls: list[str] = []
    monkeypatch.setattr(state, "view", lambda icao: calls.append(icao) or {})
    monkeypatch.setattr(live_mod.orjson, "dumps", lambda obj: calls.append("dumps") or b"{}")
    state.on_track(track())
    state.on_alert({"event_id": "e1"})
    assert calls == []  # neither view() nor the JSON was built
    assert list(state.aircraft) == ["abc123"] and len(state.trails["abc123"]) == 1
    assert [a["event_id"] for a in state.alerts] == ["e1"]  # the snapshot routes still see everything


def test_sse_client_gets_one_event_per_update() -> None:
    state = LiveState()
    q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10)
    state.clients.add(q)
    state.on_track(track())
    state.on_alert({"event_id": "e1"})
    assert q.qsize() == 2
    first, second = q.get_nowait(), q.get_nowait()
    assert first.startswith(b"data: ") and first.endswith(b"\n\n")
    ev = orjson.loads(first[len(b"data: "):])
    assert ev["type"] == "track" and ev["aircraft"]["icao24"] == "abc123" and ev["aircraft"]["lat"] == 20.0
    assert ev["aircraft"]["trail"] == [[20.0, -90.0]]
    assert orjson.loads(second[len(b"data: "):]) == {"type": "alert", "alert": {"event_id": "e1"}}


def test_slow_client_is_dropped_not_blocking() -> None:
    state = LiveState()
    q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
    state.clients.add(q)
    state.on_track(track(t=1.0))
    state.on_track(track(lat=21.0, t=2.0))
    assert q not in state.clients and q.qsize() == 1


def test_in_use_by_touch_or_client() -> None:
    state = LiveState()
    assert not state.in_use(IDLE) and not state.following
    state.touch()
    assert state.in_use(IDLE)
    state._last_used -= 2 * IDLE  # the touch is older than the idle time
    assert not state.in_use(IDLE)
    state.clients.add(asyncio.Queue())
    assert state.in_use(IDLE)  # a connected viewer counts however old the last request


# --- the follower follows demand ------------------------------------------------------------------------------


async def test_not_started_until_touched(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    async with watcher(base_settings, state, fake):
        await asyncio.sleep(3 * IDLE)
        assert fake.started == 0 and not state.following
        state.touch()
        await until(lambda: fake.running)
        assert fake.started == 1 and state.following and fake.states == [state]


async def test_stops_when_idle_and_restarts_on_touch(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    async with watcher(base_settings, state, fake):
        state.touch()
        await until(lambda: fake.running)
        t0 = time.monotonic()
        assert [a["event_id"] for a in state.alerts] == ["backfill-1"]
        await until(lambda: fake.stopped == 1)
        took = time.monotonic() - t0
        assert IDLE * 0.8 < took < IDLE * 5, took  # stopped by the idle timeout, not at once
        await until(lambda: not state.following)
        assert not state.alerts  # forgotten, so the next backfill does not repeat it
        checks = 0
        in_use = state.in_use

        def counted(idle_s: float) -> bool:
            nonlocal checks
            checks += 1
            return in_use(idle_s)

        state.in_use = counted  # type: ignore[method-assign]
        await asyncio.sleep(2 * IDLE)
        assert fake.started == 1  # stays stopped: the old touch does not count again
        assert checks <= 2, checks  # and sleeps until the next touch instead of spinning on the old one

        state.touch()
        await until(lambda: fake.running)
        assert fake.started == 2 and state.following
        assert [a["event_id"] for a in state.alerts] == ["backfill-2"]


async def test_touches_keep_it_running(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    async with watcher(base_settings, state, fake):
        state.touch()
        await until(lambda: fake.running)
        for _ in range(6):  # 1.5 x IDLE of polling, each within the idle time
            await asyncio.sleep(IDLE / 4)
            state.touch()
        assert fake.started == 1 and fake.stopped == 0 and state.following


async def test_connected_client_keeps_it_running_past_idle(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    async with watcher(base_settings, state, fake):
        state.touch()
        await until(lambda: fake.running)
        q: asyncio.Queue[bytes] = asyncio.Queue()
        state.clients.add(q)
        await asyncio.sleep(4 * IDLE)
        assert fake.running and fake.started == 1 and state.following
        state.clients.discard(q)  # the client left without a touch: the idle time is long past
        await until(lambda: not fake.running)
        await until(lambda: not state.following)
        assert fake.started == 1


async def test_stop_event_ends_it(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    stop = asyncio.Event()
    task = asyncio.create_task(follow_while_watched(base_settings, state, stop, idle_s=60.0, follow=fake))
    state.touch()
    await until(lambda: fake.running)
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert fake.stopped == 1 and not state.following


async def test_cancelled_while_following_stops_follower(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    task = asyncio.create_task(follow_while_watched(base_settings, state, asyncio.Event(), idle_s=60.0, follow=fake))
    state.touch()
    await until(lambda: fake.running)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.stopped == 1 and not fake.running and not state.following


async def test_follower_that_dies_is_restarted_while_in_use(base_settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_mod, "RETRY_S", 0.05)
    state = LiveState()
    runs: list[float] = []

    async def crashing(settings: Settings, st: LiveState, stop: asyncio.Event) -> None:
        runs.append(time.monotonic())
        raise RuntimeError("boom")

    stop = asyncio.Event()
    task = asyncio.create_task(follow_while_watched(base_settings, state, stop, idle_s=60.0, follow=crashing))
    state.touch()
    await until(lambda: len(runs) >= 3)
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert all(b - a >= 0.04 for a, b in itertools.pairwise(runs))  # paced, not a hot loop


# --- the routes are what counts as use ------------------------------------------------------------------------


async def test_routes_touch_and_sse_client_counts(base_settings: Settings) -> None:
    state, fake = LiveState(), FakeFollow()
    app = web.Application()
    add_live_routes(app.router, state, lambda: {"type": "FeatureCollection", "features": []})
    async with TestClient(TestServer(app)) as http, watcher(base_settings, state, fake):
        for path in ("/map", "/map.js", "/api/zones", "/api/aircraft", "/api/alerts"):
            state._last_used = -float("inf")
            resp = await http.get(path)
            assert resp.status == 200, path
            assert state.in_use(IDLE), path
        await until(lambda: fake.running)

        resp = await http.get("/api/events")
        assert resp.status == 200
        assert await resp.content.readuntil(b"\n\n") == b": connected\n\n"
        await until(lambda: len(state.clients) == 1)
        await asyncio.sleep(4 * IDLE)
        assert fake.started == 1 and fake.running  # the open stream keeps it following
        state.on_track(track())
        line = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2.0)
        assert orjson.loads(line[len(b"data: "):])["aircraft"]["icao24"] == "abc123"

        resp.close()  # the viewer leaves: idle counts from now, then it stops
        await until(lambda: not state.clients)
        left = time.monotonic()
        await until(lambda: not fake.running)
        assert time.monotonic() - left > IDLE * 0.5


# --- behaviour documents: patterns and gone dark ----------------------------------------------------------------
def pattern_doc(transition: str, seq: int, t: float, pid: str = "p" * 20, icao: str = "ac671b",
                started: float = 1738704033.0) -> dict[str, Any]:
    """A pattern.v1 document. A DOCUMENT-SHAPE FIXTURE, not detector output (the detector is not wired
    in yet) and not a claim about any flight: what is tested here is LiveState's bookkeeping and the
    label's wording. Identity and times are DAL1812's (ac671b) over Yucatán in
    tests/data/readsb_trace_full_ac671b.json.gz; the dimensions and distance are the spec's example
    label ("racetrack 54 nm x 9 nm, 30 nm from the line") in metres."""
    return {"schema": "pattern.v1", "alert_id": pid, "event_id": f"{pid}:{seq}", "seq": seq, "icao24": icao,
            "callsign": "DAL1812", "transition": transition, "status": "open", "zone": "pattern", "pattern_id": pid,
            "kind": "racetrack", "started_at": started, "event_time": t, "time_on_station_s": t - started,
            "centre": {"lat": 19.4, "lon": -88.7},
            "dimensions": {"radius_m": None, "leg_length_m": 100_000.0, "width_m": 16_700.0, "axis_deg": 160.0,
                           "span_m": 213_000.0},
            "outline": [[-89.2, 20.3], [-88.1, 18.5], [-88.0, 18.6], [-89.1, 20.4], [-89.2, 20.3]],
            "distance_to_boundary_m": 55_560.0, "description": None, "severity": "info", "headline": "DAL1812 ...",
            "classification": {"category": "civil"}}


def test_pattern_lifecycle_started_updated_ended() -> None:
    state = LiveState()
    q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=20)
    state.clients.add(q)
    t0 = 1738704100.0
    state.on_alert(pattern_doc("pattern_started", 0, t0))
    assert list(state.patterns) == ["ac671b"]
    view = state.pattern_view("ac671b")
    assert view["label"] == "racetrack 54 nm x 9 nm, 30 nm from the line"
    assert view["outline"][0] == [-89.2, 20.3] and view["on_station"] is False

    on_station = dict(pattern_doc("pattern_updated", 1, t0 + 300), transition="on_station", alert_id="o" * 20,
                      event_id="o" * 20 + ":0", seq=0, severity="high")
    state.on_alert(pattern_doc("pattern_updated", 1, t0 + 300))
    state.on_alert(on_station)
    state.on_alert(pattern_doc("pattern_updated", 0, t0 - 100))  # a stale event never rolls it back
    assert state.patterns["ac671b"]["time_on_station_s"] == t0 + 300 - 1738704033.0
    assert state.pattern_view("ac671b")["on_station"] is True
    state.on_alert(pattern_doc("pattern_updated", 2, t0 + 600))
    assert state.pattern_view("ac671b")["on_station"] is True  # the mark outlives the on_station alert

    # the end of another (older) pattern of the aircraft leaves the current one alone
    state.on_alert(pattern_doc("pattern_ended", 5, t0 + 650, pid="q" * 20, started=1738703000.0))
    assert "ac671b" in state.patterns
    state.on_alert(pattern_doc("pattern_ended", 3, t0 + 700))
    assert state.patterns == {}
    assert len(state.alerts) == 7  # every document is listed

    events = [orjson.loads(q.get_nowait()[len(b"data: "):]) for _ in range(q.qsize())]
    kinds = [e["type"] for e in events]
    assert kinds.count("alert") == 7
    pat = [e for e in events if e["type"] == "pattern"]
    assert [e["pattern"] is None for e in pat] == [False, False, False, False, True]
    assert pat[-1] == {"type": "pattern", "icao24": "ac671b", "pattern_id": "p" * 20, "pattern": None}


def test_dark_and_activity_and_unknown_documents() -> None:
    state = LiveState()
    dark = {"schema": "dark.v1", "alert_id": "d" * 20, "event_id": "d" * 20 + ":0", "seq": 0, "icao24": "ac671b",
            "callsign": "DAL1812", "transition": "went_dark", "status": "open", "zone": "dark",
            "event_time": 1738705000.0, "last_seen": {"event_time": 1738704700.0, "lat": 20.0, "lon": -89.0},
            "dead_reckoned": {"lat": 20.6, "lon": -89.4, "inside": True, "distance_to_boundary_m": -30000.0},
            "silence_s": 300.0, "severity": "high", "headline": "DAL1812 went dark"}
    state.on_alert(dark)
    assert state.dark_view("ac671b")["dead_reckoned"]["lat"] == 20.6
    state.on_alert({"schema": "activity.v1", "icao24": "", "transition": "activity", "headline": "18 missions"})
    state.on_alert({"schema": "something.v9", "icao24": "ac671b"})
    state.on_alert({"schema": "pattern.v1"})  # malformed: listed, never kept
    assert list(state.dark) == ["ac671b"] and state.patterns == {} and len(state.alerts) == 4
    state.on_alert(dict(dark, transition="reappeared", seq=1, event_id="d" * 20 + ":1", status="closed"))
    assert state.dark == {}
    state.on_alert(pattern_doc("pattern_started", 0, 1738704100.0))
    state.clear()
    assert state.patterns == {} and state.dark == {}


async def test_patterns_and_dark_routes() -> None:
    state = LiveState()
    app = web.Application()
    add_live_routes(app.router, state, lambda: {"type": "FeatureCollection", "features": []})
    state.on_alert(pattern_doc("pattern_started", 0, 1738704100.0))
    async with TestClient(TestServer(app)) as http:
        got = await (await http.get("/api/patterns")).json()
        assert [p["label"] for p in got] == ["racetrack 54 nm x 9 nm, 30 nm from the line"]
        assert await (await http.get("/api/dark")).json() == []
        assert state.in_use(IDLE)


def test_watch_table_shows_pattern_column_and_headlines() -> None:
    """``skyfence watch`` renders over a LiveState: the pattern column and the behaviour headlines."""
    from rich.console import Console

    from streams.cli.watch import build_table

    state = LiveState()
    doc = track("ac671b", 19.4, -88.7, 1738704700.0)
    doc["classification"] = {"category": "civil"}
    state.on_track(doc)
    state.on_track(track("aaad6b", 27.5, -99.5, 1738704700.0))
    state.on_alert(pattern_doc("pattern_started", 0, 1738704100.0))
    state.on_alert(pattern_doc("pattern_updated", 1, 1738704033.0 + 3900))
    state.on_alert({"schema": "activity.v1", "icao24": "", "transition": "activity", "severity": "high",
                    "event_time_iso": "2025-02-04T22:00:00.000Z",
                    "headline": "18 surveillance missions in 10 days against 0.3 per 10 days"})
    state.on_alert({"schema": "unknown.v7", "icao24": "ac671b"})
    console = Console(width=200, record=True, color_system=None)
    console.print(build_table(state, max_distance_km=None, now=0.0))
    out = console.export_text()
    table, _, alerts = out.partition("newest alerts")
    assert "pattern" in next(line for line in table.splitlines() if "callsign" in line)  # the column header
    row = next(line for line in table.splitlines() if "ac671b" in line)
    assert "racetrack 1h05m" in row
    other = next(line for line in table.splitlines() if "aaad6b" in line)
    assert "racetrack" not in other
    assert "18 surveillance missions in 10 days" in alerts and "DAL1812 ..." in alerts

    state.on_alert(pattern_doc("pattern_ended", 2, 1738704033.0 + 4000))
    console = Console(width=200, record=True, color_system=None)
    console.print(build_table(state, max_distance_km=None, now=0.0))
    row = next(line for line in console.export_text().partition("newest alerts")[0].splitlines() if "ac671b" in line)
    assert "racetrack" not in row


# --- what the map's popup, trails and filters read (issue 19) --------------------------------------------------


def test_view_carries_the_popup_fields_and_trail_altitudes() -> None:
    state = LiveState()
    doc = track(t=1.0)
    doc["position"].update(ground_speed_kt=450.0, track_deg=270.0)
    doc["geofence"].update(bearing_to_boundary_deg=12.0, predicted_entry_s=None, inside=True, airspace_country="MEX")
    doc["classification"] = {"category": "civil", "is_military_or_surveillance": False, "confidence": 0.9,
                             "type_code": "B739", "registration": "N123DN", "country": "USA"}
    state.on_track(doc)
    state.on_track({**doc, "position": {**doc["position"], "lat": 20.1, "alt_ft": None}, "last_seen": 2.0})
    view = state.view("abc123")
    assert view["trail"] == [[20.0, -90.0], [20.1, -90.0]]
    assert view["trail_alt_ft"] == [35000.0, None]  # one altitude per trail point, None where unknown
    assert (view["bearing_to_boundary_deg"], view["predicted_entry_s"], view["inside"], view["airspace_country"],
            view["track_deg"], view["last_seen"]) == (12.0, None, True, "MEX", 270.0, 2.0)
    # tracks carry the verdict only: no evidence until an alert names the aircraft
    assert view["classification"]["evidence"] == [] and view["classification"]["type_code"] == "B739"


def test_evidence_comes_from_the_newest_alert_and_the_track_verdict_wins() -> None:
    state = LiveState()
    state.on_track(dict(track(), classification={"category": "civil", "confidence": 0.9}))
    evidence = [{"kind": "address_block", "detail": "abc123 is in the United States block", "suggests": None}]
    state.on_alert({"schema": "alert.v1", "event_id": "a:0", "icao24": "abc123", "transition": "approaching",
                    "classification": {"category": "unknown", "confidence": 0.5, "evidence": evidence,
                                       "operator": "Delta"}})
    state.on_alert({"schema": "activity.v1", "event_id": "b:0", "icao24": "", "classification": None})
    cls = state.view("abc123")["classification"]
    assert cls["evidence"] == evidence and cls["operator"] == "Delta"
    assert (cls["category"], cls["confidence"]) == ("civil", 0.9)  # the track is newer than the alert's verdict
    assert list(state.classifications) == ["abc123"]  # the activity alert names no aircraft
    state.clear()
    assert state.classifications == {}


def test_dark_view_has_the_category_the_filters_use() -> None:
    state = LiveState()
    state.on_alert({"schema": "dark.v1", "alert_id": "d" * 20, "event_id": "d" * 20 + ":0", "icao24": "ae7100",
                    "transition": "went_dark", "classification": {"category": "surveillance"}})
    assert state.dark_view("ae7100")["category"] == "surveillance"


async def test_vendored_map_library_is_served_and_nothing_else() -> None:
    state = LiveState()
    app = web.Application()
    add_live_routes(app.router, state, lambda: {"type": "FeatureCollection", "features": []})
    async with TestClient(TestServer(app)) as http:
        page = await (await http.get("/map")).text()
        assert '<script src="/vendor/ol.js">' in page and '<link rel="stylesheet" href="/vendor/ol.css">' in page
        js = await http.get("/vendor/ol.js")
        assert js.status == 200 and js.content_type == "application/javascript"
        assert len(await js.read()) > 500_000  # the whole prebuilt library, not a stub
        css = await http.get("/vendor/ol.css")
        assert css.status == 200 and css.content_type == "text/css" and b".ol-scale-line" in await css.read()
        licence = await (await http.get("/vendor/LICENSE.md")).text()
        assert "BSD 2-Clause License" in licence
        for name in ("README.md", "..%2Fmap.js", "ol.js.map", "missing.js"):
            assert (await http.get(f"/vendor/{name}")).status == 404, name
        assert (await http.post("/vendor/ol.js", data=b"x")).status == 405  # read-only, like every map route
