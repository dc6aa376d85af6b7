"""Directory, sign-in and credential routes."""
from __future__ import annotations

import json

from services.common.erasure import ERASING
from services.common.errors import Forbidden, Unavailable, from_problem
from services.contracts import communities, every_service

from . import schema as S
from .auth_cache import CACHE
from .router import JSON, PUBLIC, Call, Raw, route

TAG = "directory"
MANAGERS = ("community_worker", "party_lead")
AT = {"at": S.when(nullable=False)}
C = "/api/v1/communities/{community}"

# ---- response shapes ------------------------------------------------------------------------------------
# What the directory answers (services/communities/application.py). The gateway adds display names
# beside person ids (`person_name`, `owners_names`, …: services/gateway/names.py), so objects stay open.
ID = {"type": "string", "format": "uuid"}
ID_OR_NULL = {"type": ["string", "null"], "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
NAME_OR_NULL = {"type": ["string", "null"], "description": "null once the person's texts are erased"}
IDS = {"type": "array", "items": {"type": "string"}}
AREA = {"type": "string", "format": "decimal", "description": "square metres, a decimal number written as a string"}
CREATED = {"type": "object", "required": ["id"], "properties": {"id": ID}}
REVOKED = {"type": "object", "required": ["id", "revoked"], "properties": {"id": ID, "revoked": {"const": True}}}
DAYS = {"type": "integer", "minimum": 0}
FRACTION = {"type": "string", "description": "a fraction written as a string, like '2/3'"}
THRESHOLD = {"type": "object", "properties": {
    "unit": {"type": "string", "enum": list(communities.THRESHOLD_UNITS)}, "count": {"type": "integer"},
    "share": FRACTION}}
RULES = {"type": "object", "description": "rule settings (services/communities/domain.py DEFAULT_RULES)",
         "properties": {
             "categories": {"type": "array", "items": {"type": "string"}},
             "support_per": {"type": "string", "enum": list(communities.SUPPORT_PER)},
             "support_window_days": DAYS,
             "support_threshold": {"type": "object", "properties": {
                 "community": THRESHOLD, "compound": THRESHOLD, "building": THRESHOLD}},
             "meeting_notice_days": DAYS, "meeting_quorum": FRACTION,
             "meeting_required_roles": IDS, "conclusion_required_roles": IDS, "minutes_signers": IDS,
             "flags_to_hide": DAYS, "ballot_notice_days": DAYS, "publicity_days": DAYS, "proxy_limit": DAYS,
             "evaluation_window_days": DAYS, "unsatisfied_reopen_share": FRACTION,
             "evaluation_min_response_share": FRACTION}}
PENDING_RULE_CHANGE = {"type": "object", "required": ["id", "settings", "proposed_by", "proposed_at"], "properties": {
    "id": ID, "settings": dict(RULES, description="the settings changed"), "proposed_by": {"type": "string"},
    "proposed_at": TIME}}
RULE_CHANGE = {"type": "object", "required": ["id", "status", "settings", "proposed_by"], "properties": {
    **PENDING_RULE_CHANGE["properties"],
    "status": {"type": "string", "enum": list(communities.RULE_CHANGE_STATUSES)}, "confirmed_by": {"type": "string"},
    "rules": dict(RULES, description="the whole rule set: in force (confirmed), or as it stands (proposed)")}}
CELL = {"type": ["string", "null"], "description": "the cell (set of stage services) the community was placed in "
        "when it was created; null in a deployment without cells, or for a community created before them"}
LISTED_COMMUNITY = {"type": "object", "required": ["id", "name"], "properties": {
    "id": ID, "name": {"type": "string"}, "created_at": TIME_OR_NULL, "cell": CELL}}
COMMUNITY = {"type": "object", "required": ["id", "name", "cell"], "properties": {
    "id": ID, "name": {"type": "string"}, "cell": CELL, "rules": RULES, "at": TIME,
    "pending_rule_changes": {"type": "array", "items": PENDING_RULE_CHANGE}}}
ROLE = {"type": "object", "required": ["role", "scope"], "properties": {
    "role": {"type": "string"}, "scope": ID_OR_NULL}}
PERIOD = {"from": TIME, "to": TIME_OR_NULL}  # a period of a history: from, until (null: still)
OWNERSHIP = {"owners": {"type": "array", "items": ID}, "representative": ID_OR_NULL,
             "developer_unsold": {"type": "boolean"}}
UNIT = {"type": "object", "required": ["id", "building", "unit", "area", "owners"], "properties": {
    "id": ID, "building": ID, "unit": {"type": "string"}, "area": AREA, **OWNERSHIP}}
HOUSEHOLD_VIEW = {"type": "object", "required": ["id", "building", "unit", "at", "area", "owners"], "properties": {
    "id": ID, "building": ID, "unit": {"type": "string"}, "at": TIME,
    "area": dict(AREA, type=["string", "null"], description="null before the unit existed"),
    **OWNERSHIP,
    "area_history": {"type": "array", "items": {"type": "object", "required": ["from", "area"], "properties": {
        "from": TIME, "area": AREA, "reason": {"type": ["string", "null"]}}}},
    "ownership_history": {"type": "array", "items": {"type": "object", "required": ["from", "owners"],
                                                     "properties": {**PERIOD, **OWNERSHIP}}},
    "residents": {"type": "array", "items": ID}}}
PERSON_VIEW = {"type": "object", "required": ["id", "name", "adult", "at", "household", "roles"], "properties": {
    "id": ID, "name": NAME_OR_NULL, "adult": {"type": "boolean"}, "at": TIME, "household": ID_OR_NULL,
    "roles": {"type": "array", "items": ROLE},
    "residence_history": {"type": "array", "items": {"type": "object", "required": ["from", "household"],
                                                     "properties": {**PERIOD, "household": ID}}},
    "role_history": {"type": "array", "items": {"type": "object", "required": ["role", "from"],
                                                "properties": {**ROLE["properties"], **PERIOD}}}}}
COMPOUND = {"type": "object", "required": ["id", "name"], "properties": {
    "id": ID, "community": ID, "name": {"type": "string"}}}
BUILDING = {"type": "object", "required": ["id", "compound", "name"], "properties": {
    "id": ID, "community": ID, "compound": ID, "name": {"type": "string"}}}
PERSON_LISTED = {"type": "object", "required": ["id", "name", "adult"], "properties": {
    "id": ID, "name": NAME_OR_NULL, "adult": {"type": "boolean"}, "household": ID_OR_NULL,
    "roles": {"type": "array", "items": ROLE}}}
DIRECTORY = {"type": "object", "required": ["community", "at", "compounds", "buildings", "households", "people"],
             "properties": {
                 "community": {"type": "object", "properties": {"id": ID, "name": {"type": "string"}}}, "at": TIME,
                 "compounds": {"type": "array", "items": COMPOUND}, "buildings": {"type": "array", "items": BUILDING},
                 "households": {"type": "array", "items": UNIT}, "people": {"type": "array", "items": PERSON_LISTED}}}
PRINCIPAL = {"type": "object", "required": ["person", "community", "platform_admin", "roles"], "properties": {
    "person": {"type": "string", "description": "a person's id (admin-<uuid> for a platform administrator)"},
    "community": ID_OR_NULL, "platform_admin": {"type": "boolean"},
    "token": {"type": "string", "description": "the id of the token presented (not its secret)"},
    "expires_at": TIME_OR_NULL, "roles": {"type": "array", "items": ROLE}}}
ISSUED = {"type": "object", "required": ["id", "token", "person", "expires_at"], "properties": {
    "id": ID, "token": {"type": "string", "description": "the secret: shown this once"},
    "person": {"type": "string"}, "expires_at": dict(TIME_OR_NULL, description="null: as long as the deployment"),
    "community": ID}}
TOKEN = {"type": "object", "required": ["id", "created_at", "expires_at", "revoked_at"], "properties": {
    "id": ID, "label": {"type": ["string", "null"]}, "created_at": TIME, "expires_at": TIME_OR_NULL,
    "revoked_at": TIME_OR_NULL}}
ERASURE_REQUEST = {"type": "object", "required": ["id", "person", "requested_at"], "properties": {
    "id": ID, "person": ID, "requested_at": TIME, "requested_by": {"type": "string"},
    "reason": {"type": ["string", "null"]},
    "services": {"type": "object", "description": "service -> its record of having erased",
                 "additionalProperties": {"type": "object", "required": ["done"], "properties": {
                     "done": {"type": "boolean"}, "erasure": ID, "texts": {"type": "integer"}, "at": TIME}}},
    "complete": {"type": "boolean"}}}
ERASURE_STATUS = {"type": "object", "required": ["person", "services", "requests"], "properties": {
    "person": ID, "services": {"type": "array", "items": {"type": "string"}},
    "requests": {"type": "array", "items": ERASURE_REQUEST}}}
OBJECTS = {"type": "array", "items": {"type": "object"}}
MY_DATA = {"type": "object", "required": ["community", "person"], "properties": {
    "community": ID, "person": ID,
    "communities": {"type": "object", "properties": {
        "person": PERSON_VIEW, "tokens": {"type": "array", "items": TOKEN},
        "erasure_requests": {"type": "array", "items": ERASURE_REQUEST}}},
    "proposals": {"type": "object", "properties": {"proposals": OBJECTS, "supports": OBJECTS}},
    "deliberation": {"type": "object", "properties": {"comments": OBJECTS}},
    "decisions": {"type": "object", "properties": {"votes": OBJECTS, "objections": OBJECTS}},
    "actions": {"type": "object", "properties": {"evaluations": OBJECTS}},
    "notifications": {"type": "object", "properties": {"preferences": {"type": "object"}, "messages": OBJECTS}}}}
INVITATION = {"type": "object", "required": ["id", "code", "expires_at", "household", "roles"], "properties": {
    "id": ID, "code": {"type": "string", "description": "the code to redeem: shown this once"},
    "expires_at": TIME, "household": ID_OR_NULL, "roles": {"type": "array", "items": {"type": "string"}}}}
INVITATIONS = {"type": "object", "required": ["count", "expires_at", "invitations"], "properties": {
    "count": {"type": "integer"}, "expires_at": TIME, "invitations": {"type": "array", "items": INVITATION}}}
LISTED = {"id": {"type": "string"}, "name": {"type": "string"},
          "lines": {"type": "array", "items": {"type": "integer"}}}
IMPORTED = {"type": "object", "required": ["households", "households_unchanged", "people", "events"], "properties": {
    "households": {"type": "integer"}, "households_unchanged": {"type": "integer"}, "events": {"type": "integer"},
    "people": {"type": "object", "required": ["created", "matched"], "properties": {
        "created": {"type": "array", "items": {"type": "object", "properties": LISTED}},
        "matched": {"type": "array", "items": {"type": "object", "properties": {
            **LISTED, "renamed": {"type": "boolean"}}}}}}}}


@route("POST", "/api/v1/sign-in", summary="Redeem an invitation: register and receive a token", tag="sign-in",
       roles=PUBLIC, status=201, body=S.obj(["code", "name"], code=S.text(100), name=S.text(100),
                                            adult={"type": "boolean"}), response=ISSUED)
def sign_in(c: Call):
    return c.send(communities.RedeemInvitation(code=c.body["code"], name=c.body["name"],
                                               adult=c.body.get("adult", True)))


@route("GET", "/api/v1/me", summary="Who the token belongs to, with roles", tag="sign-in", response=PRINCIPAL)
def me(c: Call):
    return dict(c.principal, roles=c.principal.get("roles", []))  # a signed token's roles, asked now


@route("DELETE", "/api/v1/me/token", summary="Sign out: revoke the token this request presents", tag="sign-in",
       status=204)
def sign_out(c: Call):
    c.send(communities.SignOut(actor=c.actor, token=c.principal["token"]))
    CACHE.forget(token_id=c.principal["token"])


@route("GET", "/api/v1/communities", summary="Communities visible to the caller", tag=TAG,
       response={"type": "array", "items": LISTED_COMMUNITY})
def list_communities(c: Call):
    all_ = c.send(communities.ListCommunities())
    if c.principal.get("platform_admin"):
        return all_
    return [x for x in all_ if x["id"] == c.principal.get("community")]


@route("POST", "/api/v1/communities", summary="Create a community (tenant)", tag=TAG, roles=("platform_admin",),
       status=201, body=S.obj(["name"], name=S.text(200), rules={"type": "object"}), response=CREATED)
def create_community(c: Call):
    if not c.principal.get("platform_admin"):
        raise Forbidden.coded("gateway.platform_administrator_creates_communities")
    return c.send(communities.CreateCommunity(actor=c.actor, name=c.body["name"], rules=c.body.get("rules")))


@route("GET", C, summary="A community with its rules", tag=TAG, response=COMMUNITY)
def get_community(c: Call):
    return c.send(communities.GetCommunity(community=c.community))


@route("PATCH", C + "/rules", summary="Propose a change of some rule settings (a second person, a party-committee "
       "lead, confirms it)", tag=TAG, roles=MANAGERS, status=202, body={"type": "object", "minProperties": 1},
       response=RULE_CHANGE)
def change_rules(c: Call):
    return c.send(communities.ProposeRuleChange(actor=c.actor, community=c.community, settings=c.body))


@route("POST", C + "/rule-changes/{change}/confirmation", summary="Confirm a proposed rule change: it takes effect "
       "now (for stages opened from now on)", tag=TAG, roles=("party_lead",), status=200, response=RULE_CHANGE)
def confirm_rule_change(c: Call):
    return c.send(communities.ConfirmRuleChange(actor=c.actor, community=c.community, change=c.params["change"]))


@route("DELETE", C + "/rule-changes/{change}", summary="Withdraw a proposed rule change (its proposer or a lead)",
       tag=TAG, roles=MANAGERS, status=200, response=RULE_CHANGE)
def withdraw_rule_change(c: Call):
    return c.send(communities.WithdrawRuleChange(actor=c.actor, community=c.community, change=c.params["change"]))


@route("GET", C + "/directory", summary="The directory as it stood at a time (default now)", tag=TAG, query=AT,
       response=DIRECTORY)
def directory(c: Call):
    return c.send(communities.Directory(community=c.community, at=c.query.get("at")))


@route("POST", C + "/compounds", summary="Add a compound (院坝/小区)", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["name"], name=S.text(200)), response=CREATED)
def add_compound(c: Call):
    return c.send(communities.AddCompound(actor=c.actor, community=c.community, name=c.body["name"]))


