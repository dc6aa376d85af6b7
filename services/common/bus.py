"""RabbitMQ topology: one topic exchange, one durable queue per (consumer, source), parked queues.

Every queue is declared with the same arguments by whoever touches it first (relay or consumer),
from the registry. Consumer queues use single-active-consumer, so with several instances of a
consumer exactly one of them reads a source at a time and order per source holds.

Queues are quorum queues (replicated over a cluster's nodes) unless CONSULT_QUEUE_TYPE=classic
(`queue_arguments`), and so are the RPC service queues (services/common/rpc.py builds them with
`queue_arguments` too). Queues of one process alone stay classic whatever the setting: a quorum
queue can be neither exclusive nor auto-deleted, and these hold nothing that outlives their
process -- the gateway's revocation queue (services/gateway/auth_cache.py) and the RPC reply
queues (rpc.py: non-durable, deleted by x-expires).
"""
from __future__ import annotations

import re
import socket

from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Connection, Exchange, Queue, binding

from services import contracts

from . import cells, registry
from .cells import OWN
from .config import CLASSIC, QUORUM, Settings

DELIVERY_LIMIT = 100_000
"""How many times a quorum queue returns one message before the broker drops it (`x-delivery-limit`;
RabbitMQ 3.x sets none when a queue names none, 4.x sets 20).

A poison message never reaches it: our consumer takes a message once, retries a failing handler in
its own process (CONSULT_RETRY_DELAYS), then parks the message and acks it
(services/common/consumer.py). A message goes back to its queue, and the count rises, only when
(a) the consumer's process or connection dies while it holds it (one return each), (b) the stream
is held while it was being delivered (one return per hold), or (c) the consumer cannot read the
source's log to check it (the source is down): then it requeues it after a second, for as long as
the outage lasts -- at most one return a second. 100,000 is more than a day of (c), longer than any
outage the consumer-lag alert would leave unattended; 20 (4.x's default) would be 20 seconds.
Were it reached, nothing would be lost: the log, not the bus, is the truth, and the consumer's
catch-up reads the dropped event from the source's log (and parks it, if it is poison).

Parked and rejected queues get it too: `consult dlq list` reads their messages without taking
them, one return per listing, and 4.x's 20 would drop a parked message at the 21st listing.

It is part of every quorum queue's declaration, so it cannot change once queues exist (RabbitMQ
refuses a redeclaration with another value): a new limit needs the queues deleted (docs/architecture.md).
"""


class BrokerUnavailable(RuntimeError):
    pass


class QueueMismatch(BrokerUnavailable):
    """A queue of this deployment exists on the broker with other arguments than this process
    declares: classic queues of a deployment made before CONSULT_QUEUE_TYPE (or with
    CONSULT_QUEUE_TYPE=classic) met by a process that declares quorum ones, or the other way round.
    A BrokerUnavailable, so that the runner, `consult up` and the CLI stop with this one line as they
    do for a broker they cannot reach, instead of every relay and consumer retrying for ever."""


def queue_arguments(queue_type: str, single_active_consumer: bool = False) -> dict:
    """The arguments a durable queue of the platform is declared with. Classic queues keep exactly
    the arguments they were always declared with (none, or single-active-consumer), so a
    deployment on CONSULT_QUEUE_TYPE=classic redeclares its existing queues unchanged."""
    args = {"x-single-active-consumer": True} if single_active_consumer else {}
    if queue_type == QUORUM:
        return {"x-queue-type": QUORUM, **args, "x-delivery-limit": DELIVERY_LIMIT}
    if queue_type != CLASSIC:
        raise ValueError(f"no such queue type: {queue_type!r}")
    return args


def exchange(settings: Settings) -> Exchange:
    return Exchange(f"{settings.prefix}.events", type="topic", durable=True)


def source_key(settings: Settings, source: str, cell=OWN) -> str:
    """What the events of `source` are published under (the first word of their routing keys):
    the source's name in its cell (services/common/cells.py), `c1-proposals`, or the platform's
    `communities`."""
    return cells.qualified(source, cells.resolve(settings, cell))


def queue_name(settings: Settings, consumer: str, source: str, cell=OWN) -> str:
    """A (consumer, source) stream's queue: `<prefix>.<consumer>.<source>`, both in the consumer's
    cell (`c1-audit` following `c1-proposals`, or the platform's `communities`)."""
    cell = cells.resolve(settings, cell)
    return f"{settings.prefix}.{cells.qualified(consumer, cell)}.{cells.qualified(source, cell)}"


