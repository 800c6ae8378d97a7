"""The track stage's stream semantics without a broker: stream time, restore, dirty state, flushes.

The worker writes state in flushes (``TrackStream.flush_state``) and lets Faust commit a
record only after a flush wrote what it changed. These tests model a crash the way the
broker would present it: a new worker restores from the table as of the last flush and
re-reads every record after that flush. Its alerts, deduplicated the way the Redis sink
does (by content), must equal an uninterrupted run's.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import orjson
import pytest

from streams.columns import PositionColumns
from streams.core.stream import DEAD_LETTER_REJECTIONS, TrackStream
from streams.messages import Position
from streams.topics import partition_for

pytestmark = pytest.mark.unit
PARTITIONS = 4
Batch = list[tuple[int, PositionColumns]]


def batch(positions: list[Position]) -> Batch:
    """One agent batch: the positions of each partition as that partition's columns."""
    groups: dict[int, list[Position]] = {}
    for p in positions:
        groups.setdefault(partition_for(p.icao24, PARTITIONS), []).append(p)
    return [(part, PositionColumns.from_positions(g)) for part, g in sorted(groups.items())]


def batches(positions: list[Position], chunk: int = 40) -> list[Batch]:
    """Agent batches: each chunk of the time-ordered stream."""
    return [batch(positions[i : i + chunk]) for i in range(0, len(positions), chunk)]


@pytest.fixture(scope="module")
def stream(dal1812, boe004) -> list[Batch]:
    return batches(sorted(dal1812 + boe004, key=lambda p: p.event_time))


def alert_set(alerts: list[bytes]) -> set[bytes]:
    return set(alerts)  # the Redis sink de-duplicates byte-identical alerts


def run(track: TrackStream, steps: list[Batch]) -> list[bytes]:
    alerts = []
    for parts in steps:
        alerts += [orjson.dumps(doc) for doc in track.process(parts).result.alerts]
    return alerts

