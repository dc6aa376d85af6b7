"""The nameko side of the plumbing: one DependencyProvider owns a service's stores, its outbox
relay, its tracked consumers and its local projection, and a base class gives every service
/metrics, /healthz, /readyz and the RPC that serves its log to consumers catching up.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
import time
from typing import Callable

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from . import cells, config, deployment, erasure, idempotency, metrics, registry
from .consumer import EventSourcedSink, Held, RecordedButHeld, SqlSink, TrackedConsumer
from .content import ContentStore
from .cells import OWN, Placements
from .errors import DomainError, NotFound, Unavailable, unwrap
from .relay import OutboxRelay, read_envelopes
from .rpc import check_container, cluster_proxy, rpc, target
from .store import creation_lock, state_engine
from .tables import create_all

log = logging.getLogger(__name__)


class Runtime:
    """What a worker sees: the application, the state engine, the content store."""

    def __init__(self, service: str, settings: config.Settings, engine: sa.Engine, app=None,
                 call: Callable[..., object] | None = None):
        self.service, self.settings, self.engine, self.app = service, settings, engine, app
        self.content = ContentStore(engine)
        self.relay: OutboxRelay | None = None
        self.consumer: TrackedConsumer | None = None
        self._call = call
        self.placements = Placements.asking(settings, self.send)

    def check_placement(self, community: str | None) -> None:
        """A stage service of a cell serves its cell's communities only: a request that names
        another's is refused as one naming no community at all (as the gateway refuses one outside
        the caller's), whoever sent it -- the gateway routes by placement, this is the check where
        the data lives."""
        if community is not None and not self.placements.is_own(community):
            raise NotFound.coded("community.not_found", community=community)

    def own_event(self, env: dict) -> bool:
        """Whether a directory event is this cell's to act on: one of its communities' (learnt
        from the creating event itself), or, for the first cell, one of no community. Outside
        cells, every event."""
        if self.settings.cell is None:
            return True
        if env["type"] == "CommunityCreated":
            self.placements.learn(env["community"], env["data"].get("cell"))
        return self.placements.cell_of(env["community"]) == self.settings.cell

    def project(self) -> int:
        """Bring the application's read models up to its log head, if it has any."""
        project = getattr(self.app, "project", None)
        return project() if project is not None else 0

    def rpc(self, service: str, method: str, *args, in_cell=OWN, **kwargs):
        """Call another service from a consumer handler or a timer (no nameko worker there): a stage
        service in this process's own cell, or in `in_cell` (the directory asking a community's
        cell: services/common/cells.py).

        Unwraps our {"ok", "result"|"problem"} replies; a problem raises the DomainError."""
        if self._call is None:
            raise RuntimeError("this runtime has no RPC connection (it is not running in a Platform)")
        where = {} if in_cell is OWN else {"in_cell": in_cell}
        return unwrap(self._call(service, method, *args, **where, **kwargs))

    def send(self, request, in_cell=OWN):
        """Send a declared call (services/contracts/calls.py: `rt.send(every_service.READ_TEXTS[s](
        commitments=…))`) by its arguments' names, unwrapped as `rpc` unwraps. Services call each
        other so, never by position (tests/unit/test_contract_calls.py holds them to it)."""
        return self.rpc(request.SERVICE, request.METHOD, in_cell=in_cell, **request.arguments())

    def send_or_none(self, request, timeout: float = 3.0, in_cell=OWN):
        """Ask another service for what a view can do without (another stage's texts): None when
        it refuses or does not answer within `timeout` seconds. A stage that is down then costs a
        reader three seconds and bare commitments, not the full RPC timeout and a 503, and the
        shared RPC connection is not held for long."""
        return self._or_none(functools.partial(self.send, request, in_cell), f"{request.SERVICE}.{request.METHOD}",
                             timeout)

    @staticmethod
    def _or_none(ask: Callable[[], object], what: str, timeout: float):
        import eventlet

        try:
            with eventlet.Timeout(timeout):
                return ask()
        except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001
            log.warning("%s gave nothing in time: %r", what, exc)
            return None

    def ready(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return self.consumer is None or self.consumer.ready

    def rejected(self) -> dict[str, int]:
        """Messages this process's consumer set aside since it started, per source (no event of
        the source's log: see TrackedConsumer.process); `consult dlq list` shows them."""
        return dict(self.consumer.rejected) if self.consumer is not None else {}

    def held(self) -> dict | None:
        """The event the service's read model is held at (parked), if it is: see catch_up_projection."""
        return getattr(getattr(self.app, "projection", None), "held", None)


class Platform(DependencyProvider):
    """Wires one service: its application (if it is a source), its consumer (if it consumes)."""

    def __init__(
        self,
        service: str,
        app_factory: Callable | None = None,
        tables: tuple = (),
        consumer_sink: Callable[[Runtime], object] | None = None,
        upcast: bool = True,
        timers: tuple[tuple[float, Callable[[Runtime], None]], ...] = (),
        spanning_timers: tuple[tuple[float, Callable[[Runtime], None]], ...] = (),
    ):
        self.service = service
        self.app_factory = app_factory
        self.tables = tables
        self.consumer_sink = consumer_sink
        self.timers = timers
        # What the service's platform instance runs instead (cells.SPANNING: a deployment with cells
        # runs it once more without CONSULT_CELL): no consumer, these timers only.
        self.spanning_timers = spanning_timers
        self.upcast = upcast
        self.runtime: Runtime | None = None
        self._rpc_proxy = None
        self._stopping = False
        self._rpc_lock = threading.Lock()  # one standalone proxy, shared by the managed threads

    def setup(self):
        check_container(self.container)
        settings = config.load().for_service(self.service)  # its own database, if CONSULT_DB_<SERVICE> names one
        engine = state_engine(self.service, settings)
        with creation_lock(settings, f"{self.service}-state"):
            before = deployment.prepare(engine)
            create_all(engine, *self.tables)
        deployment.mark(engine, settings, self.service, before)  # a store never changes its kind
        app = self.app_factory(settings, engine) if self.app_factory else None
        self.runtime = Runtime(self.service, settings, engine, app, call=self._call)
        if app is not None and self.service in registry.SOURCES:
            self.runtime.relay = OutboxRelay(self.service, app, engine, settings)
        if cells.spanning_instance(settings, self.service):
            self.consumer_sink, self.timers = None, self.spanning_timers
        if self.consumer_sink is not None:
            sink = self.consumer_sink(self.runtime)
            if settings.cell is not None:
                _own_cell_only(sink, self.runtime)
            self.runtime.consumer = TrackedConsumer(
                self.service,
                registry.SUBSCRIPTIONS[self.service],
                sink,
                settings,
                fetch_log=self._fetch_log,
                log_head=self._log_head,
                upcast=self.upcast,
            )

    def _proxy(self):
        if self._rpc_proxy is None:
            self._rpc_proxy = cluster_proxy(self.runtime.settings, timeout=self.runtime.settings.consumer_rpc_timeout).start()
        return self._rpc_proxy

    def _call(self, service: str, method: str, *args, in_cell=OWN, **kwargs):
        with self._rpc_lock:
            try:
                return getattr(target(self._proxy(), self.runtime.settings, service, in_cell), method)(*args, **kwargs)
            except Exception as exc:
                from .consumer import is_transient

                if is_transient(exc) and not isinstance(exc, DomainError):
                    self._drop_proxy()  # its connection may be the broken thing: a new one next time
                raise

    def _drop_proxy(self) -> None:
        proxy, self._rpc_proxy = self._rpc_proxy, None
        if proxy is not None:
            try:
                proxy.stop()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    def _fetch_log(self, source: str, start: int, limit: int) -> list:
        """The source's log from `start`, for the tracked consumer catching up (its `read_log`)."""
        from services.contracts.every_service import READ_LOG

        return self.runtime.send(READ_LOG[source](start=start, limit=limit))

    def _log_head(self, source: str) -> int:
        """The source's last position, for the tracked consumer's head check (its `log_head`)."""
        from services.contracts.every_service import LOG_HEAD

        return self.runtime.send(LOG_HEAD[source]())

    def start(self):
        rt = self.runtime
        if rt.relay is not None:
            self.container.spawn_managed_thread(rt.relay.run, identifier=f"{self.service}-relay")
        if rt.consumer is not None:
            self.container.spawn_managed_thread(rt.consumer.run, identifier=f"{self.service}-consumer")
        if rt.app is not None and hasattr(rt.app, "project"):
            self.timers = self.timers + ((1.0, Runtime.project),)
        for interval, fn in self.timers:
            self.container.spawn_managed_thread(functools.partial(self._every, interval, fn))

    def _every(self, interval: float, fn: Callable[[Runtime], None]) -> None:
        while not self._stopping:
            try:
                # While the read model is held, timers would act on a stale view (and a sender would
                # send again what it cannot record): only the catch-up, which sees the hold lifted, runs.
                if fn is Runtime.project or self.runtime.held() is None:
                    fn(self.runtime)
            except Exception:  # noqa: BLE001 - a timer must keep ticking
                if self._stopping:
                    return  # the stores are closing under us: not a failure
                log.exception("%s: timer %s failed", self.service, getattr(fn, "__name__", fn))
            time.sleep(interval)

    def stop(self):
        self._stopping = True
        rt = self.runtime
        if rt.relay is not None:
            rt.relay.stop()
        if rt.consumer is not None:
            rt.consumer.stop()
        if self._rpc_proxy is not None:
            try:
                self._rpc_proxy.stop()
            except Exception:  # noqa: BLE001
                pass
        if rt.app is not None:
            rt.app.close()
        rt.engine.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.runtime

    def worker_setup(self, worker_ctx):
        # The worker's context data (the request's delivery id, a client's Idempotency-Key) for
        # `command`, which sees only the service instance.
        setattr(worker_ctx.service, WORKER_ATTRIBUTE, worker_ctx)


def _own_cell_only(sink, runtime: Runtime) -> None:
    """A cell's consumer follows the directory's log, which holds every cell's communities: it
    applies its own cell's events (Runtime.own_event) and passes over the others', which are
    tracked as applied all the same -- so a cell's audit log, read models and erasure records hold
    its own communities only. Every handler of the sink is wrapped (a SinkChain's each)."""

    def own(env: dict) -> bool:
        return env["source"] != "communities" or runtime.own_event(env)

    for part in getattr(sink, "sinks", (sink,)):
        handler = part.handler
        if isinstance(part, SqlSink):
            part.handler = lambda conn, env, handler=handler: handler(conn, env) if own(env) else None
            if part.handler_many is not None:
                part.handler_many = lambda conn, envs, many=part.handler_many: many(
                    conn, [env for env in envs if own(env)])
        else:  # EventSourcedSink: its handler returns the aggregates to save
            part.handler = lambda env, handler=handler: handler(env) if own(env) else []


def command(fn):
    """RPC methods return {"ok": true, "result": ...} or {"ok": false, "problem": {...}}.

    Expected refusals (DomainError) travel as data, so the gateway maps them to RFC 9457 problems
    in one place and nothing is logged as a crash.

    A command runs at most once per request (services.common.idempotency): a redelivered RPC
    request, or a client's retry with the same Idempotency-Key, is answered the first reply.
    """
    return _answering(fn, once=True)


def query(fn):
    """An RPC method that only reads, answered as a command is (a refusal as data, "not now" as a
    503), but not run under a request key: a repeated read answers what is there now, so it does
    not first look for a stored reply -- a database round trip on every call, a third of the
    queries of a sign-in check, which the gateway makes for each resident's first request. A save
    inside a query raises (services.common.idempotency.reading)."""
    return _answering(fn, once=False)


def _answering(fn, once: bool):
    signature = inspect.signature(fn)
    names_community = "community" in signature.parameters

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        def execute() -> dict:
            try:
                if names_community and self.platform.settings.cell is not None:
                    self.platform.check_placement(_argument(signature, self, args, kwargs, "community"))
                return {"ok": True, "result": fn(self, *args, **kwargs)}
            except (DomainError, RecordedButHeld) as exc:
                return {"ok": False, "problem": exc.to_problem()}
            except Exception as exc:  # noqa: BLE001 - classified: "not now" is a 503, anything else a crash
                from .consumer import is_transient

                request = idempotency.current()
                if not is_transient(exc) or (request is not None and request.marked):
                    raise  # something was recorded: not a "try again" (idempotency.once decides)
                # A lock or statement timeout, a lost or exhausted database connection, another
                # service that did not answer: nothing was recorded (the transaction rolled back)
                # and the same request may succeed in a moment. The client is told so, as a 503
                # problem, never with the driver's text (it can hold the statement's parameters).
                log.warning("%s.%s: not now (%s); answered 503", self.name, fn.__name__, type(exc).__name__)
                busy = Unavailable.coded("common.not_now_try_again", service=self.name)
                return {"ok": False, "problem": busy.to_problem()}

        if not once:
            return idempotency.reading(execute)
        worker = getattr(self, WORKER_ATTRIBUTE, None)
        positional, named = _as_positional(signature, self, args, kwargs)
        data = worker.data if worker is not None else None
        key = idempotency.request_key(data, self.name, fn.__name__, positional, named)
        return idempotency.once(self.platform, key, execute, idempotency.may_be_repeated(data))

    return wrapper


def _argument(signature: inspect.Signature, instance, args: tuple, kwargs: dict, name: str):
    """One argument of a request, however it was passed (None if it does not bind)."""
    try:
        return signature.bind_partial(instance, *args, **kwargs).arguments.get(name)
    except TypeError:
        return None


def _as_positional(signature: inspect.Signature, instance, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A request's arguments as the method would bind them positionally: a call by name
    (services/contracts/calls.py) is keyed for idempotency as the same call made positionally was,
    so a client's retry with the same Idempotency-Key across the change runs once. Arguments that do
    not bind are keyed as they came (the method then refuses them itself)."""
    try:
        bound = signature.bind(instance, *args, **kwargs)
    except TypeError:
        return args, kwargs
    bound.apply_defaults()  # the gateway sent every argument by position; by name it leaves out defaults
    return bound.args[1:], bound.kwargs


WORKER_ATTRIBUTE = "_consult_worker"  # the nameko worker context, set on each worker's service instance


def _json(data, status=200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


class ServiceBase:
    """Entrypoints every service has. Subclasses set `name` and `platform = Platform(...)`."""

    name = "base"
    platform: Runtime  # what the Platform dependency injects

    @http("GET", "/metrics")
    def metrics_endpoint(self, request):
        body, content_type = metrics.exposition()
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/healthz")
    def healthz(self, request):
        return _json({"status": "ok", "service": self.name})

    @http("GET", "/readyz")
    def readyz(self, request):
        try:
            ok = self.platform.ready()
        except Exception as exc:  # noqa: BLE001
            return _json({"status": "unavailable", "detail": str(exc)}, 503)
        held = self.platform.held()
        if held is not None:  # serving reads from where it holds, refusing commands: an operator must act
            return _json({"status": "degraded", "held": held}, 503)
        body = {"status": "ready" if ok else "starting"}
        rejected = self.platform.rejected()
        if rejected:  # set aside, not holding anything: ready all the same, and it says so
            body["rejected_messages"] = rejected
        return _json(body, 200 if ok else 503)

    @rpc
    def ping(self) -> str:
        """A no-op call: the bare RPC round trip, for health checks and benchmarks."""
        return "pong"

    @rpc
    def read_log(self, start: int, limit: int = 100) -> list:
        app = self.platform.app
        if app is None:
            return []
        return read_envelopes(app, self.name, int(start), min(int(limit), 1000))

    @rpc
    def read_texts(self, commitments: list) -> dict:
        """Texts of this service's erasable store by commitment (at most 1000), for a service that
        shows another's texts at the moment it needs them (notifications renders messages at send
        time). Erased and unknown commitments are absent, so an erased text is never shown again."""
        wanted = [str(c) for c in list(commitments)[:1000]]
        return {c: t for c, t in self.platform.content.get_many(wanted).items() if t is not None}

    @rpc
    def export_texts(self, commitments: list) -> list:
        """Texts with their salts (at most 1000), for an auditor's export of the audit log: each
        commitment this store holds as {"kind": "text", "commitment", "salt", "text"}, or
        {"kind": "text", "commitment", "erased": true} once erased. Commitments it never held are
        absent, so the exporter can ask the service that does hold them."""
        wanted = [str(c) for c in list(commitments)[:1000]]
        held = self.platform.content.get_many(wanted)  # erased rows are held too (with no text)
        return self.platform.content.records(held)

    @rpc
    @command
    def personal_data(self, community: str, person: str) -> dict:
        """What this service holds about the person in the community (PIPL art. 45: the access
        right), as its application's `personal_data` gathers it; {} for a service that holds none."""
        gather = getattr(self.platform.app, "personal_data", None)
        return gather(str(community), str(person)) if gather is not None else {}

    @rpc
    def commitments_of(self, person: str, commitments: list) -> list:
        """Which of these commitments (at most 1000) are texts of `person` in this service's store,
        erased or not: the notifications service erases the messages that quoted them."""
        return self.platform.content.of_subject(str(person), [str(c) for c in list(commitments)[:1000]])

    @rpc
    def erasure_done(self, request: str) -> dict | None:
        """This service's record of having carried out the directory's erasure request `request`
        (services/common/erasure.py), or None if it has not (yet)."""
        app = self.platform.app
        return erasure.completion(app, self.name, request) if app is not None else None

    @rpc
    def log_head(self) -> int:
        return self.platform.app.head() if self.platform.app is not None else 0


__all__ = ["Platform", "Runtime", "ServiceBase", "command", "EventSourcedSink", "SqlSink", "Held"]
