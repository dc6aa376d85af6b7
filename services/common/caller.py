"""Who acts on a stage's command: the one `Caller` every stage's application takes.

The gateway authenticates the person and passes the roles the directory gives them in the
community; the application decides with them (`holds`) and, where a rule depends on where the
person lives (a building's consultation), asks `lives_in`, which the service wires to the directory
only when a rule needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


def _nowhere(scope: str, scope_id: str | None) -> bool:
    return False


@dataclass(frozen=True)
class Caller:
    person: str
    roles: frozenset = field(default_factory=frozenset)
    lives_in: Callable[[str, str | None], bool] = _nowhere

    def holds(self, *roles: str) -> bool:
        """Whether the caller holds any of `roles` (a platform administrator holds every role)."""
        return "platform_admin" in self.roles or bool(self.roles & set(roles))
