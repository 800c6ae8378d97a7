"""Benchmark of the track / classification / alert engine (``streams.core.engine``).

Real recorded flights (the DAL1812 readsb trace and the BOE004 Boeing test flight from
``tests/data``) are cut into windows, given synthetic icao24s and shifted in time so that
thousands of aircraft are in the air at once, then fed to ``Engine.process`` in batches with
``Engine.advance`` after each, as the track agent does. Reported:

- positions/s through the whole engine (gate, geofence scoring, tracks, alerts, documents),
  and excluding the time spent inside ``Geofence.score`` (the engine's own share);
- the same speeds as ratios against reference runs in the same process (the machine is shared
  and noisy): one ``Geofence.score`` call over all positions, and a bare Python loop that only
  reads each position's coordinates (the per-record floor of any Python pipeline);
- memory per tracked aircraft (tracemalloc, after flushing), extrapolated to 100,000.

Usage: ``.venv/bin/python bench/bench_engine.py [--quick]``. Prints a table, then one JSON
object on the last line.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import math
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.columns import PositionColumns  # noqa: E402
from streams.core.classify import Classifier  # noqa: E402
from streams.core.config import EngineConfig  # noqa: E402
from streams.core.engine import Engine  # noqa: E402
from streams.core.places import Places  # noqa: E402
from streams.messages import Position  # noqa: E402
from streams.parsers import parse_bytes  # noqa: E402

DATA = ROOT / "tests" / "data"
T0 = 1_750_000_000.0


def load_flights() -> list[list[Position]]:
    flights = []
    files = (("trace", "readsb_trace_full_ac671b.json.gz"), ("traffic-json", "traffic_dreamliner_boeing.json.gz"))
    for fmt, name in files:
        flights.append(parse_bytes(fmt, gzip.decompress((DATA / name).read_bytes())).positions)
    return flights


def fleet(flights: list[list[Position]], n_aircraft: int, window: int, spread_s: float, seed: int) -> list[Position]:
    """n_aircraft windows of real flights, each with its own icao24 and time offset, time-ordered."""
    rng = np.random.default_rng(seed)
    out: list[Position] = []
    for i in range(n_aircraft):
        src = flights[i % len(flights)]
        start = int(rng.integers(0, len(src) - window))
        shift = T0 + float(rng.uniform(0, spread_s)) - src[start].event_time
        icao = f"{0x100000 + i:06x}"
        out.extend(replace(p, icao24=icao, event_time=p.event_time + shift) for p in src[start : start + window])
    out.sort(key=lambda p: p.event_time)
    return out


class TimedGeofence:
    """Delegates to the real geofence and accumulates the time spent in ``score``."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.points = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def score(self, *args: object, **kwargs: object) -> object:
        t = time.perf_counter()
        s = self._inner.score(*args, **kwargs)  # type: ignore[attr-defined]
        self.seconds += time.perf_counter() - t
        self.points += len(args[0])  # type: ignore[arg-type]
        return s


def throughput(positions: list[Position], geofence: object, clf: Classifier, places: Places, batch: int,
               patterns: bool = True) -> dict:
    timed = TimedGeofence(geofence)
    engine = Engine(EngineConfig(alert_policy="all", patterns=patterns), timed, clf, places)  # type: ignore[arg-type]
    alerts = tracks = rejected = 0
    wm = -math.inf
    # Batches arrive as columns, the way the worker decodes position-batch.v2 records.
    chunks = [PositionColumns.from_positions(positions[i : i + batch]) for i in range(0, len(positions), batch)]
    gc.collect()
    t = time.perf_counter()
    for chunk in chunks:
        out = engine.process(chunk)
        wm = max(wm, float(chunk.event_time[-1]))
        out.extend(engine.advance(wm))
        alerts += len(out.alerts)
        tracks += len(out.track_updates)
        rejected += len(out.rejected)
    out = engine.flush()
    alerts += len(out.alerts)
    tracks += len(out.track_updates)
    total = time.perf_counter() - t
    return {
        "seconds": total,
        "score_seconds": timed.seconds,
        "scored": timed.points,
        "alerts": alerts,
        "track_updates": tracks,
        "rejected": rejected,
        "aircraft": engine.aircraft_count,
        "pattern_events": sum(v for k, v in engine.totals.items() if k.startswith("alerts.pattern_")),
    }


def detector_overhead(positions: list[Position], geofence: object, clf: Classifier, places: Places, batch: int,
                      repeats: int) -> dict:
    """The engine with and without the pattern detector on the same positions, runs alternated
    (the machine's load drifts; alternating gives both the same share of it), medians compared.
    Policy "all": every aircraft is sampled, the detector's worst case (under "military" only
    aircraft of interest are)."""
    on: list[float] = []
    off: list[float] = []
    events = 0
    for _ in range(repeats):
        off.append(throughput(positions, geofence, clf, places, batch, patterns=False)["seconds"])
        r = throughput(positions, geofence, clf, places, batch, patterns=True)
        on.append(r["seconds"])
        events = r["pattern_events"]
    med_on, med_off = float(np.median(on)), float(np.median(off))
    return {"with_s": on, "without_s": off, "ratio": med_on / med_off, "pattern_events": events}


