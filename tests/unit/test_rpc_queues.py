"""How RPC queues are declared and consumed so that a service goes on answering while a node of a
RabbitMQ cluster is down (services/common/rpc.py): service queues of CONSULT_QUEUE_TYPE, reply
queues non-durable, a queue consumer that survives an ack on a dead connection. Checked without a
broker on the very objects that declare and consume; tests/reliability/test_rabbit_cluster.py
checks it on a three-node cluster."""
from __future__ import annotations

import importlib
import logging
from types import SimpleNamespace

import nameko.messaging
import nameko.rpc
import pytest
from kombu.exceptions import MessageStateError
from nameko.containers import ServiceContainer

from services.common import bus, config, registry, rpc

QUORUM_RPC = {"x-queue-type": "quorum", "x-delivery-limit": bus.DELIVERY_LIMIT}


def settings(**env: str) -> config.Settings:
    return config.load({"CONSULT_PREFIX": "city", "CONSULT_AMQP_URI": "amqp://guest:guest@127.0.0.1:1/x", **env})


def container(service: str, s: config.Settings) -> ServiceContainer:
    return ServiceContainer(importlib.import_module(f"services.{service}.service").SERVICE, rpc.nameko_config(s))


def extension(c: ServiceContainer, kind: type):
    return next(e for e in c.shared_extensions.values() if isinstance(e, kind))


def test_the_services_that_serve_rpc_are_those_with_an_rpc_consumer():
    """rpc.SERVING (what check_broker checks) is every service whose class has an RPC entrypoint."""
    serving = set()
    for service in registry.SERVICES:
        kinds = {type(e) for e in container(service, settings()).shared_extensions.values()}
        if rpc.RpcConsumer in kinds:
            serving.add(service)
    assert serving == set(rpc.SERVING) and "web" not in serving


@pytest.mark.parametrize("queue_type, arguments", [("quorum", QUORUM_RPC), ("classic", {})])
def test_every_service_queue_is_of_the_deployment_s_type_with_no_single_active_consumer(queue_type, arguments):
    s = settings(CONSULT_QUEUE_TYPE=queue_type)
    assert rpc.nameko_config(s)[rpc.QUEUE_TYPE_KEY] == queue_type
    for service in rpc.SERVING:
        c = container(service, s)  # kept: its extensions refer to it weakly
        consumer = extension(c, rpc.RpcConsumer)
        consumer.setup()
        queue = consumer.queue
        assert queue.name == f"city.rpc-{service}" and queue.routing_key == f"{service}.*"
        assert queue.durable and not queue.exclusive and not queue.auto_delete
        # the event bus's own arguments for the type (classic: none at all, as nameko declared them)
        assert queue.queue_arguments == arguments == bus.queue_arguments(queue_type), service
        assert "x-single-active-consumer" not in queue.queue_arguments  # a service's instances share its requests
    assert [q.name for q in rpc.service_queues(s)] == [f"city.rpc-{service}" for service in rpc.SERVING]
    assert all(q.queue_arguments == arguments for q in rpc.service_queues(s))


def test_a_configuration_without_the_queue_type_is_refused():
    cfg = {k: v for k, v in rpc.nameko_config(settings()).items() if k != rpc.QUEUE_TYPE_KEY}
    with pytest.raises(RuntimeError, match="CONSULT_QUEUE_TYPE"):
        rpc.service_queue(cfg, "communities")


def test_reply_queues_are_classic_and_non_durable_and_expire():
    """A reply queue whose node died must be declarable again on a live node: non-durable (a durable
    classic one is "home node down" until its node is back), and never a quorum queue, whatever
    CONSULT_QUEUE_TYPE says (one proxy's queue; x-expires deletes it once the proxy is gone)."""
    s = settings(CONSULT_QUEUE_TYPE="quorum")
    gateway = container("gateway", s)
    listener = extension(gateway, rpc.ReplyListener)
    listener.setup()
    proxy = rpc.cluster_proxy(s)  # holds the container its listener refers to (weakly)
    standalone = proxy._reply_listener
    standalone.queue_consumer = type("NoBroker", (), {"register_provider": lambda self, provider: None})()
    standalone.setup()
    for queue in (listener.queue, standalone.queue):
        assert queue.name.startswith("city.rpc.reply-")
        assert not queue.durable and not queue.exclusive and not queue.auto_delete
        assert queue.queue_arguments == {"x-expires": nameko.rpc.RPC_REPLY_QUEUE_TTL}


