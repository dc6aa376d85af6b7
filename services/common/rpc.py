"""nameko RPC under the deployment's prefix: the one place that names RPC exchanges and queues.

nameko 2.14 names them the same in every deployment (exchange `nameko-rpc`, queues
`rpc-<service>`, reply queues `rpc.reply-<service>-<uuid>`), so two deployments on one RabbitMQ
vhost would consume each other's calls. Here every RPC name carries `CONSULT_PREFIX`, as the event
exchange and queues (bus.py) and the PostgreSQL schemas do:

    exchange        <prefix>.rpc
    service queue   <prefix>.rpc-<service>            (bound with `<service>.*`)
    reply queue     <prefix>.rpc.reply-<owner>-<uuid> (bound with `<uuid>`)

The exchange comes from nameko's own `rpc_exchange` setting, so nameko's publishers and responders
use it unchanged; the queue names come from the small subclasses below. Every service, the CLI,
the tests and the benchmarks use `rpc`, `RpcProxy`, `nameko_config` and `cluster_proxy` from here,
never nameko's: `check_container` refuses to start a service that mixes in nameko's own.

On a RabbitMQ cluster (docs/reliability.md, tests/reliability/test_rabbit_cluster.py) a service
must go on answering while a node is down, so the queues are not nameko's durable classic ones,
which live on the one node that declared them (every other node answers 404 "home node down"):

- a service queue is of CONSULT_QUEUE_TYPE (`service_queue`, with the event bus's
  `bus.queue_arguments`): a quorum queue, replicated, by default. No single active consumer: the
  instances of a service take requests side by side;
- a reply queue is classic and non-durable, deleted by x-expires once its proxy is gone: when its
  node dies it goes with it, and the proxy's consumer, reconnecting to a live node, declares it
  again there (a durable one would stay "home node down" until that node is back);
- a service's queue consumer (`QueueConsumer`: its RPC consumer's and its proxies' reply
  listener's one connection) survives an ack on a connection that has just died.
"""
from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from functools import partial

import nameko.amqp.publish
from kombu import Connection, Queue
from kombu.pools import producers
from nameko import messaging
from nameko import rpc as nameko_rpc
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS, RPC_EXCHANGE_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy, SingleThreadedReplyListener

from . import bus, cells, registry
from .config import Settings
from .idempotency import DELIVERY_ID, REDELIVERED

log = logging.getLogger(__name__)

PREFIX_KEY = "CONSULT_PREFIX"  # the deployment's prefix, carried in nameko's configuration
CELL_KEY = "CONSULT_CELL"  # the process's cell (services/common/cells.py), likewise
QUEUE_TYPE_KEY = "CONSULT_QUEUE_TYPE"  # the type of the service queues (Settings.queue_type), likewise

# The services that serve RPC: every service of the registry but the web pages, a client of the
# public API only (tests/unit/test_rpc_queues.py holds this to the services' classes).
SERVING: tuple[str, ...] = tuple(s for s in registry.SERVICES if s != "web")


def exchange_name(prefix: str) -> str:
    return f"{prefix}.rpc"


def service_queue_name(prefix: str, service: str) -> str:
    return f"{prefix}.rpc-{service}"


def reply_queue_name(prefix: str, owner: str, reply_id: str) -> str:
    return f"{prefix}.rpc.reply-{owner}-{reply_id}"


def nameko_config(settings: Settings, **extra) -> dict:
    """nameko's configuration for anything that speaks RPC: a service container or a standalone
    proxy. `extra` adds container settings (web address, worker pool)."""
    return {
        "AMQP_URI": settings.amqp_uri,
        RPC_EXCHANGE_CONFIG_KEY: exchange_name(settings.prefix),
        PREFIX_KEY: settings.prefix,
        QUEUE_TYPE_KEY: settings.queue_type,
        CELL_KEY: settings.cell,
        "serializer": "json",
        **extra,
    }


def _prefix(config: dict) -> str:
    """The prefix of a nameko configuration built by nameko_config; anything else is refused, so a
    hand-made configuration cannot quietly fall back to nameko's shared names."""
    prefix = config.get(PREFIX_KEY)
    if not prefix or config.get(RPC_EXCHANGE_CONFIG_KEY) != exchange_name(prefix):
        raise RuntimeError("this nameko configuration does not carry CONSULT_PREFIX and its RPC exchange: "
                           "build it with services.common.rpc.nameko_config")
    return prefix


