"""A training deployment (`consult up --training`): a worker tries a whole case in an afternoon.

The drainage case of DOMAIN.md runs end to end over HTTP — a resident's proposal, supports,
screening and qualification, the consultation and its meeting, an owners' ballot with its 15 days'
notice, the publicity period, the action plan, the result disclosed, the residents' evaluation,
the case closed — with every waiting period passed by the training clock (a day a real second
here), never by the test clock, and every answer, message, notice and export of the deployment
marked training. Its export is refused by `consult audit verify` as a production record. A store
keeps its kind: a training store refuses to start as production, and a production one as training.
"""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from services.audit import checkpoints as cp
from services.common import clock
from tests.conftest import BACKENDS
from tests.harness import ROOT, Platform, running, wait_for
from tests.integration.test_actions_decisions import Building2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SPEED = 86400  # a training day per real second: the case's 45-odd days of waiting take under a minute
HEADER = "Consult-Deployment"
VOTES = {"Wang": "agree", "Li": "agree", "Zhang": "agree", "Liu": "agree", "Zhou": "agree", "Chen": "disagree",
         "Zhao": "abstain"}


@pytest.fixture(scope="module", params=BACKENDS)
def training(request):
    with running(request.param, CONSULT_DEPLOYMENT="training", CONSULT_TRAINING_CLOCK_SPEED=str(SPEED)) as p:
        yield p


class Drainage(Building2):
    """Building 2 of compound 3, as DOMAIN.md's worked example, with the 1+2 of the body: the
    party-committee lead convenes, Wang is the compound's grid leader, Li the building's leader;
    the community worker takes the minutes; the property company does the work."""

    def __init__(self, platform):
        super().__init__(platform)
        for name, role, scope in (("Wang", "grid_leader", self.compound), ("Li", "building_leader", self.building)):
            self.api("POST", f"/people/{self.people[name]}/roles", "worker", {"role": role, "scope": scope}, 201)

    def api(self, method: str, path: str, who: str, body=None, expect: int | None = None):
        resp = self.platform.api(method, self.base + path, self.tokens[who], body, expect=expect)
        assert resp.headers[HEADER] == "training", (path, resp.headers)
        return resp

    def now(self) -> datetime:
        """The platform's clock, as pages and clients read it."""
        return clock.parse(self.platform.api("GET", "/api/v1/deployment", expect=200).json()["now"])

    def wait_until(self, instant: datetime) -> None:
        wait_for(lambda: self.now() >= instant, timeout=60, interval=0.05, message=f"training time {instant}")


