"""Hostile and careless input over real HTTP (issue 12, item 8), on both backends: every refusal is
RFC 9457 problem+json without internals, and nothing is recorded — the community's audit log holds
exactly what it held, plus the marker a test records afterwards to know the log has caught up."""
from __future__ import annotations

import json
import socket
import time
import uuid
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest
import requests

from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

INTERNALS = ("Traceback", "Error:", "RemoteError", "sqlite", "psycopg", "SELECT", "INSERT", "File \"")


class World:
    def __init__(self, platform):
        self.platform = platform
        c = platform.new_community("输入")
        self.id, self.token = c["id"], c["token"]
        self.base = f"/api/v1/communities/{self.id}"
        self.proposal = self.post("/proposals", {"title": "排水", "body": "雨季积水", "category": "drainage",
                                                 "scope": "community"}).json()["id"]
        self.markers = 0

    def post(self, path: str, body, expect: int = 201):
        return self.platform.api("POST", self.base + path, self.token, body, expect=expect)

    def send(self, method: str, path: str, data: bytes | None = None, content_type: str | None = "application/json",
             token: bool = True):
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        headers["Accept-Language"] = "en"  # the details asserted below are the English texts
        if content_type:
            headers["Content-Type"] = content_type
        return requests.request(method, self.platform.url + path, data=data, headers=headers, timeout=60)

    def audit_size(self) -> int:
        return len(self.platform.audit_entries(self.id, self.token))

    def settled_audit_size(self) -> int:
        """The audit log's size once it has not changed for a second (relays poll every 0.1 s)."""
        last = self.audit_size()
        while True:
            time.sleep(1.0)
            now = self.audit_size()
            if now == last:
                return now
            last = now

    @contextmanager
    def nothing_recorded(self):
        """The audit log after the block holds what it held before, plus one marker recorded after the
        block (so an event a refusal might have recorded has had its chance to arrive first)."""
        before = self.settled_audit_size()
        yield
        self.markers += 1
        self.post("/compounds", {"name": f"marker {self.markers}"})
        after = wait_for(lambda: (n := self.audit_size()) > before and n, message="the marker in the audit log")
        assert after == before + 1, f"{after - before - 1} event(s) recorded by refused requests"


@pytest.fixture(scope="module")
def world(platform):
    return World(platform)


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers["Content-Type"] == "application/problem+json; charset=utf-8", resp.headers
    for word in INTERNALS:
        assert word not in resp.text, resp.text
    problem = resp.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem


def raw_exchange(platform, request: bytes) -> tuple[int, dict, bytes]:
    url = urlparse(platform.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.split(": ", 1) for line in lines[1:]), body


def test_json_nested_1000_deep_is_refused(world):
    deep = b"[" * 1000 + b"]" * 1000
    deep_object = b'{"name": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001
    with world.nothing_recorded():
        for path, body in (("/compounds", deep), ("/compounds", deep_object), ("/proposals", deep),
                           ("/rules", b'{"categories": ' + deep + b"}")):
            method = "PATCH" if path == "/rules" else "POST"
            assert "nested too deeply" in assert_problem(world.send(method, world.base + path, body), 422)["detail"]


def test_a_lone_surrogate_is_refused_wherever_it_is(world):
    with world.nothing_recorded():
        for path, body in (("/proposals", '{"title": "\\ud800", "body": "x", "category": "drainage", '
                                          '"scope": "community"}'),
                           ("/proposals", '{"title": "t", "body": "x\\udfffy", "category": "drainage", '
                                          '"scope": "community"}'),
                           ("/compounds", '{"name": "\\ud800"}'),
                           ("/rules", '{"categories": ["\\udbff"]}'),
                           ("/rules", '{"\\ud800": 1}')):
            method = "PATCH" if path == "/rules" else "POST"
            assert "Unicode" in assert_problem(world.send(method, world.base + path, body.encode()), 422)["detail"]


def test_query_integers_beyond_the_schema_bounds_are_refused_on_every_operation(world):
    """Every operation with an integer query parameter, from the published document: 2^64 (which
    overflowed SQLite) and 2^31 get 422, never 500."""
    doc = world.platform.api("GET", "/api/openapi.json", expect=200).json()
    checked = 0
    with world.nothing_recorded():
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                for p in op["parameters"]:
                    if p["in"] != "query" or p["schema"].get("type") != "integer":
                        continue
                    concrete = path.replace("{community}", world.id)
                    concrete = concrete.replace("{proposal}", world.proposal)
                    for name in [q["name"] for q in op["parameters"] if q["in"] == "path"]:
                        concrete = concrete.replace("{" + name + "}", str(uuid.uuid4()))
                    for value in (2**64, 2**31, -(2**64)):
                        resp = world.send(method.upper(), f"{concrete}?{p['name']}={value}", content_type=None)
                        detail = assert_problem(resp, 422)["detail"]
                        assert detail.startswith(f"query.{p['name']} must be at"), detail
                    checked += 1
    assert checked >= 15


@pytest.mark.parametrize("path", ["/api/v1/communities/%0A", "/api/v1/communities/%00/proposals",
                                  "/api/v1/me%0D%0ASet-Cookie:x=1", "/api/v1/communities/%FF", "/api/v1/%7F",
                                  "/healthz%0A", "/api/v1/me?q=%00", "/api/v1/me?q=%E4%B8"])
def test_bad_characters_in_a_path_or_query_are_refused(world, path):
    with world.nothing_recorded():
        assert_problem(world.send("GET", path), 400)
        assert_problem(world.send("POST", path.replace("/me", "/communities"), b'{"name": "x"}'), 400)


