"""Building frozen voter rolls from units, residents and households (pure functions).

Owners' roll — Supreme People's Court interpretation on building ownership, art. 8-9:

* the area counted is each unit's exclusive area (the caller supplies the
  registered area, else the surveyed area, else the contract area);
* one unit is one owner head, but an owner of several units counts **once**,
  with the areas added;
* **all** units the developer has not sold count together as **one** head;
* a co-owned unit has one vote, cast by the co-owner the others designate; it
  is counted under that co-owner's id (merged with any other unit they own).

Ownership has effective dates: ``effective_from`` is inclusive and
``effective_to`` exclusive, so on the day a unit is sold the buyer is the owner
and the seller no longer is. The roll is built "as at" a date.

Residents' and households' rolls are one entry per adult resident / per
household, weight 1, headcount 1 (one household one vote is a practice choice
for residents' matters, never for owners' matters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from .errors import InvalidRoll, MissingCoOwnerRepresentative
from .model import RollEntry
from .numbers import exact_arithmetic, parse_decimal

DEVELOPER = "developer"
ADULT_AGE = 18


def _in_effect(start: date | None, end: date | None, at: date) -> bool:
    """``start`` inclusive, ``end`` exclusive; None means open-ended."""
    return (start is None or start <= at) and (end is None or at < end)


def _parse_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


@dataclass(frozen=True)
class Ownership:
    """``owner`` owns the unit from ``effective_from`` (inclusive) to ``effective_to`` (exclusive)."""

    owner: str
    effective_from: date | None = None
    effective_to: date | None = None

    def in_effect(self, at: date) -> bool:
        return _in_effect(self.effective_from, self.effective_to, at)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Ownership":
        return cls(
            owner=data["owner"],
            effective_from=_parse_date(data.get("effective_from")),
            effective_to=_parse_date(data.get("effective_to")),
        )


@dataclass(frozen=True)
class Unit:
    """A unit (专有部分) with its exclusive area and ownership history.

    * ``developer_unsold`` – the unit started out held by the developer: while
      no ownership is in effect it counts toward the developer's single head;
      once a buyer's ownership starts it is sold.
    * ``representative`` – for a co-owned unit, the co-owner designated to cast
      its vote (must be one of the owners in effect).
    """

    unit: str
    area: Decimal
    owners: tuple[Ownership, ...] = ()
    developer_unsold: bool = False
    representative: str | None = None

    def __post_init__(self) -> None:
        area = parse_decimal(self.area, f"area of unit {self.unit!r}")
        if area < 0:
            raise InvalidRoll(f"area of unit {self.unit!r} must not be negative")
        object.__setattr__(self, "area", area)
        object.__setattr__(self, "owners", tuple(self.owners))

    def owners_at(self, at: date) -> tuple[str, ...]:
        """Distinct owner ids in effect at ``at``, sorted."""
        return tuple(sorted({o.owner for o in self.owners if o.in_effect(at)}))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Unit":
        return cls(
            unit=data["unit"],
            area=parse_decimal(data["area"]),
            owners=tuple(Ownership.from_dict(o) for o in data.get("owners", ())),
            developer_unsold=bool(data.get("developer_unsold", False)),
            representative=data.get("representative"),
        )


def build_owner_roll(units: Iterable[Unit], at: date, developer_id: str = DEVELOPER) -> list[RollEntry]:
    """The owners' roll as at ``at``: one entry per owner head, sorted by voter id.

    Each entry's weight is the sum of the areas of the units it votes for and
    its headcount is 1. Raises :class:`MissingCoOwnerRepresentative` for a
    co-owned unit without a designated co-owner, and :class:`InvalidRoll` for a
    duplicated unit, a representative who is not a current co-owner, or a unit
    with no owner in effect that is not marked as unsold by the developer.
    """
    holdings: dict[str, list[Unit]] = {}
    seen: set[str] = set()
    for unit in units:
        if unit.unit in seen:
            raise InvalidRoll(f"unit {unit.unit!r} is listed twice")
        seen.add(unit.unit)
        owners = unit.owners_at(at)
        if not owners:
            if not unit.developer_unsold:
                raise InvalidRoll(f"unit {unit.unit!r} has no owner on {at.isoformat()}")
            voter = developer_id  # all unsold units together: one head
        elif len(owners) == 1:
            voter = owners[0]
        else:
            if unit.representative is None:
                raise MissingCoOwnerRepresentative(unit.unit, owners)
            if unit.representative not in owners:
                raise InvalidRoll(
                    f"unit {unit.unit!r}: designated representative {unit.representative!r} is not "
                    f"one of its co-owners on {at.isoformat()} ({', '.join(owners)})"
                )
            voter = unit.representative
        holdings.setdefault(voter, []).append(unit)

    roll = []
    with exact_arithmetic():
        for voter in sorted(holdings):
            held = holdings[voter]
            area = sum((u.area for u in held), Decimal(0))
            roll.append(RollEntry(voter=voter, weight=area, headcount=1, units=tuple(u.unit for u in held)))
    return roll


@dataclass(frozen=True)
class Resident:
    """A resident for the residents' roll.

    Adulthood is taken from ``birth_date`` if given (18 or older on the roll
    date; someone born on 29 February comes of age on 1 March in a common
    year), else from ``adult``; one of the two is required. Residence runs from
    ``effective_from`` (inclusive) to ``effective_to`` (exclusive).
    """

    resident: str
    household: str | None = None
    birth_date: date | None = None
    adult: bool | None = None
    effective_from: date | None = None
    effective_to: date | None = None

    def is_adult(self, at: date) -> bool:
        if self.birth_date is not None:
            return _age(self.birth_date, at) >= ADULT_AGE
        if self.adult is None:
            raise InvalidRoll(f"resident {self.resident!r} has neither a birth date nor an adult flag")
        return self.adult


def _age(born: date, at: date) -> int:
    """Completed years of age at ``at`` (the birthday counts as reached on the day)."""
    years = at.year - born.year
    if (at.month, at.day) < (born.month, born.day):
        years -= 1
    return years


def build_resident_roll(residents: Iterable[Resident], at: date) -> list[RollEntry]:
    """One entry per adult resident living in the community at ``at``: weight 1, headcount 1.

    The entry's ``units`` holds the resident's household id, if known.
    """
    roll: dict[str, RollEntry] = {}
    for resident in residents:
        if not _in_effect(resident.effective_from, resident.effective_to, at):
            continue
        if not resident.is_adult(at):
            continue
        if resident.resident in roll:
            raise InvalidRoll(f"resident {resident.resident!r} is listed twice")
        units = (resident.household,) if resident.household else ()
        roll[resident.resident] = RollEntry(resident.resident, Decimal(1), 1, units)
    return [roll[v] for v in sorted(roll)]


@dataclass(frozen=True)
class Household:
    """A household (户) for one-household-one-vote; ``units`` are its dwelling ids."""

    household: str
    units: tuple[str, ...] = ()
    effective_from: date | None = None
    effective_to: date | None = None


def build_household_roll(households: Iterable[Household], at: date) -> list[RollEntry]:
    """One entry per household in effect at ``at``, voter id = household id, weight 1, headcount 1."""
    roll: dict[str, RollEntry] = {}
    for household in households:
        if not _in_effect(household.effective_from, household.effective_to, at):
            continue
        if household.household in roll:
            raise InvalidRoll(f"household {household.household!r} is listed twice")
        roll[household.household] = RollEntry(household.household, Decimal(1), 1, tuple(household.units))
    return [roll[v] for v in sorted(roll)]
