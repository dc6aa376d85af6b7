"""Audit routes: the community's append-only record, its signed checkpoints and the proofs on them.

Community routes are for the community's members (auditors among them) and platform admins; an
inclusion proof carries the texts with their salts only for auditors (and platform admins), since
a member may not read every text (a comment a moderator hid). The platform's public keys and the
platform checkpoints (the log of logs) are public: publishing them widely is what makes a split
view detectable.
"""
from __future__ import annotations

from services.common.config import TRAINING
from services.common.errors import InvalidInput
from services.common.problem_texts import LANGUAGES
from services.contracts import audit

from . import schema as S
from .router import PUBLIC, Call, route

TAG = "audit"
C = "/api/v1/communities/{community}/audit"
AUDITOR = "auditor"

SIZE = {"type": "integer", "minimum": 0}
HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
CHECKPOINT = {
    "type": "object", "description": "a signed checkpoint: Ed25519 over the canonical JSON of every other field",
    "properties": {"kind": {"type": "string", "enum": [audit.CHECKPOINT]}, "community": {"type": "string"},
                   "size": SIZE, "root": HEX, "time": {"type": "string", "format": "date-time"},
                   "key_id": {"type": "string"}, "signature": {"type": "string", "description": "base64"},
                   "mode": {"type": "string", "enum": [TRAINING],
                            "description": "only on a training deployment's statements (signed)"}},
    "required": ["kind", "community", "size", "root", "time", "key_id", "signature"],
}
ROTATION = {"type": "object", "description": "a key rotation statement, signed by the old key",
            "properties": {"kind": {"type": "string", "enum": [audit.KEY_ROTATION]}, "old_key_id": {"type": "string"},
                           "new_key_id": {"type": "string"}, "new_public_key": {"type": "string"},
                           "time": {"type": "string"}, "signature": {"type": "string"},
                           "mode": {"type": "string", "enum": [TRAINING]}}}
ENTRIES = {
    "type": "object", "description": "a page of the log: entries from `from` on, oldest first",
    "properties": {
        "community": {"type": "string"}, "size": {**SIZE, "description": "entries in the whole log"},
        "entries": {"type": "array", "items": {"type": "object", "properties": {
            "index": SIZE, "source": {"type": "string", "description": "the stage service that recorded it"},
            "position": SIZE, "event_id": {"type": "string"}, "type": {"type": "string"},
            "case": {"type": ["string", "null"]}, "occurred_at": {"type": "string"},
            "envelope": {"type": "object", "description": "the event envelope as recorded"},
            "canonical": {"type": "string", "description": "the canonical envelope as hashed"}},
            "required": ["index", "source", "position", "event_id", "type", "occurred_at", "envelope",
                         "canonical"]}}},
    "required": ["community", "size", "entries"],
}
PROOF = {"type": "array", "items": HEX, "description": "RFC 6962 / RFC 9162 audit path, hex"}
BUNDLE = {
    "type": "object", "description": "entries with inclusion proofs against one checkpoint "
                                     "(`consult audit verify-proof` checks it offline)",
    "properties": {"kind": {"type": "string", "enum": [audit.BUNDLE]}, "community": {"type": "string"},
                   "checkpoint": CHECKPOINT,
                   "entries": {"type": "array", "items": {"type": "object", "properties": {
                       "index": SIZE, "line": {"type": "string", "description": "the canonical envelope as hashed"},
                       "proof": PROOF}}},
                   "consistency": PROOF, "key_rotations": {"type": "array", "items": ROTATION},
                   "texts": {"type": "array", "items": {"type": "object"},
                             "description": "texts with salts (auditors only); erased texts say so"}},
}


@route("GET", C + "/entries", summary="Entries of the community's audit log, in order", tag=TAG,
       query={"from": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
              "case": S.uuid_str()}, response=ENTRIES)
def audit_entries(c: Call):
    return c.send(audit.Entries(community=c.community, start=c.query.get("from", 0), limit=c.query.get("limit", 100),
                                case=c.query.get("case")))


@route("GET", C + "/checkpoint", summary="The latest signed checkpoint of the community's log", tag=TAG,
       response=CHECKPOINT)
