"""The directory as community workers keep it: compounds, buildings, units with their exclusive areas
and owners, people and their roles; forms to add each of them, grant and revoke roles, correct an area,
record a sale, issue (to oneself) and revoke sign-in tokens; and the CSV import, whose refusal lists
every bad row by its line in the file.

Every page here is a worker's page: a person without the role gets the 403 page before anything is
asked of the API (app.Refused), and the API decides again for what a worker may do."""
from __future__ import annotations

import re

from services.contracts.communities import IMPORT_DONE, IMPORT_RUNNING

from .api import ApiError
from .app import Ctx, Refused, page
from .pages_case import WORKERS, field, needs
from .pages_more import public_url, qr_svg

# The roles a worker may grant (the API refuses party_lead but to a party-committee lead: the form
# offers it only to one). Scoped roles take a compound (grid_leader) or a building (building_leader).
GRANTABLE = ("resident", "grid_leader", "building_leader", "owners_committee", "council_member", "expert",
             "moderator", "property_company", "auditor", "community_worker", "party_lead")
SCOPED = {"grid_leader": "compound", "building_leader": "building"}
CSV_MAX = 5_000_000  # the API's limit for an import
CSV_COLUMNS = ("compound", "building", "unit", "area", "owners", "owner_keys", "representative",
               "developer_unsold", "effective")


def _(message: str) -> str:
    """Marks a message id for the catalogue (services/web/catalogue.py); translated where shown."""
    return message


DONE = {
    "compound": _("The compound is added."),
    "building": _("The building is added."),
    "unit": _("The unit is added."),
    "person": _("The person is added."),
    "role": _("The role is granted."),
    "revoked": _("The role is revoked."),
    "area": _("The area is corrected."),
    "sale": _("The sale is recorded."),
    "token": _("The token is revoked."),
}


# What the import says about a row (services/communities/csv_import.py, in English), and how the page
# says it in the reader's language. A message not listed here is shown as the API gave it.
ROW_PROBLEMS = [(re.compile(pattern), message) for pattern, message in (
    (r"^compound, building and unit are required$", _("Compound, building and unit are required.")),
    (r"^a name is too long$", _("A compound, building or unit name is too long.")),
    (r"^developer_unsold must be true or false$", _("developer_unsold must be true or false.")),
    (r"^a unit the developer has not sold has no other owners$",
     _("A unit the developer has not sold has no owners: leave owners empty.")),
    (r"^owners are required", _("Owners are required (names separated by ';'), unless developer_unsold is true.")),
    (r"^an owner's name is too long", _("An owner's name is too long (at most 100 characters).")),
    (r"^an owner is listed twice$", _("An owner is listed twice.")),
    (r"^owner_keys gives (?P<given>\d+) keys for (?P<owners>\d+) owners",
     _("owner_keys gives %(given)s keys for %(owners)s owners: one key per owner, in the owners' order, "
       "separated by ';'.")),
    (r"^an owner key is too long \(at most (?P<limit>\d+) characters\)$",
     _("An owner key is too long (at most %(limit)s characters).")),
    (r"^two owners of this unit have the same owner key$", _("Two owners of this unit have the same owner key.")),
    (r"^a co-owned unit needs the representative", _("A co-owned unit needs its representative (column representative).")),
    (r"^the representative must be one of the owners$", _("The representative must be one of the owners.")),
    (r"^unit (?P<unit>.+) appears twice in the file \(also line (?P<other>\d+)\)$",
     _("Unit %(unit)s appears twice in the file (also row %(other)s).")),
    (r"^\w+ is not a decimal number: (?P<value>.*)$", _("The area is not a number: %(value)s")),
    (r"^\w+ must be a decimal string", _("The area is not a number.")),
    (r"^\w+ must be a positive area", _("The area must be a positive number of m² (at most 100000).")),
    (r"^\w+ has more than 4 decimal places$", _("The area has more than 4 decimal places.")),
    (r"^effective must be a date", _("effective must be a date YYYY-MM-DD or an ISO-8601 time.")),
    (r"^not a date or time: (?P<value>.*)$", _("effective is not a date or time: %(value)s")),
    (r"^missing columns: (?P<columns>.+)$", _("The header lacks the columns: %(columns)s")),
    (r"^the file has no data rows$", _("The file has no data rows.")),
    (r"^the owner name (?P<name>.+) appears on lines (?P<lines>[\d, ]+) and not every one",
     _("The owner name %(name)s appears on rows %(lines)s, and not every one of them gives an owner key: owners "
       "are told apart only by their keys (column owner_keys), never merged by name.")),
    (r"^one owner key is given for different names \(lines (?P<lines>[\d, ]+)\)",
     _("One owner key is given for different names (rows %(lines)s); a key names one person.")),
    (r"^unit (?P<unit>.+) of building (?P<building>.+) is already in the directory",
     _("Unit %(unit)s of building %(building)s is already in the directory with other owners or another area: "
       "record a sale or an area correction on the unit's page instead.")),
)]


