"""`skyfence stack up` then `down` on the real binaries leaves no process and no port behind."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.settings import child_env
from streams.stack import free_port, port_open
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def _pids_with(fragment: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (d / "stat").read_text().split()[2]
            except (OSError, IndexError):
                continue
            if fragment in cmd and state != "Z":
                out.append(int(d.name))
    return out


def test_stack_up_down_leaves_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "stack"
    kport = free_port()
    rport = free_port(exclude={kport})
    env = child_env()
    env.update(SKYFENCE_STACK_DIR=str(run_dir), SKYFENCE_KAFKA_PORT=str(kport), SKYFENCE_REDIS_PORT=str(rport),
               SKYFENCE_WORKDIR=str(REPO_ROOT))
    skyfence = [sys.executable, "-m", "streams.cli"]
    up = subprocess.run([*skyfence, "stack", "up"], env=env, capture_output=True, text=True, cwd=REPO_ROOT,
                        timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        assert port_open(kport) and port_open(rport)
        with socket.create_connection(("127.0.0.1", rport)) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16).startswith(b"+PONG")
        assert _pids_with(f"-Dskyfence.stack={run_dir}"), "broker process not found"
        status = subprocess.run([*skyfence, "stack", "status"], env=env, capture_output=True, text=True,
                                cwd=REPO_ROOT, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "kafka" in status.stdout and str(kport) in status.stdout
        assert "__consumer_offsets" not in status.stdout  # only skyfence's own topics are listed
        again = subprocess.run([*skyfence, "stack", "up"], env=env, capture_output=True, text=True,
                               cwd=REPO_ROOT, timeout=60)
        assert again.returncode == 0, "up is idempotent while running"
    finally:
        down = subprocess.run([*skyfence, "stack", "down"], env=env, capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "kafka" in down.stdout and "redis" in down.stdout
    assert not port_open(kport) and not port_open(rport)
    assert _pids_with(f"-Dskyfence.stack={run_dir}") == []
    assert _pids_with(f"redis-server 127.0.0.1:{rport}") == []
    assert not (run_dir / "kafka.pid").exists() and not (run_dir / "redis.pid").exists()
    shutil.rmtree(run_dir, ignore_errors=True)


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = child_env()
        env.update(SKYFENCE_STACK_DIR=str(tmp_path / "s"), SKYFENCE_KAFKA_PORT=str(free_port()),
                   SKYFENCE_REDIS_PORT=str(port), SKYFENCE_WORKDIR=str(REPO_ROOT))
        proc = subprocess.run([sys.executable, "-m", "streams.cli", "stack", "up"], env=env,
                              capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 1
    assert f"port {port} for redis is already in use" in proc.stderr
    assert "SKYFENCE_REDIS_PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_free_port_is_outside_the_ephemeral_range_and_free() -> None:
    """Ports from free_port() are not ones the kernel hands to outgoing connections meanwhile."""
    from streams.stack import _ephemeral_floor

    ports = {free_port() for _ in range(50)}
    assert all(p < _ephemeral_floor() for p in ports), sorted(ports)
    assert len(ports) > 40  # random picks, not one port handed out again and again
    for p in list(ports)[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", p))  # still free: nobody listens there


def test_free_port_never_returns_a_port_already_picked() -> None:
    """Kafka's listener and controller ports are picked before either listens: a second pick must
    not return the first (seen once: Kafka refused 'two listeners on the same port')."""
    from streams.stack import _PICK_FLOOR, _ephemeral_floor

    picked = set(range(_PICK_FLOOR, _ephemeral_floor()))  # every port of the random range but one...
    spare = max(picked)
    picked.discard(spare)
    # ...so the random picks all land on excluded ports, and the bind(0) fallback must skip them too
    port = free_port(exclude=picked)
    assert port not in picked
    assert free_port(exclude={port}) != port
