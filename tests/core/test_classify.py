"""Classification with evidence, on the shipped reference tables and a plane-alert CSV."""

from __future__ import annotations

import csv
import gzip
import json
import re

import pytest

from streams.core.classify import ADDRESS_TABLE, AIRCRAFT_DB, Classifier

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


def test_er2_in_civil_range_is_government_research_not_surveillance(classifier):
    # Without a database listing it, NASA's ER-2 looks like any US civil aircraft
    # (the callsign says "government", not "spy plane").
    assert classifier.classify("ab0479").category == "civil"
    assert classifier.classify("ab0479", "NASA809").category == "government"
    # With the plane-alert CSV its type (U2) is known, but NASA flies it for earth science:
    # government research, kept apart from military surveillance (no alert by default).
    clf = Classifier.load(extra_csv=PLANE_ALERT)
    for callsign in ("NASA809", None):
        c = clf.classify("ab0479", callsign)
        assert c.category == "government"
        assert not c.is_military_or_surveillance
        assert c.registration == "N809NA" and c.operator == "NASA" and c.type_code == "U2"
        (tev,) = [e for e in c.evidence if e.kind == "type"]
        assert tev.suggests == "government" and "role research" in tev.detail and "U-2 / ER-2" in tev.detail
        assert ("user_db", "government") in _kinds(c)
        assert not any(e.suggests in ("military", "surveillance") for e in c.evidence)
    assert clf.classify("aaf954").category == "government"  # N806NA, the other ER-2
    # The same airframe flown by the USAF stays a spy plane.
    assert clf.classify("ae0949").category == "surveillance"


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


# ---------------------------------------------------------------- tankers, command posts

def _evidence_of(c, kind):
    return [e for e in c.evidence if e.kind == kind]


@pytest.mark.parametrize(
    ("icao", "registration", "country"),
    [
        ("34118b", "TK.17-1", "Spain"),  # Spanish Air Force 707 tanker (Ejército del Aire TK.17)
        ("738a44", "264", "Israel"),  # Israeli Air Force 707
        ("e400a6", "2401", "Brazil"),  # Brazilian Air Force KC-137
        ("e400a9", "FAB2404", "Brazil"),  # the same fleet, caught by the FAB pattern of the table
        ("4d03d1", "LX-N20199", "Luxembourg"),  # NATO 707 trainer-cargo aircraft
        ("4d03d2", "LX-N20000", "Luxembourg"),
        ("4d03d3", "LX-N19997", "Luxembourg"),
    ],
)
def test_b703_with_state_registration_is_military(classifier, icao, registration, country):
    c = classifier.classify(icao)
    assert c.type_code == "B703" and c.registration == registration and c.country == country
    assert c.category == "military" and c.is_military_or_surveillance
    (rev,) = _evidence_of(c, "registration")
    assert rev.suggests == "military" and registration in rev.detail
    # The type is named as the airframe but does not count on its own.
    (tev,) = _evidence_of(c, "type")
    assert tev.suggests is None and "dual-use" in tev.detail


def test_nato_registrations_need_five_digits(classifier):
    rev = _evidence_of(classifier.classify("4d03d1"), "registration")[0]
    assert "NATO" in rev.detail and "LX-N" in rev.detail
    # Luxembourg civil marks are letters: a civil LX- aircraft is not NATO.
    clf = Classifier.load(aircraft_db=None)
    clf.load_plane_alert_text("$ICAO,$Registration,$ICAO Type\n4D0001,LX-NAB,B703\n")
    assert clf.classify("4d0001").category == "civil"


def test_civil_707_without_state_evidence_stays_civil(classifier):
    # B703 rows of the bundled database in the US civil range, no registration: a civil 707
    # is possible, so the type alone is no evidence.
    for icao in ("a96fb1", "ac1dc6"):
        c = classifier.classify(icao, "N707JT")
        assert c.type_code == "B703" and c.category == "civil"
        assert all(e.suggests is None for e in c.evidence)
    # A 707 on a civil registration of its state is civil too.
    clf = Classifier.load(aircraft_db=None)
    clf.load_plane_alert_text("$ICAO,$Registration,$ICAO Type\n340001,EC-ABC,B703\nE40001,PP-VJB,B703\n")
    assert clf.classify("340001").category == "civil"
    assert clf.classify("e40001").category == "civil"


