"""Notification routes: one's own preferences and inbox, the community's webhook endpoints, and
the delivery record (who was told what, when, through which channel)."""
from __future__ import annotations

from services.contracts import notifications
from services.contracts.notifications import CHANNELS, DELIVERY_STATUSES, DIGESTS, LANGS

from . import schema as S
from .router import Call, route

TAG = "notifications"
MANAGERS = ("community_worker", "party_lead")
C = "/api/v1/communities/{community}"
PAGE = {"limit": {"type": "integer", "minimum": 1, "maximum": 200}, "offset": {"type": "integer", "minimum": 0}}

PREFERENCES = S.obj(
    [], channels={"type": "array", "items": {"type": "string", "enum": list(CHANNELS)}, "maxItems": len(CHANNELS),
                  "description": "the inbox is always on; add email and/or webhook"},
    email={"type": ["string", "null"], "maxLength": 254}, digest={"type": "string", "enum": list(DIGESTS)},
    lang={"type": "string", "enum": list(LANGS)})
PREFERENCES_VIEW = {"type": "object", "required": ["channels", "email", "digest", "lang"], "properties": {
    "channels": {"type": "array", "items": {"type": "string"}}, "email": {"type": ["string", "null"]},
    "digest": {"type": "string"}, "lang": {"type": "string"}}}

# ---- response shapes (services/notifications/application.py); the gateway may add display names beside
# person ids (services/gateway/names.py), so objects stay open.
ID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
TEXT_OR_NULL = {"type": ["string", "null"], "description": "null once the recipient's texts are erased"}
CASE = {"type": ["string", "null"], "description": "the case (1+4+N flow) the message is about, if any"}
UNIX_OR_NULL = {"type": ["number", "null"], "description": "seconds since 1970-01-01 UTC"}
MESSAGE = {"type": "object", "required": ["id", "type", "about_event", "delivered_at", "read_at"], "properties": {
    "id": ID, "type": {"type": "string", "description": "the kind of notice"}, "about_event": ID, "case": CASE,
    "subject": TEXT_OR_NULL, "body": TEXT_OR_NULL, "delivered_at": TIME, "read_at": TIME_OR_NULL,
    "message_commitment": {"type": "string", "description": "the hash that proves the text sent"}}}
INBOX = {"type": "object", "required": ["items", "unread", "total"], "properties": {
    "items": {"type": "array", "items": MESSAGE}, "unread": {"type": "integer"}, "total": {"type": "integer"}}}
WEBHOOK = {"type": "object", "required": ["id", "url", "include_personal_data", "paused", "consecutive_failures"],
           "properties": {
               "id": ID, "url": {"type": "string"}, "include_personal_data": {"type": "boolean"},
               "paused": {"type": "boolean"}, "consecutive_failures": {"type": "integer"},
               "paused_at": UNIX_OR_NULL, "last_failure_reason": {"type": ["string", "null"]},
               "last_failure_at": UNIX_OR_NULL, "last_success_at": UNIX_OR_NULL, "created_at": TIME,
               "pending": {"type": "integer", "description": "deliveries waiting for the endpoint"},
               "secret": {"type": "string", "description": "the signing secret: shown once, on registering"}}}
DELIVERY = {"type": "object", "required": ["id", "notice", "type", "recipient", "channel", "status", "attempts"],
            "properties": {
                "id": ID, "notice": {"type": "string"}, "type": {"type": "string"}, "about_event": ID,
                "case": CASE, "recipient": {"type": "string"}, "capacity": {"type": "string"},
                "channel": {"type": "string", "enum": list(CHANNELS)}, "endpoint": {"type": ["string", "null"]},
                "status": {"type": "string", "enum": list(DELIVERY_STATUSES)},
                "attempts": {"type": "integer"}, "planned_at": TIME, "settled_at": TIME_OR_NULL,
                "failure": {"type": ["string", "null"]}, "next_attempt_at": TIME,
                "message_commitment": {"type": ["string", "null"]}}}


@route("GET", C + "/me/preferences", summary="How I am notified: channels, e-mail, digest, language", tag=TAG,
       response=PREFERENCES_VIEW)
def get_my_preferences(c: Call):
    return c.send(notifications.GetPreferences(community=c.community, person=c.actor))


@route("PUT", C + "/me/preferences", summary="Choose how I am notified (replaces the settings)", tag=TAG,
       body=PREFERENCES, response=PREFERENCES_VIEW)
def put_my_preferences(c: Call):
    return c.send(notifications.SetPreferences(community=c.community, person=c.actor, preferences=c.body))


@route("GET", C + "/me/inbox", summary="My messages, newest first, with the unread count", tag=TAG,
       query={"unread": S.query_flag(), **PAGE},
       response=INBOX)
