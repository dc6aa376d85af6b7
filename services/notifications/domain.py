"""What the notifications service knows without I/O: which event concerns whom (one table), what
it remembers of each case to answer that, a resident's preferences, and the Delivery aggregate
whose events are the proof of notice.

One `Delivery` per (notice, recipient, channel[, webhook endpoint]), with an id derived from them,
so a notice planned twice (a redelivered event, a reminder fired again after a crash) fails on
its version instead of telling anyone twice. Its events reach the community's audit log:
`NotificationPlanned`, then `NotificationDelivered` or `NotificationFailed` (after which a worker's
`NotificationRetried` plans it again). They hold ids and
the commitment of the message text, never the text.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from eventsourcing.domain import event

from services.common import clock
from services.common.aggregate import Aggregate, derived_id
from services.common.errors import Conflict, InvalidInput
from services.common.ids import as_uuid
from services.contracts.notifications import (  # noqa: F401 - the contract owns what the gateway shares
    CHANNELS, DAILY, DIGESTS, EMAIL, IMMEDIATE, INBOX, LANGS, WEBHOOK,
    DELIVERED, FAILED, PLANNED,
)

# ---- channels and preferences ----------------------------------------------------------------
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")

# Community time: mainland China keeps UTC+8 all year, so a fixed offset is exact.
LOCAL_TZ = timezone(timedelta(hours=8))
DIGEST_HOUR = 18  # daily digests leave at 18:00 local time


@dataclass(frozen=True)
class Preferences:
    """How one resident wants to hear. The inbox is always on: it is the platform's own record of
    what each person was told, so e-mail and webhooks are added to it, never instead of it."""

    channels: tuple[str, ...] = (INBOX,)
    email: str | None = None
    digest: str = IMMEDIATE
    lang: str = "zh-CN"

    @classmethod
    def parse(cls, data) -> "Preferences":
        if not isinstance(data, dict):
            raise InvalidInput.coded("notifications.preferences_object")
        unknown = set(data) - {"channels", "email", "digest", "lang"}
        if unknown:
            raise InvalidInput.coded("notifications.unknown_preference_settings", unknown=", ".join(sorted(unknown)))
        channels = data.get("channels", [INBOX])
        if not isinstance(channels, list) or not all(c in CHANNELS for c in channels):
            raise InvalidInput.coded("notifications.channels_list", channels=", ".join(CHANNELS))
        email = data.get("email")
        if email is not None:
            if not isinstance(email, str) or not _EMAIL.match(email.strip()) or len(email) > 254:
                raise InvalidInput.coded("notifications.email_usable_mail_address")
            email = email.strip()
        if EMAIL in channels and not email:
            raise InvalidInput.coded("notifications.email_channel_needs_email")
        digest = data.get("digest", IMMEDIATE)
        if digest not in DIGESTS:
            raise InvalidInput.coded("notifications.digest_one", digests=", ".join(DIGESTS))
        lang = data.get("lang", "zh-CN")
        if lang not in LANGS:
            raise InvalidInput.coded("notifications.lang_one", langs=", ".join(LANGS))
        ordered = tuple(c for c in CHANNELS if c == INBOX or c in channels)
        return cls(channels=ordered, email=email, digest=digest, lang=lang)

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "email": self.email, "digest": self.digest, "lang": self.lang}


def next_digest_slot(after: datetime) -> datetime:
    """The first daily digest time (18:00 community time) strictly after `after`."""
    local = after.astimezone(LOCAL_TZ)
    slot = local.replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0)
    if slot <= local:
        slot += timedelta(days=1)
    return slot.astimezone(timezone.utc)


def local_time(iso: str | None) -> str | None:
    """An event's UTC time as residents read it: 'YYYY-MM-DD HH:MM' in community time."""
    if not iso:
        return None
    return clock.parse(iso).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


