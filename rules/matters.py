"""Matters the law names, and the weakest rule each may be decided on (PRC Civil Code art. 278).

Art. 278 ¶1 lists what the owners decide together; ¶2 says how: every matter needs owners holding
at least 2/3 of the exclusive area and at least 2/3 of the owners to take part; items 6-8 then need
at least 3/4 of the participating area and owners to agree, the others more than half. In the
presets of :mod:`rules.presets` that is ``owners_major`` for items 6-8 and ``owners_ordinary`` for
items 1-5 and 9.

A ballot carries a free ``category``; the names below are the ones that carry a legal minimum. Any
other category (``drainage``, ``green_space`` ...) is an ordinary matter with no minimum. A rule is
strong enough for a matter when it is an owners' preset (area and headcount of the owners) whose
every quorum and approval threshold is at least the minimum preset's, with abstentions counted
as taking part. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from .errors import RuleTooWeak
from .model import APPROVAL_THRESHOLDS, QUORUM_THRESHOLDS, Rule
from .presets import PRESET_FUNCTIONS

OWNERS_PRESETS = ("owners_ordinary", "owners_major")


@dataclass(frozen=True)
class Matter:
    """A category of ballot named by art. 278 ¶1, with the weakest preset it may be decided on."""

    category: str
    item: int  # the item of art. 278 ¶1
    minimum: str  # the weakest preset the law allows
    zh: str
    en: str

    @property
    def article(self) -> str:
        return f"PRC Civil Code art. 278 ¶1 item {self.item} (《民法典》第二百七十八条第一款第{self.item}项)"


ART_278: Mapping[str, Matter] = MappingProxyType({m.category: m for m in (
    Matter("assembly_rules", 1, "owners_ordinary", "制定和修改业主大会议事规则",
           "making or amending the owners' assembly rules"),
    Matter("management_covenant", 2, "owners_ordinary", "制定和修改管理规约", "making or amending the management covenant"),
    Matter("owners_committee", 3, "owners_ordinary", "选举业主委员会或者更换业主委员会成员",
           "electing the owners' committee or replacing its members"),
    Matter("property_company", 4, "owners_ordinary", "选聘和解聘物业服务企业或者其他管理人",
           "choosing or dismissing the property company or another manager"),
    Matter("maintenance_fund_use", 5, "owners_ordinary", "使用建筑物及其附属设施的维修资金",
           "using the maintenance fund of the buildings and their facilities"),
    Matter("maintenance_fund_raise", 6, "owners_major", "筹集建筑物及其附属设施的维修资金",
           "raising the maintenance fund of the buildings and their facilities"),
    Matter("rebuilding", 7, "owners_major", "改建、重建建筑物及其附属设施",
           "renovating or rebuilding buildings and their facilities"),
    Matter("shared_parts_use", 8, "owners_major", "改变共有部分的用途或者利用共有部分从事经营活动",
           "changing the use of shared parts or running a business on them"),
    Matter("owners_major_matter", 9, "owners_ordinary", "有关共有和共同管理权利的其他重大事项",
           "another major matter of the owners' shared ownership and management"),
)})


def matter(category: str | None) -> Matter | None:
    """The art. 278 matter a category names, or None for an ordinary category."""
    return ART_278.get(category) if isinstance(category, str) else None


def _at_least(rule: Rule, law: Rule, name: str) -> bool:
    """Is the rule's threshold `name` at least as demanding as the law's?"""
    required, actual = law.fraction(name), rule.fraction(name)
    if required is None:
        return True
    if actual is None or actual < required:
        return False
    if actual > required:
        return True
    # The same fraction: "more than" is at least as demanding as "at least", not the other way round.
    return rule.comparison(name) == law.comparison(name) or rule.comparison(name) == "gt"


def weaker_points(category: str | None, rule: Rule) -> list[str]:
    """What makes `rule` weaker than the law requires for `category` ([] when it is strong enough)."""
    found = matter(category)
    if found is None:
        return []
    if rule.preset not in OWNERS_PRESETS:
        return ["preset"]
    law = PRESET_FUNCTIONS[found.minimum]()
    weak = [name for name in (*QUORUM_THRESHOLDS, *APPROVAL_THRESHOLDS) if not _at_least(rule, law, name)]
    if rule.params.get("approval_base") != law.params.get("approval_base"):
        weak.append("approval_base")
    return weak


def check_rule_for_matter(category: str | None, rule: Rule) -> None:
    """Raise :class:`RuleTooWeak`, naming the article, when `rule` is weaker than the law requires."""
    weak = weaker_points(category, rule)
    if not weak:
        return
    found = ART_278[category]
    law = PRESET_FUNCTIONS[found.minimum]()
    if weak == ["preset"]:
        what = f"the {rule.preset} rule is not an owners' rule"
    else:
        what = f"the {rule.preset} rule as configured is weaker on {', '.join(weak)}"
    thresholds = ", ".join(f"{name} {'>' if law.comparison(name) == 'gt' else '≥'} {law.fraction(name)}"
                           for name in (*QUORUM_THRESHOLDS, *APPROVAL_THRESHOLDS) if law.fraction(name) is not None)
    raise RuleTooWeak(
        f"{found.category} ({found.en}; {found.zh}) is a matter of {found.article}: by art. 278 ¶2 it needs "
        f"at least the {found.minimum} rule ({thresholds}, abstentions counted as taking part); {what}")
