"""Rules, presets, JSON round-trips, roll hash, and the resident/household rolls."""

import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from rules import (
    Household,
    InvalidRoll,
    InvalidRule,
    Resident,
    Result,
    RollEntry,
    Rule,
    Vote,
    build_household_roll,
    build_resident_roll,
    canonical_roll_json,
    council,
    generic,
    make_rule,
    owners_major,
    owners_ordinary,
    residents_meeting,
    roll_hash,
    tally,
)

# --- rules and presets -------------------------------------------------------------------------


def test_owners_presets_state_every_threshold_and_comparison():
    ordinary = owners_ordinary().params
    assert (ordinary["quorum_area"], ordinary["quorum_area_cmp"]) == ("2/3", "gte")
    assert (ordinary["quorum_heads"], ordinary["quorum_heads_cmp"]) == ("2/3", "gte")
    assert (ordinary["approval_area"], ordinary["approval_area_cmp"]) == ("1/2", "gt")
    assert (ordinary["approval_heads"], ordinary["approval_heads_cmp"]) == ("1/2", "gt")
    assert ordinary["approval_base"] == "participating"
    major = owners_major().params
    assert (major["approval_area"], major["approval_area_cmp"]) == ("3/4", "gte")
    assert (major["approval_heads"], major["approval_heads_cmp"]) == ("3/4", "gte")
    assert major["quorum_area"] == "2/3"


def test_residents_and_council_presets_are_headcount_only():
    for rule in (residents_meeting(), council()):
        assert rule.params["quorum_area"] is None and rule.params["approval_area"] is None
    assert residents_meeting().params["quorum_heads_cmp"] == "gt"
    assert council().params["quorum_heads"] == "2/3"


def test_preset_overrides_accept_fractions_and_canonicalise():
    rule = council(quorum_heads=Fraction(4, 6), approval_heads="2/4")
    assert rule.params["quorum_heads"] == "2/3"
    assert rule.params["approval_heads"] == "1/2"
    assert rule.fraction("quorum_heads") == Fraction(2, 3)
    assert rule.comparison("approval_heads") == "gt"


def test_make_rule_by_name():
    assert make_rule("owners_major") == owners_major()
    assert make_rule("council", params={"quorum_heads": "1/2"}) == council(quorum_heads="1/2")
    assert make_rule("generic", "schulze").method == "schulze"
    with pytest.raises(InvalidRule):
        make_rule("owners_ordinary", "approval")
    with pytest.raises(InvalidRule):
        make_rule("owners_extraordinary")


@pytest.mark.parametrize(
    "build",
    [
        lambda: generic("plurality"),
        lambda: generic("majority", quorum_heads=0.5),
        lambda: generic("majority", quorum_heads="3/2"),
        lambda: generic("majority", quorum_heads="half"),
        lambda: generic("majority", approval_heads_cmp=">="),
        lambda: generic("majority", approval_heads=None),
        lambda: generic("majority", typo_param="1/2"),
        lambda: generic("score", min_score=5, max_score=5),
        lambda: generic("score", max_score=5.0),
        lambda: generic("approval", weighting="money"),
        lambda: Rule("owners_best", "majority", {}),
    ],
)
def test_invalid_rules_are_refused(build):
    with pytest.raises(InvalidRule):
        build()


def test_rule_params_are_complete_and_read_only():
    rule = generic("score")
    assert rule.params["min_score"] == 0 and rule.params["max_score"] == 5
    assert rule.params["quorum_heads"] is None
    with pytest.raises(TypeError):
        rule.params["max_score"] = 10  # type: ignore[index]


@pytest.mark.parametrize(
    "rule",
    [owners_ordinary(), owners_major(), residents_meeting(), council(quorum_heads="3/5")]
    + [generic(m) for m in ("majority", "supermajority", "consent", "approval", "schulze", "irv", "score")],
)
def test_rule_json_round_trip(rule):
    data = json.loads(json.dumps(rule.to_dict()))
    assert Rule.from_dict(data) == rule
    assert "float" not in json.dumps(data)
    assert all(not isinstance(v, float) for v in data["params"].values())


# --- Result JSON round-trip --------------------------------------------------------------------


def _roll(n, weight="1"):
    return [RollEntry(f"p{i}", Decimal(weight)) for i in range(n)]


