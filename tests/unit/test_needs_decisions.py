"""The decisions stage's "what needs me": ballots open to the person that they have not voted on,
and for a community worker or the party-committee lead the ballots still to be set up."""
from __future__ import annotations

from datetime import timedelta

from services.common import clock

from .decisions_fixtures import (  # noqa: F401 - app is a fixture
    CLOSES, COMMUNITY, LEAD, OPENS, RULES, T0, WORKER, app, open_ballot, residents, units, vote_all,
)

OTHER = "c0ffee00-0000-4000-8000-000000000002"
RESIDENT = ["resident"]


def kinds(app, person, roles=RESIDENT, community=COMMUNITY) -> list[tuple[str, str]]:
    return [(n["kind"], n["id"]) for n in app.needs_of(community, person, roles)]


def test_an_open_ballot_needs_the_vote_of_each_voter_on_its_roll_until_they_vote(app):
    ballot = open_ballot(app)  # building 2's owners
    [need] = app.needs_of(COMMUNITY, "Wang", RESIDENT)
    assert need == {"kind": "vote", "stage": "decisions", "id": ballot, "title": "疏通排水管 unblock the drains",
                    "due": clock.format(CLOSES), "path": f"ballots/{ballot}"}
    assert kinds(app, "Li") == [("vote", ballot)]
    assert kinds(app, "Stranger") == []  # not on the roll
    vote_all(app, ballot, {"Wang": "agree"})
    assert kinds(app, "Wang") == []
    assert kinds(app, "Li") == [("vote", ballot)]


def test_a_secret_ballot_behaves_the_same(app):
    ballot = open_ballot(app, secret=True)
    assert kinds(app, "Chen") == [("vote", ballot)] and kinds(app, "Zhou") == [("vote", ballot)]
    assert kinds(app, "Stranger") == []
    vote_all(app, ballot, {"Chen": "disagree"})
    assert kinds(app, "Chen") == []
    assert kinds(app, "Zhou") == [("vote", ballot)]  # another's vote tells Zhou nothing


def test_a_closing_time_passed_or_a_closed_ballot_needs_nothing(app):
    ballot = open_ballot(app)
    clock.set(CLOSES)  # past closing, before the timer closed it: votes are no longer accepted
    assert kinds(app, "Wang") == []
    for due, reason in app.due_to_close(clock.now()):
        app.close_ballot(due, reason)
    assert app.ballot_view(COMMUNITY, ballot)["status"] != "open"
    assert kinds(app, "Wang") == []


def test_votes_come_soonest_closing_first(app):
    later = open_ballot(app)
    clock.set(T0)
    sooner = app.prepare_ballot(WORKER, COMMUNITY, "sooner", "community")
    app.configure_ballot(WORKER, COMMUNITY, sooner, preset="owners_ordinary", voting_unit="owner",
                         opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES - timedelta(days=1)),
                         community_rules=RULES, facts_now=units())
    clock.set(OPENS)
    assert app.open_ballot(sooner, units())
    needs = app.needs_of(COMMUNITY, "Wang", RESIDENT)
    assert [(n["id"], n["title"]) for n in needs] == [(sooner, "sooner"), (later, "疏通排水管 unblock the drains")]


def test_a_household_ballot_needs_the_vote_of_whom_the_person_votes_as(app):
    facts = residents(4)  # r000, r001 in h000; r002, r003 in h001
    ballot = open_ballot(app, "residents_meeting", "household", facts=facts)
    household = {f["person"]: f["household"] for f in facts}
    assert kinds(app, "r000") == []  # the roll holds households, not people
    voter_of = lambda person: lambda b: household.get(person, person)  # noqa: E731 - the service asks the directory
    assert [n["id"] for n in app.needs_of(COMMUNITY, "r000", RESIDENT, voter_of=voter_of("r000"))] == [ballot]
    vote_all(app, ballot, {"h000": "agree"})  # r001 votes for the household
    assert app.needs_of(COMMUNITY, "r000", RESIDENT, voter_of=voter_of("r000")) == []
    assert [n["id"] for n in app.needs_of(COMMUNITY, "r002", RESIDENT, voter_of=voter_of("r002"))] == [ballot]


def test_a_worker_or_the_lead_sees_the_ballots_to_set_up_and_a_resident_does_not(app):
    opened = open_ballot(app)
    clock.set(T0)
    prepared = app.prepare_ballot(WORKER, COMMUNITY, "repaint the hall", "community")
    configured = app.prepare_ballot(WORKER, COMMUNITY, "already set up", "community")
    app.configure_ballot(WORKER, COMMUNITY, configured, preset="owners_ordinary", voting_unit="owner",
                         opens_at=clock.format(OPENS + timedelta(days=1)), closes_at=clock.format(CLOSES),
                         community_rules=RULES, facts_now=units())
    [need] = app.needs_of(COMMUNITY, WORKER, ["community_worker"])
    assert need == {"kind": "configure", "stage": "decisions", "id": prepared, "title": "repaint the hall",
                    "due": None, "path": f"ballots/{prepared}"}
    assert kinds(app, LEAD, ["party_lead"]) == [("configure", prepared)]
    assert kinds(app, "Wang") == [("vote", opened)]
    # a worker who is also an owner: the vote first, then what to set up
    assert kinds(app, "Wang", ["resident", "community_worker"]) == [("vote", opened), ("configure", prepared)]


def test_another_communitys_ballots_never_appear(app):
    ours = open_ballot(app)
    clock.set(T0)
    theirs = app.prepare_ballot(WORKER, OTHER, "elsewhere", "community")
    app.configure_ballot(WORKER, OTHER, theirs, preset="owners_ordinary", voting_unit="owner",
                         opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), community_rules=RULES,
                         facts_now=units())  # Wang owns a unit there too
    clock.set(OPENS)
    assert app.open_ballot(theirs, units())
    app.prepare_ballot(WORKER, OTHER, "elsewhere, to set up", "community")
    assert kinds(app, "Wang", ["resident", "community_worker"]) == [("vote", ours)]
    assert [k for k, _ in kinds(app, "Wang", ["community_worker"], community=OTHER)] == ["vote", "configure"]
    assert ours not in {i for _, i in kinds(app, "Wang", ["community_worker"], community=OTHER)}
