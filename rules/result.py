"""The result of a tally: every number the decision rests on, exactly.

A :class:`Result` is frozen and carries the eligible, participating, agreeing,
disagreeing, abstaining (and, for consent, blocking) area and heads; every
threshold applied with its fraction, comparison, observed value, denominator and
the value required; per-option counts; and for Schulze the pairwise matrix and
strongest paths, for IRV the rounds. ``Result.to_dict()`` is JSON-safe (areas as
canonical decimal strings, fractions as "p/q" strings, headcounts as ints) and
``Result.from_dict()`` reads it back to an equal Result, so a result stored in an
event can be compared with a replayed tally.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Mapping

from .numbers import decimal_str, fraction_str, number_from_json, number_to_json, parse_decimal

Number = int | Decimal  # a headcount (int) or an area (Decimal)

ADOPTED = "adopted"
REJECTED = "rejected"
TIED = "tied"  # multi-option methods only: several options share first place


@dataclass(frozen=True)
class Count:
    """Heads and area counted for something (an answer, an option, a group of voters).

    For score ballots ``heads`` is the sum of score x headcount and ``area`` the
    sum of score x area.
    """

    heads: int
    area: Decimal

    def __add__(self, other: "Count") -> "Count":
        return Count(self.heads + other.heads, self.area + other.area)

    def measure(self, name: str) -> Number:
        """The "heads" or "area" dimension."""
        return self.heads if name == "heads" else self.area

    def to_dict(self) -> dict[str, Any]:
        return {"heads": self.heads, "area": decimal_str(self.area)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Count":
        return cls(heads=data["heads"], area=parse_decimal(data["area"]))


ZERO = Count(0, Decimal(0))


def _measure_from_json(measure: str, value: Any) -> Number:
    return value if measure == "heads" else parse_decimal(value)


@dataclass(frozen=True)
class ThresholdCheck:
    """One threshold applied: ``value`` compared with ``fraction`` x ``total``.

    * ``name`` – the rule parameter ("quorum_area", "approval_heads", ...);
    * ``measure`` – "area" or "heads";
    * ``base`` – what ``total`` is: "eligible" (whole roll), "participating"
      (everyone who voted, abstentions included) or "cast" (abstentions excluded);
    * ``comparison`` – "gt" (more than) or "gte" (at least);
    * ``required`` – ``fraction * total``, exact (e.g. 21/4 heads);
    * ``met`` – the outcome. A threshold over an empty base (total 0) is never met:
      nobody can approve anything when nobody took part.
    * ``option`` – for majority ballots with options, the option checked.
    """

    name: str
    measure: str
    base: str
    fraction: Fraction
    comparison: str
    value: Number
    total: Number
    required: Fraction
    met: bool
    option: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measure": self.measure,
            "base": self.base,
            "fraction": fraction_str(self.fraction),
            "comparison": self.comparison,
            "value": number_to_json(self.value),
            "total": number_to_json(self.total),
            "required": fraction_str(self.required),
            "met": self.met,
            "option": self.option,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ThresholdCheck":
        measure = data["measure"]
        return cls(
            name=data["name"],
            measure=measure,
            base=data["base"],
            fraction=Fraction(data["fraction"]),
            comparison=data["comparison"],
            value=_measure_from_json(measure, data["value"]),
            total=_measure_from_json(measure, data["total"]),
            required=Fraction(data["required"]),
            met=data["met"],
            option=data.get("option"),
        )


@dataclass(frozen=True)
class IrvRound:
    """One round of instant-runoff counting (counts in the rule's weighting measure).

    ``counts`` holds each continuing option's votes; ``exhausted`` the ballots
    with no continuing option left; ``eliminated`` the options dropped after the
    round (all options tied for last are dropped together); ``elected`` the
    option with more than half of the continuing votes, if any.
    """

    number: int
    counts: Mapping[str, Number]
    exhausted: Number
    continuing_total: Number
    eliminated: tuple[str, ...]
    elected: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "counts": {k: number_to_json(v) for k, v in self.counts.items()},
            "exhausted": number_to_json(self.exhausted),
            "continuing_total": number_to_json(self.continuing_total),
            "eliminated": list(self.eliminated),
            "elected": self.elected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "IrvRound":
        return cls(
            number=data["number"],
            counts=MappingProxyType({k: number_from_json(v) for k, v in data["counts"].items()}),
            exhausted=number_from_json(data["exhausted"]),
            continuing_total=number_from_json(data["continuing_total"]),
            eliminated=tuple(data["eliminated"]),
            elected=data["elected"],
        )


def _matrix_to_json(matrix: Mapping[str, Mapping[str, Number]]) -> dict[str, dict[str, Any]]:
    return {x: {y: number_to_json(v) for y, v in row.items()} for x, row in matrix.items()}


def _matrix_from_json(data: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Number]]:
    return MappingProxyType(
        {x: MappingProxyType({y: number_from_json(v) for y, v in row.items()}) for x, row in data.items()}
    )


def _opt_decimal(value: Any) -> Decimal | None:
    return None if value is None else parse_decimal(value)


def _opt_decimal_str(value: Decimal | None) -> str | None:
    return None if value is None else decimal_str(value)


@dataclass(frozen=True)
class Result:
    """The outcome of :func:`rules.tally.tally` with every number behind it.

    Outcome
      ``outcome`` – "adopted", "rejected" or (multi-option methods) "tied";
      ``winner`` – the adopted option (None for motions and when not adopted);
      ``tied`` – the options sharing first place when ``outcome == "tied"``;
      ``ranking`` – options in tiers, best first (empty for motions);
      ``quorum_met``, ``approval_met`` – the two halves of the decision;
      ``failed`` – names of what failed ("quorum_area", "approval_heads",
      "blocked", "agree_not_more_than_disagree", "no_ballots", "no_support", "tie").

    Counts (area = roll weight, Decimal; heads = int)
      ``eligible_*`` – the whole roll; ``participating_*`` – everyone whose vote
      counts, abstentions included; ``agreeing_*``, ``disagreeing_*``,
      ``blocking_*`` – motion answers (None where the method has no such
      answer); ``abstaining_*`` – "abstain" votes and empty ballots;
      ``ballots`` – voters whose vote counts; ``superseded`` – earlier votes of
      the same voters that were replaced by a later one.

    Details
      ``quorum``, ``approval`` – every threshold applied (:class:`ThresholdCheck`);
      ``option_counts`` – per option :class:`Count` (majority with options: votes;
      approval: approvals; score: score sums; empty for motions, Schulze, IRV);
      ``pairwise`` – Schulze d[x][y], voters preferring x to y; ``strongest_paths``
      – Schulze p[x][y]; ``rounds`` – IRV rounds. Matrices and rounds are in the
      ``weighting`` measure.
    """

    preset: str
    method: str
    options: tuple[str, ...]
    weighting: str
    outcome: str
    winner: str | None
    tied: tuple[str, ...]
    ranking: tuple[tuple[str, ...], ...]
    quorum_met: bool
    approval_met: bool
    failed: tuple[str, ...]
    ballots: int
    superseded: int
    eligible_area: Decimal
    eligible_heads: int
    participating_area: Decimal
    participating_heads: int
    agreeing_area: Decimal | None
    agreeing_heads: int | None
    disagreeing_area: Decimal | None
    disagreeing_heads: int | None
    abstaining_area: Decimal
    abstaining_heads: int
    blocking_area: Decimal | None
    blocking_heads: int | None
    blocked: bool
    quorum: tuple[ThresholdCheck, ...]
    approval: tuple[ThresholdCheck, ...]
    option_counts: Mapping[str, Count]
    pairwise: Mapping[str, Mapping[str, Number]]
    strongest_paths: Mapping[str, Mapping[str, Number]]
    rounds: tuple[IrvRound, ...]

    @property
    def adopted(self) -> bool:
        return self.outcome == ADOPTED

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; dump with ``sort_keys=True`` for a canonical encoding."""
        return {
            "preset": self.preset,
            "method": self.method,
            "options": list(self.options),
            "weighting": self.weighting,
            "outcome": self.outcome,
            "winner": self.winner,
            "tied": list(self.tied),
            "ranking": [list(tier) for tier in self.ranking],
            "quorum_met": self.quorum_met,
            "approval_met": self.approval_met,
            "failed": list(self.failed),
            "ballots": self.ballots,
            "superseded": self.superseded,
            "eligible_area": decimal_str(self.eligible_area),
            "eligible_heads": self.eligible_heads,
            "participating_area": decimal_str(self.participating_area),
            "participating_heads": self.participating_heads,
            "agreeing_area": _opt_decimal_str(self.agreeing_area),
            "agreeing_heads": self.agreeing_heads,
            "disagreeing_area": _opt_decimal_str(self.disagreeing_area),
            "disagreeing_heads": self.disagreeing_heads,
            "abstaining_area": decimal_str(self.abstaining_area),
            "abstaining_heads": self.abstaining_heads,
            "blocking_area": _opt_decimal_str(self.blocking_area),
            "blocking_heads": self.blocking_heads,
            "blocked": self.blocked,
            "quorum": [check.to_dict() for check in self.quorum],
            "approval": [check.to_dict() for check in self.approval],
            "option_counts": {k: v.to_dict() for k, v in self.option_counts.items()},
            "pairwise": _matrix_to_json(self.pairwise),
            "strongest_paths": _matrix_to_json(self.strongest_paths),
            "rounds": [r.to_dict() for r in self.rounds],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Result":
        return cls(
            preset=data["preset"],
            method=data["method"],
            options=tuple(data["options"]),
            weighting=data["weighting"],
            outcome=data["outcome"],
            winner=data["winner"],
            tied=tuple(data["tied"]),
            ranking=tuple(tuple(tier) for tier in data["ranking"]),
            quorum_met=data["quorum_met"],
            approval_met=data["approval_met"],
            failed=tuple(data["failed"]),
            ballots=data["ballots"],
            superseded=data["superseded"],
            eligible_area=parse_decimal(data["eligible_area"]),
            eligible_heads=data["eligible_heads"],
            participating_area=parse_decimal(data["participating_area"]),
            participating_heads=data["participating_heads"],
            agreeing_area=_opt_decimal(data["agreeing_area"]),
            agreeing_heads=data["agreeing_heads"],
            disagreeing_area=_opt_decimal(data["disagreeing_area"]),
            disagreeing_heads=data["disagreeing_heads"],
            abstaining_area=parse_decimal(data["abstaining_area"]),
            abstaining_heads=data["abstaining_heads"],
            blocking_area=_opt_decimal(data["blocking_area"]),
            blocking_heads=data["blocking_heads"],
            blocked=data["blocked"],
            quorum=tuple(ThresholdCheck.from_dict(c) for c in data["quorum"]),
            approval=tuple(ThresholdCheck.from_dict(c) for c in data["approval"]),
            option_counts=MappingProxyType({k: Count.from_dict(v) for k, v in data["option_counts"].items()}),
            pairwise=_matrix_from_json(data["pairwise"]),
            strongest_paths=_matrix_from_json(data["strongest_paths"]),
            rounds=tuple(IrvRound.from_dict(r) for r in data["rounds"]),
        )
