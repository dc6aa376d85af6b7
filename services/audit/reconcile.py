"""Reconcile: the state the audit log implies (`replay`) beside what each stage service holds,
field by field, and every object one side has and the other has not.

The stage services answer through their ordinary query RPCs, most of which read their read
models (projections); so a read model that drifted from its events, a recorded resolution whose
numbers a recount does not give, or an object the log never saw, all show up here.
"""
from __future__ import annotations

from typing import Any, Callable

from services.contracts import EVENTS, Registry
from services.contracts.actions import GetPlan, ListPlans
from services.contracts.calls import RpcCall
from services.contracts.decisions import GetBallot, ListBallots
from services.contracts.deliberation import GetConsultation, ListConsultations
from services.contracts.proposals import GetProposal, ListProposals

from .replay import replay

# send(request) -> the unwrapped result of a declared call (services/contracts/calls.py); raises on a
# refusal: the CLI's `Rpc.send`.
Send = Callable[[RpcCall], Any]


def _difference(stage: str, kind: str, oid: str, field: str, log_value: Any, service_value: Any) -> dict:
    return {"stage": stage, "kind": kind, "id": oid, "field": field, "log": log_value, "service": service_value}


def _compare(stage: str, kind: str, oid: str, pairs: dict[str, tuple[Any, Any]]) -> list[dict]:
    return [_difference(stage, kind, oid, f, a, b) for f, (a, b) in pairs.items() if a != b]


def _fetch(send: Send, request: RpcCall) -> tuple[Any, str | None]:
    try:
        return send(request), None
    except Exception as exc:  # noqa: BLE001 - a refusal (not found) or an unreachable service: a finding
        return None, str(exc) or exc.__class__.__name__


def _missing(stage: str, kind: str, oid: str, error: str) -> dict:
    return _difference(stage, kind, oid, "(exists)", True, f"not found: {error}")


def _unknown(stage: str, kind: str, oid: str) -> dict:
    return _difference(stage, kind, oid, "(exists)", False, True)


def proposals(send: Send, community: str, state: dict) -> list[dict]:
    out = []
    for pid, p in state["proposals"].items():
        # A draft shows to its author only: ask as the author.
        view, error = _fetch(send, GetProposal(viewer=p["author"], community=community, proposal=pid))
        if view is None:
            out.append(_missing("proposals", "proposal", pid, error))
            continue
        out += _compare("proposals", "proposal", pid, {
            "status": (p["status"], view["status"]), "unit": (p["unit"], view["unit"]),
            "threshold": (p["threshold"], view["threshold"]), "denominator": (p["denominator"], view["denominator"]),
            "supports": (p["supports"], view["supports"]),
            "supports_residents": (p["supports_residents"], view["supports_residents"]),
            "supports_households": (p["supports_households"], view["supports_households"]),
            "merged_into": (p["merged_into"], view["merged_into"])})
    listed, offset = set(), 0
    while True:
        page, error = _fetch(send, ListProposals(viewer="audit", community=community, limit=100, offset=offset))
        if page is None:
            break
        listed |= {item["id"] for item in page["items"]}
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    return out + [_unknown("proposals", "proposal", pid) for pid in sorted(listed - set(state["proposals"]))]


def consultations(send: Send, community: str, state: dict) -> list[dict]:
    out = []
    for cid, c in state["consultations"].items():
        view, error = _fetch(send, GetConsultation(community=community, consultation=cid))
        if view is None:
            out.append(_missing("deliberation", "consultation", cid, error))
            continue
        conclusion = view.get("conclusion") or {}
        out += _compare("deliberation", "consultation", cid, {
            "status": (c["status"], view["status"]), "convener": (c["convener"], view["convener"]),
            "body": (sorted((m["person"], m["role"], m["status"]) for m in c["body"]),
                     sorted((m["person"], m["role"], m["status"]) for m in view["body"])),
            "options": ([(o["id"], o["title_commitment"], o["description_commitment"]) for o in c["options"]],
                        [(o["id"], o["title_commitment"], o["description_commitment"]) for o in view["options"]]),
            "final_options": (c["final_options"], view["final_options"]),
            "conclusion.outcome": ((c["conclusion"] or {}).get("outcome"), conclusion.get("outcome")),
            "meetings": (c["meetings"], {m["id"]: m["status"] for m in view["meetings"]}),
            "comments": (c["comments"], view["comment_count"])})
    listed, error = _fetch(send, ListConsultations(community=community))
    extra = sorted({x["id"] for x in listed or ()} - set(state["consultations"]))
    return out + [_unknown("deliberation", "consultation", cid) for cid in extra]


