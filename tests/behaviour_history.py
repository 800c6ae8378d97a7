"""Histories of real flights for the behaviour tests: missions against a baseline, gone dark.

Every position here is a real recorded one (tests/data, see PROVENANCE.md); a history only
gives copies of a real track new icao24s and shifts them in time (never in space, never
reshaped), and cuts recorded positions out. The copies are classified as the aircraft the
story is about through a plane-alert-db style CSV, which is how a user tells skyfence about
aircraft its built-in database does not know.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

DATA = Path(__file__).resolve().parent / "data"
BOEING = DATA / "traffic_dreamliner_boeing.json.gz"
DAY = 86_400.0
# 2025-01-01 00:00 UTC: the story's months.
T0 = 1_735_689_600.0
# Baseline: about one mission a month for three months; then 18 in 10 days (two a day, 12 h
# apart, a few hours into each day so every mission stays on its own UTC day pair).
BASELINE_DAYS = (14.3, 45.3, 76.3)
BURST_DAYS = tuple(90.3 + 0.5 * k for k in range(18))
QUIET_DAYS = (14.3, 45.3, 76.3, 106.3, 130.3)

CSV_HEADER = "$ICAO,$Registration,$Operator,$Type,$ICAO Type,#CMPG,$Tag 1,$#Tag 2,$#Tag 3,Category,$#Link\n"


def rows(path: Path = BOEING) -> list[dict[str, Any]]:
    return list(orjson.loads(gzip.decompress(path.read_bytes())))


def near_mexico(records: Sequence[dict[str, Any]], within_m: float = 400_000.0) -> list[dict[str, Any]]:
    """The part of a recording within ``within_m`` of Mexico's sovereign airspace (real geofence)."""
    from streams.geo import Geofence

    fence = Geofence.load()
    lat = np.array([float(r["latitude"]) for r in records])
    lon = np.array([float(r["longitude"]) for r in records])
    nan = np.full(lat.size, np.nan)
    d = np.asarray(fence.score(lat, lon, nan, nan, nan, closest_approach=False).dist_m)
    idx = np.flatnonzero(d <= within_m)
    if not idx.size:
        return []
    return list(records[int(idx[0]) : int(idx[-1]) + 1])


def shifted(records: Sequence[dict[str, Any]], icao24: str, start: float, callsign: str | None = None) -> list[dict]:
    """A copy of a real track under another address, its first position at ``start`` (epoch s)."""
    t0 = float(records[0]["timestamp"]) / 1000.0
    out = []
    for r in records:
        c = dict(r)
        c["icao24"] = icao24
        c["timestamp"] = int(round((float(r["timestamp"]) / 1000.0 - t0 + start) * 1000.0))
        if callsign is not None:
            c["callsign"] = callsign
        out.append(c)
    return out


def p8_csv(icaos: Sequence[str]) -> str:
    """plane-alert-db rows classifying these addresses as US Navy P-8 Poseidons."""
    lines = [CSV_HEADER]
    for i, icao in enumerate(icaos):
        lines.append(f"{icao.upper()},16{i:04d},United States Navy,Boeing P-8 Poseidon,P8,Mil,Maritime Patrol,,,"
                     "United States Navy,\n")
    return "".join(lines)


def background_addresses(partitions: Sequence[int] = (4, 8)) -> list[str]:
    """Civil US addresses (A00000-AFFFFF, not the AE/AF military blocks) that between them land in
    every partition for each of these partition counts: background traffic must move every
    partition's stream time, as the world's traffic does, or a quiet partition holds it back."""
    from streams.topics import partition_for

    need = {(n, p) for n in partitions for p in range(n)}
    out: list[str] = []
    for k in range(4096):
        icao = f"a1{k:04x}"
        hit = {(n, partition_for(icao, n)) for n in partitions} & need
        if hit:
            out.append(icao)
            need -= hit
        if not need:
            return out
    raise AssertionError("no addresses cover every partition")


def with_background(records: list[dict], start: float) -> list[dict]:
    """``records`` plus civil copies of the same real pass from ``start`` (epoch s), one per
    address of :func:`background_addresses`, so every partition's stream time passes the
    history's end."""
    leg = near_mexico(rows())
    out = list(records)
    for j, icao in enumerate(background_addresses()):
        out.extend(shifted(leg, icao, start + 60.0 * j, callsign=f"BGR{j:03d}"))
    out.sort(key=lambda r: (r["timestamp"], r["icao24"]))
    return out


