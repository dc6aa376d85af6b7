"""The pages of a case, stage by stage: proposal (提议), consultation and meeting (议事), ballot and
result (决策), action plan and evaluation (行动), and the case file (案卷). Forms post here; each
handler makes the one API call the form stands for and sends the browser back to the page (303).

A worker's form (screening, managing a consultation, preparing a ballot, running a plan, invitations)
is a page of its own that answers 403 to a person without the role, before anything is sent; what
the page lets through the API still decides (it answers 403 too, and nothing is recorded)."""
from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from fractions import Fraction

from werkzeug.wrappers import Response

from .api import ApiError
from .app import Ctx, Refused, page

WORKERS = ("community_worker", "party_lead")
BODY_ROLES = ("community_worker", "party_lead", "grid_leader", "building_leader")
STANCES = ("for", "against", "neutral", "question")
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
PRESETS = ("owners_ordinary", "owners_major", "residents_meeting", "council", "generic")
METHODS = ("majority", "supermajority", "consent", "approval", "schulze", "irv", "score")
UNITS = ("owner", "resident", "household", "council")
EVIDENCE_MAX = 5 * 1024 * 1024
SHOWN_INLINE = ("image/png", "image/jpeg", "image/gif", "image/webp")
FUNDING = ("maintenance_fund", "public_service_fund", "government", "property_company", "owners", "donation", "other")


# ---- helpers ---------------------------------------------------------------------------------------
def needs(ctx: Ctx, *roles: str) -> None:
    """A worker's page: 403 for a person without one of the roles (nothing is asked of the API)."""
    if not ctx.has(*roles):
        raise Refused(403, "Your role does not allow this.")


def field(ctx: Ctx, name: str, limit: int = 5000) -> str:
    return (ctx.form().get(name) or "").strip()[:limit]


def moment(value: str) -> str:
    """A datetime-local field (read as UTC, as the form says) as the API's RFC 3339 time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(422, "Some of what you entered is not valid.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def directory(ctx: Ctx) -> dict:
    """The community's directory as the person may read it; empty if the API refuses (a page then
    shows ids instead of names rather than failing)."""
    try:
        return ctx.api.get(ctx.c("/directory"))
    except ApiError:
        return {"people": [], "households": [], "buildings": [], "compounds": []}


def names(ctx: Ctx) -> dict:
    """Person id -> name, from the community's directory (shown instead of ids)."""
    return {p["id"]: p["name"] for p in directory(ctx).get("people", [])}


def case_file(ctx: Ctx, case: str) -> dict:
    return ctx.api.get(ctx.c(f"/cases/{case}"))


def texts(file: dict) -> dict:
    out = {}
    for item in file.get("items", []):
        out.update(item.get("texts") or {})
    return out


def parts(file: dict) -> dict:
    """The ids of a case's parts, from its file: proposal, consultation, meetings, minutes, ballot, plan."""
    found: dict = {"meetings": [], "minutes": []}
    for item in file.get("items", []):
        kind, ident = item["aggregate"]["type"], item["aggregate"]["id"]
        if kind == "Proposal":
            found.setdefault("proposal", ident)
        elif kind == "Consultation":
            found.setdefault("consultation", ident)
        elif kind == "Ballot":
            found["ballot"] = ident
        elif kind == "ActionPlan":
            found["plan"] = ident
        elif kind == "Meeting" and ident not in found["meetings"]:
            found["meetings"].append(ident)
        elif kind == "Minutes" and ident not in found["minutes"]:
            found["minutes"].append(ident)
    if file.get("plan"):
        found["plan"] = file["plan"]
    return found


def stage_of(file: dict) -> str:
    if file.get("status") == "closed":
        return "closed"
    stages = file.get("stages") or ["proposal"]
    return stages[-1]


def back(ctx: Ctx, path: str):
    return ctx.redirect(f"/communities/{ctx.community}{path}")


