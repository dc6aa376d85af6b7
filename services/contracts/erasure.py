"""The erasure event every service that keeps texts records (`services/common/erasure.py`): one
contract, published by each such source."""
from __future__ import annotations

from .schema import event, f

PERSON_TEXTS_ERASED = event("PersonTextsErased", "Erasure", 1, f("person", "str"), f("texts", "int"))