@route("POST", C + "/buildings", summary="Add a building to a compound", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["compound", "name"], compound=S.uuid_str(), name=S.text(200)), response=CREATED)
def add_building(c: Call):
    return c.send(communities.AddBuilding(actor=c.actor, community=c.community, compound=c.body["compound"],
                                          name=c.body["name"]))


HOUSEHOLD = S.obj(
    ["building", "unit", "area"],
    building=S.uuid_str(), unit=S.text(40), area=S.decimal(),
    owners={"type": "array", "items": S.uuid_str(), "maxItems": 20},
    representative=S.uuid_str(nullable=True), developer_unsold={"type": "boolean"}, effective=S.when(),
)


@route("POST", C + "/households", summary="Register a unit with its exclusive area and owners", tag=TAG,
       roles=MANAGERS, status=201, body=HOUSEHOLD, response=CREATED)
def register_household(c: Call):
    b = c.body
    return c.send(communities.RegisterHousehold(
        actor=c.actor, community=c.community, building=b["building"], unit=b["unit"], area=b["area"],
        owners=b.get("owners", []), representative=b.get("representative"),
        developer_unsold=b.get("developer_unsold", False), effective=b.get("effective")))


@route("GET", C + "/households/{household}", summary="A unit as it stood at a time, with its history", tag=TAG,
       query=AT, response=HOUSEHOLD_VIEW)