# ---- proposals -------------------------------------------------------------------------------------
@page("/communities/<community>/proposals/new", methods=("GET", "POST"))
def proposal_new(ctx: Ctx, community: str):
    info = ctx.api.get(ctx.c())
    directory = ctx.api.get(ctx.c("/directory"))
    if ctx.request.method == "GET":
        return ctx.render("proposal_new.html", categories=info["rules"]["categories"], directory=directory)
    scope = field(ctx, "scope", 20)
    scope_id = field(ctx, f"scope_id_{scope}", 40) or None if scope != "community" else None
    title, body = field(ctx, "title", 120), field(ctx, "body")
    if not title or not body:
        raise Refused(422, "Please give the proposal a title and say what it is about.")
    made = ctx.api.post(ctx.c("/proposals"), {"title": title, "body": body, "category": field(ctx, "category", 40),
                                             "scope": scope, "scope_id": scope_id})
    ctx.api.post(ctx.c(f"/proposals/{made['id']}/submit"))
    return back(ctx, f"/proposals/{made['id']}")


@page("/communities/<community>/proposals/<proposal>")
def proposal_view(ctx: Ctx, community: str, proposal: str):
    p = ctx.api.get(ctx.c(f"/proposals/{proposal}"))
    merged_into = None
    if p.get("merged_into"):  # the proposal it joined, by its title
        try:
            merged_into = ctx.api.get(ctx.c(f"/proposals/{p['merged_into']}"))
        except ApiError:
            merged_into = None
    return ctx.render("proposal.html", p=p, people=names(ctx), me=ctx.who(), worker=ctx.has(*WORKERS),
                      merged_into=merged_into)


@page("/communities/<community>/proposals/<proposal>/<action>", methods=("POST",))
def proposal_act(ctx: Ctx, community: str, proposal: str, action: str):
    paths = {"support": "/supports", "unsupport": "/supports/withdraw", "submit": "/submit", "withdraw": "/withdraw"}
    if action not in paths:
        raise Refused(404, "This page does not exist.")
    ctx.api.post(ctx.c(f"/proposals/{proposal}{paths[action]}"))
    return back(ctx, f"/proposals/{proposal}")


@page("/communities/<community>/proposals/<proposal>/screening", methods=("GET", "POST"))
def proposal_screen(ctx: Ctx, community: str, proposal: str):
    needs(ctx, *WORKERS)
    if ctx.request.method == "GET":
        p = ctx.api.get(ctx.c(f"/proposals/{proposal}"))
        categories = ctx.api.get(ctx.c())["rules"]["categories"]
        return ctx.render("screen.html", p=p, categories=categories)
    admissible = field(ctx, "admissible", 5) == "yes"
    reason = field(ctx, "reason", 2000)
    if not admissible and not reason:
        raise Refused(422, "A proposal not admitted needs a written reason.")
    body = {"admissible": admissible, "category": field(ctx, "category", 40) or None}
    if reason:
        body["reason"] = reason
    ctx.api.post(ctx.c(f"/proposals/{proposal}/screen"), {k: v for k, v in body.items() if v is not None})
    return back(ctx, f"/proposals/{proposal}")


# ---- the case and its file -----------------------------------------------------------------------
def follow_ups_of(file: dict) -> list[dict]:
    """The follow-up proposals a reopened plan opened, each with its title: a case's file holds its
    follow-ups' events too (one track), so each follow-up's own first event names it."""
    words = texts(file)
    titles = {item.get("case"): words.get(item["data"].get("title_commitment"))
              for item in file.get("items", []) if item["type"] == "ProposalDrafted"}
    return [{"case": f, "title": titles.get(f)} for f in file.get("follow_ups") or []]


@page("/communities/<community>/cases/<case>")
def case_view(ctx: Ctx, community: str, case: str):
    file = case_file(ctx, case)
    found = parts(file)
    words = texts(file)
    title = None
    for item in file.get("items", []):
        if item["type"] == "ProposalDrafted":
            title = words.get(item["data"].get("title_commitment"))
            break
    return ctx.render("case.html", file=file, parts=found, words=words, title=title, stage=stage_of(file),
                      people=names(ctx), follow_ups=follow_ups_of(file))


