"""The web pages in a real headless Chromium (issue 14): people of the demo S community sign in
and take the drainage case from a resident's proposal to a satisfied evaluation and a closed case,
once in zh-CN and once in en; the pages' guards (CSRF, tenancy, roles, XSS) on the same platform.
One platform (SQLite) for the module keeps it fast."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.harness import ROOT, wait_for
from tests.integration.web_world import PNG, Shots, Visitor, Walk, local

# A walk-through takes a few minutes on a quiet machine and far longer when CI shares two cores
# with a platform per worker: every step is a page load, a full-page screenshot and an axe run.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_sign_in_home_and_sign_out(world, browser, lang):
    shots = Shots(lang + "-basics")
    v = Visitor(browser, world, "Zhang", lang, shots)
    v.goto("/sign-in", "sign-in")
    v.sign_in()
    v.check("home")
    html = v.page.content()
    assert ("待我处理" if lang == "zh-CN" else "What needs me now") in html
    assert v.page.locator("figure.flow li").count() == 5
    cookies = {c["name"]: c for c in v.context.cookies()}
    session = cookies["consult_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert world.tokens["Zhang"] not in session["value"]
    v.page.locator("form[action='/sign-out'] button").click()
    v.page.wait_for_url(re.compile(r"/sign-in"))
    assert "consult_session" not in {c["name"] for c in v.context.cookies()}
    v.goto(f"/communities/{world.community}/")
    assert "/sign-in" in v.page.url
    v.close()


# ---- the drainage case, in the browser -------------------------------------------------------------
TITLES = {"zh-CN": "疏通2栋排水管", "en": "Clear the drains of building 2"}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_drainage_case_from_a_proposal_to_a_closed_case_in_the_browser(world, browser, lang):
    w = Walk(world, browser, lang)
    title = TITLES[lang]
    try:
        # 1 提议: Zhang raises it; the worker screens it; neighbours support (Liu changes her mind once).
        zhang = w["Zhang"]
        zhang.check("home")
        zhang.goto(zhang.c("/proposals/new"), "proposal-form")
        zhang.submit("form[action$='/proposals/new']", "proposal-submitted", title=title,
                     body="每逢雨季院坝积水，一楼进水 / the yard floods when it rains", category="drainage",
                     scope="building", scope_id_building=world.demo["buildings"]["2"])
        case = zhang.page.url.rstrip("/").split("/")[-1]
        worker = w["worker"]
        worker.check("home-needs-screening")
        assert worker.page.locator(f"a[href$='/proposals/{case}']").count() >= 1
        worker.goto(worker.c(f"/proposals/{case}"))
        worker.page.locator("a[href$='/screening']").click()
        worker.check("screening-form")
        worker.submit("form[action$='/screening']", "proposal-collecting", admissible="yes")
        for name in ("Chen", "Liu", "Zhao"):
            v = w[name]
            v.goto(v.c(f"/proposals/{case}"))
            v.submit("form[action$='/support']", "supported" if name == "Chen" else None)
            if name == "Liu":
                v.submit("form[action$='/unsupport']", "support-withdrawn")
                v.submit("form[action$='/support']")
        assert w.api(f"/proposals/{case}")["status"] == "qualified"

        # 2 议事: the consultation opens by itself; discussion; an option; a meeting, minuted; the conclusion.
        consultation = wait_for(lambda: next((c["id"] for c in w.api("/consultations") if c["proposal"] == case),
                                             None), timeout=30, message="the consultation")
        chen = w["Chen"]
        chen.goto(chen.c(f"/consultations/{consultation}"))
        chen.submit("form[action$='/comment']", "comment-posted", text="一楼每次下雨都进水 / water comes in",
                    stance="for")
        li = w["Li"]
        li.goto(li.c(f"/consultations/{consultation}"))
        li.page.locator("details summary").first.click()
        li.submit("form[action$='/option']", "option-proposed", title="动用维修资金疏通排水管 / use the maintenance fund",
                  description="物业清淤并更换破损管道 / the property company clears and repairs the pipes")
        lead = w["lead"]
        lead.goto(lead.c(f"/consultations/{consultation}/manage"), "consultation-manage")
        lead.submit("form[action$='/manage/final-options']")
        lead.goto(lead.c(f"/consultations/{consultation}/manage"))
        starts = w.now + timedelta(days=4)
        lead.submit("form[action$='/manage/meeting']", "meeting-scheduled", starts_at=local(starts), mode="on_site",
                    place="社区活动室 / community room", agenda="排水方案 / the drainage plan")
        meeting = lead.page.url.split("/")[-1]
        w.later(days=4, minutes=1)
        for name in ("lead", "Wang", "Li"):
            v = w[name]
            v.goto(v.c(f"/meetings/{meeting}"))
            v.submit("form[action$='/attend']")
        lead.submit("form[action$='/opening']", "meeting-open")
        worker.goto(worker.c(f"/meetings/{meeting}"))
        worker.submit("form[action$='/minutes']", "minutes-recorded", text="动用维修资金疏通排水管，交业主表决 / to the owners' vote")
        for name in ("lead", "Wang"):
            v = w[name]
            v.goto(v.c(f"/meetings/{meeting}"))
            v.submit("form[action$='/sign']", "minutes-signed" if name == "Wang" else None)
        worker.goto(worker.c(f"/meetings/{meeting}"))
        worker.submit("form[action$='/closing']")
        lead.goto(lead.c(f"/consultations/{consultation}/manage"))
        lead.submit("form[action$='/manage/conclusion']", "concluded", outcome="vote_needed",
                    summary="交由业主表决 / put to the owners", meeting=meeting, suggested_rule="owners_ordinary")

        # 3 决策: the worker prepares the owners' ballot on 15 days' notice; seven owners vote in the browser.
        ballot = wait_for(lambda: next((b["id"] for b in w.api("/ballots") if b["case"] == case), None), timeout=30,
                          message="the prepared ballot")
        worker.goto(worker.c(f"/ballots/{ballot}"))
        worker.page.locator("a[href$='/configuration']").click()
        worker.check("ballot-configure")
        opens = w.now + timedelta(days=16)
        worker.submit("form[action$='/configuration']", "ballot-announced", preset="owners_ordinary",
                      voting_unit="owner", opens_at=local(opens), closes_at=local(opens + timedelta(days=7)))
        w.later(days=16, minutes=1)
        wait_for(lambda: w.api(f"/ballots/{ballot}")["status"] == "open", timeout=30, message="the ballot open")
        votes = {"Wang": "agree", "Li": "agree", "Zhang": "agree", "Liu": "agree", "Zhou": "agree",
                 "Chen": "disagree", "Zhao": "abstain"}
        for name, choice in votes.items():
            v = w[name]
            v.goto(v.c(f"/ballots/{ballot}"), "ballot-open" if name == "Wang" else None)
            v.submit("form[action$='/vote']", "vote-receipt" if name == "Wang" else None, choice=choice)
            receipt = v.page.locator("code.receipt").inner_text()
            assert re.fullmatch(r"[0-9a-f]{64}", receipt)
        w.later(days=7, minutes=2)
        wait_for(lambda: w.api(f"/ballots/{ballot}")["status"] == "adopted", timeout=30, message="adopted")
        zhang.goto(zhang.c(f"/ballots/{ballot}"), "result")
        text = zhang.page.locator("#result-h").locator("xpath=..").inner_text()
        for number in ("870", "660", "480", "580", "330"):  # eligible, participating, agreeing area; thresholds
            assert number in text, (number, text)
        assert zhang.page.locator(".chart svg").count() == 4  # quorum and approval, by area and by headcount
        w.later(days=8)
        wait_for(lambda: w.api(f"/ballots/{ballot}")["status"] == "final", timeout=30, message="final")

        # 4 行动: the plan, a task for the property company, its progress, the result disclosed, evaluations.
        plan = wait_for(lambda: next((p["plan"] for p in w.api("/action-plans") if p["case"] == case), None),
                        timeout=30, message="the action plan")
        worker.goto(worker.c(f"/plans/{plan}/manage"), "plan-manage")
        worker.submit("form[action$='/manage/task']", "task-assigned", title="疏通排水管 / clear the drains",
                      party="property_company", due_at=local(w.now + timedelta(days=30)), budget="12800.00",
                      funding_source="maintenance_fund")
        prop = w["property"]
        prop.goto(prop.c(f"/plans/{plan}"))
        photo = world.p.dir / "drain.png"
        photo.write_bytes(PNG)
        prop.submit("form[action$='/progress']", "progress-reported", percent="100", note="已疏通 / cleared",
                    evidence=str(photo))
        evidence = prop.page.locator("a[href*='/evidence/']").first.get_attribute("href")
        shown = prop.context.request.get(world.web + evidence)
        assert shown.status == 200 and shown.body() == PNG and shown.headers["content-type"] == "image/png"
        worker.goto(worker.c(f"/plans/{plan}/manage"))
        worker.submit("form[action$='/manage/done']", "result-disclosed", summary="排水管已疏通，雨后无积水 / no more floods")
        for name, rating in (("Wang", "satisfied"), ("Li", "satisfied"), ("Zhang", "satisfied"),
                             ("Zhao", "basically_satisfied")):
            v = w[name]
            v.goto(v.c(f"/plans/{plan}"))
            v.submit("form[action$='/evaluate']", "evaluated" if name == "Zhang" else None, rating=rating)
        w.later(days=15)
        wait_for(lambda: w.api(f"/cases/{case}", "Zhang")["status"] == "closed", timeout=60, message="case closed")
        zhang.goto(zhang.c(f"/cases/{case}"), "case-closed")
        assert zhang.page.locator("li.current[aria-current=step]").inner_text().strip().endswith(
            "已办结" if lang == "zh-CN" else "Closed")
        assert zhang.page.locator("a[href*='/audit/entries/']").count() >= 20
        zhang.goto(zhang.c("/"), "home-closed")
        assert zhang.page.locator(f"a[href$='/cases/{case}']").count() == 1
        auditor = w["auditor"]
        auditor.goto(auditor.c("/audit"), "public-record")
        assert all(not v.dialogs for v in w.people.values())
    finally:
        w.close()
    # The guide (docs/guide/<lang>.md) shows these very screenshots: every picture it names was just taken.
    guide = (ROOT / "docs" / "guide" / f"{lang}.md").read_text(encoding="utf-8")
    named = re.findall(rf"\(\.\./\.\./(artefacts/screenshots/{re.escape(lang)}/[^)]+\.png)\)", guide)
    assert len(named) >= 25 and [n for n in named if not (ROOT / n).exists()] == []


# ---- the pages' guards -----------------------------------------------------------------------------
SENTINEL = "__xss"
XSS = [
    "<script>window.__xss=1</script>",
    "\"><script>window.__xss=2</script>",
    "<img src=x onerror=\"window.__xss=3\">",
    "<svg onload=window.__xss=4>",
    "<svg><script>window.__xss=5</script></svg>",
    "javascript:window.__xss=6",
    "<a href=\"javascript:window.__xss=7\">click</a>",
    "<iframe src=\"javascript:window.__xss=8\"></iframe>",
    "<body onload=window.__xss=9>",
    "<details open ontoggle=window.__xss=10>",
    "<input autofocus onfocus=window.__xss=11>",
    "<video><source onerror=window.__xss=12></video>",
    "</textarea><script>window.__xss=13</script>",
    "</title><script>window.__xss=14</script>",
    "<object data=\"javascript:window.__xss=15\"></object>",
    "<scr<script>ipt>window.__xss=16</script>",
    "<<img src=x onerror=window.__xss=17//<",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=18>",
    "'';!--\"<XSS>=&{()}",
    "{{7*7}}{% raw %}${7*7}",
    "<style>*{display:none}</style>",
    "<marquee onstart=window.__xss=22>",
    "%3Cscript%3Ewindow.__xss=23%3C/script%3E",
    "<img src=\"x:y\" onerror=alert(24)>",
    "<a href=\" &#14;  javascript:alert(25)\">x</a>",
]
HANDLERS_JS = ("() => document.querySelectorAll('script, iframe, object, [onerror], [onload], [onfocus], [ontoggle], "
               "[onstart], [href^=javascript], style:not(head style)').length")


def assert_inert(v: Visitor, payloads: list[str]) -> None:
    assert v.page.evaluate(f"() => window.{SENTINEL}") is None
    assert v.page.evaluate(HANDLERS_JS) == 0, v.page.url
    shown = " ".join(v.page.locator("main").inner_text().split())
    for p in payloads:
        assert " ".join(p.split()) in shown, (p, v.page.url)
    assert not v.dialogs, v.dialogs


def titles(limit: int = 120) -> list[str]:
    """The corpus packed into as few title-sized texts as fit (a title holds at most 120 characters)."""
    out, current = [], ""
    for payload in XSS:
        if current and len(current) + 1 + len(payload) > limit:
            out.append(current)
            current = ""
        current = f"{current} {payload}".strip()
    return out + [current]


def test_xss_corpus_in_free_text_fields_is_shown_as_text_and_never_runs(world, browser):
    assert len(XSS) >= 20
    corpus = "\n".join(XSS)
    shots = Shots("xss")
    zhang = Visitor(browser, world, "Zhang", "zh-CN", shots).sign_in()
    worker = Visitor(browser, world, "worker", "zh-CN", shots).sign_in()
    try:
        # Proposal titles and bodies, through the form; shown on the proposal page and the worker's home.
        proposals = []
        for title in titles():
            zhang.goto(zhang.c("/proposals/new"))
            zhang.submit("form[action$='/proposals/new']", title=title, body=corpus, category="other",
                         scope="community")
            proposals.append(zhang.page.url.split("/")[-1])
            assert_inert(zhang, XSS)
        zhang.check("proposal-with-payloads")
        worker.goto(worker.c("/"), "home-with-payloads")
        assert_inert(worker, XSS)
        # A comment and a reply, and an option, through the consultation's forms; on the consultation page.
        cons = world.p.api("POST", f"/api/v1/communities/{world.community}/consultations", world.tokens["worker"],
                           {"title": "XSS <b>consultation</b>", "description": "<script>window.__xss=99</script>",
                            "scope": "community", "category": "other"}, expect=201).json()["id"]
        zhang.goto(zhang.c(f"/consultations/{cons}"))
        zhang.submit("form[action$='/comment']", text=corpus, stance="question")
        zhang.submit("form[action$='/comment']", text=XSS[0], stance="against",
                     reply_to=zhang.page.locator("select[name=reply_to] option").nth(1).get_attribute("value"))
        # Options come from the consultation's body: its convener (the party-committee lead by default).
        convener = world.p.api("GET", f"/api/v1/communities/{world.community}/consultations/{cons}",
                               world.tokens["worker"], expect=200).json()["convener"]
        lead = Visitor(browser, world, "lead" if convener == world.demo["people"]["许书记 Secretary Xu"] else "worker",
                       "zh-CN", shots).sign_in()
        lead.goto(lead.c(f"/consultations/{cons}"))
        lead.page.locator("details summary").first.click()
        lead.submit("form[action$='/option']", title=titles()[0], description=corpus)
        lead.check("consultation-with-payloads")
        assert_inert(lead, XSS + ["<script>window.__xss=99</script>", "XSS <b>consultation</b>"])
        lead.close()
        zhang.goto(zhang.c(f"/cases/{proposals[0]}"))
        assert_inert(zhang, [titles()[0]])
    finally:
        zhang.close()
        worker.close()


def audit_settled(world) -> int:
    """The community's audit log size once it stops growing (events of earlier steps still arriving)."""
    last = [-1]

    def same():
        size = world.audit_size()
        done, last[0] = size == last[0], size
        return done and size

    return wait_for(same, timeout=30, interval=0.5, message="the audit log settled")


