"""A view that shows another stage's texts must not hang on a stage that is down; and a consumer
reads a source's log by the source's declared calls, by name."""
from __future__ import annotations

import time

import eventlet
import sqlalchemy as sa

from services.common.runtime import Platform, Runtime
from services.contracts.every_service import READ_TEXTS

TEXTS = READ_TEXTS["proposals"](commitments=["c1"])


def runtime(call) -> Runtime:
    return Runtime("actions", settings=None, engine=sa.create_engine("sqlite://"), call=call)


def test_an_answer_is_unwrapped():
    asked = []

    def call(service, method, *args, **kwargs):
        asked.append((service, method, args, kwargs))
        return {"ok": True, "result": {"c1": "疏通排水沟"}}

    assert runtime(call).send_or_none(TEXTS) == {"c1": "疏通排水沟"}
    assert asked == [("proposals", "read_texts", (), {"commitments": ["c1"]})]


def test_a_refusal_or_an_error_gives_none():
    refused = runtime(lambda *a, **k: {"ok": False, "problem": {"detail": "no", "status": 404}})
    assert refused.send_or_none(TEXTS) is None

    def broken(*a, **k):
        raise ConnectionError("broker gone")

    assert runtime(broken).send_or_none(TEXTS) is None


def test_a_service_that_does_not_answer_costs_the_timeout_not_the_rpc_timeout():
    def down(*a, **k):
        eventlet.sleep(30)  # what waiting for a reply from a stopped service looks like, green

    started = time.monotonic()
    assert runtime(down).send_or_none(TEXTS, timeout=0.2) is None
    assert time.monotonic() - started < 5


def test_a_consumer_reads_a_source_log_and_head_by_the_source_declared_calls():
    asked = []

    def call(service, method, *args, **kwargs):
        asked.append((service, method, args, kwargs))
        return [{"position": 7}] if method == "read_log" else 42

    platform = Platform("actions")
    platform.runtime = runtime(call)
    assert platform._fetch_log("proposals", 7, 1000) == [{"position": 7}]
    assert platform._fetch_log("decisions", 1, 100) == [{"position": 7}]  # the method's default limit: not sent
    assert platform._log_head("deliberation") == 42
    assert asked == [("proposals", "read_log", (), {"start": 7, "limit": 1000}),
                     ("decisions", "read_log", (), {"start": 1}),
                     ("deliberation", "log_head", (), {})]
