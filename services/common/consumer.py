"""The tracked consumer: exactly-once effect from an at-least-once bus.

Per (consumer, source) it keeps a tracking position, recorded atomically with its own new state.
A message at or below it is a duplicate. A message beyond tracked + 1 means something is missing:
the consumer reads the source's log from tracked + 1 and applies what is there, in order. A
position the log does not hold is a hole (a rolled-back insert on PostgreSQL), never waited for.
A timer compares each source's head with the tracked position, so a lost last message is caught up.
A handler that keeps failing parks the message, holds that source's stream and raises a metric,
until an operator retries or resumes it (`consult dlq`).
"""
from __future__ import annotations

import logging
import socket
import time
import traceback
from typing import Callable, Protocol

import sqlalchemy as sa
from eventsourcing.persistence import Tracking
from kombu import Consumer

from . import bus, clock, envelope, faults, metrics
from .aggregate import command_context
from .config import Settings
from .tables import consumer_tracking

log = logging.getLogger(__name__)

FetchLog = Callable[[str, int, int], list]  # (source, start, limit) -> envelopes
LogHead = Callable[[str], int]


class Held(Exception):
    """The stream of one source is held: a message is parked."""


class Sink(Protocol):
    def position(self, source: str) -> int: ...

    def handle(self, source: str, env: dict) -> bool: ...


class SqlSink:
    """Effects are rows in the consumer's state database, written in the tracking transaction."""

    def __init__(self, consumer: str, engine: sa.Engine, handler: Callable[[sa.Connection, dict], None]):
        self.consumer, self.engine, self.handler = consumer, engine, handler

    def position(self, source: str) -> int:
        with self.engine.connect() as conn:
            return self._position(conn, source)

    def _position(self, conn, source: str, lock: bool = False) -> int:
        query = sa.select(consumer_tracking.c.position).where(
            consumer_tracking.c.consumer == self.consumer, consumer_tracking.c.source == source
        )
        pos = conn.execute(query.with_for_update() if lock else query).scalar()
        return pos or 0

    def _locked_position(self, conn, source: str) -> int:
        """The tracked position, with the tracking row locked for this transaction, so that two
        instances applying the same event take turns and the second sees it applied. (SQLite
        needs no row lock: its transactions begin IMMEDIATE, one writer at a time.)"""
        if self._position(conn, source, lock=True) == 0 and not self._row_exists(conn, source):
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(consumer_tracking).values(
                        consumer=self.consumer, source=source, position=0))
            except sa.exc.IntegrityError:
                pass  # another instance created it first
            return self._position(conn, source, lock=True)
        return self._position(conn, source, lock=True)

    def _row_exists(self, conn, source: str) -> bool:
        return conn.execute(sa.select(consumer_tracking.c.consumer).where(
            consumer_tracking.c.consumer == self.consumer, consumer_tracking.c.source == source)).first() is not None

    def handle(self, source: str, env: dict) -> bool:
        with self.engine.begin() as conn:
            tracked = self._locked_position(conn, source)
            if env["position"] <= tracked:
                return False
            faults.check(self.consumer, env)
            self.handler(conn, env)
            self._track(conn, source, tracked, env["position"])
        return True

    def handle_many(self, source: str, envs: list[dict]) -> int:
        """Apply envelopes in order in one transaction with one tracking record; those at or below
        the tracked position are skipped. For a read model catching up on its own log, where a
        transaction per event would cost more than the events."""
        with self.engine.begin() as conn:
            tracked = self._locked_position(conn, source)
            fresh = [env for env in envs if env["position"] > tracked]
            for env in fresh:
                faults.check(self.consumer, env)
                self.handler(conn, env)
            if fresh:
                self._track(conn, source, tracked, fresh[-1]["position"])
        return len(fresh)

    def _track(self, conn, source: str, tracked: int, position: int) -> None:
        # The row exists and is locked (see _locked_position); compare-and-set all the same.
        moved = conn.execute(
            sa.update(consumer_tracking)
            .where(consumer_tracking.c.consumer == self.consumer, consumer_tracking.c.source == source,
                   consumer_tracking.c.position == tracked)
            .values(position=position)
        ).rowcount
        if moved != 1:
            raise RuntimeError(f"{self.consumer}: tracking of {source} moved under us at {tracked}")


