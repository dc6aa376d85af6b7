"""The actions application on SQLite (no broker): permissions, texts and evidence, the timer's
overdue flags and evaluation closing, the consumer's reactions to the other stages (through the
same sink chain the service uses), the board and the case file."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from services.actions import tables
from services.actions.application import ActionsApp, in_time_order
from services.common.caller import Caller
from services.actions.domain import TALLY_GRACE, plan_id
from services.common import clock, config, metrics
from services.common.aggregate import Aggregate, command_context
from services.common import consumer as projections
from services.common.consumer import NotRecorded, ProjectionHeld, RecordedButHeld
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all, texts

from .test_actions_domain import COMPOUND, RESIDENTS, T0

C = "community-1"
WORKER = Caller("0f000000-0000-0000-0000-000000000099", frozenset({"community_worker"}))
PROPERTY = Caller("0f000000-0000-0000-0000-000000000098", frozenset({"property_company"}))
NEIGHBOUR = Caller(RESIDENTS[0], frozenset({"resident"}))
OUTSIDER = Caller("0f000000-0000-0000-0000-000000000097", frozenset({"resident"}))
IN_SCOPE = [{"person": p, "household": "h", "adult": True} for p in RESIDENTS] + [
    {"person": "0f000000-0000-0000-0000-000000000096", "household": "h", "adult": False}]
RULES = {"evaluation_window_days": 14, "unsatisfied_reopen_share": "1/3"}
PHOTO = base64.b64encode(b"\xff\xd8\xff\xe0 photo of a clear drain").decode()


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.setenv("CONSULT_FAULTS_FILE", str(tmp_path / "faults.json"))  # absent unless a test writes it
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    clock.set(T0)
    settings = dataclasses.replace(config.load(), data_dir=tmp_path, db="sqlite", retry_delays=(0.01,))
    engine = state_engine("actions", settings)
    create_all(engine, tables.metadata)
    application = ActionsApp(settings, engine)
    yield application
    application.close()
    engine.dispose()
    clock.set(None)


def log(app) -> list[dict]:
    return read_envelopes(app, "actions", 1, 1000)


def drainage(app, case: str | None = None) -> tuple[str, str]:
    """An emergency repair of the compound's drains opened directly, with one task for the
    property company paid from the maintenance fund."""
    plan = app.open_plan(WORKER, C, case, "疏通3号院坝排水沟", "Blocked drains flood ground floors (art. 281 ¶2)",
                         "compound", COMPOUND, "drainage")
    task = app.assign_task(WORKER, C, plan, "清淤并更换破损管道", {"kind": "property_company"},
                           clock.format(T0 + timedelta(days=10)), "12800.00", "maintenance_fund")
    return plan, task


def finish(app, plan: str, task: str) -> None:
    app.report_progress(PROPERTY, C, plan, task, 100, "完工")
    app.report_done(WORKER, C, plan, "排水沟已疏通，管道已更换", IN_SCOPE, RULES)


def rate(app, ratings: dict[int, str]) -> None:
    for i, rating in ratings.items():
        app.evaluate(Caller(RESIDENTS[i], frozenset({"resident"})), C, plan_of(app), rating)


def plan_of(app) -> str:
    return app.list_plans(C)[0]["plan"]


def test_the_drainage_plan_from_opening_to_a_closed_case(app):
    plan, task = drainage(app)
    shot = app.upload_evidence(PROPERTY, C, PHOTO, "image/jpeg")
    assert shot["sha256"] == hashlib.sha256(base64.b64decode(PHOTO)).hexdigest()
    view = app.report_progress(PROPERTY, C, plan, task, 60, "主管道已清淤", [shot["sha256"]])
    assert view["percent"] == 60 and view["status"] == "open"
    finish(app, plan, task)
    clock.set(T0 + timedelta(days=1))
    rate(app, {0: "satisfied", 1: "basically_satisfied", 2: "unsatisfied", 3: "unsatisfied"})
    rate(app, {2: "satisfied"})  # changed their mind within the window: the last counts
    view = app.plan_view(C, plan)
    assert view["status"] == "evaluating" and view["result"] == "排水沟已疏通，管道已更换"
    assert view["evaluation"]["denominator"] == 12, "the child in scope is not asked"
    assert view["evaluation"]["counts"] == {"satisfied": 2, "basically_satisfied": 1, "unsatisfied": 1}
    assert view["progress"][0]["evidence"] == [shot["sha256"]] and view["progress"][0]["note"] == "主管道已清淤"
    assert app.close_due_evaluations() == 0, "the window is still open"
    clock.set(T0 + timedelta(days=14) + TALLY_GRACE)
    assert app.close_due_evaluations() == 1
    events = log(app)
    assert [e["type"] for e in events] == [
        "ActionPlanOpened", "TaskAssigned", "ProgressReported", "ProgressReported", "TaskCompleted",
        "PlanReportedDone", "ResultDisclosed", "EvaluationOpened", "EvaluationGiven", "EvaluationGiven",
        "EvaluationGiven", "EvaluationGiven", "EvaluationChanged", "EvaluationClosed", "CaseClosed"]
    assert {e["case"] for e in events} == {plan}, "a plan opened without a case opens its own"
    closed = events[-2]["data"]
    # Judged on those who answered (1 of 4), the response share (4 of 12) meeting the minimum of 1/3.
    assert closed["unsatisfied_share"] == "1/4" and closed["outcome"] == "accepted" and closed["respondents"] == 4
    assert (closed["response_share"], closed["response_share_met"], closed["min_response_share"]) == (
        "4/12", True, "1/3")
    assert events[-1]["data"] == {
        "community": C, "case": plan, "outcome": "completed", "stage": "action", "plan": plan, "merged_into": None,
        "reason_commitment": events[6]["data"]["summary_commitment"],
        "result": {k: closed[k] for k in ("round", "counts", "respondents", "denominator", "unsatisfied_share",
                                          "threshold")}}
    assert events[1]["data"]["budget"] == "12800.00" and events[1]["data"]["funding_source"] == "maintenance_fund"
    assert "排水" not in str(events), "texts enter the record only as commitments"
    board = app.board(C)
    assert board["open_cases"]["action"] == [] and board["closed_cases"][0]["outcome"] == "completed"
    assert board["results"][0]["result"] == "排水沟已疏通，管道已更换"


def test_too_many_unsatisfied_reopen_the_plan_and_request_a_follow_up(app):
    plan, task = drainage(app)
    finish(app, plan, task)
    rate(app, {i: "unsatisfied" for i in range(5)})  # 5/12 > 1/3
    clock.set(T0 + timedelta(days=15))
    assert app.close_due_evaluations() == 1
    events = log(app)
    assert [e["type"] for e in events[-3:]] == ["EvaluationClosed", "PlanReopened", "FollowUpRequested"]
    follow_up = events[-1]["data"]
    assert follow_up["original_case"] == plan and follow_up["unsatisfied_share"] == "5/5"
    assert follow_up["title_commitment"] == events[0]["data"]["title_commitment"]
    assert app.plan_view(C, plan)["status"] == "reopened"
    assert app.board(C)["open_cases"]["action"][0]["status"] == "reopened"
    # Remedial work, then a second round in which the earlier ratings do not count.
    extra = app.assign_task(WORKER, C, plan, "加装截水沟", {"kind": "contractor", "name": "某市政工程公司"},
                            clock.format(clock.now() + timedelta(days=10)))
    app.report_progress(WORKER, C, plan, extra, 100, "由社工代为登记")
    app.report_done(WORKER, C, plan, "截水沟已加装", IN_SCOPE, RULES)
    assert app.plan_view(C, plan)["evaluation"]["counts"]["unsatisfied"] == 0


def test_overdue_tasks_are_flagged_once_by_the_timer(app):
    plan, task = drainage(app)
    assert app.flag_overdue_tasks() == 0
    clock.set(T0 + timedelta(days=10))
    assert app.flag_overdue_tasks() == 0, "due now is not overdue yet"
    clock.set(T0 + timedelta(days=10, seconds=1))
    assert app.flag_overdue_tasks() == 1
    assert app.flag_overdue_tasks() == 0
    overdue = app.board(C)["overdue_tasks"]
    assert [(o["task"], o["title"], o["percent"]) for o in overdue] == [(task, "清淤并更换破损管道", 0)]
    app.report_progress(PROPERTY, C, plan, task, 100)
    assert app.board(C)["overdue_tasks"] == []
    assert [e["type"] for e in log(app)][-3:] == ["TaskOverdue", "ProgressReported", "TaskCompleted"]
    assert log(app)[-1]["data"]["late"] is True


def test_who_may_do_what(app):
    plan, task = drainage(app)
    with pytest.raises(Forbidden):
        app.open_plan(NEIGHBOUR, C, None, "t", "b", "community", None, None)
    with pytest.raises(Forbidden):
        app.assign_task(PROPERTY, C, plan, "t", {"kind": "contractor"}, clock.format(T0 + timedelta(days=1)))
    with pytest.raises(Forbidden, match="responsible party"):
        app.report_progress(NEIGHBOUR, C, plan, task, 10)
    named = app.assign_task(WORKER, C, plan, "巡查", {"kind": "grid_leader", "person": RESIDENTS[5]},
                            clock.format(T0 + timedelta(days=3)))
    grid_leader = Caller(RESIDENTS[6], frozenset({"grid_leader"}))
    with pytest.raises(Forbidden):
        app.report_progress(grid_leader, C, plan, named, 10)  # named for someone else
    app.report_progress(Caller(RESIDENTS[5], frozenset({"resident"})), C, plan, named, 10)
    with pytest.raises(NotFound):
        app.plan_view("another-community", plan)
    with pytest.raises(NotFound):
        app.report_progress(PROPERTY, "another-community", plan, task, 10)


def test_refusals_record_nothing_and_keep_no_texts(app):
    plan, task = drainage(app)
    count = len(log(app))
    with pytest.raises(Conflict, match="has not opened"):
        app.evaluate(NEIGHBOUR, C, plan, "satisfied", "太早了")
    assert len(log(app)) == count
    finish(app, plan, task)
    count = len(log(app))
    with pytest.raises(Forbidden, match="scope"):
        app.evaluate(OUTSIDER, C, plan, "unsatisfied", "我不住这里")
    clock.set(T0 + timedelta(days=14))
    with pytest.raises(Conflict, match="window closed at 2026-06-15T09:00:00.000000Z"):
        app.evaluate(NEIGHBOUR, C, plan, "satisfied", "迟到的评价")
    with pytest.raises(InvalidInput, match="evidence first"):
        app.report_progress(PROPERTY, C, plan, task, 10, None, ["ab" * 32])
    assert len(log(app)) == count
    with app.engine.connect() as conn:
        bodies = {r.body for r in conn.execute(sa.select(texts.c.body))}
    assert not bodies & {"太早了", "我不住这里", "迟到的评价"}


def test_evidence_is_content_addressed_bounded_and_checked_on_read(app):
    shot = app.upload_evidence(PROPERTY, C, PHOTO, None)
    again = app.upload_evidence(WORKER, C, PHOTO, "image/jpeg")
    assert shot["sha256"] == again["sha256"] and shot["media_type"] == "image/jpeg"  # read from the bytes
    got = app.evidence.get(C, shot["sha256"])
    assert base64.b64decode(got["content_base64"]) == base64.b64decode(PHOTO)
    with pytest.raises(NotFound):
        app.evidence.get("another-community", shot["sha256"])
    with pytest.raises(InvalidInput, match="base64"):
        app.upload_evidence(PROPERTY, C, "not base64!", None)
    with pytest.raises(InvalidInput, match="at most"):
        app.upload_evidence(PROPERTY, C, base64.b64encode(b"x" * (5 * 1024 * 1024 + 1)).decode(), None)
    (app.evidence.folder / shot["sha256"]).write_bytes(b"swapped")
    with pytest.raises(Conflict, match="altered"):
        app.evidence.get(C, shot["sha256"])


def envelope(source: str, kind: str, position: int, case: str, data: dict, aggregate: str | None = None) -> dict:
    return {"schema": "consult.event/1", "id": str(uuid.uuid4()), "source": source, "position": position,
            "type": kind, "community": C, "aggregate": {"type": "X", "id": aggregate or case, "version": 1},
            "occurred_at": clock.format(clock.now()), "actor": "someone", "case": case, "causation": None,
            "data": data}


@pytest.fixture
def consumer(app):
    """The service's consumer sink, fed by hand."""
    return app.stage_sinks()


