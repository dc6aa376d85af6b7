"""Property-based tests of the counting rules (hypothesis)."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Ownership, RollEntry, Unit, Vote, build_owner_roll, generic, owners_major, owners_ordinary, tally

OPTION_POOL = ["a", "b", "c", "d", "e"]

# Areas with two decimal places, as registered (0.01 m² .. 500 m²).
areas = st.integers(min_value=1, max_value=50_000).map(lambda cents: Decimal(cents).scaleb(-2))


@st.composite
def rolls(draw, min_size=1, max_size=10):
    n = draw(st.integers(min_size, max_size))
    weights = draw(st.lists(areas, min_size=n, max_size=n))
    return [RollEntry(f"v{i}", w) for i, w in enumerate(weights)]


def choice_strategy(method, options, rule):
    abstain = st.just("abstain")
    if method in ("majority", "supermajority"):
        return st.sampled_from(options) | abstain if options else st.sampled_from(["agree", "disagree", "abstain"])
    if method == "consent":
        return st.sampled_from(["agree", "disagree", "abstain", "block"])
    if method == "approval":
        return st.frozensets(st.sampled_from(options)) | abstain
    if method in ("schulze", "irv"):
        return st.permutations(options).flatmap(lambda p: st.integers(0, len(p)).map(lambda k: list(p[:k]))) | abstain
    low, high = rule.params["min_score"], rule.params["max_score"]
    return st.dictionaries(st.sampled_from(options), st.integers(low, high)) | abstain


@st.composite
def scenarios(draw):
    """A rule, options, roll and votes in record order (several votes per voter possible)."""
    method = draw(st.sampled_from(["majority", "supermajority", "consent", "approval", "schulze", "irv", "score"]))
    params = {"weighting": draw(st.sampled_from(["heads", "area"]))}
    if draw(st.booleans()):
        params["quorum_heads"] = draw(st.sampled_from(["1/3", "1/2", "2/3"]))
    if method in ("majority", "supermajority"):
        params["approval_area"] = draw(st.sampled_from([None, "1/2", "2/3"]))
        params["approval_base"] = draw(st.sampled_from(["cast", "participating"]))
    rule = generic(method, **params)
    if method == "consent":
        options = []
    elif method in ("majority", "supermajority"):
        options = draw(st.sampled_from([[], OPTION_POOL[:2], OPTION_POOL[:3]]))
    else:
        options = OPTION_POOL[: draw(st.integers(1, 5))]
    roll = draw(rolls())
    voters = [e.voter for e in roll]
    votes = draw(st.lists(st.builds(Vote, st.sampled_from(voters), choice_strategy(method, options, rule)), max_size=20))
    return rule, options, roll, votes


@st.composite
def interleavings(draw, votes):
    """Reorder votes arbitrarily across voters while keeping each voter's own votes in order."""
    slots = draw(st.permutations(range(len(votes))))
    by_voter = defaultdict(list)
    for vote in votes:
        by_voter[vote.voter].append(vote)
    queues = {voter: iter(vs) for voter, vs in by_voter.items()}
    # The permuted positions decide which voter comes next; each voter's votes keep their order.
    return [next(queues[votes[i].voter]) for i in slots]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_result_does_not_depend_on_arrival_order_of_different_voters(data):
    rule, options, roll, votes = data.draw(scenarios())
    reordered = data.draw(interleavings(votes))
    shuffled_roll = data.draw(st.permutations(roll))
    expected = tally(rule, options, roll, votes).to_dict()
    assert tally(rule, options, list(shuffled_roll), reordered).to_dict() == expected


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_last_vote_per_voter_wins(data):
    rule, options, roll, votes = data.draw(scenarios())
    voter = data.draw(st.sampled_from([e.voter for e in roll]))
    final = Vote(voter, data.draw(choice_strategy(rule.method, options, rule)))
    with_history = tally(rule, options, roll, votes + [final]).to_dict()
    only_final = tally(rule, options, roll, [v for v in votes if v.voter != voter] + [final]).to_dict()
    assert with_history.pop("superseded") == len(votes) - len({v.voter for v in votes} - {voter})
    only_final.pop("superseded")
    assert with_history == only_final


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_consent_is_blocked_whenever_anyone_blocks(data):
    roll = data.draw(rolls())
    voters = [e.voter for e in roll]
    choices = st.sampled_from(["agree", "disagree", "abstain", "block"])
    votes = data.draw(st.lists(st.builds(Vote, st.sampled_from(voters), choices), max_size=15))
    result = tally(generic("consent"), [], roll, votes)
    current = {v.voter: v.choice for v in votes}
    if "block" in current.values():
        assert result.blocked and result.outcome == "rejected"
    else:
        assert not result.blocked