def get_household(c: Call):
    return c.send(communities.GetHousehold(community=c.community, household=c.params["household"],
                                           at=c.query.get("at")))


@route("POST", C + "/households/{household}/area-corrections", summary="Correct the exclusive area, with a reason",
       tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["area", "reason"], area=S.decimal(), reason=S.text(1000), effective=S.when()),
       response=HOUSEHOLD_VIEW)
def correct_area(c: Call):
    b = c.body
    return c.send(communities.CorrectArea(actor=c.actor, community=c.community, household=c.params["household"],
                                          area=b["area"], reason=b["reason"], effective=b.get("effective")))


@route("POST", C + "/households/{household}/transfers", summary="Record a sale: the new owners from a date",
       tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["owners"], owners={"type": "array", "items": S.uuid_str(), "maxItems": 20},
                  representative=S.uuid_str(nullable=True), developer_unsold={"type": "boolean"},
                  effective=S.when()), response=HOUSEHOLD_VIEW)
def transfer(c: Call):
    b = c.body
    return c.send(communities.TransferHousehold(
        actor=c.actor, community=c.community, household=c.params["household"], owners=b["owners"],
        representative=b.get("representative"), developer_unsold=b.get("developer_unsold", False),
        effective=b.get("effective")))


@route("POST", C + "/people", summary="Register a resident or owner", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj(["name"], name=S.text(100), adult={"type": "boolean"}, household=S.uuid_str(nullable=True),
                  effective=S.when()), response=CREATED)
