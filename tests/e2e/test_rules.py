"""Alert rules users write (issue 16), on real recordings, through analyze and a real worker.

Recordings: BOE004's real pass near Laredo (a civil Boeing test flight, held back by the default
"military" policy), DAL1812's real crossing of Yucatán, the P-8 racetrack off Baja (a real tanker
racetrack moved, tests/data/behaviour). The emergency-squawk case is BOE004's real track with its
squawk set to 7700 on every position (a reconstructed emergency; positions unchanged).
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from streams.settings import Settings, SettingsError, child_env
from tests.e2e.test_pipeline import BOEING, TRACE, redis_alerts, skyfence
from tests.paths import REPO_ROOT

RULES = REPO_ROOT / "tests" / "data" / "rules" / "example.toml"
RACETRACK = REPO_ROOT / "tests" / "data" / "behaviour" / "p8_racetrack_off_baja.json.gz"
RACETRACK_CSV = REPO_ROOT / "tests" / "data" / "behaviour" / "p8_racetrack_off_baja.csv"


def _analyze(settings: Settings, path: Path, fmt: str, *extra: str) -> list[dict[str, Any]]:
    proc = skyfence(settings, "analyze", str(path), "--format", fmt, "--json", *extra)
    return [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _squawking(tmp_path: Path, code: str) -> Path:
    rows = orjson.loads(gzip.decompress(BOEING.read_bytes()))
    for r in rows:
        r["squawk"] = code
    p = tmp_path / f"boe004_{code}.json.gz"
    p.write_bytes(gzip.compress(orjson.dumps(rows)))
    return p


@pytest.mark.unit
def test_a_rule_lets_out_and_routes_what_the_policy_holds_back() -> None:
    plain = _analyze(Settings(), BOEING, "traffic-json")
    assert plain == []  # civil BOE004 under the default policy
    ruled = _analyze(Settings(rules_file=str(RULES)), BOEING, "traffic-json")
    assert ruled and {a["callsign"] for a in ruled} == {"BOE004"}
    for a in ruled:
        assert a["rules"] == ["Boeing test flights"] and a["channels"] == ["test-flights"]
        assert a["severity"] == "medium" and a["squawk"] is None


@pytest.mark.unit
def test_an_exclude_rule_drops_alerts() -> None:
    every = _analyze(Settings(alert_policy="all"), TRACE, "trace")
    assert any(a["callsign"] == "DAL1812" for a in every)
    assert _analyze(Settings(alert_policy="all", rules_file=str(RULES)), TRACE, "trace") == []


@pytest.mark.unit
def test_emergency_squawks_alert_by_default(tmp_path: Path) -> None:
    f = _squawking(tmp_path, "7700")
    out = _analyze(Settings(), f, "traffic-json")
    assert out, "a civil aircraft squawking 7700 near Mexico alerts under the default policy"
    for a in out:
        assert a["squawk"] == "7700" and a["rules"] == ["emergency squawk"] and a["severity"] == "high"
    assert _analyze(Settings(), _squawking(tmp_path, "1200"), "traffic-json") == []
    # a user may silence it again
    quiet = tmp_path / "quiet.toml"
    quiet.write_text('[[rule]]\nname = "no 7700 here"\nmatch.squawk = ["7700"]\naction.exclude = true\n')
    assert _analyze(Settings(rules_file=str(quiet)), f, "traffic-json") == []


@pytest.mark.unit
def test_pattern_rules_set_severity_and_channel() -> None:
    s = Settings(aircraft_csv=str(RACETRACK_CSV), rules_file=str(RULES))
    pats = [a for a in _analyze(s, RACETRACK, "traffic-json") if a["schema"] == "pattern.v1"]
    assert pats
    rt = [a for a in pats if a["kind"] == "racetrack"]
    assert rt and all(a["severity"] == "high" and "border-desk" in a["channels"] for a in rt)
    assert all("racetracks off the coast" in a["rules"] for a in rt)


@pytest.mark.unit
def test_a_bad_rules_file_fails_at_start_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "ok"\naction.severity = "low"\n\n'
                   '[[rule]]\nname = "broken band"\nmatch.altitude_ft = [20000, 100]\naction.severity = "high"\n')
    with pytest.raises(SettingsError) as e:
        Settings(rules_file=str(bad)).validate()
    msg = str(e.value)
    assert "\n" not in msg and "'broken band'" in msg and "match.altitude_ft" in msg
    env = child_env(Settings())
    env["SKYFENCE_RULES_FILE"] = str(bad)
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "analyze", str(BOEING), "--format", "traffic-json"],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "broken band" in lines[0] and "match.altitude_ft" in lines[0], proc.stderr


@pytest.mark.unit
def test_rules_check_explains_a_recording() -> None:
    proc = skyfence(Settings(), "rules", "check", str(RULES), str(TRACE), "--format", "trace", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert rows and all(r["callsign"] == "DAL1812" for r in rows)
    assert all(r["rules"] == ["ignore the Delta ferry"] and r["outcome"] == "excluded" for r in rows)
    listing = skyfence(Settings(), "rules", "check", str(RULES))
    assert listing.returncode == 0 and "5 rules OK" in listing.stdout
    assert "emergency squawk (built-in)" in listing.stdout


@pytest.mark.integration
async def test_worker_applies_the_rules_like_analyze(settings: Settings, start_worker) -> None:
    settings = settings.replace(rules_file=str(RULES))
    expected = _analyze(settings, BOEING, "traffic-json", "--no-close")
    assert expected
    client = aioredis.Redis.from_url(settings.redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(settings.redis_key("channel", "test-flights"))
    try:
        start_worker(settings_=settings)
        skyfence(settings, "replay", str(BOEING), "--format", "traffic-json", "--speed", "max")
        alerts = await redis_alerts(settings, expect=len(expected))
        assert sorted(a["event_id"] for a in alerts) == sorted(a["event_id"] for a in expected)
        by_id = {a["event_id"]: a for a in alerts}
        for a in expected:
            assert by_id[a["event_id"]]["rules"] == a["rules"] and by_id[a["event_id"]]["severity"] == a["severity"]
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while len(got) < len(expected):
                m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if m is not None:
                    got.append(orjson.loads(m["data"]))
        assert sorted(a["event_id"] for a in got) == sorted(a["event_id"] for a in expected)
    finally:
        await pubsub.aclose()
        await client.aclose()
