"""The directory as the democratic record sees it: who lived in or owned which unit, with which
area, and held which role, on any date. Pure Python on eventsourcing aggregates; no I/O.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Mapping, Sequence

from eventsourcing.domain import event

from services.common.aggregate import Aggregate
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.contracts.communities import SUPPORT_PER, THRESHOLD_UNITS

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
# The roles that run the community's directory and its imports (operators and administrators too).
MANAGER_ROLES = ("community_worker", "party_lead")
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
    "proxy_limit": 3,  # proxy authorisations one person may hold on one ballot
    "evaluation_window_days": 14,
    "unsatisfied_reopen_share": "1/3",
    # Reopening is judged on those who answered, once at least this share of the residents asked did
    # (rules.evaluation); fewer, and the evaluation is extended once.
    "evaluation_min_response_share": "1/3",
}


def _fraction_text(value, field: str) -> str:
    from fractions import Fraction

    if not isinstance(value, str):
        raise InvalidInput.coded("communities.fraction_written_string_like", field=field)
    try:
        f = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InvalidInput.coded("common.not_a_fraction", field=field, value=repr(value)) from None
    if not 0 <= f <= 1:
        raise InvalidInput.coded("common.fraction_between_0_1", field=field)
    return value


def validate_rules(rules: dict, base: dict | None = None) -> dict:
    """Merge a (partial) rule set onto the current one and check every value's type."""
    if not isinstance(rules, dict):
        raise InvalidInput.coded("communities.rules_object")
    merged = {**DEFAULT_RULES, **(base or {})}  # a setting added since the community was created: its default
    unknown = set(rules) - set(DEFAULT_RULES)
    if unknown:
        raise InvalidInput.coded("communities.unknown_rule_settings", unknown=", ".join(sorted(unknown)))
    merged.update(rules)
    for key in ("support_window_days", "meeting_notice_days", "flags_to_hide", "ballot_notice_days",
                "publicity_days", "evaluation_window_days", "proxy_limit"):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3650:
            raise InvalidInput.coded("communities.whole_number_days_count", key_=key)
    for key in ("meeting_quorum", "unsatisfied_reopen_share", "evaluation_min_response_share"):
        _fraction_text(merged[key], key)
    if merged["support_per"] not in SUPPORT_PER:
        raise InvalidInput.coded("communities.support_per_resident_household")
    cats = merged["categories"]
    if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and 0 < len(c) <= 40 for c in cats):
        raise InvalidInput.coded("communities.categories_non_empty_list")
    thresholds = merged["support_threshold"]
    if not isinstance(thresholds, dict) or set(thresholds) != {"community", "compound", "building"}:
        raise InvalidInput.coded("communities.support_threshold_needs_community")
    for level, t in thresholds.items():
        if not isinstance(t, dict) or t.get("unit") not in THRESHOLD_UNITS:
            raise InvalidInput.coded("communities.support_threshold_unit_residents", level=level)
        if ("count" in t) == ("share" in t):
            raise InvalidInput.coded("communities.support_threshold_needs_exactly", level=level)
        if "count" in t and (not isinstance(t["count"], int) or t["count"] < 1):
            raise InvalidInput.coded("communities.support_threshold_count_positive", level=level)
        if "share" in t:
            _fraction_text(t["share"], f"support_threshold.{level}.share")
    for key in ("meeting_required_roles", "conclusion_required_roles", "minutes_signers"):
        if not isinstance(merged[key], list) or not all(isinstance(r, str) for r in merged[key]):
            raise InvalidInput.coded("communities.list_role_names", key_=key)
    return merged


def parse_area(value, field: str = "area") -> Decimal:
    if isinstance(value, float):
        raise InvalidInput.coded("communities.decimal_string_such_float", field=field)
    try:
        area = Decimal(str(value))
    except Exception:  # noqa: BLE001
        raise InvalidInput.coded("communities.decimal_number", field=field, value=repr(value)) from None
    if not area.is_finite() or area <= 0 or area > Decimal("100000"):
        raise InvalidInput.coded("communities.positive_area_most", field=field)
    if -area.as_tuple().exponent > 4:
        raise InvalidInput.coded("communities.more_than_decimal_places", field=field)
    return area


def least_loaded_cell(cells: Sequence[str], counts: Mapping[str, int]) -> str | None:
    """The cell a new community is placed in (issue 18): the one holding the fewest communities
    (`counts`: cell -> communities it holds; a cell not named holds none, so a cell just added
    fills first), ties going to the cell named first in `cells` (CONSULT_CELLS' order), so the
    choice depends on nothing but the counts and the setting. No cells (a deployment without
    them): None.

    A balance, not an invariant: two communities created at the same moment may both read the same
    counts and land in the same cell, and that is acceptable (the next creation evens it out), so
    no lock is taken and nothing is refused for it."""
    if not cells:
        return None
    return min(cells, key=lambda cell: counts.get(cell, 0))  # min keeps the first of equals


def _active(periods: list[dict], at: str) -> list[dict]:
    return [p for p in periods if p["from"] <= at and (p["to"] is None or at < p["to"])]


