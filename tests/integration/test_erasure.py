"""PIPL erasure everywhere at once, and the access right (issue 17.2), end to end on both backends.

A resident (李) who is on record in every stage: the drainage case of `audit_world` (李 commented
in the consultation, voted in the open ballot and in the secret one, evaluated the plan) and a
proposal of 李's own that the worker screened, with 李 and a neighbour (张) told by e-mail as well
as in the inbox. `GET …/me/data` gives 李 a copy of all of it. Then a community worker asks once
(`POST …/people/{person}/erasure`): the directory records the request, every service that holds
texts or contact data consumes it and records its own completion; the status endpoint and the CLI
show it. Delivered twice more to every consumer, every completion is still recorded once.
Afterwards no read, export or case file shows 李's name or texts (nor a neighbour's message that
quoted 李's title), the audit log kept every entry it had, `consult audit verify` passes and
reports the texts as erased, and later notices about 李's proposal leave its title out.
"""
from __future__ import annotations

import json
import re

import pytest
from kombu import Connection

from services.common.erasure import ERASING, erasure_id
from tests.conftest import BACKENDS
from tests.harness import running, wait_for
from tests.integration.audit_world import DrainageRecord, genesis_key
from tests.integration.test_notifications import Mailbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

LI_EMAIL, ZHANG_EMAIL = "li.resident@example.org", "zhang.resident@example.org"
LI_COMMENT = "排水管老化，建议整体更换。"  # 李's comment in the drainage consultation (audit_world)
LI_TITLE, LI_BODY = "二单元路灯坏了请维修", "晚上回家看不见台阶，老人摔过一次。"
REASON = "居民本人书面申请删除个人信息"
LI_STRINGS = ("李", LI_COMMENT, LI_TITLE, LI_BODY, LI_EMAIL)


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request):
    """A platform of this module's own, its notifications service mailing a local SMTP server."""
    mailbox = Mailbox()
    mailbox.controller.start()
    try:
        with running(request.param, CONSULT_SMTP_HOST="127.0.0.1", CONSULT_SMTP_PORT=str(mailbox.controller.port),
                     CONSULT_SMTP_FROM="社区议事平台 <noreply@s-community.example>",
                     CONSULT_NOTIFY_BACKOFF_BASE="0.2") as p:
            p.mailbox = mailbox
            yield p
    finally:
        mailbox.controller.stop()


class World(DrainageRecord):
    """The drainage record, with 李 and 张 also told by e-mail from the start."""

    def person(self, name: str, household: str | None = None, role: str | None = None,
               scope: str | None = None) -> None:
        super().person(name, household, role, scope)
        address = {"李": LI_EMAIL, "张": ZHANG_EMAIL}.get(name)
        if address:
            self.platform.rpc("notifications", "set_preferences", self.id, self.people[name],
                              {"channels": ["inbox", "email"], "email": address})

    def get(self, path: str, who: str = "worker"):
        return self.api("GET", path, who, expect=200)


def text_of(message) -> str:
    return f"{message['Subject']}\n{message.get_content()}"


def dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@pytest.fixture(scope="module")
def world(platform) -> World:
    w = World(platform).build()
    w.li = w.people["李"]
    w.li_proposal = w.api("POST", "/proposals", "李", {"title": LI_TITLE, "body": LI_BODY, "category": "drainage",
                                                       "scope": "building", "scope_id": w.building}, expect=201)["id"]
    w.api("POST", f"/proposals/{w.li_proposal}/submit", "李", expect=200)
    w.api("POST", f"/proposals/{w.li_proposal}/screen", "worker", {"admissible": True}, expect=200)
    wait_for(lambda: any(LI_TITLE in text_of(m) for m in platform.mailbox.to(ZHANG_EMAIL))
             and any(LI_TITLE in text_of(m) for m in platform.mailbox.to(LI_EMAIL)), timeout=60,
             message="李 and 张 e-mailed about 李's proposal")
    w.settle()
    return w


def reads(w: World) -> dict:
    """Every read a worker or a neighbour has of what 李 did."""
    out = {}
    for path in ("/directory", f"/people/{w.li}", "/proposals", f"/proposals/{w.li_proposal}",
                 f"/proposals/{w.proposal}", "/consultations", f"/consultations/{w.consultation}",
                 f"/consultations/{w.consultation}/comments", "/ballots", f"/ballots/{w.ballot}",
                 f"/ballots/{w.secret}", f"/ballots/{w.ballot}/board", f"/ballots/{w.secret}/board", "/action-plans",
                 f"/action-plans/{w.plan}", "/board", f"/cases/{w.proposal}", f"/cases/{w.li_proposal}",
                 "/notifications/deliveries"):
        out[path] = w.get(path)
    for who in ("张", "王"):
        out[f"inbox of {who}"] = w.get("/me/inbox?limit=200", who)
    return out


