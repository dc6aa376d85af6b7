"""Regressions of issue 12 over HTTP, on both backends, each asserting the refusal and that the
audit log and the read models are as they were:

1. a community's worker erases the texts of another community's person (proposals and
   notifications): refused; an erasure in one's own community is recorded, without its texts;
2. an action plan opened on another community's case, a random case, a case with a plan or one
   without a decision: refused, and the action views of every community keep answering; an event
   its read model cannot apply is parked, holds the read model and says so (readyz, metric,
   `consult dlq list`) until an operator lets it go;
6. webhooks to loopback, link-local (metadata) or private addresses, or plain http://: refused at
   registration, and at sending for an endpoint already on record; nothing reaches the address.
"""
from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from services.common import clock, config
from services.common.store import state_engine
from services.notifications import tables as notification_tables
from services.notifications.channels import EndpointHealth
from tests.harness import frozen_now, wait_for
from tests.integration.proposals_world import Neighbourhood

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SOURCES = ("communities", "proposals", "deliberation", "decisions", "actions", "notifications")


# ---- the record -------------------------------------------------------------------------------------
def log_counts(platform, community: str) -> int:
    total = 0
    for source in SOURCES:
        start = 1
        while True:
            batch = platform.rpc(source, "read_log", start, 1000)
            total += sum(1 for e in batch if e["community"] == community)
            if len(batch) < 1000:
                break
            start = batch[-1]["position"] + 1
    return total


def quiet_audit(platform, community: str, token: str) -> list[dict]:
    """The community's audit log once it holds every event of every log and nothing more arrives
    for a moment (proofs of notice follow their events on the notifications service's schedule)."""
    last = [None]

    def settled():
        size = platform.rpc("audit", "size", community)
        if size != log_counts(platform, community):
            last[0] = None
            return None
        if last[0] != size:
            last[0] = size
            time.sleep(1.5)
            return None
        return platform.audit_entries(community, token)

    return wait_for(settled, timeout=90, interval=0.5, message="the audit log to settle")


def heads(platform) -> dict:
    return {source: platform.rpc(source, "log_head") for source in SOURCES}


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert "SELECT" not in response.text and "INSERT" not in response.text and "Traceback" not in response.text
    return body


# ---- 1 erasure ---------------------------------------------------------------------------------------
def test_an_erasure_names_a_person_of_its_own_community_and_is_recorded_without_texts(platform):
    a, b = Neighbourhood(platform), Neighbourhood(platform)
    [author] = b.residents(b.buildings[0], 1)
    proposal = b.open_proposal(author, title="乙社区：疏通排水沟", body="王家一楼进水，电话 138…")
    told = wait_for(lambda: [m for m in b.api("GET", "/me/inbox", author.token, expect=200).json()["items"]
                             if m["subject"]], timeout=60, message="the author's messages")

    def snapshot() -> dict:
        return {
            "audit": {c.id: quiet_audit(platform, c.id, c.worker_token) for c in (a, b)},
            "heads": heads(platform),
            "proposal": b.view(proposal),
            "lists": {c.id: c.api("GET", "/proposals", c.worker_token, expect=200).json() for c in (a, b)},
            "inbox": b.api("GET", "/me/inbox", author.token, expect=200).json(),
            "deliveries": b.api("GET", "/notifications/deliveries", b.worker_token, expect=200).json(),
        }

    before = snapshot()
    assert before["proposal"]["body"] == "王家一楼进水，电话 138…" and told
    for path in ("/proposals/erasures", "/notifications/erasures"):
        for person in (author.id, str(uuid.uuid4())):
            refused = problem_of(a.api("POST", path, a.worker_token, {"person": person}), 404)
            assert person in refused["detail"]
    assert snapshot() == before, "nothing erased, nothing recorded, in either community"

    # In its own community the erasure goes through, and the record says so (who, whose, how many).
    erased = b.api("POST", "/proposals/erasures", b.worker_token, {"person": author.id}, expect=200).json()
    assert erased["erased_texts"] == 2  # the title and the body
    messages = b.api("POST", "/notifications/erasures", b.worker_token, {"person": author.id}, expect=200).json()
    assert messages["erased_texts"] >= len(told)
    entries = quiet_audit(platform, b.id, b.worker_token)
    recorded = [e["envelope"] for e in entries if e["type"] == "PersonTextsErased"]
    assert sorted((e["source"], e["actor"], json.dumps(e["data"], sort_keys=True)) for e in recorded) == sorted([
        ("notifications", b.worker, json.dumps({"person": author.id, "texts": messages["erased_texts"]},
                                               sort_keys=True)),
        ("proposals", b.worker, json.dumps({"person": author.id, "texts": 2}, sort_keys=True))])
    assert {e["aggregate"]["id"] for e in recorded} == {erased["erasure"], messages["erasure"]}
    assert "疏通" not in json.dumps(recorded, ensure_ascii=False)
    assert b.view(proposal)["body"] is None
    assert all(m["subject"] is None for m in b.api("GET", "/me/inbox", author.token, expect=200).json()["items"])
    assert quiet_audit(platform, a.id, a.worker_token) == before["audit"][a.id]


