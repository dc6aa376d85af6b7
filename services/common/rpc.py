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
"""
from __future__ import annotations

import uuid

from kombu import Queue
from nameko import rpc as nameko_rpc
from nameko.constants import RPC_EXCHANGE_CONFIG_KEY
from nameko.standalone.rpc import ClusterRpcProxy, SingleThreadedReplyListener

from .config import Settings
from .idempotency import DELIVERY_ID

PREFIX_KEY = "CONSULT_PREFIX"  # the deployment's prefix, carried in nameko's configuration


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


class RpcConsumer(nameko_rpc.RpcConsumer):
    """nameko's RpcConsumer with the service queue named under the prefix (nameko's setup, with
    only the queue's name changed; the routing key stays `<service>.*`, which is what callers
    publish)."""

    def setup(self):
        if self.queue is None:
            config = self.container.config
            service = self.container.service_name
            self.queue = Queue(
                service_queue_name(_prefix(config), service),
                exchange=nameko_rpc.get_rpc_exchange(config),
                routing_key=f"{service}.*",
                durable=True,
            )
            self.queue_consumer.register_provider(self)
            self._registered = True


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()

    def unpack_message_headers(self, message):
        """nameko's context data, plus the request's correlation id, which a redelivery of the same
        request keeps (services.common.idempotency keys a command by it). Set here for every incoming
        request, so a value propagated from an upstream call never stands for this one."""
        data = super().unpack_message_headers(message)
        data[DELIVERY_ID] = message.properties.get("correlation_id")
        return data


rpc = Rpc.decorator


class _PrefixedReplyQueue:
    """nameko's ReplyListener.setup with the reply queue named under the prefix."""

    def setup(self):
        config = self.container.config
        reply_id = str(uuid.uuid4())
        self.routing_key = reply_id
        self.queue = Queue(
            reply_queue_name(_prefix(config), self.container.service_name, reply_id),
            exchange=nameko_rpc.get_rpc_exchange(config),
            routing_key=reply_id,
            queue_arguments={"x-expires": nameko_rpc.RPC_REPLY_QUEUE_TTL},
        )
        self.queue_consumer.register_provider(self)


class ReplyListener(_PrefixedReplyQueue, nameko_rpc.ReplyListener):
    """Replies to a service's RpcProxy calls."""


class RpcProxy(nameko_rpc.RpcProxy):
    rpc_reply_listener = ReplyListener()


class StandaloneReplyListener(_PrefixedReplyQueue, SingleThreadedReplyListener):
    """Replies to a standalone proxy's calls (CLI, a service's managed threads, tests)."""


def cluster_proxy(settings: Settings, timeout: float | None = 60) -> ClusterRpcProxy:
    """A standalone proxy to every service of this deployment: `with cluster_proxy(s) as proxy:
    proxy.communities.ping()`, or start() it and stop() it when done."""
    return ClusterRpcProxy(nameko_config(settings), timeout=timeout, reply_listener_cls=StandaloneReplyListener)


def check_container(container) -> None:
    """Refuse a service that declares an RPC entrypoint or proxy with nameko's own classes: its
    queue would be named outside the prefix and shared with every other deployment on the vhost."""
    for extension in container.shared_extensions.values():
        if type(extension) in (nameko_rpc.RpcConsumer, nameko_rpc.ReplyListener):
            raise RuntimeError(f"{container.service_name} uses nameko.rpc's {type(extension).__name__}: "
                               "use services.common.rpc's rpc and RpcProxy, which name queues under CONSULT_PREFIX")


__all__ = ["rpc", "RpcProxy", "nameko_config", "cluster_proxy", "check_container", "exchange_name",
           "service_queue_name", "reply_queue_name"]
