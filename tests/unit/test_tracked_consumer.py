"""The tracked consumer's rules on fakes: duplicates, gaps, holes, retries, parking."""
from __future__ import annotations

import pytest

import dataclasses
import json
import time
import types

import sqlalchemy as sa
from nameko.exceptions import RpcTimeout

from services.common import config, consumer as consumer_module, voucher
from services.common.consumer import Held, ProjectionHeld, TrackedConsumer, backoff, is_transient
from services.common.errors import Conflict, Unavailable


class FakeSink:
    def __init__(self, fail_on=()):
        self.applied, self.fail_on, self.attempts = [], set(fail_on), 0

    def position(self, source):
        return self.applied[-1] if self.applied else 0

    def handle(self, source, env):
        self.attempts += 1
        if env["position"] in self.fail_on:
            raise RuntimeError("boom")
        if env["position"] <= self.position(source):
            return False
        self.applied.append(env["position"])
        return True


def env(pos):
    return {"schema": "consult.event/1", "position": pos, "type": "T", "id": f"e{pos}", "community": "c"}


def make(log_positions, sink, data_dir=None):
    settings = config.Settings(amqp_uri="", db="sqlite", data_dir=data_dir, prefix="t", test_mode=True,
                               clock_file=None, relay_interval=1, catchup_interval=1, retry_delays=(0.0, 0.0))
    reads = []

    def fetch(source, start, limit):
        reads.append(start)
        return [env(p) for p in log_positions if p >= start][:limit]

    consumer = TrackedConsumer("c", ("s",), sink, settings, fetch, lambda s: max(log_positions, default=0))
    consumer.parked = []
    consumer.park = lambda source, e, err: (consumer.parked.append(e["position"]), consumer.held.add(source))
    consumer.set_aside = []
    consumer.reject = lambda source, body, reason, position=None, message_id=None: consumer.set_aside.append(
        (position, reason))
    return consumer, reads


def test_in_order_messages_are_checked_against_the_log_read_ahead_in_one_go():
    sink = FakeSink()
    c, reads = make([1, 2, 3], sink)
    for p in (1, 2, 3):
        c.process("s", env(p))
    assert sink.applied == [1, 2, 3] and reads == [1], "one read of the log covers the three"


def test_duplicates_are_ignored():
    sink = FakeSink()
    c, _ = make([1, 2], sink)
    for p in (1, 1, 2, 1, 2):
        c.process("s", env(p))
    assert sink.applied == [1, 2]


def test_a_gap_is_filled_from_the_source_log_in_order():
    sink = FakeSink()
    c, reads = make([1, 2, 3, 4], sink)
    c.process("s", env(4))
    assert sink.applied == [1, 2, 3, 4] and reads == [1]


def test_holes_are_skipped_not_waited_for():
    sink = FakeSink()
    c, _ = make([1, 2, 5, 9], sink)  # 3, 4, 6, 7, 8 were burnt by rolled-back inserts
    c.process("s", env(9))
    assert sink.applied == [1, 2, 5, 9]


def test_catch_up_reads_a_lost_last_message():
    sink = FakeSink()
    c, _ = make([1, 2, 3], sink)
    c.process("s", env(1))
    c.catch_up("s")
    assert sink.applied == [1, 2, 3]


def test_a_failing_handler_is_retried_then_parked_and_the_stream_held():
    sink = FakeSink(fail_on={2})
    c, _ = make([1, 2, 3], sink)
    c.process("s", env(1))
    with pytest.raises(Held):
        c.process("s", env(2))
    assert c.parked == [2] and "s" in c.held
    assert sink.attempts == 1 + 3, "one first try and two retries"
    c.catch_up("s")  # held: nothing moves
    assert sink.applied == [1]
    sink.fail_on.clear()
    c.held.discard("s")
    c.catch_up("s")
    assert sink.applied == [1, 2, 3]


def test_a_service_whose_own_read_model_is_held_is_asked_again_later_not_parked():
    """The consumer's service refuses to record while its read model is held (ProjectionHeld):
    the message is not the problem, so it is not parked; it is tried again once the hold is lifted."""
    class HeldSink(FakeSink):
        held = True

        def handle(self, source, env):
            if self.held:
                raise ProjectionHeld("held")
            return super().handle(source, env)

    sink = HeldSink()
    c, _ = make([1], sink)
    with pytest.raises(ProjectionHeld):
        c.process("s", env(1))
    assert c.parked == [] and c.held == set()
    sink.held = False
    c.process("s", env(1))
    assert sink.applied == [1]


