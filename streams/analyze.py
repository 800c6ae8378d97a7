"""``skyfence analyze``: the whole pipeline in one process, no broker, no Redis.

This module owns the embedded mode for an analyst with a file: the same parsers, the
same engine (built by ``streams.wiring``) and the same stream semantics as the worker's
track agent (``streams.core.stream.TrackStream``, fed the parsers' positions grouped by the
partition ``skyfence ingest`` would publish them to), so its alerts equal the streaming
pipeline's on the same file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.messages import DeadLetter, Position

if TYPE_CHECKING:  # typing only: the engine's modules compile numba when imported
    from streams.core.engine import Engine, EngineOutput
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


TrackSink = Callable[[Sequence[dict[str, Any]]], None]
"""Called with every batch's track updates (``track.v1`` documents), in order."""
PositionSink = Callable[[Sequence[Position]], None]
"""Called with every batch of positions, before the engine sees it."""


class AnalyzeOutput:
    """An ingest ``Output`` that runs the worker's track stage instead of publishing.

    Each batch of positions is grouped by the positions-topic partition ``skyfence ingest``
    would send it to, in arrival order, and handed to ``TrackStream`` with an in-memory dict
    as its state table, so stream time, gating and alerting are the worker's code path.
    ``on_positions`` and ``on_tracks``, when given, receive every batch of positions and every
    track update (``skyfence report`` keeps them all, for trails and time in zone).
    """

    def __init__(self, engine: Engine, partitions: int = 8, keep_tracks: bool = True,
                 stages: tuple[StagePartition, StagePartition] | None = None,
                 on_positions: PositionSink | None = None, on_tracks: TrackSink | None = None) -> None:
        from streams.core.stream import TrackStream
        from streams.wiring import build_stages

        self.engine = engine
        self.partitions = partitions
        # The table is never written: the stage restores only aircraft the engine does not
        # hold, and in one process those are new or evicted (a deletion), never in a table.
        self.stream = TrackStream(engine, {}, partitions)
        self.result = AnalyzeResult()
        self.keep_tracks = keep_tracks
        self.on_positions = on_positions
        self.on_tracks = on_tracks
        # The keyed stages (coverage, mission ledger), each as one partition holding every key:
        # their output depends on keys and event time only, not on how keys are spread.
        self.coverage: StagePartition
        self.missions: StagePartition
        self.coverage, self.missions = stages if stages is not None else build_stages(engine, partitions=partitions)
        self.result.ledger = self.missions.stage

    async def positions(self, positions: Sequence[Position]) -> None:
        from streams.columns import PositionColumns
        from streams.kafka_io import group_by_partition

        if self.on_positions is not None:
            self.on_positions(positions)
        groups = sorted(group_by_partition(positions, self.partitions).items())
        step = self.stream.process([(p, PositionColumns.from_positions(g)) for p, g in groups])
        self.result.positions += step.positions
        self.result.rejected.update(step.rejected)
        self.result.dead_letters.update(d.reason for d in step.dead_letters)
        self._engine_output(step.result, step.watermarks)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        self.result.dead_letters.update(d.reason for d in dead)

    async def flush(self) -> None:
        pass

    def _engine_output(self, out: EngineOutput, watermarks: dict[int, float], keep_tracks: bool = True) -> None:
        from streams.core.stages import encode_coverage_batch, encode_mission

        self.result.alerts.extend(out.alerts)
        self._stages(encode_coverage_batch(out.coverage), [encode_mission(m) for m in out.missions], watermarks)
        if self.on_tracks is not None:
            self.on_tracks(out.track_updates)
        if self.keep_tracks and keep_tracks:
            for doc in out.track_updates:
                self.result.tracks[doc["icao24"]] = doc

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
            # result.tracks stays each aircraft's last live state (what `analyze` prints);
            # the closing updates go to on_tracks only.
            for out in self.stream.finish():
                self._engine_output(out, {}, keep_tracks=False)
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
    from streams.ingest import run
    from streams.readers import open_feed

    out = AnalyzeOutput(engine, partitions=partitions, stages=stages)
    await run(open_feed(path, fmt=fmt), fmt, out, source=path, receiver=None, max_message_bytes=max_message_bytes)
    out.finish(close_all)
    return out.result
