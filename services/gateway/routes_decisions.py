"""Decision routes (决策): ballots, votes, the bulletin board, objections, emergencies."""
from __future__ import annotations

from rules import ART_278
from rules.model import METHODS, PRESETS
from services.contracts import decisions
from services.contracts.communities import SCOPES

from . import schema as S
from .router import Call, route

TAG = "decisions"
C = "/api/v1/communities/{community}"
B = C + "/ballots/{ballot}"
ORGANISERS = ("community_worker", "party_lead")

OPTION = S.obj(["title"], id={"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}, title=S.text(200),
               description=S.text(5000))
OPTIONS = {"type": "array", "items": OPTION, "maxItems": 30}
SCOPE = {"type": "string", "enum": list(SCOPES)}
PRESET = {"type": "string", "enum": list(PRESETS)}
METHOD = {"type": "string", "enum": list(METHODS)}
TIME = {"type": "string", "format": "date-time", "maxLength": 40,
        "description": "an ISO-8601 time with its zone, e.g. 2026-05-01T09:00:00+08:00"}
CATEGORY = dict(S.text(40), description=(
    "what the ballot decides: a free name (drainage, green_space, ...), or one of the matters of PRC Civil Code "
    "art. 278, which cannot be configured or opened on a weaker rule than the law's: "
    + "; ".join(f"{m.category} (item {m.item}, {m.en}: at least {m.minimum})" for m in ART_278.values())),
    examples=list(ART_278))
PERSON = {"type": "string", "minLength": 1, "maxLength": 64}
CHOICE = {"type": ["string", "array", "object"],
          "description": "agree/disagree/abstain (a motion; block under consent), an option id (choose one), "
                         "a list of option ids (approval; a ranking for schulze/irv), or {option id: score}"}


# ---- what the routes answer (services/decisions/application.py); the gateway adds `<key>_name` beside person ids
STRING = {"type": "string"}
MAYBE = {"type": ["string", "null"]}
MAYBE_INT = {"type": ["integer", "null"]}
FLAG = {"type": "boolean"}
ID = {"type": "object", "required": ["id"], "properties": {"id": STRING}, "description": "the ballot's id"}
STATUS = {"type": "string", "enum": list(decisions.STATUSES)}
WEIGHT = {"type": "string", "description": "a voter's weight (an owner's area), a decimal"}
CHOSEN = {"type": ["string", "array", "object", "null"], "description": "a choice as recorded (see `choice` of a vote)"}
BALLOT_OPTION = {"type": "object", "required": ["id"], "description": "an option, its texts joined in (null if erased)",
                 "properties": {"id": STRING, "title": MAYBE, "description": MAYBE, "title_commitment": MAYBE,
                                "description_commitment": MAYBE}}
RULE = {"type": "object", "required": ["preset", "method"], "properties": {
    "preset": STRING, "method": STRING, "params": {"type": "object", "additionalProperties": True}}}
CONFIGURATION = {"type": ["object", "null"], "description": "the rule, voting unit, times and secrecy (null before)",
                 "required": ["rule", "voting_unit", "options", "opens_at", "closes_at", "secret", "changeable"],
                 "properties": {
                     "rule": RULE, "voting_unit": STRING, "options": {"type": "array", "items": BALLOT_OPTION},
                     "motion": dict(BALLOT_OPTION, type=["object", "null"],
                                    description="a motion's subject: agree / disagree / abstain on this option"),
                     "opens_at": STRING, "closes_at": STRING, "secret": FLAG, "changeable": FLAG,
                     "notice_days": {"type": "integer"}, "publicity_days": {"type": "integer"},
                     "proxy_limit": MAYBE_INT}}
RESULT = {"type": ["object", "null"], "description": "the count with every number behind it (rules.Result), null "
                                                     "before; areas are decimal strings",
          "properties": {
              "preset": STRING, "method": STRING, "outcome": STRING, "winner": MAYBE, "weighting": STRING,
              "options": {"type": "array", "items": STRING}, "quorum_met": FLAG, "approval_met": FLAG,
              "failed": {"type": "array", "items": STRING}, "ballots": {"type": "integer"},
              "eligible_area": STRING, "eligible_heads": {"type": "integer"}, "participating_area": STRING,
              "participating_heads": {"type": "integer"}, "agreeing_area": MAYBE, "agreeing_heads": MAYBE_INT,
              "quorum": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
              "approval": {"type": "array", "items": {"type": "object", "additionalProperties": True}}}}
OBJECTION = {"type": "object", "required": ["id", "lodged_by", "lodged_at"], "properties": {
    "id": STRING, "lodged_by": STRING, "lodged_by_name": MAYBE, "lodged_at": STRING, "text": MAYBE,
    "upheld": {"type": ["boolean", "null"]}, "reason": MAYBE, "ruled_by": MAYBE, "ruled_by_name": MAYBE,
    "ruled_at": MAYBE}}
CORRECTION = {"type": "object", "required": ["receipt", "recorded_at"], "properties": {
    "receipt": STRING, "paper_serial": MAYBE, "replaces_serial": MAYBE, "reason": MAYBE, "reason_commitment": MAYBE,
    "entered_by": MAYBE, "entered_by_name": MAYBE, "recorded_at": STRING}}
BALLOT = {"type": "object", "description": "a ballot: its texts, configuration, roll hash, turnout (null on a secret "
                                           "ballot until counted), result, objections, annulment, emergency",
          "required": ["id", "community", "case", "status", "options", "scope", "configuration", "revealed",
                       "result", "objections", "corrections"],
          "properties": {
              "id": STRING, "community": STRING, "case": MAYBE, "status": STATUS, "title": MAYBE,
              "title_commitment": MAYBE, "description": MAYBE, "options": {"type": "array", "items": BALLOT_OPTION},
              "scope": SCOPE, "scope_id": MAYBE, "category": MAYBE, "consultation": MAYBE, "proposal": MAYBE,
              "convener": MAYBE, "convener_name": MAYBE,
              "suggested_rule": {"type": ["string", "object", "null"],
                                 "description": "a preset name, or a re-run's whole rule"},
              "configuration": CONFIGURATION, "not_opened_reason": MAYBE, "roll_size": MAYBE_INT, "roll_hash": MAYBE,
              "voted": MAYBE_INT, "revealed": FLAG, "closed_at": MAYBE, "result": RESULT,
              "adopted_option": {"type": ["object", "null"], "properties": {"id": STRING, "title": MAYBE}},
              "publicity_until": MAYBE, "outcome": MAYBE, "objections": {"type": "array", "items": OBJECTION},
              "annulment": {"type": ["object", "null"], "properties": {
                  "by": {"type": "string", "enum": list(decisions.ANNULLED_BY)}, "objection": STRING,
                  "reason": MAYBE, "reason_commitment": STRING}},
              "emergency": {"type": ["object", "null"], "properties": {
                  "justification": MAYBE, "justification_commitment": STRING, "declared_by": STRING,
                  "declared_as": STRING, "confirmed_by": STRING, "confirmed_by_name": MAYBE, "confirmed_as": STRING}},
              "rerun_of": MAYBE, "rerun": MAYBE,
              "abandoned": {"type": ["object", "null"], "properties": {
                  "reason": MAYBE, "reason_commitment": STRING, "annulment": MAYBE}},
              "corrections": {"type": "array", "items": CORRECTION}}}
BALLOT_ROW = {"type": "object", "required": ["id", "status"], "properties": {
    "id": STRING, "case": MAYBE, "status": STATUS, "title": MAYBE, "preset": MAYBE, "voting_unit": MAYBE,
    "secret": {"type": ["boolean", "null"]}, "opens_at": MAYBE, "closes_at": MAYBE, "roll_size": MAYBE_INT,
    "voted": {"type": ["integer", "null"], "description": "null on a secret ballot until counted"},
    "outcome": MAYBE, "publicity_until": MAYBE}}
ROLL_ENTRY = {"type": "object", "required": ["voter", "weight", "headcount"], "properties": {
    "voter": {"type": "string", "description": "a person, or a household under one household one vote"},
    "voter_name": MAYBE, "weight": WEIGHT, "headcount": {"type": "integer"},
    "units": {"type": "array", "items": STRING}}}
ROLL = {"type": "object", "required": ["ballot", "roll_hash", "roll"], "properties": {
    "ballot": STRING, "roll_hash": STRING, "roll": {"type": "array", "items": ROLL_ENTRY},
    "voting_unit": STRING, "preview": FLAG}}
RECEIPT = {"type": "object", "required": ["ballot", "receipt", "version", "channel"], "properties": {
    "ballot": STRING, "receipt": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "version": {"type": "integer"},
    "channel": {"type": "string", "enum": list(decisions.CHANNELS)}, "choice": CHOSEN}}
MY_VOTE = {"type": "object", "required": [*RECEIPT["required"], "choice"], "properties": dict(
    RECEIPT["properties"], paper_serial=MAYBE, cast_by=dict(MAYBE, description="the proxy who cast it"),
    cast_by_name=MAYBE, seals={"type": "object", "description": "a secret ballot's seals with their salts",
                               "properties": {"sealed_choice": STRING, "salt": STRING, "cast_by_seal": MAYBE,
                                              "cast_by_salt": MAYBE}})}
PROXY = {"type": "object", "required": ["ballot", "source", "active", "used"], "properties": {
    "ballot": STRING, "holder": MAYBE, "holder_name": MAYBE,
    "source": {"type": "string", "enum": list(decisions.PROXY_SOURCES)},
    "paper_serial": MAYBE, "active": FLAG, "used": dict(FLAG, description="the holder has voted on it")}}
BOARD = {"type": "object", "required": ["ballot", "status", "revealed", "listed", "options", "entries"],
         "properties": {
             "ballot": STRING, "status": STATUS, "revealed": dict(FLAG, description="choices are shown"),
             "listed": dict(FLAG, description="receipts are listed (a secret ballot's once counted)"),
             "options": {"type": "array", "items": {"type": "object", "properties": {"id": STRING, "title": MAYBE}}},
             "entries": {"type": "array", "items": {"type": "object", "required": ["receipt"], "properties": {
                 "receipt": STRING, "choice": CHOSEN, "weight": WEIGHT, "headcount": {"type": "integer"},
                 "channel": STRING, "correction": {"type": "object", "properties": {"reason": MAYBE}}}}}}}
LODGED = {"type": "object", "required": ["objection", "ballot", "publicity_until"], "properties": {
    "objection": STRING, "ballot": STRING, "publicity_until": STRING}}

def roles_of(c: Call) -> list[str]:
    return [r["role"] for r in c.principal.get("roles", [])]


@route("POST", C + "/ballots", summary="Prepare a ballot for a simple matter (without a consultation)", tag=TAG,
       roles=ORGANISERS, status=201,
       body=S.obj(["title", "scope"], title=S.text(200), description=S.text(5000), options=OPTIONS, scope=SCOPE,
                  scope_id=S.uuid_str(nullable=True), category=CATEGORY), response=ID)
def prepare_ballot(c: Call):
    b = c.body
    return c.send(decisions.PrepareBallot(actor=c.actor, community=c.community, title=b["title"], scope=b["scope"],
                                          scope_id=b.get("scope_id"), description=b.get("description"),
                                          options=b.get("options"), category=b.get("category")))


@route("GET", C + "/ballots", summary="Ballots of the community, latest first", tag=TAG,
       query={"status": S.text(24)}, response={"type": "array", "items": BALLOT_ROW})
def list_ballots(c: Call):
    return c.send(decisions.ListBallots(community=c.community, status=c.query.get("status")))


@route("GET", B, summary="A ballot: configuration, roll hash, result, objections", tag=TAG, response=BALLOT)
def get_ballot(c: Call):
    return c.send(decisions.GetBallot(community=c.community, ballot=c.params["ballot"]))


@route("PUT", B + "/configuration",
       summary="Configure a ballot before it opens: rule, voting unit, times, secrecy (this is the notice)",
       tag=TAG, roles=ORGANISERS,
       body=S.obj(["preset", "voting_unit", "opens_at", "closes_at"], preset=PRESET, method=METHOD,
                  params={"type": "object", "description": "rule parameters, e.g. {\"quorum_heads\": \"1/2\"}"},
                  voting_unit={"type": "string", "enum": list(decisions.VOTING_UNITS)},
                  opens_at=TIME, closes_at=TIME, secret={"type": "boolean"}, changeable={"type": "boolean"},
                  options=OPTIONS), response=BALLOT)
def configure_ballot(c: Call):
    return c.send(decisions.ConfigureBallot(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                            configuration=c.body))


@route("GET", B + "/roll", summary="The voter roll frozen at the opening, with its hash", tag=TAG, response=ROLL)
def roll(c: Call):
    return c.send(decisions.Roll(community=c.community, ballot=c.params["ballot"]))


@route("GET", B + "/roll-preview", summary="Who would stand on the roll if it were frozen now (it is frozen at the "
                                           "opening): the opening's own rule over today's directory",
       tag=TAG, roles=ORGANISERS,
       query={"voting_unit": {"type": "string", "enum": list(decisions.VOTING_UNITS)}}, response=ROLL)
def roll_preview(c: Call):
    return c.send(decisions.RollPreview(community=c.community, ballot=c.params["ballot"],
                                        voting_unit=c.query.get("voting_unit") or "owner"))


@route("POST", B + "/votes", summary="Vote (again, if the ballot allows changes), or with `voter` vote as that "
                                     "voter's proxy on an authorisation they gave (see /proxies); returns the receipt",
       tag=TAG, status=201, body=S.obj(["choice"], choice=CHOICE, voter=PERSON), response=RECEIPT)
def cast_vote(c: Call):
    b = c.body
    return c.send(decisions.CastVote(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                     choice=b["choice"], voter=b.get("voter")))


@route("GET", B + "/my-vote", summary="The caller's standing vote and its receipt (on a secret ballot with the "
                                      "salts of its seals, and who cast it if a proxy did)", tag=TAG, response=MY_VOTE)
def my_vote(c: Call):
    return c.send(decisions.MyVote(actor=c.actor, community=c.community, ballot=c.params["ballot"]))


@route("POST", B + "/paper-ballots", summary="Enter a paper ballot, with its serial; a second one for the same voter "
                                             "only as a correction, with a reason", tag=TAG,
       roles=("community_worker",), status=201,
       body=S.obj(["voter", "choice", "paper_serial"], voter=PERSON, choice=CHOICE, paper_serial=S.text(64),
                  correction_reason=S.text(5000)), response=RECEIPT)
def enter_paper_ballot(c: Call):
    b = c.body
    return c.send(decisions.EnterPaperBallot(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                             voter=b["voter"], choice=b["choice"], paper_serial=b["paper_serial"],
                                             correction_reason=b.get("correction_reason")))


@route("POST", B + "/proxies", summary="Authorise a person to vote for you on this ballot (one at a time; revocable "
                                      "until they have voted)", tag=TAG, status=201,
       body=S.obj(["holder"], holder=S.uuid_str()), response=PROXY)
def authorise_proxy(c: Call):
    return c.send(decisions.AuthoriseProxy(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                           holder=c.body["holder"]))


@route("GET", B + "/proxies/mine", summary="The proxy authorisation you gave on this ballot", tag=TAG, response=PROXY)
def my_proxy(c: Call):
    return c.send(decisions.MyProxy(actor=c.actor, community=c.community, ballot=c.params["ballot"]))


@route("DELETE", B + "/proxies/mine", summary="Revoke the proxy authorisation you gave, before the proxy has voted",
       tag=TAG, response=PROXY)
def revoke_proxy(c: Call):
    return c.send(decisions.RevokeProxy(actor=c.actor, community=c.community, ballot=c.params["ballot"]))


@route("POST", B + "/paper-proxies", summary="Record a paper proxy authorisation, with its serial", tag=TAG,
       roles=("community_worker",), status=201,
       body=S.obj(["principal", "holder", "paper_serial"], principal=PERSON, holder=S.uuid_str(),
                  paper_serial=S.text(64)), response=PROXY)
def record_paper_proxy(c: Call):
    b = c.body
    return c.send(decisions.RecordPaperProxy(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                             principal=b["principal"], holder=b["holder"],
                                             paper_serial=b["paper_serial"]))


@route("GET", B + "/board", summary="The public bulletin board: every standing vote's receipt (with choices "
                                    "once voting has closed)", tag=TAG,
       query={"receipt": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
              "after": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
              "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}, response=BOARD)
def board(c: Call):
    q = c.query
    return c.send(decisions.Board(community=c.community, ballot=c.params["ballot"], receipt=q.get("receipt"),
                                  after=q.get("after"), limit=q.get("limit", 1000)))


@route("POST", B + "/objections", summary="Lodge an objection during the publicity period", tag=TAG, status=201,
       body=S.obj(["text"], text=S.text(5000)), response=LODGED)
def lodge_objection(c: Call):
    return c.send(decisions.LodgeObjection(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                           text=c.body["text"]))


@route("POST", B + "/objections/{objection}/ruling",
       summary="Rule on an objection (the convener, or the party-committee lead); upheld annuls the resolution",
       tag=TAG, body=S.obj(["upheld", "reason"], upheld={"type": "boolean"}, reason=S.text(5000)), response=BALLOT)
def rule_on_objection(c: Call):
    return c.send(decisions.RuleOnObjection(actor=c.actor, roles=roles_of(c), community=c.community,
                                            ballot=c.params["ballot"], objection=c.params["objection"],
                                            upheld=c.body["upheld"], reason=c.body["reason"]))


@route("POST", B + "/annulment", summary="Annul a ballot before its resolution is final, with a reason", tag=TAG,
       roles=("community_worker",), body=S.obj(["reason"], reason=S.text(5000)), response=BALLOT)
def annul_ballot(c: Call):
    return c.send(decisions.AnnulBallot(actor=c.actor, community=c.community, ballot=c.params["ballot"],
                                        reason=c.body["reason"]))


@route("POST", B + "/abandonment", summary="Close an annulled ballot without a re-run, with a reason: its case ends "
                                          "as annulled", tag=TAG, roles=ORGANISERS,
       body=S.obj(["reason"], reason=S.text(5000)), response=BALLOT)
def abandon_ballot(c: Call):
    return c.send(decisions.AbandonBallot(actor=c.actor, roles=roles_of(c), community=c.community,
                                          ballot=c.params["ballot"], reason=c.body["reason"]))


@route("POST", B + "/reruns", summary="Re-run an annulled ballot as a new ballot of the same case", tag=TAG,
       roles=ORGANISERS, status=201, response=ID)
def rerun_ballot(c: Call):
    return c.send(decisions.RerunBallot(actor=c.actor, community=c.community, ballot=c.params["ballot"]))


@route("POST", C + "/emergencies",
       summary="Declare an emergency repair (art. 281 ¶2) with its justification, instead of a vote", tag=TAG,
       roles=ORGANISERS, status=201,
       body=S.obj(["justification"], justification=S.text(5000), title=S.text(200), scope=SCOPE,
                  scope_id=S.uuid_str(nullable=True), category=CATEGORY, ballot=S.uuid_str()), response=ID)
def declare_emergency(c: Call):
    b = c.body
    return c.send(decisions.DeclareEmergency(actor=c.actor, roles=roles_of(c), community=c.community,
                                             justification=b["justification"], title=b.get("title"),
                                             scope=b.get("scope", "community"), scope_id=b.get("scope_id"),
                                             category=b.get("category"), ballot=b.get("ballot")))


@route("POST", C + "/emergencies/{ballot}/confirmation",
       summary="Confirm an emergency: the community worker and the party-committee lead declare it together",
       tag=TAG, roles=ORGANISERS, response=BALLOT)
def confirm_emergency(c: Call):
    return c.send(decisions.ConfirmEmergency(actor=c.actor, roles=roles_of(c), community=c.community,
                                             ballot=c.params["ballot"]))
