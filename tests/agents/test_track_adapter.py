"""The track agent's codec without a broker: records in, the track stage, records out.

The stream semantics (stream time, restore, dirty state, flushes) are the core's and are
tested in ``tests/core/test_stream.py``; here: what the adapter adds around them.
"""

from __future__ import annotations

import orjson
import pytest

from streams.agents.track import TrackAdapter, encode_track
from streams.codec import encode_position_batch
from streams.columns import PositionColumns
from streams.core.stream import TrackStream
from streams.messages import Position
from streams.topics import partition_for

pytestmark = pytest.mark.unit
PARTITIONS = 4


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


def test_bad_records_become_dead_letters_and_good_neighbours_go_on(make_engine, dal1812) -> None:
    adapter = TrackAdapter(make_engine(), {}, PARTITIONS, max_message_bytes=100_000)
    part = partition_for("ac671b", PARTITIONS)
    good = encode_position_batch(dal1812[:10])
    out = adapter.handle([(part, b"not json"), (part, b"x" * 200_000), (part, good)], now=2e9)
    assert [d.reason for d in out.dead_letters] == ["bad_json", "oversize"]
    assert out.positions == 10


def test_track_records_are_the_engine_documents_in_right_sized_buffers(make_engine, stream) -> None:
    """The adapter publishes each track document as (icao24, JSON) in a buffer of its own
    length: orjson's own buffer is 4-16 KiB whatever the length, so a burst of 75,000 track
    records held ~600 MB where ~90 MB are needed."""
    import tracemalloc

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


def test_the_adapter_is_the_track_stage_on_decoded_records(make_engine, stream) -> None:
    """What the agent publishes is exactly what the core stage produced from the same positions."""
    adapter = TrackAdapter(make_engine(), {}, PARTITIONS)
    core = TrackStream(make_engine(), {}, PARTITIONS)
    n = 0
    for recs in stream:
        out = adapter.handle(recs, now=2e9)
        step = core.process([(p, PositionColumns.from_positions(_decode(v))) for p, v in recs])
        assert [doc for _k, _v, doc in out.alerts] == step.result.alerts
        assert [orjson.loads(v) for _k, v, _d in out.alerts] == step.result.alerts
        assert [orjson.loads(v) for _k, v in out.tracks] == step.result.track_updates
        assert out.watermarks == step.watermarks and out.rejected == step.rejected
        n += len(out.alerts)
    assert n >= 11 and adapter.stream.dirty_aircraft() == core.dirty_aircraft()


def _decode(value: bytes) -> list[Position]:
    from streams.codec import decode_position_batch

    cols, dead = decode_position_batch(value, 2e9)
    assert not dead
    return cols.to_positions()
