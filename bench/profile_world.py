"""Where the track stage spends its time on a world-like feed (a profiling aid, not a benchmark).

The world phase of ``bench_pipeline.py`` (25,000 aircraft at 2 Hz, interleaved, real flights
time-shifted) is cut into the position-batch records ``skyfence ingest`` publishes and fed,
50 records a batch as the worker's track agent takes them, through the agent's own adapter
(``streams.agents.track.TrackAdapter``: decode, ``core.stream.TrackStream``, encode) with a
state flush every ``--flush-s`` seconds of wall time (the worker's STATE_FLUSH_S is 5 s). No
broker, no Redis: this is the in-process ceiling of one worker.

    .venv/bin/python bench/profile_world.py                 # positions/s
    .venv/bin/python bench/profile_world.py --profile       # and the top functions by own time
    .venv/bin/python bench/profile_world.py --aircraft 25000 --seconds 10 --export-ab

``--export-ab`` times the state export's gather of buffered positions both ways (one search
per aircraft, as before 2026-12-06, and ``ReorderBuffer.of_slots``), alternated, 3 runs each.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import bench_pipeline as bp  # noqa: E402

from streams.agents.track import TrackAdapter  # noqa: E402
from streams.codec import encode_position_batch  # noqa: E402
from streams.kafka_io import MAX_BATCH_POSITIONS, group_by_partition  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.wiring import build_engine  # noqa: E402

# 50 records a batch: the worker's TRACK_BATCH (streams/agents/__init__.py).
BATCH_RECORDS = 50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aircraft", type=int, default=25_000)
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of world traffic")
    ap.add_argument("--flush-s", type=float, default=5.0, help="wall seconds between state flushes")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--export-ab", action="store_true")
    ap.add_argument("--live", type=float, default=0.0, metavar="SLICE_S",
                    help="batches as a live feed brings them: the records of SLICE_S of event time "
                         "per batch (e.g. 0.02), instead of 50 records of a catch-up")
    ap.add_argument("--tolerance", type=float, default=None,
                    help="reorder tolerance in seconds (default: the settings' default; the live goal uses 0)")
    args = ap.parse_args()

    settings = Settings(workdir=str(ROOT / ".cache" / "profile_world"))
    if args.tolerance is not None:
        settings = settings.replace(reorder_tolerance_s=args.tolerance)
    total, chunks = bp.world_chunks(args.aircraft, 2.0, args.seconds, 1.74e9, args.live or 1.0, 0.02)
    records: list[tuple[int, bytes]] = []
    batches: list[list[tuple[int, bytes]]] = []
    for chunk in chunks():
        live: list[tuple[int, bytes]] = []
        for part, group in sorted(group_by_partition(chunk, settings.partitions).items()):
            for i in range(0, len(group), MAX_BATCH_POSITIONS):
                live.append((part, encode_position_batch(group[i : i + MAX_BATCH_POSITIONS])))
        records.extend(live)
        if live:
            batches.append(live)
    if not args.live:
        batches = [records[i : i + BATCH_RECORDS] for i in range(0, len(records), BATCH_RECORDS)]
    engine = build_engine(settings)
    adapter = TrackAdapter(engine, {}, settings.partitions)

    def run() -> tuple[int, float]:
        n = 0
        t0 = last = time.perf_counter()
        for batch in batches:
            n += adapter.handle(batch, 2e9).positions
            if time.perf_counter() - last >= args.flush_s:
                adapter.stream.flush_state()
                last = time.perf_counter()
        return n, time.perf_counter() - t0

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        n, dt = run()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        n, dt = run()
    print(f"{args.aircraft:,} aircraft, {total:,} positions in {len(records):,} records, "
          f"{len(batches):,} batches: "
          f"{n / dt:,.0f} positions/s ({dt:.1f} s{', under cProfile' if args.profile else ''})")

    if args.export_ab:
        pend = engine._pend
        icaos = sorted(engine.aircraft())
        slots = [engine._slot.get(i) for i in icaos]

        def one_search_each() -> object:
            rows = [pend.of_slot(s) if s is not None else [] for s in slots]
            return pend.columns([i for r in rows for i in r]).to_lists()

        def one_gather() -> object:
            flat, _ends = pend.of_slots(np.array([-1 if s is None else s for s in slots], dtype=np.int64))
            return pend.columns(flat.tolist()).to_lists()

        assert one_search_each() == one_gather()
        for _rep in range(3):
            for name, fn in (("one search per aircraft", one_search_each), ("one gather", one_gather)):
                pend._by_slot = None  # as after a batch: the index is rebuilt on first use
                t = time.perf_counter()
                fn()
                print(f"export gather, {name}: {1000 * (time.perf_counter() - t):.1f} ms "
                      f"({len(icaos):,} aircraft, {engine.pending_count:,} buffered positions)")


if __name__ == "__main__":
    main()
