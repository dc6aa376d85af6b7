"""The proposals application: commands that record a proposal's life and its supports, the read
model they keep, and the queries on it. Directory facts (rules, who lives where) come in as plain
data from the service, so this runs without nameko.

Exactness under concurrency. Every command that changes a proposal or its supports holds that
proposal's lock (`KeyedLocks`, shared by all instances) while it checks and saves. So no support
is saved after the proposal qualified, expired, was withdrawn or merged; and the count recorded in
`ProposalQualified`, read from the read model brought up to the log head under that lock, is
exactly the supports recorded before it. Optimistic concurrency (one `Support` per unit, with a
derived id) stays as the second line: a duplicate that got past the lock still fails on its version.
"""
from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as sa_postgresql, sqlite as sa_sqlite
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.common import clock, envelope, metrics
from services.common.aggregate import SELF, command_context
from services.common.consumer import catch_up_projection, collecting, commits_ahead
from services.common.content import validate_text
from services.common.erasure import record_erasure
from services.common import ids
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.ids import as_uuid
from services.common.locks import KeyedLocks
from services.common.store import StageApplication
from services.common.tables import texts

from . import tables as t
from .domain import (
    BODY_MAX, COLLECTING, DRAFT, REASON_MAX, SCOPES, STATUSES, SUBMITTED, SYSTEM, TITLE_MAX, Proposal, Support,
    check_scope, follow_up_id, support_id, threshold_rule, unit_key,
)

SOURCE = "proposals"
MAX_PAGE = 200


def parse_id(value, field: str = "proposal") -> uuid.UUID:
    return ids.parse_id(value, field)


