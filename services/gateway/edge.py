"""The gateway's HTTP edge: what a request meets before the routing table, made to answer RFC 9457
problem+json like everything after it.

nameko's web server answers some requests itself: eventlet's HTTP protocol refuses a long request
line with an empty 414 and a malformed one with an HTML page; nameko's WSGI app answers HTML 404s
and 405s; a handler's exception becomes a text/plain 500 that names it. The gateway serves every
HTTP entrypoint (`http` below, not nameko's) from `GatewayWebServer`, whose protocol, WSGI app and
entrypoint answer all of these as problems, and which refuses request targets that are too long,
not UTF-8 or hold control characters before any route sees them.
"""
from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from eventlet.wsgi import HeadersTooLarge, HeaderLineTooLong
from nameko.exceptions import BadRequest
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from services.common.problem_texts import localise, negotiate

from .router import PROBLEM, internal_error, problem
from .routes_deployment import HEADER as DEPLOYMENT_HEADER, mode as deployment_mode

MAX_TARGET = 8192  # bytes of the request target (path and query string, percent-encoded)
REQUEST_LINE_LIMIT = MAX_TARGET + 64  # the target, the method and the version
HEAD_DRAIN_LIMIT = 1 << 20  # bytes of an over-long request head read (and dropped) before answering
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def encode(body) -> bytes:
    """JSON in UTF-8. A text stored before surrogates were refused is escaped rather than lost."""
    text = json.dumps(body, ensure_ascii=False, default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, ensure_ascii=True, default=str).encode("ascii")


def respond(status: int, body, content_type: str | None, headers: dict | None = None) -> Response:
    if isinstance(body, (bytes, bytearray)):  # a file (router.Raw): its bytes and media type as they are
        response = Response(bytes(body), status=status, headers=headers or {})
        if content_type and status != 304:
            response.headers["Content-Type"] = content_type
        else:
            del response.headers["Content-Type"]
        return response
    payload = b"" if status == 204 else encode(body)
    return Response(payload, status=status, headers=headers or {}, content_type=f"{content_type}; charset=utf-8")


def problem_response(p: dict, headers: dict | None = None, accept_language: str | None = None) -> Response:
    """A problem in the client's language (services/common/problem_texts; zh-CN by default)."""
    lang = negotiate(accept_language)
    return respond(p["status"], localise(p, lang), PROBLEM, {**(headers or {}), "Content-Language": lang})


# ---- the HTTP protocol ---------------------------------------------------------------------------------
class ProblemProtocol(HttpOnlyProtocol):
    """eventlet's protocol with its own refusals (request line, headers, lengths) as problems."""

    def _problem(self, status: int, reason: str, detail: str, code: str) -> None:
        headers = getattr(self, "headers", None)  # parsed unless the request line itself is refused
        lang = negotiate(headers.get("accept-language") if headers is not None else None)
        body = encode(localise(problem(status, reason, detail, code=code), lang))
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {PROBLEM}; charset=utf-8\r\n"
                f"Content-Language: {lang}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii")
        try:
            self.wfile.write(head + body)
            self.wfile.flush()
        except OSError:
            pass  # the client has gone
        self.close_connection = 1

    def send_error(self, code, message=None, explain=None):
        # http.server's own refusals (a malformed request line, a bad version) are HTML pages that
        # quote the request; the problem says what is wrong without echoing it.
        status = int(code)
        if status == 505:
            self._problem(505, "HTTP version not supported", "only HTTP/1.0 and HTTP/1.1 are served",
                          "HTTPVersionNotSupported")
        elif status == 431:
            self._problem(431, "Request header fields too large", "there are too many headers",
                          "RequestHeaderFieldsTooLarge")
        else:
            self._problem(400, "Bad request", "the request line is malformed", "BadRequest")

    def _read_request_line(self):
        line = super()._read_request_line()
        if line and len(line) >= self.server.url_length_limit:
            self._drain_head(len(line))
            self._problem(414, "URI too long", f"the request target is longer than {MAX_TARGET} bytes", "URITooLong")
            return b""  # handle_one_request closes the connection on an empty line
        return line

    def _drain_head(self, read: int) -> None:
        """Read what is left of the request head, so that closing the connection with it unread
        does not reset it (a client would then see a reset instead of the 414)."""
        try:
            while read < HEAD_DRAIN_LIMIT:
                chunk = self.rfile.readline(65536)
                read += len(chunk)
                if not chunk or chunk in (b"\r\n", b"\n"):
                    return
        except OSError:
            pass

    def parse_request(self):
        try:
            if not super().parse_request():
                return False
        except (HeaderLineTooLong, HeadersTooLarge):
            self._problem(431, "Request header fields too large", "a header line or all headers together are too long",
                          "RequestHeaderFieldsTooLarge")
            return False
        length = self.headers.get("content-length")
        if length is not None and not (length.isascii() and length.isdigit()):
            self._problem(400, "Bad request", "Content-Length must be a whole number of bytes", "BadRequest")
            return False
        if length is not None and self.headers.get("transfer-encoding") is not None:
            self._problem(400, "Bad request", "send Content-Length or Transfer-Encoding, not both", "BadRequest")
            return False
        return True


