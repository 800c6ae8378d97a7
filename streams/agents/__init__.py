"""Faust agents: thin adapters between topics and the pure logic of ``streams.core``.

This package owns wiring agents, tables and web routes onto an app. Each agent body
only batches its stream, calls a pure function from its own module (tested without a
broker), and sends what comes back; all decisions live in ``streams.core`` and the
sinks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import faust
import orjson
from faust.types import TP

from streams.app import Topics
from streams.messages import DeadLetter
from streams.metrics import Metrics
from streams.settings import Settings

if TYPE_CHECKING:  # typing only: importing the engine at run time compiles numba
    from streams.core.engine import Engine


async def batches(stream: Any, size: int, within: float) -> AsyncIterator[list[bytes]]:
    async for values in stream.take(size, within=within):
        yield values


async def events(stream: Any, size: int, within: float) -> AsyncIterator[list[faust.types.EventT]]:
    """Batches of events (value plus Kafka metadata such as the record timestamp)."""
    async for evs in stream.take_events(size, within=within):
        yield evs


# 50 batch records (up to 100k positions) or 10 ms: under load batches fill by count and the
# kernel runs over large arrays (the offline adapter does the same 230k positions/s with 50 as
# with 200); a quiet stream waits at most 10 ms (50 ms cost ~100 ms of p50 latency across the
# track and sink stages). 200 let one batch of 400k positions build ~100k track updates at once,
# ~1 GB the process kept.
TRACK_BATCH = 50
TRACK_WITHIN_S = 0.01
# RocksDB sizing for the state table, one database per partition. Faust's defaults (64 MiB
# write buffers, three of them, a 2 GiB block cache, per partition) are for tables read on
# every event; ours is written once per changed aircraft a flush and read only when an
# aircraft is first seen. Each flush rewrites the same keys, so large memtables only pile up
# old versions in memory: with 8 partitions the defaults allow 1.5 GB of memtables, these 32 MB.
# 2 MiB buffers (two per partition: one filling while one is written out; 100,000 states
# rewritten three times stayed at ~15 MB) and a 2 MiB cache, as reads are rare.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 2 * 1024 * 1024,
    "block_cache_compressed_size": 2 * 1024 * 1024,
}


@functools.cache
def _libc_function(name: str) -> Any:
    """A function of the C library by name, or None (not glibc, or no such function)."""
    import ctypes
    import ctypes.util

    lib = ctypes.util.find_library("c")
    libc = ctypes.CDLL(lib) if lib else None
    return getattr(libc, name, None)


# mallopt's parameter numbers (glibc's malloc.h: M_TRIM_THRESHOLD, M_MMAP_THRESHOLD).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks of 1 MiB and more are mapped on their own and unmapped when freed: a batch's kernel
# arrays and column buffers (a release of 8,192 positions makes 3 MB event rows) go back to
# the OS at once instead of staying in the heap as free pages until a trim. Smaller blocks
# (records, documents, most arrays of a live batch) stay in the heap, where they are cheap.
MMAP_THRESHOLD_BYTES = 1 << 20
# Setting the mmap threshold also freezes the trim threshold, at glibc's 128 KiB: the heap's
# top would then be given back and taken again with nearly every batch (a system call and
# page faults each time). 8 MiB of free top is kept; the trim after each state flush still
# hands everything free back.
TRIM_THRESHOLD_BYTES = 8 << 20


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds (True if both were set).

    glibc starts at 128 KiB and raises the threshold to the size of each mapped block freed
    (up to 32 MiB), so after the first few large frees a burst's arrays come from the heap,
    whose freed pages it keeps: the 100,000-aircraft memory phase peaked ~25 MB higher and
    ended ~25 MB higher with the moving threshold (one run each, 10,000 and 50,000/s).
    Setting it explicitly also stops the raising. Elsewhere than glibc nothing happens."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)


def trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc only; elsewhere nothing happens).

    Freed heap pages stay with the process (see :func:`tune_malloc` for the large blocks): a
    worker's resident memory then stays at its highest burst rather than at what it holds.
    Loading the zones, gazetteer and aircraft database leaves ~25 MB of such pages before the
    worker starts; every state flush leaves a batch's worth.
    """
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


async def release_free_memory() -> None:
    """:func:`trim_heap` after a flush, a quiet moment; in a thread (ctypes releases the GIL)
    since a large heap takes ~60 ms to walk."""
    await asyncio.to_thread(trim_heap)


_background: set[asyncio.Task[None]] = set()


