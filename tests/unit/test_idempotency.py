"""A command runs once per request key (services/common/idempotency.py), on a real event store
(SQLite) and state store: the marker goes in the same transaction as the command's events."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from services.common import config, idempotency
from services.common.aggregate import Aggregate, command_context
from services.common.store import ServiceApplication, state_engine
from services.common.tables import create_all

COMMUNITY = "c0ffee00-0000-4000-8000-000000000001"


class Tally(Aggregate):
    def __init__(self, label: str):
        self.label = label


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    for name in ("CONSULT_DB", "CONSULT_CLOCK_FILE", "CONSULT_FAULTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    settings = config.load()
    engine = state_engine("tallies", settings)
    create_all(engine)
    app = ServiceApplication(settings, "tallies")
    yield SimpleNamespace(app=app, engine=engine, service="tallies")
    app.close()
    engine.dispose()


def record(app, label: str) -> dict:
    """A command: records one new aggregate, answers its id."""
    with command_context(community=COMMUNITY, actor="someone"):
        tally = Tally(label)
    app.save(tally)
    return {"ok": True, "result": {"tally": str(tally.id)}}


def test_a_repeated_request_is_answered_its_first_reply_and_records_nothing(runtime):
    key = idempotency.request_key({idempotency.DELIVERY_ID: str(uuid.uuid4())}, "tallies", "record", (), {})
    first = idempotency.once(runtime, key, lambda: record(runtime.app, "a"))
    again = idempotency.once(runtime, key, lambda: record(runtime.app, "a"))
    assert again == first and runtime.app.head() == 1
    other = idempotency.request_key({idempotency.DELIVERY_ID: str(uuid.uuid4())}, "tallies", "record", (), {})
    assert idempotency.once(runtime, other, lambda: record(runtime.app, "a")) != first  # another request
    assert runtime.app.head() == 2


def test_an_execution_that_reaches_its_save_after_the_first_committed_records_nothing(runtime, monkeypatch):
    """Two executions of one request at once (a redelivery while the first is still running): the
    second's save fails on the marker in the same transaction, nothing more is recorded, and it
    answers what the first answered once that reply is stored."""
    key = idempotency.request_key({idempotency.IDEMPOTENCY_KEY: "k1"}, "tallies", "record", ("a",), {})
    stored = idempotency._store_reply
    monkeypatch.setattr(idempotency, "_store_reply", lambda *a: None)  # the first has not stored its reply yet
    first = idempotency.once(runtime, key, lambda: record(runtime.app, "a"))
    monkeypatch.setattr(idempotency, "REPLY_WAIT_S", 0.3)
    late = idempotency.once(runtime, key, lambda: record(runtime.app, "a"))
    assert late["ok"] is False and late["problem"]["code"] == "AlreadyExecuted" and late["problem"]["status"] == 409
    assert runtime.app.head() == 1
    stored(runtime.engine, key, first)
    assert idempotency.once(runtime, key, lambda: record(runtime.app, "a")) == first
    assert runtime.app.head() == 1


def test_a_request_may_be_a_repeat_only_with_a_client_key_or_when_redelivered():
    first = {idempotency.DELIVERY_ID: "d", idempotency.REDELIVERED: False}
    assert not idempotency.may_be_repeated(first)
    assert idempotency.may_be_repeated({**first, idempotency.REDELIVERED: True})
    assert idempotency.may_be_repeated({**first, idempotency.IDEMPOTENCY_KEY: "k"})  # a client's retry
    assert idempotency.may_be_repeated({idempotency.DELIVERY_ID: "d"})  # delivery not known: look
    assert idempotency.may_be_repeated(None)


def test_a_first_delivery_looks_for_no_reply_and_a_copy_of_it_records_nothing(runtime, monkeypatch):
    """A first delivery costs no lookup of a stored reply. A request published twice (a publisher's
    retry after a lost confirm) comes as a first delivery twice: the copy's save fails on the marker,
    nothing more is recorded, and it answers the first reply; its redelivery finds that reply."""
    key = idempotency.request_key({idempotency.DELIVERY_ID: str(uuid.uuid4())}, "tallies", "record", (), {})
    looked = []
    stored = idempotency._stored_reply
    monkeypatch.setattr(idempotency, "_stored_reply", lambda *a: looked.append(1) or stored(*a))
    first = idempotency.once(runtime, key, lambda: record(runtime.app, "a"), repeated=False)
    assert looked == [] and first["ok"] and runtime.app.head() == 1
    copy = idempotency.once(runtime, key, lambda: record(runtime.app, "a"), repeated=False)
    assert copy == first and runtime.app.head() == 1  # the marker: recorded once, the first reply
    redelivered = idempotency.once(runtime, key, lambda: pytest.fail("executed again"), repeated=True)
    assert redelivered == first and runtime.app.head() == 1


def test_a_client_key_names_one_command_with_its_arguments():
    data = {idempotency.IDEMPOTENCY_KEY: "k"}
    one = idempotency.request_key(data, "decisions", "cast_vote", ("p", "c", "b", "agree"), {})
    assert one == idempotency.request_key(data, "decisions", "cast_vote", ("p", "c", "b", "agree"), {})
    assert one != idempotency.request_key(data, "decisions", "cast_vote", ("p", "c", "b", "disagree"), {})
    assert one != idempotency.request_key(data, "proposals", "cast_vote", ("p", "c", "b", "agree"), {})
    assert idempotency.request_key({}, "decisions", "cast_vote", (), {}) is None


def test_a_refusal_that_recorded_nothing_leaves_no_reply(runtime):
    key = idempotency.request_key({idempotency.DELIVERY_ID: "d"}, "tallies", "record", (), {})
    refused = {"ok": False, "problem": {"status": 409, "code": "Conflict"}}
    assert idempotency.once(runtime, key, lambda: refused) == refused
    assert idempotency.once(runtime, key, lambda: record(runtime.app, "b"))["ok"] is True  # executed this time


def test_a_query_runs_again_looks_for_no_stored_reply_and_may_not_record(runtime, monkeypatch):
    """`@query` (services/common/runtime.py) answers as `@command` does, but a repeated request is
    simply read again: no stored reply is looked for (a database round trip per call, which the
    gateway's sign-in check paid for each resident). A query that records is a mistake, raised
    before anything is written."""
    from services.common.runtime import WORKER_ATTRIBUTE, command, query

    reads = []

    class Tallies:
        name = "tallies"
        platform = runtime

        @command
        def add(self, label):
            return record(runtime.app, label)["result"]

        @query
        def count(self):
            reads.append(1)
            return runtime.app.head()

        @query
        def count_and_add(self):
            return record(runtime.app, "by mistake")

    service = Tallies()
    setattr(service, WORKER_ATTRIBUTE, SimpleNamespace(data={idempotency.DELIVERY_ID: str(uuid.uuid4())}))
    added = service.add("a")
    assert service.add("a") == added and runtime.app.head() == 1  # the same delivery: the command ran once

    def looked_up(*args):
        raise AssertionError("a query looked for a stored reply")

    monkeypatch.setattr(idempotency, "_stored_reply", looked_up)
    assert service.count() == service.count() == {"ok": True, "result": 1} and len(reads) == 2
    with pytest.raises(RuntimeError, match="make the RPC method a command"):
        service.count_and_add()
    assert runtime.app.head() == 1
    assert idempotency.current() is None  # the query's context is left behind it
