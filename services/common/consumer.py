"""The tracked consumer: exactly-once effect from an at-least-once bus.

Per (consumer, source) it keeps a tracking position, recorded atomically with its own new state.
A message at or below it is a duplicate. A message beyond tracked + 1 means something is missing
-- lost, or of a type this consumer reads from the log by design (registry.FROM_LOG): the consumer
reads the source's log from tracked + 1 and applies what is there, in order. A
position the log does not hold is a hole (a rolled-back insert on PostgreSQL), never waited for.
A timer compares each source's head with the tracked position, so a lost last message is caught up.
A handler that keeps failing parks the message, holds that source's stream and raises a metric,
until an operator retries or resumes it (`consult dlq`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import socket
import time
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Protocol

import sqlalchemy as sa
from eventsourcing.persistence import Tracking
from kombu import Consumer

from . import bus, clock, envelope, faults, locks, metrics, registry, voucher
from .aggregate import command_context
from .config import Settings
from .errors import Conflict, DomainError, Unavailable
from .tables import consumer_tracking

log = logging.getLogger(__name__)

FetchLog = Callable[[str, int, int], list]  # (source, start, limit) -> envelopes
LogHead = Callable[[str], int]


# The most messages a consumer takes from the bus at once (its prefetch) and applies as one batch.
# A consumer that keeps up sees batches of one; one that falls behind pays a transaction per batch
# instead of per event, and so catches up instead of falling further behind.
BATCH = 100

# A consumer acknowledges what it applied together, with one cumulative ack (multiple=True), at most
# ACK_EVERY_S after applying it or once ACK_AT_MOST messages wait, instead of one ack per message:
# those acks were 16-20 % of each consumer's CPU at a vote load (py-spy, 2026-12-06), and as much
# again in the broker. Nothing rests on the ack but redelivery: a message applied and not yet
# acknowledged when the process dies is delivered again, and dropped as a duplicate (its position
# is tracked) -- or handled again if it was only untracked (`Untracked`), which changes nothing.
# ACK_AT_MOST stays below the prefetch, so the broker never waits on an ack that is due later.
ACK_EVERY_S = 0.25
ACK_AT_MOST = BATCH // 2

# A consumer under a steady stream lingers this long after a turn's first message for more to arrive
# before it applies them, so that a turn is a batch and its costs -- the wake-up, the socket read,
# the sink's one transaction, the ack -- are shared: a consumer that keeps up at 20 events a second
# otherwise pays them for every event, and the processes of two cells, each at half the rate, paid
# them about twice as often per vote as one cell's (docs/scaling.md). After a quiet spell (nothing
# applied within the last LINGER_S) the first message is applied at once, so a lone event is not
# delayed. Only what follows a stage's answer waits: the audit entry, the board, the notice.
LINGER_S = 0.1


class Held(Exception):
    """The stream of one source is held: a message is parked."""


class Overtaken(Exception):
    """Another instance tracked an event of a batch first: the batch is offered again one event at
    a time, each sink skipping what is tracked already."""


class Sink(Protocol):
    def position(self, source: str) -> int: ...

    def handle(self, source: str, env: dict) -> bool: ...

    def handle_many(self, source: str, envs: list[dict]) -> int: ...


# How long a sink leaves positions it handled without a transaction untracked, at most (`Untracked`).
TRACK_UNTRACKED_EVERY_S = 1.0


class Untracked:
    """Per source, the highest position a sink handled without recording it. An event that changes
    nothing for a sink -- an EventSourcedSink's event without effects, a SqlSink's event of no type
    it keeps -- takes no transaction of its own: the next transaction that records something
    tracks past it, or `track_untracked` does, which the consumer's loop calls every
    TRACK_UNTRACKED_EVERY_S. So a stream of events a consumer ignores (the votes of a ballot day,
    for actions and notifications) costs a transaction a second, not one per batch, and the
    tracking row and the lag metric catch up within a second. Until then those events are
    untracked: after a crash they are handled again -- as if the consumer had come to them later,
    which is all anyone could see, since handling them changed nothing. The sink counts them as
    tracked (`position`), so this process takes none of them twice."""

    def __init__(self) -> None:
        self._at: dict[str, int] = {}

    def get(self, source: str) -> int:
        return self._at.get(source, 0)

    def above(self, source: str, tracked: int) -> int:
        return max(tracked, self.get(source))

    def note(self, source: str, position: int) -> None:
        self._at[source] = max(position, self.get(source))

    def tracked(self, source: str, position: int) -> None:
        """The store has tracked `source` up to `position`: what lay below is untracked no more."""
        if self.get(source) <= position:
            self._at.pop(source, None)

    def items(self) -> list[tuple[str, int]]:
        return list(self._at.items())


class SqlSink:
    """Effects are rows in the consumer's state database, written in the tracking transaction."""

    def __init__(self, consumer: str, engine: sa.Engine, handler: Callable[[sa.Connection, dict], None],
                 types: frozenset[str] | None = None,
                 handler_many: Callable[[sa.Connection, list[dict]], None] | None = None):
        """`types`: the event types the handler does anything with, where it ignores the rest. A
        batch of none of them takes no transaction: its position is tracked later (`Untracked`).

        `handler_many`: what applies a batch's events in order in one call, where that costs less
        than one call per event (audit: one write per table for a run of one community's events).
        It must leave what `handler` applied one at a time would; a batch that fails is applied
        again one event at a time through `handler` (TrackedConsumer.apply_many)."""
        self.consumer, self.engine, self.handler, self.types = consumer, engine, handler, types
        self.handler_many = handler_many
        self.untracked = Untracked()
        # As a service's read model (`catch_up_projection`): the event it could not apply, while
        # that event is parked and the read model holds at the position before it.
        self.held: dict | None = None
        self._hold_checked = 0.0
        # The highest position this process has seen committed here (positions only move forward):
        # a save whose events are at or below it needs no catch-up afterwards.
        self.applied = 0
        # On PostgreSQL, an advisory lock id every transaction that locks the tracking row takes
        # first (`locks.take_transaction_turn`), so that instances of a service queue for the read
        # model in green-friendly tries, never in a row-lock wait in C (StageApplication sets it).
        self.turn: int | None = None
        self.turn_timeout_s = locks.DEFAULT_TIMEOUT_S
        # The tracking row's statements, built once: a read model's every save and event reads and
        # moves it, and building a statement (and its cache key) each time cost more than running it
        # on SQLite (issue 16's votes benchmark).
        tc = consumer_tracking.c
        self._select_position = sa.select(tc.position).where(tc.consumer == consumer,
                                                             tc.source == sa.bindparam("source"))
        self._select_locked = self._select_position.with_for_update()
        self._move = (sa.update(consumer_tracking)
                      .where(tc.consumer == consumer, tc.source == sa.bindparam("of"),
                             tc.position == sa.bindparam("tracked"))
                      .values(position=sa.bindparam("to")))

    def position(self, source: str) -> int:
        with self.engine.connect() as conn:
            return self.untracked.above(source, self._position(conn, source))

    def _position(self, conn, source: str, lock: bool = False) -> int:
        pos = conn.execute(self._select_locked if lock else self._select_position, {"source": source}).scalar()
        return pos or 0

    def _locked_position(self, conn, source: str) -> int:
        """The tracked position, with the tracking row locked for this transaction, so that two
        instances applying the same event take turns and the second sees it applied. (SQLite
        needs no row lock: its transactions begin IMMEDIATE, one writer at a time.)"""
        if self.turn is not None:
            locks.take_transaction_turn(conn, self.turn, self.consumer, self.turn_timeout_s)
        position = self._position(conn, source, lock=True)
        if position == 0 and not self._row_exists(conn, source):
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(consumer_tracking).values(
                        consumer=self.consumer, source=source, position=0))
            except sa.exc.IntegrityError:
                pass  # another instance created it first
            return self._position(conn, source, lock=True)
        return position  # read under the lock: nobody moves it before this transaction ends

    def _row_exists(self, conn, source: str) -> bool:
        return conn.execute(sa.select(consumer_tracking.c.consumer).where(
            consumer_tracking.c.consumer == self.consumer, consumer_tracking.c.source == source)).first() is not None

    def handle(self, source: str, env: dict) -> bool:
        return self.handle_many(source, [env]) == 1

    def handle_many(self, source: str, envs: list[dict]) -> int:
        """Apply envelopes in order in one transaction with one tracking record; those at or below
        the tracked position are skipped. For a read model catching up on its own log, where a
        transaction per event would cost more than the events."""
        if self.types is not None and not any(env["type"] in self.types for env in envs):
            fresh = [env for env in envs if env["position"] > self.untracked.get(source)]
            for env in fresh:
                faults.check(self.consumer, env)
            if fresh:
                self.untracked.note(source, fresh[-1]["position"])
            return len(fresh)
        with self.engine.begin() as conn:
            tracked = self._locked_position(conn, source)
            fresh = [env for env in envs if env["position"] > self.untracked.above(source, tracked)]
            wanted = []
            for env in fresh:
                faults.check(self.consumer, env)
                if self.types is None or env["type"] in self.types:
                    wanted.append(env)
            if self.handler_many is not None and len(wanted) > 1:
                self.handler_many(conn, wanted)
            else:
                for env in wanted:
                    self.handler(conn, env)
            if fresh and fresh[-1]["position"] > tracked:
                self._track(conn, source, tracked, fresh[-1]["position"])
        if fresh:
            self.untracked.tracked(source, fresh[-1]["position"])
            self.applied = max(self.applied, fresh[-1]["position"])
        return len(fresh)

    def track_untracked(self) -> None:
        """Record the positions handled without a transaction (see `Untracked`), never moving the
        row down: another instance may have tracked further meanwhile."""
        for source, position in self.untracked.items():
            with self.engine.begin() as conn:
                tracked = self._locked_position(conn, source)
                if position > tracked:
                    self._track(conn, source, tracked, position)
            self.untracked.tracked(source, position)

    def rehearse(self, envs: list[dict]) -> None:
        """Apply envelopes in a transaction that is rolled back: raises what applying them for
        real would raise, and leaves the read model as it was."""
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                for env in envs:
                    self.handler(conn, env)
            finally:
                transaction.rollback()

    def _track(self, conn, source: str, tracked: int, position: int) -> None:
        # The row exists and is locked (see _locked_position); compare-and-set all the same.
        moved = conn.execute(self._move, {"of": source, "tracked": tracked, "to": position}).rowcount
        if moved != 1:
            raise RuntimeError(f"{self.consumer}: tracking of {source} moved under us at {tracked}")


