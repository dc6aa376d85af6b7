"""Decisions over HTTP against the security and fairness findings: nobody votes for someone else
without that person's authorisation, proxies are limited and recorded (sealed on a secret ballot,
checkable by the voter), every id a command names belongs to the path's community, a second paper
ballot needs a correction with a reason, and the matters of Civil Code art. 278 need the law's rule.
Each refusal is shown to change nothing: not the decisions log, not the community's audit log, not
a read."""
from __future__ import annotations

import pytest

from rules import ART_278, seal
from services.common import clock
from tests.integration.decisions_world import NOTICE, VOTING, building_2, t0  # noqa: F401 - t0 is a fixture

pytestmark = pytest.mark.integration


def reads(w, ballot: str, *people: str) -> list[tuple[str, str | None]]:
    """Every read of the ballot, as the worker and as each of `people`."""
    out = [(f"/ballots/{ballot}", None), ("/ballots", None), (f"/ballots/{ballot}/board", None)]
    for who in people:
        out += [(f"/ballots/{ballot}/my-vote", who), (f"/ballots/{ballot}/proxies/mine", who),
                (f"/ballots/{ballot}/board", who)]
    return out


def open_secret_ballot(platform, w) -> str:
    ballot = w.ballot("owners_ordinary", secret=True)
    platform.set_clock(w.opens())
    w.wait_status(ballot, "open")
    return ballot


def test_a_vote_for_someone_else_without_their_authorisation_is_refused_and_changes_nothing(platform, t0):
    w = building_2(platform, t0)
    ballot = open_secret_ballot(platform, w)
    w.vote(ballot, "Chen", "disagree")  # Chen has voted, Sun has not
    forged = {"choice": "agree", "voter": w.people["Sun"], "proxy_authorisation": "I authorise (forged)"}
    with w.nothing_recorded(*reads(w, ballot, "Sun", "Chen", "Zhou")):
        # The finding's request: a written text is no authorisation (and is not part of the API).
        assert w.api("POST", f"/ballots/{ballot}/votes", "Zhou", forged).status_code == 422
        refusals = [w.api("POST", f"/ballots/{ballot}/votes", "Zhou", {"choice": "agree", "voter": w.people[v]})
                    for v in ("Sun", "Chen")]
    # The same refusal whether or not the voter has voted: it tells Zhou nothing about either.
    assert [r.status_code for r in refusals] == [403, 403]
    assert refusals[0].json()["detail"] == refusals[1].json()["detail"]
    assert "no proxy authorisation" in refusals[0].json()["detail"]
    # The real voter's own vote is still accepted.
    receipt = w.vote(ballot, "Sun", "agree").json()["receipt"]
    assert w.api("GET", f"/ballots/{ballot}/my-vote", "Sun", expect=200).json()["receipt"] == receipt


