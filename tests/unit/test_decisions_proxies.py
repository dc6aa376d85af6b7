"""Proxies and paper ballots in the decisions application: a proxy votes only on an authorisation
the voter gave (on the platform, or on paper recorded by a worker with its serial), a holder holds
at most the community's limit, the record keeps who cast a proxy vote; a second paper ballot for a
voter is a correction with a reason, or refused."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common import clock
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.tables import texts
from services.common.problem_texts import EN, MESSAGES

from .decisions_fixtures import (  # noqa: F401 - app is a fixture
    CLOSES, COMMUNITY, OPENS, RULES, T0, WORKER, app, close, events, open_ballot, units,
)


def test_a_vote_for_someone_else_without_their_authorisation_is_refused_and_nothing_recorded(app):
    ballot = open_ballot(app, secret=True)
    head = app.head()
    with pytest.raises(Forbidden) as before:
        app.cast_vote("Zhou", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    assert app.head() == head
    # The real voter's own vote is accepted afterwards ...
    app.cast_vote("Sun", COMMUNITY, ballot, "Sun", "disagree")
    # ... and a later attempt is refused in exactly the same words: it says nothing about Sun's vote.
    head = app.head()
    with pytest.raises(Forbidden) as after:
        app.cast_vote("Zhou", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    assert str(before.value) == str(after.value) == MESSAGES["decisions.no_proxy_from_voter"][EN]
    assert before.value.message == after.value.message and app.head() == head
    assert app.my_vote(COMMUNITY, ballot, "Sun")["choice"] == "disagree"


def test_a_proxy_votes_on_the_voters_authorisation_and_the_record_keeps_who(app):
    ballot = open_ballot(app)
    assert app.authorise_proxy("Sun", COMMUNITY, ballot, "Sun", "Zhou")["holder"] == "Zhou"
    with pytest.raises(Forbidden, match="no proxy authorisation"):  # only the holder named
        app.cast_vote("Li", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    app.cast_vote("Zhou", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    [authorised] = events(app, "ProxyAuthorised")
    assert (authorised["actor"], authorised["data"]["principal"], authorised["data"]["holder"],
            authorised["data"]["source"]) == ("Sun", "Sun", "Zhou", "platform")
    [cast] = events(app, "VoteCast")
    assert (cast["actor"], cast["data"]["voter"], cast["data"]["channel"], cast["data"]["cast_by"]) == (
        "Zhou", "Sun", "proxy", "Zhou")
    mine = app.my_vote(COMMUNITY, ballot, "Sun")
    assert (mine["choice"], mine["cast_by"]) == ("agree", "Zhou")
    # Sun's own vote now meets the channel rule; she hears which vote came first (her own).
    with pytest.raises(Conflict, match="a proxy vote was recorded first"):
        app.cast_vote("Sun", COMMUNITY, ballot, "Sun", "disagree")
    with pytest.raises(Conflict, match="already voted for you"):
        app.revoke_proxy("Sun", COMMUNITY, ballot, "Sun")
    assert app.proxy_view(COMMUNITY, ballot, "Sun")["used"] is True


def test_a_revoked_authorisation_ends_the_proxy_and_another_may_be_given(app):
    ballot = open_ballot(app)
    app.authorise_proxy("Sun", COMMUNITY, ballot, "Sun", "Zhou")
    with pytest.raises(Conflict, match="revoked first"):
        app.authorise_proxy("Sun", COMMUNITY, ballot, "Sun", "Li")
    assert app.revoke_proxy("Sun", COMMUNITY, ballot, "Sun")["active"] is False
    with pytest.raises(Forbidden, match="no proxy authorisation"):
        app.cast_vote("Zhou", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    with pytest.raises(NotFound):
        app.revoke_proxy("Sun", COMMUNITY, ballot, "Sun")
    app.authorise_proxy("Sun", COMMUNITY, ballot, "Sun", "Li")
    app.cast_vote("Li", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    assert [e["type"] for e in events(app) if e["type"].startswith("Proxy")] == [
        "ProxyAuthorised", "ProxyHolderRegistered", "ProxyTaken", "ProxyRevoked", "ProxyReleased",
        "ProxyAuthorisedAgain", "ProxyHolderRegistered", "ProxyTaken"]


def test_a_paper_authorisation_is_recorded_by_a_worker_with_its_serial(app):
    ballot = open_ballot(app)
    view = app.authorise_proxy(WORKER, COMMUNITY, ballot, "Sun", "Zhou", paper_serial="W-7")
    assert (view["source"], view["paper_serial"]) == ("paper", "W-7")
    with pytest.raises(Conflict, match="serial W-7"):
        app.authorise_proxy(WORKER, COMMUNITY, ballot, "Chen", "Li", paper_serial="W-7")
    app.cast_vote("Zhou", COMMUNITY, ballot, "Sun", "agree", channel="proxy")
    [authorised] = events(app, "ProxyAuthorised")
    assert (authorised["actor"], authorised["data"]["recorded_by"], authorised["data"]["paper_serial"]) == (
        WORKER, WORKER, "W-7")


def test_a_holder_holds_at_most_the_communitys_limit(app):
    clock.set(T0)
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "drains", "community")
    app.configure_ballot(WORKER, COMMUNITY, ballot, preset="owners_ordinary", voting_unit="owner",
                         opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES),
                         community_rules=dict(RULES, proxy_limit=2), facts_now=units())
    for principal in ("Wang", "Li"):  # authorised after the notice, before the opening
        app.authorise_proxy(principal, COMMUNITY, ballot, principal, "Zhou")
    head = app.head()
    with pytest.raises(Conflict, match="allows 2 per person"):
        app.authorise_proxy("Chen", COMMUNITY, ballot, "Chen", "Zhou")
    assert app.head() == head
    app.revoke_proxy("Li", COMMUNITY, ballot, "Li")
    app.authorise_proxy("Chen", COMMUNITY, ballot, "Chen", "Zhou")
    # The limit was frozen with the configuration (the notice): the record says which.
    assert events(app, "BallotConfigured")[0]["data"]["proxy_limit"] == 2


def test_the_default_limit_is_three(app):
    ballot = open_ballot(app)
    for principal in ("Wang", "Li", "Zhang"):
        app.authorise_proxy(principal, COMMUNITY, ballot, principal, "Zhou")
    with pytest.raises(Conflict, match="allows 3 per person"):
        app.authorise_proxy("Chen", COMMUNITY, ballot, "Chen", "Zhou")


def test_a_stale_holder_count_cannot_exceed_the_limit(app):
    """Two principals naming the same holder at the same moment: the second save fails on the
    holder's version, so the limit holds without a lock."""
    ballot = open_ballot(app)
    for principal in ("Wang", "Li"):
        app.authorise_proxy(principal, COMMUNITY, ballot, principal, "Zhou")
    b = app.ballot(COMMUNITY, ballot)
    stale = app._load(app.holder_id(b, "Zhou"))  # read by a racing command before the next save
    app.authorise_proxy("Zhang", COMMUNITY, ballot, "Zhang", "Zhou")
    with app._context(b, "Chen"):
        stale.take(3)  # 2 < 3 as this command saw it
    with pytest.raises(Conflict):
        app._save(stale, conflict="raced")


