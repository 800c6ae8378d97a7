"""Parser outputs match schemas/position.v1.json and schemas/deadletter.v1.json."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from streams.messages import Position
from streams.parsers import FORMATS, parse_bytes
from streams.parsers.validate import REASONS
from tests.parsers._constructed import aircraft_json_polls, opensky_states, readsb_jsonl

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def outputs(beast_bytes, sbs_bytes, trace_bytes, trace_doc, boeing_bytes, rs1090_rows):
    avr = b"".join(b"*%s;\n" % r["frame"].encode() for r in rs1090_rows[:3000])
    inputs = {
        "beast": beast_bytes + b"\x00garbage" + beast_bytes[:30],
        "avr": avr + b"*8D4840D6202CC371C32CE0576099;\n*zz;\n",
        "sbs": sbs_bytes + b"MSG,3,,,4B1908,,,,,,,2525,,,93.9,-118.2,,,0,0,0,0\nnonsense\n",
        "trace": trace_bytes,
        "readsb-json": aircraft_json_polls(trace_doc, 1.0, 1)[0],
        "readsb-jsonl": readsb_jsonl(trace_doc, 50) + b'{"hex": "zz"}\n{"now"\n',
        "opensky": opensky_states(trace_doc, 5),
        "traffic-json": boeing_bytes,
    }
    assert set(inputs) == set(FORMATS)
    kw = {"now": lambda: NOW, "receiver": "rx-test", "source": "test"}
    results = {
        fmt: parse_bytes(fmt, data, **kw, **({"reference": (49.0, 2.5)} if fmt == "avr" else {}))
        for fmt, data in inputs.items()
    }
    results["trace-broken"] = parse_bytes("trace", trace_bytes[:5000], **kw)
    results["opensky-broken"] = parse_bytes("opensky", b'{"states": [[1, 2]]}', **kw)
    return results


def test_every_position_matches_the_schema(outputs, schemas) -> None:
    v = jsonschema.Draft202012Validator(schemas["position"])
    seen = set()
    for r in outputs.values():
        for p in r.positions:
            doc = orjson.loads(orjson.dumps(p.to_dict()))  # as it travels on the topic
            v.validate(doc)
            assert Position.from_dict(doc) == p
            seen.add(p.input_format)
    assert seen == set(FORMATS)


def test_every_dead_letter_matches_the_schema(outputs, schemas) -> None:
    v = jsonschema.Draft202012Validator(schemas["deadletter"])
    reasons = set()
    encodings = set()
    for r in outputs.values():
        for d in r.dead_letters:
            doc = orjson.loads(orjson.dumps(d.to_dict()))
            v.validate(doc)
            assert doc["reason"] in REASONS
            reasons.add(doc["reason"])
            encodings.add("raw_text" if "raw_text" in doc else "raw_b64")
    assert encodings == {"raw_text", "raw_b64"}
    assert {
        "resync",
        "truncated",
        "bad_crc",
        "bad_hex",
        "lat_out_of_range",
        "bad_format",
        "bad_icao",
        "bad_field_count",
    } <= reasons


def test_schema_rejects_what_the_parsers_refuse(schemas) -> None:
    v = jsonschema.Draft202012Validator(schemas["position"])
    good = Position(icao24="0d0abc", event_time=NOW, lat=19.4, lon=-99.1, input_format="sbs").to_dict()
    v.validate(good)
    for field, bad in (
        ("icao24", "0D0ABC"),
        ("lat", 91.0),
        ("squawk", "7800"),
        ("source", "radar"),
        ("track_deg", 360.0),
        ("event_time", 1.0),
    ):
        with pytest.raises(jsonschema.ValidationError):
            v.validate({**good, field: bad})
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**good, "extra_field": 1})