def test_a_proxy_votes_on_an_authorisation_given_on_the_platform_or_on_paper(platform, t0):
    w = building_2(platform, t0)
    ballot = open_secret_ballot(platform, w)
    zhou = w.people["Zhou"]
    given = w.api("POST", f"/ballots/{ballot}/proxies", "Sun", {"holder": zhou}, expect=201).json()
    assert (given["holder"], given["source"], given["active"]) == (zhou, "platform", True)
    w.api("POST", f"/ballots/{ballot}/paper-proxies", "worker",
          {"principal": w.people["Liu"], "holder": zhou, "paper_serial": "委托-001"}, expect=201)
    w.api("POST", f"/ballots/{ballot}/paper-proxies", "Liu",  # a resident cannot record paper authorisations
          {"principal": w.people["Wang"], "holder": zhou, "paper_serial": "委托-002"}, expect=403)
    for method, args in (("record_paper_proxy", (w.people["Wang"], zhou, "委托-002")),  # nor past the gateway
                         ("enter_paper_ballot", (w.people["Wang"], "agree", "P-9"))):
        with pytest.raises(AssertionError, match="only a community worker"):
            platform.rpc("decisions", method, w.people["Liu"], w.community, ballot, *args)
    for principal in ("Sun", "Liu"):
        w.api("POST", f"/ballots/{ballot}/votes", "Zhou", {"choice": "agree", "voter": w.people[principal]},
              expect=201)

    # The principal sees who cast the vote, and checks the record's seals with the salts given to them.
    mine = w.api("GET", f"/ballots/{ballot}/my-vote", "Sun", expect=200).json()
    assert (mine["choice"], mine["channel"], mine["cast_by"]) == ("agree", "proxy", zhou)
    [cast] = [e for e in w.wait_audit(ballot, "VoteCast", 2) if e["data"]["receipt"] == mine["receipt"]]
    assert cast["data"]["cast_by"] is None and cast["actor"] == "sealed"
    assert seal(zhou, mine["seals"]["cast_by_salt"]) == cast["data"]["cast_by_seal"]
    assert seal("agree", mine["seals"]["salt"]) == cast["data"]["sealed_choice"]
    # Nobody else reads it: each person's my-vote is their own.
    assert w.api("GET", f"/ballots/{ballot}/my-vote", "Zhou").status_code == 404
    [authorised, _paper] = w.wait_audit(ballot, "ProxyAuthorised", 2)
    assert (authorised["data"]["principal"], authorised["data"]["holder"], authorised["actor"]) == (None, None,
                                                                                                     "sealed")

    # Once the proxy has voted the authorisation stands, and the principal's own vote meets the one-channel rule.
    with w.nothing_recorded(*reads(w, ballot, "Sun")):
        assert w.api("DELETE", f"/ballots/{ballot}/proxies/mine", "Sun").status_code == 409
    refused = w.vote(ballot, "Sun", "disagree", expect=409).json()
    assert "a proxy vote was recorded first" in refused["detail"]

    # A holder holds at most 3 (the community's default): the fourth authorisation changes nothing.
    w.api("POST", f"/ballots/{ballot}/proxies", "Zhang", {"holder": zhou}, expect=201)
    with w.nothing_recorded(*reads(w, ballot, "Wang", "Zhou")):
        over = w.api("POST", f"/ballots/{ballot}/proxies", "Wang", {"holder": zhou})
    assert over.status_code == 409 and "allows 3 per person" in over.json()["detail"]
    # An authorisation not yet used is revoked by its principal, and then no longer lets the proxy vote.
    assert w.api("DELETE", f"/ballots/{ballot}/proxies/mine", "Zhang", expect=200).json()["active"] is False
    with w.nothing_recorded(*reads(w, ballot, "Zhang")):
        w.api("POST", f"/ballots/{ballot}/votes", "Zhou", {"choice": "agree", "voter": w.people["Zhang"]},
              expect=403)
    w.api("POST", f"/ballots/{ballot}/proxies", "Wang", {"holder": zhou}, expect=201)

    platform.set_clock(w.closes())
    view = w.wait_status(ballot, "adopted", "rejected")
    assert (view["result"]["participating_heads"], view["result"]["agreeing_heads"]) == (2, 2)
    assert platform.cli("decisions", "retally", ballot).stdout.startswith("MATCH")


def test_ids_of_another_community_are_not_found_in_the_decisions_service(platform, t0):
    w = building_2(platform, t0)
    other = platform.new_community("另一个社区 another community")
    base = f"/api/v1/communities/{other['id']}"
    compound = platform.api("POST", base + "/compounds", other["token"], {"name": "1号院"}, expect=201).json()["id"]
    building = platform.api("POST", base + "/buildings", other["token"], {"compound": compound, "name": "9栋"},
                            expect=201).json()["id"]
    stranger = platform.api("POST", base + "/people", other["token"], {"name": "外人", "effective": "2020-01-01"},
                            expect=201).json()["id"]
    foreign = platform.api("POST", base + "/ballots", other["token"], {"title": "他们的 theirs", "scope": "community"},
                           expect=201).json()["id"]

    with w.nothing_recorded(("/ballots", None)):
        for method, path, body in (
            ("GET", f"/ballots/{foreign}", None),
            ("PUT", f"/ballots/{foreign}/configuration", {"preset": "council", "voting_unit": "council",
                                                          "opens_at": "2030-01-01T00:00:00Z",
                                                          "closes_at": "2030-01-02T00:00:00Z"}),
            ("POST", f"/ballots/{foreign}/votes", {"choice": "agree"}),
            ("POST", f"/ballots/{foreign}/proxies", {"holder": w.people["Zhou"]}),
            ("POST", f"/ballots/{foreign}/annulment", {"reason": "x"}),
            ("POST", "/emergencies", {"justification": "y", "ballot": foreign}),
        ):
            answer = w.api(method, path, body=body)
            assert answer.status_code == 404 and f"ballot {foreign} does not exist" in answer.json()["detail"], \
                (path, answer.text)
        for scope, scope_id in (("building", building), ("compound", compound)):
            answer = w.api("POST", "/ballots", body={"title": "x", "scope": scope, "scope_id": scope_id})
            assert answer.status_code == 404 and scope in answer.json()["detail"], answer.text
            answer = w.api("POST", "/emergencies", body={"title": "x", "justification": "y", "scope": scope,
                                                         "scope_id": scope_id})
            assert answer.status_code == 404, answer.text

    ballot = open_secret_ballot(platform, w)
    with w.nothing_recorded(*reads(w, ballot, "Zhou")):
        for method, path, who, body in (
            ("POST", "/paper-ballots", "worker", {"voter": stranger, "choice": "agree", "paper_serial": "X-1"}),
            ("POST", "/votes", "Zhou", {"voter": stranger, "choice": "agree"}),
            ("POST", "/proxies", "Zhou", {"holder": stranger}),
            ("POST", "/paper-proxies", "worker", {"principal": stranger, "holder": w.people["Zhou"],
                                                  "paper_serial": "X-2"}),
            ("POST", "/paper-proxies", "worker", {"principal": w.people["Li"], "holder": stranger,
                                                  "paper_serial": "X-3"}),
        ):
            answer = w.api(method, f"/ballots/{ballot}{path}", who, body)
            assert answer.status_code == 404 and "does not exist in this community" in answer.json()["detail"], \
                (path, answer.text)


