"""The tracked consumer's rules on fakes: duplicates, gaps, holes, retries, parking."""
from __future__ import annotations

import pytest

from services.common import config
from services.common.consumer import Held, TrackedConsumer


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


def make(log_positions, sink):
    settings = config.Settings(amqp_uri="", db="sqlite", data_dir=None, prefix="t", test_mode=True,
                               clock_file=None, relay_interval=1, catchup_interval=1, retry_delays=(0.0, 0.0))
    reads = []

    def fetch(source, start, limit):
        reads.append(start)
        return [env(p) for p in log_positions if p >= start][:limit]

    consumer = TrackedConsumer("c", ("s",), sink, settings, fetch, lambda s: max(log_positions, default=0))
    consumer.parked = []
    consumer.park = lambda source, e, err: (consumer.parked.append(e["position"]), consumer.held.add(source))
    return consumer, reads


def test_in_order_messages_are_applied_without_reading_the_log():
    sink = FakeSink()
    c, reads = make([1, 2, 3], sink)
    for p in (1, 2, 3):
        c.process("s", env(p))
    assert sink.applied == [1, 2, 3] and reads == []


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
