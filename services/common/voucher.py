"""A relay's voucher for what it publishes: how a consumer takes a message from the bus as the
source's own log entry without asking the source's log for each batch.

The tracked consumer applies a message only if it is, byte for byte, the envelope the source's log
records at its position (`consumer.TrackedConsumer.process_many`). Asked of the log, that check is
one `read_log` RPC to the source per batch of messages, and a consumer that keeps up takes batches
of one to a few: the source serves a read of its log, and the broker carries two more messages, for
every batch of every consumer (docs/performance.md, docs/scaling.md: this is most of what a second
cell costs per vote).

So the relay vouches for each message it publishes: an HMAC-SHA256, under the deployment's bus key,
of the deployment's prefix, the source's name on the bus, the relay's *term* and the message's body,
sent in the message's headers. The key is CONSULT_BUS_KEY, or else `bus.key` in the data folder,
made once by whichever process needs it first (`keyfile.made_once`), so every process of the
deployment holds it and nothing else does: a message published on the vhost by anyone else (the `forged-message` fault,
docs/reliability.md) carries no valid voucher, is checked against the log as before, and is set
aside. The key is a secret: it never enters a log line, an error text or a message.

The term is a random value a relay draws each time it takes the lease to publish a source. A
consumer believes a vouched message only once a message of the same term has passed the full check
against the log (`Believed`); until then, and for any message without a voucher, it checks as it
always did. The check after a new term keeps the log the truth when the log itself changed under
the bus: a source whose store was recreated starts a new relay term, so the messages of the old
store that the broker still holds -- vouched, of positions the new log may hold otherwise -- are
each checked against the log and set aside where it differs. Limit: a consumer process that already
believed the old term, kept running while a source's store was put back to an earlier state, would
believe the old term's messages still queued; the platform is stopped for such a restore.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from . import keyfile
from .config import Settings

KEY_FILE = "bus.key"
TERM = "term"  # the message headers the voucher travels in
MAC = "mac"
_keys: dict[str, bytes] = {}


def key(settings: Settings) -> bytes:
    """CONSULT_BUS_KEY if set (processes on several hosts share it so), else the data folder's file."""
    if settings.bus_key is not None:
        return keyfile.configured(settings.bus_key, "CONSULT_BUS_KEY")
    path = settings.data_dir / KEY_FILE
    found = _keys.get(str(path))
    if found is None:
        found = _keys[str(path)] = keyfile.made_once(path, lambda: secrets.token_bytes(32))
    return found


def new_term() -> str:
    return secrets.token_hex(8)


def _mac(settings: Settings, source_key: str, term: str, body: bytes) -> str:
    head = f"consult-bus-v1\n{settings.prefix}\n{source_key}\n{term}\n".encode()
    return hmac.new(key(settings), head + body, hashlib.sha256).hexdigest()


def headers(settings: Settings, source_key: str, term: str, body: bytes) -> dict:
    """The headers that vouch for `body`, published by the relay of `source_key` in `term`."""
    return {TERM: term, MAC: _mac(settings, source_key, term, body)}


def term_of(settings: Settings, source_key: str, headers: dict | None, body: bytes | str) -> str | None:
    """The relay term that vouches for this message, or None when nothing valid does."""
    term, mac = (headers or {}).get(TERM), (headers or {}).get(MAC)
    if not isinstance(term, str) or not isinstance(mac, str):
        return None
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return term if hmac.compare_digest(mac, _mac(settings, source_key, term, raw)) else None


class Believed:
    """Per source, the relay terms a consumer has seen a message of pass the check against the log:
    their later messages need no such check. The last few are kept, so that a lease moving between
    two relays and back does not start over."""

    KEEP = 4

    def __init__(self) -> None:
        self._terms: dict[str, list[str]] = {}

    def __contains__(self, source_term: tuple[str, str | None]) -> bool:
        source, term = source_term
        return term is not None and term in self._terms.get(source, ())

    def add(self, source: str, term: str | None) -> None:
        if term is None:
            return
        terms = self._terms.setdefault(source, [])
        if term not in terms:
            terms.append(term)
            del terms[:-self.KEEP]
