"""The decisions application on SQLite: the worked example and its boundaries, votes and their
channels, the close, the publicity period, annulment, re-runs and emergencies."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import rules
from services.common import clock, metrics
from services.common.aggregate import derived_id
from services.common.consumer import EventSourcedSink
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.decisions import tables as t
from services.decisions.domain import Vote

from .decisions_fixtures import (  # noqa: F401 - app is a fixture
    CLOSES, COMMUNITY, EXAMPLE, LEAD, OPENS, RULES, T0, WORKER, any_app, app, close, events, open_ballot, residents,
    units, vote_all,
)


def numbers(result: dict) -> tuple:
    return (result["eligible_area"], result["eligible_heads"], result["participating_area"],
            result["participating_heads"], result["agreeing_area"], result["agreeing_heads"])


# ---- the worked example and its boundaries ---------------------------------------------------------
@pytest.mark.parametrize("preset, choices, outcome", [
    ("owners_ordinary", EXAMPLE, "adopted"),
    ("owners_major", EXAMPLE, "rejected"),
    ("owners_major", dict(EXAMPLE, Zhao="agree"), "adopted"),
])
def test_worked_example(app, preset, choices, outcome):
    ballot = open_ballot(app, preset)
    vote_all(app, ballot, choices)
    view = close(app, ballot)
    assert view["status"] == outcome
    agreeing = ("570", 6) if choices["Zhao"] == "agree" else ("480", 5)
    assert numbers(view["result"]) == ("870", 9, "660", 7, *agreeing)
    [resolution] = events(app, f"Resolution{outcome.capitalize()}", ballot)
    assert resolution["data"]["result"] == view["result"]
    if outcome == "rejected":
        assert set(view["result"]["failed"]) == {"approval_area", "approval_heads"}  # 480 < 495, 5 < 5.25


def test_quorum_met_exactly_at_580_square_metres_and_6_owners(app):
    ballot = open_ballot(app, "owners_ordinary")
    vote_all(app, ballot, {v: "agree" for v in ("Li", "Zhang", "Liu", "Chen", "Zhao", "Sun")})
    result = close(app, ballot)["result"]
    assert (result["participating_area"], result["participating_heads"]) == ("580", 6)
    assert result["quorum_met"] and [q["required"] for q in result["quorum"]] == ["580", "6"]


def test_quorum_missed_by_one_owner(app):
    ballot = open_ballot(app, "owners_ordinary")
    vote_all(app, ballot, {v: "agree" for v in ("Zhang", "Liu", "Chen", "Zhao", "Zhou")})  # 540 m², 5 owners
    view = close(app, ballot)
    assert view["status"] == "rejected" and not view["result"]["quorum_met"]


def test_exactly_three_quarters_passes_owners_major(app):
    # 8 owners and 800 m² take part; 6 owners and 600 m² agree: exactly 3/4 of both.
    ballot = open_ballot(app, "owners_major")
    vote_all(app, ballot, {"Liu": "agree", "Chen": "agree", "Zhao": "agree", "Sun": "agree", "Zhou": "agree",
                           "Wang": "disagree", "Zhang": "disagree"})
    app.cast_vote(WORKER, COMMUNITY, ballot, "developer", "agree", channel="paper", paper_serial="P-0001")
    view = close(app, ballot)
    assert numbers(view["result"])[2:] == ("800", 8, "600", 6)
    assert view["status"] == "adopted"


@pytest.mark.parametrize("choices, failed", [
    # 660 m² take part, exactly 330 m² agree (but 4 of 7 owners): area is not MORE than half
    ({"Wang": "agree", "Li": "agree", "Liu": "agree", "Zhou": "agree", "Zhang": "disagree", "Chen": "disagree",
      "Zhao": "abstain"}, ["approval_area"]),
    # 6 owners take part, exactly 3 agree (with 360 of 600 m²): heads are not MORE than half
    ({"Zhang": "agree", "Liu": "agree", "Zhou": "agree", "Wang": "disagree", "Li": "disagree",
      "developer": "disagree"}, ["approval_heads"]),
])
def test_exactly_half_fails_more_than_half(app, choices, failed):
    ballot = open_ballot(app, "owners_ordinary")
    for voter, choice in choices.items():
        channel = "paper" if voter == "developer" else "online"
        app.cast_vote(WORKER if voter == "developer" else voter, COMMUNITY, ballot, voter, choice, channel=channel,
                      paper_serial="P-9" if voter == "developer" else None)
    view = close(app, ballot)
    assert view["result"]["quorum_met"] and view["status"] == "rejected"
    assert view["result"]["failed"] == failed


# ---- configuration and opening -------------------------------------------------------------------------
def test_opening_needs_the_rules_notice(app):
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "drains", "community")
    too_soon = clock.format(T0 + timedelta(days=14))
    with pytest.raises(InvalidInput, match="15 days' notice"):
        app.configure_ballot(WORKER, COMMUNITY, ballot, preset="owners_major", voting_unit="owner",
                             opens_at=too_soon, closes_at=clock.format(CLOSES), community_rules=RULES,
                             facts_now=units())
    # A residents' ballot needs the community's 7 days.
    app.configure_ballot(WORKER, COMMUNITY, ballot, preset="residents_meeting", voting_unit="resident",
                         opens_at=clock.format(T0 + timedelta(days=7)), closes_at=clock.format(CLOSES),
                         community_rules=RULES, facts_now=residents(4))
    assert not events(app, "BallotOpened")


@pytest.mark.parametrize("category, preset, unit", [
    ("maintenance_fund_use", "residents_meeting", "resident"),  # the seed case: a residents' meeting on the fund
    ("rebuilding", "owners_ordinary", "owner"),
    ("shared_parts_use", "generic", "owner"),
])
def test_a_matter_of_art_278_is_not_configured_on_a_weaker_rule(app, category, preset, unit):
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "drains", "building", str(derived_id("b2")), category=category)
    head = app.head()
    with pytest.raises(InvalidInput, match=r"art\. 278"):
        app.configure_ballot(WORKER, COMMUNITY, ballot, preset=preset, voting_unit=unit,
                             opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), community_rules=RULES,
                             facts_now=units() if unit == "owner" else residents(4))
    assert app.head() == head and app.ballot_view(COMMUNITY, ballot)["status"] == "prepared"
    app.configure_ballot(WORKER, COMMUNITY, ballot, preset="owners_major", voting_unit="owner",
                         opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), community_rules=RULES,
                         facts_now=units())


def test_a_ballot_configured_before_the_check_does_not_open_on_a_weaker_rule(app):
    """Configured (as the record of an earlier release may hold) on a residents' rule for the use of
    the maintenance fund: at its opening time it is not opened, and says why."""
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "fund", "community", category="maintenance_fund_use")
    b = app.ballot(COMMUNITY, ballot)
    with app._context(b, WORKER):
        b._configured(rule=rules.residents_meeting().to_dict(), voting_unit="resident", candidates=[], options=[],
                      motion=None, opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), secret=False,
                      changeable=True, notice_days=7, publicity_days=7, proxy_limit=None)
    app.save(b)
    clock.set(OPENS)
    assert not app.open_ballot(ballot, residents(4))
    view = app.ballot_view(COMMUNITY, ballot)
    assert view["status"] == "prepared" and "art. 278" in view["not_opened_reason"]


@pytest.mark.parametrize("preset, unit", [("owners_ordinary", "resident"), ("residents_meeting", "owner"),
                                          ("council", "household")])
def test_each_preset_counts_its_own_voters(app, preset, unit):
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "drains", "community")
    with pytest.raises(InvalidInput, match=f"not {unit} votes"):
        app.configure_ballot(WORKER, COMMUNITY, ballot, preset=preset, voting_unit=unit,
                             opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), community_rules=RULES,
                             facts_now=units())


def test_the_open_ballots_rule_options_and_roll_are_frozen(app):
    ballot = open_ballot(app)
    head = app.head()
    with pytest.raises(Conflict, match="frozen"):
        app.configure_ballot(WORKER, COMMUNITY, ballot, preset="owners_major", voting_unit="owner",
                             opens_at=clock.format(OPENS + timedelta(days=30)),
                             closes_at=clock.format(CLOSES + timedelta(days=30)), community_rules=RULES,
                             facts_now=units())
    assert app.head() == head
    [opened] = events(app, "BallotOpened", ballot)
    assert opened["data"]["rule"]["preset"] == "owners_ordinary"
    assert len(opened["data"]["roll"]) == 9 and len(opened["data"]["roll_hash"]) == 64
    zhang = next(e for e in opened["data"]["roll"] if e["voter"] == "Zhang")
    assert zhang == {"voter": "Zhang", "weight": "150", "headcount": 1, "units": ["u201", "u202"]}


def test_a_roll_that_cannot_be_built_leaves_the_ballot_unopened(app):
    co_owned = units() + [{"unit": "u601", "label": "601", "building": "b2", "area": "80", "owners": ["Ma", "Hu"],
                           "representative": None, "developer_unsold": False}]
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "drains", "community")
    app.configure_ballot(WORKER, COMMUNITY, ballot, preset="owners_ordinary", voting_unit="owner",
                         opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), community_rules=RULES,
                         facts_now=units())
    clock.set(OPENS)
    assert not app.open_ballot(ballot, co_owned)
    view = app.ballot_view(COMMUNITY, ballot)
    assert view["status"] == "prepared" and "designated" in view["not_opened_reason"]


def test_household_roll_counts_households_with_an_adult(app):
    facts = residents(6, minors=2) + [{"person": "kid", "household": "h-kids-only", "adult": False}]
    ballot = open_ballot(app, "residents_meeting", "household", facts=facts)
    assert [e["voter"] for e in app.roll(COMMUNITY, ballot)["roll"]] == ["h000", "h001", "h002"]


# ---- votes ------------------------------------------------------------------------------------------------
def test_a_voter_off_the_roll_is_refused_and_nothing_is_recorded(app):
    ballot = open_ballot(app)
    head = app.head()
    with pytest.raises(Forbidden, match="not on this ballot's voter roll"):
        app.cast_vote("tenant", COMMUNITY, ballot, "tenant", "agree")
    with pytest.raises(InvalidInput, match="invalid choice"):
        app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "maybe")
    assert app.head() == head


def test_a_vote_given_its_ballot_reads_it_once(app, monkeypatch):
    """Each read of a cached ballot asks the store for its new events: the service reads the ballot
    for the roll and hands it on (`loaded`), and whether the close came first is what the vote's own
    read-model transaction found, so a vote reads it once (three times before, then twice)."""
    ballot = open_ballot(app)
    reads = []
    get = app.repository.get
    monkeypatch.setattr(app.repository, "get", lambda agg_id, **kw: reads.append(str(agg_id)) or get(agg_id, **kw))
    loaded = app.ballot(COMMUNITY, ballot, copy=False)
    receipt = app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree", loaded=loaded)
    assert receipt["ballot"] == ballot and receipt["choice"] == "agree"
    assert reads.count(ballot) == 1  # the service's read
    reads.clear()
    app.cast_vote("Zhao", COMMUNITY, ballot, "Zhao", "agree")
    assert reads.count(ballot) == 1  # without it, the application reads it itself


def test_a_vote_reads_no_log_head_where_its_process_recorded_nothing_past_its_read_model(any_app, monkeypatch):
    """Every writer of the store comes through the read model's locked tracking row, so the save
    takes the log's head to be where the read model stands: one round trip fewer for every command
    (the head was read before each save; tests/unit/test_actions_app.py has the wrong guesses)."""
    app = any_app
    ballot = open_ballot(app)
    reads = []
    head = app.recorder.max_notification_id
    monkeypatch.setattr(app.recorder, "max_notification_id", lambda: reads.append(1) or head())
    applied = metrics.PROJECTED_AHEAD.labels("decisions", "applied")._value.get()
    receipt = app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    assert reads == [] and receipt["version"] == 1
    assert metrics.PROJECTED_AHEAD.labels("decisions", "applied")._value.get() == applied + 1
    assert head() == app.known_head == app.projection.position("decisions")


def _closed_just_before_the_vote_is_saved(app, monkeypatch, ballot: str) -> None:
    """The race a vote's check guards against: the deadline timer records BallotClosed after the vote
    was checked against an open ballot and before the vote is saved."""
    save = app._save

    def close_first(*aggregates, **kw):
        if any(isinstance(a, Vote) for a in aggregates):
            monkeypatch.setattr(app, "_save", save)
            b = app._ballot_by_id(ballot)
            with app._context(b, "system"):
                b.close("closing_time", clock.now())
            app.save(b)
        return save(*aggregates, **kw)

    monkeypatch.setattr(app, "_save", close_first)


def test_a_vote_recorded_just_after_the_close_is_told_it_does_not_count(any_app, monkeypatch):
    """The vote's read-model transaction applies it after the close, and that verdict is the
    voter's answer: recorded, not counted, and said so."""
    ballot = open_ballot(any_app)
    _closed_just_before_the_vote_is_saved(any_app, monkeypatch, ballot)
    with pytest.raises(Conflict, match="voting closed before this vote was recorded"):
        any_app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    [cast] = events(any_app, "VoteCast")
    assert cast["position"] > events(any_app, "BallotClosed", ballot)[0]["position"]
    with any_app.engine.connect() as conn:
        row = conn.execute(sa.select(t.votes.c.late, t.votes.c.current).where(t.votes.c.ballot == ballot)).one()
        assert tuple(row) == (True, False)
        assert conn.execute(sa.select(t.ballots.c.voted).where(t.ballots.c.id == ballot)).scalar() == 0


