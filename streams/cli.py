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

    from streams.agents import attach_agents, trim_heap
    from streams.app import create_app
    from streams.logs import logging_config
    from streams.metrics import create_metrics

    if args.web_port is not None:
        settings = settings.replace(web_port=args.web_port)
    from streams.wiring import build_engine

    _ensure_topics_or_explain(settings)
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


def _ensure_topics_or_explain(settings: Settings) -> None:
    import asyncio

    from streams.kafka_io import ensure_topics

    try:
        asyncio.run(ensure_topics(settings))
    except SettingsError:
        raise  # already one clear line (refused credentials or TLS)
    except Exception as exc:
        raise SettingsError(
            f"cannot reach the Kafka broker at SKYFENCE_BROKER={settings.broker} ({type(exc).__name__}: {exc}); "
            "start it with `skyfence stack up` or point SKYFENCE_BROKER at a running broker"
        ) from None


# --- alerts --------------------------------------------------------------------------------
def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import orjson

    from streams.sinks.subscriber import AlertSubscriber

    async def go() -> int:
        n = 0
        async with AlertSubscriber(settings, group=args.group, consumer=args.consumer) as sub:
            async for _eid, alert in sub.alerts(follow=args.follow):
                if args.json:
                    sys.stdout.write(orjson.dumps(alert).decode() + "\n")
                else:
                    sys.stdout.write(format_alert(alert) + "\n")
                sys.stdout.flush()
                n += 1
                if args.limit and n >= args.limit:
                    break
        return 0

    return asyncio.run(go())


def format_alert(a: dict[str, Any]) -> str:
    """One human line per alert, for terminals and logs."""
    if a.get("schema") not in (None, "alert.v1"):  # pattern, gone-dark and activity alerts say it in words
        when = a.get("event_time_iso") or a.get("event_time")
        return (f"{when}  {str(a.get('severity', '?')).upper():<6} {a.get('transition', '?'):<15} "
                f"{a.get('headline', '')}  id={a.get('alert_id')}")
    dist = a.get("distance_to_boundary_m")
    dist_txt = f"{dist / 1000:+.1f} km" if isinstance(dist, int | float) else "?"
    who = a.get("callsign") or a.get("icao24")
    cls = (a.get("classification") or {}).get("category", "?")
    when = a.get("event_time_iso") or a.get("event_time")
    return (
        f"{when}  {str(a.get('severity', '?')).upper():<6} {a.get('transition', '?'):<11} {who!s:<9} "
        f"[{cls}] zone={a.get('zone')} dist={dist_txt}  {a.get('description', '')}  id={a.get('alert_id')}"
    )


# --- ingest / replay / record ----------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.runners import run_ingest

    return asyncio.run(run_ingest(settings, args, replay=False))


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.runners import run_ingest

    return asyncio.run(run_ingest(settings, args, replay=True))


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.runners import run_record

    return asyncio.run(run_record(settings, args))


# --- analyze -------------------------------------------------------------------------------
def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    from pathlib import Path

    import orjson

    from streams.analyze import analyze_file
    from streams.runners import sniff_format
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


# --- watch / report / rewind -------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.watch import run_watch

    return asyncio.run(run_watch(settings, sort=args.sort, max_distance_km=args.max_km or None,
                                 military_only=args.military, duration=args.duration, once=args.once,
                                 limit=args.rows))


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from streams.report import format_text, run_report
    from streams.runners import parse_time

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


