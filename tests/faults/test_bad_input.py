"""A malformed-input corpus through the whole pipeline: ingest, broker, worker, dead-letter topic, Redis.

The corpus (tests/data/malformed, built by scripts/make_malformed_corpus.py from the
real recordings) mixes bad records of every kind into real flights. It is ingested
with `skyfence ingest`, and more bad records (random bytes, NaN, wrong types,
out-of-range values, timestamps years off, a 10 MB value, duplicates) are produced
straight onto the positions topic, as a foreign producer could. Then: the worker is
still alive, every bad record is in the dead-letter topic with a reason (counted
against what was injected), and the real flights' alerts equal those of the clean
recordings.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.agents.track import DEAD_LETTER_REJECTIONS
from streams.analyze import analyze_file
from streams.codec import encode_position_batch
from streams.kafka_io import ensure_topics, make_producer
from streams.messages import Position
from streams.parsers import make_parser
from streams.settings import Settings
from streams.topics import DEADLETTER, POSITIONS, partition_for
from streams.wiring import build_engine
from tests.e2e.test_pipeline import analyze, redis_alerts, skyfence
from tests.faults.conftest import compare, metric, report
from tests.kafka_helpers import read_topic
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.faults

CORPUS = REPO_ROOT / "tests" / "data" / "malformed"
# 10 MB: the "10 MB messages"; under the broker's 10 MiB message.max.bytes, over our 1 MiB limit.
TEN_MB = 10_000_000


def _ingest_inputs(tmp_path: Path) -> list[tuple[Path, str, int]]:
    """(file, format, dead letters its parser reports) for every corpus file, plus a 10 MB line."""
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    jobs = [(CORPUS / name, m["format"]) for name, m in sorted(manifest.items())]
    jobs.append((CORPUS / "random.bin", "sbs"))
    huge = tmp_path / "ten_mb_line.jsonl"
    first = (CORPUS / "dal1812_clean.jsonl").read_bytes().split(b"\n", 1)[0]
    huge.write_bytes(first[:-1] + b', "pad": "' + b"x" * TEN_MB + b'"}\n')
    jobs.append((huge, "readsb-jsonl"))
    out = []
    for path, fmt in jobs:
        parser = make_parser(fmt, source=str(path), max_message_bytes=1_048_576)
        result = parser.feed(path.read_bytes())
        result.extend(parser.flush())
        injected = manifest.get(path.name, {}).get("bad") if fmt == manifest.get(path.name, {}).get("format") else None
        if injected is not None:
            # each injected record is exactly one dead letter, no more (good records are not refused)
            assert len(result.dead_letters) == injected, (path.name, Counter(d.reason for d in result.dead_letters))
        out.append((path, fmt, len(result.dead_letters)))
    return out


def _foreign_records() -> list[tuple[str, bytes, int]]:
    """(kind, value, dead letters it must cause) produced straight onto the positions topic."""
    rows = [json.loads(x) for x in (CORPUS / "dal1812_clean.jsonl").read_text().splitlines()[:3]]
    good = {"icao24": "ac671b", "event_time": rows[0]["now"], "lat": rows[0]["lat"], "lon": rows[0]["lon"],
            "input_format": "position-batch", "source": "adsb"}
    bad_items = [
        {**good, "lat": "north"},                       # wrong type
        {**good, "lat": 91.5},                          # out of range
        {**good, "lon": 181.0},                         # out of range
        {**good, "event_time": good["event_time"] + 10 * 365 * 86400},  # years ahead
        {**good, "event_time": 86400.0},                # 1970
        {**good, "icao24": None},                       # missing address
        [good["lat"], good["lon"]],                     # not an object
    ]
    batch = orjson.dumps({"schema": "position-batch.v1", "positions": bad_items})
    # position-batch.v3 (JSON header line, raw float64 numbers): a NaN latitude and one out of
    # range (no good position: a real one here would be a duplicate of the corpus's), and the
    # record with its number block cut short
    pos = Position("ac671b", good["event_time"], good["lat"], good["lon"], "position-batch", source="adsb")
    v3 = encode_position_batch([dataclasses.replace(pos, lat=math.nan), dataclasses.replace(pos, lat=95.0)])
    return [
        ("v3 batch: a NaN latitude, one out of range", v3, 2),
        ("v3 batch cut short", v3[:-5], 1),
        ("random bytes", bytes(range(256)) * 4, 1),
        ("NaN in JSON", b'{"schema":"position-batch.v1","positions":[{"icao24":"ac671b","lat":NaN}]}', 1),
        ("a JSON array, not a batch", b"[1, 2, 3]", 1),
        ("batch of 7 bad positions", batch, len(bad_items)),
        ("10 MB value", b'{"schema":"position-batch.v1","positions":[],"pad":"' + b"x" * TEN_MB + b'"}', 1),
    ]


async def test_malformed_corpus_through_the_whole_pipeline(settings: Settings, start_worker, tmp_path) -> None:
    s = settings.replace(alert_policy="all")
    await ensure_topics(s)
    worker = start_worker(settings_=s)

    jobs = _ingest_inputs(tmp_path)
    for path, fmt, _dead in jobs:
        skyfence(s, "ingest", str(path), "--format", fmt)

    foreign = _foreign_records()
    producer = make_producer(s, max_request_size=2 * TEN_MB)
    await producer.start()
    try:
        part = partition_for("ac671b", s.partitions)
        for _kind, value, _n in foreign:
            await (await producer.send(POSITIONS.name(s), value, partition=part))
        # duplicates of real positions already processed: counted by the track gate, not alerts
        rows = [json.loads(x) for x in (CORPUS / "dal1812_clean.jsonl").read_text().splitlines()[:50]]
        parser = make_parser("readsb-jsonl", source="dup")
        dups = parser.feed(b"\n".join(orjson.dumps(r) for r in rows) + b"\n").positions
        await (await producer.send(POSITIONS.name(s), encode_position_batch(dups), partition=part))
    finally:
        await producer.stop()

    expected = (analyze(s, str(CORPUS / "dal1812_clean.jsonl"), "readsb-jsonl")
                + analyze(s, str(CORPUS / "boeing_clean.json"), "traffic-json"))
    delivered = await redis_alerts(s, expect=len(expected), timeout=120)
    counts = compare(expected, delivered)

    # what the track gate refuses of the (real) good records is a dead letter too; count it in-process
    engine = build_engine(s)
    gate: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for name, fmt in (("dal1812_mixed.jsonl", "readsb-jsonl"), ("boeing_mixed.json", "traffic-json")):
        res = await analyze_file(str(CORPUS / name), fmt, engine, close_all=False,
                                 max_message_bytes=s.max_message_bytes)
        gate.update({r: n for r, n in res.rejected.items() if r in DEAD_LETTER_REJECTIONS})
        refused.update(res.rejected)

    # random.bin is ingested twice (as beast and as sbs): same source, both counts
    want_by_source: Counter[str] = Counter()
    for path, _fmt, n in jobs:
        want_by_source[str(path)] += n
    want_by_source["positions-topic"] = sum(n for _k, _v, n in foreign)
    want_by_source["track-gate"] = sum(gate.values())
    total = sum(want_by_source.values())
    values = await read_topic(s, DEADLETTER.name(s), expect=total, timeout=90, settle=3.0)
    letters = [orjson.loads(v) for v in values]
    got_by_source = Counter(d["source"] for d in letters)
    reasons = Counter(d["reason"] for d in letters)

    # duplicated and late (re-sent old) positions are normal stream behaviour, not bad input:
    # the track gate counts them and they never raise an alert
    worker_dups = await metric(s, 'skyfence_positions_rejected_total{reason="duplicate"}')
    worker_late = await metric(s, 'skyfence_positions_rejected_total{reason="late"}')

    rows_out = [f"{Path(src).name:<28} injected/expected {want_by_source[src]:>5}  dead letters {got_by_source[src]:>5}"
                for src in sorted(want_by_source)]
    print("\n" + "\n".join(rows_out))
    report("Malformed corpus through the pipeline",
           f"{len(jobs)} corpus inputs via `skyfence ingest`, {len(foreign)} bad records (+1 batch of 50 duplicates) "
           "straight onto the positions topic",
           {**counts, "dead_letters_expected": total, "dead_letters": len(letters),
            "by_source": {Path(k).name: v for k, v in sorted(got_by_source.items())}, "reasons": dict(reasons),
            "duplicate_or_late_counted": worker_dups + worker_late,
            "duplicate_or_late_expected": refused["duplicate"] + refused["late"] + len(dups)})

    assert worker.proc.poll() is None, "the worker crashed on bad input:\n" + worker.log_text()[-3000:]
    assert "Traceback" not in worker.log_text(), worker.log_text()[-3000:]
    assert all(d.get("reason") for d in letters), "a dead letter without a reason"
    assert got_by_source == want_by_source
    assert reasons["oversize"] == 2, reasons  # the 10 MB line and the 10 MB record
    assert all(len(v) < 100_000 for v in values), "a dead letter carried a huge payload"
    assert worker_dups + worker_late == refused["duplicate"] + refused["late"] + len(dups), (worker_dups, refused)
    assert counts["missing"] == counts["unexpected"] == counts["duplicated"] == counts["differing"] == 0, counts
    assert counts["delivered"] == counts["expected"]
