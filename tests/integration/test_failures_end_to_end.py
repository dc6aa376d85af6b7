"""What a refusal or a "not now" inside a service looks like at the HTTP client, through every
service: a lock timeout is a 503 problem (try again; nothing recorded), a domain conflict a 409,
and a refusal relayed by a second service keeps its status and type instead of becoming a 422.

PostgreSQL only: the lock timeouts are PostgreSQL's (`lock_timeout`). A test connection takes the
lock a service needs and keeps it past the service's timeout; the request must then be answered 503
with the Unavailable type, the service's record unchanged, and succeed once the lock is let go.
"""
from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace

import psycopg
import pytest

from tests.harness import PG_URL, frozen_now

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900),
              pytest.mark.parametrize("platform", ["postgres"], indirect=True)]

UNAVAILABLE = "https://consult.example/problems/Unavailable"


@pytest.fixture(scope="module")
def world(platform):
    c = platform.new_community("失败的样子")
    rpc = lambda method, *args: platform.rpc("communities", method, *args)  # noqa: E731
    cid = c["id"]
    rpc("change_rules", "tests", cid, {"meeting_notice_days": 0, "ballot_notice_days": 0})
    compound = rpc("add_compound", "tests", cid, "院坝")["id"]
    building = rpc("add_building", "tests", cid, compound, "1栋")["id"]
    home = rpc("register_household", "tests", cid, building, "101", "60", [], None, True, None)["id"]
    other = rpc("register_household", "tests", cid, building, "102", "70", [], None, True, None)["id"]
    lead = rpc("register_person", "tests", cid, "书记", True, home, None)["id"]
    for role in ("party_lead", "community_worker", "moderator"):
        rpc("grant_role", "tests", cid, lead, role, None, None)
    resident = rpc("register_person", "tests", cid, "居民", True, other, None)["id"]
    return SimpleNamespace(
        platform=platform, id=cid, base=f"/api/v1/communities/{cid}", building=building, lead=lead,
        resident=resident, lead_token=rpc("issue_token", cid, lead, 30, "tests")["token"],
        resident_token=rpc("issue_token", cid, resident, 30, "tests")["token"])


def _api(w, method, path, token, body=None):
    return w.platform.api(method, w.base + path, token, body)


@contextlib.contextmanager
def _locked(platform, service: str, table: str, mode: str = "EXCLUSIVE"):
    """Hold `table` of the service's events store (or `state` store, as "state.<table>") in `mode`
    until the block ends. EXCLUSIVE lets readers through and stops every writer."""
    part, _, name = table.rpartition(".")
    schema = f"{platform.prefix}_{service}_{part or 'events'}".lower()
    with psycopg.connect(PG_URL, autocommit=False) as conn:
        conn.execute(f'LOCK TABLE "{schema}"."{name}" IN {mode} MODE')
        try:
            yield
        finally:
            conn.rollback()


def _events(platform, service: str) -> int:
    schema = f"{platform.prefix}_{service}_events".lower()
    with psycopg.connect(PG_URL) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}"."{service}_events"').fetchone()[0]


def _assert_unavailable(resp, service: str):
    assert resp.status_code == 503, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["type"] == UNAVAILABLE and problem["status"] == 503, problem
    assert service in problem["detail"] and "try again" in problem["detail"], problem
    assert not any(word in problem["detail"] for word in ("LOCK TABLE", "psycopg", "SELECT", "INSERT")), problem
    return problem


def _assert_conflict(resp):
    assert resp.status_code == 409, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["status"] == 409


# Per service: a command that records in it, and a command the service refuses as a conflict
# (each made ready by `prepare`, which returns what the two need).
def _proposals(w):
    def write(_):
        return _api(w, "POST", "/proposals", w.resident_token, {
            "title": "疏通排水沟", "body": "雨季积水", "category": "drainage", "scope": "building",
            "scope_id": w.building})

    def conflict(_):
        made = write(None).json()["id"]
        _api(w, "POST", f"/proposals/{made}/withdraw", w.resident_token)
        return _api(w, "POST", f"/proposals/{made}/withdraw", w.resident_token)
    return write, conflict


def _deliberation(w):
    def write(_):
        return _api(w, "POST", "/consultations", w.lead_token, {
            "title": "草坪", "description": "草坪改菜地？", "scope": "building", "scope_id": w.building,
            "category": "green_space"})

    def conflict(_):
        made = write(None).json()["id"]
        comment = _api(w, "POST", f"/consultations/{made}/comments", w.lead_token,
                       {"text": "先听听大家的意见", "stance": "neutral"}).json()["id"]
        return _api(w, "POST", f"/comments/{comment}/flags", w.lead_token)  # one's own comment
    return write, conflict


def _decisions(w):
    def write(_):
        return _api(w, "POST", "/ballots", w.lead_token, {"title": "是否疏通", "scope": "building",
                                                          "scope_id": w.building})

    def conflict(_):
        made = write(None).json()["id"]
        return _api(w, "POST", f"/ballots/{made}/reruns", w.lead_token)
    return write, conflict


def _actions(w):
    def write(_):
        return _api(w, "POST", "/action-plans", w.lead_token, {"title": "紧急疏通", "basis": "暴雨前抢修",
                                                               "scope": "building", "scope_id": w.building})

    def conflict(_):
        case = write(None).json()["case"]
        _api(w, "POST", f"/cases/{case}/closure", w.lead_token, {"reason": "已由物业线下处理"})
        return _api(w, "POST", f"/cases/{case}/closure", w.lead_token, {"reason": "again"})
    return write, conflict


def _communities(w):
    def write(_):
        return _api(w, "POST", f"/people/{w.lead}/tokens", w.lead_token, {"label": "第二台手机"})

    def conflict(_):
        token = write(None).json()["id"]
        _api(w, "DELETE", f"/tokens/{token}", w.lead_token)
        return _api(w, "DELETE", f"/tokens/{token}", w.lead_token)
    return write, conflict


STAGES = {"communities": _communities, "proposals": _proposals, "deliberation": _deliberation,
          "decisions": _decisions, "actions": _actions}


@pytest.mark.parametrize("service", sorted(STAGES))
def test_a_lock_timeout_in_a_stage_is_a_503_and_a_conflict_a_409(world, service):
    w = world
    write, conflict = STAGES[service](w)
    w.platform.set_clock(frozen_now())
    try:
        before = _events(w.platform, service)
        with _locked(w.platform, service, f"{service}_events"):
            started = time.monotonic()
            _assert_unavailable(write(None), service)
            assert time.monotonic() - started < 25, "answered by the lock timeout, not by the RPC timeout"
        assert _events(w.platform, service) == before, "a refused command recorded something"
        made = write(None)
        assert made.status_code == 201, made.text[:500]
        _assert_conflict(conflict(None))
    finally:
        w.platform.set_clock(None)


def test_a_lock_timeout_in_the_directory_reaches_the_client_through_the_stage_that_asked(world):
    """proposals asks the directory (communities) which places the community has; the directory's
    lock timeout is its 503, and proposals passes it on as it came, not as its own 422."""
    w = world
    before = _events(w.platform, "proposals")
    with _locked(w.platform, "communities", "state.dir_compounds", "ACCESS EXCLUSIVE"):
        resp = _api(w, "POST", "/proposals", w.resident_token, {
            "title": "路灯", "body": "不亮", "category": "lighting", "scope": "building", "scope_id": w.building})
    _assert_unavailable(resp, "communities")
    assert _events(w.platform, "proposals") == before
