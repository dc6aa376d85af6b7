"""Display names beside person ids, in every answer of a community's API that lists people.

Stage services keep pseudonymous ids only (the record must not hold names); a body, a roll, an
attendance list or an author is a list of ids. So the gateway, the one place every read passes,
names them: it collects the person ids an answer holds under the keys below, asks the directory
(which owns names) once for all of them, and adds `<key>_name` beside each id (and `<key>_names`,
id → name, beside a list of ids). The ids stay. Names are asked for when the answer is made, never
copied, so an erased person (PersonTextsErased in the directory) is shown with a null name at once.
An id that is not a person of the community (a household on a roll, "system") gets no name key. If
the directory does not answer in time the answer goes out without names rather than failing.

Audit answers and the event data inside an answer (`envelope`, `data`) are left as recorded.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

log = logging.getLogger(__name__)

# Keys whose value is one person's id.
PERSON_KEYS = frozenset({
    "person", "author", "convener", "secretary", "voter", "cast_by", "lodged_by", "ruled_by", "entered_by",
    "reporter", "recorded_by", "signed_by", "signer", "invited_by", "actor", "by", "proposer", "confirmed_by",
    "moderator", "hidden_by", "restored_by", "rated_by", "supporter", "owner", "representative", "holder",
    "principal",
})
# Keys whose value is a list of people's ids.
PERSON_LIST_KEYS = frozenset({"present", "owners", "signers", "signed", "members", "supporters", "absent"})
SKIPPED = frozenset({"envelope", "data", "canonical", "texts", "seals"})  # as recorded: never altered
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_IDS = 2000


def _ids(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SKIPPED:
                continue
            if key in PERSON_KEYS and isinstance(item, str) and _UUID.match(item):
                found.add(item)
            elif key in PERSON_LIST_KEYS and isinstance(item, list):
                found.update(i for i in item if isinstance(i, str) and _UUID.match(i))
            else:
                _ids(item, found)
    elif isinstance(value, list):
        for item in value:
            _ids(item, found)


def _named(value: Any, names: dict[str, str | None]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = item if key in SKIPPED else _named(item, names)
        for key, item in value.items():
            if key in SKIPPED:
                continue
            if key in PERSON_KEYS and isinstance(item, str) and item in names and f"{key}_name" not in value:
                out[f"{key}_name"] = names[item]
            elif key in PERSON_LIST_KEYS and isinstance(item, list) and f"{key}_names" not in value:
                listed = {i: names[i] for i in item if isinstance(i, str) and i in names}
                if listed:
                    out[f"{key}_names"] = listed
        return out
    if isinstance(value, list):
        return [_named(item, names) for item in value]
    return value


def with_names(result: Any, community: str, ask: Callable[[str, list[str]], dict | None]) -> Any:
    """`result` with display names beside the person ids it lists; `ask(community, ids)` is the
    directory's `display_names` (None if it did not answer)."""
    found: set[str] = set()
    _ids(result, found)
    if not found:
        return result
    try:
        names = ask(community, sorted(found)[:MAX_IDS])
    except Exception as exc:  # noqa: BLE001 - names are a courtesy; the answer itself stands
        log.warning("no display names for an answer: %r", exc)
        return result
    if not names:
        return result
    return _named(result, names)
