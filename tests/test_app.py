"""The Faust app built from settings (``streams.app``), without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.app import create_app
from streams.settings import Settings

pytestmark = pytest.mark.unit


def test_each_app_id_keeps_its_tables_in_its_own_folder(tmp_path: Path) -> None:
    """Faust names RocksDB files after the table only: two app ids sharing a data directory
    (a rewind beside the live worker) must not open each other's state."""
    dirs = []
    for app_id in ("skyfence", "skyfence-rewind-1"):
        app, _topics = create_app(Settings(app_id=app_id, store="memory://", data_dir=str(tmp_path)))
        dirs.append(Path(app.conf.datadir))
    assert dirs[0] != dirs[1]
    assert dirs == [tmp_path / "skyfence", tmp_path / "skyfence-rewind-1"]
    assert all(d.is_dir() for d in dirs)


def test_a_relative_data_dir_is_under_the_workdir(tmp_path: Path) -> None:
    """Relative path settings live under the workdir (dev/run sets it to the checkout, an
    installed package defaults to a per-user folder), never under the current directory."""
    s = Settings(app_id="probe-app", store="memory://", workdir=str(tmp_path), data_dir=".cache/test-app-dir")
    app, _topics = create_app(s)
    assert Path(app.conf.datadir) == tmp_path / ".cache" / "test-app-dir" / "probe-app"
    assert Path(app.conf.datadir).is_dir()
