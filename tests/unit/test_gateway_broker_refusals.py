"""A request the broker does not take -- nacked by a quorum queue that lost its majority, the
connection refused or lost under the publish -- is 503 problem+json at the gateway, as an RPC
timeout is: the client may retry (with its Idempotency-Key nothing is done twice). It used to be a
500 with an incident."""
from __future__ import annotations

import pytest
from amqp.exceptions import MessageNacked, RecoverableConnectionError
from kombu.exceptions import OperationalError
from nameko.exceptions import RemoteError

from services.common.errors import Unavailable
from services.gateway.service import GatewayService


class Proxy:
    def __init__(self, error: BaseException):
        self.error = error

    def authenticate(self, **kwargs):
        raise self.error


class Gateway:
    """What GatewayService._rpc uses of the service: the RPC proxy of the service it calls, the
    deployment's settings (no cells: services/common/cells.py), and whether it has a consumer."""

    def __init__(self, error: BaseException):
        from types import SimpleNamespace

        from services.common import config

        self.communities = Proxy(error)
        self.platform = SimpleNamespace(settings=config.load({}))
        self.listening = SimpleNamespace(hears=lambda name, grace=0.0: True)  # the service has a consumer


@pytest.mark.parametrize("error", [
    MessageNacked(),
    OperationalError("[Errno 111] Connection refused"),
    RecoverableConnectionError("connection already closed"),
    ConnectionResetError(104, "Connection reset by peer"),
])
def test_a_request_the_broker_did_not_take_is_503(error):
    with pytest.raises(Unavailable) as raised:
        GatewayService._rpc(Gateway(error), "communities", "authenticate", token="t")
    problem = raised.value.to_problem()
    assert problem["status"] == 503 and problem["code"] == "ServiceUnavailable"
    assert "communities" in problem["detail"] and type(error).__name__ in problem["detail"]


def test_anything_else_is_not_called_unavailable():
    for error in (RemoteError("KeyError", "a bug in the service"), ValueError("a bug here")):
        with pytest.raises(type(error)):
            GatewayService._rpc(Gateway(error), "communities", "authenticate", token="t")


def test_a_service_nobody_consumes_for_is_503_at_once_and_nothing_is_published():
    """A stopped service (a whole cell, during an outage): "not running" after a second's grace, not
    the RPC timeout's 30 s holding a gateway worker, and no request left in its queue."""
    gateway = Gateway(AssertionError("nothing may be published"))
    asked = []
    gateway.listening = type("Listening", (), {"hears": staticmethod(
        lambda name, grace=0.0: asked.append((name, grace)) or False)})()
    with pytest.raises(Unavailable) as raised:
        GatewayService._rpc(gateway, "communities", "authenticate", token="t")
    problem = raised.value.to_problem()
    assert problem["status"] == 503 and "the communities service is not running" in problem["detail"]
    from services.gateway.service import LISTEN_GRACE_S

    assert asked == [("communities", LISTEN_GRACE_S)] and LISTEN_GRACE_S <= 2  # seconds, not the 30 s timeout
