"""A community whose record went through every stage that exists, for the audit tests.

The drainage case of building 2 of compound 3 (DOMAIN.md), on the test clock: a resident's
proposal qualifies, the consultation it opens meets and concludes that a vote is needed, the
ballot (an open residents' ballot, a motion) adopts it, the resolution becomes final, the action
plan's task is done and evaluated, and the case closes. Beside it a secret, changeable ballot
on the green space, in which one resident changes her vote; a comment a moderator hid; and a
resident whose texts were erased (PIPL). Everything is built through the API as people would.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import psycopg

from services.common import clock, registry
from tests.harness import PG_URL, wait_for, frozen_now

STAGES = ("proposals", "deliberation", "decisions", "actions")
RESIDENTS = ("王", "李", "张", "刘")


@contextmanager
def state_db(platform, service: str):
    """A connection to a service's state store: `run(sql, params)` with '?' placeholders."""
    if platform.backend == "postgres":
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{platform.prefix}_{service}_state"'.lower())

            def run(sql, params=()):
                cur = conn.execute(sql.replace("?", "%s"), params)
                return cur.fetchall() if cur.description else []

            yield run
    else:
        conn = sqlite3.connect(platform.dir / "data" / f"{service}-state.sqlite3", timeout=30, isolation_level=None)
        try:
            def run(sql, params=()):
                return conn.execute(sql, params).fetchall()

            yield run
        finally:
            conn.close()


def genesis_key(platform) -> str:
    """The first signing key's PEM: what an auditor trusts from the start (later keys are learnt
    through the rotation statements the export carries)."""
    keys = platform.rpc("audit", "public_keys")
    successors = {r["new_key_id"] for r in keys["key_rotations"]}
    return next(k["pem"] for k in keys["keys"] if k["key_id"] not in successors)


