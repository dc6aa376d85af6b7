"""The language of event contracts: what an event's `data` holds, field by field.

A contract names an event type at one version: its fields, each with a JSON type, whether it may be
null, whether it may be absent (only for fields added later to an event whose older records lack
them) and whether it is a salted commitment (`*_commitment`: hex SHA-256 of salt ‖ text, the text
kept erasable in the source's content store). Validation is exact: a field the contract does not
name, or a named field missing, is a violation, so a renamed field fails loudly wherever envelopes
are checked (the audit replay, the integration runs' session-end check) instead of reading as null.

Pure Python, no I/O: the audit replay and offline tools use it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Iterator, Mapping

# type name -> (JSON Schema-like description for the docs, check)
_COMMITMENT = re.compile(r"^[0-9a-f]{64}$")


def _is_decimal(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return Decimal(v).is_finite()
    except InvalidOperation:
        return False


TYPES: dict[str, tuple[str, Any]] = {
    "str": ("string", lambda v: isinstance(v, str)),
    "int": ("integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("boolean", lambda v: isinstance(v, bool)),
    "object": ("object", lambda v: isinstance(v, dict)),
    "array": ("array", lambda v: isinstance(v, list)),
    "decimal": ("decimal string", _is_decimal),
    "commitment": ("commitment", lambda v: isinstance(v, str) and bool(_COMMITMENT.match(v))),
    "commitments": ("array of commitments",
                    lambda v: isinstance(v, list) and all(isinstance(x, str) and _COMMITMENT.match(x) for x in v)),
    "any": ("any JSON value", lambda v: True),
}


class ContractViolation(ValueError):
    """An envelope's data does not match its event type's contract (or no contract names it)."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a key of TYPES, or several joined by '|' (any of them)
    nullable: bool = False
    required: bool = True  # False: absent in events recorded before the field existed

    @property
    def commitment(self) -> bool:
        return self.type in ("commitment", "commitments")

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.nullable else f"{self.name} is null"
        if not any(TYPES[kind][1](value) for kind in self.type.split("|")):
            return f"{self.name} is not {self._kinds()}: {value!r}"[:300]
        return None

    def _kinds(self) -> str:
        return " or ".join(TYPES[kind][0] for kind in self.type.split("|"))

    def describe(self) -> str:
        text = self._kinds() + (" or null" if self.nullable else "")
        return text + ("; absent in older events" if not self.required else "")


def f(name: str, spec: str, *, required: bool = True) -> Field:
    """A field from a short spec: a type name ('str'), several joined by '|' for any of them
    ('str|object'), '?' at the end for nullable ('str?')."""
    nullable = spec.endswith("?")
    kind = spec.rstrip("?")
    unknown = [k for k in kind.split("|") if k not in TYPES]
    if unknown:
        raise ValueError(f"unknown contract type {unknown[0]!r} for field {name!r}")
    return Field(name, kind, nullable, required)


@dataclass(frozen=True)
class EventContract:
    type: str
    aggregate: str
    version: int
    fields: tuple[Field, ...]
    sources: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(x.name for x in self.fields)

    @property
    def commitments(self) -> tuple[str, ...]:
        return tuple(x.name for x in self.fields if x.commitment)

    def problems(self, data: Mapping[str, Any]) -> list[str]:
        if not isinstance(data, Mapping):
            return ["data is not an object"]
        out = [f"unexpected field {k!r}" for k in data if k not in self.names]
        for x in self.fields:
            if x.name not in data:
                if x.required:
                    out.append(f"missing field {x.name!r}")
                continue
            problem = x.problem(data[x.name])
            if problem:
                out.append(problem)
        return out

    def renamed(self, old: str, new: str) -> "EventContract":
        """A copy with one field renamed (what a careless edit does; tests use it)."""
        if old not in self.names:
            raise KeyError(old)
        return replace(self, fields=tuple(replace(x, name=new) if x.name == old else x for x in self.fields))


def event(type_: str, aggregate: str, version: int, *fields: Field) -> EventContract:
    names = [x.name for x in fields]
    if len(names) != len(set(names)):
        raise ValueError(f"{type_}: a field is named twice")
    return EventContract(type_, aggregate, version, tuple(fields))


def older(contract: EventContract, version: int, *, without: Iterable[str]) -> EventContract:
    """The contract of an earlier version: the same fields but those its next version added."""
    gone = set(without)
    if not gone <= set(contract.names):
        raise ValueError(f"{contract.type}: {sorted(gone - set(contract.names))} are not fields")
    return replace(contract, version=version, fields=tuple(x for x in contract.fields if x.name not in gone))


