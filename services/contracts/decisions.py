"""Event contracts of the `decisions` source: 决策 ballots, votes and proxies.

Prose: `services/contracts/prose/decisions.md`; the generated page: `docs/events/decisions.md`.
"""
from __future__ import annotations

from .calls import RpcCall, rpc_call
from .erasure import PERSON_TEXTS_ERASED
from .schema import event, f, older

SOURCE = "decisions"

# What the gateway validates and lists (services/decisions/domain.py re-exports them).
VOTING_UNITS = ("owner", "resident", "household", "council")
CHANNELS = ("online", "proxy", "paper")
PROXY_SOURCES = ("platform", "paper")
# Ballot statuses, in the order a ballot normally passes through them.
PREPARED, CONFIGURED, OPEN, CLOSED = "prepared", "configured", "open", "closed"
ADOPTED, REJECTED, FINAL, ANNULLED = "adopted", "rejected", "final", "annulled"
EMERGENCY_DECLARED = "emergency_declared"
STATUSES = (PREPARED, CONFIGURED, OPEN, CLOSED, ADOPTED, REJECTED, FINAL, ANNULLED, EMERGENCY_DECLARED)
ANNULLED_BY = ("objection", "worker")  # who annulled a resolution: an upheld objection, or a community worker

EVENTS = (
    # suggested_rule: the preset name the deliberation suggested, or for a rerun the annulled
    # ballot's whole rule (the domain's annotation says dict; both are recorded).
    event("BallotPrepared", "Ballot", 1, f("community", "str"), f("case", "str"),
          f("title_commitment", "commitment?"), f("description_commitment", "commitment?"), f("options", "array"),
          f("scope", "str"), f("scope_id", "str?"), f("category", "str?"), f("consultation", "str?"),
          f("proposal", "str?"), f("convener", "str?"), f("suggested_rule", "str|object?"), f("rerun_of", "str?")),
    event("BallotConfigured", "Ballot", 2, f("rule", "object"), f("voting_unit", "str"), f("candidates", "array"),
          f("options", "array"), f("motion", "object?"), f("opens_at", "str"), f("closes_at", "str"),
          f("secret", "bool"), f("changeable", "bool"), f("notice_days", "int"), f("publicity_days", "int"),
          f("proxy_limit", "int?")),
    event("BallotOpened", "Ballot", 1, f("roll", "array"), f("roll_hash", "str"), f("rule", "object"),
          f("options", "array"), f("motion", "object?"), f("voting_unit", "str"), f("opens_at", "str"),
          f("closes_at", "str"), f("secret", "bool"), f("changeable", "bool")),
    event("BallotNotOpened", "Ballot", 1, f("reason", "str")),
    event("BallotClosed", "Ballot", 1, f("reason", "str"), f("closed_at", "str")),
    event("VotesRevealed", "Ballot", 1, f("ballot", "str"), f("part", "int"), f("parts", "int"),
          f("reveals", "array")),
    event("ResolutionAdopted", "Ballot", 1, f("ballot", "str"), f("result", "object"), f("publicity_until", "str")),
    event("ResolutionRejected", "Ballot", 1, f("ballot", "str"), f("result", "object"), f("publicity_until", "str")),
    event("ObjectionLodged", "Ballot", 1, f("objection", "str"), f("text_commitment", "commitment")),
    event("ObjectionRuled", "Ballot", 1, f("objection", "str"), f("upheld", "bool"),
          f("reason_commitment", "commitment")),
    event("ResolutionAnnulled", "Ballot", 1, f("ballot", "str"), f("objection", "str")),
    event("ResolutionFinal", "Ballot", 1, f("ballot", "str"), f("outcome", "str"), f("consultation", "str?"),
          f("proposal", "str?"), f("scope", "str"), f("scope_id", "str?"), f("category", "str?"),
          f("title_commitment", "commitment?"), f("winner", "object?"), f("summary", "object?"),
          f("justification_commitment", "commitment?")),
    event("BallotAnnulled", "Ballot", 1, f("reason_commitment", "commitment")),
    event("BallotRerun", "Ballot", 1, f("rerun", "str")),
    event("BallotAbandoned", "Ballot", 1, f("reason_commitment", "commitment"), f("annulment", "str?")),
    event("EmergencyDeclared", "Ballot", 1, f("justification_commitment", "commitment"), f("declared_by", "str"),
          f("declared_as", "str")),
    event("EmergencyConfirmed", "Ballot", 1, f("confirmed_by", "str"), f("confirmed_as", "str")),
    event("VoteCast", "Vote", 2, f("community", "str"), f("ballot", "str"), f("voter", "str?"), f("receipt", "str"),
          f("nonce", "str?"), f("choice", "any?"), f("sealed_choice", "str?"), f("weight", "str"),
          f("headcount", "int"), f("channel", "str"), f("paper_serial", "str?"),
          f("proxy_authorisation_commitment", "commitment?"), f("cast_by", "str?"), f("cast_by_seal", "str?"),
          f("entered_by", "str?")),
    event("VoteChanged", "Vote", 2, f("ballot", "str"), f("voter", "str?"), f("receipt", "str"), f("nonce", "str?"),
          f("choice", "any?"), f("sealed_choice", "str?"), f("weight", "str"), f("headcount", "int"),
          f("channel", "str"), f("paper_serial", "str?"), f("proxy_authorisation_commitment", "commitment?"),
          f("cast_by", "str?"), f("cast_by_seal", "str?"), f("entered_by", "str?"),
          f("correction_reason_commitment", "commitment?")),
    event("VoteRefused", "Vote", 2, f("ballot", "str"), f("voter", "str?"), f("channel", "str"),
          f("paper_serial", "str?"), f("reason", "str"), f("entered_by", "str?")),
    event("ProxyAuthorised", "Proxy", 1, f("community", "str"), f("ballot", "str"), f("principal", "str?"),
          f("holder", "str?"), f("holder_seal", "str?"), f("source", "str"), f("paper_serial", "str?"),
          f("recorded_by", "str?")),
    event("ProxyAuthorisedAgain", "Proxy", 1, f("ballot", "str"), f("holder", "str?"), f("holder_seal", "str?"),
          f("source", "str"), f("paper_serial", "str?"), f("recorded_by", "str?")),
    event("ProxyRevoked", "Proxy", 1, f("ballot", "str")),
    event("ProxyHolderRegistered", "ProxyHolder", 1, f("community", "str"), f("ballot", "str"), f("holder", "str?")),
    event("ProxyTaken", "ProxyHolder", 1, f("ballot", "str"), f("held", "int")),
    event("ProxyReleased", "ProxyHolder", 1, f("ballot", "str"), f("held", "int")),
    PERSON_TEXTS_ERASED,  # its part of an erasure request (services/common/erasure.py)
)

