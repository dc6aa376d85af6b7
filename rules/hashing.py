"""Hashes the record is checked with: a frozen voter roll's fingerprint, and salted seals.

:func:`seal` commits to a JSON value (a secret ballot's choice) without showing it; the salt is
revealed later (with the count), and then anyone can check the value. The roll's fingerprint:

Encoding (version 1), exactly:

1. the roll entries are sorted by ``voter`` (voter ids must be unique);
2. each entry becomes the JSON object
   ``{"headcount": <int>, "units": [<unit id>, ...], "voter": <str>, "weight": <str>}``
   where ``units`` is sorted and ``weight`` is the canonical decimal text
   (plain notation, no exponent, no trailing zeros: ``"150"``, ``"62.5"``, ``"0"``);
3. the list of these objects is serialised with
   ``json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``;
4. the text is encoded as UTF-8 and hashed with SHA-256; the hex digest is returned.

Example: a roll with only ``RollEntry("wang", Decimal("50.00"), 1, ("101",))`` is
encoded as ``[{"headcount":1,"units":["101"],"voter":"wang","weight":"50"}]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .canonical import canonical_text
from .errors import InvalidRoll
from .model import RollEntry


def canonical_roll_json(roll: Iterable[RollEntry]) -> str:
    """The canonical JSON text of ``roll`` described in the module docstring."""
    entries = sorted(roll, key=lambda e: e.voter)
    voters = [e.voter for e in entries]
    if len(set(voters)) != len(voters):
        raise InvalidRoll("voter ids on a roll must be unique")
    payload = [{**e.to_dict(), "units": sorted(e.units)} for e in entries]
    return canonical_text(payload)


def roll_hash(roll: Iterable[RollEntry]) -> str:
    """SHA-256 hex digest of :func:`canonical_roll_json` encoded as UTF-8."""
    return hashlib.sha256(canonical_roll_json(roll).encode("utf-8")).hexdigest()


def canonical_value_json(value: object) -> str:
    """A JSON value in canonical text: sorted keys, no insignificant whitespace, UTF-8 as is."""
    return canonical_text(value)


def seal(value: object, salt_hex: str) -> str:
    """The salted commitment to a JSON value (a secret ballot's choice, a sealed person id):
    hex SHA-256(salt bytes ‖ UTF-8 canonical JSON of the value). With the salt revealed, anyone
    can check that the value is the one sealed; without it, the value cannot be tried."""
    return hashlib.sha256(bytes.fromhex(salt_hex) + canonical_value_json(value).encode("utf-8")).hexdigest()
