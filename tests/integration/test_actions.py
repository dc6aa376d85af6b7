"""Stage 4, action (行动), end to end through the real bus: gateway → actions service → outbox
relay → RabbitMQ → audit log, with the timer on the shared test clock.

The drainage case of DOMAIN.md (compound 3's blocked drains, an emergency repair paid from the
maintenance fund) is opened here by a community worker directly, so these tests do not depend on
the other stages' services; the plan's life from there is the same whatever opened it.
"""
from __future__ import annotations

import base64
import hashlib
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from tests.harness import wait_for, frozen_now

pytestmark = pytest.mark.integration

SINCE = "2020-01-01"
PHOTO = b"\xff\xd8\xff\xe0 JPEG: the courtyard drain, cleared"
GRACE = timedelta(minutes=2)  # past the tally grace of one minute


@dataclass
class Member:
    id: str
    token: str


class Compound3:
    """S community's compound 3: building 2 with its residents (one a child), the property
    company, a grid leader, and a resident of another compound."""

    def __init__(self, platform, adults: int = 6, rules: dict | None = None):
        self.platform = platform
        c = platform.new_community("S社区")
        self.id, self.worker = c["id"], Member(c["worker"], c["token"])
        self.base = f"/api/v1/communities/{self.id}"
        with self.directory() as d:
            if rules:
                d("change_rules", "tests", self.id, rules)
            self.compound = d("add_compound", "tests", self.id, "3号院坝")["id"]
            building = d("add_building", "tests", self.id, self.compound, "2栋")["id"]
            elsewhere = d("add_building", "tests", self.id, d("add_compound", "tests", self.id, "5号院坝")["id"],
                          "1栋")["id"]

            def person(name, building_, unit, adult=True, role=None, scope=None):
                household = d("register_household", "tests", self.id, building_, unit, "60", [], None, True,
                              SINCE)["id"] if building_ else None
                pid = d("register_person", "tests", self.id, name, adult, household, SINCE)["id"]
                if role:
                    d("grant_role", "tests", self.id, pid, role, scope, SINCE)
                return Member(pid, d("issue_token", self.id, pid, 90, "tests")["token"])

            self.residents = [person(f"居民{i}", building, str(101 + i)) for i in range(adults)]
            self.child = person("小明", building, "201", adult=False)
            self.property = person("物业 王经理", None, None, role="property_company")
            self.grid_leader = person("网格长 李", building, "301", role="grid_leader", scope=self.compound)
            self.outsider = person("外院居民", elsewhere, "101")

    @contextmanager
    def directory(self):
        with self.platform.rpc_proxy() as proxy:
            def call(method, *args):
                reply = getattr(proxy.communities, method)(*args)
                assert reply["ok"], reply
                return reply["result"]

            yield call

    def api(self, method: str, path: str, who: Member, body=None, expect: int | None = None):
        return self.platform.api(method, self.base + path, who.token, body, expect=expect)

    # -- the drainage plan ------------------------------------------------------------------------
    def open_drainage_plan(self, now: datetime) -> dict:
        plan = self.api("POST", "/action-plans", self.worker, {
            "title": "疏通3号院坝排水沟", "scope": "compound", "scope_id": self.compound, "category": "drainage",
            "basis": "暴雨前排水沟堵塞，底层住户进水，危及人身财产安全：紧急抢修（民法典第281条第2款）"},
            expect=201).json()
        dredge = self.api("POST", f"/action-plans/{plan['plan']}/tasks", self.worker, {
            "title": "清淤并更换破损管道", "responsible_party": {"kind": "property_company"},
            "due_at": iso(now + timedelta(days=10)), "budget": "12800.00", "funding_source": "maintenance_fund"},
            expect=201).json()
        inspect = self.api("POST", f"/action-plans/{plan['plan']}/tasks", self.worker, {
            "title": "雨后巡查并向居民说明", "responsible_party": {"kind": "grid_leader", "person": self.grid_leader.id},
            "due_at": iso(now + timedelta(days=3))}, expect=201).json()
        return {"plan": plan["plan"], "dredge": dredge["task"], "inspect": inspect["task"]}

    def finish(self, ids: dict) -> dict:
        plan = ids["plan"]
        self.api("POST", f"/action-plans/{plan}/tasks/{ids['dredge']}/progress", self.property,
                 {"percent": 100, "note": "全部完工"}, expect=201)
        self.api("POST", f"/action-plans/{plan}/tasks/{ids['inspect']}/progress", self.grid_leader,
                 {"percent": 100, "note": "雨后无积水"}, expect=201)
        return self.api("POST", f"/action-plans/{plan}/done", self.worker,
                        {"summary": "排水沟已疏通，破损管道已更换，雨后院坝无积水"}, expect=200).json()

    def rate(self, plan: str, who: Member, rating: str, comment: str | None = None, expect: int = 201):
        body = {"rating": rating} if comment is None else {"rating": rating, "comment": comment}
        return self.api("POST", f"/action-plans/{plan}/evaluations", who, body, expect=expect)

    # -- the record ----------------------------------------------------------------------------------
    def actions_events(self) -> list[dict]:
        out, start = [], 1
        while True:
            batch = self.platform.rpc("actions", "read_log", start, 1000)
            out += [e for e in batch if e["community"] == self.id]
            if len(batch) < 1000:
                return out
            start = batch[-1]["position"] + 1

    def audited(self, case: str | None = None) -> list[dict]:
        """The case's entries from the four stages (proofs of notice share the case, not the file)."""
        return [e for e in self.platform.audit_entries(self.id, self.worker.token, case)
                if e["source"] != "notifications"]

    def audited_types(self, case: str) -> list[str]:
        return [e["type"] for e in self.audited(case)]

    def wait_audited(self, case: str, event_type: str) -> dict:
        return wait_for(lambda: next((e["envelope"] for e in self.audited(case) if e["type"] == event_type), None),
                        timeout=30, message=f"{event_type} in the audit log")

    def heads(self) -> tuple[int, int]:
        # Proofs of notice keep arriving on their own schedule; the stages' entries must not move.
        return self.platform.rpc("actions", "log_head"), len(self.audited())

    def board(self) -> dict:
        return self.api("GET", "/board", self.worker, expect=200).json()


def iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat()


@pytest.fixture
def clock(platform):
    """The shared clock frozen at a whole second of today, given back afterwards."""
    now = frozen_now()
    platform.set_clock(now)
    yield now
    platform.set_clock(None)


def test_the_drainage_case_from_plan_to_closed_case(platform, clock):
    s = Compound3(platform)
    ids = s.open_drainage_plan(clock)
    plan, case = ids["plan"], ids["plan"]  # opened directly, the plan opens its own case

    # Evidence: content-addressed, its hash in the progress report.
    shot = s.api("POST", "/evidence", s.property, {"content_base64": base64.b64encode(PHOTO).decode(),
                                                   "media_type": "image/jpeg"}, expect=201).json()
    assert shot["sha256"] == hashlib.sha256(PHOTO).hexdigest()
    s.api("POST", f"/action-plans/{plan}/tasks/{ids['dredge']}/progress", s.property,
          {"percent": 60, "note": "主管道已清淤", "evidence": [shot["sha256"]]}, expect=201)
    got = s.api("GET", f"/evidence/{shot['sha256']}", s.residents[0], expect=200)
    assert got.content == PHOTO and got.headers["Content-Type"] == "image/jpeg"
    s.api("POST", f"/action-plans/{plan}/tasks/{ids['dredge']}/progress", s.residents[0], {"percent": 70},
          expect=403)

    # The grid leader's inspection falls overdue on the shared clock.
    platform.set_clock(clock + timedelta(days=3, seconds=1))
    overdue = wait_for(lambda: s.board()["overdue_tasks"], message="the overdue task on the board")
    assert [(o["task"], o["title"], o["case"]) for o in overdue] == [(ids["inspect"], "雨后巡查并向居民说明", case)]
    flagged = s.wait_audited(case, "TaskOverdue")
    assert flagged["data"]["task"] == ids["inspect"] and flagged["actor"] == "system"

    view = s.finish(ids)
    assert view["status"] == "evaluating" and view["result"] == "排水沟已疏通，破损管道已更换，雨后院坝无积水"
    assert view["evaluation"]["denominator"] == 7, "the six adults and the grid leader; not the child"
    board = s.board()
    assert board["overdue_tasks"] == [] and board["results"][0]["result"] == view["result"]

    # Before one rates, one's own rating is null (its schema: an object or null), not an error (issue 12.8).
    mine = s.api("GET", f"/action-plans/{plan}/evaluations/mine", s.residents[0], expect=200)
    assert mine.json() is None and mine.headers["Content-Type"].startswith("application/json")

    # 满意度评议: the last rating within the window counts.
    for who, rating in zip(s.residents, ("satisfied", "satisfied", "basically_satisfied", "unsatisfied")):
        s.rate(plan, who, rating)
    s.rate(plan, s.residents[3], "basically_satisfied", "雨后再看看")
    assert s.api("GET", f"/action-plans/{plan}/evaluations/mine", s.residents[3], expect=200).json()["rating"] == \
        "basically_satisfied"

    # Refusals: outside the scope, then outside the window; nothing enters either log.
    wait_for(lambda: len(s.audited(case)) == len(s.actions_events()), timeout=30, message="the audit log to settle")
    before = s.heads()
    problem = s.rate(plan, s.outsider, "unsatisfied", expect=403).json()
    assert "living in the plan's scope" in problem["detail"]
    closes_at = datetime.fromisoformat(view["evaluation"]["closes_at"].replace("Z", "+00:00"))
    assert closes_at == clock + timedelta(days=3, seconds=1) + timedelta(days=14)
    platform.set_clock(closes_at)
    problem = s.rate(plan, s.residents[5], "satisfied", expect=409).json()
    assert problem["detail"] == f"the evaluation window closed at {view['evaluation']['closes_at']}"
    assert s.heads() == before

    # The tally: 0 of 7 unsatisfied; the case closes.
    platform.set_clock(closes_at + GRACE)
    closed = s.wait_audited(case, "CaseClosed")
    assert closed["data"]["outcome"] == "completed" and closed["data"]["plan"] == plan
    tally = s.wait_audited(case, "EvaluationClosed")["data"]
    assert tally["counts"] == {"satisfied": 2, "basically_satisfied": 2, "unsatisfied": 0}
    assert (tally["unsatisfied_share"], tally["threshold"], tally["outcome"]) == ("0/4", "1/3", "accepted")
    board = s.board()
    assert board["open_cases"]["action"] == []
    assert [(c["case"], c["outcome"]) for c in board["closed_cases"]] == [(case, "completed")]

    # The case file: every event of the case, in time order, each linked to its audit entry.
    wait_for(lambda: len(s.audited(case)) == len(s.actions_events()), timeout=30, message="the audit log to settle")
    entries = s.audited(case)
    file = s.api("GET", f"/cases/{case}", s.residents[0], expect=200).json()
    assert file["status"] == "closed" and file["outcome"] == "completed" and file["plan"] == plan
    assert [i["audit"]["index"] for i in file["items"]] == [e["index"] for e in sorted(
        entries, key=lambda e: (e["occurred_at"], e["index"]))]
    assert [i["event_id"] for i in file["items"]] == [e["envelope"]["id"] for e in entries], \
        "one writer, one clock: time order is the log's order"
    assert [i["type"] for i in file["items"]] == [
        "ActionPlanOpened", "TaskAssigned", "TaskAssigned", "ProgressReported", "TaskOverdue", "ProgressReported",
        "TaskCompleted", "ProgressReported", "TaskCompleted", "PlanReportedDone", "ResultDisclosed",
        "EvaluationOpened", "EvaluationGiven", "EvaluationGiven", "EvaluationGiven", "EvaluationGiven",
        "EvaluationChanged", "EvaluationClosed", "CaseClosed"]
    assert file["items"][0]["data"] == entries[0]["envelope"]["data"]
    assert "疏通3号院坝排水沟" in file["items"][0]["texts"].values()
    assert file["items"][3]["data"]["evidence"] == [shot["sha256"]]
    assert "排水沟" not in "".join(e["canonical"] for e in entries), "texts enter the record as commitments"


