"""readsb formats: the real tar1090 trace, and aircraft.json / JSON lines built from it."""

from __future__ import annotations

import copy
import json

import pytest

from streams.parsers import make_parser, parse_bytes
from tests.parsers._constructed import aircraft_json_polls, readsb_jsonl, trace_states

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
# Yucatán peninsula (Mexican states of Campeche, Yucatán, Quintana Roo), generously boxed.
YUCATAN = (17.8, 21.7, -90.6, -86.7)


def _trace(data: bytes):
    return parse_bytes("trace", data, now=lambda: NOW, source="trace_full_ac671b.json")


def test_real_trace_every_point_is_a_position(trace_bytes, trace_doc) -> None:
    r = _trace(trace_bytes)
    pts = trace_doc["trace"]
    assert r.messages == len(pts) == 2500
    assert r.dead_letters == [] and r.skipped == 0
    base = trace_doc["timestamp"]
    assert [p.event_time for p in r.positions] == [base + pt[0] for pt in pts]  # relative times
    assert all((p.lat, p.lon) == (pt[1], pt[2]) for p, pt in zip(r.positions, pts, strict=True))
    assert {p.icao24 for p in r.positions} == {"ac671b"}
    ground = [p for p, pt in zip(r.positions, pts, strict=True) if pt[3] == "ground"]
    assert ground and all(p.on_ground and p.alt_baro_ft is None and p.track_deg is None for p in ground)
    assert all(p.source == "adsb" for p in r.positions)


def test_leg_flags_separate_flights(trace_bytes, trace_doc) -> None:
    r = _trace(trace_bytes)
    pts = trace_doc["trace"]
    starts = [0] + [i for i, pt in enumerate(pts) if (pt[6] or 0) & 2]
    assert len(starts) == 4
    for a, b in zip(starts, [*starts[1:], len(pts)], strict=True):
        # The flight numbers announced by this leg's own detail objects, and nothing else.
        announced = {pt[8]["flight"].strip() for pt in pts[a:b] if pt[8] and pt[8].get("flight")}
        got = {p.callsign for p in r.positions[a:b]} - {None}
        assert got == announced and len(announced) == 1
        first_detail = next(i for i in range(a, b) if pts[i][8] and pts[i][8].get("flight"))
        # Points of a new leg before its first detail do not inherit the previous flight.
        assert all(p.callsign is None for p in r.positions[a:first_detail])


def test_dal1812_crosses_yucatan(trace_bytes) -> None:
    r = _trace(trace_bytes)
    leg = [p for p in r.positions if p.callsign == "DAL1812"]
    lat0, lat1, lon0, lon1 = YUCATAN
    inside = [p for p in leg if lat0 <= p.lat <= lat1 and lon0 <= p.lon <= lon1]
    assert len(inside) > 20
    assert min(p.lat for p in leg) < lat0  # came from the south (Belize)
    assert max(p.lat for p in leg) > lat1  # left over the Gulf of Mexico
    assert all(30_000 <= (p.alt_baro_ft or 0) <= 40_000 for p in inside)


def test_damaged_points_refuse_only_themselves(trace_doc) -> None:
    doc = copy.deepcopy(trace_doc)
    pts = doc["trace"]
    pts[5][1] = 91.0
    pts[6] = "not a point"
    pts[7][8] = {"flight": "BAD#CALL"}
    pts[9] = pts[9][:2]
    pts[10][6] = 8  # altitude flagged geometric
    r = _trace(json.dumps(doc).encode())
    assert [d.reason for d in r.dead_letters] == ["lat_out_of_range", "wrong_type", "bad_callsign", "missing_field"]
    assert r.messages == 2500 and len(r.positions) == 2496
    p10 = next(p for p in r.positions if p.event_time == doc["timestamp"] + pts[10][0])
    assert p10.alt_geom_ft == pts[10][3] and p10.alt_baro_ft is None
    assert r.positions[6].callsign == "DAL1812"  # the bad detail was not carried forward
    assert all(d.extra.get("icao24") == "ac671b" for d in r.dead_letters if d.reason != "wrong_type")


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (b'{"icao": "ac671b", "timestamp": 1738703622.6, "trace": [[0.0, 16.7, -88.0', "truncated"),
        (b'{"icao": "ac671b", "timestamp": 1738703622.6, "trace": [[0.0, 16.7, -88.0]]} x', "bad_json"),
        (b'{"icao": "ac671b", "trace": []}', "missing_field"),
        (b'{"icao": "zz", "timestamp": 1738703622.6, "trace": []}', "bad_icao"),
        (b"[1, 2, 3]", "wrong_type"),
    ],
)
def test_broken_trace_documents(doc: bytes, reason: str) -> None:
    r = _trace(doc)
    assert [d.reason for d in r.dead_letters] == [reason]
    assert r.dead_letters[0].raw == doc


