"""send_batches on the real broker: every record arrives, keyed, in order, with the offsets it reports."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaConsumer

from streams.kafka_io import client_kwargs, ensure_topics, make_producer, send_batches
from streams.settings import Settings
from streams.topics import TRACKS, partition_for

pytestmark = pytest.mark.integration


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
