"""How a case ends: which stage event closes a case, with which outcome and reason.

Pure (no I/O, no framework), so the one service that records `CaseClosed` (actions) and the audit
replay, which must reproduce every outcome from the log alone without importing a stage service,
read the same table. A case closes once; whatever ending is recorded first stands.

| outcome | stage | what ends it |
|---|---|---|
| `expired` | proposal | `ProposalExpired`: the support window passed without enough support |
| `withdrawn` | proposal | `ProposalWithdrawn`: withdrawn by its author |
| `merged` | proposal | `ProposalMerged`: merged into another case (`merged_into`, the target's case) |
| `inadmissible` | proposal | `ProposalScreened` with `admissible: false` |
| `no_action` | deliberation | `DeliberationConcluded` with `outcome: "no_action"` |
| `rejected` | decision | `ResolutionFinal` with `outcome: "rejected"` |
| `annulled` | decision | `BallotAbandoned`: an annulled ballot that will not be re-run |
| `completed` | action | `EvaluationClosed` with `outcome: "accepted"` (the residents were satisfied) |
| `closed_by_lead` | any | the party-committee lead closed the case, with a stated reason |
"""
from __future__ import annotations

from dataclasses import dataclass

OUTCOMES = ("expired", "withdrawn", "merged", "inadmissible", "no_action", "rejected", "annulled", "completed",
            "closed_by_lead")
STAGES = ("proposal", "deliberation", "decision", "action")
# The triggering event types of each source (everything else closes nothing).
TRIGGERS = {
    "proposals": ("ProposalExpired", "ProposalWithdrawn", "ProposalMerged", "ProposalScreened"),
    "deliberation": ("DeliberationConcluded",),
    "decisions": ("ResolutionFinal", "BallotAbandoned"),
}


@dataclass(frozen=True)
class Ending:
    """What a `CaseClosed` says about the ending: the case, its outcome, the stage it ended in, the
    written reason (a commitment; its text lives in the triggering stage's store), the numbers
    behind it, and for a merge the case it continues in."""

    case: str
    outcome: str
    stage: str
    reason_commitment: str | None = None
    result: dict | None = None
    merged_into: str | None = None

    def as_data(self) -> dict:
        return {"outcome": self.outcome, "stage": self.stage, "reason_commitment": self.reason_commitment,
                "merged_into": self.merged_into}


def ending_of(env: dict) -> Ending | None:
    """The ending an event of another stage brings about, or None (it ends nothing)."""
    kind, d = env.get("type"), env.get("data") or {}
    if kind not in TRIGGERS.get(env.get("source"), ()):
        return None
    case = env.get("case") or env.get("aggregate", {}).get("id")
    if not case:
        return None
    if kind == "ProposalExpired":
        return Ending(case, "expired", "proposal", result={"deadline": d.get("deadline")})
    if kind == "ProposalWithdrawn":
        return Ending(case, "withdrawn", "proposal")
    if kind == "ProposalMerged":
        # A proposal's case is the proposal itself, so the target proposal names the target case.
        return Ending(case, "merged", "proposal", merged_into=d.get("into"))
    if kind == "ProposalScreened":
        if d.get("admissible") is False:
            return Ending(case, "inadmissible", "proposal", reason_commitment=d.get("reason_commitment"))
        return None
    if kind == "DeliberationConcluded":
        if d.get("outcome") == "no_action":
            return Ending(case, "no_action", "deliberation", reason_commitment=d.get("reason_commitment"),
                          result={"consultation": d.get("consultation"), "meeting": d.get("meeting"),
                                  "minutes": d.get("minutes")})
        return None
    if kind == "ResolutionFinal":
        if d.get("outcome") == "rejected":
            return Ending(case, "rejected", "decision", result=d.get("summary"))
        return None
    if kind == "BallotAbandoned":
        return Ending(case, "annulled", "decision", reason_commitment=d.get("reason_commitment"),
                      result={"ballot": env.get("aggregate", {}).get("id"), "annulment": d.get("annulment")})
    return None


def completed(case: str, result_commitment: str | None, tally: dict | None) -> Ending:
    """A plan whose residents' evaluation was accepted: the case ends completed, its reason the
    disclosed result, its numbers the last evaluation's tally."""
    return Ending(case, "completed", "action", reason_commitment=result_commitment, result=tally)


def closed_by_lead(case: str, stage: str, reason_commitment: str) -> Ending:
    """The party-committee lead closes a case outright; the reason is required."""
    if not reason_commitment:
        raise ValueError("a case closed by the party-committee lead needs its reason")
    return Ending(case, "closed_by_lead", stage if stage in STAGES else "proposal",
                  reason_commitment=reason_commitment)
