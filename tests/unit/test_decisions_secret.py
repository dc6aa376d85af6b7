"""Secret ballots: the record holds each vote's receipt, choice and weight, never who cast it.

Read with the frozen roll in hand, the events do not link a voter to a vote: the vote aggregate id
is an HMAC under the service's key, the actor is "sealed", and nothing else names the voter.
"""
from __future__ import annotations

import stat

import pytest
import sqlalchemy as sa

from services.common.aggregate import derived_id
from services.common.envelope import canonical
from services.decisions import tables
from services.decisions.application import SealingKey

from .decisions_fixtures import COMMUNITY, WORKER, app, close, events, open_ballot, residents  # noqa: F401

VOTERS = [f"r{i:03}" for i in range(6)]


@pytest.fixture
def secret_ballot(app):
    ballot = open_ballot(app, "residents_meeting", "resident", facts=residents(6), secret=True, changeable=True)
    receipts = {}
    for voter, choice in zip(VOTERS[:3], ["agree", "agree", "disagree"]):
        receipts[voter] = app.cast_vote(voter, COMMUNITY, ballot, voter, choice)["receipt"]
    receipts["r000"] = app.cast_vote("r000", COMMUNITY, ballot, "r000", "disagree")["receipt"]  # changed
    receipts["r003"] = app.cast_vote("r004", COMMUNITY, ballot, "r003", "agree", channel="proxy",
                                     proxy_authorisation="r003 authorises r004 (signed)")["receipt"]
    receipts["r005"] = app.cast_vote(WORKER, COMMUNITY, ballot, "r005", "agree", channel="paper",
                                     paper_serial="P-5")["receipt"]
    return ballot, receipts


def test_the_record_does_not_link_voters_and_votes(app, secret_ballot):
    ballot, _receipts = secret_ballot
    [opened] = events(app, "BallotOpened", ballot)
    roll_voters = [e["voter"] for e in opened["data"]["roll"]]
    assert roll_voters == VOTERS  # the roll itself is public
    # What someone holding the roll could try: every id derivable from a voter id without the key.
    guesses = set(roll_voters) | {str(derived_id("vote", ballot, v)) for v in roll_voters}
    vote_events = [e for e in events(app) if e["type"] in ("VoteCast", "VoteChanged", "VoteRefused")]
    assert len(vote_events) == 6
    for env in vote_events:
        assert env["actor"] == "sealed" and env["causation"] is None
        text = canonical(env).decode()
        assert not any(g in text for g in guesses), f"{env['type']} names a voter"
        assert env["data"]["voter"] is None and env["data"]["proxy_authorisation_commitment"] is None
        assert set(env["data"]) >= {"receipt", "choice", "weight", "headcount"}
    paper = next(e for e in vote_events if e["data"]["channel"] == "paper")
    assert paper["data"]["entered_by"] == WORKER  # the clerk, not the voter


def test_the_read_model_keeps_no_voter_either(app, secret_ballot):
    ballot, _ = secret_ballot
    app.project()
    with app.engine.connect() as conn:
        rows = list(conn.execute(sa.select(tables.votes).where(tables.votes.c.ballot == ballot)))
        sealed = list(conn.execute(sa.select(tables.sealed_authorisations)))
    assert len(rows) == 6 and all(r.voter is None for r in rows)
    # The proxy's written authorisation names the voter: kept inside the service, out of the record.
    assert len(sealed) == 1 and app.content.get(sealed[0].commitment).startswith("r003 authorises")


def test_each_voter_still_finds_their_vote_and_the_count_replays(app, secret_ballot):
    ballot, receipts = secret_ballot
    for voter, receipt in receipts.items():
        assert app.my_vote(COMMUNITY, ballot, voter)["receipt"] == receipt
    view = close(app, ballot)
    result = view["result"]
    assert (result["participating_heads"], result["agreeing_heads"], result["superseded"]) == (5, 3, 1)
    on_board = {e["receipt"]: e["choice"] for e in app.board(COMMUNITY, ballot)["entries"]}
    assert on_board[receipts["r000"]] == "disagree" and len(on_board) == 5
    report = app.retally(ballot)
    assert report["match"], report["differences"]


def test_the_key_is_made_once_kept_private_and_shared_by_instances(app, tmp_path, monkeypatch):
    key_file = tmp_path / SealingKey.FILE
    first = SealingKey(tmp_path).vote_id("b", "v")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SealingKey(tmp_path).vote_id("b", "v") == first  # another instance, the same key
    monkeypatch.setenv("CONSULT_DECISIONS_KEY", "k" * 32)
    assert SealingKey(tmp_path).vote_id("b", "v") != first
    monkeypatch.setenv("CONSULT_DECISIONS_KEY", "short")
    with pytest.raises(RuntimeError, match="at least 32"):
        SealingKey(tmp_path).vote_id("b", "v")
