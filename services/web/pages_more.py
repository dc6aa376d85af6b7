"""The pages around the cases: the public record for auditors (checkpoint, keys, an entry with its
inclusion proof, how to verify), invitations printable with a QR code, notification preferences."""
from __future__ import annotations

import io
import json

import qrcode
import qrcode.image.svg
from markupsafe import Markup

from .api import ApiError
from .app import Ctx, Refused, page
from .pages_case import WORKERS, field, needs


def qr_svg(text: str) -> Markup:
    """A QR code as inline SVG (no image request, no script); safe to embed: qrcode writes the markup."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg"):]  # without the XML declaration
    return Markup(svg.replace("<svg", '<svg role="img" aria-hidden="true" focusable="false"', 1))


def public_url(ctx: Ctx) -> str:
    return ctx.request.host_url.rstrip("/")


# ---- the public record -----------------------------------------------------------------------------
@page("/communities/<community>/audit")
def audit(ctx: Ctx, community: str):
    checkpoint = None
    try:
        checkpoint = ctx.api.get(ctx.c("/audit/checkpoint"))
    except ApiError as exc:
        if exc.status != 404:
            raise
    keys = ctx.api.get("/api/v1/audit/public-keys")
    notice = None
    try:
        notice = ctx.api.get(ctx.c("/audit/notice"), lang=ctx.lang)
    except ApiError:
        pass
    link = f"{public_url(ctx)}/communities/{community}/audit"
    return ctx.render("audit.html", checkpoint=checkpoint, keys=keys, notice=notice, qr=qr_svg(link), link=link,
                      api=ctx.app.api_url)


@page("/communities/<community>/audit/entries/<int:index>")
def audit_entry(ctx: Ctx, community: str, index: int):
    page_ = ctx.api.get(ctx.c("/audit/entries"), **{"from": index, "limit": 1})
    entries = [e for e in page_.get("entries", []) if e["index"] == index]
    if not entries:
        raise Refused(404, "This page or item does not exist in your community.")
    proof = None
    size = ctx.request.args.get("size", "")  # prove against an earlier checkpoint (the "as of" page's)
    query = {"index": index, **({"size": int(size)} if size.isdigit() and len(size) <= 12 else {})}
    try:
        proof = ctx.api.get(ctx.c("/audit/proofs/inclusion"), **query)
    except ApiError:
        pass
    entry = entries[0]
    return ctx.render("audit_entry.html", e=entry, proof=proof, proof_size=query.get("size"),
                      envelope=json.dumps(entry.get("envelope"), ensure_ascii=False, indent=2))


# ---- invitations -----------------------------------------------------------------------------------
@page("/communities/<community>/invitations", methods=("GET", "POST"))
def invitations(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    directory = ctx.api.get(ctx.c("/directory"))
    if ctx.request.method == "GET":
        return ctx.render("invitations.html", directory=directory)
    try:
        count = max(1, min(int(field(ctx, "count", 3) or "1"), 50))
        days = max(1, min(int(field(ctx, "days", 3) or "14"), 90))
    except ValueError:
        raise Refused(422, "Some of what you entered is not valid.") from None
    household = field(ctx, "household", 40) or None
    made = []
    for _ in range(count):
        inv = ctx.api.post(ctx.c("/invitations"), {"household": household, "roles": ["resident"], "days": days})
        link = f"{public_url(ctx)}/sign-in?code={inv['code']}"
        made.append(dict(inv, link=link, qr=qr_svg(link)))
    units = {h["id"]: h for h in directory.get("households", [])}
    return ctx.render("invitation_sheet.html", invitations=made, household=units.get(household))


# ---- notification preferences ----------------------------------------------------------------------
@page("/communities/<community>/me/preferences", methods=("GET", "POST"))
def preferences(ctx: Ctx, community: str):
    if ctx.request.method == "POST":
        channels = [c for c in ctx.form().getlist("channels") if c in ("inbox", "email")] or ["inbox"]
        body = {"channels": channels, "digest": field(ctx, "digest", 20) or "immediate",
                "lang": field(ctx, "lang", 10) or ctx.lang, "email": field(ctx, "email", 200) or None}
        ctx.api.put(ctx.c("/me/preferences"), body)
        return ctx.redirect(f"/communities/{community}/me/preferences?saved=1")
    prefs = ctx.api.get(ctx.c("/me/preferences"))
    return ctx.render("preferences.html", prefs=prefs, saved=ctx.request.args.get("saved") == "1")
