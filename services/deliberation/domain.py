"""The deliberation (议事) as the record sees it: a consultation with its 1+2+X body, the
discussion, solution options and amendments, meetings with attendance and quorum, and minutes
with their confirmations. Pure Python on eventsourcing aggregates; no I/O.

What grows with participation has its own aggregate — one per comment, per meeting and per
minutes record — so the thousandth comment costs what the tenth did, and a consultation stays
a bounded aggregate (its body, options and amendments are capped).
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from fractions import Fraction

from eventsourcing.domain import event

from services.common import clock
from services.common.aggregate import Aggregate, derived_id
from services.common.errors import Conflict, Forbidden, InvalidInput
from services.contracts.deliberation import (  # noqa: F401 - the contract owns what the gateway shares
    INVITED_ROLES, MEETING_MODES, OUTCOMES, SCOPES, STANCES, VENUES,
)

# The "1" and the "2" of 1+2+X come from the directory when the consultation opens; the "X" are
# invited (INVITED_ROLES) and accept or decline.
STANDING_ROLES = ("convener", "grid_leader", "building_leader")
BODY_ROLES = STANDING_ROLES + INVITED_ROLES
# Signers of every minutes record; a community's rule `minutes_signers` may add more.
MINUTES_SIGNERS = ("convener", "grid_leader")
# The community rules a consultation follows, frozen into the record when it opens.
RULE_KEYS = ("meeting_notice_days", "meeting_quorum", "meeting_required_roles", "conclusion_required_roles",
             "minutes_signers", "flags_to_hide")

SIGN_IN_OPENS = timedelta(hours=1)  # attendees may sign in this long before the start
MAX_BODY = 200
MAX_OPTIONS = 50
MAX_AMENDMENTS = 200
MAX_EDITS = 50
MAX_AGENDA = 30


# ---- refusals with their own names (mapped to problem+json by their base class) ------------------
class NoticeTooShort(InvalidInput):
    pass


class RequiredRolesAbsent(Conflict):
    pass


class QuorumNotMet(Conflict):
    pass


class MinutesAlreadyConfirmed(Conflict):
    pass


class NotInBody(Forbidden):
    pass


class ConsultationClosed(Conflict):
    pass


def frozen_rules(community_rules: dict) -> dict:
    """The part of a community's rules a consultation follows, as they stood when it opened."""
    missing = [k for k in RULE_KEYS if k not in community_rules]
    if missing:
        raise InvalidInput.coded("deliberation.community_rules_lack", missing=", ".join(missing))
    return {k: community_rules[k] for k in RULE_KEYS}


def signer_roles(rules: dict) -> list[str]:
    return list(dict.fromkeys([*MINUTES_SIGNERS, *rules.get("minutes_signers", [])]))


def standing_body(scope: str, scope_id: str | None, directory: dict) -> list[dict]:
    """The convener, grid leader(s) and building leader(s) of the places a consultation concerns,
    from the directory as it stood when the consultation opened.

    `directory` is the directory service's answer: the community, its compounds, buildings (with
    their compound) and people with their roles. A community-wide scope is named by the
    community's own id (as proposals record it) or by nothing. The convener is the party-committee
    lead (the first by id, if the community has several; the lead may designate someone else).
    """
    if scope not in SCOPES:
        raise InvalidInput.coded("common.scope_one", scopes=", ".join(SCOPES))
    buildings = {b["id"]: b["compound"] for b in directory["buildings"]}
    compounds = {c["id"] for c in directory["compounds"]}
    if scope == "community":
        if scope_id not in (None, directory["community"]["id"]):
            raise InvalidInput.coded("deliberation.community_wide_consultation_takes")
        places_c, places_b = compounds, set(buildings)
    elif scope == "compound":
        if scope_id not in compounds:
            raise InvalidInput.coded("deliberation.compound_directory", scope_id=scope_id)
        places_c, places_b = {scope_id}, {b for b, c in buildings.items() if c == scope_id}
    else:
        if scope_id not in buildings:
            raise InvalidInput.coded("deliberation.building_directory", scope_id=scope_id)
        places_c, places_b = {buildings[scope_id]}, {scope_id}
    leads, body = [], []
    for person in sorted(directory["people"], key=lambda p: p["id"]):
        for r in person["roles"]:
            if r["role"] == "party_lead":
                leads.append(person["id"])
            elif r["role"] == "grid_leader" and r["scope"] in places_c:
                body.append(member(person["id"], "grid_leader", r["scope"], "directory"))
            elif r["role"] == "building_leader" and r["scope"] in places_b:
                body.append(member(person["id"], "building_leader", r["scope"], "directory"))
    if leads:
        body.insert(0, member(leads[0], "convener", None, "directory"))
    return body