class EventSourcedSink:
    """Effects are new aggregate events, saved with the tracking record in one transaction."""

    def __init__(self, app, handler: Callable[[dict], list]):
        self.app, self.handler = app, handler
        self.untracked = Untracked()

    def position(self, source: str) -> int:
        return self.untracked.above(source, self.app.tracked_position(source))

    def handle(self, source: str, env: dict) -> bool:
        try:
            return self.handle_many(source, [env]) == 1
        except Overtaken:
            return False  # another instance tracked it first

    def handle_many(self, source: str, envs: list[dict]) -> int:
        """Apply envelopes in order. An event with effects is saved with its tracking record, as
        `handle` saves it, before the next event's handler runs (which may read what it saved); the
        events without effects take no save of their own (`Untracked`): the next save's tracking
        record covers them, or `track_untracked`."""
        tracked = self.position(source)
        applied = 0
        for env in envs:
            if env["position"] <= tracked:
                continue
            faults.check(self.app.name, env)
            aggregates = self._effects(env)
            if aggregates:
                saved = self.app.save_tracked(Tracking(source, env["position"]), *aggregates)
                self.untracked.tracked(source, env["position"])  # by this save, or by whoever overtook it
                if not saved:
                    raise Overtaken(source)
            else:
                self.untracked.note(source, env["position"])
            tracked = env["position"]
            applied += 1
        return applied

    def track_untracked(self) -> None:
        for source, position in self.untracked.items():
            self.app.save_tracked(Tracking(source, position))  # False: tracked further already
            self.untracked.tracked(source, position)

    def _effects(self, env: dict) -> list:
        with command_context(community=env["community"], actor="system", case=env.get("case"), causation=env["id"]):
            return self.handler(env) or []


