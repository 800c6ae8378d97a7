"""Classification with evidence, on the shipped reference tables and a plane-alert CSV."""

from __future__ import annotations

import gzip
import json

import pytest

from streams.core.classify import ADDRESS_TABLE, Classifier

from .conftest import CORE_DATA, DATA

pytestmark = pytest.mark.unit

PLANE_ALERT = CORE_DATA / "plane_alert_sample.csv"


def _kinds(c):
    return {(e.kind, e.suggests) for e in c.evidence}


def test_rc135_in_us_military_block_is_surveillance_by_type_and_block(classifier):
    c = classifier.classify("ae01c4")  # 64-14842, R135, from the dump1090 database
    assert c.category == "surveillance"
    assert c.is_military_or_surveillance
    assert c.type_code == "R135" and c.registration == "64-14842"
    assert c.country == "United States"
    assert ("address_block", "military") in _kinds(c)
    assert ("type", "surveillance") in _kinds(c)
    us_mil = next(e for e in c.evidence if e.suggests == "military")
    assert "AE0000–AFFFFF" in us_mil.detail and "community convention" in us_mil.detail
    # Two independent supporting pieces beat either alone.
    alone = Classifier(classifier.blocks, classifier.designators, {}).classify("ae01c4")
    assert alone.category == "military" and c.confidence > alone.confidence


def test_p8_evidence_names_the_aircraft(classifier):
    c = classifier.classify("ae222d")
    assert c.category == "surveillance"
    (tev,) = [e for e in c.evidence if e.kind == "type"]
    assert tev.detail.startswith("P8 Boeing P-8 Poseidon")
    assert c.to_dict()["evidence"][0].keys() == {"kind", "detail", "suggests"}


def test_tanker_is_military_not_surveillance(classifier):
    c = classifier.classify("ae0137")  # 63-7978 K35R
    assert c.category == "military"
    assert ("type", "military") in _kinds(c)


def test_civil_type_in_military_block_is_military_by_block_only(classifier):
    c = classifier.classify("ae010d")  # 97-0400 GLF5 (a C-37A)
    assert c.category == "military"
    assert {e.kind for e in c.evidence if e.suggests} == {"address_block"}


def test_mexican_state_registration_is_government(classifier):
    c = classifier.classify("0d001b")  # XC-UJM
    assert c.country == "Mexico"
    assert c.category == "government"
    (rev,) = [e for e in c.evidence if e.kind == "registration"]
    assert "XC-UJM" in rev.detail and "State owned" in rev.detail
    assert not c.is_military_or_surveillance


def test_nato_awacs_in_luxembourg_block(classifier):
    c = classifier.classify("4d03c0")  # LX-N90442 E3TF
    assert c.category == "surveillance"
    assert ("registration", "military") in _kinds(c)


def test_airliner_is_civil_with_low_confidence(classifier):
    c = classifier.classify("ac671b", "DAL1812")
    assert c.category == "civil"
    assert c.country == "United States"
    assert not c.is_military_or_surveillance
    assert c.confidence <= 0.5
    assert all(e.suggests is None for e in c.evidence)


def test_callsign_pattern_alone_gives_weak_military(classifier):
    c = classifier.classify("ac671b", "RCH871")
    assert c.category == "military"
    (cev,) = [e for e in c.evidence if e.kind == "callsign"]
    assert "RCH" in cev.detail and "Air Mobility Command" in cev.detail
    assert c.confidence < classifier.classify("ae0137").confidence
    # An airline callsign that merely starts with the same letters does not match.
    assert classifier.classify("ac671b", "SAMBA1").category == "civil"


def test_unallocated_and_invalid_addresses(classifier):
    assert classifier.classify("zz0000").category == "unknown"
    c = classifier.classify("f00001")
    assert c.country == "ICAO (temporary)"


def test_address_blocks_resolve_to_the_smallest_containing_block(classifier):
    # Every allocated block's first and last address resolve to that block, unless a smaller
    # block nested inside it owns the address (e.g. Taiwan's special-use range).
    doc = json.loads(ADDRESS_TABLE.read_text())
    blocks = [(int(r["start"], 16), int(r["end"], 16), r["country"]) for r in doc["registers"] if "start" in r]
    for start, end, _country in blocks:
        for addr in (start, end):
            containing = [b for b in blocks if b[0] <= addr <= b[1]]
            smallest = min(containing, key=lambda b: b[1] - b[0])
            assert classifier.block_of(addr).country == smallest[2]
    assert classifier.block_of(0x0D0000).country == "Mexico"
    assert classifier.block_of(0x0D7FFF).country == "Mexico"
    assert classifier.block_of(0x0D8000).country == "Venezuela"


