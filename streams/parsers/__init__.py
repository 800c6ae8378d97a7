"""Input parsers: every feed format an analyst runs, to one stream of validated positions.

This package owns parsing only: pure functions and plain stateful objects, bytes in,
:class:`~streams.messages.ParseResult` out, no I/O (readers live in :mod:`streams.readers`).

Registry and entry points:

* :data:`FORMATS` maps a format name to its parser class: ``sbs``, ``avr``, ``beast``,
  ``readsb-json`` (aircraft.json snapshot), ``readsb-jsonl`` (readsb JSON position
  lines), ``trace`` (tar1090 trace_full / globe_history), ``opensky`` (REST states),
  ``traffic-json`` (pandas flight tables).
* :func:`make_parser` builds one; every parser has ``feed(chunk) -> ParseResult`` and
  ``flush() -> ParseResult`` and a ``stats`` counter object (:class:`ParserStats`).
  Line and frame formats (sbs, avr, beast, readsb-jsonl) emit as soon as a line/frame
  is complete and carry partial input across chunks; document formats (readsb-json,
  trace, opensky, traffic-json) buffer and parse ONE document per ``flush()``.
* :func:`detect_format` guesses a format from the first bytes of an input.
* :func:`parse_bytes` runs a whole input through a fresh parser (tests, tools).

Validation rules and the list of dead-letter/skip reasons live in
:mod:`streams.parsers.validate`.
"""

from __future__ import annotations

from collections.abc import Callable

from streams.messages import ParseResult
from streams.parsers.avr import AvrParser
from streams.parsers.base import BaseParser, Parser, ParserStats
from streams.parsers.beast import BeastParser
from streams.parsers.opensky import OpenSkyParser
from streams.parsers.readsb import ReadsbJsonlParser, ReadsbJsonParser, TraceParser
from streams.parsers.sbs import SbsParser
from streams.parsers.traffic import TrafficJsonParser
from streams.parsers.validate import REASONS, SKIP_REASONS, Reason, Skip

FORMATS: dict[str, type[BaseParser]] = {
    "sbs": SbsParser,
    "avr": AvrParser,
    "beast": BeastParser,
    "readsb-json": ReadsbJsonParser,
    "readsb-jsonl": ReadsbJsonlParser,
    "trace": TraceParser,
    "opensky": OpenSkyParser,
    "traffic-json": TrafficJsonParser,
}

# Formats whose parser takes one whole document per flush().
DOCUMENT_FORMATS: frozenset[str] = frozenset({"readsb-json", "trace", "opensky", "traffic-json"})
# Formats decoded by rs1090, which accept a receiver reference position.
MODE_S_FORMATS: frozenset[str] = frozenset({"avr", "beast"})

__all__ = [
    "DOCUMENT_FORMATS",
    "FORMATS",
    "MODE_S_FORMATS",
    "REASONS",
    "SKIP_REASONS",
    "Parser",
    "ParserStats",
    "Reason",
    "Skip",
    "detect_format",
    "make_parser",
    "parse_bytes",
]


def make_parser(
    fmt: str,
    *,
    source: str = "",
    receiver: str | None = None,
    now: Callable[[], float] | None = None,
    max_message_bytes: int | None = None,
    reference: tuple[float, float] | None = None,
    utc_offset_s: float = 0.0,
) -> Parser:
    """A fresh parser for ``fmt`` (a key of :data:`FORMATS`).

    ``source`` names the input in dead letters (a path or URL); ``receiver`` is copied
    into every position; ``now`` is the clock for missing times and future-time checks
    (injectable for tests); ``max_message_bytes`` overrides the format's limit
    (None = the format's default). ``reference`` is the receiver's (lat, lon), used by
    ``avr``/``beast`` for surface positions only; ``utc_offset_s`` is for ``sbs`` feeds
    that write local time (seconds east of UTC). Raises ValueError for an unknown
    format or an option the format does not take.
    """
    cls = FORMATS.get(fmt)
    if cls is None:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
    if reference is not None and fmt not in MODE_S_FORMATS:
        raise ValueError(f"format {fmt!r} takes no reference position")
    if utc_offset_s and fmt != "sbs":
        raise ValueError(f"format {fmt!r} takes no utc_offset_s")
    common = {"source": source, "receiver": receiver, "now": now, "max_message_bytes": max_message_bytes}
    if cls is AvrParser:
        return AvrParser(**common, reference=reference)  # type: ignore[arg-type]
    if cls is BeastParser:
        return BeastParser(**common, reference=reference)  # type: ignore[arg-type]
    if cls is SbsParser:
        return SbsParser(**common, utc_offset_s=utc_offset_s)  # type: ignore[arg-type]
    return cls(**common)  # type: ignore[arg-type]


def parse_bytes(fmt: str, data: bytes, **kwargs: object) -> ParseResult:
    """Whole input through a fresh parser: ``feed(data)`` then ``flush()``, merged."""
    parser = make_parser(fmt, **kwargs)  # type: ignore[arg-type]
    result = parser.feed(data)
    result.extend(parser.flush())
    return result


_SBS_KINDS = (b"MSG,", b"SEL,", b"ID,", b"AIR,", b"STA,", b"CLK,")


def detect_format(first_bytes: bytes) -> str | None:
    """Best guess of the format from the start of an input (None when unsure).

    Gzip input must be decompressed first (the readers do it). JSON documents are told
    apart by their distinctive keys within the given prefix (pass a few KiB).
    """
    b = first_bytes
    if b[:2] == b"\x1f\x8b":
        return None
    if len(b) >= 2 and b[0] == 0x1A and b[1] in (0x31, 0x32, 0x33):
        return "beast"
    s = b.lstrip(b"\xef\xbb\xbf \t\r\n")
    if s.startswith(_SBS_KINDS):
        return "sbs"
    if s[:1] in (b"*", b"@", b"<") and s[1:3] and all(c in b"0123456789abcdefABCDEF" for c in s[1:3]):
        return "avr"
    if s.startswith(b"{"):
        if b'"states"' in s:
            return "opensky"
        if b'"trace"' in s:
            return "trace"
        if b'"aircraft"' in s:
            return "readsb-json"
        if b'"hex"' in s:
            return "readsb-jsonl"
        if b'"icao24"' in s and b'"timestamp"' in s:
            return "traffic-json"
        return None
    if s.startswith(b"[") and b'"icao24"' in s:
        return "traffic-json"
    return None