def test_services_and_their_proxies_consume_through_the_queue_consumer_that_survives_a_dead_connection():
    for service in rpc.SERVING:
        c = container(service, settings())
        consumers = [e for e in c.shared_extensions.values() if isinstance(e, nameko.messaging.QueueConsumer)]
        # one connection for the RPC consumer and the reply listener, as nameko has it, and it is ours
        assert [type(e) for e in consumers] == [rpc.QueueConsumer], service
        assert extension(c, rpc.RpcConsumer).queue_consumer is consumers[0]
        listeners = [e for e in c.shared_extensions.values() if isinstance(e, rpc.ReplyListener)]
        assert all(listener.queue_consumer is consumers[0] for listener in listeners), service


def test_replies_are_consumed_without_acks_and_requests_with_them_and_the_prefetch():
    c = container("decisions", settings())
    queue_consumer = extension(c, rpc.QueueConsumer)
    for kind in (rpc.RpcConsumer, rpc.ReplyListener):
        extension(c, kind).setup()  # each registers itself with the queue consumer
    made = []

    class Consumer:
        def __init__(self, **kwargs):
            self.kwargs, self.prefetch = kwargs, None
            made.append(self)

        def qos(self, prefetch_count):
            self.prefetch = prefetch_count

    consumers = list(queue_consumer.get_consumers(Consumer, channel=None))
    assert consumers == made and len(made) == 2
    by_queue = {m.kwargs["queues"][0].name: m for m in made}
    request = by_queue[rpc.service_queue_name("city", "decisions")]
    reply = next(m for name, m in by_queue.items() if name.startswith("city.rpc.reply-decisions-"))
    assert request.kwargs["no_ack"] is False and request.prefetch == queue_consumer.prefetch_count
    assert reply.kwargs["no_ack"] is True and reply.prefetch is None
    assert all(m.kwargs["accept"] == queue_consumer.accept for m in made)


class Channel:
    def __init__(self, connection=True):
        self.connection = connection


class Message:
    """A delivery whose ack or requeue fails as given."""

    def __init__(self, error: BaseException | None):
        self.channel = Channel()
        self.error = error
        self.calls = []

    def ack(self):
        self.calls.append("ack")
        if self.error:
            raise self.error

    def requeue(self):
        self.calls.append("requeue")
        if self.error:
            raise self.error


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"),
                                   BrokenPipeError(32, "Broken pipe"), OSError("Socket closed")])
def test_an_ack_or_requeue_on_a_dead_connection_is_not_an_error(error, caplog):
    """A broker node stopped or killed under the connection: the broker returns the message to its
    queue itself, and a redelivered request is answered its stored reply (services.common.idempotency).
    Before, the error killed the service's container, or lost the reply being acked."""
    consumer = rpc.QueueConsumer()
    with caplog.at_level(logging.WARNING, logger="services.common.rpc"):
        for ack in (consumer.ack_message, consumer.requeue_message):
            message = Message(error)
            ack(message)  # no exception
            assert message.calls == ["ack" if ack == consumer.ack_message else "requeue"]
    assert len(caplog.records) == 2 and "the broker" in caplog.text


def test_other_failures_of_an_ack_still_raise():
    consumer = rpc.QueueConsumer()
    with pytest.raises(MessageStateError):
        consumer.ack_message(Message(MessageStateError("Message already acknowledged")))
    with pytest.raises(RuntimeError):
        consumer.requeue_message(Message(RuntimeError("a bug")))
    # A connection already gone is nameko's own case: nothing is asked of it.
    gone = Message(ConnectionResetError())
    gone.channel.connection = None
    consumer.ack_message(gone)
    assert gone.calls == []


