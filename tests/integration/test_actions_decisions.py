"""Stage 3 → stage 4 through the real bus: a final resolution of the decisions service opens the
case's action plan in the actions service, and the case runs to its end.

The DOMAIN.md drainage case: building 2 of compound 3 votes under `owners_ordinary` (using the
maintenance fund), the worked example's votes adopt it, the publicity period passes, and
ResolutionFinal opens the plan; the property company clears the drains; the owners living there
evaluate; the case closes. And the emergency path (art. 281 ¶2): declared by a community worker
and the party-committee lead together, ResolutionFinal with outcome emergency opens the plan at once.
Skipped where the decisions service is not part of the platform under test.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock as consult_clock
from tests.harness import wait_for, frozen_now

pytestmark = pytest.mark.integration

BUILDING_2 = [("101", "50", "Wang"), ("102", "70", "Li"), ("201", "75", "Zhang"), ("202", "75", "Zhang"),
              ("301", "90", "Liu"), ("302", "90", "Chen"), ("401", "90", "Zhao"), ("402", "90", "Sun"),
              ("501", "120", "Zhou"), ("502", "120", None)]
VOTES = {"Wang": "agree", "Li": "agree", "Zhang": "agree", "Liu": "agree", "Zhou": "agree", "Chen": "disagree",
         "Zhao": "abstain"}
NOTICE, VOTING, PUBLICITY = timedelta(days=15), timedelta(days=7), timedelta(days=7)


@pytest.fixture
def t0(platform):
    if "decisions" not in platform.services:
        pytest.skip("the decisions service is not running in this platform")
    now = frozen_now()
    platform.set_clock(now)
    yield now
    platform.set_clock(None)


class Building2:
    """The worked example's owners, each living in their unit; the lead; the property company."""

    def __init__(self, platform):
        self.platform = platform
        c = platform.new_community("S社区")
        self.id, self.tokens, self.people = c["id"], {"worker": c["token"]}, {"worker": c["worker"]}
        self.base = f"/api/v1/communities/{self.id}"
        self.compound = self.api("POST", "/compounds", "worker", {"name": "3号院坝"}, 201).json()["id"]
        self.building = self.api("POST", "/buildings", "worker", {"compound": self.compound, "name": "2栋"},
                                 201).json()["id"]
        for name in ("Wang", "Li", "Zhang", "Liu", "Chen", "Zhao", "Sun", "Zhou", "Lead", "Property"):
            self.people[name] = self.api("POST", "/people", "worker", {"name": name, "effective": "2020-01-01"},
                                         201).json()["id"]
        for unit, area, owner in BUILDING_2:
            household = self.api("POST", "/households", "worker", {
                "building": self.building, "unit": unit, "area": area, "effective": "2020-01-01",
                "owners": [self.people[owner]] if owner else [], "developer_unsold": owner is None}, 201).json()["id"]
            if owner and unit != "202":
                self.api("POST", f"/people/{self.people[owner]}/moves", "worker",
                         {"household": household, "effective": "2020-01-01"}, 201)
        platform.api("POST", f"{self.base}/people/{self.people['Lead']}/roles", platform.admin_token,
                     {"role": "party_lead"}, expect=201)  # only a lead or a platform administrator appoints a lead
        self.api("POST", f"/people/{self.people['Property']}/roles", "worker", {"role": "property_company"}, 201)
        for name, person in self.people.items():  # the case runs for six weeks on the test clock
            # A worker never mints others' tokens: the operator's path, as `consult demo` does.
            self.tokens[name] = platform.rpc("communities", "issue_token", self.id, person, 90, "tests")["token"]

    def api(self, method: str, path: str, who: str, body=None, expect: int | None = None):
        return self.platform.api(method, self.base + path, self.tokens[who], body, expect=expect)

    def ballot_status(self, ballot: str, *statuses: str) -> dict:
        return wait_for(lambda: (v := self.api("GET", f"/ballots/{ballot}", "worker", expect=200).json())["status"]
                        in statuses and v, timeout=30, message=f"the ballot to be {' or '.join(statuses)}")

    def plan_of(self, case: str) -> dict:
        return wait_for(lambda: next((p for p in self.api("GET", "/action-plans", "worker", expect=200).json()
                                      if p["case"] == case), None), timeout=30, message="the case's action plan")

    def audited(self, case: str) -> list[dict]:
        """The case's entries from the four stages (proofs of notice share the case, not the file)."""
        return [e for e in self.platform.audit_entries(self.id, self.tokens["worker"], case)
                if e["source"] != "notifications"]


