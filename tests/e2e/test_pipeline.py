"""Real recorded flights through the real broker, a real worker and the real Redis.

This is the done-criterion of the tracks-and-alerts issue and of analyze/stream
equality: the readsb trace of DAL1812 crossing Yucatán yields one entry and one exit,
the Boeing test flight passing Laredo yields an approach and no entry, replaying twice
adds nothing to Redis, and `skyfence analyze` finds the very same alerts in-process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest
import redis.asyncio as aioredis

from streams.settings import Settings, child_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration

TRACE = REPO_ROOT / "tests" / "data" / "readsb_trace_full_ac671b.json.gz"
BOEING = REPO_ROOT / "tests" / "data" / "traffic_dreamliner_boeing.json.gz"


def skyfence(settings: Settings, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = child_env(settings)
    proc = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


async def redis_alerts(settings: Settings, expect: int, timeout: float = 90.0, settle: float = 3.0) -> list[dict]:
    """Alerts in the Redis Stream, once at least ``expect`` arrived and nothing new came for ``settle`` s."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        deadline = time.monotonic() + timeout
        last_n, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = await client.xlen(settings.redis_key("alerts"))
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            elif n >= expect and time.monotonic() - last_change >= settle:
                break
            await asyncio.sleep(0.25)
        entries = await client.xrange(settings.redis_key("alerts"))
        return [orjson.loads(fields[b"alert"]) for _id, fields in entries]
    finally:
        await client.aclose()


def analyze(settings: Settings, path: str, fmt: str) -> list[dict]:
    # --no-close: what a worker has sent by the file's last position (it closes episodes only
    # when the alert timeout passes in stream time)
    proc = skyfence(settings, "analyze", path, "--format", fmt, "--json", "--no-close")
    return [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]


async def test_real_flights_through_broker_worker_and_redis(settings: Settings, start_worker) -> None:
    settings = settings.replace(alert_policy="all")
    start_worker(settings_=settings)
    skyfence(settings, "replay", str(TRACE), "--format", "trace", "--speed", "max")
    skyfence(settings, "replay", str(BOEING), "--format", "traffic-json", "--speed", "max")

    expected = analyze(settings, str(TRACE), "trace") + analyze(settings, str(BOEING), "traffic-json")
    alerts = await redis_alerts(settings, expect=len(expected))

    by_icao: dict[str, Counter[str]] = {}
    for a in alerts:
        by_icao.setdefault(a["icao24"], Counter())[(a["transition"], a["zone"])] += 1  # type: ignore[index]
    dal = by_icao["ac671b"]
    assert dal[("entered", "sovereign")] == 1, by_icao
    assert dal[("exited", "sovereign")] == 1, by_icao
    boeing = [a for a in alerts if a["callsign"] == "BOE004"]
    assert any(a["transition"] == "approaching" for a in boeing)
    assert not any(a["transition"] == "entered" for a in boeing)
    event_ids = [a["event_id"] for a in alerts]
    assert len(event_ids) == len(set(event_ids)), "an alert was delivered twice"

    # the embedded mode finds exactly the same alerts, field for field
    assert sorted(event_ids) == sorted(a["event_id"] for a in expected)
    by_id = {a["event_id"]: a for a in alerts}
    for a in expected:
        assert by_id[a["event_id"]] == a

    # replaying the same recording again adds nothing to Redis
    skyfence(settings, "replay", str(TRACE), "--format", "trace", "--speed", "max")
    again = await redis_alerts(settings, expect=len(alerts), settle=5.0)
    assert len(again) == len(alerts)
