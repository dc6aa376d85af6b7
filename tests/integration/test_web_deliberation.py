"""The screening and deliberation worker pages in a real headless Chromium (issue 14): a worker
rejects a proposal with a reason, reclassifies one and merges a duplicate; the convener invites a
relevant party (the X of 1+2+X), who accepts, and rules on a body member's amendment; the convener
cancels a meeting; the secretary revises unsigned minutes and corrects confirmed ones; the
moderator hides a comment and shows it again; a resident edits their own comment. Every effect is
read back through the API. Residents reach none of the worker forms (403) and nothing is recorded.
One platform (SQLite) for the module."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common import clock
from tests.harness import wait_for
from tests.integration.web_world import Shots, Visitor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def api(world, method: str, path: str, who: str, body=None, expect: int | None = 200):
    resp = world.p.api(method, f"/api/v1/communities/{world.community}{path}", world.tokens[who], body,
                       expect=expect)
    return resp.json() if resp.content else None


def person(world, name: str) -> str:
    return world.demo["people"][name]


def me(world, who: str) -> str:
    return world.p.api("GET", "/api/v1/me", world.tokens[who], expect=200).json()["person"]


def proposal(world, title: str, category: str = "other", who: str = "Zhang") -> str:
    pid = api(world, "POST", "/proposals", who, {"title": title, "body": f"{title} / body", "category": category,
                                                 "scope": "community"}, expect=201)["id"]
    api(world, "POST", f"/proposals/{pid}/submit", who)
    return pid


def consultation(world, title: str) -> str:
    """A topic the community worker raises for building 2: its body is the party lead (convener),
    the grid leader Wang and the building leader Li."""
    return api(world, "POST", "/consultations", "worker",
               {"title": title, "description": f"{title} / description", "scope": "building",
                "scope_id": world.demo["buildings"]["2"], "category": "drainage"}, expect=201)["id"]


def audit_settled(world) -> int:
    """The community's audit log size once it stops growing (events of earlier steps still arriving)."""
    last = [-1]

    def same():
        size = world.audit_size()
        done, last[0] = size == last[0], size
        return done and size

    return wait_for(same, timeout=30, interval=0.5, message="the audit log settled")


def press(v: Visitor, selector: str, **fields):
    """Fill and send a form that the page is expected to refuse: the response's status and text."""
    form = v.page.locator(selector).first
    for name, value in fields.items():
        box = form.locator(f"[name='{name}']")
        if (box.first.get_attribute("type") or "") == "radio":
            form.locator(f"[name='{name}'][value='{value}']").check()
        else:
            box.fill(value)
    with v.page.expect_navigation() as nav:
        form.locator("button[type=submit]").first.click()
    return nav.value.status


# ---- screening ---------------------------------------------------------------------------------------
def test_screening_rejects_with_a_reason_reclassifies_and_merges_a_duplicate(world, browser):
    shots = Shots("zh-CN-deliberation-screening")
    rejected = proposal(world, "在草坪上烧烤 / barbecues on the lawn")
    moved = proposal(world, "楼道灯不亮 / the stairwell lights are out", category="other")
    duplicate = proposal(world, "楼道太黑 / the stairwell is dark", category="other")
    worker = Visitor(browser, world, "worker", "zh-CN", shots).sign_in()
    zhang = Visitor(browser, world, "Zhang", "zh-CN", shots).sign_in()
    try:
        # Not admitted without a reason: refused by the page, nothing sent.
        worker.goto(worker.c(f"/proposals/{rejected}/screening"), "screening-form")
        assert press(worker, "form[action$='/screening']", admissible="no") == 422
        assert worker.page.locator(".notice.error").count() == 1
        worker.check("screening-reason-missing")
        assert api(world, "GET", f"/proposals/{rejected}", "worker")["status"] == "submitted"
        # With the reason: not admitted, and the reason is shown on the proposal.
        reason = "属于物业管理规约范围，请向物业反映 / a matter for the property rules"
        worker.goto(worker.c(f"/proposals/{rejected}/screening"))
        worker.submit("form[action$='/screening']", "screening-rejected", admissible="no", reason=reason)
        p = api(world, "GET", f"/proposals/{rejected}", "Zhang")
        assert p["status"] == "inadmissible" and p["reason"] == reason
        zhang.goto(zhang.c(f"/proposals/{rejected}"), "rejected-proposal")
        assert reason in zhang.page.locator("main").inner_text()
        # Reclassified while admitted: "other" becomes "safety".
        worker.goto(worker.c(f"/proposals/{moved}/screening"))
        worker.submit("form[action$='/screening']", "screening-reclassified", admissible="yes", category="safety")
        p = api(world, "GET", f"/proposals/{moved}", "worker")
        assert (p["status"], p["category"]) == ("collecting", "safety")
        # The duplicate, still awaiting screening, merges into the collecting one from the proposal's page.
        worker.goto(worker.c(f"/proposals/{duplicate}"), "duplicate-proposal")
        worker.page.locator(f"a[href$='/proposals/{duplicate}/merging']").click()
        worker.check("merge-form")
        assert worker.page.locator(f"input[name=into][value='{duplicate}']").count() == 0
        worker.submit("form[action$='/merging']", "merged-into", into=moved)
        assert worker.page.url.endswith(f"/proposals/{moved}")
        p = api(world, "GET", f"/proposals/{duplicate}", "worker")
        assert (p["status"], p["merged_into"]) == ("merged", moved)
        assert "ProposalMergeReceived" in [h["type"] for h in api(world, "GET", f"/proposals/{moved}", "worker")["history"]]
        assert worker.page.locator(f".merged-from a[href$='/proposals/{duplicate}']").count() == 1
        zhang.goto(zhang.c(f"/proposals/{duplicate}"), "merged-proposal")
        link = zhang.page.locator(f".merged-into a[href$='/proposals/{moved}']")
        assert link.count() == 1 and "楼道灯不亮" in link.inner_text()
        assert zhang.page.locator("a[href$='/merging']").count() == 0  # a resident is offered no merge
    finally:
        worker.close()
        zhang.close()


