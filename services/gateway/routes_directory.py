"""Directory, sign-in and credential routes."""
from __future__ import annotations

from services.common.erasure import ERASING
from services.common.errors import Forbidden, Unavailable

from . import schema as S
from .auth_cache import CACHE
from .router import PUBLIC, Call, route

TAG = "directory"
MANAGERS = ("community_worker", "party_lead")
AT = {"at": S.when(nullable=False)}
C = "/api/v1/communities/{community}"


@route("POST", "/api/v1/sign-in", summary="Redeem an invitation: register and receive a token", tag="sign-in",
       roles=PUBLIC, status=201, body=S.obj(["code", "name"], code=S.text(100), name=S.text(100),
                                            adult={"type": "boolean"}))
def sign_in(c: Call):
    return c.call("communities", "redeem_invitation", c.body["code"], c.body["name"], c.body.get("adult", True))


@route("GET", "/api/v1/me", summary="Who the token belongs to, with roles", tag="sign-in")
def me(c: Call):
    return c.principal


@route("DELETE", "/api/v1/me/token", summary="Sign out: revoke the token this request presents", tag="sign-in",
       status=204)
def sign_out(c: Call):
    c.call("communities", "sign_out", c.actor, c.principal["token"])
    CACHE.forget(token_id=c.principal["token"])


@route("GET", "/api/v1/communities", summary="Communities visible to the caller", tag=TAG)
def list_communities(c: Call):
    all_ = c.call("communities", "list_communities")
    if c.principal.get("platform_admin"):
        return all_
    return [x for x in all_ if x["id"] == c.principal.get("community")]


@route("POST", "/api/v1/communities", summary="Create a community (tenant)", tag=TAG, roles=("platform_admin",),
       status=201, body=S.obj(["name"], name=S.text(200), rules={"type": "object"}))
def create_community(c: Call):
    if not c.principal.get("platform_admin"):
        raise Forbidden.coded("gateway.platform_administrator_creates_communities")
    return c.call("communities", "create_community", c.actor, c.body["name"], c.body.get("rules"))


@route("GET", C, summary="A community with its rules", tag=TAG)
def get_community(c: Call):
    return c.call("communities", "get_community", c.community)


@route("PATCH", C + "/rules", summary="Propose a change of some rule settings (a second person, a party-committee "
       "lead, confirms it)", tag=TAG, roles=MANAGERS, status=202, body={"type": "object", "minProperties": 1})
def change_rules(c: Call):
    return c.call("communities", "propose_rule_change", c.actor, c.community, c.body)


@route("POST", C + "/rule-changes/{change}/confirmation", summary="Confirm a proposed rule change: it takes effect "
       "now (for stages opened from now on)", tag=TAG, roles=("party_lead",), status=200)
def confirm_rule_change(c: Call):
    return c.call("communities", "confirm_rule_change", c.actor, c.community, c.params["change"])


@route("DELETE", C + "/rule-changes/{change}", summary="Withdraw a proposed rule change (its proposer or a lead)",
       tag=TAG, roles=MANAGERS, status=200)
def withdraw_rule_change(c: Call):
    return c.call("communities", "withdraw_rule_change", c.actor, c.community, c.params["change"])


@route("GET", C + "/directory", summary="The directory as it stood at a time (default now)", tag=TAG, query=AT)
def directory(c: Call):
    return c.call("communities", "directory", c.community, c.query.get("at"))


@route("POST", C + "/compounds", summary="Add a compound (院坝/小区)", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["name"], name=S.text(200)))
def add_compound(c: Call):
    return c.call("communities", "add_compound", c.actor, c.community, c.body["name"])


@route("POST", C + "/buildings", summary="Add a building to a compound", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["compound", "name"], compound=S.uuid_str(), name=S.text(200)))
def add_building(c: Call):
    return c.call("communities", "add_building", c.actor, c.community, c.body["compound"], c.body["name"])


HOUSEHOLD = S.obj(
    ["building", "unit", "area"],
    building=S.uuid_str(), unit=S.text(40), area=S.decimal(),
    owners={"type": "array", "items": S.uuid_str(), "maxItems": 20},
    representative=S.uuid_str(nullable=True), developer_unsold={"type": "boolean"}, effective=S.when(),
)


@route("POST", C + "/households", summary="Register a unit with its exclusive area and owners", tag=TAG,
       roles=MANAGERS, status=201, body=HOUSEHOLD)
