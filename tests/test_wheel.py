"""The wheel does the main job outside the checkout (issue 18).

Builds the wheel (uv build), installs it with requirements.lock into a fresh virtualenv in a
temporary folder, and from there, with the temporary folder as working directory and as the
per-user data folder (XDG_DATA_HOME): fetches the Kafka jars through the packaged Maven project,
starts the local stack, runs a short demo against it (its alerts arrive through Redis), starts a
worker and fetches the map page and its script, and stops the stack.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.stack import free_port
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration

UV = Path(sys.executable).with_name("uv")


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_wheel_installed_outside_the_checkout_does_the_main_job(tmp_path: Path) -> None:
    dist, venv, home = tmp_path / "dist", tmp_path / "venv", tmp_path / "xdg"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SKYFENCE_", "PYTHON", "VIRTUAL_ENV"))}
    _run([str(UV), "build", "--wheel", "--out-dir", str(dist), str(REPO_ROOT)], base, tmp_path)
    [wheel] = dist.glob("skyfence-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)], base, tmp_path)
    py = venv / "bin" / "python"
    lock = str(REPO_ROOT / "requirements.lock")
    _run([str(UV), "pip", "install", "--python", str(py), "--require-hashes", "-r", lock], base, tmp_path)
    _run([str(UV), "pip", "install", "--python", str(py), "--no-deps", str(wheel)], base, tmp_path)
    skyfence = str(venv / "bin" / "skyfence")
    env = dict(base, XDG_DATA_HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{base.get('PATH', '')}",
               SKYFENCE_KAFKA_PORT=str(free_port()), SKYFENCE_REDIS_PORT=str(free_port()),
               SKYFENCE_WEB_PORT=str(free_port()))
    # the package imports from site-packages, not from the checkout
    where = _run([str(py), "-c", "import streams; print(streams.__file__)"], env, tmp_path)
    assert str(venv) in where and str(REPO_ROOT) not in where
    workdir = home / "skyfence"
    assert f"workdir: {workdir}" in _run([skyfence, "settings"], env, tmp_path)
    fetched = _run([skyfence, "stack", "fetch"], env, tmp_path)
    assert str(workdir / ".cache" / "kafka") in fetched
    up = _run([skyfence, "stack", "up"], env, tmp_path, timeout=300)
    try:
        m = re.search(r"export SKYFENCE_BROKER=(\S+) SKYFENCE_REDIS_URL=(\S+)", up)
        assert m, up
        env.update(SKYFENCE_BROKER=m.group(1), SKYFENCE_REDIS_URL=m.group(2))
        demo = _run([skyfence, "demo", "--no-stack", "--exit", "--speed", "max"], env, tmp_path, timeout=600)
        assert "DAL1812" in demo and "entered" in demo, demo[-3000:]
        assert "BOE004" in demo and "approaching" in demo, demo[-3000:]
        # the live map from the installed package's own assets
        log = open(tmp_path / "worker.log", "wb")
        worker = subprocess.Popen([skyfence, "worker"], env=dict(env, SKYFENCE_APP_ID="wheel-map"), cwd=tmp_path,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{env['SKYFENCE_WEB_PORT']}"
            deadline = time.monotonic() + 120
            page = b""
            while time.monotonic() < deadline and worker.poll() is None:
                try:
                    page = urllib.request.urlopen(f"{url}/map", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.5)
            assert b"map.js" in page, (tmp_path / "worker.log").read_text()[-3000:]
            script = urllib.request.urlopen(f"{url}/map.js", timeout=5).read()
            assert len(script) > 1000
            # the map library ships in the wheel (vendored: the map works with no network)
            library = urllib.request.urlopen(f"{url}/vendor/ol.js", timeout=5).read()
            assert len(library) > 500_000 and b"vendor/ol.js" in page
        finally:
            worker.terminate()
            worker.wait(60)
            log.close()
    finally:
        down = _run([skyfence, "stack", "down"], env, tmp_path, timeout=120)
    assert "stopped" in down
