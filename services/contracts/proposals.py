"""Event contracts of the `proposals` source: 提议 proposals and their supports.

Prose: `services/contracts/prose/proposals.md`; the generated page: `docs/events/proposals.md`.
"""
from __future__ import annotations

from .calls import RpcCall, rpc_call
from .communities import SCOPES  # noqa: F401 - the gateway reads them here
from .schema import event, f
from .erasure import PERSON_TEXTS_ERASED

# What the gateway validates and lists (services/proposals/domain.py re-exports them).
TITLE_MAX = 120
BODY_MAX = 5000
REASON_MAX = 2000

DRAFT = "draft"
SUBMITTED = "submitted"
INADMISSIBLE = "inadmissible"
COLLECTING = "collecting"
QUALIFIED = "qualified"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"
MERGED = "merged"
STATUSES = (DRAFT, SUBMITTED, INADMISSIBLE, COLLECTING, QUALIFIED, EXPIRED, WITHDRAWN, MERGED)
SCREENED = "screened"  # admissible; collection opens in the same command, so it is never stored alone

SOURCE = "proposals"

EVENTS = (
    event("ProposalDrafted", "Proposal", 1, f("community", "str"), f("author", "str"), f("scope", "str"),
          f("scope_id", "str"), f("category", "str"), f("title_commitment", "commitment"),
          f("body_commitment", "commitment"), f("original_case", "str?", required=False)),
    event("ProposalSubmitted", "Proposal", 1),
    event("ProposalScreened", "Proposal", 1, f("admissible", "bool"), f("reason_commitment", "commitment?"),
          f("category", "str")),
    event("ProposalCollectionOpened", "Proposal", 1, f("support_per", "str"), f("unit", "str"),
          f("threshold_rule", "object"), f("denominator", "int"), f("threshold", "int"), f("deadline", "str")),
    event("ProposalQualified", "Proposal", 1, f("proposal", "str"), f("scope", "str"), f("scope_id", "str"),
          f("category", "str"), f("title_commitment", "commitment"), f("body_commitment", "commitment"),
          f("author", "str"), f("supports", "int"), f("threshold", "int"), f("unit", "str"),
          f("denominator", "int")),
    event("ProposalExpired", "Proposal", 1, f("deadline", "str")),
    event("ProposalWithdrawn", "Proposal", 1),
    event("ProposalMerged", "Proposal", 1, f("into", "str")),
    event("ProposalMergeReceived", "Proposal", 1, f("merged_from", "str"), f("carried", "int")),
    event("SupportGiven", "Support", 1, f("community", "str"), f("proposal", "str"), f("unit", "str"),
          f("person", "str"), f("household", "str?"), f("carried_from", "str?")),
    event("SupportGivenAgain", "Support", 1, f("proposal", "str"), f("unit", "str"), f("person", "str"),
          f("household", "str?"), f("carried_from", "str?")),
    event("SupportWithdrawn", "Support", 1, f("proposal", "str"), f("unit", "str"), f("person", "str"),
          f("household", "str?")),
    PERSON_TEXTS_ERASED,
)


# ---- calls: the proposals service's RPC methods, by their arguments' names (calls.py) -------------------
@rpc_call(SOURCE, "draft")
class Draft(RpcCall):
    actor: str
    community: str
    title: str
    body: str
    category: str
    scope: str
    scope_id: str | None = None


@rpc_call(SOURCE, "submit")
class Submit(RpcCall):
    actor: str
    community: str
    proposal: str


@rpc_call(SOURCE, "screen")
class Screen(RpcCall):
    actor: str
    community: str
    proposal: str
    admissible: bool
    reason: str | None = None
    category: str | None = None


@rpc_call(SOURCE, "support")
class Support(RpcCall):
    actor: str
    community: str
    proposal: str


@rpc_call(SOURCE, "withdraw_support")
class WithdrawSupport(RpcCall):
    actor: str
    community: str
    proposal: str


@rpc_call(SOURCE, "withdraw")
class Withdraw(RpcCall):
    actor: str
    community: str
    proposal: str


@rpc_call(SOURCE, "merge")
class Merge(RpcCall):
    actor: str
    community: str
    proposal: str
    into: str


@rpc_call(SOURCE, "erase_person")
class ErasePerson(RpcCall):
    actor: str
    community: str
    person: str


@rpc_call(SOURCE, "get_proposal")
class GetProposal(RpcCall):
    viewer: str
    community: str
    proposal: str


@rpc_call(SOURCE, "list_proposals")
class ListProposals(RpcCall):
    viewer: str
    community: str
    status: str | None = None
    category: str | None = None
    scope: str | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0
