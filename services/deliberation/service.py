"""The deliberation service (议事): thin nameko entrypoints over the DeliberationApp, and the consumer
that opens a consultation when a proposal qualifies; both ask the directory through
services.common.directory.

Every command takes the acting person and the roles the gateway authenticated for them.
"""
from __future__ import annotations

import functools

from services.common.caller import Caller
from services.common.consumer import EventSourcedSink
from services.common.directory import Directory
from services.common.erasure import with_erasure
from services.common.rpc import rpc
from services.common.runtime import Platform, Runtime, ServiceBase, command, query
from services.contracts.every_service import READ_TEXTS

from . import tables
from .application import DeliberationApp


def _consumer(rt: Runtime) -> EventSourcedSink:
    directory = Directory.of_runtime(rt)  # no worker in the consumer thread: the runtime's RPC

    def on_proposal_event(env: dict) -> list:
        if env["type"] != "ProposalQualified":
            return []
        # The body is taken from the directory, and the rules from the community, as they stood when
        # the proposal qualified, so a consumer catching up later opens the same consultation and a
        # rule change confirmed in between does not reach it.
        return rt.app.open_for_proposal(env, directory.rules(env["community"], env["occurred_at"]),
                                        directory.directory(env["community"], env["occurred_at"]))

    return EventSourcedSink(rt.app, with_erasure("deliberation", rt.app, on_proposal_event, None,
                                                 sources=("proposals",)))


