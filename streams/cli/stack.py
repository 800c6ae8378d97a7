"""``skyfence stack``: start/stop the local Kafka (KRaft) + Redis stack, no Docker needed."""

from __future__ import annotations

import argparse

from streams.settings import Settings

HELP = "start/stop the local Kafka (KRaft) + Redis stack, no Docker needed"


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
        from streams.status import print_status

        return print_status(stack, settings)
    if args.action == "wipe":
        stack.wipe()
        print(f"removed {stack.run_dir}")
        return 0
    raise AssertionError(args.action)
