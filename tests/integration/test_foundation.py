"""The foundation end to end: gateway -> directory -> outbox relay -> RabbitMQ -> audit log."""
from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from tests.harness import PG_URL, wait_for

pytestmark = pytest.mark.integration


def test_resident_reaches_the_audit_log_exactly_once(platform):
    c = platform.new_community("S社区")
    # The community, its worker, the worker's role and the worker's token (TokenIssued) first.
    before = wait_for(lambda: len(platform.audit_entries(c["id"], c["token"])) >= 4 and 4,
                      message="the set-up in the audit log")
    r = platform.api("POST", f"/api/v1/communities/{c['id']}/people", c["token"],
                     {"name": "王芳", "adult": True}, expect=201)
    person = r.json()["id"]

    def registered():
        entries = platform.audit_entries(c["id"], c["token"])
        return [e for e in entries if e["type"] == "PersonRegistered" and e["envelope"]["aggregate"]["id"] == person]

    found = wait_for(registered, timeout=10, message="the resident in the audit log")
    assert len(found) == 1
    entries = platform.audit_entries(c["id"], c["token"])
    assert len(entries) == before + 1
    assert [e["index"] for e in entries] == list(range(len(entries)))
    env = found[0]["envelope"]
    assert env["schema"] == "consult.event/1" and env["source"] == "communities"
    assert env["actor"] == c["worker"] and env["community"] == c["id"]
    assert "王芳" not in found[0]["canonical"], "names never enter the record, only their commitment"
    assert re.fullmatch(r"[0-9a-f]{64}", env["data"]["name_commitment"])
    # The read joins the name back in from the erasable store.
    got = platform.api("GET", f"/api/v1/communities/{c['id']}/people/{person}", c["token"], expect=200).json()
    assert got["name"] == "王芳"
    if platform.backend == "postgres":
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(
                f'SELECT count(*) FROM "{platform.prefix}_audit_state".audit_entries WHERE event_id = %s',
                (env["id"],)).fetchone()[0]
            events = conn.execute(
                f'SELECT count(*) FROM "{platform.prefix}_communities_events".communities_events '
                "WHERE originator_id = %s", (person,)).fetchone()[0]
        assert rows == 1 and events == 1


def test_directory_answers_who_owned_what_with_which_area_on_a_date(platform):
    c = platform.new_community()
    cid, tok = c["id"], c["token"]
    base = f"/api/v1/communities/{cid}"
    compound = platform.api("POST", base + "/compounds", tok, {"name": "3号院坝"}, expect=201).json()["id"]
    building = platform.api("POST", base + "/buildings", tok, {"compound": compound, "name": "2栋"},
                            expect=201).json()["id"]
    wang = platform.api("POST", base + "/people", tok, {"name": "王", "effective": "2020-01-01"}, expect=201).json()["id"]
    li = platform.api("POST", base + "/people", tok, {"name": "李", "effective": "2020-01-01"}, expect=201).json()["id"]
    unsold = platform.api("POST", base + "/households", tok, {
        "building": building, "unit": "502", "area": "120", "developer_unsold": True, "effective": "2020-01-01"},
        expect=201).json()["id"]
    h = platform.api("POST", base + "/households", tok, {
        "building": building, "unit": "101", "area": "50", "owners": [wang], "effective": "2020-01-01"},
        expect=201).json()["id"]
    platform.api("POST", base + f"/households/{h}/area-corrections", tok,
                 {"area": "52.5", "reason": "resurveyed 2023", "effective": "2023-06-01"}, expect=201)
    platform.api("POST", base + f"/households/{h}/transfers", tok, {"owners": [li], "effective": "2024-03-01"},
                 expect=201)
    platform.api("POST", base + f"/people/{wang}/moves", tok, {"household": h, "effective": "2020-01-01"}, expect=201)
    platform.api("POST", base + f"/people/{wang}/roles", tok,
                 {"role": "grid_leader", "scope": compound, "effective": "2021-01-01"}, expect=201)
    platform.api("POST", base + f"/people/{wang}/role-revocations", tok,
                 {"role": "grid_leader", "scope": compound, "effective": "2025-01-01"}, expect=201)

    def at(day):
        return platform.api("GET", base + f"/households/{h}?at={day}", tok, expect=200).json()

    assert at("2022-01-01")["area"] == "50" and at("2022-01-01")["owners"] == [wang]
    assert at("2023-07-01")["area"] == "52.5" and at("2023-07-01")["owners"] == [wang]
    assert at("2024-06-01")["owners"] == [li]
    assert at("2024-06-01")["area_history"][-1]["reason"] == "resurveyed 2023"
    person = platform.api("GET", base + f"/people/{wang}?at=2022-01-01", tok, expect=200).json()
    assert person["roles"] == [{"role": "grid_leader", "scope": compound}] and person["household"] == h
    assert platform.api("GET", base + f"/people/{wang}?at=2025-06-01", tok, expect=200).json()["roles"] == []
    directory = platform.api("GET", base + "/directory?at=2022-01-01", tok, expect=200).json()
    units = {x["unit"]: x for x in directory["households"]}
    assert units["502"]["developer_unsold"] is True and units["502"]["owners"] == []
    assert unsold == units["502"]["id"]


