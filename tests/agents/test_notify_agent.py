"""Notification webhooks (streams.agents.notify) on the real broker, the real Redis and real worker
processes, against a real HTTP server on loopback (tests.sinks.test_notify.HookServer) that records
what it receives and is told to fail, rate-limit, hang or refuse.

Each test waits on what was observable (what the server received and answered, the webhook
group's committed offsets, Redis, the dead-letter topic), never on a bare sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from streams.agents.notify import WebhookConsumer
from streams.kafka_io import Publisher, client_kwargs, ensure_topics, make_producer
from streams.messages import DeadLetter
from streams.settings import Secret, Settings, child_env
from streams.sinks.notify import parse_webhooks
from streams.topics import ALERTS, DEADLETTER
from tests.kafka_helpers import read_topic
from tests.paths import REPO_ROOT
from tests.polling import poll
from tests.sinks.test_notify import DISCORD_TOKEN, SLACK_TOKEN, Answer, HookServer, by_attempt, wait_for

BASE = "https://map.example.org"
SEVERITIES = ("info", "low", "medium", "high")
CATEGORIES = ("military", "civil", "surveillance")
OPS_SECRET = "ops-HMAC-secret-0042"
PHONE_TOKEN = "tk_PHONEtoken0042"
PHONE_TOPIC = "skyfence-border-7f3a9c2e11"  # an ntfy topic is a password: whoever knows it reads it
GONE_TOKEN = "gOnE5gH7jK9mN1pQ3sT5vW7x"
T0 = 1738700000.0


def make_alert(i: int) -> dict[str, Any]:
    """An alert.v1-shaped document; severity, category and the rules' channel vary with ``i``."""
    icao, callsign = f"ae{i:04x}", f"RCH{i:03d}"
    return {
        "schema": "alert.v1", "alert_id": f"n{i:019d}", "event_id": f"n{i:019d}:0", "seq": 0,
        "icao24": icao, "callsign": callsign, "transition": "entered", "zone": "sovereign",
        "event_time": T0 + i, "event_time_iso": f"2025-02-04T20:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "classification": {"category": CATEGORIES[i % 3]}, "severity": SEVERITIES[i % 4],
        "description": f"{10 + i} km SW of Cabo San Lucas",
        "headline": f"Military aircraft {icao.upper()} ({callsign}) entered Mexican sovereign airspace, "
                    f"{10 + i} km SW of Cabo San Lucas",
        "rules": [], "channels": ["border-desk"] if i % 2 == 0 else [],
    }


async def produce(settings: Settings, alerts: list[dict[str, Any]], partition: int | None = None,
                  spread: bool = False) -> dict[str, bytes]:
    """The alerts onto the alerts topic (keyed by icao24, as the track agent sends them; ``spread``:
    alert i to partition i mod partitions); event_id -> bytes."""
    await ensure_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    sent = {}
    try:
        for i, a in enumerate(alerts):
            raw = orjson.dumps(a)
            p = i % settings.partitions if spread else partition
            await producer.send_and_wait(ALERTS.name(settings), raw, key=a["icao24"].encode(), partition=p)
            sent[a["event_id"]] = raw
    finally:
        await producer.stop()
    return sent


