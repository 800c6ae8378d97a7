"""The alerts topic → Redis sink agent (streams.agents.sink), on the real broker and Redis.

The Redis writes themselves (idempotence, conflicts) are tested in tests/sinks/test_redis_sink.py.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from streams.agents.sink import decode_alerts
from streams.kafka_io import ensure_topics, make_producer
from streams.settings import Settings
from streams.topics import ALERTS, DEADLETTER
from tests.alert_docs import zone_alert
from tests.kafka_helpers import read_topic


@pytest.mark.unit
def test_decode_alerts_keeps_good_and_dead_letters_bad() -> None:
    good = orjson.dumps(zone_alert(1))
    alerts, dead, index = decode_alerts([b"{not json", good, b"[1,2]", orjson.dumps({"icao24": "abc"})])
    assert [a["alert_id"] for a in alerts] == ["a0001"]
    assert index == [1]
    assert [d.reason for d in dead] == ["bad_json", "wrong_type", "wrong_type"]
    assert dead[0].raw == b"{not json"
    # a tombstone (a record without a value) is a dead letter too, not a crash of the sink agent
    alerts, dead, index = decode_alerts([None, good])
    assert index == [1] and [d.reason for d in dead] == ["empty_record"]


@pytest.mark.integration
async def test_worker_agent_moves_alerts_from_kafka_to_redis(settings: Settings, start_worker) -> None:
    """End to end: a real worker process consumes the real topic and writes to the real Redis."""
    await ensure_topics(settings)
    worker = start_worker()
    producer = make_producer(settings)
    await producer.start()
    alerts = [zone_alert(i) for i in range(20)]
    for a in alerts:
        await producer.send(ALERTS.name(settings), orjson.dumps(a), key=str(a["icao24"]).encode())
    # the same alerts again: Kafka now holds duplicates, Redis must not
    for a in alerts[:5]:
        await producer.send(ALERTS.name(settings), orjson.dumps(a), key=str(a["icao24"]).encode())
    await producer.send(ALERTS.name(settings), b"garbage", key=b"x")
    await producer.flush()
    await producer.stop()

    client = aioredis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + 60
    n = 0
    while time.monotonic() < deadline:
        n = await client.xlen(settings.redis_key("alerts"))
        if n >= 20:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the duplicates are behind the originals; give them time to be (not) written
    entries = await client.xrange(settings.redis_key("alerts"))
    ids = sorted(e[1][b"alert_id"].decode() for e in entries)
    assert ids == sorted(str(a["alert_id"]) for a in alerts)
    assert await client.hlen(settings.redis_key("aircraft")) == 20
    await client.aclose()
    dead = await read_topic(settings, DEADLETTER.name(settings), expect=1)
    assert [orjson.loads(v)["reason"] for v in dead] == ["bad_json"]
    assert orjson.loads(dead[0])["raw_text"] == "garbage"

    base = f"http://127.0.0.1:{settings.web_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/health/live") as r:
            assert r.status == 200
        async with http.get(f"{base}/health/ready") as r:
            body = await r.json()
            assert r.status == 200, body
            assert body["assigned_partitions"] > 0 and body["tables_recovered"]
        async with http.get(f"{base}/metrics") as r:
            text = await r.text()
    metrics = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln and not ln.startswith("#")}
    assert metrics["skyfence_redis_writes_total"] == 20
    assert metrics["skyfence_redis_duplicates_total"] == 5
    assert metrics['skyfence_dead_letters_total{format="alert",reason="bad_json"}'] == 1
    assert metrics["skyfence_alert_latency_seconds_count"] == 25
    worker.stop()
