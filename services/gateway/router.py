"""The gateway's one routing table: every API route with its schema, roles and OpenAPI text.

Each stage adds a module of routes (routes_*.py). Dispatch matches the path and method
(werkzeug's routing Map: ids are UUIDs in the path itself, 405 names the allowed methods),
authenticates the bearer token, enforces tenancy (a path naming a community is only for that
community's members and platform admins: others get 404), checks roles, parses and validates the
body and query against the route's schemas, calls the stage service over RPC and maps refusals to
RFC 9457 problem+json, all in this one place. Whatever else goes wrong answers 500 problem+json
without internals and is logged with an incident id.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.exceptions import MethodNotAllowed, NotFound as RouteNotFound
from werkzeug.http import parse_options_header
from werkzeug.routing import BaseConverter, Map, RequestRedirect, Rule

from services.common.errors import DomainError, Forbidden, InvalidInput, NotFound, Unauthorized, unwrap
from services.contracts import communities
from services.contracts.calls import RpcCall

from . import names, schema as S

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # bytes; the CSV import allows more
MAX_DEPTH = 32  # arrays and objects inside each other, in a JSON body
MAX_SAFE_INTEGER = 2**53 - 1  # I-JSON (RFC 7493): integers a double holds exactly
PUBLIC = "public"
MEMBER = "member"  # any signed-in member of the community
JSON = "application/json"
PROBLEM = "application/problem+json"

# Path parameters by name: every id in the API is a UUID but an evidence file's SHA-256.
ID_PARAMETERS = frozenset({
    "amendment", "ballot", "case", "change", "comment", "community", "consultation", "delivery", "household",
    "invitation", "job", "meeting", "message", "minutes", "objection", "option", "person", "plan", "proposal", "task",
    "token", "webhook"})
SHA256 = "^[0-9a-f]{64}$"


class IdConverter(BaseConverter):
    """A UUID in its hyphenated form; handlers get it as a lower-case string."""

    regex = S.UUID[1:-1]

    def to_python(self, value: str) -> str:
        return value.lower()


class Sha256Converter(BaseConverter):
    regex = SHA256[1:-1]


def parameter(name: str) -> tuple[str, dict]:
    """The werkzeug converter and the published schema of a path parameter."""
    if name in ID_PARAMETERS:
        return "id", S.uuid_str()
    if name == "sha256":
        return "sha256", {"type": "string", "pattern": SHA256}
    return "default", {"type": "string", "pattern": S.LINE}


class Problem(Exception):
    def __init__(self, problem: dict, headers: dict | None = None):
        super().__init__(problem.get("detail"))
        self.problem = problem
        self.headers = headers or {}


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
    content_type: str = JSON
    max_body: int = MAX_BODY
    response: dict | None = None
    produces: tuple[str, ...] = ()  # media types of a route that answers with a file (a Raw), not JSON
    # Further success answers, status -> response schema: a handler returns (status, body) for them
    # (an import not done within its wait is answered 202 with its job).
    also: dict = field(default_factory=dict)

    def __post_init__(self):
        # Schemas are normalised and compiled once, here, when the route registers at start.
        self.params = re.findall(r"{(\w+)}", self.path)
        self.body = S.normalise(self.body)
        self.query = {name: S.normalise(sch) for name, sch in self.query.items()}
        self.body_checker = S.Checker(self.body, "body") if self.body is not None else None
        self.query_checker = S.Checker(S.query_schema(self.query), "query")
        self.integer_queries = {name for name, sch in self.query.items() if "integer" in S.types_of(sch)}
        self.rule = re.sub(r"{(\w+)}", lambda m: f"<{parameter(m.group(1))[0]}:{m.group(1)}>", self.path)


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
        """Call a stage service; its refusal is raised (errors.unwrap) and answered as it came."""
        return unwrap(self.rpc(service, method, *args, **kwargs))

    def send(self, request: RpcCall):
        """Send a declared call (services/contracts/calls.py): its service, method and arguments
        by name; answered as `call` answers."""
        return self.call(request.SERVICE, request.METHOD, **request.arguments())


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


# ---- matching ------------------------------------------------------------------------------------------
_matcher: tuple[int, Any] | None = None


def _adapter():
    """werkzeug's matcher over ROUTES, built again only when a route was added (at start)."""
    global _matcher
    if _matcher is None or _matcher[0] != len(ROUTES):
        url_map = Map([Rule(r.rule, methods=[r.method], endpoint=i) for i, r in enumerate(ROUTES)],
                      converters={"id": IdConverter, "sha256": Sha256Converter},
                      strict_slashes=True, merge_slashes=False)
        _matcher = (len(ROUTES), url_map.bind("gateway"))
    return _matcher[1]


