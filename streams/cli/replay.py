"""``skyfence replay``: feed a recorded file into Kafka, keeping its event-time spacing."""

from __future__ import annotations

import argparse

from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed from content)")
    p.add_argument("--speed", default="1", help="1, 10, ... times real time, or max")
    p.add_argument("--from", dest="t_from", default=None, help="skip positions before this time (ISO or epoch)")
    p.add_argument("--to", dest="t_to", default=None, help="stop after this time (ISO or epoch)")
    p.add_argument("--loop", action="store_true", help="start again at the end (until Ctrl-C)")
    p.add_argument("--receiver", default=None, help="receiver id (default: the file name)")
    p.add_argument("--stdout", action="store_true", help="print positions as JSON lines; publish nothing")
    p.add_argument("--raw", action="store_true", help="also archive the raw input to the raw topic")
    p.add_argument("--reference", default=None, help="receiver position LAT,LON for Mode S local decoding")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")
    p.set_defaults(interval=None, bbox=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.cli.ingest import run_ingest

    return asyncio.run(run_ingest(settings, args, replay=True))
