"""The integration event envelope: the contract between services and with auditors.

An envelope is built from one stored event (a notification of the source's log) and is the same
every time it is built, so a republished event is byte-identical: its id is derived from
(aggregate id, version) and its canonical form is strict JSON (sorted keys, UTF-8, no
insignificant whitespace, no floats).
"""
from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

from . import clock
from .canonical import canonical_bytes

SCHEMA = "consult.event/1"
NAMESPACE = uuid.UUID("6f0c2a43-8d64-4d4e-9a53-6a0c8f7e2b10")
_RESERVED = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}


def event_id(aggregate_id: uuid.UUID | str, version: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{aggregate_id}/{version}"))


def to_json_value(value: Any) -> Any:
    """Plain JSON values only: decimals, uuids and times as strings; floats are refused."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not allowed in events; use Decimal")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return clock.format(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_json_value(v) for v in value]
        return sorted(items, key=canonical) if isinstance(value, (set, frozenset)) else items
    if is_dataclass(value):
        return {f.name: to_json_value(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"not serialisable in an event: {type(value).__name__}")


def canonical(obj: Any) -> bytes:
    """Canonical bytes: sorted keys, ',' and ':' separators, UTF-8, no floats.

    For the values envelopes hold (strings, integers within 2**53, booleans, null, objects,
    arrays) this is the same byte sequence as RFC 8785 (JCS).
    """
    return canonical_bytes(to_json_value(obj))


def event_type_name(event_class: type) -> str:
    """'Proposal.Submitted' -> 'ProposalSubmitted' unless the aggregate names its events itself."""
    outer = event_class.__qualname__.split(".")
    if len(outer) >= 2:
        return outer[-1] if _aggregate_of(event_class, outer) else outer[-2] + outer[-1]
    return outer[-1]


def _aggregate_of(event_class: type, parts: list[str]) -> bool:
    import sys

    module = sys.modules.get(event_class.__module__)
    owner = getattr(module, parts[-2], None) if module else None
    return bool(getattr(owner, "EVENT_NAMES_ARE_TYPES", False))


def from_domain_event(source: str, position: int, event: Any) -> dict:
    meta = dict(getattr(event, "meta", None) or {})
    if not meta.get("community"):
        raise ValueError(f"event {type(event).__qualname__} has no community in its meta")
    data = {k: v for k, v in event.__dict__.items() if k not in _RESERVED}
    aggregate_type = type(event).__qualname__.split(".")[0]
    return {
        "schema": SCHEMA,
        "id": event_id(event.originator_id, event.originator_version),
        "source": source,
        "position": position,
        "type": event_type_name(type(event)),
        "event_version": int(getattr(type(event), "class_version", 1)),
        "community": str(meta["community"]),
        "aggregate": {"type": aggregate_type, "id": str(event.originator_id), "version": event.originator_version},
        "occurred_at": clock.format(event.timestamp),
        "actor": str(meta.get("actor") or "system"),
        "case": meta.get("case"),
        "causation": meta.get("causation"),
        "data": to_json_value(data),
    }


def decode(body: bytes | str | dict, upcast: bool = True) -> dict:
    if isinstance(body, dict):
        envelope = body
    else:
        envelope = json.loads(body)
    if envelope.get("schema") != SCHEMA:
        raise ValueError(f"unknown envelope schema: {envelope.get('schema')!r}")
    return upcast_envelope(envelope) if upcast else envelope


# Upcasters: (event type, from version) -> function returning the data of version + 1.
# Old versions are upcast on read, never rewritten in place.
UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {}


def upcaster(event_type: str, from_version: int):
    def register(fn: Callable[[dict], dict]):
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def upcast_envelope(envelope: dict) -> dict:
    version = envelope.get("event_version", 1)
    while (envelope["type"], version) in UPCASTERS:
        envelope = dict(envelope, data=UPCASTERS[(envelope["type"], version)](dict(envelope["data"])))
        version += 1
        envelope["event_version"] = version
    return envelope


def routing_key(envelope: dict, source_key: str | None = None) -> str:
    """`<source>.<type>.<community>`; `source_key` is the source's name on the bus where it is not
    the envelope's own (a stage's log in a cell: bus.source_key)."""
    return f"{source_key or envelope['source']}.{envelope['type']}.{envelope['community']}"


# Free text enters events only as a commitment: hex(SHA-256(salt || UTF-8 text)).
def commit_text(text: str, salt: bytes | None = None) -> tuple[str, str]:
    salt = salt if salt is not None else secrets.token_bytes(16)
    return hashlib.sha256(salt + text.encode("utf-8")).hexdigest(), salt.hex()


def check_commitment(commitment: str, salt_hex: str, text: str) -> bool:
    return hashlib.sha256(bytes.fromhex(salt_hex) + text.encode("utf-8")).hexdigest() == commitment
