"""The alert subscriber (streams.sinks.subscriber.AlertSubscriber, behind ``skyfence alerts``)
on the real Redis: alerts written by RedisAlertSink as the pipeline writes them, read back
as consumer-group members.

What its docstring promises: a member re-reads what it was given but never acknowledged,
then new alerts; it acknowledges an alert only after the caller handled it; members of one
group share the alerts; separate groups each get every alert. Also what the API offers
besides: ``follow``, ``ack=False`` with ``ack()``, ``start="$"``, and what it does with a
deleted entry, an entry that is not JSON and a Redis that does not answer. Every wait here
is on Redis state (the group's pending list, a client blocked in XREADGROUP), never a sleep.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from streams.settings import Secret, Settings, SettingsError
from streams.sinks.redis_sink import RedisAlertSink, redis_client
from streams.sinks.subscriber import READ_COUNT, AlertSubscriber
from tests.polling import poll

T = TypeVar("T")


def _alert(i: int) -> dict[str, object]:
    """One zone alert message as the engine emits it: identity (alert_id, seq) = event_id."""
    return {
        "schema": "alert.v1",
        "alert_id": f"a{i:04d}",
        "seq": 0,
        "event_id": f"a{i:04d}:0",
        "icao24": f"ae{i:04x}",
        "transition": "entered",
        "zone": "sovereign",
        "severity": "high",
        "event_time": 1738700000.0 + i,
    }


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    c = redis_client(settings)
    yield c
    await c.aclose()


@pytest.fixture
async def write(settings: Settings, client: aioredis.Redis) -> Callable[[range], Awaitable[list[str]]]:
    """Write alerts ``i`` in ``ids`` through the pipeline's sink; returns their event_ids."""
    sink = RedisAlertSink(client, settings)

    async def write_(ids: range) -> list[str]:
        batch = [_alert(i) for i in ids]
        assert await sink.write(batch) == len(batch)
        return [str(a["event_id"]) for a in batch]

    return write_


async def _read(settings: Settings, group: str, consumer: str, **kw: Any) -> list[str]:
    """One member's run with follow=False: the event_ids it was handed, in order."""
    async with AlertSubscriber(settings, group=group, consumer=consumer) as sub:
        return [alert["event_id"] async for _eid, alert in sub.alerts(**kw)]


async def _pending(client: aioredis.Redis, settings: Settings, group: str) -> list[str]:
    """Entry ids delivered to the group's members and not yet acknowledged."""
    rows = await client.xpending_range(settings.redis_key("alerts"), group, min="-", max="+", count=10_000)
    return [r["message_id"].decode() for r in rows]


class HandlerFailed(Exception):
    """The caller's handler failing mid-alert."""


@pytest.mark.integration
async def test_reads_every_alert_in_order_acknowledges_each_and_ends_at_the_end(
        settings: Settings, client: aioredis.Redis, write) -> None:
    written = await write(range(5))
    entries = await client.xrange(settings.redis_key("alerts"))
    async with AlertSubscriber(settings, group="desk") as sub:  # consumer defaults to the host name
        got = [(eid, alert) async for eid, alert in sub.alerts()]  # follow=False: returns at the stream's end
    assert [a["event_id"] for _eid, a in got] == written
    assert [eid for eid, _a in got] == [e[0].decode() for e in entries], "yields the stream entry ids"
    assert got[0][1] == _alert(0), "the alert document comes back as written"
    assert await _pending(client, settings, "desk") == []
    consumers = await client.xinfo_consumers(settings.redis_key("alerts"), "desk")
    assert [c["name"] for c in consumers] == [socket.gethostname().encode()]
    # reading does not consume the stream for anyone else, and a second run has nothing new
    assert await client.xlen(settings.redis_key("alerts")) == 5
    assert await _read(settings, "desk", socket.gethostname()) == []


@pytest.mark.integration
async def test_acknowledges_an_alert_only_after_the_loop_body_finishes(
        settings: Settings, client: aioredis.Redis, write) -> None:
    await write(range(4))
    seen: list[str] = []
    async with AlertSubscriber(settings, group="desk", consumer="d1") as sub:
        async for eid, _ in sub.alerts():
            pending = await _pending(client, settings, "desk")
            # the one in hand is unacknowledged; every earlier one was acknowledged when its body finished
            assert eid in pending and not set(seen) & set(pending)
            seen.append(eid)
    assert len(seen) == 4
    assert await _pending(client, settings, "desk") == []


