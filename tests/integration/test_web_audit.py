"""The public record's pages for auditors and the public, in a real headless Chromium (issue 14): the
record replayed "as of" a chosen time (cases and their stages then, the log's size then, the checkpoint
in force then), the printable notice (公示) whose QR code opens the notice itself, an entry's inclusion
proof saved for `consult audit verify-proof`, and the auditor reaching every public page. The numbers
the pages show are checked against the API (GET …/audit/entries and …/audit/checkpoints)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock
from services.web.pages_more import qr_svg
from tests.harness import wait_for
from tests.integration.web_world import Shots, Visitor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TITLE = "修补2栋门前路面 / Mend the path by building 2"


def api(world, path: str, who: str = "auditor"):
    return world.p.api("GET", f"/api/v1/communities/{world.community}{path}", world.tokens[who], expect=200).json()


def settled(world) -> int:
    """The log's size once it stops growing (events of earlier steps still arriving)."""
    seen = []

    def same():
        seen.append(world.audit_size())
        return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] and seen[-1]
    return wait_for(same, timeout=60, interval=0.5, message="the audit log settled")


def entries(world) -> list[dict]:
    out: list[dict] = []
    while True:
        got = api(world, f"/audit/entries?from={len(out)}&limit=1000")
        out.extend(got["entries"])
        if len(out) >= got["size"] or not got["entries"]:
            return out


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def field(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def timeline(world):
    """A case on a clock of our own: proposed at t1, screened (collecting support) at t2, a checkpoint
    cut at t3 (and one at t0, before t1, so the checkpoint in force changes too), supported by three
    neighbours at t4 and so qualified, its consultation opening by itself (议事)."""
    p = world.p
    now = clock.parse(p.api("GET", "/api/v1/deployment", expect=200).json()["now"])
    t0, t1, t2, t3, t4 = (now + timedelta(hours=h) for h in (1, 2, 3, 4, 5))
    settled(world)
    p.set_clock(t0)
    p.cli("audit", "cut", "--community", world.community)
    p.set_clock(t1)
    c = f"/api/v1/communities/{world.community}"
    made = p.api("POST", c + "/proposals", world.tokens["Zhang"], {
        "title": TITLE, "body": "路面塌陷，雨天积水 / the path has sunk and floods", "category": "other",
        "scope": "building", "scope_id": world.demo["buildings"]["2"]}, expect=201).json()
    proposal = made["id"]
    p.api("POST", c + f"/proposals/{proposal}/submit", world.tokens["Zhang"], expect=200)
    p.set_clock(t2)
    p.api("POST", c + f"/proposals/{proposal}/screen", world.tokens["worker"], {"admissible": True}, expect=200)
    wait_for(lambda: any(e["type"] == "ProposalCollectionOpened" and when(e["occurred_at"]) >= t2
                         for e in entries(world)), timeout=60, message="the screening in the log")
    settled(world)
    p.set_clock(t3)
    p.cli("audit", "cut", "--community", world.community)
    p.set_clock(t4)
    for name in ("Chen", "Liu", "Zhao"):
        p.api("POST", c + f"/proposals/{proposal}/supports", world.tokens[name], expect=201)
    wait_for(lambda: any(x["proposal"] == proposal for x in api(world, "/consultations")), timeout=60,
             message="the consultation opened")
    settled(world)
    case = made.get("case") or proposal
    return {"t0": t0, "t1": t1, "t2": t2, "t3": t3, "t4": t4, "case": case, "proposal": proposal}


def as_of(v: Visitor, instant: datetime, step: str) -> dict:
    """The "as of" page through its form (as a person would use it), and what it shows."""
    v.goto(v.c("/audit/as-of"))
    v.submit("form[action$='/audit/as-of']", step, at=field(instant))
    page = v.page
    cases = {li.get_attribute("data-case"): (li.get_attribute("data-stage"), li.get_attribute("data-status"))
             for li in page.locator("#as-of-cases > li[data-case]").all()}
    cp = page.locator("#as-of-checkpoint")
    return {"entries": int(page.locator("#as-of-entries").inner_text().strip()), "cases": cases,
            "checkpoint": cp.inner_text(), "at": page.locator("#as-of").get_attribute("data-at"),
            "html": page.content()}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_record_as_of_a_chosen_time(world, browser, timeline, lang):
    shots = Shots(lang + "-audit-as-of")
    v = Visitor(browser, world, "auditor", lang, shots).sign_in()
    try:
        log = entries(world)
        checkpoints = api(world, "/audit/checkpoints?from=0&limit=1000")
        case = timeline["case"]

        def expected(instant: datetime) -> tuple[int, dict | None]:
            count = sum(1 for e in log if when(e["occurred_at"]) <= instant)
            signed = [cp for cp in checkpoints if when(cp["time"]) <= instant]
            return count, (signed[-1] if signed else None)

        v.goto(v.c("/audit"), "public-record")
        v.page.locator("a[href$='/audit/as-of']").click()
        v.page.wait_for_url("**/audit/as-of")
        v.check("as-of-form")

        # Before the proposal: no such case; the log then held the entries that had occurred by then.
        before = timeline["t1"] - timedelta(minutes=30)
        seen = as_of(v, before, "as-of-before")
        count, cp = expected(before)
        assert case not in seen["cases"]
        assert seen["entries"] == count and 0 < count < len(log)
        assert cp is not None and cp["root"] in seen["checkpoint"], "the checkpoint cut at t0 was in force"

        # Between the proposal and its screening: the case, at the proposal stage, submitted.
        between = timeline["t2"] - timedelta(minutes=30)
        seen = as_of(v, between, "as-of-submitted")
        assert seen["cases"][case] == ("proposal", "submitted")
        assert seen["entries"] == expected(between)[0] > count
        assert TITLE in seen["html"]
        assert expected(between)[1]["root"] in seen["checkpoint"]

        # After the screening and the second checkpoint: collecting support, the newer checkpoint.
        after = timeline["t3"] + timedelta(minutes=30)
        seen = as_of(v, after, "as-of-collecting")
        count_after, cp_after = expected(after)
        assert seen["cases"][case] == ("proposal", "collecting")
        assert seen["entries"] == count_after
        assert cp_after["root"] in seen["checkpoint"] and cp_after["root"] != cp["root"]
        # Cut at t3, or -- when the audit service's own timer (a checkpoint a minute of real time)
        # signed the screening first, at t2, leaving the cut at t3 nothing new -- that one.
        assert timeline["t2"] <= when(cp_after["time"]) <= timeline["t3"], "a checkpoint after the screening"
        # The case's last entry links to its entry page with a proof against the checkpoint of then.
        link = v.page.locator(f"#as-of-cases li[data-case='{case}'] a[href*='/audit/entries/']").first
        assert link.get_attribute("href").endswith(f"?size={cp_after['size']}")
        link.click()
        v.page.wait_for_load_state()
        v.no_error("the entry of the case")
        v.check("as-of-entry")
        assert v.page.locator("code", has_text=cp_after["root"]).count() >= 1

        # Once supported and qualified: the case had moved on to deliberation (议事), its consultation open.
        later = timeline["t4"] + timedelta(minutes=30)
        seen = as_of(v, later, "as-of-deliberation")
        assert seen["cases"][case] == ("deliberation", "open")
        assert seen["entries"] == expected(later)[0] > count_after
        assert len(seen["cases"]) == len({e["case"] for e in log if e["case"] and when(e["occurred_at"]) <= later})

        # A time in other forms (RFC 3339 with an offset) is read too; garbage is a clear error page.
        offset = (timeline["t2"] - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=8)))
        v.goto(v.c("/audit/as-of?at=" + offset.isoformat().replace("+", "%2B")))
        assert v.page.locator(f"#as-of-cases li[data-case='{case}']").get_attribute("data-status") == "submitted"
        for garbage in ("not-a-time", "2026-13-45T25:61", "9999-12-31T23:59:59-23:59%20x", "0" * 300):
            resp = v.page.goto(world.web + v.c("/audit/as-of?at=" + garbage))
            assert resp.status == 422, (garbage, resp.status)
            assert v.page.locator(".notice.error[role=alert]").count() == 1
            text = v.page.locator(".notice.error").inner_text()
            assert ("无法识别这个日期时间" if lang == "zh-CN" else "not a date and time we can read") in text
        v.check("as-of-garbage")
    finally:
        v.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_printable_notice_has_a_qr_code_of_itself(world, browser, timeline, lang):
    shots = Shots(lang + "-audit-notice")
    v = Visitor(browser, world, "auditor", lang, shots).sign_in()
    try:
        v.goto(v.c("/audit"))
        v.page.locator("a[href$='/audit/notice']").click()
        v.page.wait_for_url("**/audit/notice")
        v.no_error("notice")
        v.check("notice")
        url = v.page.url
        qr = v.page.locator("#notice-qr")
        assert qr.get_attribute("data-link") == url
        # The code drawn is the code of this page's address (and not of the record page).
        drawn = qr.locator("svg path").first.get_attribute("d")
        mine = qr_svg(url)
        assert drawn and f'd="{drawn}"' in str(mine)
        assert f'd="{drawn}"' not in str(qr_svg(url.rsplit("/notice", 1)[0]))
        # The notice states the latest checkpoint, as the API does.
        latest = api(world, "/audit/checkpoint")
        notice = world.p.api("GET", f"/api/v1/communities/{world.community}/audit/notice?lang={lang}",
                             world.tokens["auditor"], expect=200).json()
        assert v.page.locator("#notice-text").inner_text().strip() == notice["text"].strip()
        assert v.page.locator("code", has_text=latest["root"]).count() == 1
    finally:
        v.close()


