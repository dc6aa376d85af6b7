"""The action stage's aggregates on their own: tasks, progress, overdue, the report of done with
its disclosure and evaluation, the exact reopening threshold, and case closures. No storage."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.actions.domain import (
    TALLY_GRACE, ActionPlan, CaseClosure, Evaluation, closure_id, evaluation_id, parse_budget, passes, plan_id,
)
from services.common.aggregate import command_context
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
CASE = "0a000000-0000-0000-0000-000000000001"
COMPOUND = "c0000000-0000-0000-0000-000000000003"
RESIDENTS = [f"0f000000-0000-0000-0000-0000000000{i:02d}" for i in range(1, 13)]  # twelve adults
H = "ab" * 32  # an evidence hash


@pytest.fixture(autouse=True)
def _context():
    with command_context(community="community-1", actor="tests", case=CASE):
        yield


def drainage_plan(**kwargs) -> ActionPlan:
    args = dict(id=plan_id(CASE), community="community-1", case=CASE, basis="resolution", scope="compound",
                scope_id=COMPOUND, category="drainage", title_commitment="t" * 64)
    args.update(kwargs)
    return ActionPlan.open(**args)


def assign(plan: ActionPlan, task: str = "dredge", days: int = 10, **kwargs) -> None:
    args = dict(task=task, title_commitment="d" * 64, responsible_party={"kind": "property_company", "person": None},
                due_at=T0 + timedelta(days=days), budget="12800.00", funding_source="maintenance_fund", now=T0)
    args.update(kwargs)
    plan.assign(**args)


def done(plan: ActionPlan, residents=RESIDENTS, threshold="1/3") -> None:
    plan.report_done(summary_commitment="s" * 64, residents=list(residents), window_days=14, threshold=threshold,
                     now=T0 + timedelta(days=5))


def types(plan: ActionPlan) -> list[str]:
    return [type(e).__name__ for e in plan.collect_events()]


def test_a_plan_opens_for_its_case_with_one_id_per_case():
    plan = drainage_plan()
    assert plan.id == plan_id(CASE) and plan.case == CASE and plan.status == "open"
    assert types(plan) == ["ActionPlanOpened"]
    with pytest.raises(InvalidInput, match="basis written down"):
        drainage_plan(basis="direct")
    with pytest.raises(InvalidInput, match="scope_id"):
        drainage_plan(scope_id=None)


def test_tasks_need_a_known_party_a_future_due_time_and_a_funded_budget():
    plan = drainage_plan()
    with pytest.raises(InvalidInput, match="responsible party"):
        assign(plan, responsible_party={"kind": "landlord"})
    with pytest.raises(InvalidInput, match="future"):
        assign(plan, days=0)
    with pytest.raises(InvalidInput, match="funding source"):
        assign(plan, funding_source=None)
    with pytest.raises(InvalidInput, match="two decimal places"):
        assign(plan, budget="1.005")
    assign(plan)
    assign(plan, task="inspect", budget=None, funding_source=None)
    with pytest.raises(Conflict, match="already exists"):
        assign(plan)
    assert plan.tasks["dredge"]["budget"] == "12800.00" and plan.tasks["inspect"]["budget"] is None


def test_budgets_are_exact_decimal_strings_never_floats():
    assert parse_budget("12800") == "12800" and parse_budget(0) == "0" and parse_budget(None) is None
    for bad in (12.5, "-1", "abc", "NaN", True):
        with pytest.raises(InvalidInput):
            parse_budget(bad)


def test_progress_to_100_completes_the_task_and_late_completion_says_so():
    plan = drainage_plan()
    assign(plan)
    plan.report_progress(task="dredge", percent=40, note_commitment=None, evidence=[H], now=T0)
    with pytest.raises(InvalidInput, match="percent"):
        plan.report_progress(task="dredge", percent=101, note_commitment=None, evidence=[], now=T0)
    with pytest.raises(InvalidInput, match="SHA-256"):
        plan.report_progress(task="dredge", percent=50, note_commitment=None, evidence=["not-a-hash"], now=T0)
    with pytest.raises(NotFound):
        plan.report_progress(task="nope", percent=50, note_commitment=None, evidence=[], now=T0)
    plan.report_progress(task="dredge", percent=100, note_commitment=None, evidence=[], now=T0 + timedelta(days=11))
    events = plan.collect_events()
    assert [type(e).__name__ for e in events][-2:] == ["ProgressReported", "TaskCompleted"]
    assert events[-1].late is True
    with pytest.raises(Conflict, match="complete"):
        plan.report_progress(task="dredge", percent=100, note_commitment=None, evidence=[], now=T0)


def test_overdue_is_flagged_once_per_task_when_the_clock_passes_its_due_time():
    plan = drainage_plan()
    assign(plan, days=3)
    assign(plan, task="inspect", days=30)
    plan.collect_events()
    assert plan.flag_overdue(T0 + timedelta(days=3)) == [], "due at 09:00 is not overdue at 09:00"
    assert plan.flag_overdue(T0 + timedelta(days=3, microseconds=1)) == ["dredge"]
    assert plan.flag_overdue(T0 + timedelta(days=4)) == []
    event = plan.collect_events()[-1]
    assert type(event).__name__ == "TaskOverdue" and event.task == "dredge" and event.percent == 0


def test_done_needs_every_task_complete_then_discloses_and_opens_the_evaluation():
    plan = drainage_plan()
    with pytest.raises(Conflict, match="without tasks"):
        done(plan)
    assign(plan)
    with pytest.raises(Conflict, match="not complete"):
        done(plan)
    plan.report_progress(task="dredge", percent=100, note_commitment=None, evidence=[], now=T0)
    plan.collect_events()
    done(plan, residents=RESIDENTS + RESIDENTS[:1])
    events = plan.collect_events()
    assert [type(e).__name__ for e in events] == ["PlanReportedDone", "ResultDisclosed", "EvaluationOpened"]
    opened = events[-1]
    assert opened.denominator == 12 and opened.residents == sorted(RESIDENTS) and opened.threshold == "1/3"
    assert opened.closes_at == "2026-06-20T09:00:00.000000Z"
    with pytest.raises(Conflict, match="evaluating"):
        assign(plan, task="more")


def test_evaluators_are_the_frozen_residents_within_the_window():
    plan = drainage_plan()
    with pytest.raises(Conflict, match="has not opened"):
        plan.check_evaluator(RESIDENTS[0], T0)
    assign(plan)
    plan.report_progress(task="dredge", percent=100, note_commitment=None, evidence=[], now=T0)
    done(plan)
    assert plan.check_evaluator(RESIDENTS[0], T0 + timedelta(days=6)) == 1
    with pytest.raises(Forbidden, match="living in the plan's scope"):
        plan.check_evaluator("someone-else", T0 + timedelta(days=6))
    with pytest.raises(Conflict, match="window closed"):
        plan.check_evaluator(RESIDENTS[0], T0 + timedelta(days=19))


@pytest.mark.parametrize("unsatisfied, outcome", [(4, "accepted"), (5, "reopened")])
def test_the_plan_reopens_only_when_the_unsatisfied_share_strictly_passes_the_threshold(unsatisfied, outcome):
    plan = drainage_plan()
    assign(plan)
    plan.report_progress(task="dredge", percent=100, note_commitment=None, evidence=[], now=T0)
    done(plan)
    plan.collect_events()
    closes = T0 + timedelta(days=19)
    with pytest.raises(Conflict, match="not due"):
        plan.close_evaluation(counts={}, now=closes)
    assert plan.close_evaluation(counts={"unsatisfied": unsatisfied, "satisfied": 3},
                                 now=closes + TALLY_GRACE) == outcome
    events = plan.collect_events()
    closed = events[0]
    assert closed.unsatisfied_share == f"{unsatisfied}/12" and closed.threshold == "1/3"
    assert closed.counts == {"satisfied": 3, "basically_satisfied": 0, "unsatisfied": unsatisfied}
    assert closed.respondents == 3 + unsatisfied
    if outcome == "accepted":
        assert [type(e).__name__ for e in events] == ["EvaluationClosed"] and plan.status == "closed"
    else:
        assert [type(e).__name__ for e in events] == ["EvaluationClosed", "PlanReopened", "FollowUpRequested"]
        follow_up = events[-1]
        assert follow_up.original_case == CASE and follow_up.plan == str(plan.id)
        assert (follow_up.scope, follow_up.scope_id, follow_up.category) == ("compound", COMPOUND, "drainage")
        assert follow_up.title_commitment == "t" * 64
        # Remedial work: new tasks, then done again for a second round.
        assign(plan, task="reline", days=40)
        plan.report_progress(task="reline", percent=100, note_commitment=None, evidence=[], now=T0)
        done(plan)
        assert plan.evaluation["round"] == 2


def test_exact_fractions_at_the_boundary_and_an_empty_scope():
    assert not passes(1, 3, "1/3") and passes(2, 5, "1/3") and not passes(0, 0, "0")
    plan = drainage_plan()
    assign(plan)
    plan.report_progress(task="dredge", percent=100, note_commitment=None, evidence=[], now=T0)
    done(plan, residents=[])
    assert plan.close_evaluation(counts={}, now=T0 + timedelta(days=20)) == "accepted"


def test_one_evaluation_per_resident_and_round_the_last_counts():
    ev = Evaluation.give(community="community-1", case=CASE, plan="p", round_=1, person=RESIDENTS[0],
                         rating="unsatisfied", comment_commitment=None)
    assert ev.id == evaluation_id("p", 1, RESIDENTS[0]) != evaluation_id("p", 2, RESIDENTS[0])
    ev.change("basically_satisfied", "c" * 64)
    assert ev.rating == "basically_satisfied"
    assert [type(e).__name__ for e in ev.collect_events()] == ["EvaluationGiven", "EvaluationChanged"]
    with pytest.raises(InvalidInput, match="rating"):
        ev.change("meh", None)


def test_a_case_closes_once_with_a_known_outcome():
    closure = CaseClosure.close(community="community-1", case=CASE, outcome="rejected", stage="decision",
                                reason_commitment=None)
    assert closure.id == closure_id(CASE) and type(closure.collect_events()[0]).__name__ == "CaseClosed"
    with pytest.raises(InvalidInput):
        CaseClosure.close(community="community-1", case=str(uuid.uuid4()), outcome="abandoned", stage="action",
                          reason_commitment=None)
