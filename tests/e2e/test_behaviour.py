"""Behaviour end to end: missions against a baseline and gone dark, through the real broker,
two real workers and the real Redis, equal to ``skyfence analyze`` on the same file.

The histories are real flights (tests/behaviour_history.py): BOE004's real pass near Laredo,
flown again under P-8 addresses at the story's times, and real positions cut out of it.
The mission ledger and the coverage stage are keyed stages fed from every partition, so two
workers must give exactly what one process gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings
from tests import behaviour_history as H
from tests.e2e.test_pipeline import analyze, redis_alerts, skyfence

NM = 1852.0


def _by_schema(alerts: list[dict], schema: str) -> list[dict]:
    return [a for a in alerts if a.get("schema") == schema]


def two_workers(settings: Settings, start_worker) -> None:
    """Two workers of one app (one consumer group), each with its own web port."""
    from streams.stack import free_port

    start_worker("w1", settings_=settings)
    start_worker("w2", settings_=settings.replace(web_port=free_port()))


def _history_files(tmp_path: Path, days: tuple[float, ...]) -> tuple[Path, Path, list[str], list[float]]:
    recs, icaos, starts = H.mission_history(days)
    f = H.write(tmp_path / "history.json.gz", recs)
    csv = tmp_path / "p8.csv"
    csv.write_text(H.p8_csv(icaos))
    return f, csv, icaos, starts


@pytest.mark.integration
async def test_activity_alert_two_workers_equal_analyze(settings: Settings, start_worker, tmp_path: Path) -> None:
    from streams.kafka_io import ensure_topics

    f, csv, icaos, _starts = _history_files(tmp_path, H.BASELINE_DAYS + H.BURST_DAYS)
    settings = settings.replace(aircraft_csv=str(csv))
    expected = analyze(settings, str(f), "traffic-json")
    activity = _by_schema(expected, "activity.v1")
    assert len(activity) == 1, activity
    a = activity[0]
    assert a["category"] == "surveillance"
    assert a["baseline_count"] == 3 and a["window_days"] == 10 and a["baseline_days"] == 90
    # raised by the 5th mission of the burst, the first at which the window clearly exceeds the
    # baseline (at least 5 missions, Poisson tail < 1e-3: streams/core/missions.py)
    assert a["window_count"] == 5 and a["trigger_mission_id"].startswith(icaos[3 + 4] + "-")
    assert a["headline"] == "5 surveillance missions in 10 days against 0.3 per 10 days over the previous 90 days"

    await ensure_topics(settings)
    two_workers(settings, start_worker)
    skyfence(settings, "replay", str(f), "--format", "traffic-json", "--speed", "max")
    alerts = await redis_alerts(settings, expect=len(expected), timeout=180.0, settle=5.0)
    ids = [x["event_id"] for x in alerts]
    assert len(ids) == len(set(ids)), "an alert was delivered twice"
    got = {x["event_id"]: x for x in alerts}
    want = {x["event_id"]: x for x in expected}
    missing = [(want[k]["schema"], want[k]["transition"], want[k].get("icao24")) for k in sorted(set(want) - set(got))]
    extra = [(got[k]["schema"], got[k]["transition"], got[k].get("icao24")) for k in sorted(set(got) - set(want))]
    assert not missing and not extra, (missing, extra)
    for x in expected:
        assert got[x["event_id"]] == x


@pytest.mark.unit
def test_quiet_history_raises_no_activity_alert(tmp_path: Path) -> None:
    f, csv, _icaos, _starts = _history_files(tmp_path, H.QUIET_DAYS)
    out = analyze(Settings(aircraft_csv=str(csv)), str(f), "traffic-json")
    assert not _by_schema(out, "activity.v1")
    # ... while the same flights do make missions: the ledger saw them and stayed quiet
    assert any(x.get("transition") == "approaching" for x in out)


def _dark_file(tmp_path: Path, silent_area: bool) -> Path:
    """US Navy ae0455 off Baja with 10 min of its real positions cut out, and a real scene of
    neighbours moved onto its last position (tests/core/test_coverage.py's World)."""
    from tests.core.test_coverage import World, _parse

    carrier = sorted(_parse("traffic_military_aircraft_carrier.json.gz"), key=lambda p: p.event_time)
    world = World(carrier, _parse("traffic_quickstart_scene.json.gz"))
    name = "dark_silent.json.gz" if silent_area else "dark.json.gz"
    rows = H.position_rows(world.positions(silent_area=silent_area))
    # civil traffic after the scene, so that every partition's stream time passes the reappearance
    return H.write(tmp_path / name, H.with_background(rows, world.cut[1] + 3600.0))


# The recording is one JSON document of ~2 MB (15 aircraft for an hour, plus background).
BIG = 4 * 1024 * 1024


@pytest.mark.unit
def test_gone_dark_only_while_neighbours_are_heard(tmp_path: Path) -> None:
    out = analyze(Settings(max_message_bytes=BIG), str(_dark_file(tmp_path, silent_area=False)), "traffic-json")
    dark = _by_schema(out, "dark.v1")
    assert [d["transition"] for d in dark] == ["went_dark", "reappeared"], dark
    went, back = dark
    assert went["icao24"] == "ae0455" and went["coverage"]["aircraft_heard"] >= 1
    assert went["silence_s"] == pytest.approx(300.0, abs=1.0)
    assert back["reappeared"]["gap_s"] == pytest.approx(600.0, abs=30.0)
    assert back["alert_id"] == went["alert_id"] and back["seq"] == 1
    silent = analyze(Settings(max_message_bytes=BIG), str(_dark_file(tmp_path, silent_area=True)), "traffic-json")
    assert not _by_schema(silent, "dark.v1")


@pytest.mark.integration
async def test_gone_dark_two_workers_equal_analyze(settings: Settings, start_worker, tmp_path: Path) -> None:
    from streams.kafka_io import ensure_topics

    f = _dark_file(tmp_path, silent_area=False)
    settings = settings.replace(max_message_bytes=BIG)
    expected = analyze(settings, str(f), "traffic-json")
    assert len(_by_schema(expected, "dark.v1")) == 2
    await ensure_topics(settings)
    two_workers(settings, start_worker)
    skyfence(settings, "replay", str(f), "--format", "traffic-json", "--speed", "max")
    alerts = await redis_alerts(settings, expect=len(expected), timeout=180.0, settle=5.0)
    got = {x["event_id"]: x for x in alerts}
    assert len(got) == len(alerts), "an alert was delivered twice"
    assert sorted(got) == sorted(x["event_id"] for x in expected)
    for x in expected:
        assert got[x["event_id"]] == x


RACETRACK = H.DATA / "behaviour" / "p8_racetrack_off_baja.json.gz"
RACETRACK_CSV = H.DATA / "behaviour" / "p8_racetrack_off_baja.csv"


@pytest.mark.unit
def test_shipped_racetrack_file_is_the_real_tanker_moved_off_baja() -> None:
    """The committed sample is exactly what tests/behaviour_history.py builds from the real
    tanker recording (so the README's picture and the tests use the same positions)."""
    import gzip

    import orjson

    shipped = orjson.loads(gzip.decompress(RACETRACK.read_bytes()))
    built = orjson.loads(orjson.dumps(H.baja_racetrack()))
    assert len(shipped) == len(built)
    # numpy's vectorised sin/cos may differ in the last bit between runs (SIMD paths depend on
    # memory alignment; a clean-clone CI run differed at 1e-14 deg): positions compare within a
    # micro-degree (~0.1 m), every other field exactly.
    for a, b in zip(shipped, built, strict=True):
        assert {k: v for k, v in a.items() if k not in ("latitude", "longitude")} == {
            k: v for k, v in b.items() if k not in ("latitude", "longitude")}
        assert a["latitude"] == pytest.approx(b["latitude"], abs=1e-6)
        assert a["longitude"] == pytest.approx(b["longitude"], abs=1e-6)
    assert RACETRACK_CSV.read_text() == H.p8_csv(["ae7100"])


@pytest.mark.integration
async def test_p8_racetrack_off_baja_is_on_station_through_worker_and_redis(settings: Settings, start_worker) -> None:
    """The core case: a P-8 flying a racetrack off Baja is an on_station alert, live as in analyze."""
    settings = settings.replace(aircraft_csv=str(RACETRACK_CSV))
    expected = analyze(settings, str(RACETRACK), "traffic-json")
    on = [a for a in expected if a["transition"] == "on_station"]
    assert len(on) == 1, on
    a = on[0]
    assert a["schema"] == "pattern.v1" and a["kind"] == "racetrack" and a["severity"] == "high"
    # ~30 nm off the coast: 10-30 nm from the 12 nm line, outside, in international airspace
    assert 10 * NM < a["distance_to_boundary_m"] < 30 * NM and not a["inside_sovereign"]
    assert a["airspace_country"] != "MEX"
    assert 20 * NM < a["dimensions"]["leg_length_m"] < 50 * NM and a["dimensions"]["width_m"] < 30 * NM
    assert a["dimensions"]["axis_deg"] < 30 or a["dimensions"]["axis_deg"] > 150  # the tanker's legs run N-S
    assert a["description"] == "108 km W of Camalú"  # at sea: from the nearest coastal place (GeoNames)
    started = [x for x in expected if x["transition"] == "pattern_started"]
    assert len(started) == 1 and started[0]["pattern_id"] == a["pattern_id"]

    start_worker(settings_=settings)
    skyfence(settings, "replay", str(RACETRACK), "--format", "traffic-json", "--speed", "max")
    alerts = await redis_alerts(settings, expect=len(expected), timeout=120.0)
    got = {x["event_id"]: x for x in alerts}
    assert sorted(got) == sorted(x["event_id"] for x in expected)
    for x in expected:
        assert got[x["event_id"]] == x
