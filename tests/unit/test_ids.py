"""One id parser (services/common/ids.py): every stage parses ids with it, so a malformed id is the
same 404 everywhere."""
from __future__ import annotations

import uuid

import pytest

from services.actions import application as actions
from services.common.errors import NotFound
from services.common.ids import parse_id
from services.communities import application as communities
from services.decisions import application as decisions
from services.deliberation import application as deliberation
from services.proposals import application as proposals


def test_parse_id():
    u = uuid.uuid4()
    assert parse_id(str(u), "ballot") == u and parse_id(u, "ballot") == u
    for bad in ("nope", None, 12, ""):
        with pytest.raises(NotFound, match="ballot .* does not exist"):
            parse_id(bad, "ballot")


def test_every_stage_uses_it():
    assert actions._id is parse_id and deliberation._id is parse_id and decisions.parse_id is parse_id
    u = uuid.uuid4()
    assert proposals.parse_id(str(u)) == u and communities.parse_uuid(u, "person") == str(u)
    with pytest.raises(NotFound, match="^proposal 'x' does not exist$"):
        proposals.parse_id("x")
    with pytest.raises(NotFound, match="^person 'x' does not exist$"):
        communities.parse_uuid("x", "person")
