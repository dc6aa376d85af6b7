"""The gateway: HTTP JSON API (/api/v1), OpenAPI, sign-in, and the problem+json mapping."""
from __future__ import annotations

import logging
import time

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from amqp.exceptions import MessageNacked
from kombu.exceptions import OperationalError
from nameko.exceptions import UnknownService

from services.common import metrics
from services.common.problem_texts import EN, render
from services.common.errors import DomainError, Unauthorized, Unavailable, from_problem, unwrap
from services.common import cells
from services.common.rpc import Listening, ListeningProvider, RpcProxy, in_cell
from services.common import idempotency
from services.common.runtime import WORKER_ATTRIBUTE, Platform, ServiceBase
from services.contracts.communities import Authenticate, TokenCheck

from . import edge, openapi, router, routes_load
from .auth_cache import Principal, RevocationListener

log = logging.getLogger(__name__)

routes_load.load_all()  # every routes_*.py module registers its routes

TARGETS = ("communities", "audit", "proposals", "deliberation", "decisions", "actions", "notifications")
RPC_TIMEOUT_S = 30
# What publishing a request raises when the broker does not take it (`_rpc`: 503, not 500):
# nacked, kombu giving up on the connection, or the connection lost under the publish.
BROKER_REFUSALS = (MessageNacked, OperationalError, AmqpConnectionError, OSError)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


# A request no service took within the gateway's timeout expires in its queue: the client has been
# answered 503 by then, and must not see the command carried out later, when the service is back.
REQUEST_TTL = {"expiration": RPC_TIMEOUT_S}
LISTEN_GRACE_S = Listening.GRACE_S  # how long a service without a consumer is given to get one


def _unavailable(key: str, **params):
    """The gateway's own 503 (a service stopped, too slow, or the broker refusing the request),
    worded in the client's language at the edge (services/common/problem_texts/gateway.py)."""
    return from_problem(router.problem(503, "Service unavailable", render(key, EN, params), code="ServiceUnavailable",
                                       i18n={"key": key, "params": params}))


