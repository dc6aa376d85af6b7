"""The notifications service without a broker: planning from events, the sender with its
retries, pauses and digests, reminders on the shared clock, and the proof of notice, on a real
SQLite store with a fake directory, fake text stores and recording channel fakes."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock, config, envelope
from services.common.consumer import EventSourcedSink
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all
from services.notifications import tables, templates
from services.notifications.application import NotificationsApp
from services.notifications.channels import DeliveryFailed, EndpointHealth, verify_webhook_signature
from services.notifications.dispatch import Dispatcher, SenderSettings
from services.notifications.domain import NOTICES, Preferences, next_digest_slot

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)  # 09:00 in Beijing
COMMUNITY = "c0000000-0000-4000-8000-000000000001"
B2 = "b0000000-0000-4000-8000-000000000002"
WANG, LI, ZHANG, LIU, CHEN, LEAD, GRID, PROP = (str(uuid.UUID(int=i)) for i in range(1, 9))
TITLE = "3号院排水沟疏通"


def uid() -> str:
    return str(uuid.uuid4())


class FakeDirectory:
    def __init__(self):
        self.scopes = {("building", B2): [WANG, LI, ZHANG, LIU], ("community", None): [WANG, LI, ZHANG, LIU, CHEN]}
        self.households = {}
        self.roles = {}

    def role_holders(self, community, role, scope, at):
        return self.roles.get(role, [])

    def residents_in_scope(self, community, scope, scope_id, at):
        assert community == COMMUNITY and at
        return [{"person": p, "household": self.households.get(p, "h-" + p[-2:]), "adult": True}
                for p in self.scopes[(scope, scope_id)]]


class FakeTexts:
    def __init__(self):
        self.stores = {"proposals": {}, "deliberation": {}, "decisions": {}, "actions": {}}
        self.reads = []

    def put(self, source, text):
        commitment, _ = envelope.commit_text(text)
        self.stores[source][commitment] = text
        return commitment

    def read(self, wanted):
        self.reads.append(wanted)
        everything = set().union(*wanted.values())
        return {c: text for store in self.stores.values() for c, text in store.items() if c in everything}


class FakeEmail:
    def __init__(self):
        self.sent, self.fail = [], None

    def send(self, to_addr, subject, body, message_id, lang, *, date=None):
        if self.fail:
            raise self.fail
        self.sent.append({"to": to_addr, "subject": subject, "body": body, "id": message_id, "lang": lang})


class FakeWebhook:
    def __init__(self):
        self.sent, self.fail = [], None

    def send(self, url, secret, payload, delivery_id, now_ts):
        if self.fail:
            raise self.fail
        from services.notifications.channels import WebhookSender

        body, headers = WebhookSender().build_request(secret, payload, delivery_id, now_ts)
        self.sent.append({"url": url, "secret": secret, "payload": payload, "body": body, "headers": headers})


class Rig:
    """One notifications application with its consumer sink and sender, on fakes."""

    def __init__(self, tmp_path):
        self.settings = config.Settings(amqp_uri="", db="sqlite", data_dir=tmp_path, prefix="t", test_mode=True,
                                        clock_file=None, relay_interval=1, catchup_interval=1, retry_delays=())
        self.engine = state_engine("notifications", self.settings)
        create_all(self.engine, tables.metadata)
        self.app = NotificationsApp(self.settings, self.engine)
        self.directory, self.texts = FakeDirectory(), FakeTexts()
        self.sink = EventSourcedSink(self.app, lambda env: self.app.plan(env, self.directory))
        self.email, self.webhook = FakeEmail(), FakeWebhook()
        self.sender = Dispatcher(self.app, self.texts, self.email, self.webhook,
                                 SenderSettings(max_attempts=3, backoff_base_s=10, public_url="https://s.example"))
        self.positions: dict[str, int] = {}

    def event(self, source, type_, data, aggregate=None, case=None):
        """Feed one envelope to the consumer, as the bus would."""
        self.positions[source] = self.positions.get(source, 0) + 1
        aggregate = aggregate or uid()
        env = {"schema": envelope.SCHEMA, "id": uid(), "source": source, "position": self.positions[source],
               "type": type_, "event_version": 1, "community": COMMUNITY,
               "aggregate": {"type": "X", "id": aggregate, "version": 1}, "occurred_at": clock.format(clock.now()),
               "actor": "someone", "case": case, "causation": None, "data": data}
        assert self.sink.handle(source, env)
        return env

    def send(self):
        return self.sender.run_once()

    def inbox(self, person):
        return self.app.inbox(COMMUNITY, person)["items"]

    def log(self, *types):
        """This service's own log as the audit receives it."""
        out = read_envelopes(self.app, "notifications", 1, 10_000)
        return [e for e in out if not types or e["type"] in types]

    def close(self):
        self.app.close()
        self.engine.dispose()


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.setenv("CONSULT_WEBHOOK_ALLOWLIST", "127.0.0.1")  # the endpoints below are local
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    clock.set(T0)
    r = Rig(tmp_path)
    yield r
    r.close()
    clock.set(None)


