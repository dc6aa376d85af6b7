"""Reading a directory CSV file (households and their owners) and checking it row by row and
across rows, before anything is recorded. Pure: no stores; the application resolves the owners
against the directory and saves the whole file in one transaction.

Owners are told apart by an owner key (a property-certificate number, a phone number, a resident
number — whatever stable identifier the community keeps), never by name: two rows with the same
name are the same person only when they give the same key. The key text never leaves this
module's rows except as the HMAC the application derives from it, and no message quotes it.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from services.common.errors import InvalidInput

from .domain import parse_area

REQUIRED = ("compound", "building", "unit", "area", "owners")
OPTIONAL = ("owner_keys", "representative", "developer_unsold", "effective")
MAX_KEY = 200
# One file is one save of all its events, sent to PostgreSQL in one pipeline (eventsourcing's
# insert: executemany, then sync). At 30,000 rows (some 60,000 events) psycopg 3.3.9 and the server
# were seen waiting on each other for good (the server in ClientRead, the client in the pipeline's
# sync), holding the event store's table lock; at 10,000 rows, in 2 of 7 runs (each the first after a
# pause); at 5,000 rows never (in 3 runs, each after a pause). A larger directory is imported in
# parts, each whole (5,000 rows: about 6 s on PostgreSQL, docs/performance.md).
MAX_ROWS = 5_000
_TRUE, _FALSE = ("1", "true", "yes", "y"), ("", "0", "false", "no", "n")
_KEY_NOISE = re.compile(r"[\s\-‐-―－]+")


def normalise_key(text: str) -> str:
    """The form keys are compared in: Unicode NFKC (full-width digits become ASCII), letter case,
    spaces and hyphens ignored — '138-0013 8000' and '13800138000' are the same key."""
    return _KEY_NOISE.sub("", unicodedata.normalize("NFKC", text)).casefold()


@dataclass
class Owner:
    name: str
    key: str | None  # normalised; None when the row gives no key for this owner


@dataclass
class Row:
    line: int
    compound: str
    building: str
    unit: str
    area: Decimal
    developer_unsold: bool
    owners: list[Owner]
    representative: int | None  # index into owners (a sole owner represents the unit)
    effective: str


def fail(errors: list[dict]) -> None:
    """Refuse the file: the first error in the detail, every error (by line) in `errors`."""
    errors = sorted(errors, key=lambda e: e["line"])
    first = errors[0]
    if len(errors) > 1:
        raise InvalidInput.coded("communities.csv_line_and_more", line=first["line"], message=first["message"],
                                 more=len(errors) - 1, extra={"errors": errors})
    raise InvalidInput.coded("communities.csv_line", line=first["line"], message=first["message"],
                             extra={"errors": errors})


def _row(line: int, row: dict, effective_time: Callable[[str | None], str]) -> Row:
    if not row["compound"] or not row["building"] or not row["unit"]:
        raise InvalidInput.coded("communities.compound_building_unit_required")
    if len(row["unit"]) > 40 or len(row["building"]) > 200 or len(row["compound"]) > 200:
        raise InvalidInput.coded("communities.name_too_long")
    area = parse_area(row["area"])
    flag = row.get("developer_unsold", "").lower()
    if flag not in _TRUE + _FALSE:
        raise InvalidInput.coded("communities.developer_unsold_true_false")
    dev = flag in _TRUE
    names = [o.strip() for o in row["owners"].split(";") if o.strip()]
    if dev and names:
        raise InvalidInput.coded("communities.unit_developer_sold_other")
    if not dev and not names:
        raise InvalidInput.coded("communities.owners_required_names_separated")
    if any(len(n) > 100 for n in names):
        raise InvalidInput.coded("communities.owner_name_too_long")
    if len(set(names)) != len(names):
        raise InvalidInput.coded("communities.owner_listed_twice")
    keys_cell = row.get("owner_keys", "")
    keys: list[str | None] = [None] * len(names)
    if keys_cell:
        given = [k.strip() for k in keys_cell.split(";")]
        if len(given) != len(names):
            raise InvalidInput.coded("communities.owner_keys_gives_keys", given_count=len(given),
                                     names_count=len(names))
        if any(len(k) > MAX_KEY for k in given):
            raise InvalidInput.coded("communities.owner_key_too_long", max_key=MAX_KEY)
        keys = [normalise_key(k) or None for k in given]
        present = [k for k in keys if k]
        if len(set(present)) != len(present):
            raise InvalidInput.coded("communities.two_owners_unit_same")
    rep_name = row.get("representative") or None
    if len(names) > 1 and not rep_name:
        raise InvalidInput.coded("communities.co_owned_unit_needs")
    if rep_name and rep_name not in names:
        raise InvalidInput.coded("communities.representative_one_owners")
    rep = names.index(rep_name) if rep_name else (0 if len(names) == 1 else None)
    return Row(line, row["compound"], row["building"], row["unit"], area, dev,
               [Owner(n, k) for n, k in zip(names, keys)], rep, effective_time(row.get("effective") or None))


def parse(text: str, effective_time: Callable[[str | None], str]) -> list[Row]:
    """Every row checked on its own and against the others; a file with any error is refused
    with every error by line (line 1 is the header)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput.coded("communities.csv_file_empty")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        fail([{"line": 1, "message": f"missing columns: {', '.join(missing)}"}])
    errors: list[dict] = []
    rows: list[Row] = []
    seen_units: dict[tuple, int] = {}
    for line, raw in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            raise InvalidInput.coded("communities.csv_too_many_rows", max_rows=MAX_ROWS)
        cells = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        try:
            row = _row(line, cells, effective_time)
            unit = (row.compound, row.building, row.unit)
            if unit in seen_units:
                raise InvalidInput.coded("communities.unit_appears_twice_file", unit=row.unit,
                                         seen_units=seen_units[unit])
            seen_units[unit] = line
            rows.append(row)
        except InvalidInput as exc:
            errors.append({"line": line, "message": exc.detail})
    if not rows and not errors:
        errors.append({"line": 2, "message": "the file has no data rows"})
    errors += _namesakes(rows) + _keys_with_two_names(rows)
    if errors:
        fail(errors)
    return rows


def _namesakes(rows: list[Row]) -> list[dict]:
    """A name on several rows is one person only if each of those rows gives the same key, and
    two people if the keys differ; without a key on every one of them nobody can tell, so the
    file is refused at each of those lines rather than merging (or splitting) owners by name."""
    lines: dict[str, list[tuple[int, str | None]]] = {}
    for row in rows:
        for owner in row.owners:
            lines.setdefault(owner.name, []).append((row.line, owner.key))
    errors = []
    for name, where in lines.items():
        if len(where) > 1 and any(key is None for _line, key in where):
            listed = ", ".join(str(line) for line, _key in where)
            for line, _key in where:
                errors.append({"line": line, "message": (
                    f"the owner name {name} appears on lines {listed} and not every one of them gives an owner "
                    "key: owners are told apart only by their keys (column owner_keys), never merged by name")})
    return errors


def _keys_with_two_names(rows: list[Row]) -> list[dict]:
    names: dict[str, dict[str, int]] = {}
    for row in rows:
        for owner in row.owners:
            if owner.key:
                names.setdefault(owner.key, {}).setdefault(owner.name, row.line)
    errors = []
    for by_name in names.values():
        if len(by_name) > 1:
            listed = ", ".join(str(line) for line in sorted(by_name.values()))
            for line in by_name.values():
                errors.append({"line": line, "message": (
                    f"one owner key is given for different names (lines {listed}); a key names one person")})
    return errors
