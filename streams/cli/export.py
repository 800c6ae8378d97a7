"""``skyfence export``: GeoJSON layers and a KML (Google Earth) of the missions in recorded files."""

from __future__ import annotations

import argparse
from typing import Any

from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="recorded files (formats as for analyze)")
    p.add_argument("--out", required=True, help="folder to write tracks/alerts/... .geojson and evidence.kml into")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format (default: guessed per file)")
    p.add_argument("--from", dest="t_from", default=None, help="window start (ISO 8601 or epoch s)")
    p.add_argument("--to", dest="t_to", default=None, help="window end")
    p.add_argument("--icao", default=None, help="only these aircraft (comma-separated icao24)")
    p.add_argument("--all-aircraft", action="store_true", help="every aircraft, not only military/surveillance")
    p.add_argument("--all-tracks", action="store_true", help="also tracks that were no mission (never near)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """GeoJSON layers and a KML of the missions (or aircraft) in recorded files."""
    from pathlib import Path

    from streams.cli.format import parse_time
    from streams.geo.describe import zones_geojson
    from streams.report import run_report
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