@pytest.mark.parametrize(
    ("icao", "registration", "type_code", "variant"),
    [
        ("adfeb3", "73-1676", "B742", "E-4B"),  # E-4B Nightwatch, below AE0000
        ("adfdf8", "82-8000", "B742", "VC-25A"),
        ("adfeac", "83-0081", "DC10", "KC-10"),
        ("ae0216", "83-0079", "DC10", "KC-10"),  # also in the AE block
        ("7cf866", "A39-003", "A332", "KC-30A"),  # RAAF KC-30A
        ("87cc0a", "07-3604", "B762", "KC-767"),  # JASDF KC-767
        ("ae148a", "92-3289", "B703", "E-8C"),  # E-8C Joint STARS
    ],
)
def test_tankers_and_command_posts_on_serials_are_military(classifier, icao, registration, type_code, variant):
    c = classifier.classify(icao)
    assert (c.registration, c.type_code) == (registration, type_code)
    assert c.category == "military"
    assert any(variant in e.detail for e in c.evidence)


def test_kc135_and_e6_by_type(classifier):
    assert classifier.classify("ae0422").category == "military"  # 59-1499 K35E
    c = classifier.classify("ae040f")  # 162784 E6
    assert c.category == "surveillance" and "TACAMO" in _evidence_of(c, "type")[0].detail


# ---------------------------------------------------------------- non-ICAO type codes

def test_type_aliases_point_at_designators_of_the_table(classifier):
    from streams.core.classify import MILITARY_TYPES, SURVEILLANCE_TYPES, TYPE_ALIASES

    for alias, (icao, _model, _role, category) in TYPE_ALIASES.items():
        assert alias not in classifier.designators, f"{alias} is itself an ICAO designator"
        # E8 is the feed code the curated surveillance table keys (ICAO files the E-8 as B703).
        assert icao in classifier.designators or icao == "E8", alias
        assert category in ("military", "surveillance", "government")
        if icao in SURVEILLANCE_TYPES and category != "government":
            assert category == "surveillance", alias
        if icao in MILITARY_TYPES:
            assert category == "military", alias
    # The designator table names the mapped aircraft.
    assert any("MQ-9" in m for m in classifier.designators["Q9"])
    assert any("RQ-4" in m for m in classifier.designators["Q4"])
    assert any("EP-3" in m for m in classifier.designators["P3"])
    assert any("KC-46" in m for m in classifier.designators["B762"])
    assert any("KC-10" in m for m in classifier.designators["DC10"])
    assert any("MRTT" in m for m in classifier.designators["A332"])


@pytest.mark.parametrize(
    ("type_code", "category", "icao"),
    [
        ("MQ9", "surveillance", "Q9"),
        ("MQ-9", "surveillance", "Q9"),
        ("RQ4", "surveillance", "Q4"),
        ("RQ-4B", "surveillance", "Q4"),
        ("EP3", "surveillance", "P3"),
        ("KC135R", "military", "K35R"),
        ("KC-46A", "military", "B762"),
        ("KC10", "military", "DC10"),
        ("C-17A", "military", "C17"),
    ],
)
def test_non_icao_type_codes_give_evidence(type_code, category, icao):
    clf = Classifier.load(aircraft_db=None)
    clf.load_plane_alert_text(f"$ICAO,$Registration,$ICAO Type\nA12345,,{type_code}\n")
    c = clf.classify("a12345")
    assert c.category == category
    (tev,) = _evidence_of(c, "type")
    assert f"ICAO {icao}" in tev.detail and "non-ICAO" in tev.detail
    assert c.type_description and c.type_description != c.type_code


# ---------------------------------------------------------------- callsigns

# Real US military callsigns (29 callsigns over 26 prefixes), each flown on an address of the
# US civil range (a12345 is in the N-number range and in no database): only the callsign can tell.
US_MILITARY_CALLSIGNS = (
    "RCH871", "RCH4121", "REACH11", "CNV4120", "PAT101", "SAM44", "SAM28000", "SPAR19", "VENUS85",
    "EVAC21", "NAVY5", "ARMY1", "MARINE1", "CG2131", "C6012", "SNTRY60", "FORTE11", "JAKE11",
    "HOMER21", "TEAL71", "TEAL75", "KING21", "PELT41", "ETHYL71", "QUID51", "TOPCAT1", "IRON51",
    "DOOM11", "KING12",
)