def _queue_type(config: dict) -> str:
    """The queue type of a nameko configuration built by nameko_config (refused otherwise, as the
    prefix is: a hand-made configuration would declare a classic queue where quorum is wanted)."""
    queue_type = config.get(QUEUE_TYPE_KEY)
    if not queue_type:
        raise RuntimeError("this nameko configuration does not carry CONSULT_QUEUE_TYPE: "
                           "build it with services.common.rpc.nameko_config")
    return queue_type


def rpc_name(config: dict, service: str) -> str:
    """The name a service answers to over RPC from this process's configuration: its own cell's
    `<cell>-<service>` for a stage service of a cell (services/common/cells.py), else its own."""
    return cells.qualified(service, config.get(CELL_KEY))


def service_queue(config: dict, service: str, cell=cells.OWN) -> Queue:
    """A service's RPC queue, bound with `<name>.*` (what callers publish; the name in its cell:
    `rpc_name`): durable, of the deployment's queue type, with the event bus's arguments for it (a
    quorum queue's delivery limit; classic: none, as nameko always declared it, so a classic
    deployment redeclares its queues unchanged). Its RPC consumer declares it, and
    `bus.check_broker` checks it at start."""
    name = rpc_name(config, service) if cell is cells.OWN else cells.qualified(service, cell)
    return Queue(
        service_queue_name(_prefix(config), name),
        exchange=nameko_rpc.get_rpc_exchange(config),
        routing_key=f"{name}.*",
        durable=True,
        queue_arguments=bus.queue_arguments(_queue_type(config), single_active_consumer=False),
    )


def service_queues(settings: Settings) -> list[Queue]:
    """The RPC queue of every service that serves RPC, as their consumers declare them: the
    platform's once, a stage's in every cell this process deals with (cells.served)."""
    config = nameko_config(settings)
    return [service_queue(config, service, cell) for service in SERVING
            for cell in (cells.served(settings) if cells.in_cells(service) else (None,))
            + ((None,) if settings.cells and service in cells.SPANNING else ())]


# The kombu Connection that names each producer pool, one per set of publishing arguments.
_POOL_KEYS: dict[tuple, Connection] = {}


def pool_key(amqp_uri: str, confirms: bool = True, ssl=None, login_method=None,
             transport_options: dict | None = None) -> Connection:
    """The (never connected) kombu Connection that `kombu.pools.producers` finds a publisher's pool
    by, made once for each set of arguments. nameko's `get_producer` builds a new one for every
    message it publishes, which parses the broker URI again: about 40 us of each publish, and a
    vote publishes four or five messages (two requests, two replies, its event) across the stack
    (py-spy, 2026-12-06: 4 % of the gateway's and 7 % of the directory's Python time)."""
    options = dict(DEFAULT_TRANSPORT_OPTIONS if transport_options is None else transport_options,
                   confirm_publish=confirms)
    key = (amqp_uri, repr(ssl), login_method, repr(sorted(options.items())))
    conn = _POOL_KEYS.get(key)
    if conn is None:
        conn = _POOL_KEYS[key] = Connection(amqp_uri, transport_options=options, ssl=ssl,
                                            login_method=login_method)
    return conn


@contextmanager
def _get_producer(amqp_uri, confirms=True, ssl=None, login_method=None, transport_options=None):
    """nameko's `get_producer` (nameko/amqp/publish.py) with its pool found by `pool_key`: the same
    pool, the same producers, the same confirms."""
    with producers[pool_key(amqp_uri, confirms, ssl, login_method, transport_options)].acquire(block=True) as producer:
        yield producer


def share_pool_keys() -> None:
    """Make every nameko publisher of this process (RPC requests and replies, events) find its
    producer pool through `pool_key`. Called once by the service runner, before the container starts."""
    nameko.amqp.publish.get_producer = _get_producer


