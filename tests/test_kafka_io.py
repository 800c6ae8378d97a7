"""streams.kafka_io on the real broker: send_batches, and TopicReader (From, find_partitions,
json_documents) with its callers, ``report.collect_topic_docs`` and the live map's ``follow_topics``.

Every integration test makes its own topics (names from the per-test ``settings`` prefix) and
stamps its records explicitly (``timestamp_ms``, relative to :data:`T0`), so time windows are
deterministic. :data:`T0` lies hours in the past: the broker (Kafka 4) refuses records stamped
more than an hour ahead, and retention (7 days) is far away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.kafka_io import (
    From,
    TopicReader,
    client_kwargs,
    ensure_topics,
    json_documents,
    make_producer,
    send_batches,
)
from streams.settings import Settings, SettingsError
from streams.topics import ALERTS, CHANGELOGS, TRACKS, partition_for

# Record timestamps are T0 + a few seconds: whole seconds, six hours ago (epoch ms).
T0 = (int(time.time()) - 6 * 3600) * 1000
# How long a reader that should end by itself may take on a busy 2-core machine before the test fails
# rather than hangs; every idle limit a test relies on is far above the time the reader should take.
ENDS_WITHIN_S = 20.0


def at(ms: int) -> float:
    """T0 + ``ms`` as epoch seconds (what TopicReader's ``until`` and From.time take)."""
    return (T0 + ms) / 1000


async def read_all(settings: Settings, topic: str, expect: int, timeout: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(topic, **client_kwargs(settings), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def new_topic(settings: Settings, short: str, partitions: int) -> str:
    """Create topic ``<prefix>.<short>`` with ``partitions`` partitions; returns its name."""
    name = settings.topic(short)
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, settings.replication_factor)])
    finally:
        await admin.close()
    return name


async def produce(settings: Settings, topic: str, records: Iterable[tuple[int, int, bytes | None]]) -> None:
    """Send (partition, ms after T0, value) records one by one, each acknowledged before the next."""
    producer = make_producer(settings)
    await producer.start()
    try:
        for partition, ms, value in records:
            await producer.send_and_wait(topic, value, partition=partition, timestamp_ms=T0 + ms)
    finally:
        await producer.stop()


async def read(reader: TopicReader) -> list[tuple[int, int]]:
    """(partition, offset) of every record the reader yields, entering and leaving it."""
    out: list[tuple[int, int]] = []

    async def run() -> None:
        async with reader:
            async for batch in reader:
                for tp, records in batch.items():
                    assert records, "a batch lists only partitions with records"
                    out.extend((tp.partition, r.offset) for r in records)

    await asyncio.wait_for(run(), ENDS_WITHIN_S)
    return out


