"""The decision stage's pages beyond voting online, in a real headless Chromium (issue 14): a community
worker enters a paper ballot and records a paper proxy, residents authorise a proxy and vote as one, and
all of it is counted; a voter checks their receipt on the board; objections are lodged and ruled on in
the publicity period and an upheld one leads to a re-run; an emergency is declared and confirmed by the
two who must; a ballot is annulled and closed without a re-run; a resident reaches none of the workers'
forms and nothing is recorded. Every effect is checked through the API. One platform (SQLite)."""
from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction

import pytest

from services.common import clock
from tests.harness import wait_for
from tests.integration.web_world import Visitor, Walk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

RECEIPT = re.compile(r"[0-9a-f]{64}")


class Scene(Walk):
    """A walk (people signed in once each, the platform's clock) with the decision stage's API steps."""

    def __init__(self, world, browser, lang: str, shots: str):
        super().__init__(world, browser, lang, shots=f"decisions-{shots}-{lang}")

    def path(self, path: str) -> str:
        return f"/api/v1/communities/{self.world.community}{path}"

    def api(self, path: str, who: str = "worker", expect: int = 200):
        return self.world.p.api("GET", self.path(path), self.world.tokens[who], expect=expect).json()

    def post(self, path: str, body=None, who: str = "worker", expect: int = 201):
        return self.world.p.api("POST", self.path(path), self.world.tokens[who], body, expect=expect).json()

    def person(self, short: str) -> str:
        from tests.integration.web_world import PEOPLE

        return self.world.demo["people"][PEOPLE[short]]

    # -- ballots: an owners' motion on building 2 (the worked example), announced on 16 days' notice --
    def ballot(self, title: str) -> str:
        made = self.post("/ballots", {"title": title, "scope": "building",
                                      "scope_id": self.world.demo["buildings"]["2"],
                                      "options": [{"title": title}]})["id"]
        opens = self.now + timedelta(days=16)
        self.world.p.api("PUT", self.path(f"/ballots/{made}/configuration"), self.world.tokens["worker"],
                         {"preset": "owners_ordinary", "voting_unit": "owner", "opens_at": clock.format(opens),
                          "closes_at": clock.format(opens + timedelta(days=7))}, expect=200)
        return made

    def status(self, ballot: str, *statuses: str) -> dict:
        return wait_for(lambda: (b := self.api(f"/ballots/{ballot}"))["status"] in statuses and b, timeout=30,
                        message=f"ballot {ballot} {' or '.join(statuses)}")

    def open(self, ballot: str) -> dict:
        self.later(days=16, minutes=1)
        return self.status(ballot, "open")

    def close_voting(self, ballot: str) -> dict:
        self.later(days=7, minutes=2)
        return self.status(ballot, "adopted", "rejected")


def heading(v: Visitor, selector: str = "#answer-h") -> str:
    return v.page.locator(selector).inner_text().strip()


def audit_settled(world) -> int:
    """The community's audit log size once it stops growing (events of earlier steps still arriving)."""
    last = [-1]

    def same():
        size = world.audit_size()
        done, last[0] = size == last[0], size
        return done and size

    return wait_for(same, timeout=30, interval=0.5, message="the audit log settled")