# ---- the 1+2+X body and amendments ---------------------------------------------------------------------
def test_the_convener_invites_a_party_who_accepts_and_rules_on_an_amendment(world, browser):
    shots = Shots("en-deliberation-body")
    cons = consultation(world, "Drains of building 2")
    c = api(world, "GET", f"/consultations/{cons}", "worker")
    assert c["convener"] == me(world, "lead")
    qian = me(world, "property")
    lead = Visitor(browser, world, "lead", "en", shots).sign_in()
    prop = Visitor(browser, world, "property", "en", shots).sign_in()
    li = Visitor(browser, world, "Li", "en", shots).sign_in()
    zhang = Visitor(browser, world, "Zhang", "en", shots).sign_in()
    try:
        # The convener invites the property company's manager into the body.
        lead.goto(lead.c(f"/consultations/{cons}/manage"), "manage-with-invitations")
        lead.submit("form[action$='/invitations']", "party-invited", person=qian, role="property_company")
        body = api(world, "GET", f"/consultations/{cons}", "worker")["body"]
        assert {"person": qian, "role": "property_company", "status": "invited"}.items() <= next(
            m for m in body if m["person"] == qian).items()
        # The invited manager sees the invitation on the consultation and accepts it.
        prop.goto(prop.c(f"/consultations/{cons}"), "invitation-open")
        assert prop.page.locator("form.invitation-answer").count() == 1
        prop.submit("form.invitation-answer", "invitation-accepted", accept="yes")
        member = next(m for m in api(world, "GET", f"/consultations/{cons}", "Zhang")["body"] if m["person"] == qian)
        assert (member["role"], member["status"]) == ("property_company", "active")
        assert prop.page.locator("form.invitation-answer").count() == 0
        assert "Property company" in prop.page.locator("ul.body-members").inner_text()
        # An expert invited as well declines, with a reason: recorded as declined, never a member.
        gao = person(world, "排水专家 Drainage expert Gao")
        world.tokens["Gao"] = world.p.rpc("communities", "issue_token", world.community, gao, None, "web test Gao",
                                          "demo")["token"]
        lead.goto(lead.c(f"/consultations/{cons}/manage"))
        lead.submit("form[action$='/invitations']", person=gao, role="expert")
        expert = Visitor(browser, world, "Gao", "en", shots).sign_in()
        expert.goto(expert.c(f"/consultations/{cons}"))
        expert.submit("form.invitation-answer", "invitation-declined", accept="no", reason="Away that month.")
        member = next(m for m in api(world, "GET", f"/consultations/{cons}", "Zhang")["body"] if m["person"] == gao)
        assert (member["role"], member["status"], member["reason"]) == ("expert", "declined", "Away that month.")
        expert.close()
        # An option (the convener's), amended by a body member (the building leader), accepted by the convener.
        option = api(world, "POST", f"/consultations/{cons}/options", "lead",
                     {"title": "Clear the drains", "description": "The property company clears the drains."},
                     expect=201)
        option = option["id"] if isinstance(option, dict) else option
        zhang.goto(zhang.c(f"/consultations/{cons}"), "resident-sees-no-amendment-form")
        assert zhang.page.locator("form[action$='/amendments']").count() == 0
        assert zhang.page.locator("form[action$='/option']").count() == 0  # options come from the body
        li.goto(li.c(f"/consultations/{cons}"))
        li.page.locator("details.amend summary").first.click()
        amended = "Clear the drains and replace the broken pipe at unit 101."
        li.submit("form[action$='/amendments']", "amendment-proposed", title="Clear and repair", description=amended)
        c = api(world, "GET", f"/consultations/{cons}", "worker")
        assert [(a["status"], a["description"]) for a in c["amendments"]] == [("pending", amended)]
        lead.goto(lead.c(f"/consultations/{cons}/manage"), "amendment-to-rule")
        lead.submit("form.ruling", "amendment-accepted", accept="yes", reason="The pipe is part of the same repair.")
        c = api(world, "GET", f"/consultations/{cons}", "worker")
        assert c["amendments"][0]["status"] == "accepted"
        assert (c["options"][0]["title"], c["options"][0]["description"]) == ("Clear and repair", amended)
        zhang.goto(zhang.c(f"/consultations/{cons}"), "amended-option")
        assert amended in zhang.page.locator("main").inner_text()
    finally:
        for v in (lead, prop, li, zhang):
            v.close()


