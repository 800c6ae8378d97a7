"""`skyfence fences` and `skyfence fences check` as a journalist would use them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", "fences", *args], input=stdin, text=True,
                          capture_output=True, cwd=REPO_ROOT, timeout=180)


def test_lists_zones_with_buffer_labels() -> None:
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    assert "MEX sovereign" in proc.stdout
    assert proc.stdout.count("not a legal zone") == 3


def test_check_one_point_83_km_sw_of_cabo() -> None:
    # 83 km at 225° from Cabo San Lucas (22.8905 N, 109.9167 W), computed with pyproj's geodesic
    from pyproj import Geod

    lon, lat, _ = Geod(ellps="WGS84").fwd(-109.9167, 22.8905, 225.0, 83_000.0)
    proc = _run("check", f"{lat}", f"{lon}", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["inside"]["MEX sovereign"] is False
    assert d["inside"]["within 100 nm (185 km) beyond the sovereign limit"] is True
    assert d["airspace"] == "INTL"
    assert d["signed_distance_m"] > 0


def test_check_stdin_lines_gives_json_per_point_and_errors_on_stderr() -> None:
    proc = _run("check", stdin="32.53,-117.03\n32.72,-117.16\nnot a point\n29.0,-118.3,30000\n")
    assert proc.returncode == 1  # one bad line: reported, and the others still answered
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["inside"]["MEX sovereign"] for r in rows] == [True, False, True]  # Tijuana, San Diego, Guadalupe
    assert rows[1]["airspace"] == "USA"
    assert "line 3" in proc.stderr