def proposal(rig, author=WANG, scope="building", scope_id=B2):
    """A drafted, screened proposal collecting support; returns (proposal id, events)."""
    pid = uid()
    title = rig.texts.put("proposals", TITLE)
    drafted = rig.event("proposals", "ProposalDrafted", {
        "community": COMMUNITY, "author": author, "scope": scope, "scope_id": scope_id, "category": "drainage",
        "title_commitment": title, "body_commitment": rig.texts.put("proposals", "雨季院坝积水")}, pid, case=pid)
    rig.event("proposals", "ProposalSubmitted", {}, pid, case=pid)
    screened = rig.event("proposals", "ProposalScreened", {"admissible": True, "reason_commitment": None,
                                                           "category": "drainage"}, pid, case=pid)
    opened = rig.event("proposals", "ProposalCollectionOpened", {
        "support_per": "resident", "unit": "residents", "threshold_rule": {"unit": "residents", "count": 3},
        "denominator": 4, "threshold": 3, "deadline": clock.format(clock.now() + timedelta(days=30))}, pid, case=pid)
    return pid, {"drafted": drafted, "screened": screened, "opened": opened}


def support(rig, pid, person, kind="SupportGiven"):
    return rig.event("proposals", kind, {"community": COMMUNITY, "proposal": pid, "unit": "resident",
                                         "person": person, "household": None, "carried_from": None}, case=pid)


# ---- the table ---------------------------------------------------------------------------------------
def test_every_notified_type_has_a_template_and_every_template_is_used():
    assert {rule.template for rule in NOTICES.values()} == set(templates.EVENT_TYPES)
    for rule in NOTICES.values():
        assert rule.recipients and rule.topic in ("proposal", "consultation", "ballot", "task", "case", "meeting",
                                                         "minutes", "objection", "plan")


def test_preferences_are_validated_and_the_inbox_is_always_on():
    p = Preferences.parse({"channels": ["email"], "email": "wang@example.org", "lang": "en", "digest": "daily"})
    assert p.channels == ("inbox", "email") and p.lang == "en" and p.digest == "daily"
    for bad in ({"channels": ["sms"]}, {"channels": ["email"]}, {"email": "not an address"}, {"lang": "fr"},
                {"digest": "weekly"}, {"surprise": 1}, {"channels": "email"}, []):
        with pytest.raises(InvalidInput):
            Preferences.parse(bad)


def test_the_daily_digest_leaves_at_six_in_the_evening_community_time():
    assert next_digest_slot(T0) == datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
    assert next_digest_slot(datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)) == datetime(
        2026, 11, 27, 10, 0, tzinfo=timezone.utc)


# ---- planning and the inbox -----------------------------------------------------------------------
def test_a_new_proposal_reaches_the_residents_in_its_scope_and_the_author_hears_the_screening(rig):
    pid, _ = proposal(rig)
    rig.send()
    subjects = {p: [m["subject"] for m in rig.inbox(p)] for p in (WANG, LI, ZHANG, LIU, CHEN)}
    assert sorted(subjects[WANG]) == sorted([f"【新提议】{TITLE}", f"【提议已受理】{TITLE}"])
    for p in (LI, ZHANG, LIU):
        assert subjects[p] == [f"【新提议】{TITLE}"]
    assert subjects[CHEN] == []  # lives in another building
    body = rig.inbox(LI)[0]["body"]
    assert f"https://s.example/api/v1/communities/{COMMUNITY}/proposals/{pid}" in body
    assert "2026-12-26 09:00" in body  # the support deadline in community time
    assert rig.app.inbox(COMMUNITY, LI)["unread"] == 1


def test_the_author_and_current_supporters_hear_every_later_change(rig):
    pid, _ = proposal(rig)
    support(rig, pid, LI)
    support(rig, pid, ZHANG)
    support(rig, pid, LIU)
    support(rig, pid, LIU, "SupportWithdrawn")
    rig.event("proposals", "ProposalQualified", {"proposal": pid, "supports": 3, "threshold": 3}, pid, case=pid)
    rig.send()
    told = {p for p in (WANG, LI, ZHANG, LIU, CHEN)
            if any(m["type"] == "ProposalQualified" for m in rig.inbox(p))}
    assert told == {WANG, LI, ZHANG}
    body = next(m["body"] for m in rig.inbox(LI) if m["type"] == "ProposalQualified")
    assert "支持情况：3（门槛：3）" in body


