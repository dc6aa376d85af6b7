"""The decision stage's pages beyond voting online (决策): paper ballots and proxies, objections in the
publicity period, the emergency path, annulment and re-runs, and a voter's receipt check.

Each form makes the one API call it stands for (`services/gateway/routes_decisions.py`) and sends the
browser back (303). A worker's page answers 403 to a person without the role before anything is
sent; what it lets through, the API still decides (it answers 403 too, and nothing is recorded)."""
from __future__ import annotations

import re
from fractions import Fraction

from .api import ApiError
from .app import Ctx, Refused, page
from .pages_case import case_file, choice_from, directory, field, needs, shown

PAPER = ("community_worker",)  # paper ballots, paper proxies and annulment: the API lets only the worker
ORGANISERS = ("community_worker", "party_lead")  # emergencies, re-runs, closing without a re-run
SCOPES = ("building", "compound", "community")
RESOLVED = ("adopted", "rejected")
RECEIPT = re.compile(r"[0-9a-f]{64}")


# ---- helpers ---------------------------------------------------------------------------------------
def ballot_of(ctx: Ctx, ballot: str) -> dict:
    return ctx.api.get(ctx.c(f"/ballots/{ballot}"))


def title_of(b: dict) -> str | None:
    motion = (b.get("configuration") or {}).get("motion") or {}
    return b.get("title") or motion.get("title")


def choosing(b: dict) -> tuple[str, list[dict]]:
    """The ballot's method and the options a choice is made among (none for a motion)."""
    config = b.get("configuration") or {}
    return (config.get("rule") or {}).get("method", "majority"), list(config.get("options") or [])


def params_of(b: dict) -> dict:
    """The rule's parameters (a score ballot's range)."""
    return ((b.get("configuration") or {}).get("rule") or {}).get("params") or {}


def labels(found: dict) -> dict:
    """Voter id -> what a person reads: a person's name, a household's building and unit."""
    out = {p["id"]: p.get("name") or p["id"][:8] for p in found.get("people", [])}
    buildings = {b["id"]: b.get("name") or "" for b in found.get("buildings", [])}
    for h in found.get("households", []):
        out.setdefault(h["id"], f"{buildings.get(h.get('building'), '')} {h.get('unit') or ''}".strip())
    return out


def roll_of(ctx: Ctx, b: dict) -> list[dict] | None:
    """The frozen roll once the ballot opened (None before)."""
    if not b.get("roll_hash"):
        return None
    try:
        return ctx.api.get(ctx.c(f"/ballots/{b['id']}/roll")).get("roll", [])
    except ApiError as exc:
        if exc.status == 409:
            return None
        raise


def voters(ctx: Ctx, b: dict, found: dict) -> list[dict]:
    """Whom a paper ballot or authorisation may be for: the roll once frozen; before, the directory's
    people (or households, for a household ballot), as the API checks them."""
    named = labels(found)
    roll = roll_of(ctx, b)
    if roll is not None:
        entries = [{"id": e["voter"], "name": named.get(e["voter"], e["voter"][:8]), "weight": e.get("weight"),
                    "headcount": e.get("headcount")} for e in roll]
    elif ((b.get("configuration") or {}).get("voting_unit")) == "household":
        entries = [{"id": h["id"], "name": named.get(h["id"])} for h in found.get("households", [])]
    else:
        entries = [{"id": p["id"], "name": named.get(p["id"])} for p in found.get("people", []) if p.get("adult", True)]
    return sorted(entries, key=lambda e: (e["name"] or "", e["id"]))


def receipt_arg(ctx: Ctx, name: str) -> str | None:
    """A receipt a redirect carries back to the page to show (only a receipt's 64 hex digits)."""
    value = ctx.request.args.get(name, "")
    return value if RECEIPT.fullmatch(value) else None


def to_ballot(ctx: Ctx, ballot: str, tail: str = "", query: str = ""):
    return ctx.redirect(f"/communities/{ctx.community}/ballots/{ballot}{tail}{'?' + query if query else ''}")


def serial(ctx: Ctx) -> str:
    value = field(ctx, "paper_serial", 64)
    if not value:
        raise Refused(422, "Please give the serial number printed on the paper.")
    return value