def register_person(c: Call):
    b = c.body
    return c.send(communities.RegisterPerson(actor=c.actor, community=c.community, name=b["name"],
                                             adult=b.get("adult", True), household=b.get("household"),
                                             effective=b.get("effective")))


@route("GET", C + "/people/{person}", summary="A person with residence and roles at a time", tag=TAG, query=AT,
       response=PERSON_VIEW)
def get_person(c: Call):
    return c.send(communities.GetPerson(community=c.community, person=c.params["person"], at=c.query.get("at")))


@route("POST", C + "/people/{person}/moves", summary="Record a move in, out or between units", tag=TAG,
       roles=MANAGERS, status=201, body=S.obj(["household"], household=S.uuid_str(nullable=True), effective=S.when()),
       response=PERSON_VIEW)
def move(c: Call):
    return c.send(communities.MovePerson(actor=c.actor, community=c.community, person=c.params["person"],
                                         household=c.body["household"], effective=c.body.get("effective")))


@route("POST", C + "/people/{person}/roles", summary="Grant a role (1+2+X and others)", tag=TAG,
       roles=MANAGERS, status=201,
       body=S.obj(["role"], role=S.text(40), scope=S.uuid_str(nullable=True), effective=S.when()), response=PERSON_VIEW)
def grant_role(c: Call):
    if c.body["role"] == "party_lead" and not c.has_role("party_lead"):
        raise Forbidden.coded("gateway.party_committee_lead_role")
    return c.send(communities.GrantRole(actor=c.actor, community=c.community, person=c.params["person"],
                                        role=c.body["role"], scope=c.body.get("scope"),
                                        effective=c.body.get("effective")))