def test_public_pages_for_the_auditor_and_an_entry_proof_to_verify_offline(world, browser, timeline, tmp_path):
    shots = Shots("zh-CN-audit-pages")
    v = Visitor(browser, world, "auditor", "zh-CN", shots).sign_in()
    resident = Visitor(browser, world, "Zhang", "en", shots).sign_in()
    try:
        case = timeline["case"]
        # The case file: every step links to its audit entry; each entry page has its inclusion proof.
        v.goto(v.c(f"/cases/{case}"), "case-file")
        links = v.page.locator("a[href*='/audit/entries/']")
        assert links.count() >= 3
        first = links.first.get_attribute("href")
        v.goto(first, "entry")
        index = int(first.rstrip("/").split("/")[-1])
        assert v.page.locator("h1").inner_text().strip().endswith(f"#{index}")
        save = v.page.locator("a[href$='/proof.json']")
        assert save.count() == 1
        with v.page.expect_download() as dl:
            save.click()
        path = tmp_path / "proof.json"
        dl.value.save_as(path)
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert bundle["kind"] == "bundle" and bundle["entries"][0]["index"] == index
        keys = world.p.api("GET", "/api/v1/audit/public-keys", expect=200).json()
        pem = next(k["pem"] for k in keys["keys"] if k["key_id"] == keys["current"])
        (tmp_path / "key.pem").write_text(pem, encoding="utf-8")
        checked = world.p.cli("audit", "verify-proof", str(path), "--public-key", str(tmp_path / "key.pem"), check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # The record page names both ways to verify, and the keys.
        v.goto(v.c("/audit"), "record")
        html = v.page.content()
        assert "consult audit verify record.jsonl" in html and "consult audit verify-proof" in html
        assert keys["current"] in html
        # A resident reads the same public pages (they are the public's), the as-of page among them.
        for path_, step in (("/audit/as-of", "resident-as-of"), ("/audit/notice", "resident-notice")):
            resident.goto(resident.c(path_), step)
        resident.goto(resident.c("/audit/as-of?at=" + field(timeline["t3"])))
        assert resident.page.locator(f"#as-of-cases li[data-case='{case}']").count() == 1
        # Another community's record does not exist for this auditor.
        resp = v.page.goto(world.web + "/communities/00000000-0000-4000-8000-000000000000/audit/as-of?at=2026-01-01T00:00")
        assert resp.status == 404
    finally:
        v.close()
        resident.close()
