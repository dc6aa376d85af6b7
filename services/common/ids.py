"""The one id parser. Ids arrive as text from paths, bodies and other services; one that is not a
UUID cannot name anything that exists, so it is answered as not found (404), never as a crash."""
from __future__ import annotations

import uuid

from .errors import NotFound


def parse_id(value, what: str) -> uuid.UUID:
    """`value` as a UUID; NotFound ("<what> <value> does not exist") when it is not one."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound.coded("common.does_exist", what=what, value=repr(value)) from None