def parked_name(settings: Settings, consumer: str, source: str, cell=OWN) -> str:
    return f"{queue_name(settings, consumer, source, cell)}.parked"


def rejected_name(settings: Settings, consumer: str, source: str, cell=OWN) -> str:
    return f"{queue_name(settings, consumer, source, cell)}.rejected"


class StreamQueue(Queue):
    """A (consumer, source) queue, with the bindings an earlier version may have left that this one
    must not keep (`stale_keys`: `declare` removes them)."""

    attrs = Queue.attrs + (("stale_keys", tuple),)


def consumer_queue(settings: Settings, consumer: str, source: str, cell=OWN) -> StreamQueue:
    """Bound to every event of the source (`<source>.#`), or, where the consumer reads some types
    from the log instead (registry.FROM_LOG), to each of the source's other types (`<source>.<type>.#`),
    and unbound from the catch-all and from those types. A type the contracts do not know yet reaches
    such a consumer from the log too, at its next catch-up: late, never lost."""
    key, deferred = source_key(settings, source, cell), registry.read_from_log(consumer, source)
    common = dict(durable=True, queue_arguments=queue_arguments(settings.queue_type, single_active_consumer=True))
    name = queue_name(settings, consumer, source, cell)
    if not deferred:
        return StreamQueue(name, exchange=exchange(settings), routing_key=f"{key}.#", **common)
    taken = sorted({c.type for c in contracts.EVENTS.by_source[source]} - deferred)
    return StreamQueue(name, bindings=[binding(exchange(settings), routing_key=f"{key}.{t}.#") for t in taken],
                       stale_keys=(f"{key}.#", *(f"{key}.{t}.#" for t in sorted(deferred))), **common)


def parked_queue(settings: Settings, consumer: str, source: str, cell=OWN) -> Queue:
    return Queue(parked_name(settings, consumer, source, cell), durable=True,
                 queue_arguments=queue_arguments(settings.queue_type))


def rejected_queue(settings: Settings, consumer: str, source: str, cell=OWN) -> Queue:
    """Messages a consumer received that are no event of the source's log (undecodable, forged):
    kept for an operator to look at (`consult dlq list`), never holding the stream."""
    return Queue(rejected_name(settings, consumer, source, cell), durable=True,
                 queue_arguments=queue_arguments(settings.queue_type))


def declare(channel, settings: Settings, queue: Queue) -> Queue:
    """Declare one queue (and its binding) and return it bound to the channel; a queue that exists
    with other arguments is a QueueMismatch that says what to do. Start-up (check_broker), the
    relays and consumers (declare_for_source, declare_for_consumer) and `consult dlq` declare
    through it, so that a queue of the other type is that one clear line wherever they meet it."""
    bound = queue(channel)
    try:
        bound.declare()
    except PreconditionFailed as exc:
        raise QueueMismatch(mismatch_message(settings, queue.name, str(exc))) from None
    for key in getattr(bound, "stale_keys", None) or ():  # unbinding what is not bound is no error
        bound.unbind_from(exchange(settings), routing_key=key)
    return bound


def declare_if_present(conn: Connection, settings: Settings, queue: Queue) -> bool:
    """Declare a queue only if it exists already (returns whether it did): its arguments are
    checked against the broker's (a QueueMismatch if they differ), but no queue is made. For the
    RPC service queues: one that exists routes every call to a service, running or not, where none
    lets a caller hear at once that the service is not running (nameko's UnknownService). A queue
    whose node is down is not found either: its own consumer meets it at start. The broker logs
    each miss as a channel error (not_found): on a deployment's first start, until its services
    have declared their queues."""
    with conn.channel() as channel:
        try:
            queue(channel).queue_declare(passive=True)
        except NotFound:
            return False
    with conn.channel() as channel:
        declare(channel, settings, queue)
    return True


def mismatch_message(settings: Settings, name: str, broker_says: str) -> str:
    found = re.search(r"current is (?:none|the value '(\w+)')", broker_says)
    if "'x-queue-type'" in broker_says and found:
        existing = found.group(1) or CLASSIC
        return (f"the queue {name} exists on RabbitMQ as a {existing} queue, but CONSULT_QUEUE_TYPE={settings.queue_type} "
                f"declares it {settings.queue_type}. Set CONSULT_QUEUE_TYPE={existing} to run this deployment on "
                f"its {existing} queues, or move it to {settings.queue_type} queues: stop the platform, put back "
                "or drop what `consult dlq list` shows, delete the deployment's queues and start it again "
                "(docs/architecture.md, \"Queues\").")
    return (f"the queue {name} exists on RabbitMQ with other arguments than this version declares "
            f"(CONSULT_QUEUE_TYPE={settings.queue_type}): {broker_says}. See docs/architecture.md, \"Queues\".")