def test_an_event_handled_twice_is_planned_once_and_unknown_types_are_ignored(rig):
    pid, events = proposal(rig)
    assert not rig.sink.handle("proposals", events["opened"])  # a redelivery: below the tracked position
    rig.event("proposals", "ProposalSomethingNew", {"x": 1}, pid, case=pid)
    rig.event("communities", "PersonRegistered", {"name_commitment": "0" * 64}, LI)
    rig.send()
    assert len(rig.log("NotificationPlanned")) == 5  # author's screening + four residents
    assert [len(rig.inbox(p)) for p in (WANG, LI, ZHANG, LIU)] == [2, 1, 1, 1]
    assert rig.send() == 0


def test_each_person_reads_in_their_language_and_marks_messages_read(rig):
    rig.app.set_preferences(COMMUNITY, LI, {"lang": "en"})
    proposal(rig)
    rig.send()
    [message] = rig.inbox(LI)
    assert message["subject"] == f"New proposal: {TITLE}" and "Hello," in message["body"]
    assert rig.app.mark_read(COMMUNITY, LI, message["id"]) == {"id": message["id"], "unread": 0}
    assert rig.inbox(LI)[0]["read_at"] == clock.format(T0)
    with pytest.raises(NotFound):  # not someone else's message
        rig.app.mark_read(COMMUNITY, ZHANG, message["id"])


def test_an_erased_title_is_never_sent(rig):
    proposal(rig)
    rig.texts.stores["proposals"].clear()  # the author was erased before the message went out
    rig.send()
    assert rig.inbox(LI)[0]["subject"] == "【新提议】（未提供）"
    assert all(TITLE not in m["body"] for m in rig.inbox(WANG))


# ---- e-mail: retries, final failure, digests ---------------------------------------------------------
def test_mail_goes_with_the_delivery_id_and_failures_are_retried_with_back_off_then_given_up(rig):
    rig.app.set_preferences(COMMUNITY, WANG, {"channels": ["email"], "email": "wang@example.org"})
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["email"], "email": "li@example.org"})
    rig.email.fail = DeliveryFailed(False, "SMTP connect: refused")
    proposal(rig)
    rig.send()
    rows = {r["recipient"]: r for r in rig.app.deliveries(COMMUNITY, status="planned") if r["channel"] == "email"}
    assert rows[LI]["attempts"] == 1 and rows[LI]["next_attempt_at"] == clock.format(T0 + timedelta(seconds=10))
    assert rig.send() == 0  # not due yet
    clock.advance(timedelta(seconds=10))
    rig.email.fail = None
    rig.app.set_preferences(COMMUNITY, WANG, {"channels": ["email"], "email": "wang@example.org"})
    assert rig.send() == 3
    mails = {m["to"]: m for m in rig.email.sent if m["to"] == "li@example.org"}
    delivered = rig.app.deliveries(COMMUNITY, recipient=LI, status="delivered")
    email_row = next(r for r in delivered if r["channel"] == "email")
    assert mails["li@example.org"]["id"] == email_row["id"] and email_row["attempts"] == 2
    # Now a server that keeps refusing: attempts run out (3), and the failure is recorded.
    rig.event("proposals", "ProposalWithdrawn", {}, rig.app.deliveries(COMMUNITY)[0]["case"],
              case=rig.app.deliveries(COMMUNITY)[0]["case"])
    rig.email.fail = DeliveryFailed(False, "SMTP send: 451 try later li@example.org")
    for _ in range(4):
        rig.send()
        clock.advance(timedelta(seconds=100))
    [failed] = rig.log("NotificationFailed")
    assert failed["data"]["reason"] == "attempts_exhausted" and failed["data"]["attempts"] == 3
    assert "example.org" not in envelope.canonical(failed).decode()  # the error stays out of the record
    assert rig.app.deliveries(COMMUNITY, status="failed")[0]["failure"] == "attempts_exhausted"


def test_a_permanent_refusal_fails_at_once(rig):
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["email"], "email": "li@example.org"})
    rig.email.fail = DeliveryFailed(True, "recipient li@example.org refused: 550", code=550)
    proposal(rig)
    rig.send()
    [failed] = rig.log("NotificationFailed")
    assert (failed["data"]["reason"], failed["data"]["code"], failed["data"]["attempts"]) == ("refused", 550, 1)


