"""Faults injected into the real broker, Redis and workers while real flights stream through.

Each test replays the DAL1812 trace (approach, entry and exit over Yucatán) and the
Boeing flight near Laredo, injects one fault while alerts are in flight, and compares
what reached the Redis Stream with the fault-free run (``skyfence analyze``): every
alert exactly once, field for field. Faults are timed on the stream itself (for
example "after the entry alert reached Redis"), not on wall-clock guesses, and each
test prints what it injected and what it counted (also kept in
artifacts/faults-report.jsonl for docs/faults.md).
"""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from streams.settings import Settings
from streams.sinks.redis_sink import RedisAlertSink, redis_client
from streams.sinks.subscriber import AlertSubscriber
from streams.stack import LocalStack, free_port
from tests.e2e.test_pipeline import BOEING, TRACE, redis_alerts, skyfence
from tests.faults.conftest import (
    TRACE_T0,
    assert_exactly_expected,
    compare,
    finish,
    metric,
    poll,
    replay_bg,
    report,
    stream_entries,
    wait_alerts,
    wait_metric,
)

pytestmark = pytest.mark.faults

# The DAL1812 leg ends well before this offset; the rest of the 22 h trace is replayed at full speed.
LEG_END = TRACE_T0 + 6000
# 300x: the leg's 5,050 s of alerts take ~17 s, long enough to land a fault between them.
PACED = "300"
# 30 s: the outage the issue asks for.
REDIS_OUTAGE_S = 30.0
# 60 s from the broker answering again to the next new alert in Redis: the bound the docs
# state. Measured a few seconds (aiokafka's reconnect back-off is under a second); the rest of
# an outage is the broker's own start, which the test measures apart.
RECONNECT_BOUND_S = 60.0
# After a SIGKILL the group hands the dead worker's partitions on after SKYFENCE_SESSION_TIMEOUT_S;
# a new worker is ready (partitions assigned, tables recovered) within this much more: its own
# start and recovery on a busy 2-core machine (measured 21-29 s in all, the timeout included).
FAILOVER_SLACK_S = 30.0


def _failover_s(settings: Settings, killed: float) -> float:
    """Seconds from the kill until now (the new workers are ready), asserted within the stated bound."""
    failover_s = time.monotonic() - killed
    assert failover_s < settings.session_timeout_s + FAILOVER_SLACK_S, \
        f"the new worker(s) took {failover_s:.0f} s to own the partitions"
    return failover_s


def _rest_of_the_recordings(s: Settings) -> None:
    skyfence(s, "replay", str(TRACE), "--format", "trace", "--speed", "max", "--from", str(LEG_END))
    skyfence(s, "replay", str(BOEING), "--format", "traffic-json", "--speed", "max")


# Crash cases run on both stores: memory:// (state rebuilt from the changelog) and the
# production rocksdb:// (state reopened from a RocksDB directory its worker never closed).
STORES = pytest.mark.parametrize("store", ["memory://", "rocksdb://"])


def _rocksdb_reopened_cleanly(worker_log: str) -> None:
    """A restarted worker on a dead worker's RocksDB directory opens it without a lock or corruption error."""
    bad = [line for line in worker_log.splitlines()
           if ("LOCK" in line or "Corruption" in line or ("rocksdb" in line.lower() and "error" in line.lower()))]
    assert not bad, "the RocksDB directory was not reopened cleanly:\n" + "\n".join(bad[:10])


