"""The alerts topic → Redis sink agent, on the real broker and Redis."""

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
from streams.sinks.redis_sink import RedisAlertSink
from streams.topics import ALERTS, DEADLETTER
from tests.kafka_helpers import read_topic


def _alert(i: int, transition: str = "entered") -> dict[str, object]:
    return {
        "alert_id": f"a{i:04d}",
        "icao24": f"ae{i:04x}",
        "transition": transition,
        "zone": "sovereign",
        "severity": "high",
        "event_time": 1738700000.0 + i,
    }


@pytest.mark.unit
def test_decode_alerts_keeps_good_and_dead_letters_bad() -> None:
    good = orjson.dumps(_alert(1))
    alerts, dead, index = decode_alerts([b"{not json", good, b"[1,2]", orjson.dumps({"icao24": "abc"})])
    assert [a["alert_id"] for a in alerts] == ["a0001"]
    assert index == [1]
    assert [d.reason for d in dead] == ["bad_json", "wrong_type", "wrong_type"]
    assert dead[0].raw == b"{not json"


@pytest.mark.integration
async def test_sink_is_idempotent_on_real_redis(settings: Settings) -> None:
    client = aioredis.Redis.from_url(settings.redis_url)
    sink = RedisAlertSink(client, settings)
    pubsub = client.pubsub()
    await pubsub.subscribe(settings.redis_key("alerts", "severity", "high"))
    await pubsub.get_message(timeout=1.0)  # subscribe confirmation
    batch = [_alert(i) for i in range(5)]
    assert await sink.write(batch) == 5
    assert await sink.write(batch) == 0, "a second write of the same alerts must add nothing"
    assert await sink.write([*batch, _alert(5)]) == 1
    assert await client.xlen(settings.redis_key("alerts")) == 6
    latest = await client.hget(settings.redis_key("aircraft"), "ae0005")
    assert latest is not None and orjson.loads(latest)["alert_id"] == "a0005"
    got = []
    for _ in range(6):
        msg = await pubsub.get_message(timeout=2.0, ignore_subscribe_messages=True)
        if msg:
            got.append(orjson.loads(msg["data"])["alert_id"])
    assert got == [f"a{i:04d}" for i in range(6)]
    await pubsub.aclose()
    await client.aclose()


@pytest.mark.integration
async def test_sink_counts_per_event_id_and_catches_changed_content(settings: Settings) -> None:
    """Identity is (alert_id, seq): a re-sent message whose content changed is a conflict, not a new alert."""
    client = aioredis.Redis.from_url(settings.redis_url)
    sink = RedisAlertSink(client, settings)
    first = [{**_alert(i), "seq": 0, "event_id": f"a{i:04d}:0", "distance_to_boundary_m": 1000.0 + i}
             for i in range(3)]
    assert await sink.write(first) == 3
    changed = {**first[1], "distance_to_boundary_m": 999.0}  # same message, different content
    next_seq = {**first[1], "seq": 1, "event_id": "a0001:1"}  # the episode's next message is new
    assert await sink.write([first[0], changed, next_seq]) == 1
    assert (sink.written, sink.duplicates, sink.conflicts) == (4, 1, 1)
    entries = await client.xrange(settings.redis_key("alerts"))
    kept = [orjson.loads(f[b"alert"]) for _id, f in entries]
    assert [a["event_id"] for a in kept] == ["a0000:0", "a0001:0", "a0002:0", "a0001:1"]
    assert kept[1]["distance_to_boundary_m"] == 1001.0, "the first content stays; subscribers acted on it"
    await client.aclose()


@pytest.mark.integration
async def test_worker_agent_moves_alerts_from_kafka_to_redis(settings: Settings, start_worker) -> None:
    """End to end: a real worker process consumes the real topic and writes to the real Redis."""
    await ensure_topics(settings)
    worker = start_worker()
    producer = make_producer(settings)
    await producer.start()
    alerts = [_alert(i) for i in range(20)]
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
