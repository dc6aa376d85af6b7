"""The PostgreSQL recorder every service's event store uses (named by PROCESS_RECORDER_TOPIC).

eventsourcing's recorder takes an exclusive lock on the events table for each insert, with our lock
timeout (store.LOCK_TIMEOUT_S), and retries a failed insert up to ten times. For a lost connection
that is right. For a lock timeout it is not: psycopg waits in C, which blocks the service's whole
eventlet hub, so ten tries held every request of the service for about fifty seconds; the gateway
had long since answered 503 ("did not answer within 30 s") while the insert might still succeed
afterwards. Here a lock timeout is tried again only while the tries fit well inside the RPC timeout
(LOCK_RETRY_BUDGET_S); then it is raised, the transaction has rolled back, and the command answers
503 "nothing was recorded, try again" (runtime.command).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresProcessRecorder

LOCK_RETRY_BUDGET_S = 12.0
# A save of more events than this is inserted without psycopg's pipeline mode. In pipeline mode the
# one INSERT of a large save (its events as one array parameter, megabytes for a directory import)
# was seen to stall for good: the server waiting for the rest of the statement (ClientRead), psycopg
# waiting for the results of the sync (`Pipeline.sync` in `Connection.wait`, stack read with py-spy),
# the events table locked meanwhile (5,000 rows once in one, 10,000 rows 2 of 7, 30,000 rows 2 of
# 2; cf. psycopg issue 685). A plain transaction sends the statement whole before reading anything;
# the pipeline only saves the round trips of the lock and the notify, which a large save does not
# notice.
PIPELINED_MOST = 100
ATTEMPTS = 10
WAIT_S = 0.2

_insert_once = PostgresApplicationRecorder.insert_events.__wrapped__  # the insert without eventsourcing's retry


def is_lock_timeout(exc: BaseException) -> bool:
    return isinstance(exc.__cause__, psycopg.errors.LockNotAvailable)


class BoundedRetryRecorder(PostgresProcessRecorder):
    def _notify_channel(self, curs) -> None:
        """No NOTIFY with a save. eventsourcing sends one so that its LISTEN-based subscriptions wake
        up; nothing here listens (the relay is woken in-process, `ServiceApplication.saved`, and reads
        the log; consumers are fed by RabbitMQ). A transaction that has notified takes one lock for
        the whole PostgreSQL server at its commit and holds it through the commit's flush to disk
        (PreCommit_Notify), so every service's and every cell's saves would commit one at a time,
        and each would write a notification nobody reads into the server's queue."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any):
        started = time.monotonic()
        lock_timeout = float(self.datastore.lock_timeout or 0)
        insert = _insert_once if len(stored_events) <= PIPELINED_MOST else _insert_without_pipeline
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return insert(self, stored_events, **kwargs)
            except (InterfaceError, OperationalError) as exc:
                if attempt == ATTEMPTS:
                    raise
                if is_lock_timeout(exc) and time.monotonic() - started + WAIT_S + lock_timeout > LOCK_RETRY_BUDGET_S:
                    raise
                time.sleep(WAIT_S)
        raise AssertionError("unreachable")


def _insert_without_pipeline(recorder: PostgresProcessRecorder, stored_events: Sequence[StoredEvent],
                             **kwargs: Any) -> Sequence[int] | None:
    """What eventsourcing's `insert_events` does (the tracking record, then the events table's lock,
    its NOTIFY and the insert, and the new notification ids) in one transaction, without pipeline
    mode (PIPELINED_MOST). psycopg's errors are translated by the datastore's connection, as there."""
    with recorder.datastore.get_connection() as conn, conn.transaction():
        with conn.cursor() as curs:
            recorder._insert_events(curs, stored_events, **kwargs)
        if not stored_events:
            return None
        with conn.cursor() as curs:
            recorder._insert_stored_events(curs, stored_events, **kwargs)
            return recorder._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
