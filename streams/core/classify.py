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
- ``callsign``: well-known military and government callsign prefixes;
- ``watchlist``: the user's watchlist (does not change the category, only marks interest).

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
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
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

# (regex, category, explanation). Prefixes are the ICAO telephony designators or long-standing
# military callsigns; a digit is required after the prefix so airline callsigns that merely start
# with the same letters do not match.
CALLSIGN_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (r"^RCH\d", "military", "RCH… (REACH, US Air Mobility Command)"),
    (r"^CNV\d", "military", "CNV… (CONVOY, US Navy)"),
    (r"^PAT\d", "military", "PAT… (US Army priority air transport)"),
    (r"^SAM\d", "military", "SAM… (US Air Force Special Air Mission)"),
    (r"^SPAR\d", "military", "SPAR… (US Air Force VIP transport)"),
    (r"^NAVY\d", "military", "NAVY… (US Navy)"),
    (r"^ARMY\d", "military", "ARMY… (US Army)"),
    (r"^RRR\d", "military", "RRR… (ASCOT, UK Royal Air Force)"),
    (r"^CFC\d", "military", "CFC… (CANFORCE, Canadian Forces)"),
    (r"^GAF\d", "military", "GAF… (German Air Force)"),
    (r"^NASA\d", "government", "NASA… (NASA research aircraft)"),
)

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

    def __post_init__(self) -> None:
        self._index_blocks()
        self._callsign_res = tuple((re.compile(p), c, d) for p, c, d in CALLSIGN_PATTERNS)

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
        curated = SURVEILLANCE_TYPES.get(type_code) or MILITARY_TYPES.get(type_code)
        if curated:
            return curated[0]
        models = self.designators.get(type_code)
        return models[0] if models else type_code

    def _type_evidence(self, type_code: str) -> Evidence | None:
        if type_code in self._type_ev:
            return self._type_ev[type_code]
        ev: Evidence | None = None
        for table, cat in ((SURVEILLANCE_TYPES, "surveillance"), (MILITARY_TYPES, "military")):
            if type_code in table:
                model, role = table[type_code]
                ev = Evidence("type", f"{type_code} {model} ({role})", cat)
                break
        self._type_ev[type_code] = ev
        return ev

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
            for rx, cat in block.reg_categories:
                if rx.search(registration):
                    suggests = "military" if cat in _REG_MILITARY else "government" if cat in _REG_GOVERNMENT else None
                    if suggests is not None:
                        text = f"{registration} matches {block.country} '{cat}' pattern {rx.pattern}"
                        evidence.append(Evidence("registration", text, suggests))
                    break
        if cs:
            for rx, cat, text in self._callsign_res:
                if rx.search(cs):
                    evidence.append(Evidence("callsign", f"{cs}: pattern {text}", cat))
                    break
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
        blocks.append(_Block(start, end, country, ev, cats))
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