# ---- paper ballots and proxies -----------------------------------------------------------------------
def test_paper_ballot_and_proxies_entered_in_the_browser_are_counted(world, browser):
    s = Scene(world, browser, "zh-CN", "paper")
    try:
        ballot = s.ballot("更换2栋单元门禁 / new entry-phones for building 2")
        worker = s["worker"]
        worker.goto(worker.c(f"/ballots/{ballot}"), "ballot-announced")
        worker.page.locator("a[href$='/paper']").click()
        worker.check("paper-page-before-opening")
        # Zhou authorised Wang on paper; the worker records it while the ballot is announced.
        worker.submit("form[action$='/paper-proxy']", "paper-proxy-recorded", principal=s.person("Zhou"),
                      holder=s.person("Wang"), paper_serial="WT-0001")
        assert worker.page.locator(".notice.ok").count() == 1
        zhou = s.api(f"/ballots/{ballot}/proxies/mine", "Zhou")
        assert (zhou["holder"], zhou["source"], zhou["paper_serial"], zhou["active"]) == (
            s.person("Wang"), "paper", "WT-0001", True)
        # Liu authorises Chen on the platform, from the ballot's proxy page.
        liu = s["Liu"]
        liu.goto(liu.c(f"/ballots/{ballot}"))
        liu.page.locator("a[href$='/proxy']").click()
        liu.check("proxy-page")
        liu.submit("form[action$='/proxy/authorise']", "proxy-authorised", holder=s.person("Chen"))
        assert s.api(f"/ballots/{ballot}/proxies/mine", "Liu")["holder"] == s.person("Chen")
        assert s.person("Chen")[:8] not in liu.page.locator("main").inner_text()  # a name, not an id

        s.open(ballot)
        # The worker enters Sun's paper ballot; the page gives its receipt.
        worker.goto(worker.c(f"/ballots/{ballot}/paper"), "paper-form-open")
        worker.submit("form[action$='/paper']", "paper-ballot-entered", voter=s.person("Sun"), paper_serial="B-0042",
                      choice="agree")
        paper_receipt = worker.page.locator(".notice.ok code.receipt").inner_text().strip()
        assert RECEIPT.fullmatch(paper_receipt)
        # A second paper ballot for Sun only as a correction, with its reason: it replaces the first.
        worker.goto(worker.c(f"/ballots/{ballot}/paper"))
        worker.submit("form[action$='/paper']", "paper-ballot-corrected", voter=s.person("Sun"), paper_serial="B-0043",
                      choice="disagree", correction_reason="录入时勾错 / ticked the wrong box when entering")
        corrected = worker.page.locator(".notice.ok code.receipt").inner_text().strip()
        assert RECEIPT.fullmatch(corrected) and corrected != paper_receipt
        assert "B-0043" in worker.page.locator("main").inner_text() and "勾错" in worker.page.locator("main").inner_text()
        # The holders vote for those who authorised them.
        for holder, principal, choice in (("Wang", "Zhou", "agree"), ("Chen", "Liu", "disagree")):
            v = s[holder]
            v.goto(v.c(f"/ballots/{ballot}/proxy"))
            v.submit("form[action$='/proxy/vote']", "proxy-voted" if holder == "Wang" else None,
                     voter=s.person(principal), choice=choice)
            assert RECEIPT.fullmatch(v.page.locator(".notice.ok code.receipt").inner_text().strip())
        assert s.api(f"/ballots/{ballot}/my-vote", "Zhou")["channel"] == "proxy"
        liu.goto(liu.c(f"/ballots/{ballot}/proxy"), "proxy-used")
        assert liu.page.locator("form[action$='/proxy/revoke']").count() == 0  # used: no longer revocable

        b = s.close_voting(ballot)
        result = b["result"]
        assert result["ballots"] == 3
        assert Fraction(str(result["participating_area"])) == 90 + 120 + 90  # Sun, Zhou, Liu
        assert Fraction(str(result["agreeing_area"])) == 120  # Zhou through Wang; Sun's corrected ballot disagrees
        assert Fraction(str(result["disagreeing_area"])) == 90 + 90
        board = s.api(f"/ballots/{ballot}/board")
        channels = {e["receipt"]: e["channel"] for e in board["entries"]}
        assert sorted(channels.values()) == ["paper", "proxy", "proxy"]
        assert channels[corrected] == "paper" and paper_receipt not in channels
        assert "勾错" in next(e for e in board["entries"] if e["receipt"] == corrected)["correction"]["reason"]
        worker.goto(worker.c(f"/ballots/{ballot}"), "result-with-paper-and-proxies")
        assert "3" in worker.page.locator("#result-h").locator("xpath=..").inner_text()
    finally:
        s.close()


