"""Supports under concurrency, through the gateway, with two instances of the proposals service
consuming the same RPC queue: no support lost, none doubled, none recorded after qualification,
and a refused command records nothing."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.proposals_world import NEVER_QUALIFIES, Neighbourhood

pytestmark = pytest.mark.integration


@pytest.fixture
def two_instances(platform):
    if "proposals" not in platform.services:
        pytest.skip("the proposals service is not running in this platform (CONSULT_TEST_SERVICES)")
    if "proposals#2" not in platform.procs:
        platform.start_replica("proposals")
    return platform


def concurrently(calls) -> list:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def supports_of(events: list[dict], pid: str) -> list[dict]:
    return [e for e in events if e["case"] == pid and e["aggregate"]["type"] == "Support"]


def test_100_residents_supporting_at_once_give_exactly_100_supports(two_instances):
    n = Neighbourhood(two_instances, rules=NEVER_QUALIFIES)
    author, *residents = n.residents(n.buildings[0], 101, per_household=4)
    pid = n.open_proposal(author)
    n.settled()
    head, audit_size = n.heads()
    replies = concurrently([lambda r=r: n.support(pid, r, expect=None) for r in residents])
    assert sorted(r.status_code for r in replies) == [201] * 100, [r.text for r in replies if r.status_code != 201]
    view = n.view(pid)
    assert (view["supports"], view["supports_residents"], view["status"]) == (100, 100, "collecting")
    audited = n.settled()
    given = supports_of(audited, pid)
    assert len(given) == 100 and {e["actor"] for e in given} == {r.id for r in residents}
    assert n.heads() == (head + 100, audit_size + 100)


def test_one_resident_supporting_20_times_at_once_gives_exactly_one_support(two_instances):
    n = Neighbourhood(two_instances, rules=NEVER_QUALIFIES)
    author, resident = n.residents(n.buildings[0], 2)
    pid = n.open_proposal(author)
    n.settled()
    head, audit_size = n.heads()
    replies = concurrently([lambda: n.support(pid, resident, expect=None) for _ in range(20)])
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201] + [409] * 19, [r.text for r in replies]
    for r in replies:
        if r.status_code == 409:
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert r.json()["detail"] == "you already support this proposal"
    assert n.view(pid)["supports"] == 1
    assert len(supports_of(n.settled(), pid)) == 1
    # The 19 refusals recorded nothing: the log and the audit log grew by the one support.
    assert n.heads() == (head + 1, audit_size + 1)


def test_at_the_threshold_exactly_the_supports_before_qualification_count(two_instances):
    """30 residents race for a threshold of 10: 10 are recorded, the 20 others are refused, and
    ProposalQualified carries exactly 10, with no support after it in the log."""
    rules = {"support_threshold": dict(NEVER_QUALIFIES["support_threshold"],
                                       building={"unit": "residents", "count": 10})}
    n = Neighbourhood(two_instances, rules=rules)
    author, *residents = n.residents(n.buildings[0], 31)
    pid = n.open_proposal(author)
    replies = concurrently([lambda r=r: n.support(pid, r, expect=None) for r in residents])
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [201] * 10 + [409] * 20
    assert {r.json()["detail"] for r in replies if r.status_code == 409} == {
        "this proposal has qualified; it can no longer be supported"}
    view = n.view(pid)
    assert (view["status"], view["supports"]) == ("qualified", 10)
    stream = [e for e in n.settled() if e["case"] == pid]
    kinds = [e["type"] for e in stream]
    assert kinds.count("SupportGiven") == 10 and kinds.count("ProposalQualified") == 1
    assert kinds[-1] == "ProposalQualified"  # nothing of this proposal after it
    assert stream[-1]["data"]["supports"] == 10 and stream[-1]["data"]["threshold"] == 10