# On the first backend only (SQLite by default): the training clock is the platform's, whatever
# its store (~45 s of waiting it cannot shorten, which a second backend doubled); a training store
# on PostgreSQL is checked by the two refusals below.
@pytest.mark.parametrize("training", BACKENDS[:1], indirect=True)
def test_the_drainage_case_runs_end_to_end_on_the_training_clock(training, tmp_path):
    started = time.monotonic()
    deployment = training.api("GET", "/api/v1/deployment", expect=200)
    info = deployment.json()
    assert deployment.headers[HEADER] == "training"
    assert (info["mode"], info["clock_speed"]) == ("training", SPEED)
    assert info["notice"]["zh-CN"].startswith("培训部署") and info["training_since"]
    w = Drainage(training)
    t0 = w.now()

    # 1 提议: Zhang proposes; the worker screens it; three neighbours support; it qualifies.
    pid = w.api("POST", "/proposals", "Zhang", {
        "title": "疏通2栋排水管", "body": "每逢雨季院坝积水，一楼进水", "category": "drainage", "scope": "building",
        "scope_id": w.building}, 201).json()["id"]
    w.api("POST", f"/proposals/{pid}/submit", "Zhang", None, 200)
    assert w.api("POST", f"/proposals/{pid}/screen", "worker", {"admissible": True}, 200).json()["status"] == \
        "collecting"
    for name in ("Chen", "Liu", "Zhao"):
        w.api("POST", f"/proposals/{pid}/supports", name, None, 201)

    # 2 议事: the consultation opens by itself; a meeting on three days' notice, held, minuted, concluded.
    consultation = wait_for(lambda: next((c for c in w.api("GET", "/consultations", "Zhang", None, 200).json()
                                          if c["proposal"] == pid), None), timeout=30, message="the consultation")
    path = f"/consultations/{consultation['id']}"
    w.api("POST", path + "/comments", "Chen", {"text": "一楼每次下雨都进水", "stance": "for"}, 201)
    option = w.api("POST", path + "/options", "Li", {"title": "动用维修资金疏通排水管",
                                                     "description": "物业清淤并更换破损管道"}, 201).json()["id"]
    w.api("POST", path + "/final-options", "Lead", {"options": [option]}, 200)
    # The rule's three days, and a margin of 8 real seconds (8 training days): between reading the
    # clock and the service checking the notice, a loaded machine has taken over 2 s (CI, 2026-12-03).
    starts = w.now() + timedelta(days=3 + 8)
    meeting = w.api("POST", path + "/meetings", "Lead", {
        "starts_at": clock.format(starts), "mode": "on_site", "place": "社区活动室", "agenda": ["排水方案"],
        "secretary": w.people["worker"]}, 201).json()["id"]
    w.wait_until(starts)
    for name in ("Lead", "Wang", "Li"):
        w.api("POST", f"/meetings/{meeting}/attendance", name, {}, 201)
    w.api("POST", f"/meetings/{meeting}/opening", "Lead", None, 200)
    minutes = w.api("POST", f"/meetings/{meeting}/minutes", "worker", {"text": "动用维修资金疏通排水管，交业主表决"},
                    201).json()["id"]
    for name in ("Lead", "Wang"):
        w.api("POST", f"/minutes/{minutes}/signatures", name, None, 201)
    w.api("POST", f"/meetings/{meeting}/closing", "worker", None, 200)
    w.api("POST", path + "/conclusion", "Lead", {"outcome": "vote_needed", "summary": "交由业主表决",
                                                  "meeting": meeting, "suggested_rule": "owners_ordinary"}, 200)

    # 3 决策: the prepared ballot, configured on the owners' 15 days' notice; the worked example's votes.
    ballot = wait_for(lambda: next((b["id"] for b in w.api("GET", "/ballots", "worker", None, 200).json()
                                    if b["case"] == pid), None), timeout=30, message="the prepared ballot")
    opens = w.now() + timedelta(days=15 + 8)  # the notice, and the same margin
    w.api("PUT", f"/ballots/{ballot}/configuration", "worker", {
        "preset": "owners_ordinary", "voting_unit": "owner", "opens_at": clock.format(opens),
        "closes_at": clock.format(opens + timedelta(days=7))}, 200)

    def status(*wanted):
        return wait_for(lambda: (v := w.api("GET", f"/ballots/{ballot}", "worker", None, 200).json())["status"]
                        in wanted and v, timeout=60, interval=0.05, message=f"the ballot {' or '.join(wanted)}")

    status("open")
    for name, choice in VOTES.items():
        w.api("POST", f"/ballots/{ballot}/votes", name, {"choice": choice}, 201)
    final = status("final")  # closed at its time, adopted, then past the 7 days of publicity
    assert final["outcome"] == "adopted"

    # 4 行动: the plan of the case, the work, the result disclosed, the residents' evaluation.
    plan = wait_for(lambda: next((p["plan"] for p in w.api("GET", "/action-plans", "worker", None, 200).json()
                                  if p["case"] == pid), None), timeout=30, message="the action plan")
    task = w.api("POST", f"/action-plans/{plan}/tasks", "worker", {
        "title": "疏通排水管", "responsible_party": {"kind": "property_company"},
        "due_at": clock.format(w.now() + timedelta(days=30)), "budget": "12800.00",
        "funding_source": "maintenance_fund"}, 201).json()["task"]
    w.api("POST", f"/action-plans/{plan}/tasks/{task}/progress", "Property", {"percent": 100, "note": "已疏通"}, 201)
    view = w.api("POST", f"/action-plans/{plan}/done", "worker", {"summary": "排水管已疏通，雨后无积水"}, 200).json()
    assert view["status"] == "evaluating" and view["result"] == "排水管已疏通，雨后无积水"
    for name, rating in (("Wang", "satisfied"), ("Li", "satisfied"), ("Chen", "unsatisfied"),
                         ("Zhao", "basically_satisfied")):
        w.api("POST", f"/action-plans/{plan}/evaluations", name, {"rating": rating}, 201)
    closed = wait_for(lambda: next((e["envelope"] for e in w.audited(pid) if e["type"] == "CaseClosed"), None),
                      timeout=60, message="CaseClosed in the audit log")
    assert closed["data"]["outcome"] == "completed"
    elapsed = time.monotonic() - started

    # The whole case, in the record: four stages, and the training clock did the waiting.
    file = w.api("GET", f"/cases/{pid}", "Zhang", None, 200).json()
    assert file["status"] == "closed" and file["stages"] == ["proposal", "deliberation", "decision", "action"]
    types = [i["type"] for i in file["items"]]
    for expected in ("ProposalSubmitted", "ProposalQualified", "ConsultationOpened", "MeetingOpened",
                     "DeliberationConcluded", "BallotOpened", "ResolutionAdopted", "ResolutionFinal",
                     "ActionPlanOpened", "ResultDisclosed", "EvaluationClosed", "CaseClosed"):
        assert expected in types, expected
    times = [clock.parse(i["occurred_at"]) for i in file["items"]]
    assert times == sorted(times), "every service stamps its events on the one training clock"
    assert clock.parse(closed["occurred_at"]) - t0 > timedelta(days=45), "notice, voting, publicity, evaluation"
    assert elapsed < 300, f"the case took {elapsed:.0f} s of wall time"
    assert not training.clock_file.exists(), "the test clock was never touched"

    # Tokens last as long as the deployment: issued for 30 days, still good some 50 training days on.
    me = training.api("GET", "/api/v1/me", w.tokens["Zhang"], expect=200)
    assert me.json()["expires_at"] is None and me.headers[HEADER] == "training"

    # Every message says it comes from a training deployment.
    inbox = wait_for(lambda: (r := w.api("GET", "/me/inbox", "Zhang", None, 200).json())["items"] and r, timeout=30,
                     message="Zhang's messages")["items"]
    assert {m["type"] for m in inbox} and all(m["subject"].startswith("【培训】") for m in inbox), inbox
    assert all(m["body"].startswith("【培训演练】本消息来自培训部署") for m in inbox)

    # The notice board (公示) and the checkpoints say so; so does a problem answer.
    notice = w.api("GET", "/audit/notice?lang=zh-CN", "worker", None, 200).json()
    assert notice["text"].startswith("【培训】本公告来自培训部署") and notice["checkpoint"]["mode"] == "training"
    assert w.api("GET", f"/ballots/{ballot}/votes", "worker").status_code == 405
    assert training.api("GET", "/api/openapi.json", expect=200).headers[HEADER] == "training"

    # The export: made and marked training; refused as a production record, verified as a training one.
    export = tmp_path / "training.jsonl"
    made = training.cli("audit", "export", "--community", w.id, "--out", str(export), "--cut")
    assert "TRAINING: this export comes from a training deployment" in made.stdout
    keys = training.api("GET", "/api/v1/audit/public-keys", expect=200).json()
    assert keys["mode"] == "training"
    training_key = tmp_path / "training.pem"
    training_key.write_text(next(k["pem"] for k in keys["keys"] if k["key_id"] == keys["current"]))
    production_key = tmp_path / "production.pem"
    production_key.write_text(cp.public_key_pem(cp.generate_key_file(tmp_path / "production.key")))
    for key in (production_key, training_key):
        refused = verify(export, key)
        assert refused.returncode == 1, refused.stdout
        assert refused.stdout.splitlines()[0] == (
            'FAILED: header line 1: this export header comes from a training deployment ("mode": "training"): a '
            "training record never verifies as a production one (to check it as the training record it is: "
            "--training, with the training deployment's public key)")
    verified = verify(export, training_key, "--training")
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.startswith("OK: a TRAINING record")
    assert verify(export, production_key, "--training").returncode == 1, "and only with the training key"


