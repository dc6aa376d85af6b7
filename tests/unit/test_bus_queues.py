"""How the event bus's queues are declared for each CONSULT_QUEUE_TYPE (services/common/bus.py),
checked without a broker on the declarations themselves; tests/integration/test_queue_types.py
checks them on RabbitMQ."""
from __future__ import annotations

import pytest
from amqp.exceptions import PreconditionFailed

from services.common import bus, config, registry

QUORUM_CONSUMER = {"x-queue-type": "quorum", "x-single-active-consumer": True, "x-delivery-limit": bus.DELIVERY_LIMIT}
QUORUM_PLAIN = {"x-queue-type": "quorum", "x-delivery-limit": bus.DELIVERY_LIMIT}


def settings(**env: str) -> config.Settings:
    return config.load({"CONSULT_PREFIX": "city", **env})


class RecordingChannel:
    """Takes kombu's declarations and keeps each queue's (durable, exclusive, auto_delete, arguments)."""

    def __init__(self, refuse: str | None = None):
        self.queues: dict[str, tuple] = {}
        self.refuse = refuse  # the broker's answer to every queue declaration, if it refuses them

    def prepare_queue_arguments(self, arguments, **_):
        return arguments

    def exchange_declare(self, exchange, **_):
        pass

    def queue_declare(self, queue, durable=False, exclusive=False, auto_delete=False, arguments=None, **_):
        if self.refuse:
            raise PreconditionFailed(self.refuse, (50, 10), 406)
        self.queues[queue] = (durable, exclusive, auto_delete, dict(arguments or {}))
        return queue, 0, 0

    def queue_bind(self, queue, exchange, **_):
        pass


def declared(s: config.Settings) -> dict[str, tuple]:
    channel = RecordingChannel()
    for source in registry.SOURCES:
        bus.declare_for_source(channel, s, source)
    for consumer in registry.SUBSCRIPTIONS:
        bus.declare_for_consumer(channel, s, consumer)
    for consumer, sources in registry.SUBSCRIPTIONS.items():  # what consumers and `consult dlq` declare
        for source in sources:
            bus.rejected_queue(s, consumer, source)(channel).declare()
    return channel.queues


def test_quorum_is_the_default_and_classic_is_chosen_by_the_setting():
    assert settings().queue_type == "quorum"
    assert settings(CONSULT_QUEUE_TYPE="classic").queue_type == "classic"
    assert settings(CONSULT_QUEUE_TYPE=" Quorum ").queue_type == "quorum"
    with pytest.raises(ValueError, match="CONSULT_QUEUE_TYPE"):
        settings(CONSULT_QUEUE_TYPE="stream")


def test_quorum_queues_keep_single_active_consumer_and_get_the_delivery_limit():
    queues = declared(settings())
    streams = [(c, s) for c, sources in registry.SUBSCRIPTIONS.items() for s in sources]
    assert len(queues) == 3 * len(streams)
    for consumer, source in streams:
        assert queues[f"city.{consumer}.{source}"] == (True, False, False, QUORUM_CONSUMER)
        assert queues[f"city.{consumer}.{source}.parked"] == (True, False, False, QUORUM_PLAIN)
        assert queues[f"city.{consumer}.{source}.rejected"] == (True, False, False, QUORUM_PLAIN)


def test_classic_queues_are_declared_exactly_as_before_quorum_queues_existed():
    """A deployment made before CONSULT_QUEUE_TYPE runs on with =classic: RabbitMQ refuses a
    redeclaration whose arguments differ in any way, so these must be the old ones to the letter."""
    queues = declared(settings(CONSULT_QUEUE_TYPE="classic"))
    for name, (durable, exclusive, auto_delete, arguments) in queues.items():
        assert durable and not exclusive and not auto_delete
        expected = {} if name.endswith((".parked", ".rejected")) else {"x-single-active-consumer": True}
        assert arguments == expected, name


def test_the_delivery_limit_outlasts_a_day_of_requeues_and_is_no_default_of_the_broker():
    """The consumer returns a message at most once a second while its source's log cannot be read
    (services/common/consumer.py: on_message sleeps a second before it requeues); a poison message
    is parked on the first delivery at which the log can be read. RabbitMQ 4 sets 20 when none is
    named: 20 seconds of an outage, and 20 listings of `consult dlq list`."""
    assert bus.DELIVERY_LIMIT >= 24 * 3600
    assert bus.queue_arguments("quorum")["x-delivery-limit"] == bus.DELIVERY_LIMIT != 20
    with pytest.raises(ValueError):
        bus.queue_arguments("lazy")


def test_declare_all_covers_every_stream_and_check_broker_declares_them(monkeypatch):
    channel = RecordingChannel()

    class Conn:
        default_channel = channel

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def ensure_connection(self, **_):
            pass

    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: Conn())
    s = settings()
    bus.check_broker(s)
    assert channel.queues == declared(s)


CLASSIC_FOUND = ("Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
                 "'city.audit.communities' in vhost '/': received the value 'quorum' of type 'longstr' but "
                 "current is none")
QUORUM_FOUND = ("Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
                "'city.audit.communities' in vhost '/': received none but current is the value 'quorum' of "
                "type 'longstr'")


@pytest.mark.parametrize("wanted, broker_says, existing", [
    ("quorum", CLASSIC_FOUND, "classic"),
    ("classic", QUORUM_FOUND, "quorum"),
])
def test_a_queue_of_the_other_type_stops_with_the_setting_named(wanted, broker_says, existing):
    s = settings(CONSULT_QUEUE_TYPE=wanted)
    with pytest.raises(bus.QueueMismatch) as raised:
        bus.declare_for_consumer(RecordingChannel(refuse=broker_says), s, "audit")
    message = str(raised.value)
    assert isinstance(raised.value, bus.BrokerUnavailable)  # the runner, `consult up` and the CLI stop on it
    assert f"exists on RabbitMQ as a {existing} queue" in message
    assert f"CONSULT_QUEUE_TYPE={existing} to run this deployment" in message
    assert "city.audit.communities" in message and "docs/architecture.md" in message


def test_other_differences_are_stopped_with_the_brokers_words():
    s = settings()
    says = ("Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue "
            "'city.audit.communities' in vhost '/': received '100000' but current is '20'")
    with pytest.raises(bus.QueueMismatch, match="x-delivery-limit.*current is '20'"):
        bus.declare_for_source(RecordingChannel(refuse=says), s, "communities")
