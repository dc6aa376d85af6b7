"""The residents' evaluation of a plan's result (满意度评议): whether it reopens the plan.

Fair linkage: the plan is judged on those who answered, not on everyone asked, because silence is
not dissatisfaction; but a verdict from a handful of answers is no verdict either, so a minimum
share of the residents asked must have answered. Exactly:

- response share = respondents / residents asked; met when it is at least the minimum;
- unsatisfied share = unsatisfied / respondents; passes when it is strictly more than the threshold;
- met and passes: ``reopened``; met and not passing: ``accepted``;
- not met in the first window: ``extended`` (once); not met after the extension: ``accepted``,
  with ``response_share_met`` false in the record, since too few answers cannot reopen a plan.

Pure: fractions as strings like "1/3", counts as ints, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .numbers import parse_fraction

REOPENED, ACCEPTED, EXTENDED = "reopened", "accepted", "extended"


@dataclass(frozen=True)
class EvaluationJudgement:
    outcome: str                 # reopened | accepted | extended
    respondents: int
    denominator: int             # the residents asked
    response_share: str          # "respondents/denominator", unreduced, so a reader sees both numbers
    response_share_met: bool
    unsatisfied_share: str       # "unsatisfied/respondents"

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "respondents": self.respondents, "denominator": self.denominator,
                "response_share": self.response_share, "response_share_met": self.response_share_met,
                "unsatisfied_share": self.unsatisfied_share}


def judge_evaluation(*, unsatisfied: int, respondents: int, denominator: int, threshold: str,
                     min_response_share: str, extended: bool) -> EvaluationJudgement:
    if not 0 <= unsatisfied <= respondents <= denominator:
        raise ValueError(f"inconsistent counts: {unsatisfied} unsatisfied of {respondents} answers "
                         f"of {denominator} asked")
    share_needed = parse_fraction(min_response_share, "min_response_share")
    limit = parse_fraction(threshold, "threshold")
    met = denominator > 0 and Fraction(respondents, denominator) >= share_needed
    if not met:
        outcome = ACCEPTED if extended or denominator == 0 else EXTENDED
    elif respondents > 0 and Fraction(unsatisfied, respondents) > limit:
        outcome = REOPENED
    else:
        outcome = ACCEPTED
    return EvaluationJudgement(outcome=outcome, respondents=respondents, denominator=denominator,
                               response_share=f"{respondents}/{denominator}", response_share_met=met,
                               unsatisfied_share=f"{unsatisfied}/{respondents}")