# ---- deliberation ----------------------------------------------------------------------------------
@page("/communities/<community>/consultations/<consultation>")
def consultation_view(ctx: Ctx, community: str, consultation: str):
    c = ctx.api.get(ctx.c(f"/consultations/{consultation}"))
    comments = ctx.api.get(ctx.c(f"/consultations/{consultation}/comments"), limit=200)
    file = case_file(ctx, c["case"]) if c.get("case") else {"items": []}
    return ctx.render("consultation.html", c=c, comments=comments.get("comments", []), people=names(ctx),
                      parts=parts(file), stances=STANCES, body_member=ctx.has(*BODY_ROLES))


@page("/communities/<community>/consultations/<consultation>/<action>", methods=("POST",))
def consultation_act(ctx: Ctx, community: str, consultation: str, action: str):
    path = ctx.c(f"/consultations/{consultation}")
    if action == "comment":
        text = field(ctx, "text", 5000)
        if not text:
            raise Refused(422, "Please write something first.")
        body = {"text": text, "stance": field(ctx, "stance", 20) or "neutral"}
        if field(ctx, "reply_to", 40):
            body["reply_to"] = field(ctx, "reply_to", 40)
        ctx.api.post(path + "/comments", body)
    elif action == "option":
        ctx.api.post(path + "/options", {"title": field(ctx, "title", 200), "description": field(ctx, "description")})
    elif action == "flag":
        ctx.api.post(ctx.c(f"/comments/{field(ctx, 'comment', 40)}/flags"))
    else:
        raise Refused(404, "This page does not exist.")
    return back(ctx, f"/consultations/{consultation}")


@page("/communities/<community>/consultations/<consultation>/manage", methods=("GET",))
def consultation_manage(ctx: Ctx, community: str, consultation: str):
    needs(ctx, *BODY_ROLES)
    c = ctx.api.get(ctx.c(f"/consultations/{consultation}"))
    file = case_file(ctx, c["case"]) if c.get("case") else {"items": []}
    directory = ctx.api.get(ctx.c("/directory"))
    return ctx.render("consultation_manage.html", c=c, parts=parts(file), people=directory.get("people", []),
                      presets=PRESETS)


@page("/communities/<community>/consultations/<consultation>/manage/<action>", methods=("POST",))
def consultation_manage_act(ctx: Ctx, community: str, consultation: str, action: str):
    path = ctx.c(f"/consultations/{consultation}")
    if action == "final-options":
        ctx.api.post(path + "/final-options", {"options": ctx.form().getlist("options")[:50]})
    elif action == "meeting":
        agenda = [line.strip()[:200] for line in field(ctx, "agenda").splitlines() if line.strip()][:20]
        made = ctx.api.post(path + "/meetings", {"starts_at": moment(field(ctx, "starts_at", 40)),
                                                 "mode": field(ctx, "mode", 20), "place": field(ctx, "place", 200),
                                                 "agenda": agenda, "secretary": field(ctx, "secretary", 40)})
        return back(ctx, f"/meetings/{made['id']}")
    elif action == "conclusion":
        body = {"outcome": field(ctx, "outcome", 20), "summary": field(ctx, "summary"),
                "meeting": field(ctx, "meeting", 40)}
        if field(ctx, "suggested_rule", 40):
            body["suggested_rule"] = field(ctx, "suggested_rule", 40)
        ctx.api.post(path + "/conclusion", body)
    else:
        raise Refused(404, "This page does not exist.")
    return back(ctx, f"/consultations/{consultation}")


@page("/communities/<community>/meetings/<meeting>")
def meeting_view(ctx: Ctx, community: str, meeting: str):
    m = ctx.api.get(ctx.c(f"/meetings/{meeting}"))
    minutes = [ctx.api.get(ctx.c(f"/minutes/{x['id']}")) for x in m.get("minutes", [])]
    convener = None  # who may cancel the meeting and correct its minutes
    if m.get("consultation"):
        convener = ctx.api.get(ctx.c(f"/consultations/{m['consultation']}")).get("convener")
    return ctx.render("meeting.html", m=m, minutes=minutes, people=names(ctx), me=ctx.who(), convener=convener)


