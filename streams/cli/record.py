"""``skyfence record``: write a topic (positions or raw) to a gzip file of Kafka records."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from streams.cli.format import parse_time
from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--topic", default="positions", choices=("positions", "raw"), help="which topic to record")
    p.add_argument("--from", dest="t_from", default=None, help="start at this time (offsets for times)")
    p.add_argument("--to", dest="t_to", default=None, help="stop at records after this time")
    p.add_argument("--follow", action="store_true", help="keep recording new records until Ctrl-C")
    p.add_argument("--idle", type=float, default=5.0, help="without --follow: stop after this many idle seconds")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run_record(settings, args))


async def run_record(settings: Settings, args: argparse.Namespace) -> int:
    from streams.ingest import open_record_file, record_line
    from streams.kafka_io import From, TopicReader
    from streams.topics import POSITIONS, RAW

    spec = POSITIONS if args.topic == "positions" else RAW
    topic = spec.name(settings)
    t_from, t_to = parse_time(args.t_from), parse_time(args.t_to)
    n = 0
    started = time.monotonic()
    show = sys.stderr.isatty()
    # records stamped after t_to are skipped, not an end: without --follow, recording stops after
    # args.idle seconds without a record to write
    async with TopicReader(settings, [topic], start=From.time(t_from), until=t_to,
                           idle_s=None if args.follow else args.idle) as reader:
        with open_record_file(Path(args.file)) as out:
            async for batch in reader:
                for tp, records in batch.items():
                    for r in records:
                        out.write(record_line(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value))
                    n += len(records)
                if show:
                    rate = n / max(1e-9, time.monotonic() - started)
                    sys.stderr.write(f"\rrecord {topic}: {n:,} records  {rate:,.0f} rec/s   ")
    if show:
        sys.stderr.write("\n")
    print(f"recorded {n:,} records of {topic} to {args.file}")
    return 0