class ProposalsApp(StageApplication):
    name = SOURCE

    def __init__(self, settings, engine: sa.Engine):
        # Instances take turns on the read model (the inner lock, inside a proposal's).
        super().__init__(settings, SOURCE, engine, project_envelope, cache_size=10000,
                         shared_turn="proposals-projection")
        self.locks = KeyedLocks(settings, engine, "proposals")

    def close(self) -> None:
        self.locks.close()
        super().close()

    # ---- loading ------------------------------------------------------------------------------
    def _proposal(self, community: str, proposal, viewer: str | None = None) -> Proposal:
        """A proposal of this community; someone else's draft does not exist for the viewer."""
        pid = parse_id(proposal)
        try:
            p = self.repository.get(pid)
        except AggregateNotFoundError:
            raise NotFound.coded("proposals.proposal_does_exist", pid=pid) from None
        if not isinstance(p, Proposal) or p.community != community or (p.status == DRAFT and p.author != viewer):
            raise NotFound.coded("proposals.proposal_does_exist", pid=pid)
        return p

    def _support(self, proposal: Proposal, key: str) -> Support | None:
        try:
            return self.repository.get(support_id(proposal.id, key))
        except AggregateNotFoundError:
            return None

    def _locked(self, *proposals):
        """Hold the proposals' locks, keyed by canonical id: one proposal, one lock, however spelt."""
        return self.locks.hold(*(str(parse_id(p)) for p in proposals))

    def _save(self, *aggregates):
        return self.save_or_conflict(*aggregates, conflict="proposals.changed_same_time_nothing")

    @staticmethod
    def _transition(p: Proposal) -> None:
        metrics.STAGE_TRANSITIONS.labels(SOURCE, p.community, p.status).inc()

    def facts(self, community: str, proposal, viewer: str) -> dict:
        """What the service needs to ask the directory before a command on a proposal."""
        p = self._proposal(community, proposal, viewer)
        return {"id": str(p.id), "scope": p.scope, "scope_id": p.scope_id, "status": p.status}

    # ---- commands ------------------------------------------------------------------------------
    def draft(self, actor: str, community: str, title, body, category, scope, scope_id=None, *,
              categories: list[str], known_scopes: dict[str, set] | None = None) -> str:
        title = validate_text(title, "title", max_len=TITLE_MAX)
        body = validate_text(body, "body", max_len=BODY_MAX)
        if category not in categories:
            raise InvalidInput.coded("proposals.category_one", categories=", ".join(categories))
        scope_id = check_scope(community, scope, scope_id, known_scopes or {})
        title_commitment = self.content.put(title, subject=actor)
        body_commitment = self.content.put(body, subject=actor)
        with command_context(community=community, actor=actor, case=SELF):
            p = Proposal(community=community, author=actor, scope=scope, scope_id=scope_id, category=category,
                         title_commitment=title_commitment, body_commitment=body_commitment)
        self._save(p)
        self._transition(p)
        self.project()
        return str(p.id)

    def submit(self, actor: str, community: str, proposal) -> None:
        with self._locked(proposal):
            p = self._proposal(community, proposal, actor)
            with command_context(community=community, actor=actor, case=p.case):
                p.submit(actor)
            self._save(p)
        self._transition(p)
        self.project()

    def screen(self, actor: str, community: str, proposal, admissible, reason=None, category=None, *,
               rules: dict, in_scope: int) -> None:
        """Admissible: collection opens at once, with the threshold and its denominator (`in_scope`,
        the residents or households in scope now, in the threshold's unit) frozen for its duration."""
        if not isinstance(admissible, bool):
            raise InvalidInput.coded("proposals.admissible_true_false")
        reason = validate_text(reason, "reason", max_len=REASON_MAX, required=not admissible)
        if category is not None and category not in rules["categories"]:
            raise InvalidInput.coded("proposals.category_one", categories=", ".join(rules["categories"]))
        with self._locked(proposal):
            p = self._proposal(community, proposal, actor)
            p.require(SUBMITTED, doing="screened")  # before the reason is stored
            rule = threshold_rule(rules, p.scope)
            reason_commitment = self.content.put(reason, subject=actor) if reason else None
            with command_context(community=community, actor=actor, case=p.case):
                p.screen(admissible, reason_commitment, category or p.category)
                if admissible:
                    p.open_collection(rules["support_per"], rule, in_scope, clock.now(),
                                      rules["support_window_days"])
            self._save(p)
        self._transition(p)
        self.project()

    def give_support(self, actor: str, community: str, proposal, household: str | None,
                     scope_households: set[str] | None) -> dict:
        """The caller supports the proposal. `household`: where the caller lives now;
        `scope_households`: the households of the proposal's scope (None for the whole community)."""
        with self._locked(proposal):
            p = self._proposal(community, proposal, actor)
            p.require_collecting(clock.now())
            if household is None or (scope_households is not None and household not in scope_households):
                raise Forbidden.coded("proposals.residents_living_proposal_may", scope=p.scope)
            key = unit_key(p.support_per, actor, household)
            with command_context(community=community, actor=actor, case=p.case):
                s = self._support(p, key)
                if s is None:
                    s = Support.give(community, str(p.id), p.support_per, actor, household)
                else:
                    s.give_again(actor, household)
            with commits_ahead() as committed, _counting() as counted:
                position = self._save(s)[-1].notification.id
            return self._qualify_if_reached(p, causation=envelope.event_id(s.id, s.version),
                                            counted=counted.get(position) if position in committed else None)

    def withdraw_support(self, actor: str, community: str, proposal, household: str | None) -> dict:
        with self._locked(proposal):
            p = self._proposal(community, proposal, actor)
            p.require_collecting(clock.now(), doing="changed")
            s = self._support(p, unit_key(p.support_per, actor, household))
            if s is None:
                raise Conflict.coded("proposals.support_yours_proposal_withdraw")
            with command_context(community=community, actor=actor, case=p.case):
                s.withdraw(actor)
            self._save(s)
            self.project()
            supports = self._count(p)
        return self._counts(p, supports)

    def withdraw(self, actor: str, community: str, proposal) -> None:
        with self._locked(proposal):
            p = self._proposal(community, proposal, actor)
            with command_context(community=community, actor=actor, case=p.case):
                p.withdraw(actor)
            self._save(p)
        self._transition(p)
        self.project()

    def merge(self, actor: str, community: str, proposal, into, households_from: set[str],
              households_into: set[str]) -> dict:
        """Merge a duplicate into another proposal. Its current supports carry over as supports of
        the target (each marked `carried_from`), unless the same unit already supports the target;
        the target's scope must cover the duplicate's, so every carried supporter lives in it."""
        source_id, target_id = parse_id(proposal), parse_id(into, "target proposal")
        if source_id == target_id:
            raise InvalidInput.coded("proposals.proposal_merged_into_itself")
        if not set(households_from) <= set(households_into):
            raise Conflict.coded("proposals.target_proposal_scope_does")
        with self._locked(source_id, target_id):
            a = self._proposal(community, source_id, actor)
            b = self._proposal(community, target_id, actor)
            self.project()
            supporters = self._current_supporters(a)
            with command_context(community=community, actor=actor, case=a.case):
                a.merge_into(b, carries_supports=bool(supporters))
            carried, seen = [], set()
            with command_context(community=community, actor=actor, case=b.case):
                for person, household in supporters:
                    key = unit_key(b.support_per, person, household)
                    if key in seen:
                        continue
                    seen.add(key)
                    s = self._support(b, key)
                    if s is None:
                        s = Support.give(community, str(b.id), b.support_per, person, household,
                                         carried_from=str(a.id))
                    elif s.current:
                        continue  # this unit already supports the target: counted once
                    else:
                        s.give_again(person, household, carried_from=str(a.id))
                    carried.append(s)
                b.receive_merge(a, len(carried))
            self._save(a, b, *carried)
            self._transition(a)
            counts = self._qualify_if_reached(b, causation=envelope.event_id(b.id, b.version))
        return {"merged": str(a.id), "into": str(b.id), "carried": len(carried), **counts}

    def _qualify_if_reached(self, p: Proposal, causation: str, counted: sa.Row | None = None) -> dict:
        """Called holding the proposal's lock, after a save: count from the read model brought up to
        the log head, and record qualification once the threshold is reached. Returns the counts.
        `counted`: the counts the save's own read-model apply returned, when it applied the support
        at the log head and committed (`_counting`); they are then the counts up to the support's
        position, and the read model is not asked again (two round trips less per support). A later
        support counts for itself, so the last one to the threshold qualifies the proposal."""
        if counted is None:
            self.project()
            supports = self._count(p)
        else:
            supports = _in_unit(counted)
        if p.reached(supports):
            with command_context(community=p.community, actor="system", case=p.case, causation=causation):
                p.qualify(supports)
            try:
                self.save(p)
            except IntegrityError:
                p = self.repository.get(p.id)  # another instance changed it first; the support stands
            else:
                self._transition(p)
                self.project()
        return self._counts(p, supports)

    def expire_due(self, now: datetime | None = None) -> list[str]:
        """The timer: record the expiry of every proposal whose support window has closed."""
        now = now or clock.now()
        self.project()
        with self.engine.connect() as conn:
            due = conn.execute(sa.select(t.proposals.c.id, t.proposals.c.community).where(
                t.proposals.c.status == COLLECTING, t.proposals.c.deadline <= clock.format(now))).all()
        expired = []
        for pid, community in due:
            with self._locked(pid):
                p = self.repository.get(uuid.UUID(pid))
                if not p.due(now):
                    continue  # qualified or changed meanwhile
                with command_context(community=community, actor="system", case=p.case):
                    p.expire(now)
                try:
                    self.save(p)
                except IntegrityError:
                    continue
            self._transition(p)
            expired.append(pid)
        if expired:
            self.project()
        return expired

    # ---- consumer of the actions source --------------------------------------------------------
    def on_actions_event(self, env: dict, plan_title=None, comment_texts=None) -> list:
        """`FollowUpRequested` (residents found a plan unsatisfactory) opens a new proposal, submitted
        on their behalf by `system` and awaiting screening, in the plan's scope and category, with its
        own case linked to the original by `original_case` in its first event. Every other type is
        ignored. `plan_title(community, plan)` reads the plan's title from the actions service, for a
        case whose title this store does not hold. Called inside the consumer's command context."""
        if env["type"] != "FollowUpRequested":
            return []
        d, community = env["data"], env["community"]
        pid = follow_up_id(d["plan"], d["round"])
        try:
            self.repository.get(pid)
            return []  # already opened (a replayed request)
        except AggregateNotFoundError:
            pass
        original_case = str(d.get("original_case") or env.get("case"))
        original = self._original_proposal(community, original_case)
        subject = original.author if original is not None else None  # erasing the author erases the copy
        title = self.content.get(d.get("title_commitment")) or (
            self.content.get(original.title_commitment) if original is not None else None)
        if not title and plan_title is not None:
            title = (plan_title(community, d["plan"]) or {}).get("title")
        title = f"跟进：{title}" if title else "跟进：满意度评议未通过的行动"
        body = (f"居民对本案行动结果的满意度评议（第 {d['round']} 轮）未通过：不满意 {d.get('unsatisfied_share')}，"
                f"超过本社区的门槛 {d.get('threshold')}。行动计划已重新开启，平台代居民提出本跟进提议，"
                f"请社区工作者审查。原案：{original_case}。")
        # The unsatisfied residents' own words, without who wrote them, each with its commitment so a
        # reader can check it against the evaluation in the record.
        quoted = list(d.get("unsatisfied_comment_commitments") or [])
        found = (comment_texts(quoted) or {}) if quoted and comment_texts is not None else {}
        lines = [f"{i}. “{found[c]}”（{c}）" for i, c in enumerate((c for c in quoted if found.get(c)), 1)]
        if lines:
            body += "\n\n不满意的居民意见：\n" + "\n".join(lines)
        title_commitment, body_commitment = self.content.put_many(
            [(title[:TITLE_MAX], subject), (body[:BODY_MAX], None)])
        scope = d.get("scope") or "community"
        scope_id = community if scope == "community" else str(d.get("scope_id"))
        with command_context(community=community, actor=SYSTEM, case=SELF, causation=env["id"]):
            p = Proposal.follow_up(community, d["plan"], d["round"], scope, scope_id, d.get("category") or "other",
                                   title_commitment, body_commitment, original_case)
            p.submit(SYSTEM)
        return [p]

    def _original_proposal(self, community: str, case: str) -> Proposal | None:
        """The proposal that opened the original case, if the case began here."""
        found = as_uuid(case)
        if found is None:
            return None
        try:
            p = self.repository.get(found)
        except AggregateNotFoundError:
            return None
        return p if isinstance(p, Proposal) and p.community == community else None

    def erase_person(self, community: str, person: str, *, actor: str, cause: str | None = None) -> dict:
        """PIPL erasure of the person's texts here (titles, bodies, reasons, and copies of their
        titles in follow-ups), recorded in this log first; every hash stays. The caller has checked
        that the person belongs to the community. (The one request that erases everywhere is the
        directory's; this service then erases through `erase_texts`.)"""
        person = str(parse_id(person, "person"))
        record = record_erasure(SOURCE, self.content, community, person, actor, cause)
        self._save(record)
        erased = self.erase_texts(community, person)
        return {"erased_texts": erased, "erasure": str(record.id)}

    def erase_texts(self, community: str, person: str) -> int:
        """Erase the person's texts and the read model's searchable copies of their titles (safe
        to run again); how many texts went."""
        with self.engine.connect() as conn:
            theirs = [c for (c,) in conn.execute(sa.select(texts.c.commitment).where(texts.c.subject == person))]
        erased = self.content.erase_subject(person)
        P = t.proposals
        with self.engine.begin() as conn:
            conn.execute(sa.update(P).where(P.c.community == community, P.c.author == person).values(title=None))
            if theirs:
                conn.execute(sa.update(P).where(P.c.community == community, P.c.title_commitment.in_(theirs))
                             .values(title=None))
        self.project()
        return erased

    def personal_data(self, community: str, person: str) -> dict:
        """What this stage holds about the person (PIPL art. 45): the proposals they wrote, as
        they see them, and the supports they gave."""
        self.project()
        P, S = t.proposals, t.supports
        with self.engine.connect() as conn:
            mine = [r.id for r in conn.execute(sa.select(P.c.id).where(P.c.community == community, P.c.author == person)
                                                .order_by(P.c.id))]
            supports = [{"proposal": r.proposal, "household": r.household, "current": r.current, "given_at": r.given_at}
                        for r in conn.execute(sa.select(S).join(P, P.c.id == S.c.proposal).where(
                            P.c.community == community, S.c.person == person).order_by(S.c.given_at, S.c.id))]
        return {"proposals": [self.view(community, pid, person) for pid in mine], "supports": supports}

    # ---- read model -----------------------------------------------------------------------------
    def catch_up(self) -> int:
        return catch_up_projection(self, SOURCE, self.projection)

    def _row(self, pid) -> sa.Row | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.proposals).where(t.proposals.c.id == str(pid))).first()

    def _count(self, p: Proposal) -> int:
        """Current supports in the threshold's unit (residents, or distinct households)."""
        row = self._row(p.id)
        return _in_unit(row) if row else 0

    @staticmethod
    def _counts(p: Proposal, supports: int) -> dict:
        return {"proposal": str(p.id), "status": p.status, "supports": supports, "threshold": p.threshold,
                "unit": p.unit}

    def _current_supporters(self, p: Proposal) -> list[tuple[str, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.supports.c.person, t.supports.c.household).where(
                t.supports.c.proposal == str(p.id), t.supports.c.current.is_(True)).order_by(t.supports.c.given_at))
            return [(r.person, r.household) for r in rows]

    # ---- queries ---------------------------------------------------------------------------------
    def list_proposals(self, community: str, viewer: str, status=None, category=None, scope=None, q=None,
                       limit: int = 50, offset: int = 0) -> dict:
        if status is not None and status not in STATUSES:
            raise InvalidInput.coded("proposals.status_one", statuses=", ".join(STATUSES))
        if scope is not None and scope not in SCOPES:
            raise InvalidInput.coded("common.scope_one", scopes=", ".join(SCOPES))
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput.coded("common.limit_between", max_page=MAX_PAGE)
        self.project()
        P = t.proposals
        cond = [P.c.community == community, sa.or_(P.c.status != DRAFT, P.c.author == viewer)]
        if status:
            cond.append(P.c.status == status)
        if category:
            cond.append(P.c.category == category)
        if scope:
            cond.append(P.c.scope == scope)
        if q:
            cond.append(sa.func.lower(P.c.title).contains(str(q).lower(), autoescape=True))
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(P).where(*cond)).scalar()
            rows = conn.execute(sa.select(P).where(*cond).order_by(P.c.created_position.desc())
                                .limit(limit).offset(max(int(offset), 0))).all()
        return {"total": total, "items": [_summary(r) for r in rows]}

    def view(self, community: str, proposal, viewer: str) -> dict:
        """One proposal with its texts, counts, threshold, deadline and its own history."""
        p = self._proposal(community, proposal, viewer)
        self.project()
        row = self._row(p.id)
        texts_ = self.content.get_many([p.body_commitment, row.reason_commitment])
        with self.engine.connect() as conn:
            mine = conn.execute(sa.select(t.supports.c.id).where(
                t.supports.c.proposal == str(p.id), t.supports.c.current.is_(True),
                t.supports.c.person == viewer)).first() is not None
        history = []
        for e in self.repository.event_store.get(p.id):  # the proposal's own events: a handful, never its supports
            env = envelope.from_domain_event(SOURCE, None, e)
            history.append({"type": env["type"], "at": env["occurred_at"], "actor": env["actor"],
                            "version": env["aggregate"]["version"], "data": env["data"]})
        return dict(_summary(row), body=texts_.get(p.body_commitment), reason=texts_.get(row.reason_commitment),
                    title_commitment=row.title_commitment, body_commitment=row.body_commitment,
                    threshold_rule=row.threshold_rule, supports_residents=row.supports,
                    supports_households=row.households, supported_by_me=mine, history=history)

    # ---- what needs the person (the home page) ------------------------------------------------------
    def _support_candidates(self, conn: sa.Connection, community: str, person: str, household: str | None):
        """Proposals of the community the person could still support, as far as this store knows:
        collecting, before the deadline (the timer may not have expired it yet), not the person's own,
        and not currently supported by them, nor by their household where supports count per
        household (a second support there would be refused). Scope is left to the caller, since
        who lives where is the directory's. Soonest deadline first. One query on the read model."""
        P, S = t.proposals, t.supports
        mine = sa.or_(S.c.person == person,
                      sa.and_(P.c.support_per == "household", S.c.household == household)
                      if household else sa.false())
        supported = sa.exists().where(S.c.proposal == P.c.id, S.c.current.is_(True), mine)
        return conn.execute(sa.select(P.c.id, P.c.title, P.c.deadline, P.c.scope, P.c.scope_id).where(
            P.c.community == community, P.c.status == COLLECTING, P.c.author != person,
            P.c.deadline > clock.format(clock.now()), ~supported,
        ).order_by(P.c.deadline, P.c.created_position)).all()

    def need_scopes(self, community: str, person: str) -> list[tuple[str, str]]:
        """The distinct (scope, scope_id) of the proposals the person might be asked to support:
        what the service must ask the directory about (once per scope, not per proposal) before
        `needs_of`. Empty: no directory question is needed at all."""
        self.project()
        with self.engine.connect() as conn:
            rows = self._support_candidates(conn, community, person, None)
        return list(dict.fromkeys((r.scope, r.scope_id) for r in rows))

    def needs_of(self, community: str, person: str, roles, household: str | None,
                 households_in_scope: dict[tuple[str, str], set[str]]) -> list[dict]:
        """What needs the person in this stage now, for the home page: proposals to support, soonest
        deadline first, then, for a community worker or party lead, submissions awaiting screening in
        the order they came in. Read from the read model only, never from the aggregates.

        `household`: where the person lives now (None: the directory has them as no resident, so
        there is nothing for them to support). `households_in_scope`: the households of each
        (scope, scope_id) that `need_scopes` named, as the directory has them now; the whole community
        needs no entry (every resident's household is in it). A scope missing from it (a proposal
        opened between the two calls) is left out until the next ask, rather than offered wrongly."""
        self.project()
        P = t.proposals
        items = []
        with self.engine.connect() as conn:
            if household is not None:
                for r in self._support_candidates(conn, community, person, household):
                    if r.scope == "community" or household in households_in_scope.get((r.scope, r.scope_id), ()):
                        items.append(_need("support", r.id, r.title, r.deadline))
            if SCREENERS & set(roles or ()):
                for r in conn.execute(sa.select(P.c.id, P.c.title).where(
                        P.c.community == community, P.c.status == SUBMITTED,
                ).order_by(P.c.submitted_at, P.c.created_position)):
                    items.append(_need("screen", r.id, r.title, None))
        return items