async def committed(settings: Settings, group: str) -> dict[int, int]:
    """The group's committed offsets on the alerts topic, per partition."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == ALERTS.name(settings)}


async def stream_len(settings: Settings) -> int:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        return int(await client.xlen(settings.redis_key("alerts")))
    finally:
        await client.aclose()


def spec(*hooks: dict[str, Any]) -> Secret:
    return Secret(orjson.dumps(list(hooks)).decode())


@pytest.fixture
def server() -> Iterator[HookServer]:
    with HookServer() as s:
        yield s


# ============================================================== one webhook's consumer, in process
@pytest.mark.integration
async def test_offset_committed_only_after_delivery_and_refusal_is_dead_letter(settings: Settings,
                                                                               server: HookServer) -> None:
    """An alert retried (500s) holds the webhook group's committed offset at itself; once delivered
    the offset moves on; a 400 becomes a dead letter with the status and the (scrubbed) response,
    and is committed past; records that are not alerts (garbage, a tombstone) are skipped."""
    alerts = [make_alert(i) for i in range(4)]
    held, refused = alerts[1]["event_id"], alerts[2]["event_id"]
    let_through = asyncio.Event()
    path = f"/in/{GONE_TOKEN}"

    def plan(r: Any) -> Answer:
        if r.key == held and not let_through.is_set():
            return Answer(500, "try later")
        if r.key == refused:
            return Answer(400, f'{{"error": "bad payload", "path": "{path}"}}')
        return Answer(200)

    server.plan(path, plan)
    hook = parse_webhooks(orjson.dumps([{"name": "ops", "format": "json", "url": server.url(path),
                                         "secret": OPS_SECRET}]).decode())[0]
    sent = await produce(settings, alerts, partition=0)
    producer = make_producer(settings)
    await producer.start()
    await producer.send_and_wait(ALERTS.name(settings), b"garbage", key=b"x", partition=0)
    await producer.send_and_wait(ALERTS.name(settings), None, key=b"x", partition=0)
    publisher = Publisher(settings, producer)

    async def dead_letter(d: DeadLetter) -> None:
        await publisher.dead_letters([d])
        await publisher.flush()

    consumer = WebhookConsumer(settings, hook, dead_letter)
    task = asyncio.create_task(consumer.run())
    group = f"{settings.app_id}-notify-ops"
    try:
        # the held alert was tried at least 3 times (backoff 0.5 s, 1 s): the consumer is stuck on it
        await wait_for(lambda: [r for r in server.received(path) if r.key == held],
                       lambda got: len(got) >= 3, timeout=60)
        stuck_at = await committed(settings, group)
        assert stuck_at == {0: 1}, "committed past an undelivered alert (or not the delivered one)"
        assert set(server.delivered(path)) == {alerts[0]["event_id"]}
        let_through.set()
        done = await poll(lambda: committed(settings, group), lambda c: c.get(0) == 6, timeout=60)
        assert done == {0: 6}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
    delivered = server.delivered(path)
    assert set(delivered) == {alerts[0]["event_id"], held, alerts[3]["event_id"]}
    for key, got in delivered.items():
        assert [r.body for r in got] == [sent[key]]  # each delivered once here, byte for byte
        assert got[0].headers["x-skyfence-signature"] == "sha256=" + hmac.new(
            OPS_SECRET.encode(), sent[key], hashlib.sha256).hexdigest()
    assert {r.body for r in server.received(path) if r.key == held} == {sent[held]}  # retries: same bytes
    dead = [orjson.loads(v) for v in await read_topic(settings, DEADLETTER.name(settings), expect=1)]
    assert len(dead) == 1, dead
    d = dead[0]
    assert (d["reason"], d["input_format"], d["source"]) == ("webhook_refused", "alert", "webhook:ops")
    assert d["raw_text"] == sent[refused].decode()
    assert d["extra"] == {"webhook": "ops", "format": "json", "status": 400, "attempts": 1, "event_id": refused,
                          "response": '{"error": "bad payload", "path": "/********"}'}
    assert "HTTP 400" in d["detail"] and GONE_TOKEN not in orjson.dumps(d).decode()
    assert (consumer.delivered, consumer.refused, consumer.skipped) == (3, 1, 2)


def _hang_first(server: HookServer, path: str, after: str | None = None) -> list[str]:
    """The first request on ``path`` (of a key other than ``after``) hangs until its client gives up;
    every other is answered 200. Returns the list that will hold the hung request's key."""
    first: list[str] = []
    lock = threading.Lock()

    def plan(r: Any) -> Answer:
        with lock:
            if not first and r.key != after:
                first.append(r.key)
                return Answer(hang=True)
        return Answer(200)

    server.plan(path, plan)
    return first


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _no_dead_letters(d: DeadLetter) -> None:
    raise AssertionError(f"unexpected dead letter {d}")


@pytest.mark.integration
async def test_a_rebalance_mid_delivery_loses_nothing(settings: Settings, server: HookServer) -> None:
    """Consumer A hangs on its first alert; B joins A's group. A gives the alert in hand up after
    the grace, commits what it handled, and between them every alert is delivered, none twice."""
    first = _hang_first(server, "/in")
    hook = parse_webhooks(orjson.dumps([{"name": "ops", "format": "json", "url": server.url("/in"),
                                         "timeout_s": 120}]).decode())[0]
    sent = await produce(settings, [make_alert(i) for i in range(8)], spread=True)
    a = WebhookConsumer(settings, hook, _no_dead_letters)
    b = WebhookConsumer(settings, hook, _no_dead_letters)
    task_a = asyncio.create_task(a.run())
    tasks = [task_a]
    try:
        await wait_for(lambda: server.received("/in"), lambda r: len(r) >= 1, timeout=60)  # A holds it
        joined = time.monotonic()
        tasks.append(asyncio.create_task(b.run()))
        ends = {p: 2 for p in range(settings.partitions)}
        done = await poll(lambda: committed(settings, f"{settings.app_id}-notify-ops"), lambda c: c == ends,
                           timeout=90)
        assert done == ends
    finally:
        await _stop(*tasks)
    delivered = server.delivered("/in")
    assert set(delivered) == set(sent)
    assert all(len(got) == 1 and got[0].body == sent[k] for k, got in delivered.items()), "delivered twice"
    hung = [r for r in server.received("/in") if r.key == first[0]]
    assert [r.status for r in hung] == [None, 200], "the alert in hand was not given up and sent again"
    assert hung[1].at - joined < 60, "given up by the request timeout, not by the rebalance"
    assert a.delivered + b.delivered == len(sent) and b.delivered > 0


