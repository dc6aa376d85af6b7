"""A request the broker does not take -- nacked by a quorum queue that lost its majority, the
connection refused or lost under the publish -- is 503 problem+json at the gateway, as an RPC
timeout is: the client may retry (with its Idempotency-Key nothing is done twice). It used to be a
500 with an incident."""
from __future__ import annotations

import time

import eventlet
import pytest
from amqp.exceptions import MessageNacked, RecoverableConnectionError
from kombu.exceptions import OperationalError
from nameko.exceptions import RemoteError

from services.common.errors import Unavailable
from services.gateway import service as gateway_service
from services.gateway.service import GatewayService


class Proxy:
    def __init__(self, error: BaseException):
        self.error = error

    def authenticate(self, **kwargs):
        raise self.error


@pytest.fixture(autouse=True)
def proxies_as_they_are(monkeypatch):
    """`_rpc` turns its RPC proxy to the service's cell, with the request's time left as the
    message's expiration (rpc.in_cell); here the fake proxy is called as it is, and what it was
    turned with is recorded."""
    turned = []

    def in_cell(proxy, service, cell, expiration=None):
        turned.append((service, cell, expiration))
        return proxy

    monkeypatch.setattr(gateway_service, "in_cell", in_cell)
    return turned


class Gateway:
    """What GatewayService._rpc uses of the service: the RPC proxy of the service it calls, the
    deployment's settings (no cells: services/common/cells.py), whether it has a consumer, and
    when the request's time is up (none: a call outside a request)."""

    deadline = None

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


class Slow:
    """A service that answers after `seconds` (an eventlet sleep: the gateway's timer can fire)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def authenticate(self, **kwargs):
        eventlet.sleep(self.seconds)
        return {"person": "p"}


def test_a_request_s_service_calls_share_one_budget(monkeypatch, proxies_as_they_are):
    """A request that checks a token and then sends a command answers 503 within the gateway's
    timeout, not within twice it (the client, and the web pages, give up at that timeout). Each
    call's request message expires when the request's time is up, so a command left in a queue is
    not carried out after the client was told 503."""
    monkeypatch.setattr(gateway_service, "RPC_TIMEOUT_S", 0.6)
    gateway = Gateway(AssertionError("unused"))
    gateway.deadline = time.monotonic() + gateway_service.RPC_TIMEOUT_S
    gateway.communities = Slow(0.4)
    started = time.monotonic()
    assert GatewayService._rpc(gateway, "communities", "authenticate", token="t") == {"person": "p"}
    gateway.communities = Slow(10)
    with pytest.raises(Unavailable) as raised:
        GatewayService._rpc(gateway, "communities", "authenticate", token="t")
    waited = time.monotonic() - started
    assert 0.55 <= waited < 0.95  # the request's 0.6 s, not 0.4 + 0.6
    problem = raised.value.to_problem()
    assert problem["status"] == 503 and "did not answer in time" in problem["detail"]
    first, second = (expiration for _, _, expiration in proxies_as_they_are)
    assert first == pytest.approx(0.6, abs=0.05) and second == pytest.approx(0.2, abs=0.1)
    # Spent: the next call is refused at once, and nothing is published.
    gateway.communities = Proxy(AssertionError("nothing may be published"))
    with pytest.raises(Unavailable) as raised:
        GatewayService._rpc(gateway, "communities", "authenticate", token="t")
    assert "did not answer this request within" in raised.value.to_problem()["detail"]
    assert len(proxies_as_they_are) == 2


def test_a_route_s_own_shorter_wait_is_its_own():
    """A route that waits less than the gateway would (the home page asks every stage, 5 s each)
    gets its own timeout back, not the gateway's 503 about a 30 s limit."""
    gateway = Gateway(AssertionError("unused"))
    gateway.communities = Slow(10)
    own = eventlet.Timeout(0.05)
    with pytest.raises(eventlet.Timeout) as raised:
        with own:
            GatewayService._rpc(gateway, "communities", "authenticate", token="t")
    assert raised.value is own


def test_the_gateway_s_503s_read_in_the_client_s_language():
    from services.common.problem_texts import localise

    with pytest.raises(Unavailable) as raised:
        GatewayService._rpc(Gateway(MessageNacked()), "communities", "authenticate", token="t")
    problem = raised.value.to_problem()
    zh, en = localise(problem, "zh-CN"), localise(problem, "en")
    assert zh["detail"] == "消息代理未接收发往服务 communities 的请求（MessageNacked）" and zh["title"] == "服务暂不可用"
    assert en["detail"] == "the message broker did not take the request for the communities service (MessageNacked)"


def test_the_web_pages_wait_for_the_gateway_s_own_answer():
    from services.web import api

    assert api.TIMEOUT_S > gateway_service.RPC_TIMEOUT_S