def my_inbox(c: Call):
    q = c.query
    return c.send(notifications.Inbox(community=c.community, person=c.actor, unread_only=q.get("unread") == "true",
                                      limit=q.get("limit", 50), offset=q.get("offset", 0)))


@route("POST", C + "/me/inbox/{message}/read", summary="Mark one of my messages read", tag=TAG,
       response={"type": "object", "required": ["id", "unread"], "properties": {
           "id": ID, "unread": {"type": "integer", "description": "how many of my messages are unread now"}}})
def read_inbox_message(c: Call):
    return c.send(notifications.MarkRead(community=c.community, person=c.actor, delivery=c.params["message"]))


@route("POST", C + "/webhooks", summary="Register a webhook endpoint (chat group, SMS gateway); its signing "
                                        "secret is shown once", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["url"], url=S.text(2000), secret=S.text(200, min_len=16),
                  include_personal_data={"type": "boolean", "description": "send message texts, not only ids "
                                                                           "and links (off by default)"}),
       response=WEBHOOK)
def register_webhook(c: Call):
    b = c.body
    return c.send(notifications.AddWebhook(actor=c.actor, community=c.community, url=b["url"], secret=b.get("secret"),
                                           include_personal_data=b.get("include_personal_data", False)))


@route("GET", C + "/webhooks", summary="The community's webhook endpoints and their health (paused or not)",
       tag=TAG, roles=MANAGERS, response={"type": "array", "items": WEBHOOK})
def list_webhooks(c: Call):
    return c.send(notifications.ListWebhooks(community=c.community))


@route("POST", C + "/webhooks/{webhook}/resume", summary="Resume a paused webhook endpoint", tag=TAG,
       roles=MANAGERS, response=WEBHOOK)
def resume_webhook(c: Call):
    return c.send(notifications.ResumeWebhook(actor=c.actor, community=c.community, webhook=c.params["webhook"]))


@route("DELETE", C + "/webhooks/{webhook}", summary="Remove a webhook endpoint; what waited for it is given up",
       tag=TAG, roles=MANAGERS, response={"type": "object", "required": ["id", "removed"], "properties": {
           "id": ID, "removed": {"const": True}}})
def remove_webhook(c: Call):
    return c.send(notifications.RemoveWebhook(actor=c.actor, community=c.community, webhook=c.params["webhook"]))


@route("GET", C + "/notifications/deliveries", summary="The delivery record: who was told what, when and how "
                                                       "(planned, delivered, failed)", tag=TAG,
       roles=MANAGERS + ("auditor",),
       query={"status": {"type": "string", "enum": list(DELIVERY_STATUSES)}, "case": S.uuid_str(),
              "about_event": S.uuid_str(), "recipient": S.text(64), **PAGE},
       response={"type": "array", "items": DELIVERY})
def notification_deliveries(c: Call):
    q = c.query
    return c.send(notifications.Deliveries(community=c.community, status=q.get("status"), case=q.get("case"),
                                           about_event=q.get("about_event"), recipient=q.get("recipient"),
                                           limit=q.get("limit", 100), offset=q.get("offset", 0)))


@route("POST", C + "/notifications/retries", summary="Send failed deliveries again (the named ones, or every failed "
                                                     "one, of one channel if given), once the cause is fixed",
       tag=TAG, roles=MANAGERS,
       body=S.obj([], deliveries={"type": "array", "minItems": 1, "maxItems": 1000, "items": S.uuid_str()},
                  channel={"type": "string", "enum": list(CHANNELS)}),
       response={"type": "object", "required": ["retried", "count"], "properties": {
           "retried": {"type": "array", "items": ID, "description": "the deliveries sent again"},
           "count": {"type": "integer"}}})
def retry_failed_deliveries(c: Call):
    b = c.body
    return c.send(notifications.RetryFailed(actor=c.actor, community=c.community, deliveries=b.get("deliveries"),
                                            channel=b.get("channel")))


@route("POST", C + "/notifications/erasures", summary="Erase a person's messages and e-mail address (PIPL); the "
       "proof of notice keeps its hashes. Kept for existing clients: the one request that erases everywhere is "
       "POST …/people/{person}/erasure", tag=TAG, roles=MANAGERS,
       body=S.obj(["person"], person=S.uuid_str()),
       response={"type": "object", "required": ["erased_texts", "erasure"], "properties": {
           "erased_texts": {"type": "integer"}, "erasure": ID}})
def erase_notifications_of(c: Call):
    return c.send(notifications.ErasePerson(actor=c.actor, community=c.community, person=c.body["person"]))
