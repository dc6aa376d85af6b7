"""State tables every service keeps next to its event store (never in the same tables)."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

relay_positions = sa.Table(
    "relay_positions",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

consumer_tracking = sa.Table(
    "consumer_tracking",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

# Replies of commands by request key (services/common/idempotency.py): a repeat gets the first.
command_replies = sa.Table(
    "command_replies",
    metadata,
    sa.Column("request", sa.String(64), primary_key=True),
    sa.Column("reply", sa.Text, nullable=False),
    sa.Column("stored_at", sa.Float, nullable=False),
)

# The erasable content store: free text lives here, events hold its commitment only.
texts = sa.Table(
    "texts",
    metadata,
    sa.Column("commitment", sa.String(64), primary_key=True),
    sa.Column("salt", sa.String(64)),
    sa.Column("body", sa.Text),
    sa.Column("subject", sa.String(64), index=True),  # whose text (for erasure)
    sa.Column("erased_at", sa.String(40)),
)


def create_all(engine: sa.Engine, *extra: sa.MetaData) -> None:
    for md in (metadata, *extra):
        md.create_all(engine)
