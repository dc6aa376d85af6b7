"""Stage 1, proposals (提议), end to end: gateway → proposals service → outbox relay → RabbitMQ →
audit log, every transition of the lifecycle including the timer-driven expiry."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.harness import wait_for
from tests.integration.proposals_world import NEVER_QUALIFIES, Neighbourhood

pytestmark = pytest.mark.integration

QUALIFIED_FIELDS = {"proposal", "scope", "scope_id", "category", "title_commitment", "body_commitment", "author",
                    "supports", "threshold"}


def types(history: list[dict]) -> list[str]:
    return [h["type"] for h in history]


def test_a_proposal_qualifies_when_residents_in_scope_reach_the_threshold(platform):
    n = Neighbourhood(platform)  # default rules: a building needs 3 residents
    author, *others = n.residents(n.buildings[0], 5)
    pid = n.draft(author, title="疏通3号院坝排水沟")
    draft = n.view(pid, author.token)
    assert draft["status"] == "draft" and draft["title"] == "疏通3号院坝排水沟" and draft["author"] == author.id
    n.api("GET", f"/proposals/{pid}", n.worker_token, expect=404)  # a draft is its author's alone
    assert n.api("POST", f"/proposals/{pid}/submit", author.token, expect=200).json()["status"] == "submitted"
    view = n.api("POST", f"/proposals/{pid}/screen", n.worker_token, {"admissible": True}, expect=200).json()
    assert view["status"] == "collecting"
    assert (view["threshold"], view["unit"], view["denominator"]) == (3, "residents", 5)
    assert view["deadline"] > view["opened_at"]

    for i, resident in enumerate(others[:3], start=1):
        counts = n.support(pid, resident).json()
        assert counts["supports"] == i
    assert counts["status"] == "qualified"
    n.support(pid, others[3], expect=409)  # supports after qualification are refused
    n.api("POST", f"/proposals/{pid}/supports/withdraw", others[0].token, expect=409)
    n.api("POST", f"/proposals/{pid}/withdraw", author.token, expect=409)

    view = n.view(pid)
    assert view["status"] == "qualified" and view["supports"] == 3 and view["body"].startswith("Every rainy")
    assert types(view["history"]) == ["ProposalDrafted", "ProposalSubmitted", "ProposalScreened",
                                      "ProposalCollectionOpened", "ProposalQualified"]
    audited = n.settled()
    qualified = [e for e in audited if e["type"] == "ProposalQualified"]
    assert len(qualified) == 1
    data = qualified[0]["data"]
    assert QUALIFIED_FIELDS <= set(data)
    assert (data["proposal"], data["supports"], data["threshold"], data["author"]) == (pid, 3, 3, author.id)
    assert (data["scope"], data["scope_id"], data["category"]) == ("building", n.buildings[0], "drainage")
    assert data["title_commitment"] == view["title_commitment"]
    assert qualified[0]["case"] == pid and qualified[0]["actor"] == "system"
    assert "排水沟" not in "".join(e["canonical"] for e in n.audited()), "free text enters the record as commitments"
    # Every support is in the record under the proposal's case, with its supporter as actor.
    given = [e for e in audited if e["type"] == "SupportGiven"]
    assert sorted(e["actor"] for e in given) == sorted(r.id for r in others[:3])
    assert {e["case"] for e in given} == {pid} and {e["data"]["proposal"] for e in given} == {pid}
    assert [e["id"] for e in audited] == [e["id"] for e in n.proposal_events()]


def test_screening_inadmissible_needs_a_written_reason(platform):
    n = Neighbourhood(platform)
    author, resident = n.residents(n.buildings[0], 2)
    pid = n.draft(author, category="other", title="把草坪改成菜地")
    n.api("POST", f"/proposals/{pid}/submit", author.token, expect=200)
    n.api("POST", f"/proposals/{pid}/screen", author.token, {"admissible": False, "reason": "x"}, expect=403)
    problem = n.api("POST", f"/proposals/{pid}/screen", n.worker_token, {"admissible": False}, expect=422).json()
    assert "reason" in problem["detail"]
    view = n.api("POST", f"/proposals/{pid}/screen", n.worker_token,
                 {"admissible": False, "reason": "属于物业合同事项,请联系物业"}, expect=200).json()
    assert view["status"] == "inadmissible" and view["reason"] == "属于物业合同事项,请联系物业"
    n.support(pid, resident, expect=409)
    n.api("POST", f"/proposals/{pid}/screen", n.worker_token, {"admissible": True}, expect=409)
    screened = [e for e in n.settled() if e["type"] == "ProposalScreened" and e["aggregate"]["id"] == pid]
    assert screened[0]["data"]["admissible"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", screened[0]["data"]["reason_commitment"])


def test_screening_can_reclassify(platform):
    n = Neighbourhood(platform)
    (author,) = n.residents(n.buildings[0], 1)
    pid = n.draft(author, category="other")
    n.api("POST", f"/proposals/{pid}/submit", author.token, expect=200)
    n.api("POST", f"/proposals/{pid}/screen", n.worker_token, {"admissible": True, "category": "weather"},
          expect=422)
    view = n.api("POST", f"/proposals/{pid}/screen", n.worker_token, {"admissible": True, "category": "green_space"},
                 expect=200).json()
    assert view["category"] == "green_space" and view["status"] == "collecting"


def test_only_the_author_withdraws_and_only_before_qualification(platform):
    n = Neighbourhood(platform)
    author, resident = n.residents(n.buildings[0], 2)
    draft = n.draft(author)
    n.api("POST", f"/proposals/{draft}/withdraw", author.token, expect=200)
    pid = n.open_proposal(author)
    n.support(pid, resident)
    n.api("POST", f"/proposals/{pid}/withdraw", resident.token, expect=403)
    n.api("POST", f"/proposals/{pid}/withdraw", n.worker_token, expect=403)
    assert n.api("POST", f"/proposals/{pid}/withdraw", author.token, expect=200).json()["status"] == "withdrawn"
    n.api("POST", f"/proposals/{pid}/withdraw", author.token, expect=409)
    n.support(pid, author, expect=409)
    n.api("POST", f"/proposals/{pid}/supports/withdraw", resident.token, expect=409)
    assert types(n.view(pid)["history"])[-1] == "ProposalWithdrawn"
    assert n.view(draft, author.token)["status"] == "withdrawn"


def test_a_support_is_withdrawn_and_given_again_as_versions_of_one_support(platform):
    n = Neighbourhood(platform)
    author, resident = n.residents(n.buildings[0], 2)
    pid = n.open_proposal(author)
    assert n.support(pid, resident).json()["supports"] == 1
    n.support(pid, resident, expect=409)
    assert n.view(pid, resident.token)["supported_by_me"] is True
    counts = n.api("POST", f"/proposals/{pid}/supports/withdraw", resident.token, expect=200).json()
    assert counts["supports"] == 0
    n.api("POST", f"/proposals/{pid}/supports/withdraw", resident.token, expect=409)
    assert n.view(pid, resident.token)["supported_by_me"] is False
    assert n.support(pid, resident).json()["supports"] == 1
    supports = [e for e in n.settled() if e["case"] == pid and e["aggregate"]["type"] == "Support"]
    assert [(e["type"], e["aggregate"]["version"]) for e in supports] == [
        ("SupportGiven", 1), ("SupportWithdrawn", 2), ("SupportGivenAgain", 3)]
    assert len({e["aggregate"]["id"] for e in supports}) == 1


def test_one_support_per_household_where_the_rules_say_so(platform):
    n = Neighbourhood(platform, rules={"support_per": "household"})
    author, *family = n.residents(n.buildings[0], 3, per_household=3)  # one unit, three residents
    (neighbour,) = n.residents(n.buildings[0], 1, start=201)
    pid = n.open_proposal(author)
    assert n.support(pid, family[0]).json()["supports"] == 1
    problem = n.support(pid, family[1], expect=409).json()
    assert "household" in problem["detail"]
    n.support(pid, author, expect=409)
    assert n.support(pid, neighbour).json()["supports"] == 2
    # Any resident of the household may take the household's support back.
    n.api("POST", f"/proposals/{pid}/supports/withdraw", family[1].token, expect=200)
    assert n.support(pid, author).json()["supports"] == 2


def test_only_residents_living_in_the_scope_may_support(platform):
    n = Neighbourhood(platform, rules=NEVER_QUALIFIES)
    author, inside = n.residents(n.buildings[0], 2)
    (outside,) = n.residents(n.buildings[1], 1, start=301)
    pid = n.open_proposal(author)
    assert "building" in n.support(pid, outside, expect=403).json()["detail"]
    n.api("POST", f"/proposals/{pid}/supports", n.worker_token, expect=403)  # lives in no unit
    other = Neighbourhood(platform)
    (stranger,) = other.residents(other.buildings[0], 1)
    n.support(pid, stranger, expect=404)  # a resident of another community does not see it at all
    # Moving into the building makes one a resident in scope, per the directory at the time of supporting.
    with n.directory() as d:
        d("move_person", "tests", n.id, outside.id, inside.household, None)
    n.support(pid, outside)
    # A compound-wide proposal takes both buildings.
    wide = n.open_proposal(author, scope="compound", scope_id=n.compound)
    (far,) = n.residents(n.buildings[1], 1, start=401)
    n.support(wide, far)
    n.support(wide, inside)


def test_a_share_threshold_uses_the_denominator_frozen_when_collection_opens(platform):
    n = Neighbourhood(platform)  # default: a compound needs 1/10 of its households
    residents = n.residents(n.buildings[0], 12) + n.residents(n.buildings[1], 3, start=501)
    pid = n.open_proposal(residents[0], scope="compound", scope_id=n.compound)
    view = n.view(pid)
    assert (view["unit"], view["denominator"], view["threshold"]) == ("households", 15, 2)  # ⌈15/10⌉
    later = n.residents(n.buildings[1], 10, start=601)  # the compound grows to 25 households
    assert n.view(pid)["denominator"] == 15
    n.support(pid, later[0])
    assert n.support(pid, later[1]).json()["status"] == "qualified"


def test_supports_count_in_the_thresholds_unit(platform):
    """One support per resident, but the threshold counts households: two residents of one unit count once."""
    n = Neighbourhood(platform, rules={"support_threshold": {
        "community": {"unit": "households", "count": 2}, "compound": {"unit": "households", "count": 2},
        "building": {"unit": "households", "count": 2}}})
    author, *family = n.residents(n.buildings[0], 3, per_household=3)
    (neighbour,) = n.residents(n.buildings[0], 1, start=201)
    pid = n.open_proposal(author)
    assert n.support(pid, family[0]).json()["supports"] == 1
    assert n.support(pid, family[1]).json() == {"proposal": pid, "status": "collecting", "supports": 1,
                                                "threshold": 2, "unit": "households"}
    assert n.support(pid, neighbour).json()["status"] == "qualified"
    view = n.view(pid)
    assert (view["supports"], view["supports_residents"], view["supports_households"]) == (2, 3, 2)


def test_a_duplicate_is_merged_and_its_supports_carry_over(platform):
    n = Neighbourhood(platform)  # a building needs 3 residents
    a_author, b_author, r1, r2, r3 = n.residents(n.buildings[0], 5)
    a = n.open_proposal(a_author, title="排水沟堵了")
    b = n.open_proposal(b_author, title="疏通排水沟")
    n.support(a, r1)
    n.support(a, r2)
    n.support(b, r2)
    n.api("POST", f"/proposals/{a}/merge", r3.token, {"into": b}, expect=403)
    n.api("POST", f"/proposals/{a}/merge", n.worker_token, {"into": a}, expect=422)
    n.api("POST", f"/proposals/{a}/merge", n.worker_token, {"into": str(uuid.uuid4())}, expect=404)
    n.residents(n.buildings[1], 1, start=301)
    wide = n.open_proposal(b_author, scope="compound", scope_id=n.compound)
    n.api("POST", f"/proposals/{wide}/merge", n.worker_token, {"into": a}, expect=409)  # a building can't hold it
    result = n.api("POST", f"/proposals/{a}/merge", n.worker_token, {"into": b}, expect=200).json()
    assert (result["carried"], result["supports"]) == (1, 2)  # r2 already supported b: counted once
    assert n.view(a)["status"] == "merged" and n.view(a)["merged_into"] == b
    n.support(a, r3, expect=409)
    n.support(b, r1, expect=409)  # r1's support is on b now
    assert n.support(b, r3).json()["status"] == "qualified"
    assert types(n.view(a)["history"])[-1] == "ProposalMerged"
    assert "ProposalMergeReceived" in types(n.view(b)["history"])
    audited = n.settled()
    carried = [e for e in audited if e["type"] == "SupportGiven" and e["data"].get("carried_from") == a]
    assert [(e["case"], e["data"]["person"]) for e in carried] == [(b, r1.id)]
    # Both keep their history: a's supports stay in a's case.
    assert len([e for e in audited if e["case"] == a and e["type"] == "SupportGiven"]) == 2


def test_a_proposal_expires_when_its_window_passes_detected_by_the_timer(platform):
    n = Neighbourhood(platform, rules={"support_window_days": 2})
    author, resident = n.residents(n.buildings[0], 2)
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    platform.set_clock(start)
    try:
        pid = n.open_proposal(author)
        view = n.view(pid)
        assert view["opened_at"] == start.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        assert view["deadline"] == (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        platform.set_clock(start + timedelta(days=2) - timedelta(seconds=1))
        n.support(pid, resident)
        assert n.view(pid)["status"] == "collecting"
        after = start + timedelta(days=2, seconds=1)
        platform.set_clock(after)
        wait_for(lambda: n.view(pid)["status"] == "expired", timeout=15, message="the expiry timer")
        n.support(pid, author, expect=409)
        n.api("POST", f"/proposals/{pid}/withdraw", author.token, expect=409)
        expired = [e for e in n.settled() if e["type"] == "ProposalExpired"]
        assert len(expired) == 1
        assert expired[0]["occurred_at"] == after.strftime("%Y-%m-%dT%H:%M:%S.000000Z")  # the one clock
        assert expired[0]["actor"] == "system" and expired[0]["data"]["deadline"] == view["deadline"]
    finally:
        platform.set_clock(None)


def test_list_filter_and_search_from_the_read_model(platform):
    n = Neighbourhood(platform)
    author, resident = n.residents(n.buildings[0], 2)
    drain = n.open_proposal(author, title="疏通排水沟 Drain", category="drainage")
    lawn = n.open_proposal(author, title="草坪 vegetable plots", category="green_space",
                           scope="compound", scope_id=n.compound)
    mine = n.draft(author, title="停车位 draft", category="parking")
    n.support(drain, resident)

    def ids(query: str, token: str) -> list[str]:
        return [p["id"] for p in n.api("GET", f"/proposals{query}", token, expect=200).json()["items"]]

    assert ids("", author.token) == [mine, lawn, drain]
    assert ids("", resident.token) == [lawn, drain]  # drafts are their authors' alone
    assert ids("?category=drainage", resident.token) == [drain]
    assert ids("?scope=compound", resident.token) == [lawn]
    assert ids("?status=draft", author.token) == [mine]
    assert ids("?q=drain", resident.token) == [drain] and ids("?q=DRAIN", resident.token) == [drain]
    assert ids("?q=%E8%8D%89%E5%9D%AA", resident.token) == [lawn]  # 草坪
    assert ids("?q=100%25", resident.token) == []
    page = n.api("GET", "/proposals?limit=1&offset=1", resident.token, expect=200).json()
    assert page["total"] == 2 and [p["id"] for p in page["items"]] == [drain]
    listed = n.api("GET", "/proposals?category=drainage", resident.token, expect=200).json()["items"][0]
    assert (listed["supports"], listed["threshold"], listed["status"]) == (1, 3, "collecting")
    n.api("GET", "/proposals?status=bogus", resident.token, expect=422)
    n.api("GET", "/proposals?limit=0", resident.token, expect=422)


def test_erasure_removes_texts_and_the_searchable_title_but_keeps_every_hash(platform):
    n = Neighbourhood(platform)
    (author,) = n.residents(n.buildings[0], 1)
    pid = n.open_proposal(author, title="王芳的提议")
    before = n.view(pid)
    n.api("POST", "/proposals/erasures", author.token, {"person": author.id}, expect=403)
    erased = n.api("POST", "/proposals/erasures", n.worker_token, {"person": author.id}, expect=200).json()
    assert erased["erased_texts"] == 2
    recorded = wait_for(lambda: [e for e in n.audited() if e["type"] == "PersonTextsErased"], timeout=30,
                        message="the erasure in the audit log")
    assert [(e["envelope"]["aggregate"]["id"], e["envelope"]["data"]) for e in recorded] == [
        (erased["erasure"], {"person": author.id, "texts": 2})]
    after = n.view(pid)
    assert after["title"] is None and after["body"] is None
    assert after["title_commitment"] == before["title_commitment"]
    assert n.api("GET", "/proposals?q=%E7%8E%8B", n.worker_token, expect=200).json()["total"] == 0


def test_bad_input_gets_a_problem_and_records_nothing(platform):
    n = Neighbourhood(platform)
    author, resident = n.residents(n.buildings[0], 2)
    (outside,) = n.residents(n.buildings[1], 1, start=301)
    other = Neighbourhood(platform)
    (stranger,) = other.residents(other.buildings[0], 1)
    draft = n.draft(author)
    submitted = n.draft(author)
    n.api("POST", f"/proposals/{submitted}/submit", author.token, expect=200)
    open_ = n.open_proposal(author)
    n.support(open_, resident)
    n.settled()
    before = n.heads()
    ok = {"title": "t", "body": "b", "category": "drainage", "scope": "building", "scope_id": n.buildings[0]}
    cases = [
        ("POST", "/proposals", author, {}, 422),
        ("POST", "/proposals", author, dict(ok, title=""), 422),
        ("POST", "/proposals", author, dict(ok, title="   "), 422),
        ("POST", "/proposals", author, dict(ok, title="x" * 121), 422),
        ("POST", "/proposals", author, dict(ok, body=""), 422),
        ("POST", "/proposals", author, dict(ok, body="x" * 5001), 422),
        ("POST", "/proposals", author, dict(ok, title=42), 422),
        ("POST", "/proposals", author, dict(ok, category="weather"), 422),
        ("POST", "/proposals", author, dict(ok, scope="street"), 422),
        ("POST", "/proposals", author, dict(ok, scope_id=None), 422),
        ("POST", "/proposals", author, dict(ok, scope_id=str(uuid.uuid4())), 404),  # unknown scope
        ("POST", "/proposals", author, dict(ok, scope="compound", scope_id=n.buildings[0]), 404),
        ("POST", "/proposals", author, dict(ok, surprise=1), 422),
        ("POST", "/proposals", stranger, ok, 404),  # a resident of another community
        ("POST", f"/proposals/{draft}/submit", resident, None, 404),  # someone else's draft
        ("POST", f"/proposals/{submitted}/submit", author, None, 409),  # wrong state
        ("POST", f"/proposals/{submitted}/submit", author, {"x": 1}, 422),  # takes no body
        ("POST", f"/proposals/{submitted}/screen", resident, {"admissible": True}, 403),
        ("POST", f"/proposals/{submitted}/screen", "worker", {"admissible": "yes"}, 422),
        ("POST", f"/proposals/{submitted}/screen", "worker", {"admissible": False}, 422),
        ("POST", f"/proposals/{submitted}/screen", "worker", {"admissible": False, "reason": ""}, 422),
        ("POST", f"/proposals/{submitted}/screen", "worker", {"admissible": True, "reason": "x" * 2001}, 422),
        ("POST", f"/proposals/{open_}/screen", "worker", {"admissible": True}, 409),
        ("POST", f"/proposals/{submitted}/supports", resident, None, 409),  # not collecting yet
        ("POST", f"/proposals/{open_}/supports", resident, None, 409),  # supporting twice
        ("POST", f"/proposals/{open_}/supports", outside, None, 403),  # lives outside the scope
        ("POST", f"/proposals/{open_}/supports", stranger, None, 404),
        ("POST", f"/proposals/{open_}/supports/withdraw", outside, None, 409),  # nothing to withdraw
        ("POST", f"/proposals/{open_}/withdraw", resident, None, 403),
        ("POST", f"/proposals/{open_}/merge", "worker", {"into": open_}, 422),
        ("POST", f"/proposals/{open_}/merge", "worker", {"into": "nope"}, 422),
        ("POST", f"/proposals/{open_}/merge", "worker", {"into": draft}, 404),
        ("POST", f"/proposals/{open_}/merge", resident, {"into": submitted}, 403),
        ("POST", f"/proposals/{uuid.uuid4()}/supports", resident, None, 404),
        ("POST", "/proposals/not-a-uuid/supports", resident, None, 404),
        ("GET", f"/proposals/{uuid.uuid4()}", resident, None, 404),
    ]
    for method, path, who, body, status in cases:
        token = n.worker_token if who == "worker" else who.token
        resp = n.api(method, path, token, body)
        assert resp.status_code == status, (path, body, resp.status_code, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["status"] == status and problem["title"] and problem["detail"]
    resp = n.platform.api("POST", n.base + "/proposals", author.token, data=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    assert n.api("POST", "/proposals", None, ok).status_code == 401
    wait_for(lambda: n.heads() == before, timeout=3, message="nothing recorded")
    assert n.heads() == before


def test_the_audit_log_holds_every_proposal_event_in_order(platform):
    n = Neighbourhood(platform)
    author, *residents = n.residents(n.buildings[0], 4)
    a = n.open_proposal(author)
    b = n.open_proposal(author)
    n.support(a, residents[0])
    n.support(b, residents[1])
    n.api("POST", f"/proposals/{a}/supports/withdraw", residents[0].token, expect=200)
    n.api("POST", f"/proposals/{a}/merge", n.worker_token, {"into": b}, expect=200)
    for r in residents[:3]:
        n.support(b, r, expect=None)
    audited = n.settled()
    events = n.proposal_events()
    assert [e["id"] for e in audited] == [e["id"] for e in events]
    positions = [e["position"] for e in audited]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert {e["type"] for e in audited} >= {
        "ProposalDrafted", "ProposalSubmitted", "ProposalScreened", "ProposalCollectionOpened", "SupportGiven",
        "SupportWithdrawn", "ProposalMerged", "ProposalMergeReceived", "ProposalQualified"}
    # The audited envelopes are exactly what the proposals log serves.
    assert audited == events


def test_the_proposal_routes_are_in_the_openapi_document(platform):
    doc = platform.api("GET", "/api/openapi.json", expect=200).json()
    c = "/api/v1/communities/{community}/proposals"
    assert {"post", "get"} <= set(doc["paths"][c])
    for suffix in ("/submit", "/screen", "/supports", "/supports/withdraw", "/withdraw", "/merge"):
        assert "post" in doc["paths"][c + "/{proposal}" + suffix], suffix
    assert doc["paths"][c + "/{proposal}/screen"]["post"]["x-roles"] == ["community_worker", "party_lead"]
    draft_schema = doc["paths"][c]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert draft_schema["properties"]["title"]["maxLength"] == 120
