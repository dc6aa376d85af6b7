"""Deliberation (议事) routes: consultations, their body, discussion, options, meetings, minutes
and conclusion. Everyone in the community reads; who may act is decided by the deliberation
service from the consultation's body and the caller's roles, which these routes pass along."""
from __future__ import annotations

from rules.presets import PRESET_FUNCTIONS
from services.contracts import deliberation
from services.contracts.calls import RpcCall
from services.contracts.deliberation import (
    AMENDMENT_STATUSES, CONSULTATION_STATUSES, CONVENED_BY, INVITED_ROLES, MEETING_MODES, MEETING_STATUSES,
    MEMBER_SOURCES, MEMBER_STATUSES, OUTCOMES, SCOPES, STANCES, VENUES,
)

from . import schema as S
from .router import Call, route

TAG = "deliberation"
C = "/api/v1/communities/{community}"
CONSULTATION = C + "/consultations/{consultation}"
REASON = S.text(2000)

# ---- what the routes answer ------------------------------------------------------------------------
# Texts live in the erasable content store: each `<x>_commitment` is answered with its text `<x>`
# beside it, null once erased (or not held). The gateway names the people an answer lists
# (`person_name` beside `person`, null for an erased person), so objects stay open to such keys.
STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
NAME = {"type": ["string", "null"], "description": "display name the gateway adds; null once erased"}
COUNT = {"type": "integer", "minimum": 0}
STRINGS = {"type": "array", "items": STR}
CREATED = {"type": "object", "description": "the id of what was created", "properties": {"id": STR},
           "required": ["id"]}
RULES = {"type": "object", "description": "the community's rules the consultation follows, frozen when it opened",
         "properties": {"meeting_notice_days": COUNT,
                        "meeting_quorum": {**STR, "description": "a fraction of the body, like 2/3"},
                        "meeting_required_roles": STRINGS, "conclusion_required_roles": STRINGS,
                        "minutes_signers": STRINGS, "flags_to_hide": COUNT}}
MEMBER = {
    "type": "object", "description": "a place in the consultation body (1+2+X)",
    "properties": {"person": STR, "person_name": NAME, "role": STR, "scope": STR_OR_NULL,
                   "source": {"type": "string", "enum": list(MEMBER_SOURCES)},
                   "status": {"type": "string", "enum": list(MEMBER_STATUSES)},
                   "reason_commitment": STR_OR_NULL, "reason": {**STR_OR_NULL, "description": "why declined"}},
    "required": ["person", "role", "scope", "source", "status"],
}
TEXTS = {"title_commitment": STR_OR_NULL, "title": STR_OR_NULL, "description_commitment": STR_OR_NULL,
         "description": STR_OR_NULL}
