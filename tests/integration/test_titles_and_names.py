"""People see what they are deciding (issue 13.1), over HTTP through every stage.

The drainage case of building 2 (DOMAIN.md), on the test clock: 王's proposal qualifies, the
consultation it opens weighs two options and concludes that a vote is needed; the ballot the
decision stage prepares from it shows the proposal's title and the consultation's options with
their texts; a vote for something that is not an option is refused naming the options by title,
in Chinese unless English is asked for; the plan the resolution opens names the adopted option and
links the resolution, as do the plans list and the board's results. Every list of people (the
consultation body, the meeting's attendance, the voter roll, comments and proposals' authors,
progress reporters) gives display names beside the ids, and a person whose texts were erased is
listed without one. Built once per backend (module-scoped), then read by each test.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common import clock
from tests.harness import frozen_now, wait_for

pytestmark = pytest.mark.integration

RESIDENTS = ("王", "李", "张", "刘")
TITLE = "疏通3号院排水沟"
REPLACE, CLEAR = ("更换排水管", "整体更换3号院坝2栋排水管"), ("局部疏通", "只疏通堵塞的一段")


class Drainage:
    def __init__(self, platform):
        self.platform = platform
        c = platform.new_community("S社区")
        self.id, self.base = c["id"], f"/api/v1/communities/{c['id']}"
        self.people, self.tokens = {"worker": c["worker"]}, {"worker": c["token"]}

    def rpc(self, method: str, *args):
        return self.platform.rpc("communities", method, "tests", *args)

    def person(self, name: str, household: str | None = None, role: str | None = None, scope: str | None = None):
        pid = self.rpc("register_person", self.id, name, True, household, None)["id"]
        if role:
            self.rpc("grant_role", self.id, pid, role, scope, None)
        self.people[name] = pid
        self.tokens[name] = self.platform.rpc("communities", "issue_token", self.id, pid, 90, "tests")["token"]

    def call(self, method: str, path: str, who: str = "worker", body=None, expect: int | None = None,
             language: str | None = "en"):
        return self.platform.api(method, self.base + path, self.tokens[who], body,
                                 headers={"Accept-Language": language}, expect=expect)

    def api(self, method: str, path: str, who: str = "worker", body=None, expect: int | None = 200):
        return self.call(method, path, who, body, expect).json()

    def ballot_status(self, ballot: str, *statuses: str) -> dict:
        return wait_for(lambda: (v := self.api("GET", f"/ballots/{ballot}"))["status"] in statuses and v,
                        timeout=60, message=f"the ballot to be {' or '.join(statuses)}")

    def build(self) -> "Drainage":
        self.platform.rpc("communities", "change_rules", "tests", self.id, {
            "meeting_notice_days": 1, "ballot_notice_days": 1, "publicity_days": 1, "evaluation_window_days": 1})
        self.compound = self.rpc("add_compound", self.id, "3号院坝")["id"]
        self.building = self.rpc("add_building", self.id, self.compound, "2栋")["id"]
        for i, name in enumerate(RESIDENTS):
            unit = self.rpc("register_household", self.id, self.building, f"{101 + i}", "60", [], None, True,
                            None)["id"]
            self.person(name, unit)
        self.person("书记", role="party_lead")
        self.person("网格长", role="grid_leader", scope=self.compound)
        self.person("楼栋长", role="building_leader", scope=self.building)
        self.person("物业", role="property_company")
        t0 = frozen_now()
        self.platform.set_clock(t0)
        try:
            self._case(t0)
        finally:
            self.platform.set_clock(None)
        return self

    def _case(self, t0) -> None:
        p = self.platform
        self.proposal = self.api("POST", "/proposals", "王", {
            "title": TITLE, "body": "每逢雨季院坝积水，一楼进水。", "category": "drainage", "scope": "building",
            "scope_id": self.building}, expect=201)["id"]
        self.api("POST", f"/proposals/{self.proposal}/submit", "王")
        self.api("POST", f"/proposals/{self.proposal}/screen", "worker", {"admissible": True})
        for name in ("李", "张", "刘"):
            self.api("POST", f"/proposals/{self.proposal}/supports", name, expect=201)
        self.consultation = wait_for(lambda: [c for c in self.api("GET", "/consultations")
                                              if c["proposal"] == self.proposal], timeout=60,
                                     message="the consultation")[0]["id"]
        # Refusals of two more stages, each asked in English, in Chinese and with no language.
        self.withdrawals = {lang: self.call("POST", f"/proposals/{self.proposal}/withdraw", "王", language=lang)
                            for lang in ("en", "zh-CN", None)}
        path = f"/consultations/{self.consultation}"
        self.comment = self.api("POST", path + "/comments", "刘", {"text": "排水管老化，建议整体更换。", "stance": "for"},
                                expect=201)["id"]
        self.options = [self.api("POST", path + "/options", who, {"title": title, "description": text}, expect=201)["id"]
                        for who, (title, text) in (("书记", REPLACE), ("网格长", CLEAR))]
        self.api("POST", path + "/final-options", "书记", {"options": self.options})
        starts = t0 + timedelta(days=1, hours=1)
        self.meeting = self.api("POST", path + "/meetings", "书记", {
            "starts_at": clock.format(starts), "mode": "on_site", "place": "社区活动室", "agenda": ["排水沟维修方案"],
            "secretary": self.people["网格长"]}, expect=201)["id"]
        p.set_clock(starts)
        for name in ("书记", "网格长", "楼栋长"):
            self.api("POST", f"/meetings/{self.meeting}/attendance", name, {}, expect=201)
        self.api("POST", f"/meetings/{self.meeting}/opening", "书记")
        minutes = self.api("POST", f"/meetings/{self.meeting}/minutes", "网格长", {"text": "两个方案，交居民表决。"},
                           expect=201)["id"]
        for name in ("书记", "网格长"):
            self.api("POST", f"/minutes/{minutes}/signatures", name, expect=201)
        self.api("POST", f"/meetings/{self.meeting}/closing", "网格长")
        self.api("POST", path + "/conclusion", "书记", {"outcome": "vote_needed", "summary": "两个方案交由本栋居民表决",
                                                      "meeting": self.meeting})
        # The decision stage prepares the ballot from the conclusion: read it before it is configured.
        self.ballot = wait_for(lambda: self.api("GET", "/ballots"), timeout=60, message="the prepared ballot")[0]["id"]
        self.ballots_list = self.api("GET", "/ballots")
        self.prepared = self.api("GET", f"/ballots/{self.ballot}")
        opens = starts + timedelta(days=1, minutes=5)
        closes = opens + timedelta(days=3)
        self.api("PUT", f"/ballots/{self.ballot}/configuration", "worker", {
            "preset": "residents_meeting", "voting_unit": "resident", "opens_at": clock.format(opens),
            "closes_at": clock.format(closes)})
        p.set_clock(opens)
        self.ballot_status(self.ballot, "open")
        # A choice that is no option, refused: in English, in Chinese, and with no language asked for.
        bad = {"choice": "agree"}
        self.refusals = {lang: self.call("POST", f"/ballots/{self.ballot}/votes", "王", bad, language=lang)
                         for lang in ("en", "zh-CN", None)}
        self.self_proxies = {lang: self.call("POST", f"/ballots/{self.ballot}/proxies", "王",
                                             {"holder": self.people["王"]}, language=lang)
                             for lang in ("en", "zh-CN", None)}
        for name, option in (("王", 0), ("李", 0), ("张", 0), ("刘", 1)):
            self.api("POST", f"/ballots/{self.ballot}/votes", name, {"choice": self.options[option]}, expect=201)
        self.roll = self.api("GET", f"/ballots/{self.ballot}/roll")
        p.set_clock(closes + timedelta(seconds=1))
        self.ballot_status(self.ballot, "adopted")
        p.set_clock(closes + timedelta(days=1, seconds=2))
        self.final = self.ballot_status(self.ballot, "final")
        self.plans_list = wait_for(lambda: self.api("GET", "/action-plans"), timeout=60, message="the action plan")
        self.plan = self.plans_list[0]["plan"]
        now = closes + timedelta(days=1, minutes=1)
        p.set_clock(now)
        task = self.api("POST", f"/action-plans/{self.plan}/tasks", "worker", {
            "title": "更换排水管", "responsible_party": {"kind": "property_company", "person": self.people["物业"]},
            "due_at": clock.format(now + timedelta(days=1))}, expect=201)["task"]
        self.api("POST", f"/action-plans/{self.plan}/tasks/{task}/progress", "物业", {"percent": 100, "note": "已更换"},
                 expect=201)
        self.api("POST", f"/action-plans/{self.plan}/done", "worker", {"summary": "排水管已更换"})


@pytest.fixture(scope="module")
def case(platform):
    if "decisions" not in platform.services or "actions" not in platform.services:
        pytest.skip("the case needs every stage")
    return Drainage(platform).build()


def test_the_ballot_prepared_from_the_deliberation_shows_its_title_and_options(case):
    assert [b["title"] for b in case.ballots_list] == [TITLE], "the proposal's title, from the proposals stage"
    view = case.prepared
    assert view["consultation"] == case.consultation and view["title"] == TITLE
    assert view["description"] == "两个方案交由本栋居民表决", "the conclusion's summary, from the deliberation stage"
    assert [(o["id"], o["title"], o["description"]) for o in view["options"]] == [
        (case.options[0], *REPLACE), (case.options[1], *CLEAR)]
    configured = case.api("GET", f"/ballots/{case.ballot}")["configuration"]["options"]
    assert [o["title"] for o in configured] == [REPLACE[0], CLEAR[0]]


def test_a_refused_choice_names_the_options_by_title_in_the_language_asked(case):
    en, zh, default = (case.refusals[k] for k in ("en", "zh-CN", None))
    for resp in (en, zh, default):
        assert resp.status_code == 422 and resp.headers["Content-Type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["type"] == "https://consult.example/problems/InvalidInput" and problem["code"] == "InvalidInput"
        assert problem["options"] == [{"id": case.options[0], "title": REPLACE[0]},
                                      {"id": case.options[1], "title": CLEAR[0]}]
        assert REPLACE[0] in problem["detail"] and CLEAR[0] in problem["detail"] and "i18n" not in problem
    assert en.json()["title"] == "Invalid input" and en.json()["detail"].startswith("invalid choice:")
    assert en.headers["Content-Language"] == "en"
    assert zh.json()["title"] == "输入无效" and zh.json()["detail"].startswith("选择无效：")
    assert default.json() == zh.json() and default.headers["Content-Language"] == "zh-CN"


@pytest.mark.parametrize("refusals, status, code, en, zh", [
    ("withdrawals", 409, "Conflict", "this proposal has qualified; it can no longer be withdrawn",
     "此提案已达到附议门槛；不能再撤回"),
    ("self_proxies", 422, "InvalidInput", "a voter cannot be their own proxy", "投票人不能做自己的代理人"),
])
def test_a_stages_refusal_reads_in_the_language_asked_with_the_same_type(case, refusals, status, code, en, zh):
    """A proposals conflict and a decisions refusal, raised in their services, worded at the gateway."""
    answers = getattr(case, refusals)
    problems = {lang: resp.json() for lang, resp in answers.items()}
    assert {resp.status_code for resp in answers.values()} == {status}
    assert {p["type"] for p in problems.values()} == {f"https://consult.example/problems/{code}"}
    assert problems["en"]["detail"] == en and problems["zh-CN"]["detail"] == zh
    assert problems[None] == problems["zh-CN"] and "i18n" not in problems["en"]


def test_the_plan_names_the_adopted_option_and_links_its_resolution(case):
    assert case.final["outcome"] == "adopted"
    resolution = f"{case.base}/ballots/{case.ballot}"
    [listed] = case.api("GET", "/action-plans")
    view = case.api("GET", f"/action-plans/{case.plan}")
    for plan in (listed, view):
        assert plan["title"] == TITLE
        assert plan["adopted_option"] == {"id": case.options[0], "title": REPLACE[0],
                                          "title_commitment": plan["adopted_option"]["title_commitment"]}
        assert plan["ballot"] == case.ballot and plan["resolution"] == resolution
    linked = case.platform.api("GET", resolution, case.tokens["王"], expect=200).json()
    assert linked["outcome"] == "adopted" and linked["result"]["winner"] == case.options[0]
    assert linked["adopted_option"] == {"id": case.options[0], "title": REPLACE[0]}
    bulletin = case.api("GET", f"/ballots/{case.ballot}/board", "王")
    assert bulletin["options"] == [{"id": case.options[0], "title": REPLACE[0]},
                                   {"id": case.options[1], "title": CLEAR[0]}]
    assert {e["choice"] for e in bulletin["entries"]} == set(case.options)


def test_the_boards_results_show_the_title_and_which_option_won(case):
    board = case.api("GET", "/board", "张")
    [result] = [r for r in board["results"] if r["plan"] == case.plan]
    assert result["title"] == TITLE and result["result"] == "排水管已更换"
    assert result["adopted_option"]["title"] == REPLACE[0] and result["resolution"].endswith(case.ballot)


def test_lists_of_people_give_display_names_beside_the_ids(case):
    p = case.people
    consultation = case.api("GET", f"/consultations/{case.consultation}", "张")
    body = {m["person"]: m["person_name"] for m in consultation["body"]}
    assert body[p["书记"]] == "书记" and body[p["网格长"]] == "网格长" and body[p["楼栋长"]] == "楼栋长"
    meeting = case.api("GET", f"/meetings/{case.meeting}", "张")
    assert {a["person"]: a["person_name"] for a in meeting["attendance"]} == {
        p[n]: n for n in ("书记", "网格长", "楼栋长")}
    roll = {e["voter"]: e.get("voter_name") for e in case.roll["roll"]}
    assert roll == {p[n]: n for n in RESIDENTS}, "a residents' roll: one voter per resident, named"
    proposal = case.api("GET", f"/proposals/{case.proposal}", "李")
    assert proposal["author"] == p["王"] and proposal["author_name"] == "王"
    comment = case.api("GET", f"/comments/{case.comment}", "李")
    assert comment["author"] == p["刘"] and comment["author_name"] == "刘"
    progress = case.api("GET", f"/action-plans/{case.plan}")["progress"]
    assert [(r["reporter"], r["reporter_name"]) for r in progress] == [(p["物业"], "物业")]


def test_a_person_whose_texts_were_erased_is_listed_without_a_name(case):
    p = case.people
    erased = case.call("POST", f"/people/{p['刘']}/erasure", "worker", {"reason": "本人申请删除 (PIPL art. 47)", "confirm": True})
    assert erased.status_code < 300, erased.text
    person = case.api("GET", f"/people/{p['刘']}", "worker")
    assert person["name"] is None, "the directory erased the name"
    roll = {e["voter"]: e["voter_name"] for e in case.api("GET", f"/ballots/{case.ballot}/roll", "张")["roll"]}
    assert roll[p["刘"]] is None and roll[p["王"]] == "王", "the id stays, the name is gone"
    comment = case.api("GET", f"/comments/{case.comment}", "李")
    assert comment["author"] == p["刘"] and comment["author_name"] is None


def test_a_problem_from_the_gateway_itself_follows_accept_language(case):
    missing = {lang: case.call("GET", "/no-such-thing", language=lang) for lang in ("en", "zh-CN", None)}
    assert {r.status_code for r in missing.values()} == {404}
    assert missing["en"].json()["detail"] == "no such resource" and missing["en"].json()["title"] == "Not found"
    assert missing["zh-CN"].json()["detail"] == "没有这个资源" and missing["zh-CN"].json()["title"] == "未找到"
    assert missing[None].json() == missing["zh-CN"].json()
    assert len({r.json()["type"] for r in missing.values()}) == 1
    forbidden = case.call("POST", "/compounds", "张", {"name": "x"}, language="zh-CN")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "Forbidden"
    assert forbidden.json()["title"] == "无权操作" and forbidden.json()["detail"].startswith("此操作需要以下角色之一")
    signed_out = case.platform.api("GET", f"{case.base}/board", None, headers={"Accept-Language": "en"})
    assert signed_out.status_code == 401 and signed_out.json()["detail"].startswith("sign in")
