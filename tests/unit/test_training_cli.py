"""`consult up --training [--clock-speed N]`: every process it starts is a training deployment's."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from services.cli import up
from services.cli.rpc import CliError
from services.common import clock

REAL = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


def test_consult_up_training_sets_every_process_up_and_a_new_speed_keeps_the_time(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    for name in ("CONSULT_DEPLOYMENT", "CONSULT_TRAINING_CLOCK_SPEED"):  # as they were afterwards: up sets them
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    with pytest.raises(CliError, match="--clock-speed is for a training deployment"):
        up.deployment(False, 1440)
    with pytest.raises(CliError, match="--clock-speed must be a number from 1"):
        up.deployment(True, 0.5)
    assert up.deployment(False, None) is None and "CONSULT_DEPLOYMENT" not in os.environ
    assert up.deployment(True, None) is None, "a new deployment: its first service starts the clock"
    assert os.environ["CONSULT_DEPLOYMENT"] == "training"
    made, _ = clock.start_training_clock(tmp_path, None, REAL)
    assert made.speed == 1440, "a day a minute unless told otherwise"
    said = up.deployment(True, 86400)
    assert "now runs 86400× real time (was 1440×)" in said and float(os.environ["CONSULT_TRAINING_CLOCK_SPEED"]) == 86400
    assert clock.training_clock().speed == 86400 and clock.training_clock().epoch == REAL
