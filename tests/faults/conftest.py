"""A private broker and Redis for fault injection, plus helpers shared by the fault tests.

Fault tests kill and restart services, so they never touch the session stack other
tests use: this package-scoped stack (shared by the fault and bad-input modules)
replaces the ``stack`` fixture for everything under ``tests/faults`` (so
``pytest -m faults`` starts no other broker). The expected
alerts come from ``skyfence analyze`` on the same real recordings: the e2e test
(tests/e2e/test_pipeline.py) proves that a fault-free run through the broker, a
worker and Redis delivers exactly those alerts, field for field.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from streams.settings import Settings, child_env
from streams.stack import LocalStack
from tests.e2e.test_pipeline import BOEING, TRACE, analyze
from tests.paths import REPO_ROOT
from tests.polling import poll

REPORT = REPO_ROOT / "artifacts" / "faults-report.jsonl"
T = TypeVar("T")
# Event time of the trace's first point: the DAL1812 leg's alerts fall in its first ~5,050 s.
TRACE_T0 = 1738703622.619


@pytest.fixture(scope="package")
def fault_stack(base_settings: Settings) -> Iterator[LocalStack]:
    run_dir = REPO_ROOT / ".cache" / f"fault-stack-{os.getpid()}-{time.monotonic_ns()}"
    local = LocalStack(base_settings.replace(kafka_port=0, redis_port=0), run_dir)
    local.up(log=lambda m: print(m, file=sys.stderr))
    try:
        yield local
    finally:
        local.down()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def stack(fault_stack: LocalStack) -> Settings:
    """Overrides the session stack: fault tests run on their private broker and Redis."""
    return fault_stack.settings_for_clients()


@pytest.fixture(scope="package")
def expected(fault_stack: LocalStack) -> list[dict[str, Any]]:
    """The fault-free alerts of the trace and the Boeing flight (policy: all)."""
    s = fault_stack.settings_for_clients().replace(alert_policy="all")
    return analyze(s, str(TRACE), "trace") + analyze(s, str(BOEING), "traffic-json")


def cli_env(settings: Settings) -> dict[str, str]:
    env = child_env(settings)
    return env


def replay_bg(settings: Settings, path: Path, fmt: str, speed: str = "max", t_from: float | None = None,
              t_to: float | None = None) -> subprocess.Popen[bytes]:
    """A `skyfence replay` running in the background (the fault happens while it runs)."""
    args = [sys.executable, "-m", "streams.cli", "replay", str(path), "--format", fmt, "--speed", speed]
    if t_from is not None:
        args += ["--from", str(t_from)]
    if t_to is not None:
        args += ["--to", str(t_to)]
    # Output to a file, not a pipe: while the broker is down the replay logs a line per
    # connection attempt, and a pipe nobody reads fills at 64 KiB and blocks the replay's
    # event loop in a log call, its producer with it (seen as a KafkaTimeoutError after a
    # broker restart, when the test waited on Redis before reading the pipe).
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, env=cli_env(settings), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    _REPLAY_LOGS[proc.pid] = log
    return proc


_REPLAY_LOGS: dict[int, IO[bytes]] = {}


def finish(proc: subprocess.Popen[bytes], timeout: float = 120.0) -> str:
    proc.wait(timeout=timeout)
    log = _REPLAY_LOGS.pop(proc.pid)
    log.seek(0)
    out = log.read().decode(errors="replace")
    log.close()
    assert proc.returncode == 0, f"replay exited {proc.returncode}:\n{out[-3000:]}"
    return out


async def stream_entries(settings: Settings) -> list[dict[str, Any]]:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        entries = await client.xrange(settings.redis_key("alerts"))
        return [orjson.loads(fields[b"alert"]) for _id, fields in entries]
    finally:
        await client.aclose()


async def _entries_or_none(settings: Settings) -> list[dict[str, Any]]:
    try:
        return await stream_entries(settings)
    except OSError:  # Redis restarting
        return []


async def wait_alerts(settings: Settings, at_least: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Poll the Redis Stream until it holds ``at_least`` alerts (no settling: used to time a fault)."""
    return await poll(lambda: _entries_or_none(settings), lambda got: len(got) >= at_least, timeout)


async def metric(settings: Settings, name: str) -> float:
    """Sum of one Prometheus metric on a running worker's /metrics."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{settings.web_port}/metrics") as resp:
            text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_metric(settings: Settings, name: str, at_least: float, timeout: float = 60.0) -> float:
    """Poll a running worker's /metrics until ``name`` reaches ``at_least`` (or the timeout); returns it."""

    async def value() -> float:
        try:
            return await metric(settings, name)
        except aiohttp.ClientError:  # not serving yet
            return 0.0

    return await poll(value, lambda v: v >= at_least, timeout, every=0.1)


def compare(expected: list[dict[str, Any]], delivered: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for the report; the assertions are made by the caller on these counts.

    ``differences`` names, per differing alert, each field whose value differs (expected,
    delivered), so a failure says what changed, not only that something did."""
    exp_ids = {a["event_id"] for a in expected}
    got_ids = [a["event_id"] for a in delivered]
    by_id = {a["event_id"]: a for a in delivered}
    differences = {
        a["event_id"]: {k: (a.get(k), by_id[a["event_id"]].get(k))
                        for k in sorted(set(a) | set(by_id[a["event_id"]])) if a.get(k) != by_id[a["event_id"]].get(k)}
        for a in expected if a["event_id"] in by_id and by_id[a["event_id"]] != a
    }
    counts: dict[str, Any] = {
        "expected": len(expected),
        "delivered": len(delivered),
        "missing": len(exp_ids - set(got_ids)),
        "unexpected": len(set(got_ids) - exp_ids),
        "duplicated": len(got_ids) - len(set(got_ids)),
        "differing": len(differences),
    }
    if differences:
        counts["differences"] = differences
    return counts


def report(fault: str, injected: str, counts: dict[str, Any]) -> None:
    """Print what was injected and counted, and keep it for docs/faults.md."""
    line = {"fault": fault, "injected": injected, **counts}
    print(f"\n[fault] {fault}: {injected}\n[fault] counted: {counts}")
    REPORT.parent.mkdir(exist_ok=True)
    with open(REPORT, "ab") as f:
        f.write(orjson.dumps(line) + b"\n")


def assert_exactly_expected(counts: dict[str, Any]) -> None:
    assert counts["missing"] == 0, counts
    assert counts["unexpected"] == 0, counts
    assert counts["duplicated"] == 0, counts
    assert counts["differing"] == 0, counts
    assert counts["delivered"] == counts["expected"], counts
