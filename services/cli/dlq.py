"""`consult dlq`: what is parked, and putting it back.

A parked message holds its (consumer, source) stream. A rejected one (undecodable, or no event of
its source's log) holds nothing: it is listed (`"rejected": true`) and can be dropped. Retry or resume moves it back to the
consumer's queue and empties the parked queue; the consumer sees the hold lifted, reads its
source's log from its tracked position and continues in order.
"""
from __future__ import annotations

import json

from services.common import bus, cells, registry
from services.common.config import Settings

from .rpc import CliError


PROJECTION = "projection"  # each source service's read model of its own log, which parks like a consumer


def _streams(settings: Settings):
    """(consumer, source, cell) of every stream that can hold parked messages: each cell's (with
    cells, `consult dlq` sees them all, or CONSULT_CELL's), and the directory's read model once."""
    served = cells.served(settings)
    for cell in served:
        for consumer, sources in sorted(registry.SUBSCRIPTIONS.items()):
            for source in sources:
                yield consumer, source, cell
    for source in registry.SOURCES:
        for cell in served if cells.in_cells(source) else (None,):
            yield PROJECTION, source, cell


def _where(settings: Settings, cell) -> dict:
    """The cell of a listed message, with cells."""
    return {"cell": cell} if settings.cells else {}


def _declare(channel, settings: Settings, queue):
    """A parked or rejected queue declared (and returned bound to the channel) through the bus, so
    that one of the other type is the bus's one clear line (bus.QueueMismatch), exit status 3 as
    every other command that finds the broker unusable, not amqp's 406."""
    try:
        return bus.declare(channel, settings, queue)
    except bus.QueueMismatch as exc:
        raise CliError(str(exc), 3) from None


def _browse(channel, name: str) -> list:
    messages = []
    while True:
        msg = channel.basic_get(name, no_ack=False)
        if msg is None:
            return messages
        messages.append(msg)


def list_parked(settings: Settings) -> list[dict]:
    out = []
    with bus.connect(settings) as conn:
        for consumer, source, cell in _streams(settings):
            channel = conn.channel()
            _declare(channel, settings, bus.parked_queue(settings, consumer, source, cell))
            for msg in _browse(channel, bus.parked_name(settings, consumer, source, cell)):
                headers = msg.headers or {}
                env = json.loads(msg.body)
                out.append({
                    "id": env["id"], "consumer": consumer, "source": source, "position": env["position"],
                    "type": env["type"], "community": env["community"], "error": headers.get("error"),
                    "parked_at": headers.get("parked_at"), **_where(settings, cell),
                })
            channel.close()  # unacknowledged: everything stays parked
            if consumer == PROJECTION:
                continue
            channel = conn.channel()
            _declare(channel, settings, bus.rejected_queue(settings, consumer, source, cell))
            for msg in _browse(channel, bus.rejected_name(settings, consumer, source, cell)):
                headers = msg.headers or {}
                out.append({
                    "id": (msg.properties or {}).get("message_id"), "consumer": consumer, "source": source,
                    "position": headers.get("position"), "type": None, "community": None,
                    "error": headers.get("error"), "parked_at": headers.get("rejected_at"), "rejected": True,
                    "body": msg.body[:500].decode("utf-8", "replace") if isinstance(msg.body, bytes)
                    else str(msg.body)[:500], **_where(settings, cell),
                })
            channel.close()
    return out


def drop_rejected(settings: Settings, consumer: str | None = None, source: str | None = None) -> int:
    """Delete the messages set aside as no event of their source's log (they hold nothing, and put
    back they would only be set aside again); returns how many."""
    dropped = 0
    with bus.connect(settings) as conn:
        for c, s, cell in _streams(settings):
            if c == PROJECTION or consumer and c != consumer or source and s != source:
                continue
            channel = conn.channel()
            queue = _declare(channel, settings, bus.rejected_queue(settings, c, s, cell))
            dropped += queue.purge() or 0
            channel.close()
    return dropped


def put_back(settings: Settings, event_id: str | None = None, consumer: str | None = None,
             source: str | None = None) -> list[dict]:
    """Move parked messages (one by id, or all of a stream, or all) back to their queues."""
    moved = []
    with bus.connect(settings, confirm=True) as conn:
        for c, s, cell in _streams(settings):
            if consumer and c != consumer or source and s != source:
                continue
            channel = conn.channel()
            for msg in _browse(channel, bus.parked_name(settings, c, s, cell)):
                env = json.loads(msg.body)
                if event_id and env["id"] != event_id:
                    continue
                if c != PROJECTION:  # a read model has no queue: it re-reads its log once the parked queue is empty
                    producer = conn.Producer(channel=channel)
                    producer.publish(msg.body, exchange="", routing_key=bus.queue_name(settings, c, s, cell),
                                     content_type="application/json", delivery_mode=2, message_id=env["id"])
                channel.basic_ack(msg.delivery_tag)
                moved.append({"id": env["id"], "consumer": c, "source": s, "position": env["position"],
                              **_where(settings, cell)})
            channel.close()
    if event_id and not moved:
        raise CliError(f"no parked message has the id {event_id} (see `consult dlq list`)")
    return moved