def test_proxies_are_for_the_ballots_voters_and_not_for_oneself(app):
    ballot = open_ballot(app)
    with pytest.raises(Forbidden, match="voter roll"):
        app.authorise_proxy("Tenant", COMMUNITY, ballot, "Tenant", "Zhou")
    with pytest.raises(InvalidInput, match="own proxy"):
        app.authorise_proxy("Sun", COMMUNITY, ballot, "Sun", "Sun")
    close(app, ballot)
    with pytest.raises(Conflict, match="until voting closes"):
        app.authorise_proxy("Sun", COMMUNITY, ballot, "Sun", "Zhou")


# ---- paper ballots ------------------------------------------------------------------------------------
@pytest.mark.parametrize("changeable", [True, False])
def test_a_second_paper_ballot_is_refused_unless_recorded_as_a_correction(app, changeable):
    ballot = open_ballot(app, changeable=changeable)
    first = app.cast_vote(WORKER, COMMUNITY, ballot, "Sun", "agree", channel="paper", paper_serial="S-1")
    head = app.head()
    with pytest.raises(Conflict, match=r"serial S-1\) is already recorded.*correction"):
        app.cast_vote(WORKER, COMMUNITY, ballot, "Sun", "disagree", channel="paper", paper_serial="S-2")
    assert app.head() == head and app.my_vote(COMMUNITY, ballot, "Sun")["paper_serial"] == "S-1"
    fixed = app.cast_vote(WORKER, COMMUNITY, ballot, "Sun", "disagree", channel="paper", paper_serial="S-2",
                          correction_reason="S-1 was Chen's ballot, entered under Sun by mistake")
    assert fixed["version"] == 2
    [changed] = events(app, "VoteChanged")
    assert app.content.get(changed["data"]["correction_reason_commitment"]).startswith("S-1 was Chen's")
    [correction] = app.ballot_view(COMMUNITY, ballot)["corrections"]
    assert (correction["paper_serial"], correction["replaces_serial"], correction["entered_by"]) == ("S-2", "S-1",
                                                                                                     WORKER)
    assert correction["reason"].startswith("S-1 was Chen's") and correction["receipt"] == fixed["receipt"]
    [entry] = app.board(COMMUNITY, ballot, receipt=fixed["receipt"])["entries"]
    assert entry["correction"]["reason"].startswith("S-1 was Chen's")
    assert not app.board(COMMUNITY, ballot, receipt=first["receipt"])["entries"]  # replaced
    result = close(app, ballot)["result"]
    assert (result["disagreeing_heads"], result["superseded"]) == (1, 1)


def test_a_correction_needs_a_paper_ballot_to_correct(app):
    ballot = open_ballot(app)
    head = app.head()
    with pytest.raises(Conflict, match="no paper ballot of this voter to correct"):
        app.cast_vote(WORKER, COMMUNITY, ballot, "Sun", "agree", channel="paper", paper_serial="S-1",
                      correction_reason="wrong")
    assert app.head() == head
    with app.engine.connect() as conn:  # the refused command keeps nobody's words
        assert conn.execute(sa.select(texts.c.commitment).where(texts.c.body == "wrong")).first() is None
