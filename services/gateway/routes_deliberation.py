"""Deliberation (议事) routes: consultations, their body, discussion, options, meetings, minutes
and conclusion. Everyone in the community reads; who may act is decided by the deliberation
service from the consultation's body and the caller's roles, which these routes pass along."""
from __future__ import annotations

from rules.presets import PRESET_FUNCTIONS

from . import schema as S
from .router import Call, route

TAG = "deliberation"
C = "/api/v1/communities/{community}"
CONSULTATION = C + "/consultations/{consultation}"
REASON = S.text(2000)
ROLES_INVITED = ["property_company", "resident", "facilitator", "expert", "owners_committee"]


def _act(c: Call, method: str, *args):
    """A command as the signed-in person, with the roles the directory gives them here."""
    roles = [r["role"] for r in (c.principal or {}).get("roles", [])]
    return c.call("deliberation", method, c.actor, roles, c.community, *args)


# ---- consultations ------------------------------------------------------------------------------
@route("GET", C + "/consultations", summary="Consultations of the community", tag=TAG,
       query={"status": {"type": "string", "enum": ["open", "concluded"]}})
def list_consultations(c: Call):
    return c.call("deliberation", "list_consultations", c.community, c.query.get("status"))


@route("POST", C + "/consultations", summary="Open a consultation on a topic the party organisation raises",
       tag=TAG, roles=("party_lead", "community_worker"), status=201,
       body=S.obj(["title", "description", "scope", "category"], title=S.text(200), description=S.text(10000),
                  scope={"type": "string", "enum": ["community", "compound", "building"]},
                  scope_id=S.uuid_str(nullable=True), category=S.text(40)))
def open_consultation(c: Call):
    b = c.body
    return _act(c, "open_consultation", b["title"], b["description"], b["scope"], b.get("scope_id"),
                b["category"])


@route("GET", CONSULTATION, summary="A consultation: body, options, amendments, meetings, conclusion", tag=TAG)
def get_consultation(c: Call):
    return c.call("deliberation", "get_consultation", c.community, c.params["consultation"])


@route("POST", CONSULTATION + "/convener", summary="Designate the convener (the party-committee lead only)",
       tag=TAG, roles=("party_lead",), body=S.obj(["person"], person=S.uuid_str()))
def designate_convener(c: Call):
    return _act(c, "designate_convener", c.params["consultation"], c.body["person"])


@route("POST", CONSULTATION + "/invitations", summary="Invite a relevant party into the body (the convener)",
       tag=TAG, status=201,
       body=S.obj(["person", "role"], person=S.uuid_str(), role={"type": "string", "enum": ROLES_INVITED}))
def invite(c: Call):
    return _act(c, "invite", c.params["consultation"], c.body["person"], c.body["role"])


@route("POST", CONSULTATION + "/invitation-answers", summary="Accept or decline your invitation into the body",
       tag=TAG, body=S.obj(["role", "accept"], role={"type": "string", "enum": ROLES_INVITED},
                           accept={"type": "boolean"}, reason=REASON))
def answer_invitation(c: Call):
    return _act(c, "answer_invitation", c.params["consultation"], c.body["role"], c.body["accept"],
                c.body.get("reason"))


# ---- discussion -----------------------------------------------------------------------------------
@route("GET", CONSULTATION + "/comments", summary="The discussion, a page at a time in posting order", tag=TAG,
       query={"after": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 500}})
def comments(c: Call):
    return c.call("deliberation", "comments", c.community, c.params["consultation"], c.query.get("after", 0),
                  c.query.get("limit", 100))


@route("POST", CONSULTATION + "/comments", summary="Comment with a stance, or reply to a comment", tag=TAG,
       status=201, body=S.obj(["text", "stance"], text=S.text(5000),
                              stance={"type": "string", "enum": ["for", "against", "neutral", "question"]},
                              venue={"type": "string", "enum": ["public", "body"],
                                     "description": "body: a session of the consultation body, members only"},
                              reply_to=S.uuid_str(nullable=True)))
