"""The lazy parser: only the chosen subcommand's module is imported, and each module's arguments work."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from streams.cli import COMMANDS, build_parser, chosen_command
from streams.settings import child_env

pytestmark = pytest.mark.unit


def test_the_chosen_command_skips_global_options_and_their_values() -> None:
    # "demo" here is the value of --topic-prefix, not the subcommand
    assert chosen_command(["--topic-prefix", "demo", "ingest", "x", "--format", "sbs"]) == "ingest"
    assert chosen_command(["--broker=kafka://h:1", "report", "--from", "2025-01-01"]) == "report"
    assert chosen_command(["--help"]) is None
    assert chosen_command(["nonsense"]) is None


def test_listing_the_commands_imports_none_of_their_modules() -> None:
    code = (
        "import sys\n"
        "from streams.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('streams.cli.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
    for command, text in COMMANDS:
        assert command in proc.stdout and text.split()[0] in proc.stdout


@pytest.mark.parametrize("command", [c for c, _t in COMMANDS])
def test_every_command_module_has_arguments_and_a_run(command: str) -> None:
    mod = importlib.import_module(f"streams.cli.{command}")
    assert callable(mod.add_arguments) and callable(mod.run)
    parser = build_parser([command, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([command, "--help"])
    assert exit_info.value.code == 0
