"""``skyfence worker``: run a Faust worker: parse, track, geofence, alert, sink to Redis."""

from __future__ import annotations

import argparse

from streams.cli.common import ensure_topics_or_explain, policy_option
from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web-port", type=int, default=None, help="web server port (SKYFENCE_WEB_PORT)")
    policy_option(p)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from faust.worker import Worker

    from streams.agents import attach_agents, trim_heap, tune_malloc
    from streams.app import create_app
    from streams.logs import logging_config
    from streams.metrics import create_metrics

    if args.web_port is not None:
        settings = settings.replace(web_port=args.web_port)
    from streams.wiring import build_engine

    ensure_topics_or_explain(settings)
    tune_malloc()  # before the zones and tables load: their big arrays are mapped, not heap
    engine = build_engine(settings)  # loads zones and compiles (or loads cached) kernels before joining
    engine.warm()  # so the first batch's alerts do not wait for the engine's own kernels
    app, topics = create_app(settings)
    attach_agents(app, topics, settings, create_metrics(), engine)
    import gc

    # Zones, gazetteer and aircraft database are loaded for the process's life: frozen, the
    # collector stops re-scanning them, and its full passes no longer stall a batch for tens of ms.
    gc.freeze()
    trim_heap()
    worker = Worker(app, loglevel=settings.log_level, quiet=True, logging_config=logging_config(settings))
    worker.execute_from_commandline()
    return 0
