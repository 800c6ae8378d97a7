"""``skyfence stack``: start/stop the local Kafka (KRaft) + Redis stack, no Docker needed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from streams.settings import Settings

if TYPE_CHECKING:
    from streams.stack import LocalStack

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("up", "down", "status", "fetch", "wipe"))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.stack import LocalStack, fetch_kafka_jars

    if args.action == "fetch":
        print(f"Kafka jars in {fetch_kafka_jars(settings)}")
        return 0
    stack = LocalStack(settings)
    if args.action == "up":
        timings = stack.up()
        print(f"kafka  {stack.bootstrap}  (pid {stack.kafka.pid()})")
        print(f"redis  {stack.redis_url}  (pid {stack.redis.pid()})")
        for k, v in timings.items():
            print(f"  started {k[:-2]} in {v:.1f} s")
        print(f"logs and pids in {stack.run_dir}")
        print(f"export SKYFENCE_BROKER=kafka://{stack.bootstrap} SKYFENCE_REDIS_URL={stack.redis_url}")
        return 0
    if args.action == "down":
        stopped = stack.down()
        print("stopped " + ", ".join(stopped) if stopped else "nothing of ours was running")
        return 0
    if args.action == "status":
        return print_status(stack, settings)
    if args.action == "wipe":
        stack.wipe()
        print(f"removed {stack.run_dir}")
        return 0
    raise AssertionError(args.action)


def print_status(stack: LocalStack, settings: Settings) -> int:
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from streams.kafka_io import broker_overview

    console = Console()
    procs = Table(title="local stack")
    for col in ("service", "pid", "port", "answering", "log"):
        procs.add_column(col)
    st = stack.status()
    for name, proc in st.items():
        procs.add_row(name, str(proc["pid"]), str(proc["port"]), str(proc["answering"]), str(proc["log"]))
    console.print(procs)
    if not st["kafka"]["answering"] and stack.kafka.port != settings.kafka_port:
        return 1
    client_settings = stack.settings_for_clients() if st["kafka"]["answering"] else settings
    try:
        topics, groups = asyncio.run(broker_overview(client_settings))
    except Exception as exc:  # the broker may simply be down: say so, do not trace back
        console.print(f"[red]broker {client_settings.bootstrap} not reachable: {exc}[/red]")
        return 1
    t = Table(title=f"topics on {client_settings.bootstrap}")
    for col in ("topic", "partitions", "end offsets (sum)"):
        t.add_column(col)
    for info in topics:
        t.add_row(info.name, str(info.partitions), str(sum(info.end_offsets.values())))
    console.print(t)
    g = Table(title="consumer groups")
    for col in ("group", "total lag", "partitions"):
        g.add_column(col)
    for grp in groups:
        g.add_row(grp.group, str(grp.total), str(len(grp.lag)))
    console.print(g)
    return 0
