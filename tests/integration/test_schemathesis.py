"""schemathesis against the published /api/openapi.json on a running platform: for every
operation, a bounded number of generated requests, valid ones with a community worker's token and
with a resident's, invalid ones with the worker's, and none may answer 5xx, answer with an undocumented media
type, break its response schema, or accept data its request schema refuses.

Path parameters take the ids of a small real community half of the time (a random UUID otherwise),
so requests get past "not found" into the stage services. CONSULT_SCHEMATHESIS_EXAMPLES sets the
examples per operation, token and mode (default 3: the whole run stays within about two minutes on a quiet machine).
"""
from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance, negative_data_rejection, response_schema_conformance, status_code_conformance,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLES = int(os.environ.get("CONSULT_SCHEMATHESIS_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
# Webhook deliveries go where a request says: generated URLs must never leave this machine.
LOCAL_HOOK = "http://127.0.0.1:9/schemathesis"
SIGN_OUT = ("DELETE", "/api/v1/me/token")
RUNS = (("worker", GenerationMode.POSITIVE), ("worker", GenerationMode.NEGATIVE), ("resident", GenerationMode.POSITIVE))


def _world(platform) -> tuple[dict, dict]:
    """A community with a worker and a resident, and one object of each main kind: ids by path
    parameter name, and the two tokens."""
    c = platform.new_community("schemathesis")
    base = f"/api/v1/communities/{c['id']}"
    worker = c["token"]

    def post(path, body, token=worker):
        return platform.api("POST", base + path, token, body, expect=201).json()

    compound = post("/compounds", {"name": "3号院坝"})["id"]
    building = post("/buildings", {"compound": compound, "name": "2栋"})["id"]
    household = post("/households", {"building": building, "unit": "101", "area": "75.5",
                                     "developer_unsold": True, "effective": "2020-01-01"})["id"]
    person = post("/people", {"name": "居民 王", "household": household, "effective": "2020-01-01"})["id"]
    resident = platform.rpc("communities", "issue_token", c["id"], person, 30, "schemathesis")["token"]
    proposal = post("/proposals", {"title": "疏通排水沟", "body": "雨季积水", "category": "drainage",
                                   "scope": "community"}, resident)["id"]
    consultation = post("/consultations", {"title": "菜地", "description": "公共草坪", "scope": "community",
                                           "category": "green_space"})["id"]
    ballot = post("/ballots", {"title": "是否疏通", "scope": "community"})["id"]
    plan = post("/action-plans", {"title": "疏通", "basis": "紧急维修", "scope": "community"})["plan"]
    ids = {"community": c["id"], "household": household, "person": person, "proposal": proposal,
           "consultation": consultation, "ballot": ballot, "plan": plan, "case": proposal}
    return ids, {"worker": worker, "resident": resident}


def _operations(platform):
    schema = schemathesis.openapi.from_url(platform.url + "/api/openapi.json")
    for result in schema.get_all_operations():
        yield result.ok()


def _strategy(operation, mode: GenerationMode, ids: dict, token: str):
    """Cases of one operation with the caller's token. A valid case names the community (and half
    the time the world's other ids); an invalid one is left as generated, but for its token when
    its invalid part is not the missing token (so it reaches validation)."""
    fixed = {"community": ids["community"]} if "{community}" in operation.path else None
    own = [name for name in ids if name != "community" and "{" + name + "}" in operation.path]

    def settle(pair):
        case, use_real = pair
        if mode is GenerationMode.POSITIVE:
            for name in own:
                if use_real:
                    case.path_parameters[name] = ids[name]
        if mode is GenerationMode.POSITIVE or "Authorization" in (case.headers or {}):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        if isinstance(case.body, dict) and "url" in case.body:
            case.body["url"] = LOCAL_HOOK
        return case

    path_parameters = fixed if mode is GenerationMode.POSITIVE else None
    return st.tuples(operation.as_strategy(mode, path_parameters=path_parameters), st.booleans()).map(settle)


def _run(operation, strategy, failures: list) -> int:
    calls = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        calls[0] += 1
        response = case.call(timeout=60)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:  # collected: one report of every failing operation
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}\n"
                            f"  {case.as_curl_command(headers={'Authorization': 'Bearer ***'})[:1500]}")

    try:
        check()
    except Unsatisfiable:
        pass  # nothing in this operation can be made invalid (no parameters, no body)
    return calls[0]


def test_every_operation_holds_to_its_schema_and_never_fails_on_the_server(platform):
    ids, tokens = _world(platform)
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    # Signing out ends the caller's token: that operation goes last, so the rest runs signed in.
    operations = sorted(_operations(platform), key=lambda op: (op.method.upper(), op.path) == SIGN_OUT)
    # Invalid requests are refused the same way whoever sends them: the worker sends those.
    for operation in operations:
        for who, mode in RUNS:
            calls += _run(operation, _strategy(operation, mode, ids, tokens[who]), failures)
    print(f"schemathesis: {len(operations)} operations, {calls} requests in {time.monotonic() - started:.0f} s")
    assert len(operations) >= 100 and calls >= len(operations) * len(RUNS) * EXAMPLES // 2, calls
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures)
