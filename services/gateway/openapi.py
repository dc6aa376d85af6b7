"""OpenAPI 3 document generated from the routing table (so it cannot drift from the code)."""
from __future__ import annotations

from .router import PUBLIC, ROUTES

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "code": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["title", "status"],
}


def _clean(schema: dict) -> dict:
    """JSON Schema 2020-12 (OpenAPI 3.1) accepts our subset as it is, bar the custom formats."""
    return schema


def document() -> dict:
    paths: dict = {}
    for r in ROUTES:
        op: dict = {
            "summary": r.summary,
            "tags": [r.tag],
            "operationId": f"{r.method.lower()}_{r.handler.__module__.rsplit('routes_', 1)[-1]}_{r.handler.__name__}",
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in r.params
            ] + [
                {"name": name, "in": "query", "required": False, "schema": _clean(sch)} for name, sch in r.query.items()
            ],
            "responses": {
                str(r.status): {"description": "success", "content": {"application/json": {
                    "schema": r.response or {"type": ["object", "array"]}}}},
                "default": {"description": "a problem", "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            },
        }
        if r.roles != PUBLIC:
            op["security"] = [{"bearer": []}]
            op["x-roles"] = "any member of the community" if r.roles == "member" else list(r.roles)
        else:
            op["security"] = []
        if r.body is not None or r.content_type != "application/json":
            op["requestBody"] = {"required": True, "content": {
                r.content_type: {"schema": _clean(r.body) if r.body else {"type": "string"}}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "consult API",
            "version": "1.0.0",
            "description": "Democratic consultation for neighbourhood communities (1+4+N): "
                           "proposal → deliberation → decision → action, with an auditable record.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