# ---- a voter's receipt ------------------------------------------------------------------------------
def test_a_voter_checks_their_receipt_found_then_counted_and_a_made_up_one_is_not_found(world, browser):
    s = Scene(world, browser, "en", "receipt")
    try:
        ballot = s.ballot("Repaint the stairwell of building 2")
        s.open(ballot)
        zhang = s["Zhang"]
        zhang.goto(zhang.c(f"/ballots/{ballot}"))
        zhang.submit("form[action$='/vote']", "voted", choice="agree")
        receipt = zhang.page.locator("code.receipt").inner_text().strip()
        assert RECEIPT.fullmatch(receipt)
        zhang.page.locator(f"a[href$='/receipt?receipt={receipt}']").click()
        zhang.no_error("receipt link")
        zhang.check("receipt-found-while-open")
        assert heading(zhang) == "Found: your vote stands"
        # A made-up receipt, and something that is no receipt at all.
        zhang.submit("form[action$='/receipt']", "receipt-not-found", receipt="0" * 64)
        assert heading(zhang) == "Not found"
        zhang.submit("form[action$='/receipt']", receipt="not a receipt")
        assert heading(zhang) == "This is not a receipt"

        s.close_voting(ballot)
        entry = s.api(f"/ballots/{ballot}/board?receipt={receipt}", "Zhang")["entries"]
        assert [e["receipt"] for e in entry] == [receipt] and entry[0]["choice"] == "agree"

        def counted():
            zhang.goto(zhang.c(f"/ballots/{ballot}/receipt?receipt={' '.join([receipt[:32], receipt[32:].upper()])}"))
            return heading(zhang) == "Counted" and zhang.page.locator("a[href*='/audit/entries/']").count() == 1

        wait_for(counted, timeout=30, message="the receipt counted, with its audit entry")
        zhang.check("receipt-counted")
        facts = zhang.page.locator("dl.facts").inner_text()
        assert "Agree" in facts and "150" in facts and "Online" in facts  # Zhang owns 201 and 202: 150 m²
        zhang.goto(zhang.c(f"/ballots/{ballot}/receipt?receipt={'f' * 64}"))
        assert heading(zhang) == "Not found"
    finally:
        s.close()


# ---- objections, rulings, and a re-run after an upheld one --------------------------------------------
def test_objections_are_lodged_and_ruled_and_an_upheld_one_leads_to_a_rerun(world, browser):
    s = Scene(world, browser, "zh-CN", "objections")
    try:
        ballot = s.ballot("加装电动车充电桩 / e-bike chargers")
        s.open(ballot)
        s.post(f"/ballots/{ballot}/votes", {"choice": "agree"}, who="Zhou")
        s.close_voting(ballot)
        zhao = s["Zhao"]
        zhao.goto(zhao.c(f"/ballots/{ballot}"))
        zhao.page.locator("a[href$='/objections']").click()
        zhao.check("objections-empty")
        assert zhao.page.locator("form[action*='/ruling']").count() == 0  # a resident does not rule
        zhao.submit("form[action$='/objections']", "objection-lodged",
                    text="投票通知没有张贴在2栋 / the notice was not posted in building 2")
        lodged = s.api(f"/ballots/{ballot}")["objections"]
        assert len(lodged) == 1 and lodged[0]["upheld"] is None and "2栋" in lodged[0]["text"]
        assert "待裁定" in zhao.page.locator(f"#objection-{lodged[0]['id']}").inner_text()
        s.post(f"/ballots/{ballot}/objections", {"text": "第二条异议 / a second objection"}, who="Sun")

        # A ballot without a consultation: the party-committee lead rules.
        lead = s["lead"]
        lead.goto(lead.c(f"/ballots/{ballot}/objections"), "objections-to-rule")
        first, second = [o["id"] for o in s.api(f"/ballots/{ballot}")["objections"]]
        lead.submit(f"form[action$='/objections/{first}/ruling']", "objection-dismissed", upheld="no",
                    reason="公告已于15日前张贴，有照片为证 / the notice was posted, photographed")
        ruled = {o["id"]: o for o in s.api(f"/ballots/{ballot}")["objections"]}
        assert ruled[first]["upheld"] is False and "照片" in ruled[first]["reason"]
        shown = lead.page.locator(f"#objection-{first}").inner_text()
        assert "不成立" in shown and "照片" in shown
        lead.submit(f"form[action$='/objections/{second}/ruling']", "objection-upheld", upheld="yes",
                    reason="名册有误 / the roll was wrong")
        b = s.status(ballot, "annulled")
        assert b["annulment"]["by"] == "objection"
        assert lead.page.locator(f"#objection-{second} .ruling .tag").inner_text().strip() == "成立"
        zhao.goto(zhao.c(f"/ballots/{ballot}"), "ballot-annulled-by-objection")
        assert zhao.page.locator("#annulled-h").count() == 1

        # The lead runs it again: a new ballot of the same case, to be prepared anew.
        lead.goto(lead.c(f"/ballots/{ballot}/manage"), "manage-annulled")
        lead.submit("form[action$='/manage/rerun']", "rerun-ballot")
        rerun = lead.page.url.rstrip("/").split("/")[-1]
        again = s.api(f"/ballots/{rerun}")
        assert again["rerun_of"] == ballot and again["status"] == "prepared" and again["case"] == b["case"]
        assert s.api(f"/ballots/{ballot}")["rerun"] == rerun
    finally:
        s.close()