@pytest.mark.integration
async def test_shutdown_keeps_what_was_delivered_and_the_next_run_resends_the_alert_in_hand(
        settings: Settings, server: HookServer) -> None:
    alerts = [make_alert(i) for i in range(3)]
    first = _hang_first(server, "/in", after=alerts[0]["event_id"])
    hook = parse_webhooks(orjson.dumps([{"name": "ops", "format": "json", "url": server.url("/in"),
                                         "timeout_s": 120}]).decode())[0]
    sent = await produce(settings, alerts, partition=0)
    group = f"{settings.app_id}-notify-ops"
    run1 = asyncio.create_task(WebhookConsumer(settings, hook, _no_dead_letters).run())
    try:
        await wait_for(lambda: first, lambda f: f == [alerts[1]["event_id"]], timeout=60)  # in hand: alert 1
        await poll(lambda: committed(settings, group), lambda c: c == {0: 1}, timeout=30)
    finally:
        await _stop(run1)  # the worker shuts down with alert 1 in hand
    assert await committed(settings, group) == {0: 1}, "committed past the alert in hand, or not what was delivered"
    run2 = asyncio.create_task(WebhookConsumer(settings, hook, _no_dead_letters).run())
    try:
        done = await poll(lambda: committed(settings, group), lambda c: c == {0: 3}, timeout=60)
    finally:
        await _stop(run2)
    assert done == {0: 3}
    delivered = server.delivered("/in")
    assert {k: len(v) for k, v in delivered.items()} == {a["event_id"]: 1 for a in alerts}
    assert [r.status for r in server.received("/in") if r.key == alerts[1]["event_id"]] == [None, 200]
    assert all(got[0].body == sent[k] for k, got in delivered.items())


