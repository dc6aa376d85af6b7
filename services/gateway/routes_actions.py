"""Action (行动) routes: plans, tasks, progress with evidence, the result's disclosure, the
residents' evaluation, the progress board and the case file (案卷)."""
from __future__ import annotations

import base64

from services.contracts import actions
from services.contracts.actions import (
    CASE_STATUSES, COMMENT_MAX, DOWNLOAD, EVALUATION_OUTCOMES, EVIDENCE_TYPES, FUNDING_SOURCES, PLAN_STATUSES, RATINGS,
    RESPONSIBLE_KINDS, SCOPES, TASK_STATUSES, TEXT_MAX, TITLE_MAX,
)
from services.common import config

from rules.endings import OUTCOMES as CASE_OUTCOMES, STAGES as CASE_STAGES

from . import schema as S
from .router import Call, Raw, route

TAG = "actions"
MANAGERS = ("community_worker", "party_lead")
C = "/api/v1/communities/{community}"
P = C + "/action-plans/{plan}"
# The configured largest evidence file, base64-encoded, in a small JSON object: a body larger than
# that is refused here already (413); the actions service refuses a file over the limit itself.
EVIDENCE_BODY_MAX = (config.load().evidence_max_bytes + 2) // 3 * 4 + 1024

# ---- what the routes answer (services/actions/application.py: plan_view, task_view, board, case_file, ...). A
# text is null once erased (or while its stage is down); the gateway adds `<key>_name` beside person ids.
STRING = {"type": "string"}
MAYBE = {"type": ["string", "null"]}
MAYBE_INT = {"type": ["integer", "null"]}
COUNT = {"type": "integer", "minimum": 0}
PLAN_STATUS = {"type": "string", "enum": list(PLAN_STATUSES)}
RATING = {"type": "string", "enum": list(RATINGS)}
PARTY = {"type": "object", "required": ["kind"], "properties": {
    "kind": {"type": "string", "enum": list(RESPONSIBLE_KINDS)}, "person": MAYBE, "person_name": MAYBE,
    "name": MAYBE, "name_commitment": STRING}}
TASK_FIELDS = {
    "task": STRING, "plan": STRING, "title": MAYBE, "title_commitment": STRING, "responsible_party": PARTY,
    "due_at": STRING, "budget": dict(MAYBE, description="yuan, a decimal"), "funding_source": MAYBE,
    "percent": {"type": "integer", "minimum": 0, "maximum": 100},
    "status": {"type": "string", "enum": list(TASK_STATUSES)}, "overdue": {"type": "boolean"},
    "completed_at": MAYBE}
TASK_REQUIRED = ["task", "plan", "responsible_party", "due_at", "percent", "status", "overdue"]
TASK = {"type": "object", "description": "a task: responsible party, due time, budget, percent done, overdue",
        "required": TASK_REQUIRED, "properties": TASK_FIELDS}
JUDGED = {"type": ["object", "null"], "description": "the last closed evaluation round (EvaluationClosed's data)",
          "properties": {
              "round": {"type": "integer"}, "counts": {"type": "object", "additionalProperties": COUNT},
              "respondents": COUNT, "denominator": COUNT, "unsatisfied_share": STRING, "threshold": STRING,
              "outcome": {"type": "string", "enum": list(EVALUATION_OUTCOMES)}, "response_share": MAYBE,
              "response_share_met": {"type": ["boolean", "null"]}, "min_response_share": MAYBE}}
# What a plan carries out: the adopted option and the resolution (ballot) it comes from, when there is one.
DECIDED_FIELDS = {
    "adopted_option": {"type": ["object", "null"], "properties": {
        "id": MAYBE, "title": MAYBE, "title_commitment": MAYBE}},
    "ballot": MAYBE, "resolution": dict(MAYBE, description="the ballot's path in this API")}
PLAN_ROW_FIELDS = {
    "plan": STRING, "case": STRING, "title": MAYBE, "basis": {"type": "string", "description": (
        "resolution, emergency, agreement or direct")}, "status": PLAN_STATUS, "scope": STRING, "scope_id": MAYBE,
    "opened_at": STRING, **DECIDED_FIELDS}
PLAN_ROW = {"type": "object", "required": ["plan", "case", "basis", "status", "scope", "opened_at"],
            "properties": PLAN_ROW_FIELDS}
PROGRESS = {"type": "object", "required": ["task", "percent", "evidence", "reporter", "reported_at"], "properties": {
    "task": STRING, "percent": {"type": "integer"}, "note": MAYBE,
    "evidence": {"type": "array", "items": STRING, "description": "SHA-256 hashes of evidence files"},
    "reporter": STRING, "reporter_name": MAYBE, "reported_at": STRING}}
