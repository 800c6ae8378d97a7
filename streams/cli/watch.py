"""``skyfence watch``: live terminal table of aircraft near Mexico and the newest alerts."""

from __future__ import annotations

import argparse

from streams.settings import Settings

HELP = "live terminal table of aircraft near Mexico and the newest alerts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sort", choices=("distance", "entry"), default="distance",
                   help="distance to the boundary, or predicted time to entry")
    p.add_argument("--max-km", dest="max_km", type=float, default=500.0,
                   help="list aircraft within this distance of the boundary (0: all)")
    p.add_argument("--military", action="store_true", help="only military/surveillance aircraft")
    p.add_argument("--rows", type=int, default=30, help="rows in the table")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--once", action="store_true", help="print the table once when caught up, then exit")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.watch import run_watch

    return asyncio.run(run_watch(settings, sort=args.sort, max_distance_km=args.max_km or None,
                                 military_only=args.military, duration=args.duration, once=args.once,
                                 limit=args.rows))
