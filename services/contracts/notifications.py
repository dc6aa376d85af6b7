"""Event contracts of the `notifications` source: notices and their deliveries.

Prose: `services/contracts/prose/notifications.md`; the generated page: `docs/events/notifications.md`.
"""
from __future__ import annotations

from .calls import RpcCall, rpc_call
from .schema import event, f
from .erasure import PERSON_TEXTS_ERASED

# What the gateway validates (services/notifications/domain.py re-exports them).
INBOX, EMAIL, WEBHOOK = "inbox", "email", "webhook"
CHANNELS = (INBOX, EMAIL, WEBHOOK)
IMMEDIATE, DAILY = "immediate", "daily"
DIGESTS = (IMMEDIATE, DAILY)
LANGS = ("zh-CN", "en")
PLANNED, DELIVERED, FAILED = "planned", "delivered", "failed"
DELIVERY_STATUSES = (PLANNED, DELIVERED, FAILED)  # a delivery's status: planned, then delivered or failed

SOURCE = "notifications"

EVENTS = (
    event("NotificationPlanned", "Delivery", 1, f("community", "str"), f("case", "str?"), f("notice", "str"),
          f("notice_type", "str"), f("about_event", "str"), f("about_type", "str"), f("recipient", "str"),
          f("capacity", "str"), f("channel", "str"), f("endpoint", "str?")),
    event("NotificationDelivered", "Delivery", 1, f("delivery", "str"), f("notice", "str"), f("notice_type", "str"),
          f("about_event", "str"), f("about_type", "str"), f("recipient", "str"), f("channel", "str"),
          f("endpoint", "str?"), f("attempts", "int"), f("message_commitment", "commitment"), f("digest", "str?")),
    event("NotificationFailed", "Delivery", 1, f("delivery", "str"), f("notice", "str"), f("notice_type", "str"),
          f("about_event", "str"), f("about_type", "str"), f("recipient", "str"), f("channel", "str"),
          f("endpoint", "str?"), f("attempts", "int"), f("message_commitment", "commitment?"), f("reason", "str"),
          f("code", "int?")),
    event("NotificationRetried", "Delivery", 1, f("delivery", "str"), f("notice", "str"), f("about_event", "str"),
          f("recipient", "str"), f("channel", "str"), f("endpoint", "str?"), f("by", "str")),
    PERSON_TEXTS_ERASED,
)


# ---- calls: the notifications service's RPC methods, by their arguments' names (calls.py) ---------------
@rpc_call(SOURCE, "get_preferences")
class GetPreferences(RpcCall):
    community: str
    person: str


@rpc_call(SOURCE, "set_preferences")
class SetPreferences(RpcCall):
    community: str
    person: str
    preferences: dict


@rpc_call(SOURCE, "inbox")
class Inbox(RpcCall):
    community: str
    person: str
    unread_only: bool = False
    limit: int = 50
    offset: int = 0


@rpc_call(SOURCE, "mark_read")
class MarkRead(RpcCall):
    community: str
    person: str
    delivery: str  # the message's id: the delivery that brought it


@rpc_call(SOURCE, "erase_person")
class ErasePerson(RpcCall):
    actor: str
    community: str
    person: str


@rpc_call(SOURCE, "add_webhook")
class AddWebhook(RpcCall):
    actor: str
    community: str
    url: str
    secret: str | None = None
    include_personal_data: bool = False


@rpc_call(SOURCE, "list_webhooks")
class ListWebhooks(RpcCall):
    community: str


@rpc_call(SOURCE, "resume_webhook")
class ResumeWebhook(RpcCall):
    actor: str
    community: str
    webhook: str


@rpc_call(SOURCE, "remove_webhook")
class RemoveWebhook(RpcCall):
    actor: str
    community: str
    webhook: str


@rpc_call(SOURCE, "deliveries")
class Deliveries(RpcCall):
    community: str
    status: str | None = None
    case: str | None = None
    about_event: str | None = None
    recipient: str | None = None
    limit: int = 100
    offset: int = 0


@rpc_call(SOURCE, "retry_failed")
class RetryFailed(RpcCall):
    actor: str
    community: str
    deliveries: list[str] | None = None
    channel: str | None = None