@STORES
async def test_broker_killed_and_restarted_mid_replay(fault_stack: LocalStack, settings: Settings,
                                                      start_worker, expected, store: str) -> None:
    s = settings.replace(alert_policy="all", store=store)
    worker = start_worker(settings_=s)
    replay = replay_bg(s, TRACE, "trace", speed=PACED, t_to=LEG_END)
    before = await wait_alerts(s, 1)
    assert before, "no alert reached Redis before the fault"
    pid = fault_stack.kill("kafka", signal.SIGKILL)
    t0 = time.monotonic()
    await asyncio.sleep(3.0)  # the outage itself
    await asyncio.to_thread(fault_stack.up, lambda m: None)
    outage = time.monotonic() - t0
    # Reconnected: the replay's producer and the worker's consumer, producer and sink all move
    # again once a new alert reaches Redis (nothing could while the broker was away).
    t_back = time.monotonic()
    after = await wait_alerts(s, len(before) + 1, timeout=RECONNECT_BOUND_S + 30)
    reconnect_s = time.monotonic() - t_back
    out = finish(replay)
    _rest_of_the_recordings(s)
    delivered = await redis_alerts(s, expect=len(expected), timeout=120)
    counts = compare(expected, delivered)
    report(f"Kafka broker SIGKILL + restart ({store})", f"SIGKILL broker pid {pid} after {len(before)} alert(s) "
           f"in Redis, broker back after {outage:.1f} s, replay paced {PACED}x",
           {**counts, "reconnect_s": round(reconnect_s, 1), "replay": out.strip()[-200:]})
    assert len(after) > len(before), "no alert moved after the broker came back"
    assert reconnect_s < RECONNECT_BOUND_S, f"clients took {reconnect_s:.1f} s to reconnect"
    assert worker.proc.poll() is None, "the worker died with the broker:\n" + worker.log_text()[-3000:]
    assert_exactly_expected(counts)


async def test_redis_unavailable_for_30s(fault_stack: LocalStack, settings: Settings, start_worker,
                                         expected) -> None:
    s = settings.replace(alert_policy="all")
    worker = start_worker(settings_=s)
    skyfence(s, "replay", str(BOEING), "--format", "traffic-json", "--speed", "max")
    before = await redis_alerts(s, expect=3, settle=1.0)
    # Our test Redis keeps no data across a restart by design; SAVE first so that the
    # alerts already delivered survive the kill, as they would on a persistent Redis.
    client = aioredis.Redis.from_url(s.redis_url)
    await client.save()
    await client.aclose()
    pid = fault_stack.kill("redis", signal.SIGKILL)
    t0 = time.monotonic()
    # while Redis is away, the whole trace streams through Kafka and the worker
    skyfence(s, "replay", str(TRACE), "--format", "trace", "--speed", "max")
    await asyncio.sleep(max(0.0, REDIS_OUTAGE_S - (time.monotonic() - t0)))
    during = worker.proc.poll()
    failures = await metric(s, "skyfence_redis_failures_total")
    await asyncio.to_thread(fault_stack.up, lambda m: None)
    outage = time.monotonic() - t0
    delivered = await redis_alerts(s, expect=len(expected), timeout=60)
    counts = compare(expected, delivered)
    report("Redis down 30 s", f"SIGKILL redis pid {pid} with {len(before)} alert(s) delivered, trace replayed "
           f"during the outage, Redis back after {outage:.1f} s", {**counts, "redis_failures": failures})
    assert during is None, "the worker died while Redis was down:\n" + worker.log_text()[-3000:]
    assert failures > 0, "the sink never noticed Redis was down"
    assert worker.proc.poll() is None
    assert_exactly_expected(counts)


@STORES
async def test_worker_sigkill_mid_stream_recovers_state(settings: Settings, start_worker, expected,
                                                        store: str) -> None:
    # The restarted worker has the same data directory: on rocksdb:// it reopens the tables of a
    # worker that died without closing them.
    s = settings.replace(alert_policy="all", store=store)
    w1 = start_worker(name="w1", settings_=s)
    replay = replay_bg(s, TRACE, "trace", speed=PACED, t_to=LEG_END)
    # approaching, two updates, entered: the aircraft is inside Mexico when the worker dies,
    # and its state has been flushed at least once, so the new worker recovers a state from the
    # changelog and resumes from a committed offset (killed sooner, it would start afresh at 0)
    before = await wait_alerts(s, 4)
    assert len(before) >= 4, before
    flushed = await wait_metric(s, "skyfence_state_writes_total", 1)
    assert flushed >= 1, "the worker never flushed its state"
    in_redis = len(await stream_entries(s))
    w1.stop(signal.SIGKILL)
    killed = time.monotonic()
    out = finish(replay)  # the rest of the leg waits in Kafka while no worker runs
    assert in_redis < len(expected) - 3, f"the leg was over before the kill ({in_redis} alerts)"
    w2 = start_worker(name="w2", settings_=s)
    failover_s = _failover_s(s, killed)  # the failover bound the README states
    _rest_of_the_recordings(s)
    delivered = await redis_alerts(s, expect=len(expected), timeout=120)
    counts = compare(expected, delivered)
    report(f"Worker SIGKILL + restart ({store})", f"SIGKILL worker after {in_redis} alert(s) in Redis and "
           f"{flushed:.0f} state write(s) (DAL1812 inside Mexico), new worker on the same data directory "
           "recovers the state table", {**counts, "replay": out.strip()[-200:],
                                        "w2_positions_in": await metric(s, "skyfence_positions_in_total"),
                                        "kill_to_ready_s": round(failover_s, 1)})
    assert w2.proc.poll() is None
    if store == "rocksdb://":
        _rocksdb_reopened_cleanly(w2.log_text())
    assert_exactly_expected(counts)


