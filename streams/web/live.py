"""The live view behind the web map: latest aircraft, trails, alerts and behaviour, pushed by SSE.

This module owns a read-only follower of the ``tracks`` and ``alerts`` topics (all
partitions, no consumer group, so it never takes partitions from the pipeline) and
the routes that serve its state: ``/map`` (the map page; also ``/`` outside a Faust worker),
``/vendor/...`` (the map library, OpenLayers, vendored in ``static/vendor``),
``/api/zones``, ``/api/neighbours``, ``/api/aircraft``, ``/api/alerts``, ``/api/patterns``,
``/api/dark`` and ``/api/events`` (server-sent events). No route accepts input that changes anything.

The alerts topic carries four schemas (``alert.v1``, ``pattern.v1``, ``dark.v1``, ``activity.v1``);
every one goes to the alert list. ``pattern.v1`` documents also keep the aircraft's active
on-station pattern (started/updated/on_station set it, pattern_ended removes it) and ``dark.v1``
its open silence (went_dark sets it, reappeared removes it); each change is pushed as a
``pattern`` or ``dark`` SSE event. Documents of an unknown schema only reach the alert list.

Inside a worker the follower runs only while the map is in use (``follow_while_watched``):
reading both topics whole costs the CPU-bound worker several percent, for nobody when no one
looks. A request to any of the routes above, or a connected SSE client, starts it; after
``IDLE_S`` without either it stops and forgets the picture, and the next request starts it
again with the usual backfill. ``follow_topics`` itself always follows (``skyfence watch``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from streams.report import pattern_label
from streams.settings import Settings
from streams.topics import ALERTS, TRACKS

log = logging.getLogger(__name__)

# 120 points per trail: about 10 minutes of a track at one update per 5 s.
TRAIL_POINTS = 120
# 5,000 aircraft on the map: more than a busy continental picture, bounded memory.
MAX_AIRCRAFT = 5000
# 200 alerts in the side list: the newest screenfuls an operator scrolls through.
MAX_ALERTS = 200
# On start, look back this many records per partition so the map is not empty.
BACKFILL_PER_PARTITION = 2000
# Each SSE client gets a bounded queue; a client that stops reading is dropped, never the worker.
CLIENT_QUEUE = 1000
# 300 s idle: a restart costs a consumer start and a full backfill, so a reload or a glance away should not pay it.
IDLE_S = 300.0
# 5 s to stop: follow_topics sees its stop event within one poll (kafka_io.POLL_MS, 500 ms); the rest is for
# closing its consumer.
STOP_GRACE_S = 5.0
# 1 s before restarting a follower that ended on its own: the same pause as follow_topics' reconnects.
RETRY_S = 1.0


class LiveState:
    def __init__(self) -> None:
        self.aircraft: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # icao24 -> (lat, lon, event time, altitude ft or None) per trail point; the map colours trails by altitude
        self.trails: dict[str, deque[tuple[float, float, float, float | None]]] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        # icao24 -> the latest pattern.v1 document of its active (not ended) pattern
        self.patterns: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # icao24 -> the went_dark dark.v1 document of its open silence
        self.dark: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # icao24 -> the classification of the newest alert about it: track.v1 carries the verdict only,
        # alert.v1, pattern.v1 and dark.v1 also the evidence behind it (what the map's popup shows)
        self.classifications: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.clients: set[asyncio.Queue[bytes]] = set()
        self._last_used = -float("inf")  # monotonic; never used yet
        self._wanted = asyncio.Event()  # wakes an idle follow_while_watched
        self._following = False

    @property
    def following(self) -> bool:
        """True while ``follow_while_watched`` has a follower running for this state."""
        return self._following

    def touch(self) -> None:
        """Someone is using the map: keep (or start) following for at least ``IDLE_S`` more."""
        self._last_used = time.monotonic()
        self._wanted.set()

    def in_use(self, idle_s: float = IDLE_S) -> bool:
        # a connected SSE client is someone watching, however long since their last request
        return bool(self.clients) or time.monotonic() - self._last_used < idle_s

    def clear(self) -> None:
        """Forget the picture; a new follower's backfill would otherwise repeat alerts and tangle trails."""
        self.aircraft.clear()
        self.trails.clear()
        self.alerts.clear()
        self.patterns.clear()
        self.dark.clear()
        self.classifications.clear()

    def on_track(self, doc: dict[str, Any]) -> None:
        icao = str(doc.get("icao24", ""))
        lat, lon = _latlon(doc)
        if not icao or lat is None or lon is None:
            return
        self.aircraft[icao] = doc
        self.aircraft.move_to_end(icao)
        while len(self.aircraft) > MAX_AIRCRAFT:
            old, _ = self.aircraft.popitem(last=False)
            self.trails.pop(old, None)
        trail = self.trails.setdefault(icao, deque(maxlen=TRAIL_POINTS))
        t = float(doc.get("last_seen") or doc.get("event_time") or 0.0)
        if not trail or trail[-1][:2] != (lat, lon):
            trail.append((lat, lon, t, _alt_ft(doc)))
        if self.clients:  # view() and the JSON are most of the cost, and nobody would read them
            self._push({"type": "track", "aircraft": self.view(icao)})

    def on_alert(self, doc: dict[str, Any]) -> None:
        """Any document of the alerts topic: listed; pattern.v1 and dark.v1 also update the behaviour state."""
        self.alerts.appendleft(doc)
        if self.clients:
            self._push({"type": "alert", "alert": doc})
        self._on_classification(doc)
        schema = doc.get("schema")
        if schema == "pattern.v1":
            self._on_pattern(doc)
        elif schema == "dark.v1":
            self._on_dark(doc)

    def _on_classification(self, doc: dict[str, Any]) -> None:
        icao, cls = str(doc.get("icao24") or ""), doc.get("classification")
        if not icao or not isinstance(cls, dict):
            return  # activity.v1 is about a category, not one aircraft
        self.classifications[icao] = cls
        self.classifications.move_to_end(icao)
        while len(self.classifications) > MAX_AIRCRAFT:
            self.classifications.popitem(last=False)

    def _on_pattern(self, doc: dict[str, Any]) -> None:
        icao, pid = str(doc.get("icao24") or ""), doc.get("pattern_id")
        if not icao or not isinstance(pid, str):
            return
        cur: dict[str, Any] = self.patterns.get(icao) or {}
        same = cur.get("pattern_id") == pid
        if doc.get("transition") == "pattern_ended":
            if same:  # an end of an older pattern must not remove the one flying now
                del self.patterns[icao]
                self._push({"type": "pattern", "icao24": icao, "pattern_id": pid, "pattern": None})
            return
        if same and _num(doc.get("event_time"), 0.0) < _num(cur.get("event_time"), 0.0):
            return  # older than what is shown (on_station repeats its pattern's event)
        if cur and not same and _num(doc.get("started_at"), 0.0) < _num(cur.get("started_at"), 0.0):
            return  # a pattern that started before the current one has ended already
        # the on_station alert is raised once per pattern: later updates keep its mark
        on_station = doc.get("transition") == "on_station" or bool(same and cur.get("on_station"))
        self.patterns[icao] = {**doc, "on_station": on_station}
        self.patterns.move_to_end(icao)
        while len(self.patterns) > MAX_AIRCRAFT:
            self.patterns.popitem(last=False)
        if self.clients:
            self._push({"type": "pattern", "icao24": icao, "pattern_id": pid, "pattern": self.pattern_view(icao)})

    def _on_dark(self, doc: dict[str, Any]) -> None:
        icao = str(doc.get("icao24") or "")
        if not icao:
            return
        if doc.get("transition") == "went_dark":
            self.dark[icao] = doc
            self.dark.move_to_end(icao)
            while len(self.dark) > MAX_AIRCRAFT:
                self.dark.popitem(last=False)
            if self.clients:
                self._push({"type": "dark", "icao24": icao, "dark": self.dark_view(icao)})
        elif doc.get("transition") == "reappeared":
            cur = self.dark.get(icao)
            if cur is not None and cur.get("alert_id") == doc.get("alert_id"):
                del self.dark[icao]
                self._push({"type": "dark", "icao24": icao, "dark": None})

    def pattern_view(self, icao: str) -> dict[str, Any]:
        """What the map draws of an aircraft's active pattern (``/api/patterns`` and the ``pattern`` event)."""
        doc = self.patterns[icao]
        return {
            "pattern_id": doc.get("pattern_id"),
            "icao24": icao,
            "callsign": doc.get("callsign"),
            "kind": doc.get("kind"),
            "transition": doc.get("transition"),
            "started_at": doc.get("started_at"),
            "event_time": doc.get("event_time"),
            "time_on_station_s": doc.get("time_on_station_s"),
            "centre": doc.get("centre"),
            "dimensions": doc.get("dimensions"),
            "outline": doc.get("outline") or [],
            "distance_to_boundary_m": doc.get("distance_to_boundary_m"),
            "description": doc.get("description"),
            "category": (doc.get("classification") or {}).get("category"),
            "severity": doc.get("severity"),
            "on_station": bool(doc.get("on_station")),
            "label": pattern_label(doc),
        }

    def dark_view(self, icao: str) -> dict[str, Any]:
        """What the map draws of an aircraft that went dark (``/api/dark`` and the ``dark`` event)."""
        doc = self.dark[icao]
        return {
            "alert_id": doc.get("alert_id"),
            "icao24": icao,
            "callsign": doc.get("callsign"),
            "event_time": doc.get("event_time"),
            "silence_s": doc.get("silence_s"),
            "last_seen": doc.get("last_seen"),
            "dead_reckoned": doc.get("dead_reckoned"),
            "severity": doc.get("severity"),
            "headline": doc.get("headline"),
            "category": (doc.get("classification") or {}).get("category"),  # the map's filters
        }

    def view(self, icao: str) -> dict[str, Any]:
        doc = self.aircraft[icao]
        lat, lon = _latlon(doc)
        # track.v1 nests these under position/geofence; flat keys are accepted for other producers
        pos: dict[str, Any] = doc["position"] if isinstance(doc.get("position"), dict) else {}
        geo: dict[str, Any] = doc["geofence"] if isinstance(doc.get("geofence"), dict) else {}
        return {
            "icao24": icao,
            "callsign": doc.get("callsign"),
            "lat": lat,
            "lon": lon,
            "alt_ft": pos.get("alt_ft", doc.get("alt_ft", doc.get("alt_baro_ft"))),
            "ground_speed_kt": pos.get("ground_speed_kt"),
            "zone": geo.get("zone", doc.get("zone")),
            "distance_m": geo.get("distance_to_boundary_m", doc.get("distance_m")),
            "category": (doc.get("classification") or {}).get("category"),
            "trail": [[p[0], p[1]] for p in self.trails.get(icao, ())],
            # what the map's popup shows besides: the line's distance (above), bearing and predicted entry
            "bearing_to_boundary_deg": geo.get("bearing_to_boundary_deg"),
            "predicted_entry_s": geo.get("predicted_entry_s"),
            "inside": geo.get("inside"),
            "airspace_country": geo.get("airspace_country"),
            "track_deg": pos.get("track_deg"),
            "last_seen": doc.get("last_seen"),
            "trail_alt_ft": [p[3] for p in self.trails.get(icao, ())],
            "classification": self.classification_view(icao),
        }

    def classification_view(self, icao: str) -> dict[str, Any]:
        """The track's verdict, with the evidence (and type, operator) of the newest alert about the aircraft.

        ``evidence`` is an empty list while no alert has named it (under the ``military`` policy, most
        civil traffic); the track's category wins over an older alert's.
        """
        track_cls = (self.aircraft.get(icao) or {}).get("classification")
        verdict: dict[str, Any] = track_cls if isinstance(track_cls, dict) else {}
        return {"evidence": [], **self.classifications.get(icao, {}), **verdict}

    def _push(self, event: dict[str, Any]) -> None:
        if not self.clients:
            return
        data = b"data: " + orjson.dumps(event) + b"\n\n"
        for q in list(self.clients):
            try:
                q.put_nowait(data)
            except asyncio.QueueFull:
                self.clients.discard(q)