@st.composite
def ranked_elections(draw):
    options = OPTION_POOL[: draw(st.integers(2, 5))]
    n = draw(st.integers(1, 15))
    roll = [RollEntry(f"v{i}", draw(areas)) for i in range(n)]
    rankings = draw(
        st.lists(
            st.permutations(options).flatmap(lambda p: st.integers(1, len(p)).map(lambda k: list(p[:k]))),
            min_size=n,
            max_size=n,
        )
    )
    weighting = draw(st.sampled_from(["heads", "area"]))
    return options, roll, [Vote(e.voter, r) for e, r in zip(roll, rankings)], weighting


@settings(max_examples=400, deadline=None)
@given(ranked_elections())
def test_schulze_elects_the_condorcet_winner(election):
    options, roll, votes, weighting = election
    weight = {e.voter: (e.headcount if weighting == "heads" else e.weight) for e in roll}
    # Pairwise preferences straight from the definition: ranked beats unranked.
    prefer = defaultdict(lambda: 0)
    for vote in votes:
        place = {o: i for i, o in enumerate(vote.choice)}
        for x in options:
            for y in options:
                if x != y and place.get(x, len(options)) < place.get(y, len(options)):
                    prefer[x, y] += weight[vote.voter]
    condorcet = [x for x in options if all(prefer[x, y] > prefer[y, x] for y in options if y != x)]
    result = tally(generic("schulze", weighting=weighting), options, roll, votes)
    if condorcet:
        assert result.outcome == "adopted"
        assert result.winner == condorcet[0]


# --- the dual (area AND heads) rule of the owners' presets ---------------------------------------

OWNER_POOL = ["Wang", "Li", "Zhang", "Liu", "Chen", "Zhao", "Sun", "Zhou"]


@st.composite
def buildings(draw):
    """Units owned by a small pool of owners (so some own several) or unsold by the developer."""
    n = draw(st.integers(1, 12))
    units = []
    for i in range(n):
        owner = draw(st.sampled_from(OWNER_POOL + [None]))
        ownership = (Ownership(owner),) if owner else ()
        units.append(Unit(f"u{i}", draw(areas), ownership, developer_unsold=owner is None))
    return units


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_dual_rule_fails_whenever_either_dimension_fails(data):
    units = data.draw(buildings())
    roll = build_owner_roll(units, date(2024, 1, 1))

    # Heads and areas computed independently from the units (one head per owner, one for all unsold).
    area_of = defaultdict(Decimal)
    for unit in units:
        area_of[unit.owners[0].owner if unit.owners else "developer"] += unit.area
    assert {e.voter: e.weight for e in roll} == dict(area_of)

    answers = st.sampled_from(["agree", "disagree", "abstain", None])
    choice = {voter: data.draw(answers) for voter in sorted(area_of)}
    votes = [Vote(voter, c) for voter, c in choice.items() if c is not None]

    eligible_area, eligible_heads = sum(area_of.values()), len(area_of)
    taking_part = [v for v, c in choice.items() if c is not None]
    agreeing = [v for v, c in choice.items() if c == "agree"]
    p_area, p_heads = sum(area_of[v] for v in taking_part), len(taking_part)
    a_area, a_heads = sum(area_of[v] for v in agreeing), len(agreeing)

    quorum_area = 3 * p_area >= 2 * eligible_area
    quorum_heads = 3 * p_heads >= 2 * eligible_heads
    expectations = {
        owners_ordinary(): (2 * a_area > p_area, 2 * a_heads > p_heads),
        owners_major(): (p_heads > 0 and 4 * a_area >= 3 * p_area, p_heads > 0 and 4 * a_heads >= 3 * p_heads),
    }
    for rule, (approval_area, approval_heads) in expectations.items():
        result = tally(rule, [], roll, votes)
        assert [c.met for c in result.quorum] == [quorum_area, quorum_heads]
        assert [c.met for c in result.approval] == [approval_area, approval_heads]
        if not (quorum_area and quorum_heads and approval_area and approval_heads):
            assert result.outcome == "rejected"
        else:
            assert result.outcome == "adopted"