async def test_both_workers_sigkilled_at_once_on_rocksdb(settings: Settings, start_worker, expected) -> None:
    """Two workers share the partitions, both die at the same instant, both come back on their directories."""
    s = settings.replace(alert_policy="all", store="rocksdb://")
    s2 = s.replace(web_port=free_port(), data_dir=s.data_dir + "-w2")
    w1 = start_worker(name="w1", settings_=s)
    w2 = start_worker(name="w2", settings_=s2)
    replay = replay_bg(s, TRACE, "trace", speed=PACED, t_to=LEG_END)
    before = await wait_alerts(s, 4)
    assert len(before) >= 4, before
    for w in (w1, w2):
        w.proc.send_signal(signal.SIGKILL)
    codes = [w.stop(signal.SIGKILL) for w in (w1, w2)]
    killed = time.monotonic()
    out = finish(replay)
    w1b = start_worker(name="w1b", settings_=s)
    w2b = start_worker(name="w2b", settings_=s2)
    failover_s = _failover_s(s, killed)  # both dead members leave the group after the session timeout
    _rest_of_the_recordings(s)
    delivered = await redis_alerts(s, expect=len(expected), timeout=120)
    counts = compare(expected, delivered)
    report("Both workers SIGKILL at once (rocksdb://)", f"SIGKILL both workers (exit {codes}) after {len(before)} "
           "alert(s) in Redis; both restarted on their own RocksDB directories",
           {**counts, "replay": out.strip()[-200:], "kill_to_ready_s": round(failover_s, 1)})
    assert codes == [-signal.SIGKILL, -signal.SIGKILL]
    for w in (w1b, w2b):
        assert w.proc.poll() is None
        _rocksdb_reopened_cleanly(w.log_text())
    assert_exactly_expected(counts)


async def test_second_worker_joins_then_first_leaves(settings: Settings, start_worker, expected) -> None:
    s = settings.replace(alert_policy="all")
    w1 = start_worker(name="w1", settings_=s)
    skyfence(s, "replay", str(TRACE), "--format", "trace", "--speed", "max", "--to", str(TRACE_T0 + 1500))
    before = await wait_alerts(s, 4)
    alone = await _assigned(s)  # every partition the app consumes, owned by w1 alone
    # joins (own web port): partitions are split between the two
    s2 = s.replace(web_port=free_port())
    w2 = start_worker(name="w2", settings_=s2)
    replay = replay_bg(s, TRACE, "trace", speed="200", t_from=TRACE_T0 + 1500, t_to=LEG_END)
    # the first rebalance is done once both workers own partitions
    assert await _assigned(s2) > 0
    w1.stop(signal.SIGTERM)  # leaves mid-replay: every partition moves to w2
    assert await _assigned(s2, at_least=alone) >= alone
    out = finish(replay)
    _rest_of_the_recordings(s)
    delivered = await redis_alerts(s, expect=len(expected), timeout=120)
    counts = compare(expected, delivered)
    # The moved aircraft's state was in w2's table before w2's next alert: that alert continues
    # the open episode (same alert_id, next seq) instead of starting a new one.
    episode = [a for a in delivered if a["alert_id"] == before[0]["alert_id"]]
    after_move = [a for a in episode if a["event_id"] not in {b["event_id"] for b in before}]
    assert after_move, "no alert of DAL1812's episode after the move"
    assert [a["seq"] for a in episode] == list(range(len(episode))), episode
    assert await metric(s2, "skyfence_alerts_total") >= len(after_move)
    report("Second worker joins, first leaves", f"w2 joined after {len(before)} alert(s); w1 stopped (SIGTERM) "
           "once w2 owned partitions, during the paced rest of the leg", {**counts, "replay": out.strip()[-200:]})
    assert w2.proc.poll() is None
    assert_exactly_expected(counts)


