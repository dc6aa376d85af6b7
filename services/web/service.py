"""The web service: the pages (app.py, pages.py) on nameko's HTTP server, so `consult up`, the test
harness and docker compose run it like every other service (services.common.runner). It has no
store and no RPC: everything it shows or records goes through the gateway's public API."""
from __future__ import annotations

import json

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from services.common import metrics

from .app import WebApp


class _App:
    """One WebApp per process, made on first use (after the runner has read the settings)."""

    app: WebApp | None = None

    @classmethod
    def get(cls) -> WebApp:
        if cls.app is None:
            cls.app = WebApp()
        return cls.app


class WebService:
    name = "web"

    @http("GET", "/metrics")
    def metrics_endpoint(self, request):
        body, content_type = metrics.exposition()
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/healthz")
    def healthz(self, request):
        return Response(json.dumps({"status": "ok", "service": self.name}), mimetype="application/json")

    @http("GET", "/readyz")
    def readyz(self, request):
        _App.get()  # templates and catalogues load (and fail) here, not at the first visitor
        return Response(json.dumps({"status": "ready"}), mimetype="application/json")

    @http("GET,POST,HEAD", "/")
    def index(self, request):
        return _App.get().handle(request)

    @http("GET,POST,HEAD", "/<path:path>")
    def pages(self, request, path):
        return _App.get().handle(request)


SERVICE = WebService
