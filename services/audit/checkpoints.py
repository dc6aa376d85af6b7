"""Signed checkpoints of the audit logs: Ed25519 keys, key rotation, the log of logs, notices,
and the signed extents of what the platform hands out (export headers, bundle extents).

A checkpoint states "the log of <community> had <size> entries with root <root> at <time>",
signed over the canonical JSON of every field but the signature. A key rotation statement,
signed by the old key, is the only way a verifier that trusts the old key learns the new one.
The platform log ("log of logs") is an RFC 6962 tree whose leaves are the community checkpoints
as cut, so one platform checkpoint commits to every community's latest one.

An export header states how many entries an export holds and how many of them its checkpoints
cover; a bundle extent lists the log positions a case bundle holds. Neither carries a root: the
only signed statements about the log's contents are checkpoints, every one of them a leaf of the
platform log, so the key never vouches for a history that the log of logs does not commit to.

A training deployment marks every statement it signs with "mode": "training" (inside the signed
bytes), with a key of its own. A verifier checks records of one kind (`KeyRing(mode=...)`): a
training statement never verifies as a production one, whatever key signed it, nor the reverse.
A production statement has no mode field, as before training deployments existed.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from datetime import datetime, timezone
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.canonical import canonical_bytes
from services.common.config import PRODUCTION, TRAINING

from services.contracts.audit import CHECKPOINT, KEY_ROTATION  # the kinds the gateway publishes too

from .merkle import MerkleTree, leaf_hash, verify_inclusion

EXPORT_HEADER = "export_header"
BUNDLE_EXTENT = "bundle_extent"
PLATFORM = "platform"  # the `community` of a platform (log of logs) checkpoint; with cells, of a cell's
SPAN = "cells"  # the `community` of a checkpoint of the platform log spanning cells (services/audit/span.py)
CELL_CHECKPOINT = "cell_checkpoint"  # the `kind` of a leaf of that log: one cell's signed head, and the cell
MODE = "mode"  # "mode": "training" on every statement a training deployment signs; absent in production

CHECKPOINT_FIELDS = frozenset({"kind", "community", "size", "root", "time", "key_id", "signature"})
EXPORT_HEADER_FIELDS = frozenset({"kind", "community", "size", "covered", "unsigned", "time", "key_id",
                                  "signature"})
BUNDLE_EXTENT_FIELDS = frozenset({"kind", "community", "case", "size", "indexes", "unsigned", "time", "key_id",
                                  "signature"})
ROTATION_FIELDS = frozenset({"kind", "old_key_id", "new_key_id", "new_public_key", "time", "signature"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


class CheckpointError(ValueError):
    """A checkpoint or key rotation statement that is malformed, unsigned by a trusted key, or
    signed by a key that was already rotated out."""


def canonical(obj: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the bytes that are signed and hashed."""
    return canonical_bytes(obj)


def format_time(instant: datetime | str) -> str:
    """UTC, microseconds, 'Z' (the envelopes' form). Strings are checked and kept as they are."""
    if isinstance(instant, str):
        parse_time(instant)
        return instant
    if instant.tzinfo is None:
        raise ValueError("a checkpoint time needs a timezone")
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"a time must be an ISO-8601 string, not {type(text).__name__}")
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if value.tzinfo is None:
        raise ValueError(f"time without a timezone: {text!r}")
    return value.astimezone(timezone.utc)


def count_of(value: Any) -> bool:
    """Is `value` a whole number of entries (an int, not a bool, at least 0)?"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- keys ----------------------------------------------------------------------------------------

def generate_key_file(path: str | os.PathLike, *, overwrite: bool = False) -> Ed25519PrivateKey:
    """Create a new signing key as an unencrypted PKCS#8 PEM file readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = os.fspath(path)
    target = f"{path}.tmp-{os.getpid()}" if overwrite else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never reuse someone's file
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    if overwrite:
        os.replace(target, path)
    return key


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{os.fspath(path)} does not hold an Ed25519 private key")
    return key