class SinkChain:
    """One tracked stream feeding several sinks, each keeping its own tracking record: e.g. a
    service whose consumer both keeps SQL read rows (SqlSink) and saves aggregates
    (EventSourcedSink), which live in different stores and so cannot share one transaction.

    The chain's position is the lowest of its sinks', so after a crash between two sinks the
    stream is offered again from there, and each sink ignores what it has already applied.
    """

    def __init__(self, *sinks: Sink):
        if not sinks:
            raise ValueError("a sink chain needs at least one sink")
        self.sinks = sinks

    def position(self, source: str) -> int:
        return min(sink.position(source) for sink in self.sinks)

    def handle(self, source: str, env: dict) -> bool:
        applied = False
        for sink in self.sinks:
            applied = sink.handle(source, env) or applied
        return applied

    def handle_many(self, source: str, envs: list[dict]) -> int:
        return max(sink.handle_many(source, envs) for sink in self.sinks)

    def track_untracked(self) -> None:
        for sink in self.sinks:
            sink.track_untracked()


def park_message(settings: Settings, consumer: str, source: str, env: dict, error: BaseException | None) -> str:
    """Put an event a consumer cannot apply into its parked queue (`consult dlq list` shows it);
    returns the error's one-line description."""
    detail = "".join(traceback.format_exception_only(type(error), error)).strip() if error else "unknown"
    log.error("%s: parking %s@%s from %s: %s", consumer, env["type"], env["position"], source, detail)
    with bus.connect(settings, confirm=True) as conn:
        channel = conn.channel()
        queue = bus.parked_queue(settings, consumer, source)
        queue(channel).declare()
        conn.Producer(channel=channel).publish(
            envelope.canonical(env),
            exchange="",
            routing_key=queue.name,
            content_type="application/json",
            delivery_mode=2,
            message_id=env["id"],
            headers={
                "consumer": consumer,
                "source": source,
                "position": env["position"],
                "type": env["type"],
                "error": detail[:2000],
                "parked_at": clock.format(clock.now()),
            },
        )
    return detail


def is_transient(exc: BaseException) -> bool:
    """Whether a handler's failure says "not now" rather than "never": an RPC to a service that
    timed out, is not running or answered 503 (starting, held, a lock timeout), a lost connection
    to the broker or a database, a lock or statement timeout. Those are waited out; everything
    else (the handler's own domain refusal, a bug, an event it cannot take) is permanent."""
    from nameko.exceptions import RpcTimeout, UnknownService

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (RpcTimeout, UnknownService, ConnectionError, TimeoutError, socket.timeout)):
            return True
        if isinstance(exc, DomainError):
            return getattr(exc, "status", 400) == 503
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
            return True  # connection lost, lock/statement timeout, database locked, pool exhausted
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True
        name = type(exc).__name__
        if name in ("OperationalError", "InterfaceError", "Timeout", "RecoverableConnectionError",
                    "ConnectionForced", "AMQPConnectionError"):
            return True  # eventsourcing's and the drivers' own, eventlet's, kombu's and amqp's
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def backoff(attempt: int, cap: float) -> float:
    """Capped exponential back-off with full jitter: 0.2, 0.4, 0.8 ... seconds, at most `cap`."""
    return random.uniform(0.5, 1.0) * min(cap, 0.2 * 2 ** (attempt - 1))


