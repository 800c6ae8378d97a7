"""Agent adapter: the alerts topic into the Redis sink.

This module owns decoding alert records from Kafka for the sink. The decoding is a
pure function so it is tested without a broker; the agent body (streams.agents)
only batches the stream and awaits the sink, which is idempotent, so redelivery
after a crash or a rebalance never duplicates an alert in Redis.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.messages import DeadLetter

# 500 alerts or 10 ms: one Redis round-trip per batch, and at most 10 ms of the 250 ms p99 budget.
SINK_BATCH = 500
SINK_WITHIN_S = 0.01


def decode_alerts(values: Iterable[bytes | None]) -> tuple[list[dict[str, Any]], list[DeadLetter], list[int]]:
    """Alert documents from raw record values; anything else becomes a dead letter.

    The third list holds the index of each accepted alert among ``values``.
    """
    alerts: list[dict[str, Any]] = []
    dead: list[DeadLetter] = []
    index: list[int] = []
    for i, raw in enumerate(values):
        if raw is None:  # a tombstone (a record without a value): nothing to deliver, but said so
            dead.append(DeadLetter("empty_record", "alert", b"", source="alerts-topic",
                                   detail="record without a value"))
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            dead.append(DeadLetter("bad_json", "alert", bytes(raw), source="alerts-topic", detail=str(exc)))
            continue
        # Activity alerts (activity.v1) are about a category, not an aircraft: their icao24 is "".
        if not isinstance(doc, dict) or not doc.get("alert_id") or not (
                doc.get("icao24") or (doc.get("schema") == "activity.v1" and "icao24" in doc)):
            dead.append(
                DeadLetter("wrong_type", "alert", bytes(raw), source="alerts-topic", detail="not an alert")
            )
            continue
        alerts.append(doc)
        index.append(i)
    return alerts, dead, index