@page("/communities/<community>/meetings/<meeting>/<action>", methods=("POST",))
def meeting_act(ctx: Ctx, community: str, meeting: str, action: str):
    path = ctx.c(f"/meetings/{meeting}")
    if action == "attend":
        ctx.api.post(path + "/attendance", {})
    elif action in ("opening", "closing"):
        ctx.api.post(path + "/" + action)
    elif action == "minutes":
        ctx.api.post(path + "/minutes", {"text": field(ctx, "text")})
    elif action == "sign":
        ctx.api.post(ctx.c(f"/minutes/{field(ctx, 'minutes', 40)}/signatures"))
    else:
        raise Refused(404, "This page does not exist.")
    return back(ctx, f"/meetings/{meeting}")


# ---- decision --------------------------------------------------------------------------------------
def _fraction(value) -> Fraction:
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def bars(result: dict | None) -> list[dict]:
    """The result's thresholds as bars: value / total, the required line, met or not."""
    out = []
    for group in ("quorum", "approval"):
        for t in (result or {}).get(group) or []:
            total = _fraction(t.get("total"))
            share = (lambda x: float(min(x / total, 1)) if total else 0.0)
            out.append(dict(t, group=group, value_share=share(_fraction(t.get("value"))),
                            required_share=share(_fraction(t.get("required")))))
    return out


def shown(value) -> str:
    """A number as the result gives it ("7/2" becomes 3.5)."""
    f = _fraction(value)
    if f.denominator == 1:
        return str(f.numerator)
    return f"{float(f):.2f}".rstrip("0").rstrip(".")


@page("/communities/<community>/ballots/<ballot>")
def ballot_view(ctx: Ctx, community: str, ballot: str):
    b = ctx.api.get(ctx.c(f"/ballots/{ballot}"))
    file = case_file(ctx, b["case"]) if b.get("case") else {"items": []}
    words = texts(file)
    mine = None
    try:
        mine = ctx.api.get(ctx.c(f"/ballots/{ballot}/my-vote"))
    except ApiError as exc:
        if exc.status not in (403, 404, 409):
            raise
    rule = (b.get("configuration") or {}).get("rule") or {}
    options = [dict(o, title=o.get("title") or words.get(o.get("title_commitment")),
                    description=o.get("description") or words.get(o.get("description_commitment")))
               for o in b.get("options", [])]
    chosen = {o["id"] if isinstance(o, dict) else o for o in (b.get("configuration") or {}).get("options") or []}
    configured = [o for o in options if o["id"] in chosen]
    motion = (b.get("configuration") or {}).get("motion")
    return ctx.render("ballot.html", b=b, rule=rule, options=configured or options, motion=motion, mine=mine,
                      title=b.get("title") or words.get(b.get("title_commitment")), bars=bars(b.get("result")),
                      shown=shown, worker=ctx.has(*WORKERS), parts=parts(file))


def choice_from(ctx: Ctx, method: str, options: list[str], params: dict | None = None):
    """The vote a ballot form stands for, in the API's form; refused (422, with what to do) when it
    cannot be a vote under the method: ranks tied or out of range, a score outside the rule's range."""
    f = ctx.form()
    if f.get("abstain") == "1" or f.get("choice") == "abstain":
        return "abstain"
    if method == "approval":
        chosen = [o for o in f.getlist("approve") if o in options]
        if not chosen:  # "Vote" with nothing ticked: a slip (the Abstain button abstains)
            raise Refused(422, "Please choose before you vote.")
        return chosen
    if method in ("schulze", "irv"):
        ranks = {}
        for o in options:
            r = f.get(f"rank_{o}", "").strip()
            if r:
                if not r.isdigit() or not 1 <= int(r) <= len(options):
                    raise Refused(422, "Some of what you entered is not valid.")
                ranks[o] = int(r)
        if len(set(ranks.values())) != len(ranks):
            raise Refused(422, "Give each option a different rank (no ties).")
        if not ranks:
            raise Refused(422, "Please choose before you vote.")
        return [o for o, _ in sorted(ranks.items(), key=lambda x: x[1])]
    if method == "score":
        scores = {}
        low, high = (params or {}).get("min_score", 0), (params or {}).get("max_score", 5)
        for o in options:
            s = f.get(f"score_{o}", "").strip()
            if s:
                try:
                    scores[o] = int(s)
                except ValueError:
                    raise Refused(422, "Some of what you entered is not valid.") from None
                if not low <= scores[o] <= high:
                    raise Refused(422, "Give each score within the range shown.")
        if not scores:
            raise Refused(422, "Please choose before you vote.")
        return scores
    choice = f.get("choice", "")
    if not choice:
        raise Refused(422, "Please choose before you vote.")
    return choice[:64]


