"""Build tests/data/malformed/: real recordings with bad records injected, plus a manifest.

Every file starts from a real recording in tests/data (see tests/data/PROVENANCE.md):
- ``dal1812_mixed.jsonl`` (readsb-jsonl): every point of the DAL1812 readsb trace as a
  readsb ``--net-json-port`` line, with bad lines injected between them (wrong types,
  NaN, out-of-range coordinates, timestamps years off, missing fields, random bytes,
  invalid UTF-8) and good lines duplicated and swapped with their neighbour;
  ``dal1812_clean.jsonl`` is the same file without the injected bad lines, duplicates
  and swaps (the reference run);
- ``boeing_mixed.json`` (traffic-json): the Boeing flight's rows with bad rows injected;
  ``boeing_clean.json`` without them;
- ``sbs_bad.txt`` (sbs): SBS-1 lines of the real capture, damaged (fields cut, wrong
  types, NaN and out-of-range coordinates, dates years off) plus random-byte lines;
- ``beast_truncated.bin`` (beast): the real Beast capture with frames cut short;
- ``random.bin``: random bytes (fed as beast, and as sbs).

``manifest.json`` lists, per file and format, how many bad records were injected and
of which kind. Messages of 10 MB are not stored here (the repository keeps files
small): the pipeline test makes them at run time. Deterministic (fixed seed); run
``.venv/bin/python scripts/make_malformed_corpus.py`` to rebuild.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = DATA / "malformed"
SEED = 20250204
# One bad line every ~12 good ones: dense enough that bad input sits next to every kind of
# good record (approach, entry, exit), sparse enough that the flight stays a flight.
BAD_EVERY = 12


def _dal_lines() -> list[dict]:
    doc = json.loads(gzip.open(DATA / "readsb_trace_full_ac671b.json.gz").read())
    base = doc["timestamp"]
    lines = []
    for p in doc["trace"]:
        t, lat, lon, alt, gs, track = p[0], p[1], p[2], p[3], p[4], p[5]
        detail = p[8] if len(p) > 8 and isinstance(p[8], dict) else {}
        line = {"now": round(base + t, 3), "hex": doc["icao"], "type": p[9] if len(p) > 9 else "adsb_icao",
                "lat": lat, "lon": lon, "seen_pos": 0.0}
        if alt is not None:
            line["alt_baro"] = alt
        if gs is not None:
            line["gs"] = gs
        if track is not None:
            line["track"] = track
        if detail.get("flight"):
            line["flight"] = detail["flight"]
        lines.append(line)
    return lines


def _bad_jsonl(rng: random.Random, good: dict) -> tuple[str, bytes]:
    kinds = [
        ("wrong_type_lat", lambda g: {**g, "lat": "sixteen"}),
        ("wrong_type_object", lambda g: [g["lat"], g["lon"]]),
        ("lat_out_of_range", lambda g: {**g, "lat": 95.5}),
        ("lon_out_of_range", lambda g: {**g, "lon": -200.25}),
        ("time_years_ahead", lambda g: {**g, "now": g["now"] + 5 * 365 * 86400 + 10**8}),
        ("time_years_behind", lambda g: {**g, "now": 631152000.0}),
        ("missing_hex", lambda g: {k: v for k, v in g.items() if k != "hex"}),
        ("bad_hex", lambda g: {**g, "hex": "zz99"}),
    ]
    special = ["nan_coordinate", "random_bytes", "invalid_utf8", "truncated_json"]
    pick = rng.randrange(len(kinds) + len(special))
    if pick < len(kinds):
        name, make = kinds[pick]
        return name, json.dumps(make(good)).encode()
    name = special[pick - len(kinds)]
    if name == "nan_coordinate":
        return name, json.dumps({**good, "lat": 0.0}).replace('"lat": 0.0', '"lat": NaN').encode()
    if name == "random_bytes":
        return name, bytes(rng.choice(b"abcdef{}[]:,\"0123456789 \t") for _ in range(rng.randint(5, 200)))
    if name == "invalid_utf8":
        return name, b'{"hex": "ac671b", "flight": "\xff\xfe\xfd", "lat": 1.0}'
    return name, json.dumps(good).encode()[: rng.randint(3, 40)]


def make_dal(rng: random.Random, manifest: dict) -> None:
    good = _dal_lines()
    clean = [json.dumps(g).encode() for g in good]
    mixed: list[bytes] = []
    kinds: dict[str, int] = {}
    duplicates = swaps = 0
    i = 0
    while i < len(clean):
        if i % BAD_EVERY == 5:
            name, line = _bad_jsonl(rng, good[i])
            kinds[name] = kinds.get(name, 0) + 1
            mixed.append(line)
        if i % 50 == 7:
            mixed += [clean[i], clean[i]]  # the same message heard twice
            duplicates += 1
        elif i % 50 == 23 and i + 1 < len(clean):
            mixed += [clean[i + 1], clean[i]]  # neighbours out of order
            swaps += 1
            i += 1
        else:
            mixed.append(clean[i])
        i += 1
    (OUT / "dal1812_clean.jsonl").write_bytes(b"\n".join(clean) + b"\n")
    (OUT / "dal1812_mixed.jsonl").write_bytes(b"\n".join(mixed) + b"\n")
    manifest["dal1812_mixed.jsonl"] = {"format": "readsb-jsonl", "clean": "dal1812_clean.jsonl",
                                       "bad": sum(kinds.values()), "kinds": kinds,
                                       "duplicated_good": duplicates, "swapped_good_pairs": swaps}


def make_boeing(rng: random.Random, manifest: dict) -> None:
    rows = json.loads(gzip.open(DATA / "traffic_dreamliner_boeing.json.gz").read())
    mixed: list[dict | list | str | None] = []
    kinds: dict[str, int] = {}
    makers = [
        ("wrong_type_latitude", lambda r: {**r, "latitude": {"deg": r["latitude"]}}),
        ("lat_out_of_range", lambda r: {**r, "latitude": -91.0}),
        ("lon_out_of_range", lambda r: {**r, "longitude": 540.0}),
        ("time_years_ahead", lambda r: {**r, "timestamp": r["timestamp"] + 20 * 365 * 86400 * 1000}),
        ("time_years_behind", lambda r: {**r, "timestamp": 315532800000}),
        ("bad_timestamp_text", lambda r: {**r, "timestamp": "yesterday"}),
        ("missing_icao24", lambda r: {k: v for k, v in r.items() if k != "icao24"}),
        ("row_not_object", lambda r: "not a row"),
    ]
    for i, row in enumerate(rows):
        if i % BAD_EVERY == 5 and row.get("latitude") is not None:
            name, make = makers[rng.randrange(len(makers))]
            kinds[name] = kinds.get(name, 0) + 1
            mixed.append(make(row))
        mixed.append(row)
    (OUT / "boeing_clean.json").write_text(json.dumps(rows))
    (OUT / "boeing_mixed.json").write_text(json.dumps(mixed))
    manifest["boeing_mixed.json"] = {"format": "traffic-json", "clean": "boeing_clean.json",
                                     "bad": sum(kinds.values()), "kinds": kinds}


def make_sbs(rng: random.Random, manifest: dict) -> None:
    real = [ln for ln in (DATA / "sbs1_msgs.txt").read_bytes().splitlines() if ln.startswith(b"MSG,3,")]
    bad: list[bytes] = []
    kinds: dict[str, int] = {}
    for n in range(120):
        fields = rng.choice(real).split(b",")
        kind = n % 6
        if kind == 0:
            name, line = "missing_fields", b",".join(fields[: rng.randint(2, 9)])
        elif kind == 1:
            fields[14] = b"north"
            name, line = "wrong_type_lat", b",".join(fields)
        elif kind == 2:
            fields[14], fields[15] = b"NaN", b"NaN"
            name, line = "nan_coordinate", b",".join(fields)
        elif kind == 3:
            fields[14] = b"123.5"
            name, line = "lat_out_of_range", b",".join(fields)
        elif kind == 4:
            fields[6:10] = [b"1987/01/01", b"00:00:00.000", b"1987/01/01", b"00:00:00.000"]
            name, line = "time_years_behind", b",".join(fields)
        else:
            name = "random_bytes"
            line = bytes(rng.choice([c for c in range(256) if c not in (10, 13)]) for _ in range(rng.randint(4, 120)))
        kinds[name] = kinds.get(name, 0) + 1
        bad.append(line)
    (OUT / "sbs_bad.txt").write_bytes(b"\r\n".join(bad) + b"\r\n")
    manifest["sbs_bad.txt"] = {"format": "sbs", "bad": len(bad), "kinds": kinds}


def make_beast(rng: random.Random, manifest: dict) -> None:
    data = (DATA / "dump1090_sample.beast.bin").read_bytes()
    # frame starts: 0x1a followed by a type byte, not an escaped 0x1a 0x1a
    starts = [i for i in range(len(data) - 1) if data[i] == 0x1A and data[i + 1] in (0x31, 0x32, 0x33)
              and (i == 0 or data[i - 1] != 0x1A)]
    cut = set(rng.sample(range(1, len(starts) - 1), 20))
    out = bytearray()
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        frame = data[s:end]
        out += frame[: rng.randint(3, len(frame) - 2)] if k in cut else frame
    (OUT / "beast_truncated.bin").write_bytes(bytes(out))
    manifest["beast_truncated.bin"] = {"format": "beast", "bad": len(cut), "kinds": {"truncated_frame": len(cut)}}


def make_random(rng: random.Random, manifest: dict) -> None:
    (OUT / "random.bin").write_bytes(bytes(rng.randrange(256) for _ in range(64 * 1024)))
    manifest["random.bin"] = {"format": "beast", "bad": None, "kinds": {"random_bytes": 65536}}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    manifest: dict = {}
    for make in (make_dal, make_boeing, make_sbs, make_beast, make_random):
        make(rng, manifest)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    for name in sorted(manifest):
        print(f"{name:<24} {manifest[name]['format']:<13} bad={manifest[name]['bad']}  {manifest[name]['kinds']}")


if __name__ == "__main__":
    main()
