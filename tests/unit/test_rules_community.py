"""Rules in force at a moment (rules.community) and the directory's answer built on it: a stage
opened by an event opens under the rules of that event's time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rules.community import in_force_at
from rules.evaluation import judge_evaluation
from services.common import clock, config
from services.common.store import state_engine
from services.common.tables import create_all
from services.communities import tables
from services.communities.application import DirectoryApp

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


def test_the_rules_of_the_last_change_at_or_before_the_moment():
    history = [("2026-01-01T00:00:00.000000Z", {"a": 1}), ("2026-02-01T00:00:00.000000Z", {"a": 2})]
    assert in_force_at(history, "2025-12-31T23:59:59.999999Z") is None
    assert in_force_at(history, "2026-01-15T00:00:00.000000Z") == {"a": 1}
    assert in_force_at(history, "2026-02-01T00:00:00.000000Z") == {"a": 2}


def test_the_directory_answers_the_rules_as_they_stood(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    settings = config.Settings(amqp_uri="", db="sqlite", data_dir=tmp_path, prefix="t", test_mode=True,
                               clock_file=None, relay_interval=1, catchup_interval=1, retry_delays=())
    engine = state_engine("communities", settings)
    create_all(engine, tables.metadata)
    app = DirectoryApp(settings, engine)
    try:
        clock.set(T0)
        cid = app.create_community("tests", "S社区")
        clock.set(T0 + timedelta(days=1))
        app.change_rules("tests", cid, {"meeting_notice_days": 0})
        before = clock.format(T0 + timedelta(hours=12))
        assert app.community_view(cid, before)["rules"]["meeting_notice_days"] == 3
        assert app.community_view(cid)["rules"]["meeting_notice_days"] == 0
        assert app.community_view(cid, clock.format(clock.now()))["rules"]["meeting_notice_days"] == 0
    finally:
        clock.set(None)
        app.close()
        engine.dispose()


def test_reopening_is_judged_on_respondents_once_enough_answered():
    def judge(unsatisfied, respondents, extended=False, denominator=12):
        return judge_evaluation(unsatisfied=unsatisfied, respondents=respondents, denominator=denominator,
                                threshold="1/3", min_response_share="1/3", extended=extended).outcome

    assert judge(2, 4) == "reopened", "2 of 4 answers unsatisfied: 1/2 > 1/3, and 4/12 answered"
    assert judge(1, 3) == "extended", "3/12 answered is below 1/3: extended once"
    assert judge(3, 3, extended=True) == "accepted", "still too few after the extension: not reopened"
    assert judge(4, 12) == "accepted", "exactly 1/3 unsatisfied does not pass"
    assert judge(0, 0, denominator=0) == "accepted"
