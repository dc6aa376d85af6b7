"""Credentials over HTTP (issue 12, point 4): a worker invites but never mints a token for someone
else; issuing, redeeming and revoking reach the audit log without secrets; a revoked token or
role is refused at once by every gateway instance; signing out revokes the presented token."""
from __future__ import annotations

import hashlib
import json

import pytest
import requests

from tests.harness import wait_for

pytestmark = pytest.mark.integration


def _community(platform):
    c = platform.new_community()
    base = f"/api/v1/communities/{c['id']}"
    people = {}
    for name, role in (("书记", "party_lead"), ("居民", "resident")):
        people[name] = platform.rpc("communities", "register_person", "tests", c["id"], name, True, None, None)["id"]
        platform.rpc("communities", "grant_role", "tests", c["id"], people[name], role, None, None)
    return c, base, people


def _entries(platform, c) -> list[dict]:
    return platform.audit_entries(c["id"], c["token"])


def _settled(platform, c) -> int:
    """The community's audit log once it holds every event of the directory's log for it."""
    def caught_up():
        head = platform.rpc("communities", "log_head")
        envs = platform.rpc("communities", "read_log", max(head - 200, 1), 1000)
        mine = [e["id"] for e in envs if e["community"] == c["id"]]
        entries = {e["event_id"] for e in _entries(platform, c)}
        return set(mine) <= entries and len(entries)

    return wait_for(caught_up, timeout=30, message="the audit log to hold the directory's events")


def test_a_worker_cannot_mint_a_token_for_anyone_else_and_nothing_is_recorded(platform):
    c, base, people = _community(platform)
    size = _settled(platform, c)
    head = platform.rpc("communities", "log_head")
    for who in (people["书记"], people["居民"]):
        resp = platform.api("POST", f"{base}/people/{who}/tokens", c["token"], {"days": 30})
        assert resp.status_code == 403 and resp.headers["Content-Type"].startswith("application/problem+json")
        assert "invitation" in resp.json()["detail"]
    assert platform.rpc("communities", "log_head") == head
    assert len(_entries(platform, c)) == size
    # The worker may take a further token for themselves (another device), and it works.
    own = platform.api("POST", f"{base}/people/{c['worker']}/tokens", c["token"], {"days": 7, "label": "phone"},
                       expect=201).json()
    assert platform.api("GET", "/api/v1/me", own["token"], expect=200).json()["person"] == c["worker"]
    # A platform administrator may issue one for anyone.
    admin = platform.api("POST", f"{base}/people/{people['居民']}/tokens", platform.admin_token, {"days": 7},
                         expect=201).json()
    assert platform.api("GET", "/api/v1/me", admin["token"], expect=200).json()["person"] == people["居民"]


def test_issuing_redeeming_and_revoking_are_in_the_audit_log_without_secrets(platform):
    c, base, people = _community(platform)
    lead = platform.rpc("communities", "issue_token", c["id"], people["书记"], 30, "tests")["token"]
    invitation = platform.api("POST", base + "/invitations", c["token"], {"roles": ["resident"]}, expect=201).json()
    signed = platform.api("POST", "/api/v1/sign-in", None, {"code": invitation["code"], "name": "新居民"},
                          expect=201).json()
    resident = signed["person"]
    further = platform.api("POST", f"{base}/people/{resident}/tokens", signed["token"], {"label": "tablet"},
                           expect=201).json()
    listed = platform.api("GET", f"{base}/people/{resident}/tokens", c["token"], expect=200).json()
    assert {t["id"] for t in listed} == {signed["id"], further["id"]}
    assert not any(k in json.dumps(listed) for k in (signed["token"], further["token"]))
    # A worker revokes a resident's token; the resident signs out with the other.
    platform.api("DELETE", f"{base}/tokens/{further['id']}", c["token"], expect=204)
    platform.api("DELETE", "/api/v1/me/token", signed["token"], expect=204)
    # A worker cannot revoke the lead's token (the lead can revoke the worker's).
    lead_id = platform.api("GET", "/api/v1/me", lead, expect=200).json()["token"]
    assert platform.api("DELETE", f"{base}/tokens/{lead_id}", c["token"]).status_code == 403

    def recorded():
        entries = [e for e in _entries(platform, c) if e["source"] == "communities"]
        kinds = [(e["type"], e["envelope"]["actor"], e["envelope"]["aggregate"]["id"]) for e in entries
                 if e["type"].startswith(("Token", "Invitation"))]
        return len([k for k in kinds if k[0] == "TokenRevoked"]) == 2 and (entries, kinds)

    entries, kinds = wait_for(recorded, timeout=30, message="the credential events in the audit log")
    assert ("InvitationIssued", c["worker"], invitation["id"]) in kinds
    assert ("InvitationRedeemed", resident, invitation["id"]) in kinds
    assert ("TokenIssued", resident, signed["id"]) in kinds
    assert ("TokenIssued", resident, further["id"]) in kinds
    assert ("TokenRevoked", c["worker"], further["id"]) in kinds
    assert ("TokenRevoked", resident, signed["id"]) in kinds
    data = {(e["type"], e["envelope"]["aggregate"]["id"]): e["envelope"]["data"] for e in entries}
    assert data[("TokenIssued", signed["id"])]["via"] == "invitation"
    assert data[("TokenIssued", further["id"])]["via"] == "self"
    assert data[("TokenIssued", further["id"])]["person"] == resident
    assert data[("TokenIssued", further["id"])]["expires_at"] == further["expires_at"]
    assert data[("TokenRevoked", signed["id"])]["reason"] == "signed_out"
    record = "".join(e["canonical"] for e in _entries(platform, c))
    for secret in (invitation["code"], signed["token"], further["token"], lead):
        assert secret not in record and hashlib.sha256(secret.encode()).hexdigest() not in record
    assert "tablet" not in record  # labels are free text: kept with the credential, not in the record


