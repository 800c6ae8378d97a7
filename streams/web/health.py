"""Liveness, readiness and metrics routes on the Faust worker's aiohttp server.

Ready means: the worker has partitions assigned, is not rebalancing, and its tables
have finished recovering from their changelogs, so what it serves and alerts on is
complete state rather than a half-restored one.
"""

from __future__ import annotations

from typing import Any

import faust
from aiohttp import web

from streams.metrics import Metrics


def readiness(app: faust.App) -> tuple[bool, dict[str, Any]]:
    try:
        assigned = len(app.consumer.assignment())
    except Exception:  # consumer not started yet
        assigned = 0
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    detail = {
        "assigned_partitions": assigned,
        "rebalancing": bool(app.rebalancing),
        "in_recovery": bool(app.in_recovery),
        "tables_recovered": recovered,
    }
    ok = assigned > 0 and recovered and not app.rebalancing and not app.in_recovery
    return ok, detail


def add_health_routes(router: web.UrlDispatcher, app: faust.App, metrics: Metrics) -> None:
    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(request: web.Request) -> web.Response:
        ok, detail = readiness(app)
        return web.json_response({"status": "ready" if ok else "not-ready", **detail}, status=200 if ok else 503)

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

    router.add_get("/health/live", live)
    router.add_get("/health/ready", ready)
    router.add_get("/metrics", prometheus)
