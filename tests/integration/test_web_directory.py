"""The directory pages in a real headless Chromium (issue 14): a community worker adds a building, a
unit with its area, a person and a role through the forms and reads them in the directory; corrects an
area; issues a further token to themselves (shown once, with its QR sheet) and revokes it; imports a CSV
file — refused with every bad row by its row number and nothing recorded, or imported — and a resident
gets the 403 page for every directory page and form, with nothing recorded. One platform (SQLite)."""
from __future__ import annotations

import re

import pytest

from tests.harness import wait_for
from tests.integration.web_world import Shots, Visitor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def api(world, method: str, path: str, who: str = "worker", body=None, expect: int = 200):
    return world.p.api(method, f"/api/v1/communities/{world.community}{path}", world.tokens[who], body,
                       expect=expect).json()


def audit_settled(world) -> int:
    """The community's audit log size once it stops growing (events of earlier steps still arriving)."""
    last = [-1]

    def same():
        size = world.audit_size()
        done, last[0] = size == last[0], size
        return done and size

    return wait_for(same, timeout=30, interval=0.5, message="the audit log settled")


def option_value(v: Visitor, select: str, text: str) -> str:
    """The value of the option of a select whose label contains `text`."""
    return v.page.locator(f"{select} option", has_text=text).first.get_attribute("value")


NAMES = {"zh-CN": {"building": "9栋 (测试)", "person": "郑爽 测试", "unit": "901"},
         "en": {"building": "Building 9 (test)", "person": "Zheng Test", "unit": "902"}}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_worker_adds_a_building_a_unit_a_person_and_a_role_and_sees_them_listed(world, browser, lang):
    names = NAMES[lang]
    worker = Visitor(browser, world, "worker", lang, Shots(lang + "-directory")).sign_in()
    try:
        worker.goto(worker.c("/directory"), "directory")
        assert worker.page.locator("h1").inner_text().startswith("名册" if lang == "zh-CN" else "Directory")
        assert "王芳 Wang" in worker.page.locator(".list.people").inner_text()  # the demo's people are listed
        worker.goto(worker.c("/directory/new"), "directory-new")
        worker.submit("form[action$='/directory/buildings']", "building-added", compound=world.demo["compound"],
                      name=names["building"])
        assert worker.page.locator(".notice.ok").count() == 1
        building = option_value(worker, "select[name=building]", names["building"])
        assert building
        worker.submit("form[action$='/directory/units']", "unit-added", building=building, unit=names["unit"],
                      area="66.5", owner=option_value(worker, "#unit-owner", "陈静 Chen"))
        unit = worker.page.url.split("/units/")[1].split("?")[0]
        assert "66.5 m²" in worker.page.locator("#area").inner_text()
        worker.goto(worker.c("/directory/new#person"))
        worker.submit("form[action$='/directory/people']", "person-added", name=names["person"], household=unit)
        person = worker.page.url.split("/people/")[1].split("?")[0]
        assert worker.page.locator("h1").inner_text().startswith(names["person"])
        worker.submit("form[action$='/roles']", "role-granted", role="building_leader", scope_building=building)
        roles = worker.page.locator(".list.roles").inner_text()
        assert ("楼栋长" if lang == "zh-CN" else "Building leader") in roles and names["building"] in roles
        assert ("居民" if lang == "zh-CN" else "Resident") in roles  # the form's "grant the role resident"
        # The directory lists them: the building, the unit with its area, owner and resident; the person's roles.
        worker.goto(worker.c("/directory"), "directory-with-additions")
        block = worker.page.locator(f"#u-{unit}").inner_text()
        assert names["unit"] in block and "66.5 m²" in block and "陈静 Chen" in block and names["person"] in block
        assert worker.page.locator(f"#b-{building}").inner_text().startswith(names["building"])
        listed = worker.page.locator(f"#p-{person}").inner_text()
        assert names["person"] in listed and ("楼栋长" if lang == "zh-CN" else "Building leader") in listed
        # ... as the API has them.
        d = api(world, "GET", "/directory")
        h = next(x for x in d["households"] if x["id"] == unit)
        assert h["area"] == "66.5" and h["building"] == building and h["unit"] == names["unit"]
        p = next(x for x in d["people"] if x["id"] == person)
        assert p["household"] == unit and {"role": "building_leader", "scope": building} in p["roles"]
        # Correct the unit's area, with a reason; then revoke the role.
        worker.goto(worker.c(f"/directory/units/{unit}"))
        worker.submit("#correct-area", "area-corrected", area="67.25", reason="不动产权证 No. 123")
        assert "67.25 m²" in worker.page.locator("#area").inner_text()
        assert api(world, "GET", f"/households/{unit}")["area"] == "67.25"
        worker.goto(worker.c(f"/directory/people/{person}"))
        worker.page.locator("form[action$='/role-revocations']:has(input[value=building_leader]) button").click()
        worker.page.wait_for_url(re.compile(r"done=revoked"))
        worker.check("role-revoked")
        assert not any(r["role"] == "building_leader" for r in api(world, "GET", f"/people/{person}")["roles"])
    finally:
        worker.close()