def _num(v: Any, default: float) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def _alt_ft(doc: dict[str, Any]) -> float | None:
    """The altitude of a track document, as ``view`` reads it (track.v1: ``position.alt_ft``)."""
    pos = doc.get("position")
    alt = pos.get("alt_ft") if isinstance(pos, dict) else None
    if alt is None:
        alt = doc.get("alt_ft", doc.get("alt_baro_ft"))
    return float(alt) if isinstance(alt, int | float) and not isinstance(alt, bool) else None


def _latlon(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    for src in (doc, doc.get("last") or {}, doc.get("position") or {}):
        if not isinstance(src, dict):
            continue
        lat, lon = src.get("lat"), src.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            return float(lat), float(lon)
    return None, None


async def follow_topics(settings: Settings, state: LiveState, stop: asyncio.Event) -> None:
    """Read tracks and alerts from all partitions, from ``BACKFILL_PER_PARTITION`` records before
    the end, until ``stop`` is set; survive broker restarts (a new reader after a pause)."""
    from streams.kafka_io import From, TopicReader, json_documents

    names = {TRACKS.name(settings): state.on_track, ALERTS.name(settings): state.on_alert}
    while not stop.is_set():
        try:
            async with TopicReader(settings, list(names), start=From.end(back=BACKFILL_PER_PARTITION), stop=stop,
                                   missing_ok=True) as reader:
                if not reader.partitions:  # neither topic exists yet: look again in a second
                    await asyncio.sleep(1.0)
                    continue
                async for batch in reader:
                    for tp, records in batch.items():
                        handler = names[tp.topic]
                        for doc in json_documents(records):
                            handler(doc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("live map follower: %s; reconnecting", exc)
            await asyncio.sleep(1.0)


# What follow_while_watched runs per session: follow_topics, or a stand-in in tests.
Follow = Callable[[Settings, LiveState, asyncio.Event], Awaitable[None]]


async def follow_while_watched(settings: Settings, state: LiveState, stop: asyncio.Event, idle_s: float = IDLE_S,
                               follow: Follow = follow_topics) -> None:
    """Run ``follow`` (``follow_topics``) for ``state`` only while the map is in use; return once ``stop`` is set.

    In use: ``state.touch()`` less than ``idle_s`` ago, or an SSE client connected. Each follow
    session gets its own stop event; when the map goes idle it is set, the session's consumer
    closes and the picture is cleared, and the next touch starts a new session (with backfill).
    """
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            if not state.in_use(idle_s):
                state._wanted.clear()  # an old touch must not restart a follower that just went idle
                wanted = asyncio.ensure_future(state._wanted.wait())
                try:
                    await asyncio.wait({stopping, wanted}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    wanted.cancel()
                continue
            if await _follow_session(settings, state, stop, stopping, idle_s, follow) and not stop.is_set():
                await asyncio.wait({stopping}, timeout=RETRY_S)
    finally:
        stopping.cancel()


async def _follow_session(settings: Settings, state: LiveState, stop: asyncio.Event, stopping: asyncio.Future[Any],
                          idle_s: float, follow: Follow) -> bool:
    """One follow session, until idle or ``stop``; True if the follower ended on its own."""
    session_stop = asyncio.Event()
    task = asyncio.ensure_future(follow(settings, state, session_stop))
    task.add_done_callback(_log_failure)
    state._following = True
    log.info("live map in use: following tracks and alerts")
    try:
        while not stop.is_set() and not task.done():
            # with a client connected nothing is due before idle_s; without, the idle clock runs from the last touch
            wait = idle_s if state.clients else state._last_used + idle_s - time.monotonic()
            if wait <= 0:
                log.info("live map idle for %.0f s: following stopped", idle_s)
                break
            await asyncio.wait({stopping, task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        return task.done()
    finally:
        session_stop.set()
        try:
            await asyncio.wait({task}, timeout=STOP_GRACE_S)
        finally:
            if not task.done():
                task.cancel()  # too slow to stop, or we are being cancelled: never leave a consumer running
            state._following = False
            state.clear()


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("live map follower failed: %r", exc)


def _static(name: str) -> bytes:
    return resources.files("streams.web").joinpath("static", name).read_bytes()


# The vendored map library's files the page loads or links, by URL name; nothing else under static/vendor is served.
VENDOR_FILES = {
    "ol.js": "application/javascript",
    "ol.css": "text/css",
    "LICENSE.md": "text/plain",
    "THIRD-PARTY-LICENSES.txt": "text/plain",
}


def add_live_routes(router: web.UrlDispatcher, state: LiveState, zones: Callable[[], dict[str, Any]]) -> None:
    """``zones`` builds the map's GeoJSON; it runs once, on the first request, off the event loop."""
    zones_body: list[bytes] = []
    zones_lock = asyncio.Lock()

    async def index(request: web.Request) -> web.Response:
        state.touch()
        return web.Response(body=_static("index.html"), content_type="text/html", charset="utf-8")

    async def script(request: web.Request) -> web.Response:
        state.touch()
        return web.Response(body=_static("map.js"), content_type="application/javascript", charset="utf-8")

    async def vendor(request: web.Request) -> web.Response:
        state.touch()
        name = request.match_info["name"]
        if name not in VENDOR_FILES:
            raise web.HTTPNotFound()
        body = resources.files("streams.web").joinpath("static", "vendor", name).read_bytes()
        return web.Response(body=body, content_type=VENDOR_FILES[name], charset="utf-8")

    async def api_zones(request: web.Request) -> web.Response:
        state.touch()
        async with zones_lock:
            if not zones_body:
                doc = await asyncio.get_running_loop().run_in_executor(None, zones)
                zones_body.append(orjson.dumps(doc))
        return web.Response(body=zones_body[0], content_type="application/geo+json")

    async def api_neighbours(request: web.Request) -> web.Response:
        state.touch()
        from streams.geo.zonefiles import NEIGHBOURS_FILE, data_path

        return web.Response(body=data_path(NEIGHBOURS_FILE).read_bytes(), content_type="application/geo+json")

    async def api_aircraft(request: web.Request) -> web.Response:
        state.touch()
        return web.Response(body=orjson.dumps([state.view(k) for k in state.aircraft]),
                            content_type="application/json")

    async def api_alerts(request: web.Request) -> web.Response:
        state.touch()
        return web.Response(body=orjson.dumps(list(state.alerts)), content_type="application/json")

    async def api_patterns(request: web.Request) -> web.Response:
        state.touch()
        return web.Response(body=orjson.dumps([state.pattern_view(k) for k in state.patterns]),
                            content_type="application/json")

    async def api_dark(request: web.Request) -> web.Response:
        state.touch()
        return web.Response(body=orjson.dumps([state.dark_view(k) for k in state.dark]),
                            content_type="application/json")

    async def events(request: web.Request) -> web.StreamResponse:
        state.touch()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        state.clients.add(q)
        try:
            await resp.write(b": connected\n\n")
            while q in state.clients:
                try:
                    data = await asyncio.wait_for(q.get(), timeout=15.0)
                except TimeoutError:
                    data = b": keep-alive\n\n"
                await resp.write(data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            state.clients.discard(q)
            state.touch()  # the idle clock starts when the last viewer leaves, so a reload finds the map still warm
        return resp

    # Faust's production index already answers "/" with {"status": "OK"} and aiohttp serves the
    # first route registered, so inside a worker the map lives at /map (and "/" elsewhere).
    router.add_get("/map", index)
    router.add_get("/", index)
    router.add_get("/map.js", script)
    router.add_get("/vendor/{name}", vendor)
    router.add_get("/api/zones", api_zones)
    router.add_get("/api/neighbours", api_neighbours)
    router.add_get("/api/aircraft", api_aircraft)
    router.add_get("/api/alerts", api_alerts)
    router.add_get("/api/patterns", api_patterns)
    router.add_get("/api/dark", api_dark)
    router.add_get("/api/events", events)
