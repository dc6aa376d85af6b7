"""Event contracts of the `deliberation` source: 议事 consultations, comments, meetings and minutes.

Prose: `services/contracts/prose/deliberation.md`; the generated page: `docs/events/deliberation.md`.
"""
from __future__ import annotations

from .calls import RpcCall, rpc_call
from .communities import SCOPES  # noqa: F401 - the gateway reads them here
from .erasure import PERSON_TEXTS_ERASED
from .schema import event, f

SOURCE = "deliberation"

# What the gateway validates and lists (services/deliberation/domain.py re-exports those it checks).
STANCES = ("for", "against", "neutral", "question")  # a comment's stance
# "public": every resident in scope may speak; "body": a session of the consultation body, where
# only its members speak (everyone in the community still reads it).
VENUES = ("public", "body")
# The "X" of 1+2+X: the parties invited into a consultation's body, who accept or decline.
INVITED_ROLES = ("property_company", "resident", "facilitator", "expert", "owners_committee")
# vote_needed goes to the decision stage, agreed to the action stage; no_action ends the case
# there (the body found nothing needs doing, e.g. the matter resolved itself), with its reason.
OUTCOMES = ("vote_needed", "agreed", "no_action")
MEETING_MODES = ("on_site", "online")  # how a meeting is held
CONSULTATION_STATUSES = ("open", "concluded")  # a consultation's status
# Who raised the topic: a qualified proposal, or the party committee.
CONVENED_BY = ("proposal", "party_committee")
MEMBER_SOURCES = ("directory", "designation", "invitation")  # how a person came into the body
# A place in the body: held, offered, declined, or handed on (a convener replaced).
MEMBER_STATUSES = ("active", "invited", "declined", "replaced")
AMENDMENT_STATUSES = ("pending", "accepted", "rejected")  # an amendment, until the convener rules on it
MEETING_STATUSES = ("scheduled", "opened", "closed", "cancelled")  # a meeting's status

EVENTS = (
    event("ConsultationOpened", "Consultation", 1, f("community", "str"), f("case", "str"), f("proposal", "str?"),
          f("scope", "str"), f("scope_id", "str?"), f("category", "str"), f("title_commitment", "commitment?"),
          f("body_commitment", "commitment?"), f("convened_by", "str"), f("convener", "str?"), f("body", "array"),
          f("rules", "object")),
    event("ConvenerDesignated", "Consultation", 1, f("person", "str"), f("previous", "str?")),
    event("BodyMemberInvited", "Consultation", 1, f("person", "str"), f("role", "str")),
    event("InvitationAccepted", "Consultation", 1, f("person", "str"), f("role", "str")),
    event("InvitationDeclined", "Consultation", 1, f("person", "str"), f("role", "str"),
          f("reason_commitment", "commitment?")),
    event("OptionProposed", "Consultation", 1, f("option", "str"), f("proposer", "str"),
          f("title_commitment", "commitment"), f("description_commitment", "commitment")),
    event("AmendmentProposed", "Consultation", 1, f("amendment", "str"), f("option", "str"), f("proposer", "str"),
          f("title_commitment", "commitment?"), f("description_commitment", "commitment")),
    event("AmendmentAccepted", "Consultation", 1, f("amendment", "str"), f("option", "str"),
          f("reason_commitment", "commitment")),
    event("AmendmentRejected", "Consultation", 1, f("amendment", "str"), f("option", "str"),
          f("reason_commitment", "commitment")),
    event("OptionListFinalised", "Consultation", 1, f("options", "array")),
    event("DeliberationConcluded", "Consultation", 1, f("consultation", "str"), f("proposal", "str?"),
          f("scope", "str"), f("scope_id", "str?"), f("category", "str"), f("title_commitment", "commitment?"),
          f("convener", "str"), f("outcome", "str"), f("options", "array"), f("summary_commitment", "commitment"),
          f("reason_commitment", "commitment?"), f("suggested_rule", "str?"), f("meeting", "str"),
          f("minutes", "str")),
    event("CommentPosted", "Comment", 1, f("community", "str"), f("case", "str"), f("consultation", "str"),
          f("author", "str"), f("author_roles", "array"), f("venue", "str"), f("stance", "str"),
          f("reply_to", "str?"), f("text_commitment", "commitment")),
    event("CommentEdited", "Comment", 1, f("text_commitment", "commitment"), f("previous_commitment", "commitment")),
    event("CommentFlagged", "Comment", 1, f("flagger", "str")),
    event("CommentHidden", "Comment", 1, f("moderator", "str?"), f("reason_commitment", "commitment?"),
          f("automatic", "bool")),
    event("CommentRestored", "Comment", 1, f("moderator", "str"), f("reason_commitment", "commitment")),
    event("MeetingScheduled", "Meeting", 1, f("community", "str"), f("case", "str"), f("consultation", "str"),
          f("starts_at", "str"), f("mode", "str"), f("place_commitment", "commitment"),
          f("agenda_commitments", "commitments"), f("secretary", "str"), f("notice_days", "int")),
    event("AttendeeSignedIn", "Meeting", 1, f("person", "str"), f("roles", "array"), f("recorded_by", "str")),
    event("MeetingOpened", "Meeting", 1, f("present", "array"), f("body_size", "int"), f("quorum", "str")),
    event("MeetingClosed", "Meeting", 1),
    event("MeetingCancelled", "Meeting", 1, f("reason_commitment", "commitment")),
    event("MinutesRecorded", "Minutes", 1, f("community", "str"), f("case", "str"), f("consultation", "str"),
          f("meeting", "str"), f("corrects", "str?"), f("text_commitment", "commitment"), f("recorded_by", "str"),
          f("signer_roles", "array")),
    event("MinutesRevised", "Minutes", 1, f("text_commitment", "commitment")),
    event("MinutesSigned", "Minutes", 1, f("signer", "str"), f("roles", "array"),
          f("text_commitment", "commitment")),
    event("MinutesConfirmed", "Minutes", 1, f("signers", "array")),
    PERSON_TEXTS_ERASED,  # its part of an erasure request (services/common/erasure.py)
)


