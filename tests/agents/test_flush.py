"""StateFlusher: records stay unacknowledged until the state they changed is written and delivered.

Events here are minimal stand-ins with Faust's reference counting (``Message.incref`` /
``Event.ack``, final when the count reaches zero), so the ordering can be checked without a
broker; the worker tests (tests/faults, tests/e2e) run the same code against a real one.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from streams.agents.flush import StateFlusher

pytestmark = pytest.mark.unit


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset, self.refcount, self.acked = partition, offset, 1, False

    def incref(self) -> None:
        self.refcount += 1


class Event:
    def __init__(self, partition: int, offset: int, log: list[str]) -> None:
        self.message = Message(partition, offset)
        self.log = log

    def ack(self) -> bool:
        self.message.refcount -= 1
        if self.message.refcount == 0:
            self.message.acked = True
            self.log.append(f"commit {self.message.partition}:{self.message.offset}")
            return True
        return False


class Adapter:
    def __init__(self, log: list[str], fail: int = 0) -> None:
        self.log, self.fail, self.scopes_seen = log, fail, []

    def flush_state(self, in_partition: Any) -> int:
        self.scopes_seen.append(in_partition)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("no partition metadata")
        self.log.append("write state")
        return 3


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def by_partition(evs: Any) -> Any:
    parts = {ev.message.partition for ev in evs}
    return lambda p: nullcontext() if p in parts else None


def make(log: list[str], **kw: Any) -> tuple[StateFlusher, Clock, list[Event]]:
    clock = Clock()
    acked: list[Event] = []

    async def producer_flush() -> None:
        log.append("changelog delivered")

    f = StateFlusher(kw.pop("adapter", Adapter(log)), producer_flush, acked.append, interval_s=1.0, clock=clock,
                     scopes=by_partition)
    return f, clock, acked


async def test_held_records_are_committed_only_after_state_is_written_and_delivered() -> None:
    log: list[str] = []
    f, clock, acked = make(log)
    evs = [Event(0, 10, log), Event(1, 4, log)]
    f.hold(evs)
    for ev in evs:  # Faust's take_events acks its own reference after the agent body
        assert ev.ack() is False
    assert not any(ev.message.acked for ev in evs) and f.held == 2
    assert not f.due()
    clock.t = 1.0
    assert f.due()
    async with f.lock:
        step = await f.write()
    assert log == ["write state"] and f.held == 0 and not f.due()
    f.hold([Event(0, 11, log)])  # the next batch, while the first flush is being delivered
    assert await f.deliver(step) == 3
    assert log == ["write state", "changelog delivered", "commit 0:10", "commit 1:4"]
    assert f.held == 1
    assert acked == evs and not f.due()
    assert f.flushes == 1 and f.written == 3


async def test_flush_inside_the_agent_body_still_waits_for_fausts_own_ack() -> None:
    log: list[str] = []
    f, _clock, acked = make(log)
    ev = Event(2, 7, log)
    f.hold([ev])
    await f.flush()  # before take_events released its reference (the agent flushes in its body)
    assert acked == [] and not ev.message.acked
    assert ev.ack() is True and ev.message.acked


async def test_a_failed_write_is_retried_and_nothing_is_acked_before_it_succeeds() -> None:
    log: list[str] = []
    adapter = Adapter(log, fail=2)
    f, _clock, _acked = make(log, adapter=adapter)
    ev = Event(0, 1, log)
    f.hold([ev])
    ev.ack()
    await f.flush()
    assert log == ["write state", "changelog delivered", "commit 0:1"]
    assert len(adapter.scopes_seen) == 3


async def test_writes_use_the_newest_event_of_each_partition_even_after_its_flush() -> None:
    log: list[str] = []
    adapter = Adapter(log)
    f, _clock, _ = make(log, adapter=adapter)
    f.hold([Event(0, 1, log), Event(3, 1, log)])
    await f.flush()
    f.hold([Event(1, 2, log)])
    await f.flush()
    scope = adapter.scopes_seen[-1]
    assert [p for p in range(5) if scope(p) is not None] == [0, 1, 3]  # 0 and 3 from the earlier batch
    f.forget({3})
    await f.flush()
    scope = adapter.scopes_seen[-1]
    assert [p for p in range(5) if scope(p) is not None] == [0, 1]


async def test_a_rebalance_flushes_at_once_and_nothing_held_means_nothing_due() -> None:
    log: list[str] = []
    f, clock, _ = make(log)
    assert not f.due(now=True)  # nothing held
    f.hold([Event(0, 1, log)])
    clock.t = 0.5
    assert not f.due() and f.due(now=True)
