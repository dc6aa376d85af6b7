"""The audit log: one append-only log per community of canonical envelope bytes, fed by the
tracked consumer from every source. Appends happen in the tracking transaction."""
from __future__ import annotations

import json

import sqlalchemy as sa

from services.common import envelope, metrics

metadata = sa.MetaData()

entries = sa.Table(
    "audit_entries", metadata,
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(80), nullable=False),
    sa.Column("case_id", sa.String(36), index=True),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # canonical envelope bytes (UTF-8), exactly as hashed
)
heads = sa.Table(
    "audit_heads", metadata,
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
)


def append(conn: sa.Connection, env: dict) -> int:
    """Append one envelope to its community's log; returns its index."""
    body = envelope.canonical(env).decode("utf-8")
    community = env["community"]
    # The head row serialises appends per community, also across audit instances.
    updated = conn.execute(
        sa.update(heads).where(heads.c.community == community).values(size=heads.c.size + 1)
        .returning(heads.c.size)
    ).scalar()
    if updated is None:
        conn.execute(sa.insert(heads).values(community=community, size=1))
        updated = 1
    idx = updated - 1
    conn.execute(sa.insert(entries).values(
        community=community, idx=idx, event_id=env["id"], source=env["source"], position=env["position"],
        type=env["type"], case_id=env.get("case"), occurred_at=env["occurred_at"], body=body))
    metrics.AUDIT_TREE_SIZE.labels(community).set(updated)
    return idx


def size(engine: sa.Engine, community: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(heads.c.size).where(heads.c.community == community)).scalar() or 0


def read(engine: sa.Engine, community: str, start: int = 0, limit: int = 100, case: str | None = None) -> list[dict]:
    cond = [entries.c.community == community, entries.c.idx >= start]
    if case:
        cond.append(entries.c.case_id == case)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(entries).where(*cond).order_by(entries.c.idx).limit(limit))
        return [{"index": r.idx, "source": r.source, "position": r.position, "event_id": r.event_id,
                 "type": r.type, "case": r.case_id, "occurred_at": r.occurred_at,
                 "envelope": json.loads(r.body), "canonical": r.body} for r in rows]
