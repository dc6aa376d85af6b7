"""What the API and the CLI hand out, each against signed checkpoints and in the forms the offline
verifier reads (`verify.verify_inclusion_bundle`, `verify.verify_consistency_between`,
`checkpoints.verify_platform_inclusion`):

- an inclusion bundle: entries (their stored lines) with their inclusion proofs against one
  checkpoint, optionally a consistency proof from a size the reader already trusts, the key
  rotations, and (added by the service) the free texts with their salts;
- a consistency proof between two checkpoints of one community;
- a platform inclusion proof: a community checkpoint as a leaf of the platform log.
"""
from __future__ import annotations

import json

import sqlalchemy as sa

from services.common.errors import Conflict, InvalidInput, NotFound
from services.contracts.audit import BUNDLE, CONSISTENCY, PLATFORM_INCLUSION  # the kinds the gateway publishes too

from . import checkpointing, log
from .verify import commitments_of

MAX_BUNDLE_ENTRIES = 10_000


def _hexes(proof: list[bytes]) -> list[str]:
    return [h.hex() for h in proof]


def inclusion_bundle(conn: sa.Connection, community: str, indexes: list[int], size: int | None = None,
                     since: int | None = None, *, unsigned: bool = False,
                     uncovered: str = "audit.entry_not_covered_wait") -> dict:
    """Entries `indexes` of the community's log, proven against its checkpoint of `size` entries
    (default: the latest checkpoint). `since`: a size the reader trusts, to relate it to that
    checkpoint with a consistency proof. An entry beyond the checkpoint is refused, or, when
    `unsigned`, carried with no proof (a verifier counts it as unvouched, if at all). `uncovered`:
    the message key of that refusal, which says what the caller can do about it."""
    if not indexes:
        raise NotFound.coded("audit.entries_prove")
    if len(indexes) > MAX_BUNDLE_ENTRIES:
        raise InvalidInput.coded("audit.most_entries_one_bundle", max_bundle_entries=MAX_BUNDLE_ENTRIES)
    checkpoint = checkpointing.latest(conn, community) if size is None else checkpointing.of_size(conn, community, size)[0]
    n = checkpoint["size"]
    beyond = [i for i in indexes if i >= n]
    if beyond and not unsigned:
        raise Conflict.coded(uncovered, beyond=min(beyond), n=n)
    tree = log.tree(conn, community, n)
    lines = log.at(conn, community, indexes)
    bundle = {"kind": BUNDLE, "community": community, "checkpoint": checkpoint,
              "entries": [{"index": i, "line": lines[i], "proof": _hexes(tree.inclusion_proof(i, n)) if i < n else None}
                          for i in sorted(set(indexes))],
              "key_rotations": checkpointing.rotations(conn)}
    if since is not None:
        if not 0 <= since <= n:
            raise InvalidInput.coded("audit.since_size_from_checkpoint", n=n)
        bundle["consistency"] = _hexes(tree.consistency_proof(since, n))
    return bundle


def consistency(conn: sa.Connection, community: str, old_size: int, new_size: int | None = None) -> dict:
    """A consistency proof between the community's checkpoints of `old_size` and `new_size`
    entries (default: the latest)."""
    new = checkpointing.latest(conn, community) if new_size is None else checkpointing.of_size(conn, community, new_size)[0]
    old = checkpointing.of_size(conn, community, old_size)[0]
    if old["size"] > new["size"]:
        raise InvalidInput.coded("audit.old_size_larger_than")
    tree = log.tree(conn, community, new["size"])
    return {"kind": CONSISTENCY, "community": community, "old": old, "new": new,
            "proof": _hexes(tree.consistency_proof(old["size"], new["size"])),
            "key_rotations": checkpointing.rotations(conn)}


def platform_inclusion(conn: sa.Connection, community: str, size: int | None = None) -> dict:
    """The community's checkpoint of `size` (default: the latest) as a leaf of the platform log,
    proven against the latest platform checkpoint."""
    if size is None:
        size = checkpointing.latest(conn, community)["size"]
    checkpoint, index = checkpointing.of_size(conn, community, size)
    platform = checkpointing.platform_latest(conn)
    return {"kind": PLATFORM_INCLUSION, "checkpoint": checkpoint, "index": index, "platform_checkpoint": platform,
            "proof": checkpointing.platform_proof(conn, index, platform["size"]),
            "key_rotations": checkpointing.rotations(conn)}


def spanning(conn: sa.Connection, found: dict, spanned: dict | None) -> dict:
    """A cell's platform inclusion proof (`platform_inclusion`, against the cell's latest head)
    carried on to the platform log spanning the cells: re-proven against the cell's head the
    platform audit witnessed (`spanned`, its span_proof), which adds the proof of that head in the
    spanning log as `span`. None, or a witnessed head older than the proof's, leaves the proof as
    it was with "span": None (the platform audit did not answer, or has not caught up)."""
    if spanned is None or spanned["checkpoint"]["size"] < found["platform_checkpoint"]["size"]:
        return dict(found, span=None)
    size = spanned["checkpoint"]["size"]
    return dict(found, platform_checkpoint=spanned["checkpoint"],
                proof=checkpointing.platform_proof(conn, found["index"], size),
                span={k: spanned[k] for k in ("cell", "index", "span_checkpoint", "proof", "key_rotations")})


def bundle_commitments(bundle: dict) -> dict[str, list[str]]:
    """The commitments a bundle's entries hold, grouped by the source of the entry holding them."""
    out: dict[str, list[str]] = {}
    for item in bundle["entries"]:
        env = json.loads(item["line"])
        out.setdefault(env["source"], []).extend(commitments_of(env["data"]))
    return out
