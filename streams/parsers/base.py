"""The streaming parser contract shared by every input format, and its bookkeeping.

This module owns :class:`BaseParser` (dead-letter/skip/accept accounting and the
per-format counters), :class:`LineParser` (newline framing with partial lines carried
across chunks, oversize protection) and :class:`DocumentParser` (one JSON document per
``flush()``). Parsers do no I/O: bytes in, :class:`~streams.messages.ParseResult` out.

Accounting invariant, checked by the property tests: for every ``ParseResult`` a parser
returns, ``messages == len(positions) + len(dead_letters) + skipped``. Blank lines and
whitespace-only documents are not messages (SBS heartbeats are bare ``\\r\\n``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

import orjson

from streams.messages import DeadLetter, ParseResult, Position
from streams.parsers.validate import Invalid, Reason, Skip

# A dead letter keeps at most this much of its input: the dead-letter topic must stay
# under Kafka's default 1 MiB message limit even for a refused 50 MiB document, and
# 64 KiB is more than any single line or frame we read. The detail says when it was cut.
DEADLETTER_RAW_MAX = 64 * 1024
# An oversize input keeps only its head: enough to see what it was, while the point of
# refusing it is not to carry it around.
OVERSIZE_RAW_PREFIX = 4096


@dataclass(slots=True)
class ParserStats:
    """Running totals for one parser, for the per-format/per-reason counters."""

    messages: int = 0
    positions: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        """Flat ``{"positions": n, "dead_letter.<reason>": n, "skipped.<why>": n}``."""
        out = {"messages": self.messages, "positions": self.positions}
        out.update({f"dead_letter.{k}": v for k, v in sorted(self.dead_letters.items())})
        out.update({f"skipped.{k}": v for k, v in sorted(self.skipped.items())})
        return out


def system_clock() -> float:
    return time.time()


class BaseParser:
    """Accounting shared by all formats; subclasses implement feed/flush."""

    input_format: ClassVar[str] = ""
    # Per-format default for max_message_bytes, overridden per format with its reason;
    # 64 KiB is longer than any single line or frame a receiver writes.
    default_max_message_bytes: ClassVar[int] = 64 * 1024

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.source = source
        self.receiver = receiver
        self.now: Callable[[], float] = now or system_clock
        self.max_message_bytes = max_message_bytes if max_message_bytes is not None else self.default_max_message_bytes
        if self.max_message_bytes < 16:
            raise ValueError("max_message_bytes must be at least 16")
        self.stats = ParserStats()

    # -- accounting: every message ends in exactly one of these three ----------------
    def _dead(
        self,
        result: ParseResult,
        reason: Reason,
        raw: bytes,
        detail: str = "",
        event_time: float | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        if len(raw) > DEADLETTER_RAW_MAX:
            detail = f"{detail}; raw cut to {DEADLETTER_RAW_MAX} of {len(raw)} bytes".lstrip("; ")
            raw = raw[:DEADLETTER_RAW_MAX]
        result.messages += 1
        result.dead_letters.append(
            DeadLetter(
                reason=reason.value,
                input_format=self.input_format,
                raw=bytes(raw),
                source=self.source,
                detail=detail,
                event_time=event_time,
                extra=dict(extra) if extra else {},
            )
        )
        self.stats.messages += 1
        self.stats.dead_letters[reason.value] += 1

    def _invalid(self, result: ParseResult, exc: Invalid, raw: bytes, icao24: str | None = None) -> None:
        self._dead(result, exc.reason, raw, exc.detail, extra={"icao24": icao24} if icao24 else None)

    def _skip(self, result: ParseResult, why: Skip) -> None:
        result.messages += 1
        result.skipped += 1
        self.stats.messages += 1
        self.stats.skipped[why.value] += 1

    def _accept(self, result: ParseResult, pos: Position) -> None:
        result.messages += 1
        result.positions.append(pos)
        self.stats.messages += 1
        self.stats.positions += 1

    def _bug(self, result: ParseResult, exc: Exception, raw: bytes) -> None:
        self._dead(result, Reason.PARSER_ERROR, raw, f"{type(exc).__name__}: {exc}"[:500])

    # -- the streaming interface -------------------------------------------------------
    def feed(self, chunk: bytes) -> ParseResult:
        """Parse what ``chunk`` completes; partial input is kept for the next call."""
        raise NotImplementedError

    def flush(self) -> ParseResult:
        """End of input (or of one document): parse or dead-letter what is buffered."""
        raise NotImplementedError


# What readers and agents hold: any format's parser (feed/flush/stats/input_format).
Parser: TypeAlias = BaseParser


class LineParser(BaseParser):
    """Newline-delimited formats (SBS, AVR, readsb JSON lines).

    Partial lines are carried across ``feed`` calls. A line longer than
    ``max_message_bytes`` becomes one ``oversize`` dead letter and the rest of it, up to
    the next newline, is discarded as part of that same message. At ``flush`` a final
    line without a newline is parsed like any other (files often lack the last newline);
    if it does not parse, it is dead-lettered as ``truncated`` with the parse error in
    the detail, because a cut-off last line is the usual cause.
    """

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        super().__init__(source=source, receiver=receiver, now=now, max_message_bytes=max_message_bytes)
        self._partial = bytearray()
        self._discarding = False

    def feed(self, chunk: bytes) -> ParseResult:
        result = ParseResult()
        if not chunk:
            return result
        parts = chunk.split(b"\n")
        tail = parts.pop()
        if parts:
            if self._discarding:
                # The first piece ends a line already refused as oversize.
                self._discarding = False
                parts.pop(0)
            elif self._partial:
                self._partial += parts[0]
                parts[0] = bytes(self._partial)
                self._partial.clear()
            if parts:
                self._parse_lines(parts, result)
        if not self._discarding:
            self._partial += tail
            if len(self._partial) > self.max_message_bytes:
                self._oversize(result, bytes(self._partial[:OVERSIZE_RAW_PREFIX]), len(self._partial))
                self._partial.clear()
                self._discarding = True
        return result

    def flush(self) -> ParseResult:
        result = ParseResult()
        self._discarding = False
        line = bytes(self._partial)
        self._partial.clear()
        if line.strip():
            inner = ParseResult()
            self._parse_lines([line], inner, final=True)
            result.extend(inner)
        return result

    def _oversize(self, result: ParseResult, raw: bytes, size: int) -> None:
        self._dead(result, Reason.OVERSIZE, raw, f"line of {size}+ bytes > {self.max_message_bytes}")

    def _parse_lines(self, lines: list[bytes], result: ParseResult, final: bool = False) -> None:
        """Parse complete lines in order; ``final`` marks the unterminated last line."""
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            if len(line) > self.max_message_bytes:
                self._oversize(result, line[:OVERSIZE_RAW_PREFIX], len(line))
                continue
            before = len(result.dead_letters)
            try:
                self._parse_line(line, result)
            except Invalid as exc:
                self._invalid(result, exc, line)
            except Exception as exc:
                self._bug(result, exc, line)
            if final and len(result.dead_letters) > before:
                dl = result.dead_letters[-1]
                self.stats.dead_letters[dl.reason] -= 1
                if not self.stats.dead_letters[dl.reason]:
                    del self.stats.dead_letters[dl.reason]
                self.stats.dead_letters[Reason.TRUNCATED.value] += 1
                dl.detail = f"unterminated last line: {dl.reason}: {dl.detail}".rstrip(": ")
                dl.reason = Reason.TRUNCATED.value

    def _parse_line(self, line: bytes, result: ParseResult) -> None:
        raise NotImplementedError


class DocumentParser(BaseParser):
    """Whole-document JSON formats (aircraft.json, trace, OpenSky, traffic tables).

    ``feed`` only buffers; ``flush`` parses everything buffered as ONE document and
    resets. Readers call ``flush`` at the end of each document: end of file, or after
    each HTTP response (see :func:`streams.readers.parse_feed`). A document larger than
    ``max_message_bytes`` is refused as ``oversize`` at flush without being parsed.
    """

    # Real documents: a busy receiver's aircraft.json is ~1 MiB, a day's trace_full a
    # few MiB, OpenSky's whole-world states ~5 MiB; 64 MiB leaves room and bounds memory.
    default_max_message_bytes: ClassVar[int] = 64 * 1024 * 1024

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        super().__init__(source=source, receiver=receiver, now=now, max_message_bytes=max_message_bytes)
        self._buf = bytearray()
        self._size = 0

    def feed(self, chunk: bytes) -> ParseResult:
        self._size += len(chunk)
        if self._size <= self.max_message_bytes:
            self._buf += chunk
        elif len(self._buf) < OVERSIZE_RAW_PREFIX:
            self._buf += chunk[: OVERSIZE_RAW_PREFIX - len(self._buf)]
        return ParseResult()

    def flush(self) -> ParseResult:
        result = ParseResult()
        doc = bytes(self._buf)
        size = self._size
        self._buf.clear()
        self._size = 0
        if size > self.max_message_bytes:
            detail = f"document of {size} bytes > {self.max_message_bytes}"
            self._dead(result, Reason.OVERSIZE, doc[:OVERSIZE_RAW_PREFIX], detail)
            return result
        if not doc.strip():
            return result
        self.parse_document(doc, result)
        return result

    def parse_document(self, doc: bytes, result: ParseResult) -> None:
        """Parse one complete document into ``result`` (pure; never raises)."""
        try:
            obj = orjson.loads(doc)
        except orjson.JSONDecodeError as exc:
            self._dead(result, json_error_reason(exc), doc, str(exc)[:300])
            return
        try:
            self._parse_object(obj, doc, result)
        except Invalid as exc:
            self._invalid(result, exc, doc)
        except Exception as exc:
            self._bug(result, exc, doc)

    def _parse_object(self, obj: object, raw: bytes, result: ParseResult) -> None:
        raise NotImplementedError


def json_error_reason(exc: orjson.JSONDecodeError) -> Reason:
    """A document cut short (dropped connection, partial file) is ``truncated``, else ``bad_json``."""
    return Reason.TRUNCATED if "unexpected end of data" in str(exc) else Reason.BAD_JSON


def dumps_entry(entry: object) -> bytes:
    """Raw bytes for a dead letter about one entry of a larger document."""
    try:
        return orjson.dumps(entry)
    except TypeError:
        return repr(entry).encode("utf-8", "replace")