# Words the templates show for a recipient's capacity and a ballot's rule, in both languages.
LABELS = {
    "zh-CN": {
        "convener": "召集人", "grid_leader": "网格长", "building_leader": "楼栋长", "property_company": "物业",
        "resident": "居民代表", "facilitator": "社工（主持）", "expert": "专家", "owners_committee": "业委会",
        "owners_ordinary": "业主共同决定（过半数）", "owners_major": "业主共同决定（四分之三）",
        "residents_meeting": "居民会议（过半数）", "council": "议事会", "generic": "一般表决",
        "adopted": "通过", "rejected": "未通过", "emergency": "紧急维修（无需表决）", "annulled": "已撤销",
        "community_committee": "社区居委会", "volunteer_team": "志愿者队伍", "contractor": "施工单位",
    },
    "en": {
        "convener": "convener", "grid_leader": "grid leader", "building_leader": "building leader",
        "property_company": "property company", "resident": "residents' representative",
        "facilitator": "facilitator", "expert": "expert", "owners_committee": "owners' committee",
        "owners_ordinary": "owners' decision (majority)", "owners_major": "owners' decision (three quarters)",
        "residents_meeting": "residents' meeting (majority)", "council": "residents' council",
        "generic": "general vote", "adopted": "adopted", "rejected": "rejected",
        "emergency": "emergency repair (no vote needed)", "annulled": "annulled",
        "community_committee": "community committee", "volunteer_team": "volunteer team",
        "contractor": "contractor",
    },
}


def label(value: str | None, lang: str) -> str | None:
    if value is None:
        return None
    return LABELS.get(lang, LABELS["zh-CN"]).get(value, value)


# ---- who is told about what ---------------------------------------------------------------------
# Recipient rules: named sets of people, resolved by the application from the directory and from
# what this service remembers of the case.
AUTHOR = "author"                  # who raised the proposal
SUPPORTERS = "supporters"          # who supports it now
RESIDENTS_IN_SCOPE = "residents"   # who lives in the proposal's scope when the event happened
BODY = "body"                      # active members of the consultation body (1+2+X)
INVITEE = "invitee"                # the party just invited to the body
VOTERS = "voters"                  # the ballot's frozen roll (households: their adult residents)
RESPONSIBLE = "responsible"        # the task's responsible party
PARTICIPANTS = "participants"      # everyone who took part in the case, in any capacity
EVALUATION_SCOPE = "evaluation_scope"  # the residents asked to evaluate a plan, and those who did
NOT_YET_RATED = "not_yet_rated"    # the residents asked to evaluate a plan who have not rated yet
OBJECTOR = "objector"              # who lodged the objection
MERGE_PARTIES = "merge_parties"    # both proposals' authors and the supporters carried over
SIGNERS = "signers"                # the body members holding a role that signs the minutes
CASE_RESPONSIBLE = "case_responsible"  # the case's task holders and the community's workers

# Capacities of the evaluation: residents asked (in scope when it opened) and those who rated.
# They hear of the evaluation, its reminder and what came of it; they are not "participants"
# of the case for its other notices (a whole compound is not told of every step).
IN_SCOPE, EVALUATED = "in_scope", "evaluated"


@dataclass(frozen=True)
class NoticeRule:
    """What one event type means for whom: recipients, template, and what it is about."""

    template: str                         # the message template (templates.py)
    recipients: tuple[str, ...]
    topic: str                            # proposal | consultation | ballot | task | case
    # The notice id; by default the event's id. A reminder's derives from its topic, so firing
    # it again (after a crash) plans nothing twice.
    key: Callable[[dict], str] | None = None
    when: Callable[[dict], bool] | None = None  # notify only events for which this holds
    # What the link points at, (kind, id), from the event and its topic's facts; by default the topic.
    link: Callable[[dict, dict | None], tuple[str, str]] | None = None


