"""The one client of the directory (the `communities` service) that the stage services use.

Each stage asks the directory the same few questions (a community's rules, a person, who lives in
a scope, who holds a role). Before this module every stage asked them in its own way, each with its
own idea of where a reply is unwrapped; one forgotten unwrap hands a stage `{"ok": false, …}` as if
it were a person. `Directory` asks each question through one typed method, whose arguments are
those of the communities service's RPC method of the same name, and unwraps each reply exactly once,
so a refusal of the directory (an unknown person: NotFound, 404) is raised in the stage as that same
DomainError, with the directory's problem, and reaches the client as the directory gave it.

It is built over whichever RPC the caller has:

- a nameko worker's proxy (`Directory.of_proxy(self.communities)`, the proxy declared with
  `communities = Directory.rpc_proxy()`): its replies are our raw `{"ok", "result"|"problem"}`
  envelopes, unwrapped here with `errors.unwrap`;
- a consumer's or a timer's runtime (`Directory.of_runtime(rt)`), whose `rt.send` unwraps already,
  so nothing is unwrapped here a second time.

Every question is the communities contract's declared call (services/contracts/communities.py),
sent by its arguments' names; an argument left at its default is not sent (calls.py), so one
question is one message whoever asks it, and an argument cannot land in another's place.
"""
from __future__ import annotations

import functools
from typing import Callable

from services.contracts import communities
from services.contracts.calls import RpcCall

from .errors import NotFound, unwrap
from .rpc import RpcProxy


class Pending:
    """A directory answer on its way (what an `…_async` method returns): `result()` waits for it
    and gives it unwrapped, or raises the directory's refusal, then and not before, as a nameko
    `call_async` reply does."""

    def __init__(self, wait: Callable[[], object]):
        self._wait = wait

    def result(self):
        return self._wait()


class Directory:
    """Directory facts, as plain data for a stage's application. Build it with `of_proxy` (a
    worker) or `of_runtime` (a consumer or a timer); `send(request)` gives the unwrapped result of
    one declared call, `send_async(request)` a Pending of it."""

    def __init__(self, send: Callable[[RpcCall], object], send_async: Callable[[RpcCall], Pending]):
        self._send = send
        self._send_async = send_async

    # ---- building it -------------------------------------------------------------------------------
    @staticmethod
    def rpc_proxy() -> RpcProxy:
        """The nameko dependency a worker asks the directory through (`communities =
        Directory.rpc_proxy()` on the service class), read with `Directory.of_proxy`: the directory's
        service name and what its replies need live in this class, not in every stage."""
        return RpcProxy("communities")

    @classmethod
    def of_proxy(cls, proxy) -> Directory:
        """Over a nameko worker's proxy (or a standalone one): its replies are raw envelopes, so
        each is unwrapped here, once. The `…_async` methods use the proxy's `call_async`, so a
        worker can ask several questions at once and wait for them together."""

        def send(request: RpcCall):
            return unwrap(request.through(proxy))

        def send_async(request: RpcCall) -> Pending:
            reply = request.through_async(proxy)
            return Pending(lambda: unwrap(reply.result()))

        return cls(send, send_async)

    @classmethod
    def of_runtime(cls, rt) -> Directory:
        """Over a runtime's `send` (a consumer handler or a timer: no nameko worker there), which
        unwraps our replies itself: nothing is unwrapped here again (a result that happened to look
        like an envelope must not be taken for one). A runtime has no asynchronous call, and its
        calls share one connection: an `…_async` question is asked when its result is wanted."""

        def send_async(request: RpcCall) -> Pending:
            return Pending(functools.partial(rt.send, request))

        return cls(rt.send, send_async)

    # ---- the communities service's queries, one method each ---------------------------------------
    def get_community(self, community: str, at: str | None = None) -> dict:
        """The community (its name, its rules), now or as it stood at `at`."""
        return self._send(communities.GetCommunity(community=community, at=at))

    def directory(self, community: str, at: str | None = None) -> dict:
        """The community's compounds, buildings, units and people, now or as they stood at `at`."""
        return self._send(communities.Directory(community=community, at=at))

    def get_household(self, community: str, household: str, at: str | None = None) -> dict:
        return self._send(communities.GetHousehold(community=community, household=household, at=at))

    def get_person(self, community: str, person: str, at: str | None = None) -> dict:
        """A person of the community (household, adult, roles); NotFound for anyone else."""
        return self._send(communities.GetPerson(community=community, person=person, at=at))

    def get_person_async(self, community: str, person: str, at: str | None = None) -> Pending:
        return self._send_async(communities.GetPerson(community=community, person=person, at=at))

    def residents_in_scope(self, community: str, scope: str, scope_id: str | None = None,
                           at: str | None = None) -> list[dict]:
        return self._send(communities.ResidentsInScope(community=community, scope=scope, scope_id=scope_id, at=at))

    def households_in_scope(self, community: str, scope: str, scope_id: str | None = None,
                            at: str | None = None) -> list[str]:
        return self._send(communities.HouseholdsInScope(community=community, scope=scope, scope_id=scope_id, at=at))

    def households_in_scope_async(self, community: str, scope: str, scope_id: str | None = None,
                                  at: str | None = None) -> Pending:
        return self._send_async(communities.HouseholdsInScope(community=community, scope=scope, scope_id=scope_id,
                                                              at=at))

    def units_in_scope(self, community: str, scope: str, scope_id: str | None = None,
                       at: str | None = None) -> list[dict]:
        return self._send(communities.UnitsInScope(community=community, scope=scope, scope_id=scope_id, at=at))

    def role_holders(self, community: str, role: str, scope: str | None = None, at: str | None = None) -> list[str]:
        return self._send(communities.RoleHolders(community=community, role=role, scope=scope, at=at))

    # ---- questions answered from those -------------------------------------------------------------
    def rules(self, community: str, at: str | None = None) -> dict:
        """The community's rules now, or as they were in force at `at`."""
        return self.get_community(community, at)["rules"]

    def roles_of(self, community: str, person: str) -> list[str]:
        """A person's current roles; NotFound if they are not in the community."""
        return [r["role"] for r in self.get_person(community, person)["roles"]]

    def household_of(self, community: str, person: str) -> str | None:
        """Where the person lives now; None for someone the directory has as no resident (a person
        of another community, or none at all, lives nowhere here: not a refusal)."""
        return self.household_of_async(community, person).result()

    def household_of_async(self, community: str, person: str) -> Pending:
        asked = self.get_person_async(community, person)

        def household() -> str | None:
            try:
                return asked.result()["household"]
            except NotFound:
                return None

        return Pending(household)

    def lives_in(self, community: str, person: str, scope: str, scope_id: str | None) -> bool:
        """Whether the person lives in the scope now (the whole community: in any household). A
        person the directory does not know is its refusal (NotFound), not a no."""
        if scope == "community":
            return self.get_person(community, person)["household"] is not None
        return any(r["person"] == person for r in self.residents_in_scope(community, scope, scope_id))

    def has_place(self, community: str, scope: str, scope_id: str | None) -> bool:
        """Whether `scope_id` is one of the community's own compounds or buildings (`scope`
        "compound" or "building"), as the directory stands now."""
        return any(place["id"] == scope_id for place in self.directory(community).get(f"{scope}s", []))
