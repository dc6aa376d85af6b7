"""The one id parser. Ids arrive as text from paths, bodies and other services; one that is not a
UUID cannot name anything that exists, so it is answered as not found (404), never as a crash."""
from __future__ import annotations

import uuid

from .errors import NotFound


def as_uuid(value) -> uuid.UUID | None:
    """`value` as a UUID, or None when it is not one: for a predicate ("is this a person's id or an
    operator's name?") and a lookup that answers "no such thing" in its own words."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def parse_id(value, what: str) -> uuid.UUID:
    """`value` as a UUID; NotFound ("<what> <value> does not exist") when it is not one."""
    parsed = as_uuid(value)
    if parsed is None:
        raise NotFound.coded("common.does_exist", what=what, value=repr(value))
    return parsed
