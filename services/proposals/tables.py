"""Read models of the proposals service, kept from its own log (exactly once, in order).

Support counts are counters kept per event, so reading a count, or counting after one more
support, costs the same at 10 supports as at 5,000.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

proposals = sa.Table(
    "proposals_proposals", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), nullable=False, index=True),
    sa.Column("author", sa.String(64), nullable=False, index=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("scope_id", sa.String(36), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # A searchable copy of the title, from the erasable content store; erased with it.
    sa.Column("title", sa.Text),
    sa.Column("title_commitment", sa.String(64), nullable=False),
    sa.Column("body_commitment", sa.String(64), nullable=False),
    sa.Column("reason_commitment", sa.String(64)),
    sa.Column("support_per", sa.String(16)),
    sa.Column("unit", sa.String(16)),
    sa.Column("threshold_rule", sa.JSON),
    sa.Column("threshold", sa.Integer),
    sa.Column("denominator", sa.Integer),
    sa.Column("deadline", sa.String(40)),
    sa.Column("supports", sa.Integer, nullable=False, default=0),  # current supports (one per unit key)
    sa.Column("households", sa.Integer, nullable=False, default=0),  # distinct households among them
    sa.Column("merged_into", sa.String(36)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_position", sa.BigInteger, nullable=False),  # log order: newest first, even under one instant
    sa.Column("submitted_at", sa.String(40)),
    sa.Column("screened_at", sa.String(40)),
    sa.Column("opened_at", sa.String(40)),
    sa.Column("closed_at", sa.String(40)),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_proposals_due", "status", "deadline"),
    sa.Index("ix_proposals_list", "community", "created_position"),
)

supports = sa.Table(
    "proposals_supports", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the Support aggregate's id
    sa.Column("proposal", sa.String(36), nullable=False),
    sa.Column("person", sa.String(64), nullable=False),
    sa.Column("household", sa.String(36)),
    sa.Column("current", sa.Boolean, nullable=False),
    sa.Column("given_at", sa.String(40), nullable=False),
    sa.Index("ix_proposals_supports_proposal", "proposal", "current"),
    sa.Index("ix_proposals_supports_person", "proposal", "person"),
)

# How many current supports each household has on a proposal: the households count moves only
# when one of these goes from 0 to 1 or back.
support_households = sa.Table(
    "proposals_support_households", metadata,
    sa.Column("proposal", sa.String(36), primary_key=True),
    sa.Column("household", sa.String(36), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)
