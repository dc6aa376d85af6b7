"""A neighbourhood for the proposals tests: a fresh community with a compound, buildings,
households and residents with tokens, built over one RPC connection; and shortcuts for the
proposal API and for reading the record (the proposals log and the community's audit log)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from tests.harness import wait_for

SINCE = "2020-01-01"
# Rules under which nothing qualifies by accident: for tests about who may support, and how often.
NEVER_QUALIFIES = {"support_threshold": {level: {"unit": "residents", "count": 100_000}
                                         for level in ("community", "compound", "building")}}


@dataclass
class Resident:
    id: str
    token: str
    household: str


class Neighbourhood:
    def __init__(self, platform, rules: dict | None = None, buildings: int = 2):
        self.platform = platform
        c = platform.new_community("S社区")
        self.id, self.worker, self.worker_token = c["id"], c["worker"], c["token"]
        self.base = f"/api/v1/communities/{self.id}"
        with self.directory() as d:
            if rules:
                d("change_rules", "tests", self.id, rules)
            self.compound = d("add_compound", "tests", self.id, "3号院坝")["id"]
            self.buildings = [d("add_building", "tests", self.id, self.compound, f"{i + 1}栋")["id"]
                              for i in range(buildings)]

    @contextmanager
    def directory(self):
        cluster = self.platform.rpc_proxy()
        proxy = cluster.start()

        def call(method, *args):
            reply = getattr(proxy.communities, method)(*args)
            assert reply["ok"], reply
            return reply["result"]

        try:
            yield call
        finally:
            cluster.stop()

    def households(self, building: str, n: int, start: int = 101) -> list[str]:
        with self.directory() as d:
            return [d("register_household", "tests", self.id, building, str(start + i), "60", [], None, True,
                      SINCE)["id"] for i in range(n)]

    def residents(self, building: str, n: int, per_household: int = 1, start: int = 101) -> list[Resident]:
        """n residents living in building, per_household of them in each new unit."""
        out = []
        households = self.households(building, -(-n // per_household), start)
        with self.directory() as d:
            for i in range(n):
                household = households[i // per_household]
                person = d("register_person", "tests", self.id, f"居民{i}", True, household, SINCE)["id"]
                out.append(Resident(person, d("issue_token", self.id, person, 30, "tests")["token"], household))
        return out

    # -- the proposal API -------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str, body=None, expect: int | None = None):
        return self.platform.api(method, self.base + path, token, body, expect=expect)

    def draft(self, author: Resident, scope: str = "building", scope_id: str | None = None, title: str = "疏通排水沟",
              body: str = "Every rainy season the courtyard drain floods the ground floor.",
              category: str = "drainage") -> str:
        if scope == "building" and scope_id is None:
            scope_id = self.buildings[0]
        payload = {"title": title, "body": body, "category": category, "scope": scope, "scope_id": scope_id}
        return self.api("POST", "/proposals", author.token, payload, expect=201).json()["id"]

    def open_proposal(self, author: Resident, **kwargs) -> str:
        """Drafted, submitted and screened admissible: collecting support."""
        pid = self.draft(author, **kwargs)
        self.api("POST", f"/proposals/{pid}/submit", author.token, expect=200)
        view = self.api("POST", f"/proposals/{pid}/screen", self.worker_token, {"admissible": True}, expect=200)
        assert view.json()["status"] == "collecting"
        return pid

    def view(self, pid: str, token: str | None = None) -> dict:
        return self.api("GET", f"/proposals/{pid}", token or self.worker_token, expect=200).json()

    def support(self, pid: str, who: Resident, expect: int | None = 201):
        return self.api("POST", f"/proposals/{pid}/supports", who.token, expect=expect)

    # -- the record ----------------------------------------------------------------------------------
    def events(self, source: str = "proposals") -> list[dict]:
        """This community's envelopes in a source's log, in log order."""
        out, start = [], 1
        while True:
            batch = self.platform.rpc(source, "read_log", start, 1000)
            out += [e for e in batch if e["community"] == self.id]
            if len(batch) < 1000:
                return out
            start = batch[-1]["position"] + 1

    def proposal_events(self) -> list[dict]:
        return self.events("proposals")

    def audited(self) -> list[dict]:
        return [e for e in self.platform.audit_entries(self.id, self.worker_token) if e["source"] == "proposals"]

    def settled(self) -> list[dict]:
        """Wait until the community's audit log holds every event of the directory and of the
        proposals log; return the proposals envelopes as the audit log holds them, in its order."""
        def caught_up():
            entries = self.platform.audit_entries(self.id, self.worker_token)
            for source in ("communities", "proposals"):
                if len([e for e in entries if e["source"] == source]) != len(self.events(source)):
                    return None
            return [e["envelope"] for e in entries if e["source"] == "proposals"]

        return wait_for(caught_up, timeout=30, message="the audit log to catch up with the logs")

    def heads(self) -> tuple[int, int]:
        """The proposals log head and the size of the community's audit log, proofs of notice
        left out: the notifications service records those on its own schedule."""
        entries = self.platform.audit_entries(self.id, self.worker_token)
        return (self.platform.rpc("proposals", "log_head"),
                len([e for e in entries if e["source"] != "notifications"]))
