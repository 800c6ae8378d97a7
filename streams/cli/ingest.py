"""``skyfence ingest``: parse a feed (file, -, tcp://, http(s)://) into the positions topic."""

from __future__ import annotations

import argparse

from streams.settings import Settings

HELP = "parse a feed (file, -, tcp://, http(s)://) into the positions topic"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="file (plain or gzip), - for stdin, tcp://host:port, or an http(s) URL")
    p.add_argument("--format", "-f", dest="fmt", required=True, help="input format (see --help of `formats`)")
    p.add_argument("--receiver", default=None, help="receiver id (default: derived from the source)")
    p.add_argument("--stdout", action="store_true", help="print positions as JSON lines; publish nothing")
    p.add_argument("--raw", action="store_true", help="also archive the raw input to the raw topic")
    p.add_argument("--interval", type=float, default=5.0, help="HTTP polling interval in seconds")
    p.add_argument("--bbox", default=None, help="OpenSky bounding box lamin,lomin,lamax,lomax")
    p.add_argument("--reference", default=None, help="receiver position LAT,LON for Mode S local decoding")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.runners import run_ingest

    return asyncio.run(run_ingest(settings, args, replay=False))
