"""Two decisions instances behind the gateway: concurrent votes of one voter count once, and
refused commands are refused with a clear problem and leave every log unchanged."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.decisions_world import building_2, t0  # noqa: F401 - t0 is a fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def two_instances(platform):
    replica = platform.start_replica("decisions")
    yield
    platform.stop(replica)
    # (The shared runtime's timers may still complain while the process shuts down.)
    running = platform.log(replica).split("stopping services")[0]
    assert "Traceback" not in running, running[-3000:]


def at_once(n: int, fn) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def test_one_voter_voting_50_times_at_once_counts_once(platform, t0, two_instances):
    w = building_2(platform, t0)
    fixed, changeable = w.ballot("owners_ordinary", changeable=False), w.ballot("owners_ordinary", changeable=True)
    platform.set_clock(w.opens())
    for ballot in (fixed, changeable):
        w.wait_status(ballot, "open")
        w.vote(ballot, "Li", "disagree")

    # A ballot that does not allow changes: exactly one of the 50 is recorded.
    replies = at_once(50, lambda: w.vote(fixed, "Wang", "agree", expect=None))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201] + [409] * 49, statuses
    assert all(r.headers["Content-Type"].startswith("application/problem+json") and r.json()["detail"]
               for r in replies if r.status_code == 409)

    # A changeable ballot: each accepted vote is a new version of the voter's one vote aggregate;
    # the ones that raced for the same version were refused (409), never counted twice.
    replies = at_once(50, lambda: w.vote(changeable, "Wang", "agree", expect=None))
    accepted = [r.json() for r in replies if r.status_code == 201]
    assert accepted and all(r.status_code in (201, 409) for r in replies)
    assert sorted(a["version"] for a in accepted) == list(range(1, len(accepted) + 1))
    mine = w.api("GET", f"/ballots/{changeable}/my-vote", "Wang", expect=200).json()
    assert mine["version"] == len(accepted) and mine["receipt"] in {a["receipt"] for a in accepted}

    platform.set_clock(w.closes())
    for ballot, superseded in ((fixed, 0), (changeable, len(accepted) - 1)):
        result = w.wait_status(ballot, "adopted", "rejected")["result"]
        assert (result["ballots"], result["participating_heads"], result["agreeing_heads"]) == (2, 2, 1)
        assert result["superseded"] == superseded
        assert platform.cli("decisions", "retally", ballot).stdout.startswith("MATCH")
    wang_votes = [e for e in w.wait_audit(changeable, "VoteCast", 2) if e["actor"] == w.people["Wang"]]
    assert len(wang_votes) == 1  # one aggregate: its later versions are VoteChanged


def test_refusals_are_clear_and_change_no_log(platform, t0, two_instances):
    w = building_2(platform, t0)
    ballot = w.ballot("owners_major")
    platform.set_clock(w.opens())
    w.wait_status(ballot, "open")
    w.vote(ballot, "Wang", "agree")
    w.wait_audit(ballot, "VoteCast")

    def logs():
        return (platform.rpc("decisions", "log_head"), len(w.audit(ballot)))

    def refused(status: int, phrase: str, method: str, path: str, who: str | None = None, body=None):
        before = logs()
        problem = w.api(method, path, who, body, expect=status).json()
        assert phrase in problem["detail"] and problem["status"] == status, problem
        assert logs() == before

    # A voter who is not on the roll: the tenant of 402 lives there but owns nothing.
    refused(403, "not on this ballot's voter roll", "POST", f"/ballots/{ballot}/votes", "Tenant", {"choice": "agree"})
    # A rule change on an open ballot.
    refused(409, "frozen", "PUT", f"/ballots/{ballot}/configuration", body={
        "preset": "owners_ordinary", "voting_unit": "owner", "opens_at": "2030-01-01T00:00:00Z",
        "closes_at": "2030-01-08T00:00:00Z"})
    # A vote after the closing time, before the service has closed the ballot (the timer may close it
    # meanwhile, which adds its own events: so here, the record's votes are compared) ...
    votes_before = [e["id"] for e in w.audit(ballot) if e["type"].startswith("Vote")]
    platform.set_clock(w.closes())
    problem = w.vote(ballot, "Li", "agree", expect=409).json()
    assert "closed" in problem["detail"] or "no longer accepted" in problem["detail"], problem
    w.wait_status(ballot, "rejected")
    w.wait_audit(ballot, "ResolutionRejected")
    assert [e["id"] for e in w.audit(ballot) if e["type"].startswith("Vote")] == votes_before
    # ... and after it.
    refused(409, "no longer accepted", "POST", f"/ballots/{ballot}/votes", "Li", {"choice": "agree"})
    # A malformed vote and a vote on a ballot that does not exist.
    refused(422, "choice", "POST", f"/ballots/{ballot}/votes", "Li", {"choice": 3})
    refused(404, "does not exist", "POST", "/ballots/00000000-0000-4000-8000-000000000000/votes", "Li",
            {"choice": "agree"})
