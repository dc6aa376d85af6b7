"""ProposalQualified opens the proposal's consultation by itself, through the real bus: the
residents' proposal gathers its supports in the proposals service, and the deliberation service
opens one consultation in the proposal's case with the body the directory gives."""
from __future__ import annotations

import time

import pytest

from tests.harness import wait_for
from tests.integration.test_deliberation import GreenSpace

pytestmark = pytest.mark.integration


def test_a_qualified_proposal_opens_its_consultation(platform):
    if "proposals" not in platform.services:
        pytest.skip("the proposals service is not running in this platform (CONSULT_TEST_SERVICES)")
    w = GreenSpace(platform)
    p = w.people
    pid = w.api("POST", "/proposals", "zhang", {
        "title": "疏通院坝排水沟", "body": "每逢雨季一楼进水", "category": "drainage", "scope": "building",
        "scope_id": w.building}, expect=201).json()["id"]
    w.api("POST", f"/proposals/{pid}/submit", "zhang", expect=200)
    w.api("POST", f"/proposals/{pid}/screen", "lin", {"admissible": True}, expect=200)
    # Nothing opens before the proposal qualifies.
    assert w.api("GET", "/consultations", "zhang", expect=200).json() == []
    for name in ("chen", "liu", "li"):  # the building's threshold is three residents
        w.api("POST", f"/proposals/{pid}/supports", name, expect=201)

    def opened():
        return [c for c in w.api("GET", "/consultations", "zhang", expect=200).json() if c["proposal"] == pid]

    [listed] = wait_for(opened, timeout=30, message="the consultation opened from the qualified proposal")
    view = w.api("GET", f"/consultations/{listed['id']}", "zhang", expect=200).json()
    assert view["convened_by"] == "proposal" and view["scope"] == "building" and view["scope_id"] == w.building
    # The residents' own words, read from the proposals service's store, in the view and the list.
    assert (view["title"], view["description"]) == ("疏通院坝排水沟", "每逢雨季一楼进水")
    assert listed["title"] == "疏通院坝排水沟"
    assert {(m["person"], m["role"]) for m in view["body"]} == {
        (p["xu"], "convener"), (p["wang"], "grid_leader"), (p["li"], "building_leader")}

    def in_audit_log():
        entries = w.audited()
        qualified = [e for e in entries if e["type"] == "ProposalQualified"]
        consultation = [e for e in entries if e["type"] == "ConsultationOpened"]
        return (qualified, consultation) if qualified and consultation else None

    [qualified], [consultation] = wait_for(in_audit_log, message="both events in the audit log")
    assert consultation["envelope"]["causation"] == qualified["event_id"]
    assert consultation["case"] == qualified["case"] == view["case"]
    assert consultation["envelope"]["data"]["title_commitment"] == qualified["envelope"]["data"]["title_commitment"]
    assert consultation["envelope"]["actor"] == "system"
    # Only the one consultation, whatever else the proposal's stream carried.
    assert len(opened()) == 1 and len(w.api("GET", "/consultations", "zhang", expect=200).json()) == 1

    # With the proposals service down, the consultation still answers at once, its title bare. Every
    # instance of it: a test before this one on the shared platform may have started a second
    # (test_proposals_concurrency), which would answer in its place.
    platform.stop("proposals", *[name for name in platform.procs if name.startswith("proposals#")])
    try:
        started = time.monotonic()
        down = w.api("GET", f"/consultations/{listed['id']}", "zhang", expect=200).json()
        assert time.monotonic() - started < 15, "a stage that is down costs seconds, not the RPC timeout"
        assert down["title"] is None and down["title_commitment"] == view["title_commitment"]
    finally:
        platform.start("proposals")
    assert w.api("GET", f"/consultations/{listed['id']}", "zhang", expect=200).json()["title"] == "疏通院坝排水沟"
