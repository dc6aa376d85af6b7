"""No community reaches another's objects: a matrix generated from the OpenAPI document.

Two communities (甲 and 乙), each with one object of every kind the API names by id
(tenancy_world.py). For every operation of a community's API that takes an id in its path or its
body, the steward of 甲 -- who holds every community role, so the gateway lets the call through
and only the service that owns the object can refuse it -- asks 甲's API about 乙's object:

- in the path: each id parameter in turn is 乙's object, the others 甲's own;
- in the body: every path id is 甲's own, and each id field of the body in turn names 乙's object
  (the rest of the body is valid: generated from the operation's schema).

Every such call must be refused as "not found" (404) or "not valid here" (422): never a success,
never a 5xx, never a refusal for another reason (403, 409) that would mean the foreign object
was looked at before its community was. The cases are generated from the same routing table the
gateway serves its OpenAPI document from; the first test checks the served document is that one,
so an operation added to the API is in the matrix without anyone adding it here.
"""
from __future__ import annotations

import json

import pytest
import requests

from services.gateway import openapi, routes_load
from tests.conftest import BACKENDS
from tests.harness import running
from tests.integration.tenancy_world import WEBHOOK_ALLOWLIST, TenancyWorld

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

routes_load.load_all()
DOC = openapi.document()
COMMUNITY_PATH = "/api/v1/communities/{community}"

# What kind of object each path parameter and each body id field names.
PATH_KINDS = {
    "proposal": "proposal", "consultation": "consultation", "comment": "comment", "option": "option",
    "amendment": "amendment", "meeting": "meeting", "minutes": "minutes", "ballot": "ballot",
    "objection": "objection", "plan": "plan", "task": "task", "sha256": "evidence", "case": "case",
    "household": "household", "person": "person", "message": "message", "webhook": "webhook",
    "change": "rule_change", "token": "token", "invitation": "invitation", "job": "import_job",
}
FIELD_KINDS = {
    "scope_id": "building", "case": "case", "person": "person", "responsible_party.person": "person",
    "ballot": "ballot", "reply_to": "comment", "options": "option", "secretary": "person", "meeting": "meeting",
    "compound": "compound", "building": "building", "owners": "person", "representative": "person",
    "household": "household", "households": "household", "scope": "building", "deliveries": "delivery",
    "into": "proposal",
    "voter": "person", "evidence": "evidence", "holder": "person", "principal": "person",
}
# Plain strings in the schema that name objects all the same: people, evidence files (SHA-256).
NAMED_ID_FIELDS = {"voter", "principal", "evidence"}

# Values of the other fields, where the first value the schema allows would not do.
SAMPLES = {
    "scope": "building", "role": "building_leader", "category": "drainage", "area": "50", "unit": "909",
    "preset": "residents_meeting", "voting_unit": "resident", "choice": "agree", "stance": "for",
    "rating": "satisfied", "outcome": "agreed", "mode": "on_site", "kind": "contractor", "percent": 10,
    "url": "https://hooks.example.org/consult", "content_base64": "ZXZpZGVuY2U=", "agenda": ["议程"],
    "starts_at": "2031-01-10T10:00:00+08:00", "due_at": "2031-01-10T10:00:00+08:00",
    "opens_at": "2031-01-10T10:00:00+08:00", "closes_at": "2031-01-17T10:00:00+08:00",
}
# Fields that make sense only together: either is sent when the other is required or under test (a
# scope with its scope_id, a representative with the owners it must be one of).
PAIRS = (("scope", "scope_id"), ("owners", "representative"))
# Optional fields an operation needs all the same (a new emergency needs a title).
EXTRA = {("POST", "/emergencies"): {"title": "紧急抢修"}}

# Operations of other services that do not yet answer 404 or 422 for another community's object:
# each is a finding for the engineer who owns that service, marked here so the lead can lift the
# mark once the fix is merged (strict: a mark on an operation that now passes fails the run).
OWNED_ELSEWHERE: dict[str, str] = {}


def _is_id(name: str, schema: dict) -> bool:
    if schema.get("format") == "uuid" or name in NAMED_ID_FIELDS:
        return True
    return schema.get("type") == "array" and (schema.get("items") or {}).get("format") == "uuid"


def id_fields(schema: dict | None, prefix: str = "") -> list[str]:
    """Dotted names of every id field of a request schema, nested objects included."""
    out = []
    for name, sub in ((schema or {}).get("properties") or {}).items():
        if _is_id(name, sub):
            out.append(prefix + name)
        elif sub.get("type") == "object" or "object" in (sub.get("type") or []):
            out += id_fields(sub, f"{prefix}{name}.")
    return out


def _body_schema(op: dict) -> dict | None:
    return ((op.get("requestBody") or {}).get("content") or {}).get("application/json", {}).get("schema")


