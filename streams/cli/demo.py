"""``skyfence demo``: the README's first command, the whole system on real recordings.

This module owns the newcomer's tour: start the local stack (Kafka in KRaft mode and
Redis, no Docker), start a worker, replay the bundled real recordings (DAL1812 crossing
Yucatán, a Boeing test flight passing Laredo), and print alerts as the Redis subscriber
API receives them, with the live map's address. Ctrl-C stops the worker and the stack.

``--receiver RECORDING`` swaps the replays for a real receiver: the Mode S recording is
played in real time into a local dump1090 (``streams.receiver``), and ``skyfence ingest``
reads dump1090's Beast output as it would read a receiver with an antenna.
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
from typing import TYPE_CHECKING, Any

from streams.settings import Settings, SettingsError, child_env

if TYPE_CHECKING:
    from streams.receiver import LocalReceiver, RecordedFrame


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speed", default=None, help="replay speed factor, or max (default 600: ~2 min)")
    p.add_argument("--exit", action="store_true", help="stop once the recordings are processed (else Ctrl-C)")
    p.add_argument("--no-stack", action="store_true", help="use SKYFENCE_BROKER/REDIS_URL instead of a local stack")
    p.add_argument("--receiver", metavar="RECORDING", default=None,
                   help="instead of the replays: play this Mode S recording (Beast capture, rs1090 JSON lines or "
                        "pyModeS CSV) in real time into a local dump1090-mutability and ingest its Beast output")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.receiver and args.speed not in (None, "1"):
        # Beast timestamps become event times; faster than real time they would run into the future
        raise SettingsError("--receiver plays the recording in real time, as an antenna hears it; drop --speed")
    return run_demo(settings, speed=args.speed or "600", use_stack=not args.no_stack, exit_after=args.exit,
                    receiver=args.receiver)


RECORDINGS: list[tuple[str, str, str]] = [
    ("readsb_trace_full_ac671b.json.gz", "trace", "Delta 1812 (B739) over Yucatán, 2025-02-04, readsb trace"),
    ("traffic_dreamliner_boeing.json.gz", "traffic-json", "Boeing test flight BOE004 near Laredo, 2017-08-03"),
]
# The demo's recordings ship in the package (copies of tests/data/, provenance in streams/data/PROVENANCE.md).
DATA = Path(str(resources.files("streams").joinpath("data", "demo")))


def run_demo(settings: Settings, speed: str, use_stack: bool, exit_after: bool, receiver: str | None = None) -> int:
    from rich.console import Console

    from streams.receiver import LocalReceiver, load_recording
    from streams.stack import LocalStack, free_port

    console = Console()
    frames: list[RecordedFrame] | None = None
    if receiver:
        try:
            frames = load_recording(receiver)
        except (OSError, ValueError) as exc:
            raise SettingsError(f"--receiver {receiver}: {exc}") from None
        if not frames:
            raise SettingsError(f"--receiver {receiver}: no Mode S frames in it")
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
    local_rx = None
    try:
        _wait_ready(worker, logs / "worker.log")
        url = f"http://{settings.web_host}:{settings.web_port}/map"
        console.print(f"  live map: {url}   (worker log: {logs / 'worker.log'})", soft_wrap=True, highlight=False)
        if frames is not None:
            console.print("[bold]starting a receiver[/bold]: dump1090-mutability --net-only, no antenna")
            local_rx = LocalReceiver(settings, run_dir=settings.resolve(".cache/demo-receiver"))
            local_rx.start()
            console.print(f"  Beast {local_rx.beast_url}, AVR {local_rx.avr_url}, SBS {local_rx.sbs_url}, "
                          f"{local_rx.json_url}", soft_wrap=True, highlight=False)
        return asyncio.run(_replay_and_follow(settings, speed, exit_after, console, local_rx, frames))
    except KeyboardInterrupt:
        return 0
    finally:
        if local_rx is not None:
            local_rx.stop()
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


async def _replay_and_follow(settings: Settings, speed: str, exit_after: bool, console: object,
                             receiver: LocalReceiver | None = None, frames: list[RecordedFrame] | None = None) -> int:
    from rich.console import Console

    from streams.cli.format import format_alert
    from streams.sinks.subscriber import AlertSubscriber

    assert isinstance(console, Console)
    replays = []
    antenna: tuple[asyncio.subprocess.Process, asyncio.Task[int], str] | None = None
    if receiver is not None and frames is not None:
        antenna = await _play_into_receiver(settings, receiver, frames, console)
    else:
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
            done = antenna[1].done() if antenna is not None else all(p.returncode is not None for p in replays)
            # 5 s without a new alert after the replays ended: the recordings are fully processed
            if exit_after and done and time.monotonic() - quiet_since > 5.0:
                break
    if antenna is not None:
        published = await _stop_ingest(*antenna)
        console.print(f"[bold]{published:,} positions[/bold] read from dump1090's Beast output and published by "
                      "skyfence ingest (its /metrics)", highlight=False)
    console.print(f"[bold]{n} alerts[/bold] received from Redis (stream {settings.redis_key('alerts')})")
    return 0


async def _play_into_receiver(settings: Settings, receiver: LocalReceiver, frames: list[RecordedFrame],
                              console: Any) -> tuple[asyncio.subprocess.Process, asyncio.Task[int], str]:
    """`skyfence ingest` on dump1090's Beast output, then the recording into its Beast input."""
    from streams.receiver import play
    from streams.stack import free_port

    metrics_port = free_port()
    ingest = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli", "ingest", receiver.beast_url, "--format", "beast",
        "--receiver", "demo-dump1090", "--metrics-port", str(metrics_port), env=child_env(settings),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    console.print(f"[bold]ingesting[/bold] skyfence ingest {receiver.beast_url} --format beast", highlight=False)
    # dump1090 sends a client nothing before it has accepted it: wait for that, not for the connect
    while receiver.clients(receiver.ports.beast_out) < 1:
        if ingest.returncode is not None:
            raise RuntimeError(f"skyfence ingest exited ({ingest.returncode}) before reading the receiver")
        await asyncio.sleep(0.1)
    minutes = (frames[-1].t - frames[0].t) / 60
    console.print(f"[bold]playing[/bold] {len(frames):,} Mode S frames into dump1090's Beast input in real time "
                  f"({minutes:.1f} min)", highlight=False)
    playing = asyncio.ensure_future(play(frames, receiver.ports.beast_in, fmt="beast", speed=1.0))
    return ingest, playing, f"http://{settings.web_host}:{metrics_port}/metrics"


async def _stop_ingest(ingest: asyncio.subprocess.Process, playing: asyncio.Task[int], metrics_url: str) -> int:
    """Stop `skyfence ingest` (it flushes what it read); returns how many positions it published.

    The count comes from its /metrics: the summary line it prints after a signal does not
    include the feed it was reading when stopped.
    """
    import aiohttp

    if not playing.done():
        playing.cancel()
    elif not playing.cancelled() and playing.exception() is not None:
        print(f"playing the recording into dump1090 failed: {playing.exception()}", file=sys.stderr)
    published = 0
    try:
        async with aiohttp.ClientSession() as session, session.get(metrics_url) as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith("skyfence_positions_in_total{") and 'stage="ingest"' in line:
                published += int(float(line.rsplit(" ", 1)[1]))
    except aiohttp.ClientError as exc:
        print(f"cannot read {metrics_url}: {exc}", file=sys.stderr)
    if ingest.returncode is None:
        ingest.send_signal(signal.SIGTERM)
    await ingest.wait()
    return published
