"""``skyfence watch``: a live terminal table of aircraft near Mexico.

This module owns the terminal view: it follows the tracks and alerts topics with the
web map's own read-only follower (``streams.web.live.LiveState`` / ``follow_topics``,
no consumer group), and renders a rich table sorted by distance to the boundary or
by predicted time to entry, with class, altitude, speed, zone, the aircraft's current
on-station pattern (kind and time on station) and the newest alerts highlighted (pattern,
gone-dark and activity documents by their headline). ``build_table`` is pure over a
``LiveState``; ``run_watch`` drives it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import time
from typing import Any

from streams.settings import Settings
from streams.web.live import LiveState


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sort", choices=("distance", "entry"), default="distance",
                   help="distance to the boundary, or predicted time to entry")
    p.add_argument("--max-km", dest="max_km", type=float, default=500.0,
                   help="list aircraft within this distance of the boundary (0: all)")
    p.add_argument("--military", action="store_true", help="only military/surveillance aircraft")
    p.add_argument("--rows", type=int, default=30, help="rows in the table")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--once", action="store_true", help="print the table once when caught up, then exit")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run_watch(settings, sort=args.sort, max_distance_km=args.max_km or None,
                                 military_only=args.military, duration=args.duration, once=args.once,
                                 limit=args.rows))


# Only aircraft within 500 km of the boundary are listed by default: the outer ring is 185 km,
# so this shows what is about to matter without the whole continent's traffic.
DEFAULT_MAX_DISTANCE_KM = 500.0
# An alert stays highlighted this long (wall clock) after it arrived: long enough to be noticed.
HIGHLIGHT_S = 30.0
# Rows in the table: one terminal screen.
DEFAULT_ROWS = 30
# Redraws per second: smooth for people, cheap for the CPU.
REFRESH_PER_S = 2.0
SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _geo(doc: dict[str, Any]) -> dict[str, Any]:
    g = doc.get("geofence")
    return g if isinstance(g, dict) else {}


def rows(state: LiveState, sort: str = "distance", max_distance_km: float | None = DEFAULT_MAX_DISTANCE_KM,
         military_only: bool = False) -> list[dict[str, Any]]:
    """The aircraft to list, sorted: ``distance`` (nearest the boundary first, inside ones first)
    or ``entry`` (soonest predicted entry first, then by distance)."""
    out = []
    for icao, doc in state.aircraft.items():
        g = _geo(doc)
        d = g.get("distance_to_boundary_m")
        dist = float(d) if isinstance(d, int | float) else math.inf
        if max_distance_km is not None and dist > max_distance_km * 1000:
            continue
        cls = doc.get("classification") or {}
        if military_only and not cls.get("is_military_or_surveillance"):
            continue
        pos = doc.get("position") or {}
        tte = g.get("predicted_entry_s")
        pat = state.patterns.get(icao) or {}
        out.append({
            "icao24": icao, "callsign": doc.get("callsign"), "category": cls.get("category"),
            "type_code": cls.get("type_code"), "alt_ft": pos.get("alt_ft"), "gs_kt": pos.get("ground_speed_kt"),
            "zone": g.get("zone"), "country": g.get("airspace_country"), "distance_m": dist,
            "entry_s": float(tte) if isinstance(tte, int | float) else math.inf,
            "last_seen": doc.get("last_seen"),
            "pattern": pat.get("kind"), "on_station_s": pat.get("time_on_station_s"),
            "dark": icao in state.dark,
        })
    if sort == "entry":
        out.sort(key=lambda r: (r["entry_s"], r["distance_m"], r["icao24"]))
    else:
        out.sort(key=lambda r: (r["distance_m"], r["icao24"]))
    return out


def _hm(s: float) -> str:
    """Time on station: 1h05m, or 12m under an hour."""
    m = int(s // 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def _fmt(v: Any, fmt: str, none: str = "–") -> str:
    return none if not isinstance(v, int | float) or not math.isfinite(v) else format(v, fmt)


def build_table(state: LiveState, sort: str = "distance", max_distance_km: float | None = DEFAULT_MAX_DISTANCE_KM,
                military_only: bool = False, limit: int = DEFAULT_ROWS, alert_arrivals: dict[str, float] | None = None,
                now: float | None = None) -> Any:
    """A rich renderable: the aircraft table above the newest alerts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = time.monotonic() if now is None else now
    arrivals = alert_arrivals or {}
    fresh = {a.get("icao24") for a in state.alerts if now - arrivals.get(str(a.get("event_id")), -1e9) < HIGHLIGHT_S}
    listed = rows(state, sort, max_distance_km, military_only)
    t = Table(title=f"skyfence watch — {len(listed)} aircraft near Mexico (sorted by "
                    f"{'time to entry' if sort == 'entry' else 'distance to boundary'})",
              expand=True, header_style="bold")
    for col, just in (("callsign", "left"), ("icao24", "left"), ("class", "left"), ("type", "left"),
                      ("alt ft", "right"), ("gs kt", "right"), ("zone", "left"), ("airspace", "left"),
                      ("to boundary km", "right"), ("entry in", "right"), ("pattern", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in listed[:limit]:
        mil = r["category"] in ("military", "surveillance")
        style = "bold red" if r["icao24"] in fresh else ("magenta" if mil else "")
        entry = "" if not math.isfinite(r["entry_s"]) else f"{int(r['entry_s'] // 60)}m{int(r['entry_s'] % 60):02d}s"
        dist = r["distance_m"]
        pattern = "" if not r["pattern"] else (
            f"{r['pattern']} {_hm(r['on_station_s'])}" if isinstance(r["on_station_s"], int | float) else r["pattern"])
        if r["dark"]:
            pattern = f"{pattern} DARK".strip()
        t.add_row(r["callsign"] or "", r["icao24"], r["category"] or "?", r["type_code"] or "",
                  _fmt(r["alt_ft"], ",.0f"), _fmt(r["gs_kt"], ".0f"), r["zone"] or "", r["country"] or "",
                  "inside" if dist < 0 else _fmt(dist / 1000, ",.1f"), entry, pattern, style=style)
    alerts = Table(title="newest alerts", expand=True, show_header=False, box=None)
    alerts.add_column("alert")
    for a in list(state.alerts)[:8]:
        sev = str(a.get("severity", "info"))
        if a.get("schema", "alert.v1") == "alert.v1":
            what = f"{a.get('callsign') or a.get('icao24')}  {a.get('description') or ''}"
        else:  # pattern.v1, dark.v1, activity.v1 (and anything newer): the headline says who and where
            what = str(a.get("headline") or a.get("description") or "")
        text = Text(f"{a.get('event_time_iso', '')}  {sev.upper():<6} {a.get('transition', ''):<11} {what}")
        text.stylize(SEVERITY_STYLE.get(sev, ""))
        if now - arrivals.get(str(a.get("event_id")), -1e9) < HIGHLIGHT_S:
            text.stylize("reverse")
        alerts.add_row(text)
    if not state.alerts:
        alerts.add_row(Text("no alerts yet", style="dim"))
    return Group(t, alerts)


class _Tracking(LiveState):
    """LiveState that remembers when each alert arrived, for highlighting."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, float] = {}

    def on_alert(self, doc: dict[str, Any]) -> None:
        self.arrivals[str(doc.get("event_id"))] = time.monotonic()
        super().on_alert(doc)


# Seconds to wait for the Kafka follower to close on exit before leaving it to asyncio.run.
FOLLOWER_STOP_S = 5.0


async def run_watch(settings: Settings, sort: str = "distance", max_distance_km: float | None = DEFAULT_MAX_DISTANCE_KM,
                    military_only: bool = False, duration: float | None = None, once: bool = False,
                    limit: int = DEFAULT_ROWS) -> int:
    """Follow the topics and redraw in place until Ctrl-C (or ``duration`` seconds).

    ``once``: wait until the follower has caught up (nothing new for a second, or ``duration``),
    print the table once and return; for scripts, pipes and tests.
    """
    from rich.console import Console
    from rich.live import Live

    state = _Tracking()
    stop = asyncio.Event()
    follower = asyncio.create_task(follow_topics_quiet(settings, state, stop))
    console = Console()
    started = time.monotonic()

    def table() -> Any:
        return build_table(state, sort, max_distance_km, military_only, limit, state.arrivals)

    try:
        if once:
            last_n, last_change = -1, time.monotonic()
            deadline = started + (duration if duration is not None else 30.0)
            while time.monotonic() < deadline:
                n = len(state.aircraft) + len(state.alerts)
                if n != last_n:
                    last_n, last_change = n, time.monotonic()
                elif n > 0 and time.monotonic() - last_change > 1.0:
                    break
                await asyncio.sleep(0.2)
            console.print(table())
            return 0
        # Ctrl-C (and SIGTERM) end the loop cooperatively: the redraw stops, the table is left on
        # screen, the follower is stopped. Cancelling the loop from the signal instead left the
        # process hanging now and then in CI (Ctrl-C arriving while the Kafka follower reconnected).
        interrupted = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupted.set)
        with Live(table(), console=console, refresh_per_second=REFRESH_PER_S, screen=False) as live:
            while not interrupted.is_set() and (duration is None or time.monotonic() - started < duration):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(interrupted.wait(), 1.0 / REFRESH_PER_S)
                live.update(table())
        return 0
    finally:
        stop.set()
        follower.cancel()
        # Bounded: a follower stuck closing its Kafka consumer must not keep the terminal.
        done, _ = await asyncio.wait({follower}, timeout=FOLLOWER_STOP_S)
        for t in done:  # retrieve its outcome; the follower logs its own errors
            if not t.cancelled():
                t.exception()


async def follow_topics_quiet(settings: Settings, state: LiveState, stop: asyncio.Event) -> None:
    """The web map's follower, with its reconnect warnings kept off the terminal table."""
    import logging

    from streams.web.live import follow_topics

    logging.getLogger("streams.web.live").setLevel(logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    await follow_topics(settings, state, stop)
