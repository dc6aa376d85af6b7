"""The sender: delivers planned notifications through their channels and records each outcome.

Exactly once per (notice, recipient, channel), as far as each channel allows it:

- inbox: the inbox row is the projection of `NotificationDelivered`, so recording the delivery
  *is* delivering it. Exactly once, whatever crashes.
- e-mail and webhooks: the message reaches another system before its record is saved. If the
  service dies in between, the message goes out again after the restart with the same
  `Message-ID` / `X-Consult-Delivery` (the delivery id), so the receiver can drop it: at least
  once on the wire, exactly once per delivery id at a receiver that checks it.

Texts are rendered at send time from the erasable stores (an erased title is never sent), and
the rendered text is kept in this service's content store under the recipient, so the proof of
notice (`message_commitment`) can be checked and the text erased with the person.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from services.common import clock
from services.common.aggregate import command_context, derived_id
from services.common.errors import Conflict

from . import links
from . import tables as t
from . import templates
from .application import ATTEMPT_FAILURES, DELIVERED_TOTAL, FAILED_TOTAL, NotificationsApp
from .channels import DeliveryFailed, EmailSender, EndpointHealth, WebhookSender, backoff_schedule, canonical_json
from .domain import (
    DAILY, EMAIL, INBOX, LABELLED, PLANNED, WEBHOOK, Delivery, Preferences, label, message_text,
    next_digest_slot,
)

log = logging.getLogger(__name__)
PAYLOAD_SCHEMA = "consult.notification/1"

# The digest wraps the per-event messages (templates.py) in one daily mail: a line per notice.
DIGEST = {
    "zh-CN": ("【每日汇总】社区议事平台通知（{n} 条）",
              "您好！\n\n以下是您的 {n} 条社区议事通知：\n\n{items}\n\n——\n本消息由社区议事平台自动发送，请勿直接回复。\n"
              "管理通知设置：{preferences_link}\n"),
    "en": ("Daily digest: {n} community notifications",
           "Hello,\n\nHere are your {n} community consultation notifications:\n\n{items}\n\n-- \n"
           "This message was sent automatically by the community consultation platform; please do not reply "
           "to it.\nNotification settings: {preferences_link}\n"),
}


@dataclass(frozen=True)
class SenderSettings:
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 3600.0
    batch: int = 200
    public_url: str = field(default_factory=links.public_url)

    @classmethod
    def from_env(cls, environ=os.environ) -> "SenderSettings":
        return cls(
            max_attempts=int(environ.get("CONSULT_NOTIFY_MAX_ATTEMPTS", "8")),
            backoff_base_s=float(environ.get("CONSULT_NOTIFY_BACKOFF_BASE", "2")),
            backoff_cap_s=float(environ.get("CONSULT_NOTIFY_BACKOFF_CAP", "3600")),
            batch=int(environ.get("CONSULT_NOTIFY_BATCH", "200")),
            public_url=links.public_url(environ),
        )


def email_sender_from_env(environ=os.environ) -> EmailSender:
    """SMTP from CONSULT_SMTP_HOST / PORT / FROM (and STARTTLS, USER, PASSWORD)."""
    return EmailSender(
        environ.get("CONSULT_SMTP_HOST", "127.0.0.1"), int(environ.get("CONSULT_SMTP_PORT", "25")),
        environ.get("CONSULT_SMTP_FROM", "社区议事平台 <noreply@consult.invalid>"),
        starttls=environ.get("CONSULT_SMTP_STARTTLS", "0").lower() in ("1", "true", "yes"),
        username=environ.get("CONSULT_SMTP_USER") or None, password=environ.get("CONSULT_SMTP_PASSWORD") or None,
    )


class Texts(Protocol):
    def read(self, wanted: dict[str, set[str]]) -> dict[str, str]:
        """Texts by commitment, asking each commitment's source first (erased ones are absent)."""


@dataclass
class _Endpoint:
    row: object
    health: EndpointHealth


