"""Commands and queries one service asks of another, as keyword-only dataclasses.

A call names its service and method once, here, and its arguments by name: the gateway and the CLI
build one (`proposals.Draft(actor=…, community=…, title=…, …)`) and send it (`Call.send` in the
gateway's router, `Rpc.send` in the CLI), so an argument can neither be put in the wrong place nor
forgotten without Python saying so where the call is written. `tests/unit/test_contract_calls.py`
holds every declared call to its service's RPC method: the same parameter names, the same required
ones, the same defaults.

A service sends one to another the same way: `rt.send(request)` from a consumer or a timer (the
runtime, services/common/runtime.py), `request.through(proxy)` over a nameko worker's proxy of the
service (`services.common.directory.Directory` asks the directory so), never by position.

Each service's calls are declared in its contract module (`services/contracts/<service>.py`) with
`@rpc_call(SOURCE, "method")` on a class deriving from RpcCall with annotated fields:

    @rpc_call(SOURCE, "draft")
    class Draft(RpcCall):
        actor: str
        community: str
        scope_id: str | None = None

"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

CALLS: list[type["RpcCall"]] = []  # every declared call, in the order the contract modules declare them


@dataclass(frozen=True, kw_only=True)
class RpcCall:
    """One RPC request: a service's method and its arguments by name."""

    SERVICE: ClassVar[str] = ""
    METHOD: ClassVar[str] = ""

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments sent. An optional argument left at its default is not sent: the
        method's own default is the same (the test above holds them equal), and a request then
        means the same, and is keyed the same for idempotency, whether or not it names an unused
        option."""
        sent = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.default is not MISSING and value == f.default:
                continue
            sent[f.name] = value
        return sent

    def through(self, proxy) -> Any:
        """This call made over a nameko proxy of its service (a worker's RpcProxy, or a standalone
        proxy's `proxy.<service>`), by its arguments' names: the raw reply, as the proxy gives it."""
        return getattr(self._checked(proxy), self.METHOD)(**self.arguments())

    def through_async(self, proxy) -> Any:
        """The same, with the proxy's `call_async`: the reply on its way (its `result()` waits)."""
        return getattr(self._checked(proxy), self.METHOD).call_async(**self.arguments())

    def _checked(self, proxy):
        """A proxy of another service would answer a method of the same name (`read_texts` is every
        service's) as if it were this call's: refused. nameko's proxy names its service in
        `service_name`; a stand-in without one is taken as it is."""
        named = getattr(proxy, "__dict__", {}).get("service_name")
        if named is not None and named != self.SERVICE:
            raise ValueError(f"{type(self).__name__} is a call of {self.SERVICE}, not of {named}")
        return proxy


def rpc_call(service: str, method: str):
    """Declare a call: the decorated class becomes a frozen keyword-only dataclass (a subclass of
    RpcCall, which it must name as its base) for `service`.`method`."""

    def declare(cls: type) -> type:
        if not issubclass(cls, RpcCall):
            raise TypeError(f"{cls.__name__} must derive from services.contracts.calls.RpcCall")
        cls.SERVICE, cls.METHOD = service, method
        declared = dataclass(frozen=True, kw_only=True)(cls)
        CALLS.append(declared)
        return declared

    return declare
