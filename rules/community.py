"""Which of a community's rule settings were in force at a moment.

A stage keeps the rules copied when it opened (a proposal collecting support, a consultation, a
ballot, an evaluation): a rule change confirmed later never reaches it. A stage opened by a
consumer (a consultation opened when a proposal qualified) opens under the rules in force when
the event that opened it happened, not when the consumer got round to it.
"""
from __future__ import annotations

from typing import Iterable


def in_force_at(history: Iterable[tuple[str, dict]], at: str) -> dict | None:
    """The rules of the last change at or before `at`, from (when, rules) in the order they took
    effect (times as the one clock writes them, which sort as text); None before the first."""
    found = None
    for when, rules in history:
        if when > at:
            break
        found = rules
    return None if found is None else dict(found)