def test_a_vote_whose_read_model_caught_up_instead_is_checked_against_the_log(any_app, monkeypatch):
    """When the vote's read-model transaction did not commit it (another writer took the position
    it expected; here, the read model never applies ahead), the check reads the ballot again and
    asks the read model where the close is: the same answer."""
    from services.common import consumer

    monkeypatch.setattr(consumer, "AHEAD_ATTEMPTS", 0)  # rehearse, record, catch up: no apply ahead
    ballot = open_ballot(any_app)
    any_app.cast_vote("Zhao", COMMUNITY, ballot, "Zhao", "agree")  # counts: the ballot is still open
    _closed_just_before_the_vote_is_saved(any_app, monkeypatch, ballot)
    with pytest.raises(Conflict, match="voting closed before this vote was recorded"):
        any_app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    with any_app.engine.connect() as conn:
        assert conn.execute(sa.select(t.ballots.c.voted).where(t.ballots.c.id == ballot)).scalar() == 1


def test_a_close_recorded_between_the_vote_s_apply_and_its_insert_is_found(any_app, monkeypatch):
    """The race itself: another instance records BallotClosed after the vote's read-model
    transaction applied the vote and before the vote is inserted. The vote lands one position
    later than the transaction applied it, so that transaction rolls back (what it found is not
    used), the catch-up applies the close and then the vote, and the voter is told it does not count."""
    from eventsourcing.application import Application, ProcessingEvent

    app = any_app
    ballot = open_ballot(app)
    insert = app.recorder.insert_events
    armed = []

    def close_first(stored_events, **kwargs):
        if armed:
            armed.clear()
            b = app._ballot_by_id(ballot)
            with app._context(b, "system"):
                b.close("closing_time", clock.now())
            processing = ProcessingEvent()
            processing.collect_events(b)
            Application._record(app, processing)  # recorded, not applied: another instance's save
        return insert(stored_events, **kwargs)

    monkeypatch.setattr(app.recorder, "insert_events", close_first)
    save = app._save
    monkeypatch.setattr(app, "_save", lambda *a, **kw: armed.append(1) or save(*a, **kw))
    with pytest.raises(Conflict, match="voting closed before this vote was recorded"):
        app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    assert not armed  # the close did come in between
    with app.engine.connect() as conn:
        row = conn.execute(sa.select(t.votes.c.late, t.votes.c.current).where(t.votes.c.ballot == ballot)).one()
        assert tuple(row) == (True, False)
        assert conn.execute(sa.select(t.ballots.c.voted).where(t.ballots.c.id == ballot)).scalar() == 0