PLAN = {"type": "object", "description": "a plan with its tasks, progress reports, result and evaluation, "
                                         "texts joined in",
        "required": [*PLAN_ROW["required"], "tasks", "progress", "evaluation"],
        "properties": dict(
            PLAN_ROW_FIELDS, basis_text=MAYBE, title_commitment=MAYBE, category=MAYBE, done_at=MAYBE,
            result=dict(MAYBE, description="the disclosed result (实施结果公开)"),
            tasks={"type": "array", "items": TASK}, progress={"type": "array", "items": PROGRESS},
            evaluation={"type": ["object", "null"], "description": "the current round (null before the first)",
                        "properties": {"round": {"type": "integer"}, "closes_at": MAYBE, "denominator": MAYBE_INT,
                                       "threshold": MAYBE, "counts": {"type": "object", "additionalProperties": COUNT},
                                       "closed": JUDGED}})}
EVALUATION = {"type": "object", "required": ["plan", "round", "rating"], "properties": {
    "plan": STRING, "round": {"type": "integer"}, "person": STRING, "person_name": MAYBE, "rating": RATING,
    "comment": MAYBE}}
RATINGS_VIEW = {"type": "object", "required": ["plan", "round", "identities_shown", "ratings"], "properties": {
    "plan": STRING, "round": {"type": "integer"}, "identities_shown": {"type": "boolean"},
    "ratings": {"type": "array", "description": "ratings of every round, with comments; `person` only to the "
                                               "case's 1+2+X body",
                "items": {"type": "object", "required": ["round", "rating", "given_at"], "properties": {
                    "round": {"type": "integer"}, "rating": RATING, "comment": MAYBE, "comment_commitment": MAYBE,
                    "given_at": STRING, "person": STRING, "person_name": MAYBE}}}}}
EVIDENCE = {"type": "object", "required": ["sha256", "size", "media_type"], "properties": {
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "size": COUNT,
    "media_type": {"type": "string", "description": "as told from the bytes"}}}


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
    return c.send(actions.OpenPlan(actor=c.actor, roles=_roles(c), community=c.community, title=b["title"],
                                   basis=b["basis"], scope=b["scope"], scope_id=b.get("scope_id"),
                                   category=b.get("category"), case=b.get("case")))


@route("GET", C + "/action-plans", summary="The community's action plans", tag=TAG,
       query={"status": {"type": "string", "enum": list(PLAN_STATUSES)}},
       response={"type": "array", "items": PLAN_ROW})
def list_plans(c: Call):
    return c.send(actions.ListPlans(community=c.community, status=c.query.get("status")))


@route("GET", P, summary="One plan: tasks, progress, disclosed result, evaluation", tag=TAG, response=PLAN)
def get_plan(c: Call):
    return c.send(actions.GetPlan(community=c.community, plan=c.params["plan"]))


@route("POST", P + "/tasks", summary="Assign a task: responsible party, due time, optional budget and funding "
                                     "source", tag=TAG, roles=MANAGERS, status=201, response=TASK,
       body=S.obj(["title", "responsible_party", "due_at"], title=S.text(TITLE_MAX),
                  responsible_party=S.obj(["kind"], kind={"type": "string", "enum": list(RESPONSIBLE_KINDS)},
                                          person=S.uuid_str(nullable=True), name=S.text(TITLE_MAX)),
                  due_at=S.when(nullable=False), budget=S.decimal(),
                  funding_source={"type": "string", "enum": list(FUNDING_SOURCES)}))
def assign_task(c: Call):
    b = c.body
    return c.send(actions.AssignTask(actor=c.actor, roles=_roles(c), community=c.community, plan=c.params["plan"],
                                     title=b["title"], responsible_party=b["responsible_party"], due_at=b["due_at"],
                                     budget=b.get("budget"), funding_source=b.get("funding_source")))