def test_a_worker_sends_failed_deliveries_again_and_the_record_keeps_failure_retry_and_delivery(rig):
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["email"], "email": "li@example.org"})
    rig.email.fail = DeliveryFailed(True, "recipient li@example.org refused: 550", code=550)
    proposal(rig)
    rig.send()
    [failed] = rig.app.deliveries(COMMUNITY, status="failed")
    [delivered] = [r for r in rig.app.deliveries(COMMUNITY, status="delivered") if r["channel"] == "inbox"][:1]
    # Only a failed delivery goes again; an unknown one is not found; nothing is recorded for either.
    before = len(rig.log())
    with pytest.raises(Conflict, match="only a failed delivery"):
        rig.app.retry_failed("worker-1", COMMUNITY, [delivered["id"]])
    with pytest.raises(NotFound):
        rig.app.retry_failed("worker-1", COMMUNITY, [uid()])
    with pytest.raises(NotFound):  # another community's delivery is not this community's to retry
        rig.app.retry_failed("worker-1", "c0000000-0000-4000-8000-000000000002", [failed["id"]])
    assert len(rig.log()) == before
    # The mail server takes it now: every failed delivery of the channel goes again, once.
    rig.email.fail = None
    assert rig.app.retry_failed("worker-1", COMMUNITY, channel="email") == {"retried": [failed["id"]], "count": 1}
    assert rig.app.retry_failed("worker-1", COMMUNITY, channel="email")["count"] == 0
    [row] = [r for r in rig.app.deliveries(COMMUNITY, recipient=LI) if r["id"] == failed["id"]]
    assert (row["status"], row["attempts"], row["failure"]) == ("planned", 0, None)
    assert rig.send() == 1
    assert [m["to"] for m in rig.email.sent] == ["li@example.org"] and rig.email.sent[0]["id"] == failed["id"]
    story = [(e["type"], e["actor"]) for e in rig.log("NotificationFailed", "NotificationRetried", "NotificationDelivered")
             if e["data"]["delivery"] == failed["id"]]
    assert story == [("NotificationFailed", "system"), ("NotificationRetried", "worker-1"),
                     ("NotificationDelivered", "system")]
    [retried] = rig.log("NotificationRetried")
    assert retried["causation"] == failed["about_event"] and retried["data"]["by"] == "worker-1"
    assert rig.app.deliveries(COMMUNITY, status="failed") == []


def test_a_daily_digest_collects_the_days_notices_in_one_mail(rig):
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["email"], "email": "li@example.org", "digest": "daily"})
    pid, _ = proposal(rig)
    support(rig, pid, LI)
    rig.event("proposals", "ProposalQualified", {"proposal": pid, "supports": 3, "threshold": 3}, pid, case=pid)
    rig.send()
    assert rig.email.sent == [] and len(rig.inbox(LI)) == 2  # the inbox does not wait
    clock.set(datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc))
    rig.send()
    [mail] = rig.email.sent
    assert mail["subject"] == "【每日汇总】社区议事平台通知（2 条）"
    assert f"【新提议】{TITLE}" in mail["body"] and f"【提议获得足够支持】{TITLE}" in mail["body"]
    digests = {e["data"]["digest"] for e in rig.log("NotificationDelivered") if e["data"]["channel"] == "email"}
    assert len(digests) == 1 and mail["id"] in digests


# ---- webhooks: signature, payload without personal data, pause -----------------------------------------
def test_webhook_payloads_carry_ids_and_links_unless_the_community_enables_texts(rig):
    plain = rig.app.add_webhook("worker", COMMUNITY, "http://127.0.0.1:9/hook", "s" * 32)
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["webhook"]})
    pid, events = proposal(rig)
    rig.send()
    [sent] = rig.webhook.sent
    payload = sent["payload"]
    assert payload["recipient"] == LI and payload["event"] == {"id": events["opened"]["id"],
                                                               "type": "ProposalCollectionOpened"}
    assert payload["link"].endswith(f"/proposals/{pid}") and "message" not in payload
    assert TITLE.encode() not in sent["body"]
    assert verify_webhook_signature(b"s" * 32, sent["headers"]["X-Consult-Signature"], sent["body"],
                                     now=T0.timestamp())
    assert sent["headers"]["X-Consult-Delivery"] == payload["delivery"]
    rig.app.remove_webhook("worker", COMMUNITY, plain["id"])
    rig.app.add_webhook("worker", COMMUNITY, "http://127.0.0.1:9/hook2", "t" * 32, include_personal_data=True)
    support(rig, pid, LI)
    rig.event("proposals", "ProposalWithdrawn", {}, pid, case=pid)
    rig.send()
    assert rig.webhook.sent[-1]["payload"]["message"]["subject"] == f"【提议已撤回】{TITLE}"


