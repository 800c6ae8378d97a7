"""`skyfence report` on the repository's real recordings (embedded engine, no services).

Over files (no services) and over live data: the tracks topic a real worker wrote.
The two recordings are civil flights, so the report runs with ``--all-aircraft``; the
figures asserted are the ones the README's data notes state independently: DAL1812
enters Mexico over Yucatán, BOE004 passes about 26 nm from the boundary near Laredo.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import REPO_ROOT, Settings

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
    assert "Chetumal" in dal["closest_approach"]["description"] or "Chichen" in dal["closest_approach"]["description"]

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
