"""The gateway's `GET …/me/needs` gathers each stage's answer; a stage that is not running, too slow
or busy is named in `unavailable` instead of failing the whole page, and any other refusal still
reaches the client as it came."""
from __future__ import annotations

import eventlet
import pytest

from services.common.errors import Forbidden, Unavailable, from_problem
from services.gateway import routes_directory
from services.gateway.router import problem


class FakeCall:
    community = "c"
    actor = "p"
    principal = {"person": "p", "roles": [{"role": "owner"}]}

    def __init__(self, answers):
        self.answers = answers

    def send(self, request):
        assert request.METHOD == "needs_of" and request.arguments() == {"community": "c", "person": "p",
                                                                        "roles": ["owner"]}
        answer = self.answers[request.SERVICE]
        if isinstance(answer, BaseException):
            raise answer
        if answer == "slow":
            eventlet.sleep(10)
        return answer


def not_running(service: str):
    # what the gateway's _rpc raises when the service has no queue consumer
    return from_problem(problem(503, "Service unavailable", f"the {service} service is not running",
                                code="ServiceUnavailable"))


def test_a_stage_not_running_slow_or_busy_is_named_and_the_others_answer(monkeypatch):
    monkeypatch.setattr(routes_directory, "NEEDS_WAIT_S", 0.2)
    stages = list(routes_directory.NEEDS_FROM)
    assert len(stages) >= 4
    answers = {s: [{"kind": "k", "id": s}] for s in stages}
    answers[stages[0]] = not_running(stages[0])
    answers[stages[1]] = "slow"
    answers[stages[2]] = Unavailable("records held for an operator")
    got = routes_directory.my_needs(FakeCall(answers))
    assert got["unavailable"] == stages[:3]
    assert [i["id"] for i in got["items"]] == stages[3:]


def test_another_refusal_of_a_stage_is_not_hidden():
    stages = list(routes_directory.NEEDS_FROM)
    answers = {s: [] for s in stages}
    answers[stages[-1]] = Forbidden("no")
    with pytest.raises(Forbidden):
        routes_directory.my_needs(FakeCall(answers))
