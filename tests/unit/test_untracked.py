"""Events a sink handles without a transaction (consumer.Untracked): an EventSourcedSink's events
without effects, a SqlSink's events of no type it keeps. They are tracked by the next transaction
that records something, or by `track_untracked`, never twice by one process, and handled again
after a crash, changing nothing."""
from __future__ import annotations

import sqlalchemy as sa
import pytest

from services.common import config
from services.common.aggregate import Aggregate
from services.common.consumer import (TRACK_UNTRACKED_EVERY_S, EventSourcedSink, SqlSink, TrackedConsumer,
                                      Untracked)
from services.common.store import ServiceApplication
from services.common.tables import consumer_tracking, create_all


class Noted(Aggregate):
    class Created(Aggregate.Created):
        position: int

    def __init__(self, position: int):
        self.position = position


def env(position: int, kind: str = "Ignored") -> dict:
    return {"schema": "consult.event/1", "source": "s", "position": position, "type": kind, "id": f"e{position}",
            "community": "c", "case": None, "aggregate": {"type": "A", "id": "a", "version": position}, "data": {}}


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    return config.load()


@pytest.fixture
def app(settings):
    made = []

    def make():
        made.append(ServiceApplication(settings, "untracked"))
        return made[-1]

    yield make
    for a in made:
        a.close()


def effects(e: dict) -> list:
    return [Noted(e["position"])] if e["type"] == "Kept" else []


def test_events_without_effects_take_no_save_until_the_next_save_or_track_untracked(app):
    a = app()
    saves = []
    real = a.save_tracked
    a.save_tracked = lambda tracking, *objs: saves.append((tracking.notification_id, len(objs))) or real(tracking, *objs)
    sink = EventSourcedSink(a, effects)
    assert sink.handle_many("s", [env(1), env(2), env(3)]) == 3 and saves == []
    assert sink.position("s") == 3 and a.tracked_position("s") == 0, "counted as tracked here, not yet stored"
    assert not sink.handle("s", env(2)), "this process does not take them twice"
    assert sink.handle("s", env(4, "Kept")) and saves == [(4, 1)], "the save with effects tracks past them"
    assert sink.handle("s", env(5)) and a.tracked_position("s") == 4
    sink.track_untracked()
    assert saves[-1] == (5, 0) and a.tracked_position("s") == 5 and sink.untracked.items() == []
    sink.track_untracked()
    assert len(saves) == 2, "nothing left to track"


def test_after_a_crash_the_untracked_events_are_handled_again_and_another_instance_is_never_moved_back(app):
    a = app()
    first = EventSourcedSink(a, effects)
    first.handle_many("s", [env(1, "Kept"), env(2), env(3)])
    restarted = EventSourcedSink(a, effects)  # the first process died before tracking 2 and 3
    assert restarted.position("s") == 1
    assert restarted.handle_many("s", [env(2), env(3), env(4)]) == 3
    restarted.track_untracked()
    assert a.tracked_position("s") == 4
    first.track_untracked()  # the dead instance's 3, if it came back: refused, not moved down
    assert a.tracked_position("s") == 4


@pytest.fixture
def engine(tmp_path):
    e = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    create_all(e)
    yield e
    e.dispose()


def stored(engine, consumer="kept") -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(consumer_tracking.c.position).where(
            consumer_tracking.c.consumer == consumer)).scalar() or 0


def test_a_sql_sink_takes_no_transaction_for_a_batch_of_types_it_does_not_keep(engine):
    handled, transactions = [], []
    sa.event.listen(engine, "begin", lambda conn: transactions.append(1))
    sink = SqlSink("kept", engine, lambda conn, e: handled.append(e["position"]), types=frozenset({"Kept"}))
    assert sink.handle_many("s", [env(1), env(2)]) == 2
    assert transactions == [] and handled == [] and sink.position("s") == 2 and stored(engine) == 0
    transactions.clear()
    assert sink.handle_many("s", [env(3), env(4, "Kept"), env(5)]) == 3
    assert transactions == [1], "one transaction for the batch"
    assert handled == [4], "the handler sees only what it keeps"
    assert stored(engine) == 5
    sink.handle("s", env(6))
    sink.track_untracked()
    assert stored(engine) == 6 and sink.untracked.items() == []
    other = SqlSink("kept", engine, lambda conn, e: None, types=frozenset({"Kept"}))
    other.handle_many("s", [env(7), env(8)])  # another instance went on
    other.track_untracked()
    sink.untracked.note("s", 7)  # this one's 7, tracked late
    sink.track_untracked()
    assert stored(engine) == 8, "never moved down"


def test_the_consumer_has_the_sink_track_what_it_left_untracked_once_a_second(settings):
    calls = []

    class Sink:
        untracked = Untracked()

        def position(self, source):
            return 0

        def track_untracked(self):
            calls.append(1)
            if len(calls) == 2:
                raise ConnectionError("the database went away")

    c = TrackedConsumer("c", ("s",), Sink(), settings, lambda *a: [], lambda s: 0)
    c.track_untracked(now=100.0)
    c.track_untracked(now=100.0 + TRACK_UNTRACKED_EVERY_S / 2)
    assert calls == [1], "not again within the second"
    c.track_untracked(now=100.0 + TRACK_UNTRACKED_EVERY_S)  # fails: logged, tried again next time
    c.track_untracked(now=100.0 + 2 * TRACK_UNTRACKED_EVERY_S)
    assert len(calls) == 3
