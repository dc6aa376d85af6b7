"""Pooled PostgreSQL connections are tested before use only after sitting idle
(services/common/pooling.py): a busy pool sends no `SELECT 1` per transaction, and a connection the
server dropped while it sat idle is replaced before anyone gets it."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from services.common import pooling
from tests.harness import PG_URL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setattr(pooling, "PING_IDLE_AFTER_S", 0.3)
    url = sa.make_url(PG_URL).set(drivername="postgresql+psycopg")
    engine = pooling.ping_when_idle(sa.create_engine(url, pool_size=1, max_overflow=0))
    pings = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or real(conn))
    engine.pings = pings
    yield engine
    engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()


def test_a_connection_in_steady_use_is_not_pinged(engine):
    first = backend_pid(engine)
    for _ in range(20):
        assert backend_pid(engine) == first
    assert engine.pings == [], "twenty transactions, no ping: each followed the last within the idle limit"


def test_an_idle_connection_is_pinged_and_one_the_server_dropped_is_replaced(engine):
    first = backend_pid(engine)
    time.sleep(0.4)
    assert backend_pid(engine) == first and engine.pings == [1], "idle past the limit: pinged, alive, kept"
    with sa.create_engine(engine.url, poolclass=sa.pool.NullPool).connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar()
    time.sleep(0.4)
    second = backend_pid(engine)  # no error reaches the caller: the dead connection never left the pool
    assert second != first and len(engine.pings) == 2
