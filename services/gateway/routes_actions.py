"""Action (行动) routes: plans, tasks, progress with evidence, the result's disclosure, the
residents' evaluation, the progress board and the case file (案卷)."""
from __future__ import annotations

import base64

from services.contracts.actions import (
    COMMENT_MAX, DOWNLOAD, EVIDENCE_TYPES, FUNDING_SOURCES, RATINGS, RESPONSIBLE_KINDS, SCOPES, TEXT_MAX, TITLE_MAX,
)
from services.common import config

from rules.endings import OUTCOMES as CASE_OUTCOMES

from . import schema as S
from .router import Call, Raw, route

TAG = "actions"
MANAGERS = ("community_worker", "party_lead")
C = "/api/v1/communities/{community}"
P = C + "/action-plans/{plan}"
# The configured largest evidence file, base64-encoded, in a small JSON object: a body larger than
# that is refused here already (413); the actions service refuses a file over the limit itself.
EVIDENCE_BODY_MAX = (config.load().evidence_max_bytes + 2) // 3 * 4 + 1024

PLAN = {"type": "object", "description": "a plan with its tasks, progress reports, result and evaluation, "
                                         "texts joined in"}
TASK = {"type": "object", "description": "a task: responsible party, due time, budget, percent done, overdue"}


def _roles(c: Call) -> list[str]:
    return [r["role"] for r in c.principal.get("roles", [])]


@route("POST", C + "/action-plans", summary="Open an action plan directly, with its basis written down (e.g. an "
                                            "emergency repair decided outside the platform's ballot)", tag=TAG,
       roles=MANAGERS, status=201, response=PLAN,
       body=S.obj(["title", "basis", "scope"], title=S.text(TITLE_MAX), basis=S.text(TEXT_MAX),
                  scope={"type": "string", "enum": list(SCOPES)}, scope_id=S.uuid_str(nullable=True),
                  category=S.text(40), case=S.uuid_str(nullable=True)))
def open_plan(c: Call):
    b = c.body
    return c.call("actions", "open_plan", c.actor, _roles(c), c.community, b["title"], b["basis"], b["scope"],
                  b.get("scope_id"), b.get("category"), b.get("case"))


@route("GET", C + "/action-plans", summary="The community's action plans", tag=TAG,
       query={"status": {"type": "string", "enum": ["open", "evaluating", "reopened", "closed"]}})
def list_plans(c: Call):
    return c.call("actions", "list_plans", c.community, c.query.get("status"))


@route("GET", P, summary="One plan: tasks, progress, disclosed result, evaluation", tag=TAG, response=PLAN)
def get_plan(c: Call):
    return c.call("actions", "get_plan", c.community, c.params["plan"])


@route("POST", P + "/tasks", summary="Assign a task: responsible party, due time, optional budget and funding "
                                     "source", tag=TAG, roles=MANAGERS, status=201, response=TASK,
       body=S.obj(["title", "responsible_party", "due_at"], title=S.text(TITLE_MAX),
                  responsible_party=S.obj(["kind"], kind={"type": "string", "enum": list(RESPONSIBLE_KINDS)},
                                          person=S.uuid_str(nullable=True), name=S.text(TITLE_MAX)),
                  due_at=S.when(nullable=False), budget=S.decimal(),
                  funding_source={"type": "string", "enum": list(FUNDING_SOURCES)}))
def assign_task(c: Call):
    b = c.body
    return c.call("actions", "assign_task", c.actor, _roles(c), c.community, c.params["plan"], b["title"],
                  b["responsible_party"], b["due_at"], b.get("budget"), b.get("funding_source"))


