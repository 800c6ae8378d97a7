"""Faust agents: thin adapters between topics and the pure logic of ``streams.core``.

This package owns wiring agents onto an app. Each agent body only batches its
stream, calls a pure function from its own module (tested without a broker), and
sends what comes back; all decisions live in ``streams.core`` and the sinks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust
import orjson

from streams.app import Topics
from streams.records import DeadLetter
from streams.settings import Settings


async def batches(stream: Any, size: int, within: float) -> AsyncIterator[list[bytes]]:
    async for values in stream.take(size, within=within):
        yield values


def attach_agents(app: faust.App, topics: Topics, settings: Settings) -> None:
    from streams.agents.sink import SINK_BATCH, SINK_WITHIN_S, run_sink
    from streams.sinks.redis_sink import RedisAlertSink, redis_client

    async def dead_letter(d: DeadLetter) -> None:
        await topics.deadletter.send(key=d.input_format.encode(), value=orjson.dumps(d.to_dict()))

    @app.agent(topics.alerts, name="redis-sink")
    async def redis_sink(stream: Any) -> None:
        sink = RedisAlertSink(redis_client(settings), settings)
        await run_sink(batches(stream, SINK_BATCH, SINK_WITHIN_S), sink.write_retrying, dead_letter)