class Community(Aggregate):
    """A tenant and its rule settings. Through the API a rule change takes two people: one
    proposes it, a different party-committee lead confirms it (both steps are events); only the
    operator's set-up path changes the rules in one step (`change_rules`). Its cell (the set of
    stage services that serves it, `least_loaded_cell`) is fixed by the creation event: every
    consumer of the directory learns where the community lives from the event that creates it."""

    @event("Created")
    def __init__(self, name: str, rules: dict, cell: str | None):
        self.name = name
        self.rules = rules
        self.cell = cell  # None: created without cells (before them, or in a deployment without)
        self.pending_rule_changes: dict[str, dict] = {}

    @event("RulesChanged")
    def change_rules(self, rules: dict):
        self.rules = rules

    @event("RuleChangeProposed")
    def propose_rule_change(self, change: str, settings: dict, proposed_by: str, proposed_at: str):
        self.pending_rule_changes[change] = {"id": change, "settings": dict(settings), "proposed_by": proposed_by,
                                             "proposed_at": proposed_at}

    def pending(self, change: str) -> dict:
        found = self.pending_rule_changes.get(change)
        if found is None:
            raise NotFound.coded("communities.rule_change_pending_community", change=change)
        return found

    def confirm_rule_change(self, change: str, confirmed_by: str, rules: dict):
        if self.pending(change)["proposed_by"] == confirmed_by:
            raise Forbidden.coded("communities.rule_change_needs_second")
        self._rule_change_confirmed(change=change, confirmed_by=confirmed_by, rules=rules)

    @event("RuleChangeConfirmed")
    def _rule_change_confirmed(self, change: str, confirmed_by: str, rules: dict):
        self.pending_rule_changes.pop(change, None)
        self.rules = rules

    def withdraw_rule_change(self, change: str, withdrawn_by: str):
        self.pending(change)
        self._rule_change_withdrawn(change=change, withdrawn_by=withdrawn_by)

    @event("RuleChangeWithdrawn")
    def _rule_change_withdrawn(self, change: str, withdrawn_by: str):
        self.pending_rule_changes.pop(change, None)


# CommunityCreated 2 adds `cell`; a version 1 event, recorded before cells, reads back with none.
# The step services/decisions/domain.py's `version_event` takes (eventsourcing's class_version and
# upcast_v1_v2), written out here: one service's domain may not import another's.
Community.Created.class_version = 2
Community.Created.upcast_v1_v2 = staticmethod(lambda state: state.setdefault("cell", None))


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
            raise InvalidInput.coded("communities.transfer_effective_after", from_=current["from"])
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
            raise InvalidInput.coded("communities.move_effective_after", from_=self.residence[-1]["from"])
        if not household and not (self.residence and self.residence[-1]["to"] is None):
            raise Conflict.coded("communities.person_does_live_unit")
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

    @event("Renamed")
    def rename(self, name_commitment: str):
        """A corrected name (e.g. from a re-imported file); the old text stays erasable with the rest."""
        self.name_commitment = name_commitment

    def grant_role(self, role: str, scope: str | None, effective: str):
        if role not in ROLES:
            raise InvalidInput.coded("communities.unknown_role_roles", role=repr(role), roles=", ".join(ROLES))
        if any(r["role"] == role and r["scope"] == scope and r["to"] is None for r in self.roles):
            raise (Conflict.coded("communities.already_holds_role_for", role=role, scope=scope) if scope else
                   Conflict.coded("communities.already_holds_role", role=role))
        self._role_granted(role=role, scope=scope, effective=effective)

    @event("RoleGranted")
    def _role_granted(self, role: str, scope: str | None, effective: str):
        self.roles.append({"role": role, "scope": scope, "from": effective, "to": None})

    def revoke_role(self, role: str, scope: str | None, effective: str):
        if not any(r["role"] == role and r["scope"] == scope and r["to"] is None for r in self.roles):
            raise Conflict.coded("communities.person_does_hold_role", role=role)
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


class Token(Aggregate):
    """An API token's life in the record: for whom, until when, how it was issued, and its end.
    Never the secret nor its hash: those stay in the credential table of the state store."""

    @event("Issued")
    def __init__(self, community: str | None, person: str, expires_at: str | None, via: str,
                 invitation: str | None = None):
        self.community = community  # None for a platform administrator's token
        self.person = person
        self.expires_at = expires_at  # None: as long as the deployment (the demo's, a training deployment's)
        self.via = via
        self.revoked_at = None

    def revoke(self, reason: str, now: str):
        if self.revoked_at is not None:
            raise Conflict.coded("communities.token_already_revoked")
        self._revoked(person=self.person, reason=reason, revoked_at=now)

    @event("Revoked")
    def _revoked(self, person: str, reason: str, revoked_at: str):
        self.revoked_at = revoked_at


class Invitation(Aggregate):
    """An invitation to sign in: which household and roles it brings, until when, and whether it
    was redeemed (by whom) or revoked. The code itself stays out of the record."""

    @event("Issued")
    def __init__(self, community: str, household: str | None, roles: list, expires_at: str):
        self.community = community
        self.household = household
        self.roles = list(roles)
        self.expires_at = expires_at
        self.redeemed_by = None
        self.revoked = False

    def _must_be_usable(self, now: str) -> None:
        if self.redeemed_by is not None or self.revoked or self.expires_at <= now:
            raise NotFound.coded("communities.invitation_unknown_used_revoked")

    def redeem(self, person: str, now: str):
        self._must_be_usable(now)
        self._redeemed(person=person)

    @event("Redeemed")
    def _redeemed(self, person: str):
        self.redeemed_by = person

    def revoke(self):
        if self.redeemed_by is not None:
            raise Conflict.coded("communities.invitation_was_already_redeemed")
        if self.revoked:
            raise Conflict.coded("communities.invitation_already_revoked")
        self._revoked()

    @event("Revoked")
    def _revoked(self):
        self.revoked = True


def iso(dt: datetime) -> str:
    from services.common import clock

    return clock.format(dt)


class ErasureRequest(Aggregate):
    """A worker's or party lead's request that a person's texts and contact data go everywhere.
    Lives in the directory's log; the reason is a commitment (the requester's words)."""
    EVENT_NAMES_ARE_TYPES = True

    class PersonErasureRequested(Aggregate.Created):
        person: str
        reason_commitment: str

    def __init__(self, person: str, reason_commitment: str):
        self.person, self.reason_commitment = person, reason_commitment
