"""Event contracts of the `proposals` source: 提议 proposals and their supports.

Prose: `services/contracts/prose/proposals.md`; the generated page: `docs/events/proposals.md`.
"""
from __future__ import annotations

from .schema import event, f
from .communities import SCOPES  # noqa: F401 - the gateway reads them here
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
