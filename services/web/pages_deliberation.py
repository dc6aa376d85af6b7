"""The worker's and the body's pages of screening and deliberation that the case pages link to:
merging a duplicate proposal, the 1+2+X body's invitations and convener, amendments to options and
the convener's rulings, cancelling a meeting, revising and correcting minutes, moderating comments
and a resident editing their own comment.

As everywhere in the pages, the API decides (`ctx.api` with the person's own token). A page that
knows from what it reads that the person may not act (not a screener, not the convener, not the
minutes' recorder, not a moderator, not the comment's author) answers the 403 page before anything
is sent, so nothing is recorded; the API would refuse the same request."""
from __future__ import annotations

from .app import Ctx, Refused, page
from .pages_case import WORKERS, back, field, names, needs

INVITED_ROLES = ("property_company", "resident", "facilitator", "expert", "owners_committee")
MERGEABLE = ("submitted", "collecting")
FORBIDDEN = "Your role does not allow this."


def me(ctx: Ctx) -> str:
    return ctx.who()["person"]


def allow(ctx: Ctx, allowed: bool) -> None:
    """403 before the API is asked, unless the person may act (a platform admin always may)."""
    if not allowed and not ctx.who().get("platform_admin"):
        raise Refused(403, FORBIDDEN)


def consultation(ctx: Ctx, cid: str) -> dict:
    return ctx.api.get(ctx.c(f"/consultations/{cid}"))


def convener_only(ctx: Ctx, cid: str) -> dict:
    c = consultation(ctx, cid)
    allow(ctx, bool(c.get("convener")) and c.get("convener") == me(ctx))
    return c


# ---- screening: merge a duplicate into another proposal ---------------------------------------------
@page("/communities/<community>/proposals/<proposal>/merging", methods=("GET", "POST"))
def proposal_merge(ctx: Ctx, community: str, proposal: str):
    needs(ctx, *WORKERS)
    if ctx.request.method == "POST":
        into = field(ctx, "into", 40)
        if not into:
            raise Refused(422, "Please choose the proposal to merge this one into.")
        ctx.api.post(ctx.c(f"/proposals/{proposal}/merge"), {"into": into})
        return back(ctx, f"/proposals/{into}")
    p = ctx.api.get(ctx.c(f"/proposals/{proposal}"))
    candidates = []
    for status in MERGEABLE:
        found = ctx.api.get(ctx.c("/proposals"), status=status, limit=200)
        candidates += [x for x in found.get("items", []) if x["id"] != p["id"]]
    return ctx.render("delib_merge.html", p=p, candidates=candidates, mergeable=p["status"] in MERGEABLE)


# ---- the 1+2+X body ---------------------------------------------------------------------------------
@page("/communities/<community>/consultations/<consultation_id>/invitations", methods=("POST",))
def consultation_invite(ctx: Ctx, community: str, consultation_id: str):
    convener_only(ctx, consultation_id)
    role = field(ctx, "role", 40)
    person = field(ctx, "person", 40)
    if role not in INVITED_ROLES or not person:
        raise Refused(422, "Some of what you entered is not valid.")
    ctx.api.post(ctx.c(f"/consultations/{consultation_id}/invitations"), {"person": person, "role": role})
    return back(ctx, f"/consultations/{consultation_id}/manage")


@page("/communities/<community>/consultations/<consultation_id>/invitation-answer", methods=("POST",))
def consultation_invitation_answer(ctx: Ctx, community: str, consultation_id: str):
    role = field(ctx, "role", 40)
    if role not in INVITED_ROLES:
        raise Refused(422, "Some of what you entered is not valid.")
    body = {"role": role, "accept": field(ctx, "accept", 5) == "yes"}
    if field(ctx, "reason", 2000):
        body["reason"] = field(ctx, "reason", 2000)
    ctx.api.post(ctx.c(f"/consultations/{consultation_id}/invitation-answers"), body)
    return back(ctx, f"/consultations/{consultation_id}")


@page("/communities/<community>/consultations/<consultation_id>/convener", methods=("POST",))
def consultation_convener(ctx: Ctx, community: str, consultation_id: str):
    needs(ctx, "party_lead")
    person = field(ctx, "person", 40)
    if not person:
        raise Refused(422, "Some of what you entered is not valid.")
    ctx.api.post(ctx.c(f"/consultations/{consultation_id}/convener"), {"person": person})
    return back(ctx, f"/consultations/{consultation_id}/manage")


