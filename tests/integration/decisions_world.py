"""The DOMAIN.md worked example loaded through the API, and helpers to run ballots on it.

Building 2 of compound 3: ten units, nine owner heads (Zhang owns two units, the developer's
unsold unit is one head), 870 m². Every owner gets a token, as do the party-committee lead and a
tenant (who is on no owners' roll). Tokens come from the directory's `issue_token` over RPC, which
the test harness may call (a community worker cannot mint tokens for other people over HTTP).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from services.common import clock
from tests.harness import wait_for, frozen_now

BUILDING_2 = [
    ("101", "50", "Wang"), ("102", "70", "Li"), ("201", "75", "Zhang"), ("202", "75", "Zhang"),
    ("301", "90", "Liu"), ("302", "90", "Chen"), ("401", "90", "Zhao"), ("402", "90", "Sun"),
    ("501", "120", "Zhou"), ("502", "120", None),
]
OWNERS = ("Wang", "Li", "Zhang", "Liu", "Chen", "Zhao", "Sun", "Zhou")
EXAMPLE = {"Wang": "agree", "Li": "agree", "Zhang": "agree", "Liu": "agree", "Zhou": "agree", "Chen": "disagree",
           "Zhao": "abstain"}
NOTICE, VOTING = timedelta(days=15), timedelta(days=7)


@pytest.fixture
def t0(platform):
    """Freeze the platform's clock at now for the test, and let it run again afterwards."""
    now = frozen_now()
    platform.set_clock(now)
    yield now
    platform.set_clock(None)


@dataclass
class World:
    platform: object
    community: str
    token: str  # the community worker's
    building: str
    t0: datetime
    people: dict = field(default_factory=dict)  # name -> person id
    tokens: dict = field(default_factory=dict)  # name -> token

    @property
    def base(self) -> str:
        return f"/api/v1/communities/{self.community}"

    def api(self, method: str, path: str, who: str | None = None, body=None, expect: int | None = None):
        token = self.tokens[who] if who else self.token
        return self.platform.api(method, self.base + path, token, body, expect=expect)

    # -- ballots --------------------------------------------------------------------------------
    def ballot(self, preset: str, title: str = "疏通排水管 unblock the drains", opens_after=NOTICE, **config) -> str:
        ballot = self.api("POST", "/ballots", body={"title": title, "scope": "building", "scope_id": self.building},
                          expect=201).json()["id"]
        opens = self.t0 + opens_after
        body = {"preset": preset, "voting_unit": "owner", "opens_at": clock.format(opens),
                "closes_at": clock.format(opens + VOTING), **config}
        self.api("PUT", f"/ballots/{ballot}/configuration", body=body, expect=200)
        return ballot

    def opens(self) -> datetime:
        return self.t0 + NOTICE

    def closes(self) -> datetime:
        return self.t0 + NOTICE + VOTING

    def view(self, ballot: str) -> dict:
        return self.api("GET", f"/ballots/{ballot}", expect=200).json()

    def wait_status(self, ballot: str, *statuses: str, timeout: float = 30) -> dict:
        return wait_for(lambda: (v := self.view(ballot))["status"] in statuses and v, timeout=timeout,
                        message=f"ballot {ballot} to be {' or '.join(statuses)}")

    def vote(self, ballot: str, who: str, choice, expect: int | None = 201):
        return self.api("POST", f"/ballots/{ballot}/votes", who, {"choice": choice}, expect=expect)

    def audit(self, case: str, kind: str | None = None) -> list[dict]:
        """The case's entries from the stages; proofs of notice (which share the case) arrive on
        the notifications service's own schedule and are left out."""
        entries = self.platform.audit_entries(self.community, self.token, case=case)
        return [e["envelope"] for e in entries
                if e["source"] != "notifications" and (kind is None or e["type"] == kind)]

    def wait_audit(self, case: str, kind: str, count: int = 1) -> list[dict]:
        return wait_for(lambda: len(found := self.audit(case, kind)) >= count and found, timeout=30,
                        message=f"{kind} in the audit log")

    def stage_entries(self) -> list[dict]:
        """The community's audit log without the notifications service's proofs of notice, which
        arrive on that service's own schedule."""
        return [e for e in self.platform.audit_entries(self.community, self.token) if e["source"] != "notifications"]

    def decisions_settled(self) -> tuple[int, list[dict]]:
        """The decisions log's head, once the community's audit log holds every decisions event of
        this community up to it; and that audit log (its stage entries)."""
        head = self.platform.rpc("decisions", "log_head")
        ours = [e["position"] for e in self.platform.rpc("decisions", "read_log", max(1, head - 999), 1000)
                if e["community"] == self.community]

        def audited():
            entries = self.stage_entries()
            seen = {e["envelope"]["position"] for e in entries if e["source"] == "decisions"}
            return set(ours) <= seen and (entries,)

        return head, wait_for(audited, timeout=30, message="the decisions events in the audit log")[0]

    @contextmanager
    def nothing_recorded(self, *reads: tuple[str, str | None]):
        """Around a refused command: the decisions log, the community's audit log and each read
        (path, who) are the same afterwards."""
        head, audit = self.decisions_settled()
        before = [(path, who, self.api("GET", path, who).json()) for path, who in reads]
        yield
        assert self.platform.rpc("decisions", "log_head") == head, "a refused command recorded an event"
        assert self.stage_entries() == audit
        for path, who, seen in before:
            assert self.api("GET", path, who).json() == seen, f"GET {path} as {who} changed"


def building_2(platform, t0: datetime) -> World:
    """The worked example's building, loaded through the API as a community worker would."""
    c = platform.new_community("S社区")
    w = World(platform, c["id"], c["token"], "", t0)
    compound = w.api("POST", "/compounds", body={"name": "3号院坝"}, expect=201).json()["id"]
    w.building = w.api("POST", "/buildings", body={"compound": compound, "name": "2栋"}, expect=201).json()["id"]
    for name in (*OWNERS, "Lead", "Tenant"):
        w.people[name] = w.api("POST", "/people", body={"name": name, "effective": "2020-01-01"},
                               expect=201).json()["id"]
    for unit, area, owner in BUILDING_2:
        body = {"building": w.building, "unit": unit, "area": area, "effective": "2020-01-01",
                "owners": [w.people[owner]] if owner else [], "developer_unsold": owner is None}
        household = w.api("POST", "/households", body=body, expect=201).json()["id"]
        if unit == "402":  # the tenant lives in Sun's flat but owns nothing
            w.api("POST", f"/people/{w.people['Tenant']}/moves", body={"household": household}, expect=201)
    # Only a lead or a platform administrator appoints a lead; a worker never mints others' tokens, so
    # the test takes the operator's path for them (as `consult demo` does).
    platform.api("POST", f"{w.base}/people/{w.people['Lead']}/roles", platform.admin_token, {"role": "party_lead"},
                 expect=201)
    for name, person in w.people.items():
        w.tokens[name] = platform.rpc("communities", "issue_token", w.community, person, 90, "tests")["token"]
    w.tokens["worker"] = c["token"]
    w.people["worker"] = c["worker"]
    return w