def post_comment(c: Call):
    b = c.body
    return _act(c, "post_comment", c.params["consultation"], b["text"], b["stance"], b.get("venue", "public"),
                b.get("reply_to"))


@route("GET", C + "/comments/{comment}", summary="A comment with its edit history", tag=TAG)
def get_comment(c: Call):
    return c.call("deliberation", "get_comment", c.community, c.params["comment"])


@route("POST", C + "/comments/{comment}/edits", summary="Edit your comment (earlier texts stay in its history)",
       tag=TAG, status=201, body=S.obj(["text"], text=S.text(5000)))
def edit_comment(c: Call):
    return _act(c, "edit_comment", c.params["comment"], c.body["text"])


@route("POST", C + "/comments/{comment}/flags", summary="Flag a comment (hidden at the community's number of flags)",
       tag=TAG, status=201)
def flag_comment(c: Call):
    return _act(c, "flag_comment", c.params["comment"])


@route("POST", C + "/comments/{comment}/hiding", summary="Hide a comment, with a reason (its hash stays on record)",
       tag=TAG, roles=("moderator",), body=S.obj(["reason"], reason=REASON))
def hide_comment(c: Call):
    return _act(c, "hide_comment", c.params["comment"], c.body["reason"])


@route("POST", C + "/comments/{comment}/restoration", summary="Show a hidden comment again, with a reason",
       tag=TAG, roles=("moderator",), body=S.obj(["reason"], reason=REASON))
def restore_comment(c: Call):
    return _act(c, "restore_comment", c.params["comment"], c.body["reason"])


# ---- options ----------------------------------------------------------------------------------------
@route("POST", CONSULTATION + "/options", summary="Propose a solution option (body members)", tag=TAG,
       status=201, body=S.obj(["title", "description"], title=S.text(200), description=S.text(10000)))
def propose_option(c: Call):
    return _act(c, "propose_option", c.params["consultation"], c.body["title"], c.body["description"])


@route("POST", CONSULTATION + "/options/{option}/amendments", summary="Propose an amendment to an option", tag=TAG,
       status=201, body=S.obj(["description"], title=S.text(200), description=S.text(10000)))
def propose_amendment(c: Call):
    return _act(c, "propose_amendment", c.params["consultation"], c.params["option"], c.body["description"],
                c.body.get("title"))


@route("POST", CONSULTATION + "/amendments/{amendment}/ruling",
       summary="Accept or reject an amendment, with a reason (the convener)", tag=TAG,
       body=S.obj(["accept", "reason"], accept={"type": "boolean"}, reason=REASON))
def rule_on_amendment(c: Call):
    return _act(c, "rule_on_amendment", c.params["consultation"], c.params["amendment"], c.body["accept"],
                c.body["reason"])


@route("POST", CONSULTATION + "/final-options", summary="Fix the final option list (the convener)", tag=TAG,
       body=S.obj(["options"], options={"type": "array", "items": S.uuid_str(), "minItems": 1, "maxItems": 50}))
def finalise_options(c: Call):
    return _act(c, "finalise_options", c.params["consultation"], c.body["options"])


# ---- meetings and minutes ------------------------------------------------------------------------------
@route("POST", CONSULTATION + "/meetings",
       summary="Schedule a meeting with the notice the community's rule requires (the convener)", tag=TAG,
       status=201, body=S.obj(["starts_at", "mode", "place", "agenda", "secretary"], starts_at=S.when(False),
                              mode={"type": "string", "enum": ["on_site", "online"]}, place=S.text(500),
                              agenda={"type": "array", "items": S.text(500), "minItems": 1, "maxItems": 30},
                              secretary=S.uuid_str()))
def schedule_meeting(c: Call):
    b = c.body
    return _act(c, "schedule_meeting", c.params["consultation"], b["starts_at"], b["mode"], b["place"], b["agenda"],
                b["secretary"])


