"""``skyfence record``: write a topic (positions or raw) to a gzip file of Kafka records."""

from __future__ import annotations

import argparse

from streams.settings import Settings

HELP = "write a topic (positions or raw) to a gzip file of Kafka records"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--topic", default="positions", choices=("positions", "raw"), help="which topic to record")
    p.add_argument("--from", dest="t_from", default=None, help="start at this time (offsets for times)")
    p.add_argument("--to", dest="t_to", default=None, help="stop at records after this time")
    p.add_argument("--follow", action="store_true", help="keep recording new records until Ctrl-C")
    p.add_argument("--idle", type=float, default=5.0, help="without --follow: stop after this many idle seconds")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.runners import run_record

    return asyncio.run(run_record(settings, args))