# ============================================================== through a worker
def _hooks(server: HookServer) -> dict[str, dict[str, Any]]:
    return {
        "ops": {"name": "ops", "format": "json", "url": server.url("/ops"), "secret": OPS_SECRET},
        "phone": {"name": "phone", "format": "ntfy", "url": server.url(f"/{PHONE_TOPIC}"), "token": PHONE_TOKEN,
                  "min_severity": "medium"},
        "newsroom": {"name": "newsroom", "format": "discord", "url": server.url(f"/api/webhooks/1234/{DISCORD_TOKEN}"),
                     "categories": ["military"]},
        "chat": {"name": "chat", "format": "slack", "url": server.url(f"/services/T0AAAA/B0BBBB/{SLACK_TOKEN}"),
                 "channels": ["border-desk"]},
        "stuck": {"name": "stuck", "format": "json", "url": server.url("/stuck"), "timeout_s": 90},
        "gone": {"name": "gone", "format": "slack", "url": server.url(f"/services/T0CCCC/B0DDDD/{GONE_TOKEN}"),
                 "min_severity": "high"},
    }


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.mark.integration
async def test_worker_formats_filters_isolation_dead_letters_and_no_secrets_in_log(
        settings: Settings, start_worker, server: HookServer) -> None:
    hooks = _hooks(server)
    paths = {name: _path(h["url"]) for name, h in hooks.items()}
    server.plan(paths["stuck"], lambda r: Answer(hang=True))  # hangs until released
    server.plan(paths["gone"], lambda r: Answer(404, f'{{"error": "no_service", "path": "{paths["gone"]}"}}'))
    s = settings.replace(webhooks=spec(*hooks.values()), map_url=BASE)
    worker = start_worker(settings_=s)
    alerts = [make_alert(i) for i in range(12)]
    sent = await produce(s, alerts)
    ids = [a["event_id"] for a in alerts]
    expect = {
        "ops": set(ids),
        "phone": {a["event_id"] for a in alerts if a["severity"] in ("medium", "high")},
        "newsroom": {a["event_id"] for a in alerts if a["classification"]["category"] == "military"},
        "chat": {a["event_id"] for a in alerts if a["channels"] == ["border-desk"]},
    }
    gone = {a["event_id"] for a in alerts if a["severity"] == "high"}

    async def progress() -> tuple[dict[str, set[str]], int, int]:
        return ({n: set(server.delivered(paths[n])) for n in expect}, await stream_len(s),
                len(server.received(paths["gone"])))

    got, in_redis, _gone_tried = await poll(
        progress, lambda v: v[0] == expect and v[1] == len(alerts) and v[2] == len(gone), timeout=90)
    # measured at the moment the others had everything: "stuck" still hangs on its first alert
    stuck_seen = await wait_for(lambda: server.received(paths["stuck"]), lambda r: len(r) >= 1, timeout=30)
    assert got == expect
    assert in_redis == len(alerts), "the Redis sink was held back"
    assert len(stuck_seen) == 1 and server.delivered(paths["stuck"]) == {}, "the stuck webhook got past its first alert"

    by_id = {a["event_id"]: a for a in alerts}
    for r in (x for got_ in server.delivered(paths["ops"]).values() for x in got_):
        assert r.body == sent[r.key]
        assert r.headers["x-skyfence-signature"] == "sha256=" + hmac.new(OPS_SECRET.encode(), r.body,
                                                                         hashlib.sha256).hexdigest()
        assert r.headers["content-type"] == "application/json"
    for r in (x for got_ in server.delivered(paths["phone"]).values() for x in got_):
        a = by_id[r.key]
        link = f"{BASE}/map?icao={a['icao24']}"
        assert r.body.decode() == a["headline"]
        assert r.headers["title"] == f"skyfence {a['severity']}: entered {a['icao24'].upper()} {a['callsign']}"
        assert r.headers["priority"] == {"medium": "4", "high": "5"}[a["severity"]]
        assert r.headers["tags"].split(",")[:2] == [{"medium": "warning", "high": "rotating_light"}[a["severity"]],
                                                    a["severity"]]
        assert (r.headers["click"], r.headers["authorization"]) == (link, f"Bearer {PHONE_TOKEN}")
    for r in (x for got_ in server.delivered(paths["newsroom"]).values() for x in got_):
        a, doc = by_id[r.key], r.json()
        link = f"{BASE}/map?icao={a['icao24']}"
        assert set(doc) == {"content", "embeds", "allowed_mentions"} and doc["allowed_mentions"] == {"parse": []}
        assert doc["content"] == f"{a['headline']}\n{link}" and len(doc["content"]) <= 2000
        assert doc["embeds"][0]["url"] == link and doc["embeds"][0]["description"] == a["description"]
    for r in (x for got_ in server.delivered(paths["chat"]).values() for x in got_):
        a = by_id[r.key]
        assert r.json() == {"text": f"[{a['severity'].upper()}] {a['headline']}\n"
                                    f"<{BASE}/map?icao={a['icao24']}|Open on the skyfence map>"}
    for name in expect:
        assert all(r.key in sent for r in server.received(paths[name])), "a request without its event_id as key"

    # 404: a dead letter per refused alert, with the status and the response, its URL token scrubbed
    dead = [orjson.loads(v) for v in await read_topic(s, DEADLETTER.name(s), expect=len(gone))]
    refused = [d for d in dead if d["reason"] == "webhook_refused"]
    assert {d["extra"]["event_id"] for d in refused} == gone and len(refused) == len(gone)
    for d in refused:
        assert (d["source"], d["extra"]["status"], d["extra"]["format"]) == ("webhook:gone", 404, "slack")
        assert d["extra"]["response"] == '{"error": "no_service", "path": "/********"}'
        assert d["raw_text"] == sent[d["extra"]["event_id"]].decode()

    # the stuck endpoint answers again: it gets everything, in its own time
    server.release(paths["stuck"])
    stuck = await wait_for(lambda: server.delivered(paths["stuck"]), lambda d: set(d) == set(ids), timeout=60)
    assert set(stuck) == set(ids)

    log = worker.log_text()
    assert "notify ops (json, http://127.0.0.1:" in log and "/…)" in log, "the webhooks are not in the log"
    assert "********" in log, "the refused response's echoed URL should show, scrubbed"
    for secret in (OPS_SECRET, PHONE_TOKEN, PHONE_TOPIC, DISCORD_TOKEN, SLACK_TOKEN, GONE_TOKEN):
        assert secret not in log, f"a secret ({secret[:4]}…) is in the worker log {worker.log_path}"
    assert all(secret not in orjson.dumps(dead).decode() for secret in (OPS_SECRET, GONE_TOKEN, PHONE_TOKEN))


