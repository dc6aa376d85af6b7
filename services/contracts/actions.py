"""Event contracts of the `actions` source: 行动 action plans, evaluations and case closures.

Prose: `services/contracts/prose/actions.md`; the generated page: `docs/events/actions.md`.
"""
from __future__ import annotations

from .calls import RpcCall, rpc_call
from .communities import SCOPES  # noqa: F401 - the gateway reads them here
from .erasure import PERSON_TEXTS_ERASED
from .schema import event, f

# What the gateway validates (services/actions/domain.py re-exports them).
RESPONSIBLE_KINDS = ("property_company", "community_committee", "volunteer_team", "grid_leader", "contractor")
FUNDING_SOURCES = ("maintenance_fund", "public_service_fund", "government", "property_company", "owners",
                   "donation", "other")
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
# A plan's statuses: open; evaluating once reported done; then closed, or reopened by an unsatisfied evaluation.
OPEN, EVALUATING, REOPENED, CLOSED = "open", "evaluating", "reopened", "closed"
PLAN_STATUSES = (OPEN, EVALUATING, REOPENED, CLOSED)
TASK_OPEN, TASK_COMPLETED = "open", "completed"
TASK_STATUSES = (TASK_OPEN, TASK_COMPLETED)  # a task's statuses
# How an evaluation round is judged (rules.evaluation's outcomes; EvaluationClosed's `outcome`).
EVALUATION_OUTCOMES = ("accepted", "extended", "reopened")
CASE_STATUSES = ("open", "closed")  # a case file's status: closed once its CaseClosed is recorded
TITLE_MAX, TEXT_MAX, COMMENT_MAX = 200, 5000, 1000  # characters of a title, a report or summary, a comment

