"""The PostgreSQL recorder inserts a large save without psycopg's pipeline mode
(services/common/pg_recorder.py, PIPELINED_MOST): the same transaction, lock, tracking record and
notification ids as a small save, and no save left half-sent (a 5,000-row directory import once
stalled for good inside the pipeline, the events table locked)."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Tracking

from services.common import config, pg_recorder
from services.common.store import event_store_env
from tests.harness import PG_URL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Note(Aggregate):
    def __init__(self, text: str):
        self.text = text


@pytest.fixture
def recorder():
    """A process recorder (events and tracking) on PostgreSQL, in a schema of its own."""
    from eventsourcing.application import Application

    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = config.load({"CONSULT_DB": PG_URL, "CONSULT_PREFIX": prefix, "CONSULT_DATA_DIR": "/tmp"})
    env = event_store_env("pgrec", settings)
    # The services' applications are process applications (PROCESS_RECORDER_TOPIC); a plain one
    # is given the same recorder here.
    env["APPLICATION_RECORDER_TOPIC"] = env["PROCESS_RECORDER_TOPIC"]
    app = Application(env=env)
    assert isinstance(app.recorder, pg_recorder.BoundedRetryRecorder)
    try:
        yield app
    finally:
        app.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema("pgrec", "events")}" CASCADE')


def _spy(monkeypatch, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(pg_recorder, name)

    def spy(rec, stored_events, **kwargs):
        calls.append(len(stored_events))
        return real(rec, stored_events, **kwargs)

    monkeypatch.setattr(pg_recorder, name, spy)
    return calls


def test_a_large_save_goes_in_one_plain_transaction_and_a_small_one_through_the_pipeline(recorder, monkeypatch):
    plain, piped = _spy(monkeypatch, "_insert_without_pipeline"), _spy(monkeypatch, "_insert_once")
    big = [Note("住户" * 300) for _ in range(5000)]  # about 9 MB of state in one INSERT
    recordings = recorder.save(*big)
    ids = [r.notification.id for r in recordings]
    assert plain == [5000] and piped == []
    assert len(ids) == 5000 and ids == sorted(ids) and ids[-1] - ids[0] == 4999  # contiguous, as one save's are
    assert recorder.recorder.max_notification_id() == ids[-1]
    assert recorder.repository.get(big[1234].id).text == "住户" * 300
    recorder.save(Note("小"))
    assert piped == [1] and plain == [5000]


def test_a_large_save_keeps_its_tracking_record_and_a_clash_records_nothing(recorder, monkeypatch):
    plain = _spy(monkeypatch, "_insert_without_pipeline")
    stored = [recorder.mapper.to_stored_event(e) for n in (Note(str(i)) for i in range(300)) for e in n.collect_events()]
    ids = recorder.recorder.insert_events(stored, tracking=Tracking("upstream", 42))
    assert plain == [300] and len(ids) == 300
    assert recorder.recorder.max_tracking_id("upstream") == 42
    head = recorder.recorder.max_notification_id()
    again = stored[:150] + [recorder.mapper.to_stored_event(e) for n in (Note(str(i)) for i in range(200))
                            for e in n.collect_events()]
    with pytest.raises(IntegrityError):  # the first 150 exist already: the whole save is refused
        recorder.recorder.insert_events(again, tracking=Tracking("upstream", 43))
    assert recorder.recorder.max_notification_id() == head
    assert recorder.recorder.max_tracking_id("upstream") == 42


def test_a_save_notifies_nobody(recorder):
    """No NOTIFY goes with a save, small or large: a listener on eventsourcing's channel hears
    nothing (a notifying transaction holds a server-wide lock through its commit's flush)."""
    channel = recorder.recorder.channel_name
    with psycopg.connect(PG_URL, autocommit=True) as listener:
        listener.execute(f'LISTEN "{channel}"')
        recorder.save(Note("small"))
        recorder.save(*[Note(f"large {n}") for n in range(pg_recorder.PIPELINED_MOST + 1)])
        with psycopg.connect(PG_URL, autocommit=True) as other:  # the control: a NOTIFY is heard
            other.execute(f'NOTIFY "{channel}", \'control\'')
        heard = [n.payload for n in listener.notifies(timeout=1.0)]
    assert heard == ["control"]
    assert recorder.recorder.max_notification_id() == pg_recorder.PIPELINED_MOST + 2
