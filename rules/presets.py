"""The decision-rule presets of DOMAIN.md, each a function returning a :class:`Rule`.

Every threshold is stated explicitly with its comparison: ``"gt"`` means "more
than" (exactly the fraction fails) and ``"gte"`` means "at least" (exactly the
fraction passes). Keyword arguments override the defaults, e.g.
``council(quorum_heads="1/2")`` or ``owners_major(approval_area="4/5")``.

============================  ====================================  ===================================
preset                        participation (of the eligible roll)  approval (of those taking part)
============================  ====================================  ===================================
owners_ordinary               area >= 2/3 and heads >= 2/3          area > 1/2 and heads > 1/2
owners_major                  area >= 2/3 and heads >= 2/3          area >= 3/4 and heads >= 3/4
residents_meeting             heads > 1/2                           heads > 1/2
council                       heads >= 2/3                          heads > 1/2
generic                       optional heads quorum (none default)  depends on the method
============================  ====================================  ===================================

Abstentions count as taking part: for the presets the approval base is
"participating" (agree + disagree + abstain), so abstaining makes approval
harder, as the Supreme People's Court interpretation requires for owners.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .errors import InvalidRule
from .model import Rule

_OWNERS_QUORUM: dict[str, Any] = {
    "quorum_area": "2/3",
    "quorum_area_cmp": "gte",
    "quorum_heads": "2/3",
    "quorum_heads_cmp": "gte",
    "approval_base": "participating",
}


def owners_ordinary(**params: Any) -> Rule:
    """Civil Code art. 278 items 1-5, 9 (e.g. *using* the maintenance fund).

    Participation: >= 2/3 of total exclusive area AND >= 2/3 of owners (heads).
    Approval: > 1/2 of participating area AND > 1/2 of participating heads.
    """
    return Rule(
        "owners_ordinary",
        "majority",
        {
            **_OWNERS_QUORUM,
            "approval_area": "1/2",
            "approval_area_cmp": "gt",
            "approval_heads": "1/2",
            "approval_heads_cmp": "gt",
            **params,
        },
    )


def owners_major(**params: Any) -> Rule:
    """Civil Code art. 278 items 6-8 (raising the fund, rebuilding, changing the use of shared parts).

    Participation: >= 2/3 of total exclusive area AND >= 2/3 of owners (heads).
    Approval: >= 3/4 of participating area AND >= 3/4 of participating heads.
    """
    return Rule(
        "owners_major",
        "supermajority",
        {
            **_OWNERS_QUORUM,
            "approval_area": "3/4",
            "approval_area_cmp": "gte",
            "approval_heads": "3/4",
            "approval_heads_cmp": "gte",
            **params,
        },
    )


def residents_meeting(**params: Any) -> Rule:
    """Urban Residents' Committee Organisation Law art. 9-10, headcount only.

    Participation: > 1/2 of the eligible roll (adult residents or household
    representatives — whichever roll is passed to the tally decides).
    Approval: > 1/2 of those taking part (voting, including abstentions).
    """
    return Rule(
        "residents_meeting",
        "majority",
        {
            "quorum_heads": "1/2",
            "quorum_heads_cmp": "gt",
            "approval_heads": "1/2",
            "approval_heads_cmp": "gt",
            "approval_base": "participating",
            **params,
        },
    )


def council(**params: Any) -> Rule:
    """A residents' council (议事会): >= 2/3 of members take part, > 1/2 of them agree.

    Both fractions and comparisons are configurable through the keyword arguments.
    """
    return Rule(
        "council",
        "majority",
        {
            "quorum_heads": "2/3",
            "quorum_heads_cmp": "gte",
            "approval_heads": "1/2",
            "approval_heads_cmp": "gt",
            "approval_base": "participating",
            **params,
        },
    )


def generic(method: str = "majority", **params: Any) -> Rule:
    """Anything else: any counting method, with an optional headcount quorum.

    ``generic("majority")`` is a simple majority of votes cast (abstentions
    excluded), ``generic("supermajority", approval_heads="3/4")`` a configurable
    supermajority (at least the fraction), ``generic("schulze", quorum_heads="1/3")``
    ranked choice with a participation quorum, and so on.
    """
    return Rule("generic", method, dict(params))


PRESET_FUNCTIONS: Mapping[str, Callable[..., Rule]] = {
    "owners_ordinary": owners_ordinary,
    "owners_major": owners_major,
    "residents_meeting": residents_meeting,
    "council": council,
    "generic": generic,
}


def make_rule(preset: str, method: str | None = None, params: Mapping[str, Any] | None = None) -> Rule:
    """Build a rule by preset name, e.g. from a request: ``make_rule("council", params={...})``.

    ``method`` may only be given for the ``generic`` preset; the other presets
    fix their method because the law fixes how they are counted.
    """
    if preset not in PRESET_FUNCTIONS:
        raise InvalidRule(f"unknown preset {preset!r}; expected one of {tuple(PRESET_FUNCTIONS)}")
    params = dict(params or {})
    if preset == "generic":
        return generic(method or "majority", **params)
    if method is not None and method != PRESET_FUNCTIONS[preset]().method:
        raise InvalidRule(f"preset {preset!r} does not allow choosing the method")
    return PRESET_FUNCTIONS[preset](**params)
