"""``skyfence analyze``: the whole pipeline in one process, no broker, no Redis.

This module owns the embedded mode for an analyst with a file: the same parsers, the
same engine (built by ``streams.wiring``) and the same batch semantics as the
worker's track agent, so its alerts equal the streaming pipeline's on the same file.
Positions are cut into the records ``skyfence ingest`` publishes and handed to the
track agent's own adapter, so stream time and gating follow the worker's code path.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.records import DeadLetter, Position


@dataclass
class AnalyzeResult:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    positions: int = 0


class EngineOutput:
    """An ingest ``Output`` that runs the worker's own track adapter instead of publishing.

    Positions are cut into the same per-partition batch records ``skyfence ingest``
    publishes and handed to ``TrackAdapter`` with an in-memory dict as its state table,
    so stream time, gating and alerting are literally the worker's code path.
    """

    def __init__(self, engine: Any, partitions: int = 8, keep_tracks: bool = True) -> None:
        from streams.agents.track import TrackAdapter

        self.engine = engine
        self.partitions = partitions
        self.adapter = TrackAdapter(engine, {}, partitions)
        self.result = AnalyzeResult()
        self.keep_tracks = keep_tracks

    async def positions(self, positions: Sequence[Position]) -> None:
        from streams.codec import encode_position_batch
        from streams.kafka_io import MAX_BATCH_POSITIONS, group_by_partition

        records = []
        for partition, group in sorted(group_by_partition(positions, self.partitions).items()):
            for i in range(0, len(group), MAX_BATCH_POSITIONS):
                records.append((partition, encode_position_batch(group[i : i + MAX_BATCH_POSITIONS])))
        out = self.adapter.handle(records, time.time())
        self.adapter.flush_state()
        self.result.positions += out.positions
        self.result.alerts.extend(doc for _k, _v, doc in out.alerts)
        self.result.rejected.update(out.rejected)
        self.result.dead_letters.update(d.reason for d in out.dead_letters)
        if self.keep_tracks:
            for key, value in out.tracks:
                self.result.tracks[key.decode()] = orjson.loads(value)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        self.result.dead_letters.update(d.reason for d in dead)

    async def flush(self) -> None:
        pass

    def finish(self, close_all: bool) -> None:
        """At end of input: optionally release buffered positions and close every episode."""
        if close_all:
            for out in (self.engine.flush(), self.engine.advance(float("inf"))):
                self.result.alerts.extend(out.alerts)


async def analyze_file(
    path: str,
    fmt: str,
    engine: Any,
    close_all: bool = False,
    max_message_bytes: int | None = None,
    partitions: int = 8,
) -> AnalyzeResult:
    """``partitions`` must match the streaming pipeline's (SKYFENCE_PARTITIONS) for equal stream time."""
    from streams.feeds import open_feed
    from streams.ingest import run

    out = EngineOutput(engine, partitions=partitions)
    await run(open_feed(path, fmt=fmt), fmt, out, source=path, receiver=None, max_message_bytes=max_message_bytes)
    out.finish(close_all)
    return out.result