def register_household(c: Call):
    b = c.body
    return c.call("communities", "register_household", c.actor, c.community, b["building"], b["unit"], b["area"],
                  b.get("owners", []), b.get("representative"), b.get("developer_unsold", False), b.get("effective"))


@route("GET", C + "/households/{household}", summary="A unit as it stood at a time, with its history", tag=TAG,
       query=AT)
def get_household(c: Call):
    return c.call("communities", "get_household", c.community, c.params["household"], c.query.get("at"))


@route("POST", C + "/households/{household}/area-corrections", summary="Correct the exclusive area, with a reason",
       tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["area", "reason"], area=S.decimal(), reason=S.text(1000), effective=S.when()))
def correct_area(c: Call):
    b = c.body
    return c.call("communities", "correct_area", c.actor, c.community, c.params["household"], b["area"], b["reason"],
                  b.get("effective"))


@route("POST", C + "/households/{household}/transfers", summary="Record a sale: the new owners from a date",
       tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["owners"], owners={"type": "array", "items": S.uuid_str(), "maxItems": 20},
                  representative=S.uuid_str(nullable=True), developer_unsold={"type": "boolean"},
                  effective=S.when()))
def transfer(c: Call):
    b = c.body
    return c.call("communities", "transfer_household", c.actor, c.community, c.params["household"], b["owners"],
                  b.get("representative"), b.get("developer_unsold", False), b.get("effective"))


@route("POST", C + "/people", summary="Register a resident or owner", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["name"], name=S.text(100), adult={"type": "boolean"}, household=S.uuid_str(nullable=True),
                  effective=S.when()))
def register_person(c: Call):
    b = c.body
    return c.call("communities", "register_person", c.actor, c.community, b["name"], b.get("adult", True),
                  b.get("household"), b.get("effective"))


@route("GET", C + "/people/{person}", summary="A person with residence and roles at a time", tag=TAG, query=AT)
def get_person(c: Call):
    return c.call("communities", "get_person", c.community, c.params["person"], c.query.get("at"))


@route("POST", C + "/people/{person}/moves", summary="Record a move in, out or between units", tag=TAG,
       roles=MANAGERS, status=201, body=S.obj(["household"], household=S.uuid_str(nullable=True), effective=S.when()))
def move(c: Call):
    return c.call("communities", "move_person", c.actor, c.community, c.params["person"], c.body["household"],
                  c.body.get("effective"))


@route("POST", C + "/people/{person}/roles", summary="Grant a role (1+2+X and others)", tag=TAG,
       roles=MANAGERS, status=201,
       body=S.obj(["role"], role=S.text(40), scope=S.uuid_str(nullable=True), effective=S.when()))
def grant_role(c: Call):
    if c.body["role"] == "party_lead" and not c.has_role("party_lead"):
        raise Forbidden.coded("gateway.party_committee_lead_role")
    return c.call("communities", "grant_role", c.actor, c.community, c.params["person"], c.body["role"],
                  c.body.get("scope"), c.body.get("effective"))


@route("POST", C + "/people/{person}/role-revocations", summary="Revoke a role", tag=TAG, roles=MANAGERS,
       status=201, body=S.obj(["role"], role=S.text(40), scope=S.uuid_str(nullable=True), effective=S.when()))
def revoke_role(c: Call):
    person = c.call("communities", "revoke_role", c.actor, c.community, c.params["person"], c.body["role"],
                    c.body.get("scope"), c.body.get("effective"))
    CACHE.forget(person=person["id"])  # this instance at once; the others when the event reaches them
    return person


@route("POST", C + "/people/{person}/tokens", summary="Issue a further API token to yourself (e.g. another "
       "device); others get access by invitation", tag=TAG, status=201,
       body=S.obj([], days={"type": "integer", "minimum": 1, "maximum": 366}, label=S.text(100)))
def issue_token(c: Call):
    # The directory decides who may (the holder, or an administrator) after finding the person in
    # this community, so another community's person is "not found" like every other object.
    return c.call("communities", "issue_token", c.community, c.params["person"], (c.body or {}).get("days", 90),
                  (c.body or {}).get("label"), actor=c.actor, presented=c.principal.get("token"))


@route("GET", C + "/people/{person}/tokens", summary="A person's tokens (ids, labels, expiry; never the secret)",
       tag=TAG)
def list_tokens(c: Call):
    return c.call("communities", "list_tokens", c.actor, c.community, c.params["person"])


@route("DELETE", C + "/tokens/{token}", summary="Revoke a token at once (its holder; a worker for a resident's "
       "token; the party-committee lead for anyone's)", tag=TAG, status=204)