def attach_agents(app: faust.App, topics: Topics, settings: Settings, metrics: Metrics, engine: Engine) -> None:
    """Register the track agent, the Redis sink agent, the state table and the web routes.

    Raises ``ConnectionRefusedByPeer`` before anything starts if Redis refuses the
    configured ACL user or TLS: the sink would otherwise retry a wrong password forever.
    """
    from streams.agents.stages import attach_stage_agents
    from streams.security import check_redis

    check_redis(settings)
    _attach_web(app, settings, metrics, engine)
    _attach_lag_probe(app, settings, metrics)
    dead_letter = DeadLetterSender(topics, metrics)
    _attach_track_agent(app, topics, settings, metrics, engine, dead_letter)
    attach_stage_agents(app, topics, settings, engine, dead_letter_sender=dead_letter.send, metrics=metrics)
    _attach_redis_sink(app, topics, settings, metrics, dead_letter)
    from streams.agents.notify import attach_notifications

    attach_notifications(app, settings, dead_letter)  # webhooks: own consumer groups, not agents on alerts


class DeadLetterSender:
    """Counts, logs and publishes a dead letter (the one way every agent refuses a record)."""

    def __init__(self, topics: Topics, metrics: Metrics) -> None:
        self.topics = topics
        self.metrics = metrics

    async def send(self, d: DeadLetter, counted: bool = False) -> None:
        from streams.kafka_io import log_dead_letter

        if not counted:
            self.metrics.dead_letters.labels(d.input_format, d.reason).inc()
        log_dead_letter(d)
        await self.topics.deadletter.send(key=d.input_format.encode(), value=orjson.dumps(d.to_dict()))


def _attach_web(app: faust.App, settings: Settings, metrics: Metrics, engine: Engine) -> None:
    """Health and metrics routes, and the live map (its follower runs only while it is watched)."""
    from streams.web.health import add_health_routes
    from streams.web.live import LiveState, add_live_routes, follow_while_watched

    live = LiveState()

    def on_webserver_init(web: Any) -> None:
        add_health_routes(web.web_app.router, app, metrics)
        from streams.geo import Geofence
        from streams.geo.describe import zones_geojson

        fence = engine.geofence
        assert isinstance(fence, Geofence), "the live map draws a real Geofence's zones"
        add_live_routes(web.web_app.router, live, lambda: zones_geojson(fence))

    app.on_webserver_init = on_webserver_init  # type: ignore[method-assign]

    @app.task
    async def live_map() -> None:
        stop = asyncio.Event()
        await follow_while_watched(settings, live, stop)


