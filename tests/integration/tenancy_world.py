"""A community holding one object of every kind the API names by id, for the tenancy tests:
two of them side by side, and every operation of one asked about the other's objects.

Built as people would build it, through the API, on the test clock: the directory (compound,
building, two households, a resident and a "steward" who holds every community role, so the
gateway's role checks pass and a refusal can only come from the object named), a proposal, a
consultation with a comment, an option, an amendment, a held meeting with its minutes, a ballot
that closed adopted with an objection lodged in its publicity period, an action plan with a task,
an evidence file, a webhook endpoint, the messages the notifications service delivered, a token,
an invitation and a proposed rule change.
Tokens come from the directory over RPC (a worker does not mint them for others over HTTP).
"""
from __future__ import annotations

import base64
from datetime import timedelta

from services.common import clock
from tests.harness import frozen_now, wait_for

ROLES = ("community_worker", "party_lead", "moderator", "auditor", "property_company")
# An address nothing answers at (TEST-NET-1): the matrix platform allow-lists it, so an endpoint can
# be registered, and nobody chooses the webhook channel, so nothing is ever sent there.
WEBHOOK_URL = "http://192.0.2.10/consult-hook"
WEBHOOK_ALLOWLIST = "192.0.2.10"


class TenancyWorld:
    def __init__(self, platform, name: str):
        self.platform = platform
        self.name = name
        c = platform.new_community(name)
        self.id, self.worker_token = c["id"], c["token"]
        self.base = f"/api/v1/communities/{self.id}"
        self.ids: dict[str, str] = {}  # kind -> the id of this community's object of that kind

    # -- helpers -----------------------------------------------------------------------------------
    def rpc(self, method: str, *args):
        return self.platform.rpc("communities", method, *args)

    def api(self, method: str, path: str, token: str, body=None, expect: int | None = None):
        return self.platform.api(method, self.base + path, token, body, expect=expect)

    def as_steward(self, method: str, path: str, body=None, expect: int | None = None) -> dict:
        return self.api(method, path, self.steward_token, body, expect=expect).json()

    def as_resident(self, method: str, path: str, body=None, expect: int | None = None) -> dict:
        return self.api(method, path, self.resident_token, body, expect=expect).json()

    # -- the community -------------------------------------------------------------------------------
    def build(self) -> "TenancyWorld":
        self.rpc("change_rules", "tests", self.id, {"meeting_notice_days": 0, "ballot_notice_days": 0,
                                                   "publicity_days": 1, "evaluation_window_days": 1})
        compound = self.rpc("add_compound", "tests", self.id, f"{self.name} 院坝")["id"]
        building = self.rpc("add_building", "tests", self.id, compound, "1栋")["id"]
        home = self.rpc("register_household", "tests", self.id, building, "101", "60", [], None, True, None)["id"]
        other = self.rpc("register_household", "tests", self.id, building, "102", "70", [], None, True, None)["id"]
        steward = self.rpc("register_person", "tests", self.id, "总管", True, home, None)["id"]
        for role in ROLES:
            self.rpc("grant_role", "tests", self.id, steward, role, None, None)
        self.rpc("grant_role", "tests", self.id, steward, "grid_leader", compound, None)
        self.rpc("grant_role", "tests", self.id, steward, "building_leader", building, None)
        resident = self.rpc("register_person", "tests", self.id, "居民", True, other, None)["id"]
        self.steward_token = self.rpc("issue_token", self.id, steward, 30, "tests")["token"]
        issued = self.rpc("issue_token", self.id, resident, 30, "tests")
        self.resident_token = issued["token"]
        self.ids.update(compound=compound, building=building, household=home, person=resident, steward=steward,
                        token=issued["id"])
        # Credentials and rules: an invitation not yet redeemed, a rule change awaiting confirmation.
        self.ids["invitation"] = self.as_steward("POST", "/invitations", {"household": other}, expect=201)["id"]
        self.ids["rule_change"] = self.as_steward("PATCH", "/rules", {"flags_to_hide": 4}, expect=202)["id"]
        # A CSV import's job (answered at once: Prefer: respond-async).
        self.ids["import_job"] = self.platform.api(
            "POST", self.base + "/directory/import", self.steward_token,
            data=f"compound,building,unit,area,owners\n{self.name} 院坝,2栋,201,50,业主\n".encode(),
            headers={"Content-Type": "text/csv", "Prefer": "respond-async"}, expect=202).json()["id"]

        t0 = frozen_now()  # after every role and residence above, to the second
        self.platform.set_clock(t0)
        try:
            self._stages(t0)
        finally:
            self.platform.set_clock(None)
        self._notifications()
        return self

    def _stages(self, t0) -> None:
        ids = self.ids
        # 1 提议
        ids["proposal"] = self.as_resident("POST", "/proposals", {
            "title": f"{self.name}：疏通排水沟", "body": "雨季积水", "category": "drainage", "scope": "building",
            "scope_id": ids["building"]}, expect=201)["id"]
        self.as_resident("POST", f"/proposals/{ids['proposal']}/submit", expect=200)
        # 2 议事: the steward is the party-committee lead, hence the convener, and sits in the body.
        ids["consultation"] = self.as_steward("POST", "/consultations", {
            "title": f"{self.name}：草坪", "description": "草坪改菜地？", "scope": "building",
            "scope_id": ids["building"], "category": "green_space"}, expect=201)["id"]
        c = f"/consultations/{ids['consultation']}"
        ids["comment"] = self.as_steward("POST", c + "/comments", {"text": "先听听大家的意见", "stance": "neutral"},
                                         expect=201)["id"]
        ids["option"] = self.as_steward("POST", c + "/options", {"title": "保留草坪", "description": "维持现状"},
                                        expect=201)["id"]
        ids["amendment"] = self.as_steward("POST", c + f"/options/{ids['option']}/amendments",
                                           {"description": "保留草坪，增设座椅"}, expect=201)["id"]
        starts = t0 + timedelta(hours=2)
        ids["meeting"] = self.as_steward("POST", c + "/meetings", {
            "starts_at": clock.format(starts), "mode": "on_site", "place": "活动室", "agenda": ["草坪"],
            "secretary": ids["steward"]}, expect=201)["id"]
        # 3 决策: a residents' ballot of the building, open in half an hour, closing half an hour later.
        ids["ballot"] = self.as_steward("POST", "/ballots", {
            "title": f"{self.name}：是否疏通", "scope": "building", "scope_id": ids["building"]}, expect=201)["id"]
        opens, closes = t0 + timedelta(minutes=30), t0 + timedelta(minutes=90)
        self.as_steward("PUT", f"/ballots/{ids['ballot']}/configuration", {
            "preset": "residents_meeting", "voting_unit": "resident", "opens_at": clock.format(opens),
            "closes_at": clock.format(closes)}, expect=200)
        # 4 行动: a plan opened directly, its task, an evidence file (this community's own bytes).
        plan = self.as_steward("POST", "/action-plans", {"title": "紧急疏通", "basis": "暴雨前抢修",
                                                         "scope": "building", "scope_id": ids["building"]},
                               expect=201)
        ids["plan"], ids["case"] = plan["plan"], plan["case"]
        ids["task"] = self.as_steward("POST", f"/action-plans/{ids['plan']}/tasks", {
            "title": "清淤", "responsible_party": {"kind": "property_company", "person": ids["steward"]},
            "due_at": clock.format(t0 + timedelta(days=5))}, expect=201)["task"]
        photo = base64.b64encode(b"\xff\xd8\xff\xe0" + f"{self.id} drain photo".encode()).decode()  # a JPEG head
        ids["evidence"] = self.as_steward("POST", "/evidence", {"content_base64": photo, "media_type": "image/jpeg"},
                                          expect=201)["sha256"]
        ids["webhook"] = self.as_steward("POST", "/webhooks", {"url": WEBHOOK_URL}, expect=201)["id"]

        # The ballot opens; both residents of the building vote; it closes adopted; an objection.
        self.platform.set_clock(opens + timedelta(seconds=1))
        self._wait_ballot("open")
        for vote in (self.as_steward, self.as_resident):
            vote("POST", f"/ballots/{ids['ballot']}/votes", {"choice": "agree"}, expect=201)
        # The meeting: the steward signs in (as convener, grid and building leader), holds it and
        # records the minutes as its secretary.
        self.platform.set_clock(starts)
        self.as_steward("POST", f"/meetings/{ids['meeting']}/attendance", {}, expect=201)
        self.as_steward("POST", f"/meetings/{ids['meeting']}/opening", expect=200)
        ids["minutes"] = self.as_steward("POST", f"/meetings/{ids['meeting']}/minutes", {"text": "同意保留草坪"},
                                         expect=201)["id"]
        self._wait_ballot("adopted")
        ids["objection"] = self.as_resident("POST", f"/ballots/{ids['ballot']}/objections",
                                            {"text": "计票有误"}, expect=201)["objection"]

    def _wait_ballot(self, status: str) -> None:
        wait_for(lambda: self.as_steward("GET", f"/ballots/{self.ids['ballot']}", expect=200)["status"] == status,
                 timeout=60, message=f"{self.name}'s ballot to be {status}")

    def _notifications(self) -> None:
        """A message delivered to the steward's inbox, and any delivery of the community."""
        def delivered():
            inbox = self.as_steward("GET", "/me/inbox", expect=200)["items"]
            return inbox[0]["id"] if inbox else None

        self.ids["message"] = wait_for(delivered, timeout=60, message=f"a message in {self.name}'s inbox")
        self.ids["delivery"] = self.as_steward("GET", "/notifications/deliveries", expect=200)[0]["id"]
