"""Pure counting rules for consultation ballots: no I/O, no framework imports.

Used by the decisions service to count a ballot and by the audit replay to
recount it; both must get the same :class:`Result` (compare ``to_dict()``).

Typical use::

    from rules import build_owner_roll, owners_major, tally, Vote, roll_hash

    roll = build_owner_roll(units, at=date(2024, 5, 1))
    rule = owners_major()
    result = tally(rule, [], roll, [Vote("wang", "agree"), ...])
    result.outcome          # "adopted" / "rejected" (/ "tied" for multi-option methods)
    result.to_dict()        # JSON-safe, for the ResolutionRecorded-style event
"""

from .errors import (
    InvalidOptions,
    InvalidReveal,
    InvalidRoll,
    InvalidRule,
    InvalidVote,
    MissingCoOwnerRepresentative,
    NotRevealed,
    RulesError,
    RuleTooWeak,
    VoterNotOnRoll,
)
from .hashing import canonical_roll_json, roll_hash, seal
from .matters import ART_278, Matter, check_rule_for_matter, matter
from .model import ABSTAIN, AGREE, BLOCK, DISAGREE, METHODS, PRESETS, RollEntry, Rule, Vote
from .presets import council, generic, make_rule, owners_major, owners_ordinary, residents_meeting
from .result import ADOPTED, REJECTED, TIED, Count, IrvRound, Result, ThresholdCheck
from .roll import (
    DEVELOPER,
    Household,
    Ownership,
    Resident,
    Unit,
    build_household_roll,
    build_owner_roll,
    build_resident_roll,
)
from .tally import check_choice, check_options, current_votes, tally

__all__ = [
    "ABSTAIN",
    "ADOPTED",
    "AGREE",
    "ART_278",
    "BLOCK",
    "DEVELOPER",
    "DISAGREE",
    "METHODS",
    "PRESETS",
    "REJECTED",
    "TIED",
    "Count",
    "Household",
    "InvalidOptions",
    "InvalidReveal",
    "InvalidRoll",
    "InvalidRule",
    "InvalidVote",
    "IrvRound",
    "Matter",
    "MissingCoOwnerRepresentative",
    "NotRevealed",
    "Ownership",
    "Resident",
    "Result",
    "RollEntry",
    "Rule",
    "RuleTooWeak",
    "RulesError",
    "ThresholdCheck",
    "Unit",
    "Vote",
    "VoterNotOnRoll",
    "build_household_roll",
    "build_owner_roll",
    "build_resident_roll",
    "canonical_roll_json",
    "check_choice",
    "check_rule_for_matter",
    "check_options",
    "council",
    "current_votes",
    "generic",
    "make_rule",
    "matter",
    "owners_major",
    "owners_ordinary",
    "residents_meeting",
    "roll_hash",
    "seal",
    "tally",
]