def member(person: str, role: str, scope: str | None, source: str, status: str = "active") -> dict:
    return {"person": person, "role": role, "scope": scope, "source": source, "status": status}


class Consultation(Aggregate):
    """One topic under deliberation: who deliberates, on which options, and how it ended."""

    EVENT_NAMES_ARE_TYPES = True  # the decision stage consumes "DeliberationConcluded"

    @classmethod
    def open(cls, *, id: uuid.UUID, community: str, case: str, proposal: str | None, scope: str,  # noqa: A002
             scope_id: str | None, category: str, title_commitment: str | None, body_commitment: str | None,
             body: list[dict], rules: dict) -> "Consultation":
        convener = next((m["person"] for m in body if m["role"] == "convener"), None)
        return cls._create(
            cls.ConsultationOpened, id=id, community=community, case=case, proposal=proposal, scope=scope,
            scope_id=scope_id, category=category, title_commitment=title_commitment,
            body_commitment=body_commitment, convened_by="proposal" if proposal else "party_committee",
            convener=convener, body=body, rules=frozen_rules(rules))

    @event("ConsultationOpened")
    def __init__(self, community: str, case: str, proposal: str | None, scope: str, scope_id: str | None,
                 category: str, title_commitment: str | None, body_commitment: str | None, convened_by: str,
                 convener: str | None, body: list, rules: dict):
        self.community, self.case, self.proposal = community, case, proposal
        self.scope, self.scope_id, self.category = scope, scope_id, category
        self.title_commitment, self.body_commitment = title_commitment, body_commitment
        self.convened_by, self.convener = convened_by, convener
        self.body = [dict(m) for m in body]
        self.rules = dict(rules)
        self.options: dict[str, dict] = {}
        self.amendments: dict[str, dict] = {}
        self.final_options: list[str] | None = None
        self.status = "open"
        self.conclusion: dict | None = None

    # ---- who is who ------------------------------------------------------------------------------
    def roles_of(self, person: str) -> list[str]:
        """The roles a person holds in the body now (accepted invitations included)."""
        return sorted({m["role"] for m in self.body if m["person"] == person and m["status"] == "active"})

    def members(self) -> set[str]:
        return {m["person"] for m in self.body if m["status"] == "active"}

    def _find(self, person: str, role: str, *statuses: str) -> dict | None:
        return next((m for m in self.body if m["person"] == person and m["role"] == role
                     and m["status"] in statuses), None)

    def require_open(self) -> None:
        if self.status != "open":
            raise ConsultationClosed.coded("deliberation.consultation_concluded_record_closed")

    def require_convener(self, person: str, what: str) -> None:
        if self.convener is None:
            raise Conflict.coded("deliberation.consultation_convener_yet_party")
        if person != self.convener:
            raise Forbidden.coded("deliberation.convener_may", what=what)

    def require_member(self, person: str, what: str) -> None:
        if person not in self.members():
            raise NotInBody.coded("deliberation.members_consultation_body_may", what=what)

    def missing_roles(self, required: list[str]) -> list[str]:
        """Required roles no active body member holds."""
        held = {m["role"] for m in self.body if m["status"] == "active"}
        return [r for r in required if r not in held]

    # ---- the body ------------------------------------------------------------------------------
    def designate_convener(self, person: str) -> None:
        self.require_open()
        if person == self.convener:
            raise Conflict.coded("deliberation.person_already_convener")
        self._convener_designated(person=person, previous=self.convener)

    @event("ConvenerDesignated")
    def _convener_designated(self, person: str, previous: str | None):
        for m in self.body:
            if m["role"] == "convener" and m["status"] == "active":
                m["status"] = "replaced"
        self.body.append(member(person, "convener", None, "designation"))
        self.convener = person

    def invite(self, by: str, person: str, role: str) -> None:
        self.require_open()
        self.require_convener(by, "invite parties to the body")
        if role not in INVITED_ROLES:
            raise InvalidInput.coded("deliberation.invited_parties_take_one", invited_roles=", ".join(INVITED_ROLES))
        if self._find(person, role, "active", "invited"):
            raise Conflict.coded("deliberation.person_already_body_invited", role=role)
        if len(self.body) >= MAX_BODY:
            raise Conflict.coded("deliberation.consultation_body_most_places", max_body=MAX_BODY)
        self._invited(person=person, role=role)

    @event("BodyMemberInvited")
    def _invited(self, person: str, role: str):
        self.body.append(member(person, role, None, "invitation", "invited"))

    def answer_invitation(self, person: str, role: str, accept: bool, reason_commitment: str | None) -> None:
        self.require_open()
        if not self._find(person, role, "invited"):
            raise Conflict.coded("deliberation.open_invitation_you", role=role)
        if accept:
            self._accepted(person=person, role=role)
        else:
            self._declined(person=person, role=role, reason_commitment=reason_commitment)

    @event("InvitationAccepted")
    def _accepted(self, person: str, role: str):
        self._find(person, role, "invited")["status"] = "active"

    @event("InvitationDeclined")
    def _declined(self, person: str, role: str, reason_commitment: str | None):
        m = self._find(person, role, "invited")
        m["status"], m["reason_commitment"] = "declined", reason_commitment

    # ---- discussion -------------------------------------------------------------------------------
    def comment(self, *, id: uuid.UUID, author: str, author_roles: list[str], venue: str, stance: str,  # noqa: A002
                parent: "Comment | None", text_commitment: str) -> "Comment":
        self.require_open()
        if stance not in STANCES:
            raise InvalidInput.coded("deliberation.stance_one", stances=", ".join(STANCES))
        if venue not in VENUES:
            raise InvalidInput.coded("deliberation.venue_one", venues=", ".join(VENUES))
        if venue == "body":
            self.require_member(author, "speak in a body session")
        if parent is not None:
            if parent.consultation != str(self.id):
                raise InvalidInput.coded("deliberation.reply_answer_comment_same")
            if parent.hidden:
                raise Conflict.coded("deliberation.comment_hidden_takes_replies")
        return Comment._create(
            Comment.Posted, id=id, community=self.community, case=self.case, consultation=str(self.id),
            author=author, author_roles=sorted(author_roles), venue=venue, stance=stance,
            reply_to=str(parent.id) if parent else None, text_commitment=text_commitment)

    # ---- options and amendments ---------------------------------------------------------------
    def _require_options_open(self) -> None:
        self.require_open()
        if self.final_options is not None:
            raise Conflict.coded("deliberation.option_list_final")

    def propose_option(self, option: str, proposer: str, title_commitment: str, description_commitment: str) -> None:
        self._require_options_open()
        self.require_member(proposer, "propose solution options")
        if len(self.options) >= MAX_OPTIONS:
            raise Conflict.coded("deliberation.consultation_most_options", max_options=MAX_OPTIONS)
        self._option_proposed(option=option, proposer=proposer, title_commitment=title_commitment,
                              description_commitment=description_commitment)

    @event("OptionProposed")
    def _option_proposed(self, option: str, proposer: str, title_commitment: str, description_commitment: str):
        self.options[option] = {"id": option, "proposer": proposer, "title_commitment": title_commitment,
                                "description_commitment": description_commitment, "amended_by": []}

    def propose_amendment(self, amendment: str, option: str, proposer: str, title_commitment: str | None,
                          description_commitment: str) -> None:
        self._require_options_open()
        self.require_member(proposer, "propose amendments")
        if option not in self.options:
            raise InvalidInput.coded("deliberation.option_option_consultation", option=option)
        if len(self.amendments) >= MAX_AMENDMENTS:
            raise Conflict.coded("deliberation.consultation_takes_most_amendments", max_amendments=MAX_AMENDMENTS)
        self._amendment_proposed(amendment=amendment, option=option, proposer=proposer,
                                 title_commitment=title_commitment, description_commitment=description_commitment)

    @event("AmendmentProposed")
    def _amendment_proposed(self, amendment: str, option: str, proposer: str, title_commitment: str | None,
                            description_commitment: str):
        self.amendments[amendment] = {"id": amendment, "option": option, "proposer": proposer,
                                      "title_commitment": title_commitment,
                                      "description_commitment": description_commitment,
                                      "status": "pending", "reason_commitment": None}

    def rule_on_amendment(self, by: str, amendment: str, accept: bool, reason_commitment: str) -> None:
        self._require_options_open()
        self.require_convener(by, "rule on amendments")
        a = self.amendments.get(amendment)
        if a is None:
            raise InvalidInput.coded("deliberation.amendment_amendment_consultation", amendment=amendment)
        if a["status"] != "pending":
            raise Conflict.coded("deliberation.amendment_was_already", status=a["status"])
        ruling = self._amendment_accepted if accept else self._amendment_rejected
        ruling(amendment=amendment, option=a["option"], reason_commitment=reason_commitment)

    @event("AmendmentAccepted")
    def _amendment_accepted(self, amendment: str, option: str, reason_commitment: str):
        a, o = self.amendments[amendment], self.options[option]
        a["status"], a["reason_commitment"] = "accepted", reason_commitment
        # The option now reads as amended; what it said before stays in the amendment's history.
        o["amended_by"].append({"amendment": amendment, "title_commitment": o["title_commitment"],
                                "description_commitment": o["description_commitment"]})
        if a["title_commitment"]:
            o["title_commitment"] = a["title_commitment"]
        o["description_commitment"] = a["description_commitment"]

    @event("AmendmentRejected")
    def _amendment_rejected(self, amendment: str, option: str, reason_commitment: str):
        a = self.amendments[amendment]
        a["status"], a["reason_commitment"] = "rejected", reason_commitment

    def finalise_options(self, by: str, options: list[str]) -> None:
        self._require_options_open()
        self.require_convener(by, "finalise the option list")
        if not options or len(set(options)) != len(options):
            raise InvalidInput.coded("deliberation.final_option_list_needs")
        unknown = [o for o in options if o not in self.options]
        if unknown:
            raise InvalidInput.coded("deliberation.options_consultation", unknown=", ".join(unknown))
        pending = [a["id"] for a in self.amendments.values() if a["status"] == "pending"]
        if pending:
            raise Conflict.coded("deliberation.rule_every_pending_amendment", pending_count=len(pending))
        self._options_finalised(options=list(options))

    @event("OptionListFinalised")
    def _options_finalised(self, options: list):
        self.final_options = list(options)

    # ---- meetings ---------------------------------------------------------------------------------
    def schedule_meeting(self, *, id: uuid.UUID, by: str, now: datetime, starts_at: datetime, mode: str,  # noqa: A002
                         place_commitment: str, agenda_commitments: list[str], secretary: str) -> "Meeting":
        self.require_open()
        self.require_convener(by, "schedule meetings")
        if mode not in MEETING_MODES:
            raise InvalidInput.coded("deliberation.mode_one", meeting_modes=", ".join(MEETING_MODES))
        if not 1 <= len(agenda_commitments) <= MAX_AGENDA:
            raise InvalidInput.coded("deliberation.agenda_needs_between_items", max_agenda=MAX_AGENDA)
        days = self.rules["meeting_notice_days"]
        earliest = now + timedelta(days=days)
        if starts_at < earliest:
            raise NoticeTooShort.coded("deliberation.meeting_needs_least_days", days=days,
                                       earliest=clock.format(earliest),
                                       extra={"notice_days": days, "earliest_start": clock.format(earliest)})
        missing = self.missing_roles(self.rules["meeting_required_roles"])
        if missing:
            raise RequiredRolesAbsent.coded("deliberation.body_nobody_roles_meeting", missing=", ".join(missing),
                                            extra={"missing_roles": missing})
        return Meeting._create(
            Meeting.MeetingScheduled, id=id, community=self.community, case=self.case,
            consultation=str(self.id), starts_at=clock.format(starts_at), mode=mode,
            place_commitment=place_commitment, agenda_commitments=list(agenda_commitments), secretary=secretary,
            notice_days=days)

    # ---- conclusion ---------------------------------------------------------------------------------
    def conclude(self, *, by: str, outcome: str, summary_commitment: str, reason_commitment: str | None,
                 suggested_rule: str | None, meeting: "Meeting", minutes: "Minutes | None") -> None:
        """Close the deliberation at a held meeting whose minutes are confirmed.

        vote_needed hands the final option list to the decision stage: one option is a yes/no
        motion on it, two or more a choice among them. agreed needs the recorded reason why no
        vote is needed; its options are the final list if there is one (usually the agreed one).
        no_action needs the recorded reason why nothing needs doing: the case ends here.
        """
        self.require_open()
        self.require_convener(by, "conclude the deliberation")
        if outcome not in OUTCOMES:
            raise InvalidInput.coded("common.outcome_one", outcomes=", ".join(OUTCOMES))
        if outcome == "vote_needed":
            if self.final_options is None:
                raise Conflict.coded("deliberation.vote_needs_final_option")
            if reason_commitment is not None:
                raise InvalidInput.coded("deliberation.reason_recorded_when_matter")
        elif reason_commitment is None:
            raise (InvalidInput.coded("deliberation.conclusion_action_needs_reason")
                   if outcome == "no_action" else
                   InvalidInput.coded("deliberation.resolution_agreement_needs_reason"))
        if meeting.consultation != str(self.id):
            raise InvalidInput.coded("deliberation.meeting_meeting_consultation")
        if meeting.status not in ("opened", "closed"):
            raise Conflict.coded("deliberation.deliberation_concludes_meeting_was")
        missing = meeting.absent_roles(self.rules["conclusion_required_roles"])
        if missing:
            raise RequiredRolesAbsent.coded("deliberation.deliberation_conclude_these_roles",
                                            missing=", ".join(missing), extra={"missing_roles": missing})
        if minutes is None or not minutes.confirmed:
            raise Conflict.coded("deliberation.meeting_minutes_confirmed_before")
        options = [{"id": o, "title_commitment": self.options[o]["title_commitment"],
                    "description_commitment": self.options[o]["description_commitment"]}
                   for o in (self.final_options or [])]
        self._concluded(
            consultation=str(self.id), proposal=self.proposal, scope=self.scope, scope_id=self.scope_id,
            category=self.category, title_commitment=self.title_commitment, convener=self.convener,
            outcome=outcome, options=options,
            summary_commitment=summary_commitment, reason_commitment=reason_commitment,
            suggested_rule=suggested_rule, meeting=str(meeting.id), minutes=str(minutes.id))

    @event("DeliberationConcluded")
    def _concluded(self, consultation: str, proposal: str | None, scope: str, scope_id: str | None, category: str,
                   title_commitment: str | None, convener: str, outcome: str, options: list, summary_commitment: str,
                   reason_commitment: str | None, suggested_rule: str | None, meeting: str, minutes: str):
        self.status = "concluded"
        self.conclusion = {"outcome": outcome, "options": [dict(o) for o in options],
                           "summary_commitment": summary_commitment, "reason_commitment": reason_commitment,
                           "suggested_rule": suggested_rule, "meeting": meeting, "minutes": minutes}


