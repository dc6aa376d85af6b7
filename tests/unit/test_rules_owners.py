"""Owners' presets and roll: the DOMAIN.md worked example (building 2 of compound 3)."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from rules import (
    InvalidRoll,
    MissingCoOwnerRepresentative,
    Ownership,
    Unit,
    Vote,
    build_owner_roll,
    owners_major,
    owners_ordinary,
    tally,
)

AT = date(2024, 6, 1)

# unit, area m², owner (None = unsold by the developer)
BUILDING_2 = [
    ("101", "50", "Wang"),
    ("102", "70", "Li"),
    ("201", "75", "Zhang"),
    ("202", "75", "Zhang"),
    ("301", "90", "Liu"),
    ("302", "90", "Chen"),
    ("401", "90", "Zhao"),
    ("402", "90", "Sun"),
    ("501", "120", "Zhou"),
    ("502", "120", None),
]


def building_2_units():
    return [
        Unit(unit, Decimal(area), (Ownership(owner, date(2010, 1, 1)),) if owner else (), developer_unsold=owner is None)
        for unit, area, owner in BUILDING_2
    ]


@pytest.fixture
def roll():
    return build_owner_roll(building_2_units(), AT)


def votes(agree=(), disagree=(), abstain=()):
    return (
        [Vote(v, "agree") for v in agree]
        + [Vote(v, "disagree") for v in disagree]
        + [Vote(v, "abstain") for v in abstain]
    )


EXAMPLE_VOTES = votes(agree=["Wang", "Li", "Zhang", "Liu", "Zhou"], disagree=["Chen"], abstain=["Zhao"])


def test_roll_of_building_2(roll):
    assert sum(e.weight for e in roll) == Decimal(870)
    assert sum(e.headcount for e in roll) == 9
    by_voter = {e.voter: e for e in roll}
    assert by_voter["Zhang"].weight == Decimal(150)
    assert by_voter["Zhang"].units == ("201", "202")
    assert by_voter["developer"].weight == Decimal(120)
    assert by_voter["developer"].headcount == 1
    assert [e.voter for e in roll] == sorted(by_voter)


def test_worked_example_owners_ordinary_adopted(roll):
    result = tally(owners_ordinary(), [], roll, EXAMPLE_VOTES)
    assert (result.eligible_area, result.eligible_heads) == (Decimal(870), 9)
    assert (result.participating_area, result.participating_heads) == (Decimal(660), 7)
    assert (result.agreeing_area, result.agreeing_heads) == (Decimal(480), 5)
    assert (result.disagreeing_area, result.disagreeing_heads) == (Decimal(90), 1)
    assert (result.abstaining_area, result.abstaining_heads) == (Decimal(90), 1)
    assert result.quorum_met and result.approval_met
    assert result.outcome == "adopted"
    # Thresholds applied, as in DOMAIN.md: quorum 580 m² and 6 owners; approval 330 m² and 3.5 owners.
    quorum = {c.name: c for c in result.quorum}
    assert quorum["quorum_area"].required == Fraction(580)
    assert quorum["quorum_heads"].required == Fraction(6)
    approval = {c.name: c for c in result.approval}
    assert approval["approval_area"].required == Fraction(330)
    assert approval["approval_heads"].required == Fraction(7, 2)
    assert approval["approval_area"].fraction == Fraction(1, 2)
    assert approval["approval_area"].comparison == "gt"


def test_worked_example_owners_major_rejected_on_both(roll):
    result = tally(owners_major(), [], roll, EXAMPLE_VOTES)
    assert result.quorum_met
    assert result.outcome == "rejected"
    approval = {c.name: c for c in result.approval}
    assert approval["approval_area"].required == Fraction(495)
    assert approval["approval_heads"].required == Fraction(21, 4)  # 5.25 owners
    assert not approval["approval_area"].met and not approval["approval_heads"].met
    assert set(result.failed) == {"approval_area", "approval_heads"}


def test_worked_example_owners_major_adopted_when_zhao_agrees(roll):
    changed = votes(agree=["Wang", "Li", "Zhang", "Liu", "Zhou", "Zhao"], disagree=["Chen"])
    result = tally(owners_major(), [], roll, changed)
    assert (result.agreeing_area, result.agreeing_heads) == (Decimal(570), 6)
    assert result.outcome == "adopted"


def test_worked_example_zhao_changes_vote_last_one_counts(roll):
    # Zhao first abstains, then agrees: only the later vote counts.
    result = tally(owners_major(), [], roll, EXAMPLE_VOTES + [Vote("Zhao", "agree")])
    assert result.superseded == 1
    assert (result.agreeing_area, result.agreeing_heads) == (Decimal(570), 6)
    assert result.outcome == "adopted"


def test_quorum_boundary_met_exactly(roll):
    # Li, Zhang, Liu, Chen, Zhao, Sun: 70+150+90+90+90+90 = 580 m² and 6 owners.
    taking_part = votes(agree=["Li", "Zhang", "Liu", "Chen", "Zhao", "Sun"])
    result = tally(owners_ordinary(), [], roll, taking_part)
    assert (result.participating_area, result.participating_heads) == (Decimal(580), 6)
    assert result.quorum_met
    assert result.outcome == "adopted"


def test_quorum_one_short_fails(roll):
    # Without Sun: 490 m², 5 owners.
    result = tally(owners_ordinary(), [], roll, votes(agree=["Li", "Zhang", "Liu", "Chen", "Zhao"]))
    assert not result.quorum_met
    assert result.outcome == "rejected"
    assert set(result.failed) == {"quorum_area", "quorum_heads"}


def test_quorum_heads_met_but_area_not(roll):
    # The six smallest holders: 50+70+90+90+90+90 = 480 m² < 580 m², although 6 owners >= 6.
    result = tally(owners_ordinary(), [], roll, votes(agree=["Wang", "Li", "Liu", "Chen", "Zhao", "Sun"]))
    assert (result.participating_area, result.participating_heads) == (Decimal(480), 6)
    assert [(c.name, c.met) for c in result.quorum] == [("quorum_area", False), ("quorum_heads", True)]
    assert result.outcome == "rejected"
    assert result.failed == ("quorum_area",)


def test_exactly_three_quarters_of_heads_passes_owners_major(roll):
    # Everyone but Wang takes part: 8 owners, 820 m². Six agree: exactly 3/4 of the heads
    # and 660 m² >= 615 m² of the area.
    agree = ["Zhang", "Zhou", "developer", "Liu", "Zhao", "Sun"]
    result = tally(owners_major(), [], roll, votes(agree=agree, disagree=["Li", "Chen"]))
    assert (result.participating_area, result.participating_heads) == (Decimal(820), 8)
    checks = {c.name: c for c in result.approval}
    assert (checks["approval_heads"].value, checks["approval_heads"].required) == (6, Fraction(6))
    assert checks["approval_heads"].met
    assert checks["approval_area"].required == Fraction(615)
    assert result.outcome == "adopted"


def test_exactly_three_quarters_of_area_and_heads_passes_owners_major():
    units = [Unit(str(i), Decimal("25.5"), (Ownership(f"o{i}"),)) for i in range(4)]
    roll = build_owner_roll(units, AT)
    result = tally(owners_major(), [], roll, votes(agree=["o0", "o1", "o2"], disagree=["o3"]))
    assert result.agreeing_area == Decimal("76.5")
    assert [(c.value, c.required) for c in result.approval] == [
        (Decimal("76.5"), Fraction(153, 2)),
        (3, Fraction(3)),
    ]
    assert result.outcome == "adopted"
    # Just under 3/4 fails: 3 of 4 heads but one more owner abstains (3 of 5).
    units.append(Unit("4", Decimal("25.5"), (Ownership("o4"),)))
    roll = build_owner_roll(units, AT)
    result = tally(owners_major(), [], roll, votes(agree=["o0", "o1", "o2"], disagree=["o3"], abstain=["o4"]))
    assert result.outcome == "rejected"


def test_exactly_half_fails_more_than_half():
    units = [Unit(str(i), Decimal(60), (Ownership(f"o{i}"),)) for i in range(4)]
    roll = build_owner_roll(units, AT)
    result = tally(owners_ordinary(), [], roll, votes(agree=["o0", "o1"], disagree=["o2", "o3"]))
    assert result.quorum_met
    approval = {c.name: c for c in result.approval}
    assert approval["approval_area"].value == Decimal(120)
    assert approval["approval_area"].required == Fraction(120)
    assert not approval["approval_area"].met and not approval["approval_heads"].met
    assert result.outcome == "rejected"


def test_abstention_counts_in_participation_not_approval():
    units = [Unit(str(i), Decimal(100), (Ownership(f"o{i}"),)) for i in range(3)]
    roll = build_owner_roll(units, AT)
    # 2 agree of 3 participating: > 1/2; with the abstention replaced by nothing, quorum fails.
    result = tally(owners_ordinary(), [], roll, votes(agree=["o0"], abstain=["o1", "o2"]))
    assert result.quorum_met
    assert result.participating_heads == 3 and result.agreeing_heads == 1
    assert result.outcome == "rejected"
    assert tally(owners_ordinary(), [], roll, votes(agree=["o0", "o1"])).outcome == "adopted"


# --- roll building -----------------------------------------------------------------------------


def test_co_owned_unit_needs_a_designated_representative():
    unit = Unit("301", Decimal(90), (Ownership("Liu"), Ownership("Liu-spouse")))
    with pytest.raises(MissingCoOwnerRepresentative) as info:
        build_owner_roll([unit], AT)
    assert info.value.unit == "301"
    assert "301" in str(info.value)


def test_co_owned_unit_is_one_vote_cast_by_the_representative():
    units = [
        Unit("301", Decimal(90), (Ownership("Liu"), Ownership("Liu-spouse")), representative="Liu-spouse"),
        Unit("302", Decimal(80), (Ownership("Liu-spouse"),)),
    ]
    roll = build_owner_roll(units, AT)
    assert [(e.voter, e.weight, e.headcount, e.units) for e in roll] == [
        ("Liu-spouse", Decimal(170), 1, ("301", "302"))
    ]


def test_representative_must_be_a_current_co_owner():
    unit = Unit("301", Decimal(90), (Ownership("Liu"), Ownership("Chen")), representative="Zhao")
    with pytest.raises(InvalidRoll, match="301"):
        build_owner_roll([unit], AT)


def test_all_unsold_units_are_one_developer_head():
    units = [Unit(f"60{i}", Decimal(100), developer_unsold=True) for i in range(3)]
    roll = build_owner_roll(units, AT, developer_id="dev-co")
    assert [(e.voter, e.weight, e.headcount) for e in roll] == [("dev-co", Decimal(300), 1)]


def test_ownership_dates_follow_sales():
    sold_on = date(2024, 3, 1)
    unit = Unit("601", Decimal(100), (Ownership("buyer", effective_from=sold_on),), developer_unsold=True)
    resold = Unit(
        "602",
        Decimal(80),
        (Ownership("first", date(2015, 1, 1), sold_on), Ownership("second", sold_on)),
    )
    before = build_owner_roll([unit, resold], date(2024, 2, 29))
    on_the_day = build_owner_roll([unit, resold], sold_on)
    assert [e.voter for e in before] == ["developer", "first"]
    assert [e.voter for e in on_the_day] == ["buyer", "second"]


def test_unit_without_owner_is_an_error_unless_unsold():
    with pytest.raises(InvalidRoll, match="701"):
        build_owner_roll([Unit("701", Decimal(50), (Ownership("x", date(2030, 1, 1)),))], AT)


def test_duplicate_unit_is_an_error():
    unit = Unit("101", Decimal(50), (Ownership("Wang"),))
    with pytest.raises(InvalidRoll, match="101"):
        build_owner_roll([unit, unit], AT)


def test_unit_from_dict():
    unit = Unit.from_dict(
        {
            "unit": "301",
            "area": "90.50",
            "owners": [{"owner": "Liu", "effective_from": "2010-01-01"}, {"owner": "Chen"}],
            "representative": "Chen",
        }
    )
    roll = build_owner_roll([unit], AT)
    assert [(e.voter, e.weight) for e in roll] == [("Chen", Decimal("90.5"))]


def test_area_must_not_be_a_float():
    with pytest.raises(TypeError):
        Unit("101", 50.0, (Ownership("Wang"),))