@page("/communities/<community>/ballots/<ballot>/<action>", methods=("POST",))
def ballot_act(ctx: Ctx, community: str, ballot: str, action: str):
    path = ctx.c(f"/ballots/{ballot}")
    if action == "vote":
        b = ctx.api.get(path)
        config = b.get("configuration") or {}
        rule = config.get("rule") or {}
        options = [o["id"] if isinstance(o, dict) else o for o in config.get("options") or []]
        ctx.api.post(path + "/votes", {"choice": choice_from(ctx, rule.get("method", "majority"), options,
                                                             rule.get("params"))})
    else:  # objections: pages_decisions.py
        raise Refused(404, "This page does not exist.")
    return back(ctx, f"/ballots/{ballot}")


@page("/communities/<community>/ballots/<ballot>/configuration", methods=("GET", "POST"))
def ballot_configure(ctx: Ctx, community: str, ballot: str):
    needs(ctx, *WORKERS)
    b = ctx.api.get(ctx.c(f"/ballots/{ballot}"))
    if ctx.request.method == "GET":
        file = case_file(ctx, b["case"]) if b.get("case") else {"items": []}
        words = texts(file)
        options = [dict(o, title=o.get("title") or words.get(o.get("title_commitment"))) for o in b.get("options", [])]
        from .pages_decisions import roll_rows  # (pages_decisions imports this module)

        unit = ctx.request.args.get("voting_unit") or (b.get("configuration") or {}).get("voting_unit")
        if unit not in UNITS:
            unit = "owner" if (b.get("suggested_rule") or "owners_ordinary").startswith("owners") else "resident"
        # The preview is the decisions service's own roll rule over today's directory (GET …/roll-preview);
        # a roll it cannot build is refused with the reason, shown here as the problem to fix.
        problem, preview = None, []
        try:
            preview = ctx.api.get(ctx.c(f"/ballots/{ballot}/roll-preview"), voting_unit=unit)["roll"]
        except ApiError as exc:
            if exc.status != 422:
                raise
            problem = exc.problem.get("detail")
        rows, totals = roll_rows(directory(ctx), preview, unit)
        return ctx.render("ballot_configure.html", b=b, options=options, presets=PRESETS, methods=METHODS, units=UNITS,
                          unit=unit, preview=rows, totals=totals, number=shown, problem=problem)
    body = {"preset": field(ctx, "preset", 40), "voting_unit": field(ctx, "voting_unit", 20),
            "opens_at": moment(field(ctx, "opens_at", 40)), "closes_at": moment(field(ctx, "closes_at", 40)),
            "secret": ctx.form().get("secret") == "1", "changeable": ctx.form().get("changeable") == "1"}
    if field(ctx, "method", 20):
        body["method"] = field(ctx, "method", 20)
    chosen = ctx.form().getlist("options")
    if chosen:
        body["options"] = chosen[:50]
    ctx.api.put(ctx.c(f"/ballots/{ballot}/configuration"), body)
    return back(ctx, f"/ballots/{ballot}")


# ---- action ----------------------------------------------------------------------------------------
# A task's responsible party -> the role that reports its progress (workers report on every task; the
# API decides: services/actions REPORTING_ROLES).
REPORTED_BY = {"property_company": "property_company", "grid_leader": "grid_leader"}


