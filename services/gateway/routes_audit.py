"""Audit routes: the community's append-only record."""
from __future__ import annotations

from . import schema as S
from .router import Call, route

C = "/api/v1/communities/{community}"


@route("GET", C + "/audit/entries", summary="Entries of the community's audit log, in order", tag="audit",
       query={"from": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
              "case": S.uuid_str()})
def audit_entries(c: Call):
    return c.call("audit", "entries", c.community, c.query.get("from", 0), c.query.get("limit", 100),
                  c.query.get("case"))