def evaluation_reminder_id(env: dict) -> str:
    """One reminder per evaluation window: a round, and its extension, each get their own."""
    d = env.get("data") or {}
    return reminder_id("EvaluationClosingSoon", f"{topic_of(env, 'plan')}/{d.get('round')}/{d.get('closes_at')}")


# THE table: event type -> recipients -> template. Types not listed are not notified.
NOTICES: dict[str, NoticeRule] = {
    # 1 proposal: the author hears the screening; residents in scope hear of the proposal when it
    # opens for support (not at submission: screening keeps spam out of every inbox); the author
    # and the supporters hear every later change.
    "ProposalScreened":          NoticeRule("ProposalScreened", (AUTHOR,), "proposal"),
    "ProposalCollectionOpened":  NoticeRule("ProposalSubmitted", (RESIDENTS_IN_SCOPE,), "proposal"),
    "ProposalQualified":         NoticeRule("ProposalQualified", (AUTHOR, SUPPORTERS), "proposal"),
    "ProposalExpired":           NoticeRule("ProposalExpired", (AUTHOR, SUPPORTERS), "proposal"),
    "ProposalWithdrawn":         NoticeRule("ProposalWithdrawn", (AUTHOR, SUPPORTERS), "proposal"),
    "ProposalMerged":            NoticeRule("ProposalMerged", (MERGE_PARTIES,), "proposal",
                                            link=lambda env, facts: ("proposal", env["data"]["into"])),
    # A follow-up raised by the platform after a failed evaluation: the evaluation's residents.
    "ProposalDrafted":           NoticeRule("FollowUpOpened", (EVALUATION_SCOPE,), "proposal",
                                            when=lambda env: bool((env.get("data") or {}).get("original_case"))),
    # 2 deliberation: the body of the consultation.
    "ConsultationOpened":        NoticeRule("ConsultationOpened", (BODY,), "consultation"),
    "BodyMemberInvited":         NoticeRule("ConsultationOpened", (INVITEE,), "consultation"),
    "MeetingScheduled":          NoticeRule("MeetingScheduled", (BODY,), "consultation",
                                            link=lambda env, facts: ("meeting", env["aggregate"]["id"])),
    "MeetingCancelled":          NoticeRule("MeetingCancelled", (BODY,), "meeting"),
    "MinutesRecorded":           NoticeRule("MinutesAwaitingSignature", (SIGNERS,), "minutes"),
    # 3 decision: the roll at the opening and 24 h before the close; everyone in the case after.
    "BallotOpened":              NoticeRule("BallotOpened", (VOTERS,), "ballot"),
    "BallotClosingSoon":         NoticeRule("BallotClosingSoon", (VOTERS,), "ballot",
                                            key=lambda env: reminder_id("BallotClosingSoon", topic_of(env, "ballot"))),
    "ResolutionAdopted":         NoticeRule("ResolutionAdopted", (PARTICIPANTS,), "ballot"),
    "ResolutionRejected":        NoticeRule("ResolutionRejected", (PARTICIPANTS,), "ballot"),
    "ResolutionFinal":           NoticeRule("ResolutionFinal", (PARTICIPANTS,), "ballot"),
    "ObjectionRuled":            NoticeRule("ObjectionRuled", (OBJECTOR,), "objection",
                                            link=lambda env, facts: ("ballot", env["aggregate"]["id"])),
    # 4 action: the responsible party; everyone who took part when the case ends.
    # (The actions service's own timer on the shared clock raises TaskOverdue; a second timer
    # here would only race with TaskCompleted.)
    "TaskAssigned":              NoticeRule("TaskAssigned", (RESPONSIBLE,), "task"),
    "TaskOverdue":               NoticeRule("TaskOverdue", (RESPONSIBLE,), "task"),
    # The result disclosed and the evaluation open: every resident asked, with the deadline; a
    # reminder 48 h before it closes to those who have not rated; a window extended for too few
    # answers is told to those responsible for the case; a reopening to everyone asked.
    "EvaluationOpened":          NoticeRule("EvaluationOpened", (EVALUATION_SCOPE,), "plan"),
    "EvaluationClosingSoon":     NoticeRule("EvaluationClosingSoon", (NOT_YET_RATED,), "plan",
                                            key=evaluation_reminder_id),
    "EvaluationExtended":        NoticeRule("EvaluationExtended", (CASE_RESPONSIBLE,), "plan"),
    "PlanReopened":              NoticeRule("PlanReopened", (EVALUATION_SCOPE,), "plan"),
    # A case that ends at screening was told to its author by ProposalScreened, with the reason.
    "CaseClosed":                NoticeRule("CaseClosed", (PARTICIPANTS,), "case",
                                            when=lambda env: (env.get("data") or {}).get("stage") != "proposal"),
}