def declare_for_source(channel, settings: Settings, source: str) -> None:
    """The queues of every consumer of `source`, before its relay publishes: in the source's own
    cell, and for the directory's log in every cell (cells.consumer_cells)."""
    exchange(settings)(channel).declare()
    for cell in cells.consumer_cells(settings, source):
        for consumer in registry.consumers_of(source):
            declare(channel, settings, consumer_queue(settings, consumer, source, cell))
            declare(channel, settings, parked_queue(settings, consumer, source, cell))


def declare_for_consumer(channel, settings: Settings, consumer: str) -> None:
    exchange(settings)(channel).declare()
    for source in registry.SUBSCRIPTIONS.get(consumer, ()):
        declare(channel, settings, consumer_queue(settings, consumer, source))
        declare(channel, settings, parked_queue(settings, consumer, source))


def declare_all(settings: Settings) -> None:
    """Every queue of every (consumer, source) stream: its queue, parked and rejected queues. A
    queue that exists with other arguments (classic where quorum is asked for) stops it with a
    QueueMismatch."""
    with connect(settings) as conn:
        _declare_streams(conn.default_channel, settings)


def _declare_streams(channel, settings: Settings) -> None:
    exchange(settings)(channel).declare()
    for cell in cells.served(settings):
        for consumer, sources in registry.SUBSCRIPTIONS.items():
            for source in sources:
                for queue in (consumer_queue, parked_queue, rejected_queue):
                    declare(channel, settings, queue(settings, consumer, source, cell))


CONNECT_TIMEOUT_S = 5  # what `connect` gives one URL to answer


def connect(settings: Settings, confirm: bool = False, heartbeat: float = 0) -> Connection:
    """`heartbeat` seconds: for a connection that must know it is alive while idle (the gateway's
    revocation listener); the caller then calls `heartbeat_check()` at least twice as often."""
    options = {"confirm_publish": True} if confirm else {}
    return Connection(settings.amqp_uri, transport_options=options, connect_timeout=CONNECT_TIMEOUT_S,
                      heartbeat=heartbeat)


def check_broker(settings: Settings) -> None:
    """One clear line if RabbitMQ cannot be reached, or if the deployment's queues on it are not of
    the type this process declares (QueueMismatch). Every service process (runner), `consult up` and
    the CLI call it first, so a deployment whose queues were declared classic stops at start with
    the setting named, instead of its relays and consumers failing over and over. Declaring every
    stream's queues is what the relays do at start anyway; on existing queues it costs some 50 ms.
    The RPC service queues are checked too, those that exist (`declare_if_present`): a classic one
    met by a quorum process would otherwise stop the service's RPC consumer only once its container
    starts, inside nameko.

    CONSULT_AMQP_URI may list several nodes of a cluster separated by `;` (kombu's alternates):
    every one is tried before the broker counts as unreachable (a single URL twice, as always)."""
    from .rpc import service_queues  # rpc.py builds its queues on this module

    conn = None
    try:
        conn = connect(settings)
        urls = max(1, len(conn.alt))
        conn.ensure_connection(max_retries=max(1, urls - 1), timeout=CONNECT_TIMEOUT_S * urls)
    except (OSError, socket.error, Exception) as exc:  # noqa: BLE001 - any failure means "not reachable"
        if conn is not None:
            conn.release()
        raise BrokerUnavailable(
            f"RabbitMQ is not reachable at {redact(settings.amqp_uri)} ({exc.__class__.__name__}: {exc}). "
            "Start one with `rabbitmq-server -detached` (or `docker compose up -d rabbitmq-1 rabbitmq-2 rabbitmq-3`), "
            "or point CONSULT_AMQP_URI at yours."
        ) from None
    with conn:
        _declare_streams(conn.default_channel, settings)
        for queue in service_queues(settings):
            declare_if_present(conn, settings, queue)


def redact(uri: str) -> str:
    """The URI without its credentials, for a log line or a message: every URL of a `;`-separated
    list (CONSULT_AMQP_URI naming a cluster's nodes), and everything up to the last `@` of each (a
    password with an `@` left unencoded does not show either)."""
    return ";".join(_redact_one(url) for url in uri.split(";"))


def _redact_one(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def parked_count(channel, settings: Settings, consumer: str, source: str) -> int:
    q = parked_queue(settings, consumer, source)(channel)
    _name, count, _consumers = q.queue_declare(passive=False)
    return count
