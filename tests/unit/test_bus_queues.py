"""How the event bus's queues are declared for each CONSULT_QUEUE_TYPE (services/common/bus.py),
checked without a broker on the declarations themselves; tests/integration/test_queue_types.py
checks them on RabbitMQ."""
from __future__ import annotations

import socket

import pytest
from amqp.exceptions import NotFound, PreconditionFailed

from services.common import bus, config, registry, rpc

QUORUM_CONSUMER = {"x-queue-type": "quorum", "x-single-active-consumer": True, "x-delivery-limit": bus.DELIVERY_LIMIT}
QUORUM_PLAIN = {"x-queue-type": "quorum", "x-delivery-limit": bus.DELIVERY_LIMIT}


def settings(**env: str) -> config.Settings:
    return config.load({"CONSULT_PREFIX": "city", **env})


class RecordingChannel:
    """Takes kombu's declarations and keeps each queue's (durable, exclusive, auto_delete, arguments).
    `existing`: queues the broker holds already (name -> the broker's refusal of our declaration, or
    None), for passive declarations; `refuse`: the broker's answer to every queue declaration."""

    def __init__(self, refuse: str | None = None, existing: dict | None = None):
        self.queues: dict[str, tuple] = {}
        self.refuse = refuse
        self.existing = existing or {}
        self.passive: list[str] = []
        self.bound: dict[str, set[str]] = {}  # queue -> its routing keys, as declared and unbound
        self.unbound: dict[str, set[str]] = {}

    def prepare_queue_arguments(self, arguments, **_):
        return arguments

    def exchange_declare(self, exchange, **_):
        pass

    def queue_declare(self, queue, durable=False, exclusive=False, auto_delete=False, arguments=None,
                      passive=False, **_):
        if passive:
            self.passive.append(queue)
            if queue not in self.existing and queue not in self.queues:
                raise NotFound(f"Queue.declare: (404) NOT_FOUND - no queue '{queue}' in vhost '/'", (50, 10), 404)
            return queue, 0, 0
        refusal = self.refuse or self.existing.get(queue)
        if refusal:
            raise PreconditionFailed(refusal, (50, 10), 406)
        self.queues[queue] = (durable, exclusive, auto_delete, dict(arguments or {}))
        return queue, 0, 0

    def queue_bind(self, queue, exchange, routing_key="", **_):
        self.bound.setdefault(queue, set()).add(routing_key)

    def queue_unbind(self, queue, exchange, routing_key="", **_):
        self.bound.setdefault(queue, set()).discard(routing_key)
        self.unbound.setdefault(queue, set()).add(routing_key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeConnection:
    """What check_broker uses of a kombu Connection, all on one RecordingChannel."""

    def __init__(self, channel: RecordingChannel, alternates: int = 0):
        self.default_channel = channel
        self.alt = [f"amqp://u:p@h{i}/" for i in range(alternates)]
        self.ensured: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def channel(self):
        return self.default_channel

    def ensure_connection(self, **kwargs):
        self.ensured = kwargs

    def release(self):
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


def test_a_stream_that_reads_votes_and_supports_from_the_log_is_bound_to_every_other_type_only():
    """registry.FROM_LOG: actions' queue for the decisions log gets each decisions type but votes,
    and a queue an earlier version bound to everything (`decisions.#`) loses that binding."""
    from services import contracts

    channel = RecordingChannel()
    bus.declare_for_consumer(channel, settings(), "actions")
    types = {c.type for c in contracts.EVENTS.by_source["decisions"]}
    assert {"VoteCast", "VoteChanged", "BallotOpened", "ResolutionFinal"} <= types
    assert channel.bound["city.actions.decisions"] == {f"decisions.{t}.#" for t in types - {"VoteCast", "VoteChanged"}}
    assert channel.unbound["city.actions.decisions"] == {"decisions.#", "decisions.VoteCast.#",
                                                         "decisions.VoteChanged.#"}
    assert channel.bound["city.actions.communities"] == {"communities.#"}, "a stream taken whole"
    assert "city.actions.communities" not in channel.unbound
    audit = RecordingChannel()
    bus.declare_for_consumer(audit, settings(CONSULT_CELLS="c1", CONSULT_CELL="c1"), "audit")
    assert audit.bound["city.c1-audit.c1-decisions"] == {"c1-decisions.#"}, "the audit log keeps every event"


def test_every_type_read_from_the_log_is_one_its_source_publishes_to_a_consumer_of_it():
    from services import contracts

    for (consumer, source), kinds in registry.FROM_LOG.items():
        assert source in registry.SUBSCRIPTIONS[consumer] and consumer != "audit"
        assert kinds and kinds <= {c.type for c in contracts.EVENTS.by_source[source]}, (consumer, source)


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
    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: FakeConnection(channel))
    s = settings()
    bus.check_broker(s)
    assert channel.queues == declared(s)
    # The RPC service queues were looked for, none exists: none made (a call to a service that
    # never ran is still answered "not running" at once).
    assert channel.passive == [rpc.service_queue_name("city", service) for service in rpc.SERVING]