# ---- calls: the deliberation service's RPC methods, by their arguments' names (calls.py) ----------------
# A command names who acts (`actor`), the roles the directory gives them here (`roles`: the service
# decides from them and the consultation's body who may act) and the community; a query names the
# community only.
@rpc_call(SOURCE, "open_consultation")
class OpenConsultation(RpcCall):
    actor: str
    roles: list[str]
    community: str
    title: str
    description: str
    scope: str
    scope_id: str | None
    category: str


@rpc_call(SOURCE, "designate_convener")
class DesignateConvener(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    person: str


@rpc_call(SOURCE, "invite")
class Invite(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    person: str
    role: str


@rpc_call(SOURCE, "answer_invitation")
class AnswerInvitation(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    role: str
    accept: bool
    reason: str | None = None


@rpc_call(SOURCE, "post_comment")
class PostComment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    text: str
    stance: str
    venue: str = "public"
    reply_to: str | None = None


@rpc_call(SOURCE, "edit_comment")
class EditComment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    comment: str
    text: str


@rpc_call(SOURCE, "flag_comment")
class FlagComment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    comment: str


@rpc_call(SOURCE, "hide_comment")
class HideComment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    comment: str
    reason: str


@rpc_call(SOURCE, "restore_comment")
class RestoreComment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    comment: str
    reason: str


@rpc_call(SOURCE, "propose_option")
class ProposeOption(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    title: str
    description: str


@rpc_call(SOURCE, "propose_amendment")
class ProposeAmendment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    option: str
    description: str
    title: str | None = None


@rpc_call(SOURCE, "rule_on_amendment")
class RuleOnAmendment(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    amendment: str
    accept: bool
    reason: str


@rpc_call(SOURCE, "finalise_options")
class FinaliseOptions(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    options: list[str]


@rpc_call(SOURCE, "schedule_meeting")
class ScheduleMeeting(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    starts_at: str
    mode: str
    place: str
    agenda: list[str]
    secretary: str


@rpc_call(SOURCE, "sign_in")
class SignIn(RpcCall):
    actor: str
    roles: list[str]
    community: str
    meeting: str
    person: str | None = None


@rpc_call(SOURCE, "open_meeting")
class OpenMeeting(RpcCall):
    actor: str
    roles: list[str]
    community: str
    meeting: str
    concluding: bool = False


@rpc_call(SOURCE, "close_meeting")
class CloseMeeting(RpcCall):
    actor: str
    roles: list[str]
    community: str
    meeting: str


@rpc_call(SOURCE, "cancel_meeting")
class CancelMeeting(RpcCall):
    actor: str
    roles: list[str]
    community: str
    meeting: str
    reason: str


@rpc_call(SOURCE, "record_minutes")
class RecordMinutes(RpcCall):
    actor: str
    roles: list[str]
    community: str
    meeting: str
    text: str


@rpc_call(SOURCE, "revise_minutes")
class ReviseMinutes(RpcCall):
    actor: str
    roles: list[str]
    community: str
    minutes: str
    text: str


@rpc_call(SOURCE, "sign_minutes")
class SignMinutes(RpcCall):
    actor: str
    roles: list[str]
    community: str
    minutes: str


@rpc_call(SOURCE, "correct_minutes")
class CorrectMinutes(RpcCall):
    actor: str
    roles: list[str]
    community: str
    minutes: str
    text: str


@rpc_call(SOURCE, "conclude")
class Conclude(RpcCall):
    actor: str
    roles: list[str]
    community: str
    consultation: str
    outcome: str
    summary: str
    meeting: str
    reason: str | None = None
    suggested_rule: str | None = None


@rpc_call(SOURCE, "list_consultations")
class ListConsultations(RpcCall):
    community: str
    status: str | None = None


@rpc_call(SOURCE, "get_consultation")
class GetConsultation(RpcCall):
    community: str
    consultation: str


@rpc_call(SOURCE, "comments")
class Comments(RpcCall):
    community: str
    consultation: str
    after: int = 0
    limit: int = 100


@rpc_call(SOURCE, "get_comment")
class GetComment(RpcCall):
    community: str
    comment: str


@rpc_call(SOURCE, "get_meeting")
class GetMeeting(RpcCall):
    community: str
    meeting: str


@rpc_call(SOURCE, "get_minutes")
class GetMinutes(RpcCall):
    community: str
    minutes: str
