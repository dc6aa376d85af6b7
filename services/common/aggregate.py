"""Base aggregate: every event carries who acted, in which community and case, and why.

The application sets a command context (actor, community, case, causation); each event an
aggregate triggers copies it into `meta`, and its timestamp comes from the one clock.
"""
from __future__ import annotations

import contextvars
import uuid
from contextlib import contextmanager
from typing import Any

from eventsourcing.domain import Aggregate as _EsAggregate

from . import clock

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("consult_command", default=None)
SELF = "__self__"  # case = the aggregate being created (a proposal opens its own case)


@contextmanager
def command_context(*, community: str, actor: str, case: str | None = None, causation: str | None = None):
    token = _context.set(
        {"community": str(community), "actor": str(actor), "case": case, "causation": causation}
    )
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict:
    ctx = _context.get()
    if ctx is None:
        raise RuntimeError("an event was triggered outside a command context")
    return ctx


def derived_id(*parts: Any) -> uuid.UUID:
    """A deterministic aggregate id (UUIDv5), so a concurrent duplicate fails on its version."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "consult:" + "/".join(str(p) for p in parts))


class Aggregate(_EsAggregate):
    class Event(_EsAggregate.Event):
        meta: dict

        @staticmethod
        def create_timestamp():
            return clock.now()

    class Created(Event, _EsAggregate.Created):
        pass

    def trigger_event(self, event_class, **kwargs):
        if "meta" not in kwargs:
            meta = dict(current_context())
            if meta.get("case") in (None, SELF):
                meta["case"] = getattr(self, "case", None)
            kwargs["meta"] = meta
        return super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class, *, id=None, **kwargs):  # noqa: A002
        if id is None:
            id = uuid.uuid4()  # noqa: A001
        if "meta" not in kwargs:
            meta = dict(current_context())
            if meta.get("case") == SELF:
                meta["case"] = str(id)
            kwargs["meta"] = meta
        return super()._create(event_class, id=id, **kwargs)
