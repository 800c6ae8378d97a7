"""Beast framing and decoding on the real dump1090 sample, plus damaged variants."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyModeS import decode as pms_decode
from pyModeS.position import airborne_position_pair

from streams.parsers import make_parser
from streams.parsers.beast import BeastFrame, split_frames
from streams.parsers.modes import MLAT_MAGIC_TICKS

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def _parse(data: bytes, chunks: list[int] | None = None):
    p = make_parser("beast", now=lambda: NOW, source="test.bin")
    out = []
    if chunks is None:
        out.append(p.feed(data))
    else:
        pos = 0
        for size in chunks:
            out.append(p.feed(data[pos : pos + size]))
            pos += size
        out.append(p.feed(data[pos:]))
    out.append(p.flush())
    merged = out[0]
    for r in out[1:]:
        merged.extend(r)
    return merged, p


def test_every_frame_of_the_real_sample_parses(beast_bytes) -> None:
    items, consumed = split_frames(beast_bytes, final=True)
    assert consumed == len(beast_bytes) == 4218
    assert all(isinstance(i, BeastFrame) for i in items)
    kinds = [i.ftype for i in items if isinstance(i, BeastFrame)]
    assert (len(kinds), kinds.count(0x32), kinds.count(0x33)) == (239, 185, 54)
    # 16 frames carry an escaped 0x1a (in the timestamp or message): unescaping is exercised.
    assert sum(b"\x1a\x1a" in i.raw for i in items if isinstance(i, BeastFrame)) == 16
    assert all(len(i.msg) == (7 if i.ftype == 0x32 else 14) for i in items if isinstance(i, BeastFrame))
    result, parser = _parse(beast_bytes)
    assert result.messages == 239
    assert result.dead_letters == []
    assert result.messages == len(result.positions) + result.skipped
    assert parser.stats.as_dict()["messages"] == 239


def test_positions_match_pymodes_pair_decoding(beast_bytes) -> None:
    """The sample has 4 airborne position frames of 48520a: the first waits for its pair,
    the other 3 become positions equal to pyModeS's pair decoding of the same frames."""
    items, _ = split_frames(beast_bytes, final=True)
    result, parser = _parse(beast_bytes)
    assert parser.stats.skipped["cpr_pending"] == 1
    assert len(result.positions) == 3
    last: dict[int, tuple[int, int]] = {}
    expected = []
    for fr in items:
        assert isinstance(fr, BeastFrame)
        d = pms_decode(fr.msg.hex())
        if d.get("bds") == "0,5":
            last[d["cpr_format"]] = (d["cpr_lat"], d["cpr_lon"])
            if len(last) == 2:
                e, o = last[0], last[1]
                expected.append(airborne_position_pair(*e, *o, even_is_newer=d["cpr_format"] == 0))
    assert len(expected) == 3
    for p, (lat, lon) in zip(result.positions, expected, strict=True):
        assert (p.icao24, p.source, p.on_ground) == ("48520a", "adsb", False)
        assert abs(p.lat - lat) < 1e-9 and abs(p.lon - lon) < 1e-9
        assert 43.0 < p.lat < 44.5  # Toulouse area, where traffic's sample was recorded
    # Frame spacing comes from the 12 MHz counter: 24 s of recording, first frame at now().
    times = [p.event_time for p in result.positions]
    assert times == sorted(times) and NOW < times[0] < times[-1] < NOW + 24


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=40))
def test_any_chunking_gives_the_same_result(beast_bytes, cuts) -> None:
    whole, _ = _parse(beast_bytes)
    split, _ = _parse(beast_bytes, cuts)
    assert split.positions == whole.positions
    assert split.messages == whole.messages and split.skipped == whole.skipped
    assert [d.reason for d in split.dead_letters] == [d.reason for d in whole.dead_letters]


def test_split_inside_an_escape_pair(beast_bytes) -> None:
    k = beast_bytes.index(b"\x1a\x1a")
    whole, _ = _parse(beast_bytes)
    split, _ = _parse(beast_bytes, [k + 1])
    assert split.positions == whole.positions and split.messages == 239


def test_damage_becomes_dead_letters_and_the_stream_resyncs(beast_bytes) -> None:
    items, _ = split_frames(beast_bytes, final=True)
    frames = [i.raw for i in items if isinstance(i, BeastFrame)]
    garbage = b"\x00\xffGARBAGE\x13"
    status = b"\x1a\x34" + bytes(12)  # a Radarcape status frame: not Mode S
    cut = frames[10][:9]  # a frame interrupted by the next sync
    data = garbage + b"".join(frames[:10]) + status + cut + b"".join(frames[10:]) + frames[0][:5]
    result, parser = _parse(data)
    reasons = [d.reason for d in result.dead_letters]
    assert reasons == ["resync", "bad_frame_type", "truncated", "truncated"]
    assert result.messages == 239 + 4
    assert len(result.positions) == 3
    # Binary raw bytes survive in the dead letter (base64 in the JSON form).
    d0 = result.dead_letters[0].to_dict()
    assert base64.b64decode(d0["raw_b64"]) == garbage
    assert result.dead_letters[-1].detail.startswith("input ended inside a frame")
    assert parser.stats.dead_letters == {"resync": 1, "bad_frame_type": 1, "truncated": 2}


def test_long_garbage_without_sync_is_refused_without_waiting_for_a_sync() -> None:
    p = make_parser("beast", now=lambda: NOW, max_message_bytes=1024)
    r = p.feed(bytes(5000))
    assert [d.reason for d in r.dead_letters] == ["resync"]
    assert len(r.dead_letters[0].raw) == 5000
    assert p.flush().messages == 0


def test_mode_ac_is_skipped_and_mlat_frames_are_marked(beast_bytes) -> None:
    items, _ = split_frames(beast_bytes, final=True)
    modeac = b"\x1a\x31" + bytes(6) + b"\x20" + b"\x12\x34"
    # Re-stamp the sample's frames with mlat-client's magic timestamp.
    restamped = b""
    for fr in items:
        assert isinstance(fr, BeastFrame)
        payload = MLAT_MAGIC_TICKS.to_bytes(6, "big") + bytes([fr.signal]) + fr.msg
        restamped += bytes([0x1A, fr.ftype]) + payload.replace(b"\x1a", b"\x1a\x1a")
    result, parser = _parse(modeac + restamped)
    assert parser.stats.skipped["mode_ac"] == 1
    assert len(result.positions) == 3
    assert {p.source for p in result.positions} == {"mlat"}
    assert {p.event_time for p in result.positions} == {NOW}
