"""Beast binary frames (dump1090/readsb port 30005) to positions.

This module owns the Beast framer; decoding is :class:`~streams.parsers.modes.ModeSDecoder`'s.
A frame is ``0x1a``, a type byte, then (after unescaping) a 6-byte big-endian 12 MHz
timestamp, a 1-byte signal level and the message: type ``'1'`` Mode A/C (2 bytes),
``'2'`` Mode S short (7), ``'3'`` Mode S long (14). Inside a frame every ``0x1a`` byte is
sent doubled. The framer is stateful across ``feed`` calls (a frame may be split
anywhere, even between the two bytes of an escape).

What counts as what:

* bytes before a sync that are not a frame (noise, a frame of another type such as
  Radarcape status ``'4'``): one ``resync`` (or ``bad_frame_type``) dead letter per
  run, raw bytes kept (base64 in the dead letter since they are binary);
* a frame interrupted by an unescaped ``0x1a`` (a new frame starting): ``truncated``;
* at ``flush``, a partial frame left in the buffer: ``truncated``;
* Mode A/C frames: skipped (``mode_ac``); they carry no address;
* the signal level is parsed but not carried: the position record has no field for it.

Timestamps go through :class:`~streams.parsers.modes.TickClock`; mlat-client's magic
timestamp marks a frame as an MLAT result (position source ``mlat``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streams.messages import ParseResult
from streams.parsers.base import BaseParser
from streams.parsers.modes import MLAT_MAGIC_TICKS, Frame, ModeSDecoder, Outcome, TickClock
from streams.parsers.validate import Invalid, Reason, Skip

ESC = 0x1A
# Unescaped payload length (timestamp 6 + signal 1 + message) per frame type.
_PAYLOAD = {0x31: 9, 0x32: 14, 0x33: 21}


class BeastParser(BaseParser):
    """Streaming Beast parser; the frames of one chunk are decoded in one rs1090 call."""

    input_format = "beast"
    # Bounds a run of garbage kept while waiting for the next sync byte. A valid frame
    # is at most 2 + 2 * 21 = 44 bytes, so 4 KiB of bytes without a sync is not Beast.
    default_max_message_bytes = 4096

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
        self._buf = b""

    def feed(self, chunk: bytes) -> ParseResult:
        result = ParseResult()
        if not chunk:
            return result
        buf = self._buf + chunk if self._buf else bytes(chunk)
        self._buf = self._frame_buffer(buf, result, final=False)
        return result

    def flush(self) -> ParseResult:
        result = ParseResult()
        buf, self._buf = self._buf, b""
        if buf:
            rest = self._frame_buffer(buf, result, final=True)
            if rest:
                self._dead(result, Reason.TRUNCATED, rest, f"input ended inside a frame ({len(rest)} bytes)")
        return result

    # ------------------------------------------------------------------ framing
    def _frame_buffer(self, buf: bytes, result: ParseResult, *, final: bool) -> bytes:
        """Frame as much of ``buf`` as possible, decode, account; return the unconsumed tail."""
        items, consumed = split_frames(buf, final=final, max_garbage=self.max_message_bytes)
        events: list[tuple[bytes, Frame | Invalid | Skip]] = []
        frames: list[Frame] = []
        for item in items:
            if isinstance(item, BeastFrame):
                if item.ftype == 0x31:
                    events.append((item.raw, Skip.MODE_AC))
                    continue
                t, from_ticks = self.clock.time_of(item.ticks)
                fr = Frame(msg=item.msg, t=t, raw=item.raw, from_ticks=from_ticks, mlat=item.ticks == MLAT_MAGIC_TICKS)
                events.append((item.raw, fr))
                frames.append(fr)
            else:
                events.append(item)
        if events:
            self._emit(events, frames, result)
        return buf[consumed:]

    def _emit(
        self, events: list[tuple[bytes, Frame | Invalid | Skip]], frames: list[Frame], result: ParseResult
    ) -> None:
        outcomes: list[Outcome] = self.decoder.decode_batch(frames) if frames else []
        it = iter(outcomes)
        for raw, item in events:
            out: Outcome = next(it) if isinstance(item, Frame) else item
            if isinstance(out, Invalid):
                self._dead(result, out.reason, raw, out.detail)
            elif isinstance(out, Skip):
                self._skip(result, out)
            else:
                self._accept(result, out)


@dataclass(slots=True, frozen=True)
class BeastFrame:
    """One unescaped Beast frame. ``signal`` is the raw level byte (RSSI = 20*log10(signal/255) dBFS)."""

    ftype: int
    ticks: int
    signal: int
    msg: bytes
    raw: bytes


def split_frames(
    buf: bytes, *, final: bool, max_garbage: int = BeastParser.default_max_message_bytes
) -> tuple[list[BeastFrame | tuple[bytes, Invalid]], int]:
    """Pure Beast framing: (frames and refused byte runs in order, bytes consumed).

    Unless ``final``, a trailing partial frame (or a run of garbage shorter than
    ``max_garbage`` with no sync yet) is left unconsumed for the next call.
    """
    items: list[BeastFrame | tuple[bytes, Invalid]] = []
    n = len(buf)
    i = 0
    while i < n:
        j = buf.find(b"\x1a", i)
        if j < 0:
            if final or n - i > max_garbage:
                items.append((buf[i:], Invalid(Reason.RESYNC, f"{n - i} bytes without a frame")))
                i = n
            break
        if j > i:
            items.append((buf[i:j], Invalid(Reason.RESYNC, f"{j - i} bytes without a frame")))
            i = j
        if j + 1 >= n:
            break
        ftype = buf[j + 1]
        size = _PAYLOAD.get(ftype)
        if size is None:
            # Not a frame start: refuse from this sync byte up to the next one.
            nxt = buf.find(b"\x1a", j + 2)
            if nxt < 0:
                if not final and n - j <= max_garbage:
                    break
                nxt = n
            reason = Reason.RESYNC if ftype == ESC else Reason.BAD_FRAME_TYPE
            items.append((buf[j:nxt], Invalid(reason, f"frame type 0x{ftype:02x}")))
            i = nxt
            continue
        start = j + 2
        body = buf[start : start + size]
        if len(body) < size:
            break
        if ESC not in body:
            end = start + size
            payload = body
        else:
            unescaped, end = _unescape(buf, start, size)
            if end < 0:
                break
            if unescaped is None:
                # An unescaped 0x1a: a new frame began before this one ended.
                items.append((buf[j:end], Invalid(Reason.TRUNCATED, "frame cut by a new sync")))
                i = end
                continue
            payload = unescaped
        items.append(
            BeastFrame(
                ftype=ftype,
                ticks=int.from_bytes(payload[:6], "big"),
                signal=payload[6],
                msg=payload[7:],
                raw=buf[j:end],
            )
        )
        i = end
    return items, i


def _unescape(buf: bytes, start: int, size: int) -> tuple[bytes | None, int]:
    """(payload, end); (None, end) if cut by a new sync at ``end``; (None, -1) if incomplete."""
    out = bytearray()
    k = start
    n = len(buf)
    while len(out) < size:
        if k >= n:
            return None, -1
        b = buf[k]
        if b == ESC:
            if k + 1 >= n:
                return None, -1
            if buf[k + 1] != ESC:
                return None, k
            k += 2
        else:
            k += 1
        out.append(b)
    return bytes(out), k
