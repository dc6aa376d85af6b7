"""Every way a case ends (issue 17.1): the pure table of endings shared by the actions service and
the audit replay, the consumer closing each case exactly once, the party-committee lead's
closing, the board's filter of closed cases and the case file ending with its closing step."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from rules.endings import OUTCOMES, closed_by_lead, ending_of
from services.actions.application import closed_case_filter, closing_last
from services.common.caller import Caller
from services.audit.replay import replay
from services.common import clock
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound

from .test_actions_app import C, WORKER, app, consumer, envelope, log  # noqa: F401 - fixtures

LEAD = Caller("0f000000-0000-0000-0000-000000000095", frozenset({"party_lead"}))


def endings_feed() -> dict[str, list[tuple[str, dict]]]:
    """One case per stage ending, as the stages publish them (the case's first events first)."""
    ids = {k: str(uuid.uuid4()) for k in ("expired", "withdrawn", "merged", "target", "no_action", "annulled",
                                           "rejected", "inadmissible")}
    facts = {"scope": "community", "scope_id": C, "category": "drainage", "title_commitment": "t" * 64}
    positions = iter(range(1, 100))

    def proposal(kind, case, data):
        return ("proposals", envelope("proposals", kind, next(positions), case, data))

    def submitted(case):
        return [proposal("ProposalDrafted", case, dict(facts, author="a")), proposal("ProposalSubmitted", case, {})]

    return {
        "expired": [*submitted(ids["expired"]),
                    proposal("ProposalExpired", ids["expired"], {"deadline": "2026-12-01T00:00:00.000000Z"})],
        "withdrawn": [*submitted(ids["withdrawn"]), proposal("ProposalWithdrawn", ids["withdrawn"], {})],
        "merged": [*submitted(ids["target"]), *submitted(ids["merged"]),
                   proposal("ProposalMerged", ids["merged"], {"into": ids["target"]})],
        "inadmissible": [*submitted(ids["inadmissible"]),
                         proposal("ProposalScreened", ids["inadmissible"],
                                  {"admissible": False, "reason_commitment": "r" * 64, "category": "drainage"})],
        "no_action": [("deliberation", envelope("deliberation", "DeliberationConcluded", 1, ids["no_action"], dict(
            facts, consultation=ids["no_action"], outcome="no_action", reason_commitment="n" * 64,
            summary_commitment="s" * 64, meeting="m", minutes="mm")))],
        "annulled": [("decisions", envelope("decisions", "BallotAbandoned", 1, ids["annulled"],
                                            {"reason_commitment": "a" * 64, "annulment": "worker"}))],
        "rejected": [("decisions", envelope("decisions", "ResolutionFinal", 2, ids["rejected"], dict(
            facts, ballot=ids["rejected"], outcome="rejected", summary={"outcome": "rejected"})))],
    }


def test_the_table_of_endings_is_pure_and_names_each_outcome():
    feed = endings_feed()
    got = {name: ending_of(steps[-1][1]) for name, steps in feed.items()}
    assert {name: e.outcome for name, e in got.items()} == {name: name for name in feed}
    assert {e.stage for e in got.values()} == {"proposal", "deliberation", "decision"}
    assert got["merged"].merged_into == feed["merged"][0][1]["case"], "the target proposal's case"
    assert (got["inadmissible"].reason_commitment, got["no_action"].reason_commitment,
            got["annulled"].reason_commitment) == ("r" * 64, "n" * 64, "a" * 64)
    assert set(OUTCOMES) == set(feed) | {"completed", "closed_by_lead"}
    # What ends nothing: an admissible screening, a vote needed, an adopted resolution, another
    # source's event of the same name.
    for source, kind, data in (("proposals", "ProposalScreened", {"admissible": True}),
                               ("deliberation", "DeliberationConcluded", {"outcome": "vote_needed"}),
                               ("deliberation", "DeliberationConcluded", {"outcome": "agreed"}),
                               ("decisions", "ResolutionFinal", {"outcome": "adopted"}),
                               ("decisions", "BallotAnnulled", {"reason_commitment": "x" * 64}),
                               ("actions", "ProposalExpired", {})):
        assert ending_of(envelope(source, kind, 1, str(uuid.uuid4()), data)) is None, (source, kind, data)
    with pytest.raises(ValueError):
        closed_by_lead(str(uuid.uuid4()), "proposal", "")


def test_every_stage_ending_closes_its_case_exactly_once(app, consumer):  # noqa: F811
    feed = endings_feed()
    for steps in feed.values():
        for source, env in steps:
            assert consumer.handle(source, env)
            assert not consumer.handle(source, env), "a duplicate changes nothing"
    # The same ending redelivered as a new message (a republish the tracking does not know):
    source, env = feed["expired"][-1]
    assert consumer.handle(source, dict(env, position=99))
    closed = [e for e in log(app) if e["type"] == "CaseClosed"]
    assert sorted(e["data"]["outcome"] for e in closed) == sorted(feed), "one CaseClosed per ending"
    by_outcome = {e["data"]["outcome"]: e for e in closed}
    assert by_outcome["merged"]["data"]["merged_into"] == feed["merged"][0][1]["case"]
    assert all(e["causation"] == feed[e["data"]["outcome"]][-1][1]["id"] for e in closed), "caused by its trigger"
    board = app.board(C)
    assert {c["outcome"] for c in board["closed_cases"]} == set(feed)
    open_cases = [c["case"] for cases in board["open_cases"].values() for c in cases]
    assert open_cases == [feed["merged"][0][1]["case"]], "closed cases leave the open columns; the target stays"
    assert [c["case"] for c in app.board(C, outcome="merged")["closed_cases"]] == [by_outcome["merged"]["case"]]
    # Replay reproduces every outcome from the log alone (the stages' events and the closings).
    envelopes = [env for steps in feed.values() for _, env in steps] + closed
    # The audit log takes each source on its own stream: a closing may stand before its cause.
    for order in (envelopes, closed + envelopes):
        cases = replay(order)["cases"]
        assert {cases[e["case"]]["closed"]["outcome"]: cases[e["case"]]["closed"]["reproduced"] for e in closed} \
            == {name: True for name in feed}
    # A closing the log does not bear out is reported, with what the log says instead.
    forged = dict(by_outcome["expired"], data=dict(by_outcome["expired"]["data"], outcome="completed"))
    claimed = replay(envelopes + [forged])["cases"][forged["case"]]["closed"]
    assert claimed["reproduced"] is False and claimed["expected"]["outcome"] == "expired"


def test_the_party_lead_closes_a_case_with_a_reason(app, consumer):  # noqa: F811
    case = str(uuid.uuid4())
    consumer.handle("proposals", envelope("proposals", "ProposalDrafted", 1, case, {"title_commitment": "t" * 64}))
    consumer.handle("proposals", envelope("proposals", "ProposalSubmitted", 2, case, {}))
    with pytest.raises(Forbidden):
        app.close_case(WORKER, C, case, "已线下解决")
    with pytest.raises(InvalidInput):
        app.close_case(LEAD, C, case, "   ")
    with pytest.raises(NotFound):
        app.close_case(LEAD, C, str(uuid.uuid4()), "已线下解决")
    with pytest.raises(NotFound):
        app.close_case(LEAD, "another-community", case, "已线下解决")
    assert not [e for e in log(app) if e["type"] == "CaseClosed"], "refusals record nothing"
    closing = app.close_case(LEAD, C, case, "已由业委会线下解决")
    assert (closing["outcome"], closing["stage"], closing["closed_by"], closing["reason"]) == (
        "closed_by_lead", "proposal", LEAD.person, "已由业委会线下解决")
    with pytest.raises(Conflict):
        app.close_case(LEAD, C, case, "again")
    # A later ending of the stage closes nothing more.
    assert consumer.handle("proposals", envelope("proposals", "ProposalWithdrawn", 3, case, {}))
    [closed] = [e for e in log(app) if e["type"] == "CaseClosed"]
    assert closed["actor"] == LEAD.person and closed["data"]["outcome"] == "closed_by_lead"
    assert replay([closed])["cases"][case]["closed"]["reproduced"] is True
    [row] = app.board(C)["closed_cases"]
    assert row["reason"] == "已由业委会线下解决" and row["closed_by"] == LEAD.person


def test_a_draft_withdrawn_closes_but_stays_off_the_public_board(app, consumer):  # noqa: F811
    draft = str(uuid.uuid4())
    consumer.handle("proposals", envelope("proposals", "ProposalDrafted", 1, draft, {"title_commitment": "t" * 64}))
    consumer.handle("proposals", envelope("proposals", "ProposalWithdrawn", 2, draft, {}))
    [closed] = [e for e in log(app) if e["type"] == "CaseClosed"]
    assert (closed["case"], closed["data"]["outcome"]) == (draft, "withdrawn")
    assert app.board(C)["closed_cases"] == []


def test_the_board_filters_closed_cases_by_outcome_and_time(app, consumer):  # noqa: F811
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    consumer.handle("proposals", envelope("proposals", "ProposalWithdrawn", 1, first, {}))
    clock.set(clock.now() + timedelta(days=2))
    consumer.handle("proposals", envelope("proposals", "ProposalWithdrawn", 2, second, {}))
    middle = clock.format(clock.now() - timedelta(days=1))
    cases = lambda **q: [c["case"] for c in app.board(C, **q)["closed_cases"]]  # noqa: E731
    assert cases() == [second, first], "latest first"
    assert cases(closed_from=middle) == [second] and cases(closed_to=middle) == [first]
    assert cases(outcome="expired") == []
    for bad in ({"outcome": "lost"}, {"closed_from": "yesterday"}, {"closed_from": "2026-12-01T00:00:00"},
                {"closed_from": middle, "closed_to": middle}):
        with pytest.raises(InvalidInput):
            closed_case_filter(bad.get("outcome"), bad.get("closed_from"), bad.get("closed_to"))


def test_the_case_file_ends_with_its_closing_step():
    def entry(i, kind):
        return {"index": i, "envelope": {"type": kind, "id": str(i)}}

    ordered = closing_last([entry(1, "ProposalDrafted"), entry(2, "CaseClosed"), entry(3, "SupportGiven")])
    assert [e["envelope"]["type"] for e in ordered] == ["ProposalDrafted", "SupportGiven", "CaseClosed"]