@pytest.mark.integration
async def test_a_restarted_member_rereads_what_it_never_acknowledged_then_new_alerts(
        settings: Settings, client: aioredis.Redis, write) -> None:
    written = await write(range(6))
    handled: list[str] = []
    with pytest.raises(HandlerFailed):
        async with AlertSubscriber(settings, group="desk", consumer="d1") as sub:
            async for _eid, alert in sub.alerts():
                if len(handled) == 2:
                    raise HandlerFailed  # the 3rd alert's handler fails: it must not be acknowledged
                handled.append(alert["event_id"])
    assert handled == written[:2]
    # the member was handed all 6 in one read; the 2 it handled are acknowledged, the rest wait for it
    assert len(await _pending(client, settings, "desk")) == 4

    new = await write(range(6, 9))
    resumed = await _read(settings, "desk", "d1")
    assert resumed == written[2:] + new, "first its unacknowledged alerts, from the failed one, then new ones"
    assert await _pending(client, settings, "desk") == []


@pytest.mark.integration
async def test_the_alert_a_caller_stops_on_is_delivered_again(
        settings: Settings, client: aioredis.Redis, write) -> None:
    """At least once: the subscriber acknowledges an alert when asked for the next one, so it
    cannot tell a ``break`` after handling from a crash while handling; the alert a loop left
    on comes first on the next run (a caller that handled it acks it itself with ``ack()``)."""
    written = await write(range(3))
    async with AlertSubscriber(settings, group="desk", consumer="d1") as sub:
        async for eid, alert in sub.alerts():
            if alert["event_id"] == written[1]:
                stopped_on = eid
                break
    assert (await _pending(client, settings, "desk"))[0] == stopped_on
    assert await _read(settings, "desk", "d1") == written[1:]

    again = await write(range(3, 5))
    async with AlertSubscriber(settings, group="desk", consumer="d1") as sub:
        async for eid, _ in sub.alerts():
            await sub.ack(eid)
            break
    assert await _read(settings, "desk", "d1") == again[1:], "an alert the caller acked is not redelivered"


@pytest.mark.integration
async def test_without_ack_alerts_stay_pending_until_the_caller_acks_them(
        settings: Settings, client: aioredis.Redis, write) -> None:
    written = await write(range(4))
    async with AlertSubscriber(settings, group="desk", consumer="d1") as sub:
        got = [(eid, alert["event_id"]) async for eid, alert in sub.alerts(ack=False)]
        assert [e for _i, e in got] == written
        assert await _pending(client, settings, "desk") == [i for i, _e in got]
        for eid, _e in got[:2]:
            await sub.ack(eid)
    assert await _pending(client, settings, "desk") == [i for i, _e in got[2:]]

    new = await write(range(4, 5))
    # restarted without acks: the unacknowledged ones once, then the new one, still all pending
    assert await _read(settings, "desk", "d1", ack=False) == written[2:] + new
    assert len(await _pending(client, settings, "desk")) == 3
    # the same member with acks settles them
    assert await _read(settings, "desk", "d1") == written[2:] + new
    assert await _pending(client, settings, "desk") == []


@pytest.mark.integration
async def test_without_ack_a_restarted_member_rereads_all_it_was_given(
        settings: Settings, client: aioredis.Redis, write) -> None:
    written = await write(range(2 * READ_COUNT + 50))
    assert await _read(settings, "desk", "d1", ack=False) == written
    assert len(await _pending(client, settings, "desk")) == len(written)
    assert await _read(settings, "desk", "d1", ack=False) == written


@pytest.mark.integration
async def test_a_restarted_member_rereads_more_than_one_read_of_pending_alerts(
        settings: Settings, client: aioredis.Redis, write) -> None:
    """More unacknowledged alerts than one XREADGROUP returns: all of them, in order, then new ones."""
    written = await write(range(2 * READ_COUNT + 50))
    assert await _read(settings, "desk", "d1", ack=False) == written
    new = await write(range(len(written), len(written) + 3))
    assert await _read(settings, "desk", "d1") == written + new
    assert await _pending(client, settings, "desk") == []


