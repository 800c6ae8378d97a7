"""Record and replay through the real broker, worker and Redis, on real recordings.

- replay is deterministic: the same file into two fresh pipelines gives identical alerts;
- `skyfence record` of the positions topic, replayed into a third fresh pipeline, gives
  the same alerts again (the record format round-trips Kafka timestamps, keys, values);
- --from/--to select by event time, --loop starts again, the progress line shows on a tty;
- `skyfence rewind` re-runs the pipeline from a time, from Kafka itself.
"""

from __future__ import annotations

import gzip
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import Settings, child_env
from tests.e2e.test_pipeline import redis_alerts, skyfence
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration

TRACE = REPO_ROOT / "tests" / "data" / "readsb_trace_full_ac671b.json.gz"
BOEING = REPO_ROOT / "tests" / "data" / "traffic_dreamliner_boeing.json.gz"


def _fresh(settings: Settings, tag: str) -> Settings:
    from streams.stack import free_port

    return settings.replace(topic_prefix=f"{settings.topic_prefix}{tag}", app_id=f"{settings.app_id}{tag}",
                            redis_prefix=f"{settings.redis_prefix}{tag}", web_port=free_port(),
                            data_dir=f"{settings.data_dir}{tag}")


def _env(settings: Settings) -> dict[str, str]:
    env = child_env(settings)
    return env


def _stdout_positions(*args: str) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "replay", *args, "--speed", "max", "--stdout"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]


async def test_replay_deterministic_and_record_round_trip(settings: Settings, start_worker: Callable[..., Any],
                                                          tmp_path: Path) -> None:
    a = settings.replace(alert_policy="all")
    b = _fresh(a, "b")
    c = _fresh(a, "c")
    workers = [start_worker(name=s.app_id[-2:], settings_=s, wait=False) for s in (a, b, c)]
    for w in workers:
        w.wait_ready()
    for s in (a, b):
        skyfence(s, "replay", str(TRACE), "--speed", "max")
        skyfence(s, "replay", str(BOEING), "--speed", "max")
    alerts_a = await redis_alerts(a, expect=10)
    alerts_b = await redis_alerts(b, expect=len(alerts_a))
    assert len(alerts_a) >= 10
    key = lambda al: al["event_id"]  # noqa: E731
    assert sorted(alerts_a, key=key) == sorted(alerts_b, key=key)  # same ids, same fields

    record = tmp_path / "positions.rec.gz"
    out = skyfence(a, "record", str(record), "--topic", "positions", "--idle", "3").stdout
    assert "recorded" in out
    lines = [orjson.loads(x) for x in gzip.decompress(record.read_bytes()).splitlines()]
    assert lines and all(x["schema"] == "record.v1" and x["timestamp_ms"] > 0 for x in lines)
    assert {x["topic"] for x in lines} == {f"{a.topic_prefix}.positions"}

    # the record file replays (format sniffed) into a fresh pipeline with the same outcome
    replayed = skyfence(c, "replay", str(record), "--speed", "max").stdout
    assert "[record]" in replayed
    alerts_c = await redis_alerts(c, expect=len(alerts_a))
    assert sorted(alerts_c, key=key) == sorted(alerts_a, key=key)


def test_replay_time_window_by_event_time() -> None:
    full = _stdout_positions(str(BOEING))
    t0, t1 = "2017-08-03T06:30:00Z", "2017-08-03T07:00:00Z"
    window = _stdout_positions(str(BOEING), "--from", t0, "--to", t1)
    lo, hi = 1501741800.0, 1501743600.0
    expected = [p for p in full if lo <= p["event_time"] <= hi]
    assert 0 < len(window) < len(full)
    assert [p["event_time"] for p in window] == [p["event_time"] for p in expected]
    # epoch seconds work as well as ISO times
    assert len(_stdout_positions(str(BOEING), "--from", str(lo), "--to", str(hi))) == len(window)


def test_replay_loop_starts_again() -> None:
    one = _stdout_positions(str(TRACE), "--to", "2025-02-04T21:40:00Z")
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "replay", str(TRACE), "--to",
                             "2025-02-04T21:40:00Z", "--speed", "max", "--loop", "--stdout"],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < 3 * len(one) + 1 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        got.append(line)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert len(got) > 3 * len(one)
    first = orjson.loads(got[0])["event_time"]
    starts = [i for i, x in enumerate(got) if orjson.loads(x)["event_time"] == first]
    assert starts[:3] == [0, len(one), 2 * len(one)]  # each loop replays the whole window again


def test_replay_progress_on_a_terminal(settings: Settings) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "replay", str(BOEING), "--speed", "max"],
                            env=_env(settings), cwd=REPO_ROOT, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    screen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        assert proc.wait(timeout=60) == 0, screen
    finally:
        os.close(master)
    text = screen.decode(errors="replace")
    assert "\rreplay: " in text and "positions" in text and "pos/s" in text
    assert "sim 2017-08-03T" in text  # simulated (event) time in the progress line
    assert "replayed 1,630 positions" in text


async def test_rewind_reruns_from_a_time(settings: Settings, start_worker: Callable[..., Any]) -> None:
    a = settings.replace(alert_policy="all")
    start_worker(name="a", settings_=a)
    skyfence(a, "replay", str(BOEING), "--speed", "max")
    await redis_alerts(a, expect=3)
    time.sleep(1.5)  # record timestamps are ingest (wall-clock) times: leave a clear gap
    cut = time.time()
    time.sleep(1.5)
    skyfence(a, "replay", str(TRACE), "--speed", "max")
    everything = await redis_alerts(a, expect=10)
    assert {x["icao24"] for x in everything} == {"aaad6b", "ac671b"}

    # a fresh group, rewound to the cut, re-runs only what was ingested after it
    b = a.replace(app_id=f"{a.app_id}rw", redis_prefix=f"{a.redis_prefix}rw",
                  data_dir=f"{a.data_dir}rw", web_port=a.web_port + 1 if a.web_port else 0)
    from streams.stack import free_port

    b = b.replace(web_port=free_port())
    out = skyfence(b, "rewind", "--from", str(cut)).stdout
    assert f"consumer group {b.app_id}" in out
    start_worker(name="b", settings_=b)
    rerun = await redis_alerts(b, expect=5)
    assert {x["icao24"] for x in rerun} == {"ac671b"}
    dal = sorted((x for x in everything if x["icao24"] == "ac671b"), key=lambda x: x["event_id"])
    assert sorted(rerun, key=lambda x: x["event_id"]) == dal  # same alerts, same ids