def test_a_forged_message_is_set_aside_and_the_event_the_log_records_is_applied():
    """A message at a position the log holds, but not what the log holds there: the log's event is
    applied, the message set aside; at a position the log does not hold (yet): set aside only."""
    sink = FakeSink()
    c, _ = make([1, 2], sink)
    c.process("s", env(1))
    forged = dict(env(2), data={"forged": True})
    c.process("s", forged, json.dumps(forged))
    assert sink.applied == [1, 2] and [p for p, _ in c.set_aside] == [2]
    c.process("s", env(3))  # the log's next position: no event of it
    assert sink.applied == [1, 2] and [p for p, _ in c.set_aside] == [2, 3]
    assert "holds nothing at position 3" in c.set_aside[-1][1]


def test_an_envelope_no_log_could_hold_is_set_aside_not_spun_on():
    sink = FakeSink()
    c, _ = make([1], sink)
    poison = dict(env(1), data={"weight": 0.5})  # a float: not canonical JSON
    c.process("s", poison)
    assert sink.applied == [1], "the event the log records at 1 is applied"
    assert len(c.set_aside) == 1 and sink.attempts == 1, "set aside once, never retried"


def test_an_undecodable_message_is_set_aside_and_acked():
    sink = FakeSink()
    c, _ = make([1], sink)

    class Message:
        body = b"{not an envelope"
        headers: dict = {}
        acked = requeued = False

        def ack(self):
            self.acked = True

        def requeue(self):
            self.requeued = True

    m = Message()
    c._on_message("s")(m)
    assert m.acked and not m.requeued and c.set_aside and "undecodable" in c.set_aside[0][1]
    assert sink.applied == []