def cases() -> list:
    out = []
    for path, methods in DOC["paths"].items():
        if not path.startswith(COMMUNITY_PATH):
            continue
        for method, op in methods.items():
            params = [p["name"] for p in op["parameters"] if p["in"] == "path" and p["name"] != "community"]
            targets = [("path", p) for p in params] + [("body", f) for f in id_fields(_body_schema(op))]
            for where, name in targets:
                case_id = f"{method.upper()} {path[len(COMMUNITY_PATH):]} {where}.{name}"
                reason = OWNED_ELSEWHERE.get(case_id)
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                out.append(pytest.param(method.upper(), path, where, name, id=case_id, marks=marks))
    return out


CASES = cases()


class Body:
    """A request body valid for its schema: id fields name 甲's objects, except the one under test,
    which names 乙's; optional fields are left out unless under test."""

    def __init__(self, home: TenancyWorld, foreign: TenancyWorld, field: str | None):
        self.home, self.foreign, self.field = home, foreign, field

    def of(self, schema: dict, name: str = "", dotted: str = ""):
        if name and _is_id(name, schema):
            kind = FIELD_KINDS[dotted]  # an id field nobody mapped fails here: map it above
            world = self.foreign if dotted == self.field else self.home
            return [world.ids[kind]] if schema.get("type") == "array" else world.ids[kind]
        if name in SAMPLES and SAMPLES[name] in schema.get("enum", [SAMPLES[name]]):
            return SAMPLES[name]
        types = schema.get("type")
        kind = next((t for t in types if t != "null"), None) if isinstance(types, list) else types
        if "enum" in schema:
            return schema["enum"][0]
        if kind == "object" or kind is None and "properties" in schema:
            required = set(schema.get("required", []))
            out = {}
            for prop, sub in (schema.get("properties") or {}).items():
                path = f"{dotted}.{prop}" if dotted else prop
                others = [b if a == prop else a for a, b in PAIRS if prop in (a, b)]
                wanted = prop in required or path == self.field or (self.field or "").startswith(path + ".") or any(
                    other in required or f"{dotted}.{other}".lstrip(".") == self.field for other in others)
                if wanted:
                    out[prop] = self.of(sub, prop, path)
            return out
        if kind == "array":
            return [self.of(schema.get("items") or {}, "", dotted) for _ in range(max(1, schema.get("minItems", 1)))]
        if kind == "integer":
            return max(schema.get("minimum", 1), 1)
        if kind == "boolean":
            return True
        if schema.get("format") == "decimal":
            return "50"
        if schema.get("pattern") == "^[0-9a-f]{64}$":
            return "ab" * 32
        return "跨社区测试"


@pytest.fixture(scope="module", params=BACKENDS)
def platform(request):
    """A platform of this module's own, whose notifications service may register the webhook
    endpoint of the worlds (at an address the operator allow-listed; nothing is sent there)."""
    with running(request.param, CONSULT_WEBHOOK_ALLOWLIST=WEBHOOK_ALLOWLIST) as p:
        yield p


@pytest.fixture(scope="module")
def worlds(platform):
    return TenancyWorld(platform, "甲社区").build(), TenancyWorld(platform, "乙社区").build()


def test_the_matrix_is_the_served_openapi_document(platform):
    served = requests.get(platform.url + "/api/openapi.json", timeout=30).json()
    assert served == json.loads(json.dumps(DOC))
    assert len(CASES) > 80


@pytest.mark.parametrize("method, path, where, name", CASES)
def test_another_communitys_object_is_not_found_here(platform, worlds, method, path, where, name):
    home, foreign = worlds
    params = [p["name"] for p in DOC["paths"][path][method.lower()]["parameters"] if p["in"] == "path"]
    url = path.replace("{community}", home.id)
    for p in params:
        if p != "community":
            owner = foreign if (where, name) == ("path", p) else home
            url = url.replace("{" + p + "}", owner.ids[PATH_KINDS[p]])
    schema = _body_schema(DOC["paths"][path][method.lower()])
    body = Body(home, foreign, name if where == "body" else None).of(schema) if schema else None
    if body is not None:
        body.update(EXTRA.get((method, path[len(COMMUNITY_PATH):]), {}))
    response = platform.api(method, url, home.steward_token, body)
    problem = response.json() if response.content else {}
    assert response.status_code in (404, 422), f"{method} {url} with {body}: {response.status_code} {problem}"
    assert response.headers["Content-Type"].startswith("application/problem+json")
    # Refused for the object named, not for something else in the request.
    kind = PATH_KINDS[name] if where == "path" else FIELD_KINDS[name]
    named = foreign.ids[kind]
    assert named in problem["detail"] or name.rsplit(".", 1)[-1] in problem["detail"], problem