# Events that end a pending reminder of their topic: a ballot that closed early needs no
# "closing soon".
CANCELS_REMINDER = {
    "BallotClosed": "BallotClosingSoon", "BallotAnnulled": "BallotClosingSoon",
    "ResolutionAdopted": "BallotClosingSoon", "ResolutionRejected": "BallotClosingSoon",
}
# Events that end every pending evaluation reminder of their plan (a window extended gets a new one).
CANCELS_EVALUATION_REMINDERS = ("EvaluationExtended", "EvaluationClosed")
EVALUATION_REMINDER_BEFORE = timedelta(hours=48)

# A task's responsible party may be a kind of party without a person: its role holders are told
# (community workers for a committee, or for a contractor or volunteer team they follow up).
ROLE_OF_PARTY = {"property_company": "property_company", "grid_leader": "grid_leader",
                 "community_committee": "community_worker"}
FOLLOW_UP_ROLE = "community_worker"


def reminder_id(notice_type: str, topic: str) -> str:
    return str(derived_id("notice", notice_type, topic))


def topic_of(env: dict, kind: str) -> str:
    """The id of what an event is about: its aggregate, or the one its data names."""
    d = env.get("data") or {}
    if kind == "case":
        return env.get("case") or env["aggregate"]["id"]
    named = d.get(kind)
    if isinstance(named, str) and named:
        return named
    return env["aggregate"]["id"]


# ---- what the service remembers of a case --------------------------------------------------------
@dataclass
class Memory:
    """Facts to record from one event, so later events can be answered (who took part, titles,
    reminders). Recording them is idempotent, so an event applied again records nothing new."""

    topics: list[dict] = field(default_factory=list)          # {id, kind, case, title_commitment, ...}
    joined: list[tuple[str, str, str]] = field(default_factory=list)   # (person, capacity, ref)
    left: list[tuple[str, str, str]] = field(default_factory=list)
    reminders: list[dict] = field(default_factory=list)       # {notice, notice_type, topic, due_at, about_*}
    cancelled: list[str] = field(default_factory=list)        # reminder notice ids
    cancelled_of: list[tuple[str, str]] = field(default_factory=list)  # (notice type, topic): all pending

    def __bool__(self) -> bool:
        """Whether there is anything to record (most events, a vote among them, add nothing)."""
        return any((self.topics, self.joined, self.left, self.reminders, self.cancelled, self.cancelled_of))


