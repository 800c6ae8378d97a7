"""Documents for formats with no real recording on the registries, built from real points.

No package we can reach ships a real aircraft.json, readsb JSON-position stream or
OpenSky states reply (see tests/data/PROVENANCE.md). These builders lay out the REAL
points of the readsb trace (tests/data/readsb_trace_full_ac671b.json.gz) in those
formats, following readsb's README-json and OpenSky's REST documentation, so that the
parsers are exercised on real positions, times and identities.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"

FT_PER_M = 1.0 / 0.3048
KT_PER_MPS = 3600.0 / 1852.0
FPM_PER_MPS = 60.0 / 0.3048


def load_trace() -> dict[str, Any]:
    with gzip.open(DATA / "readsb_trace_full_ac671b.json.gz") as f:
        return json.load(f)


def trace_states(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace as a list of per-point aircraft states (callsign/squawk carried per leg)."""
    out = []
    callsign = squawk = None
    for p in trace["trace"]:
        flags = p[6] or 0
        if flags & 2:
            callsign = squawk = None
        details = p[8] or {}
        callsign = details.get("flight", callsign)
        squawk = details.get("squawk", squawk)
        out.append(
            {
                "t": trace["timestamp"] + p[0],
                "lat": p[1],
                "lon": p[2],
                "alt": p[3],
                "gs": p[4],
                "track": p[5],
                "vrate": p[7],
                "type": p[9] if len(p) > 9 else None,
                "alt_geom": p[10] if len(p) > 10 else None,
                "flight": callsign,
                "squawk": squawk,
            }
        )
    return out


def _aircraft_entry(hexid: str, s: dict[str, Any], now: float) -> dict[str, Any]:
    e: dict[str, Any] = {"hex": hexid, "type": s["type"] or "adsb_icao"}
    if s["flight"]:
        e["flight"] = s["flight"]
    if s["alt"] is not None:
        e["alt_baro"] = s["alt"]
    if s["alt_geom"] is not None:
        e["alt_geom"] = s["alt_geom"]
    if s["gs"] is not None:
        e["gs"] = s["gs"]
    if s["track"] is not None:
        e["track"] = s["track"]
    if s["vrate"] is not None:
        e["baro_rate"] = s["vrate"]
    if s["squawk"]:
        e["squawk"] = s["squawk"]
    e["lat"] = s["lat"]
    e["lon"] = s["lon"]
    e["seen_pos"] = round(now - s["t"], 1)
    e["seen"] = round(now - s["t"], 1)
    e["messages"] = 1000
    e["rssi"] = -20.0
    return e


def aircraft_json_polls(trace: dict[str, Any], every_s: float, count: int, start_index: int = 0) -> list[bytes]:
    """aircraft.json snapshots as a 1-aircraft receiver would serve them when polled.

    Each poll shows the latest trace point at or before the poll time, with ``seen_pos``
    its age, so positions repeat across polls until a new point arrives.
    """
    states = trace_states(trace)
    hexid = trace["icao"]
    t0 = states[start_index]["t"]
    docs = []
    k = start_index
    for i in range(count):
        now = t0 + i * every_s
        while k + 1 < len(states) and states[k + 1]["t"] <= now:
            k += 1
        doc = {"now": now, "messages": 123456 + i, "aircraft": [_aircraft_entry(hexid, states[k], now)]}
        docs.append(json.dumps(doc).encode())
    return docs


def readsb_jsonl(trace: dict[str, Any], limit: int | None = None) -> bytes:
    """readsb --net-json-port output: one aircraft object with ``now`` per position."""
    lines = []
    for s in trace_states(trace)[:limit]:
        e = _aircraft_entry(trace["icao"], s, s["t"])
        lines.append(json.dumps({"now": s["t"], **e}))
    return ("\n".join(lines) + "\n").encode()


def opensky_states(trace: dict[str, Any], index: int, with_positionless: bool = True) -> bytes:
    """An OpenSky /states/all reply holding the trace's aircraft at point ``index``."""
    s = trace_states(trace)[index]
    ground = s["alt"] == "ground"
    sv = [
        trace["icao"],
        (s["flight"] or "").ljust(8),
        "United States",
        int(s["t"]),
        int(s["t"]) + 1,
        s["lon"],
        s["lat"],
        None if ground or s["alt"] is None else s["alt"] / FT_PER_M,
        ground,
        None if s["gs"] is None else s["gs"] / KT_PER_MPS,
        s["track"],
        None if s["vrate"] is None else s["vrate"] / FPM_PER_MPS,
        None,
        None if s["alt_geom"] is None else s["alt_geom"] / FT_PER_M,
        s["squawk"],
        False,
        0,
    ]
    states = [sv]
    if with_positionless:
        # A second real address (the Boeing test flight) as OpenSky lists aircraft it
        # hears without a position: coordinates null.
        states.append(
            [
                "aaad6b",
                "BOE004  ",
                "United States",
                None,
                int(s["t"]),
                None,
                None,
                None,
                False,
                None,
                None,
                None,
                None,
                None,
                None,
                False,
                0,
            ]
        )
    return json.dumps({"time": int(s["t"]) + 1, "states": states}).encode()
