"""The web pages' request handling: sessions, CSRF, languages, security headers, errors, rendering.

Pure WSGI-level code on werkzeug (the nameko service in service.py only hands requests in), so the
unit tests drive it without a platform. Page handlers live in pages.py and register with `page`.
"""
from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from services.common import config

from . import i18n
from .api import Api, ApiError, base_url
from .seal import Sealer, load_key

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "consult_session"
BROWSER_COOKIE = "consult_browser"  # a random value per browser; forms carry its HMAC (CSRF)
LANG_COOKIE = "consult_lang"
MAX_FORM = 256 * 1024  # form fields in memory
MAX_REQUEST = 8 * 1024 * 1024  # a form with an evidence file (at most 5 MiB) and its fields

# No inline script at all; styles from our own file; images from ourselves (QR codes are inline SVG).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

URLS = Map(strict_slashes=False, merge_slashes=False)
HANDLERS: dict[str, Callable] = {}


def page(path: str, methods=("GET",), endpoint: str | None = None):
    """Register a page handler: fn(ctx, **path_values) -> Response."""
    def register(fn):
        name = endpoint or fn.__name__
        URLS.add(Rule(path, endpoint=name, methods=list(methods)))
        HANDLERS[name] = fn
        return fn
    return register


class Refused(Exception):
    """A page refuses the request itself (CSRF, bad form): status and a message id."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# The problem codes a page knows, and what it says for them (message ids in the catalogues).
PROBLEM_MESSAGES = {
    "NotFound": "This page or item does not exist in your community.",
    "Forbidden": "Your role does not allow this.",
    "Unauthorized": "Please sign in again.",
    "Conflict": "This cannot be done at this stage of the case.",
    "InvalidInput": "Some of what you entered is not valid.",
    "ValidationError": "Some of what you entered is not valid.",
    "BadRequest": "Some of what you entered is not valid.",
    "Unavailable": "The platform is busy; please try again shortly.",
    "ServiceUnavailable": "The platform is busy; please try again shortly.",
}


@dataclass
class Ctx:
    """One request as a page sees it."""
    app: "WebApp"
    request: Request
    lang: str
    browser: str
    session: dict | None
    api: Api
    cookies: list = field(default_factory=list)  # (name, value, kwargs) to set on the response
    me: dict | None = None

    @property
    def t(self) -> Callable[[str], str]:
        return self.app.translations[self.lang].gettext

    @property
    def csrf(self) -> str:
        return self.app.sealer.csrf(self.browser)

    @property
    def community(self) -> str | None:
        return self.session.get("c") if self.session else None

    def c(self, path: str = "") -> str:
        """An API path in the signed-in person's community."""
        return f"/api/v1/communities/{self.community}{path}"

    def who(self) -> dict:
        """The signed-in person (GET /api/v1/me), once per request."""
        if self.me is None:
            self.me = self.api.get("/api/v1/me")
        return self.me

    def roles(self) -> set[str]:
        return {r["role"] for r in self.who().get("roles", [])}

    def has(self, *roles: str) -> bool:
        return bool(self.roles() & set(roles)) or bool(self.who().get("platform_admin"))

    def form(self) -> dict:
        return self.request.form

    def check_csrf(self) -> None:
        if not self.app.sealer.csrf_ok(self.request.cookies.get(BROWSER_COOKIE),
                                       self.request.form.get("csrf")):
            raise Refused(403, "This form has expired or did not come from this site. Please try again.")

    def render(self, template: str, status: int = 200, **values) -> Response:
        html = self.app.envs[self.lang].get_template(template).render(ctx=self, lang=self.lang, **values)
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def redirect(self, location: str) -> Response:
        return redirect(location, code=303)

    def secure(self) -> bool:
        return self.app.secure_cookies or self.request.scheme == "https" or (
            self.app.trust_proxy and self.request.headers.get("X-Forwarded-Proto", "").lower() == "https")

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        self.cookies.append((name, value, dict(max_age=max_age, httponly=True, samesite="Lax", path="/",
                                               secure=self.secure())))

    def delete_cookie(self, name: str) -> None:
        self.cookies.append((name, "", dict(max_age=0, expires=0, httponly=True, samesite="Lax", path="/",
                                            secure=self.secure())))


