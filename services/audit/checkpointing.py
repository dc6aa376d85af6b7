"""Cutting, keeping and serving signed checkpoints: the signing key and its rotation chain, the
community checkpoints, and the platform log of logs.

A community gets a checkpoint at every N-th entry (CONSULT_AUDIT_CHECKPOINT_EVERY), cut in the very
transaction that appends it, and, by a timer, once entries have waited T seconds on the one clock
(CONSULT_AUDIT_CHECKPOINT_SECONDS, counted from its last checkpoint, else from its first entry)
without one. Every checkpoint is appended, as signed, to the platform log, whose new head is
signed in the same transaction: one platform checkpoint commits every community.

Keys. The signing key lives in a file (CONSULT_AUDIT_KEY_FILE, else <data dir>/audit-signing.key,
made with mode 0600 on first start; never in the repository). The state store records the chain
of keys: the first key, then each rotation statement, signed by the old key (see
`checkpoints.rotate_key`). A rotation is announced as a leaf of the platform log and exported with
every community's log, so a verifier holding the first public key learns the next one. A key
file that is not the chain's current key is never used to sign: replacing the file by hand, without
a rotation, would make every later checkpoint unverifiable, so the service refuses, loudly.

A training deployment signs with a key of its own (CONSULT_AUDIT_TRAINING_KEY_FILE, else
<data dir>/audit-training-signing.key; never CONSULT_AUDIT_KEY_FILE, the production key) and marks
every statement it signs "mode": "training", so its record never verifies as a production one.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common import clock, metrics
from services.common.config import Settings
from services.common.errors import Conflict, InvalidInput, NotFound

from . import checkpoints as cp
from . import log, merkle

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

community_checkpoints = sa.Table(
    "audit_checkpoints", metadata,
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),  # 1, 2, … per community
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("platform_index", sa.BigInteger, nullable=False),  # its leaf in the platform log
    sa.Column("statement", sa.Text, nullable=False),  # the signed checkpoint, canonical JSON
    sa.Index("ix_audit_checkpoints_size", "community", "size"),
)
# The log of logs: community checkpoints as cut and key rotations, in the order they were made.
platform_log = sa.Table(
    "audit_platform_log", metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # checkpoint | key_rotation
    sa.Column("community", sa.String(36)),
    sa.Column("body", sa.Text, nullable=False),  # the leaf: the statement's canonical bytes
)
platform_nodes = merkle.node_table(metadata, "audit_platform_nodes")


def _head_table(name: str) -> sa.Table:
    """The signed heads of a log of logs, in the order they were signed."""
    return sa.Table(
        name, metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
    )


platform_checkpoints = _head_table("audit_platform_checkpoints")
# The platform log spanning cells (span.py): one leaf per cell's signed head. Only the platform
# audit of a deployment with cells writes it; every audit store has the tables.
span_log = sa.Table(
    "audit_span_log", metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("cell", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),  # the cell head's size
    sa.Column("root", sa.String(64), nullable=False),  # and root, hex
    sa.Column("body", sa.Text, nullable=False),  # the leaf: checkpoints.cell_leaf's bytes
    sa.Index("ix_audit_span_log_cell", "cell", "idx"),
)
span_nodes = merkle.node_table(metadata, "audit_span_nodes")
span_checkpoints = _head_table("audit_span_checkpoints")
SIGNED_HEADS = (platform_checkpoints, span_checkpoints)  # every head a key signs, for its rotation
keys = sa.Table(
    "audit_keys", metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False),  # base64 of the raw 32 bytes
    sa.Column("added_at", sa.String(40), nullable=False),
    sa.Column("retired_at", sa.String(40)),  # null for the current key
    sa.Column("successor", sa.String(16)),
)
key_rotations = sa.Table(
    "audit_key_rotations", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("old_key_id", sa.String(16), nullable=False),
    sa.Column("new_key_id", sa.String(16), nullable=False, unique=True),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("platform_index", sa.BigInteger, nullable=False),
    sa.Column("statement", sa.Text, nullable=False),
)
# One row whose update serialises cuts and rotations across the service's instances.
signer_lock = sa.Table(
    "audit_signer_lock", metadata,
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("turns", sa.BigInteger, nullable=False),
)

PLATFORM_TREE = "platform"
KEY_FILE_NAME = "audit-signing.key"
TRAINING_KEY_FILE_NAME = "audit-training-signing.key"


@dataclass(frozen=True)
class Policy:
    every: int  # entries
    seconds: float
    key_file: Path
    mode: str = cp.PRODUCTION  # the deployment's kind, which every statement it signs carries


def policy(settings: Settings) -> Policy:
    every, seconds = settings.audit_checkpoint_every, settings.audit_checkpoint_seconds
    if every < 1 or seconds <= 0:
        raise ValueError("CONSULT_AUDIT_CHECKPOINT_EVERY must be ≥ 1 and CONSULT_AUDIT_CHECKPOINT_SECONDS > 0")
    production = Path(settings.audit_key_file or settings.data_dir / KEY_FILE_NAME).resolve()
    if not settings.training:
        return Policy(every, seconds, production)
    key_file = Path(settings.audit_training_key_file or settings.data_dir / TRAINING_KEY_FILE_NAME).resolve()
    if key_file == production:
        raise ValueError(f"a training deployment never signs with the production key file ({production}): set "
                         "CONSULT_AUDIT_TRAINING_KEY_FILE to a file of its own")
    return Policy(every, seconds, key_file, cp.TRAINING)


# --- the key file ---------------------------------------------------------------------------------

class Signer:
    """The signing key held in the key file; re-read whenever the file changes (a rotation made by
    another instance replaces it). `mode`: the deployment's kind, marked on what it signs."""

    def __init__(self, path: Path, mode: str = cp.PRODUCTION):
        self.path = Path(path)
        self.mode = mode
        self._stamp: tuple | None = None
        self.key: Ed25519PrivateKey
        self.key_id = ""
        self.reload()

    @classmethod
    def open(cls, path: Path, mode: str = cp.PRODUCTION) -> "Signer":
        """The key in `path`, made (mode 0600) if there is none yet."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            try:
                cp.generate_key_file(path)
                logger.warning("audit: made a new signing key in %s; keep it secret and back it up", path)
            except FileExistsError:
                pass  # another instance made it at the same moment
        return cls(path, mode)

    def reload(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self.key = cp.load_private_key(self.path)
            self.key_id = cp.key_id(self.key)
            self._stamp = stamp

    def install(self, key: Ed25519PrivateKey) -> None:
        """Replace the key file with `key`, atomically and readable by its owner only."""
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = f"{self.path}.tmp-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self.reload()


# --- the key chain ----------------------------------------------------------------------------------

def prepare(engine: sa.Engine, signer: Signer) -> None:
    """At start: the lock row exists, and the first key of the chain is recorded."""
    for attempt in (1, 2):  # two instances starting together may both try to insert
        try:
            with engine.begin() as conn:
                if conn.execute(sa.select(signer_lock.c.name)).first() is None:
                    conn.execute(sa.insert(signer_lock).values(name="signer", turns=0))
                _lock(conn)
                if conn.execute(sa.select(keys.c.key_id)).first() is None:
                    conn.execute(sa.insert(keys).values(
                        key_id=signer.key_id, public_key=cp.public_key_b64(signer.key),
                        added_at=clock.format(clock.now())))
            break
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise
    with engine.connect() as conn:
        current = current_key_id(conn)
    if current != signer.key_id:
        logger.error("audit: the key file %s holds key %s, but the audit log's current key is %s; no checkpoint "
                     "is signed until the file holds the current key (or the key is rotated properly)",
                     signer.path, signer.key_id, current)


def _lock(conn: sa.Connection) -> None:
    conn.execute(sa.update(signer_lock).where(signer_lock.c.name == "signer").values(turns=signer_lock.c.turns + 1))


def current_key_id(conn: sa.Connection) -> str | None:
    return conn.execute(sa.select(keys.c.key_id).where(keys.c.retired_at.is_(None))).scalar()


def _usable(conn: sa.Connection, signer: Signer) -> None:
    signer.reload()
    current = current_key_id(conn)
    if signer.key_id != current:
        raise Conflict.coded("audit.key_file_holds_key", path=signer.path, key_id=signer.key_id, current=current)


def public_keys(conn: sa.Connection) -> dict:
    rows = conn.execute(sa.select(keys).order_by(keys.c.added_at, keys.c.key_id)).all()
    out = []
    for r in rows:
        out.append({"key_id": r.key_id, "public_key": r.public_key, "pem": cp.public_key_pem(r.public_key),
                    "added_at": r.added_at, "retired_at": r.retired_at, "successor": r.successor})
    return {"current": current_key_id(conn), "keys": out, "key_rotations": rotations(conn)}


def rotations(conn: sa.Connection) -> list[dict]:
    return [json.loads(r.statement) for r in
            conn.execute(sa.select(key_rotations.c.statement).order_by(key_rotations.c.seq))]


def rotate(engine: sa.Engine, signer: Signer, new_key_file: str | os.PathLike, now: datetime) -> dict:
    """Make the key in `new_key_file` the signing key: a rotation statement signed by the current
    key, recorded and appended to the platform log (with a platform checkpoint signed by the new
    key), then the key file replaced by the new key. Running it again with the same file after a
    failure between the two steps only installs the file."""
    path = Path(new_key_file)
    try:
        new_key = cp.load_private_key(path)
    except (OSError, ValueError) as exc:
        raise InvalidInput.coded("audit.read_ed_private_key", path=path, exc=exc) from None
    new_id = cp.key_id(new_key)
    if not os.access(signer.path.parent, os.W_OK):
        raise Conflict.coded("audit.key_file_folder_writable", parent=signer.path.parent)
    with engine.begin() as conn:
        _lock(conn)
        current = current_key_id(conn)
        signer.reload()
        if current == new_id:
            if signer.key_id == new_id:
                raise Conflict.coded("audit.key_already_signing_key", new_id=new_id)
            statement = next((r for r in rotations(conn) if r["new_key_id"] == new_id), None)
        else:
            if conn.execute(sa.select(keys.c.key_id).where(keys.c.key_id == new_id)).first() is not None:
                raise Conflict.coded("audit.key_was_used_before", new_id=new_id)
            _usable(conn, signer)
            # The old key vouches for what it signed up to the rotation's time: never let that time
            # precede one of its own checkpoints (a clock set back would disown them).
            signed = [conn.execute(sa.select(sa.func.max(t.c.time)).where(t.c.key_id == current)).scalar()
                      for t in (community_checkpoints, *SIGNED_HEADS)]
            statement = cp.rotate_key(signer.key, new_key.public_key(),
                                      max([clock.format(now)] + [s for s in signed if s]), mode=signer.mode)
            at = statement["time"]
            conn.execute(sa.update(keys).where(keys.c.key_id == current).values(retired_at=at, successor=new_id))
            conn.execute(sa.insert(keys).values(key_id=new_id, public_key=statement["new_public_key"], added_at=at))
            tree = _platform_tree(conn)
            index = _platform_append(conn, tree, cp.KEY_ROTATION, None, statement)
            seq = (conn.execute(sa.select(sa.func.max(key_rotations.c.seq))).scalar() or 0) + 1
            conn.execute(sa.insert(key_rotations).values(
                seq=seq, old_key_id=current, new_key_id=new_id, time=at, platform_index=index,
                statement=cp.canonical(statement).decode("utf-8")))
            _sign_platform(conn, tree, new_key, at, signer.mode)
    signer.install(new_key)
    logger.warning("audit: signing key rotated from %s to %s", statement["old_key_id"], new_id)
    return statement


# --- cutting -----------------------------------------------------------------------------------------

def _last_checkpoints(conn: sa.Connection) -> dict[str, tuple[int, str]]:
    """Each community's latest checkpoint: (size, time)."""
    c = community_checkpoints
    latest = sa.select(c.c.community, sa.func.max(c.c.seq).label("seq")).group_by(c.c.community).subquery()
    rows = conn.execute(sa.select(c.c.community, c.c.size, c.c.time).join(
        latest, sa.and_(c.c.community == latest.c.community, c.c.seq == latest.c.seq)))
    return {r.community: (r.size, r.time) for r in rows}


