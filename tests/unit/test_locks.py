"""KeyedLocks: one holder per key across threads (each with its own connection or file
description, as green threads and processes have), independent keys, a timeout that says busy."""
from __future__ import annotations

import threading
import time
import uuid

import psycopg
import sqlalchemy as sa
import pytest

from services.common import config
from services.common.locks import SQLITE_STRIPES, KeyedLocks, LockTimeout
from services.common.store import state_engine
from tests.harness import PG_URL, drop_schema, store_settings


@pytest.fixture(params=["sqlite", "postgres"])
def locks(request, tmp_path, monkeypatch):
    settings = store_settings(request.param, tmp_path, monkeypatch, "lk")
    engine = state_engine("locktest", settings)
    made = []

    def make(namespace: str = "things", timeout_s: float = 10.0) -> KeyedLocks:
        made.append(KeyedLocks(settings, engine, namespace, timeout_s))
        return made[-1]

    yield make
    for lk in made:
        lk.close()
    engine.dispose()
    if request.param == "postgres":
        drop_schema(settings.schema("locktest", "state"))


def test_one_holder_per_key_across_threads(locks):
    lk = locks()
    inside, most, counter, connections = [0], [0], [0], [0]
    guard = threading.Lock()

    def work():
        for _ in range(5):
            with lk.hold("proposal-1"):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                    if lk._pg is not None:  # waiters queue in the process, not on connections
                        connections[0] = max(connections[0], lk._pg.pool.checkedout())
                value = counter[0]
                time.sleep(0.002)  # a read-modify-write that would lose updates without the lock
                counter[0] = value + 1
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and counter[0] == 30 and connections[0] <= 1


def test_other_keys_and_other_namespaces_do_not_wait(locks):
    lk, other = locks(), locks("projection")
    # On SQLite keys share SQLITE_STRIPES lock files: take a key on a stripe of its own.
    taken = {lk._id(k) % SQLITE_STRIPES for k in ("a", "b")}
    free = next(k for k in (f"c{i}" for i in range(1000)) if lk._id(k) % SQLITE_STRIPES not in taken)
    with lk.hold("a", "b"):
        with other.hold("a"):  # an inner lock of its own namespace
            pass
        done = threading.Event()

        def another_key():
            with lk.hold(free):
                done.set()

        t = threading.Thread(target=another_key)
        t.start()
        assert done.wait(5)
        t.join()


def test_a_taken_lock_times_out_as_busy(locks):
    lk = locks(timeout_s=0.3)
    held, release = threading.Event(), threading.Event()

    def holder():
        with lk.hold("k"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(5)
    started = time.monotonic()
    with pytest.raises(LockTimeout) as exc:
        with lk.hold("k"):
            pass
    assert exc.value.status == 503 and 0.25 < time.monotonic() - started < 3
    release.set()
    t.join()
    with lk.hold("k"):  # free again
        pass


@pytest.fixture(params=["sqlite", "postgres"])
def session_settings(request, tmp_path, monkeypatch):
    return store_settings(request.param, tmp_path, monkeypatch, "lk")


def test_a_session_lock_has_one_holder_until_released(session_settings):
    """The relay's lease: one instance holds the right to publish a source until it lets go."""
    from services.common.locks import SessionLock

    first, second = (SessionLock(session_settings, "relay", "proposals") for _ in range(2))
    other_source = SessionLock(session_settings, "relay", "decisions")
    try:
        assert first.try_acquire() and first.still_held()
        assert not second.try_acquire() and not second.still_held()
        assert other_source.try_acquire(), "another source's lease is another lock"
        first.release()
        assert not first.still_held()
        # The server lets go of a session's advisory lock as it ends the closed session, a moment
        # after the client closed it (on a loaded machine, after the next try): free soon, not at once.
        deadline = time.monotonic() + 5
        while not second.try_acquire():
            assert time.monotonic() < deadline, "the lease is not free 5 s after its holder let go"
            time.sleep(0.05)
        assert second.still_held()
    finally:
        for lock in (first, second, other_source):
            lock.release()


def test_a_session_lock_waited_for_times_out_as_busy(session_settings):
    from services.common.locks import SessionLock

    holder = SessionLock(session_settings, "create", "proposals-state")
    assert holder.try_acquire()
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as exc:
            with SessionLock(session_settings, "create", "proposals-state").held(0.3):
                pass
        assert exc.value.status == 503 and 0.25 < time.monotonic() - started < 3
    finally:
        holder.release()
    with SessionLock(session_settings, "create", "proposals-state").held(0.3):  # free again
        pass


def test_a_postgres_session_lock_lost_with_its_session_is_known_lost(tmp_path, monkeypatch):
    """A holder whose database session died (a restart, a killed backend) has lost the right: it
    must stop publishing, and another instance may take over. (On SQLite the right is a file lock
    of the process itself: it is lost only with the process.)"""
    from services.common.locks import SessionLock

    monkeypatch.setenv("CONSULT_DB", PG_URL)
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_PREFIX", f"lk{uuid.uuid4().hex[:8]}")
    session_settings = config.load()

    lease = SessionLock(session_settings, "relay", "audit")
    assert lease.try_acquire()
    pid = lease._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    lease._conn.commit()
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    lease._checked = 0.0  # as if a second had passed since the last look
    assert not lease.still_held()
    other = SessionLock(session_settings, "relay", "audit")
    try:
        assert other.try_acquire()
    finally:
        other.release()


def test_a_read_models_turn_is_taken_in_its_own_transaction_and_waited_for_in_tries(tmp_path, monkeypatch):
    """PostgreSQL: a read model shared by several instances (`StageApplication(shared_turn=…)`)
    takes its turn as the first statement of each of its transactions (`SqlSink.turn`). Another
    holder makes it wait in tries, green-friendly, and time out as busy (503) -- never in a row-lock
    wait in C; once the holder's transaction ends it goes on."""
    from services.common.consumer import SqlSink
    from services.common.locks import advisory_id
    from services.common.tables import create_all

    monkeypatch.setenv("CONSULT_DB", PG_URL)
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_PREFIX", f"lk{uuid.uuid4().hex[:8]}")
    settings = config.load()
    engine = state_engine("locktest", settings)
    try:
        create_all(engine)
        applied = []
        sink = SqlSink("projection", engine, lambda conn, env: applied.append(env["position"]))
        sink.turn, sink.turn_timeout_s = advisory_id(settings, "locktest-projection", "read-model"), 0.3
        other = psycopg.connect(PG_URL)
        try:
            other.execute("SELECT pg_advisory_xact_lock(%s)", (sink.turn,))  # another instance's turn
            started = time.monotonic()
            with pytest.raises(LockTimeout) as exc:
                sink.handle("locktest", {"position": 1, "type": "T", "id": "e1"})
            assert exc.value.status == 503 and 0.25 < time.monotonic() - started < 3 and applied == []
            other.rollback()  # its transaction, and with it the turn, ends
        finally:
            other.close()
        assert sink.handle("locktest", {"position": 1, "type": "T", "id": "e1"}) and applied == [1]
        assert sink.position("locktest") == 1
    finally:
        engine.dispose()
        drop_schema(settings.schema("locktest", "state"))

