from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock


def test_the_clock_is_frozen_and_advanced_only_in_test_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSULT_TEST_MODE", "0")
    with pytest.raises(RuntimeError):
        clock.set(datetime(2026, 1, 1, tzinfo=timezone.utc))
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.setenv("CONSULT_CLOCK_FILE", str(tmp_path / "clock"))
    t0 = datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)
    try:
        clock.set(t0)
        assert clock.now() == t0
        assert clock.advance(timedelta(days=15)) == t0 + timedelta(days=15)
        assert (tmp_path / "clock").read_text() == "2026-07-16T08:00:00.000000Z", "other processes read the file"
    finally:
        clock.set(None)
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_format_and_parse_round_trip():
    t = datetime(2026, 11, 26, 8, 30, 0, 123456, tzinfo=timezone.utc)
    assert clock.parse(clock.format(t)) == t
    with pytest.raises(ValueError):
        clock.parse("2026-11-26T08:30:00")