def _attach_lag_probe(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    from streams.kafka_io import GroupLagProbe

    lag_probe = GroupLagProbe(settings, settings.app_id)

    # 5 s: lag is for dashboards and alerting on a stuck worker, not for flow control.
    @app.timer(5.0)
    async def report_lag() -> None:
        try:
            for (topic, partition), lag in (await lag_probe.lag()).items():
                metrics.consumer_lag.labels(topic, str(partition)).set(lag)
        except Exception as exc:  # the broker may be restarting; the next tick tries again
            logging.getLogger(__name__).warning("consumer lag probe: %s", exc)
            await lag_probe.stop()


def _kafka_producer(app: faust.App) -> Any:
    """The aiokafka producer under Faust's (which has no public accessor): record batches are
    aiokafka's API, and go out on the same connection, in order, with the same acks."""
    return cast(Any, app.producer)._ensure_producer()


def _state_flusher(app: faust.App, settings: Settings, metrics: Metrics, engine: Engine) -> tuple[Any, Any]:
    """The changelog-backed aircraft-state table, the track agent's adapter over it, and the
    flusher that writes its dirty aircraft (started here, on its own loop)."""
    from streams.agents.flush import StateFlusher, rocksdb_write_many
    from streams.agents.track import TrackAdapter
    from streams.kafka_io import BatchDelivery, send_batches
    from streams.topics import AIRCRAFT_STATE

    # Per-aircraft engine state, changelog-backed. use_partitioner: the changelog partition
    # is murmur2(icao24) like the positions topic, whatever record of a batch is "current".
    state_table = app.Table(
        AIRCRAFT_STATE.table,
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
        options=dict(ROCKSDB_OPTIONS) if settings.store.startswith("rocksdb://") else None,
    )
    # The adapter reads and writes the table's store; the flusher sends the changelog records
    # itself, in bulk (see streams/agents/flush.py for why not through Table.__setitem__).
    state_store: Any = state_table.data  # a Faust Store: a mapping plus set_persisted_offset
    adapter = TrackAdapter(engine, state_store, settings.partitions, settings.max_message_bytes,
                           write_many=rocksdb_write_many(state_store))
    changelog_topic = state_table.changelog_topic.get_topic_name()

    def on_acked(ev: Any) -> None:  # what Stream.ack reports when it releases a record's last reference
        app.sensors.on_message_out(ev.message.tp, ev.message.offset, ev.message)

    async def send_changelog(writes: list[tuple[int, bytes, bytes | None]]) -> list[BatchDelivery]:
        return await send_batches(_kafka_producer(app), changelog_topic, writes)

    def persist_offset(partition: int, offset: int) -> None:
        state_store.set_persisted_offset(TP(changelog_topic, partition), offset)

    flusher = StateFlusher(adapter.stream, app.producer.flush, on_acked, send_changelog, persist_offset)

    # Flushes run here, never in the agent's body: held records must not wait for the next
    # batch (a rebalance and a shutdown both wait until every record is acknowledged, and no
    # batch arrives while they do), and the agent keeps processing between a flush's chunks.
    # The loop is a plain task, not a Faust timer, because Faust stops its timers before that
    # wait. 0.1 s: how long a rebalance or a shutdown may wait for a tick.
    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(0.1)
            try:
                if flusher.due(now=app.rebalancing or app.should_stop):
                    metrics.state_writes.inc(await flusher.flush())
                    await release_free_memory()
            except Exception as exc:  # a failed flush keeps its records held; the next tick retries
                logging.getLogger(__name__).error("state flush failed: %r", exc)

    @app.task
    async def start_flush_loop() -> None:
        loop_task = asyncio.get_running_loop().create_task(flush_loop())
        _background.add(loop_task)  # a strong reference: the event loop keeps only weak ones

    return adapter, flusher


class StageRecordSender:
    """Coverage and mission records, then the watermarks that cover them, straight to the
    producer in that order (one path, so Kafka keeps the order within each partition)."""

    def __init__(self, app: faust.App, topics: Topics, settings: Settings) -> None:
        from streams.agents.watermarks import StageWatermarks

        self.app = app
        self.partitions = settings.partitions
        self.positions_topic = topics.positions.get_topic_name()
        self.stage_topics = ((topics.coverage.get_topic_name(), "coverage"),
                             (topics.missions.get_topic_name(), "missions"))
        self.marks = StageWatermarks()

    async def send(self, out: Any | None) -> list[Any]:
        """A batch's stage records (``out``, a TrackOutput), noting its watermarks as owed; or,
        ``out`` None (the timer), the owed watermarks. Returns the delivery futures."""
        from streams.core.stages import encode_watermark
        from streams.kafka_io import send_batches
        from streams.topics import partition_for

        n = self.partitions
        if out is not None:
            self.marks.note(out.watermarks)
        marks = self.marks.take() if out is None else {}
        futures: list[Any] = []
        for topic_name, kind in self.stage_topics:
            recs = [] if out is None else (out.coverage if kind == "coverage" else out.missions)
            if not recs and not marks:
                continue
            writes = [(partition_for(k.decode(), n), k, v) for k, v in recs]
            if marks:
                mark = encode_watermark(marks)
                writes += [(q, b"~watermark", mark) for q in range(n)]
            futures.extend(d.future for d in await send_batches(_kafka_producer(self.app), topic_name, writes))
        return futures

    def owed(self) -> bool:
        """On a timer tick: whether watermarks are owed. An assigned partition that has never held
        a record is idle: it must not hold the stages back (they wait for every partition), and it
        says so until it has data. Looked up here, where the watermarks go out, not per batch."""
        consumer = self.app.consumer

        def highwater(p: int) -> int | None:
            try:
                end = consumer.highwater(TP(self.positions_topic, p))
            except Exception:  # not fetched yet: unknown, so not idle
                return None
            return -1 if end is None else int(end)  # no end known: not seen empty

        assigned = [tp.partition for tp in consumer.assignment() if tp.topic == self.positions_topic]
        return self.marks.prepare(assigned, highwater)


def _attach_track_agent(app: faust.App, topics: Topics, settings: Settings, metrics: Metrics, engine: Engine,
                        dead_letter: DeadLetterSender) -> None:
    """The track agent: position batches in; alerts, track updates, stage records and dead letters out."""
    from streams.core.engine import RELEASE_CHUNK
    from streams.core.stream import DEAD_LETTER_REJECTIONS
    from streams.kafka_io import send_batches
    from streams.topics import partition_for

    adapter, flusher = _state_flusher(app, settings, metrics, engine)
    stages = StageRecordSender(app, topics, settings)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
        parts = {tp.partition for tp in (revoked or ()) if tp.topic == topics.positions.get_topic_name()}
        if parts:
            async with flusher.lock:
                adapter.stream.forget_partitions(parts)
                flusher.forget(parts)
                stages.marks.forget(parts)  # the new owner speaks for them now

    # 0.25 s: how far behind the track stage the keyed stages' watermark lags (their decisions
    # are about minutes of silence and days of missions).
    @app.timer(0.25)
    async def send_watermarks() -> None:
        if stages.owed():
            async with flusher.lock:
                await asyncio.gather(*await stages.send(None))

    tracks_topic = topics.tracks.get_topic_name()

    @app.agent(topics.positions, name="track")
    async def track(stream: Any) -> None:
        async for evs in events(stream, TRACK_BATCH, TRACK_WITHIN_S):
            async with flusher.lock:
                t0 = time.perf_counter()
                records = [(ev.message.partition, ev.value) for ev in evs]
                flusher.hold(evs)  # (which lets go of the events' values: records has them)
                stamp = max(ev.message.timestamp for ev in evs)
                pending = []
                staged = []
                kernel_s, t_in = 0.0, time.perf_counter()
                # Step by step: a release stream time allows after a jump is sent in parts of
                # RELEASE_CHUNK positions, so the records of only a part or two are alive at a time.
                steps = adapter.handle_steps(records, time.time(), RELEASE_CHUNK)
                del records  # the steps let go of them once decoded
                positions = bad_items = gated = 0
                rejected: dict[str, int] = {}
                dead: list[DeadLetter] = []
                for out in steps:
                    kernel_s += time.perf_counter() - t_in
                    positions += out.positions
                    bad_items += sum(1 for d in out.dead_letters if d.source == "positions-topic")
                    gated += sum(n for r, n in out.rejected.items() if r in DEAD_LETTER_REJECTIONS)
                    for reason, n in out.rejected.items():
                        rejected[reason] = rejected.get(reason, 0) + n
                    dead += out.dead_letters
                    for key, value, doc in out.alerts:
                        metrics.alerts.labels(str(doc.get("transition")), str(doc.get("severity"))).inc()
                        pending.append(await topics.alerts.send(key=key, value=value, timestamp=stamp))
                    if out.tracks:
                        # Straight to the producer in record batches: track updates are the worker's
                        # biggest output (one per aircraft per 5 s), and per-record sends cost ~50x more.
                        await send_batches(_kafka_producer(app), tracks_topic,
                                           ((partition_for(k.decode(), settings.partitions), k, v)
                                            for k, v in out.tracks))
                    staged += await stages.send(out)
                    del out
                    t_in = time.perf_counter()
                metrics.kernel_seconds.observe(kernel_s)
                metrics.positions_in.labels("position-batch", "worker").inc(positions + bad_items)
                metrics.positions_processed.inc(positions - gated)
                for reason, n in rejected.items():
                    metrics.positions_rejected.labels(reason).inc(n)
                # Counted here, with positions_in, before the first await: a scrape between the two
                # must still find in == processed + dead letters (a clean-clone CI run caught one).
                for d in dead:
                    metrics.dead_letters.labels(d.input_format, d.reason).inc()
                for d in dead:
                    await dead_letter.send(d, counted=True)
                if pending:
                    await asyncio.gather(*pending)  # alerts acknowledged before any flush can write their state
                if staged:
                    await asyncio.gather(*staged)  # so are stage records (the state marks them sent)
                metrics.tracked_aircraft.set(adapter.stream.tracked)
                flusher.note_batch(time.perf_counter() - t0)  # a flush's turns of the lock scale with it


def _attach_redis_sink(app: faust.App, topics: Topics, settings: Settings, metrics: Metrics,
                       dead_letter: DeadLetterSender) -> None:
    """The Redis sink agent: alerts in, idempotent writes to Redis (a bad record is a dead letter)."""
    from streams.agents.sink import SINK_BATCH, SINK_WITHIN_S, decode_alerts
    from streams.sinks.redis_sink import RedisAlertSink, redis_client

    @app.agent(topics.alerts, name="redis-sink")
    async def redis_sink(stream: Any) -> None:
        sink = RedisAlertSink(redis_client(settings), settings)
        async for evs in events(stream, SINK_BATCH, SINK_WITHIN_S):
            alerts, dead, index = decode_alerts(ev.value for ev in evs)
            for d in dead:
                await dead_letter.send(d)
            if not alerts:
                continue
            conflicts_before = sink.conflicts
            new = await sink.write_retrying(alerts, on_failure=metrics.redis_failures.inc)
            conflicts = sink.conflicts - conflicts_before
            metrics.redis_writes.inc(new)
            metrics.redis_conflicts.inc(conflicts)
            metrics.redis_duplicates.inc(len(alerts) - new - conflicts)
            now = time.time()
            for i in index:
                # the track agent stamps each alert record with its position batch's Kafka timestamp
                metrics.alert_latency.observe(max(0.0, now - evs[i].message.timestamp))
            sink.log_delivered(alerts, new)
