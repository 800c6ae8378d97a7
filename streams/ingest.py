"""Ingest and replay: from a feed (file, stdin, TCP receiver, HTTP poll) to an output.

This module owns the loop shared by ``skyfence ingest``, ``skyfence replay`` and
``skyfence analyze``: read chunks from a feed (``streams.readers``), parse them with the
pure parsers (``streams.parsers``), optionally pace them by event time, and hand
positions and dead letters to an ``Output`` (Kafka, stdout, or the in-process engine).
Nothing is dropped: every input ends as a position, a dead letter, or a counted skip.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from streams.codec import POSITION_BATCH_MAGIC, POSITION_BATCH_V1, POSITION_BATCH_V2, decode_position_batch
from streams.messages import DeadLetter, ParseResult, Position

RECORD_FORMAT = "record"
RECORD_SCHEMA = "record.v1"


class Output(Protocol):
    async def positions(self, positions: Sequence[Position]) -> None: ...

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None: ...

    async def flush(self) -> None: ...


@dataclass
class IngestStats:
    messages: int = 0
    positions: int = 0
    dead_letters: int = 0
    skipped: int = 0
    filtered: int = 0
    started: float = field(default_factory=time.monotonic)
    first_event: float | None = None
    last_event: float | None = None
    dead_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, r: ParseResult) -> None:
        self.messages += r.messages
        self.skipped += r.skipped
        self.dead_letters += len(r.dead_letters)
        for d in r.dead_letters:
            self.dead_reasons[d.reason] = self.dead_reasons.get(d.reason, 0) + 1

    @property
    def rate(self) -> float:
        dt = time.monotonic() - self.started
        return self.positions / dt if dt > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "positions": self.positions,
            "dead_letters": self.dead_letters,
            "skipped": self.skipped,
            "filtered_by_time": self.filtered,
            "dead_letter_reasons": dict(sorted(self.dead_reasons.items())),
            "positions_per_s": round(self.rate, 1),
        }


@dataclass
class Pacing:
    """Keeps the original event-time spacing, scaled by ``speed`` (None = as fast as possible)."""

    speed: float | None = None
    t_from: float | None = None
    t_to: float | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    # Set on SIGTERM/SIGINT: no more waiting, what was already read goes out at once.
    stop: asyncio.Event | None = None
    _t0: float | None = None
    _w0: float = 0.0

    def keep(self, p: Position) -> bool:
        if self.t_from is not None and p.event_time < self.t_from:
            return False
        return not (self.t_to is not None and p.event_time > self.t_to)

    async def wait_for(self, event_time: float) -> None:
        if not self.speed or (self.stop is not None and self.stop.is_set()):
            return
        if self._t0 is None:
            self._t0, self._w0 = event_time, time.monotonic()
            return
        due = self._w0 + (event_time - self._t0) / self.speed
        delay = due - time.monotonic()
        if delay <= 0:
            return
        if self.stop is None:
            await self.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):  # the stop ends the wait early
            await asyncio.wait_for(self.stop.wait(), delay)


# 1 s of event time per paced step: fine enough that "speed 1" looks live, coarse
# enough that a 100k-position file is not 100k sleeps.
PACE_STEP_S = 1.0


async def run(
    chunks: AsyncIterator[bytes],
    fmt: str,
    output: Output,
    *,
    source: str = "",
    receiver: str | None = None,
    pacing: Pacing | None = None,
    max_message_bytes: int | None = None,
    progress: Callable[[IngestStats], None] | None = None,
    reference: tuple[float, float] | None = None,
    archive: Callable[[bytes], Awaitable[None]] | None = None,
) -> IngestStats:
    """Parse every chunk of one feed and send the results to ``output``.

    ``reference`` is the receiver's position, for Mode S local/surface CPR decoding;
    ``archive`` receives every raw chunk before it is parsed (the raw topic).
    """
    stats = IngestStats()
    pacing = pacing or Pacing()
    if fmt == RECORD_FORMAT:
        decoder: _Decoder = _RecordDecoder(source=source, max_message_bytes=max_message_bytes)
    else:
        decoder = _ParserDecoder(fmt, source=source, receiver=receiver, max_message_bytes=max_message_bytes,
                                 reference=reference)
    async for chunk in chunks:
        if archive is not None and chunk:
            await archive(chunk)
        # an empty chunk is the feed's mark for "end of one document" (HTTP polls, JSON files)
        await _emit(decoder.feed(chunk) if chunk else decoder.flush(), output, stats, pacing)
        if progress:
            progress(stats)
    await _emit(decoder.flush(), output, stats, pacing)
    await output.flush()
    if progress:
        progress(stats)
    return stats


async def _emit(result: ParseResult, output: Output, stats: IngestStats, pacing: Pacing) -> None:
    stats.add(result)
    if result.dead_letters:
        await output.dead_letters(result.dead_letters)
    kept = [p for p in result.positions if pacing.keep(p)]
    stats.filtered += len(result.positions) - len(kept)
    if not kept:
        return
    if pacing.speed:
        # send in event-time steps so the receiving side sees the original rhythm
        step: list[Position] = []
        step_end = kept[0].event_time + PACE_STEP_S
        for p in kept:
            if p.event_time >= step_end and step:
                await pacing.wait_for(step[-1].event_time)
                await _send(step, output, stats)
                step = []
                step_end = p.event_time + PACE_STEP_S
            step.append(p)
        if step:
            await pacing.wait_for(step[-1].event_time)
            await _send(step, output, stats)
    else:
        await _send(kept, output, stats)


async def _send(positions: list[Position], output: Output, stats: IngestStats) -> None:
    await output.positions(positions)
    stats.positions += len(positions)
    first, last = positions[0].event_time, positions[-1].event_time
    stats.first_event = first if stats.first_event is None else min(stats.first_event, first)
    stats.last_event = last if stats.last_event is None else max(stats.last_event, last)


class _Decoder(Protocol):
    def feed(self, chunk: bytes) -> ParseResult: ...

    def flush(self) -> ParseResult: ...


class _ParserDecoder:
    def __init__(self, fmt: str, *, source: str, receiver: str | None, max_message_bytes: int | None,
                 reference: tuple[float, float] | None = None) -> None:
        from streams.parsers import make_parser

        kwargs: dict[str, Any] = {"source": source, "receiver": receiver}
        if reference is not None:
            kwargs["reference"] = reference
        if max_message_bytes is not None:
            kwargs["max_message_bytes"] = max_message_bytes
        self.parser = make_parser(fmt, **kwargs)

    def feed(self, chunk: bytes) -> ParseResult:
        return self.parser.feed(chunk)

    def flush(self) -> ParseResult:
        return self.parser.flush()


class _RecordDecoder:
    """``skyfence record`` files: JSON lines of Kafka records from the positions or raw topic.

    Position batches are re-validated through ``Position.from_dict``; raw records are
    parsed again with their own format's parser (one parser per receiver and format,
    so each receiver's decoder state stays its own).
    """

    def __init__(self, *, source: str, max_message_bytes: int | None) -> None:
        self.source = source
        self.max_message_bytes = max_message_bytes
        self._partial = b""
        self._parsers: dict[tuple[str, str], _ParserDecoder] = {}

    def feed(self, chunk: bytes) -> ParseResult:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        out = ParseResult()
        for line in lines:
            if line.strip():
                out.extend(self._line(line))
        return out

    def flush(self) -> ParseResult:
        out = ParseResult()
        if self._partial.strip():
            out.extend(self._line(self._partial))
        self._partial = b""
        for parser in self._parsers.values():
            out.extend(parser.flush())
        return out

    def _dead(self, reason: str, raw: bytes, detail: str) -> ParseResult:
        return ParseResult(dead_letters=[DeadLetter(reason, RECORD_FORMAT, raw[:65536], self.source, detail)],
                           messages=1)

    def _batch(self, value: bytes) -> ParseResult:
        """A positions-topic record, any version: its positions and dead letters."""
        cols, dead = decode_position_batch(value, time.time(), self.source)
        return ParseResult(positions=cols.to_positions(), dead_letters=dead, messages=len(cols) + len(dead))

    def _line(self, line: bytes) -> ParseResult:
        try:
            rec = orjson.loads(line)
            value = base64.b64decode(rec["value_b64"]) if "value_b64" in rec else str(rec["value"]).encode()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return self._dead("bad_json", line, f"not a record.v1 line: {exc}")
        if value.startswith(POSITION_BATCH_MAGIC):  # binary after its header line: not a JSON document
            return self._batch(value)
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return self._dead("bad_json", line, f"not a record.v1 line: {exc}")
        if not isinstance(doc, dict):
            return self._dead("wrong_type", line, "record value is not a JSON object")
        schema = doc.get("schema")
        if schema in (POSITION_BATCH_V2, POSITION_BATCH_V1):
            return self._batch(value)
        if schema == "raw.v1":
            try:
                fmt, receiver = str(doc["format"]), str(doc.get("receiver") or "")
                data = base64.b64decode(doc["data_b64"])
            except (KeyError, ValueError, TypeError) as exc:
                return self._dead("wrong_type", line, f"bad raw.v1 record: {exc}")
            key = (fmt, receiver)
            if key not in self._parsers:
                try:
                    self._parsers[key] = _ParserDecoder(fmt, source=self.source, receiver=receiver or None,
                                                        max_message_bytes=self.max_message_bytes)
                except (KeyError, ValueError) as exc:
                    return self._dead("unknown_format", line, str(exc))
            return self._parsers[key].feed(data)
        return self._dead("unsupported_record", line, f"cannot replay records of schema {schema!r}")


# --- outputs -------------------------------------------------------------------------------
class StdoutOutput:
    """``--stdout``: positions as JSON lines on stdout, dead letters on stderr."""

    def __init__(self, out: IO[bytes] | None = None, err: IO[bytes] | None = None) -> None:
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr.buffer

    async def positions(self, positions: Sequence[Position]) -> None:
        self.out.write(b"".join(orjson.dumps(p.to_dict()) + b"\n" for p in positions))
        self.out.flush()  # a live feed's lines show as they come, not when the pipe's buffer fills

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        self.err.write(b"".join(orjson.dumps(d.to_dict()) + b"\n" for d in dead))

    async def flush(self) -> None:
        self.out.flush()
        self.err.flush()


class KafkaOutput:
    """Publishes to the positions and dead-letter topics (see ``streams.kafka_io``)."""

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher

    async def positions(self, positions: Sequence[Position]) -> None:
        await self.publisher.positions(positions)

    async def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        await self.publisher.dead_letters(dead)

    async def flush(self) -> None:
        await self.publisher.flush()


# --- record files ---------------------------------------------------------------------------
def record_line(topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None,
                value: bytes) -> bytes:
    doc: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp_ms": timestamp_ms,
        "key": key.decode("utf-8", "replace") if key is not None else None,
    }
    try:
        doc["value"] = value.decode("utf-8")
    except UnicodeDecodeError:
        doc["value_b64"] = base64.b64encode(value).decode("ascii")
    return orjson.dumps(doc) + b"\n"


def open_record_file(path: Path) -> gzip.GzipFile:
    """Record files are gzip-compressed JSON lines."""
    return gzip.open(path, "wb", compresslevel=6)
