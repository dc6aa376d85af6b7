"""The deliberation application: commands that run a consultation from its opening to its
conclusion, and the queries that read it back with its texts joined in.

Directory facts (rules, the directory itself, whether someone lives in a scope) arrive as plain
data from service.py, so this module runs without nameko. Free text goes to the erasable content
store and only its commitment into events.
"""
from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import Callable

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from rules.presets import PRESET_FUNCTIONS
from services.common import clock, metrics
from services.common.aggregate import SELF, command_context, derived_id
from services.common.caller import Caller
from services.common.content import validate_text
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.ids import parse_id as _id
from services.common.store import StageApplication

from . import tables as t
from .domain import (
    INVITED_ROLES, SCOPES, Comment, Consultation, Meeting, Minutes, minutes_id, signer_roles, standing_body,
)

# Community roles that take part in every discussion of their community besides the body and the
# residents in scope: they run, facilitate and moderate it.
STAFF_ROLES = frozenset({"community_worker", "party_lead", "moderator"})
# The party committee's side: who raises a topic directly, and who may be designated convener.
CONVENER_ROLES = frozenset({"party_lead", "community_worker"})



class DeliberationApp(StageApplication):
    name = "deliberation"

    def __init__(self, settings, engine: sa.Engine):
        super().__init__(settings, "deliberation", engine, project_envelope, cache_size=5000)

    # ---- plumbing ------------------------------------------------------------------------------
    def _find(self, agg_id: uuid.UUID):
        try:
            return self.repository.get(agg_id)
        except AggregateNotFoundError:
            return None

    def _load(self, cls, community: str, agg_id, what: str):
        """An aggregate of this community, or NotFound (another community's ids do not exist here)."""
        agg = self._find(_id(agg_id, what))
        if not isinstance(agg, cls) or agg.community != community:
            raise NotFound.coded("common.does_exist", what=what, value=agg_id)
        return agg

    @staticmethod
    def _acting(caller: Caller, on) -> AbstractContextManager:
        """Events of a command on `on` carry its community and case, and the caller as actor."""
        return command_context(community=on.community, actor=caller.person, case=on.case)

    def _save(self, *aggregates) -> None:
        self.save_or_conflict(*aggregates)
        self.project()

    def personal_data(self, community: str, person: str) -> dict:
        """What this stage holds about the person (PIPL art. 45): their comments, with their texts
        (a hidden one too: it is theirs)."""
        self.project()
        C = t.comments
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(C).where(C.c.community == community, C.c.author == person)
                                     .order_by(C.c.position)))
        texts = self.content.get_many(r.text_commitment for r in rows)
        return {"comments": [{"id": r.id, "consultation": r.consultation, "stance": r.stance, "venue": r.venue,
                              "reply_to": r.reply_to, "text": texts.get(r.text_commitment),
                              "text_commitment": r.text_commitment, "posted_at": r.posted_at,
                              "edited_at": r.edited_at, "hidden": bool(r.hidden)} for r in rows]}

    # ---- opening ------------------------------------------------------------------------------
    def open_for_proposal(self, env: dict, rules: dict, directory: dict) -> list[Consultation]:
        """ProposalQualified opens the proposal's consultation. Returned, not saved: the tracked
        consumer saves it with its tracking record. The id derives from the proposal, so a
        replayed event cannot open a second one."""
        d = env["data"]
        cid = derived_id("consultation", d["proposal"])
        if self._find(cid) is not None:
            return []
        return [Consultation.open(
            id=cid, community=env["community"], case=env.get("case") or d["proposal"], proposal=d["proposal"],
            scope=d["scope"], scope_id=d.get("scope_id"), category=d["category"],
            title_commitment=d.get("title_commitment"), body_commitment=d.get("body_commitment"),
            body=standing_body(d["scope"], d.get("scope_id"), directory), rules=rules)]

    def open_topic(self, caller: Caller, community: str, title: str, description: str, scope: str,
                   scope_id: str | None, category: str, rules: dict, directory: dict) -> str:
        """The party organisation raises a topic itself: a consultation without a proposal,
        which opens its own case."""
        if not caller.holds(*CONVENER_ROLES):
            raise Forbidden.coded("deliberation.party_committee_lead_community")
        title = validate_text(title, "title", max_len=200)
        description = validate_text(description, "description", max_len=10000)
        if scope not in SCOPES:
            raise InvalidInput.coded("common.scope_one", scopes=", ".join(SCOPES))
        if category not in rules.get("categories", ()):
            raise InvalidInput.coded("deliberation.category_one_community",
                                     categories=", ".join(rules.get("categories", ())))
        body = standing_body(scope, scope_id, directory)
        if scope == "community":
            scope_id = community  # named as proposals name it, so every stage reads one convention
        cid = uuid.uuid4()
        with self.content.for_command(None, title=title, description=description) as text, \
                command_context(community=community, actor=caller.person, case=SELF):
            consultation = Consultation.open(
                id=cid, community=community, case=str(cid), proposal=None, scope=scope, scope_id=scope_id,
                category=category, title_commitment=text["title"], body_commitment=text["description"],
                body=body, rules=rules)
            self._save(consultation)
        return str(cid)

    # ---- the body -------------------------------------------------------------------------------
    def designate_convener(self, caller: Caller, community: str, consultation: str, person: str,
                           person_roles: list[str]) -> None:
        c = self._load(Consultation, community, consultation, "consultation")
        if not caller.holds("party_lead"):
            raise Forbidden.coded("deliberation.party_committee_lead_designates")
        if not CONVENER_ROLES & set(person_roles):
            raise InvalidInput.coded("deliberation.convener_party_committee_lead")
        with self._acting(caller, c):
            c.designate_convener(person)
            self._save(c)

    def invite(self, caller: Caller, community: str, consultation: str, person: str, role: str) -> None:
        c = self._load(Consultation, community, consultation, "consultation")
        with self._acting(caller, c):
            c.invite(caller.person, person, role)
            self._save(c)

    def answer_invitation(self, caller: Caller, community: str, consultation: str, role: str, accept: bool,
                          reason: str | None = None) -> None:
        if not isinstance(accept, bool):
            raise InvalidInput.coded("deliberation.accept_true_false")
        if role not in INVITED_ROLES:
            raise InvalidInput.coded("deliberation.role_one", invited_roles=", ".join(INVITED_ROLES))
        reason = validate_text(reason, "reason", max_len=2000, required=False)
        c = self._load(Consultation, community, consultation, "consultation")
        with self.content.for_command(caller.person, reason=reason) as text, self._acting(caller, c):
            c.answer_invitation(caller.person, role, accept, text["reason"])
            self._save(c)

    # ---- discussion -------------------------------------------------------------------------------
    def _speaker_roles(self, c: Consultation, caller: Caller) -> list[str]:
        """As what the caller speaks in the public discussion: body roles, staff roles, or as a
        resident of the scope. Anyone else in the community reads but does not speak."""
        roles = c.roles_of(caller.person) or sorted(STAFF_ROLES & caller.roles)
        if roles:
            return roles
        if "platform_admin" in caller.roles:
            return ["platform_admin"]
        if caller.lives_in(c.scope, c.scope_id):
            return ["resident"]
        raise Forbidden.coded("deliberation.residents_consultation_scope_body")

    def post_comment(self, caller: Caller, community: str, consultation: str, text: str, stance: str,
                     venue: str = "public", reply_to: str | None = None) -> str:
        text = validate_text(text, "text", max_len=5000)
        c = self._load(Consultation, community, consultation, "consultation")
        parent = self._load(Comment, community, reply_to, "comment") if reply_to else None
        roles = c.roles_of(caller.person) if venue == "body" else self._speaker_roles(c, caller)
        with self.content.for_command(caller.person, text=text) as texts, self._acting(caller, c):
            comment = c.comment(id=uuid.uuid4(), author=caller.person, author_roles=roles, venue=venue,
                                stance=stance, parent=parent, text_commitment=texts["text"])
            self._save(comment)
        return str(comment.id)

    def edit_comment(self, caller: Caller, community: str, comment: str, text: str) -> None:
        text = validate_text(text, "text", max_len=5000)
        cm = self._load(Comment, community, comment, "comment")
        self._load(Consultation, community, cm.consultation, "consultation").require_open()
        with self.content.for_command(caller.person, text=text) as texts, self._acting(caller, cm):
            cm.edit(caller.person, texts["text"])
            self._save(cm)

    def flag_comment(self, caller: Caller, community: str, comment: str) -> dict:
        cm = self._load(Comment, community, comment, "comment")
        c = self._load(Consultation, community, cm.consultation, "consultation")
        self._speaker_roles(c, caller)
        for _ in range(3):  # flags commute: a concurrent flag only means reload and add ours
            with self._acting(caller, cm):
                cm.flag(caller.person, c.rules["flags_to_hide"])
                try:
                    self.save(cm)
                except IntegrityError:
                    cm = self._load(Comment, community, comment, "comment")
                    continue
            self.project()
            return {"flags": len(cm.flaggers), "hidden": cm.hidden is not None}
        raise Conflict.coded("deliberation.comment_being_flagged_others")

    def hide_comment(self, caller: Caller, community: str, comment: str, reason: str) -> None:
        self._moderate(caller, community, comment, reason, Comment.hide)

    def restore_comment(self, caller: Caller, community: str, comment: str, reason: str) -> None:
        self._moderate(caller, community, comment, reason, Comment.restore)

    def _moderate(self, caller: Caller, community: str, comment: str, reason: str, action) -> None:
        if not caller.holds("moderator"):
            raise Forbidden.coded("deliberation.moderator_hides_restores_comments")
        reason = validate_text(reason, "reason", max_len=2000)
        cm = self._load(Comment, community, comment, "comment")
        # The reason is the moderator's official act, not their personal text: no erasure subject.
        with self.content.for_command(None, reason=reason) as text, self._acting(caller, cm):
            action(cm, caller.person, text["reason"])
            self._save(cm)

    # ---- options and amendments ---------------------------------------------------------------
    def propose_option(self, caller: Caller, community: str, consultation: str, title: str,
                       description: str) -> str:
        title = validate_text(title, "title", max_len=200)
        description = validate_text(description, "description", max_len=10000)
        c = self._load(Consultation, community, consultation, "consultation")
        option = str(uuid.uuid4())
        with self.content.for_command(caller.person, title=title, description=description) as text, self._acting(caller, c):
            c.propose_option(option, caller.person, text["title"], text["description"])
            self._save(c)
        return option

    def propose_amendment(self, caller: Caller, community: str, consultation: str, option: str,
                          description: str, title: str | None = None) -> str:
        title = validate_text(title, "title", max_len=200, required=False)
        description = validate_text(description, "description", max_len=10000)
        c = self._load(Consultation, community, consultation, "consultation")
        amendment = str(uuid.uuid4())
        with self.content.for_command(caller.person, title=title, description=description) as text, self._acting(caller, c):
            c.propose_amendment(amendment, str(option), caller.person, text["title"], text["description"])
            self._save(c)
        return amendment

    def rule_on_amendment(self, caller: Caller, community: str, consultation: str, amendment: str, accept: bool,
                          reason: str) -> None:
        if not isinstance(accept, bool):
            raise InvalidInput.coded("deliberation.accept_true_false")
        reason = validate_text(reason, "reason", max_len=2000)
        c = self._load(Consultation, community, consultation, "consultation")
        with self.content.for_command(None, reason=reason) as text, self._acting(caller, c):
            c.rule_on_amendment(caller.person, str(amendment), accept, text["reason"])
            self._save(c)

    def finalise_options(self, caller: Caller, community: str, consultation: str, options: list[str]) -> None:
        if not isinstance(options, list):
            raise InvalidInput.coded("deliberation.options_list_option_ids")
        c = self._load(Consultation, community, consultation, "consultation")
        with self._acting(caller, c):
            c.finalise_options(caller.person, [str(o) for o in options])
            self._save(c)

    # ---- meetings -------------------------------------------------------------------------------
    def schedule_meeting(self, caller: Caller, community: str, consultation: str, starts_at: str, mode: str,
                         place: str, agenda: list[str], secretary: str) -> str:
        starts = clock.parse_input(starts_at, "starts_at")
        place = validate_text(place, "place", max_len=500)
        if not isinstance(agenda, list):
            raise InvalidInput.coded("deliberation.agenda_list_items")
        items = [validate_text(item, f"agenda[{i}]", max_len=500) for i, item in enumerate(agenda)]
        c = self._load(Consultation, community, consultation, "consultation")
        texts = {"place": place, **{f"item{i}": item for i, item in enumerate(items)}}
        with self.content.for_command(None, **texts) as text, self._acting(caller, c):
            meeting = c.schedule_meeting(
                id=uuid.uuid4(), by=caller.person, now=clock.now(), starts_at=starts, mode=mode,
                place_commitment=text["place"], agenda_commitments=[text[f"item{i}"] for i in range(len(items))],
                secretary=str(_id(secretary, "secretary")))
            self._save(meeting)
        return str(meeting.id)

    def _meeting_and_consultation(self, community: str, meeting: str) -> tuple[Meeting, Consultation]:
        m = self._load(Meeting, community, meeting, "meeting")
        return m, self._load(Consultation, community, m.consultation, "consultation")

    def sign_in(self, caller: Caller, community: str, meeting: str, person: str | None = None) -> None:
        """An attendee signs in; on site the secretary or the convener may record someone."""
        m, c = self._meeting_and_consultation(community, meeting)
        attendee = str(_id(person, "person")) if person else caller.person
        if attendee != caller.person and caller.person not in (m.secretary, c.convener):
            raise Forbidden.coded("deliberation.meeting_secretary_convener_records")
        with self._acting(caller, m):
            m.sign_in(attendee, c.roles_of(attendee), caller.person, clock.now())
            self._save(m)

    def open_meeting(self, caller: Caller, community: str, meeting: str, concluding: bool = False) -> dict:
        m, c = self._meeting_and_consultation(community, meeting)
        c.require_open()
        c.require_convener(caller.person, "open a meeting")
        with self._acting(caller, m):
            m.open(c, clock.now(), concluding=bool(concluding))
            self._save(m)
        return dict(m.quorum)

    def close_meeting(self, caller: Caller, community: str, meeting: str) -> None:
        m, c = self._meeting_and_consultation(community, meeting)
        if caller.person not in (m.secretary, c.convener):
            raise Forbidden.coded("deliberation.convener_meeting_secretary_closes")
        with self._acting(caller, m):
            m.close()
            self._save(m)

    def cancel_meeting(self, caller: Caller, community: str, meeting: str, reason: str) -> None:
        reason = validate_text(reason, "reason", max_len=2000)
        m, c = self._meeting_and_consultation(community, meeting)
        c.require_convener(caller.person, "cancel a meeting")
        with self.content.for_command(None, reason=reason) as text, self._acting(caller, m):
            m.cancel(text["reason"])
            self._save(m)

    # ---- minutes ---------------------------------------------------------------------------------
    def record_minutes(self, caller: Caller, community: str, meeting: str, text: str) -> str:
        text = validate_text(text, "text", max_len=50000)
        m, c = self._meeting_and_consultation(community, meeting)
        if self._find(minutes_id(m.id)) is not None:
            raise Conflict.coded("deliberation.meeting_minutes_recorded_revise")
        # Minutes are the meeting's record, not the secretary's personal text: no erasure subject.
        with self.content.for_command(None, text=text) as texts, self._acting(caller, m):
            minutes = m.record_minutes(caller.person, texts["text"], signer_roles(c.rules))
            self._save(minutes)
        return str(minutes.id)

    def revise_minutes(self, caller: Caller, community: str, minutes: str, text: str) -> None:
        text = validate_text(text, "text", max_len=50000)
        mn = self._load(Minutes, community, minutes, "minutes")
        with self.content.for_command(None, text=text) as texts, self._acting(caller, mn):
            mn.revise(caller.person, texts["text"])
            self._save(mn)

    def sign_minutes(self, caller: Caller, community: str, minutes: str) -> dict:
        mn = self._load(Minutes, community, minutes, "minutes")
        c = self._load(Consultation, community, mn.consultation, "consultation")
        with self._acting(caller, mn):
            mn.sign(caller.person, c.roles_of(caller.person))
            self._save(mn)
        return {"confirmed": mn.confirmed, "outstanding_roles": mn.outstanding_roles()}

    def correct_minutes(self, caller: Caller, community: str, minutes: str, text: str) -> str:
        text = validate_text(text, "text", max_len=50000)
        mn = self._load(Minutes, community, minutes, "minutes")
        m, c = self._meeting_and_consultation(community, mn.meeting)
        if caller.person not in (m.secretary, c.convener):
            raise Forbidden.coded("deliberation.meeting_secretary_convener_records_correction")
        if self._find(minutes_id(mn.id)) is not None:
            raise Conflict.coded("deliberation.these_minutes_already_correction", id=minutes_id(mn.id))
        with self.content.for_command(None, text=text) as texts, self._acting(caller, mn):
            correction = mn.correct(caller.person, texts["text"])
            self._save(correction)
        return str(correction.id)

    # ---- conclusion ---------------------------------------------------------------------------------
    def conclude(self, caller: Caller, community: str, consultation: str, outcome: str, summary: str,
                 meeting: str, reason: str | None = None, suggested_rule: str | None = None) -> None:
        summary = validate_text(summary, "summary", max_len=10000)
        reason = validate_text(reason, "reason", max_len=5000, required=False)
        if suggested_rule is not None and suggested_rule not in PRESET_FUNCTIONS:
            raise InvalidInput.coded("deliberation.suggested_rule_one", preset_functions=", ".join(PRESET_FUNCTIONS))
        c = self._load(Consultation, community, consultation, "consultation")
        m = self._load(Meeting, community, meeting, "meeting")
        minutes = self._find(minutes_id(m.id))
        with self.content.for_command(None, summary=summary, reason=reason) as text, self._acting(caller, c):
            c.conclude(by=caller.person, outcome=outcome, summary_commitment=text["summary"],
                       reason_commitment=text["reason"], suggested_rule=suggested_rule, meeting=m, minutes=minutes)
            self._save(c)

    # ---- queries ----------------------------------------------------------------------------------
    def list_consultations(self, community: str, status: str | None = None) -> list[dict]:
        self.project()
        cond = [t.consultations.c.community == community]
        if status:
            cond.append(t.consultations.c.status == status)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                sa.select(t.consultations).where(*cond).order_by(t.consultations.c.opened_at))]
        titles = self.content.get_many(r["title_commitment"] for r in rows)
        for r in rows:
            r["case"] = r.pop("case_id")
            r["title"] = titles.get(r["title_commitment"])
        return rows

    def consultation_view(self, community: str, consultation: str) -> dict:
        c = self._load(Consultation, community, consultation, "consultation")
        self.project()
        with self.engine.connect() as conn:
            meetings = [dict(r._mapping) for r in conn.execute(
                sa.select(t.meetings.c.id, t.meetings.c.starts_at, t.meetings.c.mode, t.meetings.c.status)
                .where(t.meetings.c.consultation == str(c.id)).order_by(t.meetings.c.starts_at))]
            comments = conn.execute(sa.select(sa.func.count()).select_from(t.comments)
                                    .where(t.comments.c.consultation == str(c.id))).scalar()
        options = list(c.options.values())
        amendments = list(c.amendments.values())
        texts = self.content.get_many(
            [c.title_commitment, c.body_commitment]
            + [o[k] for o in options for k in ("title_commitment", "description_commitment")]
            + [h[k] for o in options for h in o["amended_by"] for k in ("title_commitment", "description_commitment")]
            + [a[k] for a in amendments for k in ("title_commitment", "description_commitment", "reason_commitment")]
            + [m.get("reason_commitment") for m in c.body]
            + [(c.conclusion or {}).get(k) for k in ("summary_commitment", "reason_commitment")])

        def joined(d: dict) -> dict:
            """Each *_commitment with its text beside it (None once erased or not held here)."""
            out = dict(d)
            for k, v in d.items():
                if k.endswith("_commitment"):
                    out[k[: -len("_commitment")]] = texts.get(v)
            return out

        conclusion = None
        if c.conclusion:
            conclusion = joined(c.conclusion)
            conclusion["options"] = [joined(o) for o in c.conclusion["options"]]
        return {
            "id": str(c.id), "community": c.community, "case": c.case, "proposal": c.proposal,
            "scope": c.scope, "scope_id": c.scope_id, "category": c.category, "convened_by": c.convened_by,
            "title": texts.get(c.title_commitment), "description": texts.get(c.body_commitment),
            "title_commitment": c.title_commitment, "body_commitment": c.body_commitment,
            "status": c.status, "convener": c.convener, "rules": dict(c.rules),
            "body": [joined(m) for m in c.body],
            "options": [dict(joined(o), amended_by=[joined(h) for h in o["amended_by"]]) for o in options],
            "amendments": [joined(a) for a in amendments],
            "final_options": c.final_options, "conclusion": conclusion,
            "meetings": meetings, "comment_count": comments,
        }

    def _comment_row(self, row: dict, texts: dict) -> dict:
        out = dict(row)
        out["text"] = None if row["hidden"] else texts.get(row["text_commitment"])
        out["hidden_reason"] = texts.get(row["hidden_reason_commitment"])
        return out

    def comments(self, community: str, consultation: str, after: int = 0, limit: int = 100) -> dict:
        """One page of the discussion in posting order; threads follow reply_to."""
        c = self._load(Consultation, community, consultation, "consultation")
        if not isinstance(limit, int) or not 1 <= limit <= 500:
            raise InvalidInput.coded("deliberation.limit_between")
        self.project()
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                sa.select(t.comments).where(t.comments.c.consultation == str(c.id), t.comments.c.position > after)
                .order_by(t.comments.c.position).limit(limit))]
        texts = self.content.get_many([r["text_commitment"] for r in rows if not r["hidden"]]
                                      + [r["hidden_reason_commitment"] for r in rows])
        page = [self._comment_row(r, texts) for r in rows]
        return {"comments": page, "next": page[-1]["position"] if len(page) == limit else None}

    def comment_view(self, community: str, comment: str) -> dict:
        cm = self._load(Comment, community, comment, "comment")
        self.project()
        with self.engine.connect() as conn:
            row = dict(conn.execute(sa.select(t.comments).where(t.comments.c.id == str(cm.id))).one()._mapping)
        hidden = cm.hidden is not None
        texts = self.content.get_many([] if hidden else [cm.text_commitment, *cm.edits])
        texts.update(self.content.get_many([row["hidden_reason_commitment"]]))
        view = self._comment_row(row, texts)
        view["history"] = [{"text_commitment": h, "text": texts.get(h)} for h in cm.edits]
        view["hidden_automatically"] = bool(hidden and cm.hidden["automatic"])
        return view

    def meeting_view(self, community: str, meeting: str) -> dict:
        m = self._load(Meeting, community, meeting, "meeting")
        self.project()
        with self.engine.connect() as conn:
            records = [dict(r._mapping) for r in conn.execute(
                sa.select(t.minutes).where(t.minutes.c.meeting == str(m.id)).order_by(t.minutes.c.position))]
        texts = self.content.get_many([m.place_commitment, *m.agenda_commitments])
        return {
            "id": str(m.id), "consultation": m.consultation, "case": m.case, "starts_at": m.starts_at,
            "mode": m.mode, "place": texts.get(m.place_commitment), "place_commitment": m.place_commitment,
            "agenda": [texts.get(a) for a in m.agenda_commitments], "agenda_commitments": m.agenda_commitments,
            "secretary": m.secretary, "notice_days": m.notice_days, "status": m.status,
            "attendance": [dict(a) for a in m.attendance], "quorum": m.quorum,
            "minutes": [{"id": r["id"], "corrects": r["corrects"], "recorded_at": r["recorded_at"],
                         "confirmed_at": r["confirmed_at"]} for r in records],
        }

    def minutes_view(self, community: str, minutes: str) -> dict:
        mn = self._load(Minutes, community, minutes, "minutes")
        correction = minutes_id(mn.id)
        return {
            "id": str(mn.id), "meeting": mn.meeting, "consultation": mn.consultation, "corrects": mn.corrects,
            "corrected_by": str(correction) if self._find(correction) is not None else None,
            "text": self.content.get(mn.text_commitment), "text_commitment": mn.text_commitment,
            "recorded_by": mn.recorded_by, "signer_roles": mn.signer_roles,
            "signatures": [dict(s) for s in mn.signatures], "outstanding_roles": mn.outstanding_roles(),
            "confirmed": mn.confirmed,
        }

    def needs_of(self, community: str, person: str, roles: list[str],
                 texts_elsewhere: Callable[[list[str]], dict | None] | None = None) -> list[dict]:
        """What in this stage waits on the person now, for their home page: the open consultations
        whose body they sit on ("discuss"), the body's meetings still ahead ("attend"), and the
        minutes that wait for their signature ("sign").

        The read tables name the candidates (open consultations, scheduled meetings, unconfirmed
        minutes of this community) and only those aggregates are loaded, so the answer costs what
        is live, not every consultation the community ever held. Who sits on a body and who may
        sign is the aggregates' own answer (`members`, `roles_of`, `outstanding_roles`), the one
        the commands check. `roles` (the person's directory roles, asked of every stage alike)
        widen nothing here: the body is fixed in the consultation, not read from the directory.

        A consultation opened from a proposal carries the proposal's title commitment, whose text
        lives in the proposals service's store; `texts_elsewhere(commitments)` reads those (None
        or a missing text leaves the title None, as the consultation's view does).
        """
        self.project()
        K, M, N = t.consultations, t.meetings, t.minutes
        now = clock.format(clock.now())  # starts_at is stored in the same fixed UTC format
        with self.engine.connect() as conn:
            open_rows = list(conn.execute(
                sa.select(K.c.id, K.c.proposal, K.c.title_commitment)
                .where(K.c.community == community, K.c.status == "open").order_by(K.c.opened_at, K.c.id)))
            meeting_rows = list(conn.execute(
                sa.select(M.c.id, M.c.consultation, M.c.starts_at)
                .join(K, K.c.id == M.c.consultation)
                .where(M.c.community == community, K.c.community == community, K.c.status == "open",
                       M.c.status == "scheduled", M.c.starts_at > now)
                .order_by(M.c.starts_at, M.c.id)))
            minutes_rows = list(conn.execute(
                sa.select(N.c.id, N.c.meeting, M.c.consultation, K.c.proposal, K.c.title_commitment)
                .join(M, M.c.id == N.c.meeting).join(K, K.c.id == M.c.consultation)
                .where(M.c.community == community, K.c.community == community, N.c.confirmed_at.is_(None))
                .order_by(N.c.position)))

        consultations: dict[str, Consultation | None] = {}

        def consultation(cid: str) -> Consultation | None:
            if cid not in consultations:
                c = self._find(uuid.UUID(cid))
                consultations[cid] = c if isinstance(c, Consultation) and c.community == community else None
            return consultations[cid]

        def sits(cid: str) -> bool:
            c = consultation(cid)
            return c is not None and person in c.members()

        def awaits(row) -> bool:
            """The person may sign now: they hold a signer role still outstanding and have not signed."""
            c, mn = consultation(row.consultation), self._find(uuid.UUID(row.id))
            if c is None or not isinstance(mn, Minutes) or mn.community != community or mn.confirmed:
                return False
            if any(s["person"] == person for s in mn.signatures):
                return False
            return bool(set(mn.outstanding_roles()) & set(c.roles_of(person)))

        found = [("discuss", r.id, r, None, f"consultations/{r.id}") for r in open_rows if sits(r.id)]
        by_id = {r.id: r for r in open_rows}
        found += [("attend", r.id, by_id[r.consultation], r.starts_at, f"meetings/{r.id}")
                  for r in meeting_rows if r.consultation in by_id and sits(r.consultation)]
        found += [("sign", r.id, r, None, f"meetings/{r.meeting}") for r in minutes_rows if awaits(r)]

        titles = self.content.get_many(k.title_commitment for _, _, k, _, _ in found)
        elsewhere = sorted({k.title_commitment for _, _, k, _, _ in found
                            if k.proposal and k.title_commitment and titles.get(k.title_commitment) is None})
        if elsewhere and texts_elsewhere is not None:
            titles.update({k: v for k, v in (texts_elsewhere(elsewhere) or {}).items() if v is not None})
        return [{"kind": kind, "stage": "deliberation", "id": oid, "title": titles.get(k.title_commitment),
                 "due": due, "path": path} for kind, oid, k, due, path in found]


