""""What needs me" in the proposals stage (the home page's `GET /communities/{c}/me/needs`): the
application on SQLite with the directory's facts passed in as plain data, as in
test_proposals_app.py, and the service's one directory question per scope with a fake directory."""
from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from services.common import clock
from services.common.errors import NotFound
from services.proposals.application import ProposalsApp

from tests.unit.test_proposals_app import CATEGORIES, T0, app, open_app, rules, settings  # noqa: F401 - fixtures

WORKER = ["community_worker"]


class Town:
    """One community with two buildings: b1 holds households h1 and h2, b2 holds h9."""

    def __init__(self, app: ProposalsApp, community: str | None = None):
        self.app, self.community = app, community or str(uuid.uuid4())
        self.author = str(uuid.uuid4())
        self.scopes = {("building", "b1"): {"h1", "h2"}, ("building", "b2"): {"h9"}}

    def submitted(self, title="修路灯", scope="building", scope_id="b1", author=None) -> str:
        pid = self.app.draft(author or self.author, self.community, title, "body", "other", scope, scope_id,
                             categories=CATEGORIES, known_scopes={"building": {"b1", "b2"}})
        self.app.submit(author or self.author, self.community, pid)
        return pid

    def collecting(self, title="修路灯", scope="building", scope_id="b1", rule_set=None) -> str:
        pid = self.submitted(title, scope, scope_id)
        self.app.screen("worker", self.community, pid, True, rules=rule_set or rules(), in_scope=10)
        return pid

    def needs(self, person, household, roles=()) -> list[dict]:
        return self.app.needs_of(self.community, person, list(roles), household, self.scopes)

    def kinds(self, person, household, roles=()) -> list[tuple[str, str]]:
        return [(n["kind"], n["id"]) for n in self.needs(person, household, roles)]


@pytest.fixture
def town(app) -> Town:
    return Town(app)


def test_a_collecting_proposal_asks_the_residents_of_its_scope_for_support(town, app):
    pid = town.collecting("疏通排水沟")
    resident, neighbour, elsewhere = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())

    [need] = town.needs(resident, "h1")
    deadline = app.view(town.community, pid, resident)["deadline"]
    assert need == {"kind": "support", "stage": "proposals", "id": pid, "title": "疏通排水沟", "due": deadline,
                    "path": f"proposals/{pid}"}
    assert town.kinds(neighbour, "h2") == [("support", pid)]
    assert town.needs(town.author, "h1") == []  # not its author
    assert town.needs(elsewhere, "h9") == []  # another building
    assert town.needs(str(uuid.uuid4()), None) == []  # no resident at all

    app.give_support(resident, town.community, pid, "h1", {"h1", "h2"})
    assert town.needs(resident, "h1") == []
    assert town.kinds(neighbour, "h2") == [("support", pid)]  # one support per resident here
    app.withdraw_support(resident, town.community, pid, "h1")
    assert town.kinds(resident, "h1") == [("support", pid)]  # withdrawn: asked again


def test_a_household_that_supports_is_not_asked_again_where_supports_count_per_household(town, app):
    pid = town.collecting(rule_set=dict(rules(), support_per="household"))
    app.give_support("p1", town.community, pid, "h1", {"h1", "h2"})
    assert town.needs("p2", "h1") == []  # the household's support is given: a second would be refused
    assert town.kinds("p3", "h2") == [("support", pid)]


def test_whole_community_proposals_need_no_scope_and_order_is_by_deadline_then_submission(town, app):
    late = town.collecting("晚", scope="community", scope_id=None)
    clock.set(T0 - timedelta(days=1))
    soon = town.collecting("早")
    clock.set(T0 + timedelta(hours=1))
    first = town.submitted("先")
    clock.set(T0 + timedelta(hours=2))
    second = town.submitted("后")
    clock.set(T0 + timedelta(hours=3))
    assert town.kinds("w", "h1", WORKER) == [("support", soon), ("support", late), ("screen", first),
                                             ("screen", second)]
    assert town.kinds("w", "h9", ["party_lead"]) == [("support", late), ("screen", first), ("screen", second)]
    assert [n["due"] for n in town.needs("w", None, WORKER)] == [None, None]  # a worker living elsewhere
    assert town.kinds("r", "h1") == [("support", soon), ("support", late)]  # a resident screens nothing
    assert app.need_scopes(town.community, "r") == [("building", "b1"), ("community", town.community)]

    clock.set(T0 + timedelta(days=9, hours=1))  # past soon's deadline, before the timer expired it
    assert town.kinds("r", "h1") == [("support", late)]


def test_another_communitys_proposals_never_appear(app):
    ours, theirs = Town(app), Town(app)
    theirs.collecting(scope="community", scope_id=None)
    theirs.collecting()
    theirs.submitted()
    assert ours.needs("w", "h1", WORKER) == []
    assert app.need_scopes(ours.community, "w") == []
    mine = ours.submitted()
    assert ours.kinds("w", "h1", WORKER) == [("screen", mine)]


class _Reply:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _Directory:
    """The communities service as the proposals service sees it: counts the questions asked."""

    def __init__(self, homes: dict, scopes: dict):
        self.asked = []
        directory = self

        class Method:
            def __init__(self, name, answer):
                self.name, self.answer = name, answer

            def call_async(self, **asked):  # a declared call, sent by name
                directory.asked.append((self.name, *[v for k, v in asked.items() if k != "community"]))
                return _Reply(self.answer(**asked))

        def get_person(community, person, at=None):
            if person in homes:
                return {"ok": True, "result": {"id": person, "household": homes[person]}}
            return {"ok": False, "problem": NotFound.coded("common.does_exist_community", what="person",
                                                           value=person).to_problem()}

        self.get_person = Method("get_person", get_person)
        def households(community, scope, scope_id=None, at=None):
            return {"ok": True, "result": sorted(scopes[scope, scope_id])}

        self.households_in_scope = Method("households_in_scope", households)


def test_the_service_asks_the_directory_once_per_scope_and_not_at_all_for_nothing(town, app):
    from services.proposals.service import ProposalsService

    service = ProposalsService.__new__(ProposalsService)
    service.platform = SimpleNamespace(app=app)
    service.communities = _Directory({"r": "h1", "far": "h9"}, town.scopes)
    needs_of = ProposalsService.needs_of.__wrapped__  # under @command: the RPC envelope is not the point here

    assert needs_of(service, town.community, "r", []) == []
    assert service.communities.asked == []  # nothing to support: no directory question

    a, b = town.collecting("甲"), town.collecting("乙")
    c = town.collecting("丙", scope_id="b2")
    d = town.collecting("丁", scope="community", scope_id=None)
    assert [n["id"] for n in needs_of(service, town.community, "r", [])] == [a, b, d]
    assert sorted(service.communities.asked) == [("get_person", "r"),  # no `at`: the directory as it is now
                                                 ("households_in_scope", "building", "b1"),
                                                 ("households_in_scope", "building", "b2")]
    assert [n["id"] for n in needs_of(service, town.community, "far", None)] == [c, d]
    assert needs_of(service, town.community, "stranger", WORKER) == []  # the directory has them as no resident
