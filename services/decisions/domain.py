"""Decisions (决策): ballots, their frozen rolls, votes, resolutions and the publicity period.

Pure Python on eventsourcing aggregates; no I/O. Counting is the `rules` package's job: this module
only keeps the record a count is made from (and, for a court or an auditor, everything around it).

A Ballot is prepared (from a concluded deliberation, or by a community worker), configured (rule,
eligibility, times, secrecy), opened (the roll is frozen into BallotOpened), closed, and resolved
(ResolutionAdopted / ResolutionRejected with every number). A publicity period follows in which
objections are lodged and ruled on; ResolutionFinal ends it. The emergency path (Civil Code
art. 281 ¶2) records a justification declared by a community worker and the party-committee lead
together instead of a vote.

One Vote aggregate per (ballot, voter) keeps every vote a voter cast, so a ballot with 10,000
votes costs the same per vote as one with 10, and a concurrent duplicate fails on its version.
A proxy votes only on an authorisation: one Proxy aggregate per (ballot, principal) holds it, and
one ProxyHolder aggregate per (ballot, holder) counts what a holder holds, so the community's limit
holds under concurrent authorisations (both are saved together).

On a secret ballot nothing in the record links a voter to a choice while voting is open: a vote
carries a salted seal of its choice (`rules.seal`), whose salt the service keeps (its sealed
table) and reveals in the count (VotesRevealed, saved with the resolution).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal

from eventsourcing.domain import event

import rules
from services.common import clock
from services.common.aggregate import Aggregate
from services.common.envelope import canonical
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.contracts.communities import SCOPES  # noqa: F401 - re-exported for the application
from services.contracts.decisions import (  # noqa: F401 - the ballot's statuses and units live in the contract
    ADOPTED, ANNULLED, CHANNELS, CLOSED, CONFIGURED, EMERGENCY_DECLARED, FINAL, OPEN, PREPARED, REJECTED,
    VOTING_UNITS,
)

# Who votes. Owners' matters use the area-and-headcount rule; tenants vote only under the
# residents' presets; a council ballot is for the council's members.
UNITS_BY_PRESET = {
    "owners_ordinary": ("owner",),
    "owners_major": ("owner",),
    "residents_meeting": ("resident", "household"),
    "council": ("council",),
    "generic": VOTING_UNITS,
}
OWNERS_PRESETS = ("owners_ordinary", "owners_major")
OWNERS_NOTICE_DAYS = 15  # owners' assemblies: 15 days' notice by national regulation
# Methods that decide a motion: under them a single option is a yes/no motion on that option.
MOTION_METHODS = ("majority", "supermajority", "consent")

RESOLVED = (ADOPTED, REJECTED)
SETTLED = (FINAL, ANNULLED)  # nothing more happens to the ballot (a re-run is a new ballot)

ROLE_WORKER, ROLE_LEAD = "community_worker", "party_lead"
DEFAULT_PROXY_LIMIT = 3  # authorisations one person may hold on one ballot, unless the community says otherwise
REVEALS_PER_EVENT = 500  # a count of 10,000 votes is revealed in 20 events, not one of megabytes


def required_notice_days(preset: str, community_rules: dict) -> int:
    """Days between the notice (configuration) and the opening: the community's rule, and for
    owners' matters at least the national 15 days."""
    days = int(community_rules.get("ballot_notice_days", 7))
    return max(days, OWNERS_NOTICE_DAYS) if preset in OWNERS_PRESETS else days


def vote_receipt(ballot: str, vote: str, version: int, choice, nonce: str) -> str:
    """The receipt a voter finds on the bulletin board: it binds the recorded vote (which keeps the
    nonce) and says nothing about who cast it."""
    payload = {"ballot": ballot, "vote": vote, "version": version, "choice": choice, "nonce": nonce}
    return hashlib.sha256(canonical(payload)).hexdigest()


def sealed_vote_receipt(ballot: str, vote: str, version: int, sealed_choice: str) -> str:
    """A secret ballot's receipt binds the seal instead of the choice, so it can be published (and
    recomputed from the event) while the choice stays sealed; the seal binds the choice."""
    payload = {"ballot": ballot, "vote": vote, "version": version, "sealed_choice": sealed_choice}
    return hashlib.sha256(canonical(payload)).hexdigest()


