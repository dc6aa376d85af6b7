"""Counting: ``tally(rule, options, roll, votes) -> Result``.

Pure and deterministic. The caller passes the frozen roll and the votes in
record order; for each voter only the last vote counts. Because every voter's
vote is reduced to exact sums (Decimal areas, int heads) and voters are visited
in sorted order, the result never depends on the order in which *different*
voters' votes arrived.

Participation and approval
--------------------------
Everyone whose vote counts takes part, including those who abstain (the
Supreme People's Court interpretation for owners; the same convention is used
for every rule). Quorum thresholds compare the participating area/heads with
the whole roll. Approval thresholds compare the agreeing area/heads with the
rule's ``approval_base``: "participating" (abstentions included, as the owners'
and residents' presets require) or "cast" (agree + disagree only, as in a
simple majority of votes cast). A threshold over an empty base is never met.

Methods
-------
majority / supermajority
    Without options: a motion (agree / disagree / abstain) adopted iff the
    quorum and every approval threshold are met. With options: each vote names
    one option (or abstains); an option is adopted iff it meets every approval
    threshold; if several do (only possible with thresholds of 1/2 or less) the
    one with most votes in the ``weighting`` measure wins, a tie is reported.
consent
    agree / disagree / abstain / block: adopted iff nobody blocks and agree is
    more than disagree (``weighting`` measure), plus any quorum.
approval
    Each voter approves a set of options; most approvals wins.
schulze
    Rankings; winners are the Schulze winners (winning-votes strength, widest
    paths). Options a ballot leaves out rank below all it ranks, equal among
    themselves. Several winners are reported as a tie.
irv
    Instant runoff: an option with more than half of the continuing votes wins;
    otherwise every option tied for fewest votes is eliminated together (no
    arbitrary tie-break). If all continuing options tie, that is reported as a tie.
score
    Each voter scores options within [min_score, max_score] (ints; unscored
    options get min_score); the highest sum wins.

For multi-option methods ``outcome`` is "adopted" (one winner), "tied" (several
options share first place; ``Result.tied`` lists them in ballot order) or
"rejected" (quorum not met, or no ballot expressing a preference).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from .errors import InvalidOptions, InvalidRoll, InvalidVote, VoterNotOnRoll
from .model import (
    ABSTAIN,
    AGREE,
    APPROVAL_THRESHOLDS,
    BLOCK,
    DISAGREE,
    MULTI_OPTION_METHODS,
    QUORUM_THRESHOLDS,
    RANKED_METHODS,
    RollEntry,
    Rule,
    Vote,
)
from .numbers import exact_arithmetic
from .result import ADOPTED, REJECTED, TIED, ZERO, Count, IrvRound, Number, Result, ThresholdCheck

__all__ = ["tally", "check_options", "check_choice", "current_votes"]


# ---------------------------------------------------------------------------
# Input checks (public so the decisions service can refuse bad input early,
# with exactly the rules the tally will apply).
# ---------------------------------------------------------------------------


def check_options(rule: Rule, options: Sequence[str]) -> tuple[str, ...]:
    """Validate the ballot's options for ``rule`` and return them as a tuple.

    Options are unique non-empty strings other than "abstain". Consent ballots
    have no options; approval, schulze, irv and score need at least one;
    majority/supermajority take options (choose one) or none (a motion).
    """
    if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
        raise InvalidOptions("options must be a list of option ids")
    result = tuple(options)
    for option in result:
        if not isinstance(option, str) or not option:
            raise InvalidOptions(f"option ids must be non-empty strings, got {option!r}")
        if option == ABSTAIN:
            raise InvalidOptions("'abstain' is reserved and cannot be an option id")
    if len(set(result)) != len(result):
        raise InvalidOptions("option ids must be unique")
    if rule.method == "consent" and result:
        raise InvalidOptions("a consent ballot is a motion and has no options")
    if rule.method in MULTI_OPTION_METHODS and not result:
        raise InvalidOptions(f"method {rule.method!r} needs at least one option")
    return result


def _is_empty_ballot(choice: Any) -> bool:
    """True for "abstain" and for ballots that approve/rank/score nothing."""
    return choice == ABSTAIN or (not isinstance(choice, str) and len(choice) == 0)


def check_choice(rule: Rule, options: Sequence[str], choice: Any) -> Any:
    """Validate one vote's ``choice`` and return it normalised; raise :class:`InvalidVote`.

    Normal forms: a string (motion answer or option id), a frozenset (approval),
    a tuple (ranking), or a read-only mapping option -> int (score).
    ``options`` must already have passed :func:`check_options`.
    """
    method = rule.method
    if isinstance(choice, str) and choice == ABSTAIN:
        return ABSTAIN
    if method in ("majority", "supermajority"):
        allowed = tuple(options) if options else (AGREE, DISAGREE)
        if not isinstance(choice, str) or choice not in allowed:
            raise InvalidVote(f"choice must be one of {allowed + (ABSTAIN,)}, got {choice!r}")
        return choice
    if method == "consent":
        allowed = (AGREE, DISAGREE, ABSTAIN, BLOCK)
        if not isinstance(choice, str) or choice not in allowed:
            raise InvalidVote(f"choice must be one of {allowed}, got {choice!r}")
        return choice
    if method == "approval":
        if isinstance(choice, (str, bytes, Mapping)) or not isinstance(choice, (Set, list, tuple)):
            raise InvalidVote(f"an approval ballot is a set of option ids, got {choice!r}")
        approved = list(choice)
        _check_option_ids(approved, options)
        if len(set(approved)) != len(approved):
            raise InvalidVote("an approval ballot names an option twice")
        return frozenset(approved)
    if method in RANKED_METHODS:
        if not isinstance(choice, (list, tuple)):
            raise InvalidVote(f"a ranked ballot is a list of option ids, best first, got {choice!r}")
        _check_option_ids(choice, options)
        if len(set(choice)) != len(choice):
            raise InvalidVote("a ranked ballot ranks an option twice (ties are not allowed)")
        return tuple(choice)
    if method == "score":
        if not isinstance(choice, Mapping):
            raise InvalidVote(f"a score ballot is a mapping option id -> score, got {choice!r}")
        _check_option_ids(list(choice), options)
        low, high = rule.params["min_score"], rule.params["max_score"]
        for option, score in choice.items():
            if isinstance(score, bool) or not isinstance(score, int):
                raise InvalidVote(f"score for {option!r} must be an int, got {score!r}")
            if not low <= score <= high:
                raise InvalidVote(f"score {score} for {option!r} is outside [{low}, {high}]")
        return MappingProxyType({o: choice[o] for o in options if o in choice})
    raise AssertionError(f"unhandled method {method!r}")  # Rule validation makes this unreachable


def _check_option_ids(ids: Iterable[Any], options: Sequence[str]) -> None:
    known = set(options)
    for option in ids:
        if not isinstance(option, str) or option not in known:
            raise InvalidVote(f"unknown option {option!r}")


def current_votes(votes: Iterable[Vote]) -> dict[str, Vote]:
    """Each voter's current vote: the last one in record order (voter -> Vote)."""
    current: dict[str, Vote] = {}
    for vote in votes:
        current[vote.voter] = vote
    return current


