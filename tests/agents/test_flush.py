"""StateFlusher: records stay unacknowledged until the state they changed is written and delivered.

Events here are minimal stand-ins with Faust's reference counting (``Message.incref`` /
``Event.ack``, final when the count reaches zero), and the adapter is a dict of dirty
aircraft, so the ordering can be checked without a broker; the worker tests (tests/faults,
tests/e2e) run the same code against a real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pytest

from streams.agents.flush import StateFlusher

pytestmark = pytest.mark.unit


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset, self.refcount, self.acked = partition, offset, 1, False
        self.value: bytes | None = b"position-batch record"

    def incref(self) -> None:
        self.refcount += 1


class Event:
    def __init__(self, partition: int, offset: int, log: list[str]) -> None:
        self.message = Message(partition, offset)
        self.value = self.message.value
        self.log = log

    def ack(self) -> bool:
        self.message.refcount -= 1
        if self.message.refcount == 0:
            self.message.acked = True
            self.log.append(f"commit {self.message.partition}:{self.message.offset}")
            return True
        return False


class Adapter:
    """Dirty aircraft and the states the engine holds for them; partition = first hex digit % 4."""

    def __init__(self, log: list[str], aircraft: Iterable[str] = ()) -> None:
        self.log = log
        self.dirty: set[str] = set(aircraft)
        self.table: dict[bytes, bytes] = {}
        self.scopes_seen: list[Any] = []

    def dirty_aircraft(self) -> list[str]:
        return sorted(self.dirty)

    def mark_dirty(self, icaos: Iterable[str]) -> None:
        self.dirty.update(icaos)

    def flush_state(self, icaos: Iterable[str], in_partition: Any) -> list[tuple[int, bytes, bytes | None]]:
        self.scopes_seen.append(in_partition)
        writes: list[tuple[int, bytes, bytes | None]] = []
        for icao in icaos:
            if icao in self.dirty and in_partition(int(icao[0], 16) % 4) is not None:
                self.table[icao.encode()] = b"state"
                self.dirty.discard(icao)
                writes.append((int(icao[0], 16) % 4, icao.encode(), b"state"))
        if writes:
            self.log.append(f"write {len(writes)}")
        return writes


@dataclass
class Meta:
    offset: int


@dataclass
class Delivery:
    partition: int
    count: int
    future: asyncio.Future[Any]

    def delivered(self) -> bool:
        return self.future.done() and self.future.exception() is None

    def last_offset(self) -> int:
        return int(self.future.result().offset) + self.count - 1


class Changelog:
    """A changelog topic: records get offsets per partition; a send or a delivery can fail."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.offsets: dict[int, int] = {}
        self.fail_sends = 0
        self.fail_deliveries = 0
        self.records: list[tuple[int, bytes, bytes | None]] = []

    async def send(self, writes: list[tuple[int, bytes, bytes | None]]) -> list[Delivery]:
        if self.fail_sends:
            self.fail_sends -= 1
            raise RuntimeError("no partition metadata")
        out = []
        for p in sorted({p for p, _k, _v in writes}):
            mine = [w for w in writes if w[0] == p]
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            if self.fail_deliveries:
                self.fail_deliveries -= 1
                fut.set_exception(RuntimeError("delivery timed out"))
            else:
                fut.set_result(Meta(self.offsets.get(p, 0)))
                self.offsets[p] = self.offsets.get(p, 0) + len(mine)
                self.records += mine
            out.append(Delivery(p, len(mine), fut))
        self.log.append(f"send {len(writes)}")
        return out


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def by_partition(evs: Any) -> Any:
    parts = {ev.message.partition for ev in evs}
    return lambda p: nullcontext() if p in parts else None


def make(log: list[str], adapter: Adapter, chunk: int = 100) -> tuple[StateFlusher, Clock, list[Event], Changelog,
                                                                  dict[int, int]]:
    clock = Clock()
    acked: list[Event] = []
    changelog = Changelog(log)
    persisted: dict[int, int] = {}

    async def producer_flush() -> None:
        log.append("delivered")

    f = StateFlusher(adapter, producer_flush, acked.append, changelog.send, persisted.__setitem__, interval_s=1.0,
                     chunk=chunk, pause_s=0.0, clock=clock, scopes=by_partition)
    return f, clock, acked, changelog, persisted


