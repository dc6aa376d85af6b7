"""The notifications service: a tracked consumer of every stage that plans who is told what, a
timer that sends (one instance at a time holds the sender lease), and thin nameko entrypoints
for preferences, the inbox, webhook endpoints and the delivery record."""
from __future__ import annotations

import logging
import time

from services.common import registry
from services.common.directory import Directory
from services.common.locks import SessionLock
from services.common.erasure import with_erasure
from services.common.rpc import rpc
from services.common.runtime import EventSourcedSink, Platform, Runtime, ServiceBase, command, query
from services.contracts import every_service

from . import tables
from .application import NotificationsApp
from .channels import WebhookSender
from .dispatch import Dispatcher, SenderSettings, email_sender_from_env

log = logging.getLogger(__name__)


class TextsUnavailable(RuntimeError):
    """A text could not be read because a service holding it did not answer: send later."""


class RemoteTexts:
    """Texts from the erasable stores of the stage services, read at send time.

    Each commitment is asked of the event's own source first, then of the other sources (a
    consultation quotes its proposal's title, which lives in the proposals store). A text no
    store holds was erased and stays out of the message; but if a store did not answer, the
    text may only be unreachable, so the batch waits rather than send a message without it."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.sources = [s for s in registry.SOURCES if s != "notifications"]

    def _ask(self, source: str, commitments: set[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        wanted = sorted(commitments)
        for i in range(0, len(wanted), 1000):
            found.update(self.rt.send(every_service.READ_TEXTS[source](commitments=wanted[i:i + 1000])))
        return found

    def read(self, wanted: dict[str, set[str]]) -> dict[str, str]:
        found: dict[str, str] = {}
        for source, commitments in wanted.items():
            found.update(self._ask(source, commitments))  # the source itself must answer
        missing = set().union(*wanted.values()) - set(found)
        silent = []
        for source in self.sources:
            if not missing:
                break
            try:
                found.update(self._ask(source, missing))
            except Exception as exc:  # noqa: BLE001 - a service that is down: decided below
                silent.append(f"{source}: {exc!r}"[:200])
            missing -= set(found)
        if missing and silent:
            raise TextsUnavailable(f"{len(missing)} texts unread; no answer from {'; '.join(silent)}")
        return found


class Sender:
    """The timer that fires reminders and sends what is due. Several instances of the service may
    run; the sender lease (an advisory lock, or a file lock on SQLite) lets one of them send.

    It ticks every 0.2 s, but looks for due deliveries on a tick only after this process has saved
    something since its last look (the planner's new deliveries, or its own last batch, after which
    more may be due), and otherwise once every LOOK_EVERY_S, with the reminders and the pending
    gauge: an idle platform's sender asked its store three questions five times a second.
    Deliveries planned by another instance, and retries whose time has come, are found by the
    once-a-second look."""

    LOOK_EVERY_S = 1.0

    def __init__(self, monotonic=time.monotonic):
        self.lease: SessionLock | None = None
        self.dispatcher: Dispatcher | None = None
        self.monotonic = monotonic
        self._next_look = float("-inf")  # when reminders, the gauge and due deliveries are next looked at
        self._saves_seen: int | None = None  # the process's save count at the last look for due deliveries

    def __call__(self, rt: Runtime) -> None:
        if self.dispatcher is None:
            self.lease = SessionLock(rt.settings, "relay", "notifications-sender", rt.engine)
            self.dispatcher = Dispatcher(rt.app, RemoteTexts(rt), email_sender_from_env(), WebhookSender(),
                                         SenderSettings.from_env())
        if not (self.lease.still_held() or self.lease.try_acquire()):
            return
        saves, now = rt.app.saves, self.monotonic()
        if now >= self._next_look:
            self._next_look = now + self.LOOK_EVERY_S
            rt.app.fire_reminders(Directory.of_runtime(rt))
            self._dispatch(rt, saves)
            rt.app.refresh_pending_gauge()
        elif saves != self._saves_seen:
            self._dispatch(rt, saves)

    def _dispatch(self, rt: Runtime, saves: int) -> None:
        # The count is taken before sending: a save while it sends (a delivery planned meanwhile, or
        # this batch's own records) brings another look on the next tick.
        self._saves_seen = saves
        self.dispatcher.run(budget_s=2.0)


def _planner(rt: Runtime) -> EventSourcedSink:
    directory = Directory.of_runtime(rt)  # the planner runs in the consumer thread: the runtime's RPC
    app = rt.app
    return EventSourcedSink(app, with_erasure("notifications", app, lambda env: app.plan(env, directory),
                                              lambda community, person: app.erase_texts(
                                                  community, person, quoted=_quoted(rt, person))))


def _quoted(rt: Runtime, person: str):
    """Which commitments a service holds as the person's texts (asked over RPC; a service that
    does not answer fails the erasure, which is then retried, never half done)."""
    return lambda source, commitments: rt.send(every_service.COMMITMENTS_OF[source](person=person,
                                                                                  commitments=commitments))


class NotificationsService(ServiceBase):
    name = "notifications"
    platform = Platform("notifications", app_factory=NotificationsApp, tables=(tables.metadata,),
                        consumer_sink=_planner, timers=((0.2, Sender()),))

    @property
    def app(self) -> NotificationsApp:
        return self.platform.app

    # ---- a person's own settings and inbox ------------------------------------------------------------
    @rpc
    @query
    def get_preferences(self, community, person):
        return self.app.get_preferences(community, person)

    @rpc
    @command
    def set_preferences(self, community, person, preferences):
        return self.app.set_preferences(community, person, preferences)

    @rpc
    @query
    def inbox(self, community, person, unread_only=False, limit=50, offset=0):
        return self.app.inbox(community, person, unread_only, limit, offset)

    @rpc
    @command
    def mark_read(self, community, person, delivery):
        return self.app.mark_read(community, person, delivery)

    @rpc
    @command
    def erase_person(self, actor, community, person):
        Directory.of_runtime(self.platform).get_person(community, person)  # NotFound for another community's
        return self.app.erase_person(community, person, actor=actor)

    # ---- webhook endpoints (community workers) ----------------------------------------------------------
    @rpc
    @command
    def add_webhook(self, actor, community, url, secret=None, include_personal_data=False):
        return self.app.add_webhook(actor, community, url, secret, include_personal_data)

    @rpc
    @query
    def list_webhooks(self, community):
        return self.app.webhooks(community)

    @rpc
    @command
    def resume_webhook(self, actor, community, webhook):
        return self.app.resume_webhook(actor, community, webhook)

    @rpc
    @command
    def remove_webhook(self, actor, community, webhook):
        return self.app.remove_webhook(actor, community, webhook)

    # ---- the delivery record -------------------------------------------------------------------------------
    @rpc
    @query
    def deliveries(self, community, status=None, case=None, about_event=None, recipient=None, limit=100, offset=0):
        return self.app.deliveries(community, status, case, about_event, recipient, limit, offset)

    @rpc
    @command
    def retry_failed(self, actor, community, deliveries=None, channel=None):
        return self.app.retry_failed(actor, community, deliveries, channel)


SERVICE = NotificationsService