class GatewayService(ServiceBase):
    name = "gateway"
    platform = Platform("gateway")
    communities = RpcProxy("communities", **REQUEST_TTL)
    audit = RpcProxy("audit", **REQUEST_TTL)
    proposals = RpcProxy("proposals", **REQUEST_TTL)
    deliberation = RpcProxy("deliberation", **REQUEST_TTL)
    decisions = RpcProxy("decisions", **REQUEST_TTL)
    actions = RpcProxy("actions", **REQUEST_TTL)
    notifications = RpcProxy("notifications", **REQUEST_TTL)
    auth_cache = RevocationListener()  # sign-ins cached 5 s, forgotten at once on a revocation
    listening = ListeningProvider()  # whether a service has a consumer: a stopped one is 503 at once

    # When this request's service calls must be done by (time.monotonic()); set as a request comes
    # in (`api`). One budget for the request, not one timeout per call: a request that checks a
    # token and then sends a command answers within RPC_TIMEOUT_S, not twice that, which is past a
    # client's patience (and the web pages' own limit) during a broker failover.
    deadline: float | None = None  # None: a call outside a request, given the whole timeout

    def _rpc(self, service: str, method: str, *args, **kwargs):
        """Call a service; a stage service in the cell of the community the call names (every
        call about a community names it: `community=`), when the deployment has cells
        (services/common/cells.py); a call about the whole deployment (cells.PLATFORM_WIDE) to the
        platform instance. It waits at most what is left of the request's budget, and the request
        message expires in its queue when that is spent."""
        if service not in TARGETS:
            raise ValueError(service)
        left = RPC_TIMEOUT_S if self.deadline is None else self.deadline - time.monotonic()
        if left <= 0:
            raise _unavailable("gateway.request_out_of_time", seconds=RPC_TIMEOUT_S)
        # nameko's RpcProxy waits forever; a request must not hang because a service is down. Only
        # this timer is ours to answer: another (a route's own shorter wait) goes on to its owner.
        timer = eventlet.Timeout(left)
        try:
            with timer:
                settings, cell = self.platform.settings, None
                if settings.cells and cells.in_cells(service) and not cells.platform_wide(settings, service, method):
                    cell = self.platform.placements.cell_of(kwargs.get("community"))
                name = cells.qualified(service, cell)  # a platform-wide call: the platform audit's
                if not self.listening.hears(name, grace=LISTEN_GRACE_S):  # stopped: say so, publish nothing
                    metrics.RPC_NOT_RUNNING.labels(name).inc()
                    raise UnknownService(name)
                proxy = in_cell(getattr(self, service), service, cell, expiration=left)
                return getattr(proxy, method)(*args, **kwargs)
        # Raised as the DomainError of a 503 (Unavailable), like a stage's own 503 relayed: callers
        # handle "not now" one way, whichever side of the RPC said it.
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            raise _unavailable("gateway.service_too_slow", service=service, seconds=RPC_TIMEOUT_S) from None
        except UnknownService as exc:
            raise _unavailable("gateway.service_not_running", service=exc.args[0] if exc.args else service) from None
        # The request could not be handed to the broker: nacked (a quorum queue without a majority,
        # two nodes of three down), or the connection lost or refused. Not now rather than never,
        # and no incident: the client retries (with its Idempotency-Key, nothing is done twice).
        except BROKER_REFUSALS as exc:
            raise _unavailable("gateway.broker_refused", service=service, error=type(exc).__name__) from None

    def _carry_idempotency_key(self, key: str | None):
        """A client's Idempotency-Key goes with every service call of this request (nameko context
        data), so a retry of a request whose command committed is answered the first reply instead
        of executing again (services/common/idempotency.py). Without one, a redelivered request is
        still recognised by its delivery id; a retry by the client is then a new request."""
        if key is None:
            return None
        key = key.strip()
        if not key or len(key) > idempotency.MAX_KEY_LENGTH or not key.isprintable():
            return router.Reply(400, router.problem(
                400, "Bad request", f"Idempotency-Key must be 1 to {idempotency.MAX_KEY_LENGTH} printable characters",
                code="InvalidIdempotencyKey"), router.PROBLEM)
        getattr(self, WORKER_ATTRIBUTE).data[idempotency.IDEMPOTENCY_KEY] = key
        return None

    def _authenticate(self, token: str) -> dict:
        """A signed token is checked here when this gateway can vouch for its revoked list
        (auth_cache.py); every other sign-in asks the directory, whose answer is cached briefly."""
        signed = self.auth_cache.signed
        connection = signed.to_sync()
        if connection:
            self._sync_signed(connection)
        fields = signed.check(token)
        if fields is not None:
            metrics.SIGN_INS.labels("signed").inc()
            return Principal(fields, lambda: self._asked(token))
        return self._asked(token)

    def _sync_signed(self, connection: int) -> None:
        """Ask the directory for the signing key and the revoked list, once per listener connection
        (one request does; the others meanwhile ask the directory as before)."""
        try:
            request = TokenCheck()
            self.auth_cache.signed.synced(connection, unwrap(self._rpc(request.SERVICE, request.METHOD)))
        except Exception:  # noqa: BLE001 - the directory busy or older: the next request asks again
            self.auth_cache.signed.sync_failed()
            log.warning("gateway: could not load the signed tokens' key and revoked list; asking the directory")

    def _asked(self, token: str) -> dict:
        principal = self.auth_cache.get(token)
        if principal is not None:
            metrics.SIGN_INS.labels("cached").inc()
            return principal
        metrics.SIGN_INS.labels("directory").inc()
        asked_at = self.auth_cache.generation
        try:
            request = Authenticate(token=token)
            principal = unwrap(self._rpc(request.SERVICE, request.METHOD, **request.arguments()))
        except Unavailable:
            raise  # the directory is busy or starting: 503, the client may retry; not a bad token
        except DomainError as exc:
            raise Unauthorized.relayed(exc.to_problem()) from None
        self.auth_cache.put(token, principal, asked_at)
        return principal

    # Every HTTP entrypoint of the gateway is the edge's (problem+json whatever fails); one of
    # nameko's own would start a second web server on the same port. So the base class's health
    # and metrics endpoints are declared again here, on the edge.
    @edge.http("GET", "/metrics")
    def metrics_endpoint(self, request):
        return ServiceBase.metrics_endpoint(self, request)

    @edge.http("GET", "/healthz")
    def healthz(self, request):
        return ServiceBase.healthz(self, request)

    @edge.http("GET", "/readyz")
    def readyz(self, request):
        return ServiceBase.readyz(self, request)

    @edge.http("GET", "/api/openapi.json")
    def openapi_document(self, request):
        return edge.respond(200, openapi.document(), "application/json")

    @edge.http("*", "/api/<path:path>")
    def api(self, request, path):
        started = time.perf_counter()
        self.deadline = time.monotonic() + RPC_TIMEOUT_S
        headers = {k.lower(): v for k, v in request.headers.items()}
        refused = self._carry_idempotency_key(headers.get("idempotency-key"))
        if refused is not None:
            return edge.respond(refused.status, refused.body, refused.content_type, refused.headers)
        stream = request.environ["wsgi.input"]  # bounded by Content-Length, or chunked: read(n) stops at n
        reply = router.dispatch(request.method, request.path, list(request.args.items(multi=True)), headers,
                                stream.read, self._authenticate, self._rpc)
        method = request.method if request.method in KNOWN_METHODS else "other"  # a label per token: unbounded
        metrics.HTTP_REQUESTS.labels("gateway", reply.template, method, str(reply.status)).inc()
        metrics.HTTP_SECONDS.labels("gateway", reply.template).observe(time.perf_counter() - started)
        if reply.content_type == router.PROBLEM:  # the one place a problem takes the client's language
            return edge.problem_response(reply.body, reply.headers, headers.get("accept-language"))
        return edge.respond(reply.status, reply.body, reply.content_type, reply.headers)


SERVICE = GatewayService
