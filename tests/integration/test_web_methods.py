"""Every voting method the API supports, voted in a real headless Chromium through the ballot page's
form (issue 14): ranks (Schulze, IRV), scores, approvals, consent with a block. Each ballot is made and
opened through the API by the demo community worker with the test clock, residents vote in the browser,
the clock closes it, and the result is read from the API: it counts exactly the choices made. One bad
input per method is refused by the page with its message and records nothing.

And the voter roll: the configuration page's preview (from the directory, before opening) names as many
voters with as much floor area as the roll the decisions service freezes at the opening, and the roll
page shows that roll with its hash. One platform (SQLite)."""
from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest

from services.common import clock
from tests.harness import wait_for
from tests.integration.web_world import Visitor, Walk, local

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

OPTIONS = [{"id": "east", "title": "East gate"}, {"id": "west", "title": "West gate"},
           {"id": "north", "title": "North gate"}]
VOTE = "form[action$='/vote']"


class Scene(Walk):
    """A Walk with the API writes a ballot needs."""

    def path(self, path: str) -> str:
        return f"/api/v1/communities/{self.world.community}{path}"

    def call(self, method: str, path: str, body=None, who: str = "worker", expect: int = 200):
        return self.world.p.api(method, self.path(path), self.world.tokens[who], body, expect=expect).json()

    def ballot(self, title: str, options=OPTIONS, scope: str = "community", scope_id: str | None = None) -> str:
        return self.call("POST", "/ballots", {"title": title, "scope": scope, "scope_id": scope_id,
                                              "options": options}, expect=201)["id"]

    def configure(self, ballot: str, method: str, unit: str = "resident", preset: str = "generic"):
        opens = self.now + timedelta(days=16)
        body = {"preset": preset, "voting_unit": unit, "opens_at": clock.format(opens),
                "closes_at": clock.format(opens + timedelta(days=7))}
        if preset == "generic":
            body["method"] = method
        self.call("PUT", f"/ballots/{ballot}/configuration", body)

    def status(self, ballot: str, *statuses: str) -> dict:
        return wait_for(lambda: (b := self.api(f"/ballots/{ballot}"))["status"] in statuses and b, timeout=60,
                        message=f"ballot {ballot} {' or '.join(statuses)}")

    def board(self, ballot: str) -> list:
        return self.api(f"/ballots/{ballot}/board")["entries"]


def fill(v: Visitor, selector: str, **fields):
    """Fill a form's fields as Visitor.submit does: a list ticks those checkboxes, a select picks."""
    form = v.page.locator(selector).first
    for name, value in fields.items():
        box = form.locator(f"[name='{name}']")
        kind = (box.first.get_attribute("type") or box.first.evaluate("e => e.tagName")).lower()
        if kind == "radio":
            form.locator(f"[name='{name}'][value='{value}']").check()
        elif kind == "checkbox":
            for b in box.all():
                b.set_checked(b.get_attribute("value") in value)
        elif kind == "select":
            box.select_option(value)
        else:
            box.fill(value)
    return form


def refused(s: Scene, who: str, ballot: str, message: str, step: str, **fields):
    """A vote the page must refuse: its message shown, and nothing recorded on the board."""
    v = s[who]
    before = s.board(ballot)
    v.goto(v.c(f"/ballots/{ballot}"))
    form = fill(v, VOTE, **fields)
    form.evaluate("f => { f.noValidate = true; }")  # as a browser without validation would send it
    with v.page.expect_navigation():
        form.locator("button[type=submit]").first.click()
    assert v.page.locator(".notice.error").inner_text().strip() == message
    v.check(step)
    assert s.board(ballot) == before
    s.call("GET", f"/ballots/{ballot}/my-vote", who=who, expect=404)


def vote(s: Scene, who: str, ballot: str, step: str | None = None, **fields):
    v = s[who]
    v.goto(v.c(f"/ballots/{ballot}"), step and f"{step}-form")
    v.submit(VOTE, step, **fields)
    assert v.page.locator("code.receipt").count() == 1  # "Your vote is recorded", with its receipt