def remember(env: dict) -> Memory:
    """The facts one event adds to the memory of its case. Pure: the application records them."""
    kind, d, agg = env["type"], env.get("data") or {}, env["aggregate"]["id"]
    case = env.get("case") or agg
    m = Memory()
    if kind == "ProposalDrafted":
        m.topics.append({"id": agg, "kind": "proposal", "case": case, "title_commitment": d.get("title_commitment"),
                         "scope": d.get("scope"), "scope_id": d.get("scope_id"), "author": d.get("author")})
        if d.get("author"):
            m.joined.append((d["author"], "author", agg))
    elif kind in ("SupportGiven", "SupportGivenAgain") and d.get("person"):
        m.joined.append((d["person"], "supporter", d["proposal"]))
    elif kind == "SupportWithdrawn" and d.get("person"):
        m.left.append((d["person"], "supporter", d["proposal"]))
    elif kind == "ConsultationOpened":
        m.topics.append({"id": agg, "kind": "consultation", "case": case, "title_commitment": d.get("title_commitment")})
        m.joined += [(b["person"], b["role"], agg) for b in d.get("body", []) if b.get("status") == "active"]
    elif kind in ("InvitationAccepted", "ConvenerDesignated"):
        m.joined.append((d["person"], d.get("role", "convener"), agg))
    elif kind == "BallotPrepared":
        m.topics.append({"id": agg, "kind": "ballot", "case": case, "title_commitment": d.get("title_commitment")})
    elif kind == "BallotOpened":
        if d.get("voting_unit") != "household":  # households are expanded to people by the application
            m.joined += [(e["voter"], "voter", agg) for e in d.get("roll", []) if as_uuid(e.get("voter")) is not None]
        opens, closes = d.get("opens_at") or env["occurred_at"], d.get("closes_at")
        if closes:
            due = clock.parse(closes) - timedelta(hours=24)
            if due > clock.parse(opens):  # a ballot open for less than a day gets no reminder
                m.reminders.append({"notice": reminder_id("BallotClosingSoon", agg), "notice_type": "BallotClosingSoon",
                                    "topic": agg, "due_at": clock.format(due), "about_event": env["id"],
                                    "about_type": kind, "about": {"closes_at": closes, "rule": {
                                        "preset": (d.get("rule") or {}).get("preset")}}})
    elif kind == "MeetingScheduled":
        m.topics.append({"id": agg, "kind": "meeting", "case": case, "consultation": d.get("consultation"),
                         "starts_at": d.get("starts_at")})
    elif kind == "ObjectionLodged":
        m.topics.append({"id": d.get("objection"), "kind": "objection", "case": case, "objector": env.get("actor"),
                         "ballot": agg})
    elif kind == "ActionPlanOpened":
        m.topics.append({"id": agg, "kind": "plan", "case": case, "title_commitment": d.get("title_commitment")})
    elif kind in ("EvaluationOpened", "EvaluationExtended"):
        if kind == "EvaluationOpened":
            m.joined += [(p, IN_SCOPE, agg) for p in d.get("residents", []) if as_uuid(p) is not None]
        opens = d.get("opens_at") if kind == "EvaluationOpened" else env["occurred_at"]
        closes = d.get("closes_at")
        if closes and clock.parse(closes) - EVALUATION_REMINDER_BEFORE > clock.parse(opens or env["occurred_at"]):
            about = {"round": d.get("round"), "closes_at": closes}
            m.reminders.append({"notice": evaluation_reminder_id({"aggregate": {"id": agg}, "data": about}),
                                "notice_type": "EvaluationClosingSoon", "topic": agg,
                                "due_at": clock.format(clock.parse(closes) - EVALUATION_REMINDER_BEFORE),
                                "about_event": env["id"], "about_type": kind, "about": about})
    elif kind == "EvaluationGiven" and d.get("person"):  # a change is by the same person: already known
        m.joined.append((d["person"], EVALUATED, d.get("plan") or agg))
    elif kind == "TaskAssigned":
        task, party = topic_of(env, "task"), d.get("responsible_party") or {}
        m.topics.append({"id": task, "kind": "task", "case": case, "title_commitment": d.get("title_commitment"),
                         "party": party.get("kind"), "plan": agg})
        if as_uuid(party.get("person")) is not None:  # a party without a person: see the application's expansion
            m.joined.append((party["person"], "responsible", task))
    if kind in CANCELS_REMINDER:
        reminder = CANCELS_REMINDER[kind]
        m.cancelled.append(reminder_id(reminder, topic_of(env, NOTICES[reminder].topic)))
    if kind in CANCELS_EVALUATION_REMINDERS:
        m.cancelled_of.append(("EvaluationClosingSoon", agg))
    return m