def reject_message(settings: Settings, consumer: str, source: str, body: bytes | str, reason: str,
                   position: int | None = None, message_id: str | None = None) -> None:
    """Set aside a message that is no event of the source's log (undecodable, or not what the log
    records at its position): kept as received in the stream's rejected queue for an operator
    (`consult dlq list`), never applied and never holding the stream -- the log is the truth, and
    the event really at that position is read from it."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    log.error("%s: rejected a message on %s (position %s): %s", consumer, source, position, reason)
    with bus.connect(settings, confirm=True) as conn:
        channel = conn.channel()
        queue = bus.rejected_queue(settings, consumer, source)
        queue(channel).declare()
        conn.Producer(channel=channel).publish(
            raw, exchange="", routing_key=queue.name, content_type="application/octet-stream",
            content_encoding="binary", delivery_mode=2, message_id=message_id or hashlib.sha256(raw).hexdigest(),
            headers={"consumer": consumer, "source": source, "position": position, "error": reason[:2000],
                     "rejected_at": clock.format(clock.now())})


def _same(recorded: dict, received: dict) -> bool:
    """Whether a received envelope is, byte for byte, the one the log records."""
    try:
        return envelope.canonical(received) == envelope.canonical(recorded)
    except (TypeError, ValueError):
        return False  # not even canonical JSON: no event of any log


class TrackedConsumer:
    def __init__(
        self,
        name: str,
        sources: tuple[str, ...],
        sink: Sink,
        settings: Settings,
        fetch_log: FetchLog,
        log_head: LogHead,
        upcast: bool = True,
    ):
        self.name, self.sources, self.sink, self.settings = name, tuple(sources), sink, settings
        self.upcast = upcast  # the audit log keeps envelopes exactly as published
        self.fetch_log, self.log_head = fetch_log, log_head
        # Per source, the types this consumer reads from the log rather than taking over the bus.
        self.from_log = {s: registry.read_from_log(name, s) for s in self.sources}
        self.held: set[str] = set()
        self.rejected: dict[str, int] = {}  # per source, since start: messages set aside (reject_message)
        self._ahead: dict[str, dict[int, dict]] = {}  # per source, the log read ahead (positions -> envelopes)
        self._inbox: dict[str, list[tuple[dict, object, str | None]]] = {}  # per source: delivered, not yet applied
        # Per source, the relay terms whose messages are believed without reading the log (voucher.py).
        self.believed = voucher.Believed()
        # Per source, a position the sink has tracked at least up to: what this process last saw
        # applied (positions only move forward, so it can lag another instance, never lead). A
        # batch starts from it instead of reading the tracking row; the sink's own transaction still
        # checks the row, and a message that seems to leave a gap reads the row before pulling.
        self._tracked: dict[str, int] = {}
        self._track_untracked_at = 0.0  # when the sink next records what it left untracked
        # The delivered message of the highest delivery tag that is done with (applied, or set
        # aside) but not yet acknowledged, how many such wait, and when they are due (`flush_acks`).
        self._unacked = None
        self._unacked_count = 0
        self._ack_due = 0.0
        self._worked_at = float("-inf")  # when the last turn applied anything (LINGER_S)
        self.stopped = False
        self._consumers: dict[str, Consumer] = {}
        self._channel = None
        self.ready = False

    # -- processing -------------------------------------------------------------------------
    def process(self, source: str, env: dict, body: bytes | str | None = None, term: str | None = None) -> None:
        """Apply one message's event (see `process_many`)."""
        self.process_many(source, [(env, body, term)])

    def process_many(self, source: str, messages: list[tuple[dict, bytes | str | None, str | None]]) -> None:
        """Apply the events of messages that arrived together, in order, first filling any gap
        before each from the source's log; what is new goes to the sink in one batch
        (`apply_many`: one transaction where the sink allows).

        A message from the bus is checked against the source's own log: what is applied is the
        envelope the log records at that position, and only if the message is that envelope byte
        for byte. Anything else (a forgery, an envelope of no log, one the log does not hold) is
        set aside (reject_message) and the stream goes on: the event really at that position, if
        there is one yet, is applied from the log.

        `term` is the relay term that vouches for a message (voucher.term_of), or None. A message of
        a term already believed is that envelope without asking the log; one that passes the check
        makes its term believed."""
        tracked = self._tracked.get(source)
        if tracked is None:
            tracked = self.sink.position(source)
        batch: list[dict] = []
        for env, body, term in messages:
            position = env["position"]
            if position <= tracked:
                metrics.DUPLICATES.labels(self.name, source).inc()
                continue
            if position > tracked + 1:
                self.apply_many(source, batch)
                batch = []
                tracked = self.sink.position(source)  # another instance may have gone on meanwhile
                if position > tracked + 1:
                    if self.pull(source, upto=position - 1) or not self.from_log.get(source):
                        metrics.GAPS_FILLED.labels(self.name, source).inc()
                    tracked = self.sink.position(source)
                if position <= tracked:
                    metrics.DUPLICATES.labels(self.name, source).inc()
                    continue
            if (source, term) in self.believed:
                metrics.MESSAGES_CHECKED.labels(self.name, source, "voucher").inc()
                batch.append(env)
                tracked = position
                continue
            metrics.MESSAGES_CHECKED.labels(self.name, source, "log").inc()
            recorded = self._recorded(source, position)
            if recorded is not None and _same(recorded, env):
                self.believed.add(source, term)
            else:
                reason = (f"not an event of the {source} log: position {position} holds "
                          f"{recorded['type']} {recorded['id']}" if recorded is not None else
                          f"not an event of the {source} log: it holds nothing at position {position}")
                self.reject(source, body if body is not None else json.dumps(env, default=str), reason, position,
                            str(env.get("id")))
                if recorded is None:
                    continue
            batch.append(recorded)
            tracked = position
        self.apply_many(source, batch)

    def _recorded(self, source: str, position: int) -> dict | None:
        """The envelope the source's log records at `position` (read ahead up to 100 at a time)."""
        ahead = self._ahead.setdefault(source, {})
        if position not in ahead:
            ahead.clear()
            for raw in self.fetch_log(source, position, 100):
                env = envelope.decode(raw, upcast=self.upcast)
                ahead[env["position"]] = env
        for stale in [p for p in ahead if p < position]:
            del ahead[stale]
        return ahead.pop(position, None)

    def reject(self, source: str, body: bytes | str, reason: str, position: int | None = None,
               message_id: str | None = None) -> None:
        reject_message(self.settings, self.name, source, body, reason, position, message_id)
        self.rejected[source] = self.rejected.get(source, 0) + 1
        metrics.REJECTED.labels(self.name, source).inc()

    def pull(self, source: str, upto: int | None = None) -> int:
        """Read the source's log after the tracked position and apply it in order; return how many
        of the events it applied are of types the bus brings this consumer (the others,
        registry.FROM_LOG, are read from the log by design: no gap)."""
        missed = 0
        from_log = self.from_log.get(source, frozenset())
        while True:
            tracked = self.sink.position(source)
            if upto is not None and tracked >= upto:
                return missed
            fetched = [envelope.decode(raw, upcast=self.upcast) for raw in self.fetch_log(source, tracked + 1, 100)]
            batch = [e for e in fetched if e["position"] > tracked and (upto is None or e["position"] <= upto)]
            if upto is not None:  # what lies beyond is what the message that made us pull is checked against
                self._ahead[source] = {e["position"]: e for e in fetched if e["position"] > upto}
            if not batch:
                return missed
            self.apply_many(source, batch)
            missed += sum(1 for e in batch if e["type"] not in from_log)

    def apply_many(self, source: str, envs: list[dict]) -> None:
        """Apply events in order, as one batch where the sink can (`handle_many`: a SQL sink in one
        transaction with one tracking record) -- a consumer behind its source then pays one
        transaction per batch, not per event. If the batch fails, nothing of it is kept that is not
        tracked, and its events are applied one at a time (`apply`), so a failure is classified,
        waited out or parked for the very event that causes it."""
        if len(envs) > 1 and hasattr(self.sink, "handle_many"):
            started = time.perf_counter()
            try:
                applied = self.sink.handle_many(source, envs)
            except ProjectionHeld:
                raise
            except Exception as exc:  # noqa: BLE001 - found and classified one event at a time below
                if self.stopped:
                    raise
                if not isinstance(exc, Overtaken):
                    log.info("%s: a batch of %d from %s failed (%r); applying it one event at a time",
                             self.name, len(envs), source, exc)
            else:
                metrics.HANDLER_SECONDS.labels(self.name, source).observe(time.perf_counter() - started)
                metrics.BATCH_EVENTS.labels(self.name, source).observe(len(envs))
                for env in envs:
                    metrics.EVENTS_CONSUMED.labels(self.name, source, env["type"]).inc()
                if applied < len(envs):
                    metrics.DUPLICATES.labels(self.name, source).inc(len(envs) - applied)
                self._note_tracked(source, envs[-1]["position"])
                return
        for env in envs:
            self.apply(source, env)
        if envs:
            self._note_tracked(source, envs[-1]["position"])

    def _note_tracked(self, source: str, position: int) -> None:
        """The sink has tracked `source` at least up to `position` (each event of a batch applied
        or found applied already)."""
        self._tracked[source] = max(self._tracked.get(source, 0), position)

    def apply(self, source: str, env: dict) -> None:
        """Apply one event. A transient failure (is_transient: the handler's upstream timed out or is
        starting, a connection was lost, a lock timed out) is retried with capped exponential
        back-off and jitter for as long as it lasts -- the stream waits, nothing is parked. Any
        other failure is retried `retry_delays` times, then the event is parked and the stream held."""
        delays = list(self.settings.retry_delays)
        transient = 0
        while True:
            started = time.perf_counter()
            try:
                applied = self.sink.handle(source, env)
            except ProjectionHeld:
                raise  # this service records nothing until its own read model is let go: try again later
            except Exception as exc:  # noqa: BLE001 - classified: waited out, or retried then parked
                metrics.HANDLER_FAILURES.labels(self.name, source).inc()
                if self.stopped:
                    raise  # shutting down: the message is redelivered to whoever runs next
                if is_transient(exc):
                    transient += 1
                    wait = backoff(transient, self.settings.transient_backoff_max)
                    metrics.TRANSIENT_WAITS.labels(self.name, source).inc()
                    log.warning("%s: %s@%s from %s failed transiently (%r); waiting %.1f s, not parking",
                                self.name, env["type"], env["position"], source, exc, wait)
                    time.sleep(wait)
                    continue
                log.warning("%s: handling %s@%s failed: %r", self.name, env["type"], env["position"], exc)
                if not delays:
                    self.park(source, env, exc)
                    raise Held(source) from None
                time.sleep(delays.pop(0))
                continue
            metrics.HANDLER_SECONDS.labels(self.name, source).observe(time.perf_counter() - started)
            if applied:
                metrics.EVENTS_CONSUMED.labels(self.name, source, env["type"]).inc()
            else:
                metrics.DUPLICATES.labels(self.name, source).inc()
            return

    # -- failures -------------------------------------------------------------------------------
    def park(self, source: str, env: dict, error: BaseException | None) -> None:
        park_message(self.settings, self.name, source, env, error)
        self.hold(source)

    def hold(self, source: str) -> None:
        self.held.add(source)
        metrics.PARKED.labels(self.name, source).set(1)
        consumer = self._consumers.get(source)
        if consumer is not None:
            consumer.cancel()

    def release(self, source: str) -> None:
        self.held.discard(source)
        metrics.PARKED.labels(self.name, source).set(0)
        consumer = self._consumers.get(source)
        if consumer is not None:
            consumer.consume()

    def check_holds(self) -> None:
        """A hold ends when an operator has emptied the parked queue (retry or resume)."""
        for source in self.sources:
            count = bus.parked_count(self._channel, self.settings, self.name, source)
            metrics.PARKED.labels(self.name, source).set(count)
            if count and source not in self.held:
                self.hold(source)
            elif not count and source in self.held:
                log.info("%s: stream from %s resumed", self.name, source)
                self.release(source)
                self.catch_up(source)

    def catch_up(self, source: str) -> None:
        if source in self.held:
            return
        try:
            head = self.log_head(source)
        except Exception as exc:  # noqa: BLE001 - the source may be down; try again next tick
            log.info("%s: cannot read the head of %s: %r", self.name, source, exc)
            return
        tracked = self.sink.position(source)
        metrics.CONSUMER_LAG.labels(self.name, source).set(max(head - tracked, 0))
        if head > tracked:
            try:
                self.pull(source)
            except Held:
                return
            except Exception as exc:  # noqa: BLE001
                log.info("%s: catching up %s failed: %r", self.name, source, exc)
            metrics.CONSUMER_LAG.labels(self.name, source).set(max(head - self.sink.position(source), 0))

    # -- the loop ---------------------------------------------------------------------------
    def _on_message(self, source: str):
        def on_message(message):
            try:
                env = envelope.decode(message.body, upcast=self.upcast)
                if not isinstance(env.get("position"), int) or isinstance(env["position"], bool):
                    raise ValueError(f"no integer position: {env.get('position')!r}")
            except Exception as exc:  # noqa: BLE001 - not an envelope: set it aside as it is, loudly
                try:
                    self.reject(source, message.body, f"undecodable: {exc!r}"[:500])
                except Exception:  # noqa: BLE001 - the broker is failing: it is redelivered
                    log.exception("%s: could not set aside an undecodable message on %s", self.name, source)
                    time.sleep(1.0)
                    message.requeue()
                    return
                message.ack()
                return
            if source in self.held:
                message.requeue()
                return
            term = voucher.term_of(self.settings, self._source_key(source), message.headers, message.body)
            self._inbox.setdefault(source, []).append((env, message, term))

        return on_message

    def _source_key(self, source: str) -> str:
        return bus.source_key(self.settings, source)

    def _work_inbox(self) -> None:
        """Apply what the bus delivered since the last turn, per source in order and in one batch
        (`process_many`), then acknowledge it (cumulatively, when due: `flush_acks`). A stream
        that is held, or an event parked on the way, is acknowledged too: the parked copy and the
        source's log keep it, and the catch-up after the hold ends reads on from there. Any other
        failure (the source log unreachable, say) hands the messages back to the broker at once,
        to be tried again."""
        while self._inbox:
            # The source whose messages came first goes first (popitem took the last): an event
            # another source's event answers, delivered in the same turn, is then applied before it.
            source = next(iter(self._inbox))
            arrived = self._inbox.pop(source)
            if source in self.held:
                for _env, message, _term in arrived:
                    message.requeue()
                continue
            try:
                self.process_many(source, [(env, message.body, term) for env, message, term in arrived])
            except Held:
                pass
            except Exception as exc:  # noqa: BLE001 - e.g. the source log is unreachable: try later
                log.warning("%s: could not process %d message(s) from %s (from %s) yet: %r", self.name,
                            len(arrived), source, arrived[0][0]["position"], exc)
                time.sleep(1.0)
                for _env, message, _term in arrived:
                    message.requeue()
                continue
            for _env, message, _term in arrived:
                self._done_with(message)
        self.flush_acks()

    def _done_with(self, message) -> None:
        """`message` is applied or set aside: acknowledge it with the next cumulative ack. Every
        message delivered before it on the channel is done with too (an inbox is worked off whole
        before the next is drained; one handed back was rejected at once), so acknowledging up to
        the highest delivery tag acknowledges exactly what is done."""
        if self._unacked is None:
            self._ack_due = time.monotonic() + ACK_EVERY_S
        if self._unacked is None or message.delivery_tag > self._unacked.delivery_tag:
            self._unacked = message
        self._unacked_count += 1

    def flush_acks(self, now: float | None = None) -> None:
        """Send the cumulative ack if it is due (ACK_EVERY_S, ACK_AT_MOST); `now=inf` forces it."""
        if self._unacked is None:
            return
        now = time.monotonic() if now is None else now
        if now < self._ack_due and self._unacked_count < ACK_AT_MOST:
            return
        message, self._unacked, self._unacked_count = self._unacked, None, 0
        message.ack(multiple=True)

    def _forget_acks(self) -> None:
        """The channel is gone, and with it its delivery tags: the broker delivers again what was
        not acknowledged, and the duplicates are dropped."""
        self._unacked, self._unacked_count = None, 0

    def _drain(self, conn) -> None:
        """Wait up to half a second for a message -- no longer than until acknowledgements are due
        -- then take whatever else arrives (up to BATCH in all): what has arrived already, or, if
        the last turn applied something within LINGER_S, what arrives within LINGER_S. Then apply
        it."""
        wait = 0.5 if self._unacked is None else min(0.5, max(self._ack_due - time.monotonic(), 0.001))
        try:
            conn.drain_events(timeout=wait)
            now = time.monotonic()
            until = now + LINGER_S if now - self._worked_at < LINGER_S else now
            while sum(map(len, self._inbox.values())) < BATCH:
                conn.drain_events(timeout=max(until - time.monotonic(), 0))
        except socket.timeout:
            pass
        worked = bool(self._inbox)
        self._work_inbox()  # with nothing new, it still sends the acknowledgements that are due
        if worked:
            self._worked_at = time.monotonic()

    def run(self) -> None:
        while not self.stopped:
            try:
                self._run_connected()
            except Exception:  # noqa: BLE001 - reconnect after a broker failure
                log.exception("%s: consumer connection failed; reconnecting", self.name)
                self._consumers.clear()
                self._inbox.clear()  # unacknowledged on a dead channel: the broker delivers them again
                self._forget_acks()
                time.sleep(1.0)
        self.track_untracked(now=float("inf"))  # stopping: leave as little as can be to handle again

    def _run_connected(self) -> None:
        with bus.connect(self.settings) as conn:
            conn.ensure_connection(max_retries=None, interval_start=0.5, interval_step=0.5, interval_max=2)
            self._channel = conn.channel()
            bus.declare_for_consumer(self._channel, self.settings, self.name)
            for source in self.sources:
                consumer = Consumer(
                    self._channel,
                    queues=[bus.consumer_queue(self.settings, self.name, source)],
                    on_message=self._on_message(source),
                    prefetch_count=BATCH,
                    accept=["json"],
                    auto_declare=False,
                )
                self._consumers[source] = consumer
            self.check_holds()
            for source, consumer in self._consumers.items():
                if source not in self.held:
                    consumer.consume()
            # Ready once connected and consuming: a backlog is worked off while serving, so a
            # restart after a long outage does not look like a service that never came up.
            self.ready = True
            for source in self.sources:
                self.catch_up(source)
            next_tick = time.monotonic() + self.settings.catchup_interval
            while not self.stopped:
                self._drain(conn)
                self.track_untracked()
                if time.monotonic() >= next_tick:
                    self.check_holds()
                    for source in self.sources:
                        self.catch_up(source)
                    next_tick = time.monotonic() + self.settings.catchup_interval
            self.flush_acks(now=float("inf"))  # stopping: what is done is not delivered again

    def track_untracked(self, now: float | None = None) -> None:
        """Every TRACK_UNTRACKED_EVERY_S, have the sink record the positions it handled without a
        transaction (`Untracked`). A failure is logged and tried again next time: until then those
        events are only untracked, which loses nothing."""
        now = time.monotonic() if now is None else now
        if now < self._track_untracked_at or not hasattr(self.sink, "track_untracked"):
            return
        self._track_untracked_at = now + TRACK_UNTRACKED_EVERY_S
        try:
            self.sink.track_untracked()
        except Exception as exc:  # noqa: BLE001 - e.g. the database is away: the next turn tries again
            log.warning("%s: could not track what it handled without a transaction yet: %r", self.name, exc)

    def stop(self) -> None:
        self.stopped = True


