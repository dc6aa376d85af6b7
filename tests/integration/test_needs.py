"""What needs me now (`GET …/me/needs`): each stage answers for its own objects, per person. A
resident sees the proposals of their building they may still support, the ballots on whose roll
they stand and have not voted in, their tasks; a worker what waits for screening or preparing; and
an item leaves the list once it is done."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common import clock
from tests.harness import frozen_now, wait_for
from tests.integration.proposals_world import NEVER_QUALIFIES, Neighbourhood

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def needs(n: Neighbourhood, token: str) -> list[tuple[str, str]]:
    answer = n.api("GET", "/me/needs", token, expect=200).json()
    assert answer["unavailable"] == []
    return [(item["kind"], item["id"]) for item in answer["items"]]


def test_each_person_sees_what_needs_them_and_it_leaves_once_done(platform):
    n = Neighbourhood(platform, rules=dict(NEVER_QUALIFIES, ballot_notice_days=0, meeting_notice_days=0))
    author, neighbour = n.residents(n.buildings[0], 2)
    [elsewhere] = n.residents(n.buildings[1], 1, start=201)
    with n.directory() as d:
        lead = d("register_person", "tests", n.id, "书记", True, None, None)["id"]
        d("grant_role", "tests", n.id, lead, "party_lead", None, None)
        lead_token = d("issue_token", n.id, lead, 30, "tests")["token"]

    # 提议: submitted, it waits for the worker's screening; nobody else is asked anything.
    pid = n.draft(author)
    n.api("POST", f"/proposals/{pid}/submit", author.token, expect=200)
    assert ("screen", pid) in needs(n, n.worker_token)
    assert needs(n, neighbour.token) == []
    n.api("POST", f"/proposals/{pid}/screen", n.worker_token, {"admissible": True}, expect=200)
    assert ("screen", pid) not in needs(n, n.worker_token)
    # Collecting: the neighbour of the same building may support; not its author, not the other building.
    assert ("support", pid) in needs(n, neighbour.token)
    assert ("support", pid) not in needs(n, author.token)
    assert ("support", pid) not in needs(n, elsewhere.token)
    n.support(pid, neighbour)
    assert ("support", pid) not in needs(n, neighbour.token)

    t0 = frozen_now()
    platform.set_clock(t0)
    try:
        # 议事: the party lead convenes a consultation and sits in its body.
        consultation = n.api("POST", "/consultations", lead_token, {
            "title": "草坪", "description": "草坪改菜地？", "scope": "building", "scope_id": n.buildings[0],
            "category": "green_space"}, expect=201).json()["id"]
        assert ("discuss", consultation) in needs(n, lead_token)
        assert ("discuss", consultation) not in needs(n, elsewhere.token)

        # 决策: a residents' ballot of the first building; prepared, it waits for the worker.
        ballot = n.api("POST", "/ballots", n.worker_token, {
            "title": "是否疏通", "scope": "building", "scope_id": n.buildings[0]}, expect=201).json()["id"]
        assert ("configure", ballot) in needs(n, n.worker_token)
        opens, closes = t0 + timedelta(minutes=30), t0 + timedelta(minutes=90)
        n.api("PUT", f"/ballots/{ballot}/configuration", n.worker_token, {
            "preset": "residents_meeting", "voting_unit": "resident", "opens_at": clock.format(opens),
            "closes_at": clock.format(closes)}, expect=200)
        platform.set_clock(opens + timedelta(seconds=1))
        wait_for(lambda: n.api("GET", f"/ballots/{ballot}", n.worker_token, expect=200).json()["status"] == "open",
                 timeout=60, message="the ballot to open")
        vote = [i for i in needs(n, neighbour.token) if i[0] == "vote"]
        assert vote == [("vote", ballot)]
        assert ("vote", ballot) not in needs(n, elsewhere.token)  # not on the roll
        n.api("POST", f"/ballots/{ballot}/votes", neighbour.token, {"choice": "agree"}, expect=201)
        assert ("vote", ballot) not in needs(n, neighbour.token)
        assert ("vote", ballot) in needs(n, author.token)

        # 行动: a plan with a task for the neighbour: theirs to report on, the worker's to run.
        plan = n.api("POST", "/action-plans", lead_token, {"title": "紧急疏通", "basis": "暴雨前抢修",
                                                            "scope": "building", "scope_id": n.buildings[0]},
                     expect=201).json()["plan"]
        task = n.api("POST", f"/action-plans/{plan}/tasks", lead_token, {
            "title": "清淤", "responsible_party": {"kind": "volunteer_team", "person": neighbour.id},
            "due_at": clock.format(t0 + timedelta(days=5))}, expect=201).json()["task"]
        assert ("task", task) in needs(n, neighbour.token)
        assert ("task", task) not in needs(n, author.token)
        assert ("run", plan) in needs(n, n.worker_token)
        assert ("run", plan) not in needs(n, neighbour.token)
    finally:
        platform.set_clock(None)

    items = n.api("GET", "/me/needs", neighbour.token, expect=200).json()["items"]
    for item in items:
        assert item["path"].split("/")[0] in ("proposals", "consultations", "meetings", "ballots", "plans")


def test_needs_are_of_the_community_in_the_path(platform):
    a, b = Neighbourhood(platform), Neighbourhood(platform)
    [resident] = a.residents(a.buildings[0], 1)
    n_b = b
    # A worker of B asking under A's path is refused by the gateway like any other object of A.
    assert platform.api("GET", f"{a.base}/me/needs", n_b.worker_token).status_code in (403, 404)
    assert needs(a, resident.token) == []
