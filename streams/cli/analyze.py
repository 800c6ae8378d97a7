"""``skyfence analyze``: run tracking, geofence and alerts on a file in one process (no broker)."""

from __future__ import annotations

import argparse
import sys

from streams.cli.common import policy_option
from streams.cli.format import format_alert
from streams.settings import Settings, SettingsError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed)")
    p.add_argument("--json", action="store_true", help="one alert per line, fields as in schemas/alert.v1.json")
    # Closing is the default: a reader of a file's alerts must see every episode end, with its true
    # closest approach. The closing messages are those the live pipeline sends once the alert
    # timeout has passed (an exit still pending at the end is an exit); --no-close shows only what
    # a worker would have sent by the file's last position.
    p.add_argument("--close", action=argparse.BooleanOptionalAction, default=True,
                   help="at end of file end every open episode as the live pipeline does after its timeout "
                        "(default; --no-close: only what a worker would have sent by the last position)")
    policy_option(p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    from pathlib import Path

    import orjson

    from streams.analyze import analyze_file
    from streams.readers import sniff_format
    from streams.wiring import build_engine, build_stages

    path = Path(args.file)
    if not path.is_file():
        raise SettingsError(f"analyze: no such file {args.file}")
    fmt = args.fmt or sniff_format(path)
    engine = build_engine(settings)
    result = asyncio.run(analyze_file(str(path), fmt, engine, close_all=args.close,
                                      max_message_bytes=settings.max_message_bytes, partitions=settings.partitions,
                                      stages=build_stages(engine, settings)))
    if args.json:
        for a in result.alerts:
            sys.stdout.write(orjson.dumps(a).decode() + "\n")
        return 0
    for a in result.alerts:
        print(format_alert(a))
    transitions: dict[str, int] = {}
    for a in result.alerts:
        transitions[str(a.get("transition"))] = transitions.get(str(a.get("transition")), 0) + 1
    print(
        f"\n{path.name} [{fmt}]: {result.positions:,} positions, {len(result.tracks):,} aircraft, "
        f"{len(result.alerts)} alerts {dict(sorted(transitions.items()))}, policy {settings.alert_policy}"
    )
    if result.rejected:
        print(f"rejected by the track gate: {dict(result.rejected)}")
    if result.dead_letters:
        print(f"dead letters: {dict(result.dead_letters)}")
    return 0