class Comment(Aggregate):
    """One comment: its text (as a commitment) with every edit, flags and moderation."""

    @event("Posted")
    def __init__(self, community: str, case: str, consultation: str, author: str, author_roles: list, venue: str,
                 stance: str, reply_to: str | None, text_commitment: str):
        self.community, self.case, self.consultation = community, case, consultation
        self.author, self.author_roles, self.venue = author, list(author_roles), venue
        self.stance, self.reply_to, self.text_commitment = stance, reply_to, text_commitment
        self.edits: list[str] = []  # commitments of the earlier texts, oldest first
        self.flaggers: list[str] = []
        self.hidden: dict | None = None
        self.reviewed = False  # a moderator restored it: flags no longer hide it

    def edit(self, by: str, text_commitment: str) -> None:
        if by != self.author:
            raise Forbidden.coded("deliberation.author_may_edit_comment")
        if self.hidden:
            raise Conflict.coded("deliberation.hidden_comment_edited")
        if len(self.edits) >= MAX_EDITS:
            raise Conflict.coded("deliberation.comment_edited_most_times", max_edits=MAX_EDITS)
        self._edited(text_commitment=text_commitment, previous_commitment=self.text_commitment)

    @event("Edited")
    def _edited(self, text_commitment: str, previous_commitment: str):
        self.edits.append(previous_commitment)
        self.text_commitment = text_commitment

    def flag(self, flagger: str, flags_to_hide: int) -> None:
        """A resident's flag; at the community's number of flags the comment hides itself
        (0 switches automatic hiding off). The flaggers stay bounded by that number, since a
        hidden or reviewed comment takes no more flags."""
        if flagger == self.author:
            raise Conflict.coded("deliberation.you_flag_your_own")
        if self.hidden:
            raise Conflict.coded("deliberation.comment_already_hidden")
        if self.reviewed:
            raise Conflict.coded("deliberation.moderator_reviewed_comment_kept")
        if flagger in self.flaggers:
            raise Conflict.coded("deliberation.you_already_flagged_comment")
        self._flagged(flagger=flagger)
        if flags_to_hide and len(self.flaggers) >= flags_to_hide:
            self._hidden(moderator=None, reason_commitment=None, automatic=True)

    @event("Flagged")
    def _flagged(self, flagger: str):
        self.flaggers.append(flagger)

    def hide(self, moderator: str, reason_commitment: str) -> None:
        if self.hidden:
            raise Conflict.coded("deliberation.comment_already_hidden")
        self._hidden(moderator=moderator, reason_commitment=reason_commitment, automatic=False)

    @event("Hidden")
    def _hidden(self, moderator: str | None, reason_commitment: str | None, automatic: bool):
        # The commitment stays in the record; reads stop returning the text.
        self.hidden = {"moderator": moderator, "reason_commitment": reason_commitment, "automatic": automatic}

    def restore(self, moderator: str, reason_commitment: str) -> None:
        if not self.hidden:
            raise Conflict.coded("deliberation.comment_hidden")
        self._restored(moderator=moderator, reason_commitment=reason_commitment)

    @event("Restored")
    def _restored(self, moderator: str, reason_commitment: str):
        self.hidden, self.reviewed = None, True