# ---- meetings and minutes ----------------------------------------------------------------------------
def test_a_meeting_is_cancelled_and_minutes_are_revised_and_corrected(world, browser):
    shots = Shots("zh-CN-deliberation-meetings")
    cons = consultation(world, "排水会议 / drainage meetings")
    now = clock.parse(world.p.api("GET", "/api/v1/deployment", expect=200).json()["now"])
    days = api(world, "GET", f"/consultations/{cons}", "worker")["rules"]["meeting_notice_days"]
    starts = now + timedelta(days=days + 1)
    secretary = me(world, "worker")

    def schedule(at):
        made = api(world, "POST", f"/consultations/{cons}/meetings", "lead",
                   {"starts_at": clock.format(at), "mode": "on_site", "place": "社区活动室", "agenda": ["排水方案"],
                    "secretary": secretary}, expect=201)
        return made["id"] if isinstance(made, dict) else made

    held, dropped = schedule(starts), schedule(starts + timedelta(days=1))
    lead = Visitor(browser, world, "lead", "zh-CN", shots).sign_in()
    worker = Visitor(browser, world, "worker", "zh-CN", shots).sign_in()
    zhang = Visitor(browser, world, "Zhang", "zh-CN", shots).sign_in()
    try:
        # Residents and the secretary see no cancellation; the convener cancels with a reason.
        zhang.goto(zhang.c(f"/meetings/{dropped}"), "meeting-resident")
        assert zhang.page.locator("form[action$='/cancellation']").count() == 0
        lead.goto(lead.c(f"/meetings/{dropped}"))
        lead.page.locator("details.cancel summary").click()
        lead.submit("form[action$='/cancellation']", "meeting-cancelled", reason="与第一次会议重复 / a duplicate")
        assert api(world, "GET", f"/meetings/{dropped}", "Zhang")["status"] == "cancelled"
        # The other meeting is held; the secretary records minutes and revises them before any signature.
        world.p.set_clock(starts + timedelta(minutes=1))
        for who in ("lead", "Wang", "Li"):
            api(world, "POST", f"/meetings/{held}/attendance", who, {}, expect=201)
        api(world, "POST", f"/meetings/{held}/opening", "lead")
        api(world, "POST", f"/meetings/{held}/minutes", "worker", {"text": "初稿 / first draft"}, expect=201)
        worker.goto(worker.c(f"/meetings/{held}"), "minutes-recorded")
        worker.page.locator("details.revise summary").click()
        worker.submit("form[action$='/revision']", "minutes-revised", text="修订稿：同意疏通 / revised: clear them")
        original = api(world, "GET", f"/meetings/{held}", "Zhang")["minutes"][0]["id"]
        assert api(world, "GET", f"/minutes/{original}", "Zhang")["text"] == "修订稿：同意疏通 / revised: clear them"
        # Signed by the convener and the grid leader: confirmed, so only a correction may change it.
        for who in ("lead", "Wang"):
            api(world, "POST", f"/minutes/{original}/signatures", who, expect=201)
        assert api(world, "GET", f"/minutes/{original}", "Zhang")["confirmed"] is True
        worker.goto(worker.c(f"/meetings/{held}"), "minutes-confirmed")
        assert worker.page.locator("details.revise").count() == 0
        zhang.goto(zhang.c(f"/meetings/{held}"))
        assert zhang.page.locator("form[action$='/correction']").count() == 0
        worker.page.locator("details.correct summary").click()
        corrected = "修订稿：同意疏通，并更换101破损管道 / also replace the pipe at 101"
        worker.submit("form[action$='/correction']", "minutes-corrected", text=corrected)
        records = api(world, "GET", f"/meetings/{held}", "Zhang")["minutes"]
        assert len(records) == 2 and records[1]["corrects"] == original
        assert api(world, "GET", f"/minutes/{original}", "Zhang")["corrected_by"] == records[1]["id"]
        assert api(world, "GET", f"/minutes/{records[1]['id']}", "Zhang")["text"] == corrected
        zhang.goto(zhang.c(f"/meetings/{held}"), "correction-shown")
        assert zhang.page.locator(f"#minutes-{original} .corrected").count() == 1
        assert corrected in zhang.page.locator(f"#minutes-{records[1]['id']}").inner_text()
        assert zhang.page.locator(f"#minutes-{records[1]['id']} .correction-of").count() == 1
    finally:
        for v in (lead, worker, zhang):
            v.close()


