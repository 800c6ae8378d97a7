"""When the track agent's state reaches the table, and when its input may be committed.

This module owns :class:`StateFlusher`: it holds the records of processed batches
unacknowledged (so Faust cannot commit their offsets), and in a flush writes the state of
every aircraft they changed to the table's store and its changelog topic, waits until the
producer has delivered those changelog records, and only then acknowledges the records.
It also owns the partition scopes Faust's RocksDB store needs for a write. Works on
anything shaped like a Faust event (``.message.partition``, ``.message.incref()``,
``.ack()``), so it is tested without a broker.

Changelog records are sent straight to the producer, not through ``Table.__setitem__``:
Faust queues each table write in its ProducerBuffer and drains it one record at a time
(an ``asyncio.wait_for`` per record), so 10,000 aircraft took 2-3 s to deliver and the
alerts produced meanwhile waited behind them. The records are the ones Faust would have
written (raw key, raw value, ``None`` for a deletion, partition by the key's murmur2 hash
as ``use_partitioner`` does), and the changelog offsets are recorded in the store as
Faust's own callback would, so recovery reads them exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.core.stream import WriteMany

log = logging.getLogger(__name__)

# 5 s between flushes: a flush writes each changed aircraft once (~15-25 us of CPU each,
# state export and changelog record included), so 20,000 aircraft cost ~0.1 s of CPU a
# second instead of 0.5 s at 1 s; a crash re-reads at most ~5 s of input (plus Faust's 2 s
# commit interval), which the idempotent sinks absorb. A rebalance does not wait for it.
STATE_FLUSH_S = 5.0
# 250 aircraft per chunk (~5 ms under the lock, 150-350 KB of changelog), then a 20 ms
# pause: a batch waits at most one chunk behind a flush, and the changelog reaches the
# producer at ~15 MB/s at most, so alerts are not queued behind a burst of it (10,000
# aircraft in one go held alerts back for seconds). 20,000 aircraft take ~2 s of 5.
STATE_CHUNK = 250
STATE_CHUNK_PAUSE_S = 0.02
# In a catch-up a batch holds the lock for ~0.3-0.6 s, so one chunk per turn of the lock made
# a flush of 25,000 aircraft last 100 batches (~50 s) while the records of those batches stayed
# held, ~11 MB/s of them: the world catch-up's RSS grew to 1.4-1.6 GB. A flush therefore keeps
# the lock for more chunks, up to this share of the time the last batch held it: a batch still
# waits at most half a batch behind a flush, and a live batch (a few ms) still one chunk.
STATE_HOLD_SHARE = 0.5
# While the broker restarts, the producer has no partition metadata and a changelog write
# fails; retrying for up to ~5 min rides out a restart without losing state.
WRITE_RETRIES = 60
WRITE_BACKOFF_MAX_S = 5.0

# Changelog records as (partition, key, value or None for a deletion) -> their deliveries,
# each with ``.delivered()``, ``.partition`` and ``.last_offset()`` (see kafka_io.BatchDelivery).
SendChangelog = Callable[[list[tuple[int, bytes, bytes | None]]], Awaitable[list[Any]]]


def partition_scope(evs: Iterable[Any]) -> Callable[[int], AbstractContextManager[Any] | None]:
    """Table writes for partition p under an event of p, as Faust's RocksDB store requires.

    The store files a write under the partition of the "current event", which it reads from
    the private context variable ``faust.streams._current_event``; Faust sets it only while
    an agent handles that event, and a flush writes for many partitions at once, so this
    wrapper is the one place that sets it (a Faust upgrade that renames it fails here)."""
    from faust.streams import _current_event

    by_partition = {ev.message.partition: ev for ev in evs}

    @contextmanager
    def scope(ev: Any) -> Iterator[None]:
        token = _current_event.set(weakref.ref(ev))
        try:
            yield
        finally:
            _current_event.reset(token)

    def for_partition(partition: int) -> AbstractContextManager[Any] | None:
        ev = by_partition.get(partition)
        return None if ev is None else scope(ev)

    return for_partition


def rocksdb_write_many(store: Any) -> WriteMany | None:
    """A flush's writes for one partition as one RocksDB write batch, when ``store`` is Faust's
    RocksDB store on rocksdict (None otherwise: the flush sets items one at a time).

    Faust's ``Store._set`` costs ~8-10 us a key (the current event, its key index, one put);
    a flush rewrites every changed aircraft (25,000 every 5 s on a world feed), and the write
    batch does the same work at ~2 us a key, atomically per partition. It does what ``_set``
    and Faust's own ``apply_changelog_batch`` do, through their private parts: the
    partition's database (``_db_for_partition``) and the key index reads use to find a key's
    partition (``_key_index``). A Faust upgrade that renames them fails here, at start."""
    from faust.stores import rocksdb as faust_rocksdb

    if not isinstance(store, faust_rocksdb.Store) or not store.use_rocksdict:
        return None
    db_for_partition = store._db_for_partition
    key_index = store._key_index
    write_batch = faust_rocksdb.rocksdict.WriteBatch

    def write_many(partition: int, items: list[tuple[bytes, bytes]]) -> None:
        if not items:
            return
        batch = write_batch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        db_for_partition(partition).write(batch)
        for key, _value in items:
            key_index[key] = partition

    return write_many


class StateFlusher:
    """Holds processed records until the state they changed is durable in the table.

    The agent processes a batch under :attr:`lock`, :meth:`hold`-ing its records and waiting
    for the batch's alerts to be acknowledged, so whatever state is written under the lock
    is never ahead of a delivered alert. :meth:`flush` (from a timer, so held records never
    wait for the next batch, e.g. during a rebalance, which waits for every record to be
    acknowledged) takes the records held so far and the aircraft dirty so far, writes those
    aircraft in chunks under the lock (as many a turn as fit in a share of a batch's turn),
    waits for the producer to deliver the changelog, and acknowledges the records. Batches
    run between turns; what they change and hold belongs to the next flush.
    """

    def __init__(self, stream: Any, producer_flush: Callable[[], Awaitable[None]],
                 on_acked: Callable[[Any], None] | None = None, send_changelog: SendChangelog | None = None,
                 persist_offset: Callable[[int, int], None] | None = None, interval_s: float = STATE_FLUSH_S,
                 chunk: int = STATE_CHUNK, pause_s: float = STATE_CHUNK_PAUSE_S,
                 clock: Callable[[], float] = time.monotonic, scopes: Callable[..., Any] = partition_scope) -> None:
        self.stream = stream  # a streams.core.stream.TrackStream: its dirty set and flush_state
        self.producer_flush = producer_flush
        self.on_acked = on_acked
        self.send_changelog = send_changelog
        self.persist_offset = persist_offset
        self.interval_s = interval_s
        self.chunk = chunk
        self.pause_s = pause_s
        self.clock = clock
        self.scopes = scopes
        self.lock = asyncio.Lock()
        self._held: list[Any] = []
        # The newest event seen per partition, acknowledged or not: a write for an aircraft of
        # partition p needs some event of p as Faust's "current event".
        self._latest: dict[int, Any] = {}
        self._held_since = 0.0
        self._batch_s = 0.0  # how long the last batch held the lock (see STATE_HOLD_SHARE)
        self.flushes = 0
        self.written = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def hold(self, evs: Iterable[Any]) -> None:
        """Keep these records unacknowledged until the next flush (Faust acks its own reference).

        Only the acknowledgement is owed from here on, so a held record lets go of its value:
        the caller has taken the values it processes, and a catch-up holds ~5 s of input
        between flushes (~100 MB of position-batch records on a world feed, memray at the peak)."""
        if not self._held:
            self._held_since = self.clock()
        for ev in evs:
            ev.message.incref()
            ev.value = ev.message.value = None
            self._held.append(ev)
            self._latest[ev.message.partition] = ev

    def note_batch(self, seconds: float) -> None:
        """How long the agent's last batch held :attr:`lock` (a flush holds it for a share of that)."""
        self._batch_s = seconds

    def due(self, now: bool = False) -> bool:
        """True once the oldest held record has waited ``interval_s``, or at once if ``now``
        (a rebalance waits until every record is acknowledged)."""
        return bool(self._held) and (now or self.clock() - self._held_since >= self.interval_s)

    async def flush(self) -> int:
        """Write every aircraft dirty now, deliver the changelog, then acknowledge the records
        held now; returns the aircraft written."""
        async with self.lock:
            held, self._held = self._held, []
            todo = self.stream.dirty_aircraft()
        deliveries: list[Any] = []
        written: list[str] = []
        try:
            i = 0
            while i < len(todo):
                if i:
                    await asyncio.sleep(self.pause_s)
                async with self.lock:
                    # at least one chunk a turn, more while within a share of the last batch's turn
                    start, budget = self.clock(), STATE_HOLD_SHARE * self._batch_s
                    while i < len(todo):
                        written += await self._write_with_retry(todo[i : i + self.chunk], deliveries)
                        i += self.chunk
                        if self.clock() - start >= budget:
                            break
            await self.producer_flush()
            failed = sum(1 for d in deliveries if not d.delivered())
            if failed:
                raise RuntimeError(f"{failed} state changelog batches were not delivered")
        except BaseException:
            # Not acknowledged, so not committed: the records stay held, and the next tick
            # writes this flush's aircraft again (writing a state twice is harmless).
            async with self.lock:
                self.stream.mark_dirty(written)
                self._held[:0] = held
                self._held_since = -float("inf")
            raise
        self._persist(deliveries)
        for ev in held:
            if ev.ack() and self.on_acked is not None:  # True when this was the last reference
                self.on_acked(ev)
        self.flushes += 1
        self.written += len(written)
        return len(written)

    def forget(self, partitions: set[int]) -> None:
        """Partitions moved away: no more writes under their events."""
        for p in partitions:
            self._latest.pop(p, None)

    async def _write_with_retry(self, icaos: list[str], deliveries: list[Any]) -> list[str]:
        """Write these aircraft (those still dirty) and send their changelog; returns them."""
        delay = 0.1
        for attempt in range(WRITE_RETRIES):
            writes = self.stream.flush_state(icaos, self.scopes(self._latest.values()))
            try:
                if self.send_changelog is not None and writes:
                    deliveries.extend(await self.send_changelog(writes))
                return [key.decode() for _, key, _ in writes]
            except Exception as exc:
                # The store already holds these states (writing them again is harmless); the
                # changelog may not, so they are dirty until a send succeeds.
                self.stream.mark_dirty(key.decode() for _, key, _ in writes)
                if attempt == WRITE_RETRIES - 1:
                    raise
                log.warning("state changelog write failed (%r); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, WRITE_BACKOFF_MAX_S)
        return []

    def _persist(self, deliveries: list[Any]) -> None:
        """Record the newest delivered changelog offset per partition in the store, as Faust's
        own changelog callback does: a RocksDB store resumes recovery from there."""
        if self.persist_offset is None:
            return
        newest: dict[int, int] = {}
        for d in deliveries:
            newest[d.partition] = max(newest.get(d.partition, -1), d.last_offset())
        for partition, offset in newest.items():
            self.persist_offset(partition, offset)