def _first_times(conn: sa.Connection, communities: list[str]) -> dict[str, str]:
    e = log.entries
    rows = conn.execute(sa.select(e.c.community, e.c.occurred_at).where(
        e.c.idx == 0, e.c.community.in_(communities))) if communities else []
    return {r.community: r.occurred_at for r in rows}


def due(sizes: dict[str, int], last: dict[str, tuple[int, str]], first: dict[str, str], now: datetime,
        every: int, seconds: float) -> list[str]:
    """Communities whose uncovered entries are N or more, or have waited T seconds or more."""
    out = []
    for community, size in sorted(sizes.items()):
        covered, since = last.get(community, (0, first.get(community)))
        if size <= covered:
            continue
        waited = (now - clock.parse(since)).total_seconds() if since else seconds
        if size - covered >= every or waited >= seconds:
            out.append(community)
    return out


def cut(engine: sa.Engine, signer: Signer, pol: Policy, now: datetime, *, community: str | None = None,
        force: bool = False) -> list[dict]:
    """Cut the checkpoints that are due (all with new entries when `force`, or only `community`'s);
    returns the new community checkpoints."""
    with engine.connect() as conn:  # a look first: most ticks find nothing due and need no lock
        if not _chosen(conn, pol, now, community, force):
            return []
    with engine.begin() as conn:
        _lock(conn)
        chosen = _chosen(conn, pol, now, community, force)  # again, now that no one else cuts
        if not chosen:
            return []
        _usable(conn, signer)
        return _sign_checkpoints(conn, signer, chosen, now)


