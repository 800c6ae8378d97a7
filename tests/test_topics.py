"""Every topic is declared once with a key, a partition count and a schema that exists."""

from __future__ import annotations

import json
import time

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from streams.codec import (
    decode_position_batch,
    encode_position_batch,
    encode_position_batch_v1,
    encode_position_batch_v2,
    raw_record,
)
from streams.ingest import record_line
from streams.messages import Position
from streams.settings import Settings
from streams.topics import ALL_TOPICS, SCHEMA_DIR, murmur2, partition_for

pytestmark = pytest.mark.unit


def _registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMA_DIR / f"{name}.json").read_text()), registry=_registry())


def test_every_topic_has_schema_key_and_partitions() -> None:
    s = Settings(partitions=6)
    names = set()
    for spec in ALL_TOPICS:
        assert spec.schema_path.is_file(), spec.schema_path
        Draft202012Validator.check_schema(json.loads(spec.schema_path.read_text()))
        assert spec.key
        assert spec.partitions(s) == 6
        names.add(spec.name(s))
        if spec.per_aircraft:
            assert "icao24" in spec.key
    assert len(names) == len(ALL_TOPICS)


def test_murmur2_matches_kafka_reference_values() -> None:
    # values from the Java client's Utils.murmur2 test vectors
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == (-1486304829) & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == (-58897971) & 0xFFFFFFFF
    assert partition_for("ac671b", 8) == (murmur2(b"ac671b") & 0x7FFFFFFF) % 8


def test_position_batch_round_trip_validates_and_dead_letters_bad_items() -> None:
    now = time.time()
    good = Position("ac671b", 1738704440.9, 18.49, -88.69, "trace", alt_baro_ft=32000.0, callsign="DAL1812")
    # v3, what skyfence writes: its header line validates, its number block is 8 float64 columns
    value3 = encode_position_batch([good, good])
    magic, head, numbers = value3.split(b"\n", 2)
    assert magic == b"position-batch.v3"
    _validator("position-batch.v3").validate(orjson.loads(head))
    assert len(numbers) == 8 * 8 * 2
    with pytest.raises(Exception, match="'n' is a required property"):
        _validator("position-batch.v3").validate({"icao24": ["ac671b"]})
    # v2, all JSON
    value = encode_position_batch_v2([good, good])
    _validator("position-batch.v2").validate(orjson.loads(value))
    doc = orjson.loads(value)
    doc["lat"].insert(1, 123.0)
    doc["icao24"].insert(1, "ac671b")
    doc["event_time"].insert(1, good.event_time)
    doc["lon"].insert(1, good.lon)
    positions, dead = decode_position_batch(orjson.dumps(doc), now)
    assert positions.icao24.tolist() == ["ac671b", "ac671b"]
    assert [d.reason for d in dead] == ["lat_out_of_range"]
    with pytest.raises(Exception, match="123"):
        _validator("position-batch.v2").validate(doc)
    # v1, the row format other producers may write, validates and decodes too
    value1 = encode_position_batch_v1([good, good])
    _validator("position-batch.v1").validate(orjson.loads(value1))
    doc1 = orjson.loads(value1)
    doc1["positions"].insert(1, {**doc1["positions"][0], "lat": 123.0})
    doc1["positions"].append("not an object")
    positions1, dead1 = decode_position_batch(orjson.dumps(doc1), now)
    assert positions1.to_positions() == [good, good]
    assert [d.reason for d in dead1] == ["lat_out_of_range", "wrong_type"]
    _, dead2 = decode_position_batch(b"\x00garbage", now)
    assert [d.reason for d in dead2] == ["bad_json"]


def test_raw_records_validate() -> None:
    doc = orjson.loads(raw_record(b"\x1a2\x00\x01", fmt="beast", receiver="rx1", source="tcp://x:30005",
                                  received_at=1738704440.0))
    _validator("raw.v1").validate(doc)


def test_record_lines_validate() -> None:
    v = _validator("record.v1")
    v.validate(orjson.loads(record_line("t.positions", 3, 7, 1738704440000, b"ac671b", b'{"a":1}')))
    v.validate(orjson.loads(record_line("t.raw", 0, 0, 1738704440000, None, b"\xff\x1a\x00")))


def test_record_files_of_the_positions_topic_read_back_every_batch_version() -> None:
    """`skyfence record` keeps a v3 record's binary numbers (value_b64 when not UTF-8) and
    `skyfence ingest` of the file gives back the positions; a cut number block is one dead letter."""
    from streams.ingest import _RecordDecoder

    good = [Position("ac671b", 1738704440.9 + i, 18.49 + i / 100, -88.69, "trace", alt_baro_ft=32000.0,
                     callsign="DAL1812") for i in range(3)]
    v3 = encode_position_batch(good)
    lines = [record_line("t.positions", 0, i, 1738704440000, b"ac671b", value)
             for i, value in enumerate([v3, encode_position_batch_v2(good), encode_position_batch_v1(good), v3[:-8]])]
    assert "value_b64" in orjson.loads(lines[0])  # raw float64 is not UTF-8 here
    out = _RecordDecoder(source="file", max_message_bytes=None).feed(b"".join(lines))
    assert out.positions == good * 3
    assert [(d.reason, d.input_format) for d in out.dead_letters] == [("wrong_type", "position-batch")]
    assert "bytes of numbers" in out.dead_letters[0].detail


def test_the_package_copy_of_the_schemas_is_the_top_level_one() -> None:
    """schemas/ at the repository's top is the source of truth; the package reads its copy
    (streams/schemas, a package resource). Refresh with: cp schemas/*.json streams/schemas/"""
    from tests.paths import REPO_ROOT

    top = {p.name: p.read_bytes() for p in (REPO_ROOT / "schemas").glob("*.json")}
    pkg = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*.json")}
    assert top and pkg == top, "streams/schemas differs from schemas/: cp schemas/*.json streams/schemas/"