@pytest.mark.parametrize("secret", [False, True])
def test_a_first_vote_is_one_statement_on_postgresql_and_two_on_sqlite(any_app, secret):
    """On PostgreSQL the ballot's row (one more voter, unless the close came first) and the vote's row
    go in one statement; SQLite, without data-modifying WITH, takes two. The rows are the same."""
    app = any_app
    ballot = open_ballot(app, secret=secret)
    seen = []
    sa.event.listen(app.engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    touching = [s for s in seen if "decisions_ballots" in s or "decisions_votes" in s]
    assert len(touching) == (1 if app.engine.dialect.name == "postgresql" else 2)
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(t.ballots.c.voted).where(t.ballots.c.id == ballot)).scalar() == 1
        row = conn.execute(sa.select(t.votes).where(t.votes.c.ballot == ballot)).one()
    assert (row.current, row.late, row.version, row.headcount) == (True, False, 1, 1)
    assert row.choice == (None if secret else "agree")  # a sealed choice is JSON null until revealed
    assert row.position == events(app, "VoteCast")[0]["position"]


def test_a_first_vote_moves_its_ballots_row_in_one_statement(app):
    """The read model learns whether the close came first and counts one more voter in one
    statement: the vote's save waits for each round trip, and decisions with it."""
    ballot = open_ballot(app)
    seen = []
    sa.event.listen(app.engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    assert [s.split()[0].upper() for s in seen if "decisions_ballots" in s] == ["UPDATE"]
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(t.ballots.c.voted).where(t.ballots.c.id == ballot)).scalar() == 1


