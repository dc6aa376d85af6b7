"""Read models of the deliberation service: projections of its own log, so lists and counts
never replay growing sets (a consultation's comments, meetings and minutes records)."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

consultations = sa.Table(
    "delib_consultations", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("case_id", sa.String(36), nullable=False),
    sa.Column("proposal", sa.String(36)),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("scope_id", sa.String(36)),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("title_commitment", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(20)),
    sa.Column("opened_at", sa.String(40), nullable=False),
    sa.Column("concluded_at", sa.String(40)),
)
comments = sa.Table(
    "delib_comments", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("consultation", sa.String(36), nullable=False),
    # The log position of the comment's posting: a stable order for pages of the discussion.
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("author_roles", sa.JSON, nullable=False),
    sa.Column("venue", sa.String(10), nullable=False),
    sa.Column("stance", sa.String(10), nullable=False),
    sa.Column("reply_to", sa.String(36)),
    sa.Column("text_commitment", sa.String(64), nullable=False),
    sa.Column("posted_at", sa.String(40), nullable=False),
    sa.Column("edited_at", sa.String(40)),
    sa.Column("edits", sa.Integer, nullable=False, default=0),
    sa.Column("flags", sa.Integer, nullable=False, default=0),
    sa.Column("hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("hidden_reason_commitment", sa.String(64)),
    sa.Index("ix_delib_comments_consultation_position", "consultation", "position"),
)
meetings = sa.Table(
    "delib_meetings", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("consultation", sa.String(36), index=True, nullable=False),
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("starts_at", sa.String(40), nullable=False),
    sa.Column("mode", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
)
minutes = sa.Table(
    "delib_minutes", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("meeting", sa.String(36), index=True, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("corrects", sa.String(36)),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("confirmed_at", sa.String(40)),
)
