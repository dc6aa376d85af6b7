"""Action (行动) routes: plans, tasks, progress with evidence, the result's disclosure, the
residents' evaluation, the progress board and the case file (案卷)."""
from __future__ import annotations

from services.actions.domain import (
    COMMENT_MAX, FUNDING_SOURCES, RATINGS, RESPONSIBLE_KINDS, SCOPES, TEXT_MAX, TITLE_MAX,
)

from . import schema as S
from .router import Call, route

TAG = "actions"
MANAGERS = ("community_worker", "party_lead")
C = "/api/v1/communities/{community}"
P = C + "/action-plans/{plan}"
EVIDENCE_BODY_MAX = 7_100_000  # 5 MiB of file, base64-encoded, in a small JSON object

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


@route("GET", P + "/evaluations/mine", summary="One's own current rating of a plan", tag=TAG)
def my_evaluation(c: Call):
    return c.call("actions", "my_evaluation", c.community, c.params["plan"], c.actor)


@route("POST", C + "/evidence", summary="Upload an evidence file (base64, at most 5 MiB); stored by its SHA-256",
       tag=TAG, status=201, max_body=EVIDENCE_BODY_MAX,
       body=S.obj(["content_base64"], content_base64={"type": "string", "minLength": 1},
                  media_type={"type": "string", "maxLength": 100}))
def upload_evidence(c: Call):
    return c.call("actions", "upload_evidence", c.actor, _roles(c), c.community, c.body["content_base64"],
                  c.body.get("media_type"))


@route("GET", C + "/evidence/{sha256}", summary="An evidence file (base64), checked against its hash", tag=TAG)
def get_evidence(c: Call):
    return c.call("actions", "get_evidence", c.community, c.params["sha256"])


@route("GET", C + "/board", summary="The progress board: open cases by stage, overdue tasks, results disclosed",
       tag=TAG)
def board(c: Call):
    return c.call("actions", "board", c.community)


@route("GET", C + "/cases/{case}", summary="The case file (案卷): every stage's events of a case in time order, "
                                           "each linked to its audit entry", tag=TAG)
def case_file(c: Call):
    return c.call("actions", "case_file", c.community, c.params["case"])
