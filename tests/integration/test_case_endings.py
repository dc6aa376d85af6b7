"""Every case has an end (issue 17.1), with real services on both backends.

One community, built once per backend on the shared platform, takes a case to each ending through
the API as people would: a proposal withdrawn by its author, one merged into another, one screened
inadmissible, one expiring without enough support, one the party-committee lead closes with a
reason, a consultation concluded with no action needed, a ballot rejected, a ballot annulled and
closed without a re-run, and a plan its residents evaluated satisfied. For each: the case file
ends with its one CaseClosed, the board lists the outcome (and its filter finds it), and
`consult audit replay` reproduces it from the log alone.
"""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from kombu import Connection

from services.common import bus, clock
from tests.harness import frozen_now, wait_for
from tests.integration.audit_world import DrainageRecord

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
STAGES = ("proposals", "deliberation", "decisions", "actions")
RESIDENTS = ("王", "李", "张", "刘")


class Endings(DrainageRecord):
    """A case per ending, on one timeline of the frozen clock."""

    def proposal(self, title: str, who: str = "王", submit: bool = True) -> str:
        pid = self.api("POST", "/proposals", who, {"title": title, "body": f"{title}：详情", "category": "drainage",
                                                     "scope": "building", "scope_id": self.building}, expect=201)["id"]
        if submit:
            self.api("POST", f"/proposals/{pid}/submit", who, expect=200)
        return pid

    def build(self) -> "Endings":
        p = self.platform
        p.rpc("communities", "change_rules", "tests", self.id, {
            "meeting_notice_days": 1, "ballot_notice_days": 1, "publicity_days": 1, "evaluation_window_days": 1,
            "support_window_days": 2})
        compound = self.rpc("add_compound", self.id, "3号院坝")["id"]
        self.building = self.rpc("add_building", self.id, compound, "2栋")["id"]
        for i, name in enumerate(RESIDENTS):
            unit = self.rpc("register_household", self.id, self.building, f"{101 + i}", "60", [], None, True,
                            None)["id"]
            self.person(name, unit)
        self.person("书记", role="party_lead")
        self.person("网格长", role="grid_leader", scope=compound)
        self.person("楼栋长", role="building_leader", scope=self.building)
        t0 = frozen_now()
        self.at(t0)
        try:
            self._timeline(t0)
        finally:
            p.set_clock(None)
        self.settle()
        return self

    def _timeline(self, t0) -> None:
        cases = self.cases = {}
        # 提议: withdrawn (a draft), merged into another, inadmissible, expiring, closed by the lead.
        cases["withdrawn"] = self.proposal("楼道灯不亮")
        self.api("POST", f"/proposals/{cases['withdrawn']}/withdraw", "王", expect=200)
        self.target = self.proposal("疏通排水沟")
        self.api("POST", f"/proposals/{self.target}/screen", "worker", {"admissible": True}, expect=200)
        cases["merged"] = self.proposal("排水沟堵塞", who="李")
        self.api("POST", f"/proposals/{cases['merged']}/merge", "worker", {"into": self.target}, expect=200)
        cases["inadmissible"] = self.proposal("调整物业费")
        self.api("POST", f"/proposals/{cases['inadmissible']}/screen", "worker",
                 {"admissible": False, "reason": "物业费调整须由业主大会决定"}, expect=200)
        cases["expired"] = self.proposal("增设快递柜", who="张")
        self.api("POST", f"/proposals/{cases['expired']}/screen", "worker", {"admissible": True}, expect=200)
        cases["closed_by_lead"] = self.proposal("修剪树木", who="刘")
        # 决策: a ballot annulled and closed without a re-run; a ballot rejected.
        cases["annulled"] = self.api("POST", "/ballots", "worker", {
            "title": "更换门禁", "scope": "building", "scope_id": self.building, "category": "safety"}, expect=201)["id"]
        self.api("POST", f"/ballots/{cases['annulled']}/annulment", "worker", {"reason": "选项有误"}, expect=200)
        cases["rejected"] = self.api("POST", "/ballots", "worker", {
            "title": "草坪改作菜地", "scope": "building", "scope_id": self.building, "category": "green_space"},
            expect=201)["id"]
        opens, closes = t0 + timedelta(days=1, minutes=5), t0 + timedelta(days=1, hours=2)
        self.api("PUT", f"/ballots/{cases['rejected']}/configuration", "worker", {
            "preset": "residents_meeting", "voting_unit": "resident", "options": [],
            "opens_at": clock.format(opens), "closes_at": clock.format(closes)}, expect=200)
        # 议事: a topic the party organisation raises, concluded with no action needed.
        cases["no_action"] = self.api("POST", "/consultations", "书记", {
            "title": "院坝停车", "description": "院坝停车是否需要划线", "scope": "building", "scope_id": self.building,
            "category": "parking"}, expect=201)["id"]
        starts = t0 + timedelta(days=1, hours=1)
        meeting = self.api("POST", f"/consultations/{cases['no_action']}/meetings", "书记", {
            "starts_at": clock.format(starts), "mode": "on_site", "place": "社区活动室", "agenda": ["停车"],
            "secretary": self.people["网格长"]}, expect=201)["id"]
        # 行动: a plan opened directly, done and evaluated satisfied.
        plan = self.api("POST", "/action-plans", "worker", {
            "title": "更换破损井盖", "basis": "井盖破损危及行人", "scope": "building", "scope_id": self.building},
            expect=201)["plan"]
        cases["completed"] = plan
        task = self.api("POST", f"/action-plans/{plan}/tasks", "worker", {
            "title": "更换井盖", "responsible_party": {"kind": "community_committee"},
            "due_at": clock.format(t0 + timedelta(hours=12))}, expect=201)["task"]
        self.api("POST", f"/action-plans/{plan}/tasks/{task}/progress", "worker", {"percent": 100}, expect=201)
        self.api("POST", f"/action-plans/{plan}/done", "worker", {"summary": "井盖已更换"}, expect=200)
        for name in ("王", "李"):
            self.api("POST", f"/action-plans/{plan}/evaluations", name, {"rating": "satisfied"}, expect=201)

        # The ballot opens (the evaluation's window has closed by now); three of four disagree.
        self.at(opens)
        self.ballot_status(cases["rejected"], "open")
        for name, choice in (("王", "disagree"), ("李", "disagree"), ("张", "disagree"), ("刘", "agree")):
            self.api("POST", f"/ballots/{cases['rejected']}/votes", name, {"choice": choice}, expect=201)
        # The meeting, its minutes, and the conclusion: nothing needs doing.
        self.at(starts)
        for name in ("书记", "网格长", "楼栋长"):
            self.api("POST", f"/meetings/{meeting}/attendance", name, {}, expect=201)
        self.api("POST", f"/meetings/{meeting}/opening", "书记", expect=200)
        minutes = self.api("POST", f"/meetings/{meeting}/minutes", "网格长", {"text": "车位充足，无需划线。"},
                           expect=201)["id"]
        for name in ("书记", "网格长"):
            self.api("POST", f"/minutes/{minutes}/signatures", name, expect=201)
        self.api("POST", f"/meetings/{meeting}/closing", "网格长", expect=200)
        self.api("POST", f"/consultations/{cases['no_action']}/conclusion", "书记", {
            "outcome": "no_action", "summary": "维持现状", "reason": "车位充足，无需划线", "meeting": meeting},
            expect=200)
        self.at(closes + timedelta(seconds=1))
        self.ballot_status(cases["rejected"], "rejected")
        # A day later: the publicity period has passed, and the expiring proposal's window too.
        self.at(closes + timedelta(days=1, seconds=2))
        self.ballot_status(cases["rejected"], "final")
        wait_for(lambda: self.api("GET", f"/proposals/{cases['expired']}", "worker", expect=200)["status"] == "expired",
                 timeout=60, message="the proposal to expire")
        wait_for(lambda: self.api("GET", f"/action-plans/{plan}", "worker", expect=200)["status"] == "closed",
                 timeout=60, message="the plan's evaluation to close")

    def close_by_lead(self) -> None:
        """The lead's closing, after the refusals: a worker may not, nor without a reason."""
        path = f"/cases/{self.cases['closed_by_lead']}/closure"
        self.api("POST", path, "worker", {"reason": "重复"}, expect=403)
        assert self.platform.api("POST", self.base + path, self.tokens["书记"], {}).status_code in (400, 422)
        self.closing = self.api("POST", path, "书记", {"reason": "已由物业线下处理"}, expect=201)
        self.api("POST", path, "书记", {"reason": "again"}, expect=409)
        self.api("POST", f"/ballots/{self.cases['annulled']}/abandonment", "worker", {"reason": "门禁改由物业更换"},
                 expect=200)
        self.api("POST", f"/ballots/{self.cases['annulled']}/reruns", "worker", expect=409)


