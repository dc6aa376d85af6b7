"""Named locks shared by every instance of a service: mutual exclusion per key, across processes
and across the green threads of one process.

Optimistic concurrency guards one aggregate. Some rules span several aggregates that must not grow
into one (a proposal and its supports, a ballot and its votes): "no support is recorded after the
proposal qualified", "the count recorded at qualification is exact". Those commands hold the lock of
the parent (the proposal, the ballot) while they check and save, so the check and the save are one
step for everyone else. Hold a lock only around local work (no RPC inside), and take several keys
in one `hold(...)` call: keys are always taken in the same (sorted) order, so holders never deadlock.
Never nest two holds of the same KeyedLocks (on SQLite two keys may share a stripe); a lock taken
inside another one belongs to its own namespace, and is always the inner one.

Within a process, waiters for one key queue on a local (green) lock first, so only one of them at
a time goes on to take the shared lock: it costs one connection or file per key held, not per
waiter. Across processes: on PostgreSQL, transaction-scoped advisory locks on a small dedicated
pool (never a connection of the service's own pools); on SQLite, one lock file per stripe of keys
next to the databases, taken with flock. Both are tried without blocking, with a short sleep
between tries: psycopg waits in C under eventlet and a blocking flock blocks the OS thread, so a
blocking wait would stall every green thread of the process, the holder included (and two
processes waiting so on each other's holders would deadlock until the timeout).

`SessionLock` is the other kind: one right held until released, not for a transaction -- the
relay's lease on a source (exactly one instance publishes it), an instance creating its tables.
Both kinds name a lock by `advisory_id` (one key hash for the whole platform) and are tried
without blocking, for the same reason.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import random
import threading
import time
from contextlib import ExitStack, contextmanager

import sqlalchemy as sa

from .config import Settings
from .errors import DomainError
from .pooling import ping_when_idle

DEFAULT_TIMEOUT_S = 30.0
SQLITE_STRIPES = 64


class LockTimeout(DomainError):
    """The lock stayed taken for too long: the caller may try again; nothing was recorded."""

    status = 503
    title = "Busy"


def advisory_id(settings: Settings, namespace: str, key) -> int:
    """The one lock id of (namespace, key) in this deployment: a signed 64-bit number, as
    PostgreSQL's advisory locks take, from an 8-byte BLAKE2b of the deployment's prefix, the
    namespace and the key. The prefix keeps deployments (and test platforms) sharing a database
    apart; the namespace keeps a proposal's lock from a ballot's of the same id."""
    scope = settings.prefix if settings.cell is None else f"{settings.prefix}/{settings.cell}"  # cells never share a lock
    digest = hashlib.blake2b(f"{scope}/{namespace}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def take_transaction_turn(conn, lock_id: int, namespace: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Take a transaction-scoped advisory lock on `conn` itself (PostgreSQL), tried without
    blocking as every lock here is; it ends with the transaction. For a turn whose whole work is
    one transaction of one connection (a read model's, `SqlSink.turn`): one statement, instead of a
    dedicated connection and its own transaction as `KeyedLocks.hold` takes."""
    deadline = time.monotonic() + timeout_s
    _wait(deadline, lambda: conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_id}).scalar(),
          namespace)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _wait(deadline: float, try_once, namespace: str) -> None:
    """Try until it works or the deadline passes (LockTimeout), sleeping a few milliseconds in
    between: green under eventlet, where a blocking wait would stall the whole process."""
    while not try_once():
        if time.monotonic() > deadline:
            raise LockTimeout.coded("common.busy_try_again", namespace=namespace)
        time.sleep(0.001 + random.random() * 0.004)


