"""AVR text frames (dump1090/readsb port 30002 and its timestamped variants).

This module owns the AVR line grammar; decoding is :class:`~streams.parsers.modes.ModeSDecoder`'s.
Accepted lines (case-insensitive hex, ``;`` terminator optional):

* ``*<hex>;``                      plain frame; event time = parser clock ``now()``
* ``@<12 hex ticks><hex>;``        MLAT-timestamped frame (48-bit 12 MHz counter)
* ``<<12 hex ticks><2 hex signal><hex>;``  timestamp and signal level (signal ignored)

``<hex>`` is 14 or 28 digits for Mode S; 4 digits is a Mode A/C reply (skipped,
``mode_ac``). Anything else is a dead letter: ``bad_format`` (unknown prefix),
``bad_hex``, ``bad_length``, then the decoder's own reasons.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from streams.messages import ParseResult
from streams.parsers.base import OVERSIZE_RAW_PREFIX, LineParser
from streams.parsers.modes import Frame, ModeSDecoder, Outcome, TickClock
from streams.parsers.validate import Invalid, Reason, Skip

_HEXRE = re.compile(rb"[0-9A-Fa-f]*")


class AvrParser(LineParser):
    """Streaming AVR parser; lines of one chunk are decoded in one rs1090 call."""

    input_format = "avr"
    # The longest valid line is 1 + 12 + 2 + 28 + 1 = 44 bytes; 1 KiB leaves slack.
    default_max_message_bytes = 1024

    def __init__(
        self,
        *,
        source: str = "",
        receiver: str | None = None,
        now: Callable[[], float] | None = None,
        max_message_bytes: int | None = None,
        reference: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(source=source, receiver=receiver, now=now, max_message_bytes=max_message_bytes)
        self.decoder = ModeSDecoder(
            input_format=self.input_format, receiver=receiver, now=self.now, reference=reference
        )
        self.clock = TickClock(self.now)

    def _frame_of(self, line: bytes) -> Frame | Invalid | Skip:
        s = line.strip()
        head = s[:1]
        body = s[1:]
        if body.endswith(b";"):
            body = body[:-1]
        if not _HEXRE.fullmatch(body):
            if head not in (b"*", b"@", b"<"):
                return Invalid(Reason.BAD_FORMAT, "AVR lines start with '*', '@' or '<'")
            return Invalid(Reason.BAD_HEX, "non-hex character")
        if head == b"*":
            ticks = None
            payload = body
        elif head == b"@":
            ticks, payload = body[:12], body[12:]
        elif head == b"<":
            ticks, payload = body[:12], body[14:]
        else:
            return Invalid(Reason.BAD_FORMAT, "AVR lines start with '*', '@' or '<'")
        if len(payload) == 4:
            return Skip.MODE_AC
        if len(payload) not in (14, 28):
            return Invalid(Reason.BAD_LENGTH, f"{len(payload)} hex digits; Mode S frames are 14 or 28")
        msg = bytes.fromhex(payload.decode("ascii"))
        if ticks is None:
            return Frame(msg=msg, t=self.now(), raw=line)
        t, from_ticks = self.clock.time_of(int(ticks, 16))
        return Frame(msg=msg, t=t, raw=line, from_ticks=from_ticks)

    def _parse_lines(self, lines: list[bytes], result: ParseResult, final: bool = False) -> None:
        items: list[tuple[bytes, Frame | Invalid | Skip]] = []
        frames: list[Frame] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            if len(line) > self.max_message_bytes:
                self._oversize(result, line[:OVERSIZE_RAW_PREFIX], len(line))
                continue
            try:
                item = self._frame_of(line)
            except Exception as exc:
                self._bug(result, exc, line)
                continue
            items.append((line, item))
            if isinstance(item, Frame):
                frames.append(item)
        outcomes: list[Outcome] = self.decoder.decode_batch(frames) if frames else []
        it = iter(outcomes)
        for line, item in items:
            out: Outcome = next(it) if isinstance(item, Frame) else item
            if isinstance(out, Invalid):
                reason, detail = out.reason, out.detail
                if final:
                    reason, detail = Reason.TRUNCATED, f"unterminated last line: {out.reason}: {out.detail}"
                self._dead(result, reason, line, detail)
            elif isinstance(out, Skip):
                self._skip(result, out)
            else:
                self._accept(result, out)
