"""Session fixtures: one real Kafka broker (KRaft) and one real Redis per test session.

The stack is started once (or reused when SKYFENCE_TEST_STACK names a running one)
and every test is isolated by unique topic names, a unique consumer group and a
unique Redis key prefix, never by restarting services.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from streams.settings import Settings, child_env
from streams.stack import LocalStack
from tests.paths import REPO_ROOT

ARTIFACTS = REPO_ROOT / "artifacts"

# Property tests in CI: the same examples on every run (derandomize), so main's status never
# depends on a random draw, and a failure prints the blob that reproduces it. The property
# tests' own @settings (example counts, no deadline) still apply on top of this profile.
hypothesis_settings.register_profile("skyfence", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("skyfence")


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings from the environment; the workdir (Kafka jars, stack data) is the checkout's
    git-ignored .cache unless SKYFENCE_WORKDIR says otherwise, as dev/run sets it."""
    s = Settings.from_env(store="memory://", log_level="info")
    return s if s.workdir else s.replace(workdir=str(REPO_ROOT))


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a running broker and Redis; started here unless reused."""
    if base_settings.test_stack:
        parts = dict(p.split("=", 1) for p in base_settings.test_stack.split(","))
        yield base_settings.replace(broker=f"kafka://{parts['kafka']}", redis_url=f"redis://{parts['redis']}/0")
        return
    run_dir = REPO_ROOT / ".cache" / f"test-stack-{os.getpid()}"
    local = LocalStack(base_settings.replace(kafka_port=0, redis_port=0), run_dir)
    t0 = time.monotonic()
    timings = local.up(log=lambda m: print(m, file=sys.stderr))
    print(f"\n[stack] kafka {local.bootstrap} redis {local.redis_url} up in "
          f"{time.monotonic() - t0:.1f} s {timings}", file=sys.stderr)
    try:
        yield local.settings_for_clients()
    finally:
        local.down()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(stack: Settings, uid: str) -> Settings:
    """Per-test isolation: own topics, consumer group, Redis keys, data dir and web port."""
    from streams.stack import free_port

    return stack.replace(
        topic_prefix=f"t{uid}",
        app_id=f"skyfence-t{uid}",
        redis_prefix=f"t{uid}",
        data_dir=str(REPO_ROOT / ".cache" / "test-workers" / uid),
        web_port=free_port(),
        partitions=4,
    )


class WorkerProcess:
    """A real `skyfence worker` process for one test."""

    def __init__(self, settings: Settings, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{settings.app_id}-{name}.log"
        env = child_env(settings)
        env.update(extra_env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            if "Worker ready" in self.log_text():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout} s:\n{self.log_text()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(name: str = "w1", settings_: Settings | None = None, wait: bool = True,
              extra_env: dict[str, str] | None = None) -> WorkerProcess:
        w = WorkerProcess(settings_ or settings, name, extra_env)
        workers.append(w)
        if wait:
            w.wait_ready()
        return w

    yield start
    crashed = []
    for w in workers:
        w.stop()
        if "Crashed reason=" in w.log_text():
            crashed.append(str(w.log_path))
    # Faust restarts a crashed agent silently; a crash is still a defect, so the test fails
    assert not crashed, f"an agent crashed inside a worker; see {crashed}"


_MARKERS = {"unit", "integration", "faults", "security", "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test carries one of the project's markers, so `-m` selections miss none."""
    unmarked = [i.nodeid for i in items if not _MARKERS & {m.name for m in i.iter_markers()}]
    if unmarked:
        raise pytest.UsageError("tests without a unit/integration/faults/security/browser marker: "
                                + ", ".join(unmarked[:10]))