def test_us_military_callsigns_on_civil_addresses_are_recognised(classifier):
    assert len(US_MILITARY_CALLSIGNS) == 29
    missed = [cs for cs in US_MILITARY_CALLSIGNS if not classifier.classify("a12345", cs).is_military_or_surveillance]
    assert missed == []
    c = classifier.classify("a12345", "SNTRY60")
    assert c.category == "surveillance" and "E-3" in _evidence_of(c, "callsign")[0].detail
    c = classifier.classify("a12345", "TEAL71")
    assert c.category == "military" and "Weather Reconnaissance" in _evidence_of(c, "callsign")[0].detail


@pytest.mark.parametrize(
    "callsign",
    [
        "AMX400",  # Aeroméxico, not the Mexican Navy (ANX)
        "ANZ1",  # Air New Zealand
        "KING12A",  # digits must end the callsign
        "KINGAIR1",
        "SAMBA1",
        "CG123",  # Coast Guard tail numbers have 4 digits
        "C12345",
        "NAVYSEAL",
        "IRO123",
        "TEALX",
        "PATRIOT1",
        "NOAAX1",
        "REACHER1",
    ],
)
def test_callsign_rule_is_strict(classifier, callsign):
    c = classifier.classify("a12345", callsign)
    assert c.category == "civil", callsign
    assert not _evidence_of(c, "callsign")


def test_nato_and_canadian_callsigns(classifier):
    for cs in ("CFC4001", "RRR6455", "GAF685", "CTM1015", "IAM3101", "BAF623", "ASY360"):
        assert classifier.classify("a12345", cs).category == "military", cs
    assert classifier.classify("a12345", "NATO01").category == "surveillance"


# ---------------------------------------------------------------- Mexico

def test_mexican_military_callsigns_are_military(classifier):
    for cs in ("FAM3527", "FAM01", "ANX1201", "ANX2701"):
        c = classifier.classify("0d0abc", cs)  # 0D block (Mexico), not in the database
        assert c.country == "Mexico"
        assert c.category == "military" and c.is_military_or_surveillance, cs
        (cev,) = _evidence_of(c, "callsign")
        assert "Fuerza Aérea Mexicana" in cev.detail or "Armada de México" in cev.detail


def test_mexican_state_aircraft_with_military_callsign_is_military(classifier):
    # XC-UJM (B752, Mexican state aircraft) stays government unless other evidence says military.
    assert classifier.classify("0d001b", "AMX400").category == "government"
    c = classifier.classify("0d001b", "FAM1")
    assert c.category == "military"
    assert ("registration", "government") in _kinds(c) and ("callsign", "military") in _kinds(c)


def test_mexican_military_registrations():
    clf = Classifier.load(aircraft_db=None)
    text = (
        "$ICAO,$Registration,$ICAO Type\n"
        "0D7001,FAM-3527,C30J\n0D7002,AMHT-224,MI8\n0D7003,3527,C130\n0D7004,XC-LMF,GLF4\n"
    )
    assert clf.load_plane_alert_text(text) == 4
    c = clf.classify("0d7001")
    assert c.category == "military" and ("registration", "military") in _kinds(c)
    c = clf.classify("0d7002")
    assert c.category == "military" and "Armada de México" in _evidence_of(c, "registration")[0].detail
    assert clf.classify("0d7003").category == "military"  # by type (C-130) only
    assert clf.classify("0d7004").category == "government"


# ---------------------------------------------------------------- government research