_BY_KEY = {(e.type, e.version): e for e in EVENTS}
# Version 1 of the events version 2 extended (services/decisions/domain.py, `version_event`): the
# audit log keeps envelopes as they were published, so a log from before holds these.
EVENTS += (
    older(_BY_KEY["BallotConfigured", 2], 1, without=("proxy_limit",)),
    older(_BY_KEY["VoteCast", 2], 1, without=("sealed_choice", "cast_by", "cast_by_seal")),
    older(_BY_KEY["VoteChanged", 2], 1,
          without=("sealed_choice", "cast_by", "cast_by_seal", "correction_reason_commitment")),
    older(_BY_KEY["VoteRefused", 2], 1, without=("entered_by",)),
)


# ---- calls: the decisions service's RPC methods, by their arguments' names (calls.py) -------------------
@rpc_call(SOURCE, "prepare_ballot")
class PrepareBallot(RpcCall):
    actor: str
    community: str
    title: str
    scope: str
    scope_id: str | None = None
    description: str | None = None
    options: list[dict] | None = None
    category: str | None = None


@rpc_call(SOURCE, "configure_ballot")
class ConfigureBallot(RpcCall):
    actor: str
    community: str
    ballot: str
    configuration: dict


@rpc_call(SOURCE, "cast_vote")
class CastVote(RpcCall):
    actor: str
    community: str
    ballot: str
    choice: str | list | dict
    voter: str | None = None


@rpc_call(SOURCE, "enter_paper_ballot")
class EnterPaperBallot(RpcCall):
    actor: str
    community: str
    ballot: str
    voter: str
    choice: str | list | dict
    paper_serial: str
    correction_reason: str | None = None


@rpc_call(SOURCE, "authorise_proxy")
class AuthoriseProxy(RpcCall):
    actor: str
    community: str
    ballot: str
    holder: str


@rpc_call(SOURCE, "record_paper_proxy")
class RecordPaperProxy(RpcCall):
    actor: str
    community: str
    ballot: str
    principal: str
    holder: str
    paper_serial: str


@rpc_call(SOURCE, "revoke_proxy")
class RevokeProxy(RpcCall):
    actor: str
    community: str
    ballot: str


@rpc_call(SOURCE, "lodge_objection")
class LodgeObjection(RpcCall):
    actor: str
    community: str
    ballot: str
    text: str


@rpc_call(SOURCE, "rule_on_objection")
class RuleOnObjection(RpcCall):
    actor: str
    roles: list[str]
    community: str
    ballot: str
    objection: str
    upheld: bool
    reason: str


@rpc_call(SOURCE, "annul_ballot")
class AnnulBallot(RpcCall):
    actor: str
    community: str
    ballot: str
    reason: str


@rpc_call(SOURCE, "abandon_ballot")
class AbandonBallot(RpcCall):
    actor: str
    roles: list[str]
    community: str
    ballot: str
    reason: str


@rpc_call(SOURCE, "rerun_ballot")
class RerunBallot(RpcCall):
    actor: str
    community: str
    ballot: str


@rpc_call(SOURCE, "declare_emergency")
class DeclareEmergency(RpcCall):
    actor: str
    roles: list[str]
    community: str
    justification: str
    title: str | None = None
    scope: str = "community"
    scope_id: str | None = None
    category: str | None = None
    ballot: str | None = None


@rpc_call(SOURCE, "confirm_emergency")
class ConfirmEmergency(RpcCall):
    actor: str
    roles: list[str]
    community: str
    ballot: str


@rpc_call(SOURCE, "get_ballot")
class GetBallot(RpcCall):
    community: str
    ballot: str


@rpc_call(SOURCE, "list_ballots")
class ListBallots(RpcCall):
    community: str
    status: str | None = None


@rpc_call(SOURCE, "roll")
class Roll(RpcCall):
    community: str
    ballot: str


@rpc_call(SOURCE, "roll_preview")
class RollPreview(RpcCall):
    community: str
    ballot: str
    voting_unit: str


@rpc_call(SOURCE, "board")
class Board(RpcCall):
    community: str
    ballot: str
    receipt: str | None = None
    after: str | None = None
    limit: int = 1000


@rpc_call(SOURCE, "my_vote")
class MyVote(RpcCall):
    actor: str
    community: str
    ballot: str


@rpc_call(SOURCE, "my_proxy")
class MyProxy(RpcCall):
    actor: str
    community: str
    ballot: str


@rpc_call(SOURCE, "retally")
class Retally(RpcCall):
    ballot: str
