"""Matters of PRC Civil Code art. 278 and the weakest rule each may be decided on (rules.matters)."""
from __future__ import annotations

import pytest

import rules
from rules import ART_278, RuleTooWeak, check_rule_for_matter, make_rule

MAJOR = ("maintenance_fund_raise", "rebuilding", "shared_parts_use")  # art. 278 ¶1 items 6-8
ORDINARY = ("assembly_rules", "management_covenant", "owners_committee", "property_company",
            "maintenance_fund_use", "owners_major_matter")  # items 1-5 and 9


def test_the_law_names_nine_matters_with_their_minimum():
    assert sorted(m.item for m in ART_278.values()) == list(range(1, 10))
    assert {c for c, m in ART_278.items() if m.minimum == "owners_major"} == set(MAJOR)
    assert {c for c, m in ART_278.items() if m.minimum == "owners_ordinary"} == set(ORDINARY)


@pytest.mark.parametrize("category", MAJOR + ORDINARY)
@pytest.mark.parametrize("preset, method", [("residents_meeting", None), ("council", None), ("generic", "majority"),
                                            ("generic", "supermajority")])
def test_a_rule_that_is_not_the_owners_is_too_weak_for_every_matter(category, preset, method):
    params = {"approval_heads": "9/10"} if method == "supermajority" else None
    with pytest.raises(RuleTooWeak, match=r"art\. 278") as refused:
        check_rule_for_matter(category, make_rule(preset, method, params))
    assert category in str(refused.value) and f"item {ART_278[category].item}" in str(refused.value)


@pytest.mark.parametrize("category", MAJOR)
def test_raising_the_fund_rebuilding_and_changes_of_use_need_owners_major(category):
    with pytest.raises(RuleTooWeak, match="at least the owners_major rule.*weaker on approval_area, approval_heads"):
        check_rule_for_matter(category, rules.owners_ordinary())
    check_rule_for_matter(category, rules.owners_major())


@pytest.mark.parametrize("category", ORDINARY)
def test_the_other_matters_need_owners_ordinary_or_stronger(category):
    check_rule_for_matter(category, rules.owners_ordinary())
    check_rule_for_matter(category, rules.owners_major())


@pytest.mark.parametrize("params, weak", [
    ({"approval_area": "1/2", "approval_area_cmp": "gt"}, "approval_area"),  # 1/2 < 3/4
    ({"approval_heads_cmp": "gt", "approval_heads": "2/3"}, "approval_heads"),
    ({"quorum_heads": "1/2"}, "quorum_heads"),
    ({"quorum_area": None}, "quorum_area"),
    ({"approval_base": "cast"}, "approval_base"),  # abstentions must count as taking part
])
def test_an_owners_preset_weakened_by_its_parameters_is_too_weak(params, weak):
    with pytest.raises(RuleTooWeak, match=f"weaker on {weak}"):
        check_rule_for_matter("rebuilding", rules.owners_major(**params))


def test_stricter_parameters_are_fine_and_at_least_versus_more_than_is_exact():
    check_rule_for_matter("rebuilding", rules.owners_major(approval_area="4/5", quorum_heads="3/4"))
    # "more than 3/4" is stricter than "at least 3/4"; "at least 1/2" is weaker than "more than 1/2".
    check_rule_for_matter("rebuilding", rules.owners_major(approval_area_cmp="gt"))
    with pytest.raises(RuleTooWeak, match="approval_heads"):
        check_rule_for_matter("property_company", rules.owners_ordinary(approval_heads_cmp="gte"))


@pytest.mark.parametrize("category", [None, "drainage", "green_space", "其他", "REBUILDING"])
def test_other_categories_are_ordinary_matters_with_no_minimum(category):
    check_rule_for_matter(category, rules.residents_meeting())
    assert rules.matter(category) is None