def test_votes_after_the_closing_time_are_refused(app):
    ballot = open_ballot(app)
    clock.set(CLOSES)  # the timer has not run yet: the clock decides
    with pytest.raises(Conflict, match="voting closed"):
        app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    close(app, ballot)
    with pytest.raises(Conflict, match="no longer accepted"):
        app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    assert not events(app, "VoteCast")


def test_a_changed_vote_replaces_the_earlier_one_and_both_are_kept(app):
    ballot = open_ballot(app, changeable=True)
    first = app.cast_vote("Zhao", COMMUNITY, ballot, "Zhao", "abstain")
    second = app.cast_vote("Zhao", COMMUNITY, ballot, "Zhao", "agree")
    assert second["version"] == 2 and second["receipt"] != first["receipt"]
    vote_all(app, ballot, {k: v for k, v in EXAMPLE.items() if k != "Zhao"})
    result = close(app, ballot)["result"]
    assert (result["agreeing_heads"], result["superseded"]) == (6, 1)
    assert [e["data"]["choice"] for e in events(app) if e["type"].startswith("Vote")
            and e["data"].get("voter") == "Zhao"] == ["abstain", "agree"]


def test_an_unchangeable_vote_stands(app):
    ballot = open_ballot(app, changeable=False)
    first = app.cast_vote("Zhao", COMMUNITY, ballot, "Zhao", "abstain")
    with pytest.raises(Conflict, match=f"receipt {first['receipt']} stands"):
        app.cast_vote("Zhao", COMMUNITY, ballot, "Zhao", "agree")
    assert app.my_vote(COMMUNITY, ballot, "Zhao")["choice"] == "abstain"


