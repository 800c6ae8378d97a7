"""``skyfence demo``: the README's first command, the whole system on real recordings.

This module owns the newcomer's tour: start the local stack (Kafka in KRaft mode and
Redis, no Docker), start a worker, replay the bundled real recordings (DAL1812 crossing
Yucatán, a Boeing test flight passing Laredo), and print alerts as the Redis subscriber
API receives them, with the live map's address. Ctrl-C stops the worker and the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from streams.settings import Settings, child_env


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speed", default="600", help="replay speed factor, or max (default 600: ~2 min)")
    p.add_argument("--exit", action="store_true", help="stop once the recordings are processed (else Ctrl-C)")
    p.add_argument("--no-stack", action="store_true", help="use SKYFENCE_BROKER/REDIS_URL instead of a local stack")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return run_demo(settings, speed=args.speed, use_stack=not args.no_stack, exit_after=args.exit)


RECORDINGS: list[tuple[str, str, str]] = [
    ("readsb_trace_full_ac671b.json.gz", "trace", "Delta 1812 (B739) over Yucatán, 2025-02-04, readsb trace"),
    ("traffic_dreamliner_boeing.json.gz", "traffic-json", "Boeing test flight BOE004 near Laredo, 2017-08-03"),
]
# The demo's recordings ship in the package (copies of tests/data/, provenance in streams/data/PROVENANCE.md).
DATA = Path(str(resources.files("streams").joinpath("data", "demo")))


def run_demo(settings: Settings, speed: str, use_stack: bool, exit_after: bool) -> int:
    from rich.console import Console

    from streams.stack import LocalStack, free_port

    console = Console()
    stack = None
    if use_stack:
        stack = LocalStack(settings.replace(kafka_port=0, redis_port=0, stack_dir=".cache/demo-stack"))
        console.print("[bold]starting the local stack[/bold] (Kafka KRaft + Redis, no Docker)…")
        timings = stack.up(log=lambda m: console.print(f"  {m}"))
        console.print(f"  kafka {stack.bootstrap}, redis {stack.redis_url} {timings}")
        settings = stack.settings_for_clients()
    settings = settings.replace(
        alert_policy="all",
        store="memory://",
        web_port=free_port() if use_stack else settings.web_port,
        topic_prefix=f"demo{int(time.time())}",
        redis_prefix=f"demo{int(time.time())}",
        app_id=f"skyfence-demo{int(time.time())}",
    )
    logs = settings.resolve(".cache/demo-logs")
    logs.mkdir(parents=True, exist_ok=True)
    worker_log = open(logs / "worker.log", "wb")  # closed in finally
    console.print("[bold]starting a worker[/bold] (policy: all aircraft alert, so civil recordings show alerts)")
    worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=child_env(settings),
                              stdout=worker_log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(worker, logs / "worker.log")
        url = f"http://{settings.web_host}:{settings.web_port}/map"
        console.print(f"  live map: {url}   (worker log: {logs / 'worker.log'})", soft_wrap=True, highlight=False)
        return asyncio.run(_replay_and_follow(settings, speed, exit_after, console))
    except KeyboardInterrupt:
        return 0
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker_log.close()
        if stack is not None:
            console.print("stopping the local stack…")
            stack.down()


def _wait_ready(worker: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited ({worker.returncode}); see {log}")
        if b"Worker ready" in log.read_bytes():
            return
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready after {timeout:.0f} s; see {log}")


async def _replay_and_follow(settings: Settings, speed: str, exit_after: bool, console: object) -> int:
    from rich.console import Console

    from streams.cli.format import format_alert
    from streams.sinks.subscriber import AlertSubscriber

    assert isinstance(console, Console)
    replays = []
    for name, fmt, what in RECORDINGS:
        console.print(f"[bold]replaying[/bold] {what} at speed {speed}")
        replays.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams.cli", "replay", str(DATA / name), "--format", fmt, "--speed", speed,
            env=child_env(settings),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        ))
    n = 0
    quiet_since = time.monotonic()
    async with AlertSubscriber(settings, group="demo", consumer="demo") as sub:
        while True:
            batch = await sub.read(pending=False, block_ms=500)
            for eid, alert in batch:
                style = {"high": "bold red", "medium": "yellow", "low": "cyan"}.get(str(alert.get("severity")), "")
                console.print(format_alert(alert), style=style, markup=False, highlight=False, soft_wrap=True)
                await sub.ack(eid)
                n += 1
                quiet_since = time.monotonic()
            done = all(p.returncode is not None for p in replays)
            # 5 s without a new alert after the replays ended: the recordings are fully processed
            if exit_after and done and time.monotonic() - quiet_since > 5.0:
                break
    console.print(f"[bold]{n} alerts[/bold] received from Redis (stream {settings.redis_key('alerts')})")
    return 0
