"""The keyed stages' stream semantics (streams/core/stages.py): watermarks, idle partitions,
bad records, dirty keys. Records are the ones the engine writes for real flights."""

from __future__ import annotations

import orjson
import pytest

from streams.core.coverage import CoverageStage, Heard
from streams.core.missions import Mission, MissionLedger
from streams.core.stages import COVERAGE, MISSIONS, StagePartition, encode_coverage, encode_mission, encode_watermark

pytestmark = pytest.mark.unit

# DAL1812's first position over Mexico (tests/data/readsb_trace_full_ac671b.json.gz)
HEARD = Heard("ac671b", 1738704440.9, 18.49, -88.69)


def test_watermark_waits_for_every_source_partition_and_skips_idle_ones() -> None:
    sp = StagePartition(COVERAGE, CoverageStage(), sources=3)
    sp.handle([(b"~watermark", encode_watermark({0: 100.0}))])
    assert sp.watermark == float("-inf")  # partitions 1 and 2 have not spoken
    sp.handle([(b"~watermark", encode_watermark({1: 50.0, 2: None}))])
    assert sp.watermark == 50.0  # 2 is empty: it holds nothing back
    sp.handle([(b"~watermark", encode_watermark({1: 40.0, 2: 70.0}))])
    assert sp.watermark == 50.0  # 1 never goes back (still 50); 2 now has data (70)
    sp.handle([(b"~watermark", encode_watermark({2: None}))])
    assert sp.sources[2] == 70.0  # a partition with data never turns idle again


def test_records_are_applied_and_their_keys_marked_dirty() -> None:
    key, value = encode_coverage("1d:18:-89", HEARD)
    sp = StagePartition(COVERAGE, CoverageStage(), sources=1)
    res = sp.handle([(key, value)])
    assert not res.bad and not res.alerts
    assert [k for k, v in sp.take_dirty()] == ["1d:18:-89"]
    assert sp.take_dirty() == []


def test_bad_records_are_reported_not_raised() -> None:
    sp = StagePartition(MISSIONS, MissionLedger(), sources=1)
    m = Mission("ac671b-1738700000.000", "ac671b", "DAL1812", "surveillance", "B739", 1738704440.9, "ring")
    good_key, good = encode_mission(m)
    res = sp.handle([
        (b"military", good),  # a mission under another category's key
        (good_key, b"{not json"),
        (good_key, orjson.dumps({"kind": "mission", "icao24": "ac671b"})),
        (b"~watermark", orjson.dumps({"kind": "watermark", "marks": [1, 2]})),
        (b"~watermark", encode_watermark({5: 1.0})),  # no such source partition
        (good_key, good),
    ])
    assert len(res.bad) == 5 and all(r == "bad_stage_record" for r, _d, _v in res.bad)
    assert sp.stage.categories() == ["surveillance"]


def test_unknown_stage_and_no_sources_are_refused() -> None:
    with pytest.raises(ValueError):
        StagePartition("weather", CoverageStage(), sources=1)
    with pytest.raises(ValueError):
        StagePartition(COVERAGE, CoverageStage(), sources=0)


def test_heard_records_of_a_batch_travel_as_one_record_per_cell() -> None:
    from streams.core.coverage import DarkCandidate
    from streams.core.stages import encode_coverage_batch

    later = Heard("ac671b", HEARD.t + 60.0, 18.6, -88.8)
    cand = DarkCandidate("ac671b", "DAL1812", HEARD.t, HEARD.lat, HEARD.lon, 32000.0, 450.0, 300.0, -1000.0, None)
    recs = encode_coverage_batch([("1d:18:-89", HEARD), ("1d:18:-89", later), ("1d:18:-89", cand)])
    assert [orjson.loads(v)["kind"] for _k, v in recs] == ["heard", "dark_candidate"]
    assert len(orjson.loads(recs[0][1])["items"]) == 2
    one = StagePartition(COVERAGE, CoverageStage(), sources=1)
    many = StagePartition(COVERAGE, CoverageStage(), sources=1)
    one.handle(recs)
    many.handle([encode_coverage("1d:18:-89", r) for r in (HEARD, later, cand)])
    assert one.take_dirty() == many.take_dirty()  # the same state either way


def test_heard_records_are_cut_into_records_of_bounded_size() -> None:
    from streams.core.stages import HEARD_PER_RECORD, encode_coverage_batch

    many = [("1d:18:-89", Heard("ac671b", HEARD.t + 60.0 * k, HEARD.lat, HEARD.lon)) for k in range(1201)]
    recs = encode_coverage_batch(many)
    sizes = [len(orjson.loads(v)["items"]) for _k, v in recs]
    assert sizes == [HEARD_PER_RECORD, HEARD_PER_RECORD, 201] and max(len(v) for _k, v in recs) < 100_000


def test_a_heard_record_with_one_bad_item_is_refused_whole() -> None:
    from streams.core.stages import encode_coverage_batch

    later = Heard("ac671b", HEARD.t + 60.0, 18.6, -88.8)
    ((key, good),) = encode_coverage_batch([("1d:18:-89", HEARD), ("1d:18:-89", later)])
    items = orjson.loads(good)["items"]
    assert items[0] == ["ac671b", HEARD.t, HEARD.lat, HEARD.lon]  # the compact wire form
    sp = StagePartition(COVERAGE, CoverageStage(), sources=1)
    for bad_item in (["ac671b", HEARD.t, 95.0, -88.0], ["ZZ671B", HEARD.t, 18.0, -88.0], ["ac671b", "x", 18.0, -88.0],
                     ["ac671b", HEARD.t, 18.0], {"icao24": "ac671b", "t": HEARD.t, "lat": 18.0}):
        res = sp.handle([(key, orjson.dumps({"kind": "heard", "items": [*items, bad_item]}))])
        assert [r for r, _d, _v in res.bad] == ["bad_stage_record"], bad_item
    assert sp.take_dirty() == []  # nothing of the refused records was applied
    # the object form of an item (a Heard as a dict) is still understood
    res = sp.handle([(key, orjson.dumps({"kind": "heard", "items": [HEARD.to_dict(), items[1]]}))])
    assert not res.bad and [k for k, _v in sp.take_dirty()] == ["1d:18:-89"]
