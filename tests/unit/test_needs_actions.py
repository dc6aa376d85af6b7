"""What of the actions stage needs a person now (`ActionsApp.needs_of`, behind the gateway's
`GET /api/v1/communities/{c}/me/needs`): their open tasks, the evaluations open to them that they
have not answered, and for a worker or the lead the plans still to be carried out. On SQLite."""
from __future__ import annotations

from datetime import timedelta

from services.common.caller import Caller
from services.actions.domain import TALLY_GRACE
from services.common import clock

from .test_actions_app import C, IN_SCOPE, PROPERTY, RULES, WORKER, app, drainage, finish  # noqa: F401 - fixture
from .test_actions_domain import RESIDENTS, T0

OTHER = "community-2"
GRID = RESIDENTS[5]


def resident(person: str) -> Caller:
    return Caller(person, frozenset({"resident"}))


def kinds(items: list[dict]) -> list[tuple[str, str]]:
    return [(i["kind"], i["id"]) for i in items]


def test_a_task_needs_its_responsible_person_until_it_is_completed(app):
    plan, _ = drainage(app)  # its task is the property company's, named for nobody
    due = clock.format(T0 + timedelta(days=3))
    task = app.assign_task(WORKER, C, plan, "巡查排水沟", {"kind": "grid_leader", "person": GRID}, due)
    assert app.needs_of(C, GRID, ["resident"]) == [
        {"kind": "task", "stage": "actions", "id": task, "title": "巡查排水沟", "due": due,
         "path": f"plans/{plan}", "overdue": False}]
    assert app.needs_of(C, RESIDENTS[6], ["grid_leader"]) == [], "a task named for someone else"
    assert app.needs_of(C, PROPERTY.person, ["property_company"]) == [], "a party without a person names nobody"
    clock.set(T0 + timedelta(days=3, seconds=1))
    assert app.needs_of(C, GRID, ["resident"])[0]["overdue"] is True, "past due, before the timer flags it"
    app.report_progress(resident(GRID), C, plan, task, 50)
    assert kinds(app.needs_of(C, GRID, ["resident"])) == [("task", task)]
    app.report_progress(resident(GRID), C, plan, task, 100)
    assert app.needs_of(C, GRID, ["resident"]) == []


def test_an_open_evaluation_needs_those_asked_until_they_have_answered(app):
    plan, task = drainage(app)
    assert app.needs_of(C, RESIDENTS[0], ["resident"]) == [], "not open yet"
    finish(app, plan, task)
    closes = app.plan_view(C, plan)["evaluation"]["closes_at"]
    assert app.needs_of(C, RESIDENTS[0], ["resident"]) == [
        {"kind": "evaluate", "stage": "actions", "id": plan, "title": "疏通3号院坝排水沟", "due": closes,
         "path": f"plans/{plan}"}]
    assert app.needs_of(C, IN_SCOPE[-1]["person"], ["resident"]) == [], "a child in scope is not asked"
    assert app.needs_of(C, "0f000000-0000-0000-0000-000000000097", ["resident"]) == [], "not living in the scope"
    app.evaluate(resident(RESIDENTS[0]), C, plan, "satisfied")
    assert app.needs_of(C, RESIDENTS[0], ["resident"]) == []
    assert kinds(app.needs_of(C, RESIDENTS[1], ["resident"])) == [("evaluate", plan)]
    clock.set(T0 + timedelta(days=14))
    assert app.needs_of(C, RESIDENTS[1], ["resident"]) == [], "the window has closed"