def latest_checkpoint(c: Call):
    return c.send(audit.Checkpoint(community=c.community))


@route("GET", C + "/checkpoints", summary="Signed checkpoints of the community's log, oldest first", tag=TAG,
       query={"from": SIZE, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
       response={"type": "array", "items": CHECKPOINT})
def checkpoint_history(c: Call):
    return c.send(audit.Checkpoints(community=c.community, start=c.query.get("from", 0),
                                    limit=c.query.get("limit", 100)))


@route("GET", C + "/notice", summary="The latest checkpoint as a printable notice for the notice board", tag=TAG,
       query={"lang": {"type": "string", "enum": list(LANGUAGES)}},
       response={"type": "object", "properties": {"text": {"type": "string"}, "checkpoint": CHECKPOINT}})
def checkpoint_notice(c: Call):
    return c.send(audit.Notice(community=c.community, lang=c.query.get("lang", "zh-CN")))


@route("GET", C + "/proofs/inclusion",
       summary="An entry (by index or by event id) with its inclusion proof against a signed checkpoint "
               "(default the latest; `size` picks an earlier one), and with `since` a consistency proof from "
               "a size you already trust", tag=TAG,
       query={"index": SIZE, "event": S.uuid_str(), "size": SIZE, "since": SIZE}, response=BUNDLE)
def inclusion_proof(c: Call):
    q = c.query
    return c.send(audit.InclusionProof(community=c.community, index=q.get("index"), event=q.get("event"),
                                       size=q.get("size"), since=q.get("since"), texts=c.has_role(AUDITOR)))


@route("GET", C + "/proofs/consistency",
       summary="A consistency proof between the signed checkpoints of two sizes (`to` defaults to the latest)",
       tag=TAG, query={"from": SIZE, "to": SIZE},
       response={"type": "object", "properties": {"kind": {"type": "string", "enum": [audit.CONSISTENCY]},
                                                  "old": CHECKPOINT, "new": CHECKPOINT, "proof": PROOF,
                                                  "key_rotations": {"type": "array", "items": ROTATION}}})
def consistency_proof(c: Call):
    if "from" not in c.query:
        raise InvalidInput.coded("gateway.from_size_older_checkpoint")
    return c.send(audit.ConsistencyProof(community=c.community, old_size=c.query["from"], new_size=c.query.get("to")))


@route("GET", C + "/proofs/platform",
       summary="The community's checkpoint (of `size`, default the latest) as a leaf of the platform log, "
               "proven against the latest platform checkpoint", tag=TAG, query={"size": SIZE},
       response={"type": "object", "properties": {
           "kind": {"type": "string", "enum": [audit.PLATFORM_INCLUSION]}, "checkpoint": CHECKPOINT, "index": SIZE,
           "platform_checkpoint": CHECKPOINT, "proof": PROOF}})
def platform_proof(c: Call):
    return c.send(audit.PlatformProof(community=c.community, size=c.query.get("size")))


@route("GET", "/api/v1/audit/public-keys", summary="The audit signing keys (current and retired) and every "
                                                   "key rotation statement", tag=TAG, roles=PUBLIC,
       response={"type": "object", "properties": {
           "current": {"type": "string"}, "keys": {"type": "array", "items": {"type": "object"}},
           "key_rotations": {"type": "array", "items": ROTATION}}})
def public_keys(c: Call):
    return c.send(audit.PublicKeys())


@route("GET", "/api/v1/audit/platform-checkpoint", summary="The latest platform checkpoint: the signed head of "
                                                           "the log of every community's checkpoints", tag=TAG,
       roles=PUBLIC, response=CHECKPOINT)
def platform_checkpoint(c: Call):
    return c.send(audit.PlatformCheckpoint())


@route("GET", "/api/v1/audit/platform-checkpoints", summary="Platform checkpoints, oldest first", tag=TAG,
       roles=PUBLIC, query={"from": SIZE, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
       response={"type": "array", "items": CHECKPOINT})
def platform_checkpoints(c: Call):
    return c.send(audit.PlatformCheckpoints(start=c.query.get("from", 0), limit=c.query.get("limit", 100)))
