"""Request schemas: the JSON Schemas routes declare, published as they are in /api/openapi.json and
checked by `jsonschema` (Draft 2020-12, the dialect of OpenAPI 3.1), so the document and the check
cannot differ.

A route's schemas are normalised once when it registers (`normalise`: the defaults below written
into the schema itself) and compiled once (`Checker`); a request only runs the compiled validator.
Refusals name the field and what is wrong with it ("body.title is too long (at most 200
characters)"), never echo the value.

Text: every string is one line without control characters (`LINE`), except the free-text fields
named in `FREE_TEXT`, which may also hold line breaks and tabs (`TEXT`). Integers without bounds get
those of a 32-bit integer. Formats checked: uuid (the hyphenated form), date-time (RFC 3339, with
its zone) and decimal (a decimal number written as a string: areas and money are never floats).
"""
from __future__ import annotations

import copy
import re
from datetime import datetime

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from services.common.errors import InvalidInput

DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DATE_TIME = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
             r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
# Control characters are Unicode's Cc: C0, DEL and C1. A line refuses all of them; free text
# allows tab, line feed and carriage return (a textarea's line breaks).
LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
# Properties that hold free text (several lines), whatever route they are on.
FREE_TEXT = frozenset({"body", "basis", "comment", "correction_reason", "description", "justification", "note",
                       "reason", "summary", "text"})
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

_DECIMAL_RE, _UUID_RE, _DATE_TIME_RE = re.compile(DECIMAL), re.compile(UUID), re.compile(DATE_TIME)

FORMATS = FormatChecker(formats=())


@FORMATS.checks("uuid")
def _is_uuid(value) -> bool:
    return not isinstance(value, str) or bool(_UUID_RE.fullmatch(value))


@FORMATS.checks("decimal")
def _is_decimal(value) -> bool:
    return not isinstance(value, str) or bool(_DECIMAL_RE.fullmatch(value))


@FORMATS.checks("date-time")
def _is_date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME_RE.fullmatch(value):
        return False
    try:  # the fields' ranges (month 13, hour 25, a leap second: refused)
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


FORMAT_MESSAGES = {
    "uuid": "must be a UUID",
    "decimal": "must be a decimal number written as a string, like '75.5'",
    "date-time": "must be an ISO-8601 time with its zone, like 2026-05-01T09:00:00+08:00",
}
PATTERN_MESSAGES = {
    LINE: "must be one line without control characters",
    TEXT: "must not contain control characters (line breaks and tabs are allowed)",
    DECIMAL: FORMAT_MESSAGES["decimal"],
}


# ---- normalising: the defaults written into the schema, so the published one is the checked one ----
def types_of(schema: dict) -> set:
    t = schema.get("type")
    return set(t) if isinstance(t, list) else {t} if t else set()


def normalise(schema: dict | None) -> dict | None:
    """A copy of `schema` with the text and integer defaults made explicit."""
    if schema is None:
        return None
    out = copy.deepcopy(schema)
    _normalise(out, free_text=False)
    return out


def _normalise(schema: dict, free_text: bool) -> None:
    types = types_of(schema)
    if "string" in types and not {"pattern", "format", "enum", "const"} & set(schema):
        schema["pattern"] = TEXT if free_text else LINE
    if "integer" in types:
        schema.setdefault("minimum", INT_MIN)
        schema.setdefault("maximum", INT_MAX)
    for name, sub in schema.get("properties", {}).items():
        _normalise(sub, free_text=name in FREE_TEXT)
    if isinstance(schema.get("items"), dict):
        _normalise(schema["items"], free_text=False)


# ---- checking ---------------------------------------------------------------------------------------
_PATTERNS: dict[str, re.Pattern] = {}


