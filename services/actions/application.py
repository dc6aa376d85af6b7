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
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.common import clock, metrics
from services.common.aggregate import SELF, command_context
from services.common.consumer import SqlSink, catch_up_projection
from services.common.content import ContentStore, validate_text
from services.common.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from services.common.store import ServiceApplication

from . import tables as t
from .domain import (
    ACTIVE, CLOSED, COMMENT_MAX, EVALUATING, RATINGS, RESPONSIBLE_KINDS, SCOPES, TASK_OPEN, TEXT_MAX, TITLE_MAX,
    ActionPlan, CaseClosure, Evaluation, closure_id, evaluation_id, plan_id,
)

EVIDENCE_MAX_BYTES = 5 * 1024 * 1024
MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
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
STAGES = ("proposal", "deliberation", "decision", "action")
PROPOSAL_ENDINGS = {"ProposalExpired": "expired", "ProposalWithdrawn": "withdrawn", "ProposalMerged": "merged"}


@dataclass(frozen=True)
class Caller:
    """Who acts, with the roles the gateway authenticated for them in the community."""

    person: str
    roles: frozenset = field(default_factory=frozenset)

    def holds(self, roles) -> bool:
        return "platform_admin" in self.roles or bool(self.roles & set(roles))


def _id(value, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"{what} {value!r} does not exist") from None


def _when(value, what: str):
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be an ISO-8601 time with a zone, like 2026-07-01T18:00:00+08:00")
    try:
        return clock.parse(value)
    except ValueError:
        raise InvalidInput(f"{what} is not an ISO-8601 time with a zone: {value!r}") from None


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
    """Evidence files, content-addressed: `<data>/evidence/<sha256>`. The hash goes into the
    event, so a file can never change under the record; reading checks it again."""

    def __init__(self, folder: Path, engine: sa.Engine):
        self.folder, self.engine = folder, engine

    def put(self, community: str, person: str, content_base64, media_type: str | None) -> dict:
        if not isinstance(content_base64, str) or not content_base64:
            raise InvalidInput("content_base64 must be the file, base64-encoded")
        if len(content_base64) > (EVIDENCE_MAX_BYTES * 4) // 3 + 4:
            raise InvalidInput(f"an evidence file may be at most {EVIDENCE_MAX_BYTES} bytes")
        try:
            data = base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("content_base64 is not valid base64") from None
        if not data:
            raise InvalidInput("the evidence file is empty")
        if len(data) > EVIDENCE_MAX_BYTES:
            raise InvalidInput(f"an evidence file may be at most {EVIDENCE_MAX_BYTES} bytes")
        media_type = media_type or "application/octet-stream"
        if not isinstance(media_type, str) or len(media_type) > 100 or not MEDIA_TYPE.match(media_type):
            raise InvalidInput("media_type must look like image/jpeg")
        digest = hashlib.sha256(data).hexdigest()
        path = self.folder / digest
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{digest}.{uuid.uuid4().hex}"
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        with self.engine.begin() as conn:
            known = conn.execute(sa.select(t.evidence.c.sha256).where(
                t.evidence.c.sha256 == digest, t.evidence.c.community == community)).first()
            if known is None:
                conn.execute(sa.insert(t.evidence).values(
                    sha256=digest, community=community, size=len(data), media_type=media_type, uploaded_by=person,
                    uploaded_at=clock.format(clock.now())))
        return {"sha256": digest, "size": len(data), "media_type": media_type}

    def missing(self, community: str, hashes: list[str]) -> list[str]:
        if not hashes:
            return []
        with self.engine.connect() as conn:
            held = {r.sha256 for r in conn.execute(sa.select(t.evidence.c.sha256).where(
                t.evidence.c.community == community, t.evidence.c.sha256.in_(hashes)))}
        return [h for h in hashes if h not in held]

    def get(self, community: str, digest: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.evidence).where(
                t.evidence.c.sha256 == str(digest), t.evidence.c.community == community)).first()
        path = self.folder / str(digest)
        if row is None or not path.exists():
            raise NotFound(f"evidence {digest} does not exist")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise Conflict(f"evidence {digest} no longer matches its hash: the file was altered")
        return {"sha256": row.sha256, "size": row.size, "media_type": row.media_type,
                "uploaded_at": row.uploaded_at, "content_base64": base64.b64encode(data).decode("ascii")}