@pytest.mark.parametrize(
    "rule, options, choices",
    [
        (owners_ordinary(), [], ["agree", "agree", "disagree", "abstain"]),
        (generic("consent"), [], ["agree", "block"]),
        (generic("majority"), ["x", "y"], ["x", "x", "y"]),
        (generic("approval", weighting="area"), ["x", "y"], [["x"], ["x", "y"], "abstain"]),
        (generic("schulze", weighting="area"), ["x", "y", "z"], [["x", "y"], ["z"], ["y", "z", "x"]]),
        (generic("irv"), ["x", "y", "z"], [["x", "y"], ["z"], ["y", "z", "x"], ["y"]]),
        (generic("score", min_score=-2, max_score=2), ["x", "y"], [{"x": 2}, {"y": -2, "x": 1}]),
    ],
)
def test_result_json_round_trip(rule, options, choices):
    roll = _roll(len(choices) + 1, "62.50")
    votes = [Vote(f"p{i}", c) for i, c in enumerate(choices)]
    result = tally(rule, options, roll, votes)
    text = json.dumps(result.to_dict(), sort_keys=True)
    restored = Result.from_dict(json.loads(text))
    assert restored == result
    assert json.dumps(restored.to_dict(), sort_keys=True) == text
    # Canonical decimal text: no trailing zeros after a decimal point.
    assert re.search(r'"participating_area": "\d+(\.5)?"', text)
    assert not re.search(r'\.\d*0"', text)
    # No floats sneak in anywhere.
    json.loads(text, parse_float=lambda s: pytest.fail(f"float {s} in result JSON"))


def test_vote_json_round_trip():
    for choice in ["agree", ["a", "b"], {"b", "a"}, {"a": 3}]:
        vote = Vote("p0", choice)
        assert Vote.from_dict(json.loads(json.dumps(vote.to_dict()))).to_dict() == vote.to_dict()
    assert Vote("p0", {"b", "a"}).to_dict()["choice"] == ["a", "b"]


def test_roll_entry_json_round_trip_and_float_refusal():
    entry = RollEntry("wang", Decimal("50.00"), 1, ("102", "101"))
    assert entry.units == ("101", "102")
    assert RollEntry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry
    assert entry.to_dict()["weight"] == "50"
    with pytest.raises(TypeError):
        RollEntry("wang", 50.0)


# --- roll hash ---------------------------------------------------------------------------------


def test_roll_hash_encoding_is_exactly_as_documented():
    roll = [RollEntry("zhang", Decimal("1.5E+2"), 1, ("202", "201")), RollEntry("wang", Decimal("50.00"), 1, ("101",))]
    expected_text = (
        '[{"headcount":1,"units":["101"],"voter":"wang","weight":"50"},'
        '{"headcount":1,"units":["201","202"],"voter":"zhang","weight":"150"}]'
    )
    assert canonical_roll_json(roll) == expected_text
    assert roll_hash(roll) == hashlib.sha256(expected_text.encode("utf-8")).hexdigest()


def test_roll_hash_ignores_order_and_keeps_non_ascii():
    roll = [RollEntry("王", Decimal(50)), RollEntry("李", Decimal("70.25"), 1, ("102",))]
    assert roll_hash(roll) == roll_hash(list(reversed(roll)))
    assert "王" in canonical_roll_json(roll)
    changed = [RollEntry("王", Decimal(50)), RollEntry("李", Decimal("70.26"), 1, ("102",))]
    assert roll_hash(changed) != roll_hash(roll)


def test_roll_hash_refuses_duplicate_voters():
    with pytest.raises(InvalidRoll):
        roll_hash([RollEntry("a", Decimal(1)), RollEntry("a", Decimal(2))])


# --- residents' and households' rolls ----------------------------------------------------------


def test_resident_roll_counts_adults_living_there():
    at = date(2024, 6, 1)
    residents = [
        Resident("adult", "h1", birth_date=date(1980, 1, 1)),
        Resident("turns18today", "h1", birth_date=date(2006, 6, 1)),
        Resident("turns18tomorrow", "h2", birth_date=date(2006, 6, 2)),
        Resident("flagged", "h2", adult=True),
        Resident("moved_out", "h3", adult=True, effective_to=at),
        Resident("moving_in", "h3", adult=True, effective_from=date(2024, 7, 1)),
    ]
    roll = build_resident_roll(residents, at)
    assert [(e.voter, e.weight, e.headcount) for e in roll] == [
        ("adult", 1, 1),
        ("flagged", 1, 1),
        ("turns18today", 1, 1),
    ]
    assert roll[0].units == ("h1",)


def test_leap_day_birth_comes_of_age_on_first_of_march():
    resident = Resident("leap", birth_date=date(2004, 2, 29))
    assert not resident.is_adult(date(2022, 2, 28))
    assert resident.is_adult(date(2022, 3, 1))


def test_resident_without_age_information_is_an_error():
    with pytest.raises(InvalidRoll, match="nobody"):
        build_resident_roll([Resident("nobody")], date(2024, 1, 1))


def test_household_roll_one_vote_per_household():
    households = [Household("h2", ("2-101",)), Household("h1", ("1-101", "1-102")), Household("gone", effective_to=date(2020, 1, 1))]
    roll = build_household_roll(households, date(2024, 1, 1))
    assert [(e.voter, e.weight, e.headcount, e.units) for e in roll] == [
        ("h1", 1, 1, ("1-101", "1-102")),
        ("h2", 1, 1, ("2-101",)),
    ]