def allowed_methods(path: str) -> list[str]:
    """The methods a path answers (none: no such resource); HEAD with GET, OPTIONS with any."""
    methods = set(_adapter().allowed_methods(path))
    return sorted(methods | {"OPTIONS"}) if methods else []


def find(method: str, path: str) -> tuple[Route, dict]:
    """The route and its path parameters, or a 404 / 405 Problem."""
    try:
        index, params = _adapter().match(path, method)
    except MethodNotAllowed:
        raise Problem(problem(405, "Method not allowed", f"{method} is not allowed here",
                              i18n={"key": "route.method", "params": {"method": method}}),
                      {"Allow": ", ".join(allowed_methods(path))}) from None
    except (RouteNotFound, RequestRedirect):
        raise Problem(problem(404, "Not found", "no such resource", i18n={"key": "route.not_found"})) from None
    return ROUTES[index], params


def problem(status: int, title: str, detail: str, **extra) -> dict:
    p = {"type": "about:blank" if status in (404, 405) and not extra.get("code") else
         f"https://consult.example/problems/{extra.get('code', title.replace(' ', ''))}",
         "title": title, "status": status, "detail": detail}
    p.update(extra)
    return p


# ---- the body and the query ------------------------------------------------------------------------------
def _refuse_float(_text: str):
    raise InvalidInput.coded("gateway.numbers_fraction_sent_decimal")


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise InvalidInput.coded("gateway.whole_numbers_body_lie", max_safe_integer=MAX_SAFE_INTEGER)
    return value