SCREENERS = {"community_worker", "party_lead"}  # the roles that screen submissions (the gateway's SCREENERS)


def _need(kind: str, pid: str, title: str | None, due: str | None) -> dict:
    return {"kind": kind, "stage": SOURCE, "id": pid, "title": title, "due": due, "path": f"proposals/{pid}"}


def _in_unit(row) -> int:
    """Supports in the proposal's threshold unit (residents, or distinct households), from its row."""
    return row.households if row.unit == "households" else row.supports


def _summary(row) -> dict:
    return {
        "id": row.id, "title": row.title, "category": row.category, "scope": row.scope, "scope_id": row.scope_id,
        "status": row.status, "author": row.author, "supports": _in_unit(row), "unit": row.unit,
        "support_per": row.support_per, "threshold": row.threshold, "denominator": row.denominator,
        "deadline": row.deadline, "merged_into": row.merged_into, "created_at": row.created_at,
        "submitted_at": row.submitted_at, "opened_at": row.opened_at, "closed_at": row.closed_at,
    }


# ---- the projection (own log -> read tables) ---------------------------------------------------------
_CLOSING = {"ProposalQualified": "qualified", "ProposalExpired": "expired", "ProposalWithdrawn": "withdrawn",
            "ProposalMerged": "merged"}