class Dispatcher:
    def __init__(self, app: NotificationsApp, texts: Texts, email: EmailSender, webhook: WebhookSender,
                 settings: SenderSettings | None = None):
        self.app, self.texts, self.email, self.webhook = app, texts, email, webhook
        self.settings = settings or SenderSettings()

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, budget_s: float = 2.0, monotonic: Callable[[], float] | None = None) -> int:
        """Send what is due, batch after batch, for at most about budget_s seconds."""
        import time

        tick = monotonic or time.monotonic
        deadline, settled = tick() + budget_s, 0
        while True:
            done = self.run_once()
            settled += done
            if not done or tick() >= deadline:
                return settled

    def run_once(self) -> int:
        """One batch of due deliveries; returns how many were settled (delivered or failed)."""
        self.app.project()
        if self.app.projection.held is not None:
            return 0  # a read model held at an event it cannot apply cannot say what is still due
        now = clock.now()
        rows = self._due(now)
        if not rows:
            return 0
        # What this batch records has happened (a message is in an inbox, a webhook was called):
        # recorded one by one as it happens, and the read model caught up once, after the batch.
        with self.app.recording_only():
            return self._settle_batch(rows, now)

    def _settle_batch(self, rows, now: datetime) -> int:
        with self.app.engine.connect() as conn:
            endpoints = {r.id: _Endpoint(r, EndpointHealth.from_dict(r.health)) for r in conn.execute(
                sa.select(t.webhooks).where(t.webhooks.c.id.in_({r.endpoint for r in rows if r.endpoint})))}
        prefs: dict[tuple[str, str], Preferences] = {}
        for community in {r.community for r in rows}:
            found = self.app.preferences_of(community, sorted({r.recipient for r in rows if r.community == community}))
            prefs.update({(community, p): v for p, v in found.items()})
        message = _Messages(self.app, self.texts, self.settings.public_url)
        message.load(rows)

        def pref(row) -> Preferences:
            return prefs.get((row.community, row.recipient), Preferences())

        settled = self._inbox([r for r in rows if r.channel == INBOX], pref, message)
        emails = [r for r in rows if r.channel == EMAIL]
        digests = [r for r in emails if r.digest_slot or pref(r).digest == DAILY]
        settled += self._emails([r for r in emails if r not in digests], pref, message, now)
        settled += self._digests(digests, pref, message, now)
        settled += self._webhooks([r for r in rows if r.channel == WEBHOOK], pref, message, endpoints, now)
        return settled

    def _due(self, now: datetime) -> list:
        d, w = t.deliveries, t.webhooks
        q = (sa.select(d).select_from(d.outerjoin(w, w.c.id == d.c.endpoint))
             .where(d.c.status == PLANNED, d.c.next_attempt_at <= clock.format(now),
                    sa.or_(d.c.endpoint.is_(None), w.c.paused.is_(False)))  # a paused endpoint's work waits
             .order_by(d.c.next_attempt_at, d.c.seq).limit(self.settings.batch))
        with self.app.engine.connect() as conn:
            return list(conn.execute(q))

    # ---- channels ---------------------------------------------------------------------------------
    def _inbox(self, rows, pref, message) -> int:
        """Render, keep the texts, and record every delivery of the batch in one transaction."""
        if not rows:
            return 0
        rendered = [message.text(r, pref(r).lang) for r in rows]
        commitments = self.app.content.put_many([(text, r.recipient) for r, text in zip(rows, rendered)])
        settled = []
        for row, commitment in zip(rows, commitments):
            delivery = self._load(row)
            if delivery is None:
                continue
            with self._acting(row):
                delivery.deliver(row.attempts + 1, commitment)
            settled.append(delivery)
        try:
            self.app.save(*settled)
        except IntegrityError:  # another sender recorded some of them: record the rest one by one
            return sum(self._settle(row, lambda d, c=c: d.deliver(row.attempts + 1, c))
                       for row, c in zip(rows, commitments))
        DELIVERED_TOTAL.labels(INBOX).inc(len(settled))
        return len(settled)

    def _emails(self, rows, pref, message, now: datetime) -> int:
        settled = 0
        for row in rows:
            p = pref(row)
            subject, body = message.render(row, p.lang)
            commitment = self.app.content.put(message_text(subject, body), subject=row.recipient)
            if not p.email:
                settled += self._give_up(row, row.attempts + 1, "no_address", None, commitment)
                continue
            try:
                self.email.send(p.email, subject, body, row.id, p.lang, date=now)
            except DeliveryFailed as exc:
                settled += self._attempt_failed(row, exc, commitment, now)
                continue
            settled += self._settle(row, lambda d: d.deliver(row.attempts + 1, commitment))
        return settled

    def _digests(self, rows, pref, message, now: datetime) -> int:
        """Daily digests: a delivery waits for its recipient's next digest time, then every
        delivery waiting for that (recipient, time) goes in one mail with one Message-ID."""
        settled = 0
        for row in [r for r in rows if not r.digest_slot]:
            slot = clock.format(next_digest_slot(now))
            self._update(row.id, digest_slot=slot, next_attempt_at=slot)
        groups = {(r.community, r.recipient, r.digest_slot) for r in rows if r.digest_slot}
        for community, recipient, slot in sorted(groups):
            with self.app.engine.connect() as conn:  # the whole group, even past this batch's limit
                members = list(conn.execute(sa.select(t.deliveries).where(
                    t.deliveries.c.status == PLANNED, t.deliveries.c.channel == EMAIL,
                    t.deliveries.c.community == community, t.deliveries.c.recipient == recipient,
                    t.deliveries.c.digest_slot == slot).order_by(t.deliveries.c.seq)))
            message.load(members)
            p = pref(members[0])
            subject, body = message.digest(members, p.lang)
            commitment = self.app.content.put(message_text(subject, body), subject=recipient)
            digest = str(derived_id("digest", community, recipient, slot))
            attempts = max(r.attempts for r in members) + 1
            if not p.email:
                settled += sum(self._give_up(r, attempts, "no_address", None, commitment) for r in members)
                continue
            try:
                self.email.send(p.email, subject, body, digest, p.lang, date=now)
            except DeliveryFailed as exc:
                settled += sum(self._attempt_failed(r, exc, commitment, now) for r in members)
                continue
            settled += sum(self._settle(r, lambda d: d.deliver(attempts, commitment, digest=digest)) for r in members)
        return settled

    def _webhooks(self, rows, pref, message, endpoints: dict[str, _Endpoint], now: datetime) -> int:
        settled = 0
        for row in rows:
            endpoint = endpoints.get(row.endpoint)
            if endpoint is None or not endpoint.row.active:
                settled += self._give_up(row, row.attempts, "endpoint_removed", None, None)
                continue
            if endpoint.health.paused:  # paused by an earlier failure of this batch
                continue
            payload = message.payload(row, pref(row).lang, endpoint.row.include_personal_data)
            commitment = self.app.content.put(canonical_json(payload).decode("utf-8"), subject=row.recipient)
            try:
                self.webhook.send(endpoint.row.url, endpoint.row.secret.encode("utf-8"), payload, row.id,
                                  int(now.timestamp()))
            except DeliveryFailed as exc:
                if endpoint.health.record_failure(exc.reason[:200], now.timestamp()):
                    log.error("webhook endpoint %s of community %s paused after %d consecutive failures: %s",
                              endpoint.row.id, endpoint.row.community, endpoint.health.consecutive_failures,
                              exc.reason[:200])
                self.app.save_health(endpoint.row.id, endpoint.health)
                settled += self._attempt_failed(row, exc, commitment, now)
                continue
            if endpoint.health.consecutive_failures:
                endpoint.health.record_success(now.timestamp())
                self.app.save_health(endpoint.row.id, endpoint.health)
            settled += self._settle(row, lambda d: d.deliver(row.attempts + 1, commitment))
        return settled

    # ---- outcomes ---------------------------------------------------------------------------------
    def _attempt_failed(self, row, exc: DeliveryFailed, commitment: str, now: datetime) -> int:
        """Retry with exponential back-off; give up when refused for good or out of attempts."""
        attempts = row.attempts + 1
        ATTEMPT_FAILURES.labels(row.channel).inc()
        log.info("delivery %s (%s) attempt %d failed: %s", row.id, row.channel, attempts, exc)
        self._update(row.id, last_error=str(exc)[:500])
        if exc.permanent or attempts >= self.settings.max_attempts:
            return self._give_up(row, attempts, "refused" if exc.permanent else "attempts_exhausted", exc.code,
                                 commitment)
        delay = backoff_schedule(attempts, self.settings.backoff_base_s, cap_s=self.settings.backoff_cap_s)
        if exc.retry_after:
            delay = max(delay, min(exc.retry_after, self.settings.backoff_cap_s))
        self._update(row.id, attempts=attempts, next_attempt_at=clock.format(now + timedelta(seconds=delay)))
        return 0

    def _give_up(self, row, attempts: int, reason: str, code: int | None, commitment: str | None) -> int:
        log.warning("delivery %s (%s to %s) failed for good after %d attempts: %s", row.id, row.channel,
                    row.recipient, attempts, reason)
        done = self._settle(row, lambda d: d.fail(attempts, reason, code, commitment))
        if done:
            FAILED_TOTAL.labels(row.channel, reason).inc()
        return done

    def _settle(self, row, record: Callable[[Delivery], None]) -> int:
        """Record one outcome on the delivery's aggregate; 0 if it was already settled."""
        delivery = self._load(row)
        if delivery is None:
            return 0
        try:
            with self._acting(row):
                record(delivery)
            self.app.save(delivery)
        except (Conflict, IntegrityError):
            return 0
        if delivery.status == "delivered":
            DELIVERED_TOTAL.labels(row.channel).inc()
        return 1

    def _load(self, row) -> Delivery | None:
        delivery = self.app.delivery(row.id)
        return delivery if delivery.status == PLANNED else None

    @staticmethod
    def _acting(row):
        # The proof of notice belongs to the case of what it notified about, caused by that event.
        return command_context(community=row.community, actor="system", case=row.case, causation=row.about_event)

    def _update(self, delivery: str, **values) -> None:
        with self.app.engine.begin() as conn:
            conn.execute(sa.update(t.deliveries).where(t.deliveries.c.id == delivery).values(**values))


