"""``skyfence report``: mission report: per military track closest approach, entry, time in zones."""

from __future__ import annotations

import argparse
import sys

from streams.cli.common import policy_option
from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", help="recorded files (any ingest format); none: the live tracks topic")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed)")
    p.add_argument("--from", dest="t_from", default=None, help="window start (ISO or epoch)")
    p.add_argument("--to", dest="t_to", default=None, help="window end (ISO or epoch)")
    p.add_argument("--png", default=None, help="write a map picture of the tracks over the zones")
    p.add_argument("--zoom", action="store_true", help="frame the missions and their patterns, not all of Mexico")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--all-aircraft", dest="all_aircraft", action="store_true",
                   help="report every aircraft, not only military/surveillance")
    policy_option(p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from streams.cli.format import parse_time
    from streams.report import format_text, run_report

    report = run_report(settings, args.files, args.fmt, parse_time(args.t_from), parse_time(args.t_to),
                        args.png, args.json, all_aircraft=args.all_aircraft or settings.alert_policy == "all",
                        zoom=args.zoom)
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        print(format_text(report))
        if args.png:
            print(f"map written to {args.png}")
    return 0