# ---- comments -------------------------------------------------------------------------------------------
def test_a_moderator_hides_a_flagged_comment_and_restores_it_and_an_author_edits_theirs(world, browser):
    shots = Shots("en-deliberation-comments")
    cons = consultation(world, "Parking by building 2")
    rude = "The people in 301 are idiots and park like fools."
    mine = api(world, "POST", f"/consultations/{cons}/comments", "Liu", {"text": rude, "stance": "against"},
               expect=201)
    mine = mine["id"] if isinstance(mine, dict) else mine
    first = "Park on the east side only?"
    own = api(world, "POST", f"/consultations/{cons}/comments", "Zhang", {"text": first, "stance": "question"},
              expect=201)
    own = own["id"] if isinstance(own, dict) else own
    chen = Visitor(browser, world, "Chen", "en", shots).sign_in()
    zhang = Visitor(browser, world, "Zhang", "en", shots).sign_in()
    worker = Visitor(browser, world, "worker", "en", shots).sign_in()
    try:
        # A resident flags the rude comment; one flag does not hide it.
        chen.goto(chen.c(f"/consultations/{cons}"), "discussion")
        assert chen.page.locator(f"#comment-{mine} a.comment-moderate").count() == 0
        chen.submit(f"#comment-{mine} form[action$='/flag']", "flagged")
        assert api(world, "GET", f"/comments/{mine}", "worker")["flags"] == 1
        # Zhang edits his own comment (and is offered no edit of anyone else's).
        zhang.goto(zhang.c(f"/consultations/{cons}"))
        assert zhang.page.locator(f"#comment-{mine} a.comment-edit").count() == 0
        zhang.page.locator(f"#comment-{own} a.comment-edit").click()
        zhang.check("comment-edit")
        better = "Park on the east side only, and keep the fire lane free?"
        zhang.submit("form[action$='/edit']", "comment-edited", text=better)
        cm = api(world, "GET", f"/comments/{own}", "Chen")
        assert cm["text"] == better and [h["text"] for h in cm["history"]] == [first]
        assert better in zhang.page.locator(f"#comment-{own}").inner_text()
        # The moderator hides the flagged comment with a reason: residents no longer read it.
        worker.goto(worker.c(f"/consultations/{cons}"))
        worker.page.locator(f"#comment-{mine} a.comment-moderate").click()
        worker.check("moderation-hide")
        worker.submit("form[action$='/moderation']", "comment-hidden", reason="Insults a neighbour.")
        cm = api(world, "GET", f"/comments/{mine}", "Chen")
        assert cm["hidden"] is True and cm["text"] is None and cm["hidden_reason"] == "Insults a neighbour."
        chen.goto(chen.c(f"/consultations/{cons}"), "comment-hidden-for-residents")
        assert rude not in chen.page.content()
        assert "Insults a neighbour." in chen.page.locator(f"#comment-{mine}").inner_text()
        # ... and restores it, with a reason: it is back for everyone.
        worker.goto(worker.c(f"/comments/{mine}/moderation"), "moderation-restore")
        worker.submit("form[action$='/moderation']", "comment-restored", reason="The author apologised; kept as said.")
        assert api(world, "GET", f"/comments/{mine}", "Chen")["hidden"] is False
        chen.goto(chen.c(f"/consultations/{cons}"), "comment-restored-for-residents")
        assert rude in chen.page.locator(f"#comment-{mine}").inner_text()
    finally:
        for v in (chen, zhang, worker):
            v.close()