def _unique_names(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise InvalidInput.coded("gateway.json_object_names_member")
    return out


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NUL_ESCAPE = re.compile(rb"\\u0000")


def _walk(value, depth: int = 1) -> None:
    """Nesting depth, unpaired surrogates and NUL, for a body whose raw text may hold them."""
    stack = [(value, depth)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput.coded("gateway.body_nested_too_deeply", max_depth=MAX_DEPTH)
        if isinstance(item, dict):
            for k, v in item.items():
                _check_string(k)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            _check_string(item)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise InvalidInput.coded("gateway.text_contain_nul_characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput.coded("gateway.text_valid_unicode_ud") from None


def parse_json(raw: bytes) -> Any:
    """A JSON body, accepted only as I-JSON (RFC 7493): UTF-8, no unpaired surrogates, no name twice
    in an object, integers a double holds exactly; no fractions (decimals travel as strings), no
    NUL, and at most MAX_DEPTH levels deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput.coded("body.not_utf8") from None
    try:
        body = json.loads(text, parse_float=_refuse_float, parse_int=_bounded_int, parse_constant=_refuse_float,
                          object_pairs_hook=_unique_names)
    except RecursionError:
        raise InvalidInput.coded("gateway.body_nested_too_deeply", max_depth=MAX_DEPTH) from None
    except ValueError:
        raise InvalidInput.coded("body.not_json") from None
    # Cheap tests on the raw bytes spare the walk for almost every body.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH or _SURROGATE_ESCAPE.search(raw) or _NUL_ESCAPE.search(raw):
        _walk(body)
    return body


def media_type(header: str) -> tuple[str, dict]:
    value, options = parse_options_header(header or "")
    return value.strip().lower(), {k.lower(): v for k, v in options.items()}


_JSON_MEDIA = re.compile(r"application/([a-z0-9][a-z0-9!#$&^_.-]*\+)?json")


def _check_media(route: Route, header: str) -> None:
    value, options = media_type(header)
    wanted = route.content_type
    ok = bool(_JSON_MEDIA.fullmatch(value)) if wanted == JSON else value == wanted
    charset = options.get("charset", "utf-8").lower()
    if not ok or charset not in ("utf-8", "utf8") or set(options) - {"charset"}:
        raise Problem(problem(415, "Unsupported media type",
                              f"send the body as {wanted} (UTF-8)", code="UnsupportedMediaType"))


def parse_body(route: Route, raw: bytes, content_type: str):
    if route.body is None and route.content_type == JSON:
        if raw and raw.strip():
            raise InvalidInput.coded("body.none_taken")
        return None
    if len(raw) > route.max_body:
        raise Problem(problem(413, "Payload too large", f"the body is {len(raw)} bytes; at most {route.max_body}"))
    _check_media(route, content_type)
    if route.content_type == "text/csv":
        try:
            csv_text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput.coded("gateway.file_utf_text") from None
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", csv_text):
            raise InvalidInput.coded("gateway.file_contain_control_characters")
        return csv_text
    if not raw.strip():
        raise InvalidInput.coded("body.required")
    body = parse_json(raw)
    route.body_checker.check(body)
    return body


_INTEGER = re.compile(r"-?[0-9]{1,30}")


def parse_query(route: Route, args: list[tuple[str, str]]) -> dict:
    out: dict = {}
    for name, value in args:
        if name in out:
            raise InvalidInput.coded("gateway.query_parameter_given_more", name=name)
        if name in route.integer_queries:
            if not _INTEGER.fullmatch(value):
                raise InvalidInput.coded("gateway.query_whole_number", name=name)
            value = int(value)
        out[name] = value
    route.query_checker.check(out)
    return out


# ---- dispatch ---------------------------------------------------------------------------------------------
@dataclass
class Raw:
    """A route's answer that is not JSON (an evidence file's bytes), with its own headers."""
    status: int
    body: bytes
    content_type: str | None
    headers: dict = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str = JSON
    template: str = "unmatched"
    headers: dict = field(default_factory=dict)


def dispatch(method: str, path: str, args: list[tuple[str, str]], headers: dict, read_body: Callable[[int], bytes],
             authenticate: Callable[[str], dict], rpc: Callable[..., Any]) -> Reply:
    """One API request, answered whatever happens. `read_body(n)` reads at most n bytes of it; it
    is read only once the route, the caller and the declared length are known to be acceptable."""
    route_ = None
    try:
        if method == "OPTIONS":
            allowed = allowed_methods(path)
            if not allowed:
                raise NotFound.coded("route.not_found")
            return Reply(204, None, headers={"Allow": ", ".join(allowed)})
        route_, params = find(method, path)
        principal = None
        if route_.roles != PUBLIC:
            auth = headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                raise Unauthorized.coded("auth.sign_in")
            principal = authenticate(auth[7:].strip())
            community = params.get("community")
            if community is not None and not principal.get("platform_admin") and principal.get("community") != community:
                # Do not confirm that another community exists.
                raise NotFound.coded("community.not_found", community=community)
            if route_.roles not in (MEMBER,) and not has_role(principal, route_.roles, community):
                raise Forbidden.coded("roles.needed", roles=", ".join(route_.roles))
        limit = route_.max_body if route_.body is not None or route_.content_type != JSON else 1024
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise Problem(problem(413, "Payload too large", f"the body is {declared} bytes; at most {limit}",
                                  i18n={"key": "body.too_large", "params": {"size": declared, "limit": limit}}))
        body = parse_body(route_, read_body(limit + 1), headers.get("content-type", ""))
        query = parse_query(route_, args)
        call = Call(route_, params, query, body, principal, rpc, headers)
        result = route_.handler(call)
        if isinstance(result, Raw):
            return Reply(result.status, result.body, result.content_type, route_.path, result.headers)
        if isinstance(result, tuple):
            status, result = result
        else:
            status = route_.status
        if principal is not None and call.community and route_.tag != "audit":
            result = names.with_names(result, call.community, lambda c, ids: call.send(
                communities.DisplayNames(community=c, people=ids)))
        return Reply(status, result, JSON, route_.path)
    except Problem as exc:
        return Reply(exc.problem.get("status", 400), exc.problem, PROBLEM, _template(route_), exc.headers)
    except DomainError as exc:
        return Reply(exc.status, exc.to_problem(), PROBLEM, _template(route_))
    except Exception:  # noqa: BLE001 - the one place an unexpected failure becomes an answer
        return Reply(500, internal_error(f"{method} {_template(route_)}"), PROBLEM, _template(route_))


def _template(route_: Route | None) -> str:
    return route_.path if route_ is not None else "unmatched"


def internal_error(what: str, exc: BaseException | None = None) -> dict:
    """Log the exception (default: the one being handled) with a fresh incident id; the client
    gets only the id."""
    incident = str(uuid.uuid4())
    log.error("unhandled error in %s (incident %s)", what, incident, exc_info=exc or True)
    return problem(500, "Internal server error", f"the request failed unexpectedly; incident {incident} is logged",
                   code="InternalError", incident=incident, i18n={"key": "internal", "params": {"incident": incident}})