# ---- options: amendments and rulings ---------------------------------------------------------------
@page("/communities/<community>/consultations/<consultation_id>/options/<option>/amendments", methods=("POST",))
def option_amend(ctx: Ctx, community: str, consultation_id: str, option: str):
    c = consultation(ctx, consultation_id)
    allow(ctx, any(m["person"] == me(ctx) and m["status"] == "active" for m in c.get("body", [])))
    description = field(ctx, "description", 10000)
    if not description:
        raise Refused(422, "Please write something first.")
    body = {"description": description}
    if field(ctx, "title", 200):
        body["title"] = field(ctx, "title", 200)
    ctx.api.post(ctx.c(f"/consultations/{consultation_id}/options/{option}/amendments"), body)
    return back(ctx, f"/consultations/{consultation_id}")


@page("/communities/<community>/consultations/<consultation_id>/amendments/<amendment>/ruling", methods=("POST",))
def amendment_ruling(ctx: Ctx, community: str, consultation_id: str, amendment: str):
    convener_only(ctx, consultation_id)
    reason = field(ctx, "reason", 2000)
    if not reason:
        raise Refused(422, "A ruling needs a written reason.")
    ctx.api.post(ctx.c(f"/consultations/{consultation_id}/amendments/{amendment}/ruling"),
                 {"accept": field(ctx, "accept", 5) == "yes", "reason": reason})
    return back(ctx, f"/consultations/{consultation_id}/manage")


# ---- meetings and minutes ---------------------------------------------------------------------------
@page("/communities/<community>/meetings/<meeting>/cancellation", methods=("POST",))
def meeting_cancel(ctx: Ctx, community: str, meeting: str):
    m = ctx.api.get(ctx.c(f"/meetings/{meeting}"))
    convener_only(ctx, m["consultation"])
    reason = field(ctx, "reason", 2000)
    if not reason:
        raise Refused(422, "A cancellation needs a written reason.")
    ctx.api.post(ctx.c(f"/meetings/{meeting}/cancellation"), {"reason": reason})
    return back(ctx, f"/meetings/{meeting}")


@page("/communities/<community>/minutes/<minutes>/<kind>", methods=("POST",))
def minutes_change(ctx: Ctx, community: str, minutes: str, kind: str):
    """A revision of unsigned minutes (their recorder) or a correction of confirmed minutes (the
    meeting's secretary or the convener): a new record linked to the one it corrects."""
    if kind not in ("revision", "correction"):
        raise Refused(404, "This page does not exist.")
    mi = ctx.api.get(ctx.c(f"/minutes/{minutes}"))
    if kind == "revision":
        allow(ctx, mi.get("recorded_by") == me(ctx))
    else:
        m = ctx.api.get(ctx.c(f"/meetings/{mi['meeting']}"))
        c = consultation(ctx, m["consultation"])
        allow(ctx, me(ctx) in (m.get("secretary"), c.get("convener")))
    text = field(ctx, "text", 50000)
    if not text:
        raise Refused(422, "Please write something first.")
    path = "/revisions" if kind == "revision" else "/corrections"
    ctx.api.post(ctx.c(f"/minutes/{minutes}{path}"), {"text": text})
    return back(ctx, f"/meetings/{mi['meeting']}")


# ---- comments: moderation and one's own edits ----------------------------------------------------------
@page("/communities/<community>/comments/<comment>/moderation", methods=("GET", "POST"))
def comment_moderate(ctx: Ctx, community: str, comment: str):
    needs(ctx, "moderator")
    cm = ctx.api.get(ctx.c(f"/comments/{comment}"))
    if ctx.request.method == "GET":
        return ctx.render("delib_moderate.html", cm=cm, people=names(ctx))
    reason = field(ctx, "reason", 2000)
    if not reason:
        raise Refused(422, "Moderation needs a written reason.")
    action = "/restoration" if cm.get("hidden") else "/hiding"
    ctx.api.post(ctx.c(f"/comments/{comment}{action}"), {"reason": reason})
    return ctx.redirect(f"/communities/{community}/consultations/{cm['consultation']}#comment-{comment}")


@page("/communities/<community>/comments/<comment>/edit", methods=("GET", "POST"))
def comment_edit(ctx: Ctx, community: str, comment: str):
    cm = ctx.api.get(ctx.c(f"/comments/{comment}"))
    if cm.get("author") != me(ctx):
        raise Refused(403, "Only its author may edit a comment.")
    if ctx.request.method == "GET":
        return ctx.render("delib_comment_edit.html", cm=cm)
    text = field(ctx, "text", 5000)
    if not text:
        raise Refused(422, "Please write something first.")
    ctx.api.post(ctx.c(f"/comments/{comment}/edits"), {"text": text})
    return ctx.redirect(f"/communities/{community}/consultations/{cm['consultation']}#comment-{comment}")