def test_the_other_stages_open_plans_and_close_cases(app, consumer):
    adopted, emergency, agreed, rejected, inadmissible, collecting = (str(uuid.uuid4()) for _ in range(6))
    facts = {"scope": "compound", "scope_id": COMPOUND, "category": "drainage", "title_commitment": "t" * 64}
    feed = [
        ("proposals", envelope("proposals", "ProposalDrafted", 1, collecting, dict(facts, author="a"))),
        ("proposals", envelope("proposals", "ProposalSubmitted", 2, collecting, {})),
        ("proposals", envelope("proposals", "ProposalDrafted", 3, inadmissible, dict(facts, author="a"))),
        ("proposals", envelope("proposals", "ProposalScreened", 4, inadmissible,
                               {"admissible": False, "reason_commitment": "r" * 64, "category": "drainage"})),
        ("decisions", envelope("decisions", "ResolutionFinal", 1, adopted, dict(
            facts, ballot=adopted, outcome="adopted", proposal=None, consultation=None,
            winner={"id": "a", "title_commitment": "w" * 64}, summary=None, justification_commitment=None))),
        ("decisions", envelope("decisions", "ResolutionFinal", 2, emergency, dict(
            facts, ballot=emergency, outcome="emergency", justification_commitment="j" * 64))),
        ("decisions", envelope("decisions", "ResolutionFinal", 3, rejected, dict(
            facts, ballot=rejected, outcome="rejected", summary={"outcome": "rejected", "agreeing_heads": 5}))),
        ("deliberation", envelope("deliberation", "DeliberationConcluded", 1, agreed, dict(
            facts, consultation=agreed, proposal=None, outcome="agreed", options=[], summary_commitment="s" * 64))),
        ("deliberation", envelope("deliberation", "CommentPosted", 2, agreed, {"text_commitment": "c" * 64})),
    ]
    for source, env in feed:
        assert consumer.handle(source, env)
        assert not consumer.handle(source, env), "a duplicate changes nothing"
    app.project()
    events = log(app)
    opened = {e["case"]: e["data"] for e in events if e["type"] == "ActionPlanOpened"}
    assert {case: d["basis"] for case, d in opened.items()} == {
        adopted: "resolution", emergency: "emergency", agreed: "agreement"}
    assert opened[emergency]["basis_commitment"] == "j" * 64 and opened[adopted]["option"]["id"] == "a"
    assert all(e["causation"] for e in events), "each reaction names the event that caused it"
    closed = {e["case"]: e["data"] for e in events if e["type"] == "CaseClosed"}
    assert closed == {
        rejected: {"community": C, "case": rejected, "outcome": "rejected", "stage": "decision",
                   "reason_commitment": None, "result": {"outcome": "rejected", "agreeing_heads": 5}, "plan": None, "merged_into": None},
        inadmissible: {"community": C, "case": inadmissible, "outcome": "inadmissible", "stage": "proposal",
                       "reason_commitment": "r" * 64, "result": None, "plan": None, "merged_into": None}}
    board = app.board(C)
    assert [c["case"] for c in board["open_cases"]["proposal"]] == [collecting]
    assert {c["case"] for c in board["open_cases"]["action"]} == {adopted, emergency, agreed}
    assert {c["case"]: c["outcome"] for c in board["closed_cases"]} == {rejected: "rejected",
                                                                        inadmissible: "inadmissible"}
    with pytest.raises(Conflict, match="already has an action plan"):
        app.open_plan(WORKER, C, adopted, "t", "b", "community", None, None)
    with pytest.raises(Conflict, match="closed"):
        app.open_plan(WORKER, C, rejected, "t", "b", "community", None, None)