@pytest.mark.integration
async def test_members_of_one_group_share_the_alerts(settings: Settings, client: aioredis.Redis, write) -> None:
    first = await write(range(4))
    assert await _read(settings, "desk", "d1") == first
    second = await write(range(4, 7))
    assert await _read(settings, "desk", "d2") == second, "d2 gets only what no member had"
    assert await _read(settings, "desk", "d1") == []
    assert await _read(settings, "desk", "d2") == []


@pytest.mark.integration
async def test_following_members_of_one_group_each_get_a_share_exactly_once(
        settings: Settings, client: aioredis.Redis, write) -> None:
    """Two members follow the group while alerts arrive one by one. Each member stops on a "stop"
    alert (acknowledged by hand) rather than by cancelling its task: on Python 3.11 a cancel that
    lands while redis-py sends a command can be swallowed by asyncio.wait_for (CPython gh-86296),
    leaving the member following."""
    got: dict[str, list[str]] = {"d1": [], "d2": []}
    stopped: list[str] = []

    async def member(name: str) -> None:
        async with AlertSubscriber(settings, group="desk", consumer=name) as sub:
            async for eid, alert in sub.alerts(follow=True):
                if alert["transition"] == "stop":
                    await sub.ack(eid)
                    stopped.append(name)
                    break
                got[name].append(alert["event_id"])

    async def members_waiting() -> int:
        try:
            return len(await client.xinfo_consumers(settings.redis_key("alerts"), "desk"))
        except redis.exceptions.ResponseError:  # no stream or group yet
            return 0

    async def handed_out() -> int:
        return len(got["d1"]) + len(got["d2"])

    async def members_stopped() -> int:
        return len(stopped)

    sink = RedisAlertSink(client, settings)
    tasks = [asyncio.create_task(member(n)) for n in got]
    try:
        # both members joined (each has read once) before the alerts arrive one by one
        assert await poll(members_waiting, lambda n: n == 2, 10.0, every=0.05) == 2
        written = [eid for i in range(40) for eid in await write(range(i, i + 1))]
        assert await poll(handed_out, lambda n: n >= len(written), 10.0, every=0.05) == len(written)
        for k in (1, 2):  # one stop alert at a time: it goes to a member still reading
            assert await sink.write([{**_alert(1000 + k), "transition": "stop"}]) == 1
            assert await poll(members_stopped, lambda n, k=k: n == k, 10.0, every=0.05) == k
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks, timeout=5)
    assert sorted(stopped) == ["d1", "d2"]
    counts = Counter(got["d1"] + got["d2"])
    assert sorted(counts) == sorted(written) and set(counts.values()) == {1}, "each alert to exactly one member"
    assert await _pending(client, settings, "desk") == []


@pytest.mark.integration
async def test_separate_groups_each_get_every_alert(settings: Settings, client: aioredis.Redis, write) -> None:
    written = await write(range(5))
    assert await _read(settings, "desk", "d1") == written
    assert await _read(settings, "archive", "a1") == written, "another group is not affected by desk's reads"
    more = await write(range(5, 7))
    assert await _read(settings, "audit", "x1") == written + more
    assert await _read(settings, "desk", "d2") == more
    assert await _read(settings, "archive", "a1") == more
    for group in ("desk", "archive", "audit"):
        assert await _pending(client, settings, group) == []


@pytest.mark.integration
async def test_follow_waits_for_new_alerts(settings: Settings, client: aioredis.Redis, write) -> None:
    written = await write(range(2))
    name = f"follow-{settings.redis_prefix}"
    own = aioredis.Redis.from_url(settings.redis_url, client_name=name)
    async with AlertSubscriber(settings, group="desk", consumer="d1", client=own) as sub:
        it = sub.alerts(follow=True)
        nxt: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
        try:
            assert [(await asyncio.wait_for(anext(it), 10))[1]["event_id"] for _ in written] == written
            nxt = asyncio.create_task(anext(it))

            async def blocked() -> bool:
                return any(c.get("name") == name and c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "")
                           for c in await client.client_list())

            assert await poll(blocked, bool, 10.0, every=0.05), "the follower is blocked in XREADGROUP, waiting"
            assert not nxt.done()
            new = await write(range(2, 3))
            _eid, alert = await asyncio.wait_for(nxt, 10)
            assert alert["event_id"] == new[0]
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
            await it.aclose()
    assert await own.ping(), "a client passed in stays the caller's: not closed on exit"
    await own.aclose()


