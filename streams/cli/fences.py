"""``skyfence fences``: list the zones and fences; `fences check LAT LON` answers for a point."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streams.settings import Settings, SettingsError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=("check",), default=None,
                   help="check: one point from LAT LON, or lat,lon[,alt_ft] lines from stdin as JSON lines")
    p.add_argument("lat", nargs="?", type=float, default=None)
    p.add_argument("lon", nargs="?", type=float, default=None)
    p.add_argument("--alt", type=float, default=None, help="altitude in feet, for fences with altitude bands")
    p.add_argument("--file", default=None, help="GeoJSON of user fences (default: SKYFENCE_FENCES_FILE)")
    p.add_argument("--json", action="store_true", help="JSON output (stdin mode always prints JSON lines)")


def run(args: argparse.Namespace, settings: Settings) -> int:
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


def _fence_line(f: dict[str, Any]) -> str:
    band = ""
    if f.get("lower_ft") is not None or f.get("upper_ft") is not None:
        band = f"  {f.get('lower_ft') or 'SFC'}–{f.get('upper_ft') or 'UNL'} ft"
    extra = f"  {f['description']}" if f.get("description") else ""
    return f"{f.get('name')}  [{f.get('kind')}]{band}{extra}"
