"""RabbitMQ topology: one topic exchange, one durable queue per (consumer, source), parked queues.

Every queue is declared with the same arguments by whoever touches it first (relay or consumer),
from the registry. Queues use single-active-consumer, so with several instances of a consumer
exactly one of them reads a source at a time and order per source holds.
"""
from __future__ import annotations

import socket

from kombu import Connection, Exchange, Queue

from . import registry
from .config import Settings

QUEUE_ARGS = {"x-single-active-consumer": True}


class BrokerUnavailable(RuntimeError):
    pass


def exchange(settings: Settings) -> Exchange:
    return Exchange(f"{settings.prefix}.events", type="topic", durable=True)


def queue_name(settings: Settings, consumer: str, source: str) -> str:
    return f"{settings.prefix}.{consumer}.{source}"


def parked_name(settings: Settings, consumer: str, source: str) -> str:
    return f"{settings.prefix}.{consumer}.{source}.parked"


def rejected_name(settings: Settings, consumer: str, source: str) -> str:
    return f"{settings.prefix}.{consumer}.{source}.rejected"


def consumer_queue(settings: Settings, consumer: str, source: str) -> Queue:
    return Queue(
        queue_name(settings, consumer, source),
        exchange=exchange(settings),
        routing_key=f"{source}.#",
        durable=True,
        queue_arguments=QUEUE_ARGS,
    )


def parked_queue(settings: Settings, consumer: str, source: str) -> Queue:
    return Queue(parked_name(settings, consumer, source), durable=True)


def rejected_queue(settings: Settings, consumer: str, source: str) -> Queue:
    """Messages a consumer received that are no event of the source's log (undecodable, forged):
    kept for an operator to look at (`consult dlq list`), never holding the stream."""
    return Queue(rejected_name(settings, consumer, source), durable=True)


def declare_for_source(channel, settings: Settings, source: str) -> None:
    exchange(settings)(channel).declare()
    for consumer in registry.consumers_of(source):
        consumer_queue(settings, consumer, source)(channel).declare()
        parked_queue(settings, consumer, source)(channel).declare()


def declare_for_consumer(channel, settings: Settings, consumer: str) -> None:
    exchange(settings)(channel).declare()
    for source in registry.SUBSCRIPTIONS.get(consumer, ()):
        consumer_queue(settings, consumer, source)(channel).declare()
        parked_queue(settings, consumer, source)(channel).declare()


def declare_all(settings: Settings) -> None:
    with connect(settings) as conn:
        channel = conn.default_channel
        for source in registry.SOURCES:
            declare_for_source(channel, settings, source)


def connect(settings: Settings, confirm: bool = False) -> Connection:
    options = {"confirm_publish": True} if confirm else {}
    return Connection(settings.amqp_uri, transport_options=options, connect_timeout=5, heartbeat=0)


def check_broker(settings: Settings) -> None:
    """One clear line if RabbitMQ cannot be reached."""
    try:
        with connect(settings) as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
    except (OSError, socket.error, Exception) as exc:  # noqa: BLE001 - any failure means "not reachable"
        raise BrokerUnavailable(
            f"RabbitMQ is not reachable at {redact(settings.amqp_uri)} ({exc.__class__.__name__}: {exc}). "
            "Start one with `rabbitmq-server -detached` (or `docker compose up -d rabbitmq`), "
            "or point CONSULT_AMQP_URI at yours."
        ) from None


def redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def parked_count(channel, settings: Settings, consumer: str, source: str) -> int:
    q = parked_queue(settings, consumer, source)(channel)
    _name, count, _consumers = q.queue_declare(passive=False)
    return count
