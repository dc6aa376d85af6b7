"""The OpenAPI document is generated from the routing table; it must be well-formed."""
from services.gateway import openapi, routes_load


def test_operation_ids_are_unique_and_every_operation_is_described():
    routes_load.load_all()
    doc = openapi.document()
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert len(ops) >= 30
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for path, method, op in ops:
        assert op["summary"] and op["tags"], (method, path)
        assert "default" in op["responses"], "every operation documents its problem responses"
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == set(part[1:-1] for part in path.split("/") if part.startswith("{")), path


def test_the_document_is_valid_openapi_3_1():
    import json

    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    routes_load.load_all()
    doc = json.loads(json.dumps(openapi.document()))  # as served
    errors = [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_the_published_request_schemas_are_the_ones_checked():
    import json

    from services.gateway import router
    from services.gateway.schema import Checker

    routes_load.load_all()
    doc = json.loads(json.dumps(openapi.document()))
    for r in router.ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        if r.body is not None:
            assert op["requestBody"]["content"][r.content_type]["schema"] == r.body, (r.method, r.path)
            assert r.body_checker.schema is r.body
        published = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
        assert published == r.query and r.query_checker.schema["properties"] is r.query, (r.method, r.path)
        for p in op["parameters"]:
            if p["in"] == "path" and p["name"] in router.ID_PARAMETERS:
                assert p["schema"] == {"type": "string", "format": "uuid"}, (r.path, p["name"])
    # A published schema compiled afresh refuses and accepts what the route's checker does.
    proposals = doc["paths"]["/api/v1/communities/{community}/proposals"]["post"]
    fresh = Checker(proposals["requestBody"]["content"]["application/json"]["schema"])
    for body in ({"title": "t", "body": "b\nc", "category": "drainage", "scope": "community"},
                 {"title": "t\n", "body": "b", "category": "drainage", "scope": "community"},
                 {"title": "t", "body": "b", "category": "drainage", "scope": "galaxy"}):
        r = router.find("POST", "/api/v1/communities/00000000-0000-4000-8000-000000000000/proposals")[0]
        outcomes = []
        for checker in (fresh, r.body_checker):
            try:
                checker.check(body)
                outcomes.append("ok")
            except Exception as exc:  # noqa: BLE001
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], body


def _names_its_shape(schema: dict) -> bool:
    """A response schema that says more than "some object": its fields, its items, or each of
    its alternatives does."""
    if "$ref" in schema or "enum" in schema or "const" in schema:
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return all(_names_its_shape(s) for s in schema[key])
    types = schema.get("type")
    types = {types} if isinstance(types, str) else set(types or ())
    if not types:
        return False
    if "object" in types and not (schema.get("properties") or schema.get("additionalProperties")):
        return False
    if "array" in types and not isinstance(schema.get("items"), dict):
        return False
    return True


def test_every_json_success_publishes_the_shape_of_its_answer():
    """Every route answering JSON with a success publishes the fields of what it answers (the
    integration harness checks each real answer against it: tests/harness.py response_problems)."""
    from services.gateway import router

    routes_load.load_all()
    vague = [f"{r.method} {r.path}" for r in router.ROUTES
             if r.status != 204 and not r.produces and not (r.response and _names_its_shape(r.response))]
    assert vague == []