class ActionsApp(ServiceApplication):
    name = "actions"

    def __init__(self, settings, engine: sa.Engine):
        super().__init__(settings, "actions", env={"AGGREGATE_CACHE_MAXSIZE": "5000"})
        self.engine = engine
        self.content = ContentStore(engine)
        self.evidence = EvidenceStore(Path(settings.data_dir) / "evidence", engine)
        self.projection = SqlSink("projection", engine, project_envelope)

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
            raise NotFound(f"plan {plan} does not exist")
        return found

    def _save(self, *aggregates) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise Conflict("someone else changed this at the same moment; reload and try again") from None
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

    def project(self) -> int:
        return catch_up_projection(self, "actions", self.projection)

    # ---- opening a plan ------------------------------------------------------------------------
    def open_plan(self, caller: Caller, community: str, case: str | None, title: str, basis: str, scope: str,
                  scope_id: str | None, category: str | None, place_exists: bool = True) -> str:
        """A community worker opens a plan on a decision taken outside the platform's ballot (e.g.
        an emergency repair), writing its basis down. Without a case the plan opens its own."""
        if not caller.holds(MANAGERS):
            raise Forbidden("only a community worker or the party-committee lead opens an action plan directly")
        title = validate_text(title, "title", max_len=TITLE_MAX)
        basis = validate_text(basis, "basis", max_len=TEXT_MAX)
        if category is not None:
            category = validate_text(category, "category", max_len=40)
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of: {', '.join(SCOPES)}")
        if scope != "community" and not scope_id:
            raise InvalidInput(f"a {scope} scope needs scope_id")
        if scope != "community" and not place_exists:
            raise NotFound(f"{scope} {scope_id} does not exist")
        if case is not None:
            case = str(_id(case, "case"))
            self._check_case_open(case)
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

    def _check_case_open(self, case: str) -> None:
        if self._find(closure_id(case)) is not None:
            raise Conflict(f"case {case} is closed: only a new case can change its outcome")
        if self._find(plan_id(case)) is not None:
            raise Conflict(f"case {case} already has an action plan", plan=str(plan_id(case)))

    # ---- the consumer: what the other stages' events do here ------------------------------------
    def on_stage_event(self, env: dict) -> list:
        """An adopted or emergency resolution, or an agreement in deliberation, opens the case's
        plan; a rejected resolution or an inadmissible proposal closes the case. Returned, not
        saved: the tracked consumer saves them with its tracking record. Ids derive from the case,
        so a replayed event changes nothing. Every other event is none of this stage's business."""
        kind, d = env["type"], env["data"]
        if kind == "ResolutionFinal":
            case = env.get("case") or d.get("ballot")
            outcome = d.get("outcome")
            if outcome in ("adopted", "emergency"):
                return self._plan_from(env, case, "resolution" if outcome == "adopted" else "emergency",
                                       basis_commitment=d.get("justification_commitment"), ballot=d.get("ballot"),
                                       option=d.get("winner"))
            if outcome == "rejected":
                return self._closure_from(env, case, "rejected", "decision", reason_commitment=None,
                                          result=d.get("summary"))
        elif kind == "DeliberationConcluded" and env["data"].get("outcome") == "agreed":
            return self._plan_from(env, env.get("case") or d.get("consultation"), "agreement",
                                   basis_commitment=d.get("summary_commitment"))
        elif kind == "ProposalScreened" and d.get("admissible") is False:
            return self._closure_from(env, env.get("case") or env["aggregate"]["id"], "inadmissible", "proposal",
                                      reason_commitment=d.get("reason_commitment"))
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

    def _closure_from(self, env: dict, case: str, outcome: str, stage: str, reason_commitment: str | None,
                      result: dict | None = None) -> list:
        if self._find(closure_id(case)) is not None:
            return []
        with command_context(community=env["community"], actor="system", case=case, causation=env["id"]):
            return [CaseClosure.close(community=env["community"], case=case, outcome=outcome, stage=stage,
                                      reason_commitment=reason_commitment, result=result)]

    # ---- tasks and progress --------------------------------------------------------------------
    def assign_task(self, caller: Caller, community: str, plan: str, title: str, responsible_party: dict,
                    due_at: str, budget=None, funding_source: str | None = None,
                    person_exists: bool = True) -> str:
        if not caller.holds(MANAGERS):
            raise Forbidden("only a community worker or the party-committee lead assigns tasks")
        p = self.plan(community, plan)
        title = validate_text(title, "title", max_len=TITLE_MAX)
        party = self._party(responsible_party, person_exists)
        due = _when(due_at, "due_at")
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
            raise InvalidInput(f"responsible_party.kind must be one of: {', '.join(RESPONSIBLE_KINDS)}")
        party = {"kind": value["kind"], "person": None}
        if value.get("person") is not None:
            if not person_exists:
                raise NotFound(f"person {value['person']} does not exist")
            party["person"] = str(_id(value["person"], "person"))
        if value.get("name") is not None:
            party["name"] = validate_text(value["name"], "responsible_party.name", max_len=TITLE_MAX)
        return party

    def report_progress(self, caller: Caller, community: str, plan: str, task: str, percent: int,
                        note: str | None = None, evidence: list | None = None) -> dict:
        p = self.plan(community, plan)
        party = p.task(str(task))["responsible_party"]
        if not self._may_report(caller, party):
            raise Forbidden("progress is reported by the task's responsible party (or a community worker for them)")
        note = validate_text(note, "note", max_len=TEXT_MAX, required=False)
        evidence = list(evidence or [])
        if not all(isinstance(h, str) for h in evidence):
            raise InvalidInput("evidence must be a list of SHA-256 hashes")
        missing = self.evidence.missing(community, evidence)
        if missing:
            raise InvalidInput(f"upload the evidence first: {', '.join(missing)} is not stored", missing=missing)
        with self._texts(caller.person, note=note) as texts:
            with command_context(community=community, actor=caller.person, case=p.case):
                p.report_progress(task=str(task), percent=percent, note_commitment=texts["note"], evidence=evidence,
                                  now=clock.now())
            self._save(p)
        return self.task_view(community, str(task))

    @staticmethod
    def _may_report(caller: Caller, party: dict) -> bool:
        if caller.holds(MANAGERS) or caller.person == party.get("person"):
            return True
        return party.get("person") is None and caller.holds(REPORTING_ROLES[party["kind"]])

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
        closed = 0
        for pid, round_ in due:
            p = self._find(uuid.UUID(pid))
            if not p.tally_due(now):
                continue
            with command_context(community=p.community, actor="system", case=p.case):
                outcome = p.close_evaluation(counts=self.rating_counts(pid, round_), now=now)
                aggregates = [p]
                if outcome == "accepted" and self._find(closure_id(p.case)) is None:
                    aggregates.append(CaseClosure.close(community=p.community, case=p.case, outcome="completed",
                                                        stage="action", reason_commitment=p.result_commitment,
                                                        result=p.last_tally, plan=str(p.id)))
            if self._save_quietly(*aggregates):
                closed += 1
        if closed:
            self.project()
        return closed

    def _save_quietly(self, *aggregates) -> bool:
        try:
            self.save(*aggregates)
            return True
        except IntegrityError:
            return False

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
        if not caller.holds(MANAGERS):
            raise Forbidden("only a community worker or the party-committee lead reports a plan done")
        p = self.plan(community, plan)
        summary = validate_text(summary, "summary", max_len=TEXT_MAX)
        adults = [r["person"] for r in residents if r.get("adult")]
        with self._texts(caller.person, summary=summary) as texts:
            with command_context(community=community, actor=caller.person, case=p.case):
                p.report_done(summary_commitment=texts["summary"], residents=adults,
                              window_days=rules.get("evaluation_window_days", 14),
                              threshold=rules.get("unsatisfied_reopen_share", "1/3"), now=clock.now())
            self._save(p)
        return self.plan_view(community, plan)

    def evaluate(self, caller: Caller, community: str, plan: str, rating: str, comment: str | None = None) -> dict:
        p = self.plan(community, plan)
        round_ = p.check_evaluator(caller.person, clock.now())
        if rating not in RATINGS:
            raise InvalidInput(f"rating must be one of: {', '.join(RATINGS)}")
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
        """Readable texts of commitments. Commitments are salted hashes, so each names one text
        wherever it is stored: ours first, then each source in turn is asked for the rest."""
        wanted = {c for c in commitments if c}
        texts = {c: v for c, v in self._text_of(*wanted).items() if v is not None}
        for source in sources:
            missing = sorted(wanted - texts.keys())
            if not missing or read_texts is None:
                break
            for start in range(0, len(missing), 1000):
                texts.update(read_texts(source, missing[start:start + 1000]) or {})
        return texts

    def _titles(self, open_cases: dict[str, list], read_texts) -> None:
        untitled = [c for cases in open_cases.values() for c in cases if c.get("title") is None]
        texts = self._gather_texts((c.get("title_commitment") for c in untitled),
                                   ("proposals", "deliberation", "decisions"), read_texts)
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
            raise NotFound(f"task {task} does not exist")
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

    def plan_view(self, community: str, plan: str) -> dict:
        self.project()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.plans).where(t.plans.c.plan == str(_id(plan, "plan")),
                                                        t.plans.c.community == community)).first()
            if row is None:
                raise NotFound(f"plan {plan} does not exist")
            task_rows = list(conn.execute(sa.select(t.tasks).where(t.tasks.c.plan == row.plan)
                                          .order_by(t.tasks.c.position)))
            reports = list(conn.execute(sa.select(t.progress).where(t.progress.c.plan == row.plan)
                                        .order_by(t.progress.c.position)))
        texts = self._text_of(row.title_commitment, row.basis_commitment, row.result_commitment,
                              *(r.title_commitment for r in task_rows),
                              *(r.responsible_party.get("name_commitment") for r in task_rows),
                              *(r.note_commitment for r in reports))
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
        }

    def list_plans(self, community: str, status: str | None = None) -> list[dict]:
        self.project()
        cond = [t.plans.c.community == community]
        if status is not None:
            cond.append(t.plans.c.status == status)
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(t.plans).where(*cond).order_by(t.plans.c.opened_at)))
        texts = self._text_of(*(r.title_commitment for r in rows))
        return [{"plan": r.plan, "case": r.case_id, "title": texts.get(r.title_commitment), "basis": r.basis,
                 "status": r.status, "scope": r.scope, "scope_id": r.scope_id, "opened_at": r.opened_at}
                for r in rows]

    def my_evaluation(self, community: str, plan: str, person: str) -> dict | None:
        p = self.plan(community, plan)
        found = self._find(evaluation_id(str(p.id), p.round, person)) if p.round else None
        if found is None:
            return None
        return {"plan": str(p.id), "round": found.round, "rating": found.rating,
                "comment": self.content.get(found.comment_commitment)}

    def board(self, community: str, read_texts: Callable[[str, list[str]], dict] | None = None) -> dict:
        """The community's public progress board: open cases by stage, overdue tasks, and the
        implementation results disclosed (实施结果公开) with their evaluation. A case's title is
        ours when we hold it, else asked of the stage services by `read_texts(source, commitments)`
        (a proposal's title lives in the proposals store); an erased title reads as null."""
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
        texts = self._text_of(*(r.title_commitment for r in plan_rows), *(r.result_commitment for r in plan_rows),
                              *(r.title_commitment for r in overdue))
        plans_by_case = {r.case_id: r for r in plan_rows}
        open_cases: dict[str, list] = {s: [] for s in STAGES}
        for r in case_rows:
            if r.ended or r.case_id in closed or r.case_id in plans_by_case or r.stage not in STAGES:
                continue
            open_cases[r.stage].append({"case": r.case_id, "title_commitment": r.title_commitment,
                                        "category": r.category, "scope": r.scope, "scope_id": r.scope_id,
                                        "since": r.updated_at, "follow_up_of": r.follow_up_of})
        for r in plan_rows:
            if r.status == CLOSED or r.case_id in closed:
                continue
            done, total = progress.get(r.plan, (0, 0))
            open_cases["action"].append({
                "case": r.case_id, "plan": r.plan, "title": texts.get(r.title_commitment),
                "title_commitment": r.title_commitment, "category": r.category, "scope": r.scope,
                "scope_id": r.scope_id, "since": r.opened_at, "status": r.status,
                "tasks_done": int(done or 0), "tasks": int(total or 0)})
        self._titles(open_cases, read_texts)
        return {
            "community": community, "at": clock.format(clock.now()),
            "open_cases": open_cases,
            "overdue_tasks": [dict(self._task_row(r, texts), case=r.case_id) for r in overdue],
            "results": [{"case": r.case_id, "plan": r.plan, "title": texts.get(r.title_commitment),
                         "result": texts.get(r.result_commitment), "disclosed_at": r.done_at, "round": r.round,
                         "status": r.status, "evaluation_closes_at": r.evaluation_closes_at,
                         "evaluation": r.last_evaluation}
                        for r in sorted(plan_rows, key=lambda r: r.done_at or "", reverse=True) if r.done_at],
            "closed_cases": [{"case": c.case_id, "outcome": c.outcome, "stage": c.stage, "closed_at": c.closed_at}
                             for c in sorted(closed.values(), key=lambda c: c.closed_at, reverse=True)],
        }

    def case_file(self, community: str, case: str, entries: list[dict],
                  read_texts: Callable[[str, list[str]], dict] | None = None) -> dict:
        """The case file (案卷): every event of the case, from every stage, in time order, each
        linked to its audit entry, with the texts joined in: this service's own, and through
        `read_texts(source, commitments)` those of the stages whose events the case holds. A text
        erased since, or of a comment a moderator has hidden, stays a bare commitment."""
        case = str(_id(case, "case"))
        self.project()
        if not entries:
            raise NotFound(f"case {case} does not exist (or the audit log has not recorded it yet)")
        # The four stages' events make the file; proofs of notice stay in the audit log (and the
        # deliveries API), or they would outnumber the case's own steps.
        notices = sum(1 for e in entries if e["envelope"]["source"] not in SOURCE_STAGES)
        entries = [e for e in entries if e["envelope"]["source"] in SOURCE_STAGES]
        ordered = in_time_order(entries)
        texts = self._case_texts(entries, read_texts)
        base = f"/api/v1/communities/{community}/audit/entries"
        items = []
        for e in ordered:
            env = e["envelope"]
            items.append({
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
        return {
            "case": case, "community": community,
            "stages": [s for s in STAGES if any(i["stage"] == s for i in items)],
            "plan": plan.plan if plan else None,
            "status": "closed" if closure else "open",
            "outcome": closure.outcome if closure else None,
            "follow_ups": follow_ups,
            "notices": notices,
            "items": items,
        }


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
            reason_commitment=d["reason_commitment"], closed_at=at))
        metrics.STAGE_TRANSITIONS.labels("actions", env["community"], "closed").inc()


