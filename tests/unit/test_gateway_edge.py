"""The gateway's HTTP edge: eventlet's protocol and nameko's WSGI app made to answer problem+json,
served for real (an eventlet server in this process, raw sockets as the client)."""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import eventlet
import pytest
from eventlet.green import socket as green_socket
from eventlet.wsgi import STATE_IDLE
from werkzeug.routing import Map, Rule
from werkzeug.test import Client
from werkzeug.wrappers import Response

from services.gateway import edge


class Provider:
    """Stands for a nameko entrypoint: answers, or fails the way a broken handler would."""

    def __init__(self, fail: bool = False):
        self.fail = fail

    def handle_request(self, request):
        if self.fail:
            raise RuntimeError("password=hunter2 in a traceback")
        return Response(json.dumps({"request_path": request.path, **request.path_values}), content_type="application/json")


class StubServer:
    def make_url_map(self):
        return Map([Rule("/healthz", methods=["GET"], endpoint=Provider()),
                    Rule("/broken", methods=["GET"], endpoint=Provider(fail=True)),
                    Rule("/api/<path:path>", methods=None, endpoint=Provider())])


APP = edge.GatewayWsgiApp(StubServer())


def problem_of(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data()
    assert resp.headers["Content-Type"] == "application/problem+json; charset=utf-8"
    body = json.loads(resp.get_data())
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_the_wsgi_app_answers_problems_for_what_no_route_takes():
    client = Client(APP)
    assert client.get("/healthz").status_code == 200
    assert problem_of(client.get("/nothing"), 404)["type"] == "about:blank"
    resp = client.post("/healthz")
    problem_of(resp, 405)
    assert resp.headers["Allow"] == "GET, HEAD"
    assert client.open("/api/v1/anything", method="TRACE").status_code == 200  # the API route takes every method
    assert "control characters" in problem_of(client.get("/api/v1/communities/%0A"), 400)["detail"]
    assert "control characters" in problem_of(client.get("/api/v1/me?q=%07"), 400)["detail"]
    # As eventlet passes it: the percent-decoded bytes as Latin-1 (the test client would decode them).
    not_utf8 = client.get("/x", environ_overrides={"PATH_INFO": "/api/v1/communities/\xff"})
    assert "UTF-8" in problem_of(not_utf8, 400)["detail"]
    assert "UTF-8" in problem_of(client.get("/api/v1/me?q=%C3"), 400)["detail"]
    assert problem_of(client.get("/api/v1/me?q=" + "a" * 10_000), 414)["code"] == "URITooLong"
    assert client.get("/api/v1/me?q=%E4%B8%AD").status_code == 200


def test_a_failing_entrypoint_is_a_500_problem_with_an_incident_id_that_is_logged(caplog):
    with caplog.at_level(logging.ERROR):
        body = problem_of(Client(APP).get("/broken"), 500)
    assert "hunter2" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)
    assert any(body["incident"] in r.getMessage() and "hunter2" in (r.exc_text or "") for r in caplog.records)
    # nameko's entrypoint maps a worker's exception the same way (it answered text/plain with the error).
    handler = edge.GatewayHttp("GET", "/x")
    resp = handler.response_from_exception(ValueError("internal detail"))
    assert resp.status_code == 500 and b"internal detail" not in resp.get_data()
    assert resp.headers["Content-Type"].startswith("application/problem+json")


def test_responses_survive_a_lone_surrogate_stored_before_it_was_refused():
    assert json.loads(edge.encode({"title": "a\ud800b"})) == {"title": "a\ud800b"}
    assert edge.encode({"title": "议事"}) == '{"title": "议事"}'.encode()


def test_every_http_entrypoint_of_the_gateway_is_on_the_edge():
    """A nameko `http` entrypoint would start nameko's own web server on the gateway's port."""
    from nameko.web.handlers import HttpRequestHandler

    from services.gateway.service import GatewayService

    entrypoints = {name: ep for name in dir(GatewayService)
                   for ep in getattr(getattr(GatewayService, name), "nameko_entrypoints", ())
                   if isinstance(ep, HttpRequestHandler)}
    assert {"api", "openapi_document", "healthz", "readyz", "metrics_endpoint"} <= set(entrypoints)
    assert all(isinstance(ep, edge.GatewayHttp) for ep in entrypoints.values()), entrypoints


# ---- the protocol, over a real socket ---------------------------------------------------------------------
@contextmanager
def serving():
    listener = eventlet.listen(("127.0.0.1", 0))
    server = edge.GatewayWebServer().get_wsgi_server(listener, APP)
    assert server.url_length_limit == edge.REQUEST_LINE_LIMIT

    def run():
        while True:
            sock, addr = listener.accept()
            eventlet.spawn(server.process_request, [addr, sock, STATE_IDLE])

    thread = eventlet.spawn(run)
    try:
        yield listener.getsockname()[1]
    finally:
        thread.kill()
        listener.close()


def exchange(port: int, raw: bytes) -> tuple[int, dict, bytes]:
    with eventlet.Timeout(10):
        sock = green_socket.create_connection(("127.0.0.1", port))
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("raw, status", [
    (b"GET /api/v1/me?q=" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /api/v1/me?q=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /api/v1/me HTTP/9.x\r\nHost: x\r\n\r\n", 400),
    (b"GET /api/v1/me HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"POST /api/v1/me\r\n\r\n", 400),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET /api/v1/%0A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
    (b"G\x01T /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
    (b"PUT /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    (b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
])
def test_what_the_http_server_refuses_itself_is_a_problem_too(raw, status):
    with serving() as port:
        got, headers, body = exchange(port, raw)
    assert got == status, body
    assert headers["Content-Type"] == "application/problem+json; charset=utf-8"
    problem = json.loads(body)
    assert problem["status"] == status and problem["detail"]
    assert b"aaaa" not in body and b"9.x" not in body  # the request is not echoed


def test_a_normal_request_still_gets_through():
    with serving() as port:
        status, _, body = exchange(port, "GET /api/v1/%E8%AE%AE?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                   .encode())
    assert status == 200 and json.loads(body)["request_path"] == "/api/v1/议"
