"""The gates every position passes, and the stable list of reasons."""

from __future__ import annotations

import math
import re

import pytest

from streams.parsers.validate import (
    EARLIEST_EVENT_TIME,
    MAX_FUTURE_S,
    REASONS,
    SKIP_REASONS,
    Invalid,
    Reason,
    check_altitude,
    check_callsign,
    check_ground_speed,
    check_squawk,
    check_track,
    make_position,
    normalise_icao24,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def _reason(fn, *args, **kwargs) -> str:
    with pytest.raises(Invalid) as info:
        fn(*args, **kwargs)
    return info.value.reason.value


def test_icao24_normalised_and_non_icao_kept() -> None:
    assert normalise_icao24("AC671B") == "ac671b"
    assert normalise_icao24(" 0d0abc ") == "0d0abc"
    # readsb's '~' marks a non-ICAO address: kept, so it cannot collide with a real one.
    assert normalise_icao24("~A1B2C3") == "~a1b2c3"
    assert _reason(normalise_icao24, "AC671") == "bad_icao"
    assert _reason(normalise_icao24, "AC671G") == "bad_icao"
    assert _reason(normalise_icao24, "000000") == "bad_icao"
    assert _reason(normalise_icao24, 0xAC671B) == "wrong_type"


@pytest.mark.parametrize(
    ("lat", "lon", "reason"),
    [
        (math.nan, 0.0, "nan_coordinate"),
        (0.0, math.inf, "nan_coordinate"),
        (90.0001, 0.0, "lat_out_of_range"),
        (-91, 0.0, "lat_out_of_range"),
        (0.0, 180.5, "lon_out_of_range"),
        ("19.4", -99.1, "wrong_type"),
        (True, -99.1, "wrong_type"),
        (None, -99.1, "missing_field"),
    ],
)
def test_bad_coordinates_are_refused_with_their_reason(lat, lon, reason) -> None:
    got = _reason(make_position, icao24="0d0abc", event_time=NOW - 5, lat=lat, lon=lon, input_format="sbs", now=NOW)
    assert got == reason


def test_edges_of_the_coordinate_ranges_pass() -> None:
    for lat, lon in ((90.0, 180.0), (-90.0, -180.0), (0, 0)):
        p = make_position(icao24="0d0abc", event_time=NOW, lat=lat, lon=lon, input_format="sbs", now=NOW)
        assert (p.lat, p.lon) == (float(lat), float(lon))


def test_time_gates() -> None:
    ok = make_position(icao24="0d0abc", event_time=EARLIEST_EVENT_TIME, lat=1, lon=1, input_format="sbs", now=NOW)
    assert ok.event_time == EARLIEST_EVENT_TIME
    for t in (EARLIEST_EVENT_TIME - 1, NOW + MAX_FUTURE_S + 1, NOW * 1000, math.nan):
        assert _reason(make_position, icao24="0d0abc", event_time=t, lat=1, lon=1, input_format="sbs", now=NOW) == (
            "time_out_of_range"
        )
    near_future = make_position(
        icao24="0d0abc", event_time=NOW + MAX_FUTURE_S, lat=1, lon=1, input_format="sbs", now=NOW
    )
    assert near_future.event_time == NOW + MAX_FUTURE_S


def test_field_gates() -> None:
    assert check_altitude(-1400) == -1400.0
    assert check_altitude(70_000) == 70_000.0  # U-2 cruise
    assert _reason(check_altitude, -2500) == "alt_out_of_range"
    assert _reason(check_altitude, 200_000) == "alt_out_of_range"
    assert _reason(check_altitude, math.nan) == "nan_value"
    assert check_ground_speed(1900) == 1900.0
    assert _reason(check_ground_speed, 2100) == "speed_out_of_range"
    assert _reason(check_ground_speed, -1) == "speed_out_of_range"
    assert check_track(360) == 0.0
    assert _reason(check_track, 361) == "track_out_of_range"
    assert check_callsign("dal1812 ") == "DAL1812"
    assert check_callsign("        ") is None
    assert _reason(check_callsign, "DAL1812XYZ") == "bad_callsign"
    assert _reason(check_callsign, "AB#12") == "bad_callsign"
    assert check_squawk("7700") == "7700"
    assert check_squawk(1200) == "1200"
    assert check_squawk(7) == "0007"
    assert _reason(check_squawk, "7800") == "bad_squawk"
    assert _reason(check_squawk, 8) == "bad_squawk"


def test_reason_codes_are_stable_snake_case_and_disjoint() -> None:
    for code in REASONS | SKIP_REASONS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code)
    assert not REASONS & SKIP_REASONS
    # The codes the issue names must exist under exactly these names.
    for code in (
        "bad_icao",
        "lat_out_of_range",
        "nan_coordinate",
        "truncated",
        "bad_crc",
        "bad_json",
        "wrong_type",
        "time_out_of_range",
        "oversize",
        "unsupported_df",
    ):
        assert code in REASONS
    assert Reason("bad_crc") is Reason.BAD_CRC