def test_an_adopted_resolution_opens_the_plan_and_the_case_runs_to_its_close(platform, t0):
    b = Building2(platform)
    ballot = b.api("POST", "/ballots", "worker", {
        "title": "动用维修资金疏通排水管 use the maintenance fund to clear the drains", "scope": "building",
        "scope_id": b.building, "category": "drainage"}, 201).json()["id"]
    opens = t0 + NOTICE
    b.api("PUT", f"/ballots/{ballot}/configuration", "worker", {
        "preset": "owners_ordinary", "voting_unit": "owner", "opens_at": consult_clock.format(opens),
        "closes_at": consult_clock.format(opens + VOTING)}, 200)
    platform.set_clock(opens)
    b.ballot_status(ballot, "open")
    for who, choice in VOTES.items():
        b.api("POST", f"/ballots/{ballot}/votes", who, {"choice": choice}, 201)
    platform.set_clock(opens + VOTING)
    b.ballot_status(ballot, "adopted")
    now = opens + VOTING + PUBLICITY
    platform.set_clock(now)
    assert b.ballot_status(ballot, "final")["outcome"] == "adopted"

    # ResolutionFinal → the plan of the ballot's case, from the decision's own facts.
    plan = b.plan_of(ballot)
    assert plan["basis"] == "resolution" and plan["scope"] == "building" and plan["scope_id"] == b.building
    assert plan["title"].startswith("动用维修资金"), "the ballot's title, read from the decisions service's store"
    assert plan["ballot"] == ballot and plan["resolution"] == f"{b.base}/ballots/{ballot}"
    pid = plan["plan"]
    task = b.api("POST", f"/action-plans/{pid}/tasks", "worker", {
        "title": "疏通排水管", "responsible_party": {"kind": "property_company"},
        "due_at": consult_clock.format(now + timedelta(days=10)), "budget": "12800.00",
        "funding_source": "maintenance_fund"}, 201).json()["task"]
    b.api("POST", f"/action-plans/{pid}/tasks/{task}/progress", "Property", {"percent": 100, "note": "已疏通"}, 201)
    view = b.api("POST", f"/action-plans/{pid}/done", "worker", {"summary": "排水管已疏通"}, 200).json()
    assert view["evaluation"]["denominator"] == 8, "the eight owners living in building 2"
    for who, rating in (("Wang", "satisfied"), ("Li", "satisfied"), ("Chen", "unsatisfied"),
                        ("Zhao", "basically_satisfied")):
        b.api("POST", f"/action-plans/{pid}/evaluations", who, {"rating": rating}, 201)
    b.api("POST", f"/action-plans/{pid}/evaluations", "Lead", {"rating": "satisfied"}, 403)  # not living there
    closes = datetime.fromisoformat(view["evaluation"]["closes_at"].replace("Z", "+00:00"))
    platform.set_clock(closes + timedelta(minutes=2))

    # 1 of 8 unsatisfied does not pass 1/3: the case closes. The case file spans both stages.
    closed = wait_for(lambda: next((e["envelope"] for e in b.audited(ballot) if e["type"] == "CaseClosed"), None),
                      timeout=30, message="CaseClosed in the audit log")
    assert closed["data"]["outcome"] == "completed"
    entries = b.audited(ballot)
    file = b.api("GET", f"/cases/{ballot}", "Wang", expect=200).json()
    assert file["stages"] == ["decision", "action"] and file["status"] == "closed"
    assert sorted(i["audit"]["index"] for i in file["items"]) == [e["index"] for e in entries]
    assert [i["occurred_at"] for i in file["items"]] == sorted(i["occurred_at"] for i in file["items"])
    types = [i["type"] for i in file["items"]]
    assert types[:4] == ["BallotPrepared", "BallotConfigured", "BallotOpened", "VoteCast"]
    assert types.index("ResolutionFinal") < types.index("ActionPlanOpened") < types.index("CaseClosed")
    assert types[-2:] == ["EvaluationClosed", "CaseClosed"]
    opened = file["items"][types.index("ActionPlanOpened")]
    resolution = file["items"][types.index("ResolutionFinal")]
    assert opened["data"]["ballot"] == ballot and opened["actor"] == "system"
    assert "use the maintenance fund" in opened["texts"][opened["data"]["title_commitment"]], \
        "texts joined from the decisions service"
    assert b.api("GET", f"/audit/entries?from={resolution['audit']['index']}&limit=1", "worker",
                 expect=200).json()["entries"][0]["envelope"]["id"] == resolution["event_id"]


def test_an_emergency_opens_the_plan_at_once_with_its_justification(platform, t0):
    b = Building2(platform)
    justification = "暴雨，排水管堵塞，三户底层进水：紧急抢修 (art. 281 ¶2)"
    ballot = b.api("POST", "/emergencies", "worker", {
        "title": "排水管紧急抢修", "justification": justification, "scope": "building", "scope_id": b.building,
        "category": "drainage"}, 201).json()["id"]
    b.api("POST", f"/emergencies/{ballot}/confirmation", "Lead", expect=200)
    plan = b.plan_of(ballot)
    assert plan["basis"] == "emergency"

    def case_file():
        answer = b.api("GET", f"/cases/{ballot}", "worker")
        if answer.status_code == 404:  # "or the audit log has not recorded it yet": not yet, under load
            return None
        assert answer.status_code == 200, answer.text
        f = answer.json()
        return f["plan"] and len(f["items"]) == 5 and f

    file = wait_for(case_file, timeout=30, message="the plan in the case file")
    assert [i["type"] for i in file["items"]] == ["BallotPrepared", "EmergencyDeclared", "EmergencyConfirmed",
                                                 "ResolutionFinal", "ActionPlanOpened"]
    opened = file["items"][-1]
    assert opened["texts"][opened["data"]["basis_commitment"]] == justification
    assert opened["causation"] == file["items"][-2]["event_id"], "the plan names the resolution that opened it"