OPTION = {
    "type": "object", "description": "a solution option as it reads now (amended_by: what it said before)",
    "properties": {"id": STR, "proposer": STR, "proposer_name": NAME, **TEXTS,
                   "amended_by": {"type": "array", "items": {"type": "object", "properties": {
                       "amendment": STR, **TEXTS}, "required": ["amendment"]}}},
    "required": ["id", "proposer", "title_commitment", "description_commitment", "amended_by"],
}
AMENDMENT = {
    "type": "object",
    "properties": {"id": STR, "option": STR, "proposer": STR, "proposer_name": NAME, **TEXTS,
                   "status": {"type": "string", "enum": list(AMENDMENT_STATUSES)},
                   "reason_commitment": STR_OR_NULL, "reason": STR_OR_NULL},
    "required": ["id", "option", "proposer", "title_commitment", "description_commitment", "status"],
}
CONCLUSION = {
    "type": ["object", "null"], "description": "how the deliberation ended; null while it is open",
    "properties": {"outcome": {"type": "string", "enum": list(OUTCOMES)},
                   "options": {"type": "array", "items": {"type": "object", "properties": {"id": STR, **TEXTS},
                                                          "required": ["id"]}},
                   "summary_commitment": STR, "summary": STR_OR_NULL, "reason_commitment": STR_OR_NULL,
                   "reason": STR_OR_NULL, "suggested_rule": STR_OR_NULL, "meeting": STR, "minutes": STR},
    "required": ["outcome", "options", "summary_commitment", "meeting", "minutes"],
}
CONSULTATION_STATUS = {"type": "string", "enum": list(CONSULTATION_STATUSES)}
CONSULTATION_VIEW = {
    "type": "object", "description": "a consultation: its body, options, amendments, meetings and conclusion",
    "properties": {
        "id": STR, "community": STR, "case": STR,
        "proposal": {**STR_OR_NULL, "description": "null: a topic the party organisation raised itself"},
        "scope": {"type": "string", "enum": list(SCOPES)}, "scope_id": STR_OR_NULL,
        "category": STR, "convened_by": {"type": "string", "enum": list(CONVENED_BY)},
        "title": STR_OR_NULL, "description": STR_OR_NULL, "title_commitment": STR_OR_NULL,
        "body_commitment": STR_OR_NULL, "status": CONSULTATION_STATUS, "convener": STR_OR_NULL,
        "convener_name": NAME, "rules": RULES, "body": {"type": "array", "items": MEMBER},
        "options": {"type": "array", "items": OPTION}, "amendments": {"type": "array", "items": AMENDMENT},
        "final_options": {"type": ["array", "null"], "items": STR, "description": "option ids, once fixed"},
        "conclusion": CONCLUSION,
        "meetings": {"type": "array", "items": {"type": "object", "properties": {
            "id": STR, "starts_at": STR, "mode": STR, "status": STR}, "required": ["id", "starts_at", "status"]}},
        "comment_count": COUNT,
    },
    "required": ["id", "community", "case", "proposal", "scope", "scope_id", "category", "convened_by", "title",
                 "description", "status", "convener", "rules", "body", "options", "amendments", "final_options",
                 "conclusion", "meetings", "comment_count"],
}
CONSULTATION_ROW = {
    "type": "object", "description": "a consultation as listed",
    "properties": {"id": STR, "community": STR, "case": STR, "proposal": STR_OR_NULL, "scope": STR,
                   "scope_id": STR_OR_NULL, "category": STR, "title_commitment": STR_OR_NULL, "title": STR_OR_NULL,
                   "status": CONSULTATION_STATUS,
                   "outcome": {"type": ["string", "null"], "enum": [*OUTCOMES, None]},
                   "opened_at": STR, "concluded_at": STR_OR_NULL},
    "required": ["id", "community", "case", "proposal", "scope", "category", "title", "status", "opened_at"],
}
COMMENT = {
    "type": "object", "description": "a comment; a hidden one answers its text as null",
    "properties": {
        "id": STR, "consultation": STR, "community": STR, "position": {**COUNT, "description": "posting order"},
        "author": STR, "author_name": NAME, "author_roles": STRINGS,
        "venue": {"type": "string", "enum": list(VENUES)},
        "stance": {"type": "string", "enum": list(STANCES)},
        "reply_to": STR_OR_NULL, "text_commitment": STR, "text": STR_OR_NULL, "posted_at": STR,
        "edited_at": STR_OR_NULL, "edits": COUNT, "flags": COUNT, "hidden": {"type": "boolean"},
        "hidden_reason_commitment": STR_OR_NULL, "hidden_reason": STR_OR_NULL},
    "required": ["id", "consultation", "position", "author", "author_roles", "venue", "stance", "reply_to",
                 "text_commitment", "text", "posted_at", "edits", "flags", "hidden"],
}
COMMENT_VIEW = {
    **COMMENT, "description": "a comment with its edit history (earlier texts, oldest first)",
    "properties": {**COMMENT["properties"],
                   "history": {"type": "array", "items": {"type": "object", "properties": {
                       "text_commitment": STR, "text": STR_OR_NULL}, "required": ["text_commitment"]}},
                   "hidden_automatically": {"type": "boolean", "description": "hidden by flags, not a moderator"}},
    "required": COMMENT["required"] + ["history", "hidden_automatically"],
}
COMMENTS_PAGE = {
    "type": "object", "description": "a page of the discussion; `next` is the `after` of the next page, if any",
    "properties": {"comments": {"type": "array", "items": COMMENT}, "next": {"type": ["integer", "null"]}},
    "required": ["comments", "next"],
}
FLAGS = {"type": "object", "properties": {"flags": COUNT, "hidden": {"type": "boolean"}},
         "required": ["flags", "hidden"]}