def test_forms_without_or_with_a_wrong_csrf_token_are_refused_and_record_nothing(world, browser):
    zhang = Visitor(browser, world, "Zhang", "en", Shots("csrf")).sign_in()
    try:
        zhang.goto(zhang.c("/proposals/new"))
        csrf = zhang.page.locator("input[name=csrf]").first.input_value()
        before = audit_settled(world)
        form = {"title": "CSRF", "body": "should not exist", "category": "other", "scope": "community"}
        url = world.web + zhang.c("/proposals/new")
        for bad in ({}, {"csrf": "0" * 64}, {"csrf": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")}):
            resp = zhang.context.request.post(url, form={**form, **bad}, max_redirects=0)
            assert resp.status == 403, resp.status
            assert "did not come from this site" in resp.text()
        # Another browser (its own per-browser value) cannot reuse this one's token either.
        other = browser.new_context()
        other.add_cookies([c for c in zhang.context.cookies() if c["name"] == "consult_session"])
        assert other.request.post(url, form={**form, "csrf": csrf}, max_redirects=0).status == 403
        other.close()
        # The same form with its token goes through: two events (drafted, submitted), and only those.
        resp = zhang.context.request.post(url, form={**form, "csrf": csrf}, max_redirects=0)
        assert resp.status == 303
        wait_for(lambda: world.audit_size() >= before + 2, timeout=30, message="the valid form's events")
        assert audit_settled(world) == before + 2
    finally:
        zhang.close()


def test_another_communitys_pages_answer_404(world, browser):
    other = world.p.new_community("another community")
    theirs = world.p.api("POST", f"/api/v1/communities/{other['id']}/proposals", other["token"],
                         {"title": "theirs", "body": "theirs", "category": "other", "scope": "community"},
                         expect=201).json()["id"]
    zhang = Visitor(browser, world, "Zhang", "zh-CN", Shots("tenancy")).sign_in()
    try:
        for path in (f"/communities/{other['id']}/", f"/communities/{other['id']}/proposals/{theirs}",
                     zhang.c(f"/proposals/{theirs}"), zhang.c(f"/cases/{theirs}")):
            resp = zhang.page.goto(world.web + path)
            assert resp.status == 404, (path, resp.status)
            assert "theirs" not in zhang.page.content()
        zhang.check("not-found")
    finally:
        zhang.close()


def test_a_resident_cannot_reach_a_workers_form_and_nothing_is_recorded(world, browser):
    made = world.p.api("POST", f"/api/v1/communities/{world.community}/proposals", world.tokens["Sun"],
                       {"title": "待审核", "body": "screen me", "category": "other", "scope": "community"},
                       expect=201).json()["id"]
    world.p.api("POST", f"/api/v1/communities/{world.community}/proposals/{made}/submit", world.tokens["Sun"],
                expect=200)
    zhang = Visitor(browser, world, "Zhang", "zh-CN", Shots("roles")).sign_in()
    try:
        before = audit_settled(world)
        for path in (f"/proposals/{made}/screening", "/invitations"):
            resp = zhang.page.goto(world.web + zhang.c(path))
            assert resp.status == 403, (path, resp.status)
            assert "您的角色无权进行此操作" in zhang.page.content()
        zhang.check("forbidden")
        # Posting the worker's form anyway (with a good CSRF token): the API refuses, the page says 403.
        zhang.goto(zhang.c(f"/proposals/{made}"))
        csrf = zhang.page.locator("input[name=csrf]").first.input_value() if zhang.page.locator(
            "input[name=csrf]").count() else None
        if csrf is None:
            zhang.goto(zhang.c("/proposals/new"))
            csrf = zhang.page.locator("input[name=csrf]").first.input_value()
        resp = zhang.context.request.post(world.web + zhang.c(f"/proposals/{made}/screening"),
                                          form={"csrf": csrf, "admissible": "yes"}, max_redirects=0)
        assert resp.status == 403
        ballots = [b for b in world.p.api("GET", f"/api/v1/communities/{world.community}/ballots",
                                          world.tokens["worker"], expect=200).json() if b["status"] == "prepared"]
        for b in ballots[:1]:
            resp = zhang.context.request.post(world.web + zhang.c(f"/ballots/{b['id']}/configuration"),
                                              form={"csrf": csrf, "preset": "generic"}, max_redirects=0)
            assert resp.status == 403
        assert world.p.api("GET", f"/api/v1/communities/{world.community}/proposals/{made}", world.tokens["Sun"],
                           expect=200).json()["status"] == "submitted"
        assert audit_settled(world) == before
    finally:
        zhang.close()
