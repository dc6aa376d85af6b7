"""The gateway: HTTP JSON API (/api/v1), OpenAPI, sign-in, and the problem+json mapping."""
from __future__ import annotations

import hashlib
import json
import time

import eventlet
from nameko.exceptions import UnknownService

from nameko.rpc import RpcProxy
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from services.common import metrics
from services.common.errors import Unauthorized
from services.common.runtime import Platform, ServiceBase

from . import openapi, router, routes_load

routes_load.load_all()  # every routes_*.py module registers its routes

TARGETS = ("communities", "audit", "proposals", "deliberation", "decisions", "actions", "notifications")
_AUTH_CACHE: dict[str, tuple[float, dict]] = {}
AUTH_TTL = 5.0
RPC_TIMEOUT_S = 30
MAX_REQUEST_BYTES = 8_000_000  # the largest route limit (evidence uploads, base64) plus headroom


def _json_default(value):
    return str(value)


class GatewayService(ServiceBase):
    name = "gateway"
    platform = Platform("gateway")
    communities = RpcProxy("communities")
    audit = RpcProxy("audit")
    proposals = RpcProxy("proposals")
    deliberation = RpcProxy("deliberation")
    decisions = RpcProxy("decisions")
    actions = RpcProxy("actions")
    notifications = RpcProxy("notifications")

    def _rpc(self, service: str, method: str, *args, **kwargs):
        if service not in TARGETS:
            raise ValueError(service)
        # nameko's RpcProxy waits forever; a request must not hang because a service is down.
        try:
            with eventlet.Timeout(RPC_TIMEOUT_S):
                return getattr(getattr(self, service), method)(*args, **kwargs)
        except eventlet.Timeout:
            raise router.Problem(router.problem(
                503, "Service unavailable", f"the {service} service did not answer within {RPC_TIMEOUT_S} s",
                code="ServiceUnavailable")) from None
        except UnknownService:
            raise router.Problem(router.problem(
                503, "Service unavailable", f"the {service} service is not running", code="ServiceUnavailable")) from None

    def _authenticate(self, token: str) -> dict:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = _AUTH_CACHE.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < AUTH_TTL:
            return hit[1]
        reply = self._rpc("communities", "authenticate", token)
        if not reply.get("ok"):
            raise Unauthorized(reply["problem"]["detail"])
        _AUTH_CACHE[key] = (now, reply["result"])
        if len(_AUTH_CACHE) > 10_000:
            _AUTH_CACHE.clear()
        return reply["result"]

    @http("GET", "/api/openapi.json")
    def openapi_document(self, request):
        return Response(json.dumps(openapi.document(), ensure_ascii=False), status=200, mimetype="application/json")

    @http("GET,POST,PUT,PATCH,DELETE", "/api/<path:path>")
    def api(self, request, path):
        started = time.perf_counter()
        headers = {k.lower(): v for k, v in request.headers.items()}
        length = request.content_length or 0
        if length > MAX_REQUEST_BYTES:
            status, body, ctype, template = 413, router.problem(
                413, "Payload too large", f"the body is {length} bytes"), "application/problem+json", "unmatched"
        else:
            raw = request.get_data(cache=False)
            status, body, ctype, template = router.dispatch(
                request.method, "/api/" + path, request.args.to_dict(), headers, raw, self._authenticate, self._rpc)
        metrics.HTTP_REQUESTS.labels("gateway", template, request.method, str(status)).inc()
        metrics.HTTP_SECONDS.labels("gateway", template).observe(time.perf_counter() - started)
        payload = b"" if status == 204 else json.dumps(body, ensure_ascii=False, default=_json_default).encode("utf-8")
        return Response(payload, status=status, content_type=f"{ctype}; charset=utf-8")


SERVICE = GatewayService
