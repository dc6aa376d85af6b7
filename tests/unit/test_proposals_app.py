"""The proposals application on SQLite, without nameko: directory facts are passed in as plain
data. Covers the read model (counters, rebuild, search, erasure), the timer, merging, and two
application instances sharing one store as two service instances do."""
from __future__ import annotations

import contextlib
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from services.common import clock, config, envelope
from services.common.errors import Conflict, Forbidden, NotFound
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import consumer_tracking, create_all
from services.communities.domain import DEFAULT_RULES
from services.proposals import application as proposals_application, tables
from services.proposals.application import ProposalsApp

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
CATEGORIES = DEFAULT_RULES["categories"]


def rules(**threshold) -> dict:
    levels = {level: {"unit": "residents", "count": 100_000} for level in ("community", "compound", "building")}
    levels.update(threshold)
    return dict(DEFAULT_RULES, support_threshold=levels, support_window_days=10)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    clock.set(T0)
    yield config.load()
    clock.set(None)


@pytest.fixture
def open_app(settings):
    opened = []

    def make() -> ProposalsApp:
        engine = state_engine("proposals", settings)
        create_all(engine, tables.metadata)
        opened.append((ProposalsApp(settings, engine), engine))
        return opened[-1][0]

    yield make
    for app, engine in opened:
        app.close()
        engine.dispose()


@pytest.fixture
def app(open_app) -> ProposalsApp:
    return open_app()


class World:
    def __init__(self, app: ProposalsApp):
        self.app, self.community, self.author = app, str(uuid.uuid4()), str(uuid.uuid4())

    def collecting(self, rule_set=None, in_scope=10, title="疏通排水沟", scope="community") -> str:
        pid = self.app.draft(self.author, self.community, title, "body", "drainage", scope, None,
                             categories=CATEGORIES)
        self.app.submit(self.author, self.community, pid)
        self.app.screen("worker", self.community, pid, True, rules=rule_set or rules(), in_scope=in_scope)
        return pid

    def support(self, pid, person=None, household=None, app=None):
        return (app or self.app).give_support(person or str(uuid.uuid4()), self.community, pid,
                                              household or str(uuid.uuid4()), None)


@pytest.fixture
def world(app) -> World:
    return World(app)


def test_counts_come_from_the_read_model_and_match_a_rebuild(world, app):
    pid = world.collecting(rules(community={"unit": "households", "count": 1000}))
    people = [str(uuid.uuid4()) for _ in range(6)]
    homes = ["h1", "h1", "h2", "h3", "h3", "h3"]
    for person, home in zip(people, homes):
        world.support(pid, person, home)
    app.withdraw_support(people[2], world.community, pid, "h2")
    app.withdraw_support(people[3], world.community, pid, "h3")
    view = app.view(world.community, pid, people[0])
    assert (view["supports"], view["supports_residents"], view["supports_households"]) == (2, 4, 2)
    assert view["supported_by_me"] is True
    before = _read_model(app)
    with app.engine.begin() as conn:  # throw the read model away and rebuild it from the log
        for table in reversed(tables.metadata.sorted_tables):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(consumer_tracking))
    app.project()
    assert _read_model(app) == before


def _read_model(app) -> dict:
    with app.engine.connect() as conn:
        return {table.name: sorted(tuple(map(str, r)) for r in conn.execute(sa.select(table)))
                for table in tables.metadata.sorted_tables}


def test_qualification_records_the_exact_count_and_closes_supports(world, app):
    pid = world.collecting(rules(community={"unit": "households", "share": "1/10"}), in_scope=25)
    assert world.support(pid)["supports"] == 1
    assert world.support(pid.upper())["status"] == "collecting"  # one proposal (and one lock), however spelt
    counts = world.support(pid)
    assert counts == {"proposal": pid, "status": "qualified", "supports": 3, "threshold": 3, "unit": "households"}
    with pytest.raises(Conflict, match="qualified"):
        world.support(pid)
    history = app.view(world.community, pid, world.author)["history"]
    assert history[-1]["type"] == "ProposalQualified" and history[-1]["actor"] == "system"
    assert history[-1]["data"]["supports"] == 3


