"""The one directory client (services.common.directory.Directory): every question is the communities
contract's declared call sent by name, every reply is unwrapped exactly once, whether it comes from a
nameko worker's proxy (raw envelopes) or from a runtime's `send` (which unwraps already), and a
refusal of the directory is raised as its DomainError with the directory's own problem."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common.directory import Directory
from services.common.errors import NotFound, Unavailable
from services.common.runtime import Runtime

C, P, B = "community-1", "person-1", "building-1"
MISSING = {"type": "https://consult.example/problems/NotFound", "title": "Not found", "status": 404,
           "detail": "person person-9 does not exist in this community", "code": "NotFound"}
LOOKS_LIKE_A_REPLY = {"ok": True, "result": "inner"}  # a result that happens to look like an envelope


def ok(result) -> dict:
    return {"ok": True, "result": result}


def refused(problem: dict) -> dict:
    return {"ok": False, "problem": problem}


class FakeProxy:
    """A worker's RpcProxy to the communities service: `proxy.method(**kwargs)` and
    `proxy.method.call_async(**kwargs).result()` give the raw replies in `replies`, keyed by method.
    Called by position, it refuses (TypeError), as a declared call sent by name never is."""

    def __init__(self, replies: dict):
        self.replies, self.asked, self.waited = replies, [], []

    def __getattr__(self, method: str):
        proxy = self

        class Method:
            def __call__(self, **kwargs):
                proxy.asked.append((method, kwargs))
                return proxy.replies[method](**kwargs)

            def call_async(self, **kwargs):
                proxy.asked.append(("async", method, kwargs))
                reply = proxy.replies[method](**kwargs)

                class Reply:
                    def result(self):
                        proxy.waited.append(method)
                        return reply

                return Reply()

        return Method()


def person(community, person, at=None):
    if person == P:
        return ok({"id": P, "household": "h1", "adult": True, "roles": [{"role": "resident"}, {"role": "grid_leader"}]})
    return refused(MISSING)


def test_a_proxy_reply_is_unwrapped_once_with_the_rpc_arguments():
    proxy = FakeProxy({"get_person": person,
                       "get_community": lambda community, at=None: ok({"rules": {"quorum": 0.5}}),
                       "role_holders": lambda community, role, scope=None, at=None: ok(LOOKS_LIKE_A_REPLY)})
    d = Directory.of_proxy(proxy)
    assert d.get_person(C, P)["household"] == "h1"
    assert d.rules(C, "2025-01-01T00:00:00Z") == {"quorum": 0.5}
    assert d.roles_of(C, P) == ["resident", "grid_leader"]
    # Unwrapped once: the directory's answer is what the stage gets, even one shaped like an envelope.
    assert d.role_holders(C, "council_member") == LOOKS_LIKE_A_REPLY
    # Each question is the contract's declared call, by name: what is given, nothing left at its default.
    assert proxy.asked == [("get_person", {"community": C, "person": P}),
                           ("get_community", {"community": C, "at": "2025-01-01T00:00:00Z"}),
                           ("get_person", {"community": C, "person": P}),
                           ("role_holders", {"community": C, "role": "council_member"})]


def test_a_refusal_is_the_directory_s_not_found_with_its_status_and_problem():
    d = Directory.of_proxy(FakeProxy({"get_person": person}))
    with pytest.raises(NotFound) as caught:
        d.get_person(C, "person-9")
    assert caught.value.status == 404
    assert caught.value.to_problem() == MISSING  # passed on exactly as the directory gave it
    with pytest.raises(NotFound):
        d.roles_of(C, "person-9")  # the derived questions refuse alike
    with pytest.raises(NotFound):
        d.lives_in(C, "person-9", "community", None)


def test_async_questions_are_asked_at_once_and_unwrapped_when_waited_for():
    proxy = FakeProxy({"get_person": person,
                       "households_in_scope": lambda community, scope, scope_id=None, at=None: ok(["h1", "h2"])})
    d = Directory.of_proxy(proxy)
    stranger = d.get_person_async(C, "person-9")  # no refusal yet: it is raised when waited for
    households = d.households_in_scope_async(C, "building", B)
    assert proxy.asked == [("async", "get_person", {"community": C, "person": "person-9"}),
                           ("async", "households_in_scope", {"community": C, "scope": "building", "scope_id": B})]
    assert proxy.waited == []
    assert households.result() == ["h1", "h2"]
    with pytest.raises(NotFound) as caught:
        stranger.result()
    assert caught.value.status == 404


def test_household_of_is_none_for_someone_the_directory_does_not_know_but_other_refusals_stand():
    busy = {"status": 503, "title": "Service unavailable", "detail": "communities: not now"}
    d = Directory.of_proxy(FakeProxy({"get_person": lambda **asked: refused(busy) if asked["person"] == "busy"
                                      else person(**asked)}))
    assert d.household_of(C, P) == "h1"
    assert d.household_of_async(C, "person-9").result() is None
    with pytest.raises(Unavailable):
        d.household_of(C, "busy")


def test_lives_in_and_has_place():
    proxy = FakeProxy({"get_person": person,
                       "residents_in_scope": lambda community, scope, scope_id=None, at=None: ok(
                           [{"person": P, "household": "h1"}]),
                       "directory": lambda community, at=None: ok({"compounds": [{"id": "k1"}],
                                                                   "buildings": [{"id": B}]})})
    d = Directory.of_proxy(proxy)
    assert d.lives_in(C, P, "community", None) and d.lives_in(C, P, "building", B)
    assert not d.lives_in(C, "someone-else", "building", B)
    assert d.has_place(C, "building", B) and d.has_place(C, "compound", "k1")
    assert not d.has_place(C, "building", "k1")


def runtime(call) -> Runtime:
    return Runtime("notifications", settings=None, engine=sa.create_engine("sqlite://"), call=call)


def test_over_a_runtime_the_reply_is_unwrapped_by_rt_send_and_not_again():
    asked = []

    def call(service, method, **kwargs):
        asked.append((service, method, kwargs))
        if method == "get_person":
            return person(**kwargs)
        return ok(LOOKS_LIKE_A_REPLY)  # rt.send takes off this envelope; the one inside is the answer

    d = Directory.of_runtime(runtime(call))
    assert d.residents_in_scope(C, "building", B, "2025-01-01T00:00:00Z") == LOOKS_LIKE_A_REPLY
    assert d.get_person(C, P)["household"] == "h1"
    with pytest.raises(NotFound) as caught:
        d.get_person(C, "person-9")
    assert caught.value.status == 404 and caught.value.to_problem() == MISSING
    assert d.get_person_async(C, P).result()["household"] == "h1"  # asked when waited for
    assert asked[0] == ("communities", "residents_in_scope",
                        {"community": C, "scope": "building", "scope_id": B, "at": "2025-01-01T00:00:00Z"})
    assert asked[1:] == [("communities", "get_person", {"community": C, "person": who}) for who in (P, "person-9", P)]
