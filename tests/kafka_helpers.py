"""Small helpers for tests that read what the pipeline wrote to the real broker."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer

from streams.kafka_io import client_kwargs
from streams.settings import Settings


async def read_topic(settings: Settings, topic: str, expect: int, timeout: float = 30.0,
                     settle: float = 1.0) -> list[bytes]:
    """Every value of ``topic`` from the beginning; waits for ``expect`` then ``settle`` s more."""
    consumer = AIOKafkaConsumer(topic, **client_kwargs(settings), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                values.extend(r.value for r in records)
            if len(values) >= expect:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at >= settle:
                    break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return values