class KeyedLocks:
    def __init__(self, settings: Settings, engine: sa.Engine, namespace: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.settings, self.namespace, self.timeout_s = settings, namespace, timeout_s
        self._pg = None
        if engine.dialect.name == "postgresql":
            # Same database and credentials as the state engine, own pool: a waiter must never take
            # the connection the holder needs to finish.
            self._pg = ping_when_idle(sa.create_engine(engine.url, pool_size=1, max_overflow=4,
                                                       pool_timeout=timeout_s))
        else:
            self._dir = settings.data_dir / "locks"
            self._dir.mkdir(parents=True, exist_ok=True)
        self._local: dict[int, list] = {}  # lock id -> [threading.Lock, users]
        self._local_guard = threading.Lock()

    def _id(self, key: str) -> int:
        return advisory_id(self.settings, self.namespace, key)

    @contextmanager
    def hold(self, *keys: str):
        """Hold the locks of all keys for the duration of the block."""
        deadline = time.monotonic() + self.timeout_s
        ids = sorted({self._id(k) for k in keys})
        with self._in_process(ids, deadline):
            if self._pg is not None:
                with self._pg.connect() as conn, conn.begin():
                    for lock_id in ids:
                        take_transaction_turn(conn, lock_id, self.namespace, deadline - time.monotonic())
                    yield  # the transaction, and with it every lock, ends with the block
                return
            with ExitStack() as stack:
                for stripe in sorted({lock_id % SQLITE_STRIPES for lock_id in ids}):
                    stack.enter_context(self._flock(self._dir / f"{self.namespace}-{stripe:02d}.lock", deadline))
                yield

    @contextmanager
    def _in_process(self, ids: list[int], deadline: float):
        with self._local_guard:
            entries = [self._local.setdefault(lock_id, [threading.Lock(), 0]) for lock_id in ids]
            for entry in entries:
                entry[1] += 1
        try:
            with ExitStack() as stack:
                for lock, _users in entries:
                    if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.001)):
                        raise LockTimeout.coded("common.busy_try_again", namespace=self.namespace)
                    stack.callback(lock.release)
                yield
        finally:
            with self._local_guard:
                for lock_id, entry in zip(ids, entries):
                    entry[1] -= 1
                    if not entry[1]:
                        del self._local[lock_id]

    @contextmanager
    def _flock(self, path, deadline: float):
        # A fresh open file description per holder: flock excludes holders in the same process too.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _wait(deadline, lambda: _try_flock(fd), self.namespace)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._pg is not None:
            self._pg.dispose()


class SessionLock:
    """An exclusive right across the instances of a deployment, held from `try_acquire` until
    `release` (or until the holder dies): PostgreSQL's session advisory lock on a connection of its
    own, kept open while held; on SQLite, flock on a file in the data folder. `still_held` tells a
    long holder (the relay) whether a dead database session took the right away."""

    CHECK_EVERY_S = 1.0

    def __init__(self, settings: Settings, namespace: str, key: str, engine: sa.Engine | None = None):
        self.settings, self.namespace, self.key = settings, namespace, key
        self.id = advisory_id(settings, namespace, key)
        self._engine, self._own_engine = engine, None
        self._conn = None
        self._fd = None
        self._checked = 0.0

    def _pg(self) -> sa.Engine:
        if self._engine is None:
            from .store import pg_url  # store takes its creation lock from here

            self._own_engine = self._engine = sa.create_engine(pg_url(self.settings), poolclass=sa.pool.NullPool)
        return self._engine

    def try_acquire(self) -> bool:
        if self.settings.is_postgres:
            conn = self._pg().connect()
            try:
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.id}).scalar()
                conn.commit()
            except BaseException:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conn, self._checked = conn, time.monotonic()
            return True
        folder = self.settings.data_dir / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{self.namespace}-{self.id & 0xFFFFFFFFFFFFFFFF:016x}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_flock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        if time.monotonic() - self._checked < self.CHECK_EVERY_S:
            return True
        try:
            self._conn.execute(sa.text("SELECT 1")).scalar()
            self._conn.commit()
            self._checked = time.monotonic()
            return True
        except Exception:  # noqa: BLE001 - a dead session has lost the advisory lock
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # ends the session, and with it the advisory lock
            finally:
                self._conn = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._own_engine is not None:
            self._own_engine.dispose()
            self._own_engine = self._engine = None

    @contextmanager
    def held(self, timeout_s: float = DEFAULT_TIMEOUT_S):
        """Hold the right for the block, waiting for it up to `timeout_s` (LockTimeout after)."""
        _wait(time.monotonic() + timeout_s, self.try_acquire, self.namespace)
        try:
            yield
        finally:
            self.release()