# ---- the emergency path -----------------------------------------------------------------------------
def test_an_emergency_is_declared_by_one_and_confirmed_by_the_other(world, browser):
    s = Scene(world, browser, "en", "emergency")
    try:
        worker = s["worker"]
        worker.goto(worker.c("/emergencies/new"), "emergency-form")
        worker.submit("form[action$='/emergencies/new']", "emergency-declared",
                      title="Burst water main under building 2",
                      justification="The basement is flooding; the pump room is at risk tonight.",
                      scope="building", scope_id_building=world.demo["buildings"]["2"])
        ballot = worker.page.url.rstrip("/").split("/")[-2]
        b = s.api(f"/ballots/{ballot}")
        assert b["status"] == "emergency_declared" and b["emergency"]["declared_as"] == "community_worker"
        assert "pump room" in b["emergency"]["justification"]
        assert worker.page.locator("form[action$='/manage/confirm']").count() == 0  # not by the one who declared
        lead = s["lead"]
        lead.goto(lead.c(f"/ballots/{ballot}/manage"), "emergency-to-confirm")
        lead.submit("form[action$='/manage/confirm']", "emergency-confirmed")
        b = s.api(f"/ballots/{ballot}")
        assert (b["status"], b["outcome"], b["emergency"]["confirmed_as"]) == ("final", "emergency", "party_lead")
        zhang = s["Zhang"]
        zhang.goto(zhang.c(f"/ballots/{ballot}"), "emergency-ballot")
        assert "pump room" in zhang.page.locator("#emergency-h").locator("xpath=..").inner_text()
        assert "Emergency repair (no vote)" in zhang.page.locator("dl.facts").inner_text()

        # On a ballot not yet open, instead of its vote: declared by the lead, confirmed by the worker.
        other = s.ballot("Replace the rotten balcony railings")
        lead.goto(lead.c(f"/ballots/{other}/manage"))
        lead.submit("form[action$='/manage/emergency']", justification="A railing fell into the yard this morning.")
        worker.goto(worker.c(f"/ballots/{other}/manage"))
        worker.submit("form[action$='/manage/confirm']")
        b = s.api(f"/ballots/{other}")
        assert (b["status"], b["emergency"]["declared_as"], b["emergency"]["confirmed_as"]) == (
            "final", "party_lead", "community_worker")
    finally:
        s.close()