def reference_runs(positions: list[Position], geofence: object) -> dict:
    t = time.perf_counter()
    acc = 0.0
    for p in positions:
        acc += p.lat + p.lon
    loop = time.perf_counter() - t
    lat = np.array([p.lat for p in positions])
    lon = np.array([p.lon for p in positions])
    alt = np.array([math.nan if p.alt_baro_ft is None else p.alt_baro_ft for p in positions])
    gs = np.array([math.nan if p.ground_speed_kt is None else p.ground_speed_kt for p in positions])
    trk = np.array([math.nan if p.track_deg is None else p.track_deg for p in positions])
    t = time.perf_counter()
    geofence.score(lat, lon, alt, gs, trk, closest_approach=False)  # type: ignore[attr-defined]  # as the engine
    score = time.perf_counter() - t
    return {"attr_loop_seconds": loop, "score_only_seconds": score, "checksum": acc}


def memory_per_aircraft(
    flights: list[list[Position]], geofence: object, clf: Classifier, places: Places, n: int
) -> dict:
    # Three real positions per aircraft, 10 s apart: enough to hold a segment, zone times and
    # alert state, like any aircraft in view.
    base = flights[0][100:103]
    positions = [replace(p, icao24=f"{0x200000 + i:06x}") for i in range(n) for p in base]
    engine = Engine(EngineConfig(alert_policy="all"), geofence, clf, places)  # type: ignore[arg-type]
    engine.process(positions[:3])  # warm caches (classifier, places) outside the measurement
    engine.flush()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(0, len(positions), 30_000):
        engine.process(positions[i : i + 30_000])
    engine.flush()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert engine.aircraft_count == n + 1 or engine.aircraft_count == n
    per = (after - before) / n
    return {"aircraft": n, "bytes": after - before, "bytes_per_aircraft": per, "mb_for_100k": per * 100_000 / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for CI (well under a minute)")
    args = ap.parse_args()
    if args.quick:
        n_aircraft, window, batch, mem_n = 1_000, 100, 2_000, 10_000
    else:
        n_aircraft, window, batch, mem_n = 4_000, 150, 2_000, 100_000

    from streams.geo import Geofence

    geofence = Geofence.load()
    geofence.warm()
    clf = Classifier.load()
    places = Places.load()
    flights = load_flights()
    # Warm-up: compile / load the numba kernels outside any timing.
    throughput(fleet(flights, 20, 50, 600.0, seed=1), geofence, clf, places, batch)

    positions = fleet(flights, n_aircraft, window, spread_s=3600.0, seed=7)
    n = len(positions)
    ref = reference_runs(positions, geofence)
    res = throughput(positions, geofence, clf, places, batch)
    own = res["seconds"] - res["score_seconds"]
    mem = memory_per_aircraft(flights, geofence, clf, places, mem_n)
    det = detector_overhead(positions, geofence, clf, places, batch, repeats=3 if args.quick else 5)

    figures = {
        "bench": "engine",
        "quick": args.quick,
        "positions": n,
        "aircraft": n_aircraft,
        "batch": batch,
        "engine_positions_per_s": n / res["seconds"],
        "engine_excl_geofence_positions_per_s": n / own,
        "geofence_share_of_engine_time": res["score_seconds"] / res["seconds"],
        "ratio_engine_to_score_only": res["seconds"] / ref["score_only_seconds"],
        "ratio_engine_excl_geofence_to_attr_loop": own / ref["attr_loop_seconds"],
        "alerts": res["alerts"],
        "track_updates": res["track_updates"],
        "track_updates_per_position": res["track_updates"] / n,
        "rejected": res["rejected"],
        "memory_aircraft_measured": mem["aircraft"],
        "bytes_per_aircraft": mem["bytes_per_aircraft"],
        "mb_for_100k_aircraft": mem["mb_for_100k"],
        "pattern_detector_time_ratio": det["ratio"],
        "pattern_detector_runs_with_s": det["with_s"],
        "pattern_detector_runs_without_s": det["without_s"],
        "pattern_events": det["pattern_events"],
    }
    rows = [
        ("positions (real windows, synthetic icao24)", f"{n:,} from {n_aircraft:,} aircraft, batches of {batch:,}"),
        ("engine, whole (gate+geofence+tracks+alerts)", f"{figures['engine_positions_per_s']:,.0f} positions/s"),
        ("engine, excluding Geofence.score", f"{figures['engine_excl_geofence_positions_per_s']:,.0f} positions/s"),
        ("geofence share of engine time", f"{figures['geofence_share_of_engine_time']:.0%}"),
        ("engine time / one Geofence.score over all", f"{figures['ratio_engine_to_score_only']:.2f}x"),
        ("engine-own time / bare attribute loop", f"{figures['ratio_engine_excl_geofence_to_attr_loop']:.2f}x"),
        ("alerts / track updates / rejected", f"{res['alerts']:,} / {res['track_updates']:,} / {res['rejected']:,}"),
        # The recordings are thinned (a fix every ~10-60 s), so nearly every position is due a
        # track update; a live 1 Hz feed with the 5 s throttle produces about one per 5 positions.
        ("track updates per position", f"{res['track_updates'] / n:.2f}"),
        ("memory per tracked aircraft (tracemalloc)", f"{mem['bytes_per_aircraft']:,.0f} B, measured on {mem_n:,}"),
        ("-> 100,000 aircraft in state", f"{mem['mb_for_100k']:,.1f} MB (goal < 500 MB)"),
        ("engine time with / without pattern detector", f"{det['ratio']:.3f}x (goal <= 1.15x), median of "
         f"{len(det['with_s'])} alternated runs each; {det['pattern_events']} pattern events"),
        ("  runs with (s)", " ".join(f"{x:.2f}" for x in det["with_s"])),
        ("  runs without (s)", " ".join(f"{x:.2f}" for x in det["without_s"])),
    ]
    width = max(len(r[0]) for r in rows)
    print("bench_engine" + (" --quick" if args.quick else ""))
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