async def wait_for_state(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait until ``check()`` holds (looked at every 50 ms), failing after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


# --- ensure_topics -----------------------------------------------------------------------------
@pytest.mark.integration
async def test_state_table_changelogs_exist_compacted_before_a_worker_starts(settings: Settings) -> None:
    """The state tables' changelogs are made with the other topics (so a worker never joins its
    group while Faust is still creating them), with the partitions of their source topics and
    compaction, as Faust itself makes them."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    await ensure_topics(settings)
    names = [spec.name(settings) for spec in CHANGELOGS]
    assert names == [f"{settings.app_id}-{t}-changelog" for t in ("aircraft-state", "coverage-state",
                                                                   "missions-state")]
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        assert sorted((d["topic"], len(d["partitions"])) for d in described) == sorted(
            (n, settings.partitions) for n in names)
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        policy = {}
        for response in responses:
            for _code, _msg, _type, name, entries in response.resources:
                policy[name] = {e[0]: e[1] for e in entries}.get("cleanup.policy")
        assert policy == dict.fromkeys(names, "compact")
    finally:
        await admin.close()
    assert await ensure_topics(settings) == []  # a second call creates nothing


# --- send_batches ------------------------------------------------------------------------------
@pytest.mark.integration
async def test_records_keep_key_partition_and_order_across_full_batches(settings: Settings) -> None:
    await ensure_topics(settings)
    topic = TRACKS.name(settings)
    # 16 KiB batches: 3,000 records of ~1 KB fill a batch every ~15 records, so every partition
    # gets many batches, each of which must wait for the one before it.
    producer = make_producer(settings, max_batch_size=16384)
    await producer.start()
    try:
        icaos = [f"{0x3c0000 + n % 40:06x}" for n in range(3000)]
        records = [(partition_for(icao, settings.partitions), icao.encode(), f"{n:06d}".encode() * 170)
                   for n, icao in enumerate(icaos)]
        records.append((partition_for("3c0001", settings.partitions), b"3c0001", None))  # a deletion
        deliveries = await send_batches(producer, topic, records)
        await producer.flush()
    finally:
        await producer.stop()
    assert all(d.delivered() for d in deliveries)
    assert sum(d.count for d in deliveries) == len(records)
    assert len(deliveries) > 2 * len({p for p, _k, _v in records})  # batches filled up and were split

    got = await read_all(settings, topic, expect=len(records))
    assert len(got) == len(records)
    for partition in {p for p, _k, _v in records}:
        sent = [(k, v) for p, k, v in records if p == partition]
        read = sorted((r for r in got if r.partition == partition), key=lambda r: r.offset)
        assert [(r.key, r.value) for r in read] == sent  # nothing lost, duplicated or reordered
        newest = max(d.last_offset() for d in deliveries if d.partition == partition)
        assert newest == read[-1].offset


# --- TopicReader -------------------------------------------------------------------------------
@pytest.mark.integration
async def test_stop_at_end_reads_the_end_seen_at_start_and_not_later_records(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 2)
    await produce(settings, topic, [(0, 1000 + i, b"{}") for i in range(7)] + [(1, 1000, b"{}")])
    reader = TopicReader(settings, [topic], start=From.time(None), stop_at_end=True, idle_s=30.0)
    got: list[tuple[int, int]] = []
    t0 = time.monotonic()

    async def run() -> None:
        async with reader:
            # on the broker before the first poll, yet after the start: past the end the report reads to
            await produce(settings, topic, [(0, 2000, b"{}"), (1, 2000, b"{}")])
            async for batch in reader:
                got.extend((tp.partition, r.offset) for tp, records in batch.items() for r in records)

    await asyncio.wait_for(run(), ENDS_WITHIN_S)
    assert sorted(got) == [(0, i) for i in range(7)] + [(1, 0)]
    assert reader.end_offsets == {TopicPartition(topic, 0): 7, TopicPartition(topic, 1): 1}
    assert time.monotonic() - t0 < ENDS_WITHIN_S  # ended by reaching the ends, not by the 30 s idle limit
    assert len(await read_all(settings, topic, expect=10)) == 10  # the later records were there to read


@pytest.mark.integration
async def test_stop_at_end_a_record_past_until_ends_its_partition(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 1)
    await produce(settings, topic, [(0, ms, b"{}") for ms in (1000, 2000, 3000, 1500, 1600)])
    got = await read(TopicReader(settings, [topic], start=From.time(None), until=at(2000), stop_at_end=True,
                                 idle_s=30.0))
    assert got == [(0, 0), (0, 1)]  # 1500 and 1600 come after the record past until


@pytest.mark.integration
async def test_without_stop_at_end_records_past_until_are_skipped_and_idle_ends(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 1)
    await produce(settings, topic, [(0, ms, b"{}") for ms in (1000, 2000, 3000, 1500)])
    t0 = time.monotonic()
    got = await read(TopicReader(settings, [topic], start=From.time(None), until=at(2000), idle_s=2.0))
    assert got == [(0, 0), (0, 1), (0, 3)]
    assert 2.0 <= time.monotonic() - t0  # ended by the idle limit: nothing else would end it


@pytest.mark.integration
async def test_idle_counts_only_records_yielded(settings: Settings) -> None:
    """``record --to``: records past the window keep arriving, yet the reader stops after idle_s."""
    topic = await new_topic(settings, "reader", 1)
    await produce(settings, topic, [(0, 1000, b"{}")])
    producer = make_producer(settings)
    await producer.start()
    sent_while_reading = 0
    reading = asyncio.Event()

    async def keep_sending() -> None:
        nonlocal sent_while_reading
        while True:
            await producer.send_and_wait(topic, b"{}", partition=0, timestamp_ms=T0 + 9_000_000)
            if reading.is_set():
                sent_while_reading += 1
            await asyncio.sleep(0.02)

    task = asyncio.ensure_future(keep_sending())
    try:
        reader = TopicReader(settings, [topic], start=From.time(None), until=at(2000), idle_s=2.0)
        async with reader:
            reading.set()
            got: list[tuple[int, int]] = []

            async def run() -> None:
                async for batch in reader:
                    got.extend((tp.partition, r.offset) for tp, records in batch.items() for r in records)

            await asyncio.wait_for(run(), ENDS_WITHIN_S)  # never ends if skipped records counted as activity
        assert got == [(0, 0)]
        assert sent_while_reading >= 10  # records past the window did keep arriving all along
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await producer.stop()


@pytest.mark.integration
async def test_from_time_starts_at_the_first_record_at_or_after_it(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 2)
    await produce(settings, topic, [(0, 1000, b"{}"), (0, 2000, b"{}"), (0, 3000, b"{}"),
                                    (1, 1000, b"{}")])  # nothing that late in partition 1: starts at its end
    reader = TopicReader(settings, [topic], start=From.time(at(1500)), stop_at_end=True, idle_s=30.0)
    assert await read(reader) == [(0, 1), (0, 2)]
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    assert reader.start_offsets == {tp0: 1, tp1: 1}
    assert reader.end_offsets == {tp0: 3, tp1: 1}
    exact = TopicReader(settings, [topic], start=From.time(at(2000)), stop_at_end=True, idle_s=30.0)
    assert await read(exact) == [(0, 1), (0, 2)]  # "at or after": a record stamped exactly then is in


@pytest.mark.integration
async def test_an_empty_window_ends_without_polling(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 1)
    await produce(settings, topic, [(0, 1000, b"{}")])
    reader = TopicReader(settings, [topic], start=From.time(at(5000)), stop_at_end=True, idle_s=30.0)
    got: list[tuple[int, int]] = []
    async with reader:
        tp = TopicPartition(topic, 0)
        assert reader.start_offsets == reader.end_offsets == {tp: 1}
        assert reader.finished  # done before the first poll: the poll loop never runs
        t0 = time.monotonic()
        async for batch in reader:
            got.extend((p.partition, r.offset) for p, records in batch.items() for r in records)
        assert time.monotonic() - t0 < 5.0  # promptly, nowhere near the 30 s idle limit
    assert got == []


@pytest.mark.integration
async def test_from_end_backs_off_per_partition_and_not_below_zero(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 2)
    await produce(settings, topic, [(0, 1000 + i, b"{}") for i in range(10)] + [(1, 1000, b"{}")])
    reader = TopicReader(settings, [topic], start=From.end(back=4), stop_at_end=True, idle_s=30.0)
    assert sorted(await read(reader)) == [(0, 6), (0, 7), (0, 8), (0, 9), (1, 0)]
    assert reader.start_offsets == {TopicPartition(topic, 0): 6, TopicPartition(topic, 1): 0}


@pytest.mark.integration
async def test_a_stop_event_ends_a_reader_that_would_read_for_ever(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 1)
    await produce(settings, topic, [(0, 1000, b"{}")])
    stop = asyncio.Event()
    got: list[int] = []

    async def run() -> None:
        async with TopicReader(settings, [topic], start=From.end(back=10), stop=stop) as reader:
            async for batch in reader:
                got.extend(r.offset for records in batch.values() for r in records)
                stop.set()

    await asyncio.wait_for(run(), ENDS_WITHIN_S)  # no end, no idle limit: only the event ends it
    assert got == [0]


@pytest.mark.integration
async def test_a_missing_topic_is_a_settings_error_naming_it_and_the_broker(settings: Settings) -> None:
    there = await new_topic(settings, "there", 1)
    gone = settings.topic("gone")
    tasks = asyncio.all_tasks()
    with pytest.raises(SettingsError) as err:
        async with TopicReader(settings, [there, gone], start=From.time(None),
                               missing_hint="; is a worker running?"):
            pytest.fail("entered")
    assert str(err.value) == f"topic {gone} does not exist on {settings.bootstrap}; is a worker running?"
    assert asyncio.all_tasks() == tasks  # the consumer was stopped, not left running by the failed entry


@pytest.mark.integration
async def test_missing_ok_leaves_missing_topics_out(settings: Settings) -> None:
    there = await new_topic(settings, "there", 1)
    gone = settings.topic("gone")
    await produce(settings, there, [(0, 1000, b"{}")])
    reader = TopicReader(settings, [gone, there], start=From.time(None), stop_at_end=True, idle_s=30.0,
                         missing_ok=True)
    assert await read(reader) == [(0, 0)]
    assert reader.partitions == [TopicPartition(there, 0)]
    nothing = TopicReader(settings, [gone], start=From.time(None), missing_ok=True)  # no end: yet it ends
    assert await read(nothing) == []
    assert nothing.partitions == []


@pytest.mark.integration
async def test_the_reader_commits_for_no_group_and_resumes_at_the_oldest_record(settings: Settings) -> None:
    topic = await new_topic(settings, "reader", 1)
    await produce(settings, topic, [(0, 1000 + i, b"{}") for i in range(5)])
    tp = TopicPartition(topic, 0)
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        assert await admin.delete_records({tp: RecordsToDelete(before_offset=3)}) == {tp: 3}
        # From.end(back=10) seeks to offset 0, which the broker no longer holds: the reader resumes at
        # the oldest record there (3), not at the end, which would read nothing (aiokafka's default)
        reader = TopicReader(settings, [topic], start=From.end(back=10), stop_at_end=True, idle_s=30.0)
        assert await read(reader) == [(0, 3), (0, 4)]
        assert reader.start_offsets == {tp: 0}
        for group, *_ in await admin.list_consumer_groups():
            assert tp not in await admin.list_consumer_group_offsets(group), f"group {group} committed"
    finally:
        await admin.close()


@pytest.mark.unit
async def test_iterating_outside_async_with_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        async for _batch in TopicReader(Settings(topic_prefix="unit"), ["t"], start=From.time(None)):
            pass


@pytest.mark.unit
def test_from_end_refuses_a_negative_back() -> None:
    with pytest.raises(ValueError):
        From.end(back=-1)


@pytest.mark.unit
def test_json_documents_keeps_only_json_objects() -> None:
    values = [b'{"a": 1}', b"not json", None, b"[1, 2]", b'"text"', b'{"b": 2}']
    records = [ConsumerRecord("t", 0, i, T0, 0, None, v, None, 0, len(v or b""), ()) for i, v in enumerate(values)]
    assert list(json_documents(records)) == [{"a": 1}, {"b": 2}]


# --- the callers ------------------------------------------------------------------------------
@pytest.mark.integration
async def test_report_collects_kept_documents_of_the_window(settings: Settings) -> None:
    from streams.report import collect_topic_docs

    await ensure_topics(settings)
    topic = TRACKS.name(settings)
    await produce(settings, topic, [
        (0, 1000, orjson.dumps({"schema": "track.v1", "n": 0})),  # before the window
        (0, 1600, orjson.dumps({"schema": "other"})),  # not kept
        (0, 2000, orjson.dumps({"schema": "track.v1", "n": 1})),
        (0, 2500, b"{bad"),
        (0, 3000, orjson.dumps({"schema": "track.v1", "n": 2})),  # at t_to: in
        (0, 4000, orjson.dumps({"schema": "track.v1", "n": 3})),  # past t_to: ends partition 0
        (0, 2200, orjson.dumps({"schema": "track.v1", "n": 4})),  # in the window, but after that
        (1, 2100, orjson.dumps({"schema": "track.v1", "n": 5})),  # another partition
        (1, 5000, orjson.dumps({"schema": "track.v1", "n": 6})),
    ])
    t0 = time.monotonic()
    docs = await asyncio.wait_for(
        collect_topic_docs(settings, TRACKS, at(1500), at(3000), lambda d: d.get("schema") == "track.v1",
                           idle_s=30.0),
        ENDS_WITHIN_S)
    assert sorted(d["n"] for d in docs) == [1, 2, 5]
    assert time.monotonic() - t0 < ENDS_WITHIN_S  # by the ends seen at start, not the 30 s idle limit


@pytest.mark.integration
async def test_report_of_a_missing_topic_asks_for_a_worker(settings: Settings) -> None:
    from streams.report import collect_topic_docs

    with pytest.raises(SettingsError, match=r"does not exist on .*; is a worker running") as err:
        await collect_topic_docs(settings, TRACKS, None, None, lambda d: True)
    assert TRACKS.name(settings) in str(err.value)


@pytest.mark.integration
async def test_live_follower_backfills_and_stops(settings: Settings) -> None:
    from streams.web.live import BACKFILL_PER_PARTITION, STOP_GRACE_S, LiveState, follow_topics

    await ensure_topics(settings)
    tracks, alerts = TRACKS.name(settings), ALERTS.name(settings)

    def track(icao: str) -> bytes:
        return orjson.dumps({"icao24": icao, "lat": 51.5, "lon": -0.1})

    # partition 0 holds 3 more tracks than the backfill reaches back; partition 1 only one
    older = BACKFILL_PER_PARTITION + 3
    producer = make_producer(settings)
    await producer.start()
    try:
        deliveries = await send_batches(producer, tracks, [(0, None, track(f"{n:06x}")) for n in range(older)]
                                        + [(1, None, track("p1"))])
        await send_batches(producer, alerts, [(0, None, b"{bad"), (0, None, orjson.dumps({"alert": 1}))])
        await producer.flush()
    finally:
        await producer.stop()
    assert all(d.delivered() for d in deliveries)

    state = LiveState()
    stop = asyncio.Event()
    tasks = asyncio.all_tasks()
    follower = asyncio.ensure_future(follow_topics(settings, state, stop))
    try:
        backfilled = {f"{n:06x}" for n in range(3, older)} | {"p1"}
        await wait_for_state(lambda: len(state.aircraft) >= len(backfilled) and len(state.alerts) >= 1,
                             "the backfill")
        assert set(state.aircraft) == backfilled  # the last BACKFILL_PER_PARTITION of each partition
        assert list(state.alerts) == [{"alert": 1}]  # the bad record skipped
        await produce(settings, tracks, [(2, 1000, track("later"))])  # then it follows
        await wait_for_state(lambda: "later" in state.aircraft, "a track sent after the backfill")
        assert not follower.done()
        stop.set()
        await asyncio.wait_for(follower, STOP_GRACE_S)  # within a poll or two of the event
        assert asyncio.all_tasks() == tasks  # and its consumer is stopped
    finally:
        if not follower.done():
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