def test_every_method_is_voted_in_the_browser_and_counted_exactly(world, browser):
    s = Scene(world, browser, "en", "en-methods")
    try:
        made = {m: s.ballot(f"Which gate to reopen ({m})") for m in ("schulze", "irv", "score", "approval")}
        made["consent"] = s.ballot("Close the east gate at night (consent)", options=[OPTIONS[0]])
        for method, ballot in made.items():
            s.configure(ballot, method)
        s.later(days=16, minutes=1)
        for ballot in made.values():
            b = s.status(ballot, "open")
        assert b["configuration"]["rule"]["method"] == "consent"

        # Schulze: ranks; a tie is refused. East beats west 2:1 and north 3:0; west beats north 2:1.
        sch = made["schulze"]
        refused(s, "Zhang", sch, "Give each option a different rank (no ties).", "schulze-tied-refused",
                rank_east="1", rank_west="1", rank_north="2")
        vote(s, "Zhang", sch, "schulze", rank_east="1", rank_west="2", rank_north="3")
        vote(s, "Wang", sch, rank_west="1", rank_east="2", rank_north="3")
        vote(s, "Li", sch, rank_east="1", rank_north="2")  # west left unranked
        assert s.call("GET", f"/ballots/{sch}/my-vote", who="Li")["choice"] == ["east", "north"]

        # IRV: west has a majority of first preferences.
        irv = made["irv"]
        refused(s, "Wang", irv, "Give each option a different rank (no ties).", "irv-tied-refused",
                rank_east="2", rank_west="2")
        vote(s, "Zhang", irv, "irv", rank_west="1")
        vote(s, "Wang", irv, rank_west="1", rank_east="2")
        vote(s, "Li", irv, rank_east="1", rank_north="2")

        # Score (0-5): a score out of range is refused; a score left blank counts as the lowest.
        sc = made["score"]
        refused(s, "Li", sc, "Give each score within the range shown.", "score-out-of-range-refused",
                score_east="9", score_west="1")
        vote(s, "Zhang", sc, "score", score_east="5", score_west="3", score_north="0")
        vote(s, "Wang", sc, score_east="1", score_west="4", score_north="2")
        vote(s, "Li", sc, score_west="1")
        assert s.call("GET", f"/ballots/{sc}/my-vote", who="Li")["choice"] == {"west": 1}

        # Approval: "Vote" with nothing ticked is refused (the Abstain button abstains).
        ap = made["approval"]
        refused(s, "Zhang", ap, "Please choose before you vote.", "approval-empty-refused", approve=[])
        vote(s, "Zhang", ap, "approval", approve=["east", "west"])
        vote(s, "Wang", ap, approve=["west"])
        vote(s, "Li", ap, approve=["north", "west"])

        # Consent: a motion; no answer is refused; one agrees, one blocks, one abstains.
        co = made["consent"]
        refused(s, "Wang", co, "Please choose before you vote.", "consent-no-answer-refused")
        vote(s, "Zhang", co, "consent", choice="agree")
        vote(s, "Wang", co, "consent-blocked", choice="block")
        v = s["Li"]
        v.goto(v.c(f"/ballots/{co}"))
        assert v.page.locator(f"{VOTE} input[name=choice][value=block]").count() == 1
        v.submit(VOTE, choice="abstain")

        s.later(days=7, minutes=2)
        results = {m: s.status(b, "adopted", "rejected")["result"] for m, b in made.items()}
        for method, r in results.items():
            assert r["ballots"] == 3, (method, r["ballots"])

        r = results["schulze"]
        assert (r["outcome"], r["winner"]) == ("adopted", "east")
        assert r["ranking"] == [["east"], ["west"], ["north"]]
        r = results["irv"]
        assert (r["outcome"], r["winner"]) == ("adopted", "west")
        r = results["score"]
        assert {o: c["heads"] for o, c in r["option_counts"].items()} == {"east": 6, "west": 8, "north": 2}
        assert (r["outcome"], r["winner"]) == ("adopted", "west")
        r = results["approval"]
        assert {o: c["heads"] for o, c in r["option_counts"].items()} == {"east": 1, "west": 3, "north": 1}
        assert (r["outcome"], r["winner"]) == ("adopted", "west")
        r = results["consent"]
        assert r["outcome"] == "rejected" and r["blocked"] is True
        assert (r["blocking_heads"], r["agreeing_heads"], r["abstaining_heads"]) == (1, 1, 1)
        board = {e["choice"] for e in s.board(co)}
        assert board == {"agree", "block", "abstain"}

        # The result pages show the counts per option and the block.
        zhang = s["Zhang"]
        zhang.goto(zhang.c(f"/ballots/{ap}"), "approval-result")
        counts = dict(zip(zhang.page.locator("td:has(+ td.option-count)").all_inner_texts(),
                          zhang.page.locator("td.option-count").all_inner_texts()))
        assert counts == {"East gate": "1", "West gate": "3", "North gate": "1"}
        zhang.goto(zhang.c(f"/ballots/{co}"), "consent-result")
        facts = zhang.page.locator("#result-h ~ dl.facts").inner_text()
        assert "Blocking" in facts and "m²" not in facts  # one resident, one vote: no floor area
    finally:
        s.close()


