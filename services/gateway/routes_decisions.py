"""Decision routes (决策): ballots, votes, the bulletin board, objections, emergencies."""
from __future__ import annotations

from rules import ART_278

from . import schema as S
from .router import Call, route

TAG = "decisions"
C = "/api/v1/communities/{community}"
B = C + "/ballots/{ballot}"
ORGANISERS = ("community_worker", "party_lead")

OPTION = S.obj(["title"], id={"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}, title=S.text(200),
               description=S.text(5000))
OPTIONS = {"type": "array", "items": OPTION, "maxItems": 30}
SCOPE = {"type": "string", "enum": ["community", "compound", "building"]}
PRESET = {"type": "string", "enum": ["owners_ordinary", "owners_major", "residents_meeting", "council", "generic"]}
METHOD = {"type": "string", "enum": ["majority", "supermajority", "consent", "approval", "schulze", "irv", "score"]}
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


def roles_of(c: Call) -> list[str]:
    return [r["role"] for r in c.principal.get("roles", [])]


@route("POST", C + "/ballots", summary="Prepare a ballot for a simple matter (without a consultation)", tag=TAG,
       roles=ORGANISERS, status=201,
       body=S.obj(["title", "scope"], title=S.text(200), description=S.text(5000), options=OPTIONS, scope=SCOPE,
                  scope_id=S.uuid_str(nullable=True), category=CATEGORY))
def prepare_ballot(c: Call):
    b = c.body
    return c.call("decisions", "prepare_ballot", c.actor, c.community, b["title"], b["scope"], b.get("scope_id"),
                  b.get("description"), b.get("options"), b.get("category"))


@route("GET", C + "/ballots", summary="Ballots of the community, latest first", tag=TAG,
       query={"status": S.text(24)})
def list_ballots(c: Call):
    return c.call("decisions", "list_ballots", c.community, c.query.get("status"))


@route("GET", B, summary="A ballot: configuration, roll hash, result, objections", tag=TAG)
def get_ballot(c: Call):
    return c.call("decisions", "get_ballot", c.community, c.params["ballot"])


@route("PUT", B + "/configuration",
       summary="Configure a ballot before it opens: rule, voting unit, times, secrecy (this is the notice)",
       tag=TAG, roles=ORGANISERS,
       body=S.obj(["preset", "voting_unit", "opens_at", "closes_at"], preset=PRESET, method=METHOD,
                  params={"type": "object", "description": "rule parameters, e.g. {\"quorum_heads\": \"1/2\"}"},
                  voting_unit={"type": "string", "enum": ["owner", "resident", "household", "council"]},
                  opens_at=TIME, closes_at=TIME, secret={"type": "boolean"}, changeable={"type": "boolean"},
                  options=OPTIONS))
def configure_ballot(c: Call):
    return c.call("decisions", "configure_ballot", c.actor, c.community, c.params["ballot"], c.body)


@route("GET", B + "/roll", summary="The voter roll frozen at the opening, with its hash", tag=TAG)
def roll(c: Call):
    return c.call("decisions", "roll", c.community, c.params["ballot"])


@route("GET", B + "/roll-preview", summary="Who would stand on the roll if it were frozen now (it is frozen at the "
                                           "opening): the opening's own rule over today's directory",
       tag=TAG, roles=ORGANISERS,
       query={"voting_unit": {"type": "string", "enum": ["owner", "resident", "household", "council"]}})
def roll_preview(c: Call):
    return c.call("decisions", "roll_preview", c.community, c.params["ballot"], c.query.get("voting_unit") or "owner")


@route("POST", B + "/votes", summary="Vote (again, if the ballot allows changes), or with `voter` vote as that "
                                     "voter's proxy on an authorisation they gave (see /proxies); returns the receipt",
       tag=TAG, status=201, body=S.obj(["choice"], choice=CHOICE, voter=PERSON))
def cast_vote(c: Call):
    b = c.body
    return c.call("decisions", "cast_vote", c.actor, c.community, c.params["ballot"], b["choice"], b.get("voter"))


@route("GET", B + "/my-vote", summary="The caller's standing vote and its receipt (on a secret ballot with the "
                                      "salts of its seals, and who cast it if a proxy did)", tag=TAG)
def my_vote(c: Call):
    return c.call("decisions", "my_vote", c.actor, c.community, c.params["ballot"])


@route("POST", B + "/paper-ballots", summary="Enter a paper ballot, with its serial; a second one for the same voter "
                                             "only as a correction, with a reason", tag=TAG,
       roles=("community_worker",), status=201,
       body=S.obj(["voter", "choice", "paper_serial"], voter=PERSON, choice=CHOICE, paper_serial=S.text(64),
                  correction_reason=S.text(5000)))
def enter_paper_ballot(c: Call):
    b = c.body
    return c.call("decisions", "enter_paper_ballot", c.actor, c.community, c.params["ballot"], b["voter"],
                  b["choice"], b["paper_serial"], b.get("correction_reason"))


@route("POST", B + "/proxies", summary="Authorise a person to vote for you on this ballot (one at a time; revocable "
                                      "until they have voted)", tag=TAG, status=201,
       body=S.obj(["holder"], holder=S.uuid_str()))
def authorise_proxy(c: Call):
    return c.call("decisions", "authorise_proxy", c.actor, c.community, c.params["ballot"], c.body["holder"])


@route("GET", B + "/proxies/mine", summary="The proxy authorisation you gave on this ballot", tag=TAG)
def my_proxy(c: Call):
    return c.call("decisions", "my_proxy", c.actor, c.community, c.params["ballot"])


@route("DELETE", B + "/proxies/mine", summary="Revoke the proxy authorisation you gave, before the proxy has voted",
       tag=TAG)
def revoke_proxy(c: Call):
    return c.call("decisions", "revoke_proxy", c.actor, c.community, c.params["ballot"])


@route("POST", B + "/paper-proxies", summary="Record a paper proxy authorisation, with its serial", tag=TAG,
       roles=("community_worker",), status=201,
       body=S.obj(["principal", "holder", "paper_serial"], principal=PERSON, holder=S.uuid_str(),
                  paper_serial=S.text(64)))
def record_paper_proxy(c: Call):
    b = c.body
    return c.call("decisions", "record_paper_proxy", c.actor, c.community, c.params["ballot"], b["principal"],
                  b["holder"], b["paper_serial"])


@route("GET", B + "/board", summary="The public bulletin board: every standing vote's receipt (with choices "
                                    "once voting has closed)", tag=TAG,
       query={"receipt": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
              "after": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
              "limit": {"type": "integer", "minimum": 1, "maximum": 1000}})
def board(c: Call):
    q = c.query
    return c.call("decisions", "board", c.community, c.params["ballot"], q.get("receipt"), q.get("after"),
                  q.get("limit", 1000))


@route("POST", B + "/objections", summary="Lodge an objection during the publicity period", tag=TAG, status=201,
       body=S.obj(["text"], text=S.text(5000)))
def lodge_objection(c: Call):
    return c.call("decisions", "lodge_objection", c.actor, c.community, c.params["ballot"], c.body["text"])


@route("POST", B + "/objections/{objection}/ruling",
       summary="Rule on an objection (the convener, or the party-committee lead); upheld annuls the resolution",
       tag=TAG, body=S.obj(["upheld", "reason"], upheld={"type": "boolean"}, reason=S.text(5000)))
def rule_on_objection(c: Call):
    return c.call("decisions", "rule_on_objection", c.actor, roles_of(c), c.community, c.params["ballot"],
                  c.params["objection"], c.body["upheld"], c.body["reason"])


@route("POST", B + "/annulment", summary="Annul a ballot before its resolution is final, with a reason", tag=TAG,
       roles=("community_worker",), body=S.obj(["reason"], reason=S.text(5000)))
def annul_ballot(c: Call):
    return c.call("decisions", "annul_ballot", c.actor, c.community, c.params["ballot"], c.body["reason"])


@route("POST", B + "/abandonment", summary="Close an annulled ballot without a re-run, with a reason: its case ends "
                                          "as annulled", tag=TAG, roles=ORGANISERS,
       body=S.obj(["reason"], reason=S.text(5000)))
def abandon_ballot(c: Call):
    return c.call("decisions", "abandon_ballot", c.actor, roles_of(c), c.community, c.params["ballot"],
                  c.body["reason"])


@route("POST", B + "/reruns", summary="Re-run an annulled ballot as a new ballot of the same case", tag=TAG,
       roles=ORGANISERS, status=201)
def rerun_ballot(c: Call):
    return c.call("decisions", "rerun_ballot", c.actor, c.community, c.params["ballot"])


@route("POST", C + "/emergencies",
       summary="Declare an emergency repair (art. 281 ¶2) with its justification, instead of a vote", tag=TAG,
       roles=ORGANISERS, status=201,
       body=S.obj(["justification"], justification=S.text(5000), title=S.text(200), scope=SCOPE,
                  scope_id=S.uuid_str(nullable=True), category=CATEGORY, ballot=S.uuid_str()))
def declare_emergency(c: Call):
    b = c.body
    return c.call("decisions", "declare_emergency", c.actor, roles_of(c), c.community, b["justification"],
                  b.get("title"), b.get("scope", "community"), b.get("scope_id"), b.get("category"), b.get("ballot"))


@route("POST", C + "/emergencies/{ballot}/confirmation",
       summary="Confirm an emergency: the community worker and the party-committee lead declare it together",
       tag=TAG, roles=ORGANISERS)
def confirm_emergency(c: Call):
    return c.call("decisions", "confirm_emergency", c.actor, roles_of(c), c.community, c.params["ballot"])
