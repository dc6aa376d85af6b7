"""Input model of the counting rules: roll entries, votes and rules.

All classes are frozen dataclasses with exact numbers only (``Decimal`` areas,
``Fraction`` thresholds, ``int`` headcounts). Each has ``to_dict``/``from_dict``
producing JSON-safe data (no floats; Decimals and Fractions as strings) so that
it can be stored in an event and read back identically.

Vocabulary
----------
* **area** – the weight of a roll entry (for owners, the registered exclusive
  area in m²; for resident and household rolls it is 1).
* **heads** – the headcount of a roll entry (normally 1; the developer's unsold
  units together are also 1).
* **motion** – a ballot without options, answered ``agree`` / ``disagree`` /
  ``abstain`` (and ``block`` under consent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Mapping

from .errors import InvalidRule
from .numbers import decimal_str, fraction_str, parse_decimal, parse_fraction

# Choices of a motion ballot. "abstain" is also accepted by every other method:
# it means "I take part but express no preference" (counts toward participation).
AGREE = "agree"
DISAGREE = "disagree"
ABSTAIN = "abstain"
BLOCK = "block"

PRESETS = ("owners_ordinary", "owners_major", "residents_meeting", "council", "generic")
METHODS = ("majority", "supermajority", "consent", "approval", "schulze", "irv", "score")
# Methods that choose among the ballot's options (the others decide a motion;
# majority/supermajority decide a motion when there are no options, otherwise
# they choose the option that reaches the approval thresholds).
MULTI_OPTION_METHODS = ("approval", "schulze", "irv", "score")
RANKED_METHODS = ("schulze", "irv")

COMPARISONS = ("gt", "gte")  # "more than" / "at least"
APPROVAL_BASES = ("participating", "cast")  # with or without abstentions in the denominator
MEASURES = ("heads", "area")

# Threshold parameters: each is a fraction (string like "2/3") or None (= not
# required), with a companion "<name>_cmp" parameter holding "gt" or "gte".
QUORUM_THRESHOLDS = ("quorum_area", "quorum_heads")  # share of the eligible roll taking part
APPROVAL_THRESHOLDS = ("approval_area", "approval_heads")  # share of the approval base agreeing

_QUORUM_DEFAULTS: dict[str, Any] = {
    "quorum_area": None,
    "quorum_area_cmp": "gte",
    "quorum_heads": None,
    "quorum_heads_cmp": "gte",
}
_COMMON_DEFAULTS: dict[str, Any] = {**_QUORUM_DEFAULTS, "weighting": "heads"}

# The complete parameter set of each method with its defaults. A Rule always
# stores every parameter of its method (defaults filled in), so that the rule
# recorded in an event is self-contained even if defaults change later.
METHOD_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "majority": MappingProxyType(
            {
                **_COMMON_DEFAULTS,
                "approval_area": None,
                "approval_area_cmp": "gt",
                "approval_heads": "1/2",
                "approval_heads_cmp": "gt",
                "approval_base": "cast",
            }
        ),
        "supermajority": MappingProxyType(
            {
                **_COMMON_DEFAULTS,
                "approval_area": None,
                "approval_area_cmp": "gte",
                "approval_heads": "2/3",
                "approval_heads_cmp": "gte",
                "approval_base": "cast",
            }
        ),
        "consent": MappingProxyType(dict(_COMMON_DEFAULTS)),
        "approval": MappingProxyType(dict(_COMMON_DEFAULTS)),
        "schulze": MappingProxyType(dict(_COMMON_DEFAULTS)),
        "irv": MappingProxyType(dict(_COMMON_DEFAULTS)),
        "score": MappingProxyType({**_COMMON_DEFAULTS, "min_score": 0, "max_score": 5}),
    }
)


@dataclass(frozen=True)
class RollEntry:
    """One row of a frozen voter roll.

    ``voter`` is a pseudonymous id; ``weight`` is the area counted for the voter
    (Decimal, m² for owners, 1 for residents/households); ``headcount`` is the
    number of heads the voter counts for; ``units`` lists the unit ids behind
    the entry (normalised to a sorted tuple so equal rolls compare equal).
    """

    voter: str
    weight: Decimal
    headcount: int = 1
    units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.voter, str) or not self.voter:
            raise ValueError(f"roll entry voter must be a non-empty string, got {self.voter!r}")
        weight = parse_decimal(self.weight, f"weight of {self.voter!r}")
        if weight < 0:
            raise ValueError(f"weight of {self.voter!r} must not be negative")
        if isinstance(self.headcount, bool) or not isinstance(self.headcount, int) or self.headcount < 0:
            raise ValueError(f"headcount of {self.voter!r} must be a non-negative int")
        if isinstance(self.units, str):
            raise TypeError("units must be a sequence of unit ids, not a string")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "units", tuple(sorted(str(u) for u in self.units)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "voter": self.voter,
            "weight": decimal_str(self.weight),
            "headcount": self.headcount,
            "units": list(self.units),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RollEntry":
        return cls(
            voter=data["voter"],
            weight=parse_decimal(data["weight"]),
            headcount=data.get("headcount", 1),
            units=tuple(data.get("units", ())),
        )


@dataclass(frozen=True)
class Vote:
    """A voter's choice. What ``choice`` may be depends on the rule's method:

    * motion (majority/supermajority without options, owners'/residents'/council
      presets): ``"agree"``, ``"disagree"`` or ``"abstain"``;
    * consent: also ``"block"``;
    * majority/supermajority with options: one option id, or ``"abstain"``;
    * approval: a set (or list/tuple) of approved option ids;
    * schulze / irv: a ranking (list/tuple) of option ids, best first, no ties;
      options left out rank below all ranked ones;
    * score: a dict option id -> int score within the rule's [min_score, max_score];
      options left out get min_score.

    Every method also accepts ``"abstain"`` (takes part, no preference).
    Lists become tuples and sets frozensets, so a Vote cannot be mutated.
    """

    voter: str
    choice: Any

    def __post_init__(self) -> None:
        if not isinstance(self.voter, str) or not self.voter:
            raise ValueError(f"vote voter must be a non-empty string, got {self.voter!r}")
        choice = self.choice
        if isinstance(choice, list):
            choice = tuple(choice)
        elif isinstance(choice, set):
            choice = frozenset(choice)
        elif isinstance(choice, Mapping):
            choice = MappingProxyType(dict(choice))  # read-only copy
        object.__setattr__(self, "choice", choice)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; sets become sorted lists (approval accepts lists)."""
        choice = self.choice
        if isinstance(choice, frozenset):
            choice = sorted(choice)
        elif isinstance(choice, tuple):
            choice = list(choice)
        elif isinstance(choice, Mapping):
            choice = dict(choice)
        return {"voter": self.voter, "choice": choice}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Vote":
        return cls(voter=data["voter"], choice=data["choice"])


