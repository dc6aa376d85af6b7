"""State of the notifications service (prefixed `notif_`): settings people and workers chose,
what it remembers of each case, and the read models of its own log (deliveries, inbox).

Personal data (e-mail addresses) and webhook secrets live here only, never in events.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

preferences = sa.Table(
    "notif_preferences", metadata,
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("person", sa.String(64), primary_key=True),
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("digest", sa.String(16), nullable=False),
    sa.Column("lang", sa.String(8), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

webhooks = sa.Table(
    "notif_webhooks", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("include_personal_data", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),  # kept beside `health` so due work can skip it in SQL
    sa.Column("health", sa.JSON, nullable=False),     # channels.EndpointHealth.to_dict()
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
)

# ---- memory of the cases (from consumed events; recorded idempotently before the tracked save) ----
topics = sa.Table(
    "notif_topics", metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # a proposal, consultation, ballot or task
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("case", sa.String(64), index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),  # ids and commitments only
)

participants = sa.Table(
    "notif_participants", metadata,
    sa.Column("case", sa.String(64), primary_key=True),
    sa.Column("ref", sa.String(64), primary_key=True),  # the topic they took part in
    sa.Column("person", sa.String(64), primary_key=True),
    sa.Column("capacity", sa.String(32), primary_key=True),  # author, supporter, grid_leader, voter, ...
    sa.Column("community", sa.String(36), nullable=False),
)
sa.Index("ix_notif_participants_ref", participants.c.ref, participants.c.capacity)

notices = sa.Table(
    "notif_notices", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("case", sa.String(64)),
    sa.Column("notice_type", sa.String(40), nullable=False),
    sa.Column("about_event", sa.String(36), nullable=False),
    sa.Column("about_type", sa.String(60), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("topic_kind", sa.String(20), nullable=False),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("content_values", sa.JSON, nullable=False),
    sa.Column("commitments", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

reminders = sa.Table(
    "notif_reminders", metadata,
    sa.Column("notice", sa.String(64), primary_key=True),
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("case", sa.String(64)),
    sa.Column("notice_type", sa.String(40), nullable=False),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("about_event", sa.String(36), nullable=False),
    sa.Column("about_type", sa.String(60), nullable=False),
    sa.Column("about", sa.JSON, nullable=False),  # the data of the event the reminder is about
    sa.Column("due_at", sa.String(40), nullable=False, index=True),
    sa.Column("status", sa.String(12), nullable=False),  # pending | fired | cancelled
)

# ---- read models of the service's own log -------------------------------------------------------
deliveries = sa.Table(
    "notif_deliveries", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),  # position of NotificationPlanned: sending order
    sa.Column("community", sa.String(36), nullable=False, index=True),
    sa.Column("case", sa.String(64), index=True),
    sa.Column("notice", sa.String(64), nullable=False, index=True),
    sa.Column("notice_type", sa.String(40), nullable=False),
    sa.Column("about_event", sa.String(36), nullable=False, index=True),
    sa.Column("recipient", sa.String(64), nullable=False, index=True),
    sa.Column("capacity", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("endpoint", sa.String(36)),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("planned_at", sa.String(40), nullable=False),
    sa.Column("settled_at", sa.String(40)),
    sa.Column("message_commitment", sa.String(64)),
    sa.Column("failure", sa.String(40)),
    # Written by the sender, not by the projection: when to try next, and why the last try failed
    # (the full error, which may name an address, stays here and never enters an event).
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.String(40), nullable=False),
    sa.Column("digest_slot", sa.String(40)),
    sa.Column("last_error", sa.String(500)),
)
sa.Index("ix_notif_deliveries_due", deliveries.c.status, deliveries.c.next_attempt_at)

inbox = sa.Table(
    "notif_inbox", metadata,
    sa.Column("delivery", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("person", sa.String(64), nullable=False),
    sa.Column("notice_type", sa.String(40), nullable=False),
    sa.Column("about_event", sa.String(36), nullable=False),
    sa.Column("case", sa.String(64)),
    sa.Column("message_commitment", sa.String(64), nullable=False),
    sa.Column("delivered_at", sa.String(40), nullable=False),
    sa.Column("read_at", sa.String(40)),
)
sa.Index("ix_notif_inbox_person", inbox.c.community, inbox.c.person, inbox.c.delivered_at)
