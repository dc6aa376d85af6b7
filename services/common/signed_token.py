"""Sign-in tokens the directory signs, so that a gateway can check one without asking it.

Why: every request with a bearer token cost one `authenticate` RPC to the directory (the gateway's
cache keeps an answer 5 s, and a resident who votes once never hits it). Counted per vote, that RPC
was about a fifth of the whole platform's CPU (docs/performance.md). A token the directory signs
when it issues it carries what a request needs to know of its sender -- the token's id, the person,
the community (none for a platform administrator) and the expiry -- so a gateway that holds the
directory's public key checks it with one Ed25519 verification.

What does not change: the token stays a bearer secret whose SHA-256 the directory stores, so
`authenticate` checks a signed token as it checks every other, and a token issued before signing
(an opaque `cst_…`) is checked over RPC as before. Roles are not in the token: they change and
expire on their own dates, so a route that needs them asks the directory (services/gateway/
auth_cache.py). Revocation is the gateway's to keep: a list of revoked ids loaded from the
directory and kept by its `TokenRevoked` events (auth_cache.py says when it is trusted).

Only the directory holds the private key: CONSULT_TOKEN_KEY (at least 32 characters; processes
on several hosts share it so), or else `token-signing.key` in the data folder, made once by
whichever process needs it first. The gateways are given the public key over RPC, so a gateway
can check tokens but never mint one. The claims are readable (base64 of packed ids): a token
reveals its holder's person id to whoever holds it, who can act as that person anyway.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import clock, keyfile
from .ids import as_uuid
from .config import Settings

PREFIX = "cst_1."  # the `cst_` of every consult token, then the signed format's version
KEY_FILE = "token-signing.key"
_DOMAIN = b"consult-sign-in-token-v1\n"  # a signature of this key means nothing else
MAX_LENGTH = 200  # longer is no token of ours: refused before any decoding


def private_key(settings: Settings) -> Ed25519PrivateKey:
    """The directory's signing key: from CONSULT_TOKEN_KEY, else the data folder's file."""
    if settings.token_key is not None:
        seed = hashlib.sha256(keyfile.configured(settings.token_key, "CONSULT_TOKEN_KEY")).digest()
    else:
        seed = keyfile.made_once(settings.data_dir / KEY_FILE, lambda: secrets.token_bytes(32))
    return _from_seed(seed)


@lru_cache(maxsize=8)
def _from_seed(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The public half, as the gateways are given it (base64url of its 32 raw bytes)."""
    return _b64(key.public_key().public_bytes_raw())


@lru_cache(maxsize=8)
def public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_unb64(text))


def sign(key: Ed25519PrivateKey, *, token_id: str, person: str, community: str | None,
         expires_at: str | None) -> str | None:
    """A token carrying these claims, or None if they have no compact form (ids that are not
    UUIDs: the caller then issues an opaque token, checked over RPC). `expires_at` None: as long
    as the deployment; else a time as `clock.format` writes it.

    The claims are packed, not JSON, so that a token stays short enough to paste (the sign-in
    page takes 200 characters; this is 168 at most): a flags byte, the token's id, the person's
    (a UUID, or `admin-<UUID>` for a platform administrator), the community's if any, and the
    expiry in microseconds since 1970 (-1: none), then the 64-byte signature."""
    admin = isinstance(person, str) and person.startswith(_ADMIN)
    texts = [token_id, person[len(_ADMIN):] if admin else person] + ([community] if community is not None else [])
    ids = [as_uuid(text) for text in texts]
    if any(i is None or str(i) != text for i, text in zip(ids, texts)):
        return None  # only ids written as the claims will give them back
    try:
        micros = -1 if expires_at is None else _micros(expires_at)
    except (ValueError, TypeError):
        return None
    packed = bytes([(_HAS_COMMUNITY if community is not None else 0) | (_ADMIN_PERSON if admin else 0)])
    packed += b"".join(i.bytes for i in ids)
    if expires_at is not None and _time(micros) != expires_at:
        return None  # not in clock.format's form: it would not come back as it went
    packed += micros.to_bytes(8, "big", signed=True)
    return PREFIX + _b64(packed + key.sign(_DOMAIN + packed))


def claims(token: str, key: Ed25519PublicKey) -> dict | None:
    """The claims of a token this key signed -- {"t": token id, "p": person, "c": community or
    None, "e": expiry or None} -- or None: not of the signed format, malformed, or its signature is
    not this key's over exactly these claims. Expiry and revocation are the caller's to check."""
    if not isinstance(token, str) or len(token) > MAX_LENGTH or not token.startswith(PREFIX):
        return None
    try:
        raw = _unb64(token[len(PREFIX):])
    except ValueError:
        return None
    length = _length(raw[0]) if raw else -1
    if length < 0 or len(raw) != length + _SIGNATURE:
        return None
    packed, signature = raw[:-_SIGNATURE], raw[-_SIGNATURE:]
    try:
        key.verify(signature, _DOMAIN + packed)
    except InvalidSignature:
        return None
    flags = packed[0]
    person = str(uuid.UUID(bytes=packed[17:33]))
    community = str(uuid.UUID(bytes=packed[33:49])) if flags & _HAS_COMMUNITY else None
    micros = int.from_bytes(packed[-8:], "big", signed=True)
    return {"t": str(uuid.UUID(bytes=packed[1:17])), "p": _ADMIN + person if flags & _ADMIN_PERSON else person,
            "c": community, "e": None if micros == -1 else _time(micros)}


_HAS_COMMUNITY, _ADMIN_PERSON = 1, 2
_ADMIN = "admin-"  # a platform administrator's person id (services/communities/application.py)
_SIGNATURE = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _length(flags: int) -> int:
    """The packed claims' length for these flags (-1 for flags no token has)."""
    if flags & ~(_HAS_COMMUNITY | _ADMIN_PERSON):
        return -1
    return 1 + 16 + 16 + (16 if flags & _HAS_COMMUNITY else 0) + 8


def _micros(text: str) -> int:
    delta = clock.parse(text) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time(micros: int) -> str:
    return clock.format(_EPOCH + timedelta(microseconds=micros))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.replace("-", "").replace("_", "").isalnum() or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
