"""The positions-topic codec: the fast paths never accept what the general gates refuse, and
the columnar v3 and v2 records decode to exactly what the same positions as v1 objects decode to."""

from __future__ import annotations

import functools
import gzip
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import (
    POSITION_BATCH_MAGIC,
    decode_position_batch,
    encode_position_batch,
    encode_position_batch_v1,
    encode_position_batch_v2,
    fast_position,
    position_from_doc,
    v3_record,
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


def test_real_positions_round_trip_through_every_batch_version() -> None:
    positions = _real_positions()
    for i in range(0, len(positions), 2000):
        chunk = positions[i : i + 2000]
        v3 = encode_position_batch(chunk)
        assert v3.startswith(POSITION_BATCH_MAGIC)
        v2 = encode_position_batch_v2(chunk)
        assert orjson.loads(v2)["schema"] == "position-batch.v2"
        for value in (v3, v2, encode_position_batch_v1(chunk)):
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


_NUMERIC = ["event_time", "lat", "lon", "alt_baro_ft", "alt_geom_ft", "ground_speed_kt", "track_deg",
            "vertical_rate_fpm"]


def _v3(items: list[dict], scalar: frozenset[str]) -> bytes | None:
    """The v3 record of these v1 items, or None when a numeric field holds what raw float64
    cannot (a bool, a string, ...). ±inf and NaN become NaN, as JSON makes them null."""
    rows = []
    for f in _NUMERIC:
        col = [item.get(f) for item in items]
        if not all(v is None or type(v) in (int, float) for v in col):
            return None
        rows.append([float(v) if v is not None and math.isfinite(v) else math.nan for v in col])
    doc = orjson.loads(_v2(items, scalar))
    head = {k: v for k, v in doc.items() if k not in _NUMERIC and k != "schema"}
    return v3_record({"n": len(items), **head}, np.array(rows, dtype=np.float64))


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
    v3 = _v3(items, scalar)
    if v3 is not None:
        v3_cols, v3_dead = decode_position_batch(v3, NOW)
        assert v3_cols.to_positions() == v1_cols.to_positions()
        assert [d.reason for d in v3_dead] == [d.reason for d in v1_dead]


numbers = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1738704440.5, 18.5, -88.7, 32000.0, 360.0, 0.0, -1.0, 90.0, 180.0]))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={f: numbers if f in _NUMERIC else values for f in fields}),
                min_size=1, max_size=6),
       st.lists(st.booleans(), min_size=6, max_size=6), st.frozensets(st.sampled_from(fields)))
def test_v3_decodes_exactly_as_objects(docs: list[dict], use_base: list[bool], scalar: frozenset[str]) -> None:
    """The same for v3 on what raw float64 can hold: every numeric field a number or null."""
    items = [{**(_BASE if b else {}), **d} for d, b in zip(docs, use_base, strict=False)]
    v1_cols, v1_dead = decode_position_batch(orjson.dumps({"schema": "position-batch.v1", "positions": items}), NOW)
    v3 = _v3(items, scalar)
    assert v3 is not None
    v3_cols, v3_dead = decode_position_batch(v3, NOW)
    assert v3_cols.to_positions() == v1_cols.to_positions()
    assert [d.reason for d in v3_dead] == [d.reason for d in v1_dead]
    assert len(v3_cols) + len(v3_dead) == len(items)


def test_malformed_column_records_are_one_dead_letter_each() -> None:
    good = orjson.loads(encode_position_batch_v2(_real_positions()[:3]))
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


def _v3_parts(value: bytes) -> tuple[dict, np.ndarray]:
    end = value.index(b"\n", len(POSITION_BATCH_MAGIC))
    head = orjson.loads(value[len(POSITION_BATCH_MAGIC):end])
    return head, np.frombuffer(value[end + 1:], dtype="<f8").reshape(len(_NUMERIC), head["n"]).copy()


def test_malformed_v3_records_are_one_dead_letter_each() -> None:
    value = encode_position_batch(_real_positions()[:3])
    head, values = _v3_parts(value)
    end = value.index(b"\n", len(POSITION_BATCH_MAGIC))
    cases = {
        "bad_json": [POSITION_BATCH_MAGIC + b"{not json\n" + value[end + 1:]],
        "wrong_type": [
            value[:-8],  # the number block cut short
            value + b"\x00" * 8,  # one number too many
            POSITION_BATCH_MAGIC + orjson.dumps(head),  # no newline after the header
            v3_record({**head, "n": 2}, values[:, :2]),  # arrays of 3 for n = 2
            v3_record({**head, "icao24": "ac671b"}, values),  # a per-position field given once
            v3_record({**head, "n": -1}, values[:, :0]),
            v3_record({**head, "n": "3"}, values),
            POSITION_BATCH_MAGIC + b"[1, 2]\n",  # a header that is not an object
        ],
    }
    for reason, values_ in cases.items():
        for bad in values_:
            cols, dead = decode_position_batch(bad, NOW)
            assert len(cols) == 0
            assert [d.reason for d in dead] == [reason], bad[:80]
            assert "position-batch.v3" in dead[0].detail


def test_one_bad_v3_row_costs_only_that_row() -> None:
    positions = _real_positions()[:6]
    head, values = _v3_parts(encode_position_batch(positions))
    # values[field row, position]
    values[1, 1] = 95.0  # lat of position 1
    values[1, 4] = math.nan  # lat of position 4: null, where null is not allowed
    values[3, 5] = math.inf  # alt_baro_ft of position 5: ±inf is refused, not read as null
    head["icao24"][3] = "zz"
    values[6, 2] = 360.0  # track of position 2: the gate folds it to 0
    cols, dead = decode_position_batch(v3_record(head, values), NOW)
    assert sorted(d.reason for d in dead) == ["bad_icao", "lat_out_of_range", "missing_field", "nan_value"]
    kept = cols.to_positions()
    assert [p.event_time for p in kept] == [positions[i].event_time for i in (0, 2)]  # record order kept
    assert kept[1].track_deg == 0.0


def test_one_bad_row_costs_only_that_row() -> None:
    positions = _real_positions()[:5]
    doc = orjson.loads(encode_position_batch_v2(positions))
    doc["lat"][1] = 95.0
    doc["icao24"][3] = "zz"
    doc["track_deg"] = [360.0 if i == 2 else p.track_deg for i, p in enumerate(positions)]  # the gate folds it
    cols, dead = decode_position_batch(orjson.dumps(doc), NOW)
    assert sorted(d.reason for d in dead) == ["bad_icao", "lat_out_of_range"]
    kept = cols.to_positions()
    assert [p.event_time for p in kept] == [positions[i].event_time for i in (0, 2, 4)]  # record order kept
    assert kept[1].track_deg == 0.0