def _chosen(conn: sa.Connection, pol: Policy, now: datetime, community: str | None, force: bool) -> dict[str, int]:
    """The communities to cut now, with their sizes."""
    sizes = log.sizes(conn)
    if community is not None:
        sizes = {community: sizes[community]} if community in sizes else {}
    last = _last_checkpoints(conn)
    if force:
        return {c: n for c, n in sizes.items() if n > last.get(c, (0, None))[0]}
    waiting = [c for c in sizes if c not in last]
    return {c: sizes[c] for c in due(sizes, last, _first_times(conn, waiting), now, pol.every, pol.seconds)}


def cut_on_append(conn: sa.Connection, signer: Signer, community: str, size: int, now: datetime) -> dict | None:
    """Inside the append's transaction: the checkpoint of every N-th entry, so that N entries means
    exactly N. A key that may not sign is skipped here (the timer reports it): a signing problem
    must never hold up the log itself."""
    _lock(conn)
    signer.reload()
    if signer.key_id != current_key_id(conn):
        return None
    return _sign_checkpoints(conn, signer, {community: size}, now)[0]


def _sign_checkpoints(conn: sa.Connection, signer: Signer, sizes: dict[str, int], now: datetime) -> list[dict]:
    """Sign a checkpoint for each community at its size, append each to the platform log, and sign
    the platform log's new head: one transaction, under the signer lock."""
    tree = _platform_tree(conn)
    made = []
    for c, size in sorted(sizes.items()):
        statement = cp.sign_checkpoint(signer.key, c, size, log.tree(conn, c, size).root(size), now,
                                       mode=signer.mode)
        index = _platform_append(conn, tree, cp.CHECKPOINT, c, statement)
        seq = (conn.execute(sa.select(sa.func.max(community_checkpoints.c.seq)).where(
            community_checkpoints.c.community == c)).scalar() or 0) + 1
        conn.execute(sa.insert(community_checkpoints).values(
            community=c, seq=seq, size=size, time=statement["time"], key_id=statement["key_id"],
            platform_index=index, statement=cp.canonical(statement).decode("utf-8")))
        made.append(statement)
    _sign_platform(conn, tree, signer.key, now, signer.mode)
    return made