def _gateway2(platform, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return requests.request(method, f"http://127.0.0.1:{platform._http_port('gateway#2')}{path}", headers=headers,
                            data=json.dumps(body) if body is not None else None, timeout=30)


def test_a_revocation_holds_at_once_on_every_gateway_and_signing_out_works(platform):
    c, base, people = _community(platform)
    lead = platform.rpc("communities", "issue_token", c["id"], people["书记"], 30, "tests")["token"]
    tokens = [platform.rpc("communities", "issue_token", c["id"], people["居民"], 30, "tests") for _ in range(2)]
    platform.start_replica("gateway")
    try:
        # Both gateways have the sign-ins cached (they would keep them 5 s).
        for t in tokens:
            assert platform.api("GET", "/api/v1/me", t["token"]).status_code == 200
            assert _gateway2(platform, "GET", "/api/v1/me", t["token"]).status_code == 200
        # Revoked through one gateway: the very next request on either is refused.
        platform.api("DELETE", f"{base}/tokens/{tokens[0]['id']}", c["token"], expect=204)
        assert _gateway2(platform, "GET", "/api/v1/me", tokens[0]["token"]).status_code == 401
        assert platform.api("GET", "/api/v1/me", tokens[0]["token"]).status_code == 401
        assert platform.api("GET", "/api/v1/me", tokens[1]["token"]).status_code == 200  # the other one still works
        # Signing out on the second gateway: refused on the first at once.
        _gateway2(platform, "DELETE", "/api/v1/me/token", tokens[1]["token"]).raise_for_status()
        assert platform.api("GET", "/api/v1/me", tokens[1]["token"]).status_code == 401
        assert _gateway2(platform, "GET", "/api/v1/me", tokens[1]["token"]).status_code == 401
        # A revoked role stops working at once too: the lead's role taken away by a platform admin.
        me = _gateway2(platform, "GET", "/api/v1/me", lead).json()
        assert {"role": "party_lead", "scope": None} in me["roles"]
        platform.api("GET", "/api/v1/me", lead, expect=200)
        platform.api("POST", f"{base}/people/{people['书记']}/role-revocations", platform.admin_token,
                     {"role": "party_lead"}, expect=201)
        assert _gateway2(platform, "GET", "/api/v1/me", lead).json()["roles"] == []
        assert platform.api("GET", "/api/v1/me", lead, expect=200).json()["roles"] == []
        # The worker's revocation of a token went through the service's own rule (not only the gateway's).
        assert platform.api("DELETE", f"{base}/tokens/{tokens[0]['id']}", c["token"]).status_code == 409
    finally:
        platform.stop("gateway#2")


def test_only_a_lead_or_an_administrator_appoints_a_lead(platform):
    """Else a worker could invite a second 'lead' and pass every two-person rule alone."""
    c, base, people = _community(platform)
    for method, path, body in (("POST", f"/people/{people['居民']}/roles", {"role": "party_lead"}),
                               ("POST", "/invitations", {"roles": ["party_lead"]}),
                               ("POST", f"/people/{people['书记']}/role-revocations", {"role": "party_lead"})):
        resp = platform.api(method, base + path, c["token"], body)
        assert resp.status_code == 403, (path, resp.text)
    lead = platform.rpc("communities", "issue_token", c["id"], people["书记"], 30, "tests")["token"]
    platform.api("POST", f"{base}/people/{people['居民']}/roles", lead, {"role": "party_lead"}, expect=201)
