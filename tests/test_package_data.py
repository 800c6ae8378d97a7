"""Package resources that copy repository files stay identical to them (issue 18)."""

from __future__ import annotations

from importlib import resources

import pytest

from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit


def test_demo_recordings_are_the_test_recordings() -> None:
    demo = resources.files("streams").joinpath("data", "demo")
    names = sorted(p.name for p in demo.iterdir())
    assert names == ["readsb_trace_full_ac671b.json.gz", "traffic_dreamliner_boeing.json.gz"]
    for n in names:
        assert demo.joinpath(n).read_bytes() == (REPO_ROOT / "tests" / "data" / n).read_bytes(), n


def test_nothing_at_runtime_reads_a_path_relative_to_the_repository() -> None:
    """The package neither locates the repository (no REPO_ROOT, no path built from
    ``__file__``: package data go through importlib.resources) nor reads tests/, dev/ or the
    top-level schemas/."""
    offenders = []
    for path in (REPO_ROOT / "streams").rglob("*.py"):
        text = path.read_text()
        rel = path.relative_to(REPO_ROOT).as_posix()
        if "REPO_ROOT" in text or "__file__" in text:
            offenders.append(rel)
        if any(s in text for s in ('"tests" / "data"', '"dev" / "kafka"')):
            offenders.append(rel)
    assert offenders == []


def test_the_default_workdir_is_per_user_even_in_a_checkout() -> None:
    from streams.settings import Settings

    workdir = Settings.from_env({}).workdir_path  # no SKYFENCE_WORKDIR: the package's own choice
    assert workdir != REPO_ROOT and REPO_ROOT not in workdir.parents
    assert workdir.name == "skyfence"
