"""The positions-topic codec: the fast path never accepts what the general gates refuse."""

from __future__ import annotations

import functools
import gzip
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import fast_position, position_from_doc
from streams.settings import REPO_ROOT
from streams.sources import parse_bytes
from streams.sources.validate import Invalid

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


_BASE = {
    "icao24": "ac671b", "event_time": 1738704440.949, "lat": 18.489152, "lon": -88.693726, "input_format": "trace",
    "alt_baro_ft": 32000.0, "alt_geom_ft": None, "ground_speed_kt": 451.0, "track_deg": 305.0,
    "vertical_rate_fpm": 0.0, "callsign": "DAL1812", "squawk": "2741", "on_ground": False, "source": "adsb",
    "receiver": None,
}
values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
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