class ProjectionHeld(Unavailable):
    """The service's read model is held at an event it could not apply: nothing new is recorded
    until an operator has acted (`consult dlq retry|resume projection <service>`)."""


class NotRecorded(Conflict):
    """A command whose events the service's read model would not take: refused, nothing recorded."""


class RecordedButHeld(Exception):
    """A command's events were recorded, but its read model could not apply them (it passed the
    rehearsal; something changed in between) and now holds at them. Not a DomainError: the
    command is not refused -- its texts must stay -- and the caller is told what happened."""

    def __init__(self, source: str, held: dict):
        super().__init__(f"{source}: recorded, held at {held['type']}@{held['position']}")
        self.source, self.held = source, held

    def to_problem(self) -> dict:
        return {"type": "https://consult.example/problems/RecordedButHeld", "title": "Service unavailable",
                "status": 503, "code": "RecordedButHeld",
                "detail": f"this was recorded, but the {self.source} service could not show it: its records are "
                          "held until an operator has acted (consult dlq list); it shows then"}


HOLD_CHECK_S = 1.0  # how often a held read model asks the broker whether its parked event was let go


def catch_up_projection(app, source: str, sink: SqlSink, per_transaction: int = 1) -> int:
    """Bring a read model up to its own service's log head (in order, exactly once).

    A service's read models consume its own log directly (no bus), with the same tracking rule.
    Commands call it after saving, so a read right after a write sees the write. With
    `per_transaction` > 1, up to that many events are applied per transaction (`handle_many`).

    An event the read model cannot apply is retried as a consumer retries a message, then parked
    as a consumer parks one (consumer `projection`, source the service): the read model holds at
    the position before it, so reads keep answering from there; `sink.held` says why, the service
    is not ready (`/readyz` 503, degraded), `consult_parked_messages{consumer="projection"}` is 1
    and `consult dlq list` shows it. Once an operator has emptied the parked queue (`consult dlq
    retry` or `resume`), the next catch-up applies it again.
    """
    from .relay import read_envelopes

    if sink.held is not None and not _hold_released(app.settings, sink, source):
        return 0
    applied = 0
    try:
        while True:
            tracked = sink.position(source)
            batch = read_envelopes(app, source, tracked + 1, 500)
            for i in range(0, len(batch), per_transaction):
                chunk = batch[i:i + per_transaction]
                try:
                    applied += sink.handle_many(source, chunk) if per_transaction > 1 else int(
                        sink.handle(source, chunk[0]))
                except Exception:  # noqa: BLE001 - find the event that fails, retry it, park it
                    applied += sum(_apply_or_park(app.settings, sink, source, env) for env in chunk)
            if len(batch) < 500:
                return applied
    except Held:
        return applied