async def _assigned(settings: Settings, at_least: int = 1, timeout: float = 90.0) -> int:
    """Partitions a worker owns, from its /health/ready, once it owns at least ``at_least``."""

    async def owned() -> int:
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{settings.web_port}/health/ready") as r:
                    return int((await r.json()).get("assigned_partitions", 0))
        except (aiohttp.ClientError, ValueError):  # not serving yet
            return 0

    return await poll(owned, lambda n: n >= at_least, timeout)


async def test_slow_subscriber_blocks_nobody_and_resumes(settings: Settings, expected) -> None:
    """A group member that hangs mid-alert keeps its unacknowledged alerts; others go on."""
    trace_alerts = [a for a in expected if a["icao24"] == "ac671b"]
    later = [a for a in expected if a["icao24"] != "ac671b"]
    sink = RedisAlertSink(redis_client(settings), settings)
    assert await sink.write(trace_alerts) == len(trace_alerts)

    handled_by_slow: list[str] = []
    stuck = asyncio.Event()

    async def slow_member() -> None:
        async with AlertSubscriber(settings, group="desk", consumer="slow") as sub:
            async for _eid, alert in sub.alerts(follow=True):
                handled_by_slow.append(alert["event_id"])
                if len(handled_by_slow) == 3:
                    stuck.set()
                    await asyncio.Event().wait()  # hangs inside the handler: never acknowledges

    task = asyncio.create_task(slow_member())
    await asyncio.wait_for(stuck.wait(), 10)

    # new alerts arrive while "slow" hangs: its group-mate and another group get them
    assert await sink.write(later) == len(later)
    fast: list[str] = []
    async with AlertSubscriber(settings, group="desk", consumer="fast") as sub:
        async for _eid, alert in sub.alerts(follow=False):
            fast.append(alert["event_id"])
    archive: list[str] = []
    async with AlertSubscriber(settings, group="archive", consumer="a1") as sub:
        async for _eid, alert in sub.alerts(follow=False):
            archive.append(alert["event_id"])
    client = redis_client(settings)
    pending_while_stuck = (await client.xpending(settings.redis_key("alerts"), "desk"))["pending"]

    task.cancel()  # the slow member is stopped, then restarted under the same name
    with pytest.raises(asyncio.CancelledError):
        await task
    resumed: list[str] = []
    async with AlertSubscriber(settings, group="desk", consumer="slow") as sub:
        async for _eid, alert in sub.alerts(follow=False):
            resumed.append(alert["event_id"])
    pending_after = (await client.xpending(settings.redis_key("alerts"), "desk"))["pending"]
    await client.aclose()

    all_ids = [a["event_id"] for a in expected]
    acked_by_slow = handled_by_slow[:2]
    counts = {"expected": len(all_ids), "slow_handled": len(handled_by_slow), "fast": len(fast),
              "archive_group": len(archive), "pending_while_stuck": pending_while_stuck,
              "slow_resumed": len(resumed), "pending_after": pending_after}
    report("Slow subscriber", "a consumer-group member hangs on its 3rd alert without acknowledging, "
           "is cancelled and restarted under the same name", counts)
    assert fast == [a["event_id"] for a in later], "the other member was blocked"
    assert sorted(archive) == sorted(all_ids), "another group must see every alert"
    assert pending_while_stuck == len(trace_alerts) - 2
    # it resumes exactly at the alert it never acknowledged
    assert resumed[0] == handled_by_slow[2]
    assert sorted(acked_by_slow + resumed + fast) == sorted(all_ids)
    assert pending_after == 0