# ---- roles ------------------------------------------------------------------------------------------------
def test_residents_reach_none_of_the_worker_forms_and_nothing_is_recorded(world, browser):
    shots = Shots("zh-CN-deliberation-roles")
    waiting = proposal(world, "待审核的提议 / awaiting screening", who="Sun")
    other = proposal(world, "另一项提议 / another", who="Sun")
    cons = consultation(world, "角色检查 / roles")
    now = clock.parse(world.p.api("GET", "/api/v1/deployment", expect=200).json()["now"])
    days = api(world, "GET", f"/consultations/{cons}", "worker")["rules"]["meeting_notice_days"]
    meeting = api(world, "POST", f"/consultations/{cons}/meetings", "lead",
                  {"starts_at": clock.format(now + timedelta(days=days + 1)), "mode": "online", "place": "视频会议",
                   "agenda": ["议程"], "secretary": me(world, "worker")}, expect=201)
    meeting = meeting["id"] if isinstance(meeting, dict) else meeting
    option = api(world, "POST", f"/consultations/{cons}/options", "lead",
                 {"title": "方案", "description": "方案说明"}, expect=201)
    option = option["id"] if isinstance(option, dict) else option
    amendment = api(world, "POST", f"/consultations/{cons}/options/{option}/amendments", "Li",
                    {"description": "修正"}, expect=201)
    amendment = amendment["id"] if isinstance(amendment, dict) else amendment
    comment = api(world, "POST", f"/consultations/{cons}/comments", "Chen", {"text": "陈静的评论", "stance": "for"},
                  expect=201)
    comment = comment["id"] if isinstance(comment, dict) else comment
    zhang = Visitor(browser, world, "Zhang", "zh-CN", shots).sign_in()
    try:
        before = audit_settled(world)
        for path in (f"/proposals/{waiting}/screening", f"/proposals/{waiting}/merging",
                     f"/consultations/{cons}/manage", f"/comments/{comment}/moderation", f"/comments/{comment}/edit"):
            resp = zhang.page.goto(world.web + zhang.c(path))
            assert resp.status == 403, (path, resp.status)
            assert zhang.page.locator(".notice.error").count() == 1
        zhang.check("forbidden")
        zhang.goto(zhang.c(f"/consultations/{cons}"), "consultation-as-resident")
        for form in ("invitations", "ruling", "amendments", "moderation"):
            assert zhang.page.locator(f"form[action$='/{form}']").count() == 0, form
        assert zhang.page.locator("a.comment-moderate").count() == 0
        csrf = zhang.page.locator("input[name=csrf]").first.input_value()
        posts = {
            f"/proposals/{waiting}/screening": {"admissible": "no", "reason": "不行"},
            f"/proposals/{waiting}/merging": {"into": other},
            f"/consultations/{cons}/invitations": {"person": me(world, "Zhang"), "role": "resident"},
            f"/consultations/{cons}/convener": {"person": me(world, "worker")},
            f"/consultations/{cons}/amendments/{amendment}/ruling": {"accept": "yes", "reason": "好"},
            f"/consultations/{cons}/options/{option}/amendments": {"description": "我的修正"},
            f"/meetings/{meeting}/cancellation": {"reason": "不开了"},
            f"/comments/{comment}/moderation": {"reason": "隐藏"},
            f"/comments/{comment}/edit": {"text": "改掉别人的评论"},
        }
        for path, form in posts.items():
            resp = zhang.context.request.post(world.web + zhang.c(path), form={"csrf": csrf, **form}, max_redirects=0)
            assert resp.status == 403, (path, resp.status)
        assert [api(world, "GET", f"/proposals/{p}", "Sun")["status"] for p in (waiting, other)] == ["submitted"] * 2
        c = api(world, "GET", f"/consultations/{cons}", "worker")
        assert me(world, "Zhang") not in [m["person"] for m in c["body"]] and c["convener"] == me(world, "lead")
        assert [a["status"] for a in c["amendments"]] == ["pending"] and len(c["amendments"]) == 1
        assert api(world, "GET", f"/meetings/{meeting}", "worker")["status"] == "scheduled"
        cm = api(world, "GET", f"/comments/{comment}", "worker")
        assert cm["hidden"] is False and cm["text"] == "陈静的评论"
        assert audit_settled(world) == before
    finally:
        zhang.close()