def test_an_endpoint_that_keeps_failing_is_paused_reported_and_resumed(rig):
    hook = rig.app.add_webhook("worker", COMMUNITY, "http://127.0.0.1:9/hook", "s" * 32)
    for p in (WANG, LI, ZHANG, LIU, CHEN):
        rig.app.set_preferences(COMMUNITY, p, {"channels": ["webhook"]})
    rig.webhook.fail = DeliveryFailed(False, "webhook answered HTTP 503")
    rig.directory.scopes[("building", B2)] = [WANG, LI, ZHANG, LIU, CHEN]
    proposal(rig)
    rig.send()
    [view] = rig.app.webhooks(COMMUNITY)
    assert view["paused"] and view["consecutive_failures"] == 5 and "503" in view["last_failure_reason"]
    assert rig.app.webhook_view(COMMUNITY, hook["id"])["pending"] == 6  # waiting, not failed
    clock.advance(timedelta(hours=2))
    rig.send()
    assert rig.app.webhooks(COMMUNITY)[0]["consecutive_failures"] == 5  # nothing tried while paused
    rig.webhook.fail = None
    assert not rig.app.resume_webhook("worker", COMMUNITY, hook["id"])["paused"]
    rig.send()
    assert len(rig.webhook.sent) == 6 and rig.app.webhook_view(COMMUNITY, hook["id"])["pending"] == 0
    assert rig.log("NotificationFailed") == []


# ---- deliberation ----------------------------------------------------------------------------------
def test_the_body_hears_the_opening_and_the_meeting_and_an_invitee_is_told_in_their_role(rig):
    pid, _ = proposal(rig)
    rig.send()
    cid = uid()
    body = [{"person": LEAD, "role": "convener", "scope": None, "source": "directory", "status": "active"},
            {"person": GRID, "role": "grid_leader", "scope": "c3", "source": "directory", "status": "active"}]
    rig.event("deliberation", "ConsultationOpened", {
        "community": COMMUNITY, "case": pid, "proposal": pid, "scope": "building", "scope_id": B2,
        "category": "drainage", "title_commitment": rig.texts.put("proposals", TITLE), "body": body,  # its store
        "convened_by": "proposal", "convener": LEAD}, cid, case=pid)
    rig.event("deliberation", "BodyMemberInvited", {"person": PROP, "role": "property_company"}, cid, case=pid)
    rig.event("deliberation", "MeetingScheduled", {
        "consultation": cid, "starts_at": "2026-12-01T11:00:00.000000Z", "mode": "on_site",
        "place_commitment": rig.texts.put("deliberation", "社区活动室"),
        "agenda_commitments": [rig.texts.put("deliberation", "维修方案"), rig.texts.put("deliberation", "费用")],
        "secretary": GRID, "notice_days": 3}, case=pid)
    rig.send()
    opened = next(m for m in rig.inbox(GRID) if m["type"] == "ConsultationOpened")
    assert opened["subject"] == f"【议事邀请】{TITLE}" and "您的身份：网格长" in opened["body"]
    assert "您的身份：物业" in rig.inbox(PROP)[0]["body"]
    meeting = next(m for m in rig.inbox(LEAD) if m["type"] == "MeetingScheduled")
    assert "时间：2026-12-01 19:00" in meeting["body"] and "地点：社区活动室" in meeting["body"]
    assert "议程：维修方案；费用" in meeting["body"]
    assert [m["type"] for m in rig.inbox(PROP)] == ["ConsultationOpened"]  # invited, not yet a member


# ---- decisions: the roll, the reminder, and the proof of notice ---------------------------------------
def open_ballot(rig, case, roll, closes_in=timedelta(days=3), voting_unit="owner"):
    bid = uid()
    rig.event("decisions", "BallotPrepared", {"title_commitment": rig.texts.put("decisions", "排水沟改造表决")},
              bid, case=case)
    opened = rig.event("decisions", "BallotOpened", {
        "roll": roll, "roll_hash": "0" * 64, "rule": {"preset": "owners_major"}, "options": [],
        "voting_unit": voting_unit, "opens_at": clock.format(clock.now()),
        "closes_at": clock.format(clock.now() + closes_in), "secret": True, "changeable": True}, bid, case=case)
    return bid, opened


