"""A platform with the web pages and the demo S community, and people in a headless Chromium.

Debian's chromium (`/usr/bin/chromium`, installed by .ci/run when missing) driven by Playwright's
Python API: no browser download. Each visit to a page is checked as the issue asks: a screenshot
to artefacts/screenshots/ (git-ignored), no axe-core violation of impact serious or critical, and
at 360 px the document no wider than the viewport."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from services.common import clock
from tests.harness import ROOT, Platform, frozen_now, wait_for

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as root needs --no-sandbox; the rest keep it off the network it cannot reach
# here (each refused background connection or failed look-up of Google's hosts costs time).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTEFACTS = ROOT / "artefacts" / "screenshots"
WIDTH = 360
SERIOUS = ("serious", "critical")
# Demo people (services/cli/demo.py) who act in the walk-through, by a short name.
PEOPLE = {"Zhang": "张伟 Zhang", "Wang": "王芳 Wang", "Li": "李强 Li", "Liu": "刘洋 Liu", "Chen": "陈静 Chen",
          "Zhao": "赵磊 Zhao", "Sun": "孙丽 Sun", "Zhou": "周杰 Zhou", "Wu": "吴婷 Wu (tenant)",
          "He": "何敏 He"}  # He: building 1's co-owner, its building leader (the green-space walk)
ROLES = {"worker": "community_worker", "lead": "party_lead", "property": "property_company", "auditor": "auditor"}


@contextmanager
def web_platform(backend: str = "sqlite"):
    p = Platform(backend).setup()
    try:
        p.set_clock(frozen_now())
        p.start()
        p.start("web")
        p.cli("demo")
        yield World(p)
    finally:
        p.teardown()


class World:
    def __init__(self, platform: Platform):
        self.p = platform
        self.demo = json.loads((Path(platform.env["CONSULT_DATA_DIR"]) / "demo.json").read_text(encoding="utf-8"))
        self.community = self.demo["community"]
        self.web = f"http://127.0.0.1:{platform.port('web')}"
        self.tokens = {short: self.demo["tokens"][role] for short, role in ROLES.items()}
        for short, name in PEOPLE.items():
            self.tokens[short] = platform.rpc("communities", "issue_token", self.community, self.demo["people"][name],
                                              None, f"web test {short}", "demo")["token"]

    def audit_size(self) -> int:
        return self.p.api("GET", f"/api/v1/communities/{self.community}/audit/entries?from=0&limit=1",
                          self.tokens["auditor"], expect=200).json()["size"]


class Visitor:
    """One person in their own browser context (cookies of their own), at 360 px."""

    def __init__(self, browser, world: World, who: str, lang: str, shots: "Shots"):
        self.world, self.who, self.lang, self.shots = world, who, lang, shots
        self.context = browser.new_context(viewport={"width": WIDTH, "height": 780}, locale=lang,
                                           extra_http_headers={"Accept-Language": lang})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def sign_in(self) -> "Visitor":
        self.page.goto(f"{self.world.web}/sign-in?token={self.world.tokens[self.who]}")
        self.page.locator("form:has(input[name=token]) button[type=submit]").click()
        self.page.wait_for_url(re.compile(r"/communities/"))
        return self

    def goto(self, path: str, step: str | None = None):
        resp = self.page.goto(self.world.web + path)
        self.no_error(path)
        if step:
            self.check(step)
        return resp

    def c(self, path: str = "") -> str:
        return f"/communities/{self.world.community}{path}"

    def no_error(self, what: str) -> None:
        alert = self.page.locator(".notice.error")
        if alert.count():
            details = self.page.locator("details").all_inner_texts()
            raise AssertionError(f"{self.who} at {self.page.url} ({what}): {alert.first.inner_text()} {details}")

    def submit(self, selector: str, step: str | None = None, **fields) -> None:
        """Fill a form's fields (name -> value; a list for checkboxes) and press its button."""
        form = self.page.locator(selector).first
        for name, value in fields.items():
            box = form.locator(f"[name='{name}']")
            kind = (box.first.get_attribute("type") or box.first.evaluate("e => e.tagName")).lower()
            if kind == "radio":
                form.locator(f"[name='{name}'][value='{value}']").check()
            elif kind == "checkbox":
                for b in box.all():
                    b.set_checked((b.get_attribute("value") in value) if isinstance(value, list) else bool(value))
            elif kind == "file":
                box.set_input_files(value)
            elif kind == "select":
                box.select_option(value)
            else:
                box.fill(value)
        with self.page.expect_navigation():
            form.locator("button[type=submit]").first.click()
        self.no_error(selector)
        if step:
            self.check(step)

    def check(self, step: str) -> None:
        self.shots.check(self.page, f"{self.who}-{step}")

    def close(self) -> None:
        self.context.close()


class Shots:
    """Screenshots, axe and width checks for every page reached, numbered in walk order per language."""

    def __init__(self, lang: str):
        from axe_playwright_python.sync_playwright import Axe

        self.lang = lang
        self.n = 0
        self.axe = Axe()
        self.folder = ARTEFACTS / lang
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()
        self.pages: list[str] = []

    def check(self, page, step: str) -> None:
        self.n += 1
        page.screenshot(path=str(self.folder / f"{self.n:02d}-{step}.png"), full_page=True)
        wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1], f"{step}: the document is {wide[0]} px wide at {wide[1]} px ({page.url})"
        found = self.axe.run(page).response["violations"]
        bad = [(v["id"], v["impact"], [n["html"][:120] for n in v["nodes"][:3]]) for v in found
               if v["impact"] in SERIOUS]
        assert bad == [], f"{step}: axe violations at {page.url}: {bad}"
        self.pages.append(page.url)


class Walk:
    """The people of a walk-through, each signed in once in their own browser, and the platform's
    clock. Screenshots go to artefacts/screenshots/<shots or lang>/ (a new Walk empties that folder)."""

    def __init__(self, world, browser, lang: str, shots: str | None = None):
        self.world, self.browser, self.lang = world, browser, lang
        self.shots = Shots(shots or lang)
        self.people: dict[str, Visitor] = {}
        self.now = clock.parse(world.p.api("GET", "/api/v1/deployment", expect=200).json()["now"])

    def __getitem__(self, who: str) -> Visitor:
        if who not in self.people:
            self.people[who] = Visitor(self.browser, self.world, who, self.lang, self.shots).sign_in()
        return self.people[who]

    def later(self, **delta) -> datetime:
        self.now = self.now + timedelta(**delta)
        self.world.p.set_clock(self.now)
        return self.now

    def api(self, path: str, who: str = "worker"):
        return self.world.p.api("GET", f"/api/v1/communities/{self.world.community}{path}", self.world.tokens[who],
                                expect=200).json()

    def api_once_recorded(self, path: str, who: str = "worker", timeout: float = 30):
        """GET what the audit log must hold first (a case file): answered 404 until its consumer has
        appended the events, which it does beside, not before, the other stages' consumers."""
        def found():
            resp = self.world.p.api("GET", f"/api/v1/communities/{self.world.community}{path}", self.world.tokens[who])
            return resp.json() if resp.status_code == 200 else None

        return wait_for(found, timeout=timeout, message=f"GET {path} once recorded")

    def close(self):
        for v in self.people.values():
            v.close()


def local(instant: datetime) -> str:
    """A datetime-local field's value (the forms read it as UTC)."""
    return instant.strftime("%Y-%m-%dT%H:%M")


# A 1x1 PNG: an evidence photo.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
