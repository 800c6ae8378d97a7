"""The ``skyfence`` console script: one entry point, one module per subcommand.

This package owns argument parsing and turning errors into one clear line. Each subcommand is a
module here with ``HELP``, ``add_arguments(parser)`` and ``run(args, settings)``; a module
imports what its job needs inside ``run``, so ``skyfence --help`` (and any subcommand's
``--help``) loads neither Faust nor numba. Shared helpers: :mod:`streams.cli.common` (options,
reaching the broker) and :mod:`streams.cli.format` (alert lines).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from streams.settings import Settings, SettingsError

Handler = Callable[[argparse.Namespace, Settings], int]

# Subcommands in the order --help lists them: (command, module in this package).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("stack", "stack"), ("worker", "worker"), ("ingest", "ingest"), ("replay", "replay"), ("record", "record"),
    ("analyze", "analyze"), ("alerts", "alerts"), ("demo", "demo"), ("watch", "watch"), ("report", "report"),
    ("rewind", "rewind"), ("fences", "fences"), ("export", "export"), ("rules", "rules"), ("settings", "settings"),
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("broker", "redis_url", "alert_policy", "topic_prefix", "redis_prefix", "log_format"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings.from_env(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skyfence",
        description="Flag aircraft approaching or entering Mexican sovereign airspace, live or from recordings.",
    )
    parser.add_argument("--broker", help="Kafka bootstrap, e.g. kafka://127.0.0.1:9092 (SKYFENCE_BROKER)")
    parser.add_argument("--redis-url", dest="redis_url", help="Redis URL (SKYFENCE_REDIS_URL)")
    parser.add_argument("--topic-prefix", dest="topic_prefix", help="topic name prefix (SKYFENCE_TOPIC_PREFIX)")
    parser.add_argument("--redis-prefix", dest="redis_prefix", help="Redis key prefix (SKYFENCE_REDIS_PREFIX)")
    parser.add_argument(
        "--log-format", dest="log_format", choices=("text", "json"), help="log lines as text or JSON"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module in COMMANDS:
        mod = importlib.import_module(f"streams.cli.{module}")
        p = sub.add_parser(command, help=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(handler=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