def test_the_reconnection_warning_names_no_password_of_any_node(caplog):
    cluster = "amqp://guest:pw1@127.0.0.1:5681/;amqp://guest:pw2@127.0.0.1:5682/;amqp://guest:pw3@127.0.0.1:5683/"
    c = container("communities", settings(CONSULT_AMQP_URI=cluster))
    consumer = extension(c, rpc.QueueConsumer)
    with caplog.at_level(logging.WARNING, logger="services.common.rpc"):
        consumer.on_connection_error(ConnectionRefusedError(111, "Connection refused"), 2)
    assert "Error connecting to broker" in caplog.text and "127.0.0.1:5683" in caplog.text
    assert not any(secret in caplog.text for secret in ("pw1", "pw2", "pw3"))


def test_a_redelivered_request_keeps_its_request_key():
    """What makes ignoring a lost ack safe: a redelivery carries the same correlation id, so the
    command's idempotency key (and its stored reply) is the same."""
    from services.common import idempotency

    class Delivered:
        properties = {"correlation_id": "c-1"}
        headers: dict = {}

        def __init__(self, redelivered: bool):
            self.delivery_info = {"redelivered": redelivered}

    entrypoint = rpc.Rpc()
    first = entrypoint.unpack_message_headers(Delivered(False))
    again = entrypoint.unpack_message_headers(Delivered(True))
    assert first[idempotency.DELIVERY_ID] == again[idempotency.DELIVERY_ID] == "c-1"
    keys = {idempotency.request_key(data, "decisions", "cast", (), {"ballot": "b"}) for data in (first, again)}
    assert len(keys) == 1 and None not in keys
    # only the redelivery looks for the stored reply of its first delivery
    assert (first[idempotency.REDELIVERED], again[idempotency.REDELIVERED]) == (False, True)
    assert not idempotency.may_be_repeated(first) and idempotency.may_be_repeated(again)


class Delivery(Message):
    """A request whose reply is sent by a responder that fails as given."""

    properties = {"content_type": "application/json", "reply_to": "r-1", "correlation_id": "c-1"}
    delivery_info = {"routing_key": "communities.check_token"}


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"),
                                   RuntimeError("publish refused: no channel")])
def test_a_reply_that_cannot_be_sent_puts_the_request_back_and_keeps_the_container(error, monkeypatch, caplog):
    """nameko sends the reply at the end of the worker's thread, where an exception kills the
    service's container: in CI one reply published as a broker node stopped took `communities` down
    for the rest of the cluster test. Now the request goes back to its queue, to be answered again."""
    c = container("communities", settings())
    consumer = extension(c, rpc.RpcConsumer)

    def fail(self, result, exc_info):
        raise error

    monkeypatch.setattr(nameko.rpc.Responder, "send_response", fail)
    message = Delivery(None)
    with caplog.at_level(logging.WARNING, logger="services.common.rpc"):
        assert consumer.handle_result(message, {"ok": 1}, None) == ({"ok": 1}, None)  # nothing raised
    assert message.calls == ["requeue"]  # not acked: back in the queue
    assert "could not be sent" in caplog.text and "communities.check_token" in caplog.text


def test_a_reply_sent_is_acked_as_nameko_does(monkeypatch):
    c = container("communities", settings())
    consumer = extension(c, rpc.RpcConsumer)
    monkeypatch.setattr(nameko.rpc.Responder, "send_response", lambda self, result, exc_info: (result, exc_info))
    message = Delivery(None)
    assert consumer.handle_result(message, 7, None) == (7, None)
    assert message.calls == ["ack"]


class Declaring:
    """A channel whose passive declares answer from `consumers` (a queue missing: 404)."""

    def __init__(self, consumers: dict):
        self.consumers, self.asked = consumers, []

    def queue_declare(self, queue, passive=False):
        from amqp.exceptions import NotFound

        assert passive
        self.asked.append(queue)
        if isinstance(self.consumers.get(queue), BaseException):
            raise self.consumers[queue]
        if queue not in self.consumers:
            raise NotFound(f"NOT_FOUND - no queue '{queue}'")
        return SimpleNamespace(queue=queue, message_count=0, consumer_count=self.consumers[queue])