@route("POST", C + "/people/{person}/role-revocations", summary="Revoke a role", tag=TAG, roles=MANAGERS,
       status=201, body=S.obj(["role"], role=S.text(40), scope=S.uuid_str(nullable=True), effective=S.when()),
       response=PERSON_VIEW)
def revoke_role(c: Call):
    person = c.send(communities.RevokeRole(actor=c.actor, community=c.community, person=c.params["person"],
                                           role=c.body["role"], scope=c.body.get("scope"),
                                           effective=c.body.get("effective")))
    CACHE.forget(person=person["id"])  # this instance at once; the others when the event reaches them
    return person


@route("POST", C + "/people/{person}/tokens", summary="Issue a further API token to yourself (e.g. another "
       "device); others get access by invitation", tag=TAG, status=201,
       body=S.obj([], days={"type": "integer", "minimum": 1, "maximum": 366}, label=S.text(100)), response=ISSUED)
def issue_token(c: Call):
    # The directory decides who may (the holder, or an administrator) after finding the person in
    # this community, so another community's person is "not found" like every other object.
    body = c.body or {}
    return c.send(communities.IssueToken(community=c.community, person=c.params["person"], days=body.get("days", 90),
                                         label=body.get("label"), actor=c.actor, presented=c.principal.get("token")))