def test_the_audit_record_proves_which_voters_were_told_of_the_opening_when_and_how(rig):
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["email"], "email": "li@example.org", "lang": "en"})
    case = uid()
    roll = [{"voter": WANG, "weight": "50", "headcount": 1, "units": ["u1"]},
            {"voter": LI, "weight": "70", "headcount": 1, "units": ["u2"]},
            {"voter": "developer", "weight": "120", "headcount": 1, "units": ["u9"]}]
    bid, opened = open_ballot(rig, case, roll)
    clock.advance(timedelta(minutes=5))
    rig.send()
    proof = [e for e in rig.log("NotificationDelivered") if e["data"]["about_event"] == opened["id"]]
    assert {(e["data"]["recipient"], e["data"]["channel"]) for e in proof} == {
        (WANG, "inbox"), (LI, "inbox"), (LI, "email")}  # the developer's unsold units tell nobody
    for e in proof:
        assert e["community"] == COMMUNITY and e["case"] == case and e["causation"] == opened["id"]
        assert e["occurred_at"] == clock.format(T0 + timedelta(minutes=5))
        assert e["data"]["about_type"] == "BallotOpened" and e["data"]["attempts"] == 1
        assert set(e["data"]) >= {"delivery", "recipient", "channel", "message_commitment"}
        # The record holds a commitment, never the text; the text and salt are kept to check it.
        record = rig.app.content.records([e["data"]["message_commitment"]])[0]
        assert envelope.check_commitment(record["commitment"], record["salt"], record["text"])
        assert record["text"] not in envelope.canonical(e).decode()
    mail = rig.email.sent[0]
    assert mail["subject"] == "Voting open: 排水沟改造表决" and "owners' decision (three quarters)" in mail["body"]


def test_voters_are_reminded_a_day_before_the_close_once_and_not_after_an_early_close(rig):
    case = uid()
    roll = [{"voter": WANG, "weight": "1", "headcount": 1, "units": []}]
    bid, _ = open_ballot(rig, case, roll)
    early, _ = open_ballot(rig, case, roll)
    short, _ = open_ballot(rig, case, roll, closes_in=timedelta(hours=20))  # open less than a day: no reminder
    rig.event("decisions", "BallotClosed", {"reason": "annulled", "closed_at": clock.format(clock.now())}, early,
              case=case)
    rig.send()
    clock.set(T0 + timedelta(days=2) - timedelta(seconds=1))
    assert rig.app.fire_reminders(rig.directory) == 0
    clock.set(T0 + timedelta(days=2))
    assert rig.app.fire_reminders(rig.directory) == 1
    assert rig.app.fire_reminders(rig.directory) == 0
    rig.send()
    reminders = [m for m in rig.inbox(WANG) if m["type"] == "BallotClosingSoon"]
    assert len(reminders) == 1 and "2026-11-29 09:00" in reminders[0]["body"]
    planned = [e for e in rig.log("NotificationPlanned") if e["data"]["notice_type"] == "BallotClosingSoon"]
    assert len(planned) == 1 and planned[0]["causation"] is not None


def test_household_ballots_tell_the_households_adults(rig):
    rig.directory.households = {WANG: "h-1", LI: "h-1", ZHANG: "h-2"}
    roll = [{"voter": "h-1", "weight": "1", "headcount": 1, "units": []}]
    open_ballot(rig, uid(), roll, voting_unit="household")
    rig.send()
    assert [len(rig.inbox(p)) for p in (WANG, LI, ZHANG)] == [1, 1, 0]


# ---- actions and the end of a case --------------------------------------------------------------------
def test_the_responsible_party_hears_of_its_task_and_when_it_falls_overdue(rig):
    case, plan, task = uid(), uid(), uid()
    due = clock.format(T0 + timedelta(days=7))
    rig.event("actions", "TaskAssigned", {
        "task": task, "title_commitment": rig.texts.put("actions", "清理下水道"), "due_at": due, "budget": None,
        "responsible_party": {"kind": "property_company", "person": PROP}, "funding_source": None}, plan, case=case)
    clock.set(T0 + timedelta(days=8))
    rig.event("actions", "TaskOverdue", {"task": task, "due_at": due, "percent": 40}, plan, case=case)
    rig.send()
    assigned, overdue = sorted(rig.inbox(PROP), key=lambda m: m["type"])
    assert assigned["subject"] == "【新任务】清理下水道" and "完成期限：2026-12-03 09:00" in assigned["body"]
    assert overdue["subject"] == "【任务已逾期】清理下水道" and "负责方：物业" in overdue["body"]


def test_a_party_without_a_person_is_told_through_its_role_holders(rig):
    rig.directory.roles = {"property_company": [PROP, CHEN], "community_worker": [LEAD]}
    plan = uid()
    for kind, task in (("property_company", uid()), ("contractor", uid())):
        rig.event("actions", "TaskAssigned", {"task": task, "title_commitment": None, "due_at": None,
                                              "responsible_party": {"kind": kind}}, plan, case=uid())
    rig.send()
    assert [len(rig.inbox(p)) for p in (PROP, CHEN, LEAD)] == [1, 1, 1]  # a contractor is followed up by workers


