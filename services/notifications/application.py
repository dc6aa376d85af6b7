"""The notifications application: plans who is told what (from consumed events and reminders),
keeps the settings people and workers chose, and answers the inbox.

Planning is the consumer's handler: it returns `Delivery` aggregates that the tracked consumer
saves with its tracking record, so each event is planned exactly once. Before it returns, it
records what it learnt about the case (titles, who took part, reminders) in the state store. That
write is not in the tracked transaction, and need not be: it is idempotent, so if the service dies
between the two, the event is handled again and writes the same facts again.

Sending is `dispatch.Dispatcher`'s job. Directory facts and other services' texts come in through
small ports (plain callables), so this runs without nameko.
"""
from __future__ import annotations

import functools
import logging
import secrets
import uuid
from typing import Protocol

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from prometheus_client import Counter, Gauge

from services.common import clock
from services.common.aggregate import command_context
from services.common.consumer import catch_up_projection
from services.common.erasure import ERASING, record_erasure
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.ids import as_uuid
from services.common.store import StageApplication

from . import tables as t
from .channels import EndpointHealth, TargetRefused, WebhookTargets
from .domain import (
    AUTHOR, BODY, CASE_RESPONSIBLE, CHANNELS, DELIVERED, EMAIL, EVALUATED, EVALUATION_SCOPE, FAILED, IN_SCOPE,
    INBOX, INVITEE, MERGE_PARTIES, NOT_YET_RATED, NOTICES, OBJECTOR, PARTICIPANTS, PLANNED, FOLLOW_UP_ROLE,
    RESIDENTS_IN_SCOPE, RESPONSIBLE, ROLE_OF_PARTY, SIGNERS, SUPPORTERS, VOTERS, WEBHOOK, Delivery, Memory,
    NoticeRule, Preferences, content_of, remember, split_message, topic_of,
)

log = logging.getLogger(__name__)
SOURCE = "notifications"
MAX_PAGE = 200
PAUSE_AFTER = 5  # consecutive failures that pause a webhook endpoint

PLANNED_TOTAL = Counter("consult_notifications_planned", "Deliveries planned", ["channel"])
DELIVERED_TOTAL = Counter("consult_notifications_delivered", "Deliveries recorded as delivered", ["channel"])
FAILED_TOTAL = Counter("consult_notifications_failed",
                       "Deliveries given up on (dead-lettered) after retries or a permanent refusal",
                       ["channel", "reason"])
ATTEMPT_FAILURES = Counter("consult_notification_attempt_failures", "Failed delivery attempts (before retry)",
                           ["channel"])
PENDING = Gauge("consult_notifications_pending", "Planned deliveries not yet delivered or failed", ["channel"])
ENDPOINT_PAUSED = Gauge("consult_webhook_endpoint_paused", "1 while a webhook endpoint is paused after failures",
                        ["community", "endpoint"])

# Capacities that are not seats in a consultation body.
_NOT_BODY = {"author", "supporter", "voter", "responsible", "resident", IN_SCOPE, EVALUATED}
# Capacities that do not make someone a participant of the whole case (see domain.IN_SCOPE).
_NOT_PARTICIPANT = (IN_SCOPE,)
# Who someone is told as, when they took part in several ways.
_CAPACITY_ORDER = ("author", "convener", "grid_leader", "building_leader", "voter", "responsible", "supporter")