@page("/communities/<community>/plans/<plan>")
def plan_view(ctx: Ctx, community: str, plan: str):
    p = ctx.api.get(ctx.c(f"/action-plans/{plan}"))
    mine = None
    try:
        mine = ctx.api.get(ctx.c(f"/action-plans/{plan}/evaluations/mine"))
    except ApiError as exc:
        if exc.status not in (403, 404, 409):
            raise
    file = case_file(ctx, p["case"]) if p.get("case") else {"items": []}
    title = p.get("title") or texts(file).get(p.get("title_commitment"))
    reports = {kind for kind, role in REPORTED_BY.items() if ctx.has(role)}
    return ctx.render("plan.html", p=p, title=title, mine=mine, ratings=RATINGS, people=names(ctx),
                      worker=ctx.has(*WORKERS), reports=reports, follow_ups=follow_ups_of(file))


@page("/communities/<community>/plans/<plan>/<action>", methods=("POST",))
def plan_act(ctx: Ctx, community: str, plan: str, action: str):
    path = ctx.c(f"/action-plans/{plan}")
    if action == "evaluate":
        body = {"rating": field(ctx, "rating", 30)}
        if field(ctx, "comment", 2000):
            body["comment"] = field(ctx, "comment", 2000)
        ctx.api.post(path + "/evaluations", body)
    elif action == "progress":
        try:
            percent = int(field(ctx, "percent", 3))
        except ValueError:
            raise Refused(422, "Some of what you entered is not valid.") from None
        body = {"percent": percent}
        if field(ctx, "note", 2000):
            body["note"] = field(ctx, "note", 2000)
        upload = ctx.request.files.get("evidence")
        if upload and upload.filename:
            data = upload.read(EVIDENCE_MAX + 1)
            if not data or len(data) > EVIDENCE_MAX:
                raise Refused(422, "An evidence file must hold something and be at most 5 MB.")
            kind = upload.mimetype if upload.mimetype in SHOWN_INLINE + ("application/pdf",) else \
                "application/octet-stream"
            stored = ctx.api.post(ctx.c("/evidence"), {"content_base64": base64.b64encode(data).decode("ascii"),
                                                       "media_type": kind})
            body["evidence"] = [stored["sha256"]]
        ctx.api.post(path + f"/tasks/{field(ctx, 'task', 40)}/progress", body)
    else:
        raise Refused(404, "This page does not exist.")
    return back(ctx, f"/plans/{plan}")


@page("/communities/<community>/plans/<plan>/manage", methods=("GET",))
def plan_manage(ctx: Ctx, community: str, plan: str):
    needs(ctx, *WORKERS)
    p = ctx.api.get(ctx.c(f"/action-plans/{plan}"))
    return ctx.render("plan_manage.html", p=p, funding=FUNDING)


@page("/communities/<community>/plans/<plan>/manage/<action>", methods=("POST",))
def plan_manage_act(ctx: Ctx, community: str, plan: str, action: str):
    path = ctx.c(f"/action-plans/{plan}")
    if action == "task":
        body = {"title": field(ctx, "title", 200), "responsible_party": {"kind": field(ctx, "party", 40)},
                "due_at": moment(field(ctx, "due_at", 40))}
        if field(ctx, "budget", 20):
            body["budget"] = field(ctx, "budget", 20)
        if field(ctx, "funding_source", 40):
            body["funding_source"] = field(ctx, "funding_source", 40)
        ctx.api.post(path + "/tasks", body)
    elif action == "done":
        ctx.api.post(path + "/done", {"summary": field(ctx, "summary")})
    else:
        raise Refused(404, "This page does not exist.")
    return back(ctx, f"/plans/{plan}")


@page("/communities/<community>/evidence/<sha256>")
def evidence(ctx: Ctx, community: str, sha256: str):
    """An evidence file, as the API holds it (checked against its hash there). Pictures are shown;
    anything else is a download, never rendered by the browser as a page of ours."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise Refused(404, "This page does not exist.")
    data, kind = ctx.api.file(ctx.c(f"/evidence/{sha256}"))
    resp = Response(data, content_type=kind if kind in SHOWN_INLINE else "application/octet-stream")
    if kind not in SHOWN_INLINE:
        resp.headers["Content-Disposition"] = f'attachment; filename="evidence-{sha256[:12]}"'
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp
