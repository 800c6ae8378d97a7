"""``skyfence analyze``: the whole pipeline in one process, no broker, no Redis.

This module owns the embedded mode for an analyst with a file: the same parsers, the
same engine (built by ``streams.wiring``) and the same batch semantics as the
worker's track agent, so its alerts equal the streaming pipeline's on the same file.
Positions are fed in record-sized batches exactly as ``skyfence ingest`` publishes
them, and event time advances with the highest event time seen, as in the agent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.records import DeadLetter, Position


@dataclass
class AnalyzeResult:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    positions: int = 0


class EngineOutput:
    """An ingest ``Output`` that runs the engine instead of publishing."""

    def __init__(self, engine: Any, keep_tracks: bool = True) -> None:
        self.engine = engine
        self.result = AnalyzeResult()
        self.keep_tracks = keep_tracks
        self.watermark = float("-inf")

    async def positions(self, positions: Sequence[Position]) -> None:
        self._take(self.engine.process(positions))
        if positions:
            self.watermark = max(self.watermark, max(p.event_time for p in positions))
            self._take(self.engine.advance(self.watermark))
        self.result.positions += len(positions)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        self.result.dead_letters.update(d.reason for d in dead)

    async def flush(self) -> None:
        pass

    def finish(self, close_all: bool) -> None:
        """At end of input: optionally release buffered positions and close every episode."""
        if close_all:
            self._take(self.engine.flush())
            self._take(self.engine.advance(float("inf")))

    def _take(self, out: Any) -> None:
        self.result.alerts.extend(out.alerts)
        self.result.rejected.update(reason for _pos, reason in out.rejected)
        if self.keep_tracks:
            for doc in out.track_updates:
                self.result.tracks[str(doc["icao24"])] = doc


async def analyze_file(
    path: str, fmt: str, engine: Any, close_all: bool = False, max_message_bytes: int | None = None
) -> AnalyzeResult:
    from streams.feeds import open_feed
    from streams.ingest import run

    out = EngineOutput(engine)
    await run(open_feed(path, fmt=fmt), fmt, out, source=path, receiver=None, max_message_bytes=max_message_bytes)
    out.finish(close_all)
    return out.result
