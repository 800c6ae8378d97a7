"""Agent adapter: position batches in, track updates, alerts and dead letters out.

This module owns the translation between Kafka records and the engine
(``streams.core.engine``): decoding ``position-batch`` records (bad items become
dead letters), restoring an aircraft's state from the changelog-backed table the
first time the worker sees it, advancing event time, and writing back the state of
the state of aircraft that changed back to the table. It is plain Python, tested without
a broker; the Faust agent in ``streams.agents`` only moves records in and out.

State is written in flushes, not per batch: :meth:`TrackAdapter.handle` only marks the
aircraft it changed as dirty, and :meth:`TrackAdapter.flush_state` writes each dirty
aircraft's current state once. At 20k positions/s a 10 ms batch touches ~200 aircraft, so
per-batch writes cost one changelog record per position; a flush a second costs one per
aircraft per second.

Delivery order matters for "nothing lost, nothing duplicated". The agent sends a batch's
alerts and waits for Kafka to acknowledge them before the state they lead to can be
flushed, and it acknowledges a batch's records (letting Faust commit their offsets) only
after a flush wrote the state they changed. After a crash, state is therefore never ahead
of delivered alerts and never behind committed offsets: re-processing from the last
committed offset re-creates byte-identical alerts (deterministic ids), which the Redis sink
de-duplicates, and positions the state already holds are refused as late or duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from streams.codec import BATCH_FORMAT, decode_position_batch, right_sized
from streams.columns import PositionColumns
from streams.core.stages import encode_coverage_batch, encode_mission
from streams.records import DeadLetter
from streams.sources.base import OVERSIZE_RAW_PREFIX
from streams.topics import partition_for

if TYPE_CHECKING:  # typing only: importing the engine at run time compiles numba
    from streams.core.engine import Engine

log = logging.getLogger(__name__)

PartitionScope = Callable[[int], AbstractContextManager[Any] | None]

# Rejections that are evidence of a bad input become dead letters. Duplicates (the same
# message heard by several receivers) and late positions (older than the aircraft's state,
# as every redelivered record is after a restart) are normal stream behaviour: counted in
# skyfence_positions_rejected_total, not dead-lettered.
DEAD_LETTER_REJECTIONS = frozenset({"implausible_jump", "invalid_position"})


@dataclass
class TrackOutput:
    tracks: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    positions: int = 0
    # Records for the keyed stages (streams.core.stages): (key, value) on the coverage and
    # missions topics, and the watermark to send after them (source partition -> event time).
    coverage: list[tuple[bytes, bytes]] = field(default_factory=list)
    missions: list[tuple[bytes, bytes]] = field(default_factory=list)
    watermarks: dict[int, float] = field(default_factory=dict)


def encode_track(doc: dict[str, Any]) -> tuple[bytes, bytes]:
    """A track.v1 document as its tracks-topic record: (key icao24, JSON value)."""
    return str(doc["icao24"]).encode(), right_sized(orjson.dumps(doc))


class TrackAdapter:
    def __init__(self, engine: Engine, table: MutableMapping[bytes, bytes], partitions: int,
                 max_message_bytes: int | None = None) -> None:
        self.engine = engine
        # Track documents become Kafka records as they are built (see Engine.track_encoder).
        engine.track_encoder = encode_track
        # Records on the positions topic may come from any producer: one bigger than the
        # input limit is refused before it is parsed (the broker itself allows 10 MiB).
        self.max_message_bytes = max_message_bytes
        self.table = table
        self.partitions = partitions
        self.watermark = float("-inf")
        # Highest event time seen per partition. Stream time is the minimum over partitions:
        # partitions are consumed at different paces, and advancing to the fastest one would
        # time out aircraft whose partition is merely behind (they are not silent).
        self._partition_time: dict[int, float] = {}
        # Aircraft whose engine state (present, or deliberately absent after eviction) is newer
        # than the table's: the engine, not the table, is their truth until a flush writes them.
        self._dirty: set[str] = set()

    def handle(self, records: Sequence[tuple[int, bytes]], now: float) -> TrackOutput:
        """One batch of (partition, position-batch record) pairs from any assigned partitions."""
        out = TrackOutput()
        parts: list[PositionColumns] = []
        for partition, value in records:
            if self.max_message_bytes is not None and len(value) > self.max_message_bytes:
                out.dead_letters.append(DeadLetter(
                    "oversize", BATCH_FORMAT, bytes(value[:OVERSIZE_RAW_PREFIX]), source="positions-topic",
                    detail=f"record of {len(value)} bytes > {self.max_message_bytes}"))
                continue
            ok, dead = decode_position_batch(value, now, source="positions-topic")
            parts.append(ok)
            out.dead_letters.extend(dead)
            if len(ok):
                latest = float(ok.event_time.max())
                self._partition_time[partition] = max(self._partition_time.get(partition, latest), latest)
        positions = PositionColumns.concat(parts)
        out.positions = len(positions)
        has = self.engine.has
        for icao in [x for x in set(positions.icao24.tolist()) if not has(x)]:
            self._restore(icao)
        result = self.engine.process(positions)
        if self._partition_time:
            stream_time = min(self._partition_time.values())
            if stream_time > self.watermark:
                self.watermark = stream_time
                result.extend(self.engine.advance(self.watermark))
        for pos, reason in result.rejected:
            out.rejected[reason] = out.rejected.get(reason, 0) + 1
            if reason in DEAD_LETTER_REJECTIONS:
                out.dead_letters.append(
                    DeadLetter(reason, pos.input_format, orjson.dumps(pos.to_dict()), source="track-gate",
                               event_time=pos.event_time, extra={"icao24": pos.icao24})
                )
        out.tracks.extend(result.track_updates)
        for doc in result.alerts:
            out.alerts.append((str(doc["icao24"]).encode(), orjson.dumps(doc), doc))
        out.coverage.extend(encode_coverage_batch(result.coverage))
        out.missions.extend(encode_mission(m) for m in result.missions)
        # Every position at or before the release horizon has left the reorder buffer, so every
        # stage record it leads to is in this output: the stages may go that far.
        horizon = self.watermark - float(self.engine.config.reorder_tolerance_s)
        if horizon > float("-inf"):
            out.watermarks = dict.fromkeys(sorted(self._partition_time), horizon)
        self._dirty.update(result.touched)
        self._dirty.update(result.evicted)
        return out

    @property
    def dirty(self) -> int:
        """Aircraft whose state the table does not have yet."""
        return len(self._dirty)

    def dirty_aircraft(self) -> list[str]:
        """The aircraft dirty now, in a stable order (a flush writes exactly these)."""
        return sorted(self._dirty)

    def mark_dirty(self, icaos: Iterable[str]) -> None:
        """These aircraft's writes did not reach the changelog: write them again."""
        self._dirty.update(icaos)

    def flush_state(self, icaos: Iterable[str] | None = None,
                    in_partition: PartitionScope | None = None) -> list[tuple[int, bytes, bytes | None]]:
        """Write the current state of dirty aircraft (all, or those of ``icaos``) to the table.

        Returns the writes as (partition, key, value or None for a deletion), for the caller's
        changelog. Call it only when every alert the engine has produced so far is
        acknowledged by Kafka. ``in_partition(p)`` gives a context in which a table write
        lands in partition ``p`` (Faust's RocksDB store files a write under the partition of
        the "current event"), or None when the caller has no event of ``p``: those aircraft
        stay dirty until it has. None for ``in_partition`` writes everything (a plain dict).
        """
        writes: list[tuple[int, bytes, bytes | None]] = []
        todo: list[tuple[str, int, AbstractContextManager[Any]]] = []
        for icao in list(self._dirty if icaos is None else icaos):
            if icao not in self._dirty:  # written since, or its partition moved away
                continue
            partition = partition_for(icao, self.partitions)
            scope = in_partition(partition) if in_partition else nullcontext()
            if scope is not None:
                todo.append((icao, partition, scope))
        states = self.engine.export_states_bytes([icao for icao, _p, _s in todo])
        for (icao, partition, scope), value in zip(todo, states, strict=True):
            key = icao.encode()
            with scope:
                if value is None:
                    self.table.pop(key, None)
                else:
                    self.table[key] = value
            self._dirty.discard(icao)  # only once written: a failed write is retried, not lost
            writes.append((partition, key, value))
        return writes

    def _restore(self, icao: str) -> None:
        # A dirty aircraft's truth is the engine: either it is there, or it was evicted and the
        # table's older state must not bring it back.
        if icao not in self._dirty:
            raw = self.table.get(icao.encode())
            if raw:
                try:
                    self.engine.import_state_bytes(icao, bytes(raw))
                except ValueError as exc:  # e.g. written before the user fences changed
                    log.warning("state of %s not restored, its track starts afresh: %s", icao, exc)

    def forget_partitions(self, partitions: set[int]) -> int:
        """Drop in-memory state of aircraft whose partitions moved to another worker.

        Their unflushed changes go too. The agent flushes before a rebalance completes, so
        what is left is only what it had no partition scope for (a timeout sweep's change):
        the next owner re-derives that when its stream time passes the same point.
        """
        gone = [icao for icao in self.engine.aircraft() if partition_for(icao, self.partitions) in partitions]
        self.engine.drop_states(gone)
        self._dirty = {icao for icao in self._dirty if partition_for(icao, self.partitions) not in partitions}
        for p in partitions:
            self._partition_time.pop(p, None)
        return len(gone)

    @property
    def tracked(self) -> int:
        return int(self.engine.aircraft_count)
