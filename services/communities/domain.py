"""The directory as the democratic record sees it: who lived in or owned which unit, with which
area, and held which role, on any date. Pure Python on eventsourcing aggregates; no I/O.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from eventsourcing.domain import event

from services.common.aggregate import Aggregate
from services.common.errors import Conflict, InvalidInput

ROLES = (
    "platform_admin",
    "party_lead",
    "community_worker",
    "grid_leader",
    "building_leader",
    "owners_committee",
    "council_member",
    "expert",
    "moderator",
    "property_company",
    "resident",
    "auditor",
)
# Roles that hold for one compound or one building rather than the whole community.
SCOPED_ROLES = {"grid_leader": "compound", "building_leader": "building"}

DEFAULT_RULES: dict = {
    "categories": ["drainage", "green_space", "parking", "safety", "sanitation", "other"],
    "support_per": "resident",  # or "household": one support per household
    "support_window_days": 30,
    "support_threshold": {
        "community": {"unit": "households", "share": "1/20"},
        "compound": {"unit": "households", "share": "1/10"},
        "building": {"unit": "residents", "count": 3},
    },
    "meeting_notice_days": 3,
    "meeting_quorum": "2/3",
    "meeting_required_roles": ["convener", "grid_leader"],
    "conclusion_required_roles": ["convener", "grid_leader", "building_leader"],
    "minutes_signers": ["convener", "grid_leader"],
    "flags_to_hide": 3,
    "ballot_notice_days": 7,
    "publicity_days": 7,
    "evaluation_window_days": 14,
    "unsatisfied_reopen_share": "1/3",
}


def _fraction_text(value, field: str) -> str:
    from fractions import Fraction

    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a fraction written as a string like '2/3'")
    try:
        f = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InvalidInput(f"{field} is not a fraction: {value!r}") from None
    if not 0 <= f <= 1:
        raise InvalidInput(f"{field} must lie between 0 and 1")
    return value


def validate_rules(rules: dict, base: dict | None = None) -> dict:
    """Merge a (partial) rule set onto the current one and check every value's type."""
    if not isinstance(rules, dict):
        raise InvalidInput("rules must be an object")
    merged = dict(base or DEFAULT_RULES)
    unknown = set(rules) - set(DEFAULT_RULES)
    if unknown:
        raise InvalidInput(f"unknown rule settings: {', '.join(sorted(unknown))}")
    merged.update(rules)
    for key in ("support_window_days", "meeting_notice_days", "flags_to_hide", "ballot_notice_days",
                "publicity_days", "evaluation_window_days"):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3650:
            raise InvalidInput(f"{key} must be a whole number of days/count between 0 and 3650")
    for key in ("meeting_quorum", "unsatisfied_reopen_share"):
        _fraction_text(merged[key], key)
    if merged["support_per"] not in ("resident", "household"):
        raise InvalidInput("support_per must be 'resident' or 'household'")
    cats = merged["categories"]
    if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and 0 < len(c) <= 40 for c in cats):
        raise InvalidInput("categories must be a non-empty list of short names")
    thresholds = merged["support_threshold"]
    if not isinstance(thresholds, dict) or set(thresholds) != {"community", "compound", "building"}:
        raise InvalidInput("support_threshold needs community, compound and building")
    for level, t in thresholds.items():
        if not isinstance(t, dict) or t.get("unit") not in ("residents", "households"):
            raise InvalidInput(f"support_threshold.{level}.unit must be 'residents' or 'households'")
        if ("count" in t) == ("share" in t):
            raise InvalidInput(f"support_threshold.{level} needs exactly one of count or share")
        if "count" in t and (not isinstance(t["count"], int) or t["count"] < 1):
            raise InvalidInput(f"support_threshold.{level}.count must be a positive whole number")
        if "share" in t:
            _fraction_text(t["share"], f"support_threshold.{level}.share")
    for key in ("meeting_required_roles", "conclusion_required_roles", "minutes_signers"):
        if not isinstance(merged[key], list) or not all(isinstance(r, str) for r in merged[key]):
            raise InvalidInput(f"{key} must be a list of role names")
    return merged


def parse_area(value, field: str = "area") -> Decimal:
    if isinstance(value, float):
        raise InvalidInput(f"{field} must be a decimal string such as '75.50', not a float")
    try:
        area = Decimal(str(value))
    except Exception:  # noqa: BLE001
        raise InvalidInput(f"{field} is not a decimal number: {value!r}") from None
    if not area.is_finite() or area <= 0 or area > Decimal("100000"):
        raise InvalidInput(f"{field} must be a positive area in m² (at most 100000)")
    if -area.as_tuple().exponent > 4:
        raise InvalidInput(f"{field} has more than 4 decimal places")
    return area


def _active(periods: list[dict], at: str) -> list[dict]:
    return [p for p in periods if p["from"] <= at and (p["to"] is None or at < p["to"])]


