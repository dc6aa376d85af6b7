"""The actions application: commands that carry a case from its action plan to its end, the
consumer's reactions to the other stages, the timer's overdue and evaluation checks, and the
queries (plan, board, case file) that read it back with texts joined in.

Directory facts (the community's rules, the residents in a scope, whether a person or a place
exists) arrive as plain data from service.py, so this module runs without nameko. Free text goes
to the erasable content store and only its commitment into events; evidence files go to the
content-addressed evidence store and only their SHA-256 into events.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from rules.endings import OUTCOMES, Ending, closed_by_lead, completed, ending_of
from services.common import clock, metrics
from services.common.aggregate import SELF, command_context
from services.common.caller import Caller
from services.common.consumer import EventSourcedSink, SinkChain, SqlSink
from services.common.content import gather_texts, validate_text
from services.common.erasure import with_erasure
from services.common.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from services.common.ids import parse_id as _id
from services.common.store import StageApplication

from . import tables as t
from .domain import (
    ACTIVE, CLOSED, COMMENT_MAX, EVALUATING, RATINGS, RESPONSIBLE_KINDS, SCOPES, TASK_OPEN, TEXT_MAX, TITLE_MAX,
    ActionPlan, CaseClosure, Evaluation, closure_id, evaluation_id, plan_id, sniff,
)
from .media import evidence_media_type

EVIDENCE_MAX_BYTES = 5 * 1024 * 1024
MANAGERS = frozenset({"community_worker", "party_lead", "platform_admin"})
# Who may report for a responsible party named without a person: the holders of the matching
# role (a property company's staff, the grid leader). Anyone else reports through a community
# worker, who may always enter a report on a party's behalf (it is recorded as theirs).
REPORTING_ROLES = {
    "property_company": frozenset({"property_company"}),
    "grid_leader": frozenset({"grid_leader"}),
    "community_committee": MANAGERS,
    "volunteer_team": frozenset(),
    "contractor": frozenset(),
}
# The stage a case is in after an event of another service (None: the event does not move it).
SOURCE_STAGES = {"proposals": "proposal", "deliberation": "deliberation", "decisions": "decision",
                 "actions": "action"}
# Where a plan's texts live when they are not ours: its title and the adopted option are the
# texts of the stage that decided (the proposal's title, the consultation's options, a ballot's own).
TEXT_SOURCES = ("proposals", "deliberation", "decisions")
STAGES = ("proposal", "deliberation", "decision", "action")
LEADS = frozenset({"party_lead"})
# Who carries plans out, and so is asked to run the open ones on their home page ("what needs me").
RUNNERS = frozenset({"community_worker", "party_lead"})



def in_time_order(entries: list[dict]) -> list[dict]:
    """Audit entries in the order things happened: by time, then by audit index; and an effect
    never before its cause. The audit log receives each source on its own stream, so an event
    caused by another (a plan opened by a resolution) may be recorded first, and under a frozen
    test clock, or within one clock tick, both carry the same time."""
    ids = {e["envelope"]["id"] for e in entries}
    waiting: dict[str, list[dict]] = {}
    done: set[str] = set()
    out: list[dict] = []

    def emit(entry: dict) -> None:
        out.append(entry)
        done.add(entry["envelope"]["id"])
        for effect in waiting.pop(entry["envelope"]["id"], []):
            emit(effect)

    for entry in sorted(entries, key=lambda e: (e["envelope"]["occurred_at"], e["index"])):
        cause = entry["envelope"].get("causation")
        if cause in ids and cause not in done:
            waiting.setdefault(cause, []).append(entry)
        else:
            emit(entry)
    return out


def closing_last(entries: list[dict]) -> list[dict]:
    """The case file ends with its closing step. CaseClosed follows its cause in time, but the
    audit log takes each source on its own stream, and a stage may still record something after
    the case has closed (e.g. the lead closed a proposal still collecting support): those steps
    are shown, before the closing, which is the end of the record of the case."""
    closing = [e for e in entries if e["envelope"]["type"] == "CaseClosed"]
    return [e for e in entries if e["envelope"]["type"] != "CaseClosed"] + closing


def closed_case_filter(outcome: str | None, closed_from: str | None, closed_to: str | None) -> Callable:
    """The board's filter of closed cases, checked: an outcome of `rules.endings`, times with a
    zone, from (inclusive) before to (exclusive)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput.coded("common.outcome_one", outcomes=", ".join(OUTCOMES))
    start = clock.format(clock.parse_input(closed_from, "closed_from")) if closed_from is not None else None
    end = clock.format(clock.parse_input(closed_to, "closed_to")) if closed_to is not None else None
    if start is not None and end is not None and start >= end:
        raise InvalidInput.coded("actions.closed_from_before_closed")
    return lambda c: ((outcome is None or c.outcome == outcome) and (start is None or c.closed_at >= start)
                      and (end is None or c.closed_at < end))


