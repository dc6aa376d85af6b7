"""The web pages' only way into the platform: the gateway's public `/api/v1` over HTTP, with the
signed-in person's own bearer token. A page can therefore never do what the API refuses, and the
tenancy and role rules stay where the data lives (the services, then the gateway)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import requests

from services.common import config

# Longer than the gateway gives a request's service calls (services/gateway/service.py RPC_TIMEOUT_S),
# so a page shows the gateway's own 503 and its reason, not a bare timeout of its own.
TIMEOUT_S = 35


def base_url(settings: config.Settings | None = None) -> str:
    """The gateway's address: CONSULT_WEB_API_URL (a container's peer, e.g. http://gateway:8080), else
    the gateway's port on this host from the same settings the gateway reads."""
    settings = settings or config.load()
    if settings.web_api_url:
        return settings.web_api_url
    return f"http://127.0.0.1:{settings.http_port('gateway')}"


class ApiError(Exception):
    """The API refused (or could not answer): its status and RFC 9457 problem."""

    def __init__(self, status: int, problem: dict):
        super().__init__(problem.get("detail") or problem.get("title") or str(status))
        self.status = status
        self.problem = problem


@dataclass
class Call:
    """One API call a page made, with its time (the bench prints them beside the page's)."""
    method: str
    path: str
    status: int
    seconds: float


@dataclass
class Api:
    url: str
    token: str | None = None
    lang: str | None = None  # the page's language: the platform words its refusals' details in it
    calls: list = field(default_factory=list)
    _local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def request(self, method: str, path: str, body=None, query: dict | None = None):
        resp = self._send(method, path, body, query)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def file(self, path: str) -> tuple[bytes, str]:
        """A resource the API serves as a file of its own (evidence): its bytes and media type."""
        resp = self._send("GET", path, None, None, accept="*/*")
        return resp.content, resp.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()

    def post_raw(self, path: str, data: bytes, content_type: str, timeout: float = TIMEOUT_S):
        """POST a body that is not JSON (the directory's CSV import takes text/csv)."""
        resp = self._send("POST", path, None, None, raw=(data, content_type), timeout=timeout)
        return resp.json() if resp.content else None

    def _send(self, method: str, path: str, body, query: dict | None, accept: str = "application/json",
              raw: tuple[bytes, str] | None = None, timeout: float = TIMEOUT_S):
        headers = {"Accept": accept}
        if self.lang:
            headers["Accept-Language"] = self.lang
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        elif raw is not None:
            data, headers["Content-Type"] = raw
        started = time.perf_counter()
        try:
            resp = self._session().request(method, self.url + path, data=data, headers=headers,
                                           params=query, timeout=timeout)
        except requests.RequestException:
            raise ApiError(503, {"type": "about:blank", "title": "Service unavailable",
                                 "code": "ServiceUnavailable", "status": 503}) from None
        # the path with its query as sent (the API's base URL has no path of its own): what bench.web replays
        self.calls.append(Call(method, resp.request.path_url, resp.status_code, time.perf_counter() - started))
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = {"title": resp.reason, "status": resp.status_code}
            raise ApiError(resp.status_code, problem if isinstance(problem, dict) else {"status": resp.status_code})
        return resp

    def get(self, path: str, **query):
        return self.request("GET", path, query={k: v for k, v in query.items() if v is not None} or None)

    def post(self, path: str, body=None):
        return self.request("POST", path, body)

    def put(self, path: str, body=None):
        return self.request("PUT", path, body)

    def delete(self, path: str):
        return self.request("DELETE", path)
