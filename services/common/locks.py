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

DEFAULT_TIMEOUT_S = 30.0
SQLITE_STRIPES = 64


class LockTimeout(DomainError):
    """The lock stayed taken for too long: the caller may try again; nothing was recorded."""

    status = 503
    title = "Busy"


class KeyedLocks:
    def __init__(self, settings: Settings, engine: sa.Engine, namespace: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.settings, self.namespace, self.timeout_s = settings, namespace, timeout_s
        self._pg = None
        if engine.dialect.name == "postgresql":
            # Same database and credentials as the state engine, own pool: a waiter must never take
            # the connection the holder needs to finish.
            self._pg = sa.create_engine(engine.url, pool_size=1, max_overflow=4, pool_timeout=timeout_s,
                                        pool_pre_ping=True)
        else:
            self._dir = settings.data_dir / "locks"
            self._dir.mkdir(parents=True, exist_ok=True)
        self._local: dict[int, list] = {}  # lock id -> [threading.Lock, users]
        self._local_guard = threading.Lock()

    def _digest(self, key: str) -> bytes:
        # The prefix keeps deployments (and test platforms) that share a database apart.
        return hashlib.blake2b(f"{self.settings.prefix}/{self.namespace}/{key}".encode(), digest_size=8).digest()

    def _id(self, key: str) -> int:
        return int.from_bytes(self._digest(str(key)), "big", signed=True)

    @contextmanager
    def hold(self, *keys: str):
        """Hold the locks of all keys for the duration of the block."""
        deadline = time.monotonic() + self.timeout_s
        ids = sorted({self._id(k) for k in keys})
        with self._in_process(ids, deadline):
            if self._pg is not None:
                with self._pg.connect() as conn, conn.begin():
                    for lock_id in ids:
                        self._wait(deadline, lambda: conn.execute(
                            sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_id}).scalar())
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

    def _wait(self, deadline: float, try_once) -> None:
        while not try_once():
            if time.monotonic() > deadline:
                raise LockTimeout.coded("common.busy_try_again", namespace=self.namespace)
            time.sleep(0.001 + random.random() * 0.004)  # green under eventlet

    @contextmanager
    def _flock(self, path, deadline: float):
        # A fresh open file description per holder: flock excludes holders in the same process too.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        try:
            self._wait(deadline, try_once)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._pg is not None:
            self._pg.dispose()
