"""Secret ballots: while voting is open the record holds each vote's receipt, the seal of its choice
and its weight, never who cast it nor what they chose; the count reveals the choices, and anyone
can then recount from the record.

Read with the frozen roll in hand, the events do not link a voter to a vote: the vote aggregate id
is an HMAC under the service's key, the actor is "sealed", and nothing else names the voter.
"""
from __future__ import annotations

import hashlib
import json
import stat

import pytest
import sqlalchemy as sa

import rules
from rules.record import replay_ballot, tally_record
from services.audit.replay import replay
from services.common import clock, config
from services.common.aggregate import derived_id
from services.common.envelope import canonical
from services.decisions import tables
from services.decisions.application import SealingKey
from services.decisions.domain import Vote

from .decisions_fixtures import COMMUNITY, WORKER, app, close, events, open_ballot, residents  # noqa: F401

VOTERS = [f"r{i:03}" for i in range(6)]
CHOICES = ('"agree"', '"disagree"', '"abstain"')


@pytest.fixture
def secret_ballot(app):
    ballot = open_ballot(app, "residents_meeting", "resident", facts=residents(6), secret=True, changeable=True)
    receipts = {}
    for voter, choice in zip(VOTERS[:3], ["agree", "agree", "disagree"]):
        receipts[voter] = app.cast_vote(voter, COMMUNITY, ballot, voter, choice)["receipt"]
    receipts["r000"] = app.cast_vote("r000", COMMUNITY, ballot, "r000", "disagree")["receipt"]  # changed
    app.authorise_proxy("r003", COMMUNITY, ballot, "r003", "r004")
    receipts["r003"] = app.cast_vote("r004", COMMUNITY, ballot, "r003", "agree", channel="proxy")["receipt"]
    receipts["r005"] = app.cast_vote(WORKER, COMMUNITY, ballot, "r005", "agree", channel="paper",
                                     paper_serial="P-5")["receipt"]
    return ballot, receipts


def vote_events(app) -> list[dict]:
    return [e for e in events(app) if e["type"] in ("VoteCast", "VoteChanged", "VoteRefused")]


def test_the_record_does_not_link_voters_and_votes(app, secret_ballot):
    ballot, _receipts = secret_ballot
    [opened] = events(app, "BallotOpened", ballot)
    roll_voters = [e["voter"] for e in opened["data"]["roll"]]
    assert roll_voters == VOTERS  # the roll itself is public
    # What someone holding the roll could try: every id derivable from a voter id without the key.
    guesses = set(roll_voters) | {str(derived_id(kind, ballot, v)) for v in roll_voters
                                  for kind in ("vote", "proxy", "proxy-holder")}
    sealed_events = vote_events(app) + [e for e in events(app) if e["type"].startswith("Proxy")]
    assert len(vote_events(app)) == 6
    for env in sealed_events:
        assert env["actor"] == "sealed" and env["causation"] is None
        text = canonical(env).decode()
        assert not any(g in text for g in guesses), f"{env['type']} names a voter"
    for env in vote_events(app):
        assert env["data"]["voter"] is None and env["data"]["proxy_authorisation_commitment"] is None
        assert set(env["data"]) >= {"receipt", "weight", "headcount"}
    paper = next(e for e in vote_events(app) if e["data"]["channel"] == "paper")
    assert paper["data"]["entered_by"] == WORKER  # the clerk, not the voter
    proxy = next(e for e in vote_events(app) if e["data"]["channel"] == "proxy")
    assert proxy["data"]["cast_by"] is None and len(proxy["data"]["cast_by_seal"]) == 64  # who cast it: sealed
    [authorised] = events(app, "ProxyAuthorised")
    assert (authorised["data"]["principal"], authorised["data"]["holder"]) == (None, None)


def test_while_open_each_vote_carries_only_a_seal_of_its_choice(app, secret_ballot):
    ballot, receipts = secret_ballot
    for env in vote_events(app):
        if env["type"] == "VoteRefused":
            continue
        data = env["data"]
        assert env["event_version"] == 2
        assert data["choice"] is None and data["nonce"] is None and len(data["sealed_choice"]) == 64
        assert not any(c in canonical(data).decode() for c in CHOICES), "a choice in the clear"
        # The receipt binds the seal (anyone can recompute it from the event), never the choice.
        payload = {"ballot": ballot, "vote": env["aggregate"]["id"], "version": env["aggregate"]["version"],
                   "sealed_choice": data["sealed_choice"]}
        assert data["receipt"] == hashlib.sha256(canonical(payload)).hexdigest()
    # Every read while open: no choice, no turnout, no list of receipts to watch grow.
    view = app.ballot_view(COMMUNITY, ballot)
    assert view["voted"] is None and view["revealed"] is False
    assert [b["voted"] for b in app.list_ballots(COMMUNITY)] == [None]
    assert app.board(COMMUNITY, ballot)["entries"] == []
    assert app.board(COMMUNITY, ballot, receipt=receipts["r001"])["entries"] == [{"receipt": receipts["r001"]}]
    # The read model holds no choice either until the reveal.
    app.project()
    with app.engine.connect() as conn:
        assert {r.choice for r in conn.execute(sa.select(tables.votes.c.choice))} == {None}