def project_envelope(conn: sa.Connection, env: dict) -> None:
    kind, d, agg, at = env["type"], env["data"], env["aggregate"]["id"], env["occurred_at"]
    P = t.proposals

    def update(pid: str, **values) -> None:
        conn.execute(sa.update(P).where(P.c.id == pid).values(updated_at=at, **values))

    if kind == "ProposalDrafted":
        title = conn.execute(sa.select(texts.c.body).where(texts.c.commitment == d["title_commitment"])).scalar()
        conn.execute(sa.insert(P).values(
            id=agg, community=env["community"], author=d["author"], scope=d["scope"], scope_id=d["scope_id"],
            category=d["category"], status="draft", title=title, title_commitment=d["title_commitment"],
            body_commitment=d["body_commitment"], supports=0, households=0, created_at=at,
            created_position=env["position"], updated_at=at))
    elif kind == "ProposalSubmitted":
        update(agg, status="submitted", submitted_at=at)
    elif kind == "ProposalScreened":
        update(agg, status="screened" if d["admissible"] else "inadmissible", category=d["category"],
               reason_commitment=d.get("reason_commitment"), screened_at=at,
               **({} if d["admissible"] else {"closed_at": at}))
    elif kind == "ProposalCollectionOpened":
        update(agg, status="collecting", support_per=d["support_per"], unit=d["unit"],
               threshold_rule=d["threshold_rule"], threshold=d["threshold"], denominator=d["denominator"],
               deadline=d["deadline"], opened_at=at)
    elif kind in _CLOSING:
        update(agg, status=_CLOSING[kind], closed_at=at, **({"merged_into": d["into"]} if "into" in d else {}))
    elif kind == "ProposalMergeReceived":
        update(agg)
    elif kind == "SupportGiven":
        conn.execute(_INSERT_SUPPORT, dict(id=agg, proposal=d["proposal"], person=d["person"],
                                           household=d.get("household"), current=True, given_at=at))
        _count_support(conn, d["proposal"], d.get("household"), +1, at, env["position"])
    elif kind == "SupportGivenAgain":
        conn.execute(_SUPPORT_AGAIN, {"support": agg, "by": d["person"], "of_household": d.get("household"), "at": at})
        _count_support(conn, d["proposal"], d.get("household"), +1, at, env["position"])
    elif kind == "SupportWithdrawn":
        conn.execute(_SUPPORT_WITHDRAWN, {"support": agg})
        _count_support(conn, d["proposal"], d.get("household"), -1, at, env["position"])