async def test_held_records_are_committed_only_after_state_is_written_and_delivered() -> None:
    log: list[str] = []
    adapter = Adapter(log, ["0a0001", "1a0002", "1a0003"])
    f, clock, acked, changelog, persisted = make(log, adapter)
    evs = [Event(0, 10, log), Event(1, 4, log)]
    f.hold(evs)
    assert all(ev.value is None and ev.message.value is None for ev in evs)  # only the ack is owed
    for ev in evs:  # Faust's take_events acks its own reference after the agent body
        assert ev.ack() is False
    assert not any(ev.message.acked for ev in evs) and f.held == 2
    assert not f.due()
    clock.t = 1.0
    assert f.due()
    assert await f.flush() == 3
    assert log == ["write 3", "send 3", "delivered", "commit 0:10", "commit 1:4"]
    assert acked == evs and f.held == 0 and not f.due()
    assert adapter.dirty == set() and len(changelog.records) == 3
    assert persisted == {0: 0, 1: 1}  # the newest changelog offset of each partition written
    assert f.flushes == 1 and f.written == 3


async def test_a_flush_writes_in_chunks_and_lets_batches_run_between_them() -> None:
    log: list[str] = []
    adapter = Adapter(log, [f"0{n:05x}" for n in range(7)])
    f, _clock, _acked, _changelog, persisted = make(log, adapter, chunk=3)
    first = Event(0, 1, log)
    f.hold([first])
    first.ack()  # Faust's own reference, released after the agent body
    batch_ran_inside_the_flush: list[bool] = []

    async def batch() -> None:
        await asyncio.sleep(0)  # the flush has taken its first chunk by now
        async with f.lock:  # what the agent does for a batch: hold its records, change aircraft
            second = Event(0, 2, log)
            f.hold([second])
            second.ack()
            adapter.dirty.add("0fffff")
            batch_ran_inside_the_flush.append(f.flushes == 0)

    written, _ = await asyncio.gather(f.flush(), batch())
    assert written == 7 and batch_ran_inside_the_flush == [True]
    assert [x for x in log if x.startswith("write")] == ["write 3", "write 3", "write 1"]
    # the batch's record and aircraft belong to the next flush, not this one
    assert "commit 0:1" in log and "commit 0:2" not in log and f.held == 1
    assert adapter.dirty == {"0fffff"} and persisted == {0: 6}


@pytest.mark.parametrize(("write_s", "order"), [
    (0.2, ["write 3", "write 3", "write 1", "batch"]),  # 0.6 s of writes: one turn (the 3rd chunk starts at 0.4)
    (0.3, ["write 3", "write 3", "batch", "write 1"]),  # the 2nd chunk ends at 0.6 s: the batch goes next
])
async def test_a_flush_keeps_the_lock_for_a_share_of_the_last_batchs_turn(write_s: float, order: list[str]) -> None:
    """A catch-up batch holds the lock ~0.5 s: a flush that took one chunk per turn would wait
    one batch per chunk while the records of every batch meanwhile stayed held. With the last
    batch at 1 s, a flush writes chunks for up to 0.5 s a turn, then lets the next batch in."""
    log: list[str] = []
    adapter = Adapter(log, [f"0{n:05x}" for n in range(7)])
    f, clock, _acked, _changelog, _persisted = make(log, adapter, chunk=3)
    flush_state = adapter.flush_state

    def timed_flush_state(icaos: Iterable[str], in_partition: Any) -> list[tuple[int, bytes, bytes | None]]:
        clock.t += write_s  # each chunk "takes" write_s
        return flush_state(icaos, in_partition)

    adapter.flush_state = timed_flush_state  # type: ignore[method-assign]
    f.hold([Event(0, 1, log)])
    f.note_batch(1.0)

    async def batch() -> None:  # waits for the lock from the flush's first pause on
        async with f.lock:
            log.append("batch")

    await asyncio.gather(f.flush(), batch())
    assert [x for x in log if x.startswith(("write", "batch"))] == order


async def test_a_failed_send_is_retried_and_nothing_is_acked_before_it_succeeds() -> None:
    log: list[str] = []
    adapter = Adapter(log, ["0a0001"])
    f, _clock, _acked, changelog, _ = make(log, adapter)
    changelog.fail_sends = 2
    ev = Event(0, 1, log)
    f.hold([ev])
    ev.ack()
    await f.flush()
    assert log == ["write 1", "write 1", "write 1", "send 1", "delivered", "commit 0:1"]
    assert len(adapter.scopes_seen) == 3


