"""The format registry, make_parser's options, and detect_format on real inputs."""

from __future__ import annotations

import pytest

from streams.parsers import DOCUMENT_FORMATS, FORMATS, detect_format, make_parser
from tests.parsers._constructed import aircraft_json_polls, opensky_states, readsb_jsonl

pytestmark = pytest.mark.unit


def test_registry_names() -> None:
    assert set(FORMATS) == {"sbs", "avr", "beast", "readsb-json", "readsb-jsonl", "trace", "opensky", "traffic-json"}
    for name, cls in FORMATS.items():
        assert cls.input_format == name
    assert DOCUMENT_FORMATS < set(FORMATS)


def test_make_parser_options() -> None:
    assert make_parser("beast", reference=(19.43, -99.07)).decoder.reference == (19.43, -99.07)  # type: ignore[attr-defined]
    assert make_parser("sbs", utc_offset_s=3600).utc_offset_s == 3600  # type: ignore[attr-defined]
    for bad in (
        lambda: make_parser("csv"),
        lambda: make_parser("sbs", reference=(1.0, 2.0)),
        lambda: make_parser("trace", utc_offset_s=60),
        lambda: make_parser("sbs", max_message_bytes=4),
    ):
        with pytest.raises(ValueError):
            bad()


def test_detect_format_on_real_inputs(beast_bytes, sbs_bytes, trace_bytes, trace_doc, boeing_bytes, rs1090_rows):
    avr = b"".join(b"*%s;\n" % r["frame"].encode() for r in rs1090_rows[:5])
    assert detect_format(beast_bytes[:64]) == "beast"
    assert detect_format(sbs_bytes[:64]) == "sbs"
    assert detect_format(avr) == "avr"
    assert detect_format(b"@0000000001AB" + rs1090_rows[0]["frame"].encode() + b";\n") == "avr"
    assert detect_format(trace_bytes[:4096]) == "trace"
    assert detect_format(aircraft_json_polls(trace_doc, 1.0, 1)[0][:4096]) == "readsb-json"
    assert detect_format(readsb_jsonl(trace_doc, 3)) == "readsb-jsonl"
    assert detect_format(opensky_states(trace_doc, 1)) == "opensky"
    assert detect_format(boeing_bytes[:4096]) == "traffic-json"
    assert detect_format(b"\x1f\x8b\x08") is None
    assert detect_format(b"hello") is None
