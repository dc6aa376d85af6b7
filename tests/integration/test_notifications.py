"""Notifications end to end, with every service a real process: the drainage case through all
four stages, read back from the inbox, from a local SMTP server (aiosmtpd) and from a local
webhook receiver that checks each signature; the proof of notice in the audit log; redelivery
of every event; a webhook endpoint that keeps failing; SIGKILL in the middle of a batch.
"""
from __future__ import annotations

import email
import email.policy
import http.server
import json
import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from kombu import Connection

from services.common import clock
from services.notifications.channels import DELIVERY_HEADER, SIGNATURE_HEADER, verify_webhook_signature
from tests.conftest import BACKENDS
from tests.harness import frozen_now, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SECRET = "drainage-webhook-secret-0123456789"
TITLE = "3号院排水沟疏通"
STAGES = ("proposals", "deliberation", "decisions", "actions")  # the stages the drainage case runs through


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """A real local SMTP server; keeps every message it accepted."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                      policy=email.policy.default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


class Receiver:
    """A local webhook receiver, as a community chat bot or SMS gateway would run one: it checks
    the signature, keeps each delivery id once, and counts every request it got."""

    def __init__(self, secret: str, port: int | None = None, delay: float = 0.0, now=time.time):
        self.secret, self.delay, self.now = secret.encode(), delay, now
        self.requests, self.rejected = 0, 0
        self.deliveries: dict[str, dict] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                time.sleep(receiver.delay)
                if not verify_webhook_signature(receiver.secret, self.headers[SIGNATURE_HEADER], body, receiver.now()):
                    receiver.rejected += 1
                    self.send_response(401)
                else:
                    receiver.deliveries.setdefault(self.headers[DELIVERY_HEADER], json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/consult"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request):
    """A platform of this module's own: the drainage case runs four stages on the shared clock and
    restarts the notifications service with a local SMTP server, so it starts from a quiet platform
    rather than one that earlier modules left with their clocks, backlogs and paused endpoints."""
    with running(request.param) as p:
        yield p


@pytest.fixture(scope="module")
def notify(platform):
    """The notifications service pointed at a local SMTP server, with quick retries, allowed to post
    to the local webhook receivers."""
    if "notifications" not in platform.services:
        pytest.fail("the notifications service is not started (CONSULT_TEST_SERVICES)")
    for stage in STAGES:  # the stages the drainage case needs, whatever CONSULT_TEST_SERVICES says
        if stage not in platform.procs:
            platform.start(stage)
    mailbox = Mailbox()
    mailbox.controller.start()
    settings = {"CONSULT_SMTP_HOST": "127.0.0.1", "CONSULT_SMTP_PORT": str(mailbox.controller.port),
                "CONSULT_SMTP_FROM": "社区议事平台 <noreply@s-community.example>",
                "CONSULT_NOTIFY_BACKOFF_BASE": "0.2", "CONSULT_NOTIFY_MAX_ATTEMPTS": "3",
                # The webhook receivers below listen on 127.0.0.1: allow-listed, as an operator would
                # allow-list a gateway on the internal network (otherwise only public https:// is reached).
                "CONSULT_WEBHOOK_ALLOWLIST": "127.0.0.1"}
    saved = {k: platform.env.get(k) for k in settings}
    platform.set_clock(None)  # webhook signatures are checked against the receiver's real time
    platform.env.update(settings)
    platform.stop("notifications")
    platform.start("notifications")
    try:
        yield mailbox
    finally:
        for k, v in saved.items():
            platform.env.pop(k) if v is None else platform.env.__setitem__(k, v)
        platform.stop("notifications")
        platform.start("notifications")
        mailbox.controller.stop()


def rpc_id(platform, method, *args):
    return platform.rpc("communities", method, "tests", *args)["id"]


def person(platform, c, name, household=None, role=None, scope=None):
    pid = rpc_id(platform, "register_person", c["id"], name, True, household, None)
    if role:
        platform.rpc("communities", "grant_role", "tests", c["id"], pid, role, scope, None)
    token = platform.rpc("communities", "issue_token", c["id"], pid, 30, "tests")["token"]
    return {"id": pid, "token": token}


def delivered(platform, community, **filters) -> list[dict]:
    rows = platform.rpc("notifications", "deliveries", community, None, None, None, None, 1000, 0)
    return [r for r in rows if r["status"] == "delivered" and all(r[k] == v for k, v in filters.items())]


def own_log(platform, community) -> list[dict]:
    out, start = [], 1
    while True:
        batch = platform.rpc("notifications", "read_log", start, 1000)
        if not batch:
            return [e for e in out if e["community"] == community]
        out += batch
        start = batch[-1]["position"] + 1


def inbox(platform, c, who) -> dict:
    return platform.api("GET", f"/api/v1/communities/{c['id']}/me/inbox", who["token"], expect=200).json()


def metric(platform, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", platform.metrics("notifications"), re.M)
    return float(found.group(1)) if found else 0.0


# ---- the drainage case ------------------------------------------------------------------------------
def platform_now(platform) -> float:
    """The platform's clock, as a receiver in the test's world reads it (the tests freeze it)."""
    text = platform.clock_file.read_text().strip() if platform.clock_file.exists() else ""
    return clock.parse(text).timestamp() if text else time.time()


# Who is told what, per person, as the drainage case runs (ballot notices go to the roll: the four
# residents of building 2; resolutions and the close to everyone who took part in the case).
PROPOSAL_NOTICES = {"王": ["ProposalScreened", "ProposalSubmitted", "ProposalQualified"],
                    "李": ["ProposalSubmitted", "ProposalQualified"], "张": ["ProposalSubmitted", "ProposalQualified"],
                    "刘": ["ProposalSubmitted", "ProposalQualified"]}
VOTER_NOTICES = ["BallotOpened", "BallotClosingSoon"]
CASE_NOTICES = ["ResolutionAdopted", "ResolutionFinal", "CaseClosed"]
EVALUATION_NOTICES = ["EvaluationOpened"]  # the adults living in the plan's scope (a one-day window: no reminder)
BODY_NOTICES = ["ConsultationOpened", "MeetingScheduled"]
EXPECTED = {
    **{n: PROPOSAL_NOTICES[n] + VOTER_NOTICES + CASE_NOTICES + EVALUATION_NOTICES for n in ("王", "李", "张", "刘")},
    **{n: BODY_NOTICES + ["MinutesAwaitingSignature"] + CASE_NOTICES for n in ("书记", "网格长")},  # the signers
    "楼栋长": BODY_NOTICES + CASE_NOTICES,
    "物业": BODY_NOTICES + ["TaskAssigned", "TaskOverdue"] + CASE_NOTICES, "陈": [],
}
CHANNELS = {"王": 2, "李": 3}  # 王 adds e-mail, 李 e-mail and the webhook; the others keep the inbox


@pytest.fixture(scope="module")
def drainage(platform, notify):
    """The drainage case of building 2 of compound 3, through all four stages on the test clock:
    proposal, consultation and meeting, ballot, resolution, task (overdue), evaluation, close."""
    c = platform.new_community("S社区")
    cid, worker = c["id"], c["token"]
    base = f"/api/v1/communities/{cid}"
    platform.rpc("communities", "change_rules", "tests", cid, {
        "meeting_notice_days": 1, "ballot_notice_days": 1, "publicity_days": 1, "evaluation_window_days": 1})
    compound = rpc_id(platform, "add_compound", cid, "3号院坝")
    b2, b1 = (rpc_id(platform, "add_building", cid, compound, n) for n in ("2栋", "1栋"))
    units = {u: rpc_id(platform, "register_household", cid, b, u, "60", [], None, True, None)
             for u, b in (("2-101", b2), ("2-102", b2), ("2-201", b2), ("2-202", b2), ("1-101", b1))}
    who = {name: person(platform, c, name, units[u]) for name, u in
           (("王", "2-101"), ("李", "2-102"), ("张", "2-201"), ("刘", "2-202"), ("陈", "1-101"))}
    who["书记"] = person(platform, c, "书记", role="party_lead")
    who["网格长"] = person(platform, c, "网格长", role="grid_leader", scope=compound)
    who["楼栋长"] = person(platform, c, "楼栋长", role="building_leader", scope=b2)
    who["物业"] = person(platform, c, "物业", role="property_company")
    receiver = Receiver(SECRET, now=lambda: platform_now(platform))
    platform.api("POST", base + "/webhooks", worker, {"url": receiver.url, "secret": SECRET}, expect=201)
    platform.api("PUT", base + "/me/preferences", who["王"]["token"],
                 {"channels": ["email"], "email": "wang@example.org"}, expect=200)
    platform.api("PUT", base + "/me/preferences", who["李"]["token"],
                 {"channels": ["email", "webhook"], "email": "li@example.org", "lang": "en"}, expect=200)

    def api(method, path, name, body=None, expect=None):
        token = worker if name == "worker" else who[name]["token"]
        return platform.api(method, base + path, token, body, expect=expect).json()

    told = {n: [] for n in who}

    def settle(*notices: tuple[tuple[str, ...], str]):
        """Wait until exactly the deliveries told so far are delivered, before the clock moves on
        (a webhook signed at one time and checked after a jump of the clock would be refused)."""
        for names, notice in notices:
            for n in names:
                told[n].append(notice)
        n = sum(len(v) * CHANNELS.get(k, 1) for k, v in told.items())
        wait_for(lambda: len(delivered(platform, cid)) == n, timeout=90,
                 message=f"{n} deliveries after {notices[-1][1]}")

    t0 = frozen_now()
    platform.set_clock(t0)
    try:
        # 1 提议: proposed, screened, supported to the threshold (3 residents of the building).
        pid = api("POST", "/proposals", "王", {"title": TITLE, "body": "每逢雨季院坝积水，一楼进水。",
                                               "category": "drainage", "scope": "building", "scope_id": b2},
                  expect=201)["id"]
        api("POST", f"/proposals/{pid}/submit", "王", expect=200)
        api("POST", f"/proposals/{pid}/screen", "worker", {"admissible": True}, expect=200)
        for name in ("李", "张", "刘"):
            api("POST", f"/proposals/{pid}/supports", name, expect=201)
        # 2 议事: the qualified proposal opens the consultation; the property company joins the body.
        consultation = wait_for(lambda: platform.rpc("deliberation", "list_consultations", cid, None), timeout=30,
                                message="the consultation the qualified proposal opens")[0]["id"]
        path = f"/consultations/{consultation}"
        api("POST", path + "/invitations", "书记", {"person": who["物业"]["id"], "role": "property_company"},
            expect=201)
        api("POST", path + "/invitation-answers", "物业", {"role": "property_company", "accept": True}, expect=200)
        option = api("POST", path + "/options", "书记", {"title": "更换排水管", "description": "更换3号院坝2栋排水管"},
                     expect=201)["id"]
        api("POST", path + "/final-options", "书记", {"options": [option]}, expect=200)
        starts = t0 + timedelta(days=1, hours=1)
        meeting = api("POST", path + "/meetings", "书记", {
            "starts_at": clock.format(starts), "mode": "on_site", "place": "社区活动室", "agenda": ["排水沟维修方案"],
            "secretary": who["网格长"]["id"]}, expect=201)["id"]
        settle((("王",), "ProposalScreened"), (("王", "李", "张", "刘"), "ProposalSubmitted"),
               (("王", "李", "张", "刘"), "ProposalQualified"), (("书记", "网格长", "楼栋长", "物业"), "ConsultationOpened"),
               (("书记", "网格长", "楼栋长", "物业"), "MeetingScheduled"))
        platform.set_clock(starts)
        for name in ("书记", "网格长", "楼栋长", "物业"):
            api("POST", f"/meetings/{meeting}/attendance", name, {}, expect=201)
        api("POST", f"/meetings/{meeting}/opening", "书记", expect=200)
        minutes = api("POST", f"/meetings/{meeting}/minutes", "网格长", {"text": "一致同意更换排水管，交居民表决。"},
                      expect=201)["id"]
        settle((("书记", "网格长"), "MinutesAwaitingSignature"))
        for name in ("书记", "网格长"):
            api("POST", f"/minutes/{minutes}/signatures", name, expect=201)
        api("POST", f"/meetings/{meeting}/closing", "网格长", expect=200)
        api("POST", path + "/conclusion", "书记", {"outcome": "vote_needed", "summary": "交由本栋居民表决",
                                                   "meeting": meeting}, expect=200)
        # 3 决策: the ballot the conclusion prepared, as a yes/no motion of the building's residents.
        ballot = wait_for(lambda: api("GET", "/ballots", "worker", expect=200), timeout=30,
                          message="the prepared ballot")[0]["id"]
        opens = starts + timedelta(days=1, minutes=5)
        closes = opens + timedelta(days=3)
        api("PUT", f"/ballots/{ballot}/configuration", "worker", {
            "preset": "residents_meeting", "voting_unit": "resident", "options": [],
            "opens_at": clock.format(opens), "closes_at": clock.format(closes)}, expect=200)
        platform.set_clock(opens)
        voters = ("王", "李", "张", "刘")
        settle((voters, "BallotOpened"))
        for name in ("王", "李", "张"):
            api("POST", f"/ballots/{ballot}/votes", name, {"choice": "agree"}, expect=201)
        platform.set_clock(closes - timedelta(hours=23))  # the reminder's time: a day before the close
        settle((voters, "BallotClosingSoon"))
        everyone = voters + ("书记", "网格长", "楼栋长", "物业")
        platform.set_clock(closes + timedelta(seconds=1))
        settle((everyone, "ResolutionAdopted"))
        platform.set_clock(closes + timedelta(days=1, seconds=2))  # the publicity period has passed
        settle((everyone, "ResolutionFinal"))
        # 4 行动: the plan the resolution opened; a task for the property company, overdue, then done.
        plan = wait_for(lambda: api("GET", "/action-plans", "worker", expect=200), timeout=30,
                        message="the action plan")[0]["plan"]
        now = closes + timedelta(days=1, minutes=1)
        platform.set_clock(now)
        task = api("POST", f"/action-plans/{plan}/tasks", "worker", {
            "title": "疏通排水沟", "responsible_party": {"kind": "property_company", "person": who["物业"]["id"]},
            "due_at": clock.format(now + timedelta(days=1))}, expect=201)["task"]
        settle((("物业",), "TaskAssigned"))
        platform.set_clock(now + timedelta(days=1, minutes=1))
        settle((("物业",), "TaskOverdue"))
        api("POST", f"/action-plans/{plan}/tasks/{task}/progress", "物业", {"percent": 100, "note": "已疏通"},
            expect=201)
        done = api("POST", f"/action-plans/{plan}/done", "worker", {"summary": "排水沟已疏通，雨季未再积水"}, expect=200)
        settle((voters, "EvaluationOpened"))  # the adults living in the plan's scope: building 2's four
        for name in ("王", "李"):
            api("POST", f"/action-plans/{plan}/evaluations", name, {"rating": "satisfied"}, expect=201)
        platform.set_clock(clock.parse(done["evaluation"]["closes_at"]) + timedelta(minutes=2))
        settle((everyone, "CaseClosed"))
    finally:
        platform.set_clock(None)
    yield {"c": c, "who": who, "proposal": pid, "consultation": consultation, "ballot": ballot,
           "receiver": receiver, "told": told}
    receiver.close()


def test_the_drainage_case_tells_the_expected_people_in_their_inbox_in_their_language(platform, drainage):
    c, who = drainage["c"], drainage["who"]
    expected = {name: sorted(notices) for name, notices in EXPECTED.items()}
    assert {name: sorted(notices) for name, notices in drainage["told"].items()} == expected
    assert {name: sorted(m["type"] for m in inbox(platform, c, who[name])["items"]) for name in who} == expected
    grid = {m["type"]: m for m in inbox(platform, c, who["网格长"])["items"]}
    assert grid["ConsultationOpened"]["subject"] == f"【议事邀请】{TITLE}"
    assert "您的身份：网格长" in grid["ConsultationOpened"]["body"]
    assert "地点：社区活动室" in grid["MeetingScheduled"]["body"] and "议程：排水沟维修方案" in grid["MeetingScheduled"]["body"]
    closed = grid["CaseClosed"]
    assert closed["subject"] == f"【事项已办结】{TITLE}"
    assert "结果：已解决" in closed["body"] and "理由：排水沟已疏通，雨季未再积水" in closed["body"]
    overdue = {m["type"]: m for m in inbox(platform, c, who["物业"])["items"]}["TaskOverdue"]
    assert overdue["subject"] == "【任务已逾期】疏通排水沟" and f"所属事项：“{TITLE}”" in overdue["body"]
    li = {m["type"]: m for m in inbox(platform, c, who["李"])["items"]}
    assert li["BallotOpened"]["subject"] == f"Voting open: {TITLE}"
    assert "residents' meeting (majority)" in li["BallotOpened"]["body"]
    assert li["BallotClosingSoon"]["subject"] == f"Voting closes soon: {TITLE}"
    # Unread count, and marking a message read (only one's own).
    mine = inbox(platform, c, who["王"])
    assert mine["unread"] == mine["total"] == len(EXPECTED["王"])
    first = mine["items"][0]["id"]
    read = platform.api("POST", f"/api/v1/communities/{c['id']}/me/inbox/{first}/read", who["王"]["token"],
                        expect=200).json()
    assert read["unread"] == len(EXPECTED["王"]) - 1
    platform.api("POST", f"/api/v1/communities/{c['id']}/me/inbox/{first}/read", who["李"]["token"], expect=404)


def test_the_drainage_case_mails_reach_the_local_smtp_server(platform, notify, drainage):
    c = drainage["c"]
    wang = sorted(m["Subject"] for m in notify.to("wang@example.org"))
    assert len(wang) == len(EXPECTED["王"]) and f"【提议已受理】{TITLE}" in wang and f"【投票开始】{TITLE}" in wang
    assert all(TITLE in s for s in wang)
    li = sorted(m["Subject"] for m in notify.to("li@example.org"))
    assert len(li) == len(EXPECTED["李"]) and f"Case closed: {TITLE}" in li and f"Resolution final: {TITLE}" in li
    ids = {f"<{r['id']}@s-community.example>" for r in delivered(platform, c["id"], channel="email")}
    assert {m["Message-ID"] for m in notify.to("wang@example.org") + notify.to("li@example.org")} == ids
    body = next(m for m in notify.to("li@example.org") if m["Subject"].startswith("New")).get_content()
    assert f"/communities/{c['id']}/proposals/{drainage['proposal']}" in body and "Hello," in body


def test_the_drainage_case_reaches_the_webhook_signed_and_without_personal_data(platform, drainage):
    receiver, c = drainage["receiver"], drainage["c"]
    assert receiver.rejected == 0
    got = receiver.deliveries
    assert set(got) == {r["id"] for r in delivered(platform, c["id"], channel="webhook")}
    assert sorted(p["notice"] for p in got.values()) == sorted(EXPECTED["李"])
    for payload in got.values():
        assert payload["recipient"] == drainage["who"]["李"]["id"] and payload["community"] == c["id"]
        assert payload["case"] == drainage["proposal"] and "message" not in payload
        assert TITLE not in json.dumps(payload, ensure_ascii=False)


def test_the_audit_log_proves_which_voters_were_told_of_the_ballot_when_and_how(platform, drainage):
    c, who = drainage["c"], drainage["who"]
    expected = sum(len(v) * CHANNELS.get(k, 1) for k, v in EXPECTED.items())
    entries = wait_for(lambda: (lambda es: es if len([e for e in es if e["type"] == "NotificationDelivered"])
                                >= expected else None)(
        platform.audit_entries(c["id"], c["token"], case=drainage["proposal"])),
        timeout=30, message="the proof of notice in the audit log")
    opened = next(e for e in entries if e["type"] == "BallotOpened")
    roll = {v["voter"] for v in opened["envelope"]["data"]["roll"]}
    assert roll == {who[n]["id"] for n in ("王", "李", "张", "刘")}
    about = [e["envelope"] for e in entries if e["type"] == "NotificationDelivered"
             and e["envelope"]["data"]["about_event"] == opened["event_id"]]
    proof = [p for p in about if p["data"]["notice_type"] == "BallotOpened"]
    reminded = [p for p in about if p["data"]["notice_type"] == "BallotClosingSoon"]
    late = [(r["data"]["recipient"], r["data"]["channel"], r["occurred_at"]) for r in reminded
            if r["occurred_at"] <= opened["envelope"]["occurred_at"]]
    assert len(reminded) == len(proof) and not late, (
        f"{len(reminded)} reminders against {len(proof)} notices of the opening at "
        f"{opened['envelope']['occurred_at']}; reminders stamped no later: {late}")
    assert sorted((p["data"]["recipient"], p["data"]["channel"]) for p in proof) == sorted(
        [(who["王"]["id"], "inbox"), (who["王"]["id"], "email"), (who["李"]["id"], "inbox"),
         (who["李"]["id"], "email"), (who["李"]["id"], "webhook"), (who["张"]["id"], "inbox"),
         (who["刘"]["id"], "inbox")])
    for p in proof:  # when: on the test clock, the ballot opened and was notified at the same instant
        assert p["source"] == "notifications" and p["causation"] == opened["event_id"]
        assert p["occurred_at"] == opened["envelope"]["occurred_at"] and p["data"]["attempts"] == 1
        assert re.fullmatch(r"[0-9a-f]{64}", p["data"]["message_commitment"])
        assert "【投票开始】" not in json.dumps(p, ensure_ascii=False)  # commitments, never texts
    planned = [e for e in entries if e["type"] == "NotificationPlanned"
               and e["envelope"]["data"]["about_event"] == opened["event_id"]]
    assert len(planned) == len(about) and all(e["index"] > opened["index"] for e in planned)


def test_redelivering_every_event_twice_sends_nothing_twice(platform, notify, drainage):
    c, receiver = drainage["c"], drainage["receiver"]

    def snapshot():
        return (len(notify.messages), receiver.requests, len(own_log(platform, c["id"])),
                {n: inbox(platform, c, w)["total"] for n, w in drainage["who"].items()})

    before = snapshot()
    prefix = platform.prefix
    with Connection(platform.env["CONSULT_AMQP_URI"]) as conn:
        producer = conn.Producer()
        for source in STAGES:
            events, start = [], 1
            while batch := platform.rpc(source, "read_log", start, 1000):
                events += batch
                start = batch[-1]["position"] + 1
            seen = metric(platform, "consult_events_duplicate_total", consumer="notifications", source=source)
            for _ in range(2):
                for env in events:
                    producer.publish(json.dumps(env).encode(), exchange="", routing_key=f"{prefix}.notifications.{source}",
                                     content_type="application/json", delivery_mode=2, message_id=env["id"])
            wait_for(lambda: metric(platform, "consult_events_duplicate_total", consumer="notifications",
                                    source=source) >= seen + 2 * len(events), timeout=60,
                     message=f"every {source} event seen twice more")
    time.sleep(2)  # give a sender that would send again the time to do it
    assert snapshot() == before


def test_a_webhook_endpoint_that_keeps_failing_is_given_up_on_paused_reported_and_resumed(platform, notify):
    c = platform.new_community("webhook trouble")
    cid, base = c["id"], f"/api/v1/communities/{c['id']}"
    compound = rpc_id(platform, "add_compound", cid, "1号院")
    lead = person(platform, c, "书记", role="party_lead")
    grid = person(platform, c, "网格长", role="grid_leader", scope=compound)
    platform.api("PUT", base + "/me/preferences", lead["token"], {"channels": ["webhook"]}, expect=200)
    port = free_port()  # nothing listens there yet
    hook = platform.api("POST", base + "/webhooks", c["token"], {"url": f"http://127.0.0.1:{port}/consult",
                                                                 "secret": SECRET}, expect=201).json()
    failed_before = metric(platform, "consult_notifications_failed_total", channel="webhook",
                           reason="attempts_exhausted")
    consultation = platform.rpc("deliberation", "open_consultation", lead["id"], ["party_lead"], cid, "绿地种菜纠纷",
                                "草坪被种上了菜", "community", None, "green_space")["id"]
    # Three attempts (0.2 s, then 0.4 s apart), then given up: a final failure with a metric.
    failed = wait_for(lambda: [r for r in platform.rpc("notifications", "deliveries", cid, "failed", None, None,
                                                       None, 100, 0)], timeout=30, message="the final failure")
    assert failed[0]["channel"] == "webhook" and failed[0]["attempts"] == 3
    assert metric(platform, "consult_notifications_failed_total", channel="webhook",
                  reason="attempts_exhausted") == failed_before + 1
    # Two more failures in a row (five): the endpoint is paused, visibly.
    platform.rpc("deliberation", "schedule_meeting", lead["id"], ["party_lead"], cid, consultation,
                 clock.format(clock.now() + timedelta(days=4)), "on_site", "活动室", ["议题"], grid["id"])
    view = wait_for(lambda: (lambda v: v if v["paused"] else None)(
        platform.api("GET", base + "/webhooks", c["token"], expect=200).json()[0]), timeout=30,
        message="the endpoint paused")
    assert view["consecutive_failures"] == 5 and view["last_failure_reason"]
    assert metric(platform, "consult_webhook_endpoint_paused", community=cid, endpoint=hook["id"]) == 1.0
    assert "paused after 5 consecutive failures" in platform.log("notifications")
    audit = wait_for(lambda: [e for e in platform.audit_entries(cid, c["token"]) if e["type"] == "NotificationFailed"],
                     timeout=30, message="the failure in the audit log")
    assert audit[0]["envelope"]["data"]["reason"] == "attempts_exhausted"
    waiting = [r for r in platform.rpc("notifications", "deliveries", cid, "planned", None, None, None, 100, 0)
               if r["channel"] == "webhook"]
    assert len(waiting) == 1
    # The receiver comes back; a worker resumes the endpoint; what waited goes out.
    receiver = Receiver(SECRET, port=port)
    try:
        resumed = platform.api("POST", base + f"/webhooks/{hook['id']}/resume", c["token"], expect=200).json()
        assert not resumed["paused"]
        wait_for(lambda: waiting[0]["id"] in receiver.deliveries, timeout=30, message="the waiting delivery")
        assert metric(platform, "consult_webhook_endpoint_paused", community=cid, endpoint=hook["id"]) == 0.0
        # The delivery given up on earlier is sent again by a worker over the API; a grid leader may not.
        platform.api("POST", base + "/notifications/retries", grid["token"], {}, expect=403)
        platform.api("POST", base + "/notifications/retries", c["token"], {"channel": "fax"}, expect=422)
        again = platform.api("POST", base + "/notifications/retries", c["token"], {"channel": "webhook"},
                             expect=200).json()
        assert again == {"retried": [failed[0]["id"]], "count": 1}
        wait_for(lambda: failed[0]["id"] in receiver.deliveries, timeout=30, message="the retried delivery")
        platform.api("POST", base + "/notifications/retries", c["token"], {"deliveries": [failed[0]["id"]]},
                     expect=409)
        told = wait_for(lambda: [e["type"] for e in platform.audit_entries(cid, c["token"])
                                 if e["envelope"]["data"].get("delivery") == failed[0]["id"]][-3:]
                        if any(e["type"] == "NotificationDelivered" and e["envelope"]["data"].get("delivery") ==
                               failed[0]["id"] for e in platform.audit_entries(cid, c["token"])) else None,
                        timeout=30, message="the retry and its delivery in the audit log")
        assert told == ["NotificationFailed", "NotificationRetried", "NotificationDelivered"]
    finally:
        receiver.close()


def test_sigkill_in_the_middle_of_a_batch_loses_nothing_and_the_inbox_doubles_nothing(platform, notify):
    c = platform.new_community("kill")
    cid, base = c["id"], f"/api/v1/communities/{c['id']}"
    compound = rpc_id(platform, "add_compound", cid, "院坝")
    building = rpc_id(platform, "add_building", cid, compound, "1栋")
    residents = []
    for i in range(30):
        unit = rpc_id(platform, "register_household", cid, building, f"{i:03d}", "50", [], None, True, None)
        residents += [rpc_id(platform, "register_person", cid, f"居民{i}-{k}", True, unit, None) for k in range(3)]
    for r in residents:
        platform.rpc("notifications", "set_preferences", cid, r, {"channels": ["webhook"]})
    receiver = Receiver(SECRET, delay=0.03)  # a slow gateway: the batch takes seconds
    try:
        platform.api("POST", base + "/webhooks", c["token"], {"url": receiver.url, "secret": SECRET}, expect=201)
        author = {"id": residents[0], "token": platform.rpc("communities", "issue_token", cid, residents[0], 30,
                                                            "tests")["token"]}
        pid = platform.api("POST", base + "/proposals", author["token"], {
            "title": "楼道灯不亮", "body": "晚上看不见路", "category": "safety", "scope": "building",
            "scope_id": building}, expect=201).json()["id"]
        platform.api("POST", base + f"/proposals/{pid}/submit", author["token"], expect=200)
        platform.api("POST", base + f"/proposals/{pid}/screen", c["token"], {"admissible": True}, expect=200)
        total_hooks = len(residents) + 1  # the new proposal to each resident, the screening to its author
        wait_for(lambda: len(receiver.deliveries) >= 10, timeout=60, interval=0.02, message="the batch under way")
        platform.kill("notifications")
        at_kill = len(receiver.deliveries)
        platform.start("notifications")
        wait_for(lambda: len(receiver.deliveries) == total_hooks, timeout=120, message="every webhook delivery")
        assert at_kill < total_hooks, "the kill happened in the middle of the batch"
        rows = platform.rpc("notifications", "deliveries", cid, None, None, None, None, 1000, 0)
        wait_for(lambda: all(r["status"] == "delivered" for r in
                             platform.rpc("notifications", "deliveries", cid, None, None, None, None, 1000, 0)),
                 timeout=60, message="every delivery recorded")
        assert len(rows) == 2 * total_hooks
        assert set(receiver.deliveries) == {r["id"] for r in rows if r["channel"] == "webhook"}
        # At least once on the wire, at most the one in flight again; exactly once per delivery id.
        assert receiver.requests - len(receiver.deliveries) <= 1
        settled = [e["data"]["delivery"] for e in own_log(platform, cid) if e["type"] == "NotificationDelivered"]
        assert sorted(settled) == sorted(r["id"] for r in rows)  # each delivery recorded exactly once
        inboxes = {}
        for r in rows:
            if r["channel"] == "inbox":
                inboxes[r["recipient"]] = inboxes.get(r["recipient"], 0) + 1
        assert inboxes == {r: (2 if r == residents[0] else 1) for r in residents}
        for r in residents[:5]:  # the inbox itself holds each message once
            assert platform.rpc("notifications", "inbox", cid, r)["total"] == inboxes[r]
    finally:
        receiver.close()


def test_a_webhook_that_answers_a_redirect_is_not_followed_and_its_answer_is_never_kept(platform, notify):
    """Issue 12.6: a receiver (allow-listed, as in `notify`) that answers 302 to another internal
    address is not followed there, and nothing it answered is kept or shown: the failure says its
    status code only."""
    c = platform.new_community("webhook redirect")
    cid, base = c["id"], f"/api/v1/communities/{c['id']}"
    lead = person(platform, c, "书记", role="party_lead")
    platform.api("PUT", base + "/me/preferences", lead["token"], {"channels": ["webhook"]}, expect=200)
    target = Receiver(SECRET)  # where the redirect points: nothing may reach it
    hits = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(self.path)
            answer = b"secret answer: db password hunter2"
            self.send_response(302)
            self.send_header("Location", target.url)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        hook = platform.api("POST", base + "/webhooks", c["token"], {
            "url": f"http://127.0.0.1:{server.server_address[1]}/consult", "secret": SECRET}, expect=201).json()
        platform.rpc("deliberation", "open_consultation", lead["id"], ["party_lead"], cid, "楼道堆物", "楼道里堆了杂物",
                     "community", None, "green_space")
        failed = wait_for(lambda: platform.rpc("notifications", "deliveries", cid, "failed", None, None, None, 100, 0),
                          timeout=30, message="the delivery given up")
        assert failed[0]["channel"] == "webhook" and failed[0]["attempts"] == 3 and len(hits) == 3
        assert target.requests == 0, "the redirect was followed"
        [view] = platform.api("GET", base + "/webhooks", c["token"], expect=200).json()
        assert view["id"] == hook["id"] and view["last_failure_reason"] == "webhook answered HTTP 302"
        shown = json.dumps([view, platform.rpc("notifications", "deliveries", cid, None, None, None, None, 100, 0),
                            platform.audit_entries(cid, c["token"])], ensure_ascii=False)
        assert "hunter2" not in shown and "secret answer" not in shown
        assert "hunter2" not in platform.log("notifications")
    finally:
        server.shutdown()
        server.server_close()
        target.close()