def _upcast_adding(**defaults):
    """An eventsourcing upcaster (stored event state, version n to n+1) that adds fields."""
    def upcast(state: dict) -> None:
        for name, value in defaults.items():
            state.setdefault(name, value)
    return staticmethod(upcast)


def version_event(event_class, version: int, **added) -> None:
    """Declare that `event_class` is at `version`, whose one step from the previous version added
    `added` fields (with these values for events stored before). Stored old versions are upcast on
    read; envelopes carry `event_version`, and readers of envelopes (rules.record, the audit
    replay) take a missing field as its default."""
    event_class.class_version = version
    setattr(event_class, f"upcast_v{version - 1}_v{version}", _upcast_adding(**added))


# ---- the roll ------------------------------------------------------------------------------------
def build_roll(voting_unit: str, facts: list, at: datetime) -> list[rules.RollEntry]:
    """The frozen roll from the directory's facts as they stood at `at` (the opening).

    facts: for "owner" the units in scope ({unit, area, owners, representative, developer_unsold});
    for "resident" and "household" the residents ({person, household, adult}); for "council" the
    members' person ids. The directory answers as of `at`, so ownership needs no dates here.
    """
    day: date = at.date()
    if voting_unit == "owner":
        units = [
            rules.Unit(
                unit=u["unit"], area=Decimal(u["area"]),
                owners=tuple(rules.Ownership(o) for o in u["owners"]),
                developer_unsold=bool(u["developer_unsold"]), representative=u.get("representative"),
            )
            for u in facts
        ]
        return rules.build_owner_roll(units, day)
    if voting_unit == "resident":
        return rules.build_resident_roll(
            [rules.Resident(r["person"], r.get("household"), adult=bool(r["adult"])) for r in facts], day)
    if voting_unit == "household":
        # One household one vote, cast by its adults: a household without an adult resident
        # (an empty flat) cannot take part and does not weigh on the quorum.
        with_adults = sorted({r["household"] for r in facts if r["adult"] and r.get("household")})
        return rules.build_household_roll([rules.Household(h) for h in with_adults], day)
    if voting_unit == "council":
        return rules.build_resident_roll([rules.Resident(p, adult=True) for p in facts], day)
    raise InvalidInput.coded("decisions.voting_unit_one", voting_units=", ".join(VOTING_UNITS))