class Directory(Protocol):
    """The directory facts planning needs: services.common.directory.Directory, or a fake in tests."""

    def residents_in_scope(self, community: str, scope: str, scope_id: str | None, at: str) -> list[dict]: ...

    def role_holders(self, community: str, role: str, scope: str | None, at: str) -> list[str]: ...


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert rows, skipping those whose key exists: recording the same fact twice is a no-op."""
    if rows:
        conn.execute(_insert_ignore(conn.dialect.name, table), rows)


@functools.lru_cache(maxsize=None)
def _insert_ignore(dialect: str, table: sa.Table):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


# Planning runs these for every consumed event: built once, the values bound at each execution
# (building a statement and its cache key cost more than running it on SQLite).
_TOPIC = sa.select(t.topics).where(t.topics.c.id == sa.bindparam("topic"))
_ACTIVE_ENDPOINTS = (sa.select(t.webhooks.c.id).where(t.webhooks.c.community == sa.bindparam("of"),
                                                      t.webhooks.c.active.is_(True)).order_by(t.webhooks.c.id))
_PREFERENCES = sa.select(t.preferences).where(t.preferences.c.community == sa.bindparam("of"),
                                              t.preferences.c.person.in_(sa.bindparam("people", expanding=True)))


class NotificationsApp(StageApplication):
    name = SOURCE
    # The consumer's saves (planned deliveries, one save per consumed event) leave the read model to
    # the sender, which catches it up before each batch it reads (Dispatcher.run_once), 500 events
    # a transaction: the one-step projection cost each consumed event a read-model transaction of
    # its own (the notifications stage benchmark, issue 16).
    project_consumer_saves = False

    def __init__(self, settings, engine: sa.Engine):
        # Instances (each with its sender and its timer) take turns on the read model.
        super().__init__(settings, SOURCE, engine, project_envelope, shared_turn="notifications-projection")
        self.webhook_targets = WebhookTargets.from_env()

    def catch_up(self) -> int:
        # Each delivery is two events of this log: applying them a batch per transaction keeps
        # the read model from costing more than the deliveries.
        return catch_up_projection(self, SOURCE, self.projection, per_transaction=500)

    # ---- planning -------------------------------------------------------------------------------
    def plan(self, env: dict, directory: Directory) -> list[Delivery]:
        """The consumer's handler: remember what the event says about its case, then plan one
        delivery per (recipient, channel) if its type is notified (unknown types are ignored)."""
        memory = remember(env)
        memory.joined += self._people_named_indirectly(env, directory)
        self._remember(env, memory)
        rule = NOTICES.get(env["type"])
        if rule is None or (rule.when is not None and not rule.when(env)):
            return []
        return self._plan_notice(env, rule, directory, about_type=env["type"])

    @staticmethod
    def _people_named_indirectly(env: dict, directory: Directory) -> list[tuple[str, str, str]]:
        """People an event names through a household (one household one vote: its adults are told)
        or a kind of party (a task's responsible party without a person: its role holders), as
        the directory stood when the event happened."""
        d, at = env.get("data") or {}, env["occurred_at"]
        if env["type"] == "BallotOpened" and d.get("voting_unit") == "household":
            households = {e["voter"] for e in d.get("roll", [])}
            residents = directory.residents_in_scope(env["community"], "community", None, at)
            return [(r["person"], "voter", env["aggregate"]["id"]) for r in residents
                    if r.get("household") in households and r["adult"]]
        party = d.get("responsible_party") or {}
        if env["type"] == "TaskAssigned" and not party.get("person"):
            role = ROLE_OF_PARTY.get(party.get("kind"), FOLLOW_UP_ROLE)
            return [(p, "responsible", topic_of(env, "task"))
                    for p in directory.role_holders(env["community"], role, None, at)]
        return []

    def _remember(self, env: dict, m: Memory) -> None:
        if not m:
            return  # no transaction for nothing: the consumer then takes none for the event at all
        community, case = env["community"], env.get("case") or env["aggregate"]["id"]
        with self.engine.begin() as conn:
            insert_ignore(conn, t.topics, [
                {"id": x["id"], "community": community, "kind": x["kind"], "case": x["case"], "source": env["source"],
                 "facts": {k: v for k, v in x.items() if k not in ("id", "kind", "case")}} for x in m.topics])
            insert_ignore(conn, t.participants, [
                {"case": case, "ref": ref, "person": person, "capacity": capacity, "community": community}
                for person, capacity, ref in dict.fromkeys(m.joined)])
            for person, capacity, ref in m.left:
                conn.execute(sa.delete(t.participants).where(
                    t.participants.c.case == case, t.participants.c.ref == ref, t.participants.c.person == person,
                    t.participants.c.capacity == capacity))
            for notice_type, topic in m.cancelled_of:  # before this event's own new reminder
                conn.execute(sa.update(t.reminders).where(
                    t.reminders.c.notice_type == notice_type, t.reminders.c.topic == topic,
                    t.reminders.c.status == "pending").values(status="cancelled"))
            insert_ignore(conn, t.reminders, [
                {"notice": r["notice"], "community": community, "case": case, "notice_type": r["notice_type"],
                 "topic": r["topic"], "source": env["source"], "about_event": r["about_event"],
                 "about_type": r["about_type"], "about": r["about"], "due_at": r["due_at"], "status": "pending"}
                for r in m.reminders])
            if m.cancelled:
                conn.execute(sa.update(t.reminders).where(
                    t.reminders.c.notice.in_(m.cancelled), t.reminders.c.status == "pending").values(status="cancelled"))

    def _topic(self, conn, topic_id: str | None) -> dict | None:
        if not topic_id:
            return None
        row = conn.execute(_TOPIC, {"topic": topic_id}).first()
        return dict(row.facts, kind=row.kind, case=row.case, source=row.source) if row else None

    def _plan_notice(self, env: dict, rule: NoticeRule, directory: Directory, about_type: str) -> list[Delivery]:
        community, case = env["community"], env.get("case")
        notice = rule.key(env) if rule.key else env["id"]
        topic = topic_of(env, rule.topic)
        with self.engine.connect() as conn:
            facts, case_facts = self._topic(conn, topic), self._topic(conn, case)
        # Asked with no connection open: on SQLite every transaction holds the write lock, and a
        # green thread waiting for it would block the process while this one waits for a reply.
        residents = self._residents(env, facts, directory) if RESIDENTS_IN_SCOPE in rule.recipients else []
        workers = directory.role_holders(community, FOLLOW_UP_ROLE, None, env["occurred_at"]) \
            if CASE_RESPONSIBLE in rule.recipients else []
        with self.engine.connect() as conn:
            content = content_of(env, rule, facts, case_facts)
            kind, ident = rule.link(env, facts) if rule.link else (rule.topic, topic)
            if kind == "task":  # a task is read on its plan
                kind, ident = "plan", (facts or {}).get("plan") or env["aggregate"]["id"]
            elif kind == "objection":
                kind, ident = "ballot", (facts or {}).get("ballot") or env["aggregate"]["id"]
            content.values["link_to"] = [kind, ident]
            recipients = self._recipients(conn, env, rule, topic, facts, residents)
            named = {p for p, _ in recipients}
            recipients += [(p, "community_worker") for p in dict.fromkeys(workers) if p not in named]
            prefs = self._preferences(conn, community, [p for p, _ in recipients])
            endpoints = [r.id for r in conn.execute(_ACTIVE_ENDPOINTS, {"of": community})]
        with self.engine.begin() as conn:
            insert_ignore(conn, t.notices, [{
                "id": notice, "community": community, "case": case, "notice_type": rule.template,
                "about_event": env["id"], "about_type": about_type, "source": env["source"],
                "topic_kind": rule.topic, "topic": topic, "content_values": content.values,
                "commitments": content.commitments, "created_at": env["occurred_at"]}])
        planned = []
        for person, capacity in recipients:
            for channel, endpoint in self._routes(prefs.get(person, Preferences()), endpoints):
                planned.append(Delivery.plan(
                    community=community, case=case, notice=notice, notice_type=rule.template, about_event=env["id"],
                    about_type=about_type, recipient=person, capacity=capacity, channel=channel, endpoint=endpoint))
        if rule.key:  # a reminder fired again after a crash: plan only what is not planned yet
            planned = [d for d in planned if d.id not in self.repository]
        for d in planned:
            PLANNED_TOTAL.labels(d.channel).inc()
        return planned

    @staticmethod
    def _routes(prefs: Preferences, endpoints: list[str]) -> list[tuple[str, str | None]]:
        routes: list[tuple[str, str | None]] = [(INBOX, None)]
        if EMAIL in prefs.channels and prefs.email:
            routes.append((EMAIL, None))
        if WEBHOOK in prefs.channels:
            routes += [(WEBHOOK, e) for e in endpoints]
        return routes

    @staticmethod
    def _recipients(conn, env: dict, rule: NoticeRule, topic: str, facts: dict | None,
                    residents: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(person, capacity) for every recipient rule of the notice, each person once."""
        d = env.get("data") or {}
        found: dict[str, str] = {}

        def author_of(proposal) -> list[tuple[str, str]]:
            row = conn.execute(sa.select(t.topics.c.facts).where(t.topics.c.id == str(proposal))).first()
            author = (row.facts or {}).get("author") if row else None
            return [(author, "author")] if author and author != "system" else []

        def plan_of() -> str | None:
            """The plan whose evaluation a notice is about (a follow-up names the original case)."""
            if env["type"] != "ProposalDrafted":
                return topic_of(env, "plan")
            row = conn.execute(sa.select(t.topics.c.id).where(
                t.topics.c.kind == "plan", t.topics.c.case == d.get("original_case"))).first()
            return row.id if row else None

        def people(capacities=None, exclude=None, **where) -> list[tuple[str, str]]:
            q = sa.select(t.participants.c.person, t.participants.c.capacity)
            for column, value in where.items():
                q = q.where(t.participants.c[column] == value)
            if capacities is not None:
                q = q.where(t.participants.c.capacity.in_(capacities))
            if exclude is not None:
                q = q.where(t.participants.c.capacity.not_in(exclude))
            rows = sorted(conn.execute(q), key=lambda r: (_rank(r.capacity), r.person))
            return [(r.person, r.capacity) for r in rows]

        for name in rule.recipients:
            if name == AUTHOR:
                batch = [(facts["author"], "author")] if facts and facts.get("author") else []
            elif name == SUPPORTERS:
                batch = people(["supporter"], ref=topic)
            elif name == RESIDENTS_IN_SCOPE:
                batch = residents
            elif name == BODY:  # a meeting's notice goes to its consultation's body
                batch = people(exclude=_NOT_BODY, ref=(facts or {}).get("consultation") or topic)
            elif name == INVITEE:
                batch = [(d["person"], d.get("role", "resident"))] if d.get("person") else []
            elif name == VOTERS:
                batch = people(["voter"], ref=topic)
            elif name == RESPONSIBLE:
                batch = people(["responsible"], ref=topic)
            elif name == PARTICIPANTS:
                batch = people(case=env.get("case") or topic, exclude=_NOT_PARTICIPANT)
            elif name == EVALUATION_SCOPE:
                plan = plan_of()
                batch = people([IN_SCOPE, EVALUATED], ref=plan) if plan else []
            elif name == NOT_YET_RATED:
                rated = {p for p, _ in people([EVALUATED], ref=topic)}
                batch = [(p, c) for p, c in people([IN_SCOPE], ref=topic) if p not in rated]
            elif name == OBJECTOR:
                batch = [(facts["objector"], "objector")] if facts and facts.get("objector") else []
            elif name == MERGE_PARTIES:
                batch = author_of(env["aggregate"]["id"]) + author_of(d.get("into")) + people(
                    ["supporter"], ref=env["aggregate"]["id"])
            elif name == SIGNERS:
                batch = people(list(d.get("signer_roles") or []), ref=d.get("consultation"))
            elif name == CASE_RESPONSIBLE:
                batch = people(["responsible"], case=env.get("case") or topic)
            else:  # a rule name in the table without a resolver is a bug, not a quiet skip
                raise ValueError(f"no resolver for recipient rule {name!r}")
            for person, capacity in batch:
                found.setdefault(person, capacity)
        return list(found.items())

    @staticmethod
    def _residents(env: dict, facts: dict | None, directory: Directory) -> list[tuple[str, str]]:
        if not facts or not facts.get("scope"):
            return []
        scope = facts["scope"]
        scope_id = None if scope == "community" else facts.get("scope_id")
        # As the directory stood when the event happened, so handling it again later tells the same people.
        residents = directory.residents_in_scope(env["community"], scope, scope_id, env["occurred_at"])
        return [(r["person"], "resident") for r in residents]

    # ---- reminders (timers on the shared clock) ---------------------------------------------------
    def fire_reminders(self, directory: Directory, limit: int = 50) -> int:
        """Plan the reminders whose time has come on the shared clock. A reminder fired again
        after a crash plans nothing twice: its deliveries' ids derive from the reminder."""
        now = clock.format(clock.now())
        with self.engine.connect() as conn:
            due = list(conn.execute(sa.select(t.reminders).where(
                t.reminders.c.status == "pending", t.reminders.c.due_at <= now).order_by(t.reminders.c.due_at)
                .limit(limit)))
        for r in due:
            env = {"id": r.about_event, "type": r.notice_type, "community": r.community, "case": r.case,
                   "source": r.source, "occurred_at": r.due_at, "aggregate": {"id": r.topic}, "data": dict(r.about)}
            with command_context(community=r.community, actor="system", case=r.case, causation=r.about_event):
                planned = self._plan_notice(env, NOTICES[r.notice_type], directory, about_type=r.about_type)
                if planned:
                    self.save(*planned)
            with self.engine.begin() as conn:
                conn.execute(sa.update(t.reminders).where(t.reminders.c.notice == r.notice,
                                                          t.reminders.c.status == "pending").values(status="fired"))
        return len(due)

    # ---- preferences ---------------------------------------------------------------------------------
    def _preferences(self, conn, community: str, people: list[str]) -> dict[str, Preferences]:
        out = {}
        for i in range(0, len(people), 500):
            chunk = people[i:i + 500]
            for r in conn.execute(_PREFERENCES, {"of": community, "people": chunk}):
                out[r.person] = Preferences(tuple(r.channels), r.email, r.digest, r.lang)
        return out

    def preferences_of(self, community: str, people: list[str]) -> dict[str, Preferences]:
        with self.engine.connect() as conn:
            return self._preferences(conn, community, list(people))

    def get_preferences(self, community: str, person: str) -> dict:
        return self.preferences_of(community, [person]).get(person, Preferences()).to_dict()

    def set_preferences(self, community: str, person: str, data) -> dict:
        prefs = Preferences.parse(data)
        values = dict(channels=list(prefs.channels), email=prefs.email, digest=prefs.digest, lang=prefs.lang,
                      updated_at=clock.format(clock.now()))
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(t.preferences).where(
                t.preferences.c.community == community, t.preferences.c.person == person).values(**values)).rowcount
            if not updated:
                conn.execute(sa.insert(t.preferences).values(community=community, person=person, **values))
        return prefs.to_dict()

    def erase_person(self, community: str, person: str, *, actor: str, cause: str | None = None) -> dict:
        """PIPL erasure: the person's e-mail address and settings, and the texts of every message
        they were sent, go, recorded in this log first; the proof of notice keeps its ids and
        commitments. The caller has checked that the person belongs to the community."""
        person = str(person)
        record = record_erasure(SOURCE, self.content, community, person, actor, cause)
        self.save(record)
        return {"erased_texts": self.erase_texts(community, person), "erasure": str(record.id)}

    def erase_texts(self, community: str, person: str, quoted=None) -> int:
        """Erase the person's e-mail address and settings, their messages' texts and, with
        `quoted(source, commitments)` (which of these commitments are the person's texts in that
        service), the texts of messages to others that quoted the person's words (a proposal's
        title in a ballot notice): their proof of notice keeps its commitment. Safe to run again;
        how many texts went.

        A message rendered after this runs and before the quoted text's own service has erased it
        (they consume the request independently, usually within a second) could still quote it."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.preferences).where(t.preferences.c.community == community,
                                                        t.preferences.c.person == person))
        erased = self.content.erase_subject(person)
        if quoted is not None:
            erased += self._erase_quoting(community, quoted)
        return erased

    def _erase_quoting(self, community: str, quoted) -> int:
        self.project()
        N, D = t.notices, t.deliveries
        with self.engine.connect() as conn:
            notices = {r.id: [c for v in (r.commitments or {}).values() for c in (v if isinstance(v, list) else [v]) if c]
                       for r in conn.execute(sa.select(N.c.id, N.c.commitments).where(N.c.community == community))}
        wanted = sorted({c for cs in notices.values() for c in cs})
        theirs: set[str] = set()
        for source in ERASING:
            if source == SOURCE:
                continue
            for i in range(0, len(wanted), 1000):
                theirs.update(quoted(source, wanted[i:i + 1000]) or [])
        quoting = [n for n, cs in notices.items() if theirs.intersection(cs)]
        if not quoting:
            return 0
        with self.engine.connect() as conn:
            messages = {r.message_commitment for r in conn.execute(sa.select(D.c.message_commitment).where(
                D.c.notice.in_(quoting), D.c.message_commitment.is_not(None)))}
        held = self.content.get_many(messages)
        for commitment in messages:
            self.content.erase(commitment)
        return sum(1 for c in messages if held.get(c) is not None)

    # ---- webhook endpoints ---------------------------------------------------------------------------
    def add_webhook(self, actor: str, community: str, url, secret=None, include_personal_data=False) -> dict:
        if not isinstance(url, str) or len(url) > 2000:
            raise InvalidInput.coded("notifications.url_https_address")
        try:  # checked again at every send, on the address then connected to
            self.webhook_targets.check_url(url)
        except TargetRefused as exc:
            raise InvalidInput.coded("notifications.webhook_url_refused", reason=str(exc)) from None
        if secret is None:
            secret = secrets.token_urlsafe(32)
        if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
            raise InvalidInput.coded("notifications.secret_string_characters")
        if not isinstance(include_personal_data, bool):
            raise InvalidInput.coded("notifications.include_personal_data_true")
        wid = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.webhooks).values(
                id=wid, community=community, url=url, secret=secret, include_personal_data=include_personal_data,
                active=True, paused=False, health=EndpointHealth(PAUSE_AFTER).to_dict(),
                created_at=clock.format(clock.now()), created_by=actor))
        # The secret is shown once, to whoever registers the endpoint; lists never show it.
        return dict(self.webhook_view(community, wid), secret=secret)

    def _webhook_row(self, conn, community: str, webhook: str):
        row = conn.execute(sa.select(t.webhooks).where(t.webhooks.c.id == str(webhook),
                                                       t.webhooks.c.community == community)).first()
        if row is None or not row.active:
            raise NotFound.coded("notifications.webhook_endpoint_does_exist", webhook=webhook)
        return row

    @staticmethod
    def _webhook_dict(row) -> dict:
        health = EndpointHealth.from_dict(row.health)
        return {"id": row.id, "url": row.url, "include_personal_data": row.include_personal_data,
                "paused": health.paused, "consecutive_failures": health.consecutive_failures,
                "paused_at": health.paused_at, "last_failure_reason": health.last_failure_reason,
                "last_failure_at": health.last_failure_at, "last_success_at": health.last_success_at,
                "created_at": row.created_at}

    def webhook_view(self, community: str, webhook: str) -> dict:
        self.project()
        with self.engine.connect() as conn:
            row = self._webhook_row(conn, community, webhook)
            view = self._webhook_dict(row)
            view["pending"] = conn.execute(sa.select(sa.func.count()).select_from(t.deliveries).where(
                t.deliveries.c.endpoint == row.id, t.deliveries.c.status == PLANNED)).scalar()
        return view

    def webhooks(self, community: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.webhooks).where(t.webhooks.c.community == community,
                                                            t.webhooks.c.active.is_(True)).order_by(t.webhooks.c.created_at))
            return [self._webhook_dict(r) for r in rows]

    def save_health(self, webhook: str, health: EndpointHealth) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.webhooks.c.community).where(t.webhooks.c.id == webhook)).first()
            conn.execute(sa.update(t.webhooks).where(t.webhooks.c.id == webhook).values(
                health=health.to_dict(), paused=health.paused))
        if row is not None:
            ENDPOINT_PAUSED.labels(row.community, webhook).set(1 if health.paused else 0)

    def resume_webhook(self, actor: str, community: str, webhook: str) -> dict:
        with self.engine.connect() as conn:
            health = EndpointHealth.from_dict(self._webhook_row(conn, community, webhook).health)
        if health.resume():
            log.warning("webhook endpoint %s of community %s resumed by %s", webhook, community, actor)
        self.save_health(str(webhook), health)
        return self.webhook_view(community, webhook)

    def remove_webhook(self, actor: str, community: str, webhook: str) -> dict:
        """Deactivate an endpoint; what was still waiting for it is given up by the sender."""
        with self.engine.begin() as conn:
            self._webhook_row(conn, community, webhook)
            conn.execute(sa.update(t.webhooks).where(t.webhooks.c.id == str(webhook)).values(active=False, paused=False))
        ENDPOINT_PAUSED.labels(community, str(webhook)).set(0)
        log.warning("webhook endpoint %s of community %s removed by %s", webhook, community, actor)
        return {"id": str(webhook), "removed": True}

    # ---- the inbox -------------------------------------------------------------------------------------
    def inbox(self, community: str, person: str, unread_only: bool = False, limit: int = 50, offset: int = 0) -> dict:
        self.project()
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput.coded("common.limit_between", max_page=MAX_PAGE)
        i = t.inbox
        mine = [i.c.community == community, i.c.person == person]
        with self.engine.connect() as conn:
            unread = conn.execute(sa.select(sa.func.count()).select_from(i).where(*mine, i.c.read_at.is_(None))).scalar()
            total = conn.execute(sa.select(sa.func.count()).select_from(i).where(*mine)).scalar()
            q = sa.select(i).where(*mine)
            if unread_only:
                q = q.where(i.c.read_at.is_(None))
            rows = list(conn.execute(q.order_by(i.c.delivered_at.desc(), i.c.delivery).limit(limit).offset(offset)))
        texts = self.content.get_many(r.message_commitment for r in rows)
        items = []
        for r in rows:
            subject, body = split_message(texts.get(r.message_commitment))
            items.append({"id": r.delivery, "type": r.notice_type, "about_event": r.about_event, "case": r.case,
                          "subject": subject, "body": body, "delivered_at": r.delivered_at, "read_at": r.read_at,
                          "message_commitment": r.message_commitment})
        return {"items": items, "unread": unread, "total": total}

    def personal_data(self, community: str, person: str) -> dict:
        """What this service holds about the person (PIPL art. 45): their settings (their e-mail
        address) and every message they were sent."""
        messages, offset = [], 0
        while True:
            page = self.inbox(community, person, limit=MAX_PAGE, offset=offset)
            messages += page["items"]
            offset += MAX_PAGE
            if offset >= page["total"]:
                break
        return {"preferences": self.get_preferences(community, person), "messages": messages}

    def unread_count(self, community: str, person: str) -> int:
        return self.inbox(community, person, unread_only=True, limit=1)["unread"]

    def mark_read(self, community: str, person: str, delivery: str) -> dict:
        self.project()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.inbox).where(t.inbox.c.delivery == str(delivery), t.inbox.c.community == community,
                                                       t.inbox.c.person == person)).first()
            if row is None:  # someone else's message does not exist for the caller
                raise NotFound.coded("notifications.message_does_exist", delivery=delivery)
            if row.read_at is None:
                conn.execute(sa.update(t.inbox).where(t.inbox.c.delivery == row.delivery)
                             .values(read_at=clock.format(clock.now())))
        return {"id": str(delivery), "unread": self.unread_count(community, person)}

    # ---- deliveries (for workers and auditors: who was told what, when, how) ---------------------------
    def deliveries(self, community: str, status=None, case=None, about_event=None, recipient=None,
                   limit: int = 100, offset: int = 0) -> list[dict]:
        self.project()
        d = t.deliveries
        q = sa.select(d).where(d.c.community == community)
        for column, value in (("status", status), ("case", case), ("about_event", about_event),
                              ("recipient", recipient)):
            if value is not None:
                q = q.where(d.c[column] == value)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(d.c.seq).limit(min(int(limit), 1000)).offset(int(offset)))
            return [{"id": r.id, "notice": r.notice, "type": r.notice_type, "about_event": r.about_event,
                     "case": r.case, "recipient": r.recipient, "capacity": r.capacity, "channel": r.channel,
                     "endpoint": r.endpoint, "status": r.status, "attempts": r.attempts, "planned_at": r.planned_at,
                     "settled_at": r.settled_at, "failure": r.failure, "next_attempt_at": r.next_attempt_at,
                     "message_commitment": r.message_commitment} for r in rows]

    def retry_failed(self, actor: str, community: str, deliveries: list | None = None, channel: str | None = None,
                     limit: int = 1000) -> dict:
        """Send finally failed deliveries again: the ones named, or every failed one of the community
        (of one channel). Each gets a `NotificationRetried` by the worker, in the case of what it
        notified about, and goes back to the sender's queue with its attempts counted afresh."""
        self.project()
        d = t.deliveries
        q = sa.select(d.c.id, d.c.case, d.c.about_event, d.c.channel, d.c.endpoint, d.c.status).where(
            d.c.community == community)
        if deliveries is not None:
            wanted = [str(x) for x in deliveries]
            q = q.where(d.c.id.in_(wanted))
        else:
            q = q.where(d.c.status == FAILED)
        if channel is not None:
            q = q.where(d.c.channel == channel)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(d.c.seq).limit(min(int(limit), 1000))).all()
            removed = {r.id for r in conn.execute(sa.select(t.webhooks.c.id).where(
                t.webhooks.c.community == community, t.webhooks.c.active.is_(False)))}
        eligible = [r for r in rows if r.status == FAILED and r.endpoint not in removed]
        if deliveries is not None:
            missing = sorted(set(wanted) - {r.id for r in rows})
            if missing:
                raise NotFound.coded("notifications.delivery_does_exist_community", missing=missing[0])
            if len(eligible) < len(rows):
                r = next(r for r in rows if r not in eligible)
                if r.endpoint in removed:
                    raise Conflict.coded("notifications.delivery_endpoint_removed", id=r.id)
                raise Conflict.coded("notifications.delivery_not_failed", id=r.id, status=r.status)
        retried = []
        for r in eligible:
            item = self.delivery(r.id)
            with command_context(community=community, actor=actor, case=r.case, causation=r.about_event):
                item.retry(by=actor)
            try:
                self.save(item)
            except IntegrityError:  # another worker retried it a moment ago
                continue
            retried.append(r.id)
        if retried:
            log.warning("%d failed deliveries of community %s sent again by %s", len(retried), community, actor)
            self.project()
        return {"retried": retried, "count": len(retried)}

    def delivery(self, delivery: str) -> Delivery:
        found = as_uuid(delivery)
        try:
            if found is not None:
                return self.repository.get(found)
        except AggregateNotFoundError:
            pass
        raise NotFound.coded("notifications.delivery_does_exist", delivery=delivery)

    def refresh_pending_gauge(self) -> None:
        with self.engine.connect() as conn:
            counts = dict(conn.execute(sa.select(t.deliveries.c.channel, sa.func.count()).where(
                t.deliveries.c.status == PLANNED).group_by(t.deliveries.c.channel)).all())
        for channel in CHANNELS:
            PENDING.labels(channel).set(counts.get(channel, 0))