MEETING_VIEW = {
    "type": "object", "description": "a meeting: notice, agenda, attendance, quorum and its minutes records",
    "properties": {
        "id": STR, "consultation": STR, "case": STR, "starts_at": STR,
        "mode": {"type": "string", "enum": list(MEETING_MODES)}, "place": STR_OR_NULL, "place_commitment": STR,
        "agenda": {"type": "array", "items": STR_OR_NULL}, "agenda_commitments": STRINGS, "secretary": STR,
        "secretary_name": NAME, "notice_days": COUNT,
        "status": {"type": "string", "enum": list(MEETING_STATUSES)},
        "attendance": {"type": "array", "items": {"type": "object", "properties": {
            "person": STR, "person_name": NAME, "roles": STRINGS, "recorded_by": STR, "recorded_by_name": NAME},
            "required": ["person", "roles", "recorded_by"]}},
        "quorum": {"type": ["object", "null"], "description": "as found when the meeting was held; null before",
                   "properties": {"present": STRINGS, "body_size": COUNT, "quorum": STR},
                   "required": ["present", "body_size", "quorum"]},
        "minutes": {"type": "array", "items": {"type": "object", "properties": {
            "id": STR, "corrects": STR_OR_NULL, "recorded_at": STR, "confirmed_at": STR_OR_NULL},
            "required": ["id", "corrects", "recorded_at", "confirmed_at"]}},
    },
    "required": ["id", "consultation", "case", "starts_at", "mode", "place", "agenda", "secretary", "notice_days",
                 "status", "attendance", "quorum", "minutes"],
}
MINUTES_VIEW = {
    "type": "object", "description": "a minutes record with its signatures; a correction links the one it corrects",
    "properties": {
        "id": STR, "meeting": STR, "consultation": STR, "corrects": STR_OR_NULL, "corrected_by": STR_OR_NULL,
        "text": STR_OR_NULL, "text_commitment": STR, "recorded_by": STR, "recorded_by_name": NAME,
        "signer_roles": STRINGS, "signatures": {"type": "array", "items": {"type": "object", "properties": {
            "person": STR, "person_name": NAME, "roles": STRINGS}, "required": ["person", "roles"]}},
        "outstanding_roles": STRINGS, "confirmed": {"type": "boolean"},
    },
    "required": ["id", "meeting", "consultation", "corrects", "corrected_by", "text", "text_commitment",
                 "recorded_by", "signer_roles", "signatures", "outstanding_roles", "confirmed"],
}


def _act(c: Call, command: type[RpcCall], **arguments):
    """A command as the signed-in person, with the roles the directory gives them here: the
    deliberation service decides from them who may act, so every command carries them."""
    roles = [r["role"] for r in (c.principal or {}).get("roles", [])]
    return c.send(command(actor=c.actor, roles=roles, community=c.community, **arguments))


# ---- consultations ------------------------------------------------------------------------------
@route("GET", C + "/consultations", summary="Consultations of the community", tag=TAG,
       response={"type": "array", "items": CONSULTATION_ROW},
       query={"status": {"type": "string", "enum": list(CONSULTATION_STATUSES)}})
def list_consultations(c: Call):
    return c.send(deliberation.ListConsultations(community=c.community, status=c.query.get("status")))


@route("POST", C + "/consultations", summary="Open a consultation on a topic the party organisation raises",
       tag=TAG, response=CREATED, roles=("party_lead", "community_worker"), status=201,
       body=S.obj(["title", "description", "scope", "category"], title=S.text(200), description=S.text(10000),
                  scope={"type": "string", "enum": list(SCOPES)},
                  scope_id=S.uuid_str(nullable=True), category=S.text(40)))