def test_when_a_case_ends_everyone_who_took_part_hears_the_outcome_with_its_reasons(rig):
    pid, _ = proposal(rig)
    support(rig, pid, LI)
    rig.event("deliberation", "ConsultationOpened", {
        "title_commitment": None, "body": [{"person": GRID, "role": "grid_leader", "status": "active"},
                                           {"person": CHEN, "role": "expert", "status": "declined"}]}, case=pid)
    open_ballot(rig, pid, [{"voter": ZHANG, "weight": "1", "headcount": 1, "units": []}])
    rig.event("actions", "TaskAssigned", {"task": uid(), "responsible_party": {"kind": "contractor", "person": PROP}},
              case=pid)
    rig.event("actions", "CaseClosed", {"case": pid, "outcome": "completed", "stage": "action", "plan": uid(),
                                        "reason_commitment": rig.texts.put("actions", "雨季未再积水"), "result": None},
              case=pid)
    rig.send()
    closed = {p: [m for m in rig.inbox(p) if m["type"] == "CaseClosed"] for p in (WANG, LI, GRID, ZHANG, PROP, CHEN,
                                                                                   LIU)}
    assert {p for p, ms in closed.items() if ms} == {WANG, LI, GRID, ZHANG, PROP}
    assert all(len(ms) <= 1 for ms in closed.values())
    body = closed[WANG][0]["body"]
    assert closed[WANG][0]["subject"] == f"【事项已办结】{TITLE}"
    assert "结果：已解决" in body and "理由：雨季未再积水" in body


def test_a_case_ended_at_screening_is_told_by_the_screening_alone(rig):
    pid, _ = proposal(rig)
    rig.event("actions", "CaseClosed", {"case": pid, "outcome": "inadmissible", "stage": "proposal", "plan": None,
                                        "reason_commitment": None, "result": None}, pid, case=pid)
    rig.send()
    assert [m["type"] for m in rig.inbox(WANG) if m["type"] == "CaseClosed"] == []


def test_endpoint_health_is_kept_between_passes(rig):
    hook = rig.app.add_webhook("worker", COMMUNITY, "http://127.0.0.1:9/hook", "s" * 32)
    h = EndpointHealth(5)
    h.record_failure("x", 1.0)
    rig.app.save_health(hook["id"], h)
    assert rig.app.webhooks(COMMUNITY)[0]["consecutive_failures"] == 1
    assert "secret" not in rig.app.webhooks(COMMUNITY)[0] and hook["secret"] == "s" * 32


def test_erasing_a_person_erases_their_messages_and_address_and_keeps_the_proof(rig):
    rig.app.set_preferences(COMMUNITY, LI, {"channels": ["email"], "email": "li@example.org"})
    proposal(rig)
    rig.send()
    before = rig.log()
    proof = [e for e in before if e["type"] == "NotificationDelivered" and e["data"]["recipient"] == LI]
    erased = rig.app.erase_person(COMMUNITY, LI, actor=LEAD)
    assert erased["erased_texts"] == len(proof) == 2
    assert rig.app.get_preferences(COMMUNITY, LI)["email"] is None
    assert rig.inbox(LI)[0]["subject"] is None and rig.inbox(WANG)[0]["subject"]  # others keep theirs
    record = rig.app.content.records([proof[0]["data"]["message_commitment"]])[0]
    # The record itself is untouched, and the erasure is added to it: who, whose, how many; no text.
    after = rig.log()
    assert record["erased"] and after[:len(before)] == before
    [erasure] = after[len(before):]
    assert (erasure["type"], erasure["actor"], erasure["community"], erasure["data"]) == (
        "PersonTextsErased", LEAD, COMMUNITY, {"person": LI, "texts": 2})


# ---- issue 13.2: the loop's new notices ------------------------------------------------------------
def notices_of(rig, person) -> list[str]:
    return sorted(i["type"] for i in rig.inbox(person))


def test_the_evaluation_is_told_to_everyone_asked_reminded_48h_before_to_who_has_not_rated(rig):
    plan = uid()
    rig.event("actions", "ActionPlanOpened", {"plan": plan, "case": plan, "title_commitment": rig.texts.put(
        "actions", TITLE), "scope": "building", "scope_id": B2}, plan, case=plan)
    closes = clock.format(clock.now() + timedelta(days=14))
    rig.event("actions", "EvaluationOpened", {"round": 1, "opens_at": clock.format(clock.now()), "closes_at": closes,
                                              "residents": [WANG, LI, ZHANG]}, plan, case=plan)
    rig.event("actions", "EvaluationGiven", {"plan": plan, "round": 1, "person": WANG, "rating": "satisfied",
                                             "comment_commitment": None}, uid(), case=plan)
    rig.send()
    assert [notices_of(rig, p) for p in (WANG, LI, ZHANG, LIU)] == [["EvaluationOpened"]] * 3 + [[]]
    body = rig.inbox(LI)[0]["body"]
    assert f"https://s.example/api/v1/communities/{COMMUNITY}/action-plans/{plan}" in body and TITLE in body

    clock.set(T0 + timedelta(days=12, seconds=1))  # 48 h before the close
    rig.app.fire_reminders(rig.directory)
    rig.app.fire_reminders(rig.directory)  # fired again: nothing twice
    rig.send()
    assert notices_of(rig, WANG) == ["EvaluationOpened"], "who rated is not reminded"
    assert notices_of(rig, LI) == notices_of(rig, ZHANG) == ["EvaluationClosingSoon", "EvaluationOpened"]

    rig.event("actions", "PlanReopened", {"round": 1}, plan, case=plan)
    rig.send()
    assert all("PlanReopened" in notices_of(rig, p) for p in (WANG, LI, ZHANG)) and notices_of(rig, LIU) == []