class QueueConsumer(messaging.QueueConsumer):
    """nameko's queue consumer (the one connection of a service's RPC consumer and reply listener),
    surviving an ack or a requeue on a connection that has just died.

    nameko ignores amqp's ConnectionError there, but not the socket's own (ConnectionResetError,
    BrokenPipeError: a broker node stopped or killed under the connection). Raised from a worker's
    ack, it killed the service's container and its process; raised from the reply listener, which
    acked a reply before handing it over, it lost the reply, and the caller waited out its timeout.

    Ignoring it is safe. The broker returns every message unacked on a dead connection to its queue
    (a requeue is what the broker does anyway). An RPC request whose ack was lost is delivered again
    with its correlation id, and services.common.idempotency answers a command that recorded
    something with the reply it stored before this ack (the request key is that correlation id, or
    the client's Idempotency-Key): it is not executed twice. A query, or a refusal that recorded
    nothing, is simply run again. Replies are taken without acks (`get_consumers`); a reply that
    comes twice finds its correlation id no longer awaited, and nameko drops it."""

    def get_consumers(self, consumer_cls, channel):
        """nameko's consumers, one per provider, except that replies are taken without acks.

        A reply queue is one process's own (named by a uuid of its proxy, non-durable, expiring
        without it): a reply the broker has handed over is either heard by that process or
        meaningless, so confirming it back is work for nothing -- one frame from this process and
        one settlement in the broker per RPC call, two per vote (the sign-in and the command).
        RabbitMQ's own direct reply-to takes replies the same way. Requests keep their acks: a
        request taken and not answered must go back to its queue."""
        for provider in self._providers:
            replies = isinstance(provider, nameko_rpc.ReplyListener)
            consumer = consumer_cls(queues=[provider.queue], callbacks=[partial(self.handle_message, provider)],
                                    accept=self.accept, no_ack=replies)
            if not replies:
                consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def ack_message(self, message):
        self._unless_gone(super().ack_message, message, "acknowledged", "delivers it again")

    def requeue_message(self, message):
        self._unless_gone(super().requeue_message, message, "requeued", "requeues it itself")

    @staticmethod
    def _unless_gone(settle, message, done: str, broker_does: str) -> None:
        try:
            settle(message)
        except OSError as exc:
            log.warning("an RPC message could not be %s, its connection is gone (%s: %s): the broker %s",
                        done, type(exc).__name__, exc, broker_does)

    def on_connection_error(self, exc, interval):
        """nameko's warning, with every URL's password hidden (nameko's hides the first one's only,
        and CONSULT_AMQP_URI may list a cluster's nodes)."""
        log.warning("Error connecting to broker at %s (%s). Retrying in %s seconds.",
                    bus.redact(self.amqp_uri), exc, interval)


class RpcConsumer(nameko_rpc.RpcConsumer):
    """nameko's RpcConsumer with the service queue of `service_queue` (nameko's setup, with only
    the queue changed) and the queue consumer above."""

    queue_consumer = QueueConsumer()

    def setup(self):
        if self.queue is None:
            self.queue = service_queue(self.container.config, self.container.service_name)
            self.queue_consumer.register_provider(self)
            self._registered = True

    def get_provider_for_method(self, routing_key):
        """nameko's lookup, with the service's name in its cell (`rpc_name`), which callers use."""
        name = rpc_name(self.container.config, self.container.service_name)
        for provider in self._providers:
            if f"{name}.{provider.method_name}" == routing_key:
                return provider
        raise nameko_rpc.MethodNotFound(routing_key.split(".")[-1])

    def handle_result(self, message, result, exc_info):
        """nameko's reply and ack, except that a reply that cannot be sent puts the request back.

        nameko runs this at the end of the worker's thread, and whatever it raises kills the
        service's container, and with it the process: one reply published while a broker node went
        away (kombu gives up after nameko's three tries, or the channel is closed under the publish)
        took a whole service down until someone restarted it. Instead the request is requeued
        unacked. It comes again (to this instance or another) with its correlation id, so a command
        that recorded something is answered its stored reply (services.common.idempotency), and a
        query or a refusal is simply run again. The caller waits meanwhile, or times out and
        retries with the same key."""
        try:
            return super().handle_result(message, result, exc_info)
        except Exception as exc:  # noqa: BLE001 - never let a lost reply kill the container
            log.warning("the reply to %s could not be sent (%s: %s): the request is put back to be answered again",
                        message.delivery_info.get("routing_key", "an RPC request"), type(exc).__name__, exc)
            try:
                self.queue_consumer.requeue_message(message)  # a dead connection's is the broker's to do
            except Exception:  # noqa: BLE001 - unacked all the same: the broker redelivers it when the channel goes
                log.exception("an RPC request whose reply was lost could not be requeued")
            return result, exc_info


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()

    def unpack_message_headers(self, message):
        """nameko's context data, plus the request's correlation id, which a redelivery of the same
        request keeps (services.common.idempotency keys a command by it), and whether the broker has
        delivered it before (only then, or with a client's key, is a stored reply looked for). Set
        here for every incoming request, so a value propagated from an upstream call never stands
        for this one."""
        data = super().unpack_message_headers(message)
        data[DELIVERY_ID] = message.properties.get("correlation_id")
        data[REDELIVERED] = bool(message.delivery_info.get("redelivered"))
        return data