@route("GET", C + "/people/{person}/tokens", summary="A person's tokens (ids, labels, expiry; never the secret)",
       tag=TAG, response={"type": "array", "items": TOKEN})
def list_tokens(c: Call):
    return c.send(communities.ListTokens(actor=c.actor, community=c.community, person=c.params["person"]))


@route("DELETE", C + "/tokens/{token}", summary="Revoke a token at once (its holder; a worker for a resident's "
       "token; the party-committee lead for anyone's)", tag=TAG, status=204)
def revoke_token(c: Call):
    c.send(communities.RevokeToken(actor=c.actor, community=c.community, token=c.params["token"]))
    CACHE.forget(token_id=c.params["token"])  # this instance at once; the others when the event reaches them


@route("POST", C + "/people/{person}/erasure", summary="Erase a person's texts and contact data in every service "
       "(PIPL art. 47), with a reason: recorded in the directory, carried out by each service; hashes and counts "
       "stay. Answers the request with what is done so far", tag=TAG, roles=MANAGERS, status=202,
       body=S.obj(["reason"], reason=S.text(1000), confirm={"type": "boolean"}), response=ERASURE_REQUEST)
def erase(c: Call):
    return c.send(communities.RequestErasure(actor=c.actor, community=c.community, person=c.params["person"],
                                             reason=c.body["reason"]))


@route("GET", C + "/people/{person}/erasure", summary="The person's erasure requests and which services have "
       "completed each", tag=TAG, response=ERASURE_STATUS)
def erasure_status(c: Call):
    return c.send(communities.ErasureStatus(actor=c.actor, community=c.community, person=c.params["person"]))


@route("GET", C + "/me/data", summary="A copy of what the platform holds about me (PIPL art. 45): directory "
       "record, proposals, supports, comments, votes as I may see them, evaluations, messages and settings", tag=TAG,
       response=MY_DATA)
def my_data(c: Call):
    out = {"community": c.community, "person": c.actor}
    for service in ERASING:  # the services that hold a person's texts or contact data
        out[service] = c.send(every_service.PERSONAL_DATA[service](community=c.community, person=c.actor))
    return out


@route("POST", C + "/invitations", summary="Invite a resident to sign in", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj([], household=S.uuid_str(nullable=True), roles={"type": "array", "items": S.text(40)},
                  days={"type": "integer", "minimum": 1, "maximum": 90}), response=INVITATION)
def invite(c: Call):
    b = c.body
    if "party_lead" in b.get("roles", []) and not c.has_role("party_lead"):
        raise Forbidden.coded("gateway.invitation_party_committee_lead")
    return c.send(communities.CreateInvitation(actor=c.actor, community=c.community, household=b.get("household"),
                                               roles=b.get("roles", ["resident"]), days=b.get("days", 14)))


@route("POST", C + "/invitations/batch", summary="Invite the residents of many households at once (slips for a "
       "building's letterboxes): the households named, or every household of the community, a compound or a "
       "building; each code is shown this once", tag=TAG, roles=MANAGERS, status=201,
       body=S.obj([], households={"type": "array", "items": S.uuid_str(), "minItems": 1,
                                  "maxItems": communities.MAX_INVITATIONS},
                  scope={"type": "string", "enum": list(communities.SCOPES)}, scope_id=S.uuid_str(nullable=True),
                  days={"type": "integer", "minimum": 1, "maximum": 90}), response=INVITATIONS)
def invite_many(c: Call):
    b = c.body
    return c.send(communities.CreateInvitations(actor=c.actor, community=c.community, households=b.get("households"),
                                                scope=b.get("scope", "community"), scope_id=b.get("scope_id"),
                                                days=b.get("days", 14)))


