"""streams.core.rules: parsing (one-line errors naming the rule and the field) and matching."""

from __future__ import annotations

import pytest

from streams.core.rules import RulesError, judge, parse_rules

pytestmark = pytest.mark.unit

GOOD = '''
[[rule]]
name = "a"
match.callsign = "FAM*"
action.severity = "high"
'''


@pytest.mark.parametrize(("text", "rule", "fld"), [
    ('[[rule]]\nname = "x"\nmatch.colour = ["red"]\naction.severity = "low"\n', "'x'", "match.colour"),
    ('[[rule]]\nname = "x"\nmatch.category = ["navy"]\naction.severity = "low"\n', "'x'", "match.category"),
    ('[[rule]]\nname = "x"\nmatch.squawk = ["7800"]\naction.severity = "low"\n', "'x'", "match.squawk"),
    ('[[rule]]\nname = "x"\nmatch.distance_nm = [5]\naction.severity = "low"\n', "'x'", "match.distance_nm"),
    ('[[rule]]\nname = "x"\nmatch.pattern = ["figure8"]\naction.severity = "low"\n', "'x'", "match.pattern"),
    ('[[rule]]\nname = "x"\naction.severity = "urgent"\n', "'x'", "action.severity"),
    ('[[rule]]\nname = "x"\naction.channel = "a b"\n', "'x'", "action.channel"),
    ('[[rule]]\nname = "x"\naction.exclude = "yes"\n', "'x'", "action.exclude"),
    ('[[rule]]\nname = "x"\nmatch.callsign = ["A*"]\n', "'x'", "action"),
    ('[[rule]]\naction.severity = "low"\n', "rule #1", "name"),
    (GOOD + '\n[[rule]]\nname = "a"\naction.severity = "low"\n', "'a'", "name"),
])
def test_bad_rules_name_the_rule_and_the_field(text: str, rule: str, fld: str) -> None:
    with pytest.raises(RulesError) as e:
        parse_rules(text, source="r.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("r.toml: ") and rule in msg and f"field {fld}" in msg, msg


def test_not_toml_is_one_line() -> None:
    with pytest.raises(RulesError) as e:
        parse_rules("[[rule]\nname=", source="r.toml")
    assert "\n" not in str(e.value) and "not valid TOML" in str(e.value)


def _doc(**kw: object) -> dict[str, object]:
    d: dict[str, object] = {"schema": "alert.v1", "callsign": "FAM1234", "squawk": None, "zone": "sovereign",
                            "ring": "within 12 nm (22 km) beyond the sovereign limit",
                            "distance_to_boundary_m": 5 * 1852.0, "position": {"alt_ft": 9000.0},
                            "classification": {"category": "military", "type_code": "C130", "registration": None}}
    d.update(kw)
    return d


def test_matching_semantics() -> None:
    rs = parse_rules(GOOD + '''
[[rule]]
name = "near and low"
match.distance_nm = [-1000, 12]
match.altitude_ft = [0, 10000]
match.zone = ["within 12 nm*"]
action.channel = "desk"

[[rule]]
name = "later severity wins"
match.type = ["C1?0"]
action.severity = "medium"

[[rule]]
name = "registration needed"
match.registration = ["XC-*"]
action.exclude = true
''')
    v = judge(rs, _doc())
    assert v.rules == ("a", "near and low", "later severity wins") and v.severity == "medium"
    assert v.channels == ("desk",) and not v.exclude and v.admits
    # a field the alert lacks does not match (no registration here), a band is inclusive
    assert "registration needed" not in v.rules
    assert judge(rs, _doc(position={"alt_ft": 10000.0})).rules[1] == "near and low"
    assert "near and low" not in judge(rs, _doc(position={"alt_ft": None})).rules
    assert judge(rs, _doc(callsign="AMX400", classification={"category": "civil"})).rules == ("near and low",)
    assert judge(rs, _doc(classification={"category": "government", "registration": "XC-UJM"})).exclude
    # emergency squawks, built in, first
    v = judge(rs, _doc(callsign=None, squawk="7700", classification={"category": "civil"}))
    assert v.rules[0] == "emergency squawk" and v.severity == "high" and v.admits