def row_problem(ctx: Ctx, message: str) -> str:
    for pattern, text in ROW_PROBLEMS:
        found = pattern.search(message or "")
        if found:
            return ctx.t(text) % found.groupdict() if found.groupdict() else ctx.t(text)
    return message


# ---- reading the directory -------------------------------------------------------------------------
def directory(ctx: Ctx) -> dict:
    return ctx.api.get(ctx.c("/directory"))


def view(d: dict) -> dict:
    """The directory arranged as a worker reads it: compound > building > unit (owners, residents), and
    people with their unit and roles (scopes by name)."""
    names = {p["id"]: p["name"] for p in d.get("people", [])}
    compounds = {c["id"]: c for c in d.get("compounds", [])}
    buildings = {b["id"]: b for b in d.get("buildings", [])}
    units = {h["id"]: h for h in d.get("households", [])}
    residents: dict[str, list] = {}
    for p in d.get("people", []):
        if p.get("household"):
            residents.setdefault(p["household"], []).append(p)
    label = {}
    for h in units.values():
        b = buildings.get(h["building"])
        label[h["id"]] = f"{b['name']} · {h['unit']}" if b else h["unit"]
    tree = []
    for c in d.get("compounds", []):
        blocks = []
        for b in d.get("buildings", []):
            if b["compound"] != c["id"]:
                continue
            rows = [dict(h, owner_names=[names.get(o) for o in h.get("owners", [])],
                         residents=residents.get(h["id"], [])) for h in d.get("households", [])
                    if h["building"] == b["id"]]
            blocks.append(dict(b, units=rows))
        tree.append(dict(c, buildings=blocks))
    scopes = {**{k: v["name"] for k, v in compounds.items()}, **{k: v["name"] for k, v in buildings.items()}}
    people = [dict(p, unit=label.get(p.get("household")),
                   role_list=[dict(r, scope_name=scopes.get(r.get("scope"))) for r in p.get("roles", [])])
              for p in d.get("people", [])]
    return {"tree": tree, "people": people, "names": names, "unit_label": label, "scopes": scopes,
            "compounds": d.get("compounds", []), "buildings": d.get("buildings", []),
            "units": d.get("households", []), "building_label": {
                b["id"]: (f"{compounds[b['compound']]['name']} · {b['name']}" if b["compound"] in compounds
                          else b["name"]) for b in d.get("buildings", [])}}


def done(ctx: Ctx):
    return DONE.get(ctx.request.args.get("done", ""))


def to(ctx: Ctx, path: str, what: str):
    """Back to a directory page with its notice (`done`), at its fragment if any."""
    path, hash_, fragment = path.partition("#")
    return ctx.redirect(f"/communities/{ctx.community}/directory{path}?done={what}{hash_}{fragment}")


def required(*values: str) -> None:
    if not all(values):
        raise Refused(422, "Please fill in every required field.")


