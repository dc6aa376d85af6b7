"""The proposals domain without I/O: exact thresholds, scope checks, every transition and refusal."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.common.aggregate import SELF, command_context
from services.common.envelope import event_type_name
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.proposals.domain import (
    Proposal, Support, check_scope, required_supports, support_id, threshold_rule, unit_key,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
COMMUNITY, AUTHOR = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.mark.parametrize("share, denominator, needed", [
    ("1/10", 20, 2),  # exactly a tenth reaches it
    ("1/10", 21, 3),  # 2/21 < 1/10
    ("1/10", 29, 3),
    ("1/3", 9, 3),
    ("1/3", 10, 4),
    ("2/3", 3, 2),
    ("1/20", 1, 1),
    ("1/10", 0, 1),  # an empty scope never qualifies on no support
])
def test_a_share_needs_the_least_count_that_reaches_it_exactly(share, denominator, needed):
    assert required_supports({"unit": "households", "share": share}, denominator) == needed


def test_a_count_is_the_count():
    assert required_supports({"unit": "residents", "count": 3}, 500) == 3


def test_the_threshold_rule_is_per_scope_level():
    rules = {"support_threshold": {"building": {"unit": "residents", "count": 3}}}
    assert threshold_rule(rules, "building") == {"unit": "residents", "count": 3}
    with pytest.raises(InvalidInput):
        threshold_rule(rules, "compound")


def test_scope_checks():
    compound = str(uuid.uuid4())
    known = {"compound": {compound}, "building": set()}
    assert check_scope(COMMUNITY, "community", None, known) == COMMUNITY
    assert check_scope(COMMUNITY, "community", COMMUNITY, known) == COMMUNITY
    assert check_scope(COMMUNITY, "compound", compound, known) == compound
    with pytest.raises(InvalidInput):
        check_scope(COMMUNITY, "street", None, known)
    with pytest.raises(InvalidInput):
        check_scope(COMMUNITY, "compound", None, known)
    with pytest.raises(InvalidInput):
        check_scope(COMMUNITY, "community", compound, known)
    with pytest.raises(NotFound):
        check_scope(COMMUNITY, "building", compound, known)


def test_a_support_belongs_to_the_person_or_the_household():
    assert unit_key("resident", "p", "h") == "p"
    assert unit_key("household", "p", "h") == "h"
    with pytest.raises(Forbidden):
        unit_key("household", "p", None)
    assert support_id("prop", "h") == support_id("prop", "h") != support_id("prop", "p")


def draft(scope="building", scope_id="b1") -> Proposal:
    with command_context(community=COMMUNITY, actor=AUTHOR, case=SELF):
        return Proposal(community=COMMUNITY, author=AUTHOR, scope=scope, scope_id=scope_id, category="drainage",
                        title_commitment="t" * 64, body_commitment="b" * 64)


def collecting(rule=None, denominator=10, window_days=30) -> Proposal:
    p = draft()
    with command_context(community=COMMUNITY, actor=AUTHOR):
        p.submit(AUTHOR)
        p.screen(True, None, "drainage")
        p.open_collection("resident", rule or {"unit": "residents", "count": 3}, denominator, T0, window_days)
    return p


def test_the_lifecycle_to_qualification():
    p = draft()
    assert p.status == "draft" and p.case == str(p.id)
    assert p.collect_events()[0].meta["case"] == str(p.id)
    with command_context(community=COMMUNITY, actor="someone"):
        with pytest.raises(Forbidden):
            p.submit("someone")
    p = collecting(denominator=7)
    assert (p.status, p.threshold, p.denominator, p.unit) == ("collecting", 3, 7, "residents")
    assert p.deadline == "2026-03-31T08:00:00.000000Z"
    p.require_collecting(T0 + timedelta(days=29))
    with pytest.raises(Conflict):
        p.require_collecting(T0 + timedelta(days=30))  # the deadline itself is past the window
    assert not p.reached(2) and p.reached(3)
    with pytest.raises(Conflict):
        p.qualify(2)
    with command_context(community=COMMUNITY, actor="system"):
        p.qualify(3)
    event = p.collect_events()[-1]
    assert event_type_name(type(event)) == "ProposalQualified"
    assert {"proposal", "scope", "scope_id", "category", "title_commitment", "body_commitment", "author",
            "supports", "threshold"} <= set(event.__dict__)
    assert (event.supports, event.threshold, event.proposal) == (3, 3, str(p.id))
    with pytest.raises(Conflict, match="qualified"):
        p.require_collecting(T0)
    with pytest.raises(Conflict, match="qualified"):
        p.withdraw(AUTHOR)


def test_screening():
    p = draft()
    with command_context(community=COMMUNITY, actor="worker"):
        with pytest.raises(Conflict):
            p.screen(True, None, "drainage")  # still a draft
        p.submit(AUTHOR)
        with pytest.raises(InvalidInput, match="reason"):
            p.screen(False, None, "drainage")
        p.screen(False, "r" * 64, "other")
    assert (p.status, p.category) == ("inadmissible", "other")
    with pytest.raises(Conflict):
        p.withdraw(AUTHOR)


def test_expiry_only_past_the_deadline_while_collecting():
    p = collecting(window_days=2)
    with command_context(community=COMMUNITY, actor="system"):
        assert not p.due(T0 + timedelta(days=2) - timedelta(microseconds=1))
        with pytest.raises(Conflict):
            p.expire(T0 + timedelta(days=1))
        p.expire(T0 + timedelta(days=2))
    assert p.status == "expired"
    assert not p.due(T0 + timedelta(days=3))


def test_withdrawal_by_the_author_before_qualification():
    for p in (draft(), collecting()):
        with command_context(community=COMMUNITY, actor=AUTHOR):
            with pytest.raises(Forbidden):
                p.withdraw("someone else")
            p.withdraw(AUTHOR)
            assert p.status == "withdrawn"
            with pytest.raises(Conflict):
                p.withdraw(AUTHOR)


def test_merging():
    a, b = collecting(), collecting()
    with command_context(community=COMMUNITY, actor="worker"):
        with pytest.raises(InvalidInput):
            a.merge_into(a, carries_supports=False)
        with pytest.raises(Conflict):
            b.receive_merge(a, 0)  # the source first
        a.merge_into(b, carries_supports=True)
        b.receive_merge(a, 2)
    assert (a.status, b.status) == ("merged", "collecting")
    assert [event_type_name(type(e)) for e in b.collect_events()][-1] == "ProposalMergeReceived"
    submitted, c = draft(), collecting()
    with command_context(community=COMMUNITY, actor="worker"):
        submitted.submit(AUTHOR)
        with pytest.raises(Conflict, match="collects support"):
            c.merge_into(submitted, carries_supports=True)
        c.merge_into(submitted, carries_supports=False)
        with pytest.raises(Conflict):
            a.merge_into(b, carries_supports=False)  # already merged


def test_a_support_is_given_withdrawn_and_given_again_as_one_aggregate():
    with command_context(community=COMMUNITY, actor="p1", case="prop"):
        s = Support.give(COMMUNITY, "prop", "household", "p1", "h1")
        assert s.id == support_id("prop", "h1") and s.current
        with pytest.raises(Conflict, match="household already supports"):
            s.give_again("p2", "h1")
        s.withdraw("p2")
        with pytest.raises(Conflict):
            s.withdraw("p2")
        s.give_again("p3", "h1", carried_from="other")
    events = s.collect_events()
    assert [event_type_name(type(e)) for e in events] == ["SupportGiven", "SupportWithdrawn", "SupportGivenAgain"]
    assert [e.originator_version for e in events] == [1, 2, 3]
    assert all(e.meta["case"] == "prop" for e in events)
    assert (events[2].person, events[2].carried_from, s.person) == ("p3", "other", "p3")
