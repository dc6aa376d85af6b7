"""The outbox relay's turns on fakes (no broker): what it publishes, in order, what it records, and
what it asks the store each turn -- its own published position only when it cannot know it, the
log's head only when a full batch says there may be more."""
from __future__ import annotations

import sqlalchemy as sa
import pytest

from services.common import bus, config, relay as relay_module, voucher
from services.common.relay import OutboxRelay
from services.common.tables import create_all, relay_positions


class App:
    def __init__(self):
        self.log: list[int] = []
        self.heads = 0
        self.known_head = 0  # this process recorded none of the log: the relay takes it as another's

    def head(self):
        self.heads += 1
        return self.log[-1] if self.log else 0


class Producer:
    def __init__(self, fail_at=None):
        self.published, self.fail_at, self.messages = [], fail_at, []

    def publish(self, body, headers, **_):
        if headers["position"] == self.fail_at:
            self.fail_at = None
            raise ConnectionError("the broker went away")
        self.published.append(headers["position"])
        self.messages.append((body, headers))


@pytest.fixture
def relay(tmp_path, monkeypatch):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    create_all(engine)
    settings = config.load({"CONSULT_DATA_DIR": str(tmp_path), "CONSULT_DB": "sqlite"})
    app = App()
    monkeypatch.setattr(relay_module, "read_envelopes", lambda app, source, start, limit: [
        {"schema": "consult.event/1", "source": source, "position": p, "id": f"e{p}", "type": "T",
         "aggregate": {"type": "A", "id": "a", "version": p}, "community": "c", "data": {}}
        for p in app.log if p >= start][:limit])
    r = OutboxRelay("proposals", app, engine, settings, batch=3)
    r.producer = Producer()
    monkeypatch.setattr(r, "_producer_ready", lambda: r.producer)
    reads = []
    real = r.published_position
    monkeypatch.setattr(r, "published_position", lambda: reads.append(1) or real())
    r.reads = reads
    yield r
    engine.dispose()


def stored(r) -> int:
    with r.engine.connect() as conn:
        return conn.execute(sa.select(relay_positions.c.position)).scalar() or 0


def test_each_turn_publishes_what_was_saved_since_in_order_and_records_it_when_due(relay):
    relay.app.log = [1, 2]
    assert relay.relay_once() == 2
    due = relay._record_due
    relay.app.log += [3, 5]  # 4: a hole (a rolled-back insert)
    assert relay.relay_once() == 2
    assert relay.relay_once() == 0
    assert relay.producer.published == [1, 2, 3, 5]
    assert len(relay.reads) == 1, "the published position is read once, then known"
    assert relay.app.heads == 0, "a batch short of full reached the head: it need not be asked"
    assert stored(relay) == 0 and relay._record_due == due, "not recorded each turn: due once, after the first"
    assert relay.has_published(5) and not relay.has_published(6), "what it published is known at once"
    relay.record_published(now=due - 0.01)
    assert stored(relay) == 0
    relay.record_published(now=due)
    assert stored(relay) == 5
    relay.app.log += [6]
    relay.relay_once()
    assert relay._record_due > due, "the next publish after a record is due a whole interval later"


def test_a_position_recorded_by_another_instance_counts_as_published(relay):
    with relay.engine.begin() as conn:
        conn.execute(sa.insert(relay_positions).values(source="proposals", position=7))
    assert relay.has_published(7) and not relay.has_published(8)


def test_a_full_batch_asks_the_head_for_the_lag(relay):
    relay.app.log = [1, 2, 3, 4]
    assert relay.relay_once() == 3 and relay.app.heads == 1
    assert relay.relay_once() == 1 and relay.app.heads == 1
    assert relay.producer.published == [1, 2, 3, 4]


def test_after_a_failed_publish_what_got_out_is_recorded_and_the_position_read_again(relay):
    relay.app.log = [1, 2, 3]
    relay.producer.fail_at = 2
    with pytest.raises(ConnectionError):
        relay.relay_once()
    assert stored(relay) == 1, "recorded at once, not when due: the next turn reads it back"
    relay._forget_published()  # as run() does after a failure (and on leaving the lease)
    assert relay.relay_once() == 2
    assert relay.producer.published == [1, 2, 3] and len(relay.reads) == 2
    relay._forget_published()
    assert stored(relay) == 3, "what it published is recorded when it lets go"


def test_each_message_carries_the_relay_terms_voucher_and_each_lease_a_new_term(relay, monkeypatch):
    relay.app.log = [1, 2]
    relay.relay_once()
    key = bus.source_key(relay.settings, "proposals")
    assert [voucher.term_of(relay.settings, key, h, body) for body, h in relay.producer.messages] == [relay.term] * 2
    body, h = relay.producer.messages[0]
    assert voucher.term_of(relay.settings, key, h, body.replace(b'"T"', b'"U"')) is None, "the body is covered"
    assert relay.settings.data_dir.joinpath(voucher.KEY_FILE).read_bytes() not in body + repr(h).encode()

    class Lease:  # taken twice, held for one turn each time
        turns = 0

        def try_acquire(self):
            return True

        def still_held(self):
            Lease.turns += 1
            if Lease.turns > 3:
                relay.stopped = True
            return Lease.turns % 2 == 1

        def release(self):
            terms.append(relay.term)

    class Saved:  # nothing new is saved: a turn waits no longer than this
        def wait(self, timeout):
            pass

        def clear(self):
            pass

    terms = []
    relay.app.saved = Saved()
    monkeypatch.setattr(relay, "lease", Lease())
    monkeypatch.setattr(relay, "_reset_producer", lambda: None)
    relay.run()
    assert len(terms) == 2 and len(set(terms)) == 2, "a new term each time the lease is taken"