class EventSourcedSink:
    """Effects are new aggregate events, saved with the tracking record in one transaction."""

    def __init__(self, app, handler: Callable[[dict], list]):
        self.app, self.handler = app, handler

    def position(self, source: str) -> int:
        return self.app.tracked_position(source)

    def handle(self, source: str, env: dict) -> bool:
        if env["position"] <= self.position(source):
            return False
        faults.check(self.app.name, env)
        with command_context(community=env["community"], actor="system", case=env.get("case"), causation=env["id"]):
            aggregates = self.handler(env) or []
        return self.app.save_tracked(Tracking(source, env["position"]), *aggregates)


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
        self.held: set[str] = set()
        self.stopped = False
        self._consumers: dict[str, Consumer] = {}
        self._channel = None
        self.ready = False

    # -- processing -------------------------------------------------------------------------
    def process(self, source: str, env: dict) -> None:
        """Apply env, first filling any gap before it from the source's log."""
        tracked = self.sink.position(source)
        position = env["position"]
        if position <= tracked:
            metrics.DUPLICATES.labels(self.name, source).inc()
            return
        if position > tracked + 1:
            metrics.GAPS_FILLED.labels(self.name, source).inc()
            self.pull(source, upto=position - 1)
            if position <= self.sink.position(source):
                metrics.DUPLICATES.labels(self.name, source).inc()
                return
        self.apply(source, env)

    def pull(self, source: str, upto: int | None = None) -> int:
        """Read the source's log after the tracked position and apply it in order."""
        applied = 0
        while True:
            tracked = self.sink.position(source)
            if upto is not None and tracked >= upto:
                return applied
            batch = self.fetch_log(source, tracked + 1, 100)
            batch = [e for e in batch if e["position"] > tracked and (upto is None or e["position"] <= upto)]
            if not batch:
                return applied
            for raw in batch:
                self.apply(source, envelope.decode(raw, upcast=self.upcast))
                applied += 1

    def apply(self, source: str, env: dict) -> None:
        delays = (0.0, *self.settings.retry_delays)
        last_error = None
        for delay in delays:
            if delay:
                time.sleep(delay)
            started = time.perf_counter()
            try:
                applied = self.sink.handle(source, env)
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then parked
                last_error = exc
                metrics.HANDLER_FAILURES.labels(self.name, source).inc()
                log.warning("%s: handling %s@%s failed: %r", self.name, env["type"], env["position"], exc)
                continue
            metrics.HANDLER_SECONDS.labels(self.name, source).observe(time.perf_counter() - started)
            if applied:
                metrics.EVENTS_CONSUMED.labels(self.name, source, env["type"]).inc()
            else:
                metrics.DUPLICATES.labels(self.name, source).inc()
            return
        self.park(source, env, last_error)
        raise Held(source)

    # -- failures -------------------------------------------------------------------------------
    def park(self, source: str, env: dict, error: BaseException | None) -> None:
        detail = "".join(traceback.format_exception_only(type(error), error)).strip() if error else "unknown"
        log.error("%s: parking %s@%s from %s: %s", self.name, env["type"], env["position"], source, detail)
        with bus.connect(self.settings, confirm=True) as conn:
            channel = conn.channel()
            queue = bus.parked_queue(self.settings, self.name, source)
            queue(channel).declare()
            conn.Producer(channel=channel).publish(
                envelope.canonical(env),
                exchange="",
                routing_key=queue.name,
                content_type="application/json",
                delivery_mode=2,
                message_id=env["id"],
                headers={
                    "consumer": self.name,
                    "source": source,
                    "position": env["position"],
                    "type": env["type"],
                    "error": detail[:2000],
                    "parked_at": clock.format(clock.now()),
                },
            )
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
            except Exception:  # noqa: BLE001 - not an envelope: park it as it is, loudly
                log.error("%s: undecodable message on %s", self.name, source)
                message.ack()
                return
            if source in self.held:
                message.requeue()
                return
            try:
                self.process(source, env)
            except Held:
                pass
            except Exception as exc:  # noqa: BLE001 - e.g. the source log is unreachable: try later
                log.warning("%s: could not process %s@%s yet: %r", self.name, source, env["position"], exc)
                time.sleep(1.0)
                message.requeue()
                return
            message.ack()

        return on_message

    def run(self) -> None:
        while not self.stopped:
            try:
                self._run_connected()
            except Exception:  # noqa: BLE001 - reconnect after a broker failure
                log.exception("%s: consumer connection failed; reconnecting", self.name)
                self._consumers.clear()
                time.sleep(1.0)

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
                    prefetch_count=1,
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
                try:
                    conn.drain_events(timeout=0.5)
                except socket.timeout:
                    pass
                if time.monotonic() >= next_tick:
                    self.check_holds()
                    for source in self.sources:
                        self.catch_up(source)
                    next_tick = time.monotonic() + self.settings.catchup_interval

    def stop(self) -> None:
        self.stopped = True


def catch_up_projection(app, source: str, sink: SqlSink, per_transaction: int = 1) -> int:
    """Bring a read model up to its own service's log head (in order, exactly once).

    A service's read models consume its own log directly (no bus), with the same tracking rule.
    Commands call it after saving, so a read right after a write sees the write. With
    `per_transaction` > 1, up to that many events are applied per transaction (`handle_many`).
    """
    from .relay import read_envelopes

    applied = 0
    while True:
        tracked = sink.position(source)
        batch = read_envelopes(app, source, tracked + 1, 500)
        if per_transaction > 1:
            for i in range(0, len(batch), per_transaction):
                applied += sink.handle_many(source, batch[i:i + per_transaction])
        else:
            for env in batch:
                if sink.handle(source, env):
                    applied += 1
        if len(batch) < 500:
            return applied
