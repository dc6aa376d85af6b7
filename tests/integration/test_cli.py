"""The README's first command, `consult up --demo`, and the CLI's errors."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests

from services.communities.application import PLATFORM_LOG
from tests.harness import ROOT, Platform, wait_for

pytestmark = pytest.mark.integration


def test_consult_up_demo_runs_the_platform_and_prints_working_tokens():
    p = Platform("sqlite").setup()
    proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", "up", "--demo"], cwd=ROOT, env=p.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "consult: running." in line:
                break
        output = "".join(lines)
        assert "consult: running." in output, output
        demo = json.loads((p.dir / "data" / "demo.json").read_text(encoding="utf-8"))
        for role in ("party_lead", "community_worker", "grid_leader", "building_leader", "resident", "auditor"):
            assert demo["tokens"][role] in output
        # The web pages run too, and each demo role has a sign-in link that fills the sign-in form.
        web = f"http://127.0.0.1:{p.port('web')}"
        link = f"{web}/sign-in?token={demo['tokens']['resident']}"
        assert f"Web pages: {web}/" in output and link in output, output
        form = requests.get(link, timeout=30)
        assert form.status_code == 200 and f'value="{demo["tokens"]["resident"]}"' in form.text
        directory = requests.get(f"{p.url}/api/v1/communities/{demo['community']}/directory",
                                 headers={"Authorization": f"Bearer {demo['tokens']['resident']}"}, timeout=30)
        assert directory.status_code == 200
        body = directory.json()
        assert len(body["households"]) == 12
        areas = sorted(h["area"] for h in body["households"] if h["building"] == demo["buildings"]["2"])
        assert sum(int(a) for a in areas) == 870, "building 2 is the worked example"
        roles = {r["role"] for person in body["people"] for r in person["roles"]}
        assert {"party_lead", "community_worker", "grid_leader", "building_leader", "property_company",
                "owners_committee", "council_member", "expert", "moderator", "auditor", "resident"} <= roles
        assert any(not person["adult"] for person in body["people"])
        # Every token the demo printed was issued on the operator's path, and that is in the record.
        def issued():
            entries = requests.get(f"{p.url}/api/v1/communities/{demo['community']}/audit/entries?limit=1000",
                                   headers={"Authorization": f"Bearer {demo['tokens']['auditor']}"}, timeout=30)
            found = [e["envelope"] for e in entries.json()["entries"] if e["type"] == "TokenIssued"]
            return len(found) == 8 and found

        found = wait_for(issued, timeout=30, message="the demo's tokens in the audit log")
        assert {(e["actor"], e["data"]["via"]) for e in found} == {("demo", "operator")}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        p.teardown()
    assert proc.returncode == 0


def test_consult_up_says_in_one_line_when_rabbitmq_is_unreachable(tmp_path):
    env = {"CONSULT_AMQP_URI": "amqp://guest:guest@127.0.0.1:1/", "CONSULT_DATA_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "up"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 3
    errors = [line for line in out.stderr.splitlines() if line.startswith("consult:")]
    assert len(errors) == 1 and "RabbitMQ is not reachable" in errors[0] and "rabbitmq-server" in errors[0]
    assert "Traceback" not in out.stderr


def test_consult_up_names_the_service_that_could_not_start_and_why():
    """Port 8080 taken by another program is the commonest first-run failure: say which service,
    its error and where its log is, in one line, and leave no other service running."""
    import socket

    p = Platform("sqlite").setup()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", p.port("gateway")))
    squatter.listen()
    try:
        out = subprocess.run([sys.executable, "-m", "services.cli.main", "up"], cwd=ROOT, env=p.env,
                             capture_output=True, text=True, timeout=400)
        assert out.returncode != 0
        [line] = [x for x in out.stderr.splitlines() if x.startswith("consult:")]
        assert "the gateway service exited" in line and "Address already in use" in line, line
        assert str(p.dir / "data") in line and "gateway.log" in line
        assert "Traceback" not in out.stderr
        for service in ("communities", "audit", "notifications"):  # the others were stopped, not left behind
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{p.port(service)}/readyz", timeout=2)
    finally:
        squatter.close()
        p.teardown()


def test_directory_import_of_a_missing_file_is_a_plain_error(platform):
    out = platform.cli("directory", "import", "/nonexistent.csv", "--community", "x", check=False)
    assert out.returncode == 1 and out.stderr.strip() == "consult: no such file: /nonexistent.csv"


def test_an_invitation_signs_a_resident_in(platform):
    c = platform.new_community()
    base = f"/api/v1/communities/{c['id']}"
    inv = platform.api("POST", base + "/invitations", c["token"], {"roles": ["resident"]}, expect=201).json()
    signed = platform.api("POST", "/api/v1/sign-in", None, {"code": inv["code"], "name": "新居民"}, expect=201).json()
    me = platform.api("GET", "/api/v1/me", signed["token"], expect=200).json()
    assert me["community"] == c["id"] and {"role": "resident", "scope": None} in me["roles"]
    again = platform.api("POST", "/api/v1/sign-in", None, {"code": inv["code"], "name": "冒名"})
    assert again.status_code == 404 and again.headers["Content-Type"].startswith("application/problem+json")
    # A resident may read but not manage the directory.
    assert platform.api("POST", base + "/people", signed["token"], {"name": "x"}).status_code == 403


def test_an_operators_admin_token_is_recorded_in_the_platform_log(platform):
    out = platform.cli("admin-token", "--label", "night shift")
    token = out.stdout.strip()
    me = platform.api("GET", "/api/v1/me", token, expect=200).json()
    assert me["platform_admin"] is True

    def recorded():
        entries = platform.audit_entries(PLATFORM_LOG, token)
        return [e["envelope"] for e in entries if e["envelope"]["aggregate"]["id"] == me["token"]]

    [issued] = wait_for(recorded, timeout=30, message="the admin token in the platform's log")
    assert issued["type"] == "TokenIssued" and issued["actor"].startswith("operator:")
    assert issued["data"]["person"] == me["person"] and token not in json.dumps(issued)
    platform.api("DELETE", "/api/v1/me/token", token, expect=204)  # an administrator signs out too
    assert platform.api("GET", "/api/v1/me", token).status_code == 401
