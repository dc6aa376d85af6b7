"""Each counting method on small hand-checked examples, and a published Schulze example."""

from decimal import Decimal
from fractions import Fraction

import pytest

from rules import (
    InvalidOptions,
    InvalidVote,
    RollEntry,
    Vote,
    VoterNotOnRoll,
    council,
    generic,
    residents_meeting,
    tally,
)


def people(n):
    return [RollEntry(f"p{i:02d}", Decimal(1)) for i in range(n)]


def cast(choices):
    """Votes p00, p01, ... with the given choices, in order."""
    return [Vote(f"p{i:02d}", c) for i, c in enumerate(choices)]


# --- majority / supermajority (motions) -----------------------------------------------------


def test_simple_majority_of_votes_cast_ignores_abstentions():
    # 3 agree, 2 disagree, 4 abstain: 3 > 5/2 of votes cast.
    result = tally(generic("majority"), [], people(10), cast(["agree"] * 3 + ["disagree"] * 2 + ["abstain"] * 4))
    assert result.outcome == "adopted"
    (check,) = result.approval
    assert (check.base, check.value, check.total, check.required) == ("cast", 3, 5, Fraction(5, 2))
    assert (result.abstaining_heads, result.participating_heads) == (4, 9)


def test_simple_majority_tie_fails():
    result = tally(generic("majority"), [], people(4), cast(["agree", "agree", "disagree", "disagree"]))
    assert result.outcome == "rejected"


def test_supermajority_two_thirds_includes_boundary():
    rule = generic("supermajority")  # default 2/3, gte
    assert tally(rule, [], people(3), cast(["agree", "agree", "disagree"])).outcome == "adopted"
    assert tally(rule, [], people(5), cast(["agree"] * 3 + ["disagree"] * 2)).outcome == "rejected"


def test_supermajority_configurable_fraction_and_strictness():
    strict = generic("supermajority", approval_heads="3/4", approval_heads_cmp="gt")
    assert tally(strict, [], people(4), cast(["agree"] * 3 + ["disagree"])).outcome == "rejected"
    assert tally(strict, [], people(5), cast(["agree"] * 4 + ["disagree"])).outcome == "adopted"


def test_nobody_voting_never_adopts():
    result = tally(generic("supermajority"), [], people(3), [])
    assert result.outcome == "rejected"
    assert result.approval[0].met is False


def test_generic_headcount_quorum():
    rule = generic("majority", quorum_heads="1/2", quorum_heads_cmp="gte")
    assert tally(rule, [], people(10), cast(["agree"] * 4)).outcome == "rejected"
    result = tally(rule, [], people(10), cast(["agree"] * 4 + ["abstain"]))
    assert result.quorum_met and result.outcome == "adopted"


def test_residents_meeting_more_than_half_present():
    rule = residents_meeting()
    # 5 of 10 is not more than half.
    assert not tally(rule, [], people(10), cast(["agree"] * 5)).quorum_met
    # 6 of 10 take part; 3 agree is not more than half of those present.
    assert tally(rule, [], people(10), cast(["agree"] * 3 + ["disagree", "abstain", "abstain"])).outcome == "rejected"
    assert tally(rule, [], people(10), cast(["agree"] * 4 + ["disagree", "abstain"])).outcome == "adopted"


def test_council_defaults_and_override():
    members = people(9)
    # 6 of 9 = exactly 2/3 present: quorum met; 4 of 6 agree.
    result = tally(council(), [], members, cast(["agree"] * 4 + ["disagree", "abstain"]))
    assert result.quorum_met and result.outcome == "adopted"
    # 5 of 9 present: no quorum under the default, but enough with a 1/2 quorum.
    five = cast(["agree"] * 4 + ["disagree"])
    assert tally(council(), [], members, five).outcome == "rejected"
    assert tally(council(quorum_heads="1/2"), [], members, five).outcome == "adopted"


def test_majority_choose_one_option():
    rule = generic("majority")
    options = ["repair", "rebuild", "wait"]
    result = tally(rule, options, people(7), cast(["rebuild"] * 4 + ["repair"] * 2 + ["abstain"]))
    assert result.outcome == "adopted" and result.winner == "rebuild"
    assert result.option_counts["rebuild"].heads == 4
    assert result.ranking == (("rebuild",), ("repair",), ("wait",))
    no_majority = tally(rule, options, people(7), cast(["rebuild"] * 3 + ["repair"] * 3 + ["wait"]))
    assert no_majority.outcome == "rejected" and no_majority.winner is None
    assert no_majority.failed == ("no_option_approved",)


def test_motion_rejects_option_ids_and_block():
    with pytest.raises(InvalidVote):
        tally(generic("majority"), [], people(2), cast(["block"]))
    with pytest.raises(InvalidVote):
        tally(generic("majority"), [], people(2), cast(["repair"]))


# --- consent -----------------------------------------------------------------------------------