def test_failures_are_classified_transient_or_permanent():
    assert is_transient(RpcTimeout()) and is_transient(ConnectionResetError()) and is_transient(TimeoutError())
    assert is_transient(Unavailable("starting"))  # a 503 from the service: starting, held, a lock timeout
    assert is_transient(sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    try:
        try:
            raise RpcTimeout()
        except RpcTimeout as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_transient(outer), "a transient cause makes the failure transient"
    assert not is_transient(Conflict("already supported")) and not is_transient(KeyError("x"))
    assert not is_transient(RuntimeError("boom")) and not is_transient(FileNotFoundError())


def test_back_off_grows_exponentially_with_jitter_up_to_its_cap():
    waits = [backoff(n, 2.0) for n in range(1, 12)]
    assert all(0 < w <= 2.0 for w in waits)
    assert backoff(1, 2.0) <= 0.2 and backoff(10, 2.0) >= 1.0


def test_a_transient_failure_is_waited_out_without_parking(monkeypatch):
    """The handler's upstream does not answer (RpcTimeout) for a while: the stream waits (with
    back-off, counted) and goes on by itself once it answers; nothing is parked or held."""
    slept = []
    monkeypatch.setattr("services.common.consumer.time.sleep", slept.append)

    class Upstream(FakeSink):
        down_for = 7  # more failures than retry_delays allows a permanent failure

        def handle(self, source, env):
            if self.down_for:
                self.down_for -= 1
                self.attempts += 1
                raise RpcTimeout("communities did not answer")
            return super().handle(source, env)

    sink = Upstream()
    c, _ = make([1, 2], sink)
    c.process("s", env(1))
    c.process("s", env(2))
    assert sink.applied == [1, 2] and c.parked == [] and c.held == set()
    assert len(slept) == 7 and max(slept) <= 10.0


def test_a_transient_failure_while_stopping_is_left_for_redelivery():
    class Down(FakeSink):
        def handle(self, source, env):
            raise RpcTimeout("down")

    c, _ = make([1], Down())
    c.stopped = True
    with pytest.raises(RpcTimeout):
        c.process("s", env(1))
    assert c.parked == []


# ---- batches: a consumer behind its source pays one transaction per batch, not per event -------------

class BatchSink(FakeSink):
    """A sink that takes batches: each `handle_many` is one (counted) transaction, all or nothing."""

    def __init__(self, fail_on=()):
        super().__init__(fail_on)
        self.transactions = 0

    def handle(self, source, env):
        self.transactions += 1
        return super().handle(source, env)

    def handle_many(self, source, envs):
        self.transactions += 1
        kept = list(self.applied)
        try:
            return sum(FakeSink.handle(self, source, e) for e in envs)
        except Exception:
            self.applied = kept  # rolled back
            raise


class Message:
    """A delivered message on one channel: delivery tags count up, and a cumulative ack
    (multiple=True) acknowledges every message of the channel up to its tag not yet settled."""
    delivered: list = []
    acks: list = []  # the delivery tag and `multiple` of every ack sent

    def __init__(self, e, headers=None):
        self.body = json.dumps(e).encode()
        self.headers = headers or {}
        self.acked = self.requeued = False
        Message.delivered.append(self)
        self.delivery_tag = len(Message.delivered)

    def ack(self, multiple=False):
        assert not (self.acked or self.requeued), "a message is settled once"
        Message.acks.append((self.delivery_tag, multiple))
        for m in (Message.delivered if multiple else [self]):
            if m.delivery_tag <= self.delivery_tag and not (m.acked or m.requeued):
                m.acked = True

    def requeue(self):
        assert not (self.acked or self.requeued), "a message is settled once"
        self.requeued = True


@pytest.fixture(autouse=True)
def _channel():
    Message.delivered, Message.acks = [], []


def settle(c):
    """Whatever acknowledgement is pending, sent now (as at the deadline, or at stop)."""
    c.flush_acks(now=float("inf"))


def test_a_backlog_in_the_log_is_applied_a_batch_per_transaction():
    sink = BatchSink()
    c, reads = make(list(range(1, 251)), sink)
    c.catch_up("s")
    assert sink.applied == list(range(1, 251))
    assert sink.transactions == 3 and reads == [1, 101, 201, 251], "100 per read of the log, one transaction each"


def test_messages_that_arrived_together_are_applied_in_one_transaction_and_then_acknowledged():
    sink = BatchSink()
    c, reads = make([1, 2, 3, 4, 5], sink)
    messages = [Message(env(p)) for p in (1, 2, 2, 3, 4, 5)]  # with a duplicate among them
    for m in messages:
        c._on_message("s")(m)
    assert sink.applied == [] and not any(m.acked for m in messages), "nothing applied or acked on arrival"
    c._work_inbox()
    assert sink.applied == [1, 2, 3, 4, 5] and sink.transactions == 1 and reads == [1]
    settle(c)
    assert all(m.acked and not m.requeued for m in messages)
    assert Message.acks == [(6, True)], "one cumulative ack for the batch"


def test_acknowledgements_wait_for_their_deadline_or_a_half_full_prefetch_then_go_as_one():
    sink = BatchSink()
    c, _ = make(list(range(1, 200)), sink)
    c._on_message("s")(Message(env(1)))
    c._work_inbox()
    assert sink.applied == [1] and Message.acks == [], "applied at once, acknowledged later"
    c.flush_acks(now=c._ack_due - 0.01)
    assert Message.acks == []
    c.flush_acks(now=c._ack_due)
    assert Message.acks == [(1, True)] and Message.delivered[0].acked
    batch = [Message(env(p)) for p in range(2, 2 + consumer_module.ACK_AT_MOST)]
    for m in batch:
        c._on_message("s")(m)
    c._work_inbox()
    assert Message.acks[-1] == (batch[-1].delivery_tag, True) and all(m.acked for m in batch), \
        "ACK_AT_MOST waiting: acknowledged without waiting for the deadline"
    assert len(Message.acks) == 2


def test_a_cumulative_ack_never_covers_a_message_handed_back():
    sink = BatchSink()
    c, _ = make([1, 2, 3], sink)
    held = Message(env(1))
    c.held.add("t")
    c._on_message("t")(held)  # a held stream: back to the broker at once
    fine = [Message(env(p)) for p in (1, 2)]
    for m in fine:
        c._on_message("s")(m)
    c._work_inbox()
    settle(c)
    assert held.requeued and not held.acked and all(m.acked for m in fine)


def test_a_gap_inside_a_batch_is_filled_from_the_log_in_order():
    sink = BatchSink()
    c, _ = make([1, 2, 3, 4, 5, 6], sink)
    for p in (1, 2, 5, 6):  # 3 and 4 were lost on the way
        c._on_message("s")(Message(env(p)))
    c._work_inbox()
    assert sink.applied == [1, 2, 3, 4, 5, 6]


def test_types_read_from_the_log_by_design_are_applied_before_the_next_event_taken_and_are_no_gap(monkeypatch):
    """registry.FROM_LOG: the bus brings this stream only its other types, so the positions between
    two messages are the votes it reads from the log -- applied first, in order, and not counted as
    a gap; a position of a type the bus should have brought is still one."""
    monkeypatch.setitem(consumer_module.registry.FROM_LOG, ("c", "s"), frozenset({"VoteCast"}))
    kinds = {2: "VoteCast", 3: "VoteCast", 4: "BallotClosed", 6: "VoteCast", 7: "ResolutionFinal", 9: "X"}
    sink = FakeSink()
    c, reads = make([1, 2, 3, 4, 6, 7, 8, 9], sink)
    c.fetch_log = lambda source, start, limit: [{**env(p), "type": kinds.get(p, "T")}
                                                for p in (1, 2, 3, 4, 6, 7, 8, 9) if p >= start][:limit]
    gaps = consumer_module.metrics.GAPS_FILLED.labels("c", "s")
    before = gaps._value.get()
    c.process("s", env(1))
    c.process("s", {**env(4), "type": "BallotClosed"})
    assert sink.applied == [1, 2, 3, 4] and gaps._value.get() == before, "votes between are no gap"
    c.process("s", {**env(7), "type": "ResolutionFinal"})
    assert sink.applied == [1, 2, 3, 4, 6, 7] and gaps._value.get() == before
    c.process("s", env(9))  # 8 is of a type the bus brings: it was lost
    assert sink.applied == [1, 2, 3, 4, 6, 7, 8, 9] and gaps._value.get() == before + 1


def test_an_event_failing_in_a_batch_is_found_retried_and_parked_with_what_came_before_it_kept():
    sink = BatchSink(fail_on={3})
    c, _ = make([1, 2, 3, 4, 5], sink)
    messages = [Message(env(p)) for p in (1, 2, 3, 4, 5)]
    for m in messages:
        c._on_message("s")(m)
    c._work_inbox()
    assert sink.applied == [1, 2], "the batch rolled back, then 1 and 2 applied one at a time"
    assert c.parked == [3] and "s" in c.held
    settle(c)
    assert all(m.acked for m in messages), "the parked copy and the log keep them; the hold stops the stream"
    sink.fail_on.clear()
    c.held.discard("s")
    c.catch_up("s")
    assert sink.applied == [1, 2, 3, 4, 5]


def test_messages_of_a_held_stream_or_that_cannot_be_processed_yet_go_back_to_the_broker(monkeypatch):
    monkeypatch.setattr("services.common.consumer.time.sleep", lambda s: None)
    sink = BatchSink()
    c, _ = make([1, 2], sink)
    first = [Message(env(p)) for p in (1, 2)]
    for m in first:
        c._on_message("s")(m)
    c.held.add("s")
    c._work_inbox()
    settle(c)
    assert all(m.requeued and not m.acked for m in first) and sink.applied == []
    c.held.clear()

    def unreachable(source, start, limit):
        raise ConnectionError("the source's log does not answer")

    c.fetch_log = unreachable
    again = [Message(env(p)) for p in (1, 2)]
    for m in again:
        c._on_message("s")(m)
    c._work_inbox()
    settle(c)
    assert all(m.requeued and not m.acked for m in again) and sink.applied == []


# -- the relay's voucher (services/common/voucher.py) ---------------------------------------------

def vouched(c, e, term, tamper=None):
    """A message as the relay of `c`'s source `s` publishes it in `term`."""
    m = Message(e)
    m.headers = voucher.headers(c.settings, "s", term, m.body)
    if tamper:
        tamper(m)
    return m


def test_a_term_is_believed_once_a_message_of_it_passed_the_check_against_the_log(tmp_path):
    sink = BatchSink()
    c, reads = make(list(range(1, 301)), sink, data_dir=tmp_path)
    term = voucher.new_term()
    for first in (1, 101, 201):  # three batches, each beyond what one read of the log covers
        for p in range(first, first + 100):
            c._on_message("s")(vouched(c, env(p), term))
        c._work_inbox()
    assert sink.applied == list(range(1, 301))
    assert reads == [1], "the log was read for the term's first message only"


def test_a_message_with_a_bad_voucher_or_none_is_checked_against_the_log(tmp_path):
    sink = BatchSink()
    c, reads = make([1, 2, 3, 4], sink, data_dir=tmp_path)
    term = voucher.new_term()
    c._on_message("s")(vouched(c, env(1), term))
    c._work_inbox()
    assert reads == [1]
    forged = env(2) | {"type": "Forged"}
    # The believed term's name copied onto a forgery: its MAC does not fit the body.
    c._on_message("s")(vouched(c, env(2), term, tamper=lambda m: setattr(m, "body", json.dumps(forged).encode())))
    c._work_inbox()
    assert c.set_aside and c.set_aside[0][0] == 2, "checked against the log, and set aside"
    assert sink.applied == [1, 2], "the log's own event 2 is applied in its place"
    c._on_message("s")(Message(env(3)))  # no voucher at all: as before vouchers
    c._work_inbox()
    assert sink.applied == [1, 2, 3] and len(c.set_aside) == 1


def test_a_voucher_binds_the_source_the_term_and_the_key(tmp_path):
    sink = BatchSink()
    c, _ = make([1], sink, data_dir=tmp_path)
    m = Message(env(1))
    term = voucher.new_term()
    assert voucher.term_of(c.settings, "s", voucher.headers(c.settings, "s", term, m.body), m.body) == term
    assert voucher.term_of(c.settings, "other", voucher.headers(c.settings, "s", term, m.body), m.body) is None
    h = voucher.headers(c.settings, "s", term, m.body)
    assert voucher.term_of(c.settings, "s", h | {voucher.TERM: voucher.new_term()}, m.body) is None
    other, _ = make([1], sink, data_dir=tmp_path / "another-deployment")
    assert voucher.term_of(other.settings, "s", h, m.body) is None, "another data folder, another key"
    assert (tmp_path / voucher.KEY_FILE).stat().st_mode & 0o777 == 0o600
    shared = dataclasses.replace(c.settings, bus_key="k" * 32)  # hosts without one data folder
    on_another_host = dataclasses.replace(other.settings, bus_key="k" * 32)
    assert voucher.term_of(on_another_host, "s", voucher.headers(shared, "s", term, m.body), m.body) == term
    with pytest.raises(RuntimeError, match="at least 32"):
        voucher.key(dataclasses.replace(c.settings, bus_key="short"))


def test_messages_of_a_term_whose_first_message_the_log_does_not_hold_are_each_checked(tmp_path):
    """A store recreated under the same data folder: the broker still holds vouched messages of the
    old relay's term at positions the new log holds otherwise. None is believed."""
    sink = BatchSink()
    c, reads = make([1, 2, 3], sink, data_dir=tmp_path)
    old = voucher.new_term()
    stale = [vouched(c, env(p) | {"id": f"old{p}"}, old) for p in (1, 2, 3)]
    for m in stale:
        c._on_message("s")(m)
    c._work_inbox()
    assert [p for p, _ in c.set_aside] == [1, 2, 3], "each stale message set aside"
    assert sink.applied == [1, 2, 3], "the new log's own events applied"
    assert ("s", old) not in c.believed


def test_a_batch_starts_from_what_this_process_applied_and_reads_the_row_only_before_a_gap():
    sink = BatchSink()
    row_reads = []

    class Probe:  # the sink as the consumer sees it, counting its reads of the tracking row
        def position(self, source):
            row_reads.append(source)
            return sink.position(source)

        handle, handle_many = sink.handle, sink.handle_many

    c, log_reads = make(list(range(1, 11)), Probe())
    for p in (1, 2, 3):
        c.process("s", env(p))
    assert len(row_reads) == 1, "the tracking row is read once, at the first batch"
    sink.applied += [4, 5]  # another instance applied 4 and 5 meanwhile (it held the stream)
    c.process("s", env(6))
    assert sink.applied == [1, 2, 3, 4, 5, 6] and len(row_reads) == 2, "read again: no gap, no pull"
    assert log_reads == [1]
    c.process("s", env(4))
    assert sink.applied == [1, 2, 3, 4, 5, 6], "a duplicate of what this process applied"


# -- lingering under a stream (consumer.LINGER_S) -------------------------------------------------

class Stream:
    """A connection delivering messages at given times on a fake clock: drain_events takes the next
    one due within its timeout (moving the clock to it), or moves the clock by the timeout and
    raises socket.timeout, as py-amqp does."""

    def __init__(self, c, arrivals):
        self.c, self.arrivals, self.now = c, sorted(arrivals), 0.0

    def drain_events(self, timeout):
        import socket
        if self.arrivals and self.arrivals[0][0] <= self.now + timeout:
            at, position = self.arrivals.pop(0)
            self.now = max(self.now, at)
            self.c._on_message("s")(Message(env(position)))
            return
        self.now += timeout
        raise socket.timeout()


def test_a_consumer_under_a_steady_stream_lingers_for_a_batch_and_a_lone_event_is_applied_at_once(monkeypatch):
    sink = BatchSink()
    c, _ = make(list(range(1, 10)), sink)
    # one event after a quiet spell, then a stream of one every 30 ms
    stream = Stream(c, [(10.0, 1)] + [(10.03 + 0.03 * k, 2 + k) for k in range(8)])
    stream.now = 9.9
    clock = types.SimpleNamespace(monotonic=lambda: stream.now, perf_counter=time.perf_counter, sleep=time.sleep)
    monkeypatch.setattr(consumer_module, "time", clock)
    c._drain(stream)
    assert sink.applied == [1] and stream.now == pytest.approx(10.0), "after a quiet spell: at once, alone"
    c._drain(stream)
    assert sink.applied == [1, 2, 3, 4, 5], "then the stream: one turn takes what arrives within LINGER_S"
    assert sink.transactions == 2
