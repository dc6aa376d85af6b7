"""A fingerprint of a frozen voter roll, so a recorded ballot can be checked on replay.

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
import json
from collections.abc import Iterable

from .errors import InvalidRoll
from .model import RollEntry


def canonical_roll_json(roll: Iterable[RollEntry]) -> str:
    """The canonical JSON text of ``roll`` described in the module docstring."""
    entries = sorted(roll, key=lambda e: e.voter)
    voters = [e.voter for e in entries]
    if len(set(voters)) != len(voters):
        raise InvalidRoll("voter ids on a roll must be unique")
    payload = [{**e.to_dict(), "units": sorted(e.units)} for e in entries]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def roll_hash(roll: Iterable[RollEntry]) -> str:
    """SHA-256 hex digest of :func:`canonical_roll_json` encoded as UTF-8."""
    return hashlib.sha256(canonical_roll_json(roll).encode("utf-8")).hexdigest()