@pytest.fixture(scope="module")
def endings(platform):
    for stage in STAGES:
        if stage not in platform.procs:
            platform.start(stage)
    world = Endings(platform)
    world.build()
    world.close_by_lead()
    world.settle()
    world.replay = json.loads(platform.cli("audit", "replay", "--community", world.id,
                                           "--allow-unsigned-tail").stdout)
    return world


def log(p, source: str) -> list[dict]:
    out, start = [], 1
    while True:
        batch = p.rpc(source, "read_log", start, 1000)
        out += batch
        if len(batch) < 1000:
            return out
        start = batch[-1]["position"] + 1


def case_file(w: Endings, case: str) -> dict:
    return wait_for(lambda: (f := w.api("GET", f"/cases/{case}", "worker", expect=200))["status"] == "closed" and f,
                    timeout=60, message=f"case {case} to close")


OUTCOMES = ("withdrawn", "merged", "inadmissible", "expired", "closed_by_lead", "no_action", "rejected", "annulled",
            "completed")
STAGE_OF = {"withdrawn": "proposal", "merged": "proposal", "inadmissible": "proposal", "expired": "proposal",
            "closed_by_lead": "proposal", "no_action": "deliberation", "rejected": "decision", "annulled": "decision",
            "completed": "action"}
REASONS = {"inadmissible": "物业费调整须由业主大会决定", "closed_by_lead": "已由物业线下处理", "no_action": "车位充足，无需划线",
           "annulled": "门禁改由物业更换", "completed": "井盖已更换"}


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_each_ending_closes_its_case_once_on_the_record(endings, outcome):
    w = endings
    case = w.cases[outcome]
    f = case_file(w, case)
    closings = [i for i in f["items"] if i["type"] == "CaseClosed"]
    assert len(closings) == 1, "exactly one CaseClosed"
    assert f["items"][-1] is not None and f["items"][-1]["type"] == "CaseClosed", "the case file ends with it"
    data = f["items"][-1]["data"]
    assert (data["outcome"], data["stage"], f["outcome"]) == (outcome, STAGE_OF[outcome], outcome)
    assert f["closing"]["outcome"] == outcome and f["closing"]["reason"] == REASONS.get(outcome)
    if outcome == "merged":
        assert data["merged_into"] == f["closing"]["merged_into"] == w.target
    if outcome == "closed_by_lead":
        assert f["items"][-1]["actor"] == w.people["书记"] and w.closing["outcome"] == outcome
    else:
        assert f["items"][-1]["actor"] == "system"
    # The board lists it with its outcome, and its filter finds it.
    board = w.api("GET", "/board?" + urlencode({"outcome": outcome}), "王", expect=200)
    [row] = [c for c in board["closed_cases"] if c["case"] == case]
    assert row["outcome"] == outcome and row["reason"] == REASONS.get(outcome)
    assert {c["outcome"] for c in board["closed_cases"]} == {outcome}
    assert not any(c["case"] == case for cases in board["open_cases"].values() for c in cases)
    # Replay reproduces it from the log alone.
    replayed = w.replay["cases"][case]["closed"]
    assert (replayed["outcome"], replayed["stage"], replayed["reproduced"]) == (outcome, STAGE_OF[outcome], True), \
        replayed


