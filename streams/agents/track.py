"""The track agent's codec: Kafka records in, the track stage, Kafka records out.

This module owns only the translation between Kafka records and the track stage
(``streams.core.stream.TrackStream``, which holds the stream semantics: stream time,
state restore, the dirty set, the dead-letter policy): decoding ``position-batch`` records
(an oversize record or a bad item becomes a dead letter, the good items around it go on),
and encoding what the stage produced as alert, track, coverage and mission records. The
Faust agent in ``streams.agents`` only moves records in and out.

Delivery order matters for "nothing lost, nothing duplicated". The agent sends a batch's
alerts and waits for Kafka to acknowledge them before the state they lead to can be
flushed, and it acknowledges a batch's records (letting Faust commit their offsets) only
after a flush wrote the state they changed. After a crash, state is therefore never ahead
of delivered alerts and never behind committed offsets: re-processing from the last
committed offset re-creates byte-identical alerts (deterministic ids), which the Redis sink
de-duplicates, and positions the state already holds are refused as late or duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from streams.codec import BATCH_FORMAT, decode_position_batch, right_sized
from streams.columns import PositionColumns
from streams.core.stages import encode_coverage_batch, encode_mission
from streams.core.stream import DEAD_LETTER_REJECTIONS, TrackStream, WriteMany
from streams.messages import DeadLetter
from streams.parsers.base import OVERSIZE_RAW_PREFIX

if TYPE_CHECKING:  # typing only: importing the engine at run time compiles numba
    from streams.core.engine import Engine

__all__ = ["DEAD_LETTER_REJECTIONS", "TrackAdapter", "TrackOutput", "encode_track"]


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
    """Decode, call the track stage, encode. The state it keeps is the stage's (``stream``)."""

    def __init__(self, engine: Engine, table: MutableMapping[bytes, bytes], partitions: int,
                 max_message_bytes: int | None = None, write_many: WriteMany | None = None) -> None:
        self.engine = engine
        self.stream = TrackStream(engine, table, partitions, write_many)
        # Track documents become Kafka records as they are built (see Engine.track_encoder).
        engine.track_encoder = encode_track
        # Records on the positions topic may come from any producer: one bigger than the
        # input limit is refused before it is parsed (the broker itself allows 10 MiB).
        self.max_message_bytes = max_message_bytes

    def handle(self, records: Sequence[tuple[int, bytes]], now: float) -> TrackOutput:
        """One batch of (partition, position-batch record) pairs from any assigned partitions."""
        whole: TrackOutput | None = None
        for out in self.handle_steps(records, now):
            if whole is None:
                whole = out
                continue
            whole.positions += out.positions
            whole.tracks.extend(out.tracks)
            whole.alerts.extend(out.alerts)
            whole.dead_letters.extend(out.dead_letters)
            for reason, n in out.rejected.items():
                whole.rejected[reason] = whole.rejected.get(reason, 0) + n
            whole.coverage.extend(out.coverage)
            whole.missions.extend(out.missions)
            whole.watermarks = out.watermarks
        assert whole is not None  # handle_steps yields at least one
        return whole

    def handle_steps(self, records: Sequence[tuple[int, bytes]], now: float,
                     max_release: int | None = None) -> Iterator[TrackOutput]:
        """:meth:`handle` in steps (``TrackStream.steps``): the first carries the decode's dead
        letters and the batch's position count, the last the stages' watermarks."""
        dead_letters: list[DeadLetter] = []
        parts: list[tuple[int, PositionColumns]] = []
        for partition, value in records:
            if self.max_message_bytes is not None and len(value) > self.max_message_bytes:
                dead_letters.append(DeadLetter(
                    "oversize", BATCH_FORMAT, bytes(value[:OVERSIZE_RAW_PREFIX]), source="positions-topic",
                    detail=f"record of {len(value)} bytes > {self.max_message_bytes}"))
                continue
            ok, dead = decode_position_batch(value, now, source="positions-topic")
            parts.append((partition, ok))
            dead_letters.extend(dead)
        del records  # decoded: the caller may let go of the raw records while the steps run
        for step in self.stream.steps(parts, max_release):
            out = TrackOutput(dead_letters=dead_letters)
            dead_letters = []
            result = step.result
            out.positions = step.positions
            out.rejected = step.rejected
            out.dead_letters.extend(step.dead_letters)
            out.tracks.extend(result.track_updates)
            for doc in result.alerts:
                out.alerts.append((str(doc["icao24"]).encode(), orjson.dumps(doc), doc))
            out.coverage.extend(encode_coverage_batch(result.coverage))
            out.missions.extend(encode_mission(m) for m in result.missions)
            out.watermarks = step.watermarks
            yield out
