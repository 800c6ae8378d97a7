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
from typing import TYPE_CHECKING, Any

import orjson

from streams.records import DeadLetter, Position

if TYPE_CHECKING:  # typing only: the engine's modules compile numba when imported
    from streams.core.engine import Engine
    from streams.core.stages import StagePartition


@dataclass
class AnalyzeResult:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    positions: int = 0
    # The mission ledger after the input (daily counts and baseline for reports).
    ledger: Any = None


class EngineOutput:
    """An ingest ``Output`` that runs the worker's own track adapter instead of publishing.

    Positions are cut into the same per-partition batch records ``skyfence ingest``
    publishes and handed to ``TrackAdapter`` with an in-memory dict as its state table,
    so stream time, gating and alerting are literally the worker's code path.
    """

    def __init__(self, engine: Engine, partitions: int = 8, keep_tracks: bool = True,
                 stages: tuple[StagePartition, StagePartition] | None = None) -> None:
        from streams.agents.track import TrackAdapter
        from streams.wiring import build_stages

        self.engine = engine
        self.partitions = partitions
        self.adapter = TrackAdapter(engine, {}, partitions)
        self.result = AnalyzeResult()
        self.keep_tracks = keep_tracks
        # The keyed stages (coverage, mission ledger), each as one partition holding every key:
        # their output depends on keys and event time only, not on how keys are spread.
        self.coverage: StagePartition
        self.missions: StagePartition
        self.coverage, self.missions = stages if stages is not None else build_stages(engine, partitions=partitions)
        self.result.ledger = self.missions.stage

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
        self._stages(out.coverage, out.missions, out.watermarks)
        self.result.rejected.update(out.rejected)
        self.result.dead_letters.update(d.reason for d in out.dead_letters)
        if self.keep_tracks:
            for key, value in out.tracks:
                self.result.tracks[key.decode()] = orjson.loads(value)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        self.result.dead_letters.update(d.reason for d in dead)

    async def flush(self) -> None:
        pass

    def _stages(self, coverage: Sequence[tuple[bytes, bytes]], missions: Sequence[tuple[bytes, bytes]],
                watermarks: dict[int, float]) -> None:
        """The keyed stages' input as the worker's stage agents receive it: records, then watermarks."""
        from streams.core.stages import encode_watermark

        # A file is whole: a partition none of its aircraft hash to is empty, as a worker finds an
        # empty partition idle (streams.agents: a partition whose end offset is 0).
        marks = [(b"~watermark", encode_watermark({p: watermarks.get(p) for p in range(self.partitions)}))
                 ] if watermarks else []
        for stage, records in ((self.coverage, coverage), (self.missions, missions)):
            res = stage.handle([*records, *marks])
            self.result.alerts.extend(res.alerts)
            self.result.dead_letters.update(r for r, _d, _v in res.bad)

    def finish(self, close_all: bool) -> None:
        """At end of input: optionally release buffered positions, close every episode, end every
        pattern and decide every stage's pending candidates and missions."""
        if close_all:
            from streams.core.stages import encode_coverage_batch, encode_mission

            for out in (self.engine.flush(), self.engine.advance(float("inf"))):
                self.result.alerts.extend(out.alerts)
                self._stages(encode_coverage_batch(out.coverage),
                             [encode_mission(m) for m in out.missions], {})
            for stage in (self.coverage, self.missions):
                self.result.alerts.extend(stage.finish())


async def analyze_file(
    path: str,
    fmt: str,
    engine: Engine,
    close_all: bool = False,
    max_message_bytes: int | None = None,
    partitions: int = 8,
    stages: tuple[StagePartition, StagePartition] | None = None,
) -> AnalyzeResult:
    """``partitions`` must match the streaming pipeline's (SKYFENCE_PARTITIONS) for equal stream time."""
    from streams.feeds import open_feed
    from streams.ingest import run

    out = EngineOutput(engine, partitions=partitions, stages=stages)
    await run(open_feed(path, fmt=fmt), fmt, out, source=path, receiver=None, max_message_bytes=max_message_bytes)
    out.finish(close_all)
    return out.result