def _apply_or_park(settings: Settings, sink: SqlSink, source: str, env: dict) -> bool:
    """Apply one event to a read model, retrying as a consumer retries (the first retry at once: a
    clash with another instance applying the same event resolves on re-reading the position);
    park it and hold the read model if it keeps failing."""
    error: BaseException | None = None
    for delay in (0.0, 0.0, *settings.retry_delays):
        if delay:
            time.sleep(delay)
        try:
            return sink.handle(source, env)
        except Exception as exc:  # noqa: BLE001
            error = exc
            metrics.HANDLER_FAILURES.labels(sink.consumer, source).inc()
            log.warning("%s of %s: applying %s@%s failed: %r", sink.consumer, source, env["type"], env["position"],
                        exc)
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    sink.held = {"position": env["position"], "type": env["type"], "event": env["id"], "error": detail[:500]}
    sink._hold_checked = time.monotonic()
    metrics.PARKED.labels(sink.consumer, source).set(1)
    try:
        with bus.connect(settings) as conn:  # another instance (or this one, before a restart) parked it already
            parked = bus.parked_count(conn.channel(), settings, sink.consumer, source)
        if not parked:
            park_message(settings, sink.consumer, source, env, error)
    except Exception:  # noqa: BLE001 - held all the same; parked on a later try once the broker answers
        log.exception("%s of %s: could not park %s@%s", sink.consumer, source, env["type"], env["position"])
    raise Held(source)


