"""The session cookie, sealed: the person's bearer token never reaches the browser in the clear.

AES-GCM (authenticated encryption) with a 256-bit key kept in the data folder (`web/cookie.key`,
made once, mode 0600), so every web process of a deployment opens every other's cookies and a
restart signs nobody out. A cookie altered, forged or sealed under another key opens as None.
CSRF tokens are HMACs of a random per-browser value under a key derived from the same secret."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.common import keyfile

AAD = b"consult-web-session-v1"


def load_key(data_dir: Path) -> bytes:
    path = data_dir / "web" / "cookie.key"
    key = keyfile.made_once(path, lambda: secrets.token_bytes(32))
    if len(key) != 32:
        raise RuntimeError(f"{path} must hold 32 bytes")
    return key


class Sealer:
    def __init__(self, key: bytes):
        self._aead = AESGCM(hashlib.sha256(b"seal" + key).digest())
        self._csrf_key = hashlib.sha256(b"csrf" + key).digest()

    def seal(self, data: dict) -> str:
        nonce = os.urandom(12)
        blob = self._aead.encrypt(nonce, json.dumps(data, separators=(",", ":")).encode(), AAD)
        return base64.urlsafe_b64encode(nonce + blob).decode().rstrip("=")

    def open(self, value: str | None) -> dict | None:
        if not value or len(value) > 4000:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], AAD))
        except Exception:  # noqa: BLE001 - any tampering or garbage: no session
            return None
        return data if isinstance(data, dict) else None

    def csrf(self, browser: str) -> str:
        return hmac.new(self._csrf_key, browser.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, browser: str | None, presented: str | None) -> bool:
        if not browser or not presented:
            return False
        return hmac.compare_digest(self.csrf(browser), presented)
