"""The training clock: only a training deployment runs it; every process of the deployment reads
the same anchor from the data folder; it runs `speed` times real time and never goes back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.common import clock, config

ROOT = Path(__file__).resolve().parents[2]
REAL = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def training(tmp_path, monkeypatch):
    """This process as a process of a training deployment whose data folder is tmp_path."""
    monkeypatch.setenv("CONSULT_DEPLOYMENT", "training")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.delenv("CONSULT_TRAINING_CLOCK_SPEED", raising=False)
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    return tmp_path


def test_training_time_runs_speed_times_real_time_from_its_anchor():
    c = clock.TrainingClock(epoch=REAL, since=REAL, at=REAL, speed=1440)
    assert c.time_at(REAL) == REAL
    assert c.time_at(REAL + timedelta(minutes=1)) == REAL + timedelta(days=1), "a day a minute"
    assert c.time_at(REAL + timedelta(hours=4)) == REAL + timedelta(days=240)
    assert clock.TrainingClock.from_json(c.to_json()) == c


def test_a_production_process_never_reads_a_training_clock(tmp_path, monkeypatch):
    clock.start_training_clock(tmp_path, 86400, REAL - timedelta(days=1))  # a day ago: a year of training
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    for production in (None, "production"):
        if production is None:
            monkeypatch.delenv("CONSULT_DEPLOYMENT", raising=False)
        else:
            monkeypatch.setenv("CONSULT_DEPLOYMENT", production)
        assert clock.training_clock() is None
        assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_the_first_process_of_a_training_deployment_starts_the_clock_at_real_time(training, monkeypatch):
    monkeypatch.setenv("CONSULT_TRAINING_CLOCK_SPEED", "86400")
    before = datetime.now(timezone.utc)
    first = clock.now()
    anchor = json.loads((training / clock.TRAINING_CLOCK_FILE).read_text())
    assert anchor["speed"] == 86400
    assert clock.parse(anchor["epoch"]) == clock.parse(anchor["since"]) == clock.parse(anchor["at"])
    assert before <= clock.parse(anchor["epoch"]) <= datetime.now(timezone.utc)
    assert first - clock.parse(anchor["epoch"]) < timedelta(days=1), "it began at real time, a moment ago"


def test_the_clock_reads_the_anchor_so_a_day_passes_in_a_real_second(training):
    ten_seconds_ago = datetime.now(timezone.utc) - timedelta(seconds=10)
    clock.start_training_clock(training, 86400, ten_seconds_ago)
    ahead = clock.now() - datetime.now(timezone.utc)
    assert timedelta(days=9, hours=23) < ahead < timedelta(days=10, hours=3)
    t1 = clock.now()
    t2 = clock.now()
    assert t2 >= t1, "it never goes back"


def test_every_process_of_the_deployment_reads_the_same_clock(training):
    clock.start_training_clock(training, 86400, datetime.now(timezone.utc) - timedelta(seconds=30))
    code = ("from datetime import datetime, timezone; from services.common import clock; "
            "print(clock.format(datetime.now(timezone.utc))); print(clock.format(clock.now())); "
            "print(clock.training_clock().to_json())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()
    theirs = clock.TrainingClock.from_json(out[2])
    assert theirs == clock.training_clock(), "one anchor for every process"
    real, now = clock.parse(out[0]), clock.parse(out[1])
    # Their now is the anchor's time at their real time (read a moment after): the same formula here.
    assert timedelta(0) <= now - theirs.time_at(real) < timedelta(seconds=2) * theirs.speed


def test_a_new_speed_starts_from_the_time_reached_and_keeps_the_epoch(training):
    made, said = clock.start_training_clock(training, 1440, REAL)
    assert said.startswith("the training clock starts at")
    later = REAL + timedelta(minutes=10)
    reached = made.time_at(later)
    assert reached == REAL + timedelta(days=10)
    changed, said = clock.start_training_clock(training, 86400, later)
    assert "now runs 86400× real time (was 1440×)" in said
    assert changed.epoch == REAL and changed.time_at(later) == reached, "never back, never a jump"
    assert changed.time_at(later + timedelta(seconds=1)) == reached + timedelta(days=1)
    # A service process only reads the clock the operator set, whatever speed its environment says.
    kept, said = clock.start_training_clock(training, 1440, later + timedelta(seconds=5), keep_speed=True)
    assert kept == changed and said is None
    same, said = clock.start_training_clock(training, None, later + timedelta(seconds=6))
    assert same == changed and said is None


def test_processes_starting_together_make_one_clock(training):
    first, _ = clock.start_training_clock(training, 1440, REAL)
    second, said = clock.start_training_clock(training, 1440, REAL + timedelta(seconds=3))
    assert second == first and said is None
    assert [p.name for p in training.iterdir()] == [clock.TRAINING_CLOCK_FILE], "no temporary file left"


def test_the_training_clock_is_not_a_test_clock(training, monkeypatch):
    monkeypatch.setenv("CONSULT_TEST_MODE", "0")
    with pytest.raises(RuntimeError):
        clock.set(REAL)


def test_speeds_and_modes_are_checked_when_read(monkeypatch):
    monkeypatch.setenv("CONSULT_DEPLOYMENT", "staging")
    with pytest.raises(ValueError, match="CONSULT_DEPLOYMENT must be 'production' or 'training'"):
        config.load()
    monkeypatch.setenv("CONSULT_DEPLOYMENT", "training")
    for bad in ("0.5", "fast", "-1"):
        monkeypatch.setenv("CONSULT_TRAINING_CLOCK_SPEED", bad)
        with pytest.raises(ValueError, match="CONSULT_TRAINING_CLOCK_SPEED must be a number from 1"):
            config.load()
    monkeypatch.setenv("CONSULT_TRAINING_CLOCK_SPEED", "1440")
    settings = config.load()
    assert settings.training and settings.training_clock_speed == 1440
    monkeypatch.delenv("CONSULT_DEPLOYMENT")
    monkeypatch.delenv("CONSULT_TRAINING_CLOCK_SPEED")
    assert config.load().deployment == "production" and not config.load().training