def reason(ctx: Ctx, name: str = "reason") -> str:
    value = field(ctx, name, 5000)
    if not value:
        raise Refused(422, "Please give a reason.")
    return value


# ---- paper ballots and paper proxies (a community worker) -----------------------------------------
@page("/communities/<community>/ballots/<ballot>/paper", methods=("GET", "POST"), endpoint="decisions_paper")
def paper(ctx: Ctx, community: str, ballot: str):
    needs(ctx, *PAPER)
    b = ballot_of(ctx, ballot)
    if ctx.request.method == "POST":
        method, options = choosing(b)
        body = {"voter": field(ctx, "voter", 64), "paper_serial": serial(ctx),
                "choice": choice_from(ctx, method, [o["id"] for o in options], params_of(b))}
        if field(ctx, "correction_reason", 5000):
            body["correction_reason"] = field(ctx, "correction_reason", 5000)
        if not body["voter"]:
            raise Refused(422, "Please choose the voter whose paper ballot this is.")
        made = ctx.api.post(ctx.c(f"/ballots/{ballot}/paper-ballots"), body)
        return to_ballot(ctx, ballot, "/paper", f"entered={made['receipt']}")
    found = directory(ctx)
    method, options = choosing(b)
    return ctx.render("decision_paper.html", b=b, title=title_of(b), method=method, options=options,
                      rule=(b.get("configuration") or {}).get("rule") or {}, voters=voters(ctx, b, found),
                      people=sorted(found.get("people", []), key=lambda p: (p.get("name") or "", p["id"])),
                      named=labels(found), entered=receipt_arg(ctx, "entered"),
                      proxy_recorded=ctx.request.args.get("proxy") == "1")


@page("/communities/<community>/ballots/<ballot>/paper-proxy", methods=("POST",), endpoint="decisions_paper_proxy")
def paper_proxy(ctx: Ctx, community: str, ballot: str):
    needs(ctx, *PAPER)
    principal, holder = field(ctx, "principal", 64), field(ctx, "holder", 64)
    if not principal or not holder:
        raise Refused(422, "Please choose who gives the authorisation and who holds it.")
    if principal == holder:
        raise Refused(422, "A voter cannot be their own proxy.")
    ctx.api.post(ctx.c(f"/ballots/{ballot}/paper-proxies"),
                 {"principal": principal, "holder": holder, "paper_serial": serial(ctx)})
    return to_ballot(ctx, ballot, "/paper", "proxy=1")


# ---- proxies on the platform (any voter) ------------------------------------------------------------
@page("/communities/<community>/ballots/<ballot>/proxy", endpoint="decisions_proxy")
def proxy(ctx: Ctx, community: str, ballot: str):
    b = ballot_of(ctx, ballot)
    mine = None
    try:
        mine = ctx.api.get(ctx.c(f"/ballots/{ballot}/proxies/mine"))
    except ApiError as exc:
        if exc.status not in (403, 404, 409):
            raise
    found = directory(ctx)
    me = ctx.who().get("person")
    method, options = choosing(b)
    people = sorted((p for p in found.get("people", []) if p["id"] != me and p.get("adult", True)),
                    key=lambda p: (p.get("name") or "", p["id"]))
    return ctx.render("decision_proxy.html", b=b, title=title_of(b), mine=mine, people=people, named=labels(found),
                      principals=voters(ctx, b, found) if b["status"] == "open" else [], method=method,
                      options=options, rule=(b.get("configuration") or {}).get("rule") or {},
                      voted=receipt_arg(ctx, "voted"))


@page("/communities/<community>/ballots/<ballot>/proxy/<action>", methods=("POST",), endpoint="decisions_proxy_act")
def proxy_act(ctx: Ctx, community: str, ballot: str, action: str):
    path = ctx.c(f"/ballots/{ballot}")
    if action == "authorise":
        holder = field(ctx, "holder", 64)
        if not holder:
            raise Refused(422, "Please choose who votes for you.")
        ctx.api.post(path + "/proxies", {"holder": holder})
    elif action == "revoke":
        ctx.api.delete(path + "/proxies/mine")
    elif action == "vote":
        b = ballot_of(ctx, ballot)
        method, options = choosing(b)
        voter = field(ctx, "voter", 64)
        if not voter:
            raise Refused(422, "Please choose the voter whose proxy you are.")
        made = ctx.api.post(path + "/votes", {"voter": voter,
                                              "choice": choice_from(ctx, method, [o["id"] for o in options],
                                                                 params_of(b))})
        return to_ballot(ctx, ballot, "/proxy", f"voted={made['receipt']}")
    else:
        raise Refused(404, "This page does not exist.")
    return to_ballot(ctx, ballot, "/proxy")