def test_unsatisfied_residents_reopen_the_plan_and_a_follow_up_is_requested(platform, clock):
    s = Compound3(platform, adults=3)  # with the grid leader: 4 residents to ask
    ids = s.open_drainage_plan(clock)
    plan = ids["plan"]
    view = s.finish(ids)
    assert view["evaluation"]["denominator"] == 4
    s.rate(plan, s.residents[0], "unsatisfied", "下雨还是积水")
    s.rate(plan, s.residents[1], "unsatisfied")
    s.rate(plan, s.residents[2], "satisfied")
    platform.set_clock(datetime.fromisoformat(view["evaluation"]["closes_at"].replace("Z", "+00:00")) + GRACE)

    follow_up = s.wait_audited(plan, "FollowUpRequested")
    assert follow_up["case"] == plan and follow_up["actor"] == "system"
    assert follow_up["data"]["original_case"] == plan and follow_up["data"]["plan"] == plan
    assert (follow_up["data"]["scope"], follow_up["data"]["scope_id"], follow_up["data"]["category"]) == (
        "compound", s.compound, "drainage")
    assert follow_up["data"]["unsatisfied_share"] == "2/3" and follow_up["data"]["threshold"] == "1/3"
    opened = s.audited(plan)[0]["envelope"]
    assert follow_up["data"]["title_commitment"] == opened["data"]["title_commitment"]
    assert s.audited_types(plan)[-3:] == ["EvaluationClosed", "PlanReopened", "FollowUpRequested"]
    board = s.board()
    assert [(c["case"], c["status"]) for c in board["open_cases"]["action"]] == [(plan, "reopened")]
    file = s.api("GET", f"/cases/{plan}", s.worker, expect=200).json()
    own = [i for i in file["items"] if i["case"] == plan]
    assert file["status"] == "open" and own[-1]["type"] == "FollowUpRequested"
    if "proposals" in platform.services:  # the other half of the contract, built in the proposals service
        assert 'consult_consumer_lag{consumer="proposals",source="actions"}' in platform.metrics("proposals")
        proposal = wait_for(lambda: next((e for e in s.audited() if e["source"] == "proposals"
                                          and e["envelope"]["data"].get("original_case") == plan), None),
                            timeout=30, message="the follow-up proposal")
        first = proposal["envelope"]
        assert first["type"] == "ProposalDrafted" and first["actor"] == "system"
        assert proposal["case"] == first["case"] == first["aggregate"]["id"] != plan  # a new case, linked
        assert (first["data"]["scope"], first["data"]["scope_id"], first["data"]["category"]) == (
            "compound", s.compound, "drainage")
        # On the public board the reopened plan and its follow-up are one track: the follow-up shows
        # on the plan's row with the stage it has reached, titled, and not as a second case.
        listed = wait_for(lambda: next((f for c in s.board()["open_cases"]["action"] if c["case"] == plan
                                        for f in c["follow_ups"] if f["case"] == proposal["case"]), None),
                          timeout=30, message="the follow-up proposal on its plan's row")
        assert (listed["title"], listed["follow_up_of"], listed["stage"]) == (
            "跟进：疏通3号院坝排水沟", plan, "proposal")  # the proposals store's words
        assert all(c["case"] != proposal["case"] for rows in s.board()["open_cases"].values() for c in rows)
        # The case file of the original case holds the follow-up's steps too, each marked with its case.
        file = wait_for(lambda: (f := s.api("GET", f"/cases/{plan}", s.worker, expect=200).json())["follow_ups"]
                        == [first["case"]] and any(i["case"] == first["case"] for i in f["items"]) and f,
                        timeout=30, message="the follow-up in the original case file")
        assert [i["type"] for i in file["items"] if i["case"] == first["case"]][0] == "ProposalDrafted"
        follow_file = s.api("GET", f"/cases/{first['case']}", s.worker, expect=200).json()
        assert follow_file["follow_up_of"] == plan


