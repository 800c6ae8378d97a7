"""`skyfence watch` against a real worker: the table lists the replayed aircraft.

Runs the command for real, once with ``--once`` (pipes and scripts) and once in a real
pseudo-terminal with rich's live display, ended by Ctrl-C (SIGINT) like a person would.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from streams.settings import Settings, child_env
from tests.e2e.test_pipeline import redis_alerts, skyfence
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration

TRACE = REPO_ROOT / "tests" / "data" / "readsb_trace_full_ac671b.json.gz"
BOEING = REPO_ROOT / "tests" / "data" / "traffic_dreamliner_boeing.json.gz"


def _env(settings: Settings) -> dict[str, str]:
    env = child_env(settings)
    env.update({"COLUMNS": "160", "LINES": "50", "TERM": "xterm-256color"})
    return env


async def test_watch_lists_replayed_aircraft(settings: Settings, start_worker: Callable[..., Any]) -> None:
    settings = settings.replace(alert_policy="all")
    start_worker(settings_=settings)
    # stop mid-crossing: DAL1812 inside Mexico over Yucatán, BOE004 outside near Laredo
    skyfence(settings, "replay", str(TRACE), "--speed", "max", "--to", "2025-02-04T21:40:00Z")
    skyfence(settings, "replay", str(BOEING), "--speed", "max", "--to", "2017-08-03T06:52:00Z")
    await redis_alerts(settings, expect=3)

    once = subprocess.run([sys.executable, "-m", "streams.cli", "watch", "--once", "--duration", "40",
                           "--max-km", "0"], env=_env(settings), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=90)
    assert once.returncode == 0, once.stdout + once.stderr
    out = once.stdout
    table, _, alerts = out.partition("newest alerts")
    lines = table.splitlines()
    dal = next(line for line in lines if "DAL1812" in line)
    boe = next(line for line in lines if "BOE004" in line)
    assert "inside" in dal and "sovereign" in dal and "MEX" in dal
    assert "aaad6b" in boe and "civil" in boe and "USA" in boe
    assert lines.index(dal) < lines.index(boe)  # inside sorts before 49 km away
    assert "entered" in alerts and "DAL1812" in alerts

    # a real terminal: rich redraws in place until Ctrl-C, then the command exits cleanly
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "watch", "--sort", "entry"], env=_env(settings),
                            cwd=REPO_ROOT, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"BOE004" not in screen:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                screen += os.read(master, 65536)
        assert b"BOE004" in screen and b"DAL1812" in screen, screen[-2000:]
        assert b"time to entry" in screen
        os.killpg(proc.pid, signal.SIGINT)
        # Keep reading while it exits: rich redraws several times a second, and a pty whose reader
        # stops fills up and blocks the writer inside write(2), where Ctrl-C cannot reach it (a
        # clean-clone CI run timed out here for that reason).
        stop = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < stop:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
        rc = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        while True:  # drain what it printed on the way out
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        os.close(master)
    assert rc in (0, 130), rc
    assert b"Traceback" not in screen