def _rank(capacity: str) -> int:
    return _CAPACITY_ORDER.index(capacity) if capacity in _CAPACITY_ORDER else len(_CAPACITY_ORDER)


# Built once: the projection runs twice per delivery, and building a statement with literal
# values costs more than executing it.
_PLAN = sa.insert(t.deliveries)
_SETTLE = sa.update(t.deliveries).where(t.deliveries.c.id == sa.bindparam("delivery_id")).values(
    status=sa.bindparam("new_status"), settled_at=sa.bindparam("at"), attempts=sa.bindparam("n"),
    message_commitment=sa.bindparam("commitment"), failure=sa.bindparam("reason"))
_DELIVER_TO_INBOX = sa.insert(t.inbox)
_RETRY = sa.update(t.deliveries).where(t.deliveries.c.id == sa.bindparam("delivery_id")).values(
    status=PLANNED, settled_at=None, failure=None, attempts=0, next_attempt_at=sa.bindparam("at"), digest_slot=None,
    last_error=None)


def project_envelope(conn: sa.Connection, env: dict) -> None:
    """The deliveries and the inbox, kept from the service's own log (exactly once, in order).
    The inbox row is written with the projection of NotificationDelivered, so an inbox message
    exists exactly when its delivery is recorded."""
    d, kind = env["data"], env["type"]
    if kind == "NotificationPlanned":
        conn.execute(_PLAN, {
            "id": env["aggregate"]["id"], "seq": env["position"], "community": env["community"], "case": d["case"],
            "notice": d["notice"], "notice_type": d["notice_type"], "about_event": d["about_event"],
            "recipient": d["recipient"], "capacity": d["capacity"], "channel": d["channel"],
            "endpoint": d["endpoint"], "status": PLANNED, "planned_at": env["occurred_at"], "attempts": 0,
            "next_attempt_at": env["occurred_at"]})
    elif kind in ("NotificationDelivered", "NotificationFailed"):
        delivered = kind == "NotificationDelivered"
        conn.execute(_SETTLE, {
            "delivery_id": d["delivery"], "new_status": DELIVERED if delivered else FAILED, "at": env["occurred_at"],
            "n": d["attempts"], "commitment": d["message_commitment"], "reason": None if delivered else d["reason"]})
        if delivered and d["channel"] == INBOX:
            conn.execute(_DELIVER_TO_INBOX, {
                "delivery": d["delivery"], "community": env["community"], "person": d["recipient"],
                "notice_type": d["notice_type"], "about_event": d["about_event"], "case": env.get("case"),
                "message_commitment": d["message_commitment"], "delivered_at": env["occurred_at"], "read_at": None})
    elif kind == "NotificationRetried":
        conn.execute(_RETRY, {"delivery_id": d["delivery"], "at": env["occurred_at"]})
