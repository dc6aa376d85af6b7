"""No single person bends the rules (issue 13, part 4): a rule change is proposed by one person and
takes effect only when a second one, a party-committee lead, confirms it; both steps are in the
record; and a stage already open (here a ballot) keeps the rules it opened with."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common import clock
from tests.harness import wait_for
from tests.integration.decisions_world import EXAMPLE, NOTICE, building_2, t0  # noqa: F401 - t0 is a fixture

pytestmark = pytest.mark.integration


def test_a_two_person_rule_change_leaves_an_open_ballot_as_it_opened(platform, t0):
    if "decisions" not in platform.services:
        pytest.skip("the decisions service is not running in this platform")
    w = building_2(platform, t0)
    rules = lambda: w.api("GET", "", expect=200).json()  # noqa: E731
    assert rules()["rules"]["publicity_days"] == 7
    ballot = w.ballot("owners_ordinary")
    platform.set_clock(w.opens())
    w.wait_status(ballot, "open")

    # One worker proposes: nothing changes yet.
    change = w.api("PATCH", "/rules", body={"publicity_days": 20}, expect=202).json()
    assert change["status"] == "proposed" and change["proposed_by"] == w.people["worker"]
    community = rules()
    assert community["rules"]["publicity_days"] == 7
    assert [c["id"] for c in community["pending_rule_changes"]] == [change["id"]]
    # Neither the worker nor a lead alone can make a change take effect.
    assert w.api("POST", f"/rule-changes/{change['id']}/confirmation").status_code == 403
    own = w.api("PATCH", "/rules", "Lead", {"ballot_notice_days": 0}, expect=202).json()
    refused = w.api("POST", f"/rule-changes/{own['id']}/confirmation", "Lead")
    assert refused.status_code == 403 and "second person" in refused.json()["detail"]
    w.api("DELETE", f"/rule-changes/{own['id']}", "Lead", expect=200)
    assert rules()["rules"]["ballot_notice_days"] == 7
    # A second person, the lead, confirms the worker's proposal: now it holds.
    done = w.api("POST", f"/rule-changes/{change['id']}/confirmation", "Lead", expect=200).json()
    assert done["confirmed_by"] == w.people["Lead"] and done["rules"]["publicity_days"] == 20
    assert rules()["rules"]["publicity_days"] == 20 and rules()["pending_rule_changes"] == []
    assert w.api("POST", f"/rule-changes/{change['id']}/confirmation", "Lead").status_code == 404  # once

    # A ballot set up from now on takes the new rule; the open one keeps the rules it opened with.
    later = w.ballot("owners_ordinary", opens_after=NOTICE * 2)
    assert w.view(later)["configuration"]["publicity_days"] == 20
    assert w.view(ballot)["configuration"]["publicity_days"] == 7
    for who, choice in EXAMPLE.items():
        w.vote(ballot, who, choice)
    platform.set_clock(w.closes())
    resolved = w.wait_status(ballot, "adopted")
    assert resolved["publicity_until"] == clock.format(clock.parse(resolved["closed_at"]) + timedelta(days=7))

    # Both steps are in the record, each with its own actor.
    def steps():
        entries = platform.audit_entries(w.community, w.token)
        return [(e["type"], e["envelope"]["actor"]) for e in entries if "RuleChange" in e["type"]]

    expected = [("CommunityRuleChangeProposed", w.people["worker"]), ("CommunityRuleChangeProposed", w.people["Lead"]),
                ("CommunityRuleChangeWithdrawn", w.people["Lead"]), ("CommunityRuleChangeConfirmed", w.people["Lead"])]
    wait_for(lambda: steps() == expected, timeout=30, message="both steps of the rule change in the audit log")
