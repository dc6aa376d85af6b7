"""Every declared call (services/contracts/calls.py) matches its service's RPC method: the same
parameter names, the same required ones, the same defaults. And services call each other only by
declared calls sent by name: no route of the gateway, no consumer, timer or worker spells a
service's method and its arguments by position any more."""
from __future__ import annotations

import ast
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


# ---- every call between services is a declared call, sent by name ------------------------------------------
# Read from the source (every module's AST) so that a call by position cannot come back one convenient line at
# a time. What sends a declared call by its service's and method's names (calls.py, the runtime's `rpc` and
# `send`, the CLI's `Rpc.call`, the gateway's `Call.call` and `_rpc`) takes them as variables, never as
# literals, so it is not caught; calls.py, which makes the call over a proxy, is not read at all.

RPC_FUNCTIONS = {"rpc", "rpc_or_none", "call", "call_async", "_rpc", "_call"}
SENDS = {"send", "send_or_none"}
NOT_SCANNED = {"services/contracts/calls.py"}


def _name(node: ast.AST) -> str | None:
    """The last name of `f` or `a.b.f`."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _contract_names(tree: ast.AST) -> dict[str, object]:
    """What each name a module imports from services.contracts stands for (a contract module, a declared call,
    a table of declared calls by service)."""
    names: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("services.contracts"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                found = getattr(module, alias.name, None)
                if found is None:
                    found = importlib.import_module(f"{node.module}.{alias.name}")
                names[alias.asname or alias.name] = found
    return names


def _declared(func: ast.AST, names: dict[str, object]) -> bool:
    """Whether `func` names a declared call: `audit.Entries`, `Entries`, `every_service.READ_TEXTS[source]`."""
    def resolve(node):
        if isinstance(node, ast.Name):
            return names.get(node.id)
        if isinstance(node, ast.Attribute):
            return getattr(resolve(node.value), node.attr, None)
        if isinstance(node, ast.Subscript):
            table = resolve(node.value)
            if isinstance(table, dict) and table and all(inspect.isclass(v) and issubclass(v, RpcCall)
                                                         for v in table.values()):
                return next(iter(table.values()))
        return None

    found = resolve(func)
    return inspect.isclass(found) and issubclass(found, RpcCall)


def _proxies(tree: ast.AST) -> set[str]:
    """The attributes a nameko service class declares as RPC proxies (`audit = RpcProxy("audit")`,
    `communities = Directory.rpc_proxy()`)."""
    return {t.id for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for s in cls.body
            if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call)
            and _name(s.value.func) in ("RpcProxy", "rpc_proxy") for t in s.targets if isinstance(t, ast.Name)}


def calls_by_position(path: str, source: str) -> dict[str, list[str]]:
    """Where (`path:qualified.name`) a module calls another service other than by a declared call sent by
    name, and how."""
    tree = ast.parse(source, filename=path)
    names, proxies = _contract_names(tree), _proxies(tree)
    found: dict[str, list[str]] = {}

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, f"{where}.{child.name}" if where else child.name)
                continue
            if isinstance(child, ast.Call):
                why = _why(child)
                if why:
                    found.setdefault(f"{path}:{where or '<module>'}", []).append(f"line {child.lineno}: {why}")
            visit(child, where)

    def _why(call: ast.Call) -> str | None:
        func, args = call.func, call.args
        if _name(func) in RPC_FUNCTIONS and any(_literal(a) for a in args[:2]):
            return f"{_name(func)}() with a service or method named by a string"
        for i, a in enumerate(args):
            if _name(a) in RPC_FUNCTIONS and any(_literal(b) for b in args[i + 1:]):
                return f"{_name(a)} passed on with a service or method named by a string"
        if _declared(func, names) and args:
            return "a declared call given arguments by position"
        if _name(func) in SENDS and args and (len(args) > 1 or _literal(args[0])) and (
                _literal(args[0]) or isinstance(args[0], ast.Call) and _declared(args[0].func, names)):
            return f"{_name(func)}() given more than the declared call"
        target = func.value if isinstance(func, ast.Attribute) and func.attr == "call_async" else func
        if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
                and isinstance(target.value.value, ast.Name) and target.value.value.id == "self"
                and target.value.attr in proxies):
            return f"the {target.value.attr} proxy called directly (send a declared call: `request.through(proxy)`)"
        return None

    visit(tree, "")
    return found


def tree_calls_by_position() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in NOT_SCANNED:
            found.update(calls_by_position(rel, path.read_text(encoding="utf-8")))
    return found


def test_services_call_each_other_only_by_declared_calls_sent_by_name():
    assert tree_calls_by_position() == {}, "send a declared call (services/contracts) by name instead"


SYNTHETIC = '''
import functools
from services.common.rpc import RpcProxy
from services.contracts import audit, every_service
from services.contracts.decisions import Retally


def follow_up(runtime, plan):
    return runtime.rpc("actions", "get_plan", plan)


class Stage:
    audit = RpcProxy("audit")

    def texts(self, source, commitments):
        return self.platform.rpc_or_none(source, "read_texts", commitments)

    def later(self):
        return functools.partial(self.platform.rpc, "proposals", "read_texts")

    def entries(self, community):
        return self.audit.entries(community, 0, 10)

    def entries_async(self, community):
        return self.audit.entries.call_async(community=community)

    def recount(self, rpc, ballot):
        return rpc.send(Retally(ballot))

    def notice(self, rpc, community):
        return rpc.send(audit.Notice(community=community), "en")

    def read(self, rt, source):
        return rt.send(every_service.READ_TEXTS[source](["c1"]))

    def fine(self, rt, source, community):
        asked = audit.Entries(community=community, limit=10)
        return rt.send(every_service.READ_TEXTS[source](commitments=["c1"])), asked.through(self.audit)
'''


def test_the_scan_sees_each_way_of_calling_by_position():
    found = calls_by_position("services/x/service.py", SYNTHETIC)
    assert sorted(found) == ["services/x/service.py:Stage.entries", "services/x/service.py:Stage.entries_async",
                             "services/x/service.py:Stage.later", "services/x/service.py:Stage.notice",
                             "services/x/service.py:Stage.read", "services/x/service.py:Stage.recount",
                             "services/x/service.py:Stage.texts", "services/x/service.py:follow_up"]
    assert all(len(how) == 1 for how in found.values()), found


# ---- the runtime and a proxy send a declared call by name -------------------------------------------------------

def _runtime(call):
    import sqlalchemy as sa

    from services.common.runtime import Runtime

    return Runtime("actions", settings=None, engine=sa.create_engine("sqlite://"), call=call)


def test_the_runtime_sends_a_declared_call_by_name_unwrapped():
    from services.common.errors import NotFound
    from services.contracts import actions, every_service

    asked = []

    def call(service, method, *args, **kwargs):
        asked.append((service, method, args, kwargs))
        if method == "get_plan":
            return {"ok": False, "problem": {"status": 404, "title": "Not found", "detail": "no such plan"}}
        return {"ok": True, "result": {"c1": "疏通排水沟"}}

    rt = _runtime(call)
    assert rt.send(every_service.READ_TEXTS["proposals"](commitments=["c1"])) == {"c1": "疏通排水沟"}
    with pytest.raises(NotFound):
        rt.send(actions.GetPlan(community="c", plan="p"))
    assert rt.send_or_none(actions.GetPlan(community="c", plan="p")) is None  # a refusal: nothing, not a raise
    assert asked == [("proposals", "read_texts", (), {"commitments": ["c1"]}),
                     ("actions", "get_plan", (), {"community": "c", "plan": "p"}),
                     ("actions", "get_plan", (), {"community": "c", "plan": "p"})]


def test_a_call_through_a_proxy_goes_by_name_and_only_to_its_own_service():
    from nameko.rpc import ServiceProxy

    from services.contracts import audit, every_service

    class Proxy(ServiceProxy):
        """nameko's proxy of a service, answering locally what it was asked."""

        def __init__(self, service):
            super().__init__(None, service, None)
            self.asked = []

        def __getattr__(self, method):
            proxy = self

            class Method:
                def __call__(self, *args, **kwargs):
                    proxy.asked.append((method, args, kwargs))
                    return {"ok": True, "result": []}

                def call_async(self, *args, **kwargs):
                    proxy.asked.append(("async", method, args, kwargs))

            return Method()

    audit_proxy = Proxy("audit")
    assert audit.Entries(community="c", limit=1000, case="k").through(audit_proxy) == {"ok": True, "result": []}
    audit.Checkpoint(community="c").through_async(audit_proxy)
    assert audit_proxy.asked == [("entries", (), {"community": "c", "limit": 1000, "case": "k"}),
                                 ("async", "checkpoint", (), {"community": "c"})]
    # read_texts is every service's: through the audit's proxy, the proposals' call is refused, not answered.
    with pytest.raises(ValueError, match="proposals"):
        every_service.READ_TEXTS["proposals"](commitments=["c1"]).through(audit_proxy)
    assert len(audit_proxy.asked) == 2


def test_the_texts_calls_are_declared_for_every_service_that_keeps_texts():
    from services.common import registry
    from services.common.erasure import ERASING
    from services.contracts import every_service

    for table in (every_service.READ_TEXTS, every_service.COMMITMENTS_OF, every_service.ERASURE_DONE,
                  every_service.EXPORT_TEXTS):
        assert set(table) >= set(registry.SOURCES) | set(ERASING)


def test_the_log_calls_are_declared_for_every_source_a_consumer_reads():
    """A consumer catching up reads its sources' logs by READ_LOG and LOG_HEAD (runtime.py Platform)."""
    from services import contracts
    from services.common import registry
    from services.contracts import every_service

    sources = {m.SOURCE for m in contracts.SOURCES}
    assert set(every_service.EVENT_SOURCES) == sources == set(registry.SOURCES)
    assert {s for subscribed in registry.SUBSCRIPTIONS.values() for s in subscribed} <= sources
    assert set(every_service.READ_LOG) == set(every_service.LOG_HEAD) == sources
