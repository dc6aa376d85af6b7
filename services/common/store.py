"""Persistence wiring: each service's event store (eventsourcing) and its state store (SQLAlchemy).

Embedded default: two SQLite files per service under the data folder. Production: PostgreSQL,
one schema for the events (eventsourcing's Postgres module, whose recorder keeps its exclusive
table lock, here with a lock timeout) and one schema for the state tables (relay position,
tracking of SQL consumers, projections, the erasable content store). The two never share tables.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking

from . import idempotency
from .config import Settings
from .pooling import ping_when_idle
from .consumer import RecordedButHeld, catch_up_projection, record_with_projection

LOCK_TIMEOUT_S = "5"


def ensure_schema(settings: Settings, schema: str) -> None:
    import psycopg

    p = settings.postgres_params()
    with psycopg.connect(
        host=p["host"], port=p["port"], user=p["user"], password=p["password"], dbname=p["dbname"], autocommit=True
    ) as conn:
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except psycopg.errors.UniqueViolation:
            pass  # another instance created it at the same moment


CREATION_WAIT_S = 120.0  # an instance waits this long for another one creating the same tables


@contextmanager
def creation_lock(settings: Settings, name: str):
    """Serialise table creation across instances starting at once (CREATE TABLE IF NOT EXISTS
    races on PostgreSQL's catalogue). No-op for SQLite, where the file lock does it."""
    if not settings.is_postgres:
        yield
        return
    from .locks import SessionLock

    with SessionLock(settings, "create", name).held(CREATION_WAIT_S):
        yield


def pg_url(settings: Settings) -> sa.URL:
    """The deployment's PostgreSQL database as a SQLAlchemy URL (psycopg 3)."""
    p = settings.postgres_params()
    return sa.URL.create("postgresql+psycopg", username=p["user"], password=p["password"] or None,
                         host=p["host"], port=int(p["port"]), database=p["dbname"])


def event_store_env(service: str, settings: Settings) -> dict[str, str]:
    if settings.is_postgres:
        schema = settings.schema(service, "events")
        ensure_schema(settings, schema)
        p = settings.postgres_params()
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": p["dbname"],
            "POSTGRES_HOST": p["host"],
            "POSTGRES_PORT": p["port"],
            "POSTGRES_USER": p["user"],
            "POSTGRES_PASSWORD": p["password"],
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_LOCK_TIMEOUT": LOCK_TIMEOUT_S,
            "PROCESS_RECORDER_TOPIC": "services.common.pg_recorder:BoundedRetryRecorder",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "4",
            "CREATE_TABLE": "y",
        }
    settings.sqlite_dir.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.sqlite_dir / f"{settings.store_name(service)}-events.sqlite3"),
        "SQLITE_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "y",
    }