def listening_on(channel, monkeypatch, ttl=1.0):
    s = settings()
    heard = rpc.Listening(s, ttl=ttl)
    opened = []

    class Conn:
        def channel(self):
            opened.append(1)
            return channel

        def release(self):
            pass

    monkeypatch.setattr(rpc.bus, "connect", lambda _settings: Conn())
    return heard, opened


def test_a_service_without_a_consumer_is_known_at_once_and_asked_at_most_once_a_second(monkeypatch):
    """What lets the gateway answer "not running" at once for a stopped cell's service instead of
    holding a worker for its 30 s timeout (services/common/rpc.py Listening)."""
    import time as clock

    channel = Declaring({"city.rpc-c1-proposals": 2, "city.rpc-c2-proposals": 0})
    heard, opened = listening_on(channel, monkeypatch)
    now = [1000.0]
    monkeypatch.setattr(clock, "monotonic", lambda: now[0])
    assert heard.hears("c1-proposals") and not heard.hears("c2-proposals")
    assert not heard.hears("c3-proposals")  # never declared: no service of that name ever started
    for _ in range(5):  # a "yes" is kept for the second, a "no" for a quarter of it
        heard.hears("c1-proposals"), heard.hears("c2-proposals")
    assert channel.asked == ["city.rpc-c1-proposals", "city.rpc-c2-proposals", "city.rpc-c3-proposals"]
    now[0] += rpc.Listening.NO_TTL
    assert heard.hears("c1-proposals") and not heard.hears("c2-proposals")
    assert channel.asked[3:] == ["city.rpc-c2-proposals"]
    channel.consumers["city.rpc-c2-proposals"] = 1  # the cell is back
    now[0] += rpc.Listening.NO_TTL
    assert heard.hears("c2-proposals") and channel.asked[-1] == "city.rpc-c2-proposals"
    assert len(opened) == 2  # the 404 closed the channel: a new one for the next question


def test_a_consumer_that_comes_back_within_the_grace_is_waited_for(monkeypatch):
    """A consumer reconnecting (a broker node failing over) costs a request a short wait, as it did
    before the check, not a 503; one that does not come back is "not running" after the grace."""
    channel = Declaring({"city.rpc-decisions": 0, "city.rpc-audit": 0})
    heard, _ = listening_on(channel, monkeypatch)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        channel.consumers["city.rpc-decisions"] = 1  # back while the caller waits
        clock.advance(seconds)

    clock = SimpleNamespace(t=0.0, advance=lambda s: setattr(clock, "t", clock.t + s))
    monkeypatch.setattr("time.monotonic", lambda: clock.t)
    monkeypatch.setattr("time.sleep", sleep)
    assert heard.hears("decisions", grace=1.0) and slept == [rpc.Listening.NO_TTL]
    slept.clear()
    assert not heard.hears("audit", grace=1.0)  # never back: refused once the grace is spent
    assert sum(slept) == pytest.approx(1.0)


def test_when_the_broker_cannot_be_asked_the_call_goes_ahead(monkeypatch, caplog):
    channel = Declaring({"city.rpc-c1-proposals": ConnectionResetError(104, "Connection reset by peer")})
    heard, _ = listening_on(channel, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="services.common.rpc"):
        assert heard.hears("c1-proposals")
    assert "calling it anyway" in caplog.text


def test_the_gateway_s_requests_expire_when_no_service_took_them_within_its_timeout():
    """A request left in a stopped service's queue is dropped by the broker once the gateway has
    answered 503, rather than carried out when the service comes back."""
    from services.gateway import service as gateway

    c = ServiceContainer(gateway.GatewayService, rpc.nameko_config(settings()))
    proxies = [d for d in c.dependencies if isinstance(d, rpc.RpcProxy)]
    assert {p.target_service for p in proxies} == set(gateway.TARGETS)
    assert all(p.options.get("expiration") == gateway.RPC_TIMEOUT_S for p in proxies)