# ---- the ballot ----------------------------------------------------------------------------------
class Ballot(Aggregate):
    """A ballot (or an emergency) from preparation to its final resolution; see docs/events/decisions.md."""

    EVENT_NAMES_ARE_TYPES = True

    @event("BallotPrepared")
    def __init__(self, community: str, case: str, title_commitment: str | None,
                 description_commitment: str | None, options: list, scope: str, scope_id: str | None,
                 category: str | None, consultation: str | None, proposal: str | None, convener: str | None,
                 suggested_rule: str | dict | None, rerun_of: str | None):
        self.community, self.case = community, case
        self.title_commitment = title_commitment
        self.description_commitment = description_commitment
        self.options = list(options)
        self.scope, self.scope_id, self.category = scope, scope_id, category
        self.consultation, self.proposal, self.convener = consultation, proposal, convener
        self.suggested_rule = suggested_rule
        self.rerun_of, self.rerun = rerun_of, None
        self.status = PREPARED
        self.config: dict | None = None
        self.opened: dict | None = None  # what a count needs from BallotOpened (see rules.record)
        self.roll: dict[str, dict] = {}
        self.roll_hash: str | None = None
        self.not_opened_reason: str | None = None
        self.closed_at: str | None = None
        self.result: dict | None = None
        self.publicity_until: str | None = None
        self.objections: dict[str, dict] = {}
        self.outcome: str | None = None
        self.annulment: dict | None = None
        self.abandoned: dict | None = None  # an annulled ballot that will not be re-run
        self.emergency: dict | None = None

    # -- configuration -----------------------------------------------------------------------
    @property
    def option_ids(self) -> list[str]:
        """The options voted among ([] for a motion)."""
        return [o["id"] for o in self.config["options"]]

    @property
    def rule(self) -> rules.Rule | None:
        return rules.Rule.from_dict(self.config["rule"]) if self.config else None

    @property
    def secret(self) -> bool:
        return bool(self.config and self.config["secret"])

    @property
    def changeable(self) -> bool:
        return bool(self.config and self.config["changeable"])

    def _must_be(self, *statuses: str, doing: str) -> None:
        if self.status not in statuses:
            raise Conflict.coded("decisions.ballot", doing=doing, status=self.status.replace("_", " "))

    def configure(self, *, rule: rules.Rule, voting_unit: str, options: list | None, opens_at: datetime,
                  closes_at: datetime, secret: bool, changeable: bool, community_rules: dict, now: datetime):
        if self.status == OPEN:
            raise Conflict.coded("decisions.ballot_open_rule_options")
        self._must_be(PREPARED, CONFIGURED, doing="change the ballot's configuration")
        if voting_unit not in UNITS_BY_PRESET[rule.preset]:
            raise InvalidInput.coded("decisions.rule_counts_votes_votes", preset=rule.preset,
                                     units_by_preset=" or ".join(UNITS_BY_PRESET[rule.preset]), voting_unit=voting_unit)
        options = self.options if options is None else options
        voted, motion = options, None
        if len(options) == 1 and rule.method in MOTION_METHODS:
            voted, motion = [], options[0]  # agree / disagree / abstain on the one option
        try:
            rules.check_options(rule, [o["id"] for o in voted])
            rules.check_rule_for_matter(self.category, rule)
        except rules.RulesError as exc:
            raise InvalidInput.coded("decisions.rules_refused", reason=str(exc)) from None
        proxy_limit = community_rules.get("proxy_limit", DEFAULT_PROXY_LIMIT)
        notice_days = required_notice_days(rule.preset, community_rules)
        if opens_at < now + timedelta(days=notice_days):
            raise InvalidInput.coded("decisions.rule_needs_days_notice", preset=rule.preset, notice_days=notice_days,
                                     now=clock.format(now + timedelta(days=notice_days)))
        if closes_at <= opens_at:
            raise InvalidInput.coded("decisions.closes_after_opens")
        self._configured(
            rule=rule.to_dict(), voting_unit=voting_unit, candidates=options, options=voted, motion=motion,
            opens_at=clock.format(opens_at), closes_at=clock.format(closes_at), secret=secret, changeable=changeable,
            notice_days=notice_days, publicity_days=int(community_rules.get("publicity_days", 7)),
            proxy_limit=int(proxy_limit),
        )

    @event("BallotConfigured")
    def _configured(self, rule: dict, voting_unit: str, candidates: list, options: list, motion: dict | None,
                    opens_at: str, closes_at: str, secret: bool, changeable: bool, notice_days: int,
                    publicity_days: int, proxy_limit: int | None):
        self.options = list(candidates)
        self.config = {"rule": rule, "voting_unit": voting_unit, "options": list(options), "motion": motion,
                       "opens_at": opens_at, "closes_at": closes_at, "secret": secret, "changeable": changeable,
                       "notice_days": notice_days, "publicity_days": publicity_days, "proxy_limit": proxy_limit}
        self.status = CONFIGURED

    @property
    def proxy_limit(self) -> int:
        """Frozen at the notice (BallotConfigured version 2); a ballot configured before has the default."""
        limit = self.config.get("proxy_limit")
        return DEFAULT_PROXY_LIMIT if limit is None else limit

    # -- opening: the roll is frozen ---------------------------------------------------------
    def open(self, roll: list[rules.RollEntry]):
        self._must_be(CONFIGURED, doing="open the ballot")
        c = self.config
        try:  # configured before the law's minimum was checked: it still cannot open on a weaker rule
            rules.check_rule_for_matter(self.category, self.rule)
        except rules.RulesError as exc:
            raise InvalidInput.coded("decisions.rules_refused", reason=str(exc)) from None
        self._opened(
            roll=[e.to_dict() for e in roll], roll_hash=rules.roll_hash(roll), rule=c["rule"], options=c["options"],
            motion=c["motion"], voting_unit=c["voting_unit"], opens_at=c["opens_at"], closes_at=c["closes_at"],
            secret=c["secret"], changeable=c["changeable"],
        )

    @event("BallotOpened")
    def _opened(self, roll: list, roll_hash: str, rule: dict, options: list, motion: dict | None, voting_unit: str,
                opens_at: str, closes_at: str, secret: bool, changeable: bool):
        self.opened = {"roll": roll, "roll_hash": roll_hash, "rule": rule, "options": options, "secret": secret}
        self.roll = {e["voter"]: e for e in roll}
        self.roll_hash = roll_hash
        self.status = OPEN

    def not_opened(self, reason: str):
        """The directory gave no valid roll at the opening: back to prepared, to be set up again."""
        self._must_be(CONFIGURED, doing="record a failed opening")
        self._not_opened(reason=reason)

    @event("BallotNotOpened")
    def _not_opened(self, reason: str):
        self.not_opened_reason = reason
        self.status = PREPARED

    # -- voting --------------------------------------------------------------------------------
    def check_accepts_votes(self, now: datetime) -> None:
        if self.status != OPEN:
            if self.status in (PREPARED, CONFIGURED):
                raise (Conflict.coded("decisions.ballot_not_open_yet_opens_at", opens_at=self.config["opens_at"])
                       if self.config else Conflict.coded("decisions.ballot_not_open_yet"))
            raise Conflict.coded("decisions.ballot_votes_longer_accepted", status=self.status.replace("_", " "))
        if clock.format(now) >= self.config["closes_at"]:
            raise Conflict.coded("decisions.voting_closed_votes_longer", closes_at=self.config["closes_at"])

    def check_accepts_proxies(self, now: datetime) -> None:
        """Authorisations are given (and revoked) from the notice until voting closes."""
        if self.status == CONFIGURED:
            return
        if self.status != OPEN:
            raise Conflict.coded("decisions.proxy_authorised_once_ballot", status=self.status.replace("_", " "))
        self.check_accepts_votes(now)

    def roll_entry(self, voter: str) -> dict:
        entry = self.roll.get(voter)
        if entry is None:
            raise Forbidden.coded("decisions.ballot_voter_roll_roll")
        return entry

    def normalised_choice(self, choice):
        """The choice in its canonical JSON form, or InvalidInput saying what this ballot accepts."""
        try:
            checked = rules.check_choice(self.rule, self.option_ids, choice)
        except rules.RulesError as exc:
            raise InvalidInput.coded("decisions.invalid_choice", exc=exc) from None
        return rules.Vote("_", checked).to_dict()["choice"]

    # -- closing and the resolution -----------------------------------------------------------
    def close(self, reason: str, now: datetime):
        self._must_be(OPEN, doing="close the ballot")
        self._closed(reason=reason, closed_at=clock.format(now))

    @event("BallotClosed")
    def _closed(self, reason: str, closed_at: str):
        self.closed_at = closed_at
        self.status = CLOSED

    def reveal(self, reveals: list[dict]):
        """Open every sealed vote recorded before the close: {vote, version, choice, salt} each,
        in parts of REVEALS_PER_EVENT (at least one part, so the record says "nothing sealed")."""
        self._must_be(CLOSED, doing="reveal the votes")
        parts = max(1, -(-len(reveals) // REVEALS_PER_EVENT))
        for i in range(parts):
            self._votes_revealed(ballot=str(self.id), part=i + 1, parts=parts,
                                 reveals=reveals[i * REVEALS_PER_EVENT:(i + 1) * REVEALS_PER_EVENT])

    @event("VotesRevealed")
    def _votes_revealed(self, ballot: str, part: int, parts: int, reveals: list):
        pass

    @property
    def revealed(self) -> bool:
        """Are counts and choices public? Always on an open ballot; on a secret one from the count
        on (its reveal is saved with the resolution)."""
        return not self.secret or self.result is not None

    def resolve(self, result: rules.Result, now: datetime):
        self._must_be(CLOSED, doing="record a resolution")
        until = clock.format(now + timedelta(days=self.config["publicity_days"]))
        data = {"ballot": str(self.id), "result": result.to_dict(), "publicity_until": until}
        if result.adopted:
            self._adopted(**data)
        else:
            self._rejected(**data)

    @event("ResolutionAdopted")
    def _adopted(self, ballot: str, result: dict, publicity_until: str):
        self._resolved(ADOPTED, result, publicity_until)

    @event("ResolutionRejected")
    def _rejected(self, ballot: str, result: dict, publicity_until: str):
        self._resolved(REJECTED, result, publicity_until)

    def _resolved(self, status: str, result: dict, publicity_until: str):
        self.result, self.publicity_until, self.status = result, publicity_until, status

    # -- the publicity period (公示期) -----------------------------------------------------------
    def lodge_objection(self, objection: str, text_commitment: str, now: datetime):
        self._must_be(*RESOLVED, doing="lodge an objection")
        if clock.format(now) >= self.publicity_until:
            raise Conflict.coded("decisions.publicity_period_ended", publicity_until=self.publicity_until)
        self._objection_lodged(objection=objection, text_commitment=text_commitment)

    @event("ObjectionLodged")
    def _objection_lodged(self, objection: str, text_commitment: str):
        self.objections[objection] = {"text_commitment": text_commitment, "ruling": None}

    def may_rule(self, actor: str, roles: list[str]) -> bool:
        """The convener rules on objections; without a consultation (or a known convener), the lead."""
        return actor == self.convener if self.convener else ROLE_LEAD in roles

    def check_ruling(self, objection: str, actor: str, roles: list[str]) -> None:
        """Refuse a ruling that cannot be made (before anything is stored for it)."""
        self._must_be(*RESOLVED, doing="rule on an objection")
        found = self.objections.get(objection)
        if found is None:
            raise NotFound.coded("decisions.objection_does_exist_ballot", objection=objection)
        if not self.may_rule(actor, roles):
            raise (Forbidden.coded("decisions.objections_ruled_consultation_convener")
                   if self.convener else
                   Forbidden.coded("decisions.objections_ballot_without_consultation"))
        if found["ruling"] is not None:
            raise Conflict.coded("decisions.objection_already_been_ruled")

    def rule_on_objection(self, objection: str, upheld: bool, reason_commitment: str, actor: str, roles: list[str]):
        """An upheld objection annuls the resolution (the ballot may then be re-run)."""
        self.check_ruling(objection, actor, roles)
        self._objection_ruled(objection=objection, upheld=upheld, reason_commitment=reason_commitment)
        if upheld:
            self._resolution_annulled(ballot=str(self.id), objection=objection)

    @event("ObjectionRuled")
    def _objection_ruled(self, objection: str, upheld: bool, reason_commitment: str):
        self.objections[objection]["ruling"] = {"upheld": upheld, "reason_commitment": reason_commitment}

    @event("ResolutionAnnulled")
    def _resolution_annulled(self, ballot: str, objection: str):
        self.annulment = {"by": "objection", "objection": objection}
        self.status = ANNULLED

    @property
    def pending_objections(self) -> int:
        return sum(1 for o in self.objections.values() if o["ruling"] is None)

    def finalise(self, now: datetime):
        """After the publicity period, once every objection is ruled on."""
        self._must_be(*RESOLVED, doing="make the resolution final")
        if clock.format(now) < self.publicity_until:
            raise Conflict.coded("decisions.publicity_period_runs_until", publicity_until=self.publicity_until)
        if self.pending_objections:
            raise Conflict.coded("decisions.objection_waiting_ruling")
        self._final(**self._final_data(self.status, summary=_summary(self.result), justification_commitment=None))

    def _final_data(self, outcome: str, **extra) -> dict:
        """What the action stage needs to act on the decision without reading the ballot."""
        winner = None  # the option decided on: a motion's subject, or the winning option
        if self.status == ADOPTED:
            winner = self.config["motion"] or next(
                (o for o in self.config["options"] if o["id"] == self.result["winner"]), None)
        return dict(
            ballot=str(self.id), outcome=outcome, consultation=self.consultation, proposal=self.proposal,
            scope=self.scope, scope_id=self.scope_id, category=self.category, title_commitment=self.title_commitment,
            winner=winner, **extra,
        )

    @event("ResolutionFinal")
    def _final(self, ballot: str, outcome: str, consultation: str | None, proposal: str | None, scope: str,
               scope_id: str | None, category: str | None, title_commitment: str | None, winner: dict | None,
               summary: dict | None, justification_commitment: str | None):
        self.outcome = outcome
        self.status = FINAL

    # -- annulment and re-run -----------------------------------------------------------------
    def annul(self, reason_commitment: str):
        if self.status in SETTLED:
            raise (Conflict.coded("decisions.final_resolution_changed_new")
                   if self.status == FINAL else
                   Conflict.coded("decisions.ballot_already_annulled"))
        self._annulled(reason_commitment=reason_commitment)

    @event("BallotAnnulled")
    def _annulled(self, reason_commitment: str):
        self.annulment = {"by": "worker", "reason_commitment": reason_commitment}
        self.status = ANNULLED

    def rerun_as(self, new_ballot: str):
        self._must_be(ANNULLED, doing="re-run the ballot")
        if self.abandoned:
            raise Conflict.coded("decisions.ballot_will_re_run")
        if self.rerun:
            raise Conflict.coded("decisions.ballot_already_been_re", rerun=self.rerun)
        self._rerun(rerun=new_ballot)

    @event("BallotRerun")
    def _rerun(self, rerun: str):
        self.rerun = rerun

    def abandon(self, reason_commitment: str):
        """An annulled ballot (by a worker, or its resolution by an upheld objection) that will not
        be re-run: said once, with a reason, so that the case ends (the actions service closes it
        as `annulled`) instead of waiting for a re-run forever."""
        self._must_be(ANNULLED, doing="close the ballot without a re-run")
        if self.rerun:
            raise Conflict.coded("decisions.ballot_already_been_re", rerun=self.rerun)
        if self.abandoned:
            raise Conflict.coded("decisions.ballot_already_been_closed")
        self._abandoned(reason_commitment=reason_commitment, annulment=(self.annulment or {}).get("by"))

    @event("BallotAbandoned")
    def _abandoned(self, reason_commitment: str, annulment: str | None):
        self.abandoned = {"reason_commitment": reason_commitment, "annulment": annulment}

    # -- emergency (art. 281 ¶2) ---------------------------------------------------------------
    def declare_emergency(self, justification_commitment: str, declared_by: str, declared_as: str):
        self._must_be(PREPARED, CONFIGURED, doing="declare an emergency")
        self._emergency_declared(justification_commitment=justification_commitment, declared_by=declared_by,
                                 declared_as=declared_as)

    @event("EmergencyDeclared")
    def _emergency_declared(self, justification_commitment: str, declared_by: str, declared_as: str):
        self.emergency = {"justification_commitment": justification_commitment, "declared_by": declared_by,
                          "declared_as": declared_as}
        self.status = EMERGENCY_DECLARED

    def confirm_emergency(self, actor: str, roles: list[str]):
        """The second of the two: a community worker and the party-committee lead declare together."""
        self._must_be(EMERGENCY_DECLARED, doing="confirm an emergency")
        if actor == self.emergency["declared_by"]:
            raise Forbidden.coded("decisions.emergency_declared_two_people")
        confirmed_as = ROLE_LEAD if self.emergency["declared_as"] == ROLE_WORKER else ROLE_WORKER
        if confirmed_as not in roles:
            raise Forbidden.coded("decisions.emergency_needs_lead" if confirmed_as == ROLE_LEAD else
                                  "decisions.emergency_needs_worker")
        self._emergency_confirmed(confirmed_by=actor, confirmed_as=confirmed_as)
        self._final(**self._final_data("emergency", summary=None,
                                       justification_commitment=self.emergency["justification_commitment"]))

    @event("EmergencyConfirmed")
    def _emergency_confirmed(self, confirmed_by: str, confirmed_as: str):
        self.emergency.update(confirmed_by=confirmed_by, confirmed_as=confirmed_as)


def declaring_role(roles: list[str]) -> str:
    """The role in which someone declares an emergency (the other one must confirm it)."""
    for role in (ROLE_WORKER, ROLE_LEAD):
        if role in roles:
            return role
    raise Forbidden.coded("decisions.emergency_declared_community_worker")


def _summary(result: dict | None) -> dict | None:
    """The numbers the action stage and residents read first; the full result is in the resolution."""
    if result is None:
        return None
    keys = ("outcome", "winner", "eligible_area", "eligible_heads", "participating_area", "participating_heads",
            "agreeing_area", "agreeing_heads")
    return {k: result.get(k) for k in keys}


# ---- the vote ------------------------------------------------------------------------------------
class Vote(Aggregate):
    """One voter's votes on one ballot: the first VoteCast, every change, and refusals kept.

    For a secret ballot `voter` is None and the aggregate id is an HMAC only the service can compute;
    the choice is recorded as `sealed_choice` only (and who cast a proxy vote as `cast_by_seal`).
    """

    EVENT_NAMES_ARE_TYPES = True

    @event("VoteCast")
    def __init__(self, community: str, ballot: str, voter: str | None, receipt: str, nonce: str | None, choice,
                 sealed_choice: str | None, weight: str, headcount: int, channel: str, paper_serial: str | None,
                 proxy_authorisation_commitment: str | None, cast_by: str | None, cast_by_seal: str | None,
                 entered_by: str | None):
        self.community, self.ballot, self.voter = community, ballot, voter
        self._apply(receipt, choice, sealed_choice, channel, paper_serial, cast_by, cast_by_seal)
        self.refusals = 0

    def _apply(self, receipt, choice, sealed_choice, channel, paper_serial, cast_by, cast_by_seal):
        self.receipt, self.choice, self.sealed_choice = receipt, choice, sealed_choice
        self.channel, self.paper_serial, self.cast_by, self.cast_by_seal = channel, paper_serial, cast_by, cast_by_seal

    @staticmethod
    def _recorded(ballot: str, vote: str, version: int, choice, sealed_choice: str | None) -> dict:
        """What the record holds of the choice: in the clear with a nonce'd receipt, or sealed."""
        if sealed_choice:
            return {"choice": None, "sealed_choice": sealed_choice, "nonce": None,
                    "receipt": sealed_vote_receipt(ballot, vote, version, sealed_choice)}
        nonce = secrets.token_hex(16)
        return {"choice": choice, "sealed_choice": None, "nonce": nonce,
                "receipt": vote_receipt(ballot, vote, version, choice, nonce)}

    @classmethod
    def cast(cls, vote_id, *, community: str, ballot: str, voter: str | None, choice, weight: str, headcount: int,
             channel: str, sealed_choice: str | None = None, paper_serial: str | None = None,
             cast_by: str | None = None, cast_by_seal: str | None = None, entered_by: str | None = None) -> "Vote":
        return cls._create(
            cls.VoteCast, id=vote_id, community=community, ballot=ballot, voter=voter,
            **cls._recorded(ballot, str(vote_id), 1, choice, sealed_choice), weight=weight, headcount=headcount,
            channel=channel, paper_serial=paper_serial, proxy_authorisation_commitment=None, cast_by=cast_by,
            cast_by_seal=cast_by_seal, entered_by=entered_by,
        )

    def change(self, *, choice, weight: str, headcount: int, channel: str, changeable: bool,
               sealed_choice: str | None = None, paper_serial: str | None = None, cast_by: str | None = None,
               cast_by_seal: str | None = None, entered_by: str | None = None,
               correction_reason_commitment: str | None = None) -> None:
        """A later vote through the same channel, on a changeable ballot; or a community worker's
        correction of a paper ballot entered wrongly (with a reason), on any ballot."""
        if not changeable and correction_reason_commitment is None:
            raise Conflict.coded("decisions.ballot_does_allow_changing", receipt=self.receipt)
        self._changed(
            ballot=self.ballot, voter=self.voter,
            **self._recorded(self.ballot, str(self.id), self.version + 1, choice, sealed_choice),
            weight=weight, headcount=headcount, channel=channel, paper_serial=paper_serial,
            proxy_authorisation_commitment=None, cast_by=cast_by, cast_by_seal=cast_by_seal, entered_by=entered_by,
            correction_reason_commitment=correction_reason_commitment,
        )

    @event("VoteChanged")
    def _changed(self, ballot: str, voter: str | None, receipt: str, nonce: str | None, choice,
                 sealed_choice: str | None, weight: str, headcount: int, channel: str, paper_serial: str | None,
                 proxy_authorisation_commitment: str | None, cast_by: str | None, cast_by_seal: str | None,
                 entered_by: str | None, correction_reason_commitment: str | None):
        self._apply(receipt, choice, sealed_choice, channel, paper_serial, cast_by, cast_by_seal)

    def same_channel(self, channel: str) -> bool:
        return channel == self.channel

    @event("VoteRefused")
    def refuse(self, ballot: str, voter: str | None, channel: str, paper_serial: str | None, reason: str,
               entered_by: str | None):
        """A vote through a second channel: refused, and kept in the record (with the worker who
        entered it, if on paper)."""
        self.refusals += 1

    def channel_taken(self) -> Conflict:
        """The refusal the voter themselves hears: which of their votes came first."""
        if self.channel == "paper":
            return Conflict.coded("decisions.paper_ballot_came_first", paper_serial=self.paper_serial)
        return Conflict.coded("decisions.channel_vote_came_first", channel=self.channel)


# BallotConfigured 2: the proxy limit frozen at the notice. Vote events 2: a secret ballot's choice
# sealed, who cast a proxy vote, a worker's correction of a paper ballot, the worker behind a refusal.
version_event(Ballot.BallotConfigured, 2, proxy_limit=None)
version_event(Vote.VoteCast, 2, sealed_choice=None, cast_by=None, cast_by_seal=None)
version_event(Vote.VoteChanged, 2, sealed_choice=None, cast_by=None, cast_by_seal=None,
              correction_reason_commitment=None)
version_event(Vote.VoteRefused, 2, entered_by=None)


# ---- proxies -------------------------------------------------------------------------------------
class Proxy(Aggregate):
    """A voter's (the principal's) authorisation of another person to vote for them on one ballot.

    Given on the platform by the principal, or recorded by a community worker from a paper
    authorisation with its serial; revocable by the principal until the proxy has voted. On a
    secret ballot the record names neither: the id is sealed like a vote's, and the holder is a
    salted seal whose salt only the service keeps.
    """

    EVENT_NAMES_ARE_TYPES = True

    @event("ProxyAuthorised")
    def __init__(self, community: str, ballot: str, principal: str | None, holder: str | None,
                 holder_seal: str | None, source: str, paper_serial: str | None, recorded_by: str | None):
        self.community, self.ballot, self.principal = community, ballot, principal
        self._authorise(holder, holder_seal, source, paper_serial)

    def _authorise(self, holder, holder_seal, source, paper_serial):
        self.holder, self.holder_seal, self.source, self.paper_serial = holder, holder_seal, source, paper_serial
        self.active = True

    def authorise_again(self, *, holder: str | None, holder_seal: str | None, source: str,
                        paper_serial: str | None, recorded_by: str | None) -> None:
        if self.active:
            raise Conflict.coded("decisions.proxy_already_authorised_voter")
        self._authorised_again(ballot=self.ballot, holder=holder, holder_seal=holder_seal, source=source,
                               paper_serial=paper_serial, recorded_by=recorded_by)

    @event("ProxyAuthorisedAgain")
    def _authorised_again(self, ballot: str, holder: str | None, holder_seal: str | None, source: str,
                          paper_serial: str | None, recorded_by: str | None):
        self._authorise(holder, holder_seal, source, paper_serial)

    def revoke(self) -> None:
        if not self.active:
            raise Conflict.coded("decisions.proxy_authorisation_already_been")
        self._revoked(ballot=self.ballot)

    @event("ProxyRevoked")
    def _revoked(self, ballot: str):
        self.active = False


class ProxyHolder(Aggregate):
    """How many authorisations one person holds on one ballot. The community's limit is checked on
    this one aggregate, saved with the Proxy, so two principals naming the same holder at once
    cannot exceed it: the second save fails on the version. Secret ballot: sealed id, no holder."""

    EVENT_NAMES_ARE_TYPES = True

    @event("ProxyHolderRegistered")
    def __init__(self, community: str, ballot: str, holder: str | None):
        self.community, self.ballot, self.holder = community, ballot, holder
        self.held = 0

    def take(self, limit: int) -> None:
        if self.held >= limit:
            raise Conflict.coded("decisions.person_already_holds_proxy", held=self.held, limit=limit)
        self._taken(ballot=self.ballot, held=self.held + 1)

    @event("ProxyTaken")
    def _taken(self, ballot: str, held: int):
        self.held = held

    def release(self) -> None:
        self._released(ballot=self.ballot, held=max(0, self.held - 1))

    @event("ProxyReleased")
    def _released(self, ballot: str, held: int):
        self.held = held