@page("/communities/<community>/directory")
def directory_page(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    d = directory(ctx)
    return ctx.render("directory.html", d=d, v=view(d), done=done(ctx))


@page("/communities/<community>/directory/new")
def directory_new(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    d = directory(ctx)
    return ctx.render("directory_new.html", v=view(d), done=done(ctx), lead=ctx.has("party_lead"))


# ---- adding ---------------------------------------------------------------------------------------
@page("/communities/<community>/directory/compounds", methods=("POST",))
def add_compound(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    name = field(ctx, "name", 200)
    required(name)
    ctx.api.post(ctx.c("/compounds"), {"name": name})
    return to(ctx, "/new#building", "compound")


@page("/communities/<community>/directory/buildings", methods=("POST",))
def add_building(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    compound, name = field(ctx, "compound", 40), field(ctx, "name", 200)
    required(compound, name)
    ctx.api.post(ctx.c("/buildings"), {"compound": compound, "name": name})
    return to(ctx, "/new#unit", "building")


def owners_of(ctx: Ctx) -> tuple[list, str | None, bool]:
    """Owners from a form's owner and co-owner selects; a co-owned unit's representative is the first
    owner unless the form names the co-owner; no owner means the developer has not sold it (if ticked)."""
    owner, co = field(ctx, "owner", 40), field(ctx, "co_owner", 40)
    owners = [o for o in dict.fromkeys([owner, co]) if o]
    unsold = field(ctx, "developer_unsold", 5) == "1"
    if not owners and not unsold:
        raise Refused(422, "Choose the owner, or tick that the developer has not sold the unit.")
    if owners and unsold:
        raise Refused(422, "A unit the developer has not sold has no owners.")
    representative = None
    if len(owners) > 1:
        representative = co if field(ctx, "representative", 10) == "co" else owner
    return owners, representative, unsold


@page("/communities/<community>/directory/units", methods=("POST",))
def add_unit(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    building, unit, area = field(ctx, "building", 40), field(ctx, "unit", 40), field(ctx, "area", 30)
    required(building, unit, area)
    owners, representative, unsold = owners_of(ctx)
    made = ctx.api.post(ctx.c("/households"), {"building": building, "unit": unit, "area": area, "owners": owners,
                                                "representative": representative, "developer_unsold": unsold})
    return to(ctx, f"/units/{made['id']}", "unit")


@page("/communities/<community>/directory/people", methods=("POST",))
def add_person(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    name = field(ctx, "name", 100)
    required(name)
    household = field(ctx, "household", 40) or None
    made = ctx.api.post(ctx.c("/people"), {"name": name, "adult": field(ctx, "adult", 5) == "1",
                                            "household": household})
    if field(ctx, "resident", 5) == "1":
        ctx.api.post(ctx.c(f"/people/{made['id']}/roles"), {"role": "resident"})
    return to(ctx, f"/people/{made['id']}", "person")


# ---- a person: roles and tokens -------------------------------------------------------------------
@page("/communities/<community>/directory/people/<person>")
def person_page(ctx: Ctx, community: str, person: str):
    needs(ctx, *WORKERS)
    p = ctx.api.get(ctx.c(f"/people/{person}"))
    v = view(directory(ctx))
    tokens = None
    try:
        tokens = ctx.api.get(ctx.c(f"/people/{person}/tokens"))
    except ApiError as exc:
        if exc.status != 403:
            raise
    me = ctx.who()
    roles = [dict(r, scope_name=v["scopes"].get(r.get("scope"))) for r in p.get("roles", [])]
    grantable = [r for r in GRANTABLE if r != "party_lead" or ctx.has("party_lead")]
    return ctx.render("directory_person.html", p=p, v=v, roles=roles, tokens=tokens, grantable=grantable,
                      scoped=SCOPED, self_=me.get("person") == p["id"], current=me.get("token"), done=done(ctx))


@page("/communities/<community>/directory/people/<person>/roles", methods=("POST",))
def grant_role(ctx: Ctx, community: str, person: str):
    needs(ctx, *WORKERS)
    role = field(ctx, "role", 40)
    required(role)
    scope = field(ctx, f"scope_{SCOPED[role]}", 40) if role in SCOPED else ""
    if role in SCOPED and not scope:
        raise Refused(422, "A grid leader needs a compound and a building leader a building.")
    ctx.api.post(ctx.c(f"/people/{person}/roles"), {"role": role, "scope": scope or None})
    return to(ctx, f"/people/{person}", "role")


@page("/communities/<community>/directory/people/<person>/role-revocations", methods=("POST",))
def revoke_role(ctx: Ctx, community: str, person: str):
    needs(ctx, *WORKERS)
    role = field(ctx, "role", 40)
    required(role)
    ctx.api.post(ctx.c(f"/people/{person}/role-revocations"), {"role": role, "scope": field(ctx, "scope", 40) or None})
    return to(ctx, f"/people/{person}", "revoked")


@page("/communities/<community>/directory/people/<person>/tokens", methods=("POST",))
def issue_token(ctx: Ctx, community: str, person: str):
    """A further sign-in token for the signed-in worker (another device): the API issues a token only
    to its holder; others get access by invitation. Shown once, with a QR code to print."""
    needs(ctx, *WORKERS)
    try:
        days = max(1, min(int(field(ctx, "days", 3) or "90"), 366))
    except ValueError:
        raise Refused(422, "Some of what you entered is not valid.") from None
    made = ctx.api.post(ctx.c(f"/people/{person}/tokens"), {"days": days, "label": field(ctx, "label", 100) or None})
    link = f"{public_url(ctx)}/sign-in?token={made['token']}"
    p = ctx.api.get(ctx.c(f"/people/{person}"))
    return ctx.render("directory_token.html", token=made, p=p, link=link, qr=qr_svg(link), status=201)


@page("/communities/<community>/directory/tokens/<token>/revocation", methods=("POST",))
def revoke_token(ctx: Ctx, community: str, token: str):
    needs(ctx, *WORKERS)
    person = field(ctx, "person", 40)
    ctx.api.delete(ctx.c(f"/tokens/{token}"))
    return to(ctx, f"/people/{person}", "token")


# ---- a unit: area and owners ----------------------------------------------------------------------
@page("/communities/<community>/directory/units/<unit>")
def unit_page(ctx: Ctx, community: str, unit: str):
    needs(ctx, *WORKERS)
    h = ctx.api.get(ctx.c(f"/households/{unit}"))
    v = view(directory(ctx))
    return ctx.render("directory_unit.html", h=h, v=v, done=done(ctx))


@page("/communities/<community>/directory/units/<unit>/area", methods=("POST",))
def correct_area(ctx: Ctx, community: str, unit: str):
    needs(ctx, *WORKERS)
    area, reason = field(ctx, "area", 30), field(ctx, "reason", 1000)
    required(area, reason)
    body = {"area": area, "reason": reason}
    if field(ctx, "effective", 40):
        body["effective"] = field(ctx, "effective", 40)
    ctx.api.post(ctx.c(f"/households/{unit}/area-corrections"), body)
    return to(ctx, f"/units/{unit}", "area")


@page("/communities/<community>/directory/units/<unit>/sale", methods=("POST",))
def record_sale(ctx: Ctx, community: str, unit: str):
    needs(ctx, *WORKERS)
    owners, representative, unsold = owners_of(ctx)
    body = {"owners": owners, "representative": representative, "developer_unsold": unsold}
    if field(ctx, "effective", 40):
        body["effective"] = field(ctx, "effective", 40)
    ctx.api.post(ctx.c(f"/households/{unit}/transfers"), body)
    return to(ctx, f"/units/{unit}", "sale")


# ---- CSV import -----------------------------------------------------------------------------------
def uploaded_text(ctx: Ctx) -> str:
    """The CSV from the file field (UTF-8, with or without BOM, or GB18030 as spreadsheets in China save
    it), else from the text area."""
    upload = ctx.request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read(CSV_MAX + 1)
        if len(raw) > CSV_MAX:
            raise Refused(413, "The file is larger than 5 MB.")
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise Refused(422, "The file is not text in UTF-8 or GB18030.")
    return (ctx.form().get("text") or "")[:CSV_MAX]


@page("/communities/<community>/directory/import", methods=("GET", "POST"))
def import_page(ctx: Ctx, community: str):
    needs(ctx, *WORKERS)
    values = {"columns": CSV_COLUMNS, "text": "", "rows": None, "problem": None, "result": None}
    if ctx.request.method == "GET":
        return ctx.render("directory_import.html", **values)
    text = uploaded_text(ctx)
    values["text"] = ctx.form().get("text", "")[:20000]
    if not text.strip():
        values["problem"] = ctx.t("Choose a CSV file or paste its text.")
        return ctx.render("directory_import.html", status=422, **values)
    try:
        # The gateway waits some seconds for the import; a larger file is answered with its job (202).
        answer = ctx.api.post_raw(ctx.c("/directory/import"), text.encode("utf-8"), "text/csv; charset=utf-8",
                                  timeout=60)
    except ApiError as exc:
        if exc.status not in (400, 409, 413, 415, 422):
            raise
        _refusal(ctx, exc.problem, values)
        return ctx.render("directory_import.html", status=exc.status, **values)
    if isinstance(answer, dict) and answer.get("status") == IMPORT_RUNNING:
        return ctx.redirect(f"/communities/{community}/directory/imports/{answer['id']}")
    values["result"] = answer
    return ctx.render("directory_import.html", status=201, **values)


def _refusal(ctx: Ctx, problem: dict, values: dict) -> None:
    """What the page says about a refused file: each bad row, else the problem's words."""
    rows = problem.get("errors")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) and "line" in r for r in rows):
        values["rows"] = [{"line": r["line"], "message": row_problem(ctx, str(r.get("message") or ""))}
                          for r in sorted(rows, key=lambda r: r["line"])]
    values["problem"] = problem.get("detail") or problem.get("title") or ctx.t("The platform refused this.")


@page("/communities/<community>/directory/imports/<job>")
def import_job_page(ctx: Ctx, community: str, job: str):
    """A large file's import, while it runs (the page reloads itself every few seconds) and once it
    has ended: what was imported, or why nothing was."""
    needs(ctx, *WORKERS)
    found = ctx.api.get(ctx.c(f"/directory/imports/{job}"))
    values = {"job": found, "rows": None, "problem": None, "result": None}
    if found["status"] == IMPORT_DONE:
        values["result"] = found["result"]
    elif found["status"] != IMPORT_RUNNING:
        _refusal(ctx, found.get("problem") or {}, values)
    return ctx.render("directory_import_job.html", **values)