def revoke_token(c: Call):
    c.call("communities", "revoke_token", c.actor, c.community, c.params["token"])
    CACHE.forget(token_id=c.params["token"])  # this instance at once; the others when the event reaches them


@route("POST", C + "/people/{person}/erasure", summary="Erase a person's texts and contact data in every service "
       "(PIPL art. 47), with a reason: recorded in the directory, carried out by each service; hashes and counts "
       "stay. Answers the request with what is done so far", tag=TAG, roles=MANAGERS, status=202,
       body=S.obj(["reason"], reason=S.text(1000), confirm={"type": "boolean"}))
def erase(c: Call):
    return c.call("communities", "request_erasure", c.actor, c.community, c.params["person"], c.body["reason"])


@route("GET", C + "/people/{person}/erasure", summary="The person's erasure requests and which services have "
       "completed each", tag=TAG)
def erasure_status(c: Call):
    return c.call("communities", "erasure_status", c.actor, c.community, c.params["person"])


@route("GET", C + "/me/data", summary="A copy of what the platform holds about me (PIPL art. 45): directory "
       "record, proposals, supports, comments, votes as I may see them, evaluations, messages and settings", tag=TAG)
def my_data(c: Call):
    out = {"community": c.community, "person": c.actor}
    for service in ERASING:  # the services that hold a person's texts or contact data
        out[service] = c.call(service, "personal_data", c.community, c.actor)
    return out


@route("POST", C + "/invitations", summary="Invite a resident to sign in", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj([], household=S.uuid_str(nullable=True), roles={"type": "array", "items": S.text(40)},
                  days={"type": "integer", "minimum": 1, "maximum": 90}))
def invite(c: Call):
    b = c.body
    if "party_lead" in b.get("roles", []) and not c.has_role("party_lead"):
        raise Forbidden.coded("gateway.invitation_party_committee_lead")
    return c.call("communities", "create_invitation", c.actor, c.community, b.get("household"),
                  b.get("roles", ["resident"]), b.get("days", 14))


@route("DELETE", C + "/invitations/{invitation}", summary="Revoke an invitation not yet redeemed", tag=TAG,
       roles=MANAGERS, status=200)
def revoke_invitation(c: Call):
    return c.call("communities", "revoke_invitation", c.actor, c.community, c.params["invitation"])


@route("POST", C + "/directory/import", summary="Import households and owners from CSV (all or nothing)",
       tag=TAG, roles=MANAGERS, status=201, content_type="text/csv", max_body=5_000_000)
def import_csv(c: Call):
    return c.call("communities", "import_csv", c.actor, c.community, c.body)




# The stages asked for "what needs me", in the order of the 1+4+N flow; each answers for its own
# objects (services/<stage>/application.py `needs_of`), so a page never guesses from lists.
NEEDS_FROM = ("proposals", "deliberation", "decisions", "actions")
NEEDS_WAIT_S = 5.0  # one stage that is down costs the home page this, not the RPC timeout
NEED = {"type": "object", "required": ["kind", "stage", "id", "path"], "properties": {
    "kind": {"type": "string", "enum": ["support", "screen", "discuss", "attend", "sign", "vote", "configure",
                                        "evaluate", "task", "run"]},
    "stage": {"type": "string", "enum": list(NEEDS_FROM)}, "id": {"type": "string"},
    "title": {"type": ["string", "null"]}, "due": {"type": ["string", "null"]},
    "path": {"type": "string", "description": "the page of the object, under /communities/{community}/"},
    "overdue": {"type": "boolean"}}}


@route("GET", C + "/me/needs", summary="What needs me now: proposals I may support or must screen, consultations "
       "I sit on, meetings to attend, minutes to sign, ballots open to me, evaluations open to me, my tasks",
       tag=TAG, response={"type": "object", "required": ["items", "unavailable"], "properties": {
           "items": {"type": "array", "items": NEED},
           "unavailable": {"type": "array", "items": {"type": "string"},
                           "description": "stages that did not answer in time: their items are missing"}}})
def my_needs(c: Call):
    import eventlet

    roles = sorted({r["role"] for r in (c.principal or {}).get("roles", [])})
    items, unavailable = [], []
    for stage in NEEDS_FROM:
        try:
            with eventlet.Timeout(NEEDS_WAIT_S):
                items += c.call(stage, "needs_of", c.community, c.actor, roles)
        except (Unavailable, eventlet.Timeout):  # the stage's own 503, or the gateway's: not running, too slow
            unavailable.append(stage)
    return {"items": items, "unavailable": unavailable}
