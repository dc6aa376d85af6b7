"""Proposals (提议), the first of the four stages: a resident raises a topic, a community worker
screens it, residents in scope show support, and it qualifies for deliberation when the support
reaches the community's threshold before the support window closes.

Pure Python on eventsourcing aggregates; no I/O. Two aggregates:

- `Proposal`: its lifecycle (draft → submitted → screened → collecting → qualified | expired |
  withdrawn | merged, or inadmissible). It opens its own case. It never holds its supporters, so
  its cost does not grow with its support.
- `Support`: one per (proposal, supporter unit) — the person, or the household where the
  community's rule is one support per household — with an id derived from the pair, so a
  concurrent duplicate fails on its version. A withdrawn support can be given again (a new
  version of the same aggregate).
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from fractions import Fraction

from eventsourcing.domain import event

from services.common import clock
from services.common.aggregate import Aggregate, derived_id
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.contracts.proposals import (  # noqa: F401 - the contract owns what the gateway shares
    BODY_MAX, COLLECTING, DRAFT, EXPIRED, INADMISSIBLE, MERGED, QUALIFIED, REASON_MAX, SCOPES, SCREENED, STATUSES,
    SUBMITTED, TITLE_MAX, WITHDRAWN,
)

SYSTEM = "system"  # the author of a follow-up the platform raises on the residents' behalf


# ---- the community's rules --------------------------------------------------------------------
def threshold_rule(rules: dict, scope: str) -> dict:
    """The support threshold for a scope level: {"unit": ..., "count": N} or {"unit": ..., "share": "a/b"}."""
    try:
        return dict(rules["support_threshold"][scope])
    except KeyError:
        raise InvalidInput.coded("proposals.community_rules_support_threshold", scope=scope) from None


def required_supports(rule: dict, denominator: int) -> int:
    """The least whole number of supports that reaches the threshold.

    For a share this is the least s with s / denominator ≥ share, i.e. ⌈share × denominator⌉,
    computed on exact fractions; at least 1, so an empty scope cannot qualify on no support.
    """
    if "count" in rule:
        return int(rule["count"])
    return max(1, math.ceil(Fraction(rule["share"]) * denominator))


def check_scope(community: str, scope: str, scope_id: str | None, known: dict[str, set]) -> str:
    """The scope id a proposal records: the community's own id for the whole community."""
    if scope not in SCOPES:
        raise InvalidInput.coded("common.scope_one", scopes=", ".join(SCOPES))
    if scope == "community":
        if scope_id not in (None, "", community):
            raise InvalidInput.coded("proposals.proposal_whole_community_takes")
        return community
    if not scope_id:
        raise InvalidInput.coded("proposals.proposal_one_needs_id", scope=scope)
    if str(scope_id) not in known.get(scope, set()):
        raise NotFound.coded("common.does_exist_community", what=scope, value=scope_id)
    return str(scope_id)


def unit_key(support_per: str, person: str, household: str | None) -> str:
    """Who a support belongs to: the person, or their household under one-support-per-household."""
    if support_per == "household":
        if not household:
            raise Forbidden.coded("proposals.supports_here_given_per")
        return household
    return person


def support_id(proposal: str | uuid.UUID, key: str) -> uuid.UUID:
    return derived_id("support", proposal, key)


def follow_up_id(plan: str | uuid.UUID, round: int) -> uuid.UUID:  # noqa: A002
    return derived_id("follow-up", plan, round)


def _when(dt: datetime) -> str:
    return clock.format(dt)


