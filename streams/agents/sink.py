"""Agent adapter: the alerts topic into the Redis sink.

This module owns decoding alert records from Kafka for the sink. The decoding is a
pure function so it is tested without a broker; the agent body only batches the
stream and awaits the sink, which is idempotent, so redelivery after a crash or a
rebalance never duplicates an alert in Redis.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

import orjson

from streams.records import DeadLetter

log = logging.getLogger(__name__)

# 500 alerts or 50 ms: one Redis round-trip per batch while keeping alert latency far below 250 ms.
SINK_BATCH = 500
SINK_WITHIN_S = 0.05


def decode_alerts(values: Iterable[bytes]) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Alert documents from raw record values; anything else becomes a dead letter."""
    alerts: list[dict[str, Any]] = []
    dead: list[DeadLetter] = []
    for raw in values:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            dead.append(DeadLetter("bad_json", "alert", bytes(raw), source="alerts-topic", detail=str(exc)))
            continue
        if not isinstance(doc, dict) or not doc.get("alert_id") or not doc.get("icao24"):
            dead.append(
                DeadLetter("wrong_type", "alert", bytes(raw), source="alerts-topic", detail="not an alert")
            )
            continue
        alerts.append(doc)
    return alerts, dead


async def run_sink(
    batches: AsyncIterable[list[bytes]],
    write: Callable[[list[dict[str, Any]]], Awaitable[int]],
    dead_letter: Callable[[DeadLetter], Awaitable[None]],
) -> None:
    async for values in batches:
        alerts, dead = decode_alerts(values)
        for d in dead:
            await dead_letter(d)
        if alerts:
            new = await write(alerts)
            for a in alerts:
                log.info("alert %s %s %s -> redis", a.get("alert_id"), a.get("transition"), a.get("icao24"))
            if new != len(alerts):
                log.info("redis sink: %d of %d alerts were already delivered", len(alerts) - new, len(alerts))