@pytest.mark.parametrize("first", ["paper", "online"])
def test_the_first_recorded_channel_stands_and_the_other_is_refused_and_kept(app, first):
    ballot = open_ballot(app)

    def paper():
        return app.cast_vote(WORKER, COMMUNITY, ballot, "Sun", "agree", channel="paper", paper_serial="S-17")

    def online():
        return app.cast_vote("Sun", COMMUNITY, ballot, "Sun", "disagree")

    steps = [paper, online] if first == "paper" else [online, paper]
    steps[0]()
    with pytest.raises(Conflict, match="one channel"):
        steps[1]()
    kinds = [e["type"] for e in events(app) if e["type"].startswith("Vote")]
    assert kinds == ["VoteCast", "VoteRefused"]
    refused = events(app, "VoteRefused")[0]
    assert refused["data"]["channel"] == ("online" if first == "paper" else "paper")
    result = close(app, ballot)["result"]
    assert result["agreeing_heads"] == (1 if first == "paper" else 0) and result["ballots"] == 1


def test_a_paper_serial_is_entered_once(app):
    ballot = open_ballot(app)
    app.cast_vote(WORKER, COMMUNITY, ballot, "Sun", "agree", channel="paper", paper_serial="S-1")
    with pytest.raises(Conflict, match="serial S-1"):
        app.cast_vote(WORKER, COMMUNITY, ballot, "Chen", "agree", channel="paper", paper_serial="S-1")


def test_everyone_voting_closes_the_ballot_early(app):
    ballot = open_ballot(app, "council", "council", facts=["m1", "m2", "m3"])
    vote_all(app, ballot, {"m1": "agree", "m2": "agree"})
    assert app.due_to_close(clock.now()) == []
    app.cast_vote("m3", COMMUNITY, ballot, "m3", "disagree")
    assert app.due_to_close(clock.now()) == [(ballot, "all_voted")]  # the deadline timer closes it
    app.close_ballot(ballot, "all_voted")
    view = app.ballot_view(COMMUNITY, ballot)
    assert view["status"] == "adopted" and events(app, "BallotClosed")[0]["data"]["reason"] == "all_voted"