def test_consent_passes_without_block_when_agree_exceeds_disagree():
    result = tally(generic("consent"), [], people(5), cast(["agree", "agree", "disagree", "abstain"]))
    assert result.outcome == "adopted" and not result.blocked


def test_consent_single_block_rejects():
    result = tally(generic("consent"), [], people(5), cast(["agree"] * 4 + ["block"]))
    assert result.outcome == "rejected" and result.blocked
    assert result.blocking_heads == 1
    assert result.failed == ("blocked",)


def test_consent_needs_more_agree_than_disagree():
    result = tally(generic("consent"), [], people(4), cast(["agree", "disagree", "abstain"]))
    assert result.outcome == "rejected"
    assert result.failed == ("agree_not_more_than_disagree",)


def test_consent_has_no_options():
    with pytest.raises(InvalidOptions):
        tally(generic("consent"), ["a"], people(1), [])


# --- approval ----------------------------------------------------------------------------------


def test_approval_most_approvals_wins():
    options = ["lawn", "plots", "mixed"]
    ballots = [{"lawn"}, {"lawn", "mixed"}, {"mixed"}, ["plots", "mixed"], set()]
    result = tally(generic("approval"), options, people(5), cast(ballots))
    assert result.winner == "mixed" and result.outcome == "adopted"
    assert {o: c.heads for o, c in result.option_counts.items()} == {"lawn": 2, "plots": 1, "mixed": 3}
    assert result.abstaining_heads == 1  # the empty ballot takes part without preference
    assert result.participating_heads == 5


def test_approval_tie_is_reported_in_ballot_order():
    options = ["b", "a", "c"]
    result = tally(generic("approval"), options, people(2), cast([{"a", "b"}, {"a", "b", "c"}]))
    assert result.outcome == "tied" and result.winner is None
    assert result.tied == ("b", "a")
    assert result.ranking == (("b", "a"), ("c",))
    assert "tie" in result.failed


def test_approval_rejects_unknown_or_repeated_options():
    with pytest.raises(InvalidVote, match="unknown option"):
        tally(generic("approval"), ["a"], people(1), cast([{"z"}]))
    with pytest.raises(InvalidVote, match="twice"):
        tally(generic("approval"), ["a"], people(1), cast([["a", "a"]]))
    with pytest.raises(InvalidVote):
        tally(generic("approval"), ["a"], people(1), cast(["a"]))  # a bare string is not a set


def test_approval_without_ballots_is_rejected():
    result = tally(generic("approval"), ["a", "b"], people(2), cast(["abstain"]))
    assert result.outcome == "rejected" and result.failed == ("no_ballots",)


# --- Schulze -----------------------------------------------------------------------------------

# The example of the Wikipedia article "Schulze method": 45 voters, 5 candidates.
WIKIPEDIA_GROUPS = [
    (5, "ACBED"),
    (5, "ADECB"),
    (8, "BEDAC"),
    (3, "CABED"),
    (7, "CAEBD"),
    (2, "CBADE"),
    (7, "DCEBA"),
    (8, "EBADC"),
]
WIKIPEDIA_PAIRWISE = {
    "A": {"B": 20, "C": 26, "D": 30, "E": 22},
    "B": {"A": 25, "C": 16, "D": 33, "E": 18},
    "C": {"A": 19, "B": 29, "D": 17, "E": 24},
    "D": {"A": 15, "B": 12, "C": 28, "E": 14},
    "E": {"A": 23, "B": 27, "C": 21, "D": 31},
}
WIKIPEDIA_STRONGEST_PATHS = {
    "A": {"B": 28, "C": 28, "D": 30, "E": 24},
    "B": {"A": 25, "C": 28, "D": 33, "E": 24},
    "C": {"A": 25, "B": 29, "D": 29, "E": 24},
    "D": {"A": 25, "B": 28, "C": 28, "E": 24},
    "E": {"A": 25, "B": 28, "C": 28, "D": 31},
}


def wikipedia_ballots():
    rankings = [list(order) for count, order in WIKIPEDIA_GROUPS for _ in range(count)]
    return people(len(rankings)), cast(rankings)


def test_schulze_wikipedia_example():
    roll, votes = wikipedia_ballots()
    result = tally(generic("schulze"), list("ABCDE"), roll, votes)
    assert result.outcome == "adopted" and result.winner == "E"
    assert result.ranking == (("E",), ("A",), ("C",), ("B",), ("D",))
    assert {x: dict(row) for x, row in result.pairwise.items()} == WIKIPEDIA_PAIRWISE
    assert {x: dict(row) for x, row in result.strongest_paths.items()} == WIKIPEDIA_STRONGEST_PATHS


def test_schulze_unranked_options_rank_below_ranked_ones():
    # One voter ranks only "b": b beats a and c; a and c are equal on that ballot.
    result = tally(generic("schulze"), ["a", "b", "c"], people(1), cast([["b"]]))
    assert result.winner == "b"
    assert result.pairwise["b"] == {"a": 1, "c": 1}
    assert result.pairwise["a"] == {"b": 0, "c": 0}
    assert result.ranking == (("b",), ("a", "c"))


