"""The README's main command: the demo shows real alerts arriving through the real stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.settings import Settings, child_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def test_demo_shows_entry_exit_and_approach(settings: Settings) -> None:
    env = child_env(settings)
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--no-stack", "--exit", "--speed", "max"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    dal = [ln for ln in lines if "DAL1812" in ln]
    assert any(" entered " in ln for ln in dal) and any(" exited " in ln for ln in dal), proc.stdout
    boe = [ln for ln in lines if "BOE004" in ln]
    assert any(" approaching " in ln for ln in boe) and not any(" entered " in ln for ln in boe)
    assert "live map: http://" in proc.stdout