def open_consultation(c: Call):
    b = c.body
    return _act(c, deliberation.OpenConsultation, title=b["title"], description=b["description"], scope=b["scope"],
                scope_id=b.get("scope_id"), category=b["category"])


@route("GET", CONSULTATION, summary="A consultation: body, options, amendments, meetings, conclusion", tag=TAG,
       response=CONSULTATION_VIEW)
def get_consultation(c: Call):
    return c.send(deliberation.GetConsultation(community=c.community, consultation=c.params["consultation"]))


@route("POST", CONSULTATION + "/convener", summary="Designate the convener (the party-committee lead only)",
       tag=TAG, response=CONSULTATION_VIEW, roles=("party_lead",), body=S.obj(["person"], person=S.uuid_str()))
def designate_convener(c: Call):
    return _act(c, deliberation.DesignateConvener, consultation=c.params["consultation"], person=c.body["person"])


@route("POST", CONSULTATION + "/invitations", summary="Invite a relevant party into the body (the convener)",
       tag=TAG, response=CONSULTATION_VIEW, status=201,
       body=S.obj(["person", "role"], person=S.uuid_str(), role={"type": "string", "enum": list(INVITED_ROLES)}))
def invite(c: Call):
    return _act(c, deliberation.Invite, consultation=c.params["consultation"], person=c.body["person"],
                role=c.body["role"])


@route("POST", CONSULTATION + "/invitation-answers", summary="Accept or decline your invitation into the body",
       tag=TAG, response=CONSULTATION_VIEW,
       body=S.obj(["role", "accept"], role={"type": "string", "enum": list(INVITED_ROLES)},
                  accept={"type": "boolean"}, reason=REASON))
def answer_invitation(c: Call):
    return _act(c, deliberation.AnswerInvitation, consultation=c.params["consultation"], role=c.body["role"],
                accept=c.body["accept"], reason=c.body.get("reason"))


# ---- discussion -----------------------------------------------------------------------------------
@route("GET", CONSULTATION + "/comments", summary="The discussion, a page at a time in posting order", tag=TAG,
       response=COMMENTS_PAGE,
       query={"after": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 500}})
def comments(c: Call):
    return c.send(deliberation.Comments(community=c.community, consultation=c.params["consultation"],
                                        after=c.query.get("after", 0), limit=c.query.get("limit", 100)))


@route("POST", CONSULTATION + "/comments", summary="Comment with a stance, or reply to a comment", tag=TAG,
       response=COMMENT_VIEW, status=201,
       body=S.obj(["text", "stance"], text=S.text(5000),
                  stance={"type": "string", "enum": list(STANCES)},
                  venue={"type": "string", "enum": list(VENUES),
                         "description": "body: a session of the consultation body, members only"},
                  reply_to=S.uuid_str(nullable=True)))
def post_comment(c: Call):
    b = c.body
    return _act(c, deliberation.PostComment, consultation=c.params["consultation"], text=b["text"],
                stance=b["stance"], venue=b.get("venue", "public"), reply_to=b.get("reply_to"))


@route("GET", C + "/comments/{comment}", summary="A comment with its edit history", tag=TAG, response=COMMENT_VIEW)
def get_comment(c: Call):
    return c.send(deliberation.GetComment(community=c.community, comment=c.params["comment"]))


@route("POST", C + "/comments/{comment}/edits", summary="Edit your comment (earlier texts stay in its history)",
       tag=TAG, response=COMMENT_VIEW, status=201, body=S.obj(["text"], text=S.text(5000)))
def edit_comment(c: Call):
    return _act(c, deliberation.EditComment, comment=c.params["comment"], text=c.body["text"])


@route("POST", C + "/comments/{comment}/flags", summary="Flag a comment (hidden at the community's number of flags)",
       tag=TAG, response=FLAGS, status=201)
