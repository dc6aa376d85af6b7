"""Proposal (提议) routes: draft, submit, screen, support, withdraw, merge, list and search."""
from __future__ import annotations

from services.contracts.proposals import BODY_MAX, REASON_MAX, SCOPES, STATUSES, TITLE_MAX

from . import schema as S
from .router import Call, route

TAG = "proposals"
SCREENERS = ("community_worker", "party_lead")
C = "/api/v1/communities/{community}"
P = C + "/proposals/{proposal}"

VIEW = {"type": "object", "description": "a proposal with its support count, threshold, denominator, deadline "
                                         "and (for one proposal) its texts and history"}
COUNTS = {"type": "object", "properties": {
    "proposal": {"type": "string"}, "status": {"type": "string"}, "supports": {"type": "integer"},
    "threshold": {"type": "integer"}, "unit": {"type": "string"}}}


@route("POST", C + "/proposals", summary="Draft a proposal (any member); free texts stay erasable", tag=TAG,
       status=201, response=VIEW,
       body=S.obj(["title", "body", "category", "scope"], title=S.text(TITLE_MAX), body=S.text(BODY_MAX),
                  category=S.text(40), scope={"type": "string", "enum": list(SCOPES)},
                  scope_id=S.uuid_str(nullable=True)))
def draft(c: Call):
    b = c.body
    return c.call("proposals", "draft", c.actor, c.community, b["title"], b["body"], b["category"], b["scope"],
                  b.get("scope_id"))


@route("POST", P + "/submit", summary="Submit one's draft for screening (its author)", tag=TAG, response=VIEW)
def submit(c: Call):
    return c.call("proposals", "submit", c.actor, c.community, c.params["proposal"])


@route("POST", P + "/screen", summary="Screen and classify a submitted proposal; admissible opens support "
                                      "collection, inadmissible needs a written reason", tag=TAG,
       roles=SCREENERS, response=VIEW,
       body=S.obj(["admissible"], admissible={"type": "boolean"}, reason=S.text(REASON_MAX), category=S.text(40)))
def screen(c: Call):
    b = c.body
    return c.call("proposals", "screen", c.actor, c.community, c.params["proposal"], b["admissible"],
                  b.get("reason"), b.get("category"))


@route("POST", P + "/supports", summary="Support a proposal (a resident living in its scope, once per "
                                        "resident or household)", tag=TAG, status=201, response=COUNTS)
def support(c: Call):
    return c.call("proposals", "support", c.actor, c.community, c.params["proposal"])


@route("POST", P + "/supports/withdraw", summary="Withdraw one's support, until the proposal qualifies", tag=TAG,
       response=COUNTS)
def withdraw_support(c: Call):
    return c.call("proposals", "withdraw_support", c.actor, c.community, c.params["proposal"])


@route("POST", P + "/withdraw", summary="Withdraw a proposal (its author, before it qualifies)", tag=TAG,
       response=VIEW)
def withdraw(c: Call):
    return c.call("proposals", "withdraw", c.actor, c.community, c.params["proposal"])


@route("POST", P + "/merge", summary="Merge a duplicate into another proposal; its supports carry over", tag=TAG,
       roles=SCREENERS, body=S.obj(["into"], into=S.uuid_str()))
def merge(c: Call):
    return c.call("proposals", "merge", c.actor, c.community, c.params["proposal"], c.body["into"])


@route("GET", C + "/proposals", summary="List, filter and search proposals (support counts from the read model)",
       tag=TAG, query={"status": {"type": "string", "enum": list(STATUSES)},
                       "category": S.text(40), "scope": {"type": "string", "enum": list(SCOPES)},
                       "q": S.text(TITLE_MAX), "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                       "offset": {"type": "integer", "minimum": 0}})
def list_proposals(c: Call):
    q = c.query
    return c.call("proposals", "list_proposals", c.actor, c.community, q.get("status"), q.get("category"),
                  q.get("scope"), q.get("q"), q.get("limit", 50), q.get("offset", 0))


@route("GET", P, summary="One proposal: texts, support count, threshold, denominator, deadline, history",
       tag=TAG, response=VIEW)
def get_proposal(c: Call):
    return c.call("proposals", "get_proposal", c.actor, c.community, c.params["proposal"])


@route("POST", C + "/proposals/erasures", summary="Erase a person's proposal texts only (PIPL); hashes stay. Kept for existing "
       "clients: the one request that erases everywhere is POST …/people/{person}/erasure",
       tag=TAG, roles=SCREENERS, body=S.obj(["person"], person=S.uuid_str()))
def erase(c: Call):
    return c.call("proposals", "erase_person", c.actor, c.community, c.body["person"])
