"""AVR text frames: real frames as dump1090 would print them, and broken lines."""

from __future__ import annotations

import pytest

from streams.messages import Position
from streams.parsers import make_parser
from streams.parsers.modes import TICKS_PER_S, Frame, ModeSDecoder

pytestmark = pytest.mark.unit

CDG = (49.0097, 2.5479)


def _avr_mlat_lines(rows) -> bytes:
    t0 = rows[0]["timestamp"]
    return b"".join(
        b"@%012X%s;\n" % (round((r["timestamp"] - t0) * TICKS_PER_S) + 1, r["frame"].upper().encode()) for r in rows
    )


def test_timestamped_avr_of_real_frames_gives_the_decoders_positions(rs1090_rows) -> None:
    """The first 20,000 rs1090 frames as '@' lines (12 MHz counter relative to the first
    frame, parser clock fixed at the first frame's time) reproduce, chunk by chunk, the
    positions the decoder gives for the same frames with their original timestamps."""
    rows = rs1090_rows[:20_000]
    t0 = rows[0]["timestamp"]
    data = _avr_mlat_lines(rows)
    p = make_parser("avr", now=lambda: t0, reference=CDG, receiver="rx1")
    got = []
    for i in range(0, len(data), 4096):  # chunk edges fall mid-line
        got += p.feed(data[i : i + 4096]).positions
    got += p.flush().positions
    dec = ModeSDecoder(input_format="avr", now=lambda: t0, reference=CDG)
    want = [
        o
        for o in dec.decode_batch(
            [Frame(msg=bytes.fromhex(r["frame"]), t=r["timestamp"], raw=b"", from_ticks=True) for r in rows]
        )
        if isinstance(o, Position)
    ]
    assert len(got) == len(want) > 1000
    for a, b in zip(got, want, strict=True):
        assert (a.icao24, a.lat, a.lon) == (b.icao24, b.lat, b.lon)
        assert a.event_time == pytest.approx(b.event_time, abs=1e-6)
        assert a.receiver == "rx1" and a.input_format == "avr"
    assert p.stats.messages == 20_000
    assert sum(p.stats.dead_letters.values()) == 0


def test_plain_avr_lines_use_the_parser_clock(rs1090_rows) -> None:
    lines = b"".join(b"*%s;\r\n" % r["frame"].encode() for r in rs1090_rows[:50])
    clock = [1_800_000_000.0]
    p = make_parser("avr", now=lambda: clock[0], reference=CDG)
    r = p.feed(lines)
    assert r.messages == 50 and r.positions
    assert {x.event_time for x in r.positions} == {clock[0]}


def test_broken_lines_are_dead_letters_with_reasons(rs1090_rows) -> None:
    f = rs1090_rows[0]["frame"]
    lines = [
        b"*" + f.encode() + b";",  # good (surface position, no reference: skipped)
        b"*" + f[:-1].encode() + b"G;",  # bad hex
        b"*" + f[:20].encode() + b";",  # bad length
        b"#" + f.encode() + b";",  # unknown prefix
        b"*7700;",  # Mode A/C reply
        b"*" + f[:-2].encode() + b"00;",  # wrong parity
        b"",  # blank lines are not messages
    ]
    p = make_parser("avr", now=lambda: 1_800_000_000.0)
    r = p.feed(b"\n".join(lines) + b"\n")
    assert [d.reason for d in r.dead_letters] == ["bad_hex", "bad_length", "bad_format", "bad_crc"]
    assert r.dead_letters[0].raw == lines[1]
    assert dict(p.stats.skipped) == {"no_surface_reference": 1, "mode_ac": 1}
    assert r.messages == 6 == len(r.dead_letters) + r.skipped


def test_last_line_without_newline(rs1090_rows) -> None:
    f = rs1090_rows[0]["frame"].encode()
    p = make_parser("avr", now=lambda: 1_800_000_000.0, reference=CDG)
    assert p.feed(b"*" + f + b";").messages == 0
    assert len(p.flush().positions) == 1  # a complete last line parses
    assert p.feed(b"*" + f[:11]).messages == 0
    r = p.flush()
    assert [d.reason for d in r.dead_letters] == ["truncated"]
    assert "bad_length" in r.dead_letters[0].detail


def test_oversize_line_is_refused_once_and_the_stream_continues(rs1090_rows) -> None:
    f = rs1090_rows[0]["frame"].encode()
    p = make_parser("avr", now=lambda: 1_800_000_000.0, reference=CDG)
    r = p.feed(b"*" + b"A" * 3000)
    r.extend(p.feed(b"B" * 3000 + b";\n*" + f + b";\n"))
    r.extend(p.flush())
    assert [d.reason for d in r.dead_letters] == ["oversize"]
    assert len(r.positions) == 1
    assert r.messages == 2