def test_the_roll_preview_before_opening_matches_the_roll_frozen_at_opening(world, browser):
    s = Scene(world, browser, "zh-CN", "zh-CN-methods")
    try:
        building = world.demo["buildings"]["2"]
        owners = s.ballot("更换2栋单元门禁 / new entry-phones for building 2", options=[OPTIONS[0]],
                          scope="building", scope_id=building)
        residents = s.ballot("小区大门 / the gates", options=OPTIONS)
        worker = s["worker"]
        worker.goto(worker.c(f"/ballots/{owners}"))
        worker.page.locator("a[href$='/configuration']").click()
        worker.check("configure-owner-preview")
        preview = worker.page.locator("#roll-preview")
        assert "预览" in preview.locator(".notice").inner_text()  # clearly a preview
        owner_count = int(preview.locator(".roll-count").inner_text())
        owner_area = Fraction(preview.locator(".roll-area").inner_text().replace("m²", "").strip())
        assert owner_count >= 2 and owner_area > 0
        assert preview.locator("tbody tr").count() == owner_count
        # The same page previews the residents of the whole community for the other ballot.
        worker.goto(worker.c(f"/ballots/{residents}/configuration"))
        worker.submit("#roll-preview form", "configure-resident-preview", voting_unit="resident")
        resident_count = int(worker.page.locator("#roll-preview .roll-count").inner_text())
        assert worker.page.locator("#roll-preview .roll-area").count() == 0  # one person, one vote
        directory = s.api("/directory")
        assert resident_count == sum(1 for p in directory["people"] if p["adult"] and p["household"])
        assert resident_count < len(directory["people"])  # minors and people with no home here are not on it
        worker.submit("#roll-preview form", voting_unit="household")
        household_count = int(worker.page.locator("#roll-preview .roll-count").inner_text())
        assert 0 < household_count < resident_count

        # The owners' ballot is announced through the form; the residents' one through the API.
        worker.goto(worker.c(f"/ballots/{owners}/configuration"))
        opens = s.now + timedelta(days=16)
        worker.submit("form[method=post][action$='/configuration']", "owner-ballot-announced",
                      preset="owners_ordinary", voting_unit="owner", opens_at=local(opens),
                      closes_at=local(opens + timedelta(days=7)))
        s.configure(residents, "approval")
        assert worker.page.locator("a[href$='/roll']").count() == 0  # no roll before the opening
        worker.goto(worker.c(f"/ballots/{owners}/roll"), "roll-not-yet-frozen")
        assert worker.page.locator(".roll-hash").count() == 0

        s.later(days=16, minutes=1)
        for ballot in (owners, residents):
            s.status(ballot, "open")
        frozen = s.api(f"/ballots/{owners}/roll")
        assert len(frozen["roll"]) == owner_count
        assert sum(Fraction(e["weight"]) for e in frozen["roll"]) == owner_area
        assert len(s.api(f"/ballots/{residents}/roll")["roll"]) == resident_count

        # The roll page, linked from the ballot: its voters by name, their units and areas, and the hash.
        zhang = s["Zhang"]
        zhang.goto(zhang.c(f"/ballots/{owners}"))
        zhang.page.locator("a[href$='/roll']").click()
        zhang.no_error("roll link")
        zhang.check("frozen-roll")
        assert zhang.page.locator(".roll-hash").inner_text().strip() == frozen["roll_hash"]
        assert int(zhang.page.locator(".roll-count").inner_text()) == owner_count
        assert Fraction(zhang.page.locator(".roll-area").inner_text().replace("m²", "").strip()) == owner_area
        assert zhang.page.locator("table.roll tbody tr").count() == owner_count
        shown = zhang.page.locator("table.roll").inner_text()
        assert "张伟" in shown and "150 m²" in shown  # Zhang owns 201 and 202: 150 m² together
        assert not any(e["voter"][:8] in shown for e in frozen["roll"] if e["voter"] != "developer")  # names
    finally:
        s.close()
