"""OpenAPI 3.1 document generated from the routing table (so it cannot drift from the code).

The request schemas published here are the very objects the gateway validates with (each route's
normalised body and query schemas), and path parameters carry the routing table's converters
(ids are UUIDs)."""
from __future__ import annotations

from .router import MAX_DEPTH, MAX_SAFE_INTEGER, PUBLIC, ROUTES, parameter
from .schema import FREE_TEXT

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

INPUT_RULES = (
    "Every answer that is not a success is RFC 9457 problem+json. Request bodies are I-JSON (RFC 7493): "
    f"UTF-8, no unpaired surrogates, no member named twice, whole numbers within ±{MAX_SAFE_INTEGER}, "
    f"no fractions (decimals are strings), no NUL, at most {MAX_DEPTH} levels deep; sent as application/json "
    "(or application/*+json), charset UTF-8 if named. Text is one line without control characters, except "
    f"the free-text fields ({', '.join(sorted(FREE_TEXT))}), which may also hold line breaks and tabs. "
    "A problem's title and detail are in the language Accept-Language asks for (zh-CN by default, or en; "
    "Content-Language says which); its type and code are the same in both. An answer that lists people "
    "gives each person's display name beside the id (`person_name` beside `person`, `author_name` beside "
    "`author`, …; `<key>_names` beside a list of ids); an erased person's name is null.")

_cache: tuple[int, dict] | None = None


def document() -> dict:
    """The document, built once per routing table (routes register at start)."""
    global _cache
    if _cache is None or _cache[0] != len(ROUTES):
        _cache = (len(ROUTES), _build())
    return _cache[1]


def _success(status: int, schema: dict | None) -> dict:
    if status == 204:
        return {"description": "success, nothing to show"}
    return {"description": "success", "content": {"application/json": {
        "schema": schema or {"type": ["object", "array"]}}}}


def _build() -> dict:
    paths: dict = {}
    for r in ROUTES:
        op: dict = {
            "summary": r.summary,
            "tags": [r.tag],
            "operationId": f"{r.method.lower()}_{r.handler.__module__.rsplit('routes_', 1)[-1]}_{r.handler.__name__}",
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": parameter(p)[1]} for p in r.params
            ] + [
                {"name": name, "in": "query", "required": False, "schema": sch} for name, sch in r.query.items()
            ],
            "responses": {
                str(r.status): _success(r.status, r.response) if not r.produces else {
                    "description": "the file", "content": {m: {"schema": {"type": "string", "format": "binary"}}
                                                           for m in r.produces}},
                **({"304": {"description": "not modified (If-None-Match names its ETag)"}} if r.produces else {}),
                **{str(status): _success(status, schema) for status, schema in r.also.items()},
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
                r.content_type: {"schema": r.body if r.body else {"type": "string"}}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "consult API",
            "version": "1.0.0",
            "description": "Democratic consultation for neighbourhood communities (1+4+N): "
                           "proposal → deliberation → decision → action, with an auditable record. " + INPUT_RULES,
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