RPC_QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": bus.DELIVERY_LIMIT}


@pytest.mark.parametrize("queue_type, arguments", [("quorum", RPC_QUORUM), ("classic", {})])
def test_check_broker_declares_the_rpc_service_queues_that_exist(monkeypatch, queue_type, arguments):
    channel = RecordingChannel(existing={"city.rpc-communities": None, "city.rpc-gateway": None})
    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: FakeConnection(channel))
    bus.check_broker(settings(CONSULT_QUEUE_TYPE=queue_type))
    rpc_queues = {name: q for name, q in channel.queues.items() if ".rpc-" in name}
    assert rpc_queues == {"city.rpc-communities": (True, False, False, arguments),
                          "city.rpc-gateway": (True, False, False, arguments)}


def test_a_classic_rpc_service_queue_stops_a_quorum_process_with_the_setting_named(monkeypatch):
    says = CLASSIC_FOUND.replace("city.audit.communities", "city.rpc-proposals")
    channel = RecordingChannel(existing={"city.rpc-proposals": says})
    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: FakeConnection(channel))
    with pytest.raises(bus.QueueMismatch) as raised:
        bus.check_broker(settings())
    message = str(raised.value)
    assert "the queue city.rpc-proposals exists on RabbitMQ as a classic queue" in message
    assert "Set CONSULT_QUEUE_TYPE=classic to run this deployment" in message


def _refusing_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 nothing listens on (bound for a moment to find them, then closed)."""
    ports, sockets = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def test_check_broker_tries_every_node_of_a_cluster_and_names_none_of_their_passwords(monkeypatch):
    ports = _refusing_ports(3)
    uri = ";".join(f"amqp://guest:secret{i}@127.0.0.1:{port}/" for i, port in enumerate(ports))
    tried = []
    connect = bus.connect

    def counting(s, confirm=False):
        conn = connect(s, confirm)
        factory = conn._connection_factory

        def attempt():
            tried.append(conn.port)
            return factory()

        conn._connection_factory = attempt
        return conn

    monkeypatch.setattr(bus, "connect", counting)
    with pytest.raises(bus.BrokerUnavailable) as raised:
        bus.check_broker(settings(CONSULT_AMQP_URI=uri))
    assert tried == ports  # each node once, in order, with no wait between them
    message = str(raised.value)
    assert "secret" not in message and "guest" not in message
    assert all(f"127.0.0.1:{port}" in message for port in ports)


def test_a_single_url_is_still_tried_twice(monkeypatch):
    conn = FakeConnection(RecordingChannel())
    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: conn)
    bus.check_broker(settings())
    assert conn.ensured["max_retries"] == 1
    three = FakeConnection(RecordingChannel(), alternates=3)
    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: three)
    bus.check_broker(settings())
    assert three.ensured["max_retries"] == 2 and three.ensured["timeout"] >= 3 * bus.CONNECT_TIMEOUT_S


def test_redact_hides_the_credentials_of_every_url():
    assert bus.redact("amqp://guest:pw@h1:5672/v") == "amqp://***@h1:5672/v"
    cluster = "amqp://u:p1@h1:5681/;amqp://u:p2@h2:5682/;amqp://u:p@3@h3:5683/"
    assert bus.redact(cluster) == "amqp://***@h1:5681/;amqp://***@h2:5682/;amqp://***@h3:5683/"
    assert bus.redact("amqp://h1:5672/") == "amqp://h1:5672/"


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


def test_consult_dlq_meets_a_queue_of_the_other_type_with_the_same_line(monkeypatch):
    """`consult dlq` declares the parked and rejected queues through bus.declare: a classic one met
    with CONSULT_QUEUE_TYPE=quorum is the bus's clear line and exit status 3, not amqp's 406."""
    from services.cli import dlq
    from services.cli.rpc import CliError

    says = CLASSIC_FOUND.replace("city.audit.communities", "city.actions.communities.parked")
    monkeypatch.setattr(bus, "connect", lambda s, confirm=False: FakeConnection(RecordingChannel(refuse=says)))
    for command in (dlq.list_parked, dlq.drop_rejected):
        with pytest.raises(CliError) as raised:
            command(settings())
        assert raised.value.code == 3
        assert "exists on RabbitMQ as a classic queue" in str(raised.value)
        assert "CONSULT_QUEUE_TYPE=classic" in str(raised.value)