def verify(export, key, *flags) -> subprocess.CompletedProcess:
    """`consult audit verify` as an auditor runs it: offline, trusting only the file and the key."""
    return subprocess.run([sys.executable, "-m", "services.audit.cli", "audit", "verify", str(export),
                           "--public-key", str(key), *flags], cwd=ROOT, capture_output=True, text=True, timeout=120)


def exits_refusing(p: Platform, service: str, mode: str) -> str:
    """Start `service` of `p` as a `mode` deployment; it must exit; the line it said why."""
    p.env["CONSULT_DEPLOYMENT"] = mode
    if mode == "production":
        p.env.pop("CONSULT_TRAINING_CLOCK_SPEED", None)
    log = p.dir / f"{service}.log"
    seen = log.stat().st_size if log.exists() else 0
    p.start(service, wait=False)
    proc = p.procs[service]
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{service} started as {mode} on a store of the other kind")
    assert proc.returncode != 0
    said = log.read_bytes()[seen:].decode(errors="replace")
    return next(line for line in reversed(said.splitlines()) if "DeploymentRefused" in line)


def test_a_training_store_refuses_to_start_as_production(training):
    training.stop("communities")
    said = exits_refusing(training, "communities", "production")
    assert "the communities store belongs to a training deployment" in said
    assert "refuses to start as production" in said


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_production_store_refuses_to_start_as_training(backend):
    p = Platform(backend, ["communities"]).setup()
    try:
        p.start()
        p.stop()
        said = exits_refusing(p, "communities", "training")
        assert "the communities store belongs to a production deployment" in said
        assert "refuses to start as training" in said
        assert not (p.dir / "data" / clock.TRAINING_CLOCK_FILE).exists(), "refused before starting a clock"
    finally:
        p.teardown()
