"""Operations on the real stack: metrics move consistently, health flips, SIGTERM loses nothing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from streams.kafka_io import ensure_topics, make_producer
from streams.settings import Settings, child_env
from streams.topics import POSITIONS
from tests.e2e.test_pipeline import TRACE, analyze, redis_alerts
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def _metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _sum(m: dict[str, float], prefix: str, exclude: str | None = None) -> float:
    return sum(v for k, v in m.items() if k.startswith(prefix) and (exclude is None or exclude not in k))


def _replay(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = child_env(settings)
    return subprocess.Popen([sys.executable, "-m", "streams.cli", "replay", *args], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_metrics_move_consistently_during_replay(settings: Settings, start_worker) -> None:
    settings = settings.replace(alert_policy="all")
    await ensure_topics(settings)
    worker = start_worker(settings_=settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    # bad records straight onto the positions topic, as a foreign producer might write them
    producer = make_producer(settings)
    await producer.start()
    bad = [b"not json", orjson.dumps({"schema": "position-batch.v1", "positions": [{"icao24": "zz", "lat": 1}]}),
           orjson.dumps({"positions": "nope"})]
    for value in bad:
        await producer.send_and_wait(POSITIONS.name(settings), value, partition=0)
    await producer.stop()
    # 22.7 h of trace at 4000x: ~20 s of replay, scraped while it runs
    replay = _replay(settings, str(TRACE), "--format", "trace", "--speed", "4000")
    scrapes: list[dict[str, float]] = []
    async with aiohttp.ClientSession() as http:
        while replay.poll() is None or len(scrapes) < 3:
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                scrapes.append(_metrics(await r.text()))
            await asyncio.sleep(1.0)
        await asyncio.sleep(4.0)
        async with http.get(f"{base}/metrics") as r:
            scrapes.append(_metrics(await r.text()))
    assert replay.returncode == 0, replay.stderr.read() if replay.stderr else ""
    pin = "skyfence_positions_in_total"
    series = [_sum(m, pin) for m in scrapes]
    print(f"\n[metrics] positions_in over {len(scrapes)} scrapes: {series}")
    assert series == sorted(series), "a counter went backwards"
    assert len(set(series)) > 2, "the counters did not move during the replay"
    for m in scrapes:
        dead = _sum(m, "skyfence_dead_letters_total", exclude='format="alert"')
        assert _sum(m, pin) == _sum(m, "skyfence_positions_processed_total") + dead, m
    final = scrapes[-1]
    assert _sum(final, pin) == 2500 + len(bad)  # every bad record or bad item counts as one input
    assert final['skyfence_dead_letters_total{format="position-batch",reason="bad_json"}'] == 1
    assert final['skyfence_dead_letters_total{format="position-batch",reason="wrong_type"}'] == 1
    assert final['skyfence_dead_letters_total{format="position-batch",reason="bad_icao"}'] == 1
    assert _sum(final, "skyfence_alerts_total") == _sum(final, "skyfence_redis_writes_total") > 0
    assert final["skyfence_tracked_aircraft"] == 1
    assert any(k.startswith("skyfence_consumer_lag{") for k in final)
    assert "dead letter" in worker.log_text()


async def test_health_flips_and_sigterm_stops_promptly(settings: Settings, start_worker) -> None:
    worker = start_worker(settings_=settings, wait=False)
    base = f"http://127.0.0.1:{settings.web_port}"
    seen: list[int] = []
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{base}/health/ready") as r:
                    seen.append(r.status)
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        async with http.get(f"{base}/health/live") as r:
            assert r.status == 200
    assert seen and seen[-1] == 200, seen
    assert set(seen) <= {200, 503}
    t0 = time.monotonic()
    code = worker.stop(signal.SIGTERM)
    took = time.monotonic() - t0
    print(f"\n[health] readiness statuses seen: {sorted(set(seen))}; SIGTERM exit {code} in {took:.1f} s")
    assert code == 0 and took < 30


async def test_sigterm_between_approach_and_entry_restored_episode_continues(settings: Settings,
                                                                             start_worker) -> None:
    """The hard case of a restart: the worker stops with DAL1812's episode open (approaching, not yet
    inside), and the restarted worker must raise the entry itself, continuing that episode's id and seq."""
    settings = settings.replace(alert_policy="all")
    await ensure_topics(settings)
    expected = analyze(settings, str(TRACE), "trace")
    entry = next(a for a in expected if a["transition"] == "entered")
    before_entry = [a for a in expected if a["event_time"] < entry["event_time"]]
    assert before_entry and all(a["alert_id"] == entry["alert_id"] for a in before_entry)
    # The stream is cut between the last alert before the entry and the first position inside.
    cut = before_entry[-1]["event_time"] + 60.0
    assert cut < entry["event_time"]
    first = start_worker("w1", settings_=settings)
    _replay_to_end(settings, str(TRACE), "--format", "trace", "--speed", "max", "--to", str(cut))
    # stopped on the stream: once the approach and its updates are in Redis
    got = await redis_alerts(settings, expect=len(before_entry))
    assert [a["event_id"] for a in got] == [a["event_id"] for a in before_entry], got
    assert first.stop(signal.SIGTERM) == 0
    client = aioredis.Redis.from_url(settings.redis_url)
    at_stop = await client.xlen(settings.redis_key("alerts"))
    await client.aclose()
    assert at_stop == len(before_entry), "an alert arrived after the first worker had exited"
    print(f"\n[sigterm] w1 stopped with episode {entry['alert_id']} open at seq {before_entry[-1]['seq']}")
    second = start_worker("w2", settings_=settings)
    _replay_to_end(settings, str(TRACE), "--format", "trace", "--speed", "max", "--from", str(cut))
    alerts = await redis_alerts(settings, expect=len(expected))
    ids = [a["event_id"] for a in alerts]
    print(f"[sigterm] alerts expected {len(expected)}, delivered {len(alerts)}")
    assert len(ids) == len(set(ids)), "duplicate alert after restart"
    assert sorted(ids) == sorted(a["event_id"] for a in expected), "gap or extra alert after restart"
    got_entry = next(a for a in alerts if a["transition"] == "entered")
    # the restored episode goes on: same id, the next seq, raised by the second worker
    assert got_entry["alert_id"] == entry["alert_id"]
    assert got_entry["seq"] == before_entry[-1]["seq"] + 1
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{settings.web_port}/metrics") as r:
            m = _metrics(await r.text())
    assert _sum(m, "skyfence_alerts_total") >= len(expected) - len(before_entry), m
    assert second.proc.poll() is None


def _replay_to_end(settings: Settings, *args: str) -> None:
    proc = _replay(settings, *args)
    assert proc.wait(120) == 0, proc.stderr.read() if proc.stderr else ""
