"""Signed sign-in tokens on the running platform (issue 15: a vote does no directory RPC): a gateway
checks a token the directory signed without asking it; roles are asked only by a route that needs
them; a forged or tampered token is refused; a revocation made in the directory reaches a running
gateway by its event, and a gateway started after it loads the revoked list before trusting any."""
from __future__ import annotations

import base64
import re

import pytest
import requests

from services.common import signed_token
from tests.harness import wait_for

pytestmark = pytest.mark.integration


def _sign_ins(platform, gateway: str = "gateway") -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{platform._http_port(gateway)}/metrics", timeout=10).text
    return {how: float(n) for how, n in re.findall(r'^consult_gateway_sign_ins_total\{how="(\w+)"\} (\S+)$', text, re.M)}


def _get(platform, gateway: str, path: str, token: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{platform._http_port(gateway)}{path}",
                        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}, timeout=30)


def _resident(platform):
    c = platform.new_community()
    person = platform.rpc("communities", "register_person", "tests", c["id"], "居民", True, None, None)["id"]
    platform.rpc("communities", "grant_role", "tests", c["id"], person, "resident", None, None)
    issued = platform.rpc("communities", "issue_token", c["id"], person, 30, "tests")
    return c, person, issued


def _signed_use(platform, gateway: str, path: str, token: str) -> dict[str, float]:
    """Ask until the gateway checks the token itself (its listener connected and its revoked list
    loaded); the counts of that one request."""
    def checked_here():
        before = _sign_ins(platform, gateway)
        assert _get(platform, gateway, path, token).status_code == 200
        after = _sign_ins(platform, gateway)
        delta = {how: after.get(how, 0) - before.get(how, 0) for how in after}
        return delta if delta.get("signed") == 1 else None

    return wait_for(checked_here, timeout=30, message="the gateway to check signed tokens itself")


def test_a_signed_token_is_checked_in_the_gateway_and_roles_only_when_needed(platform):
    c, person, issued = _resident(platform)
    assert issued["token"].startswith(signed_token.PREFIX)
    proposals = f"/api/v1/communities/{c['id']}/proposals"
    delta = _signed_use(platform, "gateway", proposals, issued["token"])
    assert delta.get("directory", 0) == 0 and delta.get("cached", 0) == 0  # the directory was not asked
    # GET /me shows the roles: those are asked of the directory (then cached), and are right.
    before = _sign_ins(platform)
    me = platform.api("GET", "/api/v1/me", issued["token"], expect=200).json()
    assert me["person"] == person and me["community"] == c["id"] and me["token"] == issued["id"]
    assert {"role": "resident", "scope": None} in me["roles"]
    assert _sign_ins(platform)["directory"] - before.get("directory", 0) == 1
    # A route for organisers reads roles and refuses a resident, as before.
    refused = platform.api("POST", f"/api/v1/communities/{c['id']}/ballots", issued["token"],
                           {"title": "x", "scope": "community"})
    assert refused.status_code == 403


def test_forged_and_tampered_tokens_are_refused(platform):
    c, _person, issued = _resident(platform)
    proposals = f"/api/v1/communities/{c['id']}/proposals"
    _signed_use(platform, "gateway", proposals, issued["token"])
    other_key = signed_token._from_seed(b"\x07" * 32)
    forged = signed_token.sign(other_key, token_id=issued["id"], person=issued["person"], community=c["id"],
                               expires_at=None)  # never expiring, under a key that is not the directory's

    def raw(token: str) -> bytes:
        return base64.urlsafe_b64decode(token[len(signed_token.PREFIX):] + "==")

    # the forged claims under the directory's genuine signature of the issued token's claims
    spliced = signed_token.PREFIX + base64.urlsafe_b64encode(raw(forged)[:-64] + raw(issued["token"])[-64:]) \
        .rstrip(b"=").decode()
    for token in (forged, spliced, issued["token"][:-4]):
        answer = platform.api("GET", proposals, token)
        assert answer.status_code == 401, token
        assert token not in answer.text  # a secret never comes back in an error text


def test_a_revocation_in_the_directory_reaches_a_running_gateway_and_a_new_one(platform):
    c, person, issued = _resident(platform)
    kept = platform.rpc("communities", "issue_token", c["id"], person, 30, "tests")
    proposals = f"/api/v1/communities/{c['id']}/proposals"
    _signed_use(platform, "gateway", proposals, issued["token"])
    # Revoked in the directory itself, not through this gateway: only the event tells it.
    platform.rpc("communities", "revoke_token", "tests", c["id"], issued["id"])
    wait_for(lambda: platform.api("GET", proposals, issued["token"]).status_code == 401, timeout=10,
             message="the running gateway to hear the revocation")
    assert platform.api("GET", proposals, kept["token"]).status_code == 200
    # A gateway started after the revocation never heard its event: it loads the list first.
    platform.start_replica("gateway")
    try:
        _signed_use(platform, "gateway#2", proposals, kept["token"])  # it now checks signed tokens itself
        before = _sign_ins(platform, "gateway#2")
        assert _get(platform, "gateway#2", proposals, issued["token"]).status_code == 401
        after = _sign_ins(platform, "gateway#2")
        assert after.get("signed", 0) == before.get("signed", 0)  # refused by its list, then by the directory
    finally:
        platform.stop("gateway#2")