def load_public_key(value: Any) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, 32 raw bytes, base64 of them, PEM text, or a file."""
    if isinstance(value, Ed25519PublicKey):
        return value
    if isinstance(value, Ed25519PrivateKey):
        return value.public_key()
    if isinstance(value, os.PathLike):
        with open(value, "rb") as f:
            return load_public_key(f.read())
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return Ed25519PublicKey.from_public_bytes(bytes(value))
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("the PEM key is not an Ed25519 public key")
            return key
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError("a public key must be PEM or base64 of 32 raw bytes") from exc
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    raise TypeError(f"cannot read a public key from {type(value).__name__}")


def public_key_raw(key: Any) -> bytes:
    return load_public_key(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Any) -> str:
    return base64.b64encode(public_key_raw(key)).decode("ascii")


def public_key_pem(key: Any) -> str:
    return load_public_key(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def key_id(key: Any) -> str:
    """First 16 hex characters of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key_raw(key)).hexdigest()[:16]


# --- statements ----------------------------------------------------------------------------------

def signed_message(statement: dict) -> bytes:
    """The bytes a checkpoint or rotation signature covers: all fields except the signature."""
    return canonical({k: v for k, v in statement.items() if k != "signature"})


def _sign(private_key: Ed25519PrivateKey, statement: dict, mode: str = PRODUCTION) -> dict:
    statement = dict(statement)
    if mode == TRAINING:
        statement[MODE] = TRAINING  # signed with the rest: it cannot be taken off
    elif mode != PRODUCTION:
        raise ValueError(f"a deployment is {PRODUCTION!r} or {TRAINING!r}, not {mode!r}")
    statement["signature"] = base64.b64encode(private_key.sign(signed_message(statement))).decode("ascii")
    return statement


def verify_signature(statement: dict, public_key: Any) -> bool:
    try:
        signature = base64.b64decode(statement.get("signature", ""), validate=True)
        load_public_key(public_key).verify(signature, signed_message(statement))
        return True
    except (InvalidSignature, binascii.Error, TypeError, ValueError):
        return False


def _root_hex(root: bytes | str) -> str:
    text = root.hex() if isinstance(root, (bytes, bytearray)) else root
    if not isinstance(text, str) or not _HEX64.fullmatch(text):
        raise ValueError("a root is 32 bytes (64 lowercase hex characters)")
    return text


def sign_checkpoint(private_key: Ed25519PrivateKey, community: str, size: int, root: bytes | str,
                    time: datetime | str, *, mode: str = PRODUCTION) -> dict:
    """Cut a checkpoint. `time` comes from the caller's clock (the one clock), never read here."""
    if not count_of(size):
        raise ValueError("a checkpoint size is a non-negative integer")
    return _sign(private_key, {
        "kind": CHECKPOINT, "community": str(community), "size": size, "root": _root_hex(root),
        "time": format_time(time), "key_id": key_id(private_key)}, mode)


def sign_export_header(private_key: Ed25519PrivateKey, community: str, size: int, covered: int,
                       time: datetime | str, *, mode: str = PRODUCTION) -> dict:
    """The header of an export: it holds exactly `size` entries, the first `covered` of them under
    a checkpoint it carries; `unsigned` says whether entries after them follow (an `--unsigned`
    export). No root: what the entries are is for the checkpoints to say."""
    if not (count_of(size) and count_of(covered) and covered <= size):
        raise ValueError("an export header needs whole sizes with covered <= size")
    return _sign(private_key, {
        "kind": EXPORT_HEADER, "community": str(community), "size": size, "covered": covered,
        "unsigned": size > covered, "time": format_time(time), "key_id": key_id(private_key)}, mode)


def sign_bundle_extent(private_key: Ed25519PrivateKey, community: str, case: str, size: int,
                       indexes: Iterable[int], time: datetime | str, *, mode: str = PRODUCTION) -> dict:
    """The extent of a case bundle: exactly the entries at `indexes` of the community's log, proven
    against its checkpoint of `size` entries; `unsigned` says whether some lie beyond it."""
    indexes = sorted(set(indexes))
    if not count_of(size) or not all(count_of(i) for i in indexes):
        raise ValueError("a bundle extent needs a whole size and whole indexes")
    return _sign(private_key, {
        "kind": BUNDLE_EXTENT, "community": str(community), "case": str(case), "size": size, "indexes": indexes,
        "unsigned": any(i >= size for i in indexes), "time": format_time(time), "key_id": key_id(private_key)},
        mode)