def test_cache_returns_the_same_object(classifier):
    assert classifier.classify("ae01c4") is classifier.classify("AE01C4 ")


def _n_number_to_icao(reg: str) -> str:
    """FAA mapping of US registrations N1..N99999ZZ to addresses A00001..ADF7C7."""
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, O
    suffix = 1 + len(letters) * (1 + len(letters))
    b4 = 1 + len(letters) + 10
    b3 = 10 * b4 + suffix
    b2 = 10 * b3 + suffix
    b1 = 10 * b2 + suffix
    n = reg.upper()[1:]
    out = 0xA00001 + (int(n[0]) - 1) * b1
    for i, size in zip(range(1, len(n)), (b2, b3, b4, None), strict=False):
        c = n[i]
        if c in letters:
            if i == 4:
                return f"{out + 1 + letters.index(c):06x}"
            out += (len(letters) + 1) * letters.index(c) + 1
            if i + 1 < len(n):
                out += letters.index(n[i + 1]) + 1
            return f"{out:06x}"
        if i == 4:
            return f"{out + 1 + len(letters) + int(c):06x}"
        out += int(c) * size + suffix
    return f"{out:06x}"


def test_n_number_addresses():
    trace = json.loads(gzip.decompress((DATA / "readsb_trace_full_ac671b.json.gz").read_bytes()))
    assert _n_number_to_icao(trace["r"]) == trace["icao"] == "ac671b"  # N899DN, a real pair
    # The ER-2 rows of the sample CSV use the same mapping.
    rows = {r.split(",")[1]: r.split(",")[0].lower() for r in PLANE_ALERT.read_text().splitlines()[1:]}
    assert _n_number_to_icao("N806NA") == rows["N806NA"]
    assert _n_number_to_icao("N809NA") == rows["N809NA"]


def test_er2_in_civil_range_is_surveillance_only_with_a_type_database(classifier):
    # Without a database listing it, NASA's ER-2 looks like any US civil aircraft
    # (the callsign says "government", not "spy plane").
    assert classifier.classify("ab0479").category == "civil"
    assert classifier.classify("ab0479", "NASA809").category == "government"
    clf = Classifier.load(extra_csv=PLANE_ALERT)
    c = clf.classify("ab0479", "NASA809")
    assert c.category == "surveillance"
    assert c.is_military_or_surveillance
    assert c.registration == "N809NA" and c.operator == "NASA" and c.type_code == "U2"
    kinds = _kinds(c)
    assert ("type", "surveillance") in kinds
    assert ("user_db", "government") in kinds
    assert not any(e.suggests == "military" and e.kind == "address_block" for e in c.evidence)


def test_plane_alert_csv_loads_and_overrides(classifier):
    clf = Classifier.load(extra_csv=PLANE_ALERT)
    assert not clf.load_errors
    assert len(clf.aircraft) == len(classifier.aircraft) + 2  # the two ER-2s are new
    c = clf.classify("ae222d")
    user = [e for e in c.evidence if e.kind == "user_db"]
    assert user and "United States Navy" in user[0].detail and user[0].suggests == "military"
    assert c.operator == "United States Navy"


def test_plane_alert_bad_rows_are_reported_not_dropped(classifier):
    clf = Classifier.load(aircraft_db=None)
    header = PLANE_ALERT.read_text().splitlines()[0]
    n = clf.load_plane_alert_text(f"{header}\nnot-hex,X,,,,Mil\nAE01C4,64-14842,USAF,RC-135,R135,Navy?\n")
    assert n == 1
    assert any(":2: bad ICAO address" in e for e in clf.load_errors)
    assert any(":3: unknown CMPG" in e for e in clf.load_errors)
    with pytest.raises(ValueError, match="ICAO"):
        clf.load_plane_alert_text("Registration,Operator\nN1,x\n")


def test_watchlist_marks_interest_without_changing_category():
    clf = Classifier.load(watchlist=["AC671B"])
    c = clf.classify("ac671b")
    assert c.watchlisted and c.category == "civil"
    assert ("watchlist", None) in _kinds(c)


def test_uncached_classification_equals_cached_and_keeps_the_given_strings(classifier):
    icao, callsign = "ae01c4", "RCH123"
    cached = classifier.classify(icao, callsign)
    fresh = classifier.classify(icao, callsign, cache=False)
    assert fresh == cached and fresh is not cached
    # Already normalised input is kept as the very object given (one string per aircraft,
    # not one more copy in every classification); other input is normalised.
    assert fresh.icao24 is icao
    assert classifier.classify(" AE01C4 ", cache=False).icao24 == "ae01c4"