@pytest.mark.integration
async def test_start_dollar_makes_a_new_group_see_only_new_alerts(
        settings: Settings, client: aioredis.Redis, write) -> None:
    await write(range(3))
    async with AlertSubscriber(settings, group="live", consumer="l1", start="$") as sub:
        assert [a async for a in sub.alerts()] == []
        new = await write(range(3, 5))
        assert [a["event_id"] async for _eid, a in sub.alerts()] == new
    # the group exists now: opening it again (with any start) neither fails nor rewinds it
    async with AlertSubscriber(settings, group="live", consumer="l1", start="0") as sub:
        assert [a async for a in sub.alerts()] == []


@pytest.mark.integration
async def test_a_deleted_entry_still_pending_is_settled_not_delivered(
        settings: Settings, client: aioredis.Redis, write) -> None:
    """An unacknowledged entry trimmed or deleted from the stream comes back without fields:
    nothing to deliver, so it is acknowledged and skipped."""
    written = await write(range(3))
    async with AlertSubscriber(settings, group="desk", consumer="d1") as sub:
        got = [eid async for eid, _a in sub.alerts(ack=False)]
    assert await client.xdel(settings.redis_key("alerts"), got[1]) == 1
    assert await _read(settings, "desk", "d1") == [written[0], written[2]]
    assert await _pending(client, settings, "desk") == []


@pytest.mark.integration
async def test_an_entry_that_is_not_json_is_logged_settled_and_the_rest_delivered(
        settings: Settings, client: aioredis.Redis, write, caplog: pytest.LogCaptureFixture) -> None:
    """Only the sink writes the stream, always valid JSON; an entry some other writer left there
    that does not parse is logged with its id and acknowledged, so it stops neither this member
    nor any restart; the alerts around it are delivered."""
    before = await write(range(1))
    bad = (await client.xadd(settings.redis_key("alerts"), {"alert": b"{not json", "alert_id": "bad"})).decode()
    after = await write(range(1, 2))
    assert await _read(settings, "desk", "d1") == before + after
    assert f"entry {bad} is not an alert" in caplog.text
    assert await _pending(client, settings, "desk") == []


@pytest.mark.unit
async def test_unreachable_redis_is_one_line_naming_the_url_never_the_password(base_settings: Settings) -> None:
    from streams.stack import free_port

    port = free_port()
    down = base_settings.replace(redis_url=f"redis://skyfence:hunter2-url@127.0.0.1:{port}/0",
                            redis_username="skyfence", redis_password=Secret("hunter2-setting"))
    with pytest.raises(SettingsError) as err:
        async with AlertSubscriber(down, group="desk", consumer="d1"):
            pass
    msg = str(err.value)
    assert len(msg.splitlines()) == 1
    assert f"cannot reach Redis at SKYFENCE_REDIS_URL=redis://skyfence:********@127.0.0.1:{port}/0" in msg
    assert "hunter2" not in msg


@pytest.mark.integration
async def test_skyfence_alerts_limit_shows_each_alert_once_across_runs(settings: Settings, write) -> None:
    """``skyfence alerts --limit 1`` settles the alert it showed before it stops: the next run shows
    the next alert, not the same one again."""
    import subprocess
    import sys

    import orjson

    from streams.settings import child_env
    from tests.paths import REPO_ROOT

    written = await write(range(3))
    env = child_env()
    env.update(settings.to_env())
    shown = []
    for _run in range(3):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams.cli", "alerts", "--group", "desk", "--limit", "1", "--json",
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        shown += [orjson.loads(line)["event_id"] for line in out.splitlines()]
    assert shown == written