def test_a_vote_recorded_after_the_close_does_not_count(app):
    """The race the two-step close guards against: a vote checked while the ballot was open but
    recorded after BallotClosed is kept in the record and not counted, by the service or a replay."""
    ballot = open_ballot(app)
    vote_all(app, ballot, EXAMPLE)
    b = app._ballot_by_id(ballot)
    with app._context(b, "system"):
        b.close("closing_time", clock.now())
    app.save(b)
    with app._context(b, "Sun"):
        late = Vote.cast(derived_id("vote", ballot, "Sun"), community=COMMUNITY, ballot=ballot, voter="Sun",
                         choice="agree", weight="90", headcount=1, channel="online")
    app.save(late)
    assert app.resolve_ballot(ballot)
    view = app.ballot_view(COMMUNITY, ballot)
    assert numbers(view["result"]) == ("870", 9, "660", 7, "480", 5)
    report = app.retally(ballot)
    assert report["match"] and report["late_votes"] == 1
    assert all(e["receipt"] != late.receipt for e in app.board(COMMUNITY, ballot)["entries"])


def test_methods_with_options_choose_among_them(app):
    options = [{"id": "pipes", "title": "replace the pipes"}, {"id": "clean", "title": "clean the drains"},
               {"id": "pump", "title": "install a pump"}]
    ballot = open_ballot(app, "generic", "resident", facts=residents(5), options=options, method="schulze")
    rankings = [["clean", "pipes"], ["clean", "pump", "pipes"], ["pipes", "clean"], ["pump", "clean"], "abstain"]
    for i, ranking in enumerate(rankings):
        app.cast_vote(f"r{i:03}", COMMUNITY, ballot, f"r{i:03}", ranking)
    view = close(app, ballot)
    assert view["status"] == "adopted" and view["result"]["winner"] == "clean"
    assert view["result"]["pairwise"]["clean"]["pipes"] == 3


def test_a_single_option_is_a_motion_on_it(app):
    ballot = open_ballot(app, options=[{"id": "rebuild", "title": "rebuild the drains"}])
    vote_all(app, ballot, EXAMPLE)
    close(app, ballot)
    clock.set(CLOSES + timedelta(days=8))
    for due in app.due_to_finalise(clock.now()):
        app.finalise(due)
    [final] = events(app, "ResolutionFinal", ballot)
    assert final["data"]["outcome"] == "adopted" and final["data"]["winner"]["id"] == "rebuild"


# ---- the bulletin board ---------------------------------------------------------------------------------
def test_every_voter_finds_their_receipt_and_choices_appear_after_closing(app):
    ballot = open_ballot(app)
    receipts = {v: r["receipt"] for v, r in vote_all(app, ballot, EXAMPLE).items()}
    board = app.board(COMMUNITY, ballot)
    assert sorted(e["receipt"] for e in board["entries"]) == sorted(receipts.values())
    assert not board["revealed"] and "choice" not in board["entries"][0]
    close(app, ballot)
    found = app.board(COMMUNITY, ballot, receipt=receipts["Chen"])["entries"]
    assert found == [{"receipt": receipts["Chen"], "choice": "disagree", "weight": "90", "headcount": 1,
                      "channel": "online"}]


# ---- the publicity period, annulment, re-run ---------------------------------------------------------------
def resolved(app, preset="owners_ordinary"):
    ballot = open_ballot(app, preset)
    vote_all(app, ballot, EXAMPLE)
    close(app, ballot)
    return ballot


def test_an_upheld_objection_annuls_the_resolution_and_the_ballot_is_rerun(app):
    ballot = resolved(app)
    objection = app.lodge_objection("Sun", COMMUNITY, ballot, "I was abroad and never got the notice")["objection"]
    with pytest.raises(Forbidden, match="party-committee lead"):
        app.rule_on_objection(WORKER, ["community_worker"], COMMUNITY, ballot, objection, True, "agreed")
    view = app.rule_on_objection(LEAD, ["party_lead"], COMMUNITY, ballot, objection, True, "notice not delivered")
    assert view["status"] == "annulled" and view["objections"][0]["upheld"] is True
    assert [e["type"] for e in events(app, aggregate=ballot)][-2:] == ["ObjectionRuled", "ResolutionAnnulled"]
    clock.set(CLOSES + timedelta(days=30))
    assert ballot not in app.due_to_finalise(clock.now())
    rerun = app.rerun_ballot(WORKER, COMMUNITY, ballot)
    new = app.ballot_view(COMMUNITY, rerun)
    assert (new["status"], new["rerun_of"], new["case"]) == ("prepared", ballot, view["case"])
    assert new["suggested_rule"]["preset"] == "owners_ordinary"
    with pytest.raises(Conflict, match="already been re-run"):
        app.rerun_ballot(WORKER, COMMUNITY, ballot)