def rotate_key(old_private_key: Ed25519PrivateKey, new_public_key: Any, time: datetime | str, *,
               mode: str = PRODUCTION) -> dict:
    """A statement, signed by the old key, that the new key signs from `time` on."""
    new = load_public_key(new_public_key)
    return _sign(old_private_key, {
        "kind": KEY_ROTATION, "old_key_id": key_id(old_private_key), "new_key_id": key_id(new),
        "new_public_key": public_key_b64(new), "time": format_time(time)}, mode)


def _is_b64_signature(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(base64.b64decode(value, validate=True)) == 64
    except binascii.Error:
        return False


def checkpoint_form_problem(cp: Any) -> str | None:
    """Why `cp` is not a well-formed checkpoint, or None. Says nothing about the signature."""
    if not isinstance(cp, dict):
        return "a checkpoint is a JSON object"
    if cp.get("kind") != CHECKPOINT:
        return "not a checkpoint (kind)"
    problem = _signed_form_problem(cp, CHECKPOINT, CHECKPOINT_FIELDS)
    if problem:
        return problem
    if not count_of(cp["size"]):
        return "checkpoint size must be a non-negative integer"
    if not isinstance(cp["root"], str) or not _HEX64.fullmatch(cp["root"]):
        return "checkpoint root must be 64 lowercase hex characters"
    return None


def _signed_form_problem(stmt: Any, kind: str, fields: frozenset) -> str | None:
    """Why `stmt` is not a statement of `kind` with exactly `fields`, well formed in the fields
    every signed statement shares (community, key id, time, signature), or None."""
    name = kind.replace("_", " ")
    if not isinstance(stmt, dict) or stmt.get("kind") != kind:
        return f"not a {name}"
    fields, problem = _with_mode(stmt, name, fields)
    if problem:
        return problem
    if set(stmt) != fields:
        extra, missing = set(stmt) - fields, fields - set(stmt)
        return f"{name} fields: missing {sorted(missing)}, unexpected {sorted(extra)}"
    if not isinstance(stmt["community"], str) or not stmt["community"]:
        return f"{name} community must be a non-empty string"
    if not isinstance(stmt["key_id"], str) or not _KEY_ID.fullmatch(stmt["key_id"]):
        return f"{name} key_id must be 16 lowercase hex characters"
    try:
        parse_time(stmt["time"])
    except ValueError as exc:
        return f"{name} time: {exc}"
    if not _is_b64_signature(stmt["signature"]):
        return f"{name} signature must be base64 of 64 bytes"
    return None


def _with_mode(stmt: dict, name: str, fields: frozenset) -> tuple[frozenset, str | None]:
    """The fields a statement must have: a training deployment's carry "mode": "training" too."""
    if MODE not in stmt:
        return fields, None
    if stmt[MODE] != TRAINING:
        return fields, f"{name} mode must be {TRAINING!r} (a production statement carries no mode)"
    return fields | {MODE}, None


def statement_mode(stmt: Any) -> str:
    """The kind of deployment a statement says it comes from."""
    return stmt.get(MODE, PRODUCTION) if isinstance(stmt, dict) else PRODUCTION


def export_header_problem(stmt: Any) -> str | None:
    """Why `stmt` is not a well-formed export header, or None. Says nothing about the signature."""
    problem = _signed_form_problem(stmt, EXPORT_HEADER, EXPORT_HEADER_FIELDS)
    if problem:
        return problem
    size, covered = stmt["size"], stmt["covered"]
    if not (count_of(size) and count_of(covered) and covered <= size):
        return "export header size and covered must be whole numbers with covered <= size"
    if stmt["unsigned"] is not (size > covered):
        return "export header unsigned must say whether entries follow the covered ones"
    return None


def bundle_extent_problem(stmt: Any) -> str | None:
    """Why `stmt` is not a well-formed bundle extent, or None. Says nothing about the signature."""
    problem = _signed_form_problem(stmt, BUNDLE_EXTENT, BUNDLE_EXTENT_FIELDS)
    if problem:
        return problem
    indexes = stmt["indexes"]
    if not isinstance(stmt["case"], str) or not count_of(stmt["size"]):
        return "bundle extent case must be a string and size a whole number"
    if not isinstance(indexes, list) or not all(count_of(i) for i in indexes) or indexes != sorted(set(indexes)):
        return "bundle extent indexes must be whole numbers, ascending, each once"
    if stmt["unsigned"] is not any(i >= stmt["size"] for i in indexes):
        return "bundle extent unsigned must say whether some indexes lie beyond its checkpoint"
    return None


_FORM_PROBLEM = {CHECKPOINT: checkpoint_form_problem, EXPORT_HEADER: export_header_problem,
                 BUNDLE_EXTENT: bundle_extent_problem}


def rotation_form_problem(stmt: Any) -> str | None:
    if not isinstance(stmt, dict) or stmt.get("kind") != KEY_ROTATION:
        return "not a key rotation statement"
    fields, problem = _with_mode(stmt, "key rotation", ROTATION_FIELDS)
    if problem:
        return problem
    if set(stmt) != fields:
        extra, missing = set(stmt) - fields, fields - set(stmt)
        return f"key rotation fields: missing {sorted(missing)}, unexpected {sorted(extra)}"
    for field in ("old_key_id", "new_key_id"):
        if not isinstance(stmt[field], str) or not _KEY_ID.fullmatch(stmt[field]):
            return f"key rotation {field} must be 16 lowercase hex characters"
    try:
        new = load_public_key(stmt["new_public_key"]) if isinstance(stmt["new_public_key"], str) else None
    except ValueError:
        new = None
    if new is None or stmt["new_public_key"].startswith("-----"):
        return "key rotation new_public_key must be base64 of the raw 32-byte key"
    if key_id(new) != stmt["new_key_id"]:
        return "key rotation new_key_id is not the id of new_public_key"
    try:
        parse_time(stmt["time"])
    except ValueError as exc:
        return f"key rotation time: {exc}"
    if not _is_b64_signature(stmt["signature"]):
        return "key rotation signature must be base64 of 64 bytes"
    return None


class KeyRing:
    """The keys a verifier trusts: the ones it was given, plus those learnt through rotations
    signed by a trusted key. A rotated-out key still vouches for checkpoints up to its rotation
    time, not after. A ring verifies the records of one kind of deployment (`mode`): production,
    or, asked for explicitly, training."""

    def __init__(self, public_keys: Iterable[Any] = (), mode: str = PRODUCTION):
        if isinstance(public_keys, (str, bytes, Ed25519PublicKey, Ed25519PrivateKey, os.PathLike)):
            public_keys = [public_keys]
        if mode not in (PRODUCTION, TRAINING):
            raise ValueError(f"a record is of a {PRODUCTION!r} or a {TRAINING!r} deployment, not {mode!r}")
        self.mode = mode
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.retired: dict[str, tuple[datetime, str]] = {}  # key id -> (rotation time, successor)
        for key in public_keys:
            self.add(key)

    def add(self, public_key: Any) -> str:
        key = load_public_key(public_key)
        kid = key_id(key)
        self.keys[kid] = key
        return kid

    def __contains__(self, kid: str) -> bool:
        return kid in self.keys

    def learn(self, rotation: dict) -> str:
        """Trust rotation's new key if the old key is trusted and signed it; returns the new id."""
        self.require_mode(rotation, "key rotation")
        problem = rotation_form_problem(rotation)
        if problem:
            raise CheckpointError(problem)
        old, new = rotation["old_key_id"], rotation["new_key_id"]
        if old not in self.keys:
            raise CheckpointError(f"key rotation signed by key {old}, which is not trusted")
        if not verify_signature(rotation, self.keys[old]):
            raise CheckpointError(f"key rotation from {old} to {new}: the signature does not verify")
        at = parse_time(rotation["time"])
        if old in self.retired and self.retired[old][1] != new:
            raise CheckpointError(
                f"key {old} was already rotated to {self.retired[old][1]}; a second successor {new} is refused")
        if old not in self.retired or at < self.retired[old][0]:
            self.retired[old] = (at, new)
        self.keys[new] = load_public_key(rotation["new_public_key"])
        return new

    def check(self, statement: dict, kind: str = CHECKPOINT) -> None:
        """Raise CheckpointError unless `statement` is a well-formed statement of `kind` (a
        checkpoint, an export header or a bundle extent) validly signed by a trusted key that
        had not been rotated out at the statement's time, and of the ring's kind of deployment."""
        name = kind.replace("_", " ")
        self.require_mode(statement, name)
        problem = _FORM_PROBLEM[kind](statement)
        if problem:
            raise CheckpointError(problem)
        kid = statement["key_id"]
        if kid not in self.keys:
            raise CheckpointError(f"{name} signed by key {kid}, which is not trusted")
        if not verify_signature(statement, self.keys[kid]):
            raise CheckpointError(f"{name} signature does not verify under key {kid}")
        if kid in self.retired:
            at, successor = self.retired[kid]
            if parse_time(statement["time"]) > at:
                raise CheckpointError(
                    f"{name} signed at {statement['time']} by key {kid}, which was rotated out "
                    f"(to {successor}) at {format_time(at)}")

    def require_mode(self, statement: Any, name: str) -> None:
        """The one place a statement's kind of deployment is held to the verifier's."""
        found = statement_mode(statement)
        if found == self.mode or found not in (PRODUCTION, TRAINING):
            return  # the same kind, or a malformed mode that the form check names
        if found == TRAINING:
            raise CheckpointError(
                f'this {name} comes from a training deployment ("mode": "training"): a training record never '
                "verifies as a production one (to check it as the training record it is: --training, with the "
                "training deployment's public key)")
        raise CheckpointError(
            f'this {name} comes from a production deployment (it carries no "mode": "training"), and a training '
            "record was asked for (--training): verify it without --training")

    def verifies(self, statement: dict, kind: str = CHECKPOINT) -> bool:
        try:
            self.check(statement, kind)
            return True
        except CheckpointError:
            return False


# --- the log of logs -----------------------------------------------------------------------------

def checkpoint_leaf(checkpoint: dict) -> bytes:
    """A community checkpoint as a leaf of the platform log: its canonical bytes, signature included."""
    problem = checkpoint_form_problem(checkpoint)
    if problem:
        raise CheckpointError(problem)
    return canonical(checkpoint)


def platform_checkpoint(community_checkpoints: Iterable[dict], private_key: Ed25519PrivateKey,
                        time: datetime | str, *, tree: MerkleTree | None = None,
                        platform: str = PLATFORM, mode: str = PRODUCTION) -> dict:
    """Append each community checkpoint, as cut, to the platform log and sign its new head.

    Pass the platform log's `tree` (any NodeStore) to continue it; without one, a fresh in-memory
    log holds just these checkpoints. Leaf i is the i-th checkpoint appended, in the order given.
    """
    tree = tree if tree is not None else MerkleTree()
    tree.extend([checkpoint_leaf(cp) for cp in community_checkpoints])
    return sign_checkpoint(private_key, platform, tree.size, tree.root(), time, mode=mode)


def verify_platform_inclusion(platform_cp: dict, community_cp: dict, index: int,
                              proof: Iterable[bytes | str], keys: KeyRing | Iterable[Any]) -> bool:
    """Does the signed platform checkpoint commit to this community checkpoint at leaf `index`?"""
    if checkpoint_form_problem(community_cp):
        return False
    return _signed_head_includes(platform_cp, canonical(community_cp), index, proof, keys)


def _signed_head_includes(head: dict, leaf: bytes, index: int, proof: Iterable[bytes | str],
                          keys: KeyRing | Iterable[Any]) -> bool:
    """Does the signed head of a log of logs commit to `leaf` at `index`?"""
    ring = keys if isinstance(keys, KeyRing) else KeyRing(keys)
    if not ring.verifies(head):
        return False
    path = [bytes.fromhex(p) if isinstance(p, str) else p for p in proof]
    return verify_inclusion(leaf_hash(leaf), index, head["size"], path, bytes.fromhex(head["root"]))


# --- the platform log spanning cells --------------------------------------------------------------

def cell_leaf(cell: str, checkpoint: dict) -> bytes:
    """A cell's signed head (a checkpoint of its log of logs, `community` PLATFORM) as a leaf of the
    platform log spanning cells: the head and the cell it is of, so that one cell's head can never
    stand for another's."""
    problem = checkpoint_form_problem(checkpoint)
    if problem:
        raise CheckpointError(problem)
    if checkpoint["community"] != PLATFORM:
        raise CheckpointError(f"a cell's head is a checkpoint of its log of logs ({PLATFORM!r}), "
                              f"not of {checkpoint['community']!r}")
    if not isinstance(cell, str) or not cell:
        raise CheckpointError("a cell's head names its cell")
    return canonical({"kind": CELL_CHECKPOINT, "cell": cell, "checkpoint": checkpoint})


def verify_span_inclusion(span_cp: dict, cell: str, cell_cp: dict, index: int, proof: Iterable[bytes | str],
                          keys: KeyRing | Iterable[Any]) -> bool:
    """Does the signed checkpoint of the platform log spanning cells commit to this cell's head at
    leaf `index`?"""
    if span_cp.get("community") != SPAN:
        return False
    try:
        leaf = cell_leaf(cell, cell_cp)
    except CheckpointError:
        return False
    return _signed_head_includes(span_cp, leaf, index, proof, keys)


# --- the notice board ----------------------------------------------------------------------------

_TRAINING_NOTICE = {
    "zh-CN": "【培训】本公告来自培训部署（演练用的平台），不是正式记录，不能作为任何决定的依据。",
    "en": "TRAINING: this notice comes from a training deployment (a platform for practice); it is not a real "
          "record and decides nothing.",
}
_NOTICE = {
    "zh-CN": ("审计记录公告", "社区：{community}", "记录条数：{size}", "根哈希（SHA-256）：",
              "签署时间（UTC）：{time}", "签名密钥编号：{key_id}",
              "任何人都可下载导出文件和公钥，离线核对此根哈希。"),
    "en": ("Audit record notice", "Community: {community}", "Entries: {size}", "Root hash (SHA-256):",
           "Signed at (UTC): {time}", "Signing key id: {key_id}",
           "Anyone can download the export and the public key and check this root hash offline."),
}


def group_hex(hex_text: str, width: int = 8, per_line: int = 4) -> list[str]:
    blocks = [hex_text[i:i + width] for i in range(0, len(hex_text), width)]
    return [" ".join(blocks[i:i + per_line]) for i in range(0, len(blocks), per_line)]


def notice_text(checkpoint: dict, lang: str = "zh-CN") -> str:
    """A short text for a community notice board; the root is grouped in blocks of 8 hex chars."""
    problem = checkpoint_form_problem(checkpoint)
    if problem:
        raise CheckpointError(problem)
    key = "zh-CN" if lang.lower() in ("zh", "zh-cn", "zh_cn", "zh-hans") else "en" if lang.lower().startswith("en") else None
    if key is None:
        raise ValueError(f"no notice text in {lang!r}; zh-CN and en are available")
    title, community, size, root, time, kid, footer = _NOTICE[key]
    training = [_TRAINING_NOTICE[key]] if statement_mode(checkpoint) == TRAINING else []  # first and last
    lines = training + [title, community.format(community=checkpoint["community"]),
                        size.format(size=checkpoint["size"]), root]
    lines += ["  " + row for row in group_hex(checkpoint["root"])]
    lines += [time.format(time=checkpoint["time"]), kid.format(key_id=checkpoint["key_id"]), footer] + training
    return "\n".join(lines) + "\n"