def ballots(send: Send, community: str, state: dict) -> list[dict]:
    out = []
    listed, _error = _fetch(send, ListBallots(community=community))
    rows = {x["id"]: x for x in listed or ()}
    for bid, b in state["ballots"].items():
        view, error = _fetch(send, GetBallot(community=community, ballot=bid))
        if view is None:
            out.append(_missing("decisions", "ballot", bid, error))
            continue
        row = rows.get(bid, {})
        out += _compare("decisions", "ballot", bid, {
            "status": (b["status"], view["status"]), "listed status": (b["status"], row.get("status")),
            "outcome": (b["outcome"], view["outcome"]), "roll_hash": (b["roll_hash"], view["roll_hash"]),
            "roll_size": (b["roll_size"], view["roll_size"]), "voted": (b["voted"], view["voted"]),
            "listed voted": (b["voted"], row.get("voted")),
            "publicity_until": (b["publicity_until"], view["publicity_until"]),
            "result": (b["recorded_result"], view["result"])})
        if b.get("matches_record") is False:  # the recorded numbers are not what the record's votes give
            for d in b["differences"] or [{"field": "", "recorded": None, "replayed": b.get("recount_error")}]:
                out.append(_difference("decisions", "ballot", bid, f"recount.{d['field']}", d["replayed"],
                                       d["recorded"]))
    return out + [_unknown("decisions", "ballot", bid) for bid in sorted(set(rows) - set(state["ballots"]))]


def plans(send: Send, community: str, state: dict) -> list[dict]:
    out = []
    for pid, p in state["action_plans"].items():
        view, error = _fetch(send, GetPlan(community=community, plan=pid))
        if view is None:
            out.append(_missing("actions", "action_plan", pid, error))
            continue
        evaluation = view.get("evaluation") or {}
        out += _compare("actions", "action_plan", pid, {
            "status": (p["status"], view["status"]), "case": (p["case"], view["case"]),
            "tasks": ([(t["task"], t["percent"], t["status"], t["overdue"]) for t in p["tasks"]],
                      [(t["task"], t["percent"], t["status"], t["overdue"]) for t in view["tasks"]]),
            "round": (p["round"], evaluation.get("round", 0)),
            "evaluation.counts": ((p["evaluation"] or {}).get("counts"), evaluation.get("counts"))})
    listed, _error = _fetch(send, ListPlans(community=community))
    extra = sorted({x["plan"] for x in listed or ()} - set(state["action_plans"]))
    return out + [_unknown("actions", "action_plan", pid) for pid in extra]


STAGES = (("proposals", proposals), ("deliberation", consultations), ("decisions", ballots), ("actions", plans))


def reconcile(send: Send, community: str, envelopes: list[dict], services: tuple[str, ...], *,
              contracts: Registry = EVENTS) -> dict:
    """Every difference between the log-derived state of `community` and the stage services that
    are part of this platform (`services`). The log's events are read through `contracts` (by the
    replay: this module reads no event data itself, only the replay's state and the services'
    answers)."""
    state = replay(envelopes, contracts=contracts)
    differences, checked = [], []
    for service, compare in STAGES:
        if service in services:
            checked.append(service)
            differences += compare(send, community, state)
    counts = {"proposals": len(state["proposals"]), "consultations": len(state["consultations"]),
              "ballots": len(state["ballots"]), "action_plans": len(state["action_plans"])}
    return {"community": community, "entries": state["entries"], "checked": checked, "objects": counts,
            "differences": differences}
