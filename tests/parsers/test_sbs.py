"""SBS-1/BaseStation lines: the real Los Angeles sample and hand-broken variants."""

from __future__ import annotations

import calendar

import pytest

from streams.messages import DeadLetter, Position
from streams.parsers import make_parser
from streams.parsers.sbs import SbsParser, parse_sbs_line

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def test_real_sample_positions_and_merged_fields(sbs_bytes) -> None:
    """Expected values are derived from the file itself, line by line, independently."""
    lines = [ln.split(",") for ln in sbs_bytes.decode().splitlines()]
    expected = []
    callsign: dict[str, str] = {}
    speed: dict[str, float] = {}
    for f in lines:
        hexid = f[4].lower()
        if f[10].strip():  # MSG,1 mostly, but line 1316 is a MSG,3 with callsign "XXX"
            callsign[hexid] = f[10].strip()
        if f[1] == "4" and f[12]:
            speed[hexid] = float(f[12])
        if f[14] and f[15]:
            expected.append((hexid, float(f[14]), float(f[15]), callsign.get(hexid), speed.get(hexid)))
    p = make_parser("sbs", now=lambda: NOW, receiver="la-1")
    r = p.feed(sbs_bytes)
    r.extend(p.flush())
    assert r.messages == len(lines) == 4184
    assert r.dead_letters == []
    got = [(x.icao24, x.lat, x.lon, x.callsign, x.ground_speed_kt) for x in r.positions]
    assert got == expected
    assert len(got) == sum(1 for f in lines if f[1] == "3")
    # The sample's date/time fields are empty: the parser clock stands in.
    assert {x.event_time for x in r.positions} == {NOW}
    assert {x.source for x in r.positions} == {"other"}
    assert {x.receiver for x in r.positions} == {"la-1"}
    assert p.stats.skipped["no_position"] == 4184 - len(expected)


def _line(mtype: int, hexid: str, date: str = "", time_: str = "", **fields: str) -> bytes:
    f = ["MSG", str(mtype), "1", "1", hexid, "1", date, time_, date, time_] + [""] * 12
    names = {
        "callsign": 10,
        "alt": 11,
        "gs": 12,
        "track": 13,
        "lat": 14,
        "lon": 15,
        "vrate": 16,
        "squawk": 17,
        "ground": 21,
        "logdate": 8,
        "logtime": 9,
    }
    for k, v in fields.items():
        f[names[k]] = v
    return ",".join(f).encode() + b"\r\n"


def test_event_time_from_date_and_time_fields_in_utc() -> None:
    p = SbsParser(now=lambda: NOW)
    r = p.feed(_line(3, "0D0ABC", "2024/07/06", "12:34:56.250", lat="19.43", lon="-99.07", alt="7350"))
    want = calendar.timegm((2024, 7, 6, 12, 34, 56)) + 0.25
    assert r.positions[0].event_time == want
    # Generated date empty: the logged one is used.
    r = p.feed(_line(3, "0D0ABC", lat="19.43", lon="-99.07", logdate="2024-07-06", logtime="12:35:00.000"))
    assert r.positions[0].event_time == want + 3.75
    local = SbsParser(now=lambda: NOW, utc_offset_s=-6 * 3600)  # BaseStation in Mexico City time
    r = local.feed(_line(3, "0D0ABC", "2024/07/06", "06:34:56.250", lat="19.43", lon="-99.07"))
    assert r.positions[0].event_time == want


def test_remembered_fields_expire() -> None:
    p = SbsParser(now=lambda: NOW)
    d = "2024/07/06"
    p.feed(_line(1, "A1B2C3", d, "10:00:00.000", callsign="RCH123  "))
    p.feed(_line(4, "A1B2C3", d, "10:00:00.000", gs="420", track="181.5", vrate="-64"))
    p.feed(_line(6, "A1B2C3", d, "10:00:01.000", squawk="4611", alt="31000"))
    fresh = p.feed(_line(3, "A1B2C3", d, "10:00:10.000", lat="31.0", lon="-110.0", alt="31000")).positions[0]
    assert (fresh.callsign, fresh.ground_speed_kt, fresh.track_deg, fresh.squawk) == ("RCH123", 420.0, 181.5, "4611")
    stale = p.feed(_line(3, "A1B2C3", d, "10:00:30.000", lat="31.1", lon="-110.0", alt="31000")).positions[0]
    assert stale.ground_speed_kt is None  # velocity older than 15 s is not motion evidence
    assert stale.callsign == "RCH123"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"MSG,3,1,1,0D0ABC,1,,,,,,7000,,,19.4,-99.1,,,0,0,0", "bad_field_count"),
        (_line(3, "0D0ABX", lat="19.4", lon="-99.1"), "bad_icao"),
        (_line(3, "0D0ABC", lat="nan", lon="-99.1"), "nan_coordinate"),
        (_line(3, "0D0ABC", lat="91.0", lon="-99.1"), "lat_out_of_range"),
        (_line(3, "0D0ABC", lat="19.4", lon="-199.1"), "lon_out_of_range"),
        (_line(3, "0D0ABC", lat="19.4"), "missing_field"),
        (_line(3, "0D0ABC", lat="north", lon="-99.1"), "wrong_type"),
        (_line(3, "0D0ABC", "2024/13/06", "10:00:00", lat="19.4", lon="-99.1"), "bad_time"),
        (_line(3, "0D0ABC", "1999/12/31", "23:59:59", lat="19.4", lon="-99.1"), "time_out_of_range"),
        (_line(3, "0D0ABC", "2031/01/01", "00:00:00", lat="19.4", lon="-99.1"), "time_out_of_range"),
        (_line(5, "0D0ABC", alt="250000"), "alt_out_of_range"),
        (_line(6, "0D0ABC", squawk="7800"), "bad_squawk"),
        (b"MSG,9,1,1,0D0ABC,1,,,,,,,,,,,,,,,,", "bad_format"),
        (b"HELLO WORLD", "bad_format"),
        (b"\xff\xfe\x00garbage", "bad_encoding"),
    ],
)
def test_broken_lines(line: bytes, reason: str) -> None:
    p = SbsParser(now=lambda: NOW, source="tcp://rx:30003")
    out = parse_sbs_line(line, parser=p)
    assert isinstance(out, DeadLetter)
    assert out.reason == reason
    assert out.raw == line.rstrip(b"\r\n")
    assert out.source == "tcp://rx:30003" and out.input_format == "sbs"


def test_other_sbs_kinds_and_heartbeats() -> None:
    p = SbsParser(now=lambda: NOW)
    r = p.feed(b"SEL,,1,1,0D0ABC,1,,,,,RCH123\r\n\r\nSTA,,5,179,400AE7,10103,2008/11/28,14:58:51.153\r\n")
    assert r.messages == 2 and r.skipped == 2  # the blank heartbeat line is not a message
    assert parse_sbs_line(_line(3, "0D0ABC", lat="19.4", lon="-99.1", ground="-1"), parser=p).on_ground is True
    pos = parse_sbs_line(_line(3, "~0D0ABC", lat="19.4", lon="-99.1"), parser=p)
    assert isinstance(pos, Position) and pos.icao24 == "~0d0abc"