@route("POST", P + "/tasks/{task}/progress", summary="Report progress on a task (its responsible party): percent "
                                                     "done, a note, evidence hashes", tag=TAG, status=201,
       response=TASK,
       body=S.obj(["percent"], percent={"type": "integer", "minimum": 0, "maximum": 100}, note=S.text(TEXT_MAX),
                  evidence={"type": "array", "maxItems": 20,
                            "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}))
def report_progress(c: Call):
    b = c.body
    return c.call("actions", "report_progress", c.actor, _roles(c), c.community, c.params["plan"], c.params["task"],
                  b["percent"], b.get("note"), b.get("evidence", []))


@route("POST", P + "/done", summary="Report the plan done: disclose the result (实施结果公开) and open the "
                                    "residents' evaluation", tag=TAG, roles=MANAGERS, response=PLAN,
       body=S.obj(["summary"], summary=S.text(TEXT_MAX)))
def report_done(c: Call):
    return c.call("actions", "report_done", c.actor, _roles(c), c.community, c.params["plan"], c.body["summary"])


@route("POST", P + "/evaluations", summary="Evaluate a done plan (满意度评议): a resident in its scope, within "
                                           "the window; the last rating counts", tag=TAG, status=201,
       body=S.obj(["rating"], rating={"type": "string", "enum": list(RATINGS)}, comment=S.text(COMMENT_MAX)))
def evaluate(c: Call):
    return c.call("actions", "evaluate", c.actor, _roles(c), c.community, c.params["plan"], c.body["rating"],
                  c.body.get("comment"))


@route("GET", P + "/evaluations", summary="A plan's ratings and comments; who gave them is shown to the case's "
                                          "1+2+X body only", tag=TAG,
       response={"type": "object", "description": "ratings of every round, with comments"})
def ratings(c: Call):
    return c.call("actions", "ratings", c.community, c.params["plan"], c.actor, _roles(c))


@route("GET", P + "/evaluations/mine", summary="One's own current rating of a plan", tag=TAG,
       response={"type": ["object", "null"], "description": "the rating of the current round; null before one rates"})
def my_evaluation(c: Call):
    return c.call("actions", "my_evaluation", c.community, c.params["plan"], c.actor)


@route("POST", C + "/evidence", summary="Upload an evidence file (base64 in JSON; at most CONSULT_EVIDENCE_MAX_BYTES, "
       "5 MiB by default: larger is 413 and nothing is kept); stored by its SHA-256", tag=TAG, status=201,
       max_body=EVIDENCE_BODY_MAX,
       body=S.obj(["content_base64"], content_base64={"type": "string", "minLength": 1},
                  media_type={"type": "string", "maxLength": 100}))
def upload_evidence(c: Call):
    return c.call("actions", "upload_evidence", c.actor, _roles(c), c.community, c.body["content_base64"],
                  c.body.get("media_type"))


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110 13.1.2): `*` or a list of entity tags, compared weakly."""
    if not header:
        return False
    tags = [x.strip() for x in header.split(",")]
    return "*" in tags or etag in (t[2:] if t.startswith("W/") else t for t in tags)


@route("GET", C + "/evidence/{sha256}", summary="An evidence file: its bytes, its media type told from the bytes "
       "(JPEG, PNG, WebP, PDF; anything else as a download), an ETag (its SHA-256) and 304 on If-None-Match",
       tag=TAG, produces=tuple(m for m, _, _ in EVIDENCE_TYPES) + (DOWNLOAD[0],))
def get_evidence(c: Call):
    digest = c.params["sha256"]
    etag = f'"{digest}"'  # content-addressed: the hash is the file's one version
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable",
               "X-Content-Type-Options": "nosniff"}
    if _etag_matches(c.headers.get("if-none-match"), etag):
        c.call("actions", "evidence_info", c.community, digest)  # this community's, or 404
        return Raw(304, b"", None, headers)
    found = c.call("actions", "get_evidence", c.community, digest)
    data = base64.b64decode(found["content_base64"])
    disposition = "attachment" if found["media_type"] == DOWNLOAD[0] else "inline"
    headers["Content-Disposition"] = f'{disposition}; filename="{digest}.{found["extension"]}"'
    return Raw(200, data, found["media_type"], headers)


ZONED_TIME = {"type": "string", "maxLength": 40,
              "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
              "description": "an ISO-8601 time with its zone, e.g. 2026-12-01T00:00:00+08:00"}
CLOSING = {"type": "object", "description": "how a case ended: outcome, stage, when, by whom (system for a stage's "
                                            "ending), the reason, and the case a merged proposal continues in"}


@route("GET", C + "/board", summary="The progress board: open cases by stage, overdue tasks, results disclosed, "
                                    "closed cases with their outcome (filtered by outcome and closing time)",
       tag=TAG,
       query={"outcome": {"type": "string", "enum": list(CASE_OUTCOMES)},
              "closed_from": dict(ZONED_TIME, description="closed cases closed at or after this time"),
              "closed_to": dict(ZONED_TIME, description="closed cases closed before this time")})
def board(c: Call):
    q = c.query
    return c.call("actions", "board", c.community, q.get("outcome"), q.get("closed_from"), q.get("closed_to"))


@route("POST", C + "/cases/{case}/closure", summary="Close a case with its reason (the party-committee lead only)",
       tag=TAG, roles=("party_lead",), status=201, response=CLOSING,
       body=S.obj(["reason"], reason=S.text(TEXT_MAX)))
def close_case(c: Call):
    return c.call("actions", "close_case", c.actor, _roles(c), c.community, c.params["case"], c.body["reason"])


@route("GET", C + "/cases/{case}", summary="The case file (案卷): every stage's events of a case in time order, "
                                           "each linked to its audit entry", tag=TAG)
def case_file(c: Call):
    return c.call("actions", "case_file", c.community, c.params["case"], c.actor, _roles(c))