def _hold_released(settings: Settings, sink: SqlSink, source: str) -> bool:
    """Whether an operator has let the parked event go (its parked queue is empty); asked of the
    broker at most every HOLD_CHECK_S seconds."""
    now = time.monotonic()
    if now - sink._hold_checked < HOLD_CHECK_S:
        return False
    sink._hold_checked = now
    try:
        with bus.connect(settings) as conn:
            if bus.parked_count(conn.channel(), settings, sink.consumer, source):
                return False
    except Exception as exc:  # noqa: BLE001 - the broker is down: stay held, ask again later
        log.info("%s of %s: cannot read the parked queue: %r", sink.consumer, source, exc)
        return False
    log.info("%s of %s: resumed after %s@%s", sink.consumer, source, sink.held["type"], sink.held["position"])
    sink.held = None
    metrics.PARKED.labels(sink.consumer, source).set(0)
    return True


def _lost_the_race(app, events: list) -> bool:
    """Whether any of these new events' (originator, version) is already in the store."""
    for event in events:
        if app.recorder.select_events(event.originator_id, gt=event.originator_version - 1, limit=1):
            return True
    return False


def rehearse_projection(app, source: str, sink: SqlSink, events: list) -> None:
    """Before a command's events are saved: apply them to the read model in a transaction that is
    rolled back. So a command and its projection either both hold or the command is refused
    (NotRecorded), instead of an event being saved that its read model cannot take. Refused too
    while the read model is held (ProjectionHeld). Positions are placeholders after the head."""
    if sink.held is not None:
        raise ProjectionHeld.coded("common.service_records_held_event", source=source)
    head = app.recorder.max_notification_id() or 0
    envs = [envelope.from_domain_event(source, head + n, e) for n, e in enumerate(events, 1)]
    try:
        sink.rehearse(envs)
    except DomainError:
        raise
    except Exception as exc:  # noqa: BLE001 - the reason is for the operator's log, not the caller
        _refuse_unless_lost(app, source, events, envs, exc)


