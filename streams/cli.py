"""The ``skyfence`` console script: one entry point, one subcommand per job.

This module owns argument parsing and turning errors into one clear line. Every
subcommand imports what it needs inside its handler, so ``skyfence --help`` (and
any subcommand's ``--help``) loads neither Faust nor numba.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from streams.settings import Settings, SettingsError

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("broker", "redis_url", "alert_policy", "topic_prefix", "redis_prefix", "log_format"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings.from_env(**overrides)


# --- stack ---------------------------------------------------------------------------------
def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from streams.stack import LocalStack, fetch_kafka_jars

    if args.action == "fetch":
        print(f"Kafka jars in {fetch_kafka_jars(settings)}")
        return 0
    stack = LocalStack(settings)
    if args.action == "up":
        timings = stack.up()
        print(f"kafka  {stack.bootstrap}  (pid {stack.kafka.pid()})")
        print(f"redis  {stack.redis_url}  (pid {stack.redis.pid()})")
        for k, v in timings.items():
            print(f"  started {k[:-2]} in {v:.1f} s")
        print(f"logs and pids in {stack.run_dir}")
        print(f"export SKYFENCE_BROKER=kafka://{stack.bootstrap} SKYFENCE_REDIS_URL={stack.redis_url}")
        return 0
    if args.action == "down":
        stopped = stack.down()
        print("stopped " + ", ".join(stopped) if stopped else "nothing of ours was running")
        return 0
    if args.action == "status":
        from streams.status import print_status

        return print_status(stack, settings)
    if args.action == "wipe":
        stack.wipe()
        print(f"removed {stack.run_dir}")
        return 0
    raise AssertionError(args.action)


# --- worker --------------------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from faust.worker import Worker

    from streams.agents import attach_agents
    from streams.app import create_app
    from streams.logs import logging_config
    from streams.metrics import create_metrics

    if args.web_port is not None:
        settings = settings.replace(web_port=args.web_port)
    _ensure_topics_or_explain(settings)
    app, topics = create_app(settings)
    attach_agents(app, topics, settings, create_metrics())
    worker = Worker(app, loglevel=settings.log_level, quiet=True, logging_config=logging_config(settings))
    worker.execute_from_commandline()
    return 0


def _ensure_topics_or_explain(settings: Settings) -> None:
    import asyncio

    from streams.kafka_io import ensure_topics

    try:
        asyncio.run(ensure_topics(settings))
    except Exception as exc:
        raise SettingsError(
            f"cannot reach the Kafka broker at SKYFENCE_BROKER={settings.broker} ({type(exc).__name__}: {exc}); "
            "start it with `skyfence stack up` or point SKYFENCE_BROKER at a running broker"
        ) from None


# --- settings ------------------------------------------------------------------------------
def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    if args.markdown:
        from streams.settings import settings_doc_table

        print(settings_doc_table())
        return 0
    width = max(len(k) for k, _, _ in settings.public_items())
    for var, value, doc in settings.public_items():
        print(f"{var:<{width}}  {value:<28}  {doc}")
    return 0


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

    p = sub.add_parser("stack", help="start/stop the local Kafka (KRaft) + Redis stack, no Docker needed")
    p.add_argument("action", choices=("up", "down", "status", "fetch", "wipe"))
    p.set_defaults(handler=cmd_stack)

    p = sub.add_parser("worker", help="run a Faust worker: parse, track, geofence, alert, sink to Redis")
    p.add_argument("--web-port", type=int, default=None, help="web server port (SKYFENCE_WEB_PORT)")
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("settings", help="print every setting, its value (secrets masked) and meaning")
    p.add_argument("--markdown", action="store_true", help="print the README's configuration table")
    p.set_defaults(handler=cmd_settings)

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


if __name__ == "__main__":
    sys.exit(main())
