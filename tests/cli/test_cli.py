"""The console script: subcommands listed fast, no numba or Faust on --help, clean errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.settings import child_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = child_env()
    base.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=base, cwd=REPO_ROOT,
                          timeout=60)


def test_help_lists_subcommands_without_loading_numba_or_faust() -> None:
    code = (
        "import sys\n"
        "from streams.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('numba', 'faust', 'aiokafka', 'redis', 'rs1090') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = _run("-c", code)
    assert proc.returncode == 0, proc.stderr
    for sub in ("stack", "worker", "settings", "demo", "ingest", "replay", "record", "analyze", "alerts"):
        assert sub in proc.stdout
    assert "HEAVY []" in proc.stdout


def test_configuration_error_is_one_line_and_exit_2() -> None:
    proc = _run("-m", "streams.cli", "settings", env={"SKYFENCE_PARTITONS": "3"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown setting SKYFENCE_PARTITONS" in lines[0]


def test_unreachable_broker_is_one_clear_line() -> None:
    from streams.stack import free_port

    port = free_port()
    proc = _run("-m", "streams.cli", "worker", env={"SKYFENCE_BROKER": f"kafka://127.0.0.1:{port}"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"SKYFENCE_BROKER=kafka://127.0.0.1:{port}" in proc.stderr
    assert "skyfence stack up" in proc.stderr