def test_a_support_counts_from_its_own_apply_and_asks_the_read_model_nothing_after(world, app, monkeypatch):
    """The counts a support's save applied at the log head are its answer and decide qualification:
    no catch-up check and no read of the counts after the save. A save whose read model caught up
    instead (another writer took the position first) still counts from the read model."""
    pid = world.collecting(rules(community={"unit": "households", "count": 3}))
    asked, project, count = [], app.project, app._count
    monkeypatch.setattr(app, "project", lambda: asked.append("project") or project())
    monkeypatch.setattr(app, "_count", lambda p: asked.append("count") or count(p))
    assert world.support(pid, household="h1")["supports"] == 1
    assert world.support(pid, household="h1")["supports"] == 1  # a household counts once
    assert world.support(pid, household="h2")["supports"] == 2
    assert asked == []
    monkeypatch.setattr(proposals_application, "commits_ahead", lambda: contextlib.nullcontext([]))  # as if nothing was ahead
    counts = world.support(pid, household="h3")
    assert counts == {"proposal": pid, "status": "qualified", "supports": 3, "threshold": 3, "unit": "households"}
    assert asked[:2] == ["project", "count"]
    assert app.view(world.community, pid, world.author)["history"][-1]["data"]["supports"] == 3


def test_only_residents_in_scope_support(world, app):
    pid = world.collecting()
    with pytest.raises(Forbidden):
        app.give_support("p", world.community, pid, None, None)  # lives nowhere
    with pytest.raises(Forbidden):
        app.give_support("p", world.community, pid, "h9", {"h1", "h2"})
    app.give_support("p", world.community, pid, "h1", {"h1", "h2"})
    with pytest.raises(NotFound):
        app.give_support("p", str(uuid.uuid4()), pid, "h1", None)  # another community


def test_the_timer_expires_what_passed_its_deadline(world, app):
    early = world.collecting()
    clock.set(T0 + timedelta(days=1))
    late = world.collecting()
    assert app.expire_due(T0 + timedelta(days=10) - timedelta(seconds=1)) == []
    clock.set(T0 + timedelta(days=10))
    assert app.expire_due() == [early]
    assert app.expire_due() == []
    assert app.view(world.community, early, world.author)["status"] == "expired"
    history = app.view(world.community, early, world.author)["history"]
    assert history[-1]["at"] == "2026-03-11T08:00:00.000000Z"  # stamped by the one clock
    clock.set(T0 + timedelta(days=11))
    assert app.expire_due() == [late]


def test_merge_carries_supports_over_once_per_unit_of_the_target(world, app):
    one_per_home = rules(community={"unit": "households", "count": 1000})
    a = world.collecting()
    b = world.collecting(dict(one_per_home, support_per="household"))
    world.support(a, "p1", "h1")
    world.support(a, "p2", "h1")  # same household: one support on b, which counts per household
    world.support(a, "p3", "h2")
    world.support(b, "p4", "h2")  # h2 already supports b
    with pytest.raises(Conflict, match="scope"):
        app.merge("worker", world.community, a, b, {"h1", "h2", "h3"}, {"h1", "h2"})
    result = app.merge("worker", world.community, a, b, {"h1", "h2"}, {"h1", "h2", "h3"})
    assert (result["carried"], result["supports"]) == (1, 2)
    assert app.view(world.community, a, world.author)["status"] == "merged"
    with pytest.raises(Conflict):
        world.support(a)
    with pytest.raises(Conflict, match="household already supports"):
        world.support(b, "p5", "h1")
    b_history = [h["type"] for h in app.view(world.community, b, world.author)["history"]]
    assert b_history[-1] == "ProposalMergeReceived"


def test_list_search_and_erasure(world, app):
    drain = world.collecting(title="疏通 Drain 100%")
    other = world.collecting(title="草坪")
    private = app.draft(world.author, world.community, "draft", "b", "parking", "community", None,
                        categories=CATEGORIES)

    def ids(viewer=None, **filters):
        return [p["id"] for p in app.list_proposals(world.community, viewer or world.author, **filters)["items"]]

    assert ids() == [private, other, drain]
    assert ids(viewer="someone") == [other, drain]
    assert ids(q="drain") == [drain] and ids(q="100%") == [drain] and ids(q="_") == []
    assert ids(status="draft") == [private] and ids(category="parking") == [private]
    head = app.head()
    erased = app.erase_person(world.community, world.author, actor="worker")
    assert erased["erased_texts"] == 6
    assert ids(q="drain") == [] and app.view(world.community, drain, "x")["title"] is None
    # The erasure is on record, in the community's log, with no text in it.
    [record] = read_envelopes(app, "proposals", head + 1, 10)
    assert (record["type"], record["community"], record["actor"], record["aggregate"]["id"]) == (
        "PersonTextsErased", world.community, "worker", erased["erasure"])
    assert record["data"] == {"person": world.author, "texts": 6}