def commitments_in(value) -> list[str]:
    """Every `*_commitment` value in an event's data, nested ones included."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.endswith("_commitment") and isinstance(v, str):
                found.append(v)
            else:
                found += commitments_in(v)
    elif isinstance(value, list):
        for v in value:
            found += commitments_in(v)
    return found


class EvidenceStore:
    """Evidence files, content-addressed: on PostgreSQL in the service's own store (table
    `actions_evidence_files`), so every instance on every host serves every file; on SQLite (one
    host) as `<data>/evidence/<sha256>`. The hash goes into the event, so a file can never change
    under the record; reading checks it again. At most `max_bytes` per file
    (CONSULT_EVIDENCE_MAX_BYTES): a larger one is refused (413) and nothing of it is kept."""

    def __init__(self, folder: Path, engine: sa.Engine, max_bytes: int = EVIDENCE_MAX_BYTES):
        self.folder, self.engine, self.max_bytes = folder, engine, max_bytes
        self.in_database = engine.dialect.name == "postgresql"

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge.coded("actions.evidence_file_may_most", max_bytes=self.max_bytes, size=size)

    def put(self, community: str, person: str, content_base64, media_type: str | None) -> dict:
        if not isinstance(content_base64, str) or not content_base64:
            raise InvalidInput.coded("actions.content_base_file_base")
        if len(content_base64) > (self.max_bytes * 4) // 3 + 4:
            raise self._too_large(len(content_base64) * 3 // 4)
        try:
            data = base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput.coded("actions.content_base_valid_base") from None
        if not data:
            raise InvalidInput.coded("actions.evidence_file_empty")
        if len(data) > self.max_bytes:
            raise self._too_large(len(data))
        media_type = evidence_media_type(data, media_type)  # from the bytes, against an allow-list
        digest = hashlib.sha256(data).hexdigest()
        if not self.in_database:
            path = self.folder / digest
            if not path.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".{digest}.{uuid.uuid4().hex}"
                tmp.write_bytes(data)
                os.replace(tmp, path)  # atomic: a reader never sees half a file
        for attempt in range(2):  # two first uploads of one file at once: the loser finds it stored
            try:
                with self.engine.begin() as conn:
                    if self.in_database and conn.execute(sa.select(t.evidence_files.c.sha256).where(
                            t.evidence_files.c.sha256 == digest)).first() is None:
                        conn.execute(sa.insert(t.evidence_files).values(sha256=digest, size=len(data), content=data))
                    known = conn.execute(sa.select(t.evidence.c.sha256).where(
                        t.evidence.c.sha256 == digest, t.evidence.c.community == community)).first()
                    if known is None:
                        conn.execute(sa.insert(t.evidence).values(
                            sha256=digest, community=community, size=len(data), media_type=media_type,
                            uploaded_by=person, uploaded_at=clock.format(clock.now())))
                break
            except sa.exc.IntegrityError:
                if attempt:
                    raise
        return {"sha256": digest, "size": len(data), "media_type": media_type}

    def missing(self, community: str, hashes: list[str]) -> list[str]:
        if not hashes:
            return []
        with self.engine.connect() as conn:
            held = {r.sha256 for r in conn.execute(sa.select(t.evidence.c.sha256).where(
                t.evidence.c.community == community, t.evidence.c.sha256.in_(hashes)))}
        return [h for h in hashes if h not in held]

    def _row(self, community: str, digest: str):
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.evidence).where(
                t.evidence.c.sha256 == str(digest), t.evidence.c.community == community)).first()
        if row is None:
            raise NotFound.coded("actions.evidence_does_exist", digest=digest)
        return row

    def _bytes(self, digest: str) -> bytes | None:
        if self.in_database:
            with self.engine.connect() as conn:
                found = conn.execute(sa.select(t.evidence_files.c.content).where(
                    t.evidence_files.c.sha256 == digest)).scalar()
            return bytes(found) if found is not None else None
        path = self.folder / digest
        return path.read_bytes() if path.exists() else None

    def info(self, community: str, digest: str) -> dict:
        """What is known of a file of this community without reading it (NotFound otherwise)."""
        row = self._row(community, digest)
        return {"sha256": row.sha256, "size": row.size, "declared_media_type": row.media_type,
                "uploaded_at": row.uploaded_at}

    def read(self, community: str, digest: str) -> tuple[dict, bytes]:
        """The file of this community, checked against its hash, and its media type sniffed."""
        row = self._row(community, digest)
        data = self._bytes(row.sha256)
        if data is None:
            raise NotFound.coded("actions.evidence_does_exist", digest=digest)
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise Conflict.coded("actions.evidence_longer_matches_hash", digest=digest)
        media_type, extension = sniff(data)
        return {"sha256": row.sha256, "size": row.size, "media_type": media_type, "extension": extension,
                "declared_media_type": row.media_type, "uploaded_at": row.uploaded_at}, data

    def get(self, community: str, digest: str) -> dict:
        """The file over RPC (JSON): base64, with its sniffed media type."""
        meta, data = self.read(community, digest)
        return dict(meta, content_base64=base64.b64encode(data).decode("ascii"))


class ActionsApp(StageApplication):
    name = "actions"

    def __init__(self, settings, engine: sa.Engine):
        super().__init__(settings, "actions", engine, project_envelope, cache_size=5000)
        self.evidence = EvidenceStore(Path(settings.data_dir) / "evidence", engine, settings.evidence_max_bytes)

    # ---- plumbing ------------------------------------------------------------------------------
    def _find(self, agg_id: uuid.UUID):
        try:
            return self.repository.get(agg_id)
        except AggregateNotFoundError:
            return None

    def plan(self, community: str, plan) -> ActionPlan:
        """A plan of this community, or NotFound (another community's plans do not exist here)."""
        found = self._find(_id(plan, "plan"))
        if not isinstance(found, ActionPlan) or found.community != community:
            raise NotFound.coded("actions.plan_does_exist", plan=plan)
        return found

    def _save(self, *aggregates) -> None:
        self.save_or_conflict(*aggregates)
        self.project()

    @contextmanager
    def _texts(self, subject: str | None, **texts: str | None):
        """Store free texts and yield their commitments; a refused command leaves none behind."""
        commitments = {k: self.content.put(v, subject=subject) if v is not None else None for k, v in texts.items()}
        try:
            yield commitments
        except DomainError:
            for c in commitments.values():
                if c:
                    self.content.erase(c)
            raise

    def personal_data(self, community: str, person: str) -> dict:
        """What this stage holds about the person (PIPL art. 45): their evaluations of plans."""
        self.project()
        E, P = t.evaluations, t.plans
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(E).join(P, P.c.plan == E.c.plan).where(
                P.c.community == community, E.c.person == person).order_by(E.c.given_at)))
        texts = self.content.get_many(r.comment_commitment for r in rows)
        return {"evaluations": [{"plan": r.plan, "round": r.round, "rating": r.rating,
                                 "comment": texts.get(r.comment_commitment), "given_at": r.given_at} for r in rows]}

    # ---- opening a plan ------------------------------------------------------------------------
    def open_plan(self, caller: Caller, community: str, case: str | None, title: str, basis: str, scope: str,
                  scope_id: str | None, category: str | None, place_exists: bool = True) -> str:
        """A community worker opens a plan on a decision taken outside the platform's ballot (e.g.
        an emergency repair), writing its basis down. Without a case the plan opens its own."""
        if not caller.holds(*MANAGERS):
            raise Forbidden.coded("actions.community_worker_party_committee")
        title = validate_text(title, "title", max_len=TITLE_MAX)
        basis = validate_text(basis, "basis", max_len=TEXT_MAX)
        if category is not None:
            category = validate_text(category, "category", max_len=40)
        if scope not in SCOPES:
            raise InvalidInput.coded("common.scope_one", scopes=", ".join(SCOPES))
        if scope != "community" and not scope_id:
            raise InvalidInput.coded("actions.scope_needs_scope_id", scope=scope)
        if scope == "community" and scope_id not in (None, community):
            raise InvalidInput.coded("actions.community_wide_plan_takes")
        if scope != "community" and not place_exists:
            raise NotFound.coded("common.does_exist", what=scope, value=scope_id)
        if case is not None:
            case = str(_id(case, "case"))
            self._check_case_decided(community, case)
            pid = plan_id(case)
        else:
            pid = uuid.uuid4()
        with self._texts(caller.person, title=title, basis=basis) as texts:
            with command_context(community=community, actor=caller.person, case=case or SELF):
                plan = ActionPlan.open(id=pid, community=community, case=case or str(pid), basis="direct",
                                       scope=scope, scope_id=scope_id, category=category,
                                       title_commitment=texts["title"], basis_commitment=texts["basis"])
            self._save(plan)
        return str(plan.id)

    def _check_case_decided(self, community: str, case: str) -> None:
        """A plan opens on a case of this community that reached a decision or agreement in another
        stage (as the consumer learnt it: see `project_decision`), is not closed and has no plan."""
        self.project()
        with self.engine.connect() as conn:
            known = conn.execute(sa.select(t.cases.c.ended).where(
                t.cases.c.case_id == case, t.cases.c.community == community)).first()
            decided = conn.execute(sa.select(t.case_decisions.c.decided_by).where(
                t.case_decisions.c.case_id == case, t.case_decisions.c.community == community)).first()
            planned = conn.execute(sa.select(t.plans.c.plan, t.plans.c.community).where(
                t.plans.c.case_id == case)).first()
        derived = self._find(plan_id(case))
        if planned is not None and planned.community == community or (
                isinstance(derived, ActionPlan) and derived.community == community):
            raise Conflict.coded("actions.case_already_action_plan", case=case,
                                 extra={"plan": planned.plan if planned is not None else str(derived.id)})
        if known is None and decided is None or planned is not None or derived is not None:
            raise NotFound.coded("actions.case_does_exist", case=case)  # nor do another community's cases, here
        if self._find(closure_id(case)) is not None or (known is not None and known.ended):
            raise Conflict.coded("actions.case_closed_new_case", case=case)
        if decided is None:
            raise Conflict.coded("actions.case_reached_decision_agreement", case=case)

    def stage_sinks(self) -> SinkChain:
        """What the consumer of the other stages keeps, each part tracked on its own: the board's
        case rows and the cases that reached a decision (SQL), the plans and closures (events)."""
        return SinkChain(SqlSink("actions-cases", self.engine, project_case, handler_many=project_cases),
                         SqlSink("actions-decisions", self.engine, project_decision, types=DECISION_TYPES),
                         EventSourcedSink(self, with_erasure("actions", self, self.on_stage_event, None,
                                                             sources=("proposals", "deliberation", "decisions"))))

    # ---- the consumer: what the other stages' events do here ------------------------------------
    def on_stage_event(self, env: dict) -> list:
        """An adopted or emergency resolution, or an agreement in deliberation, opens the case's
        plan; an ending of another stage (`rules.endings`: expired, withdrawn, merged,
        inadmissible, concluded with no action, rejected, annulled without re-run) closes the case.
        Returned, not saved: the tracked consumer saves them with its tracking record. Ids derive
        from the case, so a replayed event changes nothing. Every other event is none of this
        stage's business."""
        kind, d = env["type"], env["data"]
        ending = ending_of(env)
        if ending is not None:
            return self._closure_from(env, ending)
        if kind == "ResolutionFinal":
            case = env.get("case") or d.get("ballot")
            outcome = d.get("outcome")
            if outcome in ("adopted", "emergency"):
                return self._plan_from(env, case, "resolution" if outcome == "adopted" else "emergency",
                                       basis_commitment=d.get("justification_commitment"), ballot=d.get("ballot"),
                                       option=d.get("winner"))
        elif kind == "DeliberationConcluded" and env["data"].get("outcome") == "agreed":
            return self._plan_from(env, env.get("case") or d.get("consultation"), "agreement",
                                   basis_commitment=d.get("summary_commitment"))
        return []

    def _plan_from(self, env: dict, case: str, basis: str, basis_commitment: str | None, ballot: str | None = None,
                   option: dict | None = None) -> list:
        d = env["data"]
        pid = plan_id(case)
        if self._find(pid) is not None or self._find(closure_id(case)) is not None:
            return []
        scope = d.get("scope") if d.get("scope") in SCOPES else "community"
        with command_context(community=env["community"], actor="system", case=case, causation=env["id"]):
            return [ActionPlan.open(
                id=pid, community=env["community"], case=case, basis=basis, scope=scope, scope_id=d.get("scope_id"),
                category=d.get("category"), title_commitment=d.get("title_commitment"),
                basis_commitment=basis_commitment, ballot=ballot, consultation=d.get("consultation"),
                proposal=d.get("proposal"), option=option)]

    def _closure_from(self, env: dict, ending: Ending) -> list:
        """The case's CaseClosed, caused by the stage event that ended it; nothing if the case is
        closed already (a redelivered trigger, or another ending recorded first)."""
        if self._find(closure_id(ending.case)) is not None:
            return []
        with command_context(community=env["community"], actor="system", case=ending.case, causation=env["id"]):
            return [self._closure(env["community"], ending)]

    @staticmethod
    def _closure(community: str, ending: Ending, plan: str | None = None) -> CaseClosure:
        return CaseClosure.close(community=community, case=ending.case, outcome=ending.outcome, stage=ending.stage,
                                 reason_commitment=ending.reason_commitment, result=ending.result, plan=plan,
                                 merged_into=ending.merged_into)

    # ---- the party-committee lead closes a case -------------------------------------------------
    def close_case(self, caller: Caller, community: str, case, reason: str) -> dict:
        """The party-committee lead ends a case outright, with the reason written down (e.g. the
        matter was settled outside the platform). Only a case this community knows of and that has
        not ended; the other stages are not stopped by it, but nothing they record afterwards
        opens a plan or closes the case again."""
        if not caller.holds(*LEADS):
            raise Forbidden.coded("actions.party_committee_lead_closes")
        case = str(_id(case, "case"))
        reason = validate_text(reason, "reason", max_len=TEXT_MAX)
        self.project()
        with self.engine.connect() as conn:
            known = conn.execute(sa.select(t.cases.c.stage, t.cases.c.ended).where(
                t.cases.c.case_id == case, t.cases.c.community == community)).first()
            planned = conn.execute(sa.select(t.plans.c.plan).where(
                t.plans.c.case_id == case, t.plans.c.community == community)).first()
        if known is None and planned is None:
            raise NotFound.coded("actions.case_does_exist", case=case)
        closure = self._find(closure_id(case))
        if closure is not None:
            raise Conflict.coded("actions.case_already_closed", case=case, outcome=closure.outcome,
                                 extra={"outcome": closure.outcome})
        if known is not None and known.ended:
            raise Conflict.coded("actions.case_already_ended_closing", case=case, ended=known.ended,
                                 extra={"outcome": known.ended})
        stage = "action" if planned is not None else ("proposal" if known.stage == "draft" else known.stage)
        with self._texts(caller.person, reason=reason) as texts:
            with command_context(community=community, actor=caller.person, case=case):
                closure = self._closure(community, closed_by_lead(case, stage, texts["reason"]),
                                        plan=planned.plan if planned is not None else None)
            try:
                self.save(closure)
            except IntegrityError:
                raise Conflict.coded("actions.case_was_closed_same", case=case) from None
        self.project()
        return self.closing_view(community, case)

    # ---- tasks and progress --------------------------------------------------------------------
    def assign_task(self, caller: Caller, community: str, plan: str, title: str, responsible_party: dict,
                    due_at: str, budget=None, funding_source: str | None = None,
                    person_exists: bool = True) -> str:
        if not caller.holds(*MANAGERS):
            raise Forbidden.coded("actions.community_worker_party_committee_lead")
        p = self.plan(community, plan)
        title = validate_text(title, "title", max_len=TITLE_MAX)
        party = self._party(responsible_party, person_exists)
        due = clock.parse_input(due_at, "due_at")
        task = str(uuid.uuid4())
        with self._texts(caller.person, title=title, name=party.pop("name", None)) as texts:
            if texts["name"]:
                party["name_commitment"] = texts["name"]
            with command_context(community=community, actor=caller.person, case=p.case):
                p.assign(task=task, title_commitment=texts["title"], responsible_party=party, due_at=due,
                         budget=budget, funding_source=funding_source, now=clock.now())
            self._save(p)
        return task

    @staticmethod
    def _party(value, person_exists: bool) -> dict:
        if not isinstance(value, dict) or value.get("kind") not in RESPONSIBLE_KINDS:
            raise InvalidInput.coded("actions.responsible_party_kind_one",
                                     responsible_kinds=", ".join(RESPONSIBLE_KINDS))
        party = {"kind": value["kind"], "person": None}
        if value.get("person") is not None:
            if not person_exists:
                raise NotFound.coded("actions.person_does_exist", person=value["person"])
            party["person"] = str(_id(value["person"], "person"))
        if value.get("name") is not None:
            party["name"] = validate_text(value["name"], "responsible_party.name", max_len=TITLE_MAX)
        return party

    def report_progress(self, caller: Caller, community: str, plan: str, task: str, percent: int,
                        note: str | None = None, evidence: list | None = None) -> dict:
        p = self.plan(community, plan)
        party = p.task(str(task))["responsible_party"]
        if not self._may_report(caller, party):
            raise Forbidden.coded("actions.progress_reported_task_responsible")
        note = validate_text(note, "note", max_len=TEXT_MAX, required=False)
        evidence = list(evidence or [])
        if not all(isinstance(h, str) for h in evidence):
            raise InvalidInput.coded("actions.evidence_list_sha_hashes")
        missing = self.evidence.missing(community, evidence)
        if missing:
            raise InvalidInput.coded("actions.upload_evidence_first_stored", missing=", ".join(missing),
                                     extra={"missing": missing})
        with self._texts(caller.person, note=note) as texts:
            with command_context(community=community, actor=caller.person, case=p.case):
                p.report_progress(task=str(task), percent=percent, note_commitment=texts["note"], evidence=evidence,
                                  now=clock.now())
            self._save(p)
        return self.task_view(community, str(task))

    @staticmethod
    def _may_report(caller: Caller, party: dict) -> bool:
        if caller.holds(*MANAGERS) or caller.person == party.get("person"):
            return True
        return party.get("person") is None and caller.holds(*REPORTING_ROLES[party["kind"]])

    def upload_evidence(self, caller: Caller, community: str, content_base64: str, media_type: str | None) -> dict:
        return self.evidence.put(community, caller.person, content_base64, media_type)

    # ---- the timer: overdue tasks and evaluations whose window has passed ----------------------------
    def flag_overdue_tasks(self) -> int:
        """TaskOverdue for every open task past its due time, once each. Safe with several
        instances: the loser of a race fails on the plan's version and leaves it to the winner."""
        self.project()
        now = clock.now()
        with self.engine.connect() as conn:
            due = [r.plan for r in conn.execute(sa.select(t.tasks.c.plan).distinct().where(
                t.tasks.c.status == TASK_OPEN, t.tasks.c.overdue.is_(False), t.tasks.c.due_at < clock.format(now)))]
        flagged = 0
        for pid in due:
            p = self._find(uuid.UUID(pid))
            with command_context(community=p.community, actor="system", case=p.case):
                tasks = p.flag_overdue(now)
            if tasks and self._save_quietly(p):
                flagged += len(tasks)
        if flagged:
            self.project()
        return flagged

    def close_due_evaluations(self) -> int:
        """EvaluationClosed for every plan whose window (and its grace) has passed; then the plan
        either reopens with a follow-up request or the case closes, in the same transaction."""
        self.project()
        now = clock.now()
        with self.engine.connect() as conn:
            due = [(r.plan, r.round) for r in conn.execute(sa.select(t.plans.c.plan, t.plans.c.round).where(
                t.plans.c.status == EVALUATING, t.plans.c.evaluation_closes_at <= clock.format(now)))]
        closed, changed = 0, False
        for pid, round_ in due:
            p = self._find(uuid.UUID(pid))
            if not p.tally_due(now):
                continue
            with command_context(community=p.community, actor="system", case=p.case):
                outcome = p.close_evaluation(counts=self.rating_counts(pid, round_), now=now,
                                             unsatisfied_comment_commitments=self.unsatisfied_comment_commitments(pid, round_))
                aggregates = [p]
                if outcome == "accepted" and self._find(closure_id(p.case)) is None:
                    aggregates.append(self._closure(p.community, completed(p.case, p.result_commitment, p.last_tally),
                                                    plan=str(p.id)))
            if self._save_quietly(*aggregates):
                changed = True
                closed += outcome != "extended"  # an extended evaluation stays open
        if changed:
            self.project()
        return closed

    def _save_quietly(self, *aggregates) -> bool:
        try:
            self.save(*aggregates)
            return True
        except IntegrityError:
            return False

    def unsatisfied_comment_commitments(self, plan: str, round_: int) -> list[str]:
        """The commitments of the current unsatisfied ratings' comments, in the order given: the
        follow-up proposal quotes them (without who wrote them)."""
        with self.engine.connect() as conn:
            return [r.comment_commitment for r in conn.execute(sa.select(t.evaluations.c.comment_commitment).where(
                t.evaluations.c.plan == plan, t.evaluations.c.round == round_,
                t.evaluations.c.rating == "unsatisfied", t.evaluations.c.comment_commitment.is_not(None))
                .order_by(t.evaluations.c.given_at, t.evaluations.c.evaluation))]

    def rating_counts(self, plan: str, round_: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.evaluations.c.rating, sa.func.count()).where(
                t.evaluations.c.plan == plan, t.evaluations.c.round == round_).group_by(t.evaluations.c.rating))
            counts = {r[0]: r[1] for r in rows}
        return {r: int(counts.get(r, 0)) for r in RATINGS}

    # ---- done, disclosure, evaluation ---------------------------------------------------------------
    def report_done(self, caller: Caller, community: str, plan: str, summary: str, residents: list[dict],
                    rules: dict) -> dict:
        """The implementation result is disclosed (实施结果公开) and the evaluation opens for the
        adult residents living in the plan's scope now; the window and the threshold are the
        community's rules as they stand now, frozen into EvaluationOpened."""
        if not caller.holds(*MANAGERS):
            raise Forbidden.coded("actions.community_worker_party_committee_lead_reports")
        p = self.plan(community, plan)
        summary = validate_text(summary, "summary", max_len=TEXT_MAX)
        adults = [r["person"] for r in residents if r.get("adult")]
        with self._texts(caller.person, summary=summary) as texts:
            with command_context(community=community, actor=caller.person, case=p.case):
                p.report_done(summary_commitment=texts["summary"], residents=adults,
                              window_days=rules.get("evaluation_window_days", 14),
                              threshold=rules.get("unsatisfied_reopen_share", "1/3"), now=clock.now(),
                              min_response_share=rules.get("evaluation_min_response_share", "1/3"))
            self._save(p)
        return self.plan_view(community, plan)

    def evaluate(self, caller: Caller, community: str, plan: str, rating: str, comment: str | None = None) -> dict:
        p = self.plan(community, plan)
        round_ = p.check_evaluator(caller.person, clock.now())
        if rating not in RATINGS:
            raise InvalidInput.coded("actions.rating_one", ratings=", ".join(RATINGS))
        comment = validate_text(comment, "comment", max_len=COMMENT_MAX, required=False)
        current = self._find(evaluation_id(str(p.id), round_, caller.person))
        with self._texts(caller.person, comment=comment) as texts:
            with command_context(community=community, actor=caller.person, case=p.case):
                if current is None:
                    current = Evaluation.give(community=community, case=p.case, plan=str(p.id), round_=round_,
                                              person=caller.person, rating=rating,
                                              comment_commitment=texts["comment"])
                else:
                    current.change(rating, texts["comment"])
            self._save(current)
        return {"plan": str(p.id), "round": round_, "person": caller.person, "rating": rating, "comment": comment}

    # ---- queries -------------------------------------------------------------------------------------
    def _text_of(self, *commitments) -> dict:
        return self.content.get_many([c for c in commitments if c])

    def _gather_texts(self, commitments, sources, read_texts) -> dict:
        return gather_texts(self.content, commitments, sources, read_texts)

    def _titles(self, open_cases: dict[str, list], read_texts) -> None:
        untitled = [c for cases in open_cases.values() for c in cases if c.get("title") is None]
        texts = self._gather_texts((c.get("title_commitment") for c in untitled), TEXT_SOURCES, read_texts)
        for c in untitled:
            c["title"] = texts.get(c.get("title_commitment"))

    def _case_texts(self, entries: list[dict], read_texts) -> dict:
        """The readable texts of a case's events, ours and those of each other stage of the case.
        Texts of aggregates hidden by moderation (a `…Hidden` event not followed by a `…Restored`
        one, in log order) are left out; the hiding's own reason is shown."""
        hidden: set[str] = set()
        for e in sorted(entries, key=lambda e: e["index"]):
            kind, agg = e["envelope"]["type"], e["envelope"]["aggregate"]["id"]
            if kind.endswith("Hidden"):
                hidden.add(agg)
            elif kind.endswith("Restored"):
                hidden.discard(agg)
        shown = [c for e in entries for c in commitments_in(e["envelope"]["data"])
                 if e["envelope"]["aggregate"]["id"] not in hidden or e["envelope"]["type"].endswith("Hidden")]
        return self._gather_texts(shown, sorted({e["envelope"]["source"] for e in entries} - {self.name}), read_texts)

    def task_view(self, community: str, task: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.tasks).where(t.tasks.c.task == task, t.tasks.c.community == community)
                               ).first()
        if row is None:
            raise NotFound.coded("actions.task_does_exist", task=task)
        return self._task_row(row, self._text_of(row.title_commitment,
                                                 row.responsible_party.get("name_commitment")))

    @staticmethod
    def _task_row(row, texts: dict) -> dict:
        party = dict(row.responsible_party)
        party["name"] = texts.get(party.get("name_commitment"))
        return {"task": row.task, "plan": row.plan, "title": texts.get(row.title_commitment),
                "title_commitment": row.title_commitment, "responsible_party": party, "due_at": row.due_at,
                "budget": row.budget, "funding_source": row.funding_source, "percent": row.percent,
                "status": row.status, "overdue": row.overdue, "completed_at": row.completed_at}

    def _origins(self, conn, plans: list[str]) -> dict:
        return {r.plan: r for r in conn.execute(sa.select(t.plan_origins).where(t.plan_origins.c.plan.in_(plans)))}

    @staticmethod
    def _decided(community: str, origin, texts: dict) -> dict:
        """What a plan carries out: the option adopted (with its title) and a link to the
        resolution it comes from (the ballot, whose view holds the result and its publicity)."""
        option = dict(origin.option) if origin is not None and origin.option else None
        if option is not None:
            option = {"id": option.get("id"), "title": texts.get(option.get("title_commitment")),
                      "title_commitment": option.get("title_commitment")}
        ballot = origin.ballot if origin is not None else None
        return {"adopted_option": option, "ballot": ballot,
                "resolution": f"/api/v1/communities/{community}/ballots/{ballot}" if ballot else None}

    def plan_view(self, community: str, plan: str, read_texts=None) -> dict:
        self.project()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.plans).where(t.plans.c.plan == str(_id(plan, "plan")),
                                                        t.plans.c.community == community)).first()
            if row is None:
                raise NotFound.coded("actions.plan_does_exist", plan=plan)
            task_rows = list(conn.execute(sa.select(t.tasks).where(t.tasks.c.plan == row.plan)
                                          .order_by(t.tasks.c.position)))
            reports = list(conn.execute(sa.select(t.progress).where(t.progress.c.plan == row.plan)
                                        .order_by(t.progress.c.position)))
            origin = self._origins(conn, [row.plan]).get(row.plan)
        texts = self._gather_texts([row.title_commitment, row.basis_commitment, row.result_commitment,
                                    ((origin.option or {}).get("title_commitment") if origin else None),
                                    *(r.title_commitment for r in task_rows),
                                    *(r.responsible_party.get("name_commitment") for r in task_rows),
                                    *(r.note_commitment for r in reports)], TEXT_SOURCES, read_texts)
        evaluation = None
        if row.round:
            evaluation = {"round": row.round, "closes_at": row.evaluation_closes_at,
                          "denominator": row.evaluation_denominator, "threshold": row.evaluation_threshold,
                          "counts": self.rating_counts(row.plan, row.round), "closed": row.last_evaluation}
        return {
            "plan": row.plan, "case": row.case_id, "basis": row.basis, "basis_text": texts.get(row.basis_commitment),
            "title": texts.get(row.title_commitment), "title_commitment": row.title_commitment, "scope": row.scope,
            "scope_id": row.scope_id, "category": row.category, "status": row.status, "opened_at": row.opened_at,
            "done_at": row.done_at, "result": texts.get(row.result_commitment),
            "tasks": [self._task_row(r, texts) for r in task_rows],
            "progress": [{"task": r.task, "percent": r.percent, "note": texts.get(r.note_commitment),
                          "evidence": r.evidence, "reporter": r.reporter, "reported_at": r.reported_at}
                         for r in reports],
            "evaluation": evaluation,
            **self._decided(community, origin, texts),
        }

    def list_plans(self, community: str, status: str | None = None, read_texts=None) -> list[dict]:
        self.project()
        cond = [t.plans.c.community == community]
        if status is not None:
            cond.append(t.plans.c.status == status)
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(t.plans).where(*cond).order_by(t.plans.c.opened_at)))
            origins = self._origins(conn, [r.plan for r in rows])
        texts = self._gather_texts([*(r.title_commitment for r in rows),
                                    *((o.option or {}).get("title_commitment") for o in origins.values())],
                                   TEXT_SOURCES, read_texts)
        return [{"plan": r.plan, "case": r.case_id, "title": texts.get(r.title_commitment), "basis": r.basis,
                 "status": r.status, "scope": r.scope, "scope_id": r.scope_id, "opened_at": r.opened_at,
                 **self._decided(community, origins.get(r.plan), texts)}
                for r in rows]

    def ratings(self, community: str, plan: str, see_identities: bool = False) -> dict:
        """Every current rating of a plan's rounds with its comment. Who gave it is shown to the
        case's 1+2+X body only (`see_identities`); anyone else reads the ratings and comments
        without their identity (the record keeps the pseudonymous id)."""
        p = self.plan(community, plan)
        self.project()
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(t.evaluations).where(t.evaluations.c.plan == str(p.id))
                                     .order_by(t.evaluations.c.round, t.evaluations.c.given_at,
                                               t.evaluations.c.evaluation)))
        texts = self._text_of(*(r.comment_commitment for r in rows))
        out = []
        for r in rows:
            item = {"round": r.round, "rating": r.rating, "comment": texts.get(r.comment_commitment),
                    "comment_commitment": r.comment_commitment, "given_at": r.given_at}
            if see_identities:
                item["person"] = r.person
            out.append(item)
        return {"plan": str(p.id), "round": p.round, "identities_shown": see_identities, "ratings": out}

    def my_evaluation(self, community: str, plan: str, person: str) -> dict | None:
        p = self.plan(community, plan)
        found = self._find(evaluation_id(str(p.id), p.round, person)) if p.round else None
        if found is None:
            return None
        return {"plan": str(p.id), "round": found.round, "rating": found.rating,
                "comment": self.content.get(found.comment_commitment)}

    def needs_of(self, community: str, person: str, roles, read_texts=None) -> list[dict]:
        """What of this stage needs the person now, for their home page, so the page never guesses
        from lists: evaluations open to them that they have not answered this round, their own open
        tasks, and, for a community worker or the party lead, the plans still being carried out.

        Who may evaluate is the evaluate command's own rule (`ActionPlan.check_evaluator`): the
        adult residents of the scope frozen into EvaluationOpened, not who lives there today, so no
        directory fact is needed and none is asked. Tasks and plans to run are those of plans still
        open whose case has not been closed (as the board shows them). Candidates come from the
        read models; a title may be another stage's text, asked through `read_texts`. Each item:
        {kind, stage, id, title, due, path}, a task's with `overdue`; evaluations by their close,
        then tasks by due time, then plans to run by opening."""
        self.project()
        now = clock.now()
        at = clock.format(now)
        P, T, E, X = t.plans, t.tasks, t.evaluations, t.closures
        closed = sa.select(X.c.case_id).where(X.c.community == community)
        with self.engine.connect() as conn:
            evaluating = list(conn.execute(sa.select(P).where(
                P.c.community == community, P.c.status == EVALUATING, P.c.evaluation_closes_at > at)
                .order_by(P.c.evaluation_closes_at, P.c.plan)))
            rated = {(r.plan, r.round) for r in conn.execute(sa.select(E.c.plan, E.c.round).where(
                E.c.person == person, E.c.plan.in_([r.plan for r in evaluating])))} if evaluating else set()
            tasks = list(conn.execute(sa.select(T).join(P, P.c.plan == T.c.plan).where(
                T.c.community == community, P.c.community == community, T.c.status == TASK_OPEN,
                T.c.responsible_party["person"].as_string() == str(person), P.c.status.in_(ACTIVE),
                P.c.case_id.not_in(closed)).order_by(T.c.due_at, T.c.position)))
            running = list(conn.execute(sa.select(P).where(
                P.c.community == community, P.c.status.in_(ACTIVE), P.c.case_id.not_in(closed))
                .order_by(P.c.opened_at, P.c.plan))) if set(roles or ()) & RUNNERS else []
        to_rate = []
        for r in evaluating:
            p = self._find(uuid.UUID(r.plan))
            if not isinstance(p, ActionPlan) or p.community != community:
                continue
            try:
                round_ = p.check_evaluator(person, now)
            except (Conflict, Forbidden):  # not one of those asked, or the window has just closed
                continue
            if (r.plan, round_) not in rated:
                to_rate.append(r)
        texts = self._gather_texts([*(r.title_commitment for r in to_rate), *(r.title_commitment for r in tasks),
                                    *(r.title_commitment for r in running)], TEXT_SOURCES, read_texts)

        def item(kind: str, id_: str, commitment, due, plan: str) -> dict:
            return {"kind": kind, "stage": self.name, "id": id_, "title": texts.get(commitment), "due": due,
                    "path": f"plans/{plan}"}

        return ([item("evaluate", r.plan, r.title_commitment, r.evaluation_closes_at, r.plan) for r in to_rate]
                + [dict(item("task", r.task, r.title_commitment, r.due_at, r.plan),
                        overdue=bool(r.overdue or r.due_at < at)) for r in tasks]
                + [item("run", r.plan, r.title_commitment, None, r.plan) for r in running])

    def board(self, community: str, read_texts: Callable[[str, list[str]], dict] | None = None,
              outcome: str | None = None, closed_from: str | None = None, closed_to: str | None = None) -> dict:
        """The community's public progress board: open cases by stage, overdue tasks, the
        implementation results disclosed (实施结果公开) with their evaluation, and the closed cases
        with their outcome — those of one outcome, closed from `closed_from` (inclusive) to
        `closed_to` (exclusive), when asked. A case's title is ours when we hold it, else asked of
        the stage services by `read_texts(source, commitments)` (a proposal's title lives in the
        proposals store); an erased title reads as null."""
        closed_filter = closed_case_filter(outcome, closed_from, closed_to)
        self.project()
        with self.engine.connect() as conn:
            case_rows = list(conn.execute(sa.select(t.cases).where(t.cases.c.community == community)
                                          .order_by(t.cases.c.opened_at)))
            plan_rows = list(conn.execute(sa.select(t.plans).where(t.plans.c.community == community)
                                          .order_by(t.plans.c.opened_at)))
            closed = {r.case_id: r for r in conn.execute(sa.select(t.closures).where(
                t.closures.c.community == community))}
            overdue = list(conn.execute(sa.select(t.tasks, t.plans.c.case_id).join(
                t.plans, t.plans.c.plan == t.tasks.c.plan).where(
                t.tasks.c.community == community, t.tasks.c.overdue.is_(True), t.tasks.c.status == TASK_OPEN,
                t.plans.c.status.in_(ACTIVE)).order_by(t.tasks.c.due_at)))
            progress = {r.plan: (r.done, r.total) for r in conn.execute(sa.select(
                t.tasks.c.plan, sa.func.count().label("total"),
                sa.func.sum(sa.case((t.tasks.c.status != TASK_OPEN, 1), else_=0)).label("done")).where(
                t.tasks.c.community == community).group_by(t.tasks.c.plan))}
            origins = self._origins(conn, [r.plan for r in plan_rows])
        texts = self._gather_texts([*(r.title_commitment for r in plan_rows), *(r.result_commitment for r in plan_rows),
                                    *(r.title_commitment for r in overdue),
                                    *((o.option or {}).get("title_commitment") for o in origins.values())],
                                   TEXT_SOURCES, read_texts)
        plans_by_case = {r.case_id: r for r in plan_rows}
        open_cases: dict[str, list] = {s: [] for s in STAGES}
        # A reopened plan and the follow-up proposal it opened are one track: the follow-up shows on
        # its plan's row (with the stage it has reached), not as a second, unrelated case.
        live_plans = {r.case_id for r in plan_rows if r.status != CLOSED and r.case_id not in closed}
        follow_ups: dict[str, list] = {}
        for r in case_rows:
            if r.ended or r.case_id in closed or r.case_id in plans_by_case or r.stage not in STAGES:
                continue
            row = {"case": r.case_id, "title_commitment": r.title_commitment, "category": r.category,
                   "scope": r.scope, "scope_id": r.scope_id, "since": r.updated_at, "follow_up_of": r.follow_up_of}
            if r.follow_up_of in live_plans:
                follow_ups.setdefault(r.follow_up_of, []).append(dict(row, stage=r.stage))
            else:
                open_cases[r.stage].append(row)
        for r in plan_rows:
            if r.status == CLOSED or r.case_id in closed:
                continue
            done, total = progress.get(r.plan, (0, 0))
            open_cases["action"].append({
                "case": r.case_id, "plan": r.plan, "title": texts.get(r.title_commitment),
                "title_commitment": r.title_commitment, "category": r.category, "scope": r.scope,
                "scope_id": r.scope_id, "since": r.opened_at, "status": r.status,
                "tasks_done": int(done or 0), "tasks": int(total or 0),
                "follow_ups": follow_ups.get(r.case_id, [])})
        self._titles(dict(open_cases, follow_ups=[f for rows in follow_ups.values() for f in rows]), read_texts)
        # A draft is its author's until submitted: one withdrawn as a draft stays off the public
        # board (its CaseClosed is in the record all the same).
        drafts = {r.case_id for r in case_rows if r.stage == "draft"}
        closed_cases = self._closed_cases([c for c in closed.values() if closed_filter(c) and not (
                                              c.outcome == "withdrawn" and c.case_id in drafts)],
                                          {r.case_id: r for r in case_rows}, plans_by_case, texts, read_texts)
        return {
            "community": community, "at": clock.format(clock.now()),
            "open_cases": open_cases,
            "overdue_tasks": [dict(self._task_row(r, texts), case=r.case_id) for r in overdue],
            "results": [{"case": r.case_id, "plan": r.plan, "title": texts.get(r.title_commitment),
                         "result": texts.get(r.result_commitment), "disclosed_at": r.done_at, "round": r.round,
                         "status": r.status, "evaluation_closes_at": r.evaluation_closes_at,
                         "evaluation": r.last_evaluation, **self._decided(community, origins.get(r.plan), texts)}
                        for r in sorted(plan_rows, key=lambda r: r.done_at or "", reverse=True) if r.done_at],
            "closed_cases": closed_cases,
        }

    def track(self, community: str, case: str) -> list[str]:
        """A case and the follow-up cases its reopened plan opened, in order: one track."""
        self.project()
        out, frontier = [str(case)], [str(case)]
        with self.engine.connect() as conn:
            while frontier and len(out) < 20:
                found = [r.case_id for r in conn.execute(sa.select(t.cases.c.case_id).where(
                    t.cases.c.follow_up_of.in_(frontier), t.cases.c.community == community)
                    .order_by(t.cases.c.opened_at))]
                frontier = [c for c in found if c not in out]
                out += frontier
        return out

    def _closed_cases(self, rows, cases: dict, plans: dict, texts: dict, read_texts) -> list[dict]:
        """Closed cases, latest first: outcome, where it ended, when, by whom (`system` for a
        stage's ending), the written reason and the case it was merged into, titles joined in."""
        out = []
        for c in sorted(rows, key=lambda c: (c.closed_at, c.case_id), reverse=True):
            case, plan = cases.get(c.case_id), plans.get(c.case_id)
            title_commitment = (plan.title_commitment if plan is not None else None) or (
                case.title_commitment if case is not None else None)
            out.append({"case": c.case_id, "outcome": c.outcome, "stage": c.stage, "closed_at": c.closed_at,
                        "closed_by": c.closed_by, "merged_into": c.merged_into, "plan": c.plan,
                        "title": texts.get(title_commitment), "title_commitment": title_commitment,
                        "reason_commitment": c.reason_commitment})
        self._titles({"closed": out}, read_texts)
        reasons = self._gather_texts((c["reason_commitment"] for c in out), ("proposals", "deliberation", "decisions"),
                                     read_texts)
        for c in out:
            c["reason"] = reasons.get(c["reason_commitment"])
        return out

    def closing_view(self, community: str, case: str) -> dict | None:
        """How a case ended, as the board and the case file show it (None while it is open)."""
        with self.engine.connect() as conn:
            c = conn.execute(sa.select(t.closures).where(
                t.closures.c.case_id == case, t.closures.c.community == community)).first()
        if c is None:
            return None
        return {"case": c.case_id, "outcome": c.outcome, "stage": c.stage, "closed_at": c.closed_at,
                "closed_by": c.closed_by, "merged_into": c.merged_into, "plan": c.plan,
                "reason_commitment": c.reason_commitment, "reason": self.content.get(c.reason_commitment)
                if c.reason_commitment else None}

    def case_file(self, community: str, case: str, entries: list[dict],
                  read_texts: Callable[[str, list[str]], dict] | None = None, see_identities: bool = False) -> dict:
        """The case file (案卷): every event of the case, from every stage, in time order, each
        linked to its audit entry, with the texts joined in: this service's own, and through
        `read_texts(source, commitments)` those of the stages whose events the case holds. A text
        erased since, or of a comment a moderator has hidden, stays a bare commitment."""
        case = str(_id(case, "case"))
        self.project()
        if not any(e["envelope"].get("case") in (case, None) for e in entries):
            raise NotFound.coded("actions.case_does_exist_audit", case=case)
        # The four stages' events make the file; proofs of notice stay in the audit log (and the
        # deliveries API), or they would outnumber the case's own steps. A reopened plan and its
        # follow-up proposal are one track: `entries` may hold the follow-up cases' events too
        # (see `track`), each item saying which case it belongs to.
        notices = sum(1 for e in entries if e["envelope"]["source"] not in SOURCE_STAGES)
        entries = [e for e in entries if e["envelope"]["source"] in SOURCE_STAGES]
        ordered = closing_last(in_time_order(entries))
        texts = self._case_texts(entries, read_texts)
        base = f"/api/v1/communities/{community}/audit/entries"
        items = []
        for e in ordered:
            env = e["envelope"]
            if not see_identities and env["type"] in RATING_EVENTS:
                env = anonymous_rating(env)
            items.append({
                "case": env.get("case") or case,
                "audit": {"index": e["index"], "href": f"{base}?from={e['index']}&limit=1"},
                "event_id": env["id"], "source": env["source"],
                "stage": SOURCE_STAGES.get(env["source"], env["source"]),
                "type": env["type"], "occurred_at": env["occurred_at"], "actor": env["actor"],
                "aggregate": env["aggregate"], "causation": env.get("causation"), "data": env["data"],
                "texts": {c: texts[c] for c in commitments_in(env["data"]) if texts.get(c) is not None},
            })
        with self.engine.connect() as conn:
            plan = conn.execute(sa.select(t.plans.c.plan, t.plans.c.status).where(
                t.plans.c.case_id == case, t.plans.c.community == community)).first()
            closure = conn.execute(sa.select(t.closures).where(
                t.closures.c.case_id == case, t.closures.c.community == community)).first()
            follow_ups = [r.case_id for r in conn.execute(sa.select(t.cases.c.case_id).where(
                t.cases.c.follow_up_of == case, t.cases.c.community == community))]
            origin = conn.execute(sa.select(t.cases.c.follow_up_of).where(
                t.cases.c.case_id == case, t.cases.c.community == community)).first()
        return {
            "case": case, "community": community,
            "stages": [s for s in STAGES if any(i["stage"] == s for i in items)],
            "plan": plan.plan if plan else None,
            "status": "closed" if closure else "open",
            "outcome": closure.outcome if closure else None,
            "closing": ({"outcome": closure.outcome, "stage": closure.stage, "closed_at": closure.closed_at,
                         "closed_by": closure.closed_by, "merged_into": closure.merged_into,
                         "reason": texts.get(closure.reason_commitment)} if closure else None),
            "follow_ups": follow_ups,
            "follow_up_of": origin.follow_up_of if origin else None,
            "notices": notices,
            "items": items,
        }


RATING_EVENTS = ("EvaluationGiven", "EvaluationChanged")


def anonymous_rating(env: dict) -> dict:
    """A rating's event as shown outside the case's body: no person, no actor, and no aggregate id
    (it derives from the person, so it would name them to anyone who can compute it)."""
    data = {k: v for k, v in env["data"].items() if k != "person"}
    return dict(env, data=data, actor=None, aggregate={"type": env["aggregate"].get("type"), "id": None})


# ---- read models ------------------------------------------------------------------------------------
def project_envelope(conn: sa.Connection, env: dict) -> None:
    """The plans, tasks, progress, evaluations and closures, kept from this service's own log
    (exactly once, in order); stage transitions are counted here, once per event."""
    d, kind, agg, at = env["data"], env["type"], env["aggregate"]["id"], env["occurred_at"]
    plans, tasks = t.plans, t.tasks
    if kind == "ActionPlanOpened":
        conn.execute(sa.insert(plans).values(
            plan=agg, community=env["community"], case_id=d["case"], basis=d["basis"],
            basis_commitment=d["basis_commitment"], scope=d["scope"], scope_id=d["scope_id"], category=d["category"],
            title_commitment=d["title_commitment"], status="open", round=0, opened_at=at))
        conn.execute(sa.insert(t.plan_origins).values(
            plan=agg, ballot=d.get("ballot"), consultation=d.get("consultation"), proposal=d.get("proposal"),
            option=d.get("option")))
        metrics.STAGE_TRANSITIONS.labels("actions", env["community"], "action").inc()
    elif kind == "TaskAssigned":
        conn.execute(sa.insert(tasks).values(
            task=d["task"], plan=agg, community=env["community"], position=env["position"],
            title_commitment=d["title_commitment"], responsible_party=d["responsible_party"], due_at=d["due_at"],
            budget=d["budget"], funding_source=d["funding_source"], percent=0, status=TASK_OPEN, overdue=False))
    elif kind == "ProgressReported":
        conn.execute(sa.update(tasks).where(tasks.c.task == d["task"]).values(percent=d["percent"]))
        conn.execute(sa.insert(t.progress).values(
            position=env["position"], plan=agg, task=d["task"], percent=d["percent"],
            note_commitment=d["note_commitment"], evidence=d["evidence"], reporter=env["actor"], reported_at=at))
    elif kind == "TaskCompleted":
        conn.execute(sa.update(tasks).where(tasks.c.task == d["task"]).values(status="completed", completed_at=at))
    elif kind == "TaskOverdue":
        conn.execute(sa.update(tasks).where(tasks.c.task == d["task"]).values(overdue=True))
    elif kind == "PlanReportedDone":
        conn.execute(sa.update(plans).where(plans.c.plan == agg).values(done_at=at, round=d["round"]))
    elif kind == "ResultDisclosed":
        conn.execute(sa.update(plans).where(plans.c.plan == agg).values(result_commitment=d["summary_commitment"]))
    elif kind == "EvaluationOpened":
        conn.execute(sa.update(plans).where(plans.c.plan == agg).values(
            status="evaluating", evaluation_closes_at=d["closes_at"], evaluation_denominator=d["denominator"],
            evaluation_threshold=d["threshold"]))
    elif kind == "EvaluationExtended":
        conn.execute(sa.update(plans).where(plans.c.plan == agg).values(evaluation_closes_at=d["closes_at"]))
    elif kind == "EvaluationGiven":
        conn.execute(sa.insert(t.evaluations).values(
            evaluation=agg, plan=d["plan"], round=d["round"], person=d["person"], rating=d["rating"],
            comment_commitment=d["comment_commitment"], given_at=at))
    elif kind == "EvaluationChanged":
        conn.execute(sa.update(t.evaluations).where(t.evaluations.c.evaluation == agg).values(
            rating=d["rating"], comment_commitment=d["comment_commitment"], given_at=at))
    elif kind == "EvaluationClosed":
        conn.execute(sa.update(plans).where(plans.c.plan == agg).values(
            status="closed" if d["outcome"] == "accepted" else "evaluating", last_evaluation=d))
    elif kind == "PlanReopened":
        conn.execute(sa.update(plans).where(plans.c.plan == agg).values(status="reopened"))
        metrics.STAGE_TRANSITIONS.labels("actions", env["community"], "reopened").inc()
    elif kind == "CaseClosed":
        conn.execute(sa.insert(t.closures).values(
            case_id=d["case"], community=env["community"], outcome=d["outcome"], stage=d["stage"],
            reason_commitment=d["reason_commitment"], closed_at=at, merged_into=d.get("merged_into"),
            closed_by=env["actor"], plan=d.get("plan")))
        metrics.STAGE_TRANSITIONS.labels("actions", env["community"], "closed").inc()