def test_an_extended_evaluation_moves_its_reminder_and_tells_those_responsible(rig):
    plan = uid()
    rig.directory.roles["community_worker"] = [LEAD, PROP]  # a worker who also holds the task: told once
    rig.event("actions", "ActionPlanOpened", {"plan": plan, "case": plan, "title_commitment": None}, plan, case=plan)
    rig.event("actions", "TaskAssigned", {"task": uid(), "title_commitment": None, "due_at": clock.format(T0),
                                          "responsible_party": {"kind": "property_company", "person": PROP}},
              plan, case=plan)
    first = clock.format(T0 + timedelta(days=3))
    rig.event("actions", "EvaluationOpened", {"round": 1, "opens_at": clock.format(T0), "closes_at": first,
                                              "residents": [WANG, LI]}, plan, case=plan)
    clock.set(T0 + timedelta(days=3, minutes=2))
    second = clock.format(T0 + timedelta(days=6, minutes=2))
    rig.event("actions", "EvaluationExtended", {"round": 1, "closes_at": second, "respondents": 0, "denominator": 2,
                                                "min_response_share": "1/3"}, plan, case=plan)
    rig.send()
    assert notices_of(rig, PROP) == ["EvaluationExtended", "TaskAssigned"]
    assert notices_of(rig, LEAD) == ["EvaluationExtended"]
    assert notices_of(rig, WANG) == ["EvaluationOpened"]
    clock.set(T0 + timedelta(days=4, minutes=3))
    rig.app.fire_reminders(rig.directory)
    rig.send()
    assert notices_of(rig, WANG) == ["EvaluationClosingSoon", "EvaluationOpened"], "one reminder, the new window's"


def test_objections_merges_meetings_and_minutes_reach_their_people(rig):
    pid, _ = proposal(rig)
    support(rig, pid, LI)
    other, _ = proposal(rig, author=ZHANG)
    rig.event("proposals", "ProposalMerged", {"into": other}, pid, case=pid)
    consultation = uid()
    rig.event("deliberation", "ConsultationOpened", {"title_commitment": None, "body": [
        {"person": LEAD, "role": "convener", "status": "active"}, {"person": GRID, "role": "grid_leader",
                                                                     "status": "active"}]}, consultation, case=pid)
    meeting = uid()
    rig.event("deliberation", "MeetingScheduled", {"consultation": consultation, "starts_at": clock.format(T0)},
              meeting, case=pid)
    rig.event("deliberation", "MeetingCancelled", {"reason_commitment": None}, meeting, case=pid)
    rig.event("deliberation", "MinutesRecorded", {"consultation": consultation, "meeting": meeting,
                                                  "signer_roles": ["convener", "grid_leader"]}, uid(), case=pid)
    ballot, objection = uid(), uid()
    lodged = rig.event("decisions", "ObjectionLodged", {"objection": objection, "text_commitment": None}, ballot,
                       case=pid)
    assert lodged["actor"] == "someone"
    rig.event("decisions", "ObjectionRuled", {"objection": objection, "upheld": False,
                                              "reason_commitment": rig.texts.put("decisions", "程序合规")},
              ballot, case=pid)
    rig.send()
    for who in (WANG, LI, ZHANG):
        assert "ProposalMerged" in notices_of(rig, who)
    merged = next(i for i in rig.inbox(LI) if i["type"] == "ProposalMerged")
    assert merged["body"].count(f"/proposals/{other}") == 1
    assert "ProposalMerged" not in notices_of(rig, LIU)
    assert notices_of(rig, LEAD) == notices_of(rig, GRID) == [
        "ConsultationOpened", "MeetingCancelled", "MeetingScheduled", "MinutesAwaitingSignature"]
    sign = next(i for i in rig.inbox(GRID) if i["type"] == "MinutesAwaitingSignature")
    assert "网格长" in sign["body"] and "/minutes/" in sign["body"]
    assert notices_of(rig, "someone") == ["ObjectionRuled"]
    ruled = rig.inbox("someone")[0]["body"]
    assert "异议不成立" in ruled and "程序合规" in ruled and f"/ballots/{ballot}" in ruled