class Community(Aggregate):
    @event("Created")
    def __init__(self, name: str, rules: dict):
        self.name = name
        self.rules = rules

    @event("RulesChanged")
    def change_rules(self, rules: dict):
        self.rules = rules


class Compound(Aggregate):
    @event("Created")
    def __init__(self, community: str, name: str):
        self.community = community
        self.name = name


class Building(Aggregate):
    @event("Created")
    def __init__(self, community: str, compound: str, name: str):
        self.community = community
        self.compound = compound
        self.name = name


class Household(Aggregate):
    """A unit: exclusive floor area (with corrections) and owners (with effective dates)."""

    @event("Registered")
    def __init__(self, community: str, building: str, unit: str, area: Decimal, effective: str,
                 owners: list, representative: str | None, developer_unsold: bool):
        self.community = community
        self.building = building
        self.unit = unit
        self.areas = [{"from": effective, "area": area}]
        self.ownership = [{"from": effective, "to": None, "owners": list(owners),
                           "representative": representative, "developer_unsold": developer_unsold}]

    @event("AreaCorrected")
    def correct_area(self, area: Decimal, reason_commitment: str, effective: str):
        self.areas.append({"from": effective, "area": area, "reason_commitment": reason_commitment})
        self.areas.sort(key=lambda a: a["from"])

    def transfer(self, owners: list, representative: str | None, developer_unsold: bool, effective: str):
        current = self.ownership[-1]
        if effective <= current["from"]:
            raise InvalidInput(f"a transfer must be effective after {current['from']}")
        self._transferred(owners=owners, representative=representative,
                          developer_unsold=developer_unsold, effective=effective)

    @event("OwnershipTransferred")
    def _transferred(self, owners: list, representative: str | None, developer_unsold: bool, effective: str):
        self.ownership[-1]["to"] = effective
        self.ownership.append({"from": effective, "to": None, "owners": list(owners),
                               "representative": representative, "developer_unsold": developer_unsold})

    def area_at(self, at: str) -> Decimal | None:
        current = None
        for a in self.areas:
            if a["from"] <= at:
                current = Decimal(str(a["area"]))
        return current

    def ownership_at(self, at: str) -> dict | None:
        active = _active(self.ownership, at)
        return active[-1] if active else None


class Person(Aggregate):
    """A resident or owner. The name lives in the erasable content store; here only its commitment."""

    @event("Registered")
    def __init__(self, community: str, name_commitment: str, adult: bool, household: str | None, effective: str):
        self.community = community
        self.name_commitment = name_commitment
        self.adult = adult
        self.residence = []
        if household:
            self.residence.append({"from": effective, "to": None, "household": household})
        self.roles = []

    def move(self, household: str | None, effective: str):
        if self.residence and self.residence[-1]["to"] is None and effective <= self.residence[-1]["from"]:
            raise InvalidInput(f"a move must be effective after {self.residence[-1]['from']}")
        if not household and not (self.residence and self.residence[-1]["to"] is None):
            raise Conflict("this person does not live in a unit of the community now")
        self._moved(household=household, effective=effective)

    @event("Moved")
    def _moved(self, household: str | None, effective: str):
        if self.residence and self.residence[-1]["to"] is None:
            self.residence[-1]["to"] = effective
        if household:
            self.residence.append({"from": effective, "to": None, "household": household})

    @event("AdultnessChanged")
    def set_adult(self, adult: bool):
        self.adult = adult

    def grant_role(self, role: str, scope: str | None, effective: str):
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
        if any(r["role"] == role and r["scope"] == scope and r["to"] is None for r in self.roles):
            raise Conflict(f"this person already holds the role {role}" + (f" for {scope}" if scope else ""))
        self._role_granted(role=role, scope=scope, effective=effective)

    @event("RoleGranted")
    def _role_granted(self, role: str, scope: str | None, effective: str):
        self.roles.append({"role": role, "scope": scope, "from": effective, "to": None})

    def revoke_role(self, role: str, scope: str | None, effective: str):
        if not any(r["role"] == role and r["scope"] == scope and r["to"] is None for r in self.roles):
            raise Conflict(f"this person does not hold the role {role}")
        self._role_revoked(role=role, scope=scope, effective=effective)

    @event("RoleRevoked")
    def _role_revoked(self, role: str, scope: str | None, effective: str):
        for r in self.roles:
            if r["role"] == role and r["scope"] == scope and r["to"] is None:
                r["to"] = effective

    def household_at(self, at: str) -> str | None:
        active = _active(self.residence, at)
        return active[-1]["household"] if active else None

    def roles_at(self, at: str) -> list[dict]:
        return [{"role": r["role"], "scope": r["scope"]} for r in _active(self.roles, at)]


def iso(dt: datetime) -> str:
    from services.common import clock

    return clock.format(dt)
