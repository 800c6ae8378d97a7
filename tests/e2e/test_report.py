"""`skyfence report` on the repository's real recordings (embedded engine, no services).

Over files (no services) and over live data: the tracks topic a real worker wrote.
The two recordings are civil flights, so the report runs with ``--all-aircraft``; the
figures asserted are the ones the README's data notes state independently: DAL1812
enters Mexico over Yucatán, BOE004 passes about 26 nm from the boundary near Laredo.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from streams.settings import Settings
from tests.paths import REPO_ROOT

TRACE = REPO_ROOT / "tests" / "data" / "readsb_trace_full_ac671b.json.gz"
BOEING = REPO_ROOT / "tests" / "data" / "traffic_dreamliner_boeing.json.gz"


def report(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "report", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.unit
def test_report_json_and_png_on_real_recordings(tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    proc = report(str(TRACE), str(BOEING), "--all-aircraft", "--json", "--png", str(png))
    doc = orjson.loads(proc.stdout)
    missions = [t for t in doc["tracks"] if t["mission"]]
    by_call = {t["callsign"]: t for t in missions}
    assert set(by_call) == {"DAL1812", "BOE004"}, [t["callsign"] for t in missions]

    dal = by_call["DAL1812"]
    assert dal["entered"] is True
    assert dal["closest_approach"]["distance_m"] < -50_000  # deep inside over Yucatán
    assert dal["time_in_zone_s"]["sovereign"] > 600
    # deep inside Mexico: described from a Mexican town (no ", country" suffix), as "N km DIR of X"
    assert re.fullmatch(r"\d+ km (N|NE|E|SE|S|SW|W|NW) of [^,]+", dal["closest_approach"]["description"])

    boe = by_call["BOE004"]
    assert boe["entered"] is False
    assert 30_000 < boe["closest_approach"]["distance_m"] < 70_000  # "about 26 nm" = 48 km
    assert "Laredo" in boe["closest_approach"]["description"]
    assert boe["time_in_zone_s"].get("sovereign", 0) == 0
    assert boe["first_seen"] <= boe["closest_approach"]["time"] <= boe["last_seen"]

    assert doc["summary"]["missions"] == 2 and doc["summary"]["entered"] == 1
    assert sum(doc["daily"].values()) == 2
    assert doc["daily"]["2025-02-04"] == 1 and doc["daily"]["2017-08-03"] == 1
    # tracks far from Mexico are reported but are not missions
    assert any(not t["mission"] and t["callsign"] == "DAL2418" for t in doc["tracks"])

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 600
    assert len(data) > 50_000  # a drawn map, not an empty canvas


@pytest.mark.unit
def test_report_window_and_military_scope() -> None:
    # window on the Yucatán crossing only: one mission, one day, the Boeing flight outside it
    proc = report(str(TRACE), str(BOEING), "--all-aircraft", "--json",
                  "--from", "2025-02-04T21:00:00Z", "--to", "2025-02-04T23:59:59Z")
    doc = orjson.loads(proc.stdout)
    assert [t["callsign"] for t in doc["tracks"] if t["mission"]] == ["DAL1812"]
    assert all(t["last_seen"] <= doc["window"]["to"] and t["first_seen"] >= doc["window"]["from"]
               for t in doc["tracks"])
    assert doc["daily"] == {"2025-02-04": 1}
    assert doc["summary"]["headline"] == "1 mission in 1 day"

    # default scope is military/surveillance: these civil flights are not reported
    doc = orjson.loads(report(str(TRACE), "--json").stdout)
    assert doc["tracks"] == [] and doc["summary"]["missions"] == 0

    text = report(str(TRACE), "--all-aircraft").stdout
    assert "MISSION DAL1812" in text and "ENTERED" in text


@pytest.mark.integration
async def test_report_over_live_tracks_topic(settings: Settings, start_worker: Any) -> None:
    from tests.e2e.test_pipeline import redis_alerts, skyfence

    settings = settings.replace(alert_policy="all")
    start_worker(settings_=settings)
    skyfence(settings, "replay", str(TRACE), "--speed", "max")
    skyfence(settings, "replay", str(BOEING), "--speed", "max")
    await redis_alerts(settings, expect=10)
    # the worker publishes track updates alongside the alerts: wait until all ten segments are there
    from streams.topics import TRACKS
    from tests.kafka_helpers import read_topic

    await read_topic(settings, TRACKS.name(settings), expect=10, timeout=60, settle=3.0)
    live = orjson.loads(skyfence(settings, "report", "--all-aircraft", "--json").stdout)
    offline = orjson.loads(report(str(TRACE), str(BOEING), "--all-aircraft", "--json").stdout)
    assert live["summary"]["missions"] == offline["summary"]["missions"] == 2
    assert live["daily"] == offline["daily"]
    by_seg = {t["segment_id"]: t for t in offline["tracks"]}
    for t in live["tracks"]:
        if t["mission"]:
            o = by_seg[t["segment_id"]]  # same segments, named identically by both modes
            assert t["entered"] == o["entered"]
            assert abs(t["closest_approach"]["distance_m"] - o["closest_approach"]["distance_m"]) < 1.0
            assert t["closest_approach"]["description"] == o["closest_approach"]["description"]
            # the live segment is still open (no end-of-file close): only its last interval may differ
            for zone, secs in o["time_in_zone_s"].items():
                assert abs(t["time_in_zone_s"][zone] - secs) <= 60, (zone, t["time_in_zone_s"], o["time_in_zone_s"])
            assert t["time_in_zone_s"]["sovereign"] == o["time_in_zone_s"]["sovereign"]


# --- behaviour in the report: patterns and the baseline (unit, embedded engine, no services) ----------------------
@pytest.fixture(scope="module")
def dal1812(base_settings: Settings) -> dict[str, Any]:
    """DAL1812's recording through the real engine: track updates, scored positions and the geofence."""
    import asyncio

    from streams.report import collect_file_updates, score_points
    from streams.wiring import build_engine

    engine = build_engine(base_settings)
    updates, raw = asyncio.run(collect_file_updates([(str(TRACE), "trace")], engine))
    return {"updates": updates, "points": score_points(engine.geofence, raw), "fence": engine.geofence}