@route("DELETE", C + "/invitations/{invitation}", summary="Revoke an invitation not yet redeemed", tag=TAG,
       roles=MANAGERS, status=200, response=REVOKED)
def revoke_invitation(c: Call):
    return c.send(communities.RevokeInvitation(actor=c.actor, community=c.community,
                                               invitation=c.params["invitation"]))


IMPORT_WAIT_S = 10.0  # an import not done within this is answered 202 with its job
IMPORT_JOB = {"type": "object", "required": ["id", "status", "lines", "started_at"], "properties": {
    "id": S.uuid_str(), "community": S.uuid_str(), "status": {"type": "string", "enum": list(communities.IMPORT_STATUSES)},
    "sha256": {"type": "string"}, "lines": {"type": "integer", "description": "the file's rows after its header"},
    "actor": {"type": "string"}, "started_at": {"type": "string"}, "finished_at": {"type": ["string", "null"]},
    "result": {"oneOf": [IMPORTED, {"type": "null"}], "description": "once done: what was imported"},
    "problem": {"type": ["object", "null"], "description": "once failed or interrupted: why (as problem+json)"}},
    "description": "a CSV import run as a job, named by the community and the file's SHA-256: posting the same "
                   "file while it runs finds that run; once it has ended, the file runs again (changing nothing "
                   "that is already so)"}


def _wait_asked(headers: dict) -> float:
    """RFC 7240: `Prefer: respond-async` answers at once with the job; `Prefer: wait=N` waits up to
    N seconds (at most IMPORT_WAIT_S) for the import to end."""
    wait = IMPORT_WAIT_S
    for preference in (headers.get("prefer") or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "respond-async":
            wait = 0.0
        elif name.strip().lower() == "wait" and value.strip().isdigit():
            wait = min(wait, float(value.strip()))
    return wait


@route("POST", C + "/directory/import", summary="Import households and owners from CSV (all or nothing): "
       "201 with what was imported, or 202 with the import's job when it takes longer (`Prefer: wait=N`, "
       "`Prefer: respond-async`); read the job at its `Location` until it is done",
       tag=TAG, roles=MANAGERS, status=201, content_type="text/csv", max_body=5_000_000, response=IMPORTED,
       also={202: IMPORT_JOB})
def import_csv(c: Call):
    job = c.send(communities.StartImport(actor=c.actor, community=c.community, text=c.body,
                                         wait=_wait_asked(c.headers)))
    return _import_answer(job, c)


def _import_answer(job: dict, c: Call):
    if job["status"] == communities.IMPORT_DONE:
        return 201, job["result"]
    if job["status"] == communities.IMPORT_RUNNING:
        return Raw(202, json.dumps(job, ensure_ascii=False).encode("utf-8"), JSON,
                   {"Location": f"/api/v1/communities/{c.community}/directory/imports/{job['id']}"})
    raise from_problem(job["problem"])  # the file's errors by line (422), a conflict, or "not now" (503)


@route("GET", C + "/directory/imports/{job}", summary="A CSV import's job: running, done (with what was imported), "
       "failed (why, as the import answers it) or interrupted (post the file again)", tag=TAG, roles=MANAGERS,
       response=IMPORT_JOB)
def import_job(c: Call):
    return c.send(communities.ImportStatus(actor=c.actor, community=c.community, job=c.params["job"]))




# The stages asked for "what needs me", in the order of the 1+4+N flow; each answers for its own
# objects (services/<stage>/application.py `needs_of`), so a page never guesses from lists.
NEEDS_FROM = every_service.STAGES_WITH_NEEDS
NEEDS_WAIT_S = 5.0  # one stage that is down costs the home page this, not the RPC timeout
NEED = {"type": "object", "required": ["kind", "stage", "id", "path"], "properties": {
    "kind": {"type": "string", "enum": list(every_service.NEED_KINDS)},
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
                items += c.send(every_service.NEEDS_OF[stage](community=c.community, person=c.actor, roles=roles))
        except (Unavailable, eventlet.Timeout):  # the stage's own 503, or the gateway's: not running, too slow
            unavailable.append(stage)
    return {"items": items, "unavailable": unavailable}
