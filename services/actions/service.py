"""The actions service (行动): thin nameko entrypoints over the ActionsApp, the consumer of the
other stages' events, and the timer that flags overdue tasks and closes evaluations.

Every command takes the acting person and the roles the gateway authenticated for them. Directory
facts come from the communities service (through services.common.directory), the case file's entries
from the audit service.
"""
from __future__ import annotations

import logging

from services.common import errors
from services.common.caller import Caller
from services.common.consumer import SinkChain
from services.common.directory import Directory
from services.common.rpc import RpcProxy, rpc
from services.common.runtime import Platform, Runtime, ServiceBase, command, query
from services.contracts.audit import Entries
from services.contracts.deliberation import GetConsultation, ListConsultations
from services.contracts.every_service import READ_TEXTS

from . import tables
from .application import MANAGERS, ActionsApp

AUDIT_PAGE = 1000
log = logging.getLogger(__name__)


def _consumer(rt: Runtime) -> SinkChain:
    return rt.app.stage_sinks()


def tick(rt: Runtime) -> None:
    """The shared clock decides: tasks past due, evaluation windows passed."""
    rt.app.flag_overdue_tasks()
    rt.app.close_due_evaluations()


class ActionsService(ServiceBase):
    name = "actions"
    platform = Platform("actions", app_factory=ActionsApp, tables=(tables.metadata,), consumer_sink=_consumer,
                        timers=((1.0, tick),))
    communities = Directory.rpc_proxy()
    audit = RpcProxy("audit")

    @property
    def app(self) -> ActionsApp:
        return self.platform.app

    # ---- directory facts ----------------------------------------------------------------------
    @property
    def directory(self) -> Directory:
        """The directory over this worker's proxy: each reply unwrapped once, a refusal raised."""
        return Directory.of_proxy(self.communities)

    def _person_exists(self, community: str, person: str | None) -> bool:
        if person is None:
            return True
        try:
            self.directory.get_person(community, person)
        except errors.NotFound:
            return False
        return True

    # ---- plans and tasks ------------------------------------------------------------------------
    @rpc
    @command
    def open_plan(self, actor, roles, community, title, basis, scope, scope_id=None, category=None, case=None):
        place = self.directory.has_place(community, scope, scope_id) if scope in ("compound", "building") else True
        pid = self.app.open_plan(Caller(actor, frozenset(roles)), community, case, title, basis, scope, scope_id,
                                 category, place)
        return self.app.plan_view(community, pid)

    @rpc
    @command
    def assign_task(self, actor, roles, community, plan, title, responsible_party, due_at, budget=None,
                    funding_source=None):
        person = responsible_party.get("person") if isinstance(responsible_party, dict) else None
        task = self.app.assign_task(Caller(actor, frozenset(roles)), community, plan, title, responsible_party, due_at,
                                    budget, funding_source, self._person_exists(community, person))
        return self.app.task_view(community, task)

    @rpc
    @command
    def report_progress(self, actor, roles, community, plan, task, percent, note=None, evidence=None):
        return self.app.report_progress(Caller(actor, frozenset(roles)), community, plan, task, percent, note,
                                        evidence)

    @rpc
    @command
    def upload_evidence(self, actor, roles, community, content_base64, media_type=None):
        return self.app.upload_evidence(Caller(actor, frozenset(roles)), community, content_base64, media_type)

    @rpc
    @query
    def get_evidence(self, community, sha256):
        return self.app.evidence.get(community, sha256)

    @rpc
    @query
    def evidence_info(self, community, sha256):
        """An evidence file of the community without its bytes (for a conditional request)."""
        return self.app.evidence.info(community, sha256)

    @rpc
    @command
    def report_done(self, actor, roles, community, plan, summary):
        p = self.app.plan(community, plan)
        residents = self.directory.residents_in_scope(community, p.scope, p.scope_id)
        rules = self.directory.rules(community)
        return self.app.report_done(Caller(actor, frozenset(roles)), community, plan, summary, residents, rules)

    @rpc
    @command
    def evaluate(self, actor, roles, community, plan, rating, comment=None):
        return self.app.evaluate(Caller(actor, frozenset(roles)), community, plan, rating, comment)

    # ---- queries ----------------------------------------------------------------------------------
    @rpc
    @query
    def get_plan(self, community, plan):
        return self.app.plan_view(community, plan, self._read_texts)

    @rpc
    @query
    def list_plans(self, community, status=None):
        return self.app.list_plans(community, status, self._read_texts)

    @rpc
    @query
    def my_evaluation(self, community, plan, person):
        return self.app.my_evaluation(community, plan, person)

    @rpc
    @query
    def needs_of(self, community, person, roles):
        """What of this stage needs the person now (the gateway's `GET …/me/needs`). No directory
        call: who may evaluate is the list of residents frozen into the plan's EvaluationOpened."""
        return self.app.needs_of(community, person, roles or [], self._read_texts)

    @rpc
    @query
    def board(self, community, outcome=None, closed_from=None, closed_to=None):
        return self.app.board(community, self._read_texts, outcome, closed_from, closed_to)

    @rpc
    @command
    def close_case(self, actor, roles, community, case, reason):
        return self.app.close_case(Caller(actor, frozenset(roles)), community, case, reason)

    def _sees_identities(self, community: str, case: str, actor, roles) -> bool:
        """Whether the caller sits in the case's 1+2+X body: the community's workers and lead (the
        "1", who run every case), or a member of the body of a consultation held on the case."""
        if actor is None:
            return False
        if Caller(actor, frozenset(roles or ())).holds(*MANAGERS):
            return True
        for c in self.platform.send_or_none(ListConsultations(community=community)) or []:
            if c.get("case") != case:
                continue
            view = self.platform.send_or_none(GetConsultation(community=community, consultation=c["id"])) or {}
            if any(m.get("person") == actor and m.get("status") == "active" for m in view.get("body", [])):
                return True
        return False

    @rpc
    @query
    def ratings(self, community, plan, actor=None, roles=None):
        p = self.app.plan(community, plan)
        return self.app.ratings(community, plan, self._sees_identities(community, p.case, actor, roles))

    @rpc
    @query
    def case_file(self, community, case, actor=None, roles=None):
        entries = []
        for one in self.app.track(community, str(case)):  # the case, and its follow-ups: one track
            start = 0
            while True:
                asked = Entries(community=community, start=start, limit=AUDIT_PAGE, case=one)
                page = errors.unwrap(asked.through(self.audit))["entries"]
                entries += page
                if len(page) < AUDIT_PAGE:
                    break
                start = page[-1]["index"] + 1
        return self.app.case_file(community, case, entries, self._read_texts,
                                  self._sees_identities(community, str(case), actor, roles))

    def _read_texts(self, source: str, commitments: list[str]) -> dict:
        """Another stage's texts; a stage that is down leaves its texts as commitments for now."""
        return self.platform.send_or_none(READ_TEXTS[source](commitments=commitments)) or {}


SERVICE = ActionsService
