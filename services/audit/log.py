"""The audit log: one append-only log per community of canonical envelope bytes, fed by the
tracked consumer from every source, and over each log an RFC 6962 Merkle tree.

An entry is (index, canonical envelope bytes); its leaf is exactly those bytes. Appends happen in
the consumer's tracking transaction, and the tree's new nodes are written through the same
connection, so an entry, its tree nodes and the tracking position commit or roll back together:
the tree can never disagree with the log it covers.
"""
from __future__ import annotations

import json

import sqlalchemy as sa

from services.common import envelope, metrics

from . import merkle

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
# Complete subtree hashes of every community's tree, keyed (community, level, index).
nodes = merkle.node_table(metadata, "audit_nodes")
# Each tree's right edge at its size, kept by the append that made it: the next append opens the
# tree from this one row instead of reading ⌈log2 n⌉ nodes, so its cost does not grow with the log.
frontiers = sa.Table(
    "audit_frontiers", metadata,
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("edge", sa.LargeBinary, nullable=False),  # 32 bytes per perfect subtree, left to right
)

_BACKFILL_BATCH = 10_000


# An append is the audit service's work for every event of the platform: its statements are built
# once, the values bound at each execution (building `insert().values(...)` and the like, with their
# cache keys, cost more than running them).
_GROW_HEAD = (sa.update(heads).where(heads.c.community == sa.bindparam("of"))
              .values(size=heads.c.size + sa.bindparam("by", type_=sa.BigInteger)).returning(heads.c.size))
_INSERT_HEAD = sa.insert(heads)
_INSERT_ENTRY = sa.insert(entries)
_FRONTIER = sa.select(frontiers.c.size, frontiers.c.edge).where(frontiers.c.community == sa.bindparam("of"))
_INSERT_FRONTIER = sa.insert(frontiers)
_MOVE_FRONTIER = (sa.update(frontiers).where(frontiers.c.community == sa.bindparam("of"))
                  .values(size=sa.bindparam("to_size"), edge=sa.bindparam("to_edge")))


def append(conn: sa.Connection, env: dict) -> int:
    """Append one envelope to its community's log and tree; returns its index."""
    return append_many(conn, [env])


def append_many(conn: sa.Connection, envs: list[dict]) -> int:
    """Append envelopes of one community, in order, to its log and tree; returns the index of the
    first. A run of n entries costs one statement per table (the head, the entries, the frontier
    read and its move, the tree's nodes) instead of n of each: the audit service appends every
    event of the platform, and a ballot day's votes come in runs of one community."""
    community = envs[0]["community"]
    if any(env["community"] != community for env in envs):
        raise ValueError("append_many takes one community's envelopes")
    bodies = [envelope.canonical(env).decode("utf-8") for env in envs]
    # The head row serialises appends per community, also across audit instances.
    updated = conn.execute(_GROW_HEAD, {"of": community, "by": len(envs)}).scalar()
    if updated is None:
        conn.execute(_INSERT_HEAD, {"community": community, "size": len(envs)})
        updated = len(envs)
    idx = updated - len(envs)
    conn.execute(_INSERT_ENTRY, [dict(
        community=community, idx=idx + n, event_id=env["id"], source=env["source"], position=env["position"],
        type=env["type"], case_id=env.get("case"), occurred_at=env["occurred_at"], body=body)
        for n, (env, body) in enumerate(zip(envs, bodies))])
    frontier = conn.execute(_FRONTIER, {"of": community}).first()
    store = _HeadSizedStore(conn, community, idx)
    if frontier is not None and frontier.size == idx:
        edge = bytes(frontier.edge)
        t = merkle.MerkleTree.resume(store, idx, [edge[i:i + 32] for i in range(0, len(edge), 32)])
    else:  # no edge kept yet (a tree from before frontiers, or none): read it, hashing in a lagging tree
        try:
            t = merkle.MerkleTree(store)
        except KeyError:
            t = tree(conn, community, idx)
    try:
        t.extend([body.encode("utf-8") for body in bodies])
    except sa.exc.IntegrityError:  # the tree is ahead of the log: stop the writer rather than paper over it
        raise RuntimeError(f"the audit tree of community {community} already has a leaf in {idx}..{updated - 1}: "
                           "the log and the tree disagree") from None
    edge = b"".join(t.edge)
    if frontier is None:
        conn.execute(_INSERT_FRONTIER, {"community": community, "size": updated, "edge": edge})
    else:
        conn.execute(_MOVE_FRONTIER, {"of": community, "to_size": updated, "to_edge": edge})
    metrics.AUDIT_TREE_SIZE.labels(community).set(updated)
    return idx