# ---- objections in the publicity period -----------------------------------------------------------
def may_rule(ctx: Ctx, b: dict) -> bool:
    """As the API decides: the convener rules; on a ballot without a consultation, the party lead."""
    if ctx.who().get("platform_admin"):
        return True
    if b.get("convener"):
        return b["convener"] == ctx.who().get("person")
    return ctx.has("party_lead")


@page("/communities/<community>/ballots/<ballot>/objections", methods=("GET", "POST"), endpoint="decisions_objections")
def objections(ctx: Ctx, community: str, ballot: str):
    if ctx.request.method == "POST":
        text = field(ctx, "text", 5000)
        if not text:
            raise Refused(422, "Please write your objection first.")
        ctx.api.post(ctx.c(f"/ballots/{ballot}/objections"), {"text": text})
        return to_ballot(ctx, ballot, "/objections")
    b = ballot_of(ctx, ballot)
    return ctx.render("decision_objections.html", b=b, title=title_of(b), named=labels(directory(ctx)),
                      ruler=may_rule(ctx, b), resolved=b["status"] in RESOLVED)


@page("/communities/<community>/ballots/<ballot>/objections/<objection>/ruling", methods=("POST",),
      endpoint="decisions_objection_ruling")
def objection_ruling(ctx: Ctx, community: str, ballot: str, objection: str):
    upheld = field(ctx, "upheld", 5)
    if upheld not in ("yes", "no"):
        raise Refused(422, "Please say whether the objection is upheld.")
    ctx.api.post(ctx.c(f"/ballots/{ballot}/objections/{objection}/ruling"),
                 {"upheld": upheld == "yes", "reason": reason(ctx)})
    return to_ballot(ctx, ballot, "/objections")


# ---- the emergency path, annulment and re-runs (the 1+2+X's workers and lead) ----------------------
@page("/communities/<community>/emergencies/new", methods=("GET", "POST"), endpoint="decisions_emergency_new")
def emergency_new(ctx: Ctx, community: str):
    needs(ctx, *ORGANISERS)
    if ctx.request.method == "GET":
        info = ctx.api.get(ctx.c())
        return ctx.render("decision_emergency.html", directory=directory(ctx),
                          categories=info.get("rules", {}).get("categories", []))
    title, scope = field(ctx, "title", 200), field(ctx, "scope", 20)
    if not title:
        raise Refused(422, "Please give the repair a title.")
    if scope not in SCOPES:
        raise Refused(422, "Some of what you entered is not valid.")
    body = {"title": title, "justification": reason(ctx, "justification"), "scope": scope}
    if scope != "community":
        body["scope_id"] = field(ctx, f"scope_id_{scope}", 40)
    if field(ctx, "category", 40):
        body["category"] = field(ctx, "category", 40)
    made = ctx.api.post(ctx.c("/emergencies"), body)
    return to_ballot(ctx, made["id"], "/manage")


@page("/communities/<community>/ballots/<ballot>/manage", endpoint="decisions_manage")
def manage(ctx: Ctx, community: str, ballot: str):
    needs(ctx, *ORGANISERS)
    b = ballot_of(ctx, ballot)
    return ctx.render("decision_manage.html", b=b, title=title_of(b), named=labels(directory(ctx)),
                      me=ctx.who().get("person"), worker=ctx.has("community_worker"))