def project_case(conn: sa.Connection, env: dict) -> None:
    """Where each case stands, from the other stages' events (the tracked consumer's SQL side;
    the board reads it). A case is first seen at its first event of any stage."""
    project_cases(conn, [env])


def project_cases(conn: sa.Connection, envs: list[dict]) -> None:
    """`project_case` for a batch, in order: each run of events of one case moves its row once,
    with what their updates would have left one after another (each sets columns, none adds to
    one) -- a ballot's votes come in runs of one case."""
    for case, run in itertools.groupby(envs, key=lambda env: env.get("case")):
        if case:
            _move_case(conn, case, list(run))


def _move_case(conn: sa.Connection, case: str, envs: list[dict]) -> None:
    changes: dict = {}
    for env in envs:
        changes.update(_case_changes(env))
    # Nearly every event is of a case already seen (each vote of a ballot is one): update it, and
    # only if there was none, insert it as its first event makes it -- one statement for the
    # common case, not a look first.
    if conn.execute(sa.update(t.cases).where(t.cases.c.case_id == case).values(**changes)).rowcount:
        return
    first, kind, at = envs[0], envs[0]["type"], envs[0]["occurred_at"]
    stage, ending = _stage_after(kind, first["data"]), ending_of(first)
    conn.execute(sa.insert(t.cases).values(
        case_id=case, community=first["community"], stage=stage or SOURCE_STAGES.get(first["source"], "proposal"),
        ended=ending.outcome if ending is not None else None, opened_at=at, updated_at=at, last_type=kind,
        **_case_facts(first["data"])))
    if len(envs) > 1:
        _move_case(conn, case, envs[1:])


