"""Event contracts of the `notifications` source: notices and their deliveries.

Prose: `services/contracts/prose/notifications.md`; the generated page: `docs/events/notifications.md`.
"""
from __future__ import annotations

from .schema import event, f
from .erasure import PERSON_TEXTS_ERASED

# What the gateway validates (services/notifications/domain.py re-exports them).
INBOX, EMAIL, WEBHOOK = "inbox", "email", "webhook"
CHANNELS = (INBOX, EMAIL, WEBHOOK)
IMMEDIATE, DAILY = "immediate", "daily"
DIGESTS = (IMMEDIATE, DAILY)
LANGS = ("zh-CN", "en")

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
