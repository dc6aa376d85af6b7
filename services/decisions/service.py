"""The decisions service: thin nameko entrypoints over the DecisionsApp, and its deadlines.

Directory facts come from the communities service over RPC (through services.common.directory) and
are handed to the application as plain data. A one-second timer opens, closes, resolves and
finalises ballots on the one clock; with several instances each runs it, and optimistic concurrency
lets exactly one of them act.
"""
from __future__ import annotations

import logging

from nameko.timer import timer

from services.common import clock
from services.common.consumer import EventSourcedSink
from services.common.directory import Directory
from services.common.errors import Forbidden, InvalidInput, NotFound
from services.common.erasure import with_erasure
from services.common.rpc import rpc
from services.common.runtime import Platform, ServiceBase, command, query
from services.contracts.every_service import READ_TEXTS

from . import tables
from .application import DecisionsApp
from .domain import VOTING_UNITS

log = logging.getLogger(__name__)


class DecisionsService(ServiceBase):
    name = "decisions"
    platform = Platform(
        "decisions", app_factory=DecisionsApp, tables=(tables.metadata,),
        consumer_sink=lambda rt: EventSourcedSink(rt.app, with_erasure(
            "decisions", rt.app, rt.app.on_deliberation_event, None, sources=("deliberation",))),
    )
    communities = Directory.rpc_proxy()

    @property
    def app(self) -> DecisionsApp:
        return self.platform.app

    def _read_texts(self, source: str, commitments: list[str]) -> dict:
        """Another stage's texts (a ballot prepared from a deliberation shows the consultation's
        title and options); a stage that is down leaves them null for now."""
        return self.platform.send_or_none(READ_TEXTS[source](commitments=commitments)) or {}

    # ---- the directory -----------------------------------------------------------------------
    @property
    def directory(self) -> Directory:
        """The directory over this worker's proxy: each reply unwrapped once, a refusal raised."""
        return Directory.of_proxy(self.communities)

    def _facts(self, community: str, voting_unit: str, scope: str, scope_id: str | None, at: str | None) -> list:
        """What the roll of `voting_unit` is built from, as the directory stood at `at` (None: now)."""
        if voting_unit == "owner":
            return self.directory.units_in_scope(community, scope, scope_id, at)
        if voting_unit in ("resident", "household"):
            return self.directory.residents_in_scope(community, scope, scope_id, at)
        if voting_unit == "council":
            return self.directory.role_holders(community, "council_member", None, at)
        raise InvalidInput.coded("decisions.voting_unit_one", voting_units=", ".join(VOTING_UNITS))

    def _check_place(self, community: str, scope: str, scope_id: str | None) -> None:
        """A ballot's compound or building must be one of the community's own: the directory says."""
        if scope not in ("compound", "building") or scope_id is None:
            return
        if not self.directory.has_place(community, scope, str(scope_id)):
            raise NotFound.coded("common.does_exist_community", what=scope, value=scope_id)

    def _check_person(self, community: str, person: str, what: str) -> None:
        """A person a command names (a proxy holder) must be one of the community's people."""
        try:
            self.directory.get_person(community, person)
        except (NotFound, InvalidInput):
            raise NotFound.coded("common.does_exist_community", what=what, value=person) from None

    def _check_voter(self, community: str, ballot_id, voter: str) -> None:
        """A voter id a command names for someone else (a paper ballot, a proxy) is on the ballot's
        roll, or at least a person or household of this community; an id of another community is
        not found, whatever it is (the application then refuses one not on the roll)."""
        ballot = self.app.ballot(community, ballot_id, copy=False)
        if voter in ballot.roll:
            return
        directory = self.directory
        for ask in (directory.get_person, directory.get_household):
            try:
                ask(community, voter)
                return
            except (NotFound, InvalidInput):
                continue
        raise NotFound.coded("decisions.voter_does_exist_community", voter=voter)

    def _check_worker(self, community: str, actor: str, doing: str) -> None:
        """Paper enters the record through a community worker only: the directory's roles say who."""
        if actor not in self.directory.role_holders(community, "community_worker"):
            raise Forbidden.coded("decisions.community_worker_may", doing=doing)

    def _voter(self, community: str, ballot_id, person: str, loaded=None) -> str:
        """The caller's id on the roll: the person, or under one-household-one-vote their household
        (any adult of it may cast its vote). `loaded`: the ballot, if the caller has just read it."""
        ballot = loaded if loaded is not None else self.app.ballot(community, ballot_id, copy=False)
        if not ballot.config or ballot.config["voting_unit"] != "household":
            return person
        try:
            found = self.directory.get_person(community, person, ballot.config["opens_at"])
        except NotFound:
            return person  # not in the directory, so not on the roll: the application refuses
        return found["household"] if found["adult"] and found["household"] else person

    def _roll_voter(self, community: str, ballot, person: str) -> str:
        """As `_voter`, for a list: a person the directory does not know (or refuses) is looked for
        on the roll as themselves, so one ballot cannot take the whole list down. Only a household
        ballot asks the directory."""
        if not ballot.config or ballot.config["voting_unit"] != "household":
            return person
        try:
            return self._voter(community, str(ballot.id), person)
        except (NotFound, InvalidInput, Forbidden):
            return person

    # ---- commands ------------------------------------------------------------------------------
    @rpc
    @command
    def prepare_ballot(self, actor, community, title, scope, scope_id=None, description=None, options=None,
                       category=None):
        self._check_place(community, scope, scope_id)
        return {"id": self.app.prepare_ballot(actor, community, title, scope, scope_id, description, options,
                                              category)}

    @rpc
    @command
    def configure_ballot(self, actor, community, ballot, configuration):
        b = self.app.ballot(community, ballot, copy=False)
        rules = self.directory.rules(community)
        facts = self._facts(community, configuration.get("voting_unit"), b.scope, b.scope_id, None)
        return self.app.configure_ballot(actor, community, ballot, community_rules=rules, facts_now=facts,
                                         **configuration)

    @rpc
    @command
    def cast_vote(self, actor, community, ballot, choice, voter=None):
        """The caller votes, or (naming another `voter`) votes as that voter's authorised proxy."""
        loaded = self.app.ballot(community, ballot, copy=False)  # read once for the roll and the vote
        own = self._voter(community, ballot, actor, loaded)
        if voter is None or voter == own:
            return self.app.cast_vote(actor, community, ballot, own, choice, read_texts=self._read_texts,
                                      loaded=loaded)
        self._check_voter(community, ballot, voter)
        return self.app.cast_vote(actor, community, ballot, voter, choice, channel="proxy",
                                  read_texts=self._read_texts)

    @rpc
    @command
    def enter_paper_ballot(self, actor, community, ballot, voter, choice, paper_serial, correction_reason=None):
        self._check_worker(community, actor, "enter a paper ballot")
        self._check_voter(community, ballot, voter)
        return self.app.cast_vote(actor, community, ballot, voter, choice, channel="paper", paper_serial=paper_serial,
                                  correction_reason=correction_reason, read_texts=self._read_texts)

    @rpc
    @command
    def authorise_proxy(self, actor, community, ballot, holder):
        """The caller (the principal) authorises `holder` to vote for them on this ballot."""
        self._check_person(community, holder, "proxy holder")
        return self.app.authorise_proxy(actor, community, ballot, self._voter(community, ballot, actor), holder)

    @rpc
    @command
    def record_paper_proxy(self, actor, community, ballot, principal, holder, paper_serial):
        """A community worker records a paper authorisation of `holder` by `principal`, with its serial."""
        self._check_worker(community, actor, "record a paper proxy authorisation")
        self._check_voter(community, ballot, principal)
        self._check_person(community, holder, "proxy holder")
        return self.app.authorise_proxy(actor, community, ballot, principal, holder, paper_serial=paper_serial)

    @rpc
    @command
    def revoke_proxy(self, actor, community, ballot):
        return self.app.revoke_proxy(actor, community, ballot, self._voter(community, ballot, actor))

    @rpc
    @command
    def lodge_objection(self, actor, community, ballot, text):
        return self.app.lodge_objection(actor, community, ballot, text)

    @rpc
    @command
    def rule_on_objection(self, actor, roles, community, ballot, objection, upheld, reason):
        return self.app.rule_on_objection(actor, roles, community, ballot, objection, upheld, reason)

    @rpc
    @command
    def annul_ballot(self, actor, community, ballot, reason):
        return self.app.annul_ballot(actor, community, ballot, reason)

    @rpc
    @command
    def abandon_ballot(self, actor, roles, community, ballot, reason):
        return self.app.abandon_ballot(actor, roles, community, ballot, reason)

    @rpc
    @command
    def rerun_ballot(self, actor, community, ballot):
        return {"id": self.app.rerun_ballot(actor, community, ballot)}

    @rpc
    @command
    def declare_emergency(self, actor, roles, community, justification, title=None, scope="community",
                          scope_id=None, category=None, ballot=None):
        self._check_place(community, scope, scope_id)
        return {"id": self.app.declare_emergency(actor, roles, community, justification, title, scope, scope_id,
                                                 category, ballot)}

    @rpc
    @command
    def confirm_emergency(self, actor, roles, community, ballot):
        return self.app.confirm_emergency(actor, roles, community, ballot)

    # ---- queries -------------------------------------------------------------------------------
    @rpc
    @query
    def get_ballot(self, community, ballot):
        return self.app.ballot_view(community, ballot, self._read_texts)

    @rpc
    @query
    def list_ballots(self, community, status=None):
        return self.app.list_ballots(community, status, self._read_texts)

    @rpc
    @query
    def roll(self, community, ballot):
        return self.app.roll(community, ballot)

    @rpc
    @query
    def roll_preview(self, community, ballot, voting_unit):
        b = self.app.ballot(community, ballot, copy=False)
        facts = self._facts(community, voting_unit, b.scope, b.scope_id, None)
        return self.app.roll_preview(community, ballot, voting_unit, facts)

    @rpc
    @query
    def board(self, community, ballot, receipt=None, after=None, limit=1000):
        return self.app.board(community, ballot, receipt, after, limit, self._read_texts)

    @rpc
    @command
    def my_vote(self, actor, community, ballot):
        return self.app.my_vote(community, ballot, self._voter(community, ballot, actor))

    @rpc
    @query
    def my_proxy(self, actor, community, ballot):
        return self.app.proxy_view(community, ballot, self._voter(community, ballot, actor))

    @rpc
    @query
    def needs_of(self, community, person, roles):
        """The person's "what needs me" in this stage (the gateway's GET …/me/needs)."""
        return self.app.needs_of(community, person, roles, self._read_texts,
                                 voter_of=lambda ballot: self._roll_voter(community, ballot, person))

    @rpc
    @command
    def retally(self, ballot):
        return self.app.retally(ballot)

    # ---- deadlines -----------------------------------------------------------------------------
    @timer(interval=1.0)
    def deadlines(self):
        """Open, close (and count), and finalise the ballots whose time has come."""
        app, now = self.app, clock.now()
        for due in app.due_to_open(now):
            self._each(due["ballot"], lambda: app.open_ballot(due["ballot"], self._facts(
                due["community"], due["voting_unit"], due["scope"], due["scope_id"], due["at"])))
        for ballot, reason in app.due_to_close(now):
            self._each(ballot, lambda: app.close_ballot(ballot, reason))
        for ballot in app.due_to_finalise(now):
            self._each(ballot, lambda: app.finalise(ballot))

    @staticmethod
    def _each(ballot: str, step) -> None:
        """One ballot's failure (e.g. the directory unreachable) must not hold up the others."""
        try:
            step()
        except Exception:  # noqa: BLE001 - logged; the next tick tries again
            log.exception("decisions: deadline step for ballot %s failed; retrying on the next tick", ballot)


SERVICE = DecisionsService