async def test_an_undelivered_changelog_keeps_the_records_held_and_the_aircraft_dirty() -> None:
    log: list[str] = []
    adapter = Adapter(log, ["0a0001", "1a0002"])
    f, _clock, acked, changelog, persisted = make(log, adapter)
    changelog.fail_deliveries = 1
    evs = [Event(0, 1, log), Event(1, 1, log)]
    f.hold(evs)
    for ev in evs:
        ev.ack()
    with pytest.raises(RuntimeError, match="not delivered"):
        await f.flush()
    assert acked == [] and not any(ev.message.acked for ev in evs)
    assert f.held == 2 and f.due()  # at once, not after another interval
    assert adapter.dirty == {"0a0001", "1a0002"} and persisted == {}
    assert await f.flush() == 2
    assert acked == evs and adapter.dirty == set()


async def test_flush_inside_the_agent_body_still_waits_for_fausts_own_ack() -> None:
    log: list[str] = []
    f, _clock, acked, _changelog, _ = make(log, Adapter(log, ["2a0001"]))
    ev = Event(2, 7, log)
    f.hold([ev])
    await f.flush()  # before take_events released its reference
    assert acked == [] and not ev.message.acked
    assert ev.ack() is True and ev.message.acked


async def test_writes_use_the_newest_event_of_each_partition_even_after_its_flush() -> None:
    log: list[str] = []
    adapter = Adapter(log, ["0a0001"])
    f, _clock, _, _changelog, _ = make(log, adapter)
    f.hold([Event(0, 1, log), Event(3, 1, log)])
    await f.flush()
    adapter.dirty.add("1a0001")
    f.hold([Event(1, 2, log)])
    await f.flush()
    scope = adapter.scopes_seen[-1]
    assert [p for p in range(5) if scope(p) is not None] == [0, 1, 3]  # 0 and 3 from the earlier batch
    f.forget({3})
    adapter.dirty.add("3a0001")
    f.hold([Event(0, 3, log)])
    await f.flush()
    scope = adapter.scopes_seen[-1]
    assert [p for p in range(5) if scope(p) is not None] == [0, 1]
    assert adapter.dirty == {"3a0001"}  # no event of its partition: it waits


async def test_a_rebalance_flushes_at_once_and_nothing_held_means_nothing_due() -> None:
    log: list[str] = []
    f, clock, _, _changelog, _ = make(log, Adapter(log))
    assert not f.due(now=True)  # nothing held
    f.hold([Event(0, 1, log)])
    clock.t = 0.5
    assert not f.due() and f.due(now=True)


def test_rocksdb_state_writes_go_in_one_batch_per_partition_and_read_back(tmp_path, make_engine, dal1812,
                                                                          boe004) -> None:
    """The worker's flush into Faust's RocksDB store (``rocksdb_write_many``) writes what the
    item-by-item path writes, and a new stream restores every aircraft from it."""
    import faust

    from streams.agents.flush import rocksdb_write_many
    from streams.core.stream import TrackStream
    from tests.core.test_stream import PARTITIONS, batches, run

    app = faust.App("t-flush-rocksdb", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=str(tmp_path))
    store: Any = app.Table("aircraft-state", default=None, partitions=PARTITIONS, key_type=bytes,
                           value_type=bytes, use_partitioner=True).data
    write_many = rocksdb_write_many(store)
    assert write_many is not None
    assert rocksdb_write_many(faust.App("t-mem", broker="kafka://127.0.0.1:9").Table("x").data) is None  # memory://

    stream = batches(sorted(dal1812 + boe004, key=lambda p: p.event_time))
    track = TrackStream(make_engine(), store, PARTITIONS, write_many)
    reference: dict[bytes, bytes] = {}
    ref = TrackStream(make_engine(), reference, PARTITIONS)
    run(track, stream[: len(stream) // 2])
    run(ref, stream[: len(stream) // 2])
    writes = track.flush_state()
    assert writes == ref.flush_state() and track.dirty == 0
    assert len(writes) == len(reference) >= 2
    for partition, key, value in writes:
        assert store._db_for_partition(partition).get(key) == value == reference[key]
        assert store.get(key) == value  # found through the key index, as the worker's restore reads it

    restored = TrackStream(make_engine(), store, PARTITIONS, write_many)
    rest = stream[len(stream) // 2 :]
    assert run(restored, rest) == run(track, rest)  # every aircraft came back from the batch-written store
