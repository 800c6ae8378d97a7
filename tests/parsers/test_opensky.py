"""OpenSky state vectors, built from the real trace points (no real reply ships anywhere)."""

from __future__ import annotations

import json

import pytest

from streams.parsers import make_parser, parse_bytes
from tests.parsers._constructed import opensky_states, trace_states

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def test_states_become_positions_in_feet_and_knots(trace_doc) -> None:
    for index in (3, 400, 760):
        s = trace_states(trace_doc)[index]
        r = parse_bytes("opensky", opensky_states(trace_doc, index), now=lambda: NOW)
        assert r.messages == 2 and r.skipped == 1  # the second vector has no position
        (p,) = r.positions
        assert (p.icao24, p.lat, p.lon, p.event_time) == ("ac671b", s["lat"], s["lon"], int(s["t"]))
        if s["alt"] == "ground":
            assert p.on_ground is True and p.alt_baro_ft is None
        else:
            assert p.alt_baro_ft == pytest.approx(s["alt"], abs=1e-6)
            assert p.on_ground is False
        assert p.ground_speed_kt == pytest.approx(s["gs"], abs=1e-6)
        assert p.callsign == (s["flight"].strip() if s["flight"] else None)
        assert p.source == "adsb" and p.input_format == "opensky"


def test_repeated_poll_is_a_duplicate_and_empty_box_is_counted(trace_doc) -> None:
    p = make_parser("opensky", now=lambda: NOW)
    doc = opensky_states(trace_doc, 10)
    p.feed(doc)
    assert len(p.flush().positions) == 1
    p.feed(doc)
    r = p.flush()
    assert r.positions == [] and p.stats.skipped["duplicate"] == 1
    p.feed(b'{"time": 1738703700, "states": null}')
    r = p.flush()
    assert (r.messages, r.skipped) == (1, 1) and p.stats.skipped["empty_document"] == 1


def test_bad_vectors_refuse_only_themselves(trace_doc) -> None:
    doc = json.loads(opensky_states(trace_doc, 20, with_positionless=False))
    good = doc["states"][0]
    doc["states"] += [
        good[:10],
        ["ac671b", None, "US", 1738703700, 1738703700, -88.0, 95.0] + [None] * 10,
        ["ac671b", None, "US", 1738703700, 1738703700, -88.0, 16.0, "high"] + [None] * 9,
        ["ac671b", None, "US", 1738703700, 1738703700, -88.0, 16.0, None, "no"] + [None] * 8,
        ["ac671b", None, "US", 17387037000, 1738703700, -88.0, 16.0] + [None] * 10,
    ]
    r = parse_bytes("opensky", json.dumps(doc).encode(), now=lambda: NOW)
    assert len(r.positions) == 1
    assert [d.reason for d in r.dead_letters] == [
        "bad_field_count",
        "lat_out_of_range",
        "wrong_type",
        "wrong_type",
        "time_out_of_range",
    ]
    assert parse_bytes("opensky", b'{"time": 1}', now=lambda: NOW).dead_letters[0].reason == "missing_field"