class Meeting(Aggregate):
    """One meeting of the body: its notice, agenda, attendance and whether it met its quorum."""

    EVENT_NAMES_ARE_TYPES = True  # "AttendeeSignedIn" reads better than "MeetingAttendeeSignedIn"

    @event("MeetingScheduled")
    def __init__(self, community: str, case: str, consultation: str, starts_at: str, mode: str,
                 place_commitment: str, agenda_commitments: list, secretary: str, notice_days: int):
        self.community, self.case, self.consultation = community, case, consultation
        self.starts_at, self.mode, self.place_commitment = starts_at, mode, place_commitment
        self.agenda_commitments, self.secretary = list(agenda_commitments), secretary
        self.notice_days = notice_days
        self.status = "scheduled"
        self.attendance: list[dict] = []
        self.quorum: dict | None = None

    def attendee(self, person: str) -> dict | None:
        return next((a for a in self.attendance if a["person"] == person), None)

    def absent_roles(self, required: list[str]) -> list[str]:
        present = {r for a in self.attendance for r in a["roles"]}
        return [r for r in required if r not in present]

    def sign_in(self, person: str, roles: list[str], recorded_by: str, now: datetime) -> None:
        if self.status not in ("scheduled", "opened"):
            raise Conflict.coded("deliberation.meeting_sign_over", status=self.status)
        opens = clock.parse(self.starts_at) - SIGN_IN_OPENS
        if now < opens:
            raise Conflict.coded("deliberation.sign_opens_one_hour", opens=clock.format(opens))
        if not roles:
            raise NotInBody.coded("deliberation.members_consultation_body_sign")
        if self.attendee(person):
            raise Conflict.coded("deliberation.person_already_signed")
        self._signed_in(person=person, roles=sorted(roles), recorded_by=recorded_by)

    @event("AttendeeSignedIn")
    def _signed_in(self, person: str, roles: list, recorded_by: str):
        self.attendance.append({"person": person, "roles": list(roles), "recorded_by": recorded_by})

    def open(self, consultation: Consultation, now: datetime, concluding: bool = False) -> None:
        """Hold the meeting: the required roles must be present and the body's quorum met. A
        meeting opened to conclude the deliberation also needs the roles a conclusion requires
        signed in: refused now, naming them, rather than after the meeting was held, its minutes
        signed and a second meeting's notice period waited out."""
        if self.status != "scheduled":
            raise Conflict.coded("deliberation.meeting", status=self.status)
        if now < clock.parse(self.starts_at):
            raise Conflict.coded("deliberation.meeting_starts_opened_earlier", starts_at=self.starts_at)
        if concluding:
            absent = self.absent_roles(consultation.rules["conclusion_required_roles"])
            if absent:
                raise RequiredRolesAbsent.coded("deliberation.meeting_opened_concluding_meeting",
                                                absent=", ".join(absent), extra={"missing_roles": absent})
        missing = self.absent_roles(consultation.rules["meeting_required_roles"])
        if missing:
            raise RequiredRolesAbsent.coded("deliberation.meeting_held_these_roles", missing=", ".join(missing),
                                            extra={"missing_roles": missing})
        body = consultation.members()
        present = sorted(a["person"] for a in self.attendance if a["person"] in body)
        quorum = consultation.rules["meeting_quorum"]
        if Fraction(len(present), len(body)) < Fraction(quorum):
            needed = math.ceil(Fraction(quorum) * len(body))
            raise QuorumNotMet.coded("meeting.quorum", present=len(present), size=len(body), quorum=quorum,
                                     needed=needed, extra=dict(present=len(present), body=len(body), quorum=quorum,
                                                               needed=needed))
        self._opened(present=present, body_size=len(body), quorum=quorum)

    @event("MeetingOpened")
    def _opened(self, present: list, body_size: int, quorum: str):
        self.status = "opened"
        self.quorum = {"present": list(present), "body_size": body_size, "quorum": quorum}

    def close(self) -> None:
        if self.status != "opened":
            raise Conflict.coded("deliberation.opened_meeting_closed_one", status=self.status)
        self._closed()

    @event("MeetingClosed")
    def _closed(self):
        self.status = "closed"

    def cancel(self, reason_commitment: str) -> None:
        if self.status != "scheduled":
            raise Conflict.coded("deliberation.scheduled_meeting_cancelled_one", status=self.status)
        self._cancelled(reason_commitment=reason_commitment)

    @event("MeetingCancelled")
    def _cancelled(self, reason_commitment: str):
        self.status = "cancelled"

    def record_minutes(self, by: str, text_commitment: str, signers: list[str]) -> "Minutes":
        if by != self.secretary:
            raise Forbidden.coded("deliberation.meeting_secretary_records_minutes")
        if self.status not in ("opened", "closed"):
            raise Conflict.coded("deliberation.minutes_recorded_meeting_was")
        return Minutes._create(
            Minutes.Recorded, id=minutes_id(self.id), community=self.community, case=self.case,
            consultation=self.consultation, meeting=str(self.id), corrects=None, text_commitment=text_commitment,
            recorded_by=by, signer_roles=list(signers))


