"""Reconcile without a platform: stage services answering their query RPCs from a dict, as they
would after projecting the same events; then one drifted read model, a missing object, an object
the log never saw, and a stage that is not part of the platform."""
from __future__ import annotations

import copy

import pytest

from services.audit.reconcile import reconcile
from services.audit.replay import replay
from services.common.errors import NotFound
from services.contracts.proposals import GetProposal
from tests.unit.test_audit_replay import C, CASE, drainage


def views(state: dict) -> dict:
    """What each stage's query RPCs answer for the objects of `state` (the fields reconcile reads)."""
    out = {}
    for pid, p in state["proposals"].items():
        out[("proposals", "get_proposal", pid)] = {
            "status": p["status"], "unit": p["unit"], "threshold": p["threshold"], "denominator": p["denominator"],
            "supports": p["supports"], "supports_residents": p["supports_residents"],
            "supports_households": p["supports_households"], "merged_into": p["merged_into"]}
    for cid, c in state["consultations"].items():
        out[("deliberation", "get_consultation", cid)] = {
            "status": c["status"], "convener": c["convener"], "body": c["body"], "options": c["options"],
            "final_options": c["final_options"], "conclusion": c["conclusion"],
            "meetings": [{"id": m, "status": s} for m, s in c["meetings"].items()], "comment_count": c["comments"]}
    for bid, b in state["ballots"].items():
        out[("decisions", "get_ballot", bid)] = {
            "status": b["status"], "outcome": b["outcome"], "roll_hash": b["roll_hash"], "roll_size": b["roll_size"],
            "voted": b["voted"], "publicity_until": b["publicity_until"], "result": b["recorded_result"]}
    out[("decisions", "list_ballots")] = [{"id": b["id"], "status": b["status"], "voted": b["voted"]}
                                          for b in state["ballots"].values()]
    for pid, p in state["action_plans"].items():
        out[("actions", "get_plan", pid)] = {
            "status": p["status"], "case": p["case"], "tasks": p["tasks"],
            "evaluation": {"round": p["round"], "counts": p["evaluation"]["counts"]}}
    out[("proposals", "list_proposals")] = {"total": len(state["proposals"]),
                                            "items": [{"id": i} for i in state["proposals"]]}
    out[("deliberation", "list_consultations")] = [{"id": i} for i in state["consultations"]]
    out[("actions", "list_plans")] = [{"plan": i} for i in state["action_plans"]]
    return out


class Services:
    """The stage services answering the declared calls reconcile sends (the CLI's Rpc.send)."""

    OBJECT = {"get_proposal": "proposal", "get_consultation": "consultation", "get_ballot": "ballot",
              "get_plan": "plan"}  # the argument that names the object asked for

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list = []

    def __call__(self, request):
        self.calls.append(request)
        service, method = request.SERVICE, request.METHOD
        if method.startswith("list_"):
            key = (service, method)
        else:
            key = (service, method, request.arguments()[self.OBJECT[method]])
        if key not in self.answers:
            raise NotFound(f"{key[-1]} does not exist")
        return copy.deepcopy(self.answers[key])


ALL = ("communities", "proposals", "deliberation", "decisions", "actions")


@pytest.fixture
def log():
    return drainage().entries


def test_stages_that_hold_what_the_log_says_show_no_difference(log):
    services = Services(views(replay(log)))
    report = reconcile(services, C, log, ALL)
    assert report["differences"] == [] and report["checked"] == ["proposals", "deliberation", "decisions", "actions"]
    assert report["objects"] == {"proposals": 1, "consultations": 1, "ballots": 2, "action_plans": 1}
    assert GetProposal(viewer="wang", community=C, proposal=CASE) in services.calls, "a draft is asked for as its author"


def test_a_drifted_read_model_a_missing_and_an_unknown_object_are_reported(log):
    answers = views(replay(log))
    answers[("decisions", "get_ballot", "ballot-secret")]["voted"] = 8
    answers[("proposals", "get_proposal", CASE)]["supports"] = 1
    del answers[("actions", "get_plan", "plan-1")]
    answers[("deliberation", "list_consultations")].append({"id": "never-in-the-log"})
    report = reconcile(Services(answers), C, log, ALL)
    found = {(d["stage"], d["id"], d["field"]): (d["log"], d["service"]) for d in report["differences"]}
    assert found.pop(("decisions", "ballot-secret", "voted")) == (3, 8)
    assert found.pop(("proposals", CASE, "supports")) == (2, 1)
    log_side, service_side = found.pop(("actions", "plan-1", "(exists)"))
    assert log_side is True and "not found" in service_side
    assert found.pop(("deliberation", "never-in-the-log", "(exists)")) == (False, True)
    assert found == {}


def test_a_recorded_result_the_votes_do_not_give_is_a_difference_too(log):
    forged = copy.deepcopy(log)
    result = next(e for e in forged if e["type"] == "ResolutionAdopted")["data"]["result"]
    result["agreeing_heads"] = 4  # the decisions service recorded (and published) a wrong number
    answers = views(replay(forged))
    report = reconcile(Services(answers), C, forged, ALL)
    assert [(d["field"], d["log"], d["service"]) for d in report["differences"]] == [
        ("recount.agreeing_heads", 3, 4)]


def test_only_the_stages_of_this_platform_are_asked(log):
    services = Services(views(replay(log)))
    report = reconcile(services, C, log, ("communities", "proposals"))
    assert report["checked"] == ["proposals"] and {c.SERVICE for c in services.calls} == {"proposals"}
