"""A store belongs to one kind of deployment for good: marked at its first start, a production
store refuses to start as training and a training store as production (tests/integration/
test_training.py shows the same with real service processes on both backends)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common import clock, config, deployment
from services.common.store import state_engine
from services.common.tables import create_all


def settings_for(monkeypatch, data_dir, mode: str, speed: str | None = None) -> config.Settings:
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CONSULT_DEPLOYMENT", mode)
    if speed is None:
        monkeypatch.delenv("CONSULT_TRAINING_CLOCK_SPEED", raising=False)
    else:
        monkeypatch.setenv("CONSULT_TRAINING_CLOCK_SPEED", speed)
    return config.load()


def start(settings: config.Settings, service: str = "proposals") -> dict:
    """What Platform.setup does with a service's state store."""
    engine = state_engine(service, settings)
    try:
        before = deployment.prepare(engine)
        create_all(engine)
        return deployment.mark(engine, settings, service, before)
    finally:
        engine.dispose()


def test_a_new_store_is_marked_with_its_deployment_and_keeps_it(tmp_path, monkeypatch):
    marked = start(settings_for(monkeypatch, tmp_path, "production"))
    assert (marked["mode"], marked["training_epoch"]) == ("production", None)
    assert start(settings_for(monkeypatch, tmp_path, "production")) == marked, "the same store starts again"
    assert not (tmp_path / clock.TRAINING_CLOCK_FILE).exists(), "production never starts a training clock"


def test_a_production_store_refuses_to_start_as_training(tmp_path, monkeypatch):
    start(settings_for(monkeypatch, tmp_path, "production"), "decisions")
    with pytest.raises(deployment.DeploymentRefused) as refused:
        start(settings_for(monkeypatch, tmp_path, "training"), "decisions")
    assert "the decisions store belongs to a production deployment" in str(refused.value)
    assert "refuses to start as training" in str(refused.value)
    assert "its own data folder" in str(refused.value)
    assert start(settings_for(monkeypatch, tmp_path, "production"), "decisions")["mode"] == "production"


def test_a_training_store_refuses_to_start_as_production(tmp_path, monkeypatch):
    marked = start(settings_for(monkeypatch, tmp_path, "training"))
    anchor = clock.start_training_clock(tmp_path)[0]
    assert (marked["mode"], marked["training_epoch"]) == ("training", clock.format(anchor.epoch))
    with pytest.raises(deployment.DeploymentRefused) as refused:
        start(settings_for(monkeypatch, tmp_path, "production"))
    assert "the proposals store belongs to a training deployment" in str(refused.value)
    assert "so a training record never passes for a real one" in str(refused.value)
    assert start(settings_for(monkeypatch, tmp_path, "training")) == marked


def test_a_training_store_refuses_another_training_deployments_clock(tmp_path, monkeypatch):
    settings = settings_for(monkeypatch, tmp_path, "training")
    start(settings)
    (tmp_path / clock.TRAINING_CLOCK_FILE).unlink()  # the data folder lost, or another one given
    clock.start_training_clock(tmp_path, 1440, clock.now() + timedelta(hours=1))
    with pytest.raises(deployment.DeploymentRefused, match="belongs to the training deployment whose clock started"):
        start(settings)


def test_a_store_made_before_stores_were_marked_is_production(tmp_path, monkeypatch):
    settings = settings_for(monkeypatch, tmp_path, "production")
    engine = state_engine("actions", settings)
    create_all(engine)  # the common tables, as every service made them before markers existed
    engine.dispose()
    with pytest.raises(deployment.DeploymentRefused, match="belongs to a production deployment"):
        start(settings_for(monkeypatch, tmp_path, "training"), "actions")
    assert start(settings_for(monkeypatch, tmp_path, "production"), "actions")["mode"] == "production"
    with pytest.raises(deployment.DeploymentRefused):
        start(settings_for(monkeypatch, tmp_path, "training"), "actions")


def test_a_production_deployment_refuses_a_training_clock_speed(tmp_path, monkeypatch):
    with pytest.raises(deployment.DeploymentRefused, match="CONSULT_TRAINING_CLOCK_SPEED is set, but this is a "
                                                           "production deployment"):
        start(settings_for(monkeypatch, tmp_path, "production", "1440"))
    engine = state_engine("proposals", config.load())
    assert deployment.recorded(engine) is None, "refused before marking anything"
    engine.dispose()
