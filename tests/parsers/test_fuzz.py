"""Property tests: no input makes a parser raise, and every message is accounted for.

For every format: arbitrary bytes in arbitrary chunks, and structured-but-wrong inputs
(right framing or skeleton, random or wrongly typed contents). Each ParseResult must
satisfy ``messages == positions + dead letters + skipped``, and the ``parser_error``
reason (a bug of ours meeting unexpected input) must never appear.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.messages import ParseResult
from streams.parsers import FORMATS, make_parser
from streams.parsers.modes import crc_remainder
from streams.parsers.validate import EARLIEST_EVENT_TIME, MAX_FUTURE_S

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(fmt: str, data: bytes, cuts: list[int]) -> ParseResult:
    p = make_parser(fmt, now=lambda: NOW, reference=(49.0, 2.5) if fmt in ("avr", "beast") else None)
    total = ParseResult()
    pos = 0
    for size in [*cuts, len(data)]:
        r = p.feed(data[pos : pos + size])
        _check(r)
        total.extend(r)
        pos += size
        if pos >= len(data):
            break
    r = p.flush()
    _check(r)
    total.extend(r)
    stats = p.stats
    assert stats.messages == total.messages
    assert stats.positions == len(total.positions)
    assert sum(stats.dead_letters.values()) == len(total.dead_letters)
    assert sum(stats.skipped.values()) == total.skipped
    return total


def _check(r: ParseResult) -> None:
    assert r.messages == len(r.positions) + len(r.dead_letters) + r.skipped
    for d in r.dead_letters:
        assert d.reason != "parser_error", d
    for p in r.positions:
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180
        assert math.isfinite(p.event_time) and p.event_time >= EARLIEST_EVENT_TIME
        assert p.icao24 not in ("000000", "ffffff")
        if p.input_format not in ("avr", "beast"):
            assert p.event_time <= NOW + MAX_FUTURE_S
        # Beast/AVR-MLAT times follow the receiver's counter from an anchor at now();
        # TickClock (tested in test_modes) bounds its jumps, not the wall clock.


cuts = st.lists(st.integers(min_value=0, max_value=64), max_size=8)


@SETTINGS
@given(fmt=st.sampled_from(sorted(FORMATS)), data=st.binary(max_size=600), cuts=cuts)
def test_arbitrary_bytes_never_raise(fmt, data, cuts) -> None:
    r = _run(fmt, data, cuts)
    if data.strip(b" \t\r\n\x0b\x0c"):
        assert r.messages >= 1  # non-blank input never vanishes without a count


# ---------------------------------------------------------------- structured but wrong
_field = st.one_of(
    st.just(""),
    st.text(alphabet="0123456789.-", max_size=12),
    st.text(max_size=8),
    st.sampled_from(["nan", "inf", "-1", "0", "2024/07/06", "12:00:00.000", "A1B2C3", "~0D0ABC", "99999999"]),
)


@SETTINGS
@given(mtype=st.integers(-1, 10), fields=st.lists(_field, min_size=0, max_size=24), cuts=cuts)
def test_sbs_lines_with_random_fields(mtype, fields, cuts) -> None:
    line = ",".join(["MSG", str(mtype), *fields]).encode("utf-8", "replace")
    _run("sbs", line + b"\r\n" + line, cuts)


def _with_parity(body: bytes) -> bytes:
    return body[:-3] + crc_remainder(body[:-3] + b"\x00\x00\x00").to_bytes(3, "big")


_mode_s = st.one_of(
    st.binary(min_size=7, max_size=7),
    st.binary(min_size=14, max_size=14),
    # Extended squitters with a correct parity: random ME fields reach rs1090 and our state.
    st.builds(
        lambda df, rest: _with_parity(bytes([df << 3 | (rest[0] & 7)]) + rest[1:]),
        st.sampled_from([17, 18]),
        st.binary(min_size=14, max_size=14),
    ),
    st.builds(
        lambda rest: _with_parity(bytes([11 << 3 | (rest[0] & 7)]) + rest[1:]), st.binary(min_size=7, max_size=7)
    ),
)


@SETTINGS
@given(frames=st.lists(_mode_s, max_size=30), cuts=cuts)
def test_avr_lines_of_random_frames(frames, cuts) -> None:
    data = b"".join(b"*" + f.hex().encode() + b";\n" for f in frames)
    _run("avr", data, cuts)


@SETTINGS
@given(
    frames=st.lists(st.tuples(st.sampled_from([0x31, 0x32, 0x33, 0x34]), st.binary(max_size=8), _mode_s), max_size=30),
    cuts=cuts,
)
def test_beast_frames_of_random_content(frames, cuts) -> None:
    data = b""
    for ftype, ts_sig, msg in frames:
        payload = (ts_sig + bytes(7))[:7] + msg
        data += bytes([0x1A, ftype]) + payload.replace(b"\x1a", b"\x1a\x1a")
    r = _run("beast", data, cuts)
    assert r.messages >= len(frames) // 2


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=12,
)
_aircraft_keys = [
    "hex",
    "type",
    "flight",
    "alt_baro",
    "altitude",
    "alt_geom",
    "gs",
    "speed",
    "track",
    "baro_rate",
    "geom_rate",
    "vert_rate",
    "squawk",
    "lat",
    "lon",
    "seen_pos",
    "mlat",
    "tisb",
    "now",
]
_aircraft = st.dictionaries(st.sampled_from(_aircraft_keys), _json | st.floats(-200, 200), max_size=12)


@SETTINGS
@given(now=_json | st.floats(1.6e9, 1.8e9), aircraft=st.lists(_aircraft | _json, max_size=6), cuts=cuts)
def test_aircraft_json_with_wrong_contents(now, aircraft, cuts) -> None:
    doc = json.dumps({"now": now, "aircraft": aircraft}).encode()
    _run("readsb-json", doc, cuts)
    _run("readsb-jsonl", b"\n".join(json.dumps(a).encode() for a in aircraft), cuts)


@SETTINGS
@given(
    icao=st.sampled_from(["ac671b", "~0d0abc", "zz", ""]) | _json,
    ts=st.floats(1.6e9, 1.8e9) | _json,
    points=st.lists(st.lists(_json | st.floats(-200, 200), max_size=15) | _json, max_size=8),
    cuts=cuts,
)
def test_trace_with_wrong_contents(icao, ts, points, cuts) -> None:
    _run("trace", json.dumps({"icao": icao, "timestamp": ts, "trace": points}).encode(), cuts)


@SETTINGS
@given(states=st.lists(st.lists(_json | st.floats(-200, 200), min_size=0, max_size=19) | _json, max_size=8), cuts=cuts)
def test_opensky_with_wrong_contents(states, cuts) -> None:
    _run("opensky", json.dumps({"time": 1738703700, "states": states}).encode(), cuts)


_row_keys = [
    "timestamp",
    "icao24",
    "latitude",
    "longitude",
    "altitude",
    "geoaltitude",
    "groundspeed",
    "track",
    "vertical_rate",
    "callsign",
    "squawk",
    "onground",
    "source",
]


@SETTINGS
@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from(_row_keys), _json | st.floats(-200, 200), max_size=13) | _json, max_size=8
    ),
    cuts=cuts,
)
def test_traffic_json_with_wrong_contents(rows, cuts) -> None:
    _run("traffic-json", json.dumps(rows).encode(), cuts)
    if rows and all(isinstance(r, dict) for r in rows):
        cols = {k: {str(i): r.get(k) for i, r in enumerate(rows)} for k in _row_keys}
        _run("traffic-json", json.dumps(cols).encode(), cuts)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=9000), max_size=12))
def test_line_formats_are_chunking_invariant(sbs_bytes, cuts) -> None:
    whole = _run("sbs", sbs_bytes, [])
    split = _run("sbs", sbs_bytes, cuts)
    assert split.positions == whole.positions
    assert (split.messages, split.skipped) == (whole.messages, whole.skipped)
