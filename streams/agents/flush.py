"""When the track agent's state reaches the table, and when its input may be committed.

This module owns :class:`StateFlusher`: it holds the records of processed batches
unacknowledged (so Faust cannot commit their offsets), and in a flush writes the state of
every aircraft they changed to the changelog-backed table, waits until the producer has
delivered those changelog records, and only then acknowledges the records. It also owns
the partition scopes Faust's RocksDB store needs for a table write. Works on anything
shaped like a Faust event (``.message.partition``, ``.message.incref()``, ``.ack()``), so
it is tested without a broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# 5 s between flushes: a flush writes each changed aircraft once (~40 us of CPU each, table
# write and changelog record included), so 20,000 aircraft cost ~0.16 s of CPU a second
# instead of 0.8 s at 1 s; a crash re-reads at most ~5 s of input (plus Faust's 2 s commit
# interval), which the idempotent sinks absorb. A rebalance does not wait for it (``due``).
STATE_FLUSH_S = 5.0
# While the broker restarts, the producer has no partition metadata and a changelog write
# fails synchronously; retrying for up to ~5 min rides out a restart without losing state.
WRITE_RETRIES = 60
WRITE_BACKOFF_MAX_S = 5.0


def partition_scope(evs: Iterable[Any]) -> Callable[[int], AbstractContextManager[Any] | None]:
    """Table writes for partition p under an event of p, as Faust's RocksDB store requires."""
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


@dataclass
class Flush:
    """One flush between its two steps: state written, records not yet acknowledged."""

    records: list[Any]
    written: int


class StateFlusher:
    """Holds processed records until the state they changed is durable in the table.

    The agent processes a batch under :attr:`lock`, :meth:`hold`-ing its records and waiting
    for the batch's alerts to be acknowledged. A flush (from the agent when :meth:`due`, or
    from a timer so that held records never wait for the next batch, e.g. during a
    rebalance, which waits for every record to be acknowledged) has two steps:
    :meth:`write` under the same lock, so the engine's state is not changing while it is
    written, and :meth:`deliver` after the lock is released, because waiting for the
    producer takes 10-50 ms and the next batch need not wait for it.
    """

    def __init__(self, adapter: Any, producer_flush: Callable[[], Awaitable[None]],
                 on_acked: Callable[[Any], None] | None = None, interval_s: float = STATE_FLUSH_S,
                 clock: Callable[[], float] = time.monotonic, scopes: Callable[..., Any] = partition_scope) -> None:
        self.adapter = adapter
        self.producer_flush = producer_flush
        self.on_acked = on_acked
        self.interval_s = interval_s
        self.clock = clock
        self.scopes = scopes
        self.lock = asyncio.Lock()
        self._held: list[Any] = []
        # The newest event seen per partition, acknowledged or not: a write for an aircraft of
        # partition p needs some event of p as Faust's "current event".
        self._latest: dict[int, Any] = {}
        self._held_since = 0.0
        self.flushes = 0
        self.written = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def hold(self, evs: Iterable[Any]) -> None:
        """Keep these records unacknowledged until the next flush (Faust acks its own reference)."""
        if not self._held:
            self._held_since = self.clock()
        for ev in evs:
            ev.message.incref()
            self._held.append(ev)
            self._latest[ev.message.partition] = ev

    def due(self, now: bool = False) -> bool:
        """True once the oldest held record has waited ``interval_s``, or at once if ``now``
        (a rebalance waits until every record is acknowledged)."""
        return bool(self._held) and (now or self.clock() - self._held_since >= self.interval_s)

    async def write(self) -> Flush:
        """Write every dirty aircraft's state to the table; the caller holds :attr:`lock`.

        Returns the held records, to be given to :meth:`deliver`.
        """
        written = await self._write_with_retry()
        held, self._held = self._held, []
        self.flushes += 1
        self.written += written
        return Flush(held, written)

    async def deliver(self, flush: Flush) -> int:
        """Wait until the producer delivered the changelog records, then acknowledge.

        Any later flush's :meth:`deliver` also waits for this one's records (a producer
        flush covers everything sent before it), so acknowledgements are never early.
        Returns the number of aircraft the flush wrote.
        """
        await self.producer_flush()
        for ev in flush.records:
            if ev.ack() and self.on_acked is not None:  # True when this was the last reference
                self.on_acked(ev)
        return flush.written

    async def flush(self) -> int:
        """Both steps, taking :attr:`lock` for the first; returns the aircraft written."""
        async with self.lock:
            f = await self.write()
        return await self.deliver(f)

    def forget(self, partitions: set[int]) -> None:
        """Partitions moved away: no more writes under their events."""
        for p in partitions:
            self._latest.pop(p, None)

    async def _write_with_retry(self) -> int:
        delay = 0.1
        for attempt in range(WRITE_RETRIES):
            try:
                return int(self.adapter.flush_state(self.scopes(self._latest.values())))
            except Exception as exc:
                if attempt == WRITE_RETRIES - 1:
                    raise
                log.warning("state table write failed (%r); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, WRITE_BACKOFF_MAX_S)
        return 0