class DrainageRecord:
    def __init__(self, platform):
        self.platform = platform
        c = platform.new_community("S社区")
        self.id, self.worker, self.worker_token = c["id"], c["worker"], c["token"]
        # On a platform with cells, the community's stage services are its cell's (`c1-audit`).
        self.cell = platform.api("GET", f"/api/v1/communities/{self.id}", c["token"], expect=200).json().get("cell")
        self.base = f"/api/v1/communities/{self.id}"
        self.people: dict[str, str] = {"worker": c["worker"]}
        self.tokens: dict[str, str] = {"worker": c["token"]}

    # -- helpers ---------------------------------------------------------------------------------------
    def stage(self, service: str) -> str:
        """A stage service's name for RPC: in the community's cell, if the platform has cells."""
        from services.common import cells

        return cells.qualified(service, self.cell)

    def rpc(self, method: str, *args):
        return self.platform.rpc("communities", method, "tests", *args)

    def person(self, name: str, household: str | None = None, role: str | None = None,
               scope: str | None = None) -> None:
        pid = self.rpc("register_person", self.id, name, True, household, None)["id"]
        if role:
            self.rpc("grant_role", self.id, pid, role, scope, None)
        self.people[name] = pid
        self.tokens[name] = self.platform.rpc("communities", "issue_token", self.id, pid, 90, "tests")["token"]

    def api(self, method: str, path: str, who: str, body=None, expect: int | None = None):
        return self.platform.api(method, self.base + path, self.tokens[who], body, expect=expect).json()

    def at(self, instant: datetime) -> None:
        self.platform.set_clock(instant)

    def ballot_status(self, ballot: str, *statuses: str) -> dict:
        return wait_for(lambda: (v := self.api("GET", f"/ballots/{ballot}", "worker", expect=200))["status"]
                        in statuses and v, timeout=60, message=f"ballot {ballot} to be {' or '.join(statuses)}")

    # -- the record --------------------------------------------------------------------------------------
    def build(self, secret_ballot: bool = True) -> "DrainageRecord":
        """The record; `secret_ballot=False` leaves out the green space's secret ballot (a test that
        needs the four stages' case only)."""
        p = self.platform
        p.rpc("communities", "change_rules", "tests", self.id, {
            "meeting_notice_days": 1, "ballot_notice_days": 1, "publicity_days": 1, "evaluation_window_days": 1})
        compound = self.rpc("add_compound", self.id, "3号院坝")["id"]
        b2 = self.rpc("add_building", self.id, compound, "2栋")["id"]
        self.building = b2
        for i, name in enumerate(RESIDENTS):
            unit = self.rpc("register_household", self.id, b2, f"{101 + i}", "60", [], None, True, None)["id"]
            self.person(name, unit)
        self.person("书记", role="party_lead")
        self.person("网格长", role="grid_leader", scope=compound)
        self.person("楼栋长", role="building_leader", scope=b2)
        self.person("物业", role="property_company")
        self.person("版主", role="moderator")
        self.person("审计", role="auditor")

        # A whole second on, so that every role and residence just registered (dated "now", to the
        # microsecond) is in effect at the frozen instant.
        t0 = frozen_now()
        self.t0 = t0
        self.at(t0)
        try:
            self._drainage(t0)
            if secret_ballot:
                self._secret_ballot()
        finally:
            p.set_clock(None)
        # PIPL: 刘 asks to be forgotten by the proposals stage (no texts there) and 王 too: the
        # proposal's title and body are erased; their commitments stay in the record.
        p.rpc(self.stage("proposals"), "erase_person", "tests", self.id, self.people["王"])
        self.settle()
        return self

    def _drainage(self, t0: datetime) -> None:
        # 1 提议: proposed, screened, supported to the building's threshold (three residents).
        self.proposal = self.api("POST", "/proposals", "王", {
            "title": "疏通3号院排水沟", "body": "每逢雨季院坝积水，一楼进水。", "category": "drainage",
            "scope": "building", "scope_id": self.building}, expect=201)["id"]
        self.api("POST", f"/proposals/{self.proposal}/submit", "王", expect=200)
        self.api("POST", f"/proposals/{self.proposal}/screen", "worker", {"admissible": True}, expect=200)
        for name in ("李", "张", "刘"):
            self.api("POST", f"/proposals/{self.proposal}/supports", name, expect=201)
        # 2 议事: the consultation the qualified proposal opens; a discussion with a hidden comment.
        self.consultation = wait_for(
            lambda: [c for c in self.api("GET", "/consultations", "worker", expect=200)
                     if c["proposal"] == self.proposal], timeout=60, message="the consultation")[0]["id"]
        path = f"/consultations/{self.consultation}"
        self.api("POST", path + "/invitations", "书记", {"person": self.people["物业"], "role": "property_company"},
                 expect=201)
        self.api("POST", path + "/invitation-answers", "物业", {"role": "property_company", "accept": True},
                 expect=200)
        self.api("POST", path + "/comments", "李", {"text": "排水管老化，建议整体更换。", "stance": "for"}, expect=201)
        rude = self.api("POST", path + "/comments", "刘", {"text": "物业什么都不管！", "stance": "against"},
                        expect=201)["id"]
        self.api("POST", f"/comments/{rude}/hiding", "版主", {"reason": "人身攻击"}, expect=200)
        self.hidden_comment = rude
        option = self.api("POST", path + "/options", "书记", {"title": "更换排水管", "description": "更换3号院坝2栋排水管"},
                          expect=201)["id"]
        self.api("POST", path + "/final-options", "书记", {"options": [option]}, expect=200)
        starts = t0 + timedelta(days=1, hours=1)
        meeting = self.api("POST", path + "/meetings", "书记", {
            "starts_at": clock.format(starts), "mode": "on_site", "place": "社区活动室", "agenda": ["排水沟维修方案"],
            "secretary": self.people["网格长"]}, expect=201)["id"]
        self.at(starts)
        for name in ("书记", "网格长", "楼栋长", "物业"):
            self.api("POST", f"/meetings/{meeting}/attendance", name, {}, expect=201)
        self.api("POST", f"/meetings/{meeting}/opening", "书记", expect=200)
        minutes = self.api("POST", f"/meetings/{meeting}/minutes", "网格长", {"text": "一致同意更换排水管，交居民表决。"},
                           expect=201)["id"]
        for name in ("书记", "网格长"):
            self.api("POST", f"/minutes/{minutes}/signatures", name, expect=201)
        self.api("POST", f"/meetings/{meeting}/closing", "网格长", expect=200)
        self.api("POST", path + "/conclusion", "书记", {"outcome": "vote_needed", "summary": "交由本栋居民表决",
                                                      "meeting": meeting}, expect=200)
        # 3 决策: the ballot the conclusion prepared: an open residents' ballot on the motion.
        self.ballot = wait_for(lambda: self.api("GET", "/ballots", "worker", expect=200), timeout=60,
                               message="the prepared ballot")[0]["id"]
        opens = starts + timedelta(days=1, minutes=5)
        closes = opens + timedelta(days=3)
        self.api("PUT", f"/ballots/{self.ballot}/configuration", "worker", {
            "preset": "residents_meeting", "voting_unit": "resident", "options": [],
            "opens_at": clock.format(opens), "closes_at": clock.format(closes)}, expect=200)
        self.at(opens)
        self.ballot_status(self.ballot, "open")
        for name, choice in (("王", "agree"), ("李", "agree"), ("张", "agree"), ("刘", "disagree")):
            self.api("POST", f"/ballots/{self.ballot}/votes", name, {"choice": choice}, expect=201)
        self.at(closes + timedelta(seconds=1))
        self.ballot_status(self.ballot, "adopted")
        self.at(closes + timedelta(days=1, seconds=2))  # the publicity period has passed
        self.ballot_status(self.ballot, "final")
        # 4 行动: the plan the resolution opened; the property company's task; the evaluation.
        self.plan = wait_for(lambda: self.api("GET", "/action-plans", "worker", expect=200), timeout=60,
                             message="the action plan")[0]["plan"]
        now = closes + timedelta(days=1, minutes=1)
        self.at(now)
        task = self.api("POST", f"/action-plans/{self.plan}/tasks", "worker", {
            "title": "疏通排水沟", "responsible_party": {"kind": "property_company", "person": self.people["物业"]},
            "due_at": clock.format(now + timedelta(days=1))}, expect=201)["task"]
        self.api("POST", f"/action-plans/{self.plan}/tasks/{task}/progress", "物业", {"percent": 100, "note": "已疏通"},
                 expect=201)
        done = self.api("POST", f"/action-plans/{self.plan}/done", "worker", {"summary": "排水沟已疏通，雨季未再积水"},
                        expect=200)
        for name in ("王", "李"):
            self.api("POST", f"/action-plans/{self.plan}/evaluations", name, {"rating": "satisfied"}, expect=201)
        self.at(clock.parse(done["evaluation"]["closes_at"]) + timedelta(minutes=2))
        wait_for(lambda: self.api("GET", f"/action-plans/{self.plan}", "worker", expect=200)["status"] == "closed",
                 timeout=60, message="the plan's evaluation to close")
        self.now = clock.parse(done["evaluation"]["closes_at"]) + timedelta(minutes=2)

    def _secret_ballot(self) -> None:
        """The green space: a secret, changeable residents' ballot; 张 changes her vote."""
        self.secret = self.api("POST", "/ballots", "worker", {
            "title": "草坪是否改作菜地", "scope": "building", "scope_id": self.building, "category": "green_space"},
            expect=201)["id"]
        opens = self.now + timedelta(days=1, hours=1)
        closes = opens + timedelta(days=2)
        self.api("PUT", f"/ballots/{self.secret}/configuration", "worker", {
            "preset": "residents_meeting", "voting_unit": "resident", "opens_at": clock.format(opens),
            "closes_at": clock.format(closes), "secret": True, "changeable": True}, expect=200)
        self.at(opens)
        self.ballot_status(self.secret, "open")
        for name, choice in (("王", "disagree"), ("李", "agree"), ("张", "agree")):
            self.api("POST", f"/ballots/{self.secret}/votes", name, {"choice": choice}, expect=201)
        self.secret_opened = opens
        self.at(opens + timedelta(hours=1))
        self.api("POST", f"/ballots/{self.secret}/votes", "张", {"choice": "disagree"}, expect=201)  # changed
        self.at(closes + timedelta(seconds=1))
        self.secret_view = self.ballot_status(self.secret, "adopted", "rejected")

    def settle(self) -> None:
        """Wait until the community's audit log holds every event its sources hold."""
        def counts():
            logs = 0
            for source in registry.SOURCES:
                start = 1
                while True:
                    batch = self.platform.rpc(self.stage(source), "read_log", start, 1000)
                    logs += sum(1 for e in batch if e["community"] == self.id)
                    if len(batch) < 1000:
                        break
                    start = batch[-1]["position"] + 1
            return logs == self.platform.rpc(self.stage("audit"), "size", self.id)

        wait_for(counts, timeout=90, interval=1, message="the audit log to hold every event of the community")
