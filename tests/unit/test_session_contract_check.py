"""The integration runs' session-end check (tests/harness.py, tests/conftest.py): every event a
torn-down platform's audit log recorded is checked against its contract, and one that breaks it
fails the session. Here on an audit store written by hand, without starting a platform."""
from __future__ import annotations

import json
import types
import uuid

import sqlalchemy as sa

from services.audit import log
from services.common.store import state_engine
from tests import conftest, harness
from tests.harness import Platform


def _envelope(data: dict) -> dict:
    return {"schema": "consult.event/1", "id": str(uuid.uuid4()), "source": "proposals", "position": 1,
            "type": "ProposalMerged", "event_version": 1, "community": "c1",
            "aggregate": {"type": "Proposal", "id": str(uuid.uuid4()), "version": 3},
            "occurred_at": "2026-11-26T08:00:00.000000Z", "actor": "a", "case": None, "causation": None, "data": data}


def test_a_recorded_event_that_breaks_its_contract_fails_the_session(monkeypatch):
    monkeypatch.setattr(harness, "CONTRACT_VIOLATIONS", [])
    monkeypatch.setattr(harness, "CONTRACT_CHECKS", [])
    p = Platform("sqlite", services=["communities", "audit", "gateway"])
    p.owns_vhost = False  # no broker here: nothing to delete
    try:
        engine = state_engine("audit", p.settings)
        log.metadata.create_all(engine)
        with engine.begin() as conn:
            for idx, env in enumerate([_envelope({"into": "p2"}), _envelope({"into_proposal": "p2"})]):
                conn.execute(sa.insert(log.entries).values(
                    community="c1", idx=idx, event_id=env["id"], source="proposals", position=idx + 1,
                    type=env["type"], case_id=None, occurred_at=env["occurred_at"], body=json.dumps(env)))
        engine.dispose()
        p.teardown()  # what every platform does at its end: nothing runs here, the store is read

        assert len(harness.CONTRACT_VIOLATIONS) == 1
        assert "community c1 entry 1 (proposals ProposalMerged v1)" in harness.CONTRACT_VIOLATIONS[0]
        assert "unexpected field 'into_proposal'" in harness.CONTRACT_VIOLATIONS[0]
        assert harness.CONTRACT_CHECKS[0][1] == 2

        session = types.SimpleNamespace(exitstatus=0, config=types.SimpleNamespace())
        conftest.pytest_sessionfinish(session, 0)
        assert session.exitstatus == 1
        # Under pytest-xdist a worker also hands its checks to the controller, which fails the run.
        worker = types.SimpleNamespace(exitstatus=0, config=types.SimpleNamespace(workeroutput={}))
        conftest.pytest_sessionfinish(worker, 0)
        assert worker.config.workeroutput["contract_violations"] == harness.CONTRACT_VIOLATIONS
    finally:
        p.teardown()


def test_a_clean_log_leaves_the_session_alone(monkeypatch):
    monkeypatch.setattr(harness, "CONTRACT_VIOLATIONS", [])
    session = types.SimpleNamespace(exitstatus=0, config=types.SimpleNamespace())
    conftest.pytest_sessionfinish(session, 0)
    assert session.exitstatus == 0