def _ecma(pattern: str) -> re.Pattern:
    """A schema pattern compiled with ECMA-262's meaning of a final `$` (the end of the text).
    Python's `$` also matches before a final line feed, so "75.5\\n" would pass a decimal pattern."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        translated = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
        compiled = _PATTERNS[pattern] = re.compile(translated)
    return compiled


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


# Draft 2020-12 as jsonschema implements it, with only `pattern` evaluated as ECMA-262 says.
Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


class Checker:
    """One schema, compiled once; `check` raises InvalidInput naming every offending field."""

    def __init__(self, schema: dict, root: str = "body"):
        Draft202012Validator.check_schema(schema)  # a route's mistake fails at start, not per request
        self.schema = schema
        self.root = root
        self._validator = Validator(schema, format_checker=FORMATS)

    def check(self, value) -> None:
        errors = sorted(self._validator.iter_errors(value), key=_order)
        if errors:
            found = []
            for e in errors:
                for field, message in _explain(e, self.root):
                    if (field, message) not in found:
                        found.append((field, message))
            raise InvalidInput.coded("input.schema", message=found[0][1],
                                     extra={"errors": [{"field": f, "message": m} for f, m in found[:20]]})


_RANK = {"type": 0, "required": 1, "additionalProperties": 2}


def _order(error: ValidationError):
    return len(error.absolute_path), _RANK.get(error.validator, 3), [str(p) for p in error.absolute_path]


def _field(root: str, path) -> str:
    out = root
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _explain(error: ValidationError, root: str):
    """(field, message) pairs for one jsonschema error, in our words, without the offending value."""
    where = _field(root, error.absolute_path)
    kind, limit, schema, value = error.validator, error.validator_value, error.schema, error.instance
    if kind == "required":
        for name in limit:
            if isinstance(value, dict) and name not in value:
                yield f"{where}.{name}", f"{where}.{name} is required"
        return
    if kind == "additionalProperties":
        known = schema.get("properties", {})
        for name in value:
            if name not in known:
                yield f"{where}.{name}", f"{where}.{name} is not a known field"
        return
    if kind == "type":
        names = limit if isinstance(limit, list) else [limit]
        message = f"must be of type {' or '.join(names)}"
    elif kind in ("enum", "const"):
        options = limit if kind == "enum" else [limit]
        message = f"must be one of: {', '.join(map(str, options))}"
    elif kind == "minLength":
        message = "must not be empty" if limit == 1 else f"is too short (at least {limit} characters)"
    elif kind == "maxLength":
        message = f"is too long (at most {limit} characters)"
    elif kind == "pattern":
        message = PATTERN_MESSAGES.get(limit, "has the wrong format")
    elif kind == "format":
        message = FORMAT_MESSAGES.get(limit, f"must be a {limit}")
    elif kind in ("minimum", "exclusiveMinimum"):
        message = f"must be at least {limit}" if kind == "minimum" else f"must be more than {limit}"
    elif kind in ("maximum", "exclusiveMaximum"):
        message = f"must be at most {limit}" if kind == "maximum" else f"must be less than {limit}"
    elif kind == "minItems":
        message = f"needs at least {limit} items"
    elif kind == "maxItems":
        message = f"has too many items (at most {limit})"
    elif kind == "minProperties":
        message = f"needs at least {limit} field{'s' if limit != 1 else ''}"
    elif kind == "maxProperties":
        message = f"has too many fields (at most {limit})"
    elif kind == "uniqueItems":
        message = "must not repeat an item"
    else:
        message = "is not valid"
    yield where, f"{where} {message}"


def query_schema(parameters: dict) -> dict:
    """The query parameters of a route as one object (each parameter optional, no others)."""
    return {"type": "object", "properties": parameters, "additionalProperties": False}


# ---- shorthands used by route modules ------------------------------------------------------------------
def obj(required=(), **props) -> dict:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


def text(max_len: int = 5000, min_len: int = 1) -> dict:
    return {"type": "string", "minLength": min_len, "maxLength": max_len}


def uuid_str(nullable: bool = False) -> dict:
    s = {"type": "string", "format": "uuid"}
    return {"type": ["string", "null"], "format": "uuid"} if nullable else s


# A yes/no query parameter, spelt as a query string does (the route compares it with "true").
QUERY_FLAG = ("true", "false")


def query_flag() -> dict:
    return {"type": "string", "enum": list(QUERY_FLAG)}


def decimal() -> dict:
    return {"type": "string", "format": "decimal", "pattern": DECIMAL, "maxLength": 30}


def when(nullable: bool = True) -> dict:
    return {"type": ["string", "null"] if nullable else "string", "maxLength": 40,
            "description": "a date YYYY-MM-DD or an ISO-8601 time with zone"}
