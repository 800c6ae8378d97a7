"""Stream semantics of the track stage, shared by the worker's track agent and ``analyze``.

This module owns what turns the engine (``streams.core.engine``) into a stage of a
partitioned stream, as pure logic over batches of decoded positions:

- **stream time**: the minimum over partitions of the highest event time seen in each, so
  an aircraft whose partition is merely behind is not timed out;
- **state restore**: an aircraft's state is read from the state table (any mapping of
  ``icao24`` bytes to the engine's state bytes) the first time the stage sees it;
- **the dirty set**: aircraft whose state is newer in the engine than in the table, written
  back in flushes (:meth:`TrackStream.flush_state`), never per batch;
- **the dead-letter policy**: which of the engine's rejections are evidence of bad input;
- **watermarks** for the keyed stages (``streams.core.stages``).

The Faust agent (``streams.agents.track``) decodes Kafka records into columns, calls
:meth:`TrackStream.process` and encodes what comes out; ``skyfence analyze`` and
``skyfence report`` call it with the parsers' positions directly, and an in-memory dict as
the table. Same code, so the same alerts.

State is written in flushes: at 20k positions/s a 10 ms batch touches ~200 aircraft, so
per-batch writes cost one changelog record per position; a flush a second costs one per
aircraft per second. Delivery order is the agent's business (``streams.agents.flush``):
it flushes only once every alert the engine produced so far is acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from streams.columns import PositionColumns
from streams.messages import DeadLetter
from streams.topics import partition_for

if TYPE_CHECKING:  # typing only: importing the engine at run time compiles numba
    from streams.core.engine import Engine, EngineOutput

log = logging.getLogger(__name__)

PartitionScope = Callable[[int], AbstractContextManager[Any] | None]
# Writes (key, state) pairs of one partition to the table in one go (the worker's RocksDB
# store: one write batch); without one, a flush sets the table's items one by one.
WriteMany = Callable[[int, list[tuple[bytes, bytes]]], None]

# Rejections that are evidence of a bad input become dead letters. Duplicates (the same
# message heard by several receivers) and late positions (older than the aircraft's state,
# as every redelivered record is after a restart) are normal stream behaviour: counted in
# skyfence_positions_rejected_total, not dead-lettered.
DEAD_LETTER_REJECTIONS = frozenset({"implausible_jump", "invalid_position"})


@dataclass
class StreamStep:
    """What one :meth:`TrackStream.process` call produced."""

    # The engine's output: alert documents, track updates, coverage records, missions.
    result: EngineOutput
    positions: int = 0
    # Rejections by reason, and those of them that are dead letters (DEAD_LETTER_REJECTIONS).
    rejected: dict[str, int] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Source partition -> event time up to which every stage record derived from it is in
    # this step or an earlier one (the keyed stages' watermark).
    watermarks: dict[int, float] = field(default_factory=dict)


class TrackStream:
    """The track stage over one worker's partitions (or, in ``analyze``, all of them)."""

    def __init__(self, engine: Engine, table: MutableMapping[bytes, bytes], partitions: int,
                 write_many: WriteMany | None = None) -> None:
        self.engine = engine
        self.table = table
        self.write_many = write_many
        self.partitions = partitions
        self.watermark = float("-inf")
        # Highest event time seen per partition. Stream time is the minimum over partitions:
        # partitions are consumed at different paces, and advancing to the fastest one would
        # time out aircraft whose partition is merely behind (they are not silent).
        self._partition_time: dict[int, float] = {}
        # Aircraft whose engine state (present, or deliberately absent after eviction) is newer
        # than the table's: the engine, not the table, is their truth until a flush writes them.
        self._dirty: set[str] = set()

    def process(self, parts: Sequence[tuple[int, PositionColumns]]) -> StreamStep:
        """One batch: (source partition, its positions in arrival order) pairs, any partitions."""
        whole: StreamStep | None = None
        for step in self.steps(parts):
            if whole is None:
                whole = step
                continue
            whole.result.extend(step.result)
            for reason, n in step.rejected.items():
                whole.rejected[reason] = whole.rejected.get(reason, 0) + n
            whole.dead_letters.extend(step.dead_letters)
            whole.watermarks = step.watermarks
        assert whole is not None  # steps() yields at least one
        return whole

    def steps(self, parts: Sequence[tuple[int, PositionColumns]],
              max_release: int | None = None) -> Iterator[StreamStep]:
        """:meth:`process` as steps: the batch's own, then the release stream time allows, in
        parts of about ``max_release`` positions (whole aircraft) when given (see
        :meth:`Engine.advance_steps`). Only the last step carries the stages' watermarks. The
        worker sends each step before taking the next; a step is yielded once the next part is
        built (the last step is known only then), so two parts' output are alive at a time."""
        for partition, cols in parts:
            if len(cols):
                latest = float(cols.event_time.max())
                self._partition_time[partition] = max(self._partition_time.get(partition, latest), latest)
        positions = PositionColumns.concat([cols for _p, cols in parts])
        for icao in self.engine.unknown(set(positions.icao24.tolist())):
            self._restore(icao)
        result = self.engine.process(positions)
        outs: Iterable[EngineOutput] = ()
        if self._partition_time:
            stream_time = min(self._partition_time.values())
            if stream_time > self.watermark:
                self.watermark = stream_time
                outs = (self.engine.advance_steps(self.watermark, max_release) if max_release
                        else (self.engine.advance(self.watermark),))
        step = self._step(result, len(positions))
        for out in outs:
            yield step
            step = self._step(out, 0)
        # Every position at or before the release horizon has left the reorder buffer, so every
        # stage record it leads to is in this step or an earlier one: the stages may go that far.
        horizon = self.watermark - float(self.engine.config.reorder_tolerance_s)
        if horizon > float("-inf"):
            step.watermarks = dict.fromkeys(sorted(self._partition_time), horizon)
        yield step

    def _step(self, result: EngineOutput, positions: int) -> StreamStep:
        step = StreamStep(result, positions=positions)
        for pos, reason in result.rejected:
            step.rejected[reason] = step.rejected.get(reason, 0) + 1
            if reason in DEAD_LETTER_REJECTIONS:
                step.dead_letters.append(
                    DeadLetter(reason, pos.input_format, orjson.dumps(pos.to_dict()), source="track-gate",
                               event_time=pos.event_time, extra={"icao24": pos.icao24})
                )
        self._dirty.update(result.touched)
        self._dirty.update(result.evicted)
        return step

    def finish(self) -> list[EngineOutput]:
        """At the end of a file: release every buffered position, then close every episode and
        end every pattern (stream time to infinity). Only ``analyze`` and ``report`` end.

        Two outputs, the release's and the closing's, in that order: the keyed stages take
        each as its own batch, as they would from two batches of the worker."""
        outs = [self.engine.flush(), self.engine.advance(float("inf"))]
        for out in outs:
            self._dirty.update(out.touched)
            self._dirty.update(out.evicted)
        return outs

    # ---- state -------------------------------------------------------------------------------
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
        # One scope per partition, entered once for all its writes: a scope per aircraft was a
        # quarter of a flush at 25,000 aircraft.
        scopes: dict[int, AbstractContextManager[Any] | None] = {}
        todo: list[tuple[str, int]] = []
        for icao in list(self._dirty if icaos is None else icaos):
            if icao not in self._dirty:  # written since, or its partition moved away
                continue
            partition = partition_for(icao, self.partitions)
            if partition not in scopes:
                scopes[partition] = in_partition(partition) if in_partition else nullcontext()
            if scopes[partition] is not None:
                todo.append((icao, partition))
        states = self.engine.export_states_bytes([icao for icao, _p in todo])
        keys = [icao.encode() for icao, _p in todo]
        rows: dict[int, list[int]] = {}
        for i, (_icao, partition) in enumerate(todo):
            rows.setdefault(partition, []).append(i)
        for partition, idx in rows.items():
            with scopes[partition] or nullcontext():
                puts: list[tuple[bytes, bytes]] = []
                for i in idx:
                    value = states[i]
                    if value is None:
                        self.table.pop(keys[i], None)
                    else:
                        puts.append((keys[i], value))
                if self.write_many is not None:
                    self.write_many(partition, puts)
                else:
                    for key, value in puts:
                        self.table[key] = value
            for i in idx:  # only once written: a failed write is retried, not lost
                self._dirty.discard(todo[i][0])
        return [(partition, key, value) for (_icao, partition), key, value in zip(todo, keys, states, strict=True)]

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
