"""The decisions service: thin nameko entrypoints over the DecisionsApp, and its deadlines.

Directory facts come from the communities service over RPC and are handed to the application as
plain data. A one-second timer opens, closes, resolves and finalises ballots on the one clock;
with several instances each runs it, and optimistic concurrency lets exactly one of them act.
"""
from __future__ import annotations

import logging

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from services.common import clock
from services.common.consumer import EventSourcedSink
from services.common.errors import InvalidInput, NotFound
from services.common.runtime import Platform, ServiceBase, command

from . import tables
from .application import DecisionsApp
from .domain import VOTING_UNITS

log = logging.getLogger(__name__)


class DecisionsService(ServiceBase):
    name = "decisions"
    platform = Platform(
        "decisions", app_factory=DecisionsApp, tables=(tables.metadata,),
        consumer_sink=lambda rt: EventSourcedSink(rt.app, rt.app.on_deliberation_event),
    )
    communities = RpcProxy("communities")

    @property
    def app(self) -> DecisionsApp:
        return self.platform.app

    # ---- the directory -----------------------------------------------------------------------
    def _directory(self, method: str, *args):
        reply = getattr(self.communities, method)(*args)
        if not reply.get("ok"):
            problem = reply["problem"]
            raise (NotFound if problem.get("status") == 404 else InvalidInput)(problem["detail"])
        return reply["result"]

    def _facts(self, community: str, voting_unit: str, scope: str, scope_id: str | None, at: str | None) -> list:
        """What the roll of `voting_unit` is built from, as the directory stood at `at` (None: now)."""
        if voting_unit == "owner":
            return self._directory("units_in_scope", community, scope, scope_id, at)
        if voting_unit in ("resident", "household"):
            return self._directory("residents_in_scope", community, scope, scope_id, at)
        if voting_unit == "council":
            return self._directory("role_holders", community, "council_member", None, at)
        raise InvalidInput(f"voting_unit must be one of {', '.join(VOTING_UNITS)}")

    def _voter(self, community: str, ballot_id, person: str) -> str:
        """The caller's id on the roll: the person, or under one-household-one-vote their household
        (any adult of it may cast its vote)."""
        ballot = self.app.ballot(community, ballot_id, copy=False)
        if not ballot.config or ballot.config["voting_unit"] != "household":
            return person
        try:
            found = self._directory("get_person", community, person, ballot.config["opens_at"])
        except NotFound:
            return person  # not in the directory, so not on the roll: the application refuses
        return found["household"] if found["adult"] and found["household"] else person

    # ---- commands ------------------------------------------------------------------------------
    @rpc
    @command
    def prepare_ballot(self, actor, community, title, scope, scope_id=None, description=None, options=None,
                       category=None):
        return {"id": self.app.prepare_ballot(actor, community, title, scope, scope_id, description, options,
                                              category)}

    @rpc
    @command
    def configure_ballot(self, actor, community, ballot, configuration):
        b = self.app.ballot(community, ballot, copy=False)
        rules = self._directory("get_community", community)["rules"]
        facts = self._facts(community, configuration.get("voting_unit"), b.scope, b.scope_id, None)
        return self.app.configure_ballot(actor, community, ballot, community_rules=rules, facts_now=facts,
                                         **configuration)

    @rpc
    @command
    def cast_vote(self, actor, community, ballot, choice, voter=None, proxy_authorisation=None):
        """The caller votes, or (with `voter` and a written authorisation) votes as a proxy."""
        if voter is None:
            return self.app.cast_vote(actor, community, ballot, self._voter(community, ballot, actor), choice)
        return self.app.cast_vote(actor, community, ballot, voter, choice, channel="proxy",
                                  proxy_authorisation=proxy_authorisation)

    @rpc
    @command
    def enter_paper_ballot(self, actor, community, ballot, voter, choice, paper_serial):
        return self.app.cast_vote(actor, community, ballot, voter, choice, channel="paper", paper_serial=paper_serial)

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
    def rerun_ballot(self, actor, community, ballot):
        return {"id": self.app.rerun_ballot(actor, community, ballot)}

    @rpc
    @command
    def declare_emergency(self, actor, roles, community, justification, title=None, scope="community",
                          scope_id=None, category=None, ballot=None):
        return {"id": self.app.declare_emergency(actor, roles, community, justification, title, scope, scope_id,
                                                 category, ballot)}

    @rpc
    @command
    def confirm_emergency(self, actor, roles, community, ballot):
        return self.app.confirm_emergency(actor, roles, community, ballot)

    # ---- queries -------------------------------------------------------------------------------
    @rpc
    @command
    def get_ballot(self, community, ballot):
        return self.app.ballot_view(community, ballot)

    @rpc
    @command
    def list_ballots(self, community, status=None):
        return self.app.list_ballots(community, status)

    @rpc
    @command
    def roll(self, community, ballot):
        return self.app.roll(community, ballot)

    @rpc
    @command
    def board(self, community, ballot, receipt=None, after=None, limit=1000):
        return self.app.board(community, ballot, receipt, after, limit)

    @rpc
    @command
    def my_vote(self, actor, community, ballot):
        return self.app.my_vote(community, ballot, self._voter(community, ballot, actor))

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
