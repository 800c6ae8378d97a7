"""The positions-topic codec: the fast paths never accept what the general gates refuse, and
the columnar v2 record decodes to exactly what the same positions as v1 objects decode to."""

from __future__ import annotations

import functools
import gzip
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import (
    decode_position_batch,
    encode_position_batch,
    encode_position_batch_v1,
    fast_position,
    position_from_doc,
)
from streams.parsers import parse_bytes
from streams.parsers.validate import Invalid
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit
DATA = REPO_ROOT / "tests" / "data"
NOW = 1_800_000_000.0


@functools.cache
def _real_positions() -> list:
    out = parse_bytes("trace", gzip.decompress((DATA / "readsb_trace_full_ac671b.json.gz").read_bytes())).positions
    boeing = gzip.decompress((DATA / "traffic_dreamliner_boeing.json.gz").read_bytes())
    out += parse_bytes("traffic-json", boeing).positions
    out += parse_bytes("traffic-json", boeing).positions
    out += parse_bytes("sbs", (DATA / "sbs1_msgs.txt").read_bytes(), now=lambda: 1_738_700_000.0).positions
    return out


def test_real_positions_round_trip_through_the_fast_path() -> None:
    positions = _real_positions()
    assert len(positions) > 4000
    for p in positions:
        doc = orjson.loads(orjson.dumps(p.to_dict()))
        assert fast_position(doc, NOW) == p
        assert position_from_doc(doc, NOW) == p


def test_decoded_string_columns_hold_one_object_per_value_not_the_records_own() -> None:
    """A column keeps each value's standing object, so a decoded record's own strings (and
    the pymalloc arena they were parsed into) die with the record, not with the batch."""
    from streams.codec import decode_position_batch

    chunk = _real_positions()[:200]
    first, dead = decode_position_batch(encode_position_batch(chunk), NOW)
    second, dead2 = decode_position_batch(encode_position_batch(chunk), NOW)
    assert not dead and not dead2 and len(first) == len(second) == 200
    for name in ("icao24", "callsign", "source", "input_format"):
        a, b = getattr(first, name), getattr(second, name)
        assert list(a) == list(b) == [getattr(p, name) for p in chunk]
        assert all(x is y for x, y in zip(a, b, strict=True)), name
        assert len({id(x) for x in a}) == len(set(a))  # one object per distinct value


_BASE = {
    "icao24": "ac671b", "event_time": 1738704440.949, "lat": 18.489152, "lon": -88.693726, "input_format": "trace",
    "alt_baro_ft": 32000.0, "alt_geom_ft": None, "ground_speed_kt": 451.0, "track_deg": 305.0,
    "vertical_rate_fpm": 0.0, "callsign": "DAL1812", "squawk": "2741", "on_ground": False, "source": "adsb",
    "receiver": None,
}
values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-5, 5), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(-5, 5), max_size=1),
    st.text(max_size=10), st.sampled_from(["ac671b", "~ac671b", "AC671B", "000000", "DAL1812", " DAL1 ", "7700",
                                           "adsb", "mlat", "trace", 1738704440.5, 18.5, -88.7, 32000.0, 360.0]),
)
fields = ["icao24", "event_time", "lat", "lon", "input_format", "alt_baro_ft", "alt_geom_ft", "ground_speed_kt",
          "track_deg", "vertical_rate_fpm", "callsign", "squawk", "on_ground", "source", "receiver"]


@settings(max_examples=3000, deadline=None)
@given(st.fixed_dictionaries({}, optional={f: values for f in fields}), st.data())
def test_fast_path_is_never_more_lenient(doc: dict, data: st.DataObject) -> None:
    base = _BASE if data.draw(st.booleans()) else {}
    item = {**base, **doc}
    fast = fast_position(item, NOW)
    try:
        slow = position_from_doc(item, NOW)
    except Invalid:
        slow = None
    if fast is not None:
        assert slow == fast
        assert math.isfinite(fast.lat) and math.isfinite(fast.event_time)


def test_real_positions_round_trip_through_both_batch_versions() -> None:
    positions = _real_positions()
    for i in range(0, len(positions), 2000):
        chunk = positions[i : i + 2000]
        v2 = encode_position_batch(chunk)
        assert orjson.loads(v2)["schema"] == "position-batch.v2"
        for value in (v2, encode_position_batch_v1(chunk)):
            cols, dead = decode_position_batch(value, NOW)
            assert dead == []
            assert cols.to_positions() == chunk


def _v2(items: list[dict], scalar: frozenset[str]) -> bytes:
    """The v2 record of these v1 items; fields in ``scalar`` as one value when all items agree
    (not an array value: one array would read as the column itself)."""
    doc: dict = {"schema": "position-batch.v2"}
    for f in fields:
        col = [item.get(f) for item in items]
        if f in scalar and f not in ("icao24", "event_time", "lat", "lon") and not isinstance(col[0], list) and all(
                orjson.dumps(v) == orjson.dumps(col[0]) for v in col):
            doc[f] = col[0] if col else None
        else:
            doc[f] = col
    return orjson.dumps(doc)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={f: values for f in fields}), min_size=1, max_size=6),
       st.lists(st.booleans(), min_size=6, max_size=6), st.frozensets(st.sampled_from(fields)))
def test_columns_decode_exactly_as_objects(docs: list[dict], use_base: list[bool], scalar: frozenset[str]) -> None:
    items = [{**(_BASE if b else {}), **d} for d, b in zip(docs, use_base, strict=False)]
    v1_cols, v1_dead = decode_position_batch(orjson.dumps({"schema": "position-batch.v1", "positions": items}), NOW)
    v2_cols, v2_dead = decode_position_batch(_v2(items, scalar), NOW)
    assert v2_cols.to_positions() == v1_cols.to_positions()
    assert [d.reason for d in v2_dead] == [d.reason for d in v1_dead]
    assert len(v2_cols) + len(v2_dead) == len(items)  # nothing dropped silently


def test_malformed_column_records_are_one_dead_letter_each() -> None:
    good = orjson.loads(encode_position_batch(_real_positions()[:3]))
    cases = [
        {**good, "lat": good["lat"][:2]},  # arrays of different lengths
        {**good, "icao24": "ac671b"},  # a per-position field given once
        {k: v for k, v in good.items() if k != "lon"},  # a required field missing
        {**good, "callsign": [None, None]},
    ]
    for doc in cases:
        cols, dead = decode_position_batch(orjson.dumps(doc), NOW)
        assert len(cols) == 0
        assert [d.reason for d in dead] == ["wrong_type"], doc
        assert "position-batch.v2" in dead[0].detail


def test_one_bad_row_costs_only_that_row() -> None:
    positions = _real_positions()[:5]
    doc = orjson.loads(encode_position_batch(positions))
    doc["lat"][1] = 95.0
    doc["icao24"][3] = "zz"
    doc["track_deg"] = [360.0 if i == 2 else p.track_deg for i, p in enumerate(positions)]  # the gate folds it
    cols, dead = decode_position_batch(orjson.dumps(doc), NOW)
    assert sorted(d.reason for d in dead) == ["bad_icao", "lat_out_of_range"]
    kept = cols.to_positions()
    assert [p.event_time for p in kept] == [positions[i].event_time for i in (0, 2, 4)]  # record order kept
    assert kept[1].track_deg == 0.0
