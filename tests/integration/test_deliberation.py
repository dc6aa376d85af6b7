"""Deliberation (议事) end to end through the gateway, the real bus and the audit log: the
green-space dispute of DOMAIN.md played through, and the refusals the issue asks for."""
from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock
from tests.harness import wait_for, frozen_now

pytestmark = pytest.mark.integration
SINCE = "2020-01-01"


class GreenSpace:
    """Compound 3 of S community: the lawn some households plant vegetables on.

    Xu is the party-committee lead, Lin the community worker (and moderator, and secretary),
    Wang the compound's grid leader, Li building 2's leader, Qian the property company's manager;
    Zhang, Chen and Liu live in building 2; Zhou lives in another compound.
    """

    PEOPLE = {"xu": None, "wang": "101", "li": "102", "qian": None, "zhang": "201", "chen": "301", "liu": "302",
              "zhou": "other"}

    def __init__(self, platform, rules: dict | None = None):
        self.platform = platform
        c = platform.new_community("S社区")
        self.id, self.base = c["id"], f"/api/v1/communities/{c['id']}"
        self.people, self.tokens = {"lin": c["worker"]}, {"lin": c["token"]}
        with self._directory() as d:
            if rules:
                d("change_rules", "tests", self.id, rules)
            self.compound = d("add_compound", "tests", self.id, "3号院坝")["id"]
            self.building = d("add_building", "tests", self.id, self.compound, "2栋")["id"]
            other = d("add_compound", "tests", self.id, "5号院坝")["id"]
            elsewhere = d("add_building", "tests", self.id, other, "1栋")["id"]
            for name, unit in self.PEOPLE.items():
                household = None
                if unit:
                    building = elsewhere if unit == "other" else self.building
                    household = d("register_household", "tests", self.id, building, unit if unit != "other" else "101",
                                  "75", [], None, True, SINCE)["id"]
                self.people[name] = d("register_person", "tests", self.id, name, True, household, SINCE)["id"]
                self.tokens[name] = d("issue_token", self.id, self.people[name], 30, "tests")["token"]
            for name, role, scope in (("xu", "party_lead", None), ("wang", "grid_leader", self.compound),
                                      ("li", "building_leader", self.building), ("qian", "property_company", None),
                                      ("lin", "moderator", None), ("zhang", "resident", None),
                                      ("chen", "resident", None), ("liu", "resident", None),
                                      ("zhou", "resident", None)):
                d("grant_role", "tests", self.id, self.people[name], role, scope, SINCE)

    @contextmanager
    def _directory(self):
        cluster = self.platform.rpc_proxy()
        proxy = cluster.start()

        def call(method, *args):
            reply = getattr(proxy.communities, method)(*args)
            assert reply["ok"], reply
            return reply["result"]

        try:
            yield call
        finally:
            cluster.stop()

    def api(self, method: str, path: str, who: str, body=None, expect: int | None = None):
        return self.platform.api(method, self.base + path, self.tokens[who], body, expect=expect)

    def refused(self, method: str, path: str, who: str, body, status: int, code: str, match: str) -> dict:
        resp = self.api(method, path, who, body)
        assert resp.status_code == status, (path, resp.status_code, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["code"] == code and re.search(match, problem["detail"]), problem
        return problem

    def audited(self, case: str | None = None) -> list[dict]:
        return self.platform.audit_entries(self.id, self.tokens["lin"], case)


@contextmanager
def frozen_clock(platform, at: datetime):
    platform.set_clock(at)
    try:
        yield
    finally:
        platform.set_clock(None)


def test_the_green_space_dispute_from_opening_to_a_prepared_ballot(platform):
    w = GreenSpace(platform, rules={"flags_to_hide": 2})
    p = w.people
    t0 = frozen_now()
    with frozen_clock(platform, t0):
        # The party committee raises the topic; the 1+2 of the body come from the directory.
        opened = w.api("POST", "/consultations", "lin", {
            "title": "3号院坝草坪种菜问题", "description": "部分住户在公共草坪种菜，物业反对，邻里争执。",
            "scope": "compound", "scope_id": w.compound, "category": "green_space"}, expect=201).json()
        cid = opened["id"]
        path = f"/consultations/{cid}"
        body = {(m["person"], m["role"]) for m in w.api("GET", path, "zhang", expect=200).json()["body"]}
        assert body == {(p["xu"], "convener"), (p["wang"], "grid_leader"), (p["li"], "building_leader")}

        # The X: the property company and an affected resident accept; another resident declines.
        for name, role in (("qian", "property_company"), ("zhang", "resident"), ("liu", "resident")):
            w.api("POST", path + "/invitations", "xu", {"person": p[name], "role": role}, expect=201)
        w.refused("POST", path + "/invitations", "wang", {"person": p["chen"], "role": "resident"}, 403, "Forbidden",
                  "convener")
        w.api("POST", path + "/invitation-answers", "qian", {"role": "property_company", "accept": True}, expect=200)
        w.api("POST", path + "/invitation-answers", "zhang", {"role": "resident", "accept": True}, expect=200)
        w.api("POST", path + "/invitation-answers", "liu", {"role": "resident", "accept": False,
                                                            "reason": "工作忙，无法参加"}, expect=200)

        # Discussion: for and against in the body's session, a question from the compound, a thread.
        pro = w.api("POST", path + "/comments", "zhang", {"text": "种菜让草坪有人打理", "stance": "for",
                                                          "venue": "body"}, expect=201).json()["id"]
        contra = w.api("POST", path + "/comments", "qian", {"text": "草坪是全体业主的共有部分", "stance": "against",
                                                            "venue": "body", "reply_to": pro}, expect=201).json()["id"]
        question = w.api("POST", path + "/comments", "chen", {"text": "浇水用谁家的水？", "stance": "question"},
                         expect=201).json()["id"]
        w.refused("POST", path + "/comments", "chen", {"text": "我也想在会上说", "stance": "for", "venue": "body"},
                  403, "NotInBody", "members of the consultation body")
        w.refused("POST", path + "/comments", "zhou", {"text": "隔壁院坝路过", "stance": "neutral"}, 403, "Forbidden",
                  "residents of the consultation's scope")
        w.api("POST", f"/comments/{pro}/edits", "zhang", {"text": "种菜让草坪有人打理，也省了物业费"}, expect=201)
        rude = w.api("POST", path + "/comments", "liu", {"text": "物业就是来收钱的骗子", "stance": "against"},
                     expect=201).json()["id"]
        w.refused("POST", f"/comments/{rude}/hiding", "zhang", {"reason": "x"}, 403, "Forbidden", "moderator")
        w.api("POST", f"/comments/{rude}/hiding", "lin", {"reason": "人身攻击"}, expect=200)
        flagged = w.api("POST", path + "/comments", "chen", {"text": "种菜的都是自私鬼", "stance": "against"},
                        expect=201).json()["id"]
        w.api("POST", f"/comments/{flagged}/flags", "zhang", expect=201)
        assert w.api("POST", f"/comments/{flagged}/flags", "wang", expect=201).json() == {"flags": 2, "hidden": True}

        # Two options and an amendment, ruled on by the convener with reasons; the final list.
        restore = w.api("POST", path + "/options", "qian", {"title": "恢复草坪", "description": "清除菜地，恢复绿化"},
                        expect=201).json()["id"]
        plots = w.api("POST", path + "/options", "zhang", {"title": "划定菜地", "description": "在草坪一角划出菜地"},
                      expect=201).json()["id"]
        limit = w.api("POST", path + f"/options/{plots}/amendments", "wang",
                      {"description": "菜地不超过10平方米，轮流认种，期限一年"}, expect=201).json()["id"]
        fence = w.api("POST", path + f"/options/{plots}/amendments", "qian",
                      {"description": "菜地四周加装围栏，费用由种菜户承担"}, expect=201).json()["id"]
        w.refused("POST", path + f"/amendments/{limit}/ruling", "zhang", {"accept": True, "reason": "好"}, 403,
                  "Forbidden", "convener")
        w.api("POST", path + f"/amendments/{limit}/ruling", "xu", {"accept": True, "reason": "保留大部分绿地"},
              expect=200)
        w.api("POST", path + f"/amendments/{fence}/ruling", "xu", {"accept": False, "reason": "围栏影响通行"},
              expect=200)
        final = w.api("POST", path + "/final-options", "xu", {"options": [restore, plots]}, expect=200).json()
        assert final["final_options"] == [restore, plots]
        assert next(o for o in final["options"] if o["id"] == plots)["description"] == "菜地不超过10平方米，轮流认种，期限一年"

        # Meetings: too little notice is refused; the rule's notice is enough.
        def schedule(starts: datetime):
            return w.api("POST", path + "/meetings", "xu", {
                "starts_at": clock.format(starts), "mode": "on_site", "place": "社区活动室",
                "agenda": ["双方陈述", "讨论方案", "确定是否表决"], "secretary": p["lin"]})

        too_soon = schedule(t0 + timedelta(days=2))
        assert too_soon.status_code == 422 and too_soon.json()["code"] == "NoticeTooShort"
        assert "3 days' notice" in too_soon.json()["detail"]
        starts = t0 + timedelta(days=3)
        first = schedule(starts).json()["id"]
        second = schedule(starts).json()["id"]

    with frozen_clock(platform, starts):
        # Four of five present but no grid leader: refused for the missing role.
        for name in ("xu", "li", "qian", "zhang"):
            w.api("POST", f"/meetings/{first}/attendance", name, {}, expect=201)
        w.refused("POST", f"/meetings/{first}/opening", "xu", None, 409, "RequiredRolesAbsent", "grid_leader")
        w.api("POST", f"/meetings/{first}/cancellation", "xu", {"reason": "网格长未到，改期"}, expect=200)
        # Convener and grid leader present but two of five: refused for the quorum.
        for name in ("xu", "wang"):
            w.api("POST", f"/meetings/{second}/attendance", name, {}, expect=201)
        problem = w.refused("POST", f"/meetings/{second}/opening", "xu", None, 409, "QuorumNotMet",
                            "2 of the body's 5 members are present; the quorum of 2/3 needs 4")
        assert (problem["present"], problem["needed"]) == (2, 4)
        w.refused("POST", f"/meetings/{second}/attendance", "chen", {}, 403, "NotInBody", "body sign in")
        w.api("POST", f"/meetings/{second}/attendance", "lin", {"person": p["li"]}, expect=201)  # paper sign-in
        w.api("POST", f"/meetings/{second}/attendance", "qian", {}, expect=201)
        held = w.api("POST", f"/meetings/{second}/opening", "xu", expect=200).json()
        assert held["status"] == "opened" and held["quorum"]["body_size"] == 5 and len(held["quorum"]["present"]) == 4
        assert {a["person"]: a["roles"] for a in held["attendance"]}[p["li"]] == ["building_leader"]

        # Minutes by the secretary, confirmed by the convener and the grid leader; then frozen.
        minutes = w.api("POST", f"/meetings/{second}/minutes", "lin", {"text": "物业主张恢复草坪；张伟主张划定菜地。"},
                        expect=201).json()["id"]
        w.api("POST", f"/minutes/{minutes}/signatures", "xu", expect=201)
        w.refused("POST", f"/minutes/{minutes}/signatures", "qian", None, 403, "Forbidden", "none of these roles")
        assert w.api("POST", f"/minutes/{minutes}/signatures", "wang", expect=201).json()["confirmed"] is True
        w.refused("POST", f"/minutes/{minutes}/revisions", "lin", {"text": "改写"}, 409, "MinutesAlreadyConfirmed",
                  "cannot be altered")
        correction = w.api("POST", f"/minutes/{minutes}/corrections", "lin",
                           {"text": "更正：菜地方案经网格长修正为不超过10平方米。"}, expect=201).json()
        assert correction["corrects"] == minutes and correction["confirmed"] is False
        w.api("POST", f"/meetings/{second}/closing", "lin", expect=200)

        # The deliberation concludes: a vote is needed on the two options.
        done = w.api("POST", path + "/conclusion", "xu", {
            "outcome": "vote_needed", "summary": "两个方案分歧明显，交由业主表决", "meeting": second,
            "suggested_rule": "owners_major"}, expect=200).json()
        assert done["status"] == "concluded" and done["conclusion"]["outcome"] == "vote_needed"

    # Everything is in the audit log under the consultation's case, exactly once.
    def concluded():
        return [e for e in w.audited(cid) if e["type"] == "DeliberationConcluded"]

    [entry] = wait_for(concluded, timeout=20, message="DeliberationConcluded in the audit log")
    entries = w.audited(cid)
    types = [e["type"] for e in entries]
    for expected in ("ConsultationOpened", "BodyMemberInvited", "InvitationAccepted", "InvitationDeclined",
                     "CommentPosted", "CommentEdited", "CommentHidden", "CommentFlagged", "OptionProposed",
                     "AmendmentProposed", "AmendmentAccepted", "AmendmentRejected", "OptionListFinalised",
                     "MeetingScheduled", "AttendeeSignedIn", "MeetingCancelled", "MeetingOpened",
                     "MinutesRecorded", "MinutesSigned", "MinutesConfirmed", "MeetingClosed"):
        assert expected in types, expected
    assert len({e["event_id"] for e in entries}) == len(entries)
    recorded = [e["envelope"]["data"] for e in entries if e["type"] == "MinutesRecorded"]
    assert [r["corrects"] for r in recorded] == [None, minutes]
    data = entry["envelope"]["data"]
    assert data["consultation"] == cid and data["outcome"] == "vote_needed" and data["proposal"] is None
    assert [o["id"] for o in data["options"]] == [restore, plots] and data["convener"] == p["xu"]
    assert data["scope"] == "compound" and data["scope_id"] == w.compound and data["category"] == "green_space"
    assert "草坪" not in entry["canonical"], "free text enters the record only as commitments"

    # The hidden comment: its commitment stays in the record, its text is gone from reads.
    posted = next(e for e in entries if e["type"] == "CommentPosted" and e["envelope"]["aggregate"]["id"] == rude)
    read = w.api("GET", f"/comments/{rude}", "chen", expect=200).json()
    assert read["hidden"] and read["text"] is None and read["hidden_reason"] == "人身攻击"
    assert read["text_commitment"] == posted["envelope"]["data"]["text_commitment"]
    page = w.api("GET", path + "/comments", "zhou", expect=200).json()["comments"]
    assert "物业就是来收钱的骗子" not in str(page) and "种菜的都是自私鬼" not in str(page)
    assert [c["id"] for c in page][:3] == [pro, contra, question] and page[1]["reply_to"] == pro
    assert w.api("GET", f"/comments/{pro}", "zhou", expect=200).json()["history"][0]["text"] == "种菜让草坪有人打理"

    # The decision stage turns the conclusion into a prepared ballot (when it runs here).
    if "decisions" in platform.services:
        def ballot():
            return [e for e in w.audited() if e["source"] == "decisions"
                    and e["envelope"]["causation"] == entry["event_id"]]

        [prepared] = wait_for(ballot, timeout=30, message="the ballot prepared from the conclusion")
        assert prepared["type"] == "BallotPrepared" and prepared["case"] == cid
        assert [o["id"] for o in prepared["envelope"]["data"]["options"]] == [restore, plots]


def test_a_resolution_by_agreement_reaches_the_audit_log_with_its_reason(platform):
    w = GreenSpace(platform)
    p = w.people
    t0 = frozen_now()
    with frozen_clock(platform, t0):
        cid = w.api("POST", "/consultations", "xu", {"title": "草坪", "description": "种菜", "scope": "building",
                                                     "scope_id": w.building, "category": "green_space"},
                    expect=201).json()["id"]
        path = f"/consultations/{cid}"
        meeting = w.api("POST", path + "/meetings", "xu", {
            "starts_at": clock.format(t0 + timedelta(days=3)), "mode": "online", "place": "线上会议室",
            "agenda": ["协商"], "secretary": p["lin"]}, expect=201).json()["id"]
    with frozen_clock(platform, t0 + timedelta(days=3)):
        for name in ("xu", "wang", "li"):
            w.api("POST", f"/meetings/{meeting}/attendance", name, {}, expect=201)
        w.api("POST", f"/meetings/{meeting}/opening", "xu", expect=200)
        minutes = w.api("POST", f"/meetings/{meeting}/minutes", "lin", {"text": "种菜户同意自行清除"},
                        expect=201).json()["id"]
        w.refused("POST", path + "/conclusion", "xu", {"outcome": "agreed", "summary": "恢复草坪",
                                                       "meeting": meeting, "reason": "种菜户自愿"},
                  409, "Conflict", "minutes must be confirmed")
        for name in ("xu", "wang"):
            w.api("POST", f"/minutes/{minutes}/signatures", name, expect=201)
        w.refused("POST", path + "/conclusion", "xu", {"outcome": "agreed", "summary": "恢复草坪",
                                                       "meeting": meeting}, 422, "InvalidInput", "reason")
        w.api("POST", path + "/conclusion", "xu", {"outcome": "agreed", "summary": "恢复草坪", "meeting": meeting,
                                                   "reason": "种菜户自愿清除，无需表决"}, expect=200)
    [entry] = wait_for(lambda: [e for e in w.audited(cid) if e["type"] == "DeliberationConcluded"],
                       message="the agreed conclusion in the audit log")
    data = entry["envelope"]["data"]
    assert data["outcome"] == "agreed" and len(data["reason_commitment"]) == 64 and data["options"] == []
    view = w.api("GET", f"/consultations/{cid}", "zhang", expect=200).json()
    assert view["conclusion"]["reason"] == "种菜户自愿清除，无需表决"


def test_bad_input_and_wrong_permissions_get_problems_and_record_nothing(platform):
    w = GreenSpace(platform)
    p = w.people
    cid = w.api("POST", "/consultations", "lin", {"title": "排水", "description": "院坝积水", "scope": "compound",
                                                  "scope_id": w.compound, "category": "drainage"},
                expect=201).json()["id"]
    path = f"/consultations/{cid}"
    comment = w.api("POST", path + "/comments", "zhang", {"text": "赞成", "stance": "for"}, expect=201).json()["id"]
    wait_for(lambda: len(w.audited(cid)) >= 2, message="the setup in the audit log")
    head = platform.rpc("deliberation", "log_head")
    cases = [
        ("POST", "/consultations", "zhang", {"title": "t", "description": "d", "scope": "community",
                                             "category": "drainage"}, 403),
        ("POST", "/consultations", "lin", {"title": "t", "description": "d", "scope": "estate",
                                           "category": "drainage"}, 422),
        ("POST", "/consultations", "lin", {"title": "t", "description": "d", "scope": "compound",
                                           "scope_id": str(uuid.uuid4()), "category": "drainage"}, 422),
        ("POST", "/consultations", "lin", {"title": "t", "description": "d", "scope": "community",
                                           "category": "gardening"}, 422),
        ("POST", "/consultations", "lin", {"title": "", "description": "d", "scope": "community",
                                           "category": "drainage"}, 422),
        ("POST", path + "/comments", "zhang", {"text": "x", "stance": "angry"}, 422),
        ("POST", path + "/comments", "zhang", {"text": "", "stance": "for"}, 422),
        ("POST", path + "/comments", "zhang", {"text": "x" * 5001, "stance": "for"}, 422),
        ("POST", path + "/comments", "zhang", {"text": "x", "stance": "for", "reply_to": str(uuid.uuid4())}, 404),
        ("POST", path + "/comments", "zhou", {"text": "x", "stance": "for"}, 403),
        ("POST", f"/consultations/{uuid.uuid4()}/comments", "zhang", {"text": "x", "stance": "for"}, 404),
        ("POST", "/consultations/not-a-uuid/comments", "zhang", {"text": "x", "stance": "for"}, 404),
        ("POST", f"/comments/{comment}/edits", "chen", {"text": "改"}, 403),
        ("POST", f"/comments/{comment}/flags", "zhang", None, 409),
        ("POST", f"/comments/{comment}/hiding", "lin", {}, 422),
        ("POST", path + "/invitations", "xu", {"person": str(uuid.uuid4()), "role": "expert"}, 404),
        ("POST", path + "/invitations", "xu", {"person": p["chen"], "role": "grid_leader"}, 422),
        ("POST", path + "/invitation-answers", "chen", {"role": "resident", "accept": True}, 409),
        ("POST", path + "/options", "chen", {"title": "t", "description": "d"}, 403),
        ("POST", path + "/final-options", "xu", {"options": [str(uuid.uuid4())]}, 422),
        ("POST", path + "/meetings", "xu", {"starts_at": "tomorrow", "mode": "on_site", "place": "x",
                                            "agenda": ["a"], "secretary": p["lin"]}, 422),
        ("POST", path + "/meetings", "xu", {"starts_at": "2099-01-01T10:00:00", "mode": "on_site",
                                            "place": "x", "agenda": ["a"], "secretary": p["lin"]}, 422),
        ("POST", path + "/meetings", "xu", {"starts_at": "2099-01-01T10:00:00Z", "mode": "on_site", "place": "x",
                                            "agenda": [], "secretary": p["lin"]}, 422),
        ("POST", path + "/meetings", "wang", {"starts_at": "2099-01-01T10:00:00Z", "mode": "on_site",
                                              "place": "x", "agenda": ["a"], "secretary": p["lin"]}, 403),
        ("POST", path + "/conclusion", "xu", {"outcome": "maybe", "summary": "s", "meeting": str(uuid.uuid4())},
         422),
        ("POST", path + "/conclusion", "xu", {"outcome": "agreed", "summary": "s", "meeting": str(uuid.uuid4()),
                                              "reason": "r"}, 404),
        ("POST", path + "/convener", "lin", {"person": p["lin"]}, 403),
        ("GET", f"/meetings/{uuid.uuid4()}", "zhang", None, 404),
        ("GET", f"/minutes/{uuid.uuid4()}", "zhang", None, 404),
    ]
    for method, route, who, body, status in cases:
        resp = w.api(method, route, who, body)
        assert resp.status_code == status, (method, route, body, resp.status_code, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["status"] == status and problem["title"] and problem["detail"]
    assert platform.rpc("deliberation", "log_head") == head, "a refused command records nothing"
    # Another community's token sees nothing of this one.
    other = platform.new_community("B")
    assert platform.api("GET", f"{w.base}{path}", other["token"]).status_code == 404


def test_every_deliberation_route_is_in_the_openapi_document(platform):
    doc = platform.api("GET", "/api/openapi.json", expect=200).json()
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
           if op["tags"] == ["deliberation"]]
    assert len(ops) >= 25
    for path, method, op in ops:
        assert op["security"] == [{"bearer": []}], path
        assert op["responses"]["default"]["content"]["application/problem+json"], path
        if method == "post" and "requestBody" in op:
            assert op["requestBody"]["content"]["application/json"]["schema"]["type"] == "object", path
    paths = {path for path, _, _ in ops}
    for needed in ("/consultations", "/comments/{comment}/hiding", "/meetings/{meeting}/opening",
                   "/minutes/{minutes}/corrections", "/consultations/{consultation}/conclusion"):
        assert any(p.endswith(needed) for p in paths), needed