def observe_ages(engine: sa.Engine, now: datetime) -> None:
    """consult_audit_checkpoint_age_seconds for every community with a checkpoint."""
    with engine.connect() as conn:
        last = _last_checkpoints(conn)
    for community, (_size, time) in last.items():
        metrics.AUDIT_CHECKPOINT_AGE.labels(community).set(max((now - clock.parse(time)).total_seconds(), 0.0))


def _platform_tree(conn: sa.Connection) -> merkle.MerkleTree:
    return merkle.MerkleTree(merkle.SqlNodeStore(conn, platform_nodes, PLATFORM_TREE))


def _platform_append(conn: sa.Connection, tree: merkle.MerkleTree, kind: str, community: str | None,
                     statement: dict) -> int:
    body = cp.canonical(statement)
    index = tree.append(body)
    conn.execute(sa.insert(platform_log).values(idx=index, kind=kind, community=community, body=body.decode("utf-8")))
    return index


def _sign_platform(conn: sa.Connection, tree: merkle.MerkleTree, key: Ed25519PrivateKey, now: datetime,
                   mode: str) -> dict:
    return sign_head(conn, platform_checkpoints, tree, key, cp.PLATFORM, now, mode)


def sign_head(conn: sa.Connection, table: sa.Table, tree: merkle.MerkleTree, key: Ed25519PrivateKey, name: str,
              now: datetime, mode: str) -> dict:
    """Sign the head of a log of logs (`name`: its checkpoints' `community`) and keep it in `table`."""
    statement = cp.sign_checkpoint(key, name, tree.size, tree.root(), now, mode=mode)
    seq = (conn.execute(sa.select(sa.func.max(table.c.seq))).scalar() or 0) + 1
    conn.execute(sa.insert(table).values(
        seq=seq, size=tree.size, time=statement["time"], key_id=statement["key_id"],
        statement=cp.canonical(statement).decode("utf-8")))
    return statement