rpc = Rpc.decorator


class _PrefixedReplyQueue:
    """nameko's ReplyListener.setup with the reply queue named under the prefix, and non-durable
    (nameko's is durable): a reply queue whose node died is declared again on a live node by the
    reconnecting consumer, where a durable one would be "home node down" until that node is back.
    It stays classic whatever CONSULT_QUEUE_TYPE says: one proxy's queue, which a quorum queue
    could not be (those are always durable and never expire)."""

    def setup(self):
        config = self.container.config
        reply_id = str(uuid.uuid4())
        self.routing_key = reply_id
        self.queue = Queue(
            reply_queue_name(_prefix(config), self.container.service_name, reply_id),
            exchange=nameko_rpc.get_rpc_exchange(config),
            routing_key=reply_id,
            durable=False,
            queue_arguments={"x-expires": nameko_rpc.RPC_REPLY_QUEUE_TTL},
        )
        self.queue_consumer.register_provider(self)


class ReplyListener(_PrefixedReplyQueue, nameko_rpc.ReplyListener):
    """Replies to a service's RpcProxy calls."""

    queue_consumer = QueueConsumer()


class RpcProxy(nameko_rpc.RpcProxy):
    """A service's proxy to another: a stage service in the caller's own cell (`rpc_name`)."""

    rpc_reply_listener = ReplyListener()

    def get_dependency(self, worker_ctx):
        return nameko_rpc.ServiceProxy(worker_ctx, rpc_name(self.container.config, self.target_service),
                                       self.rpc_reply_listener, **self.options)


def in_cell(proxy: nameko_rpc.ServiceProxy, service: str, cell: str | None,
            expiration: float | None = None) -> nameko_rpc.ServiceProxy:
    """The proxy of a worker (any of its RpcProxy dependencies) turned to `service` in `cell`: the
    gateway's way to a community's cell. It shares the worker's context (the call's idempotency
    key, the caller's identity) and its reply queue, which hears replies from every cell: all cells
    answer on the one RPC exchange. `expiration` (seconds) replaces the proxy's: a request left in
    its queue past it is dropped by the broker, not carried out after its caller gave up."""
    options = proxy.options if expiration is None else {**proxy.options, "expiration": expiration}
    return nameko_rpc.ServiceProxy(proxy.worker_ctx, cells.qualified(service, cell), proxy.reply_listener,
                                   **options)


class StandaloneReplyListener(_PrefixedReplyQueue, SingleThreadedReplyListener):
    """Replies to a standalone proxy's calls (CLI, a service's managed threads, tests)."""