def test_noaa_hurricane_hunters_are_government_research():
    header = PLANE_ALERT.read_text().splitlines()[0]
    rows = [
        f"{_n_number_to_icao('N42RF').upper()},N42RF,NOAA,Lockheed WP-3D Orion,P3,Gov,Hurricane Hunter,,,Government,",
        f"{_n_number_to_icao('N43RF').upper()},N43RF,NOAA,Lockheed WP-3D Orion,P3,Gov,Hurricane Hunter,,,Government,",
        f"{_n_number_to_icao('N49RF').upper()},N49RF,NOAA,Gulfstream G-IV,GLF4,Gov,Hurricane Hunter,,,Government,",
        # US Customs and Border Protection P-3 AEW: government too, but surveillance, not research.
        "A12346,N145CS,US Customs and Border Protection,Lockheed P-3 AEW&C,P3,Gov,Border Patrol,,,Government,",
    ]
    clf = Classifier.load(aircraft_db=None)
    assert clf.load_plane_alert_text("\n".join([header, *rows])) == 4
    for reg in ("N42RF", "N43RF", "N49RF"):
        c = clf.classify(_n_number_to_icao(reg), f"NOAA{reg[1:3]}")
        assert c.category == "government" and not c.is_military_or_surveillance, reg
    tev = _evidence_of(clf.classify(_n_number_to_icao("N42RF")), "type")[0]
    assert tev.suggests == "government" and "role research" in tev.detail
    assert clf.classify("a12346").category == "surveillance"
    # A NOAA callsign alone is government, with the research role in the evidence.
    c = Classifier.load().classify("a12345", "NOAA43")
    assert c.category == "government" and "research" in _evidence_of(c, "callsign")[0].detail


def test_research_registration_series_needs_no_military_evidence():
    clf = Classifier.load(aircraft_db=None)
    clf.load_plane_alert_text("$ICAO,$Registration,$ICAO Type\nA12347,N870NA,MQ-9\nAE0999,N871NA,Q4\n")
    c = clf.classify("a12347")  # NASA's Ikhana, an MQ-9 in the civil range
    assert c.category == "government" and "NASA" in _evidence_of(c, "type")[0].detail
    assert clf.classify("ae0999").category == "surveillance"  # US military block: not research


# ---------------------------------------------------------------- civil false alerts

# Airliner and business-jet designators (ICAO Doc 8643): A320 family, 737, 777, 787, E-jets,
# CRJ, Citation, Learjet, Gulfstream, Falcon, Challenger/Global.
_CIVIL_TYPES = frozenset(
    "A318 A319 A320 A321 A19N A20N A21N B735 B736 B737 B738 B739 B37M B38M B39M B772 B773 B77L B77W B788 B789 "
    "B78X E170 E75L E75S E190 E195 E290 E295 CRJ1 CRJ2 CRJ7 CRJ9 CRJX C500 C501 C510 C525 C25A C25B C25C C550 "
    "C560 C56X C650 C680 C68A C700 C750 LJ35 LJ40 LJ45 LJ60 LJ75 GLF2 GLF3 GLF4 GLF5 GLF6 G150 G280 GALX GLEX "
    "FA10 FA20 FA50 FA7X FA8X F2TH F900 CL30 CL35 CL60".split()
)
_AIRLINE_CALLSIGNS = ("AAL123", "DAL45", "UAL9", "AMX400", "VIV1200", "VOI800", "SWA2", "AMX2", None)


def test_civil_airliners_and_business_jets_never_alert(classifier):
    """Every civil-registered airliner/business-jet row of the bundled database, with airline
    callsigns, stays out of military/surveillance. Rows excluded (they ARE state aircraft): the
    US-military AE0000-AFFFFF convention block, and registrations that are no state's civil mark
    (state serials such as 97-0400, MM62243, 15+02)."""
    doc = json.loads(ADDRESS_TABLE.read_text())
    civil = [re.compile(r["pattern"]) for r in doc["registers"] if "pattern" in r]
    civil += [re.compile(c["pattern"]) for r in doc["registers"] for c in r.get("categories", ()) if "country" in c]
    with gzip.open(AIRCRAFT_DB, "rt", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["type"].strip().upper() in _CIVIL_TYPES]
    checked = 0
    for r in rows:
        icao, reg = r["icao24"].lower(), r["registration"].strip()
        if 0xAE0000 <= int(icao, 16) <= 0xAFFFFF or (reg and not any(p.search(reg) for p in civil)):
            continue
        for cs in _AIRLINE_CALLSIGNS:
            c = classifier.classify(icao, cs, cache=False)
            assert not c.is_military_or_surveillance, (icao, reg, r["type"], cs, c.evidence)
        checked += 1
    assert checked > 10_000, checked
