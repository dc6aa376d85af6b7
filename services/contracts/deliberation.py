"""Event contracts of the `deliberation` source: 议事 consultations, comments, meetings and minutes.

Prose: `services/contracts/prose/deliberation.md`; the generated page: `docs/events/deliberation.md`.
"""
from __future__ import annotations

from .erasure import PERSON_TEXTS_ERASED
from .schema import event, f

SOURCE = "deliberation"

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