@page("/communities/<community>/ballots/<ballot>/manage/<action>", methods=("POST",), endpoint="decisions_manage_act")
def manage_act(ctx: Ctx, community: str, ballot: str, action: str):
    needs(ctx, *ORGANISERS)
    path = ctx.c(f"/ballots/{ballot}")
    if action == "emergency":
        ctx.api.post(ctx.c("/emergencies"), {"ballot": ballot, "justification": reason(ctx, "justification")})
    elif action == "confirm":
        ctx.api.post(ctx.c(f"/emergencies/{ballot}/confirmation"))
    elif action == "annul":
        needs(ctx, *PAPER)
        ctx.api.post(path + "/annulment", {"reason": reason(ctx)})
    elif action == "abandon":
        ctx.api.post(path + "/abandonment", {"reason": reason(ctx)})
    elif action == "rerun":
        made = ctx.api.post(path + "/reruns")
        return to_ballot(ctx, made["id"])
    else:
        raise Refused(404, "This page does not exist.")
    return to_ballot(ctx, ballot, "/manage")


# ---- a voter's receipt, checked against the bulletin board ----------------------------------------
def recorded_at(ctx: Ctx, b: dict, receipt: str) -> int | None:
    """The audit entry (index) of the vote with this receipt, from the case file, if it shows it."""
    if not b.get("case"):
        return None
    try:
        file = case_file(ctx, b["case"])
    except ApiError:
        return None
    for item in file.get("items", []):
        if item.get("type") in ("VoteCast", "VoteChanged") and (item.get("data") or {}).get("receipt") == receipt:
            return (item.get("audit") or {}).get("index")
    return None


@page("/communities/<community>/ballots/<ballot>/receipt", endpoint="decisions_receipt_check")
def receipt_check(ctx: Ctx, community: str, ballot: str):
    b = ballot_of(ctx, ballot)
    given = "".join((ctx.request.args.get("receipt") or "").split()).lower()[:200]
    entry, malformed, index = None, False, None
    if given:
        if not RECEIPT.fullmatch(given):
            malformed = True
        else:
            board = ctx.api.get(ctx.c(f"/ballots/{ballot}/board"), receipt=given)
            entry = next((e for e in board.get("entries", []) if e.get("receipt") == given), None)
            if entry is not None:
                index = recorded_at(ctx, b, given)
                entry = dict(entry, revealed=board.get("revealed"))
    method, options = choosing(b)
    titles = {o["id"]: o.get("title") for o in options}
    return ctx.render("decision_receipt.html", b=b, title=title_of(b), given=given, entry=entry, malformed=malformed,
                      index=index, titles=titles, checked=bool(given))


# ---- the voter roll: frozen at the opening, and a preview before it (both built by the decisions service) ---
def roll_rows(found: dict, roll: list[dict], voting_unit: str | None) -> tuple[list[dict], dict]:
    """The roll as a person reads it (names, units by building and number, weight) and its totals."""
    named = labels(found)
    units = labels({"buildings": found.get("buildings", []), "households": found.get("households", [])})
    rows = []
    for e in roll:
        rows.append({"voter": e["voter"], "name": named.get(e["voter"]) or e["voter"][:8],
                     "developer": e["voter"] == "developer",
                     "units": [units.get(u) or u[:8] for u in e.get("units") or []],
                     "weight": e.get("weight"), "headcount": e.get("headcount")})
    rows.sort(key=lambda r: (r["developer"], r["name"] or "", r["voter"]))
    area = sum((Fraction(str(e.get("weight") or 0)) for e in roll), Fraction(0))
    return rows, {"voters": len(roll), "heads": sum(int(e.get("headcount") or 0) for e in roll),
                  "area": area if voting_unit == "owner" else None}


@page("/communities/<community>/ballots/<ballot>/roll", endpoint="decisions_roll")
def roll(ctx: Ctx, community: str, ballot: str):
    b = ballot_of(ctx, ballot)
    frozen = None
    if b.get("roll_hash"):
        try:
            frozen = ctx.api.get(ctx.c(f"/ballots/{ballot}/roll"))
        except ApiError as exc:
            if exc.status != 409:
                raise
    found = directory(ctx)
    unit = (b.get("configuration") or {}).get("voting_unit")
    rows, totals = roll_rows(found, frozen.get("roll", []) if frozen else [], unit)
    return ctx.render("decision_roll.html", b=b, title=title_of(b), frozen=frozen, rows=rows, totals=totals,
                      unit=unit, number=shown)