# ---------------------------------------------------------------------------
# Counting helpers
# ---------------------------------------------------------------------------


def _entry_count(entry: RollEntry) -> Count:
    return Count(entry.headcount, entry.weight)


def _total(counts: Iterable[Count]) -> Count:
    total = ZERO
    for count in counts:
        total = total + count
    return total


def _zero(measure: str) -> Number:
    return 0 if measure == "heads" else Decimal(0)


def _threshold(
    rule: Rule, name: str, base: str, value: Count, total: Count, option: str | None = None
) -> ThresholdCheck | None:
    """Apply threshold ``name`` (None if the rule does not require it)."""
    fraction = rule.fraction(name)
    if fraction is None:
        return None
    measure = "area" if name.endswith("_area") else "heads"
    comparison = rule.comparison(name)
    observed, denominator = value.measure(measure), total.measure(measure)
    required = fraction * Fraction(denominator)
    if denominator == 0:
        met = False  # nothing to measure against: nobody eligible / nobody took part
    elif comparison == "gt":
        met = Fraction(observed) > required
    else:
        met = Fraction(observed) >= required
    return ThresholdCheck(
        name=name,
        measure=measure,
        base=base,
        fraction=fraction,
        comparison=comparison,
        value=observed,
        total=denominator,
        required=required,
        met=met,
        option=option,
    )


