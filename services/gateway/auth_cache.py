"""The gateway's sign-ins: signed tokens checked here, and a short cache of the directory's answers
for the rest, both emptied at once when a token or a role is revoked.

A token the directory signed (services/common/signed_token.py) is checked here with the
directory's public key: its signature, its expiry, and a list of revoked token ids (`SignedSignIns`).
Any other token, and a signed one whenever this gateway cannot vouch for its list, is checked by
asking the directory over RPC, and that answer is kept for AUTH_TTL seconds so a busy client does
not cost one RPC per request.

A revocation must not wait for either. Every gateway instance binds its own exclusive queue to the
events exchange for the directory's `TokenRevoked` and `PersonRoleRevoked` events and applies them
as they arrive. The directory answers a revocation only after the relay has published its event,
so by then the invalidation is already queued for every gateway. The instance that took the
revoking request also applies it at once, before answering.

While the listener is disconnected it cannot hear revocations, so on every (re)connection the
cache is dropped, and signed tokens are checked here only again once the revoked list has been
loaded from the directory *after* the queue was bound (events heard meanwhile are added to it).
A connection that dies without a word is found by AMQP heartbeats (HEARTBEAT_S, checked every
0.5 s); signed tokens are trusted here only while the listener has shown its connection alive
within ALIVE_S. So a revocation reaches a signed token's check within the event's delivery, or
else within about 2 × HEARTBEAT_S of the connection going silent, when it falls back to the RPC:
no longer than the cache's AUTH_TTL.
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

from services.common import bus, clock, config, envelope, signed_token
from services.common.errors import Unauthorized

log = logging.getLogger(__name__)

AUTH_TTL = 5.0
HEARTBEAT_S = 2  # the listener's AMQP heartbeat: a silent connection is found within about twice this
SYNC_RETRY_S = 5.0  # after the directory failed to give its key and revoked list, ask again this much later
ALIVE_S = 3.0  # signed tokens are trusted only this long after the listener last saw its connection alive
MAX_ENTRIES = 10_000
# Events of the directory after which a cached sign-in may be wrong.
REVOCATIONS = ("TokenRevoked", "PersonRoleRevoked")


class SignedSignIns:
    """What this gateway knows to check signed tokens itself, and whether it may.

    States: not listening (no connection: every token asks the directory); listening but not
    synced (connected, the revoked list not yet loaded since: the same); synced (checked here
    while the connection was last seen alive within ALIVE_S). Each connection of the listener
    has its own number, so a list asked for on one connection is not taken on the next."""

    def __init__(self):
        self._lock = threading.Lock()
        self._connection = 0  # the listener connection's number while connected, else 0
        self._numbered = 0
        self._synced = 0  # the connection whose revoked list is loaded
        self._syncing = 0
        self._retry_at = 0.0  # after a failed ask: not before (the directory down, or of an older release)
        self._alive_at = 0.0
        self._key = None
        self.revoked: set[str] = set()

    # -- the listener's side
    def connected(self) -> None:
        """A new connection, its queue bound: trusted again once the list is asked for on it. The
        ids already heard are kept (never emptied: an event heard just before a reconnection may
        not be in a list the directory gives just after)."""
        with self._lock:
            self._numbered += 1
            self._connection = self._numbered
            self._alive_at = time.monotonic()

    def disconnected(self) -> None:
        with self._lock:
            self._connection = 0

    def alive(self) -> None:
        self._alive_at = time.monotonic()

    def revoke(self, token_id: str) -> None:
        with self._lock:
            self.revoked.add(str(token_id))

    # -- the requests' side
    def to_sync(self) -> int:
        """The connection whose list should be asked for now, or 0 (not connected, synced, or
        another request is asking). The one asked to sync must call `synced` or `sync_failed`."""
        with self._lock:
            if (not self._connection or self._synced == self._connection or self._syncing == self._connection
                    or time.monotonic() < self._retry_at):
                return 0
            self._syncing = self._connection
            return self._connection

    def synced(self, connection: int, reply: dict) -> None:
        with self._lock:
            self._syncing = 0
            if connection != self._connection:
                return  # the listener reconnected meanwhile: ask again on the new connection
            self._key = signed_token.public_key(reply["key"])
            self.revoked |= set(reply["revoked"])
            self._synced = connection

    def sync_failed(self) -> None:
        with self._lock:
            self._syncing = 0
            self._retry_at = time.monotonic() + SYNC_RETRY_S

    def trusted(self) -> bool:
        return bool(self._connection and self._synced == self._connection
                    and time.monotonic() - self._alive_at < ALIVE_S)

    def check(self, token: str) -> dict | None:
        """The sign-in of a signed token that this gateway can vouch for, or None: ask the
        directory (a token of another format, or forged, or expired, or revoked, or while the
        revoked list cannot be trusted; the directory then refuses or accepts it)."""
        if not self.trusted():
            return None
        claims = signed_token.claims(token, self._key)
        if claims is None or claims["t"] in self.revoked:
            return None
        if claims["e"] is not None and claims["e"] <= clock.format(clock.now()):
            return None
        return {"person": claims["p"], "community": claims["c"], "token": claims["t"],
                "expires_at": claims["e"], "platform_admin": claims["c"] is None}


class Principal(dict):
    """A signed token's sign-in. Its roles are not in the token: they are asked of the directory
    (`load_roles`, the cached RPC) the first time a route reads them, so a request that needs none
    -- a vote, a support, a comment -- does not ask."""

    def __init__(self, fields: dict, load_roles):
        super().__init__(fields)
        if fields["platform_admin"]:
            self["roles"] = [{"role": "platform_admin", "scope": None}]
        self._load_roles = load_roles

    def _fill(self, key) -> None:
        if key == "roles" and not dict.__contains__(self, "roles"):
            full = self._load_roles()
            if full.get("person") != self["person"] or full.get("token") != self["token"]:
                raise Unauthorized.coded("communities.token_unknown_expired_revoked")
            self["roles"] = full.get("roles", [])

    def get(self, key, default=None):
        self._fill(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self._fill(key)
        return super().__getitem__(key)


class AuthCache:
    """token digest -> (cached at, principal). The token itself is never kept."""

    def __init__(self, ttl: float = AUTH_TTL):
        self.ttl = ttl
        self.signed = SignedSignIns()
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
        """Drop the sign-ins of one token (by its id) or of every token of one person; a token
        forgotten is also refused as a signed one from now on."""
        if token_id:
            self.signed.revoke(token_id)
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
        CACHE.signed.disconnected()

    def kill(self):
        self._stopped = True
        CACHE.signed.disconnected()

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
            CACHE.signed.connected()  # and ask the directory's revoked list again before trusting one
        message.ack()

    def _run(self) -> None:
        while not self._stopped:
            try:
                with bus.connect(self.settings, heartbeat=HEARTBEAT_S) as conn:
                    conn.ensure_connection(max_retries=None, interval_start=0.5, interval_step=0.5, interval_max=2)
                    channel = conn.channel()
                    bus.exchange(self.settings)(channel).declare()
                    with Consumer(channel, queues=[self._queue()], on_message=self._on_message, accept=["json"]):
                        CACHE.clear()  # whatever was revoked while we were not listening
                        CACHE.signed.connected()
                        while not self._stopped:
                            try:
                                conn.drain_events(timeout=0.5)
                            except socket.timeout:
                                pass
                            conn.heartbeat_check()  # raises once the broker has been silent too long
                            CACHE.signed.alive()
            except Exception:  # noqa: BLE001 - reconnect; meanwhile entries still expire after AUTH_TTL
                CACHE.signed.disconnected()  # at once, not after the pause below
                if self._stopped:
                    return
                log.exception("gateway: the revocation listener lost its connection; reconnecting")
                CACHE.clear()
                time.sleep(1.0)
            finally:
                CACHE.signed.disconnected()