def local_path(target: str | None, default: str = "/") -> str:
    """Only a path on this site (no scheme, no host, no '//' or backslash): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or \
            any(ord(ch) < 32 for ch in target):
        return default
    return target


class WebApp:
    def __init__(self, settings: config.Settings | None = None, api_url: str | None = None):
        settings = settings or config.load()
        self.settings = settings
        self.api_url = api_url or base_url(settings)
        self.sealer = Sealer(load_key(settings.data_dir))
        self.secure_cookies = settings.web_secure_cookies
        self.trust_proxy = settings.web_trust_proxy
        self.translations = {lang: i18n.Translations(lang) for lang in i18n.LANGS}
        self.envs = {lang: self._env(lang) for lang in i18n.LANGS}
        from . import (pages, pages_audit, pages_case, pages_decisions, pages_deliberation,  # noqa: F401
                       pages_directory, pages_more)  # register the page handlers

    def _env(self, lang: str) -> Environment:
        env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                          extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
        env.install_gettext_translations(self.translations[lang], newstyle=True)
        from . import filters

        filters.install(env, lang, self.translations[lang].gettext)
        return env

    # ---- WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        request.max_form_memory_size = MAX_FORM
        request.max_content_length = MAX_REQUEST
        browser = request.cookies.get(BROWSER_COOKIE)
        new_browser = not browser or len(browser) != 43
        if new_browser:
            browser = secrets.token_urlsafe(32)
        lang = i18n.negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))
        session = self.sealer.open(request.cookies.get(SESSION_COOKIE))
        ctx = Ctx(self, request, lang, browser, session, Api(self.api_url, session.get("t") if session else None, lang))
        if new_browser:
            ctx.set_cookie(BROWSER_COOKIE, browser, max_age=400 * 86400)
        try:
            response = self.dispatch(ctx)
        except Exception:  # noqa: BLE001 - never a traceback to the browser
            incident = uuid.uuid4().hex[:12]
            log.exception("web page failed (incident %s): %s %s", incident, request.method, request.path)
            response = ctx.render("error.html", status=500, message="Something went wrong on our side.",
                                  incident=incident)
        for name, value, kw in ctx.cookies:
            response.set_cookie(name, value, **kw)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie, Accept-Language"
        # How much of the page was the API (count and time), as a browser's devtools show it.
        calls = ctx.api.calls
        response.headers["Server-Timing"] = (f'api;dur={sum(c.seconds for c in calls) * 1000:.1f};'
                                             f'desc="{len(calls)} calls"')
        if self.settings.test_mode:  # which calls, for bench.web to make the same ones (never in production)
            response.headers["X-Api-Calls"] = " ".join(f"{c.method}:{c.path}" for c in calls)
        return response

    def dispatch(self, ctx: Ctx) -> Response:
        try:
            endpoint, values = URLS.bind_to_environ(ctx.request.environ).match()
        except NotFound:
            return ctx.render("error.html", status=404, message="This page does not exist.")
        except HTTPException as exc:
            if exc.code == 405:
                return ctx.render("error.html", status=405, message="This page cannot be used that way.")
            if hasattr(exc, "get_response") and 300 <= (exc.code or 0) < 400:
                return exc.get_response()
            return ctx.render("error.html", status=404, message="This page does not exist.")
        handler = HANDLERS[endpoint]
        try:
            if ctx.request.method == "POST":
                ctx.check_csrf()
            needs_session = not getattr(handler, "public", False)
            if needs_session and ctx.session is None:
                return ctx.redirect("/sign-in?next=" + quote(ctx.request.full_path.rstrip("?")))
            if needs_session and "community" in values and values["community"] != ctx.community:
                # another community's page: as the API would answer, it does not exist (for you)
                return ctx.render("error.html", status=404, message=PROBLEM_MESSAGES["NotFound"])
            return handler(ctx, **values)
        except Refused as exc:
            return ctx.render("error.html", status=exc.status, message=exc.message)
        except ApiError as exc:
            return self.problem_page(ctx, exc)

    def problem_page(self, ctx: Ctx, exc: ApiError) -> Response:
        if exc.status == 401:
            ctx.delete_cookie(SESSION_COOKIE)
            return ctx.redirect("/sign-in?expired=1")
        code = exc.problem.get("code") or ""
        message = PROBLEM_MESSAGES.get(code) or {
            404: PROBLEM_MESSAGES["NotFound"], 403: PROBLEM_MESSAGES["Forbidden"], 409: PROBLEM_MESSAGES["Conflict"],
            422: PROBLEM_MESSAGES["InvalidInput"], 400: PROBLEM_MESSAGES["InvalidInput"],
        }.get(exc.status, "The platform refused this.")
        status = exc.status if exc.status in (400, 403, 404, 409, 422, 503) else 502
        return ctx.render("error.html", status=status, message=message, detail=exc.problem.get("detail"))


def public(fn):
    fn.public = True
    return fn