# --- the extents of what is handed out -----------------------------------------------------------------

def covered(conn: sa.Connection, community: str) -> int:
    """How many entries of the community's log its latest checkpoint covers (0 without one)."""
    c = community_checkpoints
    return conn.execute(sa.select(c.c.size).where(c.c.community == community)
                        .order_by(c.c.seq.desc()).limit(1)).scalar() or 0


def extent(conn: sa.Connection, community: str) -> dict:
    """The log's size and how much of it the latest checkpoint covers. The checkpoint is read
    first: the head, read after it, is never behind it."""
    done = covered(conn, community)
    return {"community": community, "size": log.head(conn, community), "covered": done}


def export_header(engine: sa.Engine, signer: Signer, community: str, unsigned: bool, now: datetime) -> dict:
    """The signed header of an export of `community`: it ends at the latest checkpoint, or, when
    `unsigned`, at the latest entry, and says so."""
    with engine.connect() as conn:
        _usable(conn, signer)
        span = extent(conn, community)
    return cp.sign_export_header(signer.key, community, span["size"] if unsigned else span["covered"],
                                 span["covered"], now, mode=signer.mode)


def bundle_extent(conn: sa.Connection, signer: Signer, bundle: dict, case: str, now: datetime) -> dict:
    """The signed extent of a case bundle: exactly the entries it holds."""
    _usable(conn, signer)
    return cp.sign_bundle_extent(signer.key, bundle["community"], case, bundle["checkpoint"]["size"],
                                 [e["index"] for e in bundle["entries"]], now, mode=signer.mode)


# --- reading -------------------------------------------------------------------------------------------

def latest(conn: sa.Connection, community: str) -> dict:
    c = community_checkpoints
    row = conn.execute(sa.select(c.c.statement).where(c.c.community == community)
                       .order_by(c.c.seq.desc()).limit(1)).first()
    if row is None:
        raise NotFound.coded("audit.community_checkpoint_yet", community=community)
    return json.loads(row.statement)


def history(conn: sa.Connection, community: str, start: int = 0, limit: int = 100) -> list[dict]:
    """Checkpoints in the order they were cut, from the `start`-th (0-based)."""
    c = community_checkpoints
    rows = conn.execute(sa.select(c.c.statement).where(c.c.community == community)
                        .order_by(c.c.seq).offset(start).limit(limit))
    return [json.loads(r.statement) for r in rows]


def of_size(conn: sa.Connection, community: str, size: int) -> tuple[dict, int]:
    """The latest checkpoint of exactly `size` entries, and its leaf in the platform log."""
    c = community_checkpoints
    row = conn.execute(sa.select(c.c.statement, c.c.platform_index).where(c.c.community == community, c.c.size == size)
                       .order_by(c.c.seq.desc()).limit(1)).first()
    if row is None:
        raise NotFound.coded("audit.community_checkpoint_size", community=community, size=size)
    return json.loads(row.statement), row.platform_index


def platform_latest(conn: sa.Connection, table: sa.Table = platform_checkpoints) -> dict:
    """The latest signed head of this audit's log of logs (or of the one in `table`)."""
    row = conn.execute(sa.select(table.c.statement).order_by(table.c.seq.desc()).limit(1)).first()
    if row is None:
        raise NotFound.coded("audit.platform_checkpoint_yet")
    return json.loads(row.statement)


def platform_history(conn: sa.Connection, start: int = 0, limit: int = 100,
                     table: sa.Table = platform_checkpoints) -> list[dict]:
    return [json.loads(r.statement) for r in
            conn.execute(sa.select(table.c.statement).order_by(table.c.seq).offset(start).limit(limit))]


def cell_head(conn: sa.Connection, since: int | None) -> dict:
    """The latest head of this audit's log of logs (with cells: the cell log), a consistency proof
    from its first `since` leaves (none when `since` is None, 0, or not smaller than the head),
    and the key rotations a verifier of the head needs: what the platform audit witnesses."""
    head = platform_latest(conn)
    proof = (_platform_tree(conn).consistency_proof(since, head["size"])
             if since and since < head["size"] else [])
    return {"checkpoint": head, "proof": [h.hex() for h in proof], "key_rotations": rotations(conn)}


def platform_proof(conn: sa.Connection, index: int, size: int) -> list[str]:
    return [h.hex() for h in _platform_tree(conn).inclusion_proof(index, size)]
