"""Exceptions raised by the counting rules.

Every error is a ``ValueError`` subclass so callers that only care about
"bad input" can catch one type, while the decisions service can map each
subclass to a precise refusal message.
"""

from __future__ import annotations


class RulesError(ValueError):
    """Base class of every error raised by the ``rules`` package."""


class InvalidRule(RulesError):
    """A rule (preset, method or parameter) is unknown or malformed."""


class InvalidRoll(RulesError):
    """A voter roll, or the unit/resident data it is built from, is inconsistent."""


class MissingCoOwnerRepresentative(InvalidRoll):
    """A co-owned unit has no designated co-owner to cast its single vote."""

    def __init__(self, unit: str, owners: tuple[str, ...]):
        self.unit = unit
        self.owners = owners
        super().__init__(
            f"unit {unit!r} is co-owned by {', '.join(owners)} but no co-owner has been "
            f"designated to cast its vote"
        )


class InvalidOptions(RulesError):
    """The list of ballot options does not fit the rule's method."""


class InvalidVote(RulesError):
    """A vote's choice is not valid for the rule's method and options."""

    def __init__(self, message: str, voter: str | None = None):
        self.voter = voter
        super().__init__(f"vote of {voter!r}: {message}" if voter is not None else message)


class VoterNotOnRoll(RulesError):
    """A vote was given by someone who is not on the frozen voter roll."""

    def __init__(self, voter: str):
        self.voter = voter
        super().__init__(f"voter {voter!r} is not on the voter roll")


class RuleTooWeak(InvalidRule):
    """A matter the law names (Civil Code art. 278) would be decided on a weaker rule than the law requires."""


class InvalidReveal(RulesError):
    """A sealed vote's revealed choice is missing or does not open its seal."""


class NotRevealed(InvalidReveal):
    """A sealed vote has not been revealed yet (the count has not been recorded)."""