def _case_facts(d: dict) -> dict:
    facts = {k: d[k] for k in ("scope", "scope_id", "category", "title_commitment", "proposal")
             if isinstance(d.get(k), str)}
    follow_up_of = d.get("original_case") or d.get("follow_up_of")
    if isinstance(follow_up_of, str):
        facts["follow_up_of"] = follow_up_of
    return facts


def _case_changes(env: dict) -> dict:
    """The columns one event of a case already on the board sets."""
    kind, d = env["type"], env["data"]
    stage, ending = _stage_after(kind, d), ending_of(env)
    changes = dict(_case_facts(d), updated_at=env["occurred_at"], last_type=kind)
    if stage:
        changes["stage"] = stage
    if ending is not None and ending.outcome:
        changes["ended"] = ending.outcome
    return changes


# The events `project_decision` reads; the consumer's "actions-decisions" part takes no transaction
# for a batch of none of them (SqlSink.types), such as a ballot's votes.
DECISION_TYPES = frozenset({"ResolutionFinal", "DeliberationConcluded", "EmergencyDeclared"})


def project_decision(conn: sa.Connection, env: dict) -> None:
    """Cases that reached a decision or agreement (the tracked consumer's SQL side): a plan may be
    opened directly only on one of these. First decision kept; a case decides once."""
    kind, d, case = env["type"], env["data"], env.get("case")
    if not case:
        return
    if kind == "ResolutionFinal" and d.get("outcome") in ("adopted", "emergency"):
        outcome = d["outcome"]
    elif kind == "DeliberationConcluded" and d.get("outcome") == "agreed":
        outcome = "agreed"
    elif kind == "EmergencyDeclared":
        outcome = "emergency"
    else:
        return
    if conn.execute(sa.select(t.case_decisions.c.case_id).where(t.case_decisions.c.case_id == case)).first() is None:
        conn.execute(sa.insert(t.case_decisions).values(case_id=case, community=env["community"], decided_by=kind,
                                                        outcome=outcome, decided_at=env["occurred_at"]))


def _stage_after(kind: str, d: dict) -> str | None:
    """The stage a case enters with this event, if it enters one."""
    if kind == "ProposalDrafted":
        return "draft"  # a draft is its author's until submitted: not on the board
    if kind == "ProposalSubmitted":
        return "proposal"
    if kind in ("ProposalQualified", "ConsultationOpened"):
        return "deliberation"
    if kind == "DeliberationConcluded":
        return {"agreed": "action", "vote_needed": "decision"}.get(d.get("outcome"))
    if kind in ("BallotPrepared", "EmergencyDeclared"):
        return "decision"
    if kind == "ResolutionFinal" and d.get("outcome") in ("adopted", "emergency"):
        return "action"
    return None