def test_the_board_filters_closed_cases_by_time_and_refuses_bad_filters(endings):
    w = endings
    everything = {c["case"] for c in w.api("GET", "/board", "王", expect=200)["closed_cases"]}
    assert set(w.cases.values()) <= everything
    last = max(c["closed_at"] for c in w.api("GET", "/board", "王", expect=200)["closed_cases"])
    later = clock.format(clock.parse(last) + timedelta(seconds=1))
    assert w.api("GET", "/board?" + urlencode({"closed_from": later}), "王", expect=200)["closed_cases"] == []
    assert {c["case"] for c in w.api("GET", "/board?" + urlencode({"closed_to": later}), "王",
                                     expect=200)["closed_cases"]} == everything
    for query in ({"outcome": "lost"}, {"closed_from": "yesterday"}, {"closed_to": "2026-12-01"},
                  {"closed_from": later, "closed_to": later}, {"color": "red"}):
        resp = w.platform.api("GET", f"{w.base}/board?{urlencode(query)}", w.tokens["王"])
        assert resp.status_code in (400, 422), (query, resp.status_code, resp.text[:300])
        assert resp.headers["Content-Type"].startswith("application/problem+json")


def test_a_triggering_event_delivered_twice_closes_its_case_once(endings):
    """The withdrawal is published again onto the actions consumer's queue: still one closing."""
    w, p = endings, endings.platform
    case = w.cases["withdrawn"]
    [env] = [e for e in log(p, "proposals") if e["type"] == "ProposalWithdrawn" and e["case"] == case]
    with Connection(p.env["CONSULT_AMQP_URI"]) as conn:
        conn.Producer().publish(json.dumps(env).encode(), exchange="",
                                routing_key=bus.queue_name(p.settings, "actions", "proposals"),
                                content_type="application/json", delivery_mode=2, message_id=env["id"])
    marker = w.proposal("新的提议")  # a later event of the same source, to know the duplicate was handled
    wait_for(lambda: any(c["case"] == marker for c in w.api("GET", "/board", "worker", expect=200)["open_cases"]["proposal"]),
             timeout=30, message="the actions consumer to move past the duplicate")
    closings = [e for e in log(p, "actions") if e["type"] == "CaseClosed" and e["case"] == case]
    assert len(closings) == 1
