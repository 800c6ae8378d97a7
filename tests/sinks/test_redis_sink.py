"""The Redis sink (streams.sinks.redis_sink.RedisAlertSink) on the real Redis: idempotent writes,
identity per event_id, and a changed re-send caught as a conflict."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from streams.settings import Settings
from streams.sinks.redis_sink import RedisAlertSink
from tests.alert_docs import zone_alert

pytestmark = pytest.mark.integration


async def test_sink_is_idempotent_on_real_redis(settings: Settings) -> None:
    client = aioredis.Redis.from_url(settings.redis_url)
    sink = RedisAlertSink(client, settings)
    pubsub = client.pubsub()
    await pubsub.subscribe(settings.redis_key("alerts", "severity", "high"))
    await pubsub.get_message(timeout=1.0)  # subscribe confirmation
    batch = [zone_alert(i) for i in range(5)]
    assert await sink.write(batch) == 5
    assert await sink.write(batch) == 0, "a second write of the same alerts must add nothing"
    assert await sink.write([*batch, zone_alert(5)]) == 1
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


async def test_sink_counts_per_event_id_and_catches_changed_content(settings: Settings) -> None:
    """Identity is (alert_id, seq): a re-sent message whose content changed is a conflict, not a new alert."""
    client = aioredis.Redis.from_url(settings.redis_url)
    sink = RedisAlertSink(client, settings)
    first = [{**zone_alert(i), "seq": 0, "event_id": f"a{i:04d}:0", "distance_to_boundary_m": 1000.0 + i}
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