def cmd_rewind(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from streams.rewind import rewind_group
    from streams.runners import iso, parse_time

    t = parse_time(args.t_from)
    assert t is not None
    group = args.app_id or settings.app_id
    offsets = asyncio.run(rewind_group(settings, group, t))
    print(f"consumer group {group}: positions offsets set to the first record at or after {iso(t)}: "
          + ", ".join(f"p{p}={o}" for p, o in sorted(offsets.items())))
    print(f"start the worker with SKYFENCE_APP_ID={group} to re-run from then")
    return 0


# --- demo -------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.demo import run_demo

    return run_demo(settings, speed=args.speed, use_stack=not args.no_stack, exit_after=args.exit)


# --- fences -------------------------------------------------------------------------------
def cmd_fences(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from streams.geo import Geofence
    from streams.geo.describe import check_lines, describe_points, format_point, list_fences
    from streams.geo.zonefiles import FenceFileError

    try:
        fence = Geofence.load(rings_nm=settings.rings, user_fences=args.file or settings.fences_file or None)
    except FenceFileError as exc:
        raise SettingsError(f"fence file: {exc}") from None
    if args.action is None:
        for f in list_fences(fence):
            print(orjson.dumps(f).decode() if args.json else _fence_line(f))
        return 0
    if args.lat is not None:
        if args.lon is None:
            raise SettingsError("fences check: give both LAT and LON (or neither, to read lines from stdin)")
        [d] = describe_points(fence, [args.lat], [args.lon], None if args.alt is None else [args.alt])
        print(orjson.dumps(d).decode() if args.json else format_point(d))
        return 0
    bad = 0
    interactive = sys.stdin.isatty()
    for item in check_lines(fence, sys.stdin, batch=1 if interactive else 256):
        if isinstance(item, dict):
            sys.stdout.write(orjson.dumps(item).decode() + "\n")
        else:
            bad += 1
            print(str(item), file=sys.stderr)
    sys.stdout.flush()
    return 1 if bad else 0


# --- export -------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """GeoJSON layers and a KML of the missions (or aircraft) in recorded files."""
    from pathlib import Path

    from streams.geo.describe import zones_geojson
    from streams.report import run_report
    from streams.runners import parse_time
    from streams.sinks.export import build_layers, write_export

    if args.all_aircraft:
        settings = settings.replace(alert_policy="all")
    got: dict[str, Any] = {}
    report = run_report(settings, args.files, args.fmt, parse_time(args.t_from), parse_time(args.t_to), None, True,
                        args.all_aircraft, collected=got)
    if args.icao:
        want = {x.strip().lower() for x in args.icao.split(",") if x.strip()}
        report["tracks"] = [t for t in report["tracks"] if t["icao24"] in want]
    layers = build_layers(report, got.get("alerts", []), got.get("points", []), zones_geojson(got["fence"]),
                          missions_only=not args.all_tracks)
    title = f"skyfence evidence: {report['summary']['headline']}"
    for p in write_export(Path(args.out), layers, title):
        n = len(layers[p.stem]["features"]) if p.stem in layers else sum(len(v["features"]) for v in layers.values())
        print(f"{p}  ({n} features)")
    return 0


# --- rules --------------------------------------------------------------------------------
def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    """Check a rules file; with a recording, say which rules fire on which of its alerts."""
    import asyncio
    from pathlib import Path

    import orjson

    from streams.analyze import analyze_file
    from streams.core.rules import RulesError, judge, load_rules
    from streams.runners import sniff_format
    from streams.wiring import build_engine

    try:
        rules = load_rules(args.rules)
    except RulesError as e:
        raise SettingsError(str(e)) from None
    user = [r for r in rules.rules if not r.builtin]
    if not args.recording:
        print(f"{args.rules}: {len(user)} rules OK (after the built-in: "
              f"{', '.join(r.name for r in rules.rules if r.builtin)})")
        for r in rules.rules:
            what = ", ".join(f"{k}={list(v)}" for k, v in r.match.items()) or "everything"
            act = [f"severity {r.severity}"] if r.severity else []
            act += [f"channel {r.channel}"] if r.channel else []
            act += ["exclude"] if r.exclude else []
            print(f"  {r.name}{' (built-in)' if r.builtin else ''}: {what} -> {', '.join(act)}")
        return 0
    path = Path(args.recording)
    if not path.is_file():
        raise SettingsError(f"rules check: no such file {args.recording}")
    fmt = args.fmt or sniff_format(path)
    # Every alert of the recording under policy "all" and no rules: then each is judged, so the
    # output also shows what the rules would let out that the policy holds back, and what they drop.
    engine = build_engine(settings.replace(rules_file=""), alert_policy="all")
    result = asyncio.run(analyze_file(str(path), fmt, engine, close_all=True,
                                      max_message_bytes=settings.max_message_bytes, partitions=settings.partitions))
    from streams.core.alerts import admitted
    from streams.core.classify import Classification

    fired: dict[str, int] = {r.name: 0 for r in rules.rules}
    for a in result.alerts:
        if a.get("schema") not in ("alert.v1", "pattern.v1"):
            continue
        v = judge(rules, a)
        for n in v.rules:
            fired[n] += 1
        c = a.get("classification") or {}
        by_policy = admitted(settings.alert_policy, Classification(str(a["icao24"]), str(c.get("category", "unknown")),
                                                                    0.0, ()), bool(a.get("watchlisted")))
        if a.get("schema") == "alert.v1":
            out = "excluded" if v.exclude else ("sent" if by_policy or v.admits else "held back by the policy")
        else:  # pattern alerts: the rules change severity, channels, exclusion only
            out = "excluded" if v.exclude else ("sent" if by_policy else "held back by the policy")
        row = {"event_id": a["event_id"], "icao24": a["icao24"], "callsign": a.get("callsign"),
               "transition": a["transition"], "event_time_iso": a.get("event_time_iso"), "rules": list(v.rules),
               "severity": v.severity or a.get("severity"), "channels": list(v.channels), "outcome": out}
        if args.json:
            print(orjson.dumps(row).decode())
        elif v.rules or not args.matched_only:
            names = ", ".join(v.rules) or "no rule"
            print(f"{row['event_time_iso']}  {a['icao24']} {a.get('callsign') or '-':8s} {a['transition']:16s} "
                  f"{names} -> {out}, severity {row['severity']}"
                  + (f", channels {', '.join(v.channels)}" if v.channels else ""))
    if not args.json:
        print(f"\n{path.name}: {len(result.alerts)} alerts (policy all); rules fired: "
              + ", ".join(f"{n} x{k}" for n, k in fired.items()))
    return 0


def _fence_line(f: dict[str, Any]) -> str:
    band = ""
    if f.get("lower_ft") is not None or f.get("upper_ft") is not None:
        band = f"  {f.get('lower_ft') or 'SFC'}–{f.get('upper_ft') or 'UNL'} ft"
    extra = f"  {f['description']}" if f.get("description") else ""
    return f"{f.get('name')}  [{f.get('kind')}]{band}{extra}"


# --- settings ------------------------------------------------------------------------------
def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    if args.markdown:
        from streams.settings import settings_doc_table

        print(settings_doc_table())
        return 0
    width = max(len(k) for k, _, _ in settings.public_items())
    for var, value, doc in settings.public_items():
        print(f"{var:<{width}}  {value:<28}  {doc}")
    # Where the local stack and the worker keep their files, resolved (a per-user folder when
    # installed from a wheel, the checkout when run from one).
    print(f"\nworkdir: {settings.workdir_path}  (stack: {settings.resolve(settings.stack_dir)}, "
          f"Kafka jars: {settings.resolve('.cache/kafka')}, worker data: {settings.resolve(settings.data_dir)})")
    return 0


def _policy_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--alert-policy",
        dest="alert_policy",
        choices=("military", "all"),
        default=None,
        help="which aircraft raise alerts: military/surveillance + watchlist (default), or all",
    )


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
    _policy_option(p)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("ingest", help="parse a feed (file, -, tcp://, http(s)://) into the positions topic")
    p.add_argument("source", help="file (plain or gzip), - for stdin, tcp://host:port, or an http(s) URL")
    p.add_argument("--format", "-f", dest="fmt", required=True, help="input format (see --help of `formats`)")
    p.add_argument("--receiver", default=None, help="receiver id (default: derived from the source)")
    p.add_argument("--stdout", action="store_true", help="print positions as JSON lines; publish nothing")
    p.add_argument("--raw", action="store_true", help="also archive the raw input to the raw topic")
    p.add_argument("--interval", type=float, default=5.0, help="HTTP polling interval in seconds")
    p.add_argument("--bbox", default=None, help="OpenSky bounding box lamin,lomin,lamax,lomax")
    p.add_argument("--reference", default=None, help="receiver position LAT,LON for Mode S local decoding")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("replay", help="feed a recorded file into Kafka, keeping its event-time spacing")
    p.add_argument("file")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed from content)")
    p.add_argument("--speed", default="1", help="1, 10, ... times real time, or max")
    p.add_argument("--from", dest="t_from", default=None, help="skip positions before this time (ISO or epoch)")
    p.add_argument("--to", dest="t_to", default=None, help="stop after this time (ISO or epoch)")
    p.add_argument("--loop", action="store_true", help="start again at the end (until Ctrl-C)")
    p.add_argument("--receiver", default=None, help="receiver id (default: the file name)")
    p.add_argument("--stdout", action="store_true", help="print positions as JSON lines; publish nothing")
    p.add_argument("--raw", action="store_true", help="also archive the raw input to the raw topic")
    p.add_argument("--reference", default=None, help="receiver position LAT,LON for Mode S local decoding")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")
    p.set_defaults(handler=cmd_replay, interval=None, bbox=None)

    p = sub.add_parser("record", help="write a topic (positions or raw) to a gzip file of Kafka records")
    p.add_argument("file")
    p.add_argument("--topic", default="positions", choices=("positions", "raw"), help="which topic to record")
    p.add_argument("--from", dest="t_from", default=None, help="start at this time (offsets for times)")
    p.add_argument("--to", dest="t_to", default=None, help="stop at records after this time")
    p.add_argument("--follow", action="store_true", help="keep recording new records until Ctrl-C")
    p.add_argument("--idle", type=float, default=5.0, help="without --follow: stop after this many idle seconds")
    p.set_defaults(handler=cmd_record)

    p = sub.add_parser("analyze", help="run tracking, geofence and alerts on a file in one process (no broker)")
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
    _policy_option(p)
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("alerts", help="read alerts from the Redis Stream as a consumer-group member")
    p.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
    p.add_argument("--group", default="skyfence-cli", help="consumer group (each group sees every alert)")
    p.add_argument("--consumer", default=None, help="member name in the group (default: host name)")
    p.add_argument("--json", action="store_true", help="one alert per line, fields as in schemas/alert.v1.json")
    p.add_argument("--limit", type=int, default=0, help="stop after this many alerts")
    p.set_defaults(handler=cmd_alerts)

    p = sub.add_parser("demo", help="start the local stack and a worker, replay real flights, show alerts live")
    p.add_argument("--speed", default="600", help="replay speed factor, or max (default 600: ~2 min)")
    p.add_argument("--exit", action="store_true", help="stop once the recordings are processed (else Ctrl-C)")
    p.add_argument("--no-stack", action="store_true", help="use SKYFENCE_BROKER/REDIS_URL instead of a local stack")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("watch", help="live terminal table of aircraft near Mexico and the newest alerts")
    p.add_argument("--sort", choices=("distance", "entry"), default="distance",
                   help="distance to the boundary, or predicted time to entry")
    p.add_argument("--max-km", dest="max_km", type=float, default=500.0,
                   help="list aircraft within this distance of the boundary (0: all)")
    p.add_argument("--military", action="store_true", help="only military/surveillance aircraft")
    p.add_argument("--rows", type=int, default=30, help="rows in the table")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--once", action="store_true", help="print the table once when caught up, then exit")
    p.set_defaults(handler=cmd_watch)

    p = sub.add_parser("report", help="mission report: per military track closest approach, entry, time in zones")
    p.add_argument("files", nargs="*", help="recorded files (any ingest format); none: the live tracks topic")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed)")
    p.add_argument("--from", dest="t_from", default=None, help="window start (ISO or epoch)")
    p.add_argument("--to", dest="t_to", default=None, help="window end (ISO or epoch)")
    p.add_argument("--png", default=None, help="write a map picture of the tracks over the zones")
    p.add_argument("--zoom", action="store_true", help="frame the missions and their patterns, not all of Mexico")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--all-aircraft", dest="all_aircraft", action="store_true",
                   help="report every aircraft, not only military/surveillance")
    _policy_option(p)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("rewind", help="set a consumer group's positions offsets to a time (re-run from Kafka)")
    p.add_argument("--from", dest="t_from", required=True, help="re-run from this time (ISO or epoch)")
    p.add_argument("--app-id", dest="app_id", default=None,
                   help="consumer group = the worker's SKYFENCE_APP_ID (use a fresh one; default: current)")
    p.set_defaults(handler=cmd_rewind)

    p = sub.add_parser("fences", help="list the zones and fences; `fences check LAT LON` answers for a point")
    p.add_argument("action", nargs="?", choices=("check",), default=None,
                   help="check: one point from LAT LON, or lat,lon[,alt_ft] lines from stdin as JSON lines")
    p.add_argument("lat", nargs="?", type=float, default=None)
    p.add_argument("lon", nargs="?", type=float, default=None)
    p.add_argument("--alt", type=float, default=None, help="altitude in feet, for fences with altitude bands")
    p.add_argument("--file", default=None, help="GeoJSON of user fences (default: SKYFENCE_FENCES_FILE)")
    p.add_argument("--json", action="store_true", help="JSON output (stdin mode always prints JSON lines)")
    p.set_defaults(handler=cmd_fences)

    p = sub.add_parser("export", help="GeoJSON layers and a KML (Google Earth) of the missions in recorded files")
    p.add_argument("files", nargs="+", help="recorded files (formats as for analyze)")
    p.add_argument("--out", required=True, help="folder to write tracks/alerts/... .geojson and evidence.kml into")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed per file)")
    p.add_argument("--from", dest="t_from", default=None, help="window start (ISO 8601 or epoch s)")
    p.add_argument("--to", dest="t_to", default=None, help="window end")
    p.add_argument("--icao", default=None, help="only these aircraft (comma-separated icao24)")
    p.add_argument("--all-aircraft", action="store_true", help="every aircraft, not only military/surveillance")
    p.add_argument("--all-tracks", action="store_true", help="also tracks that were no mission (never near)")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("rules", help="check an alert rules file; with a recording, which rules fire on its alerts")
    p.add_argument("action", choices=("check",))
    p.add_argument("rules", help="TOML rules file (see streams/core/rules.py)")
    p.add_argument("recording", nargs="?", default=None, help="a recorded file to explain the rules on")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format of the recording (default: guessed)")
    p.add_argument("--matched-only", action="store_true", help="list only the alerts some rule matched")
    p.add_argument("--json", action="store_true", help="one JSON line per alert")
    p.set_defaults(handler=cmd_rules)

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