# Supports are the read model's most frequent events: their statements are built once, with the
# values bound at each execution (building them, and their cache keys, cost more than running them).
_S, _H, _P = t.supports, t.support_households, t.proposals
_INSERT_SUPPORT = sa.insert(_S)
_SUPPORT_AGAIN = (sa.update(_S).where(_S.c.id == sa.bindparam("support"))
                  .values(current=True, person=sa.bindparam("by"), household=sa.bindparam("of_household"),
                          given_at=sa.bindparam("at")))
_SUPPORT_WITHDRAWN = sa.update(_S).where(_S.c.id == sa.bindparam("support")).values(current=False)


def _household_upsert(dialect) -> sa.Insert:
    """A household's support count moved by `delta`, or started at it, in one statement (the
    table's key is (proposal, household)), returning the new count: the same upsert on both backends."""
    stmt = dialect.insert(_H).values(proposal=sa.bindparam("of"), household=sa.bindparam("of_household"),
                                     n=sa.bindparam("delta"))
    return stmt.on_conflict_do_update(index_elements=[_H.c.proposal, _H.c.household],
                                      set_={"n": _H.c.n + stmt.excluded.n}).returning(_H.c.n)


_MOVE_HOUSEHOLD = {"postgresql": _household_upsert(sa_postgresql), "sqlite": _household_upsert(sa_sqlite)}
_MOVE_COUNTS = (sa.update(_P).where(_P.c.id == sa.bindparam("of"))
                .values(supports=_P.c.supports + sa.bindparam("delta"),
                        households=_P.c.households + sa.bindparam("households_delta"),
                        updated_at=sa.bindparam("at"))
                .returning(_P.c.supports, _P.c.households, _P.c.unit))  # what `_in_unit` reads

# The counts a support's read-model apply left, by the support's position, for the command that
# recorded it (`_counting`): what the read model worked out, applying the support at the log head,
# holds for the log as recorded (`consumer.commits_ahead`), so the command need not read them again.
_counted: ContextVar[dict | None] = ContextVar("proposals_counted", default=None)


def _counting():
    return collecting(_counted, {})


def _count_support(conn: sa.Connection, proposal: str, household: str | None, delta: int, at: str,
                   position: int | None = None) -> None:
    """Move the support counters of one proposal by one support: O(1), whatever its size."""
    households_delta = 0
    if household:
        n = conn.execute(_MOVE_HOUSEHOLD[conn.dialect.name],
                         {"of": proposal, "of_household": household, "delta": delta}).scalar_one()
        # The household starts or stops counting when its first support arrives or its last one goes.
        households_delta = 1 if (delta > 0 and n == 1) else -1 if (delta < 0 and n == 0) else 0
    counts = conn.execute(_MOVE_COUNTS, {"of": proposal, "delta": delta, "households_delta": households_delta,
                                         "at": at}).first()
    seen = _counted.get()
    if seen is not None and counts is not None and position is not None:
        seen[position] = counts