def _tiers(values: Mapping[str, Any], options: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Group options by value, highest first; ballot order within a tier."""
    levels = sorted(set(values.values()), reverse=True)
    return tuple(tuple(o for o in options if values[o] == level) for level in levels)


@dataclass
class _Counted:
    """What a method contributes to the Result (filled by the _count_* functions)."""

    approval_met: bool = False
    failed: list[str] = field(default_factory=list)
    leaders: tuple[str, ...] = ()  # multi-option: the options in first place
    agreeing: Count | None = None
    disagreeing: Count | None = None
    blocking: Count | None = None
    blocked: bool = False
    approval: tuple[ThresholdCheck, ...] = ()
    option_counts: dict[str, Count] = field(default_factory=dict)
    ranking: tuple[tuple[str, ...], ...] = ()
    pairwise: dict[str, dict[str, Number]] = field(default_factory=dict)
    strongest_paths: dict[str, dict[str, Number]] = field(default_factory=dict)
    rounds: tuple[IrvRound, ...] = ()


# Each _count_* function receives the ballots as (voter's Count, normalised
# choice) pairs sorted by voter id, plus the participating total.
Ballots = list[tuple[Count, Any]]


def _sum_answer(ballots: Ballots, answer: str) -> Count:
    return _total(count for count, choice in ballots if choice == answer)


def _count_motion(rule: Rule, ballots: Ballots, participating: Count) -> _Counted:
    agreeing = _sum_answer(ballots, AGREE)
    disagreeing = _sum_answer(ballots, DISAGREE)
    base_name = rule.params["approval_base"]
    base = participating if base_name == "participating" else agreeing + disagreeing
    checks = tuple(
        c for name in APPROVAL_THRESHOLDS if (c := _threshold(rule, name, base_name, agreeing, base))
    )
    return _Counted(
        approval_met=all(c.met for c in checks),
        failed=[c.name for c in checks if not c.met],
        agreeing=agreeing,
        disagreeing=disagreeing,
        approval=checks,
    )


def _count_choose_one(rule: Rule, options: Sequence[str], ballots: Ballots, participating: Count) -> _Counted:
    counts = {o: _total(c for c, choice in ballots if choice == o) for o in options}
    base_name = rule.params["approval_base"]
    base = participating if base_name == "participating" else _total(counts.values())
    checks: list[ThresholdCheck] = []
    passing: list[str] = []
    for option in options:
        option_checks = [
            c for name in APPROVAL_THRESHOLDS if (c := _threshold(rule, name, base_name, counts[option], base, option))
        ]
        checks.extend(option_checks)
        if all(c.met for c in option_checks):
            passing.append(option)
    weighting = rule.params["weighting"]
    ranking = _tiers({o: counts[o].measure(weighting) for o in options}, options)
    leaders: tuple[str, ...] = ()
    if passing:
        best = max(counts[o].measure(weighting) for o in passing)
        leaders = tuple(o for o in passing if counts[o].measure(weighting) == best)
    return _Counted(
        approval_met=len(leaders) == 1,
        failed=[] if passing else ["no_option_approved"],
        leaders=leaders,
        approval=tuple(checks),
        option_counts=counts,
        ranking=ranking,
    )


def _count_consent(rule: Rule, ballots: Ballots, participating: Count) -> _Counted:
    weighting = rule.params["weighting"]
    agreeing = _sum_answer(ballots, AGREE)
    disagreeing = _sum_answer(ballots, DISAGREE)
    blocking = _sum_answer(ballots, BLOCK)
    # A block is decisive whoever casts it, even a voter with zero weight.
    blocked = any(choice == BLOCK for _, choice in ballots)
    failed = []
    if blocked:
        failed.append("blocked")
    if not agreeing.measure(weighting) > disagreeing.measure(weighting):
        failed.append("agree_not_more_than_disagree")
    return _Counted(
        approval_met=not failed,
        failed=failed,
        agreeing=agreeing,
        disagreeing=disagreeing,
        blocking=blocking,
        blocked=blocked,
    )


def _preference_ballots(ballots: Ballots) -> Ballots:
    return [(count, choice) for count, choice in ballots if not _is_empty_ballot(choice)]


def _leaders_from(ranking: tuple[tuple[str, ...], ...], has_ballots: bool) -> tuple[tuple[str, ...], list[str]]:
    if not has_ballots:
        return (), ["no_ballots"]
    return ranking[0], []


def _count_approval(rule: Rule, options: Sequence[str], ballots: Ballots) -> _Counted:
    weighting = rule.params["weighting"]
    preference = _preference_ballots(ballots)
    counts = {o: _total(c for c, approved in preference if o in approved) for o in options}
    values = {o: counts[o].measure(weighting) for o in options}
    ranking = _tiers(values, options)
    leaders, failed = _leaders_from(ranking, bool(preference))
    if leaders and values[leaders[0]] == 0:
        leaders, failed = (), ["no_support"]
    return _Counted(approval_met=len(leaders) == 1, failed=failed, leaders=leaders, option_counts=counts, ranking=ranking)


def _count_score(rule: Rule, options: Sequence[str], ballots: Ballots) -> _Counted:
    weighting = rule.params["weighting"]
    low = rule.params["min_score"]
    preference = _preference_ballots(ballots)
    counts = {}
    for option in options:
        total = ZERO
        for count, scores in preference:
            score = scores.get(option, low)
            total = total + Count(score * count.heads, score * count.area)
        counts[option] = total
    ranking = _tiers({o: counts[o].measure(weighting) for o in options}, options)
    leaders, failed = _leaders_from(ranking, bool(preference))
    return _Counted(approval_met=len(leaders) == 1, failed=failed, leaders=leaders, option_counts=counts, ranking=ranking)


def _count_schulze(rule: Rule, options: Sequence[str], ballots: Ballots) -> _Counted:
    weighting = rule.params["weighting"]
    zero = _zero(weighting)
    preference = _preference_ballots(ballots)
    # d[x][y]: weight of voters who rank x above y (unranked options share the
    # lowest position, so a ranked option beats every unranked one).
    d = {x: {y: zero for y in options if y != x} for x in options}
    for count, ranking in preference:
        position = {option: i for i, option in enumerate(ranking)}
        bottom = len(ranking)
        weight = count.measure(weighting)
        for x in options:
            for y in options:
                if x != y and position.get(x, bottom) < position.get(y, bottom):
                    d[x][y] += weight
    # Strongest paths (widest path, Floyd-Warshall), link strength = winning votes.
    p = {x: {y: (d[x][y] if d[x][y] > d[y][x] else zero) for y in options if y != x} for x in options}
    for i in options:
        for j in options:
            if j == i:
                continue
            for k in options:
                if k == i or k == j:
                    continue
                p[j][k] = max(p[j][k], min(p[j][i], p[i][k]))
    # x beats y in the Schulze order iff p[x][y] > p[y][x]; that relation is a
    # strict partial order, so peeling off the unbeaten options tier by tier
    # gives a ranking whose first tier is exactly the set of Schulze winners.
    remaining = list(options)
    tiers = []
    while remaining:
        tier = tuple(x for x in remaining if not any(p[y][x] > p[x][y] for y in remaining if y != x))
        tiers.append(tier)
        remaining = [x for x in remaining if x not in tier]
    ranking = tuple(tiers)
    leaders, failed = _leaders_from(ranking, bool(preference))
    return _Counted(
        approval_met=len(leaders) == 1,
        failed=failed,
        leaders=leaders,
        ranking=ranking,
        pairwise=d,
        strongest_paths=p,
    )


def _count_irv(rule: Rule, options: Sequence[str], ballots: Ballots) -> _Counted:
    weighting = rule.params["weighting"]
    zero = _zero(weighting)
    preference = [(count.measure(weighting), ranking) for count, ranking in _preference_ballots(ballots)]
    if not preference:
        return _Counted(failed=["no_ballots"], ranking=(tuple(options),))
    continuing = list(options)
    rounds: list[IrvRound] = []
    eliminated_in_order: list[tuple[str, ...]] = []
    leaders: tuple[str, ...] = ()
    while True:
        counts = {o: zero for o in continuing}
        exhausted = zero
        for weight, ranking in preference:
            top = next((o for o in ranking if o in counts), None)
            if top is None:
                exhausted += weight
            else:
                counts[top] += weight
        total = sum(counts.values(), zero)
        elected = next((o for o in continuing if 2 * counts[o] > total), None)
        lowest = min(counts.values())
        losers = tuple(o for o in continuing if counts[o] == lowest)
        if elected is not None or len(losers) == len(continuing):
            # Either a majority winner, or every continuing option is tied
            # (including a single option left with all-zero weight): stop.
            leaders = (elected,) if elected is not None else tuple(continuing)
            rounds.append(IrvRound(len(rounds) + 1, MappingProxyType(counts), exhausted, total, (), elected))
            break
        rounds.append(IrvRound(len(rounds) + 1, MappingProxyType(counts), exhausted, total, losers, None))
        eliminated_in_order.append(losers)
        continuing = [o for o in continuing if o not in losers]
    first = leaders
    rest = tuple(o for o in continuing if o not in first)
    ranking = (first,) + ((rest,) if rest else ()) + tuple(reversed(eliminated_in_order))
    return _Counted(
        approval_met=len(leaders) == 1,
        failed=[] if len(leaders) == 1 else ["tie"],
        leaders=leaders,
        ranking=ranking,
        rounds=tuple(rounds),
    )


def _freeze_matrix(matrix: dict[str, dict[str, Number]]) -> Mapping[str, Mapping[str, Number]]:
    return MappingProxyType({x: MappingProxyType(dict(row)) for x, row in matrix.items()})


# ---------------------------------------------------------------------------
# The tally
# ---------------------------------------------------------------------------


def tally(rule: Rule, options: Sequence[str], roll: Sequence[RollEntry], votes: Sequence[Vote]) -> Result:
    """Count ``votes`` against the frozen ``roll`` under ``rule`` and return the Result.

    * ``options`` – the ballot's option ids in ballot order; ``[]`` for a motion.
    * ``roll`` – the frozen voter roll; voter ids must be unique.
    * ``votes`` – in record order; the last vote of each voter counts, earlier
      ones are reported as ``superseded``.

    Raises :class:`VoterNotOnRoll` for a vote from someone not on the roll,
    :class:`InvalidVote` for a choice the method does not accept (any vote, even
    a superseded one: the record should never hold one), :class:`InvalidOptions`
    and :class:`InvalidRoll` for malformed options or roll.
    """
    options = check_options(rule, options)
    votes = list(votes)
    entries: dict[str, RollEntry] = {}
    for entry in roll:
        if entry.voter in entries:
            raise InvalidRoll(f"voter {entry.voter!r} appears twice on the roll")
        entries[entry.voter] = entry

    choices: dict[str, Any] = {}
    for vote in votes:  # record order: a later vote replaces an earlier one
        if vote.voter not in entries:
            raise VoterNotOnRoll(vote.voter)
        try:
            choices[vote.voter] = check_choice(rule, options, vote.choice)
        except InvalidVote as exc:
            raise InvalidVote(str(exc), voter=vote.voter) from None
    superseded = len(votes) - len(choices)

    with exact_arithmetic():
        # Sorted by voter id so nothing depends on arrival order.
        ballots: Ballots = [(_entry_count(entries[v]), choices[v]) for v in sorted(choices)]
        eligible = _total(_entry_count(e) for e in entries.values())
        participating = _total(count for count, _ in ballots)
        abstaining = _total(count for count, choice in ballots if _is_empty_ballot(choice))

        quorum = tuple(
            c for name in QUORUM_THRESHOLDS if (c := _threshold(rule, name, "eligible", participating, eligible))
        )
        quorum_met = all(c.met for c in quorum)

        method = rule.method
        motion = method == "consent" or (method in ("majority", "supermajority") and not options)
        if method == "consent":
            counted = _count_consent(rule, ballots, participating)
        elif motion:
            counted = _count_motion(rule, ballots, participating)
        elif method in ("majority", "supermajority"):
            counted = _count_choose_one(rule, options, ballots, participating)
        elif method == "approval":
            counted = _count_approval(rule, options, ballots)
        elif method == "score":
            counted = _count_score(rule, options, ballots)
        elif method == "schulze":
            counted = _count_schulze(rule, options, ballots)
        else:
            counted = _count_irv(rule, options, ballots)

    failed = [c.name for c in quorum if not c.met] + counted.failed
    winner = None
    tied: tuple[str, ...] = ()
    if not quorum_met:
        outcome = REJECTED
    elif motion:
        outcome = ADOPTED if counted.approval_met else REJECTED
    elif len(counted.leaders) == 1:
        outcome, winner = ADOPTED, counted.leaders[0]
    elif len(counted.leaders) > 1:
        outcome, tied = TIED, counted.leaders
        if "tie" not in failed:
            failed.append("tie")
    else:
        outcome = REJECTED

    def area(count: Count | None) -> Decimal | None:
        return None if count is None else count.area

    def heads(count: Count | None) -> int | None:
        return None if count is None else count.heads

    return Result(
        preset=rule.preset,
        method=method,
        options=options,
        weighting=rule.params["weighting"],
        outcome=outcome,
        winner=winner,
        tied=tied,
        ranking=counted.ranking,
        quorum_met=quorum_met,
        approval_met=counted.approval_met,
        failed=tuple(failed),
        ballots=len(ballots),
        superseded=superseded,
        eligible_area=eligible.area,
        eligible_heads=eligible.heads,
        participating_area=participating.area,
        participating_heads=participating.heads,
        agreeing_area=area(counted.agreeing),
        agreeing_heads=heads(counted.agreeing),
        disagreeing_area=area(counted.disagreeing),
        disagreeing_heads=heads(counted.disagreeing),
        abstaining_area=abstaining.area,
        abstaining_heads=abstaining.heads,
        blocking_area=area(counted.blocking),
        blocking_heads=heads(counted.blocking),
        blocked=counted.blocked,
        quorum=quorum,
        approval=counted.approval,
        option_counts=MappingProxyType(dict(counted.option_counts)),
        pairwise=_freeze_matrix(counted.pairwise),
        strongest_paths=_freeze_matrix(counted.strongest_paths),
        rounds=counted.rounds,
    )
