"""Alert rules users write: match an alert on who, where and what, then set its severity, send it
to a channel, or exclude it.

Users of planefence and plane-alert ask for this; skyfence reads a TOML file named by the
``SKYFENCE_RULES_FILE`` setting. Each ``[[rule]]`` has a ``name``, a ``[rule.match]`` table and
an ``[rule.action]`` table::

    [[rule]]
    name = "tankers off Baja"
    match.category = ["military"]              # military, surveillance, government, civil, unknown
    match.type = ["K35R", "B703", "A33?"]      # ICAO type designator, * and ? wildcards
    match.registration = ["FAM*"]              # wildcards; case-insensitive
    match.callsign = ["PELT*", "REACH*"]
    match.squawk = ["7?00", "1277"]            # 4 octal digits, * and ? wildcards
    match.zone = ["sovereign", "within 50 nm*"]  # the alert's zone, its ring, or "on_station"
    match.distance_nm = [-5, 50]               # to the 12 nm line, negative inside; [min, max]
    match.altitude_ft = [0, 25000]             # [min, max]
    match.pattern = ["racetrack", "orbit"]     # on-station pattern kind (pattern alerts)
    action.severity = "high"                   # info, low, medium, high
    action.channel = "border-desk"             # extra Redis PUBLISH channel <prefix>:channel:<name>
    # action.exclude = true                    # drop the alert

Semantics (documented so that a rule file reads one way):

- every field given must match (AND); a list matches when any of its values does (OR); a rule
  without ``match`` fields matches everything;
- a field the alert does not have (no squawk heard, no altitude, no pattern) does not match;
- rules apply in file order after the built-in ones; every matching rule applies: a later
  severity overrides an earlier one, channels add up, and a matching ``exclude`` drops the alert;
- a rule that matches an alert the alert policy would have held back (a civil aircraft under the
  default "military" policy) lets it out, unless it excludes: that is how a user asks for alerts
  on, say, every FAM callsign or a squawk;
- built in, first: the emergency squawks 7500 (unlawful interference), 7600 (radio failure) and
  7700 (emergency) alert with severity high (ICAO Annex 10 Vol IV 2.1.4.2 and Doc 4444 15.1.3 define
  them); a user rule may exclude them again.

A bad file fails at start with one line naming the rule and the field (:class:`RulesError`).
Pure: :func:`parse_rules` takes the text, :func:`load_rules` reads the file once.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES = ("info", "low", "medium", "high")
CATEGORIES = ("military", "surveillance", "government", "civil", "unknown")
PATTERN_KINDS = ("orbit", "racetrack", "survey", "loiter")
# Emergency squawks (ICAO Annex 10 Vol IV 2.1.4.2; Doc 4444 15.1.3): hijack, radio failure, emergency.
EMERGENCY_SQUAWKS = ("7500", "7600", "7700")
_GLOB_FIELDS = ("type", "registration", "callsign", "squawk", "zone")
_BAND_FIELDS = ("distance_nm", "altitude_ft")
_MATCH_FIELDS = ("category", *_GLOB_FIELDS, *_BAND_FIELDS, "pattern")
_ACTION_FIELDS = ("severity", "channel", "exclude")
_SQUAWK = re.compile(r"^[0-7*?]{1,4}$")
# A channel becomes part of a Redis channel name: keep it to a plain token.
_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NM = 1852.0


class RulesError(ValueError):
    """A rules file that cannot be used; the message is one line naming the rule and the field."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    match: Mapping[str, Any]  # field -> tuple of values (globs, categories, kinds) or (min, max)
    severity: str | None = None
    channel: str | None = None
    exclude: bool = False
    builtin: bool = False

    def matches(self, facts: Mapping[str, Any]) -> bool:
        for f, want in self.match.items():
            have = facts.get(f)
            if have is None:
                return False
            if f in _BAND_FIELDS:
                lo, hi = want
                if not (isinstance(have, (int, float)) and math.isfinite(have) and lo <= have <= hi):
                    return False
            elif f in _GLOB_FIELDS:
                names = have if isinstance(have, tuple) else (have,)  # a zone and its ring: either
                if not any(fnmatch.fnmatchcase(str(h).upper(), str(w).upper()) for h in names for w in want):
                    return False
            elif str(have) not in want:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rules decide for one alert."""

    rules: tuple[str, ...] = ()
    severity: str | None = None
    channels: tuple[str, ...] = ()
    exclude: bool = False

    @property
    def admits(self) -> bool:
        """A matching rule that does not exclude lets the alert out whatever the policy."""
        return bool(self.rules) and not self.exclude


BUILTIN: tuple[Rule, ...] = (
    Rule("emergency squawk", {"squawk": EMERGENCY_SQUAWKS}, severity="high", builtin=True),
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = field(default_factory=lambda: BUILTIN)
    source: str | None = None


def facts_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What rules match on, from an alert.v1 or pattern.v1 document."""
    cls = doc.get("classification") or {}
    pos = doc.get("position") or {}
    dist = doc.get("distance_to_boundary_m")
    alt = pos.get("alt_ft") if isinstance(pos, Mapping) else None
    if alt is None:
        alt = doc.get("alt_ft")
    zones = [z for z in (doc.get("zone"), doc.get("ring")) if z]
    if doc.get("schema") == "pattern.v1":
        zones.append("on_station" if doc.get("transition") == "on_station" else "pattern")
    return {
        "category": cls.get("category"),
        "type": cls.get("type_code"),
        "registration": cls.get("registration"),
        "callsign": doc.get("callsign"),
        "squawk": doc.get("squawk"),
        "zone": tuple(zones) if zones else None,
        "distance_nm": dist / NM if isinstance(dist, (int, float)) else None,
        "altitude_ft": alt,
        "pattern": doc.get("kind") if doc.get("schema") == "pattern.v1" else None,
    }


