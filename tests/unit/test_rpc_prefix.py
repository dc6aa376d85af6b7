"""Every exchange and queue the platform declares carries CONSULT_PREFIX: RPC (service queues,
reply queues of services' proxies and of standalone proxies) as well as the event bus. Checked
without a broker, from the very objects that declare them."""
from __future__ import annotations

import importlib
from pathlib import Path

import nameko.rpc
import pytest
from nameko.containers import ServiceContainer

from services.common import bus, config, registry, rpc

# Containers get rpc.nameko_config, as the runner's configuration is built on it (the runner itself
# is not imported: that would monkey-patch this whole test process for eventlet).

ROOT = Path(__file__).resolve().parents[2]
# The web pages (services/web) are a client of the public API only (issue 14): no RPC to serve or call.
NO_RPC = {"web"}
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/service.py") if p.parent.name not in NO_RPC)


def test_the_web_pages_neither_serve_nor_call_rpc():
    from nameko.containers import ServiceContainer as Container

    from services.web.service import SERVICE

    container = Container(SERVICE, rpc.nameko_config(settings("t")))
    kinds = {type(e) for e in container.shared_extensions.values()}
    assert not any(issubclass(k, (nameko.rpc.RpcConsumer, nameko.rpc.ReplyListener)) for k in kinds), kinds
    web_sources = "\n".join(f.read_text() for f in (ROOT / "services" / "web").glob("*.py"))
    for stage in ("communities", "audit", "proposals", "deliberation", "decisions", "actions", "notifications",
                  "gateway"):
        assert f"services.{stage}" not in web_sources and f"from ..{stage}" not in web_sources, stage
    assert "RpcProxy" not in web_sources and "cluster_proxy" not in web_sources


def settings(prefix: str) -> config.Settings:
    return config.load({"CONSULT_PREFIX": prefix, "CONSULT_AMQP_URI": "amqp://guest:guest@127.0.0.1:1/x"})


class RecordingChannel:
    """Takes kombu's declarations and remembers the names (a channel that needs no broker)."""

    def __init__(self):
        self.exchanges: set[str] = set()
        self.queues: set[str] = set()

    def prepare_queue_arguments(self, arguments, **_):
        return arguments

    def exchange_declare(self, exchange, **_):
        self.exchanges.add(exchange)

    def queue_declare(self, queue, **_):
        self.queues.add(queue)
        return queue, 0, 0

    def queue_bind(self, queue, exchange, **_):
        self.exchanges.add(exchange)

    def queue_unbind(self, queue, exchange, **_):
        self.exchanges.add(exchange)


class NoBroker:
    """Stands in for a standalone proxy's polling consumer, which would connect on registration."""

    def register_provider(self, provider):
        self.provider = provider


def rpc_names(s: config.Settings) -> tuple[set[str], set[str]]:
    """(exchanges, queues) of every service's RPC entrypoints and RPC proxies, and of a standalone
    proxy, as their setup() names them."""
    exchanges, queues = set(), set()
    for service in SERVICES:
        cls = importlib.import_module(f"services.{service}.service").SERVICE
        container = ServiceContainer(cls, rpc.nameko_config(s))
        rpc.check_container(container)
        kinds = {type(e) for e in container.shared_extensions.values()}
        assert rpc.RpcConsumer in kinds, f"{service} serves RPC (ping, read_log) through the prefixed consumer"
        for extension in container.shared_extensions.values():
            if isinstance(extension, (nameko.rpc.RpcConsumer, nameko.rpc.ReplyListener)):
                extension.setup()
                queues.add(extension.queue.name)
                exchanges.add(extension.queue.exchange.name)
    proxy = rpc.cluster_proxy(s)  # holds the container its listener refers to (weakly)
    standalone = proxy._reply_listener
    standalone.queue_consumer = NoBroker()
    standalone.setup()
    queues.add(standalone.queue.name)
    exchanges.add(standalone.queue.exchange.name)
    return exchanges, queues


def bus_names(s: config.Settings) -> tuple[set[str], set[str]]:
    channel = RecordingChannel()
    for source in registry.SOURCES:
        bus.declare_for_source(channel, s, source)
    for consumer in registry.SUBSCRIPTIONS:
        bus.declare_for_consumer(channel, s, consumer)
    return channel.exchanges, channel.queues


def all_names(prefix: str) -> set[str]:
    s = settings(prefix)
    rpc_exchanges, rpc_queues = rpc_names(s)
    bus_exchanges, bus_queues = bus_names(s)
    return rpc_exchanges | rpc_queues | bus_exchanges | bus_queues


def test_every_exchange_and_queue_carries_the_prefix():
    s = settings("cityA")
    rpc_exchanges, rpc_queues = rpc_names(s)
    assert rpc_exchanges == {"cityA.rpc"}
    assert {f"cityA.rpc-{service}" for service in SERVICES} <= rpc_queues
    # Services that call others (the gateway, the stages asking the directory) have a reply queue.
    assert any(q.startswith("cityA.rpc.reply-gateway-") for q in rpc_queues)
    assert any(q.startswith("cityA.rpc.reply-standalone_rpc_proxy-") for q in rpc_queues)
    bus_exchanges, bus_queues = bus_names(s)
    assert bus_exchanges == {"cityA.events"}
    assert "cityA.audit.communities" in bus_queues and "cityA.audit.communities.parked" in bus_queues
    names = rpc_exchanges | rpc_queues | bus_exchanges | bus_queues
    assert all(name.startswith("cityA.") for name in names), sorted(n for n in names if not n.startswith("cityA."))
    assert not any(name.startswith("nameko") or name.startswith("rpc") for name in names)


def test_two_prefixes_share_no_name():
    assert not all_names("cityA") & all_names("cityB")


def test_nameko_is_configured_with_the_prefixed_exchange():
    cfg = rpc.nameko_config(settings("cityA"))
    assert cfg["rpc_exchange"] == "cityA.rpc" and cfg["CONSULT_PREFIX"] == "cityA"
    assert nameko.rpc.get_rpc_exchange(cfg).name == "cityA.rpc"  # what nameko's callers and responders use


def test_a_configuration_without_the_prefix_is_refused():
    """A hand-made nameko configuration would fall back to the shared `nameko-rpc` exchange."""
    container = ServiceContainer(importlib.import_module("services.communities.service").SERVICE,
                                 {"AMQP_URI": "amqp://127.0.0.1:1/"})
    consumer = next(e for e in container.shared_extensions.values() if isinstance(e, rpc.RpcConsumer))
    with pytest.raises(RuntimeError, match="CONSULT_PREFIX"):
        consumer.setup()


def test_a_service_with_nameko_s_own_rpc_is_refused():
    class Plain:
        name = "plain"

        @nameko.rpc.rpc
        def ping(self):
            return "pong"

    with pytest.raises(RuntimeError, match="services.common.rpc"):
        rpc.check_container(ServiceContainer(Plain, rpc.nameko_config(settings("cityA"))))


def test_an_empty_prefix_means_the_default():
    assert config.load({"CONSULT_PREFIX": ""}).prefix == "consult"