def test_aircraft_json_polling_deduplicates(trace_doc) -> None:
    """aircraft.json polled every second over 3 minutes of the real trace: each trace
    point appears once as a position, its repeats in later polls are duplicates."""
    polls = aircraft_json_polls(trace_doc, every_s=1.0, count=180)
    p = make_parser("readsb-json", now=lambda: NOW, source="http://rx/data/aircraft.json")
    positions = []
    for doc in polls:
        p.feed(doc)
        r = p.flush()
        assert r.messages == 1
        positions += r.positions
    states = trace_states(trace_doc)
    shown = [s for s in states if s["t"] <= states[0]["t"] + 179]
    assert len(positions) == len(shown)
    for pos, s in zip(positions, shown, strict=True):
        assert (pos.lat, pos.lon) == (s["lat"], s["lon"])
        assert pos.event_time == pytest.approx(s["t"], abs=0.06)  # seen_pos has 0.1 s steps
        assert pos.callsign == (s["flight"].strip() if s["flight"] else None)
    assert p.stats.skipped["duplicate"] == 180 - len(shown)


def test_aircraft_json_variants_and_bad_entries(trace_doc) -> None:
    s = trace_states(trace_doc)[100]
    doc = {
        "now": s["t"] + 2.0,
        "aircraft": [
            # dump1090-mutability names, MLAT-derived position
            {
                "hex": "ac671b",
                "altitude": s["alt"],
                "speed": s["gs"],
                "vert_rate": 64,
                "track": s["track"],
                "lat": s["lat"],
                "lon": s["lon"],
                "seen_pos": 2.0,
                "mlat": ["lat", "lon", "altitude"],
            },
            # TIS-B target with a non-ICAO address
            {
                "hex": "~2e1b3c",
                "type": "tisb_other",
                "alt_baro": "ground",
                "lat": s["lat"],
                "lon": s["lon"],
                "seen_pos": 1.0,
            },
            {"hex": "a1b2c3", "type": "mode_s", "alt_baro": 12000},  # no position
            {"hex": "a1b2c4", "lat": "16.8", "lon": -88.0},
            {"hex": "a1b2c5", "lat": 16.8, "lon": -88.0, "alt_baro": "high"},
            "not an aircraft",
        ],
    }
    r = parse_bytes("readsb-json", json.dumps(doc).encode(), now=lambda: NOW)
    assert r.messages == 6
    a, b = r.positions
    assert (a.source, a.alt_baro_ft, a.ground_speed_kt, a.vertical_rate_fpm) == ("mlat", s["alt"], s["gs"], 64)
    assert a.event_time == s["t"]
    assert (b.icao24, b.source, b.on_ground) == ("~2e1b3c", "tisb", True)
    assert [d.reason for d in r.dead_letters] == ["wrong_type", "wrong_type", "wrong_type"]
    assert r.skipped == 1
    empty = parse_bytes("readsb-json", b'{"now": 1738703622.0, "aircraft": []}', now=lambda: NOW)
    assert (empty.messages, empty.skipped) == (1, 1)


def test_readsb_json_lines_match_the_trace(trace_doc, trace_bytes) -> None:
    lines = readsb_jsonl(trace_doc)
    p = make_parser("readsb-jsonl", now=lambda: NOW)
    got = []
    for i in range(0, len(lines), 1000):
        got += p.feed(lines[i : i + 1000]).positions
    got += p.flush().positions
    want = _trace(trace_bytes).positions
    assert len(got) == len(want) == 2500
    for a, b in zip(got, want, strict=True):
        assert (a.icao24, a.lat, a.lon, a.callsign) == (b.icao24, b.lat, b.lon, b.callsign)
        assert a.event_time == pytest.approx(b.event_time, abs=1e-6)
    r = parse_bytes(
        "readsb-jsonl", b'{"now": 1738703622.6, "hex": "ac671b", "lat": 16.7, "lon"\n[1]\n', now=lambda: NOW
    )
    assert [d.reason for d in r.dead_letters] == ["truncated", "wrong_type"]


def test_oversize_document_is_refused_without_parsing(trace_bytes) -> None:
    p = make_parser("trace", now=lambda: NOW, max_message_bytes=100_000)
    for i in range(0, len(trace_bytes), 65536):
        assert p.feed(trace_bytes[i : i + 65536]).messages == 0
    r = p.flush()
    assert [d.reason for d in r.dead_letters] == ["oversize"]
    assert r.dead_letters[0].raw == trace_bytes[:4096]
    assert str(len(trace_bytes)) in r.dead_letters[0].detail
    # The parser is ready for the next document.
    p.feed(trace_bytes[:50_000])
    assert [d.reason for d in p.flush().dead_letters] == ["truncated"]