def state_engine(service: str, settings: Settings) -> sa.Engine:
    if settings.is_postgres:
        schema = settings.schema(service, "state")
        ensure_schema(settings, schema)
        return ping_when_idle(sa.create_engine(
            pg_url(settings),
            pool_size=4,
            max_overflow=4,
            connect_args={"options": f"-c search_path={schema} -c lock_timeout=5000"},
        ))
    settings.sqlite_dir.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        f"sqlite:///{settings.sqlite_dir / f'{settings.store_name(service)}-state.sqlite3'}",
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        # pysqlite would begin transactions itself; we begin them (IMMEDIATE) in the hook below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers proceed while one writer writes
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, _record, _proxy):
        # A connection given back after autocommit (pooling.autocommit) has pysqlite's own implicit
        # begins switched on again by SQLAlchemy's reset (isolation_level ""): off, as at connect.
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        # Take the write lock at BEGIN, so two writers never fail on a read-to-write upgrade. A
        # connection in autocommit (pooling.autocommit) begins nothing: each of its statements is
        # a transaction of its own, and a read does not wait for the writers' lock.
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class ServiceApplication(Application):
    """An eventsourcing Application whose recorder also records tracking atomically, and which
    saves only what its read model (if it has one) can apply."""

    projection = None  # the read model kept from this service's log (a SqlSink), if there is one
    # Whether a consumer's saves (save_tracked) apply their events to the read model in the same
    # step, as a command's do. A service that catches its read model up in batches before it reads
    # it turns this off (notifications: its sender projects before each batch of deliveries): the
    # step's own read-model transaction per consumed event is then saved, and an event the read
    # model cannot apply holds it at the next catch-up, as it would for any recorded event.
    project_consumer_saves = True

    def __init__(self, settings: Settings, service: str, env: dict | None = None):
        self.service = service
        self.settings = settings
        self.name = service  # tables are named after the service, whatever the class
        full_env = event_store_env(service, settings)
        full_env.update(env or {})
        with creation_lock(settings, f"{service}-events"):
            super().__init__(env=full_env)
        self.saved = threading.Event()  # set after each save so the relay wakes up at once
        # Saves this process has made: a timer that looks for work only after one (notifications'
        # sender) compares it with the count it last saw; the relay waits on `saved` instead.
        self.saves = 0
        # The last position this process recorded: past its read model's, the log's head is read
        # before a save applies its events ahead (consumer.record_with_projection).
        self.known_head = 0
        self._turn = threading.RLock()  # green under eventlet: see projection_turn
        self._writer = threading.local()  # green-local under eventlet: see recording_only

    def construct_recorder(self):
        return self.factory.process_recorder()

    @contextmanager
    def recording_only(self):
        """Saves made in this block (by this thread) record their events without applying them to
        the read model in the same step, nor catching it up after each one; it is caught up once
        when the block ends. For a writer whose saves record what has happened already -- a
        notification sent to a webhook cannot be unsent, so no read model may refuse its record --
        and which saves one at a time: the notifications sender (issue 16's stage benchmark, where
        a read-model transaction per webhook delivery cost a quarter of the rate)."""
        outer = getattr(self._writer, "recording_only", False)
        self._writer.recording_only = True
        try:
            yield
        finally:
            self._writer.recording_only = outer
        if not outer:
            self.project()

    def _after_save(self) -> None:
        """What a save tells the rest of the process: the relay wakes, and timers that look for work
        only after a save see the count move."""
        self.saves += 1
        self.saved.set()

    def save(self, *objs: Any, **kwargs: Any):
        recordings = super().save(*objs, **kwargs)
        self._after_save()
        if getattr(self._writer, "recording_only", False):
            return recordings  # the block's end catches the read model up
        if self.projection is not None and recordings:
            last = max(r.notification.id for r in recordings)
            if self.projection.applied < last:
                self.project()  # reads right after a command see it; a failure to apply it is told, not hidden
            held = self.projection.held
            if held is not None and held["position"] <= last:
                raise RecordedButHeld(self.name, held)
        return recordings

    def save_or_conflict(self, *aggregates: Any, conflict: str | None = "common.someone_else_changed_same"):
        """Save, where another writer may have taken one of these aggregates' next version first
        (the store's unique version check): that is a Conflict worded by message `conflict` (a key
        of services/common/problem_texts), or, with conflict=None, None is returned (a timer racing
        another instance of the service: the work is done). The one mapping every stage uses."""
        try:
            return self.save(*aggregates)
        except IntegrityError:
            if conflict is None:
                return None
            from .errors import Conflict

            raise Conflict.coded(conflict) from None

    def _record(self, processing_event: ProcessingEvent):
        """Every save goes through here (commands, and consumers' `save_tracked`). With a read
        model, the new events are applied to it in the same step (`record_with_projection`): a
        command whose projection would fail is refused and nothing is recorded."""
        consumed = processing_event.tracking is not None  # a consumer's save: the tracking of what it consumed
        marker = idempotency.marker_for_save() if not consumed and processing_event.events else None
        if marker is not None:  # a command's first save: its request's marker goes in the same transaction
            processing_event.tracking = Tracking(marker, 1)
        deferred = getattr(self._writer, "recording_only", False) or (consumed and not self.project_consumer_saves)
        if self.projection is not None and processing_event.events and not deferred:
            with self.projection_turn():
                recordings = record_with_projection(self, self.name, self.projection, processing_event.events,
                                                    lambda: super(ServiceApplication, self)._record(processing_event))
        else:
            recordings = super()._record(processing_event)
        if recordings:
            self.known_head = max(self.known_head, max(r.notification.id for r in recordings))
        if marker is not None:
            idempotency.saved()
        return recordings

    def projection_turn(self):
        """This process's turn to write the read model, held around a save and a catch-up. Within a
        process green threads queue here (the lock is green under eventlet) rather than on the
        read model's tracking row, whose wait is in C and would stall the whole process, its holder
        included. A service whose instances must also take turns overrides it with a shared lock."""
        return self._turn

    def catch_up(self) -> int:
        """Bring the read model up to the log head; the caller holds the projection turn."""
        return catch_up_projection(self, self.name, self.projection) if self.projection is not None else 0

    def project(self) -> int:
        """Bring the read model up to the log head (reads right after a command see it). When it is
        there already, the usual case right after a save, that costs two small queries (its tracked
        position and the head), without waiting for the turn."""
        if self.projection is None:
            return 0
        if self.projection.held is None and self.projection.position(self.name) >= self.head():
            return 0
        with self.projection_turn():
            return self.catch_up()

    def save_tracked(self, tracking: Tracking, *objs: Any) -> bool:
        """Save new events with a tracking record in one transaction; False if a duplicate."""
        processing = ProcessingEvent(tracking=tracking)
        processing.collect_events(*objs)
        try:
            self._record(processing)
        except IntegrityError:
            return False
        self._after_save()
        return True

    def tracked_position(self, source: str) -> int:
        return self.recorder.max_tracking_id(source) or 0

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        try:
            super().close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


class StageApplication(ServiceApplication):
    """A stage service's application: its event store, its state database (`engine`) holding the
    free texts (ContentStore: salted commitments, erasable) and the read model kept from its own
    log. Built here once; each stage adds what is its own (locks, keys, evidence files)."""

    def __init__(self, settings: Settings, service: str, engine: sa.Engine, project_envelope,
                 cache_size: int | None = None, projection: str = "projection", shared_turn: str | None = None):
        """`shared_turn`: a lock namespace, for a service whose instances must take turns on the
        read model beyond what its tracking row gives (several instances of it run). On PostgreSQL
        each read-model transaction takes that turn first, in the transaction itself (SqlSink.turn:
        one statement); on SQLite the turn is a shared lock file around the whole turn."""
        from .consumer import SqlSink
        from .content import ContentStore
        from .locks import KeyedLocks, advisory_id

        super().__init__(settings, service, env={"AGGREGATE_CACHE_MAXSIZE": str(cache_size)} if cache_size else None)
        self.engine = engine
        self.content = ContentStore(engine)
        self.projection = SqlSink(projection, engine, project_envelope)
        self._shared_turn = None
        if shared_turn is not None and engine.dialect.name == "postgresql":
            self.projection.turn = advisory_id(settings, shared_turn, "read-model")
        elif shared_turn is not None:
            self._shared_turn = KeyedLocks(settings, engine, shared_turn)

    @contextmanager
    def projection_turn(self):
        """This process's turn (the green lock), then, on SQLite with a shared turn, the instances'."""
        with self._turn:
            if self._shared_turn is None:
                yield
            else:
                with self._shared_turn.hold("read-model"):
                    yield

    def close(self) -> None:
        if self._shared_turn is not None:
            self._shared_turn.close()
        super().close()