def test_the_read_model_keeps_no_voter_either(app, secret_ballot):
    ballot, _ = secret_ballot
    app.project()
    with app.engine.connect() as conn:
        rows = list(conn.execute(sa.select(tables.votes).where(tables.votes.c.ballot == ballot)))
        proxies = list(conn.execute(sa.select(tables.proxies)))
        sealed = list(conn.execute(sa.select(tables.sealed_proxies)))
    assert len(rows) == 6 and all(r.voter is None for r in rows)
    assert [(p.principal, p.holder, p.active) for p in proxies] == [(None, None, True)]
    # Who holds the proxy is kept inside the service, out of the record.
    assert [s.holder for s in sealed] == ["r004"]


def test_each_voter_finds_their_vote_and_checks_its_seals(app, secret_ballot):
    ballot, receipts = secret_ballot
    for voter, receipt in receipts.items():
        assert app.my_vote(COMMUNITY, ballot, voter)["receipt"] == receipt
    mine = app.my_vote(COMMUNITY, ballot, "r003")
    assert (mine["choice"], mine["channel"], mine["cast_by"]) == ("agree", "proxy", "r004")
    [cast] = [e for e in vote_events(app) if e["data"]["receipt"] == receipts["r003"]]
    seals = mine["seals"]
    assert rules.seal(mine["choice"], seals["salt"]) == cast["data"]["sealed_choice"] == seals["sealed_choice"]
    assert rules.seal(mine["cast_by"], seals["cast_by_salt"]) == cast["data"]["cast_by_seal"]


def test_the_count_reveals_every_choice_and_anyone_recounts_it(app, secret_ballot):
    ballot, receipts = secret_ballot
    view = close(app, ballot)
    result = view["result"]
    assert (result["participating_heads"], result["agreeing_heads"], result["superseded"]) == (5, 3, 1)
    assert view["voted"] == 5 and view["revealed"] is True
    [revealed] = events(app, "VotesRevealed", ballot)
    assert len(revealed["data"]["reveals"]) == 6 and (revealed["data"]["part"], revealed["data"]["parts"]) == (1, 1)
    # From the record alone (what the audit log holds): the seals open, and the count is the same.
    record = replay_ballot(events(app), ballot)
    assert tally_record(record.opened, record.votes, record.reveals).to_dict() == result
    assert replay(events(app))["ballots"][ballot]["matches_record"] is True
    on_board = {e["receipt"]: e["choice"] for e in app.board(COMMUNITY, ballot)["entries"]}
    assert on_board[receipts["r000"]] == "disagree" and len(on_board) == 5
    report = app.retally(ballot)
    assert report["match"] and report["revealed"] == 6, report["differences"]


def test_a_reveal_that_does_not_open_its_seal_is_a_mismatch(app, secret_ballot):
    ballot, _ = secret_ballot
    close(app, ballot)
    envs = events(app)
    revealed = next(e for e in envs if e["type"] == "VotesRevealed")
    first = revealed["data"]["reveals"][0]
    first["choice"] = "agree" if first["choice"] != "agree" else "disagree"  # a forged reveal
    record = replay_ballot(envs, ballot)
    with pytest.raises(rules.InvalidReveal, match="does not open its seal"):
        tally_record(record.opened, record.votes, record.reveals)
    state = replay(envs)["ballots"][ballot]
    assert state["matches_record"] is False and "does not open its seal" in state["recount_error"]


def test_a_closed_ballot_waiting_for_its_count_is_not_compared_yet(app, secret_ballot):
    ballot, _ = secret_ballot
    b = app._ballot_by_id(ballot)
    with app._context(b, "system"):  # closed; the count (the reveal and the resolution) comes next
        b.close("closing_time", clock.now())
    app.save(b)
    state = replay(events(app))["ballots"][ballot]
    assert state["status"] == "closed" and state["matches_record"] is None and state["voted"] is None
    assert "not been revealed yet" in state["recount_error"]


def test_version_1_votes_are_upcast_and_still_count(app):
    """A vote stored before the seals (VoteCast 1: no sealed_choice, cast_by ...) reads as version 2."""
    ballot = open_ballot(app, "residents_meeting", "resident", facts=residents(4))
    app.cast_vote("r000", COMMUNITY, ballot, "r000", "agree")
    [stored] = [n for n in app.recorder.select_notifications(start=1, limit=100) if n.topic.endswith("VoteCast")]
    state = json.loads(stored.state)
    old = {k: v for k, v in state.items() if k not in ("sealed_choice", "cast_by", "cast_by_seal", "class_version")}
    event = app.mapper.to_domain_event(type(stored)(**{**stored.__dict__, "state": json.dumps(old).encode()}))
    assert isinstance(event, Vote.VoteCast)
    assert (event.sealed_choice, event.cast_by, event.cast_by_seal, event.choice) == (None, None, None, "agree")


def test_the_key_is_made_once_kept_private_and_shared_by_instances(app, tmp_path, monkeypatch):
    key_file = tmp_path / SealingKey.FILE
    first = SealingKey(tmp_path).vote_id("b", "v")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SealingKey(tmp_path).vote_id("b", "v") == first  # another instance, the same key
    monkeypatch.setenv("CONSULT_DECISIONS_KEY", "k" * 32)
    configured = config.load()
    assert "k" * 32 not in repr(configured)  # a secret never printed with the settings
    assert SealingKey(tmp_path, configured.decisions_key).vote_id("b", "v") != first
    monkeypatch.setenv("CONSULT_DECISIONS_KEY", "short")
    with pytest.raises(RuntimeError, match="at least 32"):
        SealingKey(tmp_path, config.load().decisions_key).vote_id("b", "v")