def mission_history(days: Sequence[float] = BASELINE_DAYS + BURST_DAYS) -> tuple[list[dict], list[str], list[float]]:
    """BOE004's real pass near Laredo flown once per entry of ``days`` (days after T0), each by
    its own P-8 address, then civil traffic a day after the last (see :func:`with_background`):
    (rows sorted by time, P-8 icao24s, their start times)."""
    leg = near_mexico(rows())
    out: list[dict] = []
    icaos: list[str] = []
    starts: list[float] = []
    for k, day in enumerate(days):
        icao = f"ae7{k:03x}"
        start = T0 + day * DAY
        out.extend(shifted(leg, icao, start, callsign=f"PELCN{k:02d}"))
        icaos.append(icao)
        starts.append(start)
    return with_background(out, T0 + (max(days) + 1.0) * DAY), icaos, starts


def write(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_bytes(gzip.compress(orjson.dumps(list(records)), mtime=0))
    return path


def position_rows(positions: Sequence[Any]) -> list[dict[str, Any]]:
    """streams.messages.Position objects back as traffic-json rows (what a recording holds)."""
    out = []
    for p in sorted(positions, key=lambda p: (p.event_time, p.icao24)):
        out.append({"timestamp": int(round(p.event_time * 1000.0)), "icao24": p.icao24, "latitude": p.lat,
                    "longitude": p.lon, "altitude": p.alt_baro_ft, "groundspeed": p.ground_speed_kt,
                    "track": p.track_deg, "vertical_rate": p.vertical_rate_fpm, "callsign": p.callsign})
    return out


# The tanker's real racetrack (tests/data/patterns/inflight_refuelling.json.gz: 3b7777 over
# central France, 2020-06-30) between these times, and the point its pattern is centred on.
TANKER = DATA / "patterns" / "inflight_refuelling.json.gz"
TANKER_SPAN = (1_593_549_500.0, 1_593_556_000.0)
TANKER_CENTRE = (46.9, 1.42)
# ~30 nm off Baja California's 12 nm line, west of Ensenada (the story's core case).
OFF_BAJA = (30.8, -117.2)


def thinned(records: Sequence[dict[str, Any]], every_s: float) -> list[dict[str, Any]]:
    """Real positions at least ``every_s`` apart (a recording at 1 Hz as a sparser feed gives it;
    one JSON document stays under the 1 MiB input limit)."""
    out: list[dict[str, Any]] = []
    for r in records:
        if not out or float(r["timestamp"]) - float(out[-1]["timestamp"]) >= every_s * 1000.0:
            out.append(r)
    return out


def moved(records: Sequence[dict[str, Any]], anchor: tuple[float, float], to: tuple[float, float],
          shift_s: float = 0.0) -> list[dict[str, Any]]:
    """A real track moved as a whole: every point keeps its great-circle distance and bearing from
    ``anchor``, now measured from ``to``; reported tracks turn with the bearings (tracks keep their
    shape and timing; only where they are changes)."""
    from streams.core.places import destination, haversine_m, initial_bearing_deg

    lat = np.array([float(r["latitude"]) for r in records])
    lon = np.array([float(r["longitude"]) for r in records])
    d = haversine_m(anchor[0], anchor[1], lat, lon)
    b = initial_bearing_deg(anchor[0], anchor[1], lat, lon)
    out = []
    for r, di, bi in zip(records, d.tolist(), b.tolist(), strict=True):
        c = dict(r)
        c["latitude"], c["longitude"] = destination(to[0], to[1], bi, di)
        c["timestamp"] = int(r["timestamp"]) + int(round(shift_s * 1000.0))
        out.append(c)
    return out


def baja_racetrack(icao24: str = "ae7100", callsign: str = "PELCN99") -> list[dict[str, Any]]:
    """The tanker's real racetrack, flown by a P-8 address ~30 nm off Baja California."""
    lo, hi = TANKER_SPAN
    part = thinned([r for r in rows(TANKER) if lo * 1000 <= float(r["timestamp"]) <= hi * 1000], 5.0)
    out = moved(part, TANKER_CENTRE, OFF_BAJA)
    for r in out:
        r["icao24"], r["callsign"] = icao24, callsign
    return out