def test_a_new_round_asks_again_those_who_answered_the_last(app):
    plan, task = drainage(app)
    finish(app, plan, task)
    for i in range(5):
        app.evaluate(resident(RESIDENTS[i]), C, plan, "unsatisfied")
    clock.set(T0 + timedelta(days=14) + TALLY_GRACE)
    assert app.close_due_evaluations() == 1 and app.plan_view(C, plan)["status"] == "reopened"
    assert app.needs_of(C, RESIDENTS[0], ["resident"]) == []
    extra = app.assign_task(WORKER, C, plan, "加装截水沟", {"kind": "contractor"},
                            clock.format(clock.now() + timedelta(days=5)))
    app.report_progress(WORKER, C, plan, extra, 100)
    app.report_done(WORKER, C, plan, "截水沟已加装", IN_SCOPE, RULES)
    assert kinds(app.needs_of(C, RESIDENTS[0], ["resident"])) == [("evaluate", plan)]


def test_workers_and_the_lead_run_open_plans_residents_do_not(app):
    plan, task = drainage(app)
    run = {"kind": "run", "stage": "actions", "id": plan, "title": "疏通3号院坝排水沟", "due": None,
           "path": f"plans/{plan}"}
    assert app.needs_of(C, WORKER.person, ["community_worker"]) == [run]
    assert app.needs_of(C, "0f000000-0000-0000-0000-000000000095", ["party_lead"]) == [run]
    assert app.needs_of(C, RESIDENTS[0], ["resident"]) == []
    assert app.needs_of(C, PROPERTY.person, ["property_company"]) == []
    finish(app, plan, task)
    assert app.needs_of(C, WORKER.person, ["community_worker"]) == [], "reported done: evaluated, not run"
    other = app.open_plan(WORKER, C, None, "修路灯", "路灯不亮", "community", None, None)
    assert kinds(app.needs_of(C, WORKER.person, ["community_worker"])) == [("run", other)]
    app.close_case(Caller("0f000000-0000-0000-0000-000000000095", frozenset({"party_lead"})), C, other, "已在线下解决")
    assert app.needs_of(C, WORKER.person, ["community_worker"]) == [], "a closed case is not run"


def test_evaluations_then_tasks_then_plans_to_run(app):
    rated, task = drainage(app)
    finish(app, rated, task)
    clock.set(T0 + timedelta(days=1))
    running = app.open_plan(WORKER, C, None, "修路灯", "路灯不亮", "community", None, None)
    late = app.assign_task(WORKER, C, running, "更换灯泡", {"kind": "volunteer_team", "person": GRID},
                           clock.format(T0 + timedelta(days=9)))
    soon = app.assign_task(WORKER, C, running, "检查线路", {"kind": "volunteer_team", "person": GRID},
                           clock.format(T0 + timedelta(days=2)))
    assert kinds(app.needs_of(C, GRID, ["resident", "community_worker"])) == [
        ("evaluate", rated), ("task", soon), ("task", late), ("run", running)]


def test_another_communitys_plans_never_appear(app):
    plan, task = drainage(app)
    elsewhere = app.open_plan(WORKER, OTHER, None, "别处的计划", "别处", "community", None, None)
    theirs = app.assign_task(WORKER, OTHER, elsewhere, "别处的任务", {"kind": "grid_leader", "person": GRID},
                             clock.format(T0 + timedelta(days=3)))
    app.report_progress(WORKER, OTHER, elsewhere, theirs, 100)
    app.report_done(WORKER, OTHER, elsewhere, "别处完成", IN_SCOPE, RULES)
    assert kinds(app.needs_of(OTHER, GRID, ["resident"])) == [("evaluate", elsewhere)]
    assert app.needs_of(C, GRID, ["resident"]) == []
    assert kinds(app.needs_of(C, WORKER.person, ["community_worker"])) == [("run", plan)]
    again = app.open_plan(WORKER, OTHER, None, "别处的第二个", "别处", "community", None, None)
    app.assign_task(WORKER, OTHER, again, "别处的任务二", {"kind": "grid_leader", "person": GRID},
                    clock.format(T0 + timedelta(days=3)))
    assert app.needs_of(C, GRID, ["community_worker"]) == [
        {"kind": "run", "stage": "actions", "id": plan, "title": "疏通3号院坝排水沟", "due": None,
         "path": f"plans/{plan}"}]