@route("POST", P + "/tasks/{task}/progress", summary="Report progress on a task (its responsible party): percent "
                                                     "done, a note, evidence hashes", tag=TAG, status=201,
       response=TASK,
       body=S.obj(["percent"], percent={"type": "integer", "minimum": 0, "maximum": 100}, note=S.text(TEXT_MAX),
                  evidence={"type": "array", "maxItems": 20,
                            "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}))
def report_progress(c: Call):
    b = c.body
    return c.send(actions.ReportProgress(actor=c.actor, roles=_roles(c), community=c.community,
                                         plan=c.params["plan"], task=c.params["task"], percent=b["percent"],
                                         note=b.get("note"), evidence=b.get("evidence", [])))


@route("POST", P + "/done", summary="Report the plan done: disclose the result (实施结果公开) and open the "
                                    "residents' evaluation", tag=TAG, roles=MANAGERS, response=PLAN,
       body=S.obj(["summary"], summary=S.text(TEXT_MAX)))
def report_done(c: Call):
    return c.send(actions.ReportDone(actor=c.actor, roles=_roles(c), community=c.community, plan=c.params["plan"],
                                     summary=c.body["summary"]))


@route("POST", P + "/evaluations", summary="Evaluate a done plan (满意度评议): a resident in its scope, within "
                                           "the window; the last rating counts", tag=TAG, status=201,
       body=S.obj(["rating"], rating={"type": "string", "enum": list(RATINGS)}, comment=S.text(COMMENT_MAX)),
       response=EVALUATION)
def evaluate(c: Call):
    return c.send(actions.Evaluate(actor=c.actor, roles=_roles(c), community=c.community, plan=c.params["plan"],
                                   rating=c.body["rating"], comment=c.body.get("comment")))


@route("GET", P + "/evaluations", summary="A plan's ratings and comments; who gave them is shown to the case's "
                                          "1+2+X body only", tag=TAG,
       response=RATINGS_VIEW)
def ratings(c: Call):
    return c.send(actions.Ratings(community=c.community, plan=c.params["plan"], actor=c.actor, roles=_roles(c)))


@route("GET", P + "/evaluations/mine", summary="One's own current rating of a plan", tag=TAG,
       response={"type": ["object", "null"], "description": "the rating of the current round; null before one rates",
                 "properties": {"plan": STRING, "round": {"type": "integer"}, "rating": RATING, "comment": MAYBE}})
def my_evaluation(c: Call):
    return c.send(actions.MyEvaluation(community=c.community, plan=c.params["plan"], person=c.actor))


@route("POST", C + "/evidence", summary="Upload an evidence file (base64 in JSON; at most CONSULT_EVIDENCE_MAX_BYTES, "
       "5 MiB by default: larger is 413 and nothing is kept); stored by its SHA-256", tag=TAG, status=201,
       max_body=EVIDENCE_BODY_MAX,
       body=S.obj(["content_base64"], content_base64={"type": "string", "minLength": 1},
                  media_type={"type": "string", "maxLength": 100}), response=EVIDENCE)
def upload_evidence(c: Call):
    return c.send(actions.UploadEvidence(actor=c.actor, roles=_roles(c), community=c.community,
                                         content_base64=c.body["content_base64"],
                                         media_type=c.body.get("media_type")))


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
        c.send(actions.EvidenceInfo(community=c.community, sha256=digest))  # this community's, or 404
        return Raw(304, b"", None, headers)
    found = c.send(actions.GetEvidence(community=c.community, sha256=digest))
    data = base64.b64decode(found["content_base64"])
    disposition = "attachment" if found["media_type"] == DOWNLOAD[0] else "inline"
    headers["Content-Disposition"] = f'{disposition}; filename="{digest}.{found["extension"]}"'
    return Raw(200, data, found["media_type"], headers)


ZONED_TIME = {"type": "string", "maxLength": 40,
              "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
              "description": "an ISO-8601 time with its zone, e.g. 2026-12-01T00:00:00+08:00"}
CLOSING_FIELDS = {
    "outcome": {"type": "string", "enum": list(CASE_OUTCOMES)}, "stage": STRING, "closed_at": STRING,
    "closed_by": dict(MAYBE, description="who closed it: system for a stage's ending"),
    "merged_into": dict(MAYBE, description="the case a merged proposal continues in"), "reason": MAYBE}
CLOSING = {"type": "object", "description": "how a case ended: outcome, stage, when, by whom (system for a stage's "
                                            "ending), the reason, and the case a merged proposal continues in",
           "required": ["case", "outcome", "stage", "closed_at"],
           "properties": dict(CLOSING_FIELDS, case=STRING, plan=MAYBE, reason_commitment=MAYBE)}
OPEN_CASE_FIELDS = {"case": STRING, "title": MAYBE, "title_commitment": MAYBE, "category": MAYBE, "scope": MAYBE,
                    "scope_id": MAYBE, "since": STRING, "follow_up_of": MAYBE}
OPEN_CASE = {"type": "object", "required": ["case", "since"], "description": "an open case; in the action stage "
             "with its plan, status, tasks done of tasks and the follow-up cases its reopened plan opened",
             "properties": dict(OPEN_CASE_FIELDS, plan=STRING, status=PLAN_STATUS, tasks_done=COUNT, tasks=COUNT,
                                follow_ups={"type": "array", "items": {"type": "object", "required": ["case", "stage"],
                                                                       "properties": dict(OPEN_CASE_FIELDS,
                                                                                          stage=STRING)}})}
BOARD = {"type": "object", "required": ["community", "at", "open_cases", "overdue_tasks", "results", "closed_cases"],
         "properties": {
             "community": STRING, "at": STRING,
             "open_cases": {"type": "object", "description": "open cases by the stage they are in",
                            "properties": {stage: {"type": "array", "items": OPEN_CASE} for stage in CASE_STAGES}},
             "overdue_tasks": {"type": "array", "items": dict(TASK, properties=dict(TASK_FIELDS, case=STRING))},
             "results": {"type": "array", "description": "results disclosed, latest first, with their evaluation",
                         "items": {"type": "object", "required": ["case", "plan", "disclosed_at", "round", "status"],
                                   "properties": dict(DECIDED_FIELDS, case=STRING, plan=STRING, title=MAYBE,
                                                      result=MAYBE, disclosed_at=STRING, round={"type": "integer"},
                                                      status=PLAN_STATUS, evaluation_closes_at=MAYBE,
                                                      evaluation=JUDGED)}},
             "closed_cases": {"type": "array", "items": dict(CLOSING, properties=dict(
                 CLOSING["properties"], title=MAYBE, title_commitment=MAYBE))}}}
CASE_ITEM = {"type": "object", "required": ["case", "audit", "event_id", "source", "stage", "type", "occurred_at",
                                            "data", "texts"],
             "properties": {
                 "case": STRING, "audit": {"type": "object", "required": ["index", "href"], "properties": {
                     "index": COUNT, "href": dict(STRING, description="the audit entry in this API")}},
                 "event_id": STRING, "source": STRING, "stage": STRING, "type": STRING, "occurred_at": STRING,
                 "actor": dict(MAYBE, description="null on a rating shown outside the case's body"),
                 "actor_name": MAYBE, "aggregate": {"type": "object", "properties": {
                     "type": MAYBE, "id": MAYBE, "version": {"type": "integer"}}},
                 "causation": MAYBE, "data": {"type": "object", "additionalProperties": True,
                                              "description": "the event's data as recorded"},
                 "texts": {"type": "object", "additionalProperties": STRING,
                           "description": "the readable texts of the data's commitments, by commitment"}}}
CASE_FILE = {"type": "object", "required": ["case", "community", "stages", "status", "items"], "properties": {
    "case": STRING, "community": STRING, "stages": {"type": "array", "items": STRING}, "plan": MAYBE,
    "status": {"type": "string", "enum": list(CASE_STATUSES)}, "outcome": MAYBE,
    "closing": dict(CLOSING, type=["object", "null"], required=["outcome", "stage", "closed_at"],
                    properties=CLOSING_FIELDS),
    "follow_ups": {"type": "array", "items": STRING}, "follow_up_of": MAYBE,
    "notices": dict(COUNT, description="proofs of notice of the case, left in the audit log"),
    "items": {"type": "array", "items": CASE_ITEM}}}


@route("GET", C + "/board", summary="The progress board: open cases by stage, overdue tasks, results disclosed, "
                                    "closed cases with their outcome (filtered by outcome and closing time)",
       tag=TAG,
       query={"outcome": {"type": "string", "enum": list(CASE_OUTCOMES)},
              "closed_from": dict(ZONED_TIME, description="closed cases closed at or after this time"),
              "closed_to": dict(ZONED_TIME, description="closed cases closed before this time")}, response=BOARD)
def board(c: Call):
    q = c.query
    return c.send(actions.Board(community=c.community, outcome=q.get("outcome"), closed_from=q.get("closed_from"),
                                closed_to=q.get("closed_to")))


@route("POST", C + "/cases/{case}/closure", summary="Close a case with its reason (the party-committee lead only)",
       tag=TAG, roles=("party_lead",), status=201, response=CLOSING,
       body=S.obj(["reason"], reason=S.text(TEXT_MAX)))
def close_case(c: Call):
    return c.send(actions.CloseCase(actor=c.actor, roles=_roles(c), community=c.community, case=c.params["case"],
                                    reason=c.body["reason"]))


@route("GET", C + "/cases/{case}", summary="The case file (案卷): every stage's events of a case in time order, "
                                           "each linked to its audit entry", tag=TAG, response=CASE_FILE)
def case_file(c: Call):
    return c.send(actions.CaseFile(community=c.community, case=c.params["case"], actor=c.actor, roles=_roles(c)))