def test_schulze_cycle_tie_is_reported():
    # Perfect Condorcet cycle a > b > c > a with equal strengths: all three are winners.
    result = tally(generic("schulze"), ["a", "b", "c"], people(3), cast([["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]))
    assert result.outcome == "tied" and result.tied == ("a", "b", "c")


def test_ranked_ballot_with_repeated_option_is_invalid():
    with pytest.raises(InvalidVote, match="twice"):
        tally(generic("schulze"), ["a", "b"], people(1), cast([["a", "a"]]))
    with pytest.raises(InvalidVote):
        tally(generic("irv"), ["a", "b"], people(1), cast([{"a", "b"}]))  # a set has no order


# --- IRV ---------------------------------------------------------------------------------------


def test_irv_rounds_transfer_votes():
    # First preferences: a 4, b 3, c 2. c is eliminated and its votes go to b: b 5 of 9.
    rankings = [["a", "b", "c"]] * 4 + [["b", "a", "c"]] * 3 + [["c", "b", "a"]] * 2
    result = tally(generic("irv"), ["a", "b", "c"], people(9), cast(rankings))
    assert result.outcome == "adopted" and result.winner == "b"
    first, second = result.rounds
    assert dict(first.counts) == {"a": 4, "b": 3, "c": 2}
    assert first.eliminated == ("c",) and first.elected is None
    assert dict(second.counts) == {"a": 4, "b": 5}
    assert second.elected == "b" and second.continuing_total == 9
    assert result.ranking == (("b",), ("a",), ("c",))


def test_irv_exhausted_ballots_leave_the_count():
    rankings = [["a"]] * 2 + [["b"]] * 2 + [["c"]]
    result = tally(generic("irv"), ["a", "b", "c"], people(5), cast(rankings))
    first, second = result.rounds
    assert first.eliminated == ("c",)
    assert second.exhausted == 1 and second.continuing_total == 4
    assert result.outcome == "tied" and result.tied == ("a", "b")


def test_irv_eliminates_all_tied_last_together():
    rankings = [["a", "b"]] * 3 + [["b", "a"]] * 2 + [["c", "a"]] + [["d", "b"]]
    result = tally(generic("irv"), ["a", "b", "c", "d"], people(7), cast(rankings))
    assert result.rounds[0].eliminated == ("c", "d")
    assert dict(result.rounds[1].counts) == {"a": 4, "b": 3}
    assert result.winner == "a"
    assert result.ranking == (("a",), ("b",), ("c", "d"))


# --- score -------------------------------------------------------------------------------------


def test_score_sums_and_unscored_options_get_the_minimum():
    rule = generic("score", min_score=0, max_score=5)
    ballots = [{"a": 5, "b": 3}, {"a": 1, "b": 4, "c": 5}, {"b": 2}]
    result = tally(rule, ["a", "b", "c"], people(3), cast(ballots))
    assert {o: c.heads for o, c in result.option_counts.items()} == {"a": 6, "b": 9, "c": 5}
    assert result.winner == "b"


def test_score_out_of_range_raises():
    rule = generic("score", min_score=1, max_score=5)
    with pytest.raises(InvalidVote, match="outside"):
        tally(rule, ["a"], people(1), cast([{"a": 6}]))
    with pytest.raises(InvalidVote, match="outside"):
        tally(rule, ["a"], people(1), cast([{"a": 0}]))
    with pytest.raises(InvalidVote, match="int"):
        tally(rule, ["a"], people(1), cast([{"a": True}]))
    with pytest.raises(InvalidVote, match="int"):
        tally(rule, ["a"], people(1), cast([{"a": 2.5}]))


def test_score_weighted_by_area():
    roll = [RollEntry("big", Decimal("120.5")), RollEntry("small", Decimal("50"))]
    rule = generic("score", weighting="area", min_score=-1, max_score=1)
    result = tally(rule, ["a", "b"], roll, [Vote("big", {"a": 1, "b": -1}), Vote("small", {"a": -1, "b": 1})])
    assert result.option_counts["a"].area == Decimal("70.5")
    assert result.option_counts["a"].heads == 0
    assert result.winner == "a"


# --- roll membership ---------------------------------------------------------------------------


def test_vote_from_someone_not_on_the_roll_raises():
    with pytest.raises(VoterNotOnRoll) as info:
        tally(generic("majority"), [], people(2), [Vote("p00", "agree"), Vote("stranger", "agree")])
    assert info.value.voter == "stranger"


def test_invalid_vote_names_the_voter():
    with pytest.raises(InvalidVote) as info:
        tally(generic("majority"), [], people(2), [Vote("p01", "maybe")])
    assert info.value.voter == "p01"