def audit_settled(w: World) -> list[dict]:
    w.settle()
    return w.platform.audit_entries(w.id, w.worker_token)


def test_my_data_is_a_copy_of_what_the_platform_holds_about_me(platform, world):
    w = world
    mine = w.get("/me/data", "李")
    assert mine["person"] == w.li and set(ERASING) <= set(mine)
    assert mine["communities"]["person"]["name"] == "李"
    assert [p["title"] for p in mine["proposals"]["proposals"]] == [LI_TITLE]
    assert w.proposal in {s["proposal"] for s in mine["proposals"]["supports"]}
    assert [c["text"] for c in mine["deliberation"]["comments"]] == [LI_COMMENT]
    # Both ballots, each with 李's own choice (on the secret one with the salts of its seals), and
    # nobody else's vote.
    votes = {v["ballot"]: v for v in mine["decisions"]["votes"]}
    assert set(votes) == {w.ballot, w.secret}
    assert votes[w.ballot]["choice"] == "agree" and votes[w.secret]["choice"] == "agree"
    assert "seals" in votes[w.secret] and "seals" not in votes[w.ballot]
    assert [(e["plan"], e["rating"]) for e in mine["actions"]["evaluations"]] == [(w.plan, "satisfied")]
    assert mine["notifications"]["preferences"]["email"] == LI_EMAIL
    assert any(LI_TITLE in (m["subject"] or "") for m in mine["notifications"]["messages"])
    # Another resident's copy holds their own, not 李's.
    theirs = w.get("/me/data", "张")
    assert theirs["communities"]["person"]["name"] == "张" and theirs["deliberation"]["comments"] == []
    assert LI_EMAIL not in dump(theirs) and LI_COMMENT not in dump(theirs)


def without_names(value):
    """A read without its display names (`…_name`: looked up in the directory at answer time, so an
    erased person's become null), to compare everything else before and after."""
    if isinstance(value, dict):
        return {k: without_names(v) for k, v in value.items() if not k.endswith("_name")}
    if isinstance(value, list):
        return [without_names(v) for v in value]
    return value


