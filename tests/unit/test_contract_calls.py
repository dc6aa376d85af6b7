"""Every declared call (services/contracts/calls.py) matches its service's RPC method: the same
parameter names, the same required ones, the same defaults. And the gateway sends only declared
calls: no route spells a service's method and its arguments by position any more."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

import services.contracts  # noqa: F401 - declares every call
from services.contracts.calls import CALLS, RpcCall, rpc_call

ROOT = Path(__file__).resolve().parents[2]


def service_method(service: str, method: str):
    """The undecorated method `method` of the nameko service named `service`."""
    module = importlib.import_module(f"services.{service}.service")
    [cls] = {c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__
             and getattr(c, "name", None) == service}
    return inspect.unwrap(getattr(cls, method))


def test_calls_are_declared_for_the_services_the_gateway_calls():
    assert {c.SERVICE for c in CALLS} >= {"actions", "audit", "communities", "decisions", "deliberation",
                                          "notifications", "proposals"}
    assert len({(c.SERVICE, c.METHOD) for c in CALLS}) == len(CALLS), "one declaration per method"


@pytest.mark.parametrize("declared", CALLS, ids=lambda c: f"{c.SERVICE}.{c.METHOD}")
def test_a_declared_call_matches_its_service_method(declared):
    params = list(inspect.signature(service_method(declared.SERVICE, declared.METHOD)).parameters.values())[1:]
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params), "named parameters only"
    fields = dataclasses.fields(declared)
    assert [f.name for f in fields] == [p.name for p in params]
    for f, p in zip(fields, params):
        if p.default is inspect.Parameter.empty:
            assert f.default is dataclasses.MISSING, f"{f.name} is required by the method"
        else:
            assert f.default == p.default, f"{f.name}: the method's default is {p.default!r}"


def test_a_call_is_keyword_only_frozen_and_sends_what_is_not_left_at_its_default():
    @rpc_call("example", "do")
    class Do(RpcCall):
        actor: str
        note: str | None = None
        limit: int = 50

    CALLS.remove(Do)
    with pytest.raises(TypeError):
        Do("someone")  # noqa - positional arguments are refused
    request = Do(actor="someone", limit=10)
    assert request.arguments() == {"actor": "someone", "limit": 10}
    assert Do(actor="someone", note="n").arguments() == {"actor": "someone", "note": "n"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.actor = "someone else"  # type: ignore[misc]


def test_the_idempotency_key_of_a_call_by_name_is_that_of_the_same_call_by_position():
    """A client's retry with the same Idempotency-Key, one before and one after the gateway began
    sending calls by name, is the same request (services/common/runtime.py _as_positional)."""
    from services.common import idempotency
    from services.common.runtime import _as_positional

    def draft(self, actor, community, title, body, category, scope, scope_id=None):
        return None

    signature = inspect.signature(draft)
    data = {idempotency.IDEMPOTENCY_KEY: "k-1"}
    # The gateway used to send every argument, defaults included; by name it leaves defaults out.
    by_position = idempotency.request_key(data, "proposals", "draft", *_as_positional(
        signature, None, ("a", "c", "t", "b", "x", "community", None), {}))
    assert by_position == idempotency.request_key(data, "proposals", "draft", *_as_positional(
        signature, None, ("a", "c", "t", "b", "x", "community"), {}))
    by_name = idempotency.request_key(data, "proposals", "draft", *_as_positional(
        signature, None, (), dict(actor="a", community="c", title="t", body="b", category="x", scope="community")))
    assert by_position == by_name
    other = idempotency.request_key(data, "proposals", "draft", *_as_positional(
        signature, None, (), dict(actor="a", community="c", title="T", body="b", category="x", scope="community")))
    assert other != by_name


CONVERTED = ["routes_actions.py", "routes_audit.py", "routes_decisions.py", "routes_deliberation.py",
             "routes_directory.py", "routes_notifications.py", "routes_proposals.py"]


@pytest.mark.parametrize("name", CONVERTED)
def test_routes_send_declared_calls_only(name):
    source = (ROOT / "services" / "gateway" / name).read_text(encoding="utf-8")
    assert not re.findall(r"\bc\.call\(", source), f"{name} calls a service by position"