def judge(rules: RuleSet, doc: Mapping[str, Any]) -> Verdict:
    """The rules' verdict on one alert document."""
    return judge_facts(rules, facts_of(doc))


def judge_facts(rules: RuleSet, facts: Mapping[str, Any]) -> Verdict:
    """The rules' verdict on the facts of one alert (see :func:`facts_of`)."""
    names: list[str] = []
    sev: str | None = None
    channels: list[str] = []
    exclude = False
    for r in rules.rules:
        if not r.matches(facts):
            continue
        names.append(r.name)
        if r.severity is not None:
            sev = r.severity
        if r.channel is not None and r.channel not in channels:
            channels.append(r.channel)
        exclude = exclude or r.exclude
    return Verdict(tuple(names), sev, tuple(channels), exclude)


def apply(verdict: Verdict, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The document as the rules leave it (None: excluded). Adds ``rules`` and ``channels``."""
    if verdict.exclude:
        return None
    doc["rules"] = list(verdict.rules)
    doc["channels"] = list(verdict.channels)
    if verdict.severity is not None:
        doc["severity"] = verdict.severity
    return doc


# ------------------------------------------------------------------ parsing
def _where(i: int, name: str | None) -> str:
    return f"rule #{i + 1}" + (f" {name!r}" if name else "")


def _strings(v: Any, where: str, fld: str) -> tuple[str, ...]:
    vals = [v] if isinstance(v, str) else v
    if not isinstance(vals, list) or not vals or not all(isinstance(x, str) and x.strip() for x in vals):
        raise RulesError(f"{where}: field match.{fld}: expected a string or a list of non-empty strings")
    return tuple(x.strip() for x in vals)


def _rule(i: int, raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{_where(i, None)}: expected a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"{_where(i, None)}: field name: expected a non-empty string")
    where = _where(i, name)
    for k in raw:
        if k not in ("name", "match", "action"):
            raise RulesError(f"{where}: field {k}: unknown (expected name, match, action)")
    match_raw = raw.get("match", {})
    action_raw = raw.get("action", {})
    if not isinstance(match_raw, dict):
        raise RulesError(f"{where}: field match: expected a table")
    if not isinstance(action_raw, dict):
        raise RulesError(f"{where}: field action: expected a table")
    match: dict[str, Any] = {}
    for fld, v in match_raw.items():
        if fld not in _MATCH_FIELDS:
            raise RulesError(f"{where}: field match.{fld}: unknown (expected one of {', '.join(_MATCH_FIELDS)})")
        if fld in _BAND_FIELDS:
            nums = isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            if not nums or len(v) != 2 or v[0] > v[1]:
                raise RulesError(f"{where}: field match.{fld}: expected [min, max] numbers with min <= max")
            match[fld] = (float(v[0]), float(v[1]))
            continue
        vals = _strings(v, where, fld)
        if fld == "category":
            bad = [x for x in vals if x not in CATEGORIES]
            if bad:
                raise RulesError(f"{where}: field match.category: {bad[0]!r} is not one of {', '.join(CATEGORIES)}")
        elif fld == "pattern":
            bad = [x for x in vals if x not in PATTERN_KINDS]
            if bad:
                raise RulesError(f"{where}: field match.pattern: {bad[0]!r} is not one of {', '.join(PATTERN_KINDS)}")
        elif fld == "squawk":
            bad = [x for x in vals if not _SQUAWK.match(x)]
            if bad:
                raise RulesError(f"{where}: field match.squawk: {bad[0]!r} is not 4 octal digits with * or ?")
        match[fld] = vals
    for fld in action_raw:
        if fld not in _ACTION_FIELDS:
            raise RulesError(f"{where}: field action.{fld}: unknown (expected one of {', '.join(_ACTION_FIELDS)})")
    sev = action_raw.get("severity")
    if sev is not None and sev not in SEVERITIES:
        raise RulesError(f"{where}: field action.severity: {sev!r} is not one of {', '.join(SEVERITIES)}")
    ch = action_raw.get("channel")
    if ch is not None and (not isinstance(ch, str) or not _CHANNEL.match(ch)):
        raise RulesError(f"{where}: field action.channel: expected a name of letters, digits, '.', '_' or '-'")
    exc = action_raw.get("exclude", False)
    if not isinstance(exc, bool):
        raise RulesError(f"{where}: field action.exclude: expected true or false")
    if sev is None and ch is None and not exc:
        raise RulesError(f"{where}: field action: give severity, channel or exclude")
    return Rule(name.strip(), match, sev, ch, exc)


def parse_rules(text: str, source: str = "rules") -> RuleSet:
    """Rules from TOML text, after the built-in ones. Raises :class:`RulesError` (one line)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"{source}: not valid TOML: {e}") from None
    for k in doc:
        if k != "rule":
            raise RulesError(f"{source}: top-level key {k!r}: unknown (rules are [[rule]] tables)")
    raw = doc.get("rule", [])
    if not isinstance(raw, list):
        raise RulesError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    try:
        rules = tuple(_rule(i, r) for i, r in enumerate(raw))
    except RulesError as e:
        raise RulesError(f"{source}: {e}") from None
    names = [r.name for r in rules]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise RulesError(f"{source}: rule {dup!r}: field name: used twice")
    return RuleSet(BUILTIN + rules, source)


def load_rules(path: str | None) -> RuleSet:
    """The built-in rules plus those of the file at ``path`` (none: built-in only)."""
    if not path:
        return RuleSet()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"{path}: cannot read the rules file: {e.strerror or e}") from None
    return parse_rules(text, source=str(path))