# The media types an evidence file is served as, told from its first bytes (never from what the
# uploader declared): a photo or a scanned invoice. Anything else is served as a download
# (application/octet-stream, attachment), so a browser never renders it in the platform's origin.
EVIDENCE_TYPES = (  # (media type, file extension, test on the bytes)
    ("image/jpeg", "jpg", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("image/png", "png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image/webp", "webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("application/pdf", "pdf", lambda b: b[:5] == b"%PDF-"),
)
DOWNLOAD = ("application/octet-stream", "bin")


def sniff(data: bytes) -> tuple[str, str]:
    """(media type, extension) of an evidence file from its bytes, against the allow-list."""
    for media_type, extension, looks in EVIDENCE_TYPES:
        if looks(data):
            return media_type, extension
    return DOWNLOAD

SOURCE = "actions"

EVENTS = (
    event("ActionPlanOpened", "ActionPlan", 1, f("plan", "str"), f("community", "str"), f("case", "str"),
          f("basis", "str"), f("basis_commitment", "commitment?"), f("scope", "str"), f("scope_id", "str?"),
          f("category", "str?"), f("title_commitment", "commitment?"), f("ballot", "str?"),
          f("consultation", "str?"), f("proposal", "str?"), f("option", "object?")),
    event("TaskAssigned", "ActionPlan", 1, f("task", "str"), f("title_commitment", "commitment"),
          f("responsible_party", "object"), f("due_at", "str"), f("budget", "str?"), f("funding_source", "str?")),
    event("ProgressReported", "ActionPlan", 1, f("task", "str"), f("percent", "int"),
          f("note_commitment", "commitment?"), f("evidence", "array")),
    event("TaskCompleted", "ActionPlan", 1, f("task", "str"), f("late", "bool")),
    event("TaskOverdue", "ActionPlan", 1, f("task", "str"), f("due_at", "str"), f("percent", "int")),
    event("PlanReportedDone", "ActionPlan", 1, f("round", "int")),
    event("ResultDisclosed", "ActionPlan", 1, f("round", "int"), f("summary_commitment", "commitment")),
    event("EvaluationOpened", "ActionPlan", 1, f("round", "int"), f("opens_at", "str"), f("closes_at", "str"),
          f("window_days", "int"), f("threshold", "str"), f("denominator", "int"), f("residents", "array"),
          f("min_response_share", "str?", required=False)),
    event("EvaluationExtended", "ActionPlan", 1, f("round", "int"), f("closes_at", "str"), f("counts", "object"),
          f("respondents", "int"), f("denominator", "int"), f("response_share", "str"),
          f("min_response_share", "str")),
    event("EvaluationClosed", "ActionPlan", 1, f("round", "int"), f("counts", "object"), f("respondents", "int"),
          f("denominator", "int"), f("unsatisfied_share", "str"), f("threshold", "str"), f("outcome", "str"),
          f("response_share", "str?", required=False), f("response_share_met", "bool?", required=False),
          f("min_response_share", "str?", required=False)),
    event("PlanReopened", "ActionPlan", 1, f("round", "int")),
    event("FollowUpRequested", "ActionPlan", 1, f("original_case", "str"), f("plan", "str"), f("round", "int"),
          f("scope", "str"), f("scope_id", "str?"), f("category", "str?"), f("title_commitment", "commitment?"),
          f("unsatisfied_share", "str"), f("threshold", "str"),
          f("unsatisfied_comment_commitments", "commitments?", required=False)),
    event("EvaluationGiven", "Evaluation", 1, f("community", "str"), f("case", "str"), f("plan", "str"),
          f("round", "int"), f("person", "str"), f("rating", "str"), f("comment_commitment", "commitment?")),
    event("EvaluationChanged", "Evaluation", 1, f("rating", "str"), f("comment_commitment", "commitment?")),
    event("CaseClosed", "CaseClosure", 1, f("community", "str"), f("case", "str"), f("outcome", "str"),
          f("stage", "str"), f("reason_commitment", "commitment?"), f("result", "object?"), f("plan", "str?"),
          f("merged_into", "str?", required=False)),
    PERSON_TEXTS_ERASED,  # its part of an erasure request (services/common/erasure.py)
)


# ---- calls: the actions service's RPC methods, by their arguments' names (calls.py) ---------------------
@rpc_call(SOURCE, "open_plan")
class OpenPlan(RpcCall):
    actor: str
    roles: list[str]
    community: str
    title: str
    basis: str
    scope: str
    scope_id: str | None = None
    category: str | None = None
    case: str | None = None


@rpc_call(SOURCE, "assign_task")
class AssignTask(RpcCall):
    actor: str
    roles: list[str]
    community: str
    plan: str
    title: str
    responsible_party: dict
    due_at: str
    budget: str | None = None
    funding_source: str | None = None


@rpc_call(SOURCE, "report_progress")
class ReportProgress(RpcCall):
    actor: str
    roles: list[str]
    community: str
    plan: str
    task: str
    percent: int
    note: str | None = None
    evidence: list[str] | None = None


@rpc_call(SOURCE, "upload_evidence")
class UploadEvidence(RpcCall):
    actor: str
    roles: list[str]
    community: str
    content_base64: str
    media_type: str | None = None


@rpc_call(SOURCE, "get_evidence")
class GetEvidence(RpcCall):
    community: str
    sha256: str


@rpc_call(SOURCE, "evidence_info")
class EvidenceInfo(RpcCall):
    community: str
    sha256: str


@rpc_call(SOURCE, "report_done")
class ReportDone(RpcCall):
    actor: str
    roles: list[str]
    community: str
    plan: str
    summary: str


@rpc_call(SOURCE, "evaluate")
class Evaluate(RpcCall):
    actor: str
    roles: list[str]
    community: str
    plan: str
    rating: str
    comment: str | None = None


@rpc_call(SOURCE, "get_plan")
class GetPlan(RpcCall):
    community: str
    plan: str


@rpc_call(SOURCE, "list_plans")
class ListPlans(RpcCall):
    community: str
    status: str | None = None


@rpc_call(SOURCE, "my_evaluation")
class MyEvaluation(RpcCall):
    community: str
    plan: str
    person: str


@rpc_call(SOURCE, "board")
class Board(RpcCall):
    community: str
    outcome: str | None = None
    closed_from: str | None = None
    closed_to: str | None = None


@rpc_call(SOURCE, "close_case")
class CloseCase(RpcCall):
    actor: str
    roles: list[str]
    community: str
    case: str
    reason: str


@rpc_call(SOURCE, "ratings")
class Ratings(RpcCall):
    community: str
    plan: str
    actor: str | None = None
    roles: list[str] | None = None


@rpc_call(SOURCE, "case_file")
class CaseFile(RpcCall):
    community: str
    case: str
    actor: str | None = None
    roles: list[str] | None = None
