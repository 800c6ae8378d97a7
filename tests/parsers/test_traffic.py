"""pandas flight tables from the traffic library: the real Boeing 787 test flight."""

from __future__ import annotations

import json

import pytest

from streams.parsers import parse_bytes

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def test_real_boeing_sample(boeing_bytes) -> None:
    rows = json.loads(boeing_bytes)
    r = parse_bytes("traffic-json", boeing_bytes, now=lambda: NOW)
    assert r.messages == len(rows) == 1630
    assert r.dead_letters == []
    assert [(p.event_time, p.lat, p.lon) for p in r.positions] == [
        (row["timestamp"] / 1000.0, row["latitude"], row["longitude"]) for row in rows
    ]
    assert {p.callsign for p in r.positions} == {"BOE004"}
    assert [p.alt_baro_ft for p in r.positions] == [float(row["altitude"]) for row in rows]
    assert [p.ground_speed_kt for p in r.positions] == [float(row["groundspeed"]) for row in rows]


def test_columns_orientation_gives_the_same_positions(boeing_bytes) -> None:
    rows = json.loads(boeing_bytes)
    columns = {c: {str(i): row.get(c) for i, row in enumerate(rows)} for c in rows[0]}
    a = parse_bytes("traffic-json", boeing_bytes, now=lambda: NOW).positions
    b = parse_bytes("traffic-json", json.dumps(columns).encode(), now=lambda: NOW).positions
    assert a == b


def test_rows_without_position_and_bad_rows(boeing_bytes) -> None:
    rows = json.loads(boeing_bytes)[:5]
    rows[1]["latitude"] = rows[1]["longitude"] = None  # a velocity-only row
    rows[2]["timestamp"] = "2017-08-02T22:28:02+00:00"
    rows[3]["timestamp"] = "yesterday"
    rows[4]["icao24"] = None
    r = parse_bytes("traffic-json", json.dumps(rows).encode(), now=lambda: NOW)
    assert r.skipped == 1
    assert [d.reason for d in r.dead_letters] == ["bad_time", "wrong_type"]
    assert r.positions[1].event_time == 1501712882.0


def test_squawk_without_its_leading_zero_is_that_code() -> None:
    """traffic's vasaloppet sample writes squawk 0255 as "255" on every row (an integer column):
    the positions are kept with squawk "0255", not all refused as bad squawks."""
    import gzip
    from pathlib import Path

    raw = gzip.decompress((Path(__file__).parents[1] / "data" / "patterns" / "vasaloppet.json.gz").read_bytes())
    res = parse_bytes("traffic-json", raw)
    assert len(res.positions) == 2381 and not res.dead_letters
    assert {p.squawk for p in res.positions} == {"0255"}
    bad = parse_bytes("traffic-json", b'[{"timestamp": 1583041470000, "icao24": "44b0b4", "latitude": 60.9,'
                                      b' "longitude": 14.5, "squawk": "8"}]')
    assert [d.reason for d in bad.dead_letters] == ["bad_squawk"]  # 8 is not octal: still refused