# ---- the WSGI app ----------------------------------------------------------------------------------------
def refuse_target(environ) -> dict | None:
    """A problem for a request target no route should see, else None."""
    if not _TOKEN.fullmatch(environ.get("REQUEST_METHOD", "")):
        return problem(400, "Bad request", "the request method is malformed", code="BadRequest")
    raw_path = environ.get("RAW_PATH_INFO", environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    if len(raw_path) + len(query) + 1 > MAX_TARGET:
        return problem(414, "URI too long", f"the request target is longer than {MAX_TARGET} bytes", code="URITooLong")
    try:
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        query_text = unquote_to_bytes(query.replace("+", " ")).decode("utf-8")
    except (UnicodeError, ValueError):
        return problem(400, "Bad request", "the path and the query string must be percent-encoded UTF-8",
                       code="BadRequest")
    if _CONTROL.search(path) or _CONTROL.search(query_text):
        return problem(400, "Bad request", "the path and the query string must not contain control characters",
                       code="BadRequest")
    return None


class GatewayWsgiApp(WsgiApp):
    """nameko's WSGI app with refusals as problems, and any failure as a 500 problem."""

    def __call__(self, environ, start_response):
        lang = environ.get("HTTP_ACCEPT_LANGUAGE")
        try:
            refused = refuse_target(environ)
            if refused is not None:
                response = problem_response(refused, None, lang)
            else:
                response = self._route(environ)
        except Exception:  # noqa: BLE001 - nothing may answer without a problem body
            response = problem_response(internal_error(environ.get("PATH_INFO", "?")[:200]), None, lang)
        response.headers[DEPLOYMENT_HEADER] = deployment_mode()  # a training deployment says so in every answer
        return response(environ, start_response)

    def _route(self, environ) -> Response:
        request = Request(environ, shallow=True)
        try:
            provider, values = self.url_map.bind_to_environ(environ).match()
        except MethodNotAllowed as exc:
            allowed = sorted(exc.valid_methods or ())
            method = environ["REQUEST_METHOD"]
            return problem_response(problem(405, "Method not allowed", f"{method} is not allowed here",
                                            i18n={"key": "route.method", "params": {"method": method}}),
                                    {"Allow": ", ".join(allowed)}, environ.get("HTTP_ACCEPT_LANGUAGE"))
        except HTTPException:  # not found (and a redirect, which an API does not make)
            return problem_response(problem(404, "Not found", "no such resource", i18n={"key": "route.not_found"}),
                                    None, environ.get("HTTP_ACCEPT_LANGUAGE"))
        request.path_values = values
        return provider.handle_request(request)


class GatewayWebServer(WebServer):
    def get_wsgi_server(self, sock, wsgi_app, protocol=ProblemProtocol, debug=False):
        server = super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)
        server.url_length_limit = REQUEST_LINE_LIMIT
        return server

    def get_wsgi_app(self):
        return GatewayWsgiApp(self)


class GatewayHttp(HttpRequestHandler):
    """nameko's HTTP entrypoint on the gateway's server; method "*" takes every method (the
    routing table then answers 405 with the methods a path allows)."""

    server = GatewayWebServer()

    def get_url_rule(self):
        return Rule(self.url, methods=None if self.method == "*" else self.method.split(","))

    def response_from_exception(self, exc):
        if isinstance(exc, BadRequest):
            return problem_response(problem(400, "Bad request", "the request does not fit this resource",
                                            code="BadRequest"))
        return problem_response(internal_error(self.url, exc))  # no request here: the default language


http = GatewayHttp.decorator