# ---- annulment, and closing without a re-run ----------------------------------------------------------
def test_a_worker_annuls_a_ballot_and_closes_it_without_a_rerun(world, browser):
    s = Scene(world, browser, "zh-CN", "annul")
    try:
        ballot = s.ballot("重新划分停车位 / re-mark the parking spaces")
        worker = s["worker"]
        worker.goto(worker.c(f"/ballots/{ballot}"))
        worker.page.locator("a[href$='/manage']").click()
        worker.check("manage-announced")
        worker.submit("form[action$='/manage/annul']", "ballot-annulled", reason="公告中的面积有误 / wrong areas")
        b = s.api(f"/ballots/{ballot}")
        assert b["status"] == "annulled" and "面积" in b["annulment"]["reason"]
        worker.submit("form[action$='/manage/abandon']", "closed-without-rerun", reason="业主已另行协商 / settled")
        b = s.api(f"/ballots/{ballot}")
        assert "另行协商" in b["abandoned"]["reason"] and b["rerun"] is None
        assert worker.page.locator("form[action$='/manage/rerun']").count() == 0
    finally:
        s.close()


# ---- roles ------------------------------------------------------------------------------------------
def test_a_resident_cannot_reach_the_workers_decision_forms_and_nothing_is_recorded(world, browser):
    s = Scene(world, browser, "zh-CN", "roles")
    try:
        ballot = s.ballot("居民不可录入 / residents may not enter paper ballots")
        s.open(ballot)
        zhang = s["Zhang"]
        zhang.goto(zhang.c(f"/ballots/{ballot}"))
        for hidden in ("/paper", "/manage"):
            assert zhang.page.locator(f"a[href$='{hidden}']").count() == 0
        csrf = zhang.page.locator("input[name=csrf]").first.input_value()
        before = audit_settled(world)
        for path in (f"/ballots/{ballot}/paper", f"/ballots/{ballot}/manage", "/emergencies/new"):
            resp = zhang.page.goto(world.web + zhang.c(path))
            assert resp.status == 403, (path, resp.status)
            assert "您的角色无权进行此操作" in zhang.page.content()
        zhang.check("forbidden")
        # Posting the workers' forms anyway, with a good CSRF token: 403, and nothing is recorded.
        posts = {f"/ballots/{ballot}/paper": {"voter": s.person("Sun"), "paper_serial": "X-1", "choice": "agree"},
                 f"/ballots/{ballot}/paper-proxy": {"principal": s.person("Sun"), "holder": s.person("Zhang"),
                                                    "paper_serial": "X-2"},
                 f"/ballots/{ballot}/manage/annul": {"reason": "no"},
                 f"/ballots/{ballot}/manage/emergency": {"justification": "no"},
                 "/emergencies/new": {"title": "no", "justification": "no", "scope": "community"}}
        for path, form in posts.items():
            resp = zhang.context.request.post(world.web + zhang.c(path), form={"csrf": csrf, **form},
                                              max_redirects=0)
            assert resp.status == 403, (path, resp.status)
        assert audit_settled(world) == before
        assert s.api(f"/ballots/{ballot}/board")["entries"] == []
        # A resident may open the objections page, but the API refuses their ruling (the lead rules).
        s.later(days=7, minutes=2)
        s.status(ballot, "adopted", "rejected")
        before = audit_settled(world)
        objection = s.post(f"/ballots/{ballot}/objections", {"text": "an objection"}, who="Sun")["objection"]
        wait_for(lambda: world.audit_size() > before, timeout=30, message="the objection in the audit log")
        before = audit_settled(world)
        resp = zhang.context.request.post(world.web + zhang.c(f"/ballots/{ballot}/objections/{objection}/ruling"),
                                          form={"csrf": csrf, "upheld": "yes", "reason": "mine"}, max_redirects=0)
        assert resp.status == 403
        assert s.api(f"/ballots/{ballot}")["objections"][0]["upheld"] is None
        assert s.api(f"/ballots/{ballot}")["status"] in ("adopted", "rejected")
        assert audit_settled(world) == before
    finally:
        s.close()