def test_a_worker_issues_a_token_to_themselves_once_and_revokes_it(world, browser):
    worker = Visitor(browser, world, "worker", "en", Shots("en-directory-tokens")).sign_in()
    try:
        me = world.demo["people"]["林社工 Lin (social worker)"]
        # Another person's page offers no token form: the API issues tokens only to their holder.
        worker.goto(worker.c(f"/directory/people/{world.demo['people']['张伟 Zhang']}"), "other-person")
        assert worker.page.locator("form[action$='/tokens']").count() == 0
        assert worker.page.locator("a[href$='/invitations']").count() >= 1
        worker.goto(worker.c(f"/directory/people/{me}"), "own-page")
        worker.submit("form[action$='/tokens']", "token-issued", label="office tablet", days="7")
        token = worker.page.locator("#new-token").inner_text().strip()
        assert token and worker.page.locator(".qr svg").count() == 1
        assert world.p.api("GET", "/api/v1/me", token, expect=200).json()["person"] == me
        worker.goto(worker.c(f"/directory/people/{me}"))
        assert token not in worker.page.content()  # shown once: the list has labels and dates only
        worker.page.locator(".list.tokens li", has_text="office tablet").locator("button").click()
        worker.page.wait_for_url(re.compile(r"done=token"))
        worker.check("token-revoked")
        wait_for(lambda: world.p.api("GET", "/api/v1/me", token).status_code == 401, timeout=30,
                 message="the revoked token refused")
    finally:
        worker.close()


BAD_CSV = ("compound,building,unit,area,owners\n"
           "7号院坝,1栋,101,80,钱一\n"
           "7号院坝,1栋,102,abc,钱二\n"
           "7号院坝,1栋,103,60,\n"
           "7号院坝,1栋,104,70,钱四\n")
GOOD_CSV = ("compound,building,unit,area,owners,owner_keys,representative,developer_unsold\n"
            "8号院坝,1栋,101,80.5,孙一,K-001,,\n"
            "8号院坝,1栋,102,90,孙二;孙三,K-002;K-003,孙三,\n"
            "8号院坝,2栋,201,120,,,,true\n")


