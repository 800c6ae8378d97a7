"""Parser throughput on the real recordings, with same-process reference runs.

Run: ``.venv/bin/python bench/bench_parsers.py [--quick]``

For every input format it measures messages per second of our parser (feed in 64 KiB
chunks, then flush) on the real sample from tests/data, repeated to a stable size, and
the time of a *reference* on the same input: the least possible work for text and JSON
(splitting lines and fields, ``orjson.loads``), and rs1090 alone, vectorised, on the
same frames for AVR and Beast. The ratio ours/reference is the figure to compare run to
run: the machine is shared, so absolute rates wander.

For raw Mode S frames (the 57,793 frames of the rs1090 recording) it puts side by side,
on the same frames in the same run:

* our layer (CRC/length checks, rs1090 field decoding, our CPR state, validation,
  Position objects), from already-framed bytes and from AVR text;
* rs1090 called directly, vectorised, with its own in-call CPR pairing
  (``decode_1090t_vec``; loaded with our plain-data unpickler);
* pyModeS 3 ``PipeDecoder`` (test-only peer, GPL-3.0), one call per frame.

For the positions topic's own records it times the worker's decoding (``decode_position_batch``)
of the same positions written as ``position-batch.v3`` (JSON header, raw float64 numbers),
``v2`` (all JSON columns) and ``v1`` (JSON objects): a world-like feed (real flights at 2 Hz,
interleaved, time-shifted; ``bench_pipeline.world_chunks``) cut into the per-partition records
``skyfence ingest`` writes, 20 ms of event time at a time as a live feed brings them, with
``orjson.loads`` of the v2 records as the reference.

Each figure is the best of several repetitions. The last line of output is one JSON
object with all figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.parsers import DOCUMENT_FORMATS, make_parser  # noqa: E402
from streams.parsers._rs1090 import decode_timed_batch  # noqa: E402
from streams.parsers.beast import BeastFrame, split_frames  # noqa: E402
from streams.parsers.modes import Frame, ModeSDecoder  # noqa: E402
from tests.parsers._constructed import aircraft_json_polls, load_trace, opensky_states, readsb_jsonl  # noqa: E402

DATA = ROOT / "tests" / "data"
NOW = 1_800_000_000.0
CDG = (49.0097, 2.5479)
CHUNK = 64 * 1024


def best_times(fns: list[Callable[[], object]], reps: int) -> list[float]:
    """Best-of-``reps`` time of each function, run interleaved so load spikes hit all alike."""
    best = [float("inf")] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def run_parser(fmt: str, docs: list[bytes], reference: tuple[float, float] | None = None) -> int:
    p = make_parser(fmt, now=lambda: NOW, reference=reference)
    n = 0
    for doc in docs:
        for i in range(0, len(doc), CHUNK):
            n += p.feed(doc[i : i + CHUNK]).messages
        n += p.flush().messages
    return n


def split_fields(docs: list[bytes]) -> None:
    for doc in docs:
        for line in doc.split(b"\n"):
            line.split(b",")


def json_lines(docs: list[bytes]) -> None:
    for doc in docs:
        for line in doc.splitlines():
            if line:
                orjson.loads(line)


def json_docs(docs: list[bytes]) -> None:
    for doc in docs:
        orjson.loads(doc)


def rs1090_on(hexes: list[str], times: list[float]) -> Callable[[list[bytes]], None]:
    """Reference for raw-frame formats: rs1090 alone, vectorised, on the same frames."""
    return lambda _docs: decode_timed_batch(hexes, times, CDG) and None


def inputs(scale: int) -> dict[str, tuple[list[bytes], Callable[[list[bytes]], None], str]]:
    trace = load_trace()
    rows = [json.loads(x) for x in gzip.open(DATA / "rs1090_full_flight_short.jsonl.gz")][: 2000 * scale]
    t0 = rows[0]["timestamp"]
    avr = b"".join(b"@%012X%s;\n" % (round((r["timestamp"] - t0) * 12e6) + 1, r["frame"].encode()) for r in rows)
    beast = (DATA / "dump1090_sample.beast.bin").read_bytes() * (8 * scale)
    beast_frames = [f for f in split_frames(beast, final=True)[0] if isinstance(f, BeastFrame)]
    beast_hex = [f.msg.hex() for f in beast_frames]
    beast_t = [NOW + f.ticks / 12e6 for f in beast_frames]
    with gzip.open(DATA / "readsb_trace_full_ac671b.json.gz") as f:
        trace_bytes = f.read()
    with gzip.open(DATA / "traffic_dreamliner_boeing.json.gz") as f:
        boeing = f.read()
    sbs = (DATA / "sbs1_msgs.txt").read_bytes()
    return {
        "sbs": ([sbs * scale], split_fields, "split lines and fields"),
        "avr": ([avr], rs1090_on([r["frame"] for r in rows], [r["timestamp"] for r in rows]), "rs1090 direct"),
        "beast": ([beast], rs1090_on(beast_hex, beast_t), "rs1090 direct"),
        "readsb-json": (aircraft_json_polls(trace, 1.0, 200 * scale), json_docs, "orjson.loads"),
        "readsb-jsonl": ([readsb_jsonl(trace)] * scale, json_lines, "orjson.loads per line"),
        "trace": ([trace_bytes] * scale, json_docs, "orjson.loads"),
        "opensky": ([opensky_states(trace, i) for i in range(0, 2500, max(1, 25 // scale))], json_docs, "orjson.loads"),
        "traffic-json": ([boeing] * (2 * scale), json_docs, "orjson.loads"),
    }


def bench_formats(scale: int, reps: int) -> dict[str, dict[str, float | str]]:
    out: dict[str, dict[str, float | str]] = {}
    for fmt, (docs, reference, ref_name) in inputs(scale).items():
        ref = CDG if fmt in ("avr", "beast") else None
        messages = run_parser(fmt, docs, ref)
        ours, floor = best_times(
            [lambda docs=docs, fmt=fmt, ref=ref: run_parser(fmt, docs, ref), lambda docs=docs, r=reference: r(docs)],
            reps,
        )
        out[fmt] = {
            "messages": messages,
            "msg_per_s": messages / ours,
            "reference": ref_name,
            "ratio_to_reference": ours / floor,
            "document_format": fmt in DOCUMENT_FORMATS,
        }
    return out


def bench_mode_s(n_frames: int, reps: int) -> dict[str, float]:
    rows = [json.loads(x) for x in gzip.open(DATA / "rs1090_full_flight_short.jsonl.gz")][:n_frames]
    hexes = [r["frame"] for r in rows]
    times = [r["timestamp"] for r in rows]
    raw = [bytes.fromhex(h) for h in hexes]

    def ours() -> int:
        dec = ModeSDecoder(input_format="avr", now=lambda: NOW, reference=CDG)
        frames = [Frame(msg=m, t=t, raw=m, from_ticks=True) for m, t in zip(raw, times, strict=True)]
        n = 0
        for i in range(0, len(frames), 2000):  # chunk-sized batches, as a stream arrives
            n += len(dec.decode_batch(frames[i : i + 2000]))
        return n

    def rs1090_direct() -> int:
        return sum(1 for d in decode_timed_batch(hexes, times, CDG) if d and "latitude" in d)

    def pymodes() -> int:
        from pyModeS import PipeDecoder

        pipe = PipeDecoder(surface_ref=CDG)
        return sum(1 for h, t in zip(hexes, times, strict=True) if pipe.decode(h, timestamp=t).get("latitude"))

    t_ours, t_rs, t_pms = best_times([ours, rs1090_direct, pymodes], reps)
    n = len(rows)
    return {
        "frames": n,
        "ours_msg_per_s": n / t_ours,
        "rs1090_direct_msg_per_s": n / t_rs,
        "pymodes_msg_per_s": n / t_pms,
        "ours_time_over_rs1090": t_ours / t_rs,
        "ours_time_over_pymodes": t_ours / t_pms,
    }


def bench_position_batch(aircraft: int, reps: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_pipeline as bp

    from streams.codec import (
        decode_position_batch,
        encode_position_batch,
        encode_position_batch_v1,
        encode_position_batch_v2,
    )
    from streams.kafka_io import MAX_BATCH_POSITIONS, group_by_partition

    # 3 s of the feed at 2 Hz: every aircraft twice or more, in records of ~120 positions (8 partitions)
    _, chunks = bp.world_chunks(aircraft, 2.0, 3.0, 1.74e9, 0.02, 0.02)
    groups = [group[i : i + MAX_BATCH_POSITIONS] for chunk in chunks()
              for _, group in sorted(group_by_partition(chunk, 8).items())
              for i in range(0, len(group), MAX_BATCH_POSITIONS)]
    n = sum(map(len, groups))
    versions = {"v3": encode_position_batch, "v2": encode_position_batch_v2, "v1": encode_position_batch_v1}
    records = {v: [enc(g) for g in groups] for v, enc in versions.items()}
    for v, recs in records.items():  # every version decodes to the same positions, none refused
        assert sum(len(decode_position_batch(r, NOW)[0]) for r in recs) == n, v

    def decode(recs: list[bytes]) -> None:
        for r in recs:
            decode_position_batch(r, NOW)

    def loads(recs: list[bytes]) -> None:
        for r in recs:
            orjson.loads(r)

    fns = [lambda recs=recs: decode(recs) for recs in records.values()] + [lambda: loads(records["v2"])]
    t3, t2, t1, t_ref = best_times(fns, reps)
    return {
        "positions": n,
        "records": len(groups),
        "v3_ns_per_position": 1e9 * t3 / n,
        "v2_ns_per_position": 1e9 * t2 / n,
        "v1_ns_per_position": 1e9 * t1 / n,
        "v2_orjson_loads_ns_per_position": 1e9 * t_ref / n,
        "v3_time_over_v2": t3 / t2,
        "v3_bytes_per_position": sum(map(len, records["v3"])) / n,
        "v2_bytes_per_position": sum(map(len, records["v2"])) / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs, few repetitions (CI)")
    args = ap.parse_args()
    scale, reps, n_frames = (1, 3, 12_000) if args.quick else (5, 7, 57_793)
    started = time.perf_counter()
    formats = bench_formats(scale, reps)
    mode_s = bench_mode_s(n_frames, reps)
    batch = bench_position_batch(2_000 if args.quick else 25_000, reps)

    print(f"{'format':<14}{'messages':>10}{'msg/s':>12}{'x reference':>13}  reference")
    for fmt, r in formats.items():
        print(f"{fmt:<14}{r['messages']:>10}{r['msg_per_s']:>12,.0f}{r['ratio_to_reference']:>13.2f}  {r['reference']}")
    print()
    print(f"raw Mode S frames ({mode_s['frames']:,} from the rs1090 recording):")
    print(f"  ours (checks + rs1090 fields + our CPR + validation): {mode_s['ours_msg_per_s']:>10,.0f} msg/s")
    print(f"  rs1090 direct, vectorised decode_1090t_vec:          {mode_s['rs1090_direct_msg_per_s']:>10,.0f} msg/s")
    print(f"  pyModeS 3 PipeDecoder, per frame:                    {mode_s['pymodes_msg_per_s']:>10,.0f} msg/s")
    print(
        f"  our time / rs1090's: {mode_s['ours_time_over_rs1090']:.2f}   "
        f"our time / pyModeS's: {mode_s['ours_time_over_pymodes']:.2f}"
    )
    print()
    print(f"positions-topic records ({batch['positions']:,} positions of a world-like feed in {batch['records']:,} "
          "records), decoding:")
    for v in ("v3", "v2", "v1"):
        print(f"  position-batch.{v}: {batch[v + '_ns_per_position']:>8,.0f} ns a position")
    print(f"  orjson.loads of the v2 records alone: {batch['v2_orjson_loads_ns_per_position']:,.0f} ns a position")
    print(f"  v3 time / v2 time: {batch['v3_time_over_v2']:.2f}   bytes a position: v3 "
          f"{batch['v3_bytes_per_position']:.1f}, v2 {batch['v2_bytes_per_position']:.1f}")
    figures = {
        "bench": "parsers",
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 2),
        "formats": formats,
        "mode_s": mode_s,
        "position_batch": batch,
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
