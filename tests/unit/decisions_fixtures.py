"""Shared set-up of the decisions unit tests: the application on SQLite in a temp folder, the
frozen clock, and the DOMAIN.md worked example (building 2 of compound 3) as directory facts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock, config
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all
from services.decisions import tables
from services.decisions.application import DecisionsApp

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
OPENS, CLOSES = T0 + timedelta(days=15), T0 + timedelta(days=22)
COMMUNITY = "c0ffee00-0000-4000-8000-000000000001"
WORKER, LEAD = "worker-1", "lead-1"
RULES = {"ballot_notice_days": 7, "publicity_days": 7}

# unit, area m², owner (None: unsold by the developer)
BUILDING_2 = [
    ("101", "50", "Wang"), ("102", "70", "Li"), ("201", "75", "Zhang"), ("202", "75", "Zhang"),
    ("301", "90", "Liu"), ("302", "90", "Chen"), ("401", "90", "Zhao"), ("402", "90", "Sun"),
    ("501", "120", "Zhou"), ("502", "120", None),
]
OWNERS = ["Wang", "Li", "Zhang", "Liu", "Chen", "Zhao", "Sun", "Zhou"]
# The worked example's votes: Sun and the developer do not vote.
EXAMPLE = {"Wang": "agree", "Li": "agree", "Zhang": "agree", "Liu": "agree", "Zhou": "agree", "Chen": "disagree",
           "Zhao": "abstain"}


def units(building=BUILDING_2) -> list[dict]:
    """The directory's units_in_scope answer for the building."""
    return [{"unit": f"u{unit}", "label": unit, "building": "b2", "area": area, "owners": [owner] if owner else [],
             "representative": None, "developer_unsold": owner is None} for unit, area, owner in building]


def residents(n: int, minors: int = 0) -> list[dict]:
    """The directory's residents_in_scope answer: n adults in n//2 households, plus minors."""
    adults = [{"person": f"r{i:03}", "household": f"h{i // 2:03}", "adult": True} for i in range(n)]
    return adults + [{"person": f"m{i:03}", "household": "h000", "adult": False} for i in range(minors)]


def _running(settings: config.Settings):
    """The application on `settings`' stores, on the test clock at T0, closed afterwards."""
    engine = state_engine("decisions", settings)
    create_all(engine, tables.metadata)
    clock.set(T0)
    application = DecisionsApp(settings, engine)
    yield application
    application.close()
    engine.dispose()
    clock.set(None)


def _plain_environment(monkeypatch) -> None:
    for name in ("CONSULT_DB", "CONSULT_DECISIONS_KEY", "CONSULT_CLOCK_FILE", "CONSULT_FAULTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")


@pytest.fixture
def app(tmp_path, monkeypatch):
    _plain_environment(monkeypatch)
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    yield from _running(config.load())


@pytest.fixture(params=["sqlite", "postgres"])
def any_app(request, tmp_path, monkeypatch):
    """The application on either backend (for what happens in the read model's transaction)."""
    from tests.harness import drop_schema, store_settings

    _plain_environment(monkeypatch)
    settings = store_settings(request.param, tmp_path, monkeypatch, "dv")
    yield from _running(settings)
    if request.param == "postgres":
        for kind in ("state", "events"):
            drop_schema(settings.schema("decisions", kind))


def open_ballot(app: DecisionsApp, preset="owners_ordinary", voting_unit="owner", facts=None, options=None,
                **config) -> str:
    """Prepare, configure (at T0) and open (at OPENS) a ballot; the clock is left at the opening."""
    clock.set(T0)
    facts = units() if facts is None else facts
    ballot = app.prepare_ballot(WORKER, COMMUNITY, "疏通排水管 unblock the drains", "community", options=options)
    app.configure_ballot(WORKER, COMMUNITY, ballot, preset=preset, voting_unit=voting_unit,
                         opens_at=clock.format(OPENS), closes_at=clock.format(CLOSES), community_rules=RULES,
                         facts_now=facts, **config)
    clock.set(OPENS)
    assert app.open_ballot(ballot, facts)
    return ballot


def vote_all(app: DecisionsApp, ballot: str, choices: dict) -> dict:
    return {voter: app.cast_vote(voter, COMMUNITY, ballot, voter, choice) for voter, choice in choices.items()}


def close(app: DecisionsApp, ballot: str) -> dict:
    """Run the deadlines at the closing time; returns the ballot view."""
    clock.set(CLOSES)
    for due, reason in app.due_to_close(clock.now()):
        app.close_ballot(due, reason)
    return app.ballot_view(COMMUNITY, ballot)


def events(app: DecisionsApp, kind: str | None = None, aggregate: str | None = None) -> list[dict]:
    """The service's log as envelopes (what the bus and the audit log carry)."""
    out = read_envelopes(app, "decisions", 1, 100_000)
    return [e for e in out if (kind is None or e["type"] == kind)
            and (aggregate is None or e["aggregate"]["id"] == aggregate)]
