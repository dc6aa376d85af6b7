"""The one canonical JSON encoding of the platform: sorted keys, no insignificant whitespace,
UTF-8 characters as they are (no \\u escapes beyond what JSON requires), no NaN or infinity.

For the values the record holds (strings, integers within 2**53, booleans, null, objects, arrays;
decimals travel as strings) this is the byte sequence of RFC 8785 (JCS). Everything that is hashed,
signed or compared byte for byte uses it: event envelopes, checkpoints, the export's text lines and
its verification, webhook bodies, and here the roll's fingerprint and the seals. It lives in this
pure package because `rules` may import nothing of `services`, and every service may import
`rules`; `services.common.canonical` is where services find it.
"""
from __future__ import annotations

import json

# One encoder built once: json.dumps with these options would build it again on every call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_text(value: object) -> str:
    """`value` as canonical JSON text. Raises ValueError for NaN or infinity, TypeError for a value
    JSON has no form for."""
    return _ENCODER.encode(value)


def canonical_bytes(value: object) -> bytes:
    """`value` as canonical JSON, UTF-8 encoded: the bytes that are hashed and signed."""
    return _ENCODER.encode(value).encode("utf-8")
