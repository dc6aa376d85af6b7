"""A view that shows another stage's texts must not hang on a stage that is down."""
from __future__ import annotations

import time

import eventlet
import sqlalchemy as sa

from services.common.runtime import Runtime


def runtime(call) -> Runtime:
    return Runtime("actions", settings=None, engine=sa.create_engine("sqlite://"), call=call)


def test_an_answer_is_unwrapped():
    rt = runtime(lambda service, method, *args: {"ok": True, "result": {"c1": "疏通排水沟"}})
    assert rt.rpc_or_none("proposals", "read_texts", ["c1"]) == {"c1": "疏通排水沟"}


def test_a_refusal_or_an_error_gives_none():
    refused = runtime(lambda *a: {"ok": False, "problem": {"detail": "no", "status": 404}})
    assert refused.rpc_or_none("proposals", "read_texts", ["c1"]) is None

    def broken(*a):
        raise ConnectionError("broker gone")

    assert runtime(broken).rpc_or_none("proposals", "read_texts", ["c1"]) is None


def test_a_service_that_does_not_answer_costs_the_timeout_not_the_rpc_timeout():
    def down(*a):
        eventlet.sleep(30)  # what waiting for a reply from a stopped service looks like, green

    started = time.monotonic()
    assert runtime(down).rpc_or_none("proposals", "read_texts", ["c1"], timeout=0.2) is None
    assert time.monotonic() - started < 5