def test_state_reaches_the_table_only_in_a_flush(make_engine, stream) -> None:
    table: dict[bytes, bytes] = {}
    track = TrackStream(make_engine(), table, PARTITIONS)
    run(track, stream[: len(stream) // 2])
    aircraft = track.engine.aircraft()
    assert table == {} and track.dirty == len(aircraft) > 0
    assert track.dirty_aircraft() == sorted(aircraft)
    writes = track.flush_state()
    assert track.dirty == 0
    assert set(table) == {icao.encode() for icao in aircraft}
    for key, raw in table.items():
        assert raw == track.engine.export_state_bytes(key.decode())
    # what the changelog gets: exactly the table's writes, each with its key's partition
    assert {key: value for _p, key, value in writes} == table
    assert all(p == partition_for(key.decode(), PARTITIONS) for p, key, _v in writes)
    assert track.flush_state() == []  # nothing changed since


def test_a_flush_of_some_aircraft_leaves_the_others_dirty(make_engine, dal1812, boe004) -> None:
    table: dict[bytes, bytes] = {}
    track = TrackStream(make_engine(), table, PARTITIONS)
    run(track, batches(dal1812[:30] + boe004[:30]))
    first, *rest = track.dirty_aircraft()
    assert rest, "both aircraft are dirty"
    assert [key for _p, key, _v in track.flush_state([first, "abcdef"])] == [first.encode()]  # not dirty: skipped
    assert track.dirty_aircraft() == rest and set(table) == {first.encode()}
    track.mark_dirty([first])  # e.g. its changelog record was not delivered
    assert track.dirty_aircraft() == sorted([first, *rest])


@pytest.mark.parametrize(("flush_every", "crash_every"), [(1, 2), (2, 5), (3, 4), (7, 16)])
def test_a_crash_after_any_flush_replays_to_the_same_alerts(make_engine, stream, flush_every, crash_every) -> None:
    whole = run(TrackStream(make_engine(), {}, PARTITIONS), stream)
    assert len(whole) >= 11  # DAL1812: 8, BOE004: 3
    table: dict[bytes, bytes] = {}
    track = TrackStream(make_engine(), table, PARTITIONS)
    delivered: list[bytes] = []
    committed = 0  # batches whose records a flush let Faust commit
    crashes = steps = i = 0
    while i < len(stream):
        delivered += run(track, [stream[i]])
        i += 1
        steps += 1
        if i % flush_every == 0:
            track.flush_state()
            committed = i
        if steps % crash_every == 0:
            # crash: lose memory, keep the table and what Kafka has; re-read from the last commit
            track = TrackStream(make_engine(), table, PARTITIONS)
            i = committed
            crashes += 1
    assert crashes >= len(stream) // crash_every
    assert alert_set(delivered) == alert_set(whole)
    assert len(alert_set(delivered)) == len(whole)  # nothing missing, nothing new


def test_an_evicted_aircraft_is_not_resurrected_from_an_older_table_state(make_engine, dal1812) -> None:
    first = dal1812[0]
    table: dict[bytes, bytes] = {}
    track = TrackStream(make_engine(evict_after_s=7200.0, alert_timeout_s=3600.0), table, PARTITIONS)
    t0 = first.event_time
    part = partition_for(first.icao24, PARTITIONS)
    # stream time is the minimum over partitions: the other aircraft shares ac671b's partition
    icao = next(x for x in (f"a{n:05x}" for n in range(1, 99)) if partition_for(x, PARTITIONS) == part)
    again = Position(first.icao24, t0 + 8001.0, first.lat, first.lon, "trace")
    track.process(batch([first]))
    track.flush_state()
    assert b"ac671b" in table
    # a position 8,000 s later (another aircraft) moves stream time past the eviction age
    for p in (Position(icao, t0 + 8000.0, 30.0, -100.0, "trace"), Position(icao, t0 + 8003.0, 30.0, -100.01, "trace")):
        track.process(batch([p]))
    assert "ac671b" not in track.engine.aircraft()
    track.process(batch([again]))
    state = track.engine.export_state("ac671b")
    assert state is not None and state["pending"][0]["event_time"] == again.event_time
    assert state["track"]["seg_n"] in (0, None)  # a fresh track, not the evicted one's


def test_writes_wait_for_a_partition_scope(make_engine, dal1812) -> None:
    table: dict[bytes, bytes] = {}
    track = TrackStream(make_engine(), table, PARTITIONS)
    part = partition_for("ac671b", PARTITIONS)
    track.process(batch(dal1812[:20]))
    assert track.flush_state(None, lambda p: None) == [] and track.dirty == 1 and table == {}
    assert len(track.flush_state(None, lambda p: nullcontext() if p == part else None)) == 1
    assert track.dirty == 0 and b"ac671b" in table


def test_forgetting_a_partition_drops_its_state_and_unflushed_changes(make_engine, dal1812) -> None:
    track = TrackStream(make_engine(), {}, PARTITIONS)
    part = partition_for("ac671b", PARTITIONS)
    track.process(batch(dal1812[:20]))
    assert track.forget_partitions({part}) == 1
    assert track.dirty == 0 and track.tracked == 0
    assert math.isinf(track.watermark) or track.watermark > 0


def test_a_state_the_engine_cannot_read_is_logged_and_the_track_starts_afresh(make_engine, dal1812, caplog) -> None:
    written = TrackStream(make_engine(), {}, PARTITIONS)
    written.process(batch(dal1812[:40]))
    raw = written.engine.export_state_bytes("ac671b")
    assert raw is not None
    table = {b"ac671b": raw[:4] + b"otherlay" + raw[12:]}  # as if another engine layout wrote it
    track = TrackStream(make_engine(), table, PARTITIONS)
    out = track.process(batch(dal1812[40:41]))
    assert out.positions == 1 and "state of ac671b not restored" in caplog.text
    state = track.engine.export_state("ac671b")
    assert state is not None and len(state["pending"]) == 1  # a fresh track: only the new position


def test_stream_time_is_the_slowest_partition_and_the_stages_get_its_horizon(make_engine, dal1812, boe004) -> None:
    """An aircraft whose partition is merely behind is not timed out: stream time waits for it."""
    track = TrackStream(make_engine(), {}, PARTITIONS)
    a, b = dal1812[0], boe004[0]
    assert partition_for(a.icao24, PARTITIONS) != partition_for(b.icao24, PARTITIONS)
    early, late = sorted((a, b), key=lambda p: p.event_time)
    step = track.process(batch([late]))
    assert track.watermark == late.event_time  # only one partition has spoken
    step = track.process(batch([early]))
    assert track.watermark == late.event_time  # never backwards
    horizon = late.event_time - float(track.engine.config.reorder_tolerance_s)
    assert step.watermarks == {partition_for(p.icao24, PARTITIONS): horizon for p in (a, b)}


def test_only_implausible_and_invalid_positions_are_dead_letters(make_engine, dal1812) -> None:
    track = TrackStream(make_engine(), {}, PARTITIONS)
    track.process(batch(dal1812[:20]))
    p = dal1812[19]
    jump = Position(p.icao24, p.event_time + 1.0, p.lat + 5.0, p.lon, p.input_format)  # 550 km in a second
    steps = [track.process(batch([dal1812[5], jump]))]  # a late one and an impossible one
    # the gate judges a position when it leaves the reorder buffer: later positions release it
    steps += [track.process(b) for b in batches(dal1812[20:200], chunk=10)]
    rejected: dict[str, int] = {}
    for st in steps:
        for reason, n in st.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + n
    dead = [d for st in steps for d in st.dead_letters]
    assert rejected.get("late", 0) + rejected.get("duplicate", 0) >= 1
    assert rejected.get("implausible_jump", 0) >= 1
    assert len(dead) == sum(n for r, n in rejected.items() if r in DEAD_LETTER_REJECTIONS)  # late ones are not
    assert dead[0].reason == "implausible_jump" and dead[0].event_time == jump.event_time
    assert dead[0].extra == {"icao24": p.icao24} and dead[0].source == "track-gate"


def test_steps_split_a_stream_time_jump_and_merge_to_process(make_engine, dal1812, boe004) -> None:
    """TrackStream.steps (the worker's path): the batch's own step, then the release a stream
    time jump allows in parts; only the last carries the stages' watermarks, and together they
    are what process gives. The jump: partition q is heard first with one old position, then the
    other partitions' aircraft (each keeps its newest positions buffered: stream time is q's),
    then the rest of q, which moves stream time on and lets every one of them go at once."""
    from dataclasses import replace

    fleet = [replace(p, icao24=f"{i:02x}{p.icao24[2:]}") for i in range(8) for p in (*dal1812[:40], *boe004[:40])]
    q = partition_for(fleet[0].icao24, PARTITIONS)
    mine = [p for p in fleet if partition_for(p.icao24, PARTITIONS) == q]
    others = [p for p in fleet if partition_for(p.icao24, PARTITIONS) != q]
    feed = [batch(mine[:1]), batch(others), batch(mine[1:])]
    whole, stepped = TrackStream(make_engine(), {}, PARTITIONS), TrackStream(make_engine(), {}, PARTITIONS)
    for parts in feed[:2]:
        whole.process(parts)
        list(stepped.steps(parts, max_release=2))
    buffered = whole.engine.pending_count
    assert buffered >= 8 and stepped.engine.pending_count == buffered
    once = whole.process(feed[2])
    steps = list(stepped.steps(feed[2], max_release=2))
    # the jump let the others' buffered positions go, in parts of whole aircraft after the batch's own step
    released = [s.result.counters["accepted"] for s in steps[1:]]
    assert sum(released) >= 6 and len(steps) >= 4 and max(released) <= 4
    assert all(not s.watermarks for s in steps[:-1]) and steps[-1].watermarks == once.watermarks
    assert sum(s.positions for s in steps) == once.positions == len(mine) - 1
    assert [a for s in steps for a in s.result.alerts] == once.result.alerts
    tracks = [t for s in steps for t in s.result.track_updates]
    assert sorted(tracks, key=lambda d: d["icao24"]) == sorted(once.result.track_updates, key=lambda d: d["icao24"])
    assert stepped.dirty_aircraft() == whole.dirty_aircraft()
    assert stepped.engine.pending_count == whole.engine.pending_count