def _normalise_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in the method's defaults and check/canonicalise every parameter."""
    defaults = METHOD_DEFAULTS[method]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise InvalidRule(f"unknown parameter(s) for method {method!r}: {', '.join(unknown)}")
    merged = {**defaults, **params}
    out: dict[str, Any] = {}
    for key in sorted(merged):
        value = merged[key]
        if isinstance(value, float):
            raise InvalidRule(f"parameter {key!r} must not be a float (use a string like '2/3')")
        if key in QUORUM_THRESHOLDS or key in APPROVAL_THRESHOLDS:
            if value is not None:
                try:
                    fraction = parse_fraction(value, key)
                except (TypeError, ValueError) as exc:
                    raise InvalidRule(str(exc)) from None
                if not 0 <= fraction <= 1:
                    raise InvalidRule(f"parameter {key!r} must be between 0 and 1, got {value!r}")
                value = fraction_str(fraction)
        elif key.endswith("_cmp"):
            if value not in COMPARISONS:
                raise InvalidRule(f"parameter {key!r} must be 'gt' or 'gte', got {value!r}")
        elif key == "approval_base":
            if value not in APPROVAL_BASES:
                raise InvalidRule(f"approval_base must be one of {APPROVAL_BASES}, got {value!r}")
        elif key == "weighting":
            if value not in MEASURES:
                raise InvalidRule(f"weighting must be one of {MEASURES}, got {value!r}")
        elif key in ("min_score", "max_score"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidRule(f"parameter {key!r} must be an int, got {value!r}")
        out[key] = value
    if method in ("majority", "supermajority") and all(out[k] is None for k in APPROVAL_THRESHOLDS):
        raise InvalidRule(f"method {method!r} needs at least one approval threshold")
    if method == "score" and not out["min_score"] < out["max_score"]:
        raise InvalidRule("min_score must be less than max_score")
    return out


@dataclass(frozen=True)
class Rule:
    """A decision rule: the preset it came from, the counting method, and parameters.

    ``params`` always holds the method's complete parameter set (see
    ``METHOD_DEFAULTS``), with fractions as canonical strings ("2/3"), each
    threshold's comparison as "gt" (more than) or "gte" (at least), and no floats.
    It is read-only. Build rules with the functions in :mod:`rules.presets`.
    """

    preset: str
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InvalidRule(f"unknown preset {self.preset!r}; expected one of {PRESETS}")
        if self.method not in METHODS:
            raise InvalidRule(f"unknown method {self.method!r}; expected one of {METHODS}")
        if not isinstance(self.params, Mapping):
            raise InvalidRule("params must be a mapping")
        params = _normalise_params(self.method, self.params)
        object.__setattr__(self, "params", MappingProxyType(params))

    def __hash__(self) -> int:
        # params is a read-only mapping of str/int/None values; hash its sorted items.
        return hash((self.preset, self.method, tuple(sorted(self.params.items()))))

    def fraction(self, name: str) -> Fraction | None:
        """The threshold ``name`` (e.g. "quorum_area") as a Fraction, or None if not required."""
        value = self.params[name]
        return None if value is None else Fraction(value)

    def comparison(self, name: str) -> str:
        """"gt" or "gte" for the threshold ``name``."""
        return self.params[f"{name}_cmp"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``{"preset", "method", "params"}`` (params complete, sorted)."""
        return {"preset": self.preset, "method": self.method, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Rule":
        return cls(preset=data["preset"], method=data["method"], params=dict(data.get("params", {})))
