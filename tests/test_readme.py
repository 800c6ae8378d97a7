"""README.md stays true: its generated tables match the code, its commands exist."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.metrics import METRICS_DOC
from streams.settings import Settings
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit

README = (REPO_ROOT / "README.md").read_text()


def test_generated_tables_are_current() -> None:
    proc = subprocess.run([sys.executable, "scripts/readme_tables.py", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for var, _, _ in Settings().public_items():
        assert f"`{var}`" in README


def test_metrics_are_documented_if_table_present() -> None:
    if "<!-- metrics-table:start -->" in README:
        for name, _, _ in METRICS_DOC:
            assert f"`{name}`" in README


def test_two_commands_and_ci_uses_the_test_one() -> None:
    assert "dev/run demo" in README and "dev/run test" in README
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "dev/run test" in ci