def test_bad_input_is_refused_and_records_nothing(platform, clock):
    s = Compound3(platform, adults=1)
    ids = s.open_drainage_plan(clock)
    plan = ids["plan"]
    wait_for(lambda: len(s.audited(plan)) == 3, timeout=30, message="the plan in the audit log")
    before = s.heads()
    cases = [
        (s.residents[0], "POST", "/action-plans", {"title": "x", "basis": "y", "scope": "community"}, 403),
        (s.worker, "POST", "/action-plans", {"title": "x", "basis": "y", "scope": "building"}, 422),
        (s.worker, "POST", "/action-plans", {"title": "x", "basis": "y", "scope": "building",
                                             "scope_id": s.worker.id}, 404),
        (s.worker, "POST", f"/action-plans/{plan}/tasks", {"title": "x", "responsible_party": {"kind": "mayor"},
                                                           "due_at": iso(clock + timedelta(days=1))}, 422),
        (s.worker, "POST", f"/action-plans/{plan}/tasks", {"title": "x", "responsible_party": {"kind": "contractor"},
                                                           "due_at": iso(clock - timedelta(days=1))}, 422),
        (s.worker, "POST", f"/action-plans/{plan}/tasks", {"title": "x", "responsible_party": {"kind": "contractor"},
                                                           "due_at": iso(clock + timedelta(days=1)),
                                                           "budget": "100"}, 422),
        (s.worker, "POST", f"/action-plans/{plan}/tasks", {"title": "x", "responsible_party": {
            "kind": "contractor", "person": str(uuid.uuid4())}, "due_at": iso(clock + timedelta(days=1))}, 404),
        (s.property, "POST", f"/action-plans/{plan}/tasks/{ids['dredge']}/progress", {"percent": 101}, 422),
        (s.property, "POST", f"/action-plans/{plan}/tasks/{ids['dredge']}/progress",
         {"percent": 10, "evidence": ["ab" * 32]}, 422),
        (s.worker, "POST", f"/action-plans/{plan}/done", {"summary": "not yet"}, 409),
        (s.residents[0], "POST", f"/action-plans/{plan}/evaluations", {"rating": "satisfied"}, 409),
        (s.property, "POST", "/evidence", {"content_base64": "not base64!"}, 422),
        (s.worker, "GET", f"/cases/{s.worker.id}", None, 404),
    ]
    for who, method, path, body, status in cases:
        resp = s.api(method, path, who, body)
        assert resp.status_code == status, (path, body, resp.status_code, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert s.heads() == before