def _refuse_unless_lost(app, source: str, events: list, envs: list[dict], exc: Exception) -> None:
    """The read model would not apply a save's events (called from an `except`): refuse the save
    (NotRecorded, the reason only in the operator's log), unless another instance saved these
    versions first. Then its rows are in the read model, the store's own unique (originator,
    version) key refuses our save next, and the caller gets the usual concurrency conflict: return.

    A transient failure (the read model's connection lost, a lock timeout: `is_transient`) says
    nothing about the events: it is raised as it is, so the caller answers "not now" (503) and a
    client retries. Refused as a conflict (409), a vote whose read model lost its connection was
    taken by its client as already recorded, and so was lost (the PostgreSQL-backends fault)."""
    if is_transient(exc):
        raise exc
    if _lost_the_race(app, events):
        return
    log.exception("%s: refused %s: its read model would not apply it", source, [e["type"] for e in envs])
    raise NotRecorded.coded("common.nothing_was_recorded_change") from None


AHEAD_ATTEMPTS = 3


# The positions this green thread's saves applied to their read model ahead of recording, in a
# transaction that committed (record_with_projection); None outside `commits_ahead`.
_ahead: ContextVar[list | None] = ContextVar("consult_commits_ahead", default=None)


@contextmanager
def collecting(var: ContextVar, into):
    """Set `var` to `into` (a list or a dict that code called in this block fills, in this green
    thread) for the block, and hand `into` to it."""
    token = var.set(into)
    try:
        yield into
    finally:
        var.reset(token)


def commits_ahead():
    """Collect the positions that saves made in this block (by this green thread) applied to their
    read model ahead of recording and committed. What a read-model handler worked out while applying
    an event at such a position holds for the log as recorded: the read model stood at the log head
    just before it (its tracking row locked), and the event was recorded at that very position. An
    apply whose transaction rolled back (another writer took the position) is not listed: the
    catch-up applies those events again, where the command cannot see what it worked out."""
    return collecting(_ahead, [])


def _behind(app, tracked: int) -> bool:
    """Whether the log holds events past `tracked` that the read model has not applied."""
    return (app.recorder.max_notification_id() or 0) > tracked


def record_with_projection(app, source: str, sink: SqlSink, events: list, record: Callable[[], list]) -> list:
    """Record a command's (or a consumer's) new events and apply them to the service's own read
    model, paying for each once: the read model's transaction is opened first, its tracking row
    locked (the log's head taken to be there, see below), the events applied with the positions
    they will get (head + 1, ...), then `record()` writes them to the event store, and the read
    model's transaction commits only if what was recorded is exactly what was applied (same
    envelopes, same positions).
    Otherwise it rolls back and the usual catch-up after the save applies the recorded events.

    So, as with the rehearsal (`rehearse_projection`, the fallback), a command whose events its read
    model cannot take is refused before anything is recorded; the common case costs one read-model
    transaction instead of a rehearsal, a catch-up and an apply (issue 16's stage benchmarks).
    Lock order is the read model's row, then the event store: every writer of the store comes
    through here, so none waits on the other the other way round. The caller holds the service's
    projection turn (`ServiceApplication.projection_turn`), so green threads of one process queue
    for it instead of blocking the process in a row-lock wait."""
    for _attempt in range(AHEAD_ATTEMPTS):
        if sink.held is not None:
            app.catch_up()  # releases the hold if an operator has acted
            if sink.held is not None:
                raise ProjectionHeld.coded("common.service_records_held_event", source=source)
        with sink.engine.connect() as conn:
            transaction = conn.begin()
            try:
                tracked = sink._locked_position(conn, source)
                # Every writer of the store comes through this row, so the log's head is where the
                # read model stands: it is read only when this process has recorded past that (a
                # consumer's save that skips the read model). A wrong guess (another instance's
                # save that did) costs no more than a lost race: positions differ after recording,
                # and the catch-up applies the events.
                head = tracked if app.known_head <= tracked else app.recorder.max_notification_id() or 0
                if tracked != head:
                    transaction.rollback()
                    app.catch_up()
                    continue
                envs = [envelope.from_domain_event(source, head + n, e) for n, e in enumerate(events, 1)]
                try:
                    for env in envs:
                        faults.check(sink.consumer, env)
                        sink.handler(conn, env)
                except faults.InjectedFault:
                    # A test's stand-in for a read model that breaks after the rehearsal: record, and
                    # let the catch-up after the save meet the fault and hold (RecordedButHeld).
                    transaction.rollback()
                    return record()
                except Exception as exc:  # noqa: BLE001 - the reason is for the operator's log, not the caller
                    transaction.rollback()
                    if _behind(app, tracked):  # failed or refused by a read model that lacked events: catch up first
                        app.catch_up()
                        continue
                    if isinstance(exc, DomainError):
                        raise
                    _refuse_unless_lost(app, source, events, envs, exc)
                    return record()  # lost the race: the store's unique (originator, version) refuses it
                recordings = record()
                recorded = [envelope.from_domain_event(source, r.notification.id,
                                                       app.mapper.to_domain_event(r.notification))
                            for r in recordings]
                if recorded == envs:
                    sink._track(conn, source, tracked, envs[-1]["position"])
                    transaction.commit()
                    sink.applied = max(sink.applied, envs[-1]["position"])
                    committed = _ahead.get()
                    if committed is not None:
                        committed.extend(env["position"] for env in envs)
                    metrics.PROJECTED_AHEAD.labels(source, "applied").inc()
                else:  # another writer took a position first, or a hole: the catch-up applies them
                    transaction.rollback()
                    metrics.PROJECTED_AHEAD.labels(source, "caught_up").inc()
                return recordings
            finally:
                if transaction.is_active:
                    transaction.rollback()
    # The log kept moving under us (other instances writing): rehearse, record, catch up after.
    app.catch_up()
    rehearse_projection(app, source, sink, events)
    return record()
