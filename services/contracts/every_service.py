"""Calls every service (or every stage) answers alike, declared once per service.

A person's copy of what the platform holds about them (PIPL art. 45) is gathered from each service
(`personal_data`, services/common/runtime.py: the same method in every one), and the home page's
"what needs me" from each stage (`needs_of`: the same parameters in each). Every service that keeps
texts answers the same questions of its erasable store (runtime.py's ServiceBase): `read_texts`
(another stage shows a text it holds), `commitments_of` (notifications erases what quoted a person)
and `erasure_done` (the directory's erasure status), and `export_texts` (the texts with their
salts, for the audit export and a case's bundle). Every event source serves its log to the
consumers catching up on it (`read_log`, `log_head`: the runtime's Platform asks them). One shape
per method, declared for each service, so each declaration is still held to its own service's
method (calls.py, tests/unit/test_contract_calls.py); a caller picks the one of the service it
asks: `READ_TEXTS[source](commitments=…)`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .calls import RpcCall, rpc_call

SERVICES_WITH_TEXTS = ("communities", "proposals", "deliberation", "decisions", "actions", "notifications")
SERVICES_WITH_PERSONAL_DATA = SERVICES_WITH_TEXTS  # a person's data is where their texts are
STAGES_WITH_NEEDS = ("proposals", "deliberation", "decisions", "actions")
# The `kind` of a `needs_of` item, stage by stage: what the stage asks of the person.
NEED_KINDS = ("support", "screen", "discuss", "attend", "sign", "vote", "configure", "evaluate", "task", "run")
EVENT_SOURCES = SERVICES_WITH_TEXTS  # every source of events keeps texts (registry.SOURCES; the test holds them)


@dataclass(frozen=True, kw_only=True)
class _PersonalData(RpcCall):
    community: str
    person: str


@dataclass(frozen=True, kw_only=True)
class _NeedsOf(RpcCall):
    community: str
    person: str
    roles: list[str]


@dataclass(frozen=True, kw_only=True)
class _ReadTexts(RpcCall):
    commitments: list[str]  # at most 1000 a call


@dataclass(frozen=True, kw_only=True)
class _ExportTexts(RpcCall):
    commitments: list[str]  # at most 1000 a call


@dataclass(frozen=True, kw_only=True)
class _ReadLog(RpcCall):
    start: int  # the first position wanted (a log starts at 1)
    limit: int = 100  # at most 1000 a call


@dataclass(frozen=True, kw_only=True)
class _LogHead(RpcCall):
    pass


@dataclass(frozen=True, kw_only=True)
class _CommitmentsOf(RpcCall):
    person: str
    commitments: list[str]  # at most 1000 a call


@dataclass(frozen=True, kw_only=True)
class _ErasureDone(RpcCall):
    request: str  # the directory's erasure request


def _declared_for(services: tuple[str, ...], method: str, shape: type[RpcCall]) -> dict[str, type[RpcCall]]:
    """`shape` declared as the call of `method` of each of `services`: service -> its call."""
    name = shape.__name__.lstrip("_")
    return {s: rpc_call(s, method)(type(name, (shape,), {"__module__": __name__, "__qualname__": name}))
            for s in services}


PERSONAL_DATA = _declared_for(SERVICES_WITH_PERSONAL_DATA, "personal_data", _PersonalData)
NEEDS_OF = _declared_for(STAGES_WITH_NEEDS, "needs_of", _NeedsOf)
READ_TEXTS = _declared_for(SERVICES_WITH_TEXTS, "read_texts", _ReadTexts)
COMMITMENTS_OF = _declared_for(SERVICES_WITH_TEXTS, "commitments_of", _CommitmentsOf)
ERASURE_DONE = _declared_for(SERVICES_WITH_TEXTS, "erasure_done", _ErasureDone)
EXPORT_TEXTS = _declared_for(SERVICES_WITH_TEXTS, "export_texts", _ExportTexts)
READ_LOG = _declared_for(EVENT_SOURCES, "read_log", _ReadLog)
LOG_HEAD = _declared_for(EVENT_SOURCES, "log_head", _LogHead)
