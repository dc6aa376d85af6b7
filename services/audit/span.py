"""The platform log spanning cells: one log of every cell's signed head, kept and signed by the
platform's audit instance.

Without cells the audit service's log of logs (checkpointing.py) commits every community at once.
With cells (services/common/cells.py) each cell's audit keeps that log for its own communities
only: a **cell log**, whose signed head (a checkpoint of `community` "platform") says nothing about
the other cells. A cell could then show two different cell logs to two auditors, and no head of
the whole platform would catch it.

So a deployment with cells also runs the audit service once without CONSULT_CELL, beside the
directory: the **platform audit**. It keeps nothing of any community. Every second its timer asks
each cell's audit for its latest signed head and a consistency proof from the last head it
witnessed of that cell (`cell_head`), and appends the head as a leaf (`checkpoints.cell_leaf`: the
head and its cell) only if

  - its signature verifies with a key the platform audit trusts (its own chain, and the rotations
    the cell shows, each signed by a trusted key), and it is of the deployment's kind;
  - it extends the last head witnessed of that cell: the consistency proof verifies, or it is the
    same head. A head that does not is a fork: refused, logged as an error and counted
    (consult_audit_cell_forks), and the cell is not witnessed again until it shows a head
    that extends the witnessed one.

Each append signs the spanning log's new head (a checkpoint of `community` "cells") in the same
transaction, under the signer lock. A community's platform proof from its cell then chains two
inclusion proofs: the community's checkpoint in the cell log at a witnessed head, and that head in
the spanning log (`span_proof`; services/audit/verify.py checks both).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime

import sqlalchemy as sa

from services.common import metrics
from services.common.errors import NotFound

from . import checkpointing, merkle
from . import checkpoints as cp

logger = logging.getLogger(__name__)

# The tables are checkpointing's (every audit store has them): span_log, span_nodes, span_checkpoints.
SPAN_TREE = "span"


class Fork(Exception):
    """A cell's head that does not extend the head last witnessed of that cell (or is not signed by
    a trusted key): refused, never appended."""


def _tree(conn: sa.Connection) -> merkle.MerkleTree:
    return merkle.MerkleTree(merkle.SqlNodeStore(conn, checkpointing.span_nodes, SPAN_TREE))


def witnessed(conn: sa.Connection, cell: str) -> dict | None:
    """The head last witnessed of `cell` and its leaf: {"index", "checkpoint"}, or None."""
    log = checkpointing.span_log
    row = conn.execute(sa.select(log.c.idx, log.c.body).where(log.c.cell == cell)
                       .order_by(log.c.idx.desc()).limit(1)).first()
    if row is None:
        return None
    return {"index": row.idx, "checkpoint": json.loads(row.body)["checkpoint"]}


def _ring(conn: sa.Connection, rotations, mode: str) -> cp.KeyRing:
    """The keys this audit store trusts (its own chain), and those the cell's rotations add."""
    ring = cp.KeyRing([k["public_key"] for k in checkpointing.public_keys(conn)["keys"]], mode=mode)
    for rotation in sorted(rotations or (), key=lambda r: r.get("time", "")):
        try:
            ring.learn(rotation)
        except cp.CheckpointError as exc:
            raise Fork(f"a key rotation the cell shows is not trusted: {exc}") from None
    return ring


def check(conn: sa.Connection, cell: str, head: dict, proof, rotations, mode: str) -> dict | None:
    """Why-not as Fork, else the last witnessed head of `cell` if `head` is that very head (nothing
    to append), else None (append it)."""
    try:
        ring = _ring(conn, rotations, mode)
        ring.check(head)
        cp.cell_leaf(cell, head)
    except cp.CheckpointError as exc:
        raise Fork(f"the head of cell {cell} does not verify: {exc}") from None
    last = witnessed(conn, cell)
    if last is None:
        return None
    old = last["checkpoint"]
    if head["size"] < old["size"]:
        raise Fork(f"the head of cell {cell} has {head['size']} entries, fewer than the {old['size']} witnessed: "
                   "its log shrank")
    if head["size"] == old["size"]:
        if head["root"] != old["root"]:
            raise Fork(f"cell {cell} shows another root for the {head['size']} entries witnessed (split view)")
        return last
    path = [bytes.fromhex(p) for p in proof or ()]
    if not merkle.verify_consistency(old["size"], head["size"], bytes.fromhex(old["root"]),
                                     bytes.fromhex(head["root"]), path):
        raise Fork(f"the head of cell {cell} of size {head['size']} does not extend the one witnessed of size "
                   f"{old['size']} (its consistency proof does not verify)")
    return None


def witness(engine: sa.Engine, signer: checkpointing.Signer, cell: str, head: dict, proof, rotations,
            now: datetime) -> dict:
    """Append `cell`'s signed head to the spanning log if it extends the one last witnessed, and
    sign the log's new head, in one transaction under the signer lock. Returns {"index",
    "checkpoint"} of the cell's witnessed head (the one given, or the same one already there).
    Raises Fork for a head that must not be appended; checkpointing's Conflict when the key file
    may not sign."""
    with engine.begin() as conn:
        checkpointing._usable(conn, signer)  # noqa: SLF001 - the audit package's own signer check
        checkpointing._lock(conn)  # noqa: SLF001 - one signer at a time across instances
        try:
            same = check(conn, cell, head, proof, rotations, signer.mode)
        except Fork:
            metrics.AUDIT_CELL_FORKS.labels(cell).inc()
            raise
        if same is not None:
            return same
        tree, leaf = _tree(conn), cp.cell_leaf(cell, head)
        index = tree.append(leaf)
        conn.execute(sa.insert(checkpointing.span_log).values(idx=index, cell=cell, size=head["size"],
                                                              root=head["root"], body=leaf.decode("utf-8")))
        checkpointing.sign_head(conn, checkpointing.span_checkpoints, tree, signer.key, cp.SPAN, now, signer.mode)
    return {"index": index, "checkpoint": head}


def latest(conn: sa.Connection) -> dict:
    return checkpointing.platform_latest(conn, checkpointing.span_checkpoints)


def history(conn: sa.Connection, start: int = 0, limit: int = 100) -> list[dict]:
    return checkpointing.platform_history(conn, start, limit, checkpointing.span_checkpoints)


def proof(conn: sa.Connection, cell: str) -> dict:
    """The head last witnessed of `cell` as a leaf of the spanning log, proven against the log's
    latest signed head, with the key rotations a verifier needs for that head."""
    last = witnessed(conn, cell)
    if last is None:
        raise NotFound.coded("audit.cell_not_witnessed", cell=cell)
    head = latest(conn)
    return {"cell": cell, "index": last["index"], "checkpoint": last["checkpoint"], "span_checkpoint": head,
            "proof": [h.hex() for h in _tree(conn).inclusion_proof(last["index"], head["size"])],
            "key_rotations": checkpointing.rotations(conn)}