class _HeadSizedStore(merkle.SqlNodeStore):
    """A community's nodes, sized by the log's head row instead of a query: the append already
    knows how many leaves the tree must have. A tree that does not have them shows at once: its
    right edge is missing (KeyError) or its next leaf is taken (IntegrityError)."""

    def __init__(self, conn: sa.Connection, community: str, size: int):
        super().__init__(conn, nodes, community)
        self._size = size

    def size(self) -> int:
        return self._size

    def put_many(self, items) -> None:
        items = list(items)
        super().put_many(items)
        self._size += sum(1 for level, _index, _hash in items if level == 0)


def tree(conn: sa.Connection, community: str, covering: int | None = None) -> merkle.MerkleTree:
    """The community's tree over `conn`, holding at least the first `covering` entries.

    A log written before the tree existed (or by an older version) is hashed into the tree here,
    from the stored bytes, the first time it is needed.
    """
    t = merkle.MerkleTree(merkle.SqlNodeStore(conn, nodes, community))
    while covering is not None and t.size < covering:
        rows = conn.execute(sa.select(entries.c.idx, entries.c.body).where(
            entries.c.community == community, entries.c.idx >= t.size, entries.c.idx < covering)
            .order_by(entries.c.idx).limit(_BACKFILL_BATCH)).all()
        if not rows or rows[0].idx != t.size:
            raise RuntimeError(f"the audit log of community {community} has no entry {t.size}")
        t.extend([r.body.encode("utf-8") for r in rows])
    return t


def size(engine: sa.Engine, community: str) -> int:
    with engine.connect() as conn:
        return head(conn, community)


def head(conn: sa.Connection, community: str) -> int:
    return conn.execute(sa.select(heads.c.size).where(heads.c.community == community)).scalar() or 0


def sizes(conn: sa.Connection) -> dict[str, int]:
    """Every community's log size."""
    return {r.community: r.size for r in conn.execute(sa.select(heads.c.community, heads.c.size))}


def _entry(r) -> dict:
    return {"index": r.idx, "source": r.source, "position": r.position, "event_id": r.event_id,
            "type": r.type, "case": r.case_id, "occurred_at": r.occurred_at,
            "envelope": json.loads(r.body), "canonical": r.body}


def read(engine: sa.Engine, community: str, start: int = 0, limit: int = 100, case: str | None = None) -> list[dict]:
    cond = [entries.c.community == community, entries.c.idx >= start]
    if case:
        cond.append(entries.c.case_id == case)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(entries).where(*cond).order_by(entries.c.idx).limit(limit))
        return [_entry(r) for r in rows]


def lines(conn: sa.Connection, community: str, start: int, stop: int) -> list[str]:
    """The stored bytes (as text) of entries [start, stop), in order: what an export writes."""
    rows = conn.execute(sa.select(entries.c.body).where(
        entries.c.community == community, entries.c.idx >= start, entries.c.idx < stop).order_by(entries.c.idx))
    return [r.body for r in rows]


def at(conn: sa.Connection, community: str, indexes: list[int]) -> dict[int, str]:
    """The stored bytes of the given entries, by index."""
    rows = conn.execute(sa.select(entries.c.idx, entries.c.body).where(
        entries.c.community == community, entries.c.idx.in_(list(indexes))))
    return {r.idx: r.body for r in rows}


def find_event(conn: sa.Connection, event_id: str) -> tuple[str, int] | None:
    """(community, index) of the entry of an event, if the log holds it."""
    row = conn.execute(sa.select(entries.c.community, entries.c.idx).where(entries.c.event_id == event_id)).first()
    return (row.community, row.idx) if row else None


def case_indexes(conn: sa.Connection, case: str, community: str | None = None) -> tuple[str | None, list[int]]:
    """The community of a case and the indexes of its entries, in log order."""
    cond = [entries.c.case_id == case] + ([entries.c.community == community] if community else [])
    rows = conn.execute(sa.select(entries.c.community, entries.c.idx).where(*cond)
                        .order_by(entries.c.community, entries.c.idx)).all()
    communities = {r.community for r in rows}
    if len(communities) > 1:  # case ids are per community; never mix two logs in one bundle
        raise ValueError(f"case {case} appears in several communities; name the community")
    return (rows[0].community if rows else community), [r.idx for r in rows]
