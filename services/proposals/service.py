"""The proposals service: thin nameko entrypoints over the ProposalsApp.

Directory facts (the community's rules, who lives where now, which households a scope holds) are
asked of the communities service here (through services.common.directory) and passed into the
application as plain data.

Follow-up: the consumer of the `actions` source (see the registry) takes `FollowUpRequested`
(residents found an action unsatisfactory; contract in docs/events/actions.md) and opens a new
proposal linked to the original case, its id derived from (plan, round) so a replayed event opens
nothing twice; saved with the tracking record in one transaction (`EventSourcedSink`). Where this
store does not hold the case's title, the consumer asks the actions service for the plan's.
"""
from __future__ import annotations

from services.common.consumer import EventSourcedSink
from services.common.directory import Directory
from services.common.erasure import with_erasure
from services.common.rpc import rpc
from services.common.runtime import Platform, ServiceBase, command, query
from services.contracts import actions, every_service

from . import tables
from .application import ProposalsApp
from .domain import threshold_rule


def expire_due(runtime) -> None:
    runtime.app.expire_due()


def follow_up_sink(runtime) -> EventSourcedSink:
    def plan_title(community: str, plan: str) -> dict:
        return runtime.send(actions.GetPlan(community=community, plan=plan))

    def comment_texts(commitments: list[str]) -> dict:
        return runtime.send(every_service.READ_TEXTS["actions"](commitments=commitments)) if commitments else {}

    app = runtime.app
    return EventSourcedSink(app, with_erasure(
        "proposals", app,
        lambda env: app.on_actions_event(env, plan_title=plan_title, comment_texts=comment_texts),
        app.erase_texts, sources=("actions",)))


class ProposalsService(ServiceBase):
    name = "proposals"
    platform = Platform("proposals", app_factory=ProposalsApp, tables=(tables.metadata,),
                        timers=((1.0, expire_due),), consumer_sink=follow_up_sink)
    communities = Directory.rpc_proxy()

    @property
    def app(self) -> ProposalsApp:
        return self.platform.app

    # ---- directory facts -------------------------------------------------------------------------
    @property
    def directory(self) -> Directory:
        """The directory over this worker's proxy: each reply unwrapped once, a refusal raised."""
        return Directory.of_proxy(self.communities)

    def _known_scopes(self, community: str, scope: str) -> dict[str, set]:
        if scope not in ("compound", "building"):
            return {}
        directory = self.directory.directory(community)
        return {"compound": {c["id"] for c in directory["compounds"]},
                "building": {b["id"] for b in directory["buildings"]}}

    def _households(self, community: str, scope: str, scope_id: str) -> set[str]:
        return set(self.directory.households_in_scope(community, scope, scope_id))

    # ---- commands ---------------------------------------------------------------------------------
    @rpc
    @command
    def draft(self, actor, community, title, body, category, scope, scope_id=None):
        rules = self.directory.rules(community)
        pid = self.app.draft(actor, community, title, body, category, scope, scope_id,
                             categories=rules["categories"], known_scopes=self._known_scopes(community, scope))
        return self.app.view(community, pid, actor)

    @rpc
    @command
    def submit(self, actor, community, proposal):
        self.app.submit(actor, community, proposal)
        return self.app.view(community, proposal, actor)

    @rpc
    @command
    def screen(self, actor, community, proposal, admissible, reason=None, category=None):
        facts = self.app.facts(community, proposal, actor)
        rules = self.directory.rules(community)
        in_scope = 0
        if admissible is True:
            # The denominator, in the threshold's unit, as the directory stands now.
            if threshold_rule(rules, facts["scope"])["unit"] == "households":
                in_scope = len(self._households(community, facts["scope"], facts["scope_id"]))
            else:
                in_scope = len(self.directory.residents_in_scope(community, facts["scope"], facts["scope_id"]))
        self.app.screen(actor, community, proposal, admissible, reason, category, rules=rules, in_scope=in_scope)
        return self.app.view(community, proposal, actor)

    @rpc
    @command
    def support(self, actor, community, proposal):
        facts = self.app.facts(community, proposal, actor)
        # Both directory questions at once: where the caller lives now, and what the scope holds.
        directory = self.directory
        home = directory.household_of_async(community, actor)
        scope = None if facts["scope"] == "community" else directory.households_in_scope_async(
            community, facts["scope"], facts["scope_id"])
        household = home.result()
        in_scope = None if scope is None else set(scope.result())
        return self.app.give_support(actor, community, proposal, household, in_scope)

    @rpc
    @command
    def withdraw_support(self, actor, community, proposal):
        self.app.facts(community, proposal, actor)  # a proposal the caller may see, before asking the directory
        return self.app.withdraw_support(actor, community, proposal, self.directory.household_of(community, actor))

    @rpc
    @command
    def withdraw(self, actor, community, proposal):
        self.app.withdraw(actor, community, proposal)
        return self.app.view(community, proposal, actor)

    @rpc
    @command
    def merge(self, actor, community, proposal, into):
        source = self.app.facts(community, proposal, actor)
        target = self.app.facts(community, into, actor)
        return self.app.merge(actor, community, proposal, into,
                              self._households(community, source["scope"], source["scope_id"]),
                              self._households(community, target["scope"], target["scope_id"]))

    @rpc
    @command
    def erase_person(self, actor, community, person):
        self.directory.get_person(community, person)  # someone of another community does not exist here
        return self.app.erase_person(community, person, actor=actor)

    # ---- queries ----------------------------------------------------------------------------------
    @rpc
    @query
    def get_proposal(self, viewer, community, proposal):
        return self.app.view(community, proposal, viewer)

    @rpc
    @query
    def list_proposals(self, viewer, community, status=None, category=None, scope=None, q=None, limit=50,
                       offset=0):
        return self.app.list_proposals(community, viewer, status, category, scope, q, limit, offset)

    @rpc
    @query
    def needs_of(self, community, person, roles):
        """The home page's "what needs me" for this stage. The directory is asked once for where the
        person lives and once per distinct scope among the proposals they might support (never per
        proposal), all at once; not at all when there is nothing they might support."""
        candidates = self.app.need_scopes(community, person)
        scopes = [s for s in candidates if s[0] != "community"]  # the whole community needs no question
        household, in_scope = None, {}
        if candidates:
            directory = self.directory
            asked = directory.household_of_async(community, person)
            pending = {s: directory.households_in_scope_async(community, *s) for s in scopes}
            household = asked.result()
            in_scope = {s: set(reply.result()) for s, reply in pending.items()}
        return self.app.needs_of(community, person, roles or [], household, in_scope)


SERVICE = ProposalsService
