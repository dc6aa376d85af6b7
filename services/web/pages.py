"""The pages. Each handler reads and writes through the public API with the person's own token
(ctx.api); what the API refuses becomes an error page in the reader's language (app.problem_page).
Every POST has passed the CSRF check in app.dispatch before a handler runs."""
from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.wrappers import Response

from .api import Api, ApiError
from .app import LANG_COOKIE, SESSION_COOKIE, Ctx, Refused, local_path, page, public
from .i18n import LANGS

STATIC = Path(__file__).parent / "static"
STAGES = ("proposal", "deliberation", "decision", "action")
WORKERS = ("community_worker", "party_lead")


# ---- assets, language, sign-in ---------------------------------------------------------------------
@page("/static/<name>")
@public
def static(ctx: Ctx, name: str):
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise Refused(404, "This page does not exist.")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    resp = Response(path.read_bytes(), content_type=kind + ("; charset=utf-8" if kind.startswith("text/") else ""))
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


@page("/lang/<lang>")
@public
def switch_language(ctx: Ctx, lang: str):
    """A link, not a form: it only changes how pages read (a preference cookie), nothing recorded."""
    if lang not in LANGS:
        raise Refused(404, "This page does not exist.")
    ctx.set_cookie(LANG_COOKIE, lang, max_age=400 * 86400)
    return ctx.redirect(local_path(ctx.request.args.get("next")))


@page("/")
@public
def root(ctx: Ctx):
    if ctx.session:
        return ctx.redirect(f"/communities/{ctx.community}/")
    return ctx.redirect("/sign-in")


@page("/sign-in", methods=("GET", "POST"))
@public
def sign_in(ctx: Ctx):
    args = ctx.request.args
    values = {"next": local_path(args.get("next"), ""), "token": args.get("token", "")[:200],
              "code": args.get("code", "")[:100], "expired": args.get("expired") == "1", "error": None}
    if ctx.request.method == "GET":
        return ctx.render("sign_in.html", **values)
    f = ctx.form()
    values["next"] = local_path(f.get("next"), "")
    anonymous = Api(ctx.app.api_url)
    own = False
    try:
        if f.get("mode") == "code":
            code, name = f.get("code", "").strip(), f.get("name", "").strip()
            if not code or not name:
                values["error"] = "Please enter the invitation code and your name."
                return ctx.render("sign_in.html", status=422, **values)
            token = anonymous.post("/api/v1/sign-in", {"code": code, "name": name, "adult": f.get("adult") == "1"})[
                "token"]
            own = True  # this sign-in made the token: signing out revokes it
        else:
            token = f.get("token", "").strip()
            if not token:
                values["error"] = "Please enter your sign-in token."
                return ctx.render("sign_in.html", status=422, **values)
        me = Api(ctx.app.api_url, token).get("/api/v1/me")
    except ApiError as exc:
        if exc.status >= 500:
            raise
        values["error"] = "This code or token was not accepted. It may have expired or been used already."
        values["token"] = values["code"] = ""
        return ctx.render("sign_in.html", status=401 if exc.status == 401 else 422, **values)
    if not me.get("community"):
        values["error"] = "This token does not belong to a community; the pages are for community members."
        return ctx.render("sign_in.html", status=422, **values)
    ctx.set_cookie(SESSION_COOKIE, ctx.app.sealer.seal({"t": token, "c": me["community"], "p": me["person"],
                                                         "own": own}))
    return ctx.redirect(values["next"] or f"/communities/{me['community']}/")


@page("/sign-out", methods=("POST",))
@public
def sign_out(ctx: Ctx):
    if ctx.session and ctx.session.get("own"):
        try:
            ctx.api.delete("/api/v1/me/token")
        except ApiError:
            pass  # already revoked or expired: the cookie goes anyway
    ctx.delete_cookie(SESSION_COOKIE)
    return ctx.redirect("/sign-in")


# ---- home ------------------------------------------------------------------------------------------
def _safe(fn, default):
    try:
        return fn()
    except ApiError as exc:
        if exc.status in (401,):
            raise
        return default


@page("/communities/<community>/")
def home(ctx: Ctx, community: str):
    me = ctx.who()
    info = ctx.api.get(ctx.c())
    board = ctx.api.get(ctx.c("/board"))
    worker = ctx.has(*WORKERS)
    # What needs this person, as each stage decides it for its own objects (the API's /me/needs):
    # only ballots on whose roll I stand and I have not voted in, proposals of my building I have not
    # supported, consultations I sit on, my tasks ... not every open list of the community.
    found = _safe(lambda: ctx.api.get(ctx.c("/me/needs")), {"items": [], "unavailable": []})
    needs = [dict(n, href=f"/communities/{community}/{n['path']}") for n in found["items"]]
    inbox = _safe(lambda: ctx.api.get(ctx.c("/me/inbox"), limit=5), {"items": [], "unread": 0, "total": 0})
    return ctx.render("home.html", me=me, info=info, board=board, needs=needs, needs_missing=found["unavailable"],
                      inbox=inbox, stages=STAGES, worker=worker)


@page("/communities/<community>/inbox")
def inbox(ctx: Ctx, community: str):
    items = ctx.api.get(ctx.c("/me/inbox"), limit=50)
    return ctx.render("inbox.html", inbox=items)


@page("/communities/<community>/inbox/<message>/read", methods=("POST",))
def inbox_read(ctx: Ctx, community: str, message: str):
    ctx.api.post(ctx.c(f"/me/inbox/{message}/read"))
    return ctx.redirect(f"/communities/{community}/inbox")
