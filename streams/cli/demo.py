"""``skyfence demo``: start the local stack and a worker, replay real flights, show alerts live."""

from __future__ import annotations

import argparse

from streams.settings import Settings

HELP = "start the local stack and a worker, replay real flights, show alerts live"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speed", default="600", help="replay speed factor, or max (default 600: ~2 min)")
    p.add_argument("--exit", action="store_true", help="stop once the recordings are processed (else Ctrl-C)")
    p.add_argument("--no-stack", action="store_true", help="use SKYFENCE_BROKER/REDIS_URL instead of a local stack")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.demo import run_demo

    return run_demo(settings, speed=args.speed, use_stack=not args.no_stack, exit_after=args.exit)
