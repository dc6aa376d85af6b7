"""Counting from the record (rules.record): the replay the decisions service, `consult decisions
retally` and the audit replay share. Properties (hypothesis) over the counting scenarios of
test_rules_properties, plus the checks a replay makes on what it reads."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import InvalidRoll, RollEntry, Vote, generic, owners_major, roll_hash, seal, tally
from rules.record import differences, replay_ballot, tally_record

from .test_rules_properties import scenarios


def opened(rule, options, roll, secret):
    return {"rule": rule.to_dict(), "options": [{"id": o} for o in options], "roll": [e.to_dict() for e in roll],
            "roll_hash": roll_hash(roll), "secret": secret}


def records(roll, votes, key=lambda voter: voter):
    entries = {e.voter: e for e in roll}
    return [{"voter": key(v.voter), "choice": v.to_dict()["choice"], "weight": str(entries[v.voter].weight),
             "headcount": entries[v.voter].headcount} for v in votes]


def sealed(voter: str) -> str:
    return hashlib.sha256(b"key|" + voter.encode()).hexdigest()[:32]


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_record_counts_as_the_rules_do(scenario):
    rule, options, roll, votes = scenario
    expected = tally(rule, options, roll, votes).to_dict()
    assert tally_record(opened(rule, options, roll, False), records(roll, votes)).to_dict() == expected


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_secret_ballot_counts_the_same_without_knowing_who_voted(scenario):
    """Sealed votes are keyed by an opaque id and counted against the equivalent roll: every number
    of the result is the one the real roll gives."""
    rule, options, roll, votes = scenario
    expected = tally(rule, options, roll, votes).to_dict()
    replayed = tally_record(opened(rule, options, roll, True), records(roll, votes, key=sealed))
    assert replayed.to_dict() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["agree", "disagree", "abstain"]), min_size=1, max_size=9))
def test_owners_dual_rule_from_a_sealed_record(choices):
    roll = [RollEntry(f"o{i}", f"{50 + 10 * i}.5", 1, (f"u{i}",)) for i in range(9)]
    votes = [Vote(f"o{i}", c) for i, c in enumerate(choices)]
    rule = owners_major()
    assert (tally_record(opened(rule, [], roll, True), records(roll, votes, key=sealed)).to_dict()
            == tally(rule, [], roll, votes).to_dict())


def test_sealed_weights_must_fit_the_roll():
    roll = [RollEntry("a", "120"), RollEntry("b", "90"), RollEntry("c", "90")]
    rule = generic("majority")
    fits = [{"voter": "x", "choice": "agree", "weight": "90", "headcount": 1},
            {"voter": "y", "choice": "agree", "weight": "90", "headcount": 1}]
    assert tally_record(opened(rule, [], roll, True), fits).participating_area == 180
    too_many = fits + [{"voter": "z", "choice": "agree", "weight": "90", "headcount": 1}]
    with pytest.raises(InvalidRoll, match="do not fit"):
        tally_record(opened(rule, [], roll, True), too_many)


def test_an_open_votes_weight_must_be_its_roll_entry():
    roll = [RollEntry("a", "120"), RollEntry("b", "90")]
    with pytest.raises(InvalidRoll, match="weight the roll does not give"):
        tally_record(opened(generic("majority"), [], roll, False),
                     [{"voter": "b", "choice": "agree", "weight": "120", "headcount": 1}])


def test_a_roll_that_does_not_match_its_hash_is_refused():
    roll = [RollEntry("a", "120"), RollEntry("b", "90")]
    record = opened(generic("majority"), [], roll, False)
    record["roll"][0]["weight"] = "1200"
    with pytest.raises(InvalidRoll, match="hash"):
        tally_record(record, [])


def test_replay_reads_one_ballot_and_ignores_votes_after_its_close():
    def env(kind, aggregate, **data):
        return {"type": kind, "aggregate": {"id": aggregate}, "data": data}

    stream = [
        env("BallotOpened", "B", roll=[], roll_hash="h"),
        env("VoteCast", "v1", ballot="B", voter="a", choice="agree", weight="1", headcount=1),
        env("VoteCast", "v9", ballot="OTHER", voter="z", choice="agree", weight="1", headcount=1),
        env("VoteCast", "v2", ballot="B", voter=None, choice="abstain", weight="2", headcount=1),
        env("VoteChanged", "v1", ballot="B", voter="a", choice="disagree", weight="1", headcount=1),
        env("BallotClosed", "B", reason="closing_time"),
        env("VoteCast", "v3", ballot="B", voter="c", choice="agree", weight="1", headcount=1),
        env("ResolutionRejected", "B", result={"outcome": "rejected"}),
    ]
    record = replay_ballot(stream, "B")
    assert [(v["voter"], v["choice"]) for v in record.votes] == [("a", "agree"), ("v2", "abstain"), ("a", "disagree")]
    assert record.late_votes == 1 and record.closed and record.recorded_result == {"outcome": "rejected"}


def test_differences_name_every_changed_number():
    recorded = {"agreeing_area": "490", "quorum": [{"value": 7}, {"value": "660"}], "outcome": "adopted"}
    replayed = {"agreeing_area": "480", "quorum": [{"value": 7}, {"value": "650"}], "outcome": "adopted"}
    assert differences(recorded, replayed) == [
        {"field": "agreeing_area", "recorded": "490", "replayed": "480"},
        {"field": "quorum[1].value", "recorded": "660", "replayed": "650"},
    ]
    assert differences(replayed, replayed) == []


def test_a_secret_ballot_recorded_across_the_upgrade_counts_its_plain_and_its_sealed_votes():
    """Votes recorded before the seals (VoteCast 1: the choice in the clear) and after (VoteCast 2:
    only the seal, opened by VotesRevealed) count together, each as its version says."""
    roll = [RollEntry(f"o{i}", "1", 1) for i in range(4)]
    rule = generic("majority")
    env = {"ballot": "b"}

    def vote(i, data, version=1):
        return {"type": "VoteCast", "event_version": version, "aggregate": {"id": f"v{i}", "version": 1},
                "data": {"ballot": "b", "voter": None, "weight": "1", "headcount": 1, **data}}

    salt = "ab" * 16
    envelopes = [
        {"type": "BallotOpened", "aggregate": {"id": "b", "version": 3}, "data": opened(rule, [], roll, True)},
        vote(0, {"choice": "agree"}),  # version 1
        vote(1, {"choice": None, "sealed_choice": seal("agree", salt)}, 2),
        vote(2, {"choice": None, "sealed_choice": seal("disagree", salt)}, 2),
        {"type": "BallotClosed", "aggregate": {"id": "b", "version": 4}, "data": {}},
        {"type": "VotesRevealed", "aggregate": {"id": "b", "version": 5}, "data": {**env, "reveals": [
            {"vote": "v1", "version": 1, "choice": "agree", "salt": salt},
            {"vote": "v2", "version": 1, "choice": "disagree", "salt": salt}]}},
    ]
    record = replay_ballot(envelopes, "b")
    result = tally_record(record.opened, record.votes, record.reveals)
    assert (result.to_dict()["agreeing_heads"], result.to_dict()["disagreeing_heads"]) == (2, 1)
