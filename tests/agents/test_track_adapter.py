"""The track agent's adapter without a broker: decoding, restoring, dirty state and flushes.

The worker writes state in flushes (``TrackAdapter.flush_state``) and lets Faust commit a
record only after a flush wrote what it changed. These tests model a crash the way the
broker would present it: a new worker restores from the table as of the last flush and
re-reads every record after that flush. Its alerts, deduplicated the way the Redis sink
does (by content), must equal an uninterrupted run's.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest

from streams.agents.track import TrackAdapter, encode_track
from streams.codec import encode_position_batch
from streams.core.config import EngineConfig
from streams.core.engine import Engine
from streams.records import Position
from streams.topics import partition_for

pytestmark = pytest.mark.unit
PARTITIONS = 4


@pytest.fixture(scope="module")
def make_engine(classifier, places):
    from streams.geo import Geofence

    fence = Geofence.load()

    def _make(**cfg: object) -> Engine:
        cfg.setdefault("alert_policy", "all")
        return Engine(EngineConfig(**cfg), fence, classifier, places)  # type: ignore[arg-type]

    return _make


def records(positions: list[Position], chunk: int = 40) -> list[list[tuple[int, bytes]]]:
    """Agent batches: each chunk of the time-ordered stream as one record per partition."""
    out = []
    for i in range(0, len(positions), chunk):
        groups: dict[int, list[Position]] = {}
        for p in positions[i : i + chunk]:
            groups.setdefault(partition_for(p.icao24, PARTITIONS), []).append(p)
        out.append([(part, encode_position_batch(g)) for part, g in sorted(groups.items())])
    return out


@pytest.fixture(scope="module")
def stream(dal1812, boe004) -> list[list[tuple[int, bytes]]]:
    return records(sorted(dal1812 + boe004, key=lambda p: p.event_time))


def alert_set(alerts: list[bytes]) -> set[bytes]:
    return set(alerts)  # the Redis sink de-duplicates byte-identical alerts


def run(adapter: TrackAdapter, batches: list[list[tuple[int, bytes]]]) -> list[bytes]:
    alerts = []
    for recs in batches:
        out = adapter.handle(recs, now=2e9)
        alerts += [value for _k, value, _doc in out.alerts]
    return alerts


def test_state_reaches_the_table_only_in_a_flush(make_engine, stream) -> None:
    table: dict[bytes, bytes] = {}
    adapter = TrackAdapter(make_engine(), table, PARTITIONS)
    run(adapter, stream[: len(stream) // 2])
    aircraft = adapter.engine.aircraft()
    assert table == {} and adapter.dirty == len(aircraft) > 0
    assert adapter.dirty_aircraft() == sorted(aircraft)
    writes = adapter.flush_state()
    assert adapter.dirty == 0
    assert set(table) == {icao.encode() for icao in aircraft}
    for key, raw in table.items():
        assert raw == adapter.engine.export_state_bytes(key.decode())
    # what the changelog gets: exactly the table's writes, each with its key's partition
    assert {key: value for _p, key, value in writes} == table
    assert all(p == partition_for(key.decode(), PARTITIONS) for p, key, _v in writes)
    assert adapter.flush_state() == []  # nothing changed since


def test_a_flush_of_some_aircraft_leaves_the_others_dirty(make_engine, dal1812, boe004) -> None:
    table: dict[bytes, bytes] = {}
    adapter = TrackAdapter(make_engine(), table, PARTITIONS)
    run(adapter, records(dal1812[:30] + boe004[:30]))
    first, *rest = adapter.dirty_aircraft()
    assert rest, "both aircraft are dirty"
    assert [key for _p, key, _v in adapter.flush_state([first, "abcdef"])] == [first.encode()]  # not dirty: skipped
    assert adapter.dirty_aircraft() == rest and set(table) == {first.encode()}
    adapter.mark_dirty([first])  # e.g. its changelog record was not delivered
    assert adapter.dirty_aircraft() == sorted([first, *rest])


@pytest.mark.parametrize(("flush_every", "crash_every"), [(1, 2), (2, 5), (3, 4), (7, 16)])
def test_a_crash_after_any_flush_replays_to_the_same_alerts(make_engine, stream, flush_every, crash_every) -> None:
    whole = run(TrackAdapter(make_engine(), {}, PARTITIONS), stream)
    assert len(whole) >= 11  # DAL1812: 8, BOE004: 3
    table: dict[bytes, bytes] = {}
    adapter = TrackAdapter(make_engine(), table, PARTITIONS)
    delivered: list[bytes] = []
    committed = 0  # batches whose records a flush let Faust commit
    crashes = steps = i = 0
    while i < len(stream):
        delivered += run(adapter, [stream[i]])
        i += 1
        steps += 1
        if i % flush_every == 0:
            adapter.flush_state()
            committed = i
        if steps % crash_every == 0:
            # crash: lose memory, keep the table and what Kafka has; re-read from the last commit
            adapter = TrackAdapter(make_engine(), table, PARTITIONS)
            i = committed
            crashes += 1
    assert crashes >= len(stream) // crash_every
    assert alert_set(delivered) == alert_set(whole)
    assert len(alert_set(delivered)) == len(whole)  # nothing missing, nothing new


def test_an_evicted_aircraft_is_not_resurrected_from_an_older_table_state(make_engine, dal1812) -> None:
    first = dal1812[0]
    table: dict[bytes, bytes] = {}
    adapter = TrackAdapter(make_engine(evict_after_s=7200.0, alert_timeout_s=3600.0), table, PARTITIONS)
    t0 = first.event_time
    part = partition_for(first.icao24, PARTITIONS)
    # stream time is the minimum over partitions: the other aircraft shares ac671b's partition
    icao = next(x for x in (f"a{n:05x}" for n in range(1, 99)) if partition_for(x, PARTITIONS) == part)
    again = Position(first.icao24, t0 + 8001.0, first.lat, first.lon, "trace")
    adapter.handle([(partition_for(first.icao24, PARTITIONS), encode_position_batch([first]))], now=2e9)
    adapter.flush_state()
    assert b"ac671b" in table
    # a position 8,000 s later (another aircraft) moves stream time past the eviction age
    for p in (Position(icao, t0 + 8000.0, 30.0, -100.0, "trace"), Position(icao, t0 + 8003.0, 30.0, -100.01, "trace")):
        adapter.handle([(partition_for(p.icao24, PARTITIONS), encode_position_batch([p]))], now=2e9)
    assert "ac671b" not in adapter.engine.aircraft()
    adapter.handle([(partition_for(again.icao24, PARTITIONS), encode_position_batch([again]))], now=2e9)
    state = adapter.engine.export_state("ac671b")
    assert state is not None and state["pending"][0]["event_time"] == again.event_time
    assert state["track"]["seg_n"] in (0, None)  # a fresh track, not the evicted one's


def test_writes_wait_for_a_partition_scope(make_engine, dal1812) -> None:
    table: dict[bytes, bytes] = {}
    adapter = TrackAdapter(make_engine(), table, PARTITIONS)
    part = partition_for("ac671b", PARTITIONS)
    adapter.handle([(part, encode_position_batch(dal1812[:20]))], now=2e9)
    assert adapter.flush_state(None, lambda p: None) == [] and adapter.dirty == 1 and table == {}
    assert len(adapter.flush_state(None, lambda p: nullcontext() if p == part else None)) == 1
    assert adapter.dirty == 0 and b"ac671b" in table


def test_forgetting_a_partition_drops_its_state_and_unflushed_changes(make_engine, dal1812) -> None:
    adapter = TrackAdapter(make_engine(), {}, PARTITIONS)
    part = partition_for("ac671b", PARTITIONS)
    adapter.handle([(part, encode_position_batch(dal1812[:20]))], now=2e9)
    assert adapter.forget_partitions({part}) == 1
    assert adapter.dirty == 0 and adapter.tracked == 0
    assert math.isinf(adapter.watermark) or adapter.watermark > 0


def test_bad_records_become_dead_letters_and_good_neighbours_go_on(make_engine, dal1812) -> None:
    adapter = TrackAdapter(make_engine(), {}, PARTITIONS, max_message_bytes=100_000)
    part = partition_for("ac671b", PARTITIONS)
    good = encode_position_batch(dal1812[:10])
    out = adapter.handle([(part, b"not json"), (part, b"x" * 200_000), (part, good)], now=2e9)
    assert [d.reason for d in out.dead_letters] == ["bad_json", "oversize"]
    assert out.positions == 10


def test_a_state_the_engine_cannot_read_is_logged_and_the_track_starts_afresh(make_engine, dal1812, caplog) -> None:
    written = TrackAdapter(make_engine(), {}, PARTITIONS)
    part = partition_for("ac671b", PARTITIONS)
    written.handle([(part, encode_position_batch(dal1812[:40]))], now=2e9)
    raw = written.engine.export_state_bytes("ac671b")
    assert raw is not None
    table = {b"ac671b": raw[:4] + b"otherlay" + raw[12:]}  # as if another engine layout wrote it
    adapter = TrackAdapter(make_engine(), table, PARTITIONS)
    out = adapter.handle([(part, encode_position_batch(dal1812[40:41]))], now=2e9)
    assert out.positions == 1 and "state of ac671b not restored" in caplog.text
    state = adapter.engine.export_state("ac671b")
    assert state is not None and len(state["pending"]) == 1  # a fresh track: only the new position


def test_track_records_are_the_engine_documents_in_right_sized_buffers(make_engine, stream) -> None:
    """The adapter publishes each track document as (icao24, JSON) in a buffer of its own
    length: orjson's own buffer is 4-16 KiB whatever the length, so a burst of 75,000 track
    records held ~600 MB where ~90 MB are needed."""
    import tracemalloc

    import orjson

    adapter = TrackAdapter(make_engine(), {}, PARTITIONS)
    reference = TrackAdapter(make_engine(), {}, PARTITIONS)
    reference.engine.track_encoder = None  # the engine's plain documents
    records_out, docs = [], []
    for recs in stream:
        records_out += adapter.handle(recs, now=2e9).tracks
        docs += reference.handle(recs, now=2e9).tracks
    assert records_out and len(records_out) == len(docs)
    for (key, value), doc in zip(records_out, docs, strict=True):
        assert key == doc["icao24"].encode()
        assert orjson.loads(value) == orjson.loads(orjson.dumps(doc))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode_track(doc) for doc in docs[:200]]
        per_record = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    size = sum(len(k) + len(v) for k, v in kept) / len(kept)
    assert per_record < size + 300, (per_record, size)  # bytes headers and the tuple, not a 4 KiB+ buffer