def test_the_resolution_is_final_after_the_publicity_period_once_objections_are_ruled(app):
    ballot = resolved(app)
    objection = app.lodge_objection("Sun", COMMUNITY, ballot, "the count is wrong")["objection"]
    clock.set(CLOSES + timedelta(days=7))  # the publicity period is over ...
    with pytest.raises(Conflict, match="publicity period ended"):
        app.lodge_objection("Chen", COMMUNITY, ballot, "too late")
    assert app.due_to_finalise(clock.now()) == []  # ... but an objection waits for its ruling
    app.rule_on_objection(LEAD, ["party_lead"], COMMUNITY, ballot, objection, False, "recounted: correct")
    assert app.due_to_finalise(clock.now()) == [ballot]
    assert app.finalise(ballot)
    [final] = events(app, "ResolutionFinal", ballot)
    assert final["data"]["outcome"] == "adopted" and final["data"]["summary"]["agreeing_area"] == "480"
    with pytest.raises(Conflict, match="only be changed by a new case"):
        app.annul_ballot(WORKER, COMMUNITY, ballot, "changed our minds")


def test_a_worker_annuls_an_open_ballot_with_a_reason(app):
    ballot = open_ballot(app)
    app.cast_vote("Wang", COMMUNITY, ballot, "Wang", "agree")
    view = app.annul_ballot(WORKER, COMMUNITY, ballot, "the notice listed the wrong building")
    assert view["status"] == "annulled" and view["annulment"]["reason"] == "the notice listed the wrong building"
    with pytest.raises(Conflict, match="annulled"):
        app.cast_vote("Li", COMMUNITY, ballot, "Li", "agree")


def test_a_concluded_deliberation_prepares_a_ballot_whose_convener_rules_on_objections(app):
    sink = EventSourcedSink(app, app.on_deliberation_event)  # as the service's tracked consumer runs it
    env = {"type": "DeliberationConcluded", "id": "e1", "position": 7, "community": COMMUNITY, "case": "proposal-1",
           "data": {"consultation": "cons-1", "proposal": "proposal-1", "scope": "community", "scope_id": None,
                    "category": "drainage", "outcome": "vote_needed", "convener": "Liu", "title_commitment": "t" * 64,
                    "summary_commitment": "s" * 64, "options": [{"id": "o1", "title_commitment": "a" * 64,
                                                                  "description_commitment": None}]}}
    assert sink.handle("deliberation", env)
    assert not sink.handle("deliberation", env)  # a duplicate delivery changes nothing
    ballot = str(derived_id("ballot", "cons-1"))
    view = app.ballot_view(COMMUNITY, ballot)
    assert (view["status"], view["case"], view["convener"], view["options"][0]["id"]) == (
        "prepared", "proposal-1", "Liu", "o1")
    prepared = events(app, "BallotPrepared", ballot)[0]
    assert (prepared["actor"], prepared["causation"]) == ("system", "e1")
    b = app.ballot(COMMUNITY, ballot)
    assert b.may_rule("Liu", []) and not b.may_rule(LEAD, ["party_lead"])
    assert sink.handle("deliberation", dict(env, id="e2", position=8, data=dict(env["data"], outcome="agreed")))
    assert sink.handle("deliberation", dict(env, id="e3", position=9))  # concluded again: a further ballot
    assert len(events(app, "BallotPrepared")) == 2


# ---- the emergency path -----------------------------------------------------------------------------------
def test_an_emergency_is_declared_by_a_worker_and_the_lead_together(app):
    ballot = app.declare_emergency(WORKER, ["community_worker"], COMMUNITY, "化粪池 overflowing into 3 flats",
                                   title="drains of building 2", category="drainage")
    with pytest.raises(Forbidden, match="someone else"):
        app.confirm_emergency(WORKER, ["community_worker", "party_lead"], COMMUNITY, ballot)
    with pytest.raises(Forbidden, match="party lead to confirm"):
        app.confirm_emergency("worker-2", ["community_worker"], COMMUNITY, ballot)
    view = app.confirm_emergency(LEAD, ["party_lead"], COMMUNITY, ballot)
    assert view["status"] == "final" and view["outcome"] == "emergency"
    assert view["emergency"]["justification"] == "化粪池 overflowing into 3 flats"
    [final] = events(app, "ResolutionFinal", ballot)
    assert final["data"]["outcome"] == "emergency" and final["data"]["justification_commitment"]
    assert final["case"] == ballot
    with pytest.raises(Forbidden):
        app.declare_emergency("resident", ["resident"], COMMUNITY, "x", title="y")


