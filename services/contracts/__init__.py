"""The contracts between services: what one service may know of another.

Besides the `common` plumbing and the pure `rules` package, this is the only thing services share
(`tests/unit/test_import_rules.py` holds them to it). Per source, the contract of every event's
`data` (versioned; which fields are salted commitments), and the constants other services need
(the gateway's enums). The domain modules re-export the constants they own, so nothing else moved.

Each source has a module here (`<source>.py`) whose EVENTS are the `data` of each of its event
types at each version, as its domain records it and its envelope carries it
(`services/common/envelope.py`); its prose is in `prose/<source>.md`.
`docs/events/*.md` are generated from the event contracts (`python -m services.contracts.docs`);
the audit replay reads every event through them (`data`), and the integration runs check every
event their audit logs recorded against them (tests/conftest.py).
"""
from __future__ import annotations

from typing import Any, Mapping

from . import actions, audit, communities, decisions, deliberation, every_service, notifications, proposals  # noqa: F401
from .schema import ContractViolation, Data, EventContract, Field, Registry

SOURCES = (communities, proposals, deliberation, decisions, actions, notifications)


def build() -> Registry:
    registry = Registry()
    for module in SOURCES:
        registry.add(module.SOURCE, module.EVENTS)
    return registry


EVENTS = build()


def problems(envelope: Mapping[str, Any], registry: Registry | None = None) -> list[str]:
    """How an envelope's data departs from its contract (empty: it conforms)."""
    return (registry or EVENTS).problems(envelope)


def validate(envelope: Mapping[str, Any], registry: Registry | None = None) -> Data:
    """An envelope's data, validated in full against its contract and read through it. Raises
    ContractViolation."""
    return (registry or EVENTS).validate(envelope)


def data(envelope: Mapping[str, Any], registry: Registry | None = None) -> Data:
    """An envelope's data read through its contract: a field name the contract does not have
    raises ContractViolation (values are not checked; `validate` does that)."""
    return (registry or EVENTS).read(envelope)


__all__ = ["EVENTS", "ContractViolation", "Data", "EventContract", "Field", "Registry", "data", "problems", "validate"]