@dataclass
class Registry:
    """Every event contract by (type, version), and which sources publish each."""

    by_key: dict[tuple[str, int], EventContract] = field(default_factory=dict)
    by_source: dict[str, list[EventContract]] = field(default_factory=dict)
    _readers: dict[tuple[str, int], tuple[EventContract, frozenset, frozenset]] = field(default_factory=dict,
                                                                                     repr=False)

    def add(self, source: str, contracts: Iterable[EventContract]) -> None:
        for c in contracts:
            key = (c.type, c.version)
            known = self.by_key.get(key)
            if known is not None and replace(known, sources=()) != replace(c, sources=()):
                raise ValueError(f"{c.type} v{c.version} is contracted twice, differently")
            merged = replace(c, sources=tuple(sorted({*(known.sources if known else ()), source})))
            self.by_key[key] = merged
            self._readers.clear()
            self.by_source.setdefault(source, []).append(merged)

    def __iter__(self) -> Iterator[EventContract]:
        return iter(self.by_key.values())

    def versions(self, type_: str) -> list[EventContract]:
        return sorted((c for (t, _v), c in self.by_key.items() if t == type_), key=lambda c: c.version)

    def get(self, type_: str, version: int = 1) -> EventContract:
        try:
            return self.by_key[(type_, version)]
        except KeyError:
            raise ContractViolation(f"no contract for event type {type_!r} version {version}") from None

    def replaced(self, contract: EventContract) -> "Registry":
        """A copy of the registry with one contract replaced (keeping its sources)."""
        out = Registry()
        for source, contracts in self.by_source.items():
            out.add(source, [replace(contract, sources=()) if (c.type, c.version) == (contract.type, contract.version)
                             else replace(c, sources=()) for c in contracts])
        return out

    def problems(self, envelope: Mapping[str, Any]) -> list[str]:
        """Every way `envelope`'s data departs from its contract (empty when it conforms)."""
        kind, version = envelope.get("type"), envelope.get("event_version", 1)
        contract = self.by_key.get((kind, version))
        if contract is None:
            return [f"no contract for event type {kind!r} version {version}"]
        if envelope.get("source") not in contract.sources:
            return [f"{kind} is not contracted for source {envelope.get('source')!r}"]
        return contract.problems(envelope.get("data"))

    def validate(self, envelope: Mapping[str, Any]) -> "Data":
        """The envelope's data, checked in full: raises ContractViolation naming the event and its
        problems."""
        problems = self.problems(envelope)
        if problems:
            raise ContractViolation(f"event {envelope.get('id')} ({envelope.get('type')} "
                                    f"v{envelope.get('event_version', 1)}): " + "; ".join(problems))
        return self.read(envelope)

    def read(self, envelope: Mapping[str, Any]) -> "Data":
        """The envelope's data read through its contract: its field names are held to the contract
        (a field the contract does not name is a violation, and so is a reader asking for one); the
        values are not checked (`validate` does that). Cheap: the replay calls it for every event,
        so the check is one set comparison in C and reading a field is a plain dict lookup."""
        key = (envelope["type"], envelope.get("event_version", 1))
        found = self._readers.get(key)
        if found is None:
            contract = self.get(*key)
            found = self._readers[key] = (contract, frozenset(contract.names),
                                          frozenset(n for c in self.versions(contract.type) for n in c.names))
        contract, exact, names = found
        data = envelope["data"]
        if not exact.issuperset(data):
            raise ContractViolation(f"event {envelope.get('id')} ({contract.type} v{contract.version}): unexpected "
                                    f"field(s) {', '.join(sorted(set(data) - exact))}")
        out = Data(data)
        out.contract, out.names = contract, names
        return out


class Data(dict):
    """An event's data read through its contract: asking for a field the contract does not name
    raises instead of answering None, so a reader that still uses a renamed field fails loudly.
    `names` are the fields of every version of the type: a reader of the newest reads older events
    too, taking a field an older version lacks as absent (`.get`)."""

    __slots__ = ("contract", "names")

    def _refuse(self, key: str) -> None:
        raise ContractViolation(f"{self.contract.type} has no field {key!r} "
                                f"(its fields: {', '.join(self.contract.names)})")

    def __missing__(self, key: str) -> Any:  # d[key] for a key the data lacks: is it even a field?
        if key not in self.names:
            self._refuse(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self.names:
            self._refuse(key)
        return dict.get(self, key, default)