# ---- the proposal ---------------------------------------------------------------------------------
class Proposal(Aggregate):
    @event("Drafted")
    def __init__(self, community: str, author: str, scope: str, scope_id: str, category: str,
                 title_commitment: str, body_commitment: str, original_case: str | None = None):
        self.community = community
        self.case = str(self.id)  # a proposal opens its own case
        self.original_case = original_case  # a follow-up: the case whose plan residents found unsatisfactory
        self.author = author
        self.scope = scope
        self.scope_id = scope_id
        self.category = category
        self.title_commitment = title_commitment
        self.body_commitment = body_commitment
        self.status = DRAFT
        self.support_per: str | None = None
        self.unit: str | None = None
        self.threshold: int | None = None
        self.denominator: int | None = None
        self.deadline: str | None = None

    @classmethod
    def follow_up(cls, community: str, plan: str, round: int, scope: str, scope_id: str, category: str,  # noqa: A002
                  title_commitment: str, body_commitment: str, original_case: str) -> "Proposal":
        """A follow-up raised by the platform on the residents' behalf (author `system`): its id is
        derived from (plan, round), so a replayed request opens nothing twice. It opens its own case,
        linked to the original one by `original_case` in its first event."""
        return cls._create(cls.Drafted, id=follow_up_id(plan, round), community=community, author=SYSTEM,
                           scope=scope, scope_id=scope_id, category=category, title_commitment=title_commitment,
                           body_commitment=body_commitment, original_case=str(original_case))

    # -- guards -----------------------------------------------------------------------------
    def require(self, *statuses: str, doing: str) -> None:
        if self.status not in statuses:
            raise Conflict.coded("proposals.proposal_now", status=self.status, doing=doing,
                                 extra={"status_now": self.status})

    def require_author(self, person: str, doing: str) -> None:
        if person != self.author:
            raise Forbidden.coded("proposals.proposal_author_may", doing=doing)

    def require_collecting(self, now: datetime, doing: str = "supported") -> None:
        """Supports are given and withdrawn only while collecting and before the deadline."""
        if self.status == QUALIFIED:
            raise Conflict.coded("proposals.proposal_qualified_longer", doing=doing, extra={"status_now": self.status})
        self.require(COLLECTING, doing=doing)
        if _when(now) >= self.deadline:
            raise Conflict.coded("proposals.support_window_closed", deadline=self.deadline,
                                 extra={"status_now": self.status})

    # -- commands ---------------------------------------------------------------------------
    def submit(self, person: str) -> None:
        self.require_author(person, "submit")
        self.require(DRAFT, doing="submitted")
        self._submitted()

    @event("Submitted")
    def _submitted(self):
        self.status = SUBMITTED

    def screen(self, admissible: bool, reason_commitment: str | None, category: str) -> None:
        self.require(SUBMITTED, doing="screened")
        if not admissible and not reason_commitment:
            raise InvalidInput.coded("proposals.inadmissible_proposal_needs_written")
        self._screened(admissible=admissible, reason_commitment=reason_commitment, category=category)

    @event("Screened")
    def _screened(self, admissible: bool, reason_commitment: str | None, category: str):
        self.category = category
        self.status = SCREENED if admissible else INADMISSIBLE

    def open_collection(self, support_per: str, rule: dict, denominator: int, now: datetime, window_days: int) -> None:
        """Freeze the rule, the threshold and its denominator for the whole collection."""
        self.require(SCREENED, doing="opened for support")
        self._collection_opened(
            support_per=support_per, unit=rule["unit"], threshold_rule=dict(rule), denominator=int(denominator),
            threshold=required_supports(rule, denominator), deadline=_when(now + timedelta(days=window_days)),
        )

    @event("CollectionOpened")
    def _collection_opened(self, support_per: str, unit: str, threshold_rule: dict, denominator: int,
                           threshold: int, deadline: str):
        self.support_per = support_per
        self.unit = unit
        self.threshold = threshold
        self.denominator = denominator
        self.deadline = deadline
        self.status = COLLECTING

    def reached(self, supports: int) -> bool:
        return self.status == COLLECTING and supports >= self.threshold

    def qualify(self, supports: int) -> None:
        """Record qualification with the exact count; the data is what deliberation consumes."""
        if not self.reached(supports):
            raise Conflict.coded("proposals.supports_do_reach_threshold", supports=supports, threshold=self.threshold)
        self._qualified(
            proposal=str(self.id), scope=self.scope, scope_id=self.scope_id, category=self.category,
            title_commitment=self.title_commitment, body_commitment=self.body_commitment, author=self.author,
            supports=int(supports), threshold=self.threshold, unit=self.unit, denominator=self.denominator,
        )

    @event("Qualified")
    def _qualified(self, proposal: str, scope: str, scope_id: str, category: str, title_commitment: str,
                   body_commitment: str, author: str, supports: int, threshold: int, unit: str, denominator: int):
        self.status = QUALIFIED

    def due(self, now: datetime) -> bool:
        return self.status == COLLECTING and _when(now) >= self.deadline

    def expire(self, now: datetime) -> None:
        if not self.due(now):
            raise Conflict.coded("proposals.proposal_collecting_support_past")
        self._expired(deadline=self.deadline)

    @event("Expired")
    def _expired(self, deadline: str):
        self.status = EXPIRED

    def withdraw(self, person: str) -> None:
        self.require_author(person, "withdraw")
        if self.status == QUALIFIED:
            raise Conflict.coded("proposals.proposal_qualified_longer_withdrawn", extra={"status_now": self.status})
        self.require(DRAFT, SUBMITTED, COLLECTING, doing="withdrawn")
        self._withdrawn()

    @event("Withdrawn")
    def _withdrawn(self):
        self.status = WITHDRAWN

    def merge_into(self, target: "Proposal", carries_supports: bool) -> None:
        """A duplicate goes into another proposal; its supports carry over (see `receive_merge`)."""
        if target.id == self.id:
            raise InvalidInput.coded("proposals.proposal_merged_into_itself")
        self.require(SUBMITTED, COLLECTING, doing="merged")
        target.require(SUBMITTED, COLLECTING, doing="merged into")
        if carries_supports and target.status != COLLECTING:
            raise Conflict.coded("proposals.proposal_supports_merged_into")
        self._merged(into=str(target.id))

    @event("Merged")
    def _merged(self, into: str):
        self.status = MERGED

    def receive_merge(self, source: "Proposal", carried: int) -> None:
        if source.status != MERGED:
            raise Conflict.coded("proposals.merge_source_proposal_first")
        self._merge_received(merged_from=str(source.id), carried=int(carried))

    @event("MergeReceived")
    def _merge_received(self, merged_from: str, carried: int):
        pass