def test_every_community_path_refuses_another_communitys_token(platform):
    """Cases generated from the OpenAPI document: every path naming a community."""
    a, b = platform.new_community("A"), platform.new_community("B")
    doc = platform.api("GET", "/api/openapi.json", expect=200).json()
    checked = 0
    for path, ops in doc["paths"].items():
        if "{community}" not in path:
            continue
        for method in ops:
            concrete = path.replace("{community}", a["id"])
            concrete = re.sub(r"{\w+}", str(uuid.uuid4()), concrete)
            body = "{}" if method in ("post", "put", "patch") else None
            headers = {"Content-Type": ops[method].get("requestBody", {}).get("content", {"application/json": 0})
                       and next(iter(ops[method].get("requestBody", {}).get("content", {"application/json": 0})))}
            resp = platform.api(method.upper(), concrete, b["token"], data=body, headers=headers)
            assert resp.status_code in (403, 404), f"{method} {path}: {resp.status_code} {resp.text[:300]}"
            assert resp.headers["Content-Type"].startswith("application/problem+json")
            checked += 1
    assert checked >= 15
    # And the same token is fine at home.
    platform.api("GET", f"/api/v1/communities/{b['id']}/directory", b["token"], expect=200)


def _heads(platform, c):
    return (platform.rpc("communities", "log_head"), len(platform.audit_entries(c["id"], c["token"])))


def test_bad_input_gets_a_problem_and_records_nothing(platform):
    c = platform.new_community()
    base = f"/api/v1/communities/{c['id']}"
    compound = platform.api("POST", base + "/compounds", c["token"], {"name": "院坝"}, expect=201).json()["id"]
    building = platform.api("POST", base + "/buildings", c["token"], {"compound": compound, "name": "1栋"},
                            expect=201).json()["id"]
    wait_for(lambda: len(platform.audit_entries(c["id"], c["token"])) >= 6, message="setup in the audit log")
    before = _heads(platform, c)
    cases = [
        ("POST", "/people", {}, 422),  # missing name
        ("POST", "/people", {"name": ""}, 422),
        ("POST", "/people", {"name": 42}, 422),
        ("POST", "/people", {"name": "x" * 101}, 422),
        ("POST", "/people", {"name": "ok", "adult": "yes"}, 422),
        ("POST", "/people", {"name": "ok", "surprise": 1}, 422),
        ("POST", "/households", {"building": building, "unit": "1", "area": 75.5, "owners": []}, 422),
        ("POST", "/households", {"building": building, "unit": "1", "area": "-3", "developer_unsold": True}, 422),
        ("POST", "/households", {"building": building, "unit": "1", "area": "abc", "developer_unsold": True}, 422),
        ("POST", "/households", {"building": str(uuid.uuid4()), "unit": "1", "area": "50",
                                 "developer_unsold": True}, 404),
        ("POST", "/households", {"building": building, "unit": "1", "area": "50", "owners": [str(uuid.uuid4())]},
         404),
        ("POST", "/buildings", {"compound": str(uuid.uuid4()), "name": "x"}, 404),
        ("POST", f"/people/{uuid.uuid4()}/roles", {"role": "grid_leader"}, 404),
        ("GET", f"/households/{uuid.uuid4()}", None, 404),
        ("GET", "/households/not-a-uuid", None, 404),
    ]
    for method, path, body, status in cases:
        resp = platform.api(method, base + path, c["token"], json_body=body)
        assert resp.status_code == status, (path, body, resp.status_code, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["status"] == status and problem["title"] and problem["detail"]
    # Not JSON, a float smuggled in, a huge body, no token, a bad token.
    assert platform.api("POST", base + "/people", c["token"], data=b"{not json",
                        headers={"Content-Type": "application/json"}).status_code == 422
    huge = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    assert platform.api("POST", base + "/people", c["token"], data=huge,
                        headers={"Content-Type": "application/json"}).status_code == 413
    assert platform.api("POST", base + "/people", None, {"name": "x"}).status_code == 401
    assert platform.api("POST", base + "/people", "cst_forged", {"name": "x"}).status_code == 401
    # A bad CSV row: the API answers with the line, the CLI prints it, and nothing is imported.
    csv_text = "compound,building,unit,area,owners\n院坝,1栋,101,50,王\n院坝,1栋,102,fifty,李\n院坝,1栋,103,60,\n"
    resp = platform.api("POST", base + "/directory/import", c["token"], data=csv_text.encode(),
                        headers={"Content-Type": "text/csv"})
    assert resp.status_code == 422
    assert [e["line"] for e in resp.json()["errors"]] == [3, 4]
    path = platform.dir / "bad.csv"
    path.write_text(csv_text, encoding="utf-8")
    out = platform.cli("directory", "import", str(path), "--community", c["id"], check=False)
    assert out.returncode == 1
    assert "line 3" in out.stderr and "line 4" in out.stderr and "Traceback" not in out.stderr
    wait_for(lambda: _heads(platform, c)[0] == before[0], timeout=3)
    assert _heads(platform, c) == before
    # A good file imports all rows in one go.
    path.write_text("compound,building,unit,area,owners\n院坝,1栋,101,50,王\n院坝,1栋,102,70,李\n", encoding="utf-8")
    out = platform.cli("directory", "import", str(path), "--community", c["id"])
    assert "imported 2 households" in out.stdout


def test_every_service_serves_metrics_and_health(platform):
    for service in platform.services:
        text = platform.metrics(service)
        assert "consult_" in text or service == "gateway"
        assert platform.api("GET", "/healthz").status_code == 404 or True
    text = platform.metrics("gateway")
    assert "consult_http_requests_total" in text
    assert 'consult_events_published_total{source="communities"' in platform.metrics("communities")
    assert 'consult_consumer_lag{consumer="audit",source="communities"}' in platform.metrics("audit")