class Listening:
    """Whether anyone takes a service's RPC requests now: its queue's consumer count, asked of the
    broker at most once per `ttl` seconds per queue (a passive declare on a connection of its own).

    Without it a request to a stopped service waits in its queue for the caller's whole timeout
    (the gateway's 30 s), holding one of the gateway's ten workers; residents of a stopped cell who
    retry would then take every worker and stall the other cells' communities too. And the request
    stays queued: the service, back an hour later, would execute a command its sender was told had
    failed. So a caller asks first and, told no one listens for `grace` seconds, answers "not
    running" without publishing anything. The grace covers a consumer reconnecting (a broker node
    failing over, an instance restarting), which used to cost the request nothing but a short wait.
    A queue that does not exist has no consumer. When the broker cannot be asked, the answer is
    yes: the call then goes ahead and fails (or not) as it would have."""

    NO_TTL = 0.25  # a "no" is asked again sooner: the grace waits for it to turn
    GRACE_S = 1.0  # what the gateway and the CLI give a service without a consumer to get one

    def __init__(self, settings: Settings, ttl: float = 1.0):
        import threading

        self.settings, self.ttl = settings, ttl
        self._known: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()  # one question at a time on the one channel (eventlet-patched)
        self._conn = self._channel = None

    def hears(self, name: str, grace: float = 0.0) -> bool:
        """Whether the service named `name` (as on the broker: `c2-proposals`) has a consumer, or
        gets one within `grace` seconds."""
        import time

        deadline = time.monotonic() + grace
        while True:
            heard = self._heard(service_queue_name(self.settings.prefix, name))
            left = deadline - time.monotonic()
            if heard or left <= 0:
                return heard
            time.sleep(min(self.NO_TTL, left))

    def _heard(self, queue: str) -> bool:
        import time

        def fresh(known) -> bool:
            return known is not None and time.monotonic() - known[0] < (self.ttl if known[1] else self.NO_TTL)

        known = self._known.get(queue)
        if fresh(known):
            return known[1]
        with self._lock:
            known = self._known.get(queue)
            if fresh(known):
                return known[1]
            heard = self._ask(queue)
            self._known[queue] = (time.monotonic(), heard)
            return heard

    ASK_TIMEOUT_S = 2.0  # a broker that does not answer (a cluster without a majority) holds no caller longer

    def _ask(self, queue: str) -> bool:
        import eventlet
        from amqp.exceptions import NotFound

        timeout = eventlet.Timeout(self.ASK_TIMEOUT_S)  # fires in a green process (the gateway's) only
        try:
            if self._channel is None:
                self._conn = self._conn or bus.connect(self.settings)
                self._channel = self._conn.channel()
            return self._channel.queue_declare(queue, passive=True).consumer_count > 0
        except NotFound:  # never declared: no service of that name has ever started
            self._channel = None  # the broker closed the channel with the 404
            return False
        except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - cannot be asked: let the call go ahead
            if isinstance(exc, eventlet.Timeout) and exc is not timeout:
                raise  # the caller's own timeout
            log.warning("could not ask the broker whether %s has a consumer (%s): calling it anyway",
                        queue, type(exc).__name__)
            self.close()
            return True
        finally:
            timeout.cancel()

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: BLE001 - already gone
                pass


class ListeningProvider(DependencyProvider):
    """A service's Listening, as a nameko dependency (the gateway's `listening`)."""

    def setup(self):
        from .config import load

        self.listening = Listening(load())

    def stop(self):
        self.listening.close()

    def kill(self):
        self.listening.close()

    def get_dependency(self, worker_ctx):
        return self.listening


def cluster_proxy(settings: Settings, timeout: float | None = 60) -> ClusterRpcProxy:
    """A standalone proxy to every service of this deployment: `with cluster_proxy(s) as proxy:
    proxy.communities.ping()`, or start() it and stop() it when done. It addresses services by
    the name given: a stage service of a cell as `proxy[cells.qualified(service, cell)]` (see
    `target`)."""
    return ClusterRpcProxy(nameko_config(settings), timeout=timeout, reply_listener_cls=StandaloneReplyListener)


def target(proxy, settings: Settings, service: str, cell=cells.OWN):
    """`service` on a standalone proxy (cluster_proxy): in this process's own cell, or in `cell`."""
    return proxy[cells.qualified(service, cells.resolve(settings, cell))]


def check_container(container) -> None:
    """Refuse a service that declares an RPC entrypoint or proxy with nameko's own classes: its
    queue would be named outside the prefix and shared with every other deployment on the vhost."""
    for extension in container.shared_extensions.values():
        if type(extension) in (nameko_rpc.RpcConsumer, nameko_rpc.ReplyListener):
            raise RuntimeError(f"{container.service_name} uses nameko.rpc's {type(extension).__name__}: "
                               "use services.common.rpc's rpc and RpcProxy, which name queues under CONSULT_PREFIX")


__all__ = ["rpc", "RpcProxy", "Listening", "ListeningProvider", "nameko_config", "cluster_proxy", "check_container", "exchange_name", "in_cell", "target",
           "rpc_name",
           "service_queue_name", "reply_queue_name", "service_queue", "service_queues", "QueueConsumer", "SERVING"]