class DeliberationService(ServiceBase):
    name = "deliberation"
    platform = Platform("deliberation", app_factory=DeliberationApp, tables=(tables.metadata,),
                        consumer_sink=_consumer)
    communities = Directory.rpc_proxy()

    @property
    def app(self) -> DeliberationApp:
        return self.platform.app

    @property
    def directory(self) -> Directory:
        """The directory over this worker's proxy: each reply unwrapped once, and a refusal from
        the directory (say, an unknown person) raised as the caller's refusal too."""
        return Directory.of_proxy(self.communities)

    def _caller(self, actor: str, roles, community: str) -> Caller:
        lives_in = functools.partial(self.directory.lives_in, community, actor)
        return Caller(actor, frozenset(roles or ()), lives_in)

    # a consultation opened from a proposal shows the proposal's words -----------------------------
    def _view(self, community: str, consultation: str) -> dict:
        view = self.app.consultation_view(community, consultation)
        self._proposal_texts([view])
        return view

    def _proposal_texts(self, views: list[dict]) -> None:
        """A consultation opened when a proposal qualified carries the proposal's title and body
        commitments; their texts live in the proposals service's erasable store, so they are read
        from there when shown (an erased text stays absent, a proposals service that is down
        leaves the commitment alone and the view still answers)."""
        shown = (("title", "title_commitment"), ("description", "body_commitment"))
        wanted = {v[c] for v in views if v.get("proposal") for f, c in shown if f in v and v[f] is None and v.get(c)}
        if not wanted:
            return
        texts = self.platform.send_or_none(READ_TEXTS["proposals"](commitments=sorted(wanted)))
        if not texts:
            return
        for v in views:
            if v.get("proposal"):
                for f, c in shown:
                    if f in v and v[f] is None:
                        v[f] = texts.get(v.get(c))

    # opening and the body -------------------------------------------------------------------------
    @rpc
    @command
    def open_consultation(self, actor, roles, community, title, description, scope, scope_id, category):
        d = self.directory
        return {"id": self.app.open_topic(self._caller(actor, roles, community), community, title, description,
                                          scope, scope_id, category, d.rules(community), d.directory(community))}

    @rpc
    @command
    def designate_convener(self, actor, roles, community, consultation, person):
        person_roles = self.directory.roles_of(community, person)
        self.app.designate_convener(self._caller(actor, roles, community), community, consultation, person,
                                    person_roles)
        return self._view(community, consultation)

    @rpc
    @command
    def invite(self, actor, roles, community, consultation, person, role):
        self.directory.roles_of(community, person)  # the invitee must be in the directory
        self.app.invite(self._caller(actor, roles, community), community, consultation, person, role)
        return self._view(community, consultation)

    @rpc
    @command
    def answer_invitation(self, actor, roles, community, consultation, role, accept, reason=None):
        self.app.answer_invitation(self._caller(actor, roles, community), community, consultation, role, accept,
                                   reason)
        return self._view(community, consultation)

    # discussion ---------------------------------------------------------------------------------------
    @rpc
    @command
    def post_comment(self, actor, roles, community, consultation, text, stance, venue="public", reply_to=None):
        cid = self.app.post_comment(self._caller(actor, roles, community), community, consultation, text, stance,
                                    venue, reply_to)
        return self.app.comment_view(community, cid)

    @rpc
    @command
    def edit_comment(self, actor, roles, community, comment, text):
        self.app.edit_comment(self._caller(actor, roles, community), community, comment, text)
        return self.app.comment_view(community, comment)

    @rpc
    @command
    def flag_comment(self, actor, roles, community, comment):
        return self.app.flag_comment(self._caller(actor, roles, community), community, comment)

    @rpc
    @command
    def hide_comment(self, actor, roles, community, comment, reason):
        self.app.hide_comment(self._caller(actor, roles, community), community, comment, reason)
        return self.app.comment_view(community, comment)

    @rpc
    @command
    def restore_comment(self, actor, roles, community, comment, reason):
        self.app.restore_comment(self._caller(actor, roles, community), community, comment, reason)
        return self.app.comment_view(community, comment)

    # options ---------------------------------------------------------------------------------------------
    @rpc
    @command
    def propose_option(self, actor, roles, community, consultation, title, description):
        return {"id": self.app.propose_option(self._caller(actor, roles, community), community, consultation,
                                              title, description)}

    @rpc
    @command
    def propose_amendment(self, actor, roles, community, consultation, option, description, title=None):
        return {"id": self.app.propose_amendment(self._caller(actor, roles, community), community, consultation,
                                                 option, description, title)}

    @rpc
    @command
    def rule_on_amendment(self, actor, roles, community, consultation, amendment, accept, reason):
        self.app.rule_on_amendment(self._caller(actor, roles, community), community, consultation, amendment,
                                   accept, reason)
        return self._view(community, consultation)

    @rpc
    @command
    def finalise_options(self, actor, roles, community, consultation, options):
        self.app.finalise_options(self._caller(actor, roles, community), community, consultation, options)
        return self._view(community, consultation)

    # meetings and minutes ------------------------------------------------------------------------------
    @rpc
    @command
    def schedule_meeting(self, actor, roles, community, consultation, starts_at, mode, place, agenda, secretary):
        self.directory.roles_of(community, secretary)  # the secretary must be in the directory
        mid = self.app.schedule_meeting(self._caller(actor, roles, community), community, consultation, starts_at,
                                        mode, place, agenda, secretary)
        return self.app.meeting_view(community, mid)

    @rpc
    @command
    def sign_in(self, actor, roles, community, meeting, person=None):
        if person is not None:
            self.directory.roles_of(community, person)  # someone else signed in must be in the directory
        self.app.sign_in(self._caller(actor, roles, community), community, meeting, person)
        return self.app.meeting_view(community, meeting)

    @rpc
    @command
    def open_meeting(self, actor, roles, community, meeting, concluding=False):
        self.app.open_meeting(self._caller(actor, roles, community), community, meeting, concluding)
        return self.app.meeting_view(community, meeting)

    @rpc
    @command
    def close_meeting(self, actor, roles, community, meeting):
        self.app.close_meeting(self._caller(actor, roles, community), community, meeting)
        return self.app.meeting_view(community, meeting)

    @rpc
    @command
    def cancel_meeting(self, actor, roles, community, meeting, reason):
        self.app.cancel_meeting(self._caller(actor, roles, community), community, meeting, reason)
        return self.app.meeting_view(community, meeting)

    @rpc
    @command
    def record_minutes(self, actor, roles, community, meeting, text):
        mid = self.app.record_minutes(self._caller(actor, roles, community), community, meeting, text)
        return self.app.minutes_view(community, mid)

    @rpc
    @command
    def revise_minutes(self, actor, roles, community, minutes, text):
        self.app.revise_minutes(self._caller(actor, roles, community), community, minutes, text)
        return self.app.minutes_view(community, minutes)

    @rpc
    @command
    def sign_minutes(self, actor, roles, community, minutes):
        self.app.sign_minutes(self._caller(actor, roles, community), community, minutes)
        return self.app.minutes_view(community, minutes)

    @rpc
    @command
    def correct_minutes(self, actor, roles, community, minutes, text):
        mid = self.app.correct_minutes(self._caller(actor, roles, community), community, minutes, text)
        return self.app.minutes_view(community, mid)

    # conclusion ------------------------------------------------------------------------------------------
    @rpc
    @command
    def conclude(self, actor, roles, community, consultation, outcome, summary, meeting, reason=None,
                 suggested_rule=None):
        self.app.conclude(self._caller(actor, roles, community), community, consultation, outcome, summary,
                          meeting, reason, suggested_rule)
        return self._view(community, consultation)

    # queries ----------------------------------------------------------------------------------------------
    @rpc
    @query
    def list_consultations(self, community, status=None):
        rows = self.app.list_consultations(community, status)
        self._proposal_texts(rows)
        return rows

    @rpc
    @query
    def get_consultation(self, community, consultation):
        return self._view(community, consultation)

    @rpc
    @query
    def comments(self, community, consultation, after=0, limit=100):
        return self.app.comments(community, consultation, after, limit)

    @rpc
    @query
    def get_comment(self, community, comment):
        return self.app.comment_view(community, comment)

    @rpc
    @query
    def get_meeting(self, community, meeting):
        return self.app.meeting_view(community, meeting)

    @rpc
    @query
    def get_minutes(self, community, minutes):
        return self.app.minutes_view(community, minutes)

    @rpc
    @query
    def needs_of(self, community, person, roles):
        """A resident's home page: what in this stage waits on them. A title opened from a proposal
        is read from the proposals service's store, as the consultation's view reads it."""
        return self.app.needs_of(community, person, roles,
                                 lambda commitments: self.platform.send_or_none(
                                     READ_TEXTS["proposals"](commitments=commitments)))


SERVICE = DeliberationService
