"""The gateway's one routing table: every API route with its schema, roles and OpenAPI text.

Each stage adds a module of routes (routes_*.py). Dispatch authenticates the bearer token,
enforces tenancy (a path naming a community is only for that community's members and platform
admins: others get 404), checks roles, validates the body, calls the stage service over RPC and
maps refusals to RFC 9457 problem+json, all in this one place.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from services.common.errors import DomainError, Forbidden, InvalidInput, NotFound, Unauthorized

from . import schema as S

MAX_BODY = 1_000_000  # bytes; the CSV import allows more
PUBLIC = "public"
MEMBER = "member"  # any signed-in member of the community


class Problem(Exception):
    def __init__(self, problem: dict):
        super().__init__(problem.get("detail"))
        self.problem = problem


@dataclass
class Route:
    method: str
    path: str
    handler: Callable[["Call"], Any]
    summary: str
    tag: str
    roles: tuple[str, ...] | str = MEMBER
    body: dict | None = None
    query: dict = field(default_factory=dict)  # name -> schema
    status: int = 200
    content_type: str = "application/json"
    max_body: int = MAX_BODY
    response: dict | None = None

    def __post_init__(self):
        self.params = re.findall(r"{(\w+)}", self.path)
        pattern = re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", self.path)
        self.regex = re.compile(f"^{pattern}$")


@dataclass
class Call:
    route: Route
    params: dict
    query: dict
    body: Any
    principal: dict | None
    rpc: Callable[..., Any]
    headers: dict

    @property
    def actor(self) -> str:
        return self.principal["person"] if self.principal else "anonymous"

    @property
    def community(self) -> str | None:
        return self.params.get("community")

    def has_role(self, *names: str) -> bool:
        return has_role(self.principal, names, self.community)

    def call(self, service: str, method: str, *args, **kwargs):
        """Call a stage service; a refusal becomes a problem response."""
        reply = self.rpc(service, method, *args, **kwargs)
        if isinstance(reply, dict) and reply.get("ok") is False:
            raise Problem(reply["problem"])
        if isinstance(reply, dict) and reply.get("ok") is True:
            return reply["result"]
        return reply


def has_role(principal: dict | None, names, community: str | None = None) -> bool:
    if not principal:
        return False
    if principal.get("platform_admin"):
        return True  # the platform admin may act in every community
    held = {r["role"] for r in principal.get("roles", [])}
    return bool(held & set(names))


ROUTES: list[Route] = []


def route(method: str, path: str, **kwargs):
    def register(fn):
        ROUTES.append(Route(method, path, fn, **kwargs))
        return fn

    return register


def find(method: str, path: str) -> tuple[Route | None, dict, bool]:
    path_matched = False
    for r in ROUTES:
        m = r.regex.match(path)
        if m:
            path_matched = True
            if r.method == method:
                return r, m.groupdict(), True
    return None, {}, path_matched


def problem(status: int, title: str, detail: str, **extra) -> dict:
    p = {"type": "about:blank" if status in (404, 405) and not extra.get("code") else
         f"https://consult.example/problems/{extra.get('code', title.replace(' ', ''))}",
         "title": title, "status": status, "detail": detail}
    p.update(extra)
    return p


def parse_body(route: Route, raw: bytes, content_type: str):
    if route.body is None and route.content_type == "application/json":
        if raw and raw.strip():
            raise InvalidInput("this request takes no body")
        return None
    if len(raw) > route.max_body:
        raise Problem(problem(413, "Payload too large", f"the body is {len(raw)} bytes; at most {route.max_body}"))
    if route.content_type == "text/csv":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the file must be UTF-8 text") from None
    if not raw.strip():
        raise InvalidInput("a JSON body is required")
    if content_type and "json" not in content_type:
        raise Problem(problem(415, "Unsupported media type", "send the body as application/json"))
    try:
        body = json.loads(raw, parse_float=lambda s: (_ for _ in ()).throw(InvalidInput(
            "numbers with a fraction must be sent as decimal strings, like \"75.5\"")))
    except InvalidInput:
        raise
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON") from None
    S.check(body, route.body)
    return body


def parse_query(route: Route, args: dict) -> dict:
    out = {}
    unknown = set(args) - set(route.query)
    if unknown:
        raise InvalidInput(f"unknown query parameters: {', '.join(sorted(unknown))}")
    for name, sch in route.query.items():
        if name not in args:
            continue
        value: Any = args[name]
        if sch.get("type") == "integer":
            try:
                value = int(value)
            except ValueError:
                raise InvalidInput(f"query parameter {name} must be a whole number") from None
        S.check(value, sch, f"query.{name}")
        out[name] = value
    return out


def dispatch(method: str, path: str, args: dict, headers: dict, raw: bytes,
             authenticate: Callable[[str], dict], rpc: Callable[..., Any]) -> tuple[int, Any, str, str]:
    """Returns (status, body, content type, route template)."""
    route_, params, path_matched = find(method, path)
    if route_ is None:
        if path_matched:
            return 405, problem(405, "Method not allowed", f"{method} is not allowed on {path}"), "application/problem+json", "unmatched"
        return 404, problem(404, "Not found", f"no such resource: {path}"), "application/problem+json", "unmatched"
    try:
        principal = None
        if route_.roles != PUBLIC:
            auth = headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                raise Unauthorized("sign in: send Authorization: Bearer <token>")
            principal = authenticate(auth[7:].strip())
            community = params.get("community")
            if community is not None and not principal.get("platform_admin") and principal.get("community") != community:
                # Do not confirm that another community exists.
                raise NotFound(f"community {community} does not exist")
            if route_.roles not in (MEMBER,) and not has_role(principal, route_.roles, community):
                raise Forbidden(f"this needs one of the roles: {', '.join(route_.roles)}")
        body = parse_body(route_, raw, headers.get("content-type", ""))
        query = parse_query(route_, args)
        call = Call(route_, params, query, body, principal, rpc, headers)
        result = route_.handler(call)
        if isinstance(result, tuple):
            status, result = result
        else:
            status = route_.status
        return status, result, "application/json", route_.path
    except Problem as exc:
        return exc.problem.get("status", 400), exc.problem, "application/problem+json", route_.path
    except DomainError as exc:
        return exc.status, exc.to_problem(), "application/problem+json", route_.path
