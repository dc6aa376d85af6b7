"""The outbox relay: a source's notification log *is* its outbox.

Reads notifications after the last published position, turns each into an envelope, publishes it
with publisher confirms, then records the position (at-least-once; never publishes what was not
committed, never skips what was). The position is recorded at most every RECORD_EVERY_S, not each
turn: a relay that takes over publishes again what the last one published since it last recorded,
and consumers drop those as duplicates. With several instances, exactly one relay publishes a
source at a time: a PostgreSQL advisory lock, or a file lock for SQLite.
"""
from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from . import bus, envelope, metrics, voucher
from .config import Settings
from .locks import SessionLock
from .tables import relay_positions

log = logging.getLogger(__name__)

# How long a relay holding the lease may leave what it published unrecorded. A transaction per turn
# was paid per vote when votes came one at a time (each turn a batch of one); recorded at most every
# half second, it is paid a couple of times a second, and a failover republishes at most that much.
RECORD_EVERY_S = 0.5
# After a batch short of full the relay has published everything up to the head as it stood. It
# then waits for the next save of its own process instead of reading the log again at once only to
# find nothing: that read was one more statement per turn, and at a few votes per turn nearly one per
# vote (more per vote the slower the votes come, as in each of two cells sharing a machine). A save
# by another instance of the service does not wake it. So while another instance has been saving
# (within OTHER_WRITERS_S, told by the relay publishing events its own process did not record), the
# relay reads again this soon after a short batch, and such an event waits at most this long; with
# no other writer seen, it waits for its own process's next save up to the relay interval, and reads
# the log no more often than its own saves and that interval ask.
AFTER_SHORT_BATCH_S = 0.05
OTHER_WRITERS_S = 30.0
# While its log stays quiet (nothing published, no other writer seen), the relay's read at the relay
# interval backs off, doubling up to IDLE_WAIT_MAX_S: each relay of an idle platform read its log
# five times a second, a statement and its round trip every 0.2 s in each of seven services (and in
# every cell of a deployment, most of which are idle most of the day). Its own process's saves still
# wake it at once, so what a service records is published as soon as before; only a save by another
# instance after a quiet spell (or by a process that is not a service) waits up to this long.
IDLE_WAIT_MAX_S = 1.0


def read_envelopes(app, source: str, start: int, limit: int) -> list[dict]:
    """The source's log as envelopes from position start (holes are simply absent)."""
    return [
        envelope.from_domain_event(source, n.id, app.mapper.to_domain_event(n))
        for n in app.recorder.select_notifications(start=max(start, 1), limit=limit)
    ]