# ---- one support ------------------------------------------------------------------------------
class Support(Aggregate):
    """One supporter unit's support for one proposal (unit: "resident" or "household")."""

    @event("Given")
    def __init__(self, community: str, proposal: str, unit: str, person: str, household: str | None,
                 carried_from: str | None = None):
        self.community = community
        self.proposal = proposal
        self.case = proposal
        self.unit = unit
        self.person = person
        self.household = household
        self.current = True

    @classmethod
    def give(cls, community: str, proposal: str, support_per: str, person: str, household: str | None,
             carried_from: str | None = None) -> "Support":
        key = unit_key(support_per, person, household)
        return cls._create(cls.Given, id=support_id(proposal, key), community=community, proposal=str(proposal),
                           unit=support_per, person=person, household=household, carried_from=carried_from)

    def _already(self) -> Conflict:
        return Conflict.coded("proposals.household_already_supports" if self.unit == "household" else
                              "proposals.you_already_support")

    def give_again(self, person: str, household: str | None, carried_from: str | None = None) -> None:
        if self.current:
            raise self._already()
        self._given_again(proposal=self.proposal, unit=self.unit, person=person, household=household,
                          carried_from=carried_from)

    @event("GivenAgain")
    def _given_again(self, proposal: str, unit: str, person: str, household: str | None, carried_from: str | None):
        self.person = person
        self.household = household
        self.current = True

    def withdraw(self, person: str) -> None:
        if not self.current:
            raise Conflict.coded("proposals.support_yours_proposal_withdraw")
        self._withdrawn(proposal=self.proposal, unit=self.unit, person=person, household=self.household)

    @event("Withdrawn")
    def _withdrawn(self, proposal: str, unit: str, person: str, household: str | None):
        self.current = False
