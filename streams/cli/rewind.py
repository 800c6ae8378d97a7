"""``skyfence rewind``: set a consumer group's positions offsets to a time (re-run from Kafka)."""

from __future__ import annotations

import argparse

from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="t_from", required=True, help="re-run from this time (ISO or epoch)")
    p.add_argument("--app-id", dest="app_id", default=None,
                   help="consumer group = the worker's SKYFENCE_APP_ID (use a fresh one; default: current)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.cli.format import iso, parse_time
    from streams.kafka_io import rewind_group

    t = parse_time(args.t_from)
    assert t is not None
    group = args.app_id or settings.app_id
    offsets = asyncio.run(rewind_group(settings, group, t))
    print(f"consumer group {group}: positions offsets set to the first record at or after {iso(t)}: "
          + ", ".join(f"p{p}={o}" for p, o in sorted(offsets.items())))
    print(f"start the worker with SKYFENCE_APP_ID={group} to re-run from then")
    return 0