def flag_comment(c: Call):
    return _act(c, deliberation.FlagComment, comment=c.params["comment"])


@route("POST", C + "/comments/{comment}/hiding", summary="Hide a comment, with a reason (its hash stays on record)",
       tag=TAG, response=COMMENT_VIEW, roles=("moderator",), body=S.obj(["reason"], reason=REASON))
def hide_comment(c: Call):
    return _act(c, deliberation.HideComment, comment=c.params["comment"], reason=c.body["reason"])


@route("POST", C + "/comments/{comment}/restoration", summary="Show a hidden comment again, with a reason",
       tag=TAG, response=COMMENT_VIEW, roles=("moderator",), body=S.obj(["reason"], reason=REASON))
def restore_comment(c: Call):
    return _act(c, deliberation.RestoreComment, comment=c.params["comment"], reason=c.body["reason"])


# ---- options ----------------------------------------------------------------------------------------
@route("POST", CONSULTATION + "/options", summary="Propose a solution option (body members)", tag=TAG,
       response=CREATED, status=201, body=S.obj(["title", "description"], title=S.text(200), description=S.text(10000)))
def propose_option(c: Call):
    return _act(c, deliberation.ProposeOption, consultation=c.params["consultation"], title=c.body["title"],
                description=c.body["description"])


@route("POST", CONSULTATION + "/options/{option}/amendments", summary="Propose an amendment to an option", tag=TAG,
       response=CREATED, status=201, body=S.obj(["description"], title=S.text(200), description=S.text(10000)))
def propose_amendment(c: Call):
    return _act(c, deliberation.ProposeAmendment, consultation=c.params["consultation"], option=c.params["option"],
                description=c.body["description"], title=c.body.get("title"))


@route("POST", CONSULTATION + "/amendments/{amendment}/ruling",
       summary="Accept or reject an amendment, with a reason (the convener)", tag=TAG, response=CONSULTATION_VIEW,
       body=S.obj(["accept", "reason"], accept={"type": "boolean"}, reason=REASON))
def rule_on_amendment(c: Call):
    return _act(c, deliberation.RuleOnAmendment, consultation=c.params["consultation"],
                amendment=c.params["amendment"], accept=c.body["accept"], reason=c.body["reason"])


@route("POST", CONSULTATION + "/final-options", summary="Fix the final option list (the convener)", tag=TAG,
       response=CONSULTATION_VIEW,
       body=S.obj(["options"], options={"type": "array", "items": S.uuid_str(), "minItems": 1, "maxItems": 50}))
def finalise_options(c: Call):
    return _act(c, deliberation.FinaliseOptions, consultation=c.params["consultation"], options=c.body["options"])


# ---- meetings and minutes ------------------------------------------------------------------------------
@route("POST", CONSULTATION + "/meetings",
       summary="Schedule a meeting with the notice the community's rule requires (the convener)", tag=TAG,
       response=MEETING_VIEW, status=201,
       body=S.obj(["starts_at", "mode", "place", "agenda", "secretary"], starts_at=S.when(False),
                  mode={"type": "string", "enum": list(MEETING_MODES)}, place=S.text(500),
                  agenda={"type": "array", "items": S.text(500), "minItems": 1, "maxItems": 30},
                  secretary=S.uuid_str()))
def schedule_meeting(c: Call):
    b = c.body
    return _act(c, deliberation.ScheduleMeeting, consultation=c.params["consultation"], starts_at=b["starts_at"],
                mode=b["mode"], place=b["place"], agenda=b["agenda"], secretary=b["secretary"])


@route("GET", C + "/meetings/{meeting}", summary="A meeting: agenda, attendance, quorum and minutes records",
       tag=TAG, response=MEETING_VIEW)
def get_meeting(c: Call):
    return c.send(deliberation.GetMeeting(community=c.community, meeting=c.params["meeting"]))


@route("POST", C + "/meetings/{meeting}/attendance",
       summary="Sign in (yourself, or someone else if you are the secretary or convener)", tag=TAG,
       response=MEETING_VIEW, status=201,
       body=S.obj([], person=S.uuid_str()))