def minutes_id(of: uuid.UUID | str) -> uuid.UUID:
    """The minutes of a meeting, and the correction of a minutes record, have ids derived from
    what they belong to: a meeting has one original, a record at most one direct correction, and
    two concurrent attempts collide on the id."""
    return derived_id("minutes", of)


class Minutes(Aggregate):
    """A minutes record: a meeting's original minutes, or a correction linked to the record it
    corrects. Frozen at the first signature; confirmed when every signer role has signed."""

    @event("Recorded")
    def __init__(self, community: str, case: str, consultation: str, meeting: str, corrects: str | None,
                 text_commitment: str, recorded_by: str, signer_roles: list):
        self.community, self.case, self.consultation, self.meeting = community, case, consultation, meeting
        self.corrects, self.text_commitment, self.recorded_by = corrects, text_commitment, recorded_by
        self.signer_roles = list(signer_roles)
        self.signatures: list[dict] = []
        self.confirmed = False

    def _require_unconfirmed(self) -> None:
        if self.confirmed:
            raise MinutesAlreadyConfirmed.coded("deliberation.confirmed_minutes_altered_record")

    def revise(self, by: str, text_commitment: str) -> None:
        self._require_unconfirmed()
        if by != self.recorded_by:
            raise Forbidden.coded("deliberation.whoever_recorded_these_minutes")
        if self.signatures:
            raise Conflict.coded("deliberation.these_minutes_been_signed")
        self._revised(text_commitment=text_commitment)

    @event("Revised")
    def _revised(self, text_commitment: str):
        self.text_commitment = text_commitment

    def outstanding_roles(self) -> list[str]:
        signed = {r for s in self.signatures for r in s["roles"]}
        return [r for r in self.signer_roles if r not in signed]

    def sign(self, person: str, body_roles: list[str]) -> None:
        """A signer confirms the text as it stands, for every outstanding role they hold."""
        self._require_unconfirmed()
        if any(s["person"] == person for s in self.signatures):
            raise Conflict.coded("deliberation.you_already_signed_these")
        roles = [r for r in self.outstanding_roles() if r in body_roles]
        if not roles:
            raise Forbidden.coded("deliberation.these_minutes_still_need",
                                  outstanding_roles=", ".join(self.outstanding_roles()))
        self._signed(signer=person, roles=roles, text_commitment=self.text_commitment)
        if not self.outstanding_roles():
            self._confirmed(signers=[s["person"] for s in self.signatures])

    @event("Signed")
    def _signed(self, signer: str, roles: list, text_commitment: str):
        self.signatures.append({"person": signer, "roles": list(roles)})

    @event("Confirmed")
    def _confirmed(self, signers: list):
        self.confirmed = True

    def correct(self, by: str, text_commitment: str) -> "Minutes":
        """A correction is a new record linked to this one; this one never changes."""
        if not self.confirmed:
            raise Conflict.coded("deliberation.these_minutes_confirmed_yet")
        return Minutes._create(
            Minutes.Recorded, id=minutes_id(self.id), community=self.community, case=self.case,
            consultation=self.consultation, meeting=self.meeting, corrects=str(self.id),
            text_commitment=text_commitment, recorded_by=by, signer_roles=list(self.signer_roles))