def test_a_path_with_a_non_uuid_id_is_not_found(world):
    with world.nothing_recorded():
        for path in (f"{world.base}/proposals/not-a-uuid", f"{world.base}/proposals/{world.proposal}x",
                     "/api/v1/communities/1", f"{world.base}/proposals/{world.proposal}/"):
            assert_problem(world.send("GET", path), 404)
        resp = world.send("GET", f"{world.base}/proposals/{world.proposal.upper()}")
        assert resp.status_code == 200 and resp.json()["id"] == world.proposal


def test_trace_and_unknown_methods_get_405_with_allow(world):
    with world.nothing_recorded():
        for method in ("TRACE", "FOO", "PROPFIND"):
            resp = world.send(method, world.base + "/proposals", content_type=None)
            assert_problem(resp, 405)
            assert resp.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
        for path, allow in (("/api/v1/me", "GET, HEAD, OPTIONS"), ("/healthz", "GET, HEAD"),
                            (f"{world.base}/proposals/{world.proposal}", "GET, HEAD, OPTIONS"),
                            (f"{world.base}/ballots/{uuid.uuid4()}/configuration", "OPTIONS, PUT")):
            resp = world.send("DELETE", path, content_type=None)
            assert_problem(resp, 405)
            assert resp.headers["Allow"] == allow, path
        options = world.send("OPTIONS", world.base + "/proposals", content_type=None)
        assert options.status_code == 204 and options.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
        assert_problem(world.send("TRACE", "/nothing", content_type=None), 404)


def test_a_long_request_target_is_refused_with_414(world):
    with world.nothing_recorded():
        for target in (f"{world.base}/proposals?q=" + "a" * 10_000, f"{world.base}/proposals?q=" + "a" * 200_000,
                       "/api/v1/" + "a" * 9000):
            assert assert_problem(world.send("GET", target, content_type=None), 414)["code"] == "URITooLong"
        assert world.send("GET", f"{world.base}/proposals?q=" + "a" * 100, content_type=None).status_code == 200


def test_media_types_are_matched_exactly(world):
    body = json.dumps({"name": "院坝"}).encode()
    with world.nothing_recorded():
        for content_type in ("text/jsonx", "application/jsonx", "text/plain", "application/json; charset=latin-1",
                             "application/x-www-form-urlencoded", None):
            assert_problem(world.send("POST", world.base + "/compounds", body, content_type), 415)
        assert_problem(world.send("POST", world.base + "/directory/import", b"a,b\n", "application/json"), 415)
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"):
        world.send("POST", world.base + "/compounds", body, content_type).raise_for_status()


def test_nul_and_control_characters_are_refused_in_text(world):
    proposal = {"title": "t", "body": "b", "category": "drainage", "scope": "community"}
    with world.nothing_recorded():
        for field, value, message in (("title", "排\u0000水", "NUL"), ("title", "a\nb", "one line"),
                                      ("title", "a\u001bb", "one line"), ("title", "a\u0085b", "one line"),
                                      ("body", "a\u0000b", "NUL"), ("body", "a\u0007b", "control characters"),
                                      ("category", "x\u0000", "NUL")):
            resp = world.send("POST", world.base + "/proposals",
                              json.dumps({**proposal, field: value}).encode())
            assert message in assert_problem(resp, 422)["detail"], (field, value)
        assert_problem(world.send("POST", world.base + "/rules", b'{"categories": ["a\\u0000"]}'), 405)
        assert "NUL" in assert_problem(world.send("PATCH", world.base + "/rules", b'{"categories": ["a\\u0000"]}'),
                                       422)["detail"]
        assert_problem(world.send("POST", world.base + "/directory/import",
                                  "compound,building,unit,area,owners\n院坝\u0000,1栋,101,50,\n".encode(), "text/csv"),
                       422)
        assert_problem(world.send("GET", world.base + "/proposals?q=a%0Ab", content_type=None), 400)
    # Free text keeps its line breaks and tabs.
    made = world.post("/proposals", {**proposal, "body": "第一行\n第二行\r\n\t缩进"}).json()
    shown = world.platform.api("GET", f"{world.base}/proposals/{made['id']}", world.token, expect=200).json()
    assert shown["body"] == "第一行\n第二行\r\n\t缩进"


def test_what_the_http_server_refuses_itself_is_a_problem(world):
    host = urlparse(world.platform.url).netloc
    with world.nothing_recorded():
        for request, status in (
            (b"GET /api/v1/me HTTP/9.x\r\nHost: h\r\n\r\n", 400),
            (b"POST /api/v1/me\r\n\r\n", 400),
            (b"GET /api/v1/me HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
            (b"POST " + world.base.encode() + b"/compounds HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n", 400),
            (b"GET /api/v1/me?" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
        ):
            got, headers, body = raw_exchange(world.platform, request.replace(b"Host: h", f"Host: {host}".encode()))
            assert got == status, body
            assert headers["Content-Type"] == "application/problem+json; charset=utf-8"
            assert json.loads(body)["status"] == status and b"aaaa" not in body


def test_a_body_over_the_limit_is_refused_before_it_is_read(world):
    with world.nothing_recorded():
        big = b'{"name": "' + b"x" * 1_100_000 + b'"}'
        assert_problem(world.send("POST", world.base + "/compounds", big), 413)
        assert_problem(world.send("POST", world.base + "/compounds", big, token=False), 401)
        assert "takes no body" in assert_problem(
            world.send("POST", f"{world.base}/proposals/{world.proposal}/submit", b'{"x": 1}'), 422)["detail"]