class _Messages:
    """The messages of one batch: their notices, the texts they quote, each distinct one rendered once."""

    def __init__(self, app: NotificationsApp, texts: Texts, public_url: str):
        self.app, self.texts_port, self.public_url = app, texts, public_url
        # Whether messages are marked as a training deployment's: from the settings the service
        # read once (asking templates to find out read the whole environment again per message).
        self.training = app.settings.training
        self.notices: dict[str, object] = {}
        self.texts: dict[str, str] = {}
        self._cache: dict[tuple, tuple[str, str]] = {}

    def load(self, rows) -> None:
        """Read the notices of rows not loaded yet, and the texts they quote (one read per source)."""
        missing = {r.notice for r in rows} - set(self.notices)
        if not missing:
            return
        with self.app.engine.connect() as conn:
            loaded = list(conn.execute(sa.select(t.notices).where(t.notices.c.id.in_(missing))))
        wanted: dict[str, set[str]] = defaultdict(set)
        for n in loaded:
            self.notices[n.id] = n
            for value in n.commitments.values():
                wanted[n.source].update(value if isinstance(value, list) else [value])
        if wanted:
            self.texts.update(self.texts_port.read(dict(wanted)))

    def link(self, notice) -> str:
        kind, ident = (notice.content_values or {}).get("link_to") or (notice.topic_kind, notice.topic)
        if kind not in links.API_COLLECTIONS:  # a notice planned before links named their target
            kind, ident = "case", notice.case or ident
        return links.link(self.public_url, notice.community, kind, ident)

    def preferences_link(self, community: str) -> str:
        return links.preferences_link(self.public_url, community)

    def render(self, row, lang: str) -> tuple[str, str]:
        key = (row.notice, row.capacity, lang)
        if key not in self._cache:
            n = self.notices[row.notice]
            context = {k: label(v, lang) if k in LABELLED else v for k, v in n.content_values.items()
                       if k != "link_to"}
            for key_, commitment in n.commitments.items():
                found = [self.texts[c] for c in (commitment if isinstance(commitment, list) else [commitment])
                         if c in self.texts]
                if found:  # an erased text stays out: the template shows it as not provided
                    context[key_] = ("；" if lang == "zh-CN" else "; ").join(found)
            context.update(role=label(row.capacity, lang), link=self.link(n),
                           preferences_link=self.preferences_link(n.community))
            self._cache[key] = templates.render(n.notice_type, lang, context, training=self.training)
        return self._cache[key]

    def text(self, row, lang: str) -> str:
        return message_text(*self.render(row, lang))

    def digest(self, rows, lang: str) -> tuple[str, str]:
        subject_t, body_t = DIGEST[lang]
        items = []
        for row in rows:
            n = self.notices[row.notice]
            subject, _ = self.render(row, lang)
            items.append(f"• {subject}\n  {self.link(n)}")
        n = len(rows)
        return templates.mark_training(subject_t.format(n=n), body_t.format(
            n=n, items="\n".join(items), preferences_link=self.preferences_link(rows[0].community)), lang,
            self.training)

    def payload(self, row, lang: str, include_personal_data: bool) -> dict:
        """Ids and a link; the message itself only where the community enabled it."""
        n = self.notices[row.notice]
        payload = {"schema": PAYLOAD_SCHEMA, "delivery": row.id, "community": row.community, "case": row.case,
                   "notice": row.notice_type, "event": {"id": n.about_event, "type": n.about_type},
                   "recipient": row.recipient, "capacity": row.capacity, "lang": lang, "link": self.link(n)}
        if include_personal_data:
            subject, body = self.render(row, lang)
            payload["message"] = {"subject": subject, "body": body}
        return payload