class Lease:
    def try_acquire(self):
        return True

    def still_held(self):
        return True

    def release(self):
        pass


def test_after_a_short_batch_the_relay_waits_for_the_next_save_not_a_read_that_finds_nothing(relay, monkeypatch):
    """Votes one at a time: each save wakes the relay, which publishes it and then waits for the
    next save -- one read of the log per save, where it used to read again at once and find nothing."""
    import threading
    import time as real_time

    reads = []
    read = relay_module.read_envelopes
    monkeypatch.setattr(relay_module, "read_envelopes", lambda *a: reads.append(1) or read(*a))
    relay.lease = Lease()
    relay.app.saved = threading.Event()
    runner = threading.Thread(target=relay.run)
    runner.start()
    try:
        deadline = real_time.monotonic() + 10
        while not reads and real_time.monotonic() < deadline:  # the relay's first turn: nothing yet
            real_time.sleep(0.01)
        real_time.sleep(0.05)
        before = len(reads)
        for position in range(1, 11):
            relay.app.log.append(position)
            relay.app.saved.set()
            while relay.producer.published[-1:] != [position] and real_time.monotonic() < deadline:
                real_time.sleep(0.002)
            real_time.sleep(0.01)  # the next vote comes a little later, well inside AFTER_SHORT_BATCH_S
        saves_reads = len(reads) - before
    finally:
        relay.stop()
        runner.join(10)
    assert relay.producer.published == list(range(1, 11))
    assert saves_reads <= 12, f"{saves_reads} reads for 10 saves"  # one each, give or take a wake-up


def test_with_no_other_writer_the_relay_reads_the_log_only_when_its_own_process_saves(relay, monkeypatch):
    """A save every 0.12 s, longer apart than AFTER_SHORT_BATCH_S: each wakes the relay, which
    publishes it and then waits for the next one. It used to read the log again 0.05 s after each
    and find nothing, a second statement per save (per vote in each of two cells at a few votes
    a second). Then another instance's saves (in the log, but not this process's `known_head`, and
    waking nothing): the first waits for the relay interval, and once one is seen, those that come
    right after a short batch are read again within AFTER_SHORT_BATCH_S, as before."""
    import dataclasses
    import threading
    import time as real_time

    reads = []
    read = relay_module.read_envelopes
    monkeypatch.setattr(relay_module, "read_envelopes", lambda *a: reads.append(1) or read(*a))
    relay.settings = dataclasses.replace(relay.settings, relay_interval=3.0)
    relay.lease = Lease()
    relay.app.saved = threading.Event()
    relay.app.known_head = 0
    published = relay.producer.published

    def own_save(position):
        relay.app.log.append(position)
        relay.app.known_head = position
        relay.app.saved.set()

    def until(condition, limit):
        deadline = real_time.monotonic() + limit
        while not condition() and real_time.monotonic() < deadline:
            real_time.sleep(0.002)
        return condition()

    runner = threading.Thread(target=relay.run)
    runner.start()
    try:
        assert until(lambda: reads, 10), "the relay's first turn"
        real_time.sleep(0.05)
        before = len(reads)
        for position in range(1, 6):
            own_save(position)
            assert until(lambda: published[-1:] == [position], 10)
            real_time.sleep(0.12)
        own_reads = len(reads) - before
        assert own_reads == 5, f"{own_reads} reads of the log for 5 saves of its own, 0.12 s apart"

        relay.app.log.append(6)  # another instance's save: nothing wakes the relay
        started = real_time.monotonic()
        assert until(lambda: published[-1:] == [6], 10)
        assert real_time.monotonic() - started > 1.0, "found by the relay interval's read, not sooner"
        own_save(7)
        assert until(lambda: published[-1:] == [7], 10)
        relay.app.log.append(8)  # another instance's, right after a short batch: read again soon
        started = real_time.monotonic()
        assert until(lambda: published[-1:] == [8], 10)
        assert real_time.monotonic() - started < 1.0, "read again AFTER_SHORT_BATCH_S after the batch"
    finally:
        relay.stop()
        relay.app.saved.set()
        runner.join(10)
    assert published == list(range(1, 9))


def test_a_quiet_log_is_read_less_and_less_often_and_any_publish_or_other_writer_resets_it(relay):
    """An idle platform's relays read their logs five times a second each; while nothing is
    published and no other instance is seen saving, the wait doubles from the relay interval up
    to IDLE_WAIT_MAX_S, and is the interval again as soon as something is published (a save of its
    own wakes it at once anyway) or another instance has been saving lately."""
    import time as real_time

    interval = relay.settings.relay_interval
    assert interval == 0.2 and relay_module.IDLE_WAIT_MAX_S == 1.0
    assert [relay._wait_after(0) for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert relay._wait_after(3) == 0.2  # published: back to the interval
    assert relay._wait_after(0) == 0.2 and relay._wait_after(0) == 0.4
    relay._others_until = real_time.monotonic() + 30  # another instance saved lately: its saves wake nothing
    assert [relay._wait_after(0) for _ in range(3)] == [0.2, 0.2, 0.2]
    assert relay._wait_after(3) == relay_module.AFTER_SHORT_BATCH_S
    relay._others_until = float("-inf")
    assert [relay._wait_after(0) for _ in range(3)] == [0.2, 0.4, 0.8]
