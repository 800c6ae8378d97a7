"""Faust agents: thin adapters between topics and the pure logic of ``streams.core``.

This package owns wiring agents, tables and web routes onto an app. Each agent body
only batches its stream, calls a pure function from its own module (tested without a
broker), and sends what comes back; all decisions live in ``streams.core`` and the
sinks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import faust
import orjson

from streams.app import Topics
from streams.metrics import Metrics
from streams.records import DeadLetter
from streams.settings import Settings


async def batches(stream: Any, size: int, within: float) -> AsyncIterator[list[bytes]]:
    async for values in stream.take(size, within=within):
        yield values


async def events(stream: Any, size: int, within: float) -> AsyncIterator[list[faust.types.EventT]]:
    """Batches of events (value plus Kafka metadata such as the record timestamp)."""
    async for evs in stream.take_events(size, within=within):
        yield evs


def attach_agents(app: faust.App, topics: Topics, settings: Settings, metrics: Metrics) -> None:
    from streams.agents.sink import SINK_BATCH, SINK_WITHIN_S, decode_alerts
    from streams.sinks.redis_sink import RedisAlertSink, redis_client
    from streams.web.health import add_health_routes

    def on_webserver_init(web: Any) -> None:
        add_health_routes(web.web_app.router, app, metrics)

    app.on_webserver_init = on_webserver_init  # type: ignore[method-assign]

    async def dead_letter(d: DeadLetter) -> None:
        metrics.dead_letters.labels(d.input_format, d.reason).inc()
        await topics.deadletter.send(key=d.input_format.encode(), value=orjson.dumps(d.to_dict()))

    @app.agent(topics.alerts, name="redis-sink")
    async def redis_sink(stream: Any) -> None:
        sink = RedisAlertSink(redis_client(settings), settings)
        async for evs in events(stream, SINK_BATCH, SINK_WITHIN_S):
            alerts, dead, index = decode_alerts(ev.value for ev in evs)
            for d in dead:
                await dead_letter(d)
            if not alerts:
                continue
            failures = sink.failures
            new = await sink.write_retrying(alerts)
            metrics.redis_failures.inc(sink.failures - failures)
            metrics.redis_writes.inc(new)
            metrics.redis_duplicates.inc(len(alerts) - new)
            now = time.time()
            for i in index:
                # the track agent stamps each alert record with its position batch's Kafka timestamp
                metrics.alert_latency.observe(max(0.0, now - evs[i].message.timestamp))
            sink.log_delivered(alerts, new)