def sign_in(c: Call):
    return _act(c, deliberation.SignIn, meeting=c.params["meeting"], person=(c.body or {}).get("person"))


@route("POST", C + "/meetings/{meeting}/opening",
       summary="Hold the meeting: checks the required roles and the quorum (the convener); with "
               "?concluding=true also the roles a conclusion requires, named if absent", tag=TAG,
       response=MEETING_VIEW,
       query={"concluding": S.query_flag()})
def open_meeting(c: Call):
    return _act(c, deliberation.OpenMeeting, meeting=c.params["meeting"],
                concluding=c.query.get("concluding") == "true")


@route("POST", C + "/meetings/{meeting}/closing", summary="Close the meeting (the convener or secretary)", tag=TAG,
       response=MEETING_VIEW)
def close_meeting(c: Call):
    return _act(c, deliberation.CloseMeeting, meeting=c.params["meeting"])


@route("POST", C + "/meetings/{meeting}/cancellation", summary="Cancel a scheduled meeting (the convener)",
       tag=TAG, response=MEETING_VIEW, body=S.obj(["reason"], reason=REASON))
def cancel_meeting(c: Call):
    return _act(c, deliberation.CancelMeeting, meeting=c.params["meeting"], reason=c.body["reason"])


@route("POST", C + "/meetings/{meeting}/minutes", summary="Record the minutes (the meeting's secretary)", tag=TAG,
       response=MINUTES_VIEW, status=201, body=S.obj(["text"], text=S.text(50000)))
def record_minutes(c: Call):
    return _act(c, deliberation.RecordMinutes, meeting=c.params["meeting"], text=c.body["text"])


@route("GET", C + "/minutes/{minutes}", summary="A minutes record with its signatures and any correction", tag=TAG,
       response=MINUTES_VIEW)
def get_minutes(c: Call):
    return c.send(deliberation.GetMinutes(community=c.community, minutes=c.params["minutes"]))


@route("POST", C + "/minutes/{minutes}/revisions", summary="Revise unsigned minutes (their recorder)", tag=TAG,
       response=MINUTES_VIEW, body=S.obj(["text"], text=S.text(50000)))
def revise_minutes(c: Call):
    return _act(c, deliberation.ReviseMinutes, minutes=c.params["minutes"], text=c.body["text"])


@route("POST", C + "/minutes/{minutes}/signatures", summary="Confirm the minutes as one of their signers", tag=TAG,
       response=MINUTES_VIEW, status=201)
def sign_minutes(c: Call):
    return _act(c, deliberation.SignMinutes, minutes=c.params["minutes"])


@route("POST", C + "/minutes/{minutes}/corrections",
       summary="Correct confirmed minutes: a new record linked to the one it corrects", tag=TAG,
       response=MINUTES_VIEW, status=201,
       body=S.obj(["text"], text=S.text(50000)))
def correct_minutes(c: Call):
    return _act(c, deliberation.CorrectMinutes, minutes=c.params["minutes"], text=c.body["text"])


# ---- conclusion ------------------------------------------------------------------------------------------
@route("POST", CONSULTATION + "/conclusion",
       summary="Conclude at a held meeting: vote_needed (to the decision stage), agreed or no_action (the case "
               "ends), the last two with a reason", tag=TAG, response=CONSULTATION_VIEW,
       body=S.obj(["outcome", "summary", "meeting"],
                  outcome={"type": "string", "enum": list(OUTCOMES)},
                  summary=S.text(10000), meeting=S.uuid_str(), reason=S.text(5000),
                  suggested_rule={"type": "string", "enum": sorted(PRESET_FUNCTIONS)}))
def conclude(c: Call):
    b = c.body
    return _act(c, deliberation.Conclude, consultation=c.params["consultation"], outcome=b["outcome"],
                summary=b["summary"], meeting=b["meeting"], reason=b.get("reason"),
                suggested_rule=b.get("suggested_rule"))