def directory_ids(world) -> dict:
    d = api(world, "GET", "/directory")
    return {k: sorted(x["id"] for x in d[k]) for k in ("compounds", "buildings", "households", "people")}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_csv_with_two_bad_rows_shows_both_row_numbers_and_imports_nothing(world, browser, lang):
    worker = Visitor(browser, world, "worker", lang, Shots(lang + "-directory-import-bad")).sign_in()
    try:
        before, audit_before = directory_ids(world), audit_settled(world)
        worker.goto(worker.c("/directory/import"), "import-form")
        assert "owner_keys" in worker.page.locator("dl.facts").inner_text()  # the columns are documented
        worker.page.locator("#csv-file").set_input_files(
            {"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode("utf-8")})
        with worker.page.expect_navigation() as nav:
            worker.page.locator("#import button[type=submit]").click()
        assert nav.value.status == 422
        worker.check("import-refused")
        rows = worker.page.locator(".bad-rows li")
        assert rows.count() == 2
        assert [rows.nth(i).get_attribute("data-line") for i in range(2)] == ["3", "4"]
        text = rows.all_inner_texts()
        if lang == "zh-CN":
            assert text[0].startswith("第 3 行") and "面积不是数字" in text[0]
            assert text[1].startswith("第 4 行") and "必须填写业主" in text[1]
        else:
            assert text[0].startswith("Row 3") and "The area is not a number" in text[0]
            assert text[1].startswith("Row 4") and "Owners are required" in text[1]
        assert directory_ids(world) == before
        assert audit_settled(world) == audit_before
    finally:
        worker.close()


def test_a_good_csv_imports_and_the_directory_lists_it(world, browser):
    worker = Visitor(browser, world, "worker", "en", Shots("en-directory-import-good")).sign_in()
    try:
        before = directory_ids(world)
        worker.goto(worker.c("/directory/import"))
        worker.page.locator("#csv-file").set_input_files(
            {"name": "good.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode("gb18030")})  # as Excel saves it
        with worker.page.expect_navigation() as nav:
            worker.page.locator("#import button[type=submit]").click()
        assert nav.value.status == 201
        worker.check("import-done")
        assert worker.page.locator("#units-added").inner_text() == "3"
        done = worker.page.locator("#imported").inner_text()
        for name in ("孙一", "孙二", "孙三"):
            assert name in done
        after = directory_ids(world)
        assert len(after["households"]) == len(before["households"]) + 3
        assert len(after["compounds"]) == len(before["compounds"]) + 1
        worker.goto(worker.c("/directory"), "directory-after-import")
        listed = worker.page.locator("section.card", has_text="8号院坝").inner_text()
        assert "80.5 m²" in listed and "孙二" in listed and "the developer (not sold)" in listed
        # The same file again changes nothing.
        worker.goto(worker.c("/directory/import"))
        worker.page.locator("#csv-text").fill(GOOD_CSV)
        with worker.page.expect_navigation():
            worker.page.locator("#import button[type=submit]").click()
        assert worker.page.locator("#units-added").inner_text() == "0"
        assert directory_ids(world) == after
        # A file that says otherwise about a unit already there is refused at that row (a sale or an
        # area correction has its own form), and nothing else of it is recorded either.
        worker.page.locator("#csv-text").fill(GOOD_CSV.replace("101,80.5,", "101,81,") + "8号院坝,3栋,301,60,孙四,K-004,,\n")
        with worker.page.expect_navigation() as nav:
            worker.page.locator("#import button[type=submit]").click()
        assert nav.value.status == 422
        worker.check("import-conflict")
        rows = worker.page.locator(".bad-rows li").all_inner_texts()
        assert len(rows) == 1 and rows[0].startswith("Row 2: Unit 101 of building 1栋 is already in the directory"), rows
        assert directory_ids(world) == after
    finally:
        worker.close()


def test_a_large_files_import_job_has_its_page_while_it_runs_and_when_it_has_ended(world, browser):
    """A file too large for the gateway's wait is answered with its job, and the import page sends the
    worker to the job's page (zh-CN): it says the file is being imported until it is, then what was
    imported; a refused file's job lists its bad rows. Here the jobs are made as any client would
    (`Prefer: respond-async`), so no test has to wait for a file that large."""
    worker = Visitor(browser, world, "worker", "zh-CN", Shots("zh-directory-import-job")).sign_in()
    base = f"/api/v1/communities/{world.community}/directory/import"
    text = GOOD_CSV.replace("8号院坝", "9号院坝")
    try:
        resp = world.p.api("POST", base, world.tokens["worker"], data=text.encode(),
                           headers={"Content-Type": "text/csv", "Prefer": "respond-async", "Accept-Language": None},
                           expect=202)
        job = resp.json()["id"]
        worker.goto(worker.c(f"/directory/imports/{job}"))

        def shown() -> bool:
            if worker.page.locator("#running").count():
                assert "正在导入该文件" in worker.page.locator("#running").inner_text()
                worker.page.locator("#check-again").click()  # what the worker does: look again
                return False
            return worker.page.locator("#imported").count() == 1

        wait_for(shown, timeout=60, interval=0.5, message="the job's page to say the file is imported")
        worker.check("import-job-done")
        assert worker.page.locator("#units-added").inner_text() == "3"
        assert "孙二" in worker.page.locator("#imported").inner_text()

        bad = text.replace("101,80.5,", "101,abc,")
        resp = world.p.api("POST", base, world.tokens["worker"], data=bad.encode(),
                           headers={"Content-Type": "text/csv", "Prefer": "respond-async"}, expect=202)
        wait_for(lambda: world.p.api("GET", resp.headers["Location"], world.tokens["worker"]).json()["status"]
                 == "failed", timeout=60, message="the refused file's job to end")
        worker.page.goto(world.web + worker.c(f"/directory/imports/{resp.json()['id']}"))
        worker.check("import-job-refused")
        rows = worker.page.locator(".bad-rows li").all_inner_texts()
        assert len(rows) == 1 and rows[0].startswith("第 2 行"), rows
    finally:
        worker.close()


def test_a_resident_gets_the_403_page_for_the_directory_pages_and_nothing_is_recorded(world, browser):
    zhang = Visitor(browser, world, "Zhang", "zh-CN", Shots("zh-CN-directory-roles")).sign_in()
    try:
        before, audit_before = directory_ids(world), audit_settled(world)
        unit, person = world.demo["units"]["101"], world.demo["people"]["王芳 Wang"]
        for path in ("/directory", "/directory/new", "/directory/import", f"/directory/people/{person}",
                     f"/directory/units/{unit}"):
            resp = zhang.page.goto(world.web + zhang.c(path))
            assert resp.status == 403, (path, resp.status)
            assert "您的角色无权进行此操作" in zhang.page.content()
            assert "王芳" not in zhang.page.content()
        zhang.check("forbidden")
        zhang.goto(zhang.c("/proposals/new"))
        csrf = zhang.page.locator("input[name=csrf]").first.input_value()
        posts = {"/directory/compounds": {"name": "x"},
                 "/directory/buildings": {"compound": world.demo["compound"], "name": "x"},
                 "/directory/units": {"building": world.demo["buildings"]["1"], "unit": "999", "area": "10",
                                      "developer_unsold": "1"},
                 "/directory/people": {"name": "x", "adult": "1"},
                 f"/directory/people/{person}/roles": {"role": "expert"},
                 f"/directory/people/{person}/role-revocations": {"role": "resident"},
                 f"/directory/units/{unit}/area": {"area": "1", "reason": "x"},
                 "/directory/import": {"text": GOOD_CSV.replace("8号院坝", "6号院坝")}}
        for path, form in posts.items():
            resp = zhang.context.request.post(world.web + zhang.c(path), form={"csrf": csrf, **form},
                                              max_redirects=0)
            assert resp.status == 403, (path, resp.status)
        assert directory_ids(world) == before
        assert audit_settled(world) == audit_before
    finally:
        zhang.close()


# Every refusal the import gives a row (services/communities/csv_import.py), each on its own line.
EVERY_ROW_PROBLEM = "\n".join([
    "compound,building,unit,area,owners,owner_keys,representative,developer_unsold,effective",
    ",B,101,50,甲,,,,", "A," + "x" * 201 + ",102,50,甲,,,,", "A,B,103,50,甲,,,maybe,", "A,B,104,50,甲,,,true,",
    "A,B,105,50,,,,,", "A,B,106,50," + "n" * 101 + ",,,,", "A,B,107,50,乙;乙,,,,", "A,B,108,50,丙;丁,k1,丙,,",
    "A,B,109,50,戊," + "k" * 201 + ",,,", "A,B,110,50,己;庚,k2;k2,己,,", "A,B,111,50,辛;壬,,,,",
    "A,B,112,50,癸,,子,,", "A,B,113,abc,丑,,,,", "A,B,114,0,寅,,,,", "A,B,115,1.23456,卯,,,,",
    "A,B,116,50,辰,,,,not a date", "A,B,117,50,巳,,,,", "A,B,117,50,午,,,,", "A,B,118,50,未,,,,",
    "A,B,119,50,未,,,,", "A,B,120,50,申,k9,,,", "A,B,121,50,酉,k9,,,"]) + "\n"


def test_the_import_page_words_every_row_problem_the_import_gives_in_chinese():
    """The page translates the import's row messages by their English wording: if the import words
    one differently, this fails rather than the page silently showing English."""
    from services.common.errors import InvalidInput
    from services.communities import csv_import
    from services.communities.application import effective_time
    from services.web.i18n import Translations
    from services.web.pages_directory import row_problem

    class Zh:
        t = Translations("zh-CN").gettext

    found = []
    for text in (EVERY_ROW_PROBLEM, "compound,building,unit,area\nA,B,1,50\n", "compound,building,unit,area,owners\n"):
        with pytest.raises(InvalidInput) as refused:
            csv_import.parse(text, effective_time)
        found += refused.value.extra["errors"]
    assert {e["line"] for e in found} == set(range(1, 24)) - {18}  # 18: the first of the twice-listed unit
    for e in found:
        said = row_problem(Zh, e["message"])
        assert said != e["message"] and re.search(r"[\u4e00-\u9fff]", said), e
