"""Proposal (提议) routes: draft, submit, screen, support, withdraw, merge, list and search."""
from __future__ import annotations

from services.contracts import proposals
from services.contracts.proposals import BODY_MAX, REASON_MAX, SCOPES, SCREENED, STATUSES, TITLE_MAX

from . import schema as S
from .router import Call, route

TAG = "proposals"
SCREENERS = ("community_worker", "party_lead")
C = "/api/v1/communities/{community}"
P = C + "/proposals/{proposal}"

STRING = {"type": "string"}
MAYBE = {"type": ["string", "null"]}
MAYBE_INT = {"type": ["integer", "null"]}
STATUS = {"type": "string", "enum": [*STATUSES, SCREENED]}
# One proposal as listed: the read model's row, its count in the threshold's unit; null until collection opens
# (unit, threshold, deadline, ...) or while a text is erased (title). The gateway adds `author_name`.
SUMMARY_FIELDS = {
    "id": STRING, "title": MAYBE, "category": STRING, "scope": {"type": "string", "enum": list(SCOPES)},
    "scope_id": STRING, "status": STATUS, "author": STRING, "author_name": MAYBE,
    "supports": {"type": "integer", "minimum": 0}, "unit": MAYBE, "support_per": MAYBE, "threshold": MAYBE_INT,
    "denominator": MAYBE_INT, "deadline": MAYBE, "merged_into": MAYBE, "created_at": STRING, "submitted_at": MAYBE,
    "opened_at": MAYBE, "closed_at": MAYBE}
SUMMARY_REQUIRED = ["id", "category", "scope", "scope_id", "status", "author", "supports", "created_at"]
SUMMARY = {"type": "object", "required": SUMMARY_REQUIRED, "properties": SUMMARY_FIELDS}
HISTORY = {"type": "array", "description": "the proposal's own events, oldest first", "items": {
    "type": "object", "required": ["type", "at", "actor", "version", "data"], "properties": {
        "type": STRING, "at": STRING, "actor": STRING, "actor_name": MAYBE, "version": {"type": "integer"},
        "data": {"type": "object", "additionalProperties": True, "description": "the event's data as recorded"}}}}
VIEW = {"type": "object", "description": "a proposal with its support count, threshold, denominator, deadline, "
                                         "texts (null once erased) and history",
        "required": [*SUMMARY_REQUIRED, "title_commitment", "body_commitment", "supports_residents",
                     "supports_households", "supported_by_me", "history"],
        "properties": dict(
            SUMMARY_FIELDS, body=MAYBE, reason=MAYBE, title_commitment=STRING, body_commitment=STRING,
            threshold_rule={"type": ["object", "null"], "additionalProperties": True,
                            "description": "{unit, count} or {unit, share}, frozen when collection opened"},
            supports_residents={"type": "integer", "minimum": 0}, supports_households={"type": "integer", "minimum": 0},
            supported_by_me={"type": "boolean"}, history=HISTORY)}
COUNT_FIELDS = {"proposal": STRING, "status": STATUS, "supports": {"type": "integer", "minimum": 0},
                "threshold": MAYBE_INT, "unit": MAYBE}
COUNTS = {"type": "object", "required": list(COUNT_FIELDS), "properties": COUNT_FIELDS}
MERGED = {"type": "object", "required": ["merged", "into", "carried", *COUNT_FIELDS],
          "description": "the target's counts after the merge, with how many supports carried over",
          "properties": dict(COUNT_FIELDS, merged=STRING, into=STRING, carried={"type": "integer", "minimum": 0})}
PAGE = {"type": "object", "required": ["total", "items"], "properties": {
    "total": {"type": "integer", "minimum": 0, "description": "how many match, on every page"},
    "items": {"type": "array", "items": SUMMARY}}}
ERASED = {"type": "object", "required": ["erased_texts", "erasure"], "properties": {
    "erased_texts": {"type": "integer", "minimum": 0}, "erasure": {"type": "string", "description": "its record's id"}}}