def test_a_second_paper_ballot_is_refused_unless_a_worker_records_a_correction_with_a_reason(platform, t0):
    w = building_2(platform, t0)
    ballot = w.ballot("owners_ordinary", changeable=False)
    platform.set_clock(w.opens())
    w.wait_status(ballot, "open")
    paper = f"/ballots/{ballot}/paper-ballots"
    first = w.api("POST", paper, body={"voter": "developer", "choice": "agree", "paper_serial": "P-1"},
                  expect=201).json()
    with w.nothing_recorded(*reads(w, ballot)):
        second = w.api("POST", paper, body={"voter": "developer", "choice": "disagree", "paper_serial": "P-2"})
        assert second.status_code == 409 and "correction" in second.json()["detail"]
        # A correction of nothing is refused too.
        assert w.api("POST", paper, body={"voter": w.people["Chen"], "choice": "agree", "paper_serial": "P-3",
                                          "correction_reason": "x"}).status_code == 409
    reason = "P-1 是陈家的选票，误录在开发商名下 P-1 was Chen's ballot, entered under the developer by mistake"
    fixed = w.api("POST", paper, body={"voter": "developer", "choice": "disagree", "paper_serial": "P-2",
                                       "correction_reason": reason}, expect=201).json()
    assert fixed["version"] == 2 and fixed["receipt"] != first["receipt"]
    [correction] = w.view(ballot)["corrections"]
    assert (correction["reason"], correction["paper_serial"], correction["replaces_serial"],
            correction["entered_by"]) == (reason, "P-2", "P-1", w.people["worker"])
    [entry] = w.api("GET", f"/ballots/{ballot}/board?receipt={fixed['receipt']}", "Wang", expect=200).json()["entries"]
    assert entry["correction"] == {"reason": reason}
    [changed] = w.wait_audit(ballot, "VoteChanged")
    assert changed["data"]["correction_reason_commitment"] == correction["reason_commitment"]
    assert reason not in str(changed)  # the reason is a commitment; the text is erasable


def test_matters_of_art_278_are_not_configured_on_a_weaker_rule(platform, t0):
    w = building_2(platform, t0)
    opens = w.t0 + NOTICE
    times = {"opens_at": clock.format(opens), "closes_at": clock.format(opens + VOTING)}
    residents = {"preset": "residents_meeting", "voting_unit": "resident", **times}
    weaker = {"owners_major": {"preset": "owners_ordinary", "voting_unit": "owner", **times},
              "owners_ordinary": residents}
    for category, matter in ART_278.items():
        ballot = w.api("POST", "/ballots", body={"title": matter.zh, "scope": "building", "scope_id": w.building,
                                                 "category": category}, expect=201).json()["id"]
        with w.nothing_recorded(*reads(w, ballot)):
            refused = w.api("PUT", f"/ballots/{ballot}/configuration", body=weaker[matter.minimum])
        assert refused.status_code == 422 and "art. 278" in refused.json()["detail"], (category, refused.text)
        assert f"item {matter.item}" in refused.json()["detail"]
        w.api("PUT", f"/ballots/{ballot}/configuration", expect=200,
              body={"preset": matter.minimum, "voting_unit": "owner", **times})
    # A category the law does not name keeps working on any rule.
    ordinary = w.api("POST", "/ballots", body={"title": "绿地 green space", "scope": "building",
                                               "scope_id": w.building, "category": "green_space"},
                     expect=201).json()["id"]
    w.api("PUT", f"/ballots/{ordinary}/configuration", body=residents, expect=200)
    # The names are documented where clients look for them.
    doc = platform.api("GET", "/api/openapi.json", expect=200).json()
    category = doc["paths"]["/api/v1/communities/{community}/ballots"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["category"]
    assert set(category["examples"]) == set(ART_278) and "art. 278" in category["description"]