@route("GET", C + "/meetings/{meeting}", summary="A meeting: agenda, attendance, quorum and minutes records",
       tag=TAG)
def get_meeting(c: Call):
    return c.call("deliberation", "get_meeting", c.community, c.params["meeting"])


@route("POST", C + "/meetings/{meeting}/attendance",
       summary="Sign in (yourself, or someone else if you are the secretary or convener)", tag=TAG, status=201,
       body=S.obj([], person=S.uuid_str()))
def sign_in(c: Call):
    return _act(c, "sign_in", c.params["meeting"], (c.body or {}).get("person"))


@route("POST", C + "/meetings/{meeting}/opening",
       summary="Hold the meeting: checks the required roles and the quorum (the convener); with "
               "?concluding=true also the roles a conclusion requires, named if absent", tag=TAG,
       query={"concluding": {"type": "string", "enum": ["true", "false"]}})
def open_meeting(c: Call):
    return _act(c, "open_meeting", c.params["meeting"], c.query.get("concluding") == "true")


@route("POST", C + "/meetings/{meeting}/closing", summary="Close the meeting (the convener or secretary)", tag=TAG)
def close_meeting(c: Call):
    return _act(c, "close_meeting", c.params["meeting"])


@route("POST", C + "/meetings/{meeting}/cancellation", summary="Cancel a scheduled meeting (the convener)",
       tag=TAG, body=S.obj(["reason"], reason=REASON))
def cancel_meeting(c: Call):
    return _act(c, "cancel_meeting", c.params["meeting"], c.body["reason"])


@route("POST", C + "/meetings/{meeting}/minutes", summary="Record the minutes (the meeting's secretary)", tag=TAG,
       status=201, body=S.obj(["text"], text=S.text(50000)))
def record_minutes(c: Call):
    return _act(c, "record_minutes", c.params["meeting"], c.body["text"])


@route("GET", C + "/minutes/{minutes}", summary="A minutes record with its signatures and any correction", tag=TAG)
def get_minutes(c: Call):
    return c.call("deliberation", "get_minutes", c.community, c.params["minutes"])


@route("POST", C + "/minutes/{minutes}/revisions", summary="Revise unsigned minutes (their recorder)", tag=TAG,
       body=S.obj(["text"], text=S.text(50000)))
def revise_minutes(c: Call):
    return _act(c, "revise_minutes", c.params["minutes"], c.body["text"])


@route("POST", C + "/minutes/{minutes}/signatures", summary="Confirm the minutes as one of their signers", tag=TAG,
       status=201)
def sign_minutes(c: Call):
    return _act(c, "sign_minutes", c.params["minutes"])


@route("POST", C + "/minutes/{minutes}/corrections",
       summary="Correct confirmed minutes: a new record linked to the one it corrects", tag=TAG, status=201,
       body=S.obj(["text"], text=S.text(50000)))
def correct_minutes(c: Call):
    return _act(c, "correct_minutes", c.params["minutes"], c.body["text"])


# ---- conclusion ------------------------------------------------------------------------------------------
@route("POST", CONSULTATION + "/conclusion",
       summary="Conclude at a held meeting: vote_needed (to the decision stage), agreed or no_action (the case "
               "ends), the last two with a reason", tag=TAG,
       body=S.obj(["outcome", "summary", "meeting"],
                  outcome={"type": "string", "enum": ["vote_needed", "agreed", "no_action"]},
                  summary=S.text(10000), meeting=S.uuid_str(), reason=S.text(5000),
                  suggested_rule={"type": "string", "enum": sorted(PRESET_FUNCTIONS)}))
def conclude(c: Call):
    b = c.body
    return _act(c, "conclude", c.params["consultation"], b["outcome"], b["summary"], b["meeting"], b.get("reason"),
                b.get("suggested_rule"))
