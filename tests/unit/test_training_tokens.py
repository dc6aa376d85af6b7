"""Demo and training tokens last as long as the deployment: no expiry in the record or the API, so
a fast training clock (a 30-day token would end within the hour) never signs anyone out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock, config
from services.common.errors import InvalidInput, Unauthorized
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all
from services.communities import tables
from services.communities.application import DirectoryApp

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def directory(tmp_path, monkeypatch, mode: str):
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path / mode))
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.setenv("CONSULT_DEPLOYMENT", mode)
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    settings = config.load()
    engine = state_engine("communities", settings)
    create_all(engine, tables.metadata)
    return DirectoryApp(settings, engine), engine


@pytest.fixture
def apps(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    clock.set(T0)
    made = []

    def make(mode):
        app, engine = directory(tmp_path, monkeypatch, mode)
        made.append((app, engine))
        return app

    yield make
    for app, engine in made:
        app.close()
        engine.dispose()
    clock.set(None)


def person(app: DirectoryApp) -> tuple[str, str]:
    c = app.create_community("tests", "S")
    return c, app.register_person("tests", c, "居民", True, None, None)


def test_the_demos_tokens_last_as_long_as_the_deployment(apps):
    app = apps("production")
    c, p = person(app)
    demo = app.issue_token(c, p, None, "demo resident", actor="demo")
    month = app.issue_token(c, p, 30, "a month", actor="demo")
    assert demo["expires_at"] is None and month["expires_at"] == clock.format(T0 + timedelta(days=30))
    issued = [e["data"] for e in read_envelopes(app, "communities", 1, 100) if e["type"] == "TokenIssued"]
    assert [d["expires_at"] for d in issued] == [None, month["expires_at"]], "the record says so too"
    clock.set(T0 + timedelta(days=3650))
    assert app.authenticate(demo["token"])["expires_at"] is None
    with pytest.raises(Unauthorized):
        app.authenticate(month["token"])
    listed = app.list_tokens("tests", c, p)
    assert [t["expires_at"] for t in listed] == [None, month["expires_at"]]
    admin = app.bootstrap_admin("demo platform admin", "demo", None)
    assert admin["expires_at"] is None and app.authenticate(admin["token"])["platform_admin"]


def test_only_the_operators_tools_ask_for_a_token_without_expiry(apps):
    app = apps("production")
    c, p = person(app)
    with pytest.raises(InvalidInput, match="days must be between 1 and 366"):
        app.issue_token(c, p, None, "mine for ever", actor=p)  # the person, through the API


def test_every_token_of_a_training_deployment_lasts_as_long_as_it(apps):
    app = apps("training")
    c, p = person(app)
    asked = app.issue_token(c, p, 30, "a month, asked", actor="tests")
    own = app.issue_token(c, p, 1, "a day, my own", actor=p, presented=asked["id"])
    assert asked["expires_at"] is None and own["expires_at"] is None
    clock.set(T0 + timedelta(days=400))  # ten hours of a training afternoon at a day a minute, and more
    assert app.authenticate(asked["token"])["person"] == p and app.authenticate(own["token"])["person"] == p
    with pytest.raises(InvalidInput):
        app.issue_token(c, p, 0, "bad input stays bad input", actor=p, presented=asked["id"])