@pytest.mark.faults
async def test_every_alert_arrives_after_500s_429s_timeouts_and_a_worker_sigkill(
        settings: Settings, start_worker, server: HookServer) -> None:
    """Per alert, by its index: two 500s, or a 429 with Retry-After 1 s, or a response that hangs past
    the webhook's 1 s timeout; the worker is SIGKILLed mid-stream and a new one takes over. Every
    event_id arrives, every request of one key carries the same bytes, and at most the alert in
    hand at the kill is delivered twice."""
    n = 15

    def plan(r: Any) -> Answer:
        i = int(r.key.split(":")[0][1:])
        first = [Answer(500, "boom"), Answer(429, "slow down", {"Retry-After": "1"}), Answer(hang=True)][i % 3]
        return by_attempt(first, Answer(500, "boom") if i % 3 == 0 else Answer(200), Answer(200))(r)

    hooks = {"ops": {"name": "ops", "format": "json", "url": server.url("/ops"), "secret": OPS_SECRET,
                     "timeout_s": 1},
             "phone": {"name": "phone", "format": "ntfy", "url": server.url(f"/{PHONE_TOPIC}"), "token": PHONE_TOKEN,
                       "timeout_s": 1}}
    paths = {"ops": "/ops", "phone": f"/{PHONE_TOPIC}"}
    for p in paths.values():
        server.plan(p, plan)
    s = settings.replace(webhooks=spec(*hooks.values()), map_url=BASE)
    w1 = start_worker(name="w1", settings_=s)
    alerts = [make_alert(i) for i in range(n)]
    sent = await produce(s, alerts)
    before = await wait_for(lambda: server.delivered("/ops"), lambda d: len(d) >= 4, timeout=90)
    w1.stop(signal.SIGKILL)
    at_kill = {name: set(server.delivered(p)) for name, p in paths.items()}
    assert len(before) >= 4 and len(at_kill["ops"]) < n, f"not mid-stream: {len(at_kill['ops'])} of {n} delivered"
    w2 = start_worker(name="w2", settings_=s)
    done = await wait_for(lambda: {name: set(server.delivered(p)) for name, p in paths.items()},
                          lambda d: all(len(v) == n for v in d.values()), timeout=180)
    for name, p in paths.items():
        assert done[name] == set(sent), f"{name}: missing {sorted(set(sent) - done[name])}"
        received = server.received(p)
        assert {r.key for r in received} == set(sent), "a request for an alert that was never sent"
        for key in sent:
            bodies = {r.body for r in received if r.key == key}
            assert len(bodies) == 1, f"{name}: {key} sent with different content"
            if name == "ops":
                assert bodies == {sent[key]}
        twice = [k for k, got in server.delivered(p).items() if len(got) > 1]
        assert len(twice) <= 1, f"{name}: re-sent delivered alerts {twice}: committed too late or not at all"
        statuses = [r.status for r in received]
        assert statuses.count(500) >= 2 * len(range(0, n, 3)) and statuses.count(429) >= len(range(1, n, 3))
        assert statuses.count(None) >= len(range(2, n, 3)), "no request timed out"
        assert done[name] - at_kill[name], f"{name}: the new worker delivered nothing"
    print(f"\n[notify] delivered at the SIGKILL: ops {len(at_kill['ops'])}, phone {len(at_kill['phone'])} of {n}; "
          f"requests ops {len(server.received('/ops'))}, phone {len(server.received(paths['phone']))}")
    assert w2.proc.poll() is None


@pytest.mark.integration
def test_a_bad_webhook_spec_stops_the_worker_in_one_line(settings: Settings) -> None:
    bad = spec({"name": "newsroom", "format": "discord", "token": PHONE_TOKEN,
                "url": f"https://discord.com/api/webhooks/1234/{DISCORD_TOKEN}"})
    s = settings.replace(webhooks=bad)
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=child_env(s), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1] == ("skyfence: configuration error: SKYFENCE_WEBHOOKS: webhook 'newsroom': field token: only "
                         "json and ntfy take a bearer token; Discord and Slack carry theirs in the URL")
    assert DISCORD_TOKEN not in proc.stdout + proc.stderr and PHONE_TOKEN not in proc.stdout + proc.stderr