def _hull(pts: list[tuple[float, float]]) -> list[list[float]]:
    """Convex hull (monotone chain) of (lon, lat) points as a closed GeoJSON-order ring."""
    ps = sorted(set(pts))

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in ps:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(ps):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    ring = lower[:-1] + upper[:-1]
    return [[round(x, 5), round(y, 5)] for x, y in [*ring, ring[0]]]


def pattern_docs(points: list[Any], t0: float, t1: float, kind: str = "loiter") -> list[dict[str, Any]]:
    """A pattern.v1 lifecycle (started, updated, on_station, ended) over DAL1812's real positions in [t0, t1].

    A DOCUMENT-SHAPE FIXTURE, not detector output: the pattern detector's engine wiring is not
    in yet and this civil flight flies no pattern. Every figure in it is measured from the real
    recording: times, positions, the outline (hull of the positions), the span and the distance
    to the 12 nm line (the geofence's own score of those positions).
    """
    import hashlib
    import math
    from datetime import UTC, datetime

    seg = [q for q in points if q[0] == "ac671b" and t0 <= q[1] <= t1]
    assert len(seg) > 10
    lat0, lon0 = sum(q[2] for q in seg) / len(seg), sum(q[3] for q in seg) / len(seg)
    span = max(math.dist((a[2], a[3] * math.cos(math.radians(lat0))), (b[2], b[3] * math.cos(math.radians(lat0))))
               for a in seg for b in seg) * 111_195.0
    near = min(seg, key=lambda q: q[5])
    pid = hashlib.sha1(f"ac671b|pattern|{seg[0][1]:.3f}".encode()).hexdigest()[:20]
    base = {
        "schema": "pattern.v1", "alert_id": pid, "pattern_id": pid, "icao24": "ac671b", "callsign": "DAL1812",
        "status": "open", "zone": "pattern", "kind": kind, "started_at": seg[0][1],
        "centre": {"lat": lat0, "lon": lon0},
        "dimensions": {"radius_m": None, "leg_length_m": None, "width_m": None, "axis_deg": None,
                       "span_m": round(span, 1)},
        "outline": _hull([(q[3], q[2]) for q in seg]), "distance_to_boundary_m": round(near[5], 1),
        "nearest_point": {"lat": near[2], "lon": near[3]}, "airspace_country": "MEX", "inside_sovereign": True,
        "description": None, "end_reason": None, "classification": None, "watchlisted": False, "severity": "info",
        "policy": "all",
    }
    mid = seg[len(seg) // 2]
    out = []
    for seq, (transition, q) in enumerate((("pattern_started", seg[1]), ("pattern_updated", mid),
                                           ("on_station", mid), ("pattern_ended", seg[-1]))):
        d = dict(base, transition=transition, seq=seq, event_id=f"{pid}:{seq}", event_time=q[1],
                 event_time_iso=datetime.fromtimestamp(q[1], UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
                 time_on_station_s=round(q[1] - seg[0][1], 1),
                 position={"lat": q[2], "lon": q[3], "alt_ft": q[4]}, headline=f"DAL1812 {transition}")
        if transition == "pattern_ended":
            d.update(status="closed", end_reason="pattern_broken")
        if transition == "on_station":
            d.update(alert_id="0" * 20, event_id="0" * 20 + ":0", seq=0, severity="high")
        out.append(d)
    return out


# 21:20-21:35 UTC on 4 Feb 2025: DAL1812 over Yucatán, well inside Mexico
YUCATAN = (1738704000.0, 1738704900.0)


@pytest.mark.unit
def test_build_report_lists_patterns_and_time_on_station(dal1812: dict[str, Any]) -> None:
    from streams.report import build_report, format_text

    docs = pattern_docs(dal1812["points"], *YUCATAN)
    schema = jsonschema.Draft202012Validator(orjson.loads((REPO_ROOT / "schemas" / "pattern.v1.json").read_bytes()))
    for d in docs:  # the fixture has the documented shape
        schema.validate(d)
    unrelated = [{"schema": "alert.v1", "icao24": "ac671b", "transition": "entered"},
                 {"schema": "activity.v1", "icao24": "", "transition": "activity"}, {"no": "schema"}]
    outer = float(max(dal1812["fence"].ring_m))
    # the live order is arbitrary across partitions: give the events shuffled
    rep = build_report(dal1812["updates"], outer, all_aircraft=True, points=dal1812["points"],
                       patterns=[docs[3], docs[0], *unrelated, docs[2], docs[1]])
    dal = next(t for t in rep["tracks"] if t["callsign"] == "DAL1812" and t["mission"])
    assert len(dal["patterns"]) == 1
    p = dal["patterns"][0]
    assert p["kind"] == "loiter" and p["status"] == "closed" and p["end_reason"] == "pattern_broken"
    assert p["on_station_alert"] is True
    assert p["start"] == docs[0]["started_at"] and p["end"] == docs[3]["started_at"] + docs[3]["time_on_station_s"]
    assert p["time_on_station_s"] == pytest.approx(docs[3]["time_on_station_s"], abs=0.1)
    assert 800 < p["time_on_station_s"] <= 900
    assert p["distance_to_boundary_m"] < -50_000  # the geofence's score: deep inside over Yucatán
    assert p["label"].startswith("loiter ") and p["label"].endswith("nm inside the line")
    assert dal["time_on_station_s"] == pytest.approx(p["time_on_station_s"], abs=0.1)
    assert rep["summary"]["patterns"] == 1
    # DAL1812's other segments (later flights of the same airframe) do not overlap the pattern
    others = [t for t in rep["tracks"] if t["icao24"] == "ac671b" and t is not dal]
    assert others and all(t["patterns"] == [] and t["time_on_station_s"] == 0 for t in others)
    assert rep["baseline"] is None

    text = format_text(rep)
    line = next(x for x in text.splitlines() if "on station: loiter" in x)
    assert p["start_iso"] in line and p["end_iso"] in line and "ON STATION alert" in line
    assert f"time on station: {p['time_on_station_s'] // 60:.0f}m" in text

    # without patterns: the same report, empty pattern lists
    plain = build_report(dal1812["updates"], outer, all_aircraft=True, points=dal1812["points"])
    assert all(t["patterns"] == [] for t in plain["tracks"]) and plain["summary"]["patterns"] == 0


def _baseline_from_report(rep: dict[str, Any], days: int = 30, window_days: int = 7) -> dict[str, Any]:
    """A mission-ledger summary over the report's own (real) daily mission counts, with the ledger's statistics.

    The window is the last ``window_days`` days up to DAL1812's mission day; figures from
    streams.core.missions.baseline_stats over those counts.
    """
    from datetime import date, timedelta

    from streams.core.missions import baseline_stats

    end = date.fromisoformat("2025-02-04")
    span = [(end - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    daily = {d: int(rep["daily"].get(d, 0)) for d in span}
    counts = list(daily.values())
    stats = baseline_stats(counts[:-window_days], sum(counts[-window_days:]), window_days)
    return {"category": None, "daily_counts": daily, "baseline_days": days - window_days, **stats}


@pytest.mark.unit
def test_report_baseline_section_and_png(dal1812: dict[str, Any]) -> None:
    from streams.geo.describe import zones_geojson
    from streams.report import build_report, format_text, neighbours_geojson, render_png

    outer = float(max(dal1812["fence"].ring_m))
    first = build_report(dal1812["updates"], outer, all_aircraft=True, points=dal1812["points"])
    baseline = _baseline_from_report(first)
    rep = build_report(dal1812["updates"], outer, all_aircraft=True, points=dal1812["points"],
                       patterns=pattern_docs(dal1812["points"], *YUCATAN), baseline=baseline)
    b = rep["baseline"]
    assert b["window_count"] == 1 and b["baseline_count"] == 0 and b["rate_ratio"] is None
    assert b["window"] == list(baseline["daily_counts"])[-7:] and b["daily_counts"]["2025-02-04"] == 1
    assert b["headline"] == "1 mission in 7 days against 0.0 per 7 days over the previous 23 days"
    assert 0 < b["p_value"] < 1
    text = format_text(rep)
    assert "baseline (all categories): 1 mission in 7 days" in text and "2025-02-04* 1" in text

    # a summary missing most keys still gives a section
    sparse = build_report(dal1812["updates"], outer, all_aircraft=True, points=dal1812["points"],
                          baseline={"window_days": 3, "daily_counts": {"2025-02-03": 0, "2025-02-04": 2}})
    assert sparse["baseline"]["window"] == ["2025-02-03", "2025-02-04"] and sparse["baseline"]["p_value"] is None
    assert "rate ratio n/a" in format_text(sparse)

    out = Path("/tmp/report_test.png")
    render_png(rep, zones_geojson(dal1812["fence"]), neighbours_geojson(), out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height >= 1000  # the map with the chart panel under it
    assert len(data) > 50_000