def test_two_instances_on_one_store_count_every_support_once(open_app):
    """Two application instances, as two service processes have, each projecting on its own:
    the projection lock keeps them from applying an event twice, the proposal lock from losing
    a support or recording one past the threshold."""
    first, second = open_app(), open_app()
    world = World(first)
    pid = world.collecting(rules(community={"unit": "residents", "count": 40}))
    results, errors = [], []

    def supporter(app):
        try:
            results.append(world.support(pid, app=app))
        except Conflict as exc:
            errors.append(exc.detail)

    threads = [threading.Thread(target=supporter, args=(first if i % 2 else second,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40 and len(errors) == 20
    assert set(errors) == {"this proposal has qualified; it can no longer be supported"}
    for app in (first, second):
        view = app.view(world.community, pid, world.author)
        assert (view["status"], view["supports"]) == ("qualified", 40)
    assert view["history"][-1]["data"]["supports"] == 40


def _follow_up_request(community: str, original_case: str, plan: str, position: int, title_commitment=None,
                       scope="compound", scope_id="c-3", round_=1) -> dict:
    return {"id": f"{plan}:{position}", "type": "FollowUpRequested", "community": community, "case": original_case,
            "position": position, "source": "actions", "actor": "system",
            "data": {"original_case": original_case, "plan": plan, "round": round_, "scope": scope,
                     "scope_id": scope_id, "category": "drainage", "title_commitment": title_commitment,
                     "unsatisfied_share": "2/4", "threshold": "1/3"}}


def test_a_follow_up_request_opens_one_linked_proposal_awaiting_screening(world, app):
    """FollowUpRequested (from the actions service) opens a new proposal in its own case, linked to
    the original by `original_case`; replayed, or delivered again past the tracking, it opens nothing
    more; every other type of the source is ignored."""
    from services.common.consumer import EventSourcedSink
    from services.proposals.domain import follow_up_id

    original = world.collecting(title="疏通3号院排水沟", scope="community")
    title_commitment = app.view(world.community, original, world.author)["title_commitment"]
    plan = str(uuid.uuid4())
    sink = EventSourcedSink(app, app.on_actions_event)
    assert sink.handle("actions", dict(_follow_up_request(world.community, original, plan, 1), type="PlanReopened"))
    env = _follow_up_request(world.community, original, plan, 2, title_commitment)
    assert sink.handle("actions", env)
    assert not sink.handle("actions", env)  # a duplicate: at the tracked position
    assert sink.handle("actions", dict(env, position=3, id="again"))  # the same request, once more: nothing new

    pid = str(follow_up_id(plan, 1))
    view = app.view(world.community, pid, "a-worker")  # submitted: every resident and worker sees it
    assert (view["status"], view["author"], view["scope"], view["scope_id"], view["category"]) == (
        "submitted", "system", "compound", "c-3", "drainage")
    assert view["title"] == "跟进：疏通3号院排水沟" and "2/4" in view["body"] and original in view["body"]
    assert [h["type"] for h in view["history"]] == ["ProposalDrafted", "ProposalSubmitted"]
    assert view["history"][0]["data"]["original_case"] == original
    assert {h["actor"] for h in view["history"]} == {"system"}
    for event in app.repository.event_store.get(uuid.UUID(pid)):  # its own case, caused by the request
        e = envelope.from_domain_event("proposals", None, event)
        assert (e["case"], e["causation"], e["actor"]) == (pid, env["id"], "system")
    assert [p["id"] for p in app.list_proposals(world.community, "someone", status="submitted")["items"]] == [pid]
    assert sink.position("actions") == 3 and app.tracked_position("actions") == 2, "3 changed nothing: not saved yet"
    sink.track_untracked()
    assert app.tracked_position("actions") == 3

    # A worker screens it like any other; erasing the original author erases the copied title too.
    app.screen("worker", world.community, pid, True, rules=rules(), in_scope=10)
    assert app.view(world.community, pid, "x")["status"] == "collecting"
    app.erase_person(world.community, world.author, actor="worker")
    assert app.view(world.community, pid, "x")["title"] is None

    # A case that did not begin here (a plan opened directly): the title comes from the actions service.
    other_plan = str(uuid.uuid4())
    asked = []
    request = _follow_up_request(world.community, other_plan, other_plan, 4, "f" * 64, scope="community",
                                 scope_id=None, round_=2)
    sink = EventSourcedSink(app, lambda e: app.on_actions_event(
        e, plan_title=lambda c, p: asked.append((c, p)) or {"title": "修补路灯"}))
    assert sink.handle("actions", request)
    view = app.view(world.community, str(follow_up_id(other_plan, 2)), "x")
    assert asked == [(world.community, other_plan)]
    assert (view["title"], view["scope"], view["scope_id"]) == ("跟进：修补路灯", "community", world.community)
    assert view["history"][0]["data"]["original_case"] == other_plan