@route("POST", C + "/proposals", summary="Draft a proposal (any member); free texts stay erasable", tag=TAG,
       status=201, response=VIEW,
       body=S.obj(["title", "body", "category", "scope"], title=S.text(TITLE_MAX), body=S.text(BODY_MAX),
                  category=S.text(40), scope={"type": "string", "enum": list(SCOPES)},
                  scope_id=S.uuid_str(nullable=True)))
def draft(c: Call):
    b = c.body
    return c.send(proposals.Draft(actor=c.actor, community=c.community, title=b["title"], body=b["body"],
                                  category=b["category"], scope=b["scope"], scope_id=b.get("scope_id")))


@route("POST", P + "/submit", summary="Submit one's draft for screening (its author)", tag=TAG, response=VIEW)
def submit(c: Call):
    return c.send(proposals.Submit(actor=c.actor, community=c.community, proposal=c.params["proposal"]))


@route("POST", P + "/screen", summary="Screen and classify a submitted proposal; admissible opens support "
                                      "collection, inadmissible needs a written reason", tag=TAG,
       roles=SCREENERS, response=VIEW,
       body=S.obj(["admissible"], admissible={"type": "boolean"}, reason=S.text(REASON_MAX), category=S.text(40)))
def screen(c: Call):
    b = c.body
    return c.send(proposals.Screen(actor=c.actor, community=c.community, proposal=c.params["proposal"],
                                   admissible=b["admissible"], reason=b.get("reason"), category=b.get("category")))


@route("POST", P + "/supports", summary="Support a proposal (a resident living in its scope, once per "
                                        "resident or household)", tag=TAG, status=201, response=COUNTS)
def support(c: Call):
    return c.send(proposals.Support(actor=c.actor, community=c.community, proposal=c.params["proposal"]))


@route("POST", P + "/supports/withdraw", summary="Withdraw one's support, until the proposal qualifies", tag=TAG,
       response=COUNTS)
def withdraw_support(c: Call):
    return c.send(proposals.WithdrawSupport(actor=c.actor, community=c.community, proposal=c.params["proposal"]))


@route("POST", P + "/withdraw", summary="Withdraw a proposal (its author, before it qualifies)", tag=TAG,
       response=VIEW)
def withdraw(c: Call):
    return c.send(proposals.Withdraw(actor=c.actor, community=c.community, proposal=c.params["proposal"]))


@route("POST", P + "/merge", summary="Merge a duplicate into another proposal; its supports carry over", tag=TAG,
       roles=SCREENERS, response=MERGED, body=S.obj(["into"], into=S.uuid_str()))
def merge(c: Call):
    return c.send(proposals.Merge(actor=c.actor, community=c.community, proposal=c.params["proposal"],
                                  into=c.body["into"]))


@route("GET", C + "/proposals", summary="List, filter and search proposals (support counts from the read model)",
       tag=TAG, query={"status": {"type": "string", "enum": list(STATUSES)},
                       "category": S.text(40), "scope": {"type": "string", "enum": list(SCOPES)},
                       "q": S.text(TITLE_MAX), "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                       "offset": {"type": "integer", "minimum": 0}}, response=PAGE)
def list_proposals(c: Call):
    q = c.query
    return c.send(proposals.ListProposals(viewer=c.actor, community=c.community, status=q.get("status"),
                                          category=q.get("category"), scope=q.get("scope"), q=q.get("q"),
                                          limit=q.get("limit", 50), offset=q.get("offset", 0)))


@route("GET", P, summary="One proposal: texts, support count, threshold, denominator, deadline, history",
       tag=TAG, response=VIEW)
def get_proposal(c: Call):
    return c.send(proposals.GetProposal(viewer=c.actor, community=c.community, proposal=c.params["proposal"]))


@route("POST", C + "/proposals/erasures", summary="Erase a person's proposal texts only (PIPL); hashes stay. Kept "
       "for existing clients: the one request that erases everywhere is POST …/people/{person}/erasure",
       tag=TAG, roles=SCREENERS, response=ERASED, body=S.obj(["person"], person=S.uuid_str()))
def erase(c: Call):
    return c.send(proposals.ErasePerson(actor=c.actor, community=c.community, person=c.body["person"]))