def test_one_request_erases_everywhere_once_and_the_record_keeps_every_hash(platform, world):
    w = world
    before = {"reads": reads(w), "audit": audit_settled(w), "mine": w.get("/me/data", "李")}
    # Everything shows 李's words now (the check below could fail).
    shown = dump(before["reads"])
    assert all(s in shown for s in (LI_COMMENT, LI_TITLE, LI_BODY)), "李's texts are on show before"
    assert any(LI_TITLE in (m["subject"] or "") for m in before["reads"]["inbox of 张"]["items"])

    # A resident cannot ask; a worker must give a reason.
    refused = platform.api("POST", f"{w.base}/people/{w.li}/erasure", w.tokens["张"], {"reason": REASON})
    assert refused.status_code == 403
    assert platform.api("POST", f"{w.base}/people/{w.li}/erasure", w.worker_token, {}).status_code in (400, 422)

    asked = platform.api("POST", f"{w.base}/people/{w.li}/erasure", w.worker_token, {"reason": REASON}, expect=202).json()
    request = asked["id"]
    assert asked["reason"] == REASON and asked["requested_by"] == w.worker
    assert asked["services"]["communities"]["done"] is True and set(asked["services"]) == set(ERASING)

    def complete():
        status = w.get(f"/people/{w.li}/erasure")
        return status if status["requests"] and status["requests"][0]["complete"] else None

    status = wait_for(complete, timeout=60, message="every service to complete the erasure")
    assert [r["id"] for r in status["requests"]] == [request]
    assert all(status["requests"][0]["services"][s]["done"] for s in ERASING)
    cli = platform.cli("directory", "erasure", w.li, "--community", w.id)
    assert "complete" in cli.stdout and all(re.search(rf"{s}\s+done", cli.stdout) for s in ERASING), cli.stdout

    # The request delivered twice more to every consumer: ignored as duplicates, nothing recorded twice.
    envelope = next(e for e in platform.rpc("communities", "read_log", 1, 100000)
                    if e["type"] == "PersonErasureRequested" and e["aggregate"]["id"] == request)
    consumers = [s for s in ERASING if s != "communities"]

    def duplicates(service: str) -> float:
        found = re.search(rf'^consult_events_duplicate_total\{{consumer="{service}",source="communities"\}} (\S+)$',
                          platform.metrics(service), re.M)
        return float(found.group(1)) if found else 0.0

    seen = {s: duplicates(s) for s in consumers}
    with Connection(platform.env["CONSULT_AMQP_URI"]) as conn:
        producer = conn.Producer()
        for service in consumers:
            for _ in range(2):
                producer.publish(json.dumps(envelope).encode(), exchange="",
                                 routing_key=f"{platform.prefix}.{service}.communities",
                                 content_type="application/json", delivery_mode=2, message_id=envelope["id"])
    for service in consumers:
        wait_for(lambda s=service: duplicates(s) >= seen[s] + 2, timeout=30, message=f"{service} to see it twice more")

    # The audit log: every entry it had, unchanged; the request and one completion per service.
    after = audit_settled(w)
    assert after[:len(before["audit"])] == before["audit"], "every entry, hash and count stays"
    added = after[len(before["audit"]):]
    assert sorted((e["type"], e["source"]) for e in added) == sorted(
        [("PersonErasureRequested", "communities")] + [("PersonTextsErased", s) for s in ERASING])
    for e in added:
        if e["type"] == "PersonTextsErased":
            assert e["envelope"]["aggregate"]["id"] == str(erasure_id(e["source"], request))
            assert e["envelope"]["data"]["person"] == w.li and e["envelope"]["actor"] == w.worker
    assert not any(s in dump(added) for s in LI_STRINGS)

    # No read shows 李's name or texts; everything else (counts, votes, tallies) is as it was.
    now = reads(w)
    shown = dump(now)
    assert not [s for s in LI_STRINGS if s in shown], [s for s in LI_STRINGS if s in shown]
    assert w.get(f"/people/{w.li}")["name"] is None
    li_view, was = now[f"/proposals/{w.li_proposal}"], before["reads"][f"/proposals/{w.li_proposal}"]
    assert (li_view["title"], li_view["body"]) == (None, None)
    assert li_view["author_name"] is None and was["author_name"] is not None  # names follow the erasure
    assert without_names({k: v for k, v in li_view.items() if k not in ("title", "body")}) == \
        without_names({k: v for k, v in was.items() if k not in ("title", "body")})
    for ballot in (w.ballot, w.secret):
        assert now[f"/ballots/{ballot}/board"] == before["reads"][f"/ballots/{ballot}/board"]
    # 张's message that quoted 李's title is erased too; the proof of notice keeps its commitment.
    quoted = [m for m in before["reads"]["inbox of 张"]["items"] if LI_TITLE in (m["subject"] or "")]
    still = {m["id"]: m for m in now["inbox of 张"]["items"]}
    assert quoted and all(still[m["id"]]["subject"] is None and still[m["id"]]["message_commitment"]
                          == m["message_commitment"] for m in quoted)

    # 李's own copy now holds no text of theirs, and no address.
    mine = dump(w.get("/me/data", "李"))
    assert not [s for s in LI_STRINGS if s in mine]

    # The export: texts reported as erased, no text of 李's in it, and the offline verification passes.
    export, key = platform.dir / f"erasure-{w.id[:8]}.jsonl", platform.dir / f"erasure-{w.id[:8]}.pem"
    key.write_text(genesis_key(platform))
    platform.cli("audit", "export", "--community", w.id, "--out", str(export), "--cut")
    assert not [s for s in LI_STRINGS if s in export.read_text(encoding="utf-8")]
    out = platform.cli("audit", "verify", str(export), "--public-key", str(key), "--json", check=False)
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["ok"], report.get("first_error")
    erased = {t["commitment"] for t in map(json.loads, export.read_text(encoding="utf-8").splitlines())
              if t.get("kind") == "text" and t.get("erased")}
    li_comments = {c["text_commitment"] for c in before["mine"]["deliberation"]["comments"]}
    assert li_comments and li_comments <= erased and report["erased"] == len(erased)

    # Later notices about 李's proposal leave its title out (the message is rendered at send time).
    mails = len(platform.mailbox.to(ZHANG_EMAIL))
    for name in ("王", "张", "刘"):
        w.api("POST", f"/proposals/{w.li_proposal}/supports", name, expect=201)
    later = wait_for(lambda: platform.mailbox.to(ZHANG_EMAIL)[mails:], timeout=60,
                     message="张 told that 李's proposal qualified")
    assert not [m for m in later if LI_TITLE in text_of(m)]
    assert not [s for s in LI_STRINGS if s in dump(w.get("/me/inbox?limit=200", "张"))]