class OutboxRelay:
    def __init__(self, source: str, app, engine: sa.Engine, settings: Settings, batch: int = 200):
        self.source, self.app, self.engine, self.settings, self.batch = source, app, engine, settings, batch
        # Exactly one instance publishes a source at a time: whoever holds this right.
        self.lease = SessionLock(settings, "relay", source, engine)
        self._conn = None
        self._producer = None
        self.stopped = False
        # The position this relay has published up to, while it holds the lease (no other instance
        # publishes then), so a turn does not read it back; None: read it from the store.
        self._published: int | None = None
        self._recorded = 0  # the published position this relay last recorded (or read)
        self._record_due = 0.0  # when what it published since must be recorded (`record_published`)
        # This relay's term (voucher.py): drawn anew each time it takes the lease, so a consumer
        # checks the first message of each term against the log before it believes the rest.
        self.term = voucher.new_term()
        # Until when another instance of the service is taken to be saving (OTHER_WRITERS_S).
        self._others_until = float("-inf")
        self._idle_wait: float | None = None  # the next wait after a turn that published nothing

    def published_position(self) -> int:
        with self.engine.connect() as conn:
            pos = conn.execute(
                sa.select(relay_positions.c.position).where(relay_positions.c.source == self.source)
            ).scalar()
        return pos or 0

    def has_published(self, position: int) -> bool:
        """Whether the event at `position` is on the bus: this relay published it (its position is
        recorded a little later), or the store records it published (by whichever instance)."""
        return (self._published or 0) >= position or self.published_position() >= position

    def record_published(self, now: float | None = None) -> None:
        """Record what this relay published, if that is due (RECORD_EVERY_S); `now=inf` forces it."""
        if self._published is None or self._published <= self._recorded:
            return
        now = time.monotonic() if now is None else now
        if now < self._record_due:
            return
        self._record_position(self._published)
        self._recorded = self._published

    def _record_position(self, position: int) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(relay_positions)
                .where(relay_positions.c.source == self.source, relay_positions.c.position < position)
                .values(position=position)
            ).rowcount
            if not updated:
                exists = conn.execute(
                    sa.select(relay_positions.c.position).where(relay_positions.c.source == self.source)
                ).scalar()
                if exists is None:
                    conn.execute(sa.insert(relay_positions).values(source=self.source, position=position))

    def _producer_ready(self):
        if self._producer is None:
            self._conn = bus.connect(self.settings, confirm=True)
            self._conn.ensure_connection(max_retries=3)
            channel = self._conn.channel()
            bus.declare_for_source(channel, self.settings, self.source)
            self._producer = self._conn.Producer(channel=channel, exchange=bus.exchange(self.settings))
        return self._producer

    def _reset_producer(self) -> None:
        try:
            if self._conn is not None:
                self._conn.release()
        except Exception:  # noqa: BLE001
            pass
        self._conn = self._producer = None

    def relay_once(self) -> int:
        """Publish the next batch; returns how many were published."""
        if self._published is None:
            self._published = self._recorded = self.published_position()
        self.record_published()  # what earlier turns published, if that is due (busy or idle)
        position = self._published
        envelopes = read_envelopes(self.app, self.source, position + 1, self.batch)
        # A batch short of full is everything up to the head as it stood: the head need not be asked.
        head = self.app.head() if len(envelopes) == self.batch else envelopes[-1]["position"] if envelopes \
            else position
        metrics.OUTBOX_LAG.labels(self.source).set(max(head - position, 0))
        if not envelopes:
            return 0
        producer = self._producer_ready()
        source_key = bus.source_key(self.settings, self.source)
        last = position
        out = False
        try:
            for env in envelopes:
                body = envelope.canonical(env)
                producer.publish(
                    body,
                    routing_key=envelope.routing_key(env, source_key),
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=env["id"],
                    headers={"source": self.source, "position": env["position"],
                             **voucher.headers(self.settings, source_key, self.term, body)},
                )
                metrics.EVENTS_PUBLISHED.labels(self.source, env["type"]).inc()
                last = env["position"]
            out = True
            if last > self.app.known_head:  # saved by another instance (or before this one ran)
                self._others_until = time.monotonic() + OTHER_WRITERS_S
        finally:
            # Each publish was confirmed by the broker before returning: what got out is published.
            # It is recorded when due (a later turn) -- at once if a publish failed, as the turn
            # after reads the position back.
            if last > position:
                if self._published <= self._recorded:
                    self._record_due = time.monotonic() + RECORD_EVERY_S
                self._published = last
                if not out:
                    self.record_published(now=float("inf"))
        metrics.OUTBOX_LAG.labels(self.source).set(max(head - last, 0))
        return len(envelopes)

    def run(self) -> None:
        """Run until stop(): wait for the lease, then publish as events are saved."""
        while not self.stopped:
            if not self.lease.try_acquire():
                time.sleep(1.0)
                continue
            log.info("relay %s: holding the lease", self.source)
            self.term = voucher.new_term()
            self._published = None  # another instance may have published while we did not hold it
            try:
                while not self.stopped and self.lease.still_held():
                    try:
                        published = self.relay_once()
                    except Exception:  # noqa: BLE001 - log, reconnect, try again; nothing is skipped
                        log.exception("relay %s: publishing failed; retrying", self.source)
                        self._forget_published()
                        self._reset_producer()
                        time.sleep(1.0)
                        continue
                    if published < self.batch:  # everything up to the head is out: wait for a save
                        self.app.saved.wait(self._wait_after(published))
                        self.app.saved.clear()
            finally:
                self._forget_published()  # the next holder starts from what is recorded
                self.lease.release()
                self._reset_producer()

    def _wait_after(self, published: int) -> float:
        """How long to wait for a save of this process after a turn that reached the head: the
        relay interval, or AFTER_SHORT_BATCH_S after publishing while another instance saves; after
        turns that published nothing, with no other writer seen, twice the last wait up to
        IDLE_WAIT_MAX_S."""
        interval = self.settings.relay_interval
        others = time.monotonic() < self._others_until
        if published or others:
            self._idle_wait = None
            return min(interval, AFTER_SHORT_BATCH_S) if published and others else interval
        wait = interval if self._idle_wait is None else self._idle_wait
        self._idle_wait = min(max(interval, IDLE_WAIT_MAX_S), wait * 2)
        return wait

    def _forget_published(self) -> None:
        """Record what this relay published, if it can, then read the position back next turn
        (after a failure, or for another term). If it cannot, whoever publishes next starts a
        little earlier: the consumers drop those duplicates."""
        try:
            self.record_published(now=float("inf"))
        except Exception as exc:  # noqa: BLE001 - e.g. the database is away
            log.warning("relay %s: could not record the published position: %r", self.source, exc)
        self._published = None

    def stop(self) -> None:
        self.stopped = True
        self.app.saved.set()