def project_case(conn: sa.Connection, env: dict) -> None:
    """Where each case stands, from the other stages' events (the tracked consumer's SQL side;
    the board reads it). A case is first seen at its first event of any stage."""
    case = env.get("case")
    if not case:
        return
    kind, d, at = env["type"], env["data"], env["occurred_at"]
    stage, ended = _stage_after(kind, d), None
    if kind == "ProposalScreened" and d.get("admissible") is False:
        ended = "inadmissible"
    elif kind in PROPOSAL_ENDINGS:
        ended = PROPOSAL_ENDINGS[kind]
    elif kind == "ResolutionFinal" and d.get("outcome") == "rejected":
        ended = "rejected"
    facts = {k: d[k] for k in ("scope", "scope_id", "category", "title_commitment", "proposal")
             if isinstance(d.get(k), str)}
    follow_up_of = d.get("original_case") or d.get("follow_up_of")
    if isinstance(follow_up_of, str):
        facts["follow_up_of"] = follow_up_of
    row = conn.execute(sa.select(t.cases.c.case_id).where(t.cases.c.case_id == case)).first()
    if row is None:
        conn.execute(sa.insert(t.cases).values(
            case_id=case, community=env["community"], stage=stage or SOURCE_STAGES.get(env["source"], "proposal"),
            ended=ended, opened_at=at, updated_at=at, last_type=kind, **facts))
        return
    changes = dict(facts, updated_at=at, last_type=kind)
    if stage:
        changes["stage"] = stage
    if ended:
        changes["ended"] = ended
    conn.execute(sa.update(t.cases).where(t.cases.c.case_id == case).values(**changes))


def _stage_after(kind: str, d: dict) -> str | None:
    """The stage a case enters with this event, if it enters one."""
    if kind == "ProposalDrafted":
        return "draft"  # a draft is its author's until submitted: not on the board
    if kind == "ProposalSubmitted":
        return "proposal"
    if kind in ("ProposalQualified", "ConsultationOpened"):
        return "deliberation"
    if kind == "DeliberationConcluded":
        return "action" if d.get("outcome") == "agreed" else "decision"
    if kind in ("BallotPrepared", "EmergencyDeclared"):
        return "decision"
    if kind == "ResolutionFinal" and d.get("outcome") in ("adopted", "emergency"):
        return "action"
    return None
