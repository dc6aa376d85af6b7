"""Testing pooled PostgreSQL connections before use -- only those that sat idle.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout: one more round trip to the server
per transaction. Under a vote load that was 3-6 % of each consumer's CPU and of decisions' (py-spy,
2026-12-06), plus the server's side of it. A connection that was in use within the last second is
as good as one just pinged: the server can go away between a ping and the use either way, and every
caller already treats a lost connection as transient (a consumer waits and retries; a command
answers 503), after which SQLAlchemy discards the pool's older connections. So only a connection
idle for longer than PING_IDLE_AFTER_S is tested, and a dead one is replaced before anyone gets it
-- which is what the ping is for: the first request after a quiet night, or after the database
was restarted while nobody was asking.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

PING_IDLE_AFTER_S = 1.0


def ping_when_idle(engine: sa.Engine) -> sa.Engine:
    """Have `engine`'s pool test a connection at checkout when it was idle for more than
    PING_IDLE_AFTER_S (instead of `pool_pre_ping`, which tests every one). Returns the engine."""

    @sa.event.listens_for(engine, "connect")
    def _connected(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy):
        if time.monotonic() - record.info.get("idle_since", 0.0) <= PING_IDLE_AFTER_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:  # noqa: BLE001 - any failure of the ping: the connection is not to be used
            alive = False
        if alive is False:
            # The pool discards this connection and checks out another (a new one if need be).
            raise sa.exc.DisconnectionError("a pooled connection did not answer a ping")

    return engine


def autocommit(engine: sa.Engine) -> sa.Connection:
    """A connection on which each statement is its own transaction (use it in a `with`): for reads
    that need no transaction, and for a write of one statement.

    A plain `engine.connect()` begins a transaction at its first statement and rolls it back (or
    commits it) at the end: on PostgreSQL two more round trips, BEGIN and ROLLBACK or COMMIT, around
    one statement -- on the hot path of every vote, a command's stored-reply lookup and store and
    the sign-in check. Under READ COMMITTED, which every store uses, each statement sees its own
    snapshot inside a transaction too, so reading in autocommit answers the same; and one statement
    is atomic on its own. psycopg switches autocommit without a round trip, and the pool's reset on
    return has nothing to roll back. On SQLite such a connection begins nothing (store.state_engine),
    so it does not queue for the writers' lock to read."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
