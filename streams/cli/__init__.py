"""The ``skyfence`` console script: one entry point, one module per subcommand.

This package owns argument parsing, turning errors into one clear line, and the subcommands'
own work. Each subcommand is a module here with ``add_arguments(parser)`` and
``run(args, settings)`` (its one-line help is in :data:`COMMANDS`); only the module of the
subcommand being run is imported, so ``skyfence --help`` loads none of them, and a module
imports what compiles numba or starts Faust inside ``run``. Shared helpers:
:mod:`streams.cli.common` (options, reaching the broker) and :mod:`streams.cli.format` (alert
lines, times in and out).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from streams.settings import Settings, SettingsError

Handler = Callable[[argparse.Namespace, Settings], int]

# Subcommands in the order --help lists them, each with its one-line help: the module of the
# chosen one alone is imported (streams.cli.<command>), so listing them loads none of them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("stack", "start/stop the local Kafka (KRaft) + Redis stack, no Docker needed"),
    ("worker", "run a Faust worker: parse, track, geofence, alert, sink to Redis"),
    ("ingest", "parse a feed (file, -, tcp://, http(s)://) into the positions topic"),
    ("replay", "feed a recorded file into Kafka, keeping its event-time spacing"),
    ("record", "write a topic (positions or raw) to a gzip file of Kafka records"),
    ("analyze", "run tracking, geofence and alerts on a file in one process (no broker)"),
    ("alerts", "read alerts from the Redis Stream as a consumer-group member"),
    ("demo", "start the local stack and a worker, replay real flights, show alerts live"),
    ("watch", "live terminal table of aircraft near Mexico and the newest alerts"),
    ("report", "mission report: per military track closest approach, entry, time in zones"),
    ("rewind", "set a consumer group's positions offsets to a time (re-run from Kafka)"),
    ("fences", "list the zones and fences; `fences check LAT LON` answers for a point"),
    ("export", "GeoJSON layers and a KML (Google Earth) of the missions in recorded files"),
    ("rules", "check an alert rules file; with a recording, which rules fire on its alerts"),
    ("settings", "print every setting, its value (secrets masked) and meaning"),
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("broker", "redis_url", "alert_policy", "topic_prefix", "redis_prefix", "log_format"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings.from_env(**overrides)


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", help="Kafka bootstrap, e.g. kafka://127.0.0.1:9092 (SKYFENCE_BROKER)")
    parser.add_argument("--redis-url", dest="redis_url", help="Redis URL (SKYFENCE_REDIS_URL)")
    parser.add_argument("--topic-prefix", dest="topic_prefix", help="topic name prefix (SKYFENCE_TOPIC_PREFIX)")
    parser.add_argument("--redis-prefix", dest="redis_prefix", help="Redis key prefix (SKYFENCE_REDIS_PREFIX)")
    parser.add_argument(
        "--log-format", dest="log_format", choices=("text", "json"), help="log lines as text or JSON"
    )


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (global options and their values skipped), if any."""
    pre = argparse.ArgumentParser(add_help=False)
    _global_options(pre)
    pre.add_argument("command", nargs="?")
    known, _rest = pre.parse_known_args(list(argv))
    return known.command if known.command in dict(COMMANDS) else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand ``argv`` names (none: all listed, none loaded) gets its arguments."""
    parser = argparse.ArgumentParser(
        prog="skyfence",
        description="Flag aircraft approaching or entering Mexican sovereign airspace, live or from recordings.",
    )
    _global_options(parser)
    chosen = chosen_command(sys.argv[1:] if argv is None else argv)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, text in COMMANDS:
        p = sub.add_parser(command, help=text, description=text)
        if command == chosen:
            mod = importlib.import_module(f"streams.cli.{command}")
            mod.add_arguments(p)
            p.set_defaults(handler=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = _settings(args)
        return handler(args, settings)
    except SettingsError as exc:
        print(f"skyfence: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from streams.stack import StackError

        if isinstance(exc, StackError):
            print(f"skyfence: {exc}", file=sys.stderr)
            return 1
        raise
