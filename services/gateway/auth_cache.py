"""The gateway's short cache of sign-ins, emptied at once when a token or a role is revoked.

Authenticating asks the directory over RPC; the answer is kept for AUTH_TTL seconds so a busy
client does not cost one RPC per request. A revocation must not wait for that expiry: every
gateway instance binds its own exclusive queue to the events exchange for the directory's
`TokenRevoked` and `PersonRoleRevoked` events and forgets the sign-ins they concern as they
arrive. The directory answers a revocation only after the relay has published its event, so by
then the invalidation is already queued for every gateway. The instance that took the revoking
request also forgets at once, before answering. While the listener is disconnected it cannot hear
revocations, so on every (re)connection the whole cache is dropped.
"""
from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
import uuid

from kombu import Consumer, Queue, binding
from nameko.extensions import DependencyProvider

from services.common import bus, config, envelope

log = logging.getLogger(__name__)

AUTH_TTL = 5.0
MAX_ENTRIES = 10_000
# Events of the directory after which a cached sign-in may be wrong.
REVOCATIONS = ("TokenRevoked", "PersonRoleRevoked")


class AuthCache:
    """token digest -> (cached at, principal). The token itself is never kept."""

    def __init__(self, ttl: float = AUTH_TTL):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()
        # Moves on every revocation heard: an answer asked for before one is not cached after it.
        self.generation = 0

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> dict | None:
        hit = self._entries.get(self._key(token))
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    def put(self, token: str, principal: dict, asked_at: int) -> None:
        """Cache a sign-in the directory gave; `asked_at` is the generation read before asking."""
        with self._lock:
            if asked_at != self.generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[self._key(token)] = (time.monotonic(), principal)

    def forget(self, *, token_id: str | None = None, person: str | None = None) -> int:
        """Drop the sign-ins of one token (by its id) or of every token of one person."""
        with self._lock:
            gone = [k for k, (_t, p) in self._entries.items()
                    if (token_id and p.get("token") == token_id) or (person and p.get("person") == person)]
            for k in gone:
                del self._entries[k]
            self.generation += 1
        return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1

    def apply(self, env: dict) -> None:
        """Forget what one revocation event concerns."""
        if env.get("type") == "TokenRevoked":
            self.forget(token_id=env["aggregate"]["id"])
        elif env.get("type") == "PersonRoleRevoked":
            self.forget(person=env["aggregate"]["id"])


CACHE = AuthCache()  # one per gateway process: the routes that revoke reach it too


class RevocationListener(DependencyProvider):
    """Keeps CACHE in step with revocations from the bus; injects CACHE into the gateway."""

    def setup(self):
        self.settings = config.load()
        self._stopped = False

    def start(self):
        self.container.spawn_managed_thread(self._run, identifier="gateway-revocations")

    def stop(self):
        self._stopped = True

    def kill(self):
        self._stopped = True

    def get_dependency(self, worker_ctx):
        return CACHE

    def _queue(self) -> Queue:
        exchange = bus.exchange(self.settings)
        return Queue(f"{self.settings.prefix}.gateway.revocations.{uuid.uuid4().hex[:12]}", exclusive=True,
                     auto_delete=True, durable=False,
                     bindings=[binding(exchange, routing_key=f"communities.{kind}.*") for kind in REVOCATIONS])

    def _on_message(self, message) -> None:
        try:
            CACHE.apply(envelope.decode(message.body, upcast=False))
        except Exception:  # noqa: BLE001 - an unreadable message: forget everything rather than guess
            log.exception("gateway: unreadable revocation message; dropping every cached sign-in")
            CACHE.clear()
        message.ack()

    def _run(self) -> None:
        while not self._stopped:
            try:
                with bus.connect(self.settings) as conn:
                    conn.ensure_connection(max_retries=None, interval_start=0.5, interval_step=0.5, interval_max=2)
                    channel = conn.channel()
                    bus.exchange(self.settings)(channel).declare()
                    with Consumer(channel, queues=[self._queue()], on_message=self._on_message, accept=["json"]):
                        CACHE.clear()  # whatever was revoked while we were not listening
                        while not self._stopped:
                            try:
                                conn.drain_events(timeout=0.5)
                            except socket.timeout:
                                pass
            except Exception:  # noqa: BLE001 - reconnect; meanwhile entries still expire after AUTH_TTL
                if self._stopped:
                    return
                log.exception("gateway: the revocation listener lost its connection; reconnecting")
                CACHE.clear()
                time.sleep(1.0)