def test_an_emergency_cannot_replace_an_open_vote(app):
    ballot = open_ballot(app)
    with pytest.raises(Conflict, match="the ballot is open"):
        app.declare_emergency(LEAD, ["party_lead"], COMMUNITY, "flooding", ballot_id=ballot)


def test_tenancy(app):
    ballot = open_ballot(app)
    with pytest.raises(NotFound):
        app.ballot_view("another-community", ballot)
    with pytest.raises(NotFound):
        app.cast_vote("Wang", "another-community", ballot, "Wang", "agree")


def test_every_command_naming_a_ballot_of_another_community_is_not_found_and_records_nothing(app):
    ballot = resolved(app)
    objection = app.lodge_objection("Sun", COMMUNITY, ballot, "the count is wrong")["objection"]
    other = "another-community"
    head = app.head()
    commands = [
        lambda: app.declare_emergency(LEAD, ["party_lead"], other, "flooding", ballot_id=ballot),
        lambda: app.confirm_emergency(LEAD, ["party_lead"], other, ballot),
        lambda: app.lodge_objection("Sun", other, ballot, "x"),
        lambda: app.rule_on_objection(LEAD, ["party_lead"], other, ballot, objection, True, "x"),
        lambda: app.annul_ballot(WORKER, other, ballot, "x"),
        lambda: app.rerun_ballot(WORKER, other, ballot),
        lambda: app.authorise_proxy("Sun", other, ballot, "Sun", "Zhou"),
        lambda: app.revoke_proxy("Sun", other, ballot, "Sun"),
        lambda: app.cast_vote(WORKER, other, ballot, "Sun", "agree", channel="paper", paper_serial="X"),
        lambda: app.configure_ballot(WORKER, other, ballot, preset="owners_ordinary", voting_unit="owner",
                                     opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES),
                                     community_rules=RULES, facts_now=units()),
    ]
    for command in commands:
        with pytest.raises(NotFound, match="does not exist"):
            command()
    assert app.head() == head
    for read in (app.board, app.roll, app.ballot_view, app.my_vote, app.proxy_view):
        with pytest.raises(NotFound):
            read(other, ballot, *(["Sun"] if read.__name__ in ("my_vote", "proxy_view") else []))
    assert app.list_ballots(other) == []
    # An objection id of another ballot is not found on this one either.
    second = resolved(app)
    with pytest.raises(NotFound, match=f"objection {objection} does not exist"):
        app.rule_on_objection(LEAD, ["party_lead"], COMMUNITY, second, objection, True, "x")


def test_an_annulled_ballot_closed_without_a_re_run(app):
    """Issue 17.1: a worker or the lead says an annulled ballot will not be re-run (BallotAbandoned),
    with a reason; the case then ends as annulled, and a re-run is refused."""
    from rules.endings import ending_of

    ballot = open_ballot(app)
    with pytest.raises(Conflict, match="close the ballot without a re-run"):
        app.abandon_ballot(WORKER, ["community_worker"], COMMUNITY, ballot, "not needed")
    app.annul_ballot(WORKER, COMMUNITY, ballot, "the notice listed the wrong building")
    with pytest.raises(Forbidden):
        app.abandon_ballot("Wang", ["owner"], COMMUNITY, ballot, "not needed")
    view = app.abandon_ballot(WORKER, ["community_worker"], COMMUNITY, ballot, "the building repaired it itself")
    assert view["status"] == "annulled" and view["abandoned"]["reason"] == "the building repaired it itself"
    [abandoned] = events(app, "BallotAbandoned", ballot)
    assert abandoned["data"]["annulment"] == "worker" and ending_of(abandoned).outcome == "annulled"
    with pytest.raises(Conflict, match="will not be re-run"):
        app.rerun_ballot(WORKER, COMMUNITY, ballot)
    with pytest.raises(Conflict, match="already been closed"):
        app.abandon_ballot(LEAD, ["party_lead"], COMMUNITY, ballot, "again")