# ---- what a message says: the context a template is filled with ----------------------------------
@dataclass(frozen=True)
class NoticeContent:
    """Plain values (times, numbers) and commitments of free texts to read at send time from the
    erasable stores (so an erased text is never sent)."""

    values: dict
    commitments: dict  # key -> commitment, or list of commitments joined with '; '


def content_of(env: dict, rule: NoticeRule, topic: dict | None, case_topic: dict | None) -> NoticeContent:
    d = env.get("data") or {}
    kind = env["type"]
    title = d.get("title_commitment") or (topic or {}).get("title_commitment") or (case_topic or {}).get(
        "title_commitment")
    values: dict = {}
    commitments: dict = {"title": title}
    if kind == "ProposalCollectionOpened":
        values["support_deadline"] = local_time(d.get("deadline"))
    elif kind == "ProposalScreened":
        values["outcome"] = "admissible" if d.get("admissible") else "inadmissible"
        commitments["reason"] = d.get("reason_commitment")
    elif kind == "ProposalQualified":
        values.update(supports=d.get("supports"), threshold=d.get("threshold"))
    elif kind == "ProposalExpired":
        values["deadline"] = local_time(d.get("deadline"))
    elif kind == "MeetingScheduled":
        values["starts_at"] = local_time(d.get("starts_at"))
        commitments.update(place=d.get("place_commitment"), agenda=list(d.get("agenda_commitments") or []))
    elif kind in ("BallotOpened", "BallotClosingSoon"):
        values["closes_at"] = local_time(d.get("closes_at"))
        values["rule"] = (d.get("rule") or {}).get("preset")
    elif kind in ("ResolutionAdopted", "ResolutionRejected"):
        values["publicity_ends_at"] = local_time(d.get("publicity_until"))
        values["result"] = (d.get("result") or {}).get("outcome")
    elif kind == "ResolutionFinal":
        values["result"] = d.get("outcome")
    elif kind in ("TaskAssigned", "TaskOverdue"):
        values["due_at"] = local_time(d.get("due_at"))
        values["assignee"] = (d.get("responsible_party") or {}).get("kind") or (topic or {}).get("party")
        commitments.update(task=d.get("title_commitment") or (topic or {}).get("title_commitment"),
                           title=(case_topic or {}).get("title_commitment"))
    elif kind in ("EvaluationOpened", "EvaluationClosingSoon"):
        values["closes_at"] = local_time(d.get("closes_at"))
    elif kind == "EvaluationExtended":
        values.update(closes_at=local_time(d.get("closes_at")), respondents=d.get("respondents"),
                      denominator=d.get("denominator"), min_response_share=d.get("min_response_share"))
    elif kind == "PlanReopened":
        values["round"] = d.get("round")
    elif kind == "MeetingCancelled":
        values["starts_at"] = local_time((topic or {}).get("starts_at"))
        commitments["reason"] = d.get("reason_commitment")
    elif kind == "ObjectionRuled":
        values["outcome"] = "upheld" if d.get("upheld") else "dismissed"
        commitments["reason"] = d.get("reason_commitment")
    elif kind == "CaseClosed":
        # A plan carried out and accepted by the residents is a resolved case.
        values["outcome"] = {"completed": "resolved"}.get(d.get("outcome"), d.get("outcome"))
        commitments["reason"] = d.get("reason_commitment")
    return NoticeContent({k: v for k, v in values.items() if v is not None},
                         {k: v for k, v in commitments.items() if v})


LABELLED = ("rule", "result", "assignee")  # values shown through LABELS in the recipient's language


def message_text(subject: str, body: str) -> str:
    """The one text a recipient was shown, as committed to in the proof of notice."""
    return f"{subject}\n\n{body}"


