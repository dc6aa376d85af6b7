"""nameko's publishers find their producer pool through one kombu Connection per set of arguments
(services.common.rpc.pool_key), not one built for every message: the same pool, the same confirms,
and a message published through it still arrives."""
from __future__ import annotations

import uuid

import nameko.amqp.publish
import pytest
from kombu import Connection, Queue
from kombu.pools import producers
from nameko.amqp.publish import Publisher

from services.common import rpc
from tests.harness import AMQP_HOST

URI = f"amqp://guest:guest@{AMQP_HOST}/"


def test_equal_arguments_find_one_key_and_the_pool_nameko_would_find():
    first = rpc.pool_key(URI, True, None, None, {"max_retries": 3})
    assert rpc.pool_key(URI, True, None, None, {"max_retries": 3}) is first
    assert first.transport_options == {"max_retries": 3, "confirm_publish": True}
    # nameko's own key for the same arguments names the same pool
    nameko_key = Connection(URI, transport_options={"max_retries": 3, "confirm_publish": True})
    assert producers[nameko_key] is producers[first]


@pytest.mark.parametrize("other", [
    dict(confirms=False), dict(amqp_uri=URI + "other"), dict(transport_options={"max_retries": 1}),
    dict(login_method="PLAIN"), dict(ssl={"cert_reqs": 0}),
])
def test_different_arguments_find_another_key(other):
    base = dict(amqp_uri=URI, confirms=True, ssl=None, login_method=None, transport_options=None)
    assert rpc.pool_key(**{**base, **other}) is not rpc.pool_key(**base)


def test_an_unconfirmed_publisher_gets_an_unconfirmed_pool():
    assert rpc.pool_key(URI, False).transport_options["confirm_publish"] is False
    assert rpc.pool_key(URI, True).transport_options["confirm_publish"] is True


def test_a_message_published_through_the_shared_keys_arrives(monkeypatch):
    monkeypatch.setattr(nameko.amqp.publish, "get_producer", nameko.amqp.publish.get_producer)
    made = []
    real = rpc.Connection
    monkeypatch.setattr(rpc, "Connection", lambda *a, **k: made.append(1) or real(*a, **k))
    rpc._POOL_KEYS.clear()
    rpc.share_pool_keys()
    assert nameko.amqp.publish.get_producer is rpc._get_producer
    name = f"test-publish-pool-{uuid.uuid4().hex[:8]}"
    with Connection(URI) as conn:
        queue = Queue(name, routing_key=name, exclusive=True, durable=False)
        queue(conn.default_channel).declare()
        publisher = Publisher(URI)
        for n in range(3):
            publisher.publish({"n": n}, routing_key=name)  # the default exchange routes by queue name
        got = []
        for _ in range(3):
            message = queue(conn.default_channel).get(no_ack=True)
            got.append(message.payload if message is not None else None)
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len(made) == 1  # one key for three messages (nameko's own made one for each)
