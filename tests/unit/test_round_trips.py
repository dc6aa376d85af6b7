"""The statements a hot path sends, counted: a read that needs no transaction, or a write of one
statement, begins none (pooling.autocommit: a command's stored-reply lookup and store, the sign-in
check), and
a consumer's transaction reads its tracking row once. Each statement is a round trip to PostgreSQL
that the service's whole process waits for (psycopg blocks eventlet's hub)."""
from __future__ import annotations

import threading

import psycopg
import pytest
import sqlalchemy as sa

from services.common import idempotency
from services.common.consumer import SqlSink
from services.common.pooling import autocommit
from services.common.store import state_engine
from services.common.tables import command_replies, create_all
from tests.harness import drop_schema, store_settings


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path, monkeypatch):
    settings = store_settings(request.param, tmp_path, monkeypatch, "rt")
    engine = state_engine("roundtrips", settings)
    create_all(engine)
    yield engine
    engine.dispose()
    if request.param == "postgres":
        drop_schema(settings.schema("roundtrips", "state"))


def _in_transaction(conn: sa.Connection) -> bool:
    """Whether the driver's connection has a transaction open at the server (or in SQLite)."""
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, psycopg.Connection):
        return dbapi.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    return dbapi.in_transaction


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def test_an_autocommit_connection_reads_without_a_transaction(engine):
    seen = _statements(engine)
    with autocommit(engine) as conn:
        assert conn.execute(sa.select(sa.literal(1))).scalar() == 1
        assert not _in_transaction(conn)
    assert not any("BEGIN" in s.upper() for s in seen)
    with engine.connect() as conn:  # the control: a plain connection does begin one
        conn.execute(sa.select(sa.literal(1)))
        assert _in_transaction(conn)


def test_a_connection_used_for_reading_writes_in_transactions_again(engine):
    with autocommit(engine) as conn:
        conn.execute(sa.select(command_replies.c.request))
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.insert(command_replies).values(request="k", reply="{}", stored_at=0.0))
        assert _in_transaction(conn)
        transaction.rollback()  # nothing was committed behind the transaction's back
    with autocommit(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(command_replies)).scalar() == 0
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # pysqlite's own implicit begins stay off
            assert conn.connection.dbapi_connection.isolation_level is None


def test_a_stored_reply_is_looked_up_while_a_writer_holds_the_store(engine):
    """On SQLite a transaction that begins takes the write lock (BEGIN IMMEDIATE): the lookup, which
    begins none, does not wait for a command's save in progress."""
    idempotency._store_reply(engine, "key", {"ok": True, "result": 1})
    holding, release = threading.Event(), threading.Event()

    def writer():
        with engine.begin() as conn:
            conn.execute(sa.insert(command_replies).values(request="other", reply="{}", stored_at=0.0))
            holding.set()
            release.wait(10)

    found, lookup = [], None
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        lookup = threading.Thread(target=lambda: found.append(idempotency._stored_reply(engine, "key")))
        lookup.start()
        lookup.join(5)
        assert found == [{"ok": True, "result": 1}], "the lookup waited for the writer"
    finally:
        release.set()
        thread.join(10)
        if lookup is not None:
            lookup.join(30)


def test_a_reply_is_stored_in_one_statement_and_kept(engine):
    seen = _statements(engine)
    idempotency._store_reply(engine, "key", {"ok": True, "result": "first"})
    idempotency._store_reply(engine, "key", {"ok": True, "result": "second"})  # a concurrent execution's
    assert [s.split()[0].upper() for s in seen] == ["INSERT", "INSERT"]
    engine.dispose()  # a new connection sees it: it was committed
    assert idempotency._stored_reply(engine, "key") == {"ok": True, "result": "first"}


def test_a_consumer_transaction_reads_its_tracking_row_once(engine):
    applied = []
    sink = SqlSink("counter", engine, lambda conn, env: applied.append(env["position"]))
    sink.handle_many("src", [_env(1)])  # creates the tracking row
    seen = _statements(engine)
    assert sink.handle_many("src", [_env(2), _env(3)]) == 2
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "consumer_tracking" in s]
    assert len(reads) == 1, reads
    assert applied == [1, 2, 3]
    assert sink.handle_many("src", [_env(3)]) == 0  # the position it read is the one tracked


def _env(position: int) -> dict:
    return {"schema": "consult.event/1", "source": "src", "position": position, "type": "Noted",
            "id": f"e{position}", "community": "c", "case": None,
            "aggregate": {"type": "A", "id": "a", "version": position}, "data": {}}
