"""A small JSON Schema subset: the request schemas are the OpenAPI schemas, checked here.

Supported keywords: type (object, array, string, integer, boolean, null, or a list of them),
properties, required, additionalProperties (false), minLength, maxLength, pattern, enum,
minimum, maximum, items, minItems, maxItems, format "uuid"/"date-time"/"decimal".
"""
from __future__ import annotations

import re
import uuid

from services.common.errors import InvalidInput

_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}
DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"


def _is_type(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int,)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def check(value, schema: dict, path: str = "body") -> None:
    """Raise InvalidInput naming the first offending field."""
    errors = list(_errors(value, schema, path))
    if errors:
        raise InvalidInput(errors[0], errors=[{"message": e} for e in errors[:20]])


def _errors(value, schema: dict, path: str):
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, n) for n in names):
            yield f"{path} must be of type {' or '.join(names)}"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path} must be one of: {', '.join(map(str, schema['enum']))}"
        return
    if isinstance(value, str):
        if "minLength" in schema and len(value.strip()) < schema["minLength"]:
            yield f"{path} must not be empty" if schema["minLength"] == 1 else f"{path} is too short"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{path} is too long (at most {schema['maxLength']} characters)"
        fmt = schema.get("format")
        if fmt == "uuid":
            try:
                uuid.UUID(value)
            except ValueError:
                yield f"{path} must be a UUID"
        elif fmt == "decimal" and not re.match(DECIMAL, value):
            yield f"{path} must be a decimal number written as a string, like '75.5'"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield f"{path} has the wrong format"
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{path} must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{path} must be at most {schema['maximum']}"
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield f"{path} needs at least {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield f"{path} has too many items (at most {schema['maxItems']})"
        if "items" in schema:
            for i, item in enumerate(value):
                yield from _errors(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                yield f"{path}.{name} is required"
        if schema.get("additionalProperties") is False:
            for name in value:
                if name not in props:
                    yield f"{path}.{name} is not a known field"
        for name, sub in props.items():
            if name in value:
                yield from _errors(value[name], sub, f"{path}.{name}")


# Shorthands used by route modules.
def obj(required=(), **props) -> dict:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


def text(max_len: int = 5000, min_len: int = 1) -> dict:
    return {"type": "string", "minLength": min_len, "maxLength": max_len}


def uuid_str(nullable: bool = False) -> dict:
    s = {"type": "string", "format": "uuid"}
    return {"type": ["string", "null"], "format": "uuid"} if nullable else s


def decimal() -> dict:
    return {"type": "string", "format": "decimal", "maxLength": 30}


def when(nullable: bool = True) -> dict:
    return {"type": ["string", "null"] if nullable else "string", "maxLength": 40,
            "description": "a date YYYY-MM-DD or an ISO-8601 time with zone"}