# ---- 2 action plans and a read model that cannot apply an event ---------------------------------------------
def plan_body(**extra) -> dict:
    return {"title": "紧急疏通", "basis": "暴雨前排水沟堵塞", "scope": "community", **extra}


def action_views(platform, community: dict, plan: str, case: str) -> dict:
    base = f"/api/v1/communities/{community['id']}"
    views = {}
    for path in ("/action-plans", "/board", f"/action-plans/{plan}", f"/cases/{case}"):
        response = platform.api("GET", base + path, community["token"], expect=200)
        views[path] = response.json()
    views["/board"].pop("at")  # the board says when it was read
    return views


def readyz(platform, service: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{platform.port(service)}/readyz", timeout=10)


def test_an_action_plan_opens_only_on_a_decided_case_of_its_own_community(platform):
    a, b = platform.new_community("甲"), platform.new_community("乙")
    api = lambda c, method, path, body=None, expect=None: platform.api(  # noqa: E731
        method, f"/api/v1/communities/{c['id']}{path}", c["token"], body, expect=expect)
    plan_a = api(a, "POST", "/action-plans", plan_body(), expect=201).json()
    plan_b = api(b, "POST", "/action-plans", plan_body(), expect=201).json()
    # A case of 乙 still in the proposal stage, and one an emergency was declared on.
    undecided = api(b, "POST", "/proposals", {"title": "草坪", "body": "草坪改菜地？", "category": "green_space",
                                              "scope": "community"}, expect=201).json()["id"]
    api(b, "POST", f"/proposals/{undecided}/submit", expect=200)
    emergency = api(b, "POST", "/emergencies", {"justification": "排水沟堵塞，底层进水", "title": "紧急抢修"},
                    expect=201).json()["id"]
    wait_for(lambda: any(c["case"] == undecided for c in api(b, "GET", "/board", expect=200).json()
                         ["open_cases"]["proposal"]), timeout=60, message="the actions service to know the case")

    def snapshot() -> dict:
        return {"audit": {c["id"]: quiet_audit(platform, c["id"], c["token"]) for c in (a, b)},
                "heads": heads(platform),
                "views": {c["id"]: action_views(platform, c, p["plan"], p["case"])
                          for c, p in ((a, plan_a), (b, plan_b))}}

    before = snapshot()
    for case, status in ((plan_a["case"], 404), (str(uuid.uuid4()), 404), (plan_b["case"], 409), (undecided, 409)):
        problem = problem_of(api(b, "POST", "/action-plans", plan_body(case=case)), status)
        assert case in problem["detail"]
    assert snapshot() == before
    assert readyz(platform, "actions").status_code == 200
    parked = json.loads(platform.cli("dlq", "list", "--json").stdout)
    assert [p for p in parked if p["consumer"] == "projection"] == []

    # A case that reached a decision (the emergency) takes one plan.
    opened = wait_for(lambda: (r := api(b, "POST", "/action-plans", plan_body(case=emergency))).status_code == 201
                      and r.json(), timeout=60, message="a plan on the declared emergency")
    assert opened["case"] == emergency and opened["basis"] == "direct"
    problem_of(api(b, "POST", "/action-plans", plan_body(case=emergency)), 409)


def parked_metric(platform) -> float:
    for line in platform.metrics("actions").splitlines():
        if line.startswith("consult_parked_messages{") and 'consumer="projection"' in line and \
                'source="actions"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_event_the_read_model_cannot_apply_parks_holds_and_says_so_until_an_operator_acts(platform):
    c, other = platform.new_community("故障"), platform.new_community("旁观")
    base = f"/api/v1/communities/{c['id']}"
    plan = platform.api("POST", base + "/action-plans", c["token"], plan_body(), expect=201).json()
    neighbour = platform.api("POST", f"/api/v1/communities/{other['id']}/action-plans", other["token"], plan_body(),
                             expect=201).json()
    due = clock.format(frozen_now() + timedelta(days=7))
    task = {"title": "清淤", "responsible_party": {"kind": "property_company"}, "due_at": due}
    platform.set_faults([{"consumer": "projection", "type": "TaskAssigned", "community": c["id"]}])
    try:
        told = problem_of(platform.api("POST", base + f"/action-plans/{plan['plan']}/tasks", c["token"], task), 503)
        assert told["code"] == "RecordedButHeld"
        ready = readyz(platform, "actions")
        assert ready.status_code == 503 and ready.json()["status"] == "degraded"
        assert ready.json()["held"]["type"] == "TaskAssigned"
        assert parked_metric(platform) == 1.0
        parked = [p for p in json.loads(platform.cli("dlq", "list", "--json").stdout) if p["consumer"] == "projection"]
        assert [(p["source"], p["type"], p["community"]) for p in parked] == [("actions", "TaskAssigned", c["id"])]
        # Views answer from where the read model holds, in every community; commands are refused.
        assert platform.api("GET", base + f"/action-plans/{plan['plan']}", c["token"], expect=200).json()["tasks"] == []
        platform.api("GET", f"/api/v1/communities/{other['id']}/board", other["token"], expect=200)
        head = platform.rpc("actions", "log_head")
        problem_of(platform.api("POST", f"/api/v1/communities/{other['id']}/action-plans", other["token"],
                                plan_body()), 503)
        assert platform.rpc("actions", "log_head") == head
    finally:
        platform.set_faults([])
        platform.cli("dlq", "resume", "projection", "actions")
    wait_for(lambda: readyz(platform, "actions").status_code == 200, timeout=30, message="actions ready again")
    assert parked_metric(platform) == 0.0
    tasks = platform.api("GET", base + f"/action-plans/{plan['plan']}", c["token"], expect=200).json()["tasks"]
    assert [t["title"] for t in tasks] == ["清淤"]
    platform.api("POST", f"/api/v1/communities/{other['id']}/action-plans/{neighbour['plan']}/tasks", other["token"],
                 task, expect=201)


# ---- 6 webhooks ---------------------------------------------------------------------------------------
class Receiver:
    """A local HTTP server standing for an internal service: it counts what reaches it."""

    def __init__(self):
        self.requests = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                receiver.requests += 1
                body = b'{"internal":"secret answer"}'
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_reach_no_internal_address_at_registration_or_at_sending(platform):
    n = Neighbourhood(platform)
    [resident] = n.residents(n.buildings[0], 1)
    receiver = Receiver()
    try:
        p = receiver.port
        before = {"audit": quiet_audit(platform, n.id, n.worker_token),
                  "hooks": n.api("GET", "/webhooks", n.worker_token, expect=200).json()}
        for url in (f"http://127.0.0.1:{p}/consult", f"https://127.0.0.1:{p}/consult", f"http://[::1]:{p}/consult",
                    f"https://localhost:{p}/consult", "http://169.254.169.254/latest/meta-data/",
                    "https://169.254.169.254/latest/meta-data/", "https://[::ffff:127.0.0.1]/consult",
                    "https://10.0.0.1/consult", "http://hooks.example.org/consult", f"ftp://127.0.0.1:{p}/"):
            problem_of(n.api("POST", "/webhooks", n.worker_token, {"url": url}), 422)
        assert {"audit": quiet_audit(platform, n.id, n.worker_token),
                "hooks": n.api("GET", "/webhooks", n.worker_token, expect=200).json()} == before

        # An endpoint already on record (registered before these checks) that points inside: the
        # sender refuses it at the connection, gives the delivery up and keeps no answer.
        hook = str(uuid.uuid4())
        engine = state_engine("notifications", dataclasses.replace(
            config.load(), db=platform.env["CONSULT_DB"], data_dir=Path(platform.env["CONSULT_DATA_DIR"]),
            prefix=platform.env["CONSULT_PREFIX"]))
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(notification_tables.webhooks).values(
                    id=hook, community=n.id, url=f"http://127.0.0.1:{p}/consult", secret="s" * 32,
                    include_personal_data=False, active=True, paused=False, health=EndpointHealth().to_dict(),
                    created_at="2026-01-01T00:00:00.000000Z", created_by=n.worker))
        finally:
            engine.dispose()
        n.api("PUT", "/me/preferences", resident.token, {"channels": ["webhook"]}, expect=200)
        n.open_proposal(resident)  # its author is told of the screening, through the webhook too

        def refused():
            rows = n.api("GET", "/notifications/deliveries", n.worker_token, expect=200).json()
            return [r for r in rows if r["channel"] == "webhook" and r["status"] == "failed"]

        failed = wait_for(refused, timeout=60, message="the webhook deliveries to be given up")
        assert {(r["failure"], r["endpoint"]) for r in failed} == {("refused", hook)}
        [endpoint] = n.api("GET", "/webhooks", n.worker_token, expect=200).json()
        assert endpoint["last_failure_reason"].startswith("webhook target refused")
        assert "secret answer" not in json.dumps(endpoint)
        assert receiver.requests == 0
        n.api("DELETE", f"/webhooks/{hook}", n.worker_token, expect=200)
    finally:
        receiver.close()