def _stage(env: dict, stage: str) -> None:
    metrics.STAGE_TRANSITIONS.labels("deliberation", env["community"], stage).inc()


# A comment is the read model's most frequent event: its insert is built once, the values bound at
# each execution (building `insert().values(...)` and its cache key cost more than running it).
_INSERT_COMMENT = sa.insert(t.comments)


def project_envelope(conn: sa.Connection, env: dict) -> None:
    """The deliberation's read tables, kept from its own log (exactly once, in order); stage
    transitions are counted here, once per event, whichever instance projects it."""
    d, kind, agg, at = env["data"], env["type"], env["aggregate"]["id"], env["occurred_at"]
    if kind == "ConsultationOpened":
        conn.execute(sa.insert(t.consultations).values(
            id=agg, community=env["community"], case_id=d["case"], proposal=d["proposal"], scope=d["scope"],
            scope_id=d["scope_id"], category=d["category"], title_commitment=d["title_commitment"], status="open",
            opened_at=at))
        _stage(env, "deliberation")
    elif kind == "DeliberationConcluded":
        conn.execute(sa.update(t.consultations).where(t.consultations.c.id == agg).values(
            status="concluded", outcome=d["outcome"], concluded_at=at))
        _stage(env, {"vote_needed": "decision", "agreed": "action"}.get(d["outcome"], "closed"))
    elif kind == "CommentPosted":
        conn.execute(_INSERT_COMMENT, dict(
            id=agg, consultation=d["consultation"], position=env["position"], community=env["community"],
            author=d["author"], author_roles=d["author_roles"], venue=d["venue"], stance=d["stance"],
            reply_to=d["reply_to"], text_commitment=d["text_commitment"], posted_at=at, edits=0, flags=0,
            hidden=False))
    elif kind == "CommentEdited":
        conn.execute(sa.update(t.comments).where(t.comments.c.id == agg).values(
            text_commitment=d["text_commitment"], edited_at=at, edits=t.comments.c.edits + 1))
    elif kind == "CommentFlagged":
        conn.execute(sa.update(t.comments).where(t.comments.c.id == agg).values(flags=t.comments.c.flags + 1))
    elif kind == "CommentHidden":
        conn.execute(sa.update(t.comments).where(t.comments.c.id == agg).values(
            hidden=True, hidden_reason_commitment=d["reason_commitment"]))
    elif kind == "CommentRestored":
        conn.execute(sa.update(t.comments).where(t.comments.c.id == agg).values(
            hidden=False, hidden_reason_commitment=None))
    elif kind == "MeetingScheduled":
        conn.execute(sa.insert(t.meetings).values(
            id=agg, consultation=d["consultation"], community=env["community"], starts_at=d["starts_at"],
            mode=d["mode"], status="scheduled"))
    elif kind in ("MeetingOpened", "MeetingClosed", "MeetingCancelled"):
        status = {"MeetingOpened": "opened", "MeetingClosed": "closed", "MeetingCancelled": "cancelled"}[kind]
        conn.execute(sa.update(t.meetings).where(t.meetings.c.id == agg).values(status=status))
    elif kind == "MinutesRecorded":
        conn.execute(sa.insert(t.minutes).values(
            id=agg, meeting=d["meeting"], position=env["position"], corrects=d["corrects"], recorded_at=at))
    elif kind == "MinutesConfirmed":
        conn.execute(sa.update(t.minutes).where(t.minutes.c.id == agg).values(confirmed_at=at))