def split_message(text: str | None) -> tuple[str | None, str | None]:
    if text is None:
        return None, None
    subject, _, body = text.partition("\n\n")
    return subject, body


# ---- the delivery: one notice to one person through one channel ----------------------------------
def delivery_id(notice: str, recipient: str, channel: str, endpoint: str | None = None) -> uuid.UUID:
    return derived_id("delivery", notice, recipient, channel, endpoint or "")


class Delivery(Aggregate):
    EVENT_NAMES_ARE_TYPES = True

    @classmethod
    def plan(cls, *, community: str, case: str | None, notice: str, notice_type: str, about_event: str,
             about_type: str, recipient: str, capacity: str, channel: str, endpoint: str | None) -> "Delivery":
        return cls._create(cls.NotificationPlanned, id=delivery_id(notice, recipient, channel, endpoint),
                           community=community, case=case, notice=notice, notice_type=notice_type,
                           about_event=about_event, about_type=about_type, recipient=recipient, capacity=capacity,
                           channel=channel, endpoint=endpoint)

    @event("NotificationPlanned")
    def __init__(self, community: str, case: str | None, notice: str, notice_type: str, about_event: str,
                 about_type: str, recipient: str, capacity: str, channel: str, endpoint: str | None):
        self.community, self.case, self.notice, self.notice_type = community, case, notice, notice_type
        self.about_event, self.about_type = about_event, about_type
        self.recipient, self.capacity, self.channel, self.endpoint = recipient, capacity, channel, endpoint
        self.status = PLANNED

    def _settled_data(self, attempts: int, message_commitment: str | None) -> dict:
        return dict(delivery=str(self.id), notice=self.notice, notice_type=self.notice_type,
                    about_event=self.about_event, about_type=self.about_type, recipient=self.recipient,
                    channel=self.channel, endpoint=self.endpoint, attempts=int(attempts),
                    message_commitment=message_commitment)

    def _require_planned(self) -> None:
        if self.status != PLANNED:
            raise Conflict.coded("notifications.delivery_already", id=self.id, status=self.status)

    def deliver(self, attempts: int, message_commitment: str, digest: str | None = None) -> None:
        self._require_planned()
        self._delivered(digest=digest, **self._settled_data(attempts, message_commitment))

    @event("NotificationDelivered")
    def _delivered(self, delivery: str, notice: str, notice_type: str, about_event: str, about_type: str,
                   recipient: str, channel: str, endpoint: str | None, attempts: int, message_commitment: str,
                   digest: str | None):
        self.status = DELIVERED

    def fail(self, attempts: int, reason: str, code: int | None, message_commitment: str | None) -> None:
        """Final failure. `reason` is a short code (no addresses or server replies: those can
        hold personal data); the full error stays in the service's state for operators."""
        self._require_planned()
        self._failed(reason=reason, code=code, **self._settled_data(attempts, message_commitment))

    @event("NotificationFailed")
    def _failed(self, delivery: str, notice: str, notice_type: str, about_event: str, about_type: str,
                recipient: str, channel: str, endpoint: str | None, attempts: int, message_commitment: str | None,
                reason: str, code: int | None):
        self.status = FAILED

    def retry(self, by: str) -> None:
        """A worker sends a finally failed delivery again (the mail server is back, the address is
        fixed). The failure stays in the record; the retry and its outcome follow it."""
        if self.status != FAILED:
            raise Conflict.coded("notifications.delivery_failed_delivery_sent", id=self.id, status=self.status)
        self._retried(delivery=str(self.id), notice=self.notice, about_event=self.about_event,
                      recipient=self.recipient, channel=self.channel, endpoint=self.endpoint, by=by)

    @event("NotificationRetried")
    def _retried(self, delivery: str, notice: str, about_event: str, recipient: str, channel: str,
                 endpoint: str | None, by: str):
        self.status = PLANNED