def test_an_event_of_a_case_already_seen_moves_it_in_one_statement(app):
    """Each vote of a ballot is an event of its case: the board's row is updated straight away, and
    inserted only when there was none."""
    from services.actions.application import project_case

    case = str(uuid.uuid4())
    facts = {"scope": "compound", "scope_id": COMPOUND, "category": "drainage", "title_commitment": "t" * 64}
    seen = []
    sa.event.listen(app.engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    with app.engine.begin() as conn:
        project_case(conn, envelope("proposals", "ProposalDrafted", 1, case, dict(facts, author="a")))
        inserted = [s.split()[0].upper() for s in seen if not s.startswith("BEGIN")]
        seen.clear()
        project_case(conn, envelope("decisions", "VoteCast", 7, case, {"choice": "agree"}, aggregate="vote-1"))
        assert [s.split()[0].upper() for s in seen] == ["UPDATE"]
        row = conn.execute(sa.select(tables.cases).where(tables.cases.c.case_id == case)).one()
    assert inserted == ["UPDATE", "INSERT"]  # the update that found nothing, then the insert
    assert (row.last_type, row.category, row.scope_id) == ("VoteCast", "drainage", COMPOUND)


def test_a_batch_moves_each_case_once_to_where_its_events_one_by_one_would(app):
    """The consumer hands the board's sink its batches whole (SqlSink.handler_many): a run of one
    case's events is one update, and the row ends as the events applied one at a time leave it."""
    from services.actions.application import project_case, project_cases

    facts = {"scope": "compound", "scope_id": COMPOUND, "category": "drainage", "title_commitment": "t" * 64}

    def story(case: str) -> list[dict]:
        return [envelope("proposals", "ProposalDrafted", 1, case, dict(facts, author="a")),
                envelope("proposals", "ProposalSubmitted", 2, case, {}),
                envelope("decisions", "VoteCast", 3, case, {"choice": "agree"}, aggregate="v1"),
                envelope("decisions", "VoteCast", 4, case, {"choice": "agree"}, aggregate="v2"),
                envelope("decisions", "ResolutionFinal", 5, case, dict(
                    facts, ballot=case, outcome="rejected", summary={"outcome": "rejected"}, proposal=None,
                    consultation=None, winner=None, justification_commitment=None))]

    one, batched, other = (str(uuid.uuid4()) for _ in range(3))
    with app.engine.begin() as conn:
        for env in story(one):
            project_case(conn, env)
        seen = []
        sa.event.listen(conn, "before_cursor_execute", lambda c, cursor, statement, *rest: seen.append(statement))
        mixed = story(batched)
        project_cases(conn, mixed[:2] + story(other)[:1] + mixed[2:])
        assert [s.split()[0].upper() for s in seen] == ["UPDATE", "INSERT", "UPDATE", "UPDATE", "INSERT", "UPDATE"]
        seen.clear()
        project_cases(conn, [envelope("decisions", "VoteCast", 6, batched, {"choice": "agree"}, aggregate=f"v{n}")
                             for n in range(10)])
        assert [s.split()[0].upper() for s in seen] == ["UPDATE"]
        project_case(conn, envelope("decisions", "VoteCast", 6, one, {"choice": "agree"}, aggregate="v9"))
        rows = {r.case_id: r._asdict() for r in conn.execute(sa.select(tables.cases))}
    for row in (rows[one], rows[batched]):
        row.pop("case_id")
        row.pop("updated_at")
        row.pop("opened_at")
    assert rows[one] == rows[batched]
    assert rows[one]["last_type"] == "VoteCast" and rows[one]["ended"] == "rejected"


def test_the_case_file_orders_every_stage_and_links_the_audit_entries(app, consumer):
    case = str(uuid.uuid4())
    consumer.handle("decisions", envelope("decisions", "EmergencyDeclared", 1, case, {
        "justification_commitment": "j" * 64, "declared_by": WORKER.person, "declared_as": "community_worker"}))
    plan = app.open_plan(WORKER, C, case, "疏通排水沟", "紧急抢修", "community", None, "drainage")
    assert plan == str(plan_id(case))
    mine = log(app)
    proposal = envelope("proposals", "ProposalDrafted", 7, case, {"title_commitment": "t" * 64})
    proposal["occurred_at"] = "2026-05-01T00:00:00.000000Z"
    comment, hidden = str(uuid.uuid4()), str(uuid.uuid4())
    discussion = [
        envelope("deliberation", "CommentPosted", 1, case, {"text_commitment": "c" * 64}, aggregate=comment),
        envelope("deliberation", "CommentPosted", 2, case, {"text_commitment": "x" * 64}, aggregate=hidden),
        envelope("deliberation", "CommentHidden", 3, case, {"reason_commitment": "r" * 64}, aggregate=hidden),
    ]
    stores = {"proposals": {"t" * 64: "疏通排水沟（居民提议）"},
              "deliberation": {"c" * 64: "同意尽快施工", "x" * 64: "人身攻击", "r" * 64: "违反议事规则"}}
    asked = []

    def read_texts(source, commitments):
        asked.append(source)
        return {c: stores[source][c] for c in commitments if c in stores[source]}

    entries = [{"index": 40 + i, "type": e["type"], "occurred_at": e["occurred_at"], "envelope": e}
               for i, e in enumerate(mine + discussion + [proposal])]  # the audit saw the proposal last
    got = app.case_file(C, case, entries, read_texts)
    assert [i["type"] for i in got["items"]] == [
        "ProposalDrafted", "ActionPlanOpened", "CommentPosted", "CommentPosted", "CommentHidden"]
    assert [i["audit"]["index"] for i in got["items"]] == [44, 40, 41, 42, 43]
    assert got["stages"] == ["proposal", "deliberation", "action"] and got["plan"] == plan
    assert got["status"] == "open"
    assert set(got["items"][1]["texts"].values()) == {"疏通排水沟", "紧急抢修"}
    assert list(got["items"][0]["texts"].values()) == ["疏通排水沟（居民提议）"], "joined from the proposals store"
    assert [i["texts"] for i in got["items"][2:]] == [{"c" * 64: "同意尽快施工"}, {}, {"r" * 64: "违反议事规则"}], \
        "a hidden comment's text is not shown, the reason for hiding it is"
    assert sorted(asked) == ["deliberation", "proposals"]
    assert app.case_file(C, case, entries)["items"][0]["texts"] == {}, "without the other stages: commitments"
    with pytest.raises(NotFound):
        app.case_file(C, str(uuid.uuid4()), [])


def test_in_the_case_file_an_effect_never_precedes_its_cause():
    """The audit log may record a plan before the resolution that caused it (two sources, two
    streams), and both may carry the same instant."""
    at = "2026-06-01T09:00:00.000000Z"

    def entry(index, event_id, causation=None, occurred_at=at):
        return {"index": index, "envelope": {"id": event_id, "causation": causation, "occurred_at": occurred_at}}

    entries = [entry(10, "plan-opened", "final"), entry(11, "task", None), entry(12, "final", "confirmed"),
               entry(13, "confirmed"), entry(9, "earlier", occurred_at="2026-05-01T00:00:00.000000Z")]
    assert [e["envelope"]["id"] for e in in_time_order(entries)] == [
        "earlier", "task", "confirmed", "final", "plan-opened"]


def test_after_a_crash_between_the_two_sinks_the_stream_resumes_where_the_slower_one_stopped(app, consumer):
    sql_side, decisions_side, es_side = consumer.sinks
    case = str(uuid.uuid4())
    env = envelope("decisions", "ResolutionFinal", 1, case, {"ballot": case, "outcome": "adopted",
                                                              "scope": "community", "scope_id": None})
    assert sql_side.handle("decisions", env)  # ...and the process died before the aggregates were saved
    assert (sql_side.position("decisions"), decisions_side.position("decisions"), es_side.position("decisions"),
            consumer.position("decisions")) == (1, 0, 0, 0)
    assert consumer.handle("decisions", env), "redelivered: the case row is not applied twice, the plan is saved"
    assert consumer.position("decisions") == 1
    assert [e["type"] for e in log(app)] == ["ActionPlanOpened"]


def test_a_batch_through_the_sink_chain_does_what_one_event_at_a_time_does_with_fewer_saves(app, consumer,
                                                                                             monkeypatch):
    """`handle_many` (a consumer behind its source): the SQL sinks take the batch in one transaction
    each; the event-sourced sink saves each event that has effects with its tracking record before
    the next event's handler runs, and the events without effects ride along with the next save, or
    with the tracking record the consumer has the sink write once a second (`track_untracked`)."""
    adopted, voted = str(uuid.uuid4()), str(uuid.uuid4())
    final = {"scope": "community", "scope_id": None, "ballot": adopted, "outcome": "adopted"}
    batch = [envelope("decisions", "VoteCast", n, voted, {"voter": f"h{n}"}) for n in (1, 2, 3)] + [
        envelope("decisions", "ResolutionFinal", 4, adopted, final)] + [
        envelope("decisions", "VoteCast", n, voted, {"voter": f"h{n}"}) for n in (5, 6)]
    saves = []
    real = app.save_tracked
    monkeypatch.setattr(app, "save_tracked", lambda tracking, *objs: saves.append(
        (tracking.notification_id, len(objs))) or real(tracking, *objs))
    assert consumer.handle_many("decisions", batch) == 6
    assert saves == [(4, 1)], "the plan with its event's tracking; 5 and 6 are not tracked yet"
    assert [s.position("decisions") for s in consumer.sinks] == [6, 6, 6]
    consumer.track_untracked()
    assert saves == [(4, 1), (6, 0)], "then one tracking record for the rest"
    assert consumer.handle_many("decisions", batch) == 0 and len(saves) == 2, "a redelivered batch changes nothing"
    app.project()
    assert [e["type"] for e in log(app)] == ["ActionPlanOpened"]
    assert [c["case"] for c in app.board(C)["open_cases"]["action"]] == [adopted]


# ---- the read model and the log never part ways (services/common: store.py, consumer.py) -----------------
# A command whose events the read model would not apply is refused and nothing is recorded (the events
# are applied to the read model in a transaction that commits only after the store recorded them). An event that is
# recorded and then cannot be applied (here: a fault injected into the projection only) is retried,
# parked and holds the read model: reads answer from where it holds, commands are refused, the caller of
# the command that recorded it is told; once an operator has emptied the parked queue it is applied again.
class FakeBroker:
    """The parked queues, as `consult dlq` would see them."""

    def __init__(self):
        self.parked: dict[tuple[str, str], list[dict]] = {}

    @contextmanager
    def connect(self, settings, confirm=False):
        class Conn:
            def channel(self):
                return None

        yield Conn()

    def parked_count(self, channel, settings, name, source):
        return len(self.parked.get((name, source), []))

    def park(self, settings, name, source, env, error):
        self.parked.setdefault((name, source), []).append(env)
        return repr(error)


@pytest.fixture
def broker(monkeypatch):
    fake = FakeBroker()
    monkeypatch.setattr(projections.bus, "connect", fake.connect)
    monkeypatch.setattr(projections.bus, "parked_count", fake.parked_count)
    monkeypatch.setattr(projections, "park_message", fake.park)
    return fake


def direct_plan(app) -> str:
    return app.open_plan(WORKER, C, None, "疏通排水沟", "暴雨前抢修", "compound", COMPOUND, "drainage")


def assign_dredging(app, plan: str) -> str:
    return app.assign_task(WORKER, C, plan, "清淤", {"kind": "property_company"},
                           clock.format(T0 + timedelta(days=3)))


def parked_gauge() -> float:
    return metrics.PARKED.labels("projection", "actions")._value.get()


def test_a_command_whose_projection_would_fail_is_refused_and_records_nothing(app, monkeypatch):
    plan = direct_plan(app)
    head, stored = app.head(), app.content.count_subject(WORKER.person)
    original = app.projection.handler

    def broken(conn, env):
        if env["type"] == "TaskAssigned":
            raise RuntimeError("INSERT INTO actions_tasks ... (a constraint the event breaks)")
        original(conn, env)

    monkeypatch.setattr(app.projection, "handler", broken)
    with pytest.raises(NotRecorded) as refused:
        assign_dredging(app, plan)
    assert "INSERT" not in refused.value.detail and refused.value.status == 409
    assert app.head() == head, "nothing was recorded"
    assert app.content.count_subject(WORKER.person) == stored, "the refused command's texts are gone again"
    assert app.plan_view(C, plan)["tasks"] == [] and app.projection.held is None


def test_a_command_whose_read_model_lost_its_connection_is_not_now_and_records_nothing(app, monkeypatch):
    """A database connection lost while the read model applies the events is no refusal (409,
    which a client takes as final, or as "already recorded"): the failure itself goes up, which
    the runtime answers 503, and the client's retry is recorded."""
    import sqlalchemy as sa

    plan = direct_plan(app)
    head = app.head()
    original = app.projection.handler
    lost = {"n": 0}

    def connection_lost(conn, env):
        if env["type"] == "TaskAssigned" and not lost["n"]:
            lost["n"] += 1
            raise sa.exc.OperationalError("SELECT ...", {}, Exception("terminating connection due to administrator command"))
        original(conn, env)

    monkeypatch.setattr(app.projection, "handler", connection_lost)
    with pytest.raises(sa.exc.OperationalError):
        assign_dredging(app, plan)
    assert app.head() == head, "nothing was recorded"
    assign_dredging(app, plan)  # the client's retry
    assert app.head() > head and len(app.plan_view(C, plan)["tasks"]) == 1
    assert app.projection.held is None

def test_an_event_its_read_model_cannot_apply_is_parked_and_holds_it_until_an_operator_acts(app, broker, tmp_path):
    plan = direct_plan(app)
    (tmp_path / "faults.json").write_text(json.dumps([{"consumer": "projection", "type": "TaskAssigned"}]))

    # The rehearsal passes (the fault is in applying for real): the task is recorded, the read model
    # cannot apply it, parks it and holds; the caller is told so, not answered "not found".
    with pytest.raises(RecordedButHeld) as told:
        assign_dredging(app, plan)
    assert told.value.to_problem()["status"] == 503
    [task] = [e for e in read_envelopes(app, "actions", 1, 100) if e["type"] == "TaskAssigned"]
    assert app.projection.held == {"position": task["position"], "type": "TaskAssigned", "event": task["id"],
                                   "error": app.projection.held["error"]}
    assert [e["id"] for e in broker.parked[("projection", "actions")]] == [task["id"]]
    assert parked_gauge() == 1

    # Reads answer from where it holds; commands are refused and record nothing.
    assert app.plan_view(C, plan)["tasks"] == [] and [p["plan"] for p in app.list_plans(C)] == [plan]
    head = app.head()
    with pytest.raises(ProjectionHeld) as held:
        direct_plan(app)
    assert held.value.status == 503 and app.head() == head
    assert app.project() == 0 and len(broker.parked[("projection", "actions")]) == 1, "parked once"

    # The operator fixes the cause and lets the parked event go (`consult dlq retry`): applied.
    (tmp_path / "faults.json").write_text("[]")
    broker.parked.clear()
    app.projection._hold_checked = 0.0
    assert app.project() == 1
    assert app.projection.held is None and parked_gauge() == 0
    assert [t["task"] for t in app.plan_view(C, plan)["tasks"]] == [task["data"]["task"]]
    direct_plan(app)


def ahead(outcome: str) -> float:
    return metrics.PROJECTED_AHEAD.labels("actions", outcome)._value.get()


def test_a_save_applies_its_events_to_the_read_model_in_the_same_step(app, monkeypatch):
    """The common case (services/common/consumer.py record_with_projection): no rehearsal; one
    read-model transaction commits right after the events are recorded, so the save needs no
    catch-up after it either (the sink knows it applied up to the head)."""
    def no_rehearsal(*args):
        raise AssertionError("rehearsed")

    monkeypatch.setattr(projections, "rehearse_projection", no_rehearsal)
    applied, caught_up = ahead("applied"), ahead("caught_up")
    plan = direct_plan(app)
    assign_dredging(app, plan)
    assert (ahead("applied"), ahead("caught_up")) == (applied + 2, caught_up)
    assert app.projection.position("actions") == app.head() == app.projection.applied
    assert [t["title"] for t in app.plan_view(C, plan)["tasks"]] == ["清淤"]


class Stray(Aggregate):
    """Another writer's event, which the actions read model ignores."""


def test_another_writer_taking_the_next_position_leaves_the_save_to_the_catch_up(app, monkeypatch):
    """The read model applied the command's events at head + 1, but another write took that
    position in between: its transaction is rolled back and the catch-up after the save applies
    both, in the log's order."""
    plan = direct_plan(app)
    with command_context(community=C, actor="someone else"):
        stray = Stray()
    foreign = [app.mapper.to_stored_event(e) for e in stray.collect_events()]
    insert = app.recorder.insert_events

    def first_someone_else(stored_events, **kwargs):
        if foreign:
            insert([foreign.pop()])
        return insert(stored_events, **kwargs)

    monkeypatch.setattr(app.recorder, "insert_events", first_someone_else)
    applied, caught_up = ahead("applied"), ahead("caught_up")
    assign_dredging(app, plan)
    assert (ahead("applied"), ahead("caught_up")) == (applied, caught_up + 1)
    assert [e["type"] for e in read_envelopes(app, "actions", 1, 100)][-2:] == ["StrayCreated", "TaskAssigned"]
    assert app.projection.position("actions") == app.head()
    assert [t["title"] for t in app.plan_view(C, plan)["tasks"]] == ["清淤"]


def _stray_recorded_elsewhere(app) -> None:
    """An event recorded by another instance of the service: in the log, not yet in this read model,
    and not known to this process."""
    with command_context(community=C, actor="another instance"):
        stray = Stray()
    app.recorder.insert_events([app.mapper.to_stored_event(e) for e in stray.collect_events()])


def test_a_save_after_another_instance_s_save_still_leaves_the_read_model_whole(app):
    """The guess is wrong when another instance recorded meanwhile: the save's events land a
    position later than applied, that transaction rolls back, and the catch-up applies both."""
    plan = direct_plan(app)
    _stray_recorded_elsewhere(app)
    caught_up = ahead("caught_up")
    assign_dredging(app, plan)
    assert ahead("caught_up") == caught_up + 1
    assert [e["type"] for e in read_envelopes(app, "actions", 1, 100)][-2:] == ["StrayCreated", "TaskAssigned"]
    assert app.projection.position("actions") == app.head()
    assert [t["title"] for t in app.plan_view(C, plan)["tasks"]] == ["清淤"]


@pytest.mark.parametrize("failure", [RuntimeError("a row the missing event makes"),
                                     Conflict("refused for want of the missing event")])
def test_a_read_model_that_fails_for_want_of_another_instance_s_events_catches_up_first(app, monkeypatch, failure):
    """A read model that lacks another instance's events may fail to apply a command's (or refuse
    it): the save catches it up and tries again, and the command is not refused for it."""
    plan = direct_plan(app)
    _stray_recorded_elsewhere(app)
    handler = app.projection.handler
    stray_applied = []

    def needs_everything_before(conn, env):
        if env["type"] == "StrayCreated":
            stray_applied.append(env["position"])
        elif env["type"] == "TaskAssigned" and not stray_applied:
            raise failure
        return handler(conn, env)

    monkeypatch.setattr(app.projection, "handler", needs_everything_before)
    assign_dredging(app, plan)
    assert [e["type"] for e in read_envelopes(app, "actions", 1, 100)][-2:] == ["StrayCreated", "TaskAssigned"]
    assert app.projection.position("actions") == app.head()
    assert [t["title"] for t in app.plan_view(C, plan)["tasks"]] == ["清淤"]


def test_too_few_answers_extend_the_evaluation_once_then_the_respondents_decide(app):
    plan, task = drainage(app)
    finish(app, plan, task)
    app.evaluate(Caller(RESIDENTS[0], frozenset({"resident"})), C, plan, "unsatisfied", "下雨还是积水")
    app.evaluate(Caller(RESIDENTS[1], frozenset({"resident"})), C, plan, "unsatisfied")
    app.evaluate(Caller(RESIDENTS[2], frozenset({"resident"})), C, plan, "satisfied", "挺好")
    clock.set(T0 + timedelta(days=15))
    assert app.close_due_evaluations() == 0, "3 of 12 answered: below 1/3, nothing is closed"
    extended = log(app)[-1]
    assert extended["type"] == "EvaluationExtended"
    assert (extended["data"]["response_share"], extended["data"]["min_response_share"]) == ("3/12", "1/3")
    assert extended["data"]["closes_at"] == clock.format(T0 + timedelta(days=28))
    assert app.plan_view(C, plan)["evaluation"]["closes_at"] == extended["data"]["closes_at"]
    app.evaluate(Caller(RESIDENTS[3], frozenset({"resident"})), C, plan, "unsatisfied", "管道还在漏")
    clock.set(T0 + timedelta(days=29))
    assert app.close_due_evaluations() == 1
    events = log(app)
    assert [e["type"] for e in events[-3:]] == ["EvaluationClosed", "PlanReopened", "FollowUpRequested"]
    assert events[-3]["data"]["unsatisfied_share"] == "3/4" and events[-3]["data"]["response_share"] == "4/12"
    quoted = events[-1]["data"]["unsatisfied_comment_commitments"]
    assert [app.content.get(c) for c in quoted] == ["下雨还是积水", "管道还在漏"], "unsatisfied comments only"


def test_after_the_one_extension_too_few_answers_cannot_reopen_the_plan(app):
    plan, task = drainage(app)
    finish(app, plan, task)
    app.evaluate(Caller(RESIDENTS[0], frozenset({"resident"})), C, plan, "unsatisfied")
    clock.set(T0 + timedelta(days=15))
    app.close_due_evaluations()
    clock.set(T0 + timedelta(days=29))
    assert app.close_due_evaluations() == 1
    closed = [e for e in log(app) if e["type"] == "EvaluationClosed"][-1]["data"]
    assert (closed["outcome"], closed["response_share_met"], closed["unsatisfied_share"]) == ("accepted", False, "1/1")
    assert [e["type"] for e in log(app)].count("EvaluationExtended") == 1


def test_saves_in_a_recording_only_block_reach_the_read_model_once_at_its_end(app, monkeypatch):
    """ServiceApplication.recording_only (the notifications sender's batches): inside, a save records
    its events and leaves the read model alone; at the block's end the read model catches up."""
    plan = direct_plan(app)
    applied = []
    original = app.projection.handler

    def counting(conn, env):
        applied.append(env["type"])
        original(conn, env)

    monkeypatch.setattr(app.projection, "handler", counting)
    head, project = app.head(), app.project
    monkeypatch.setattr(app, "project", lambda: 0)  # the actions commands' own explicit catch-up aside
    with app.recording_only():
        assign_dredging(app, plan)
        assert app.head() > head, "recorded"
        assert applied == [], "not applied by the save"
        monkeypatch.setattr(app, "project", project)
    assert "TaskAssigned" in applied and len(app.plan_view(C, plan)["tasks"]) == 1
