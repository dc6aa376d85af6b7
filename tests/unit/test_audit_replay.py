"""Replay from the log alone: a case through every stage written as the stages' envelopes (see
docs/events/*.md), rebuilt as it stood at chosen moments; ballots recounted with the shared rules
(open and secret, a changed vote, a late vote, a recorded result that does not match)."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import rules
from rules.record import tally_record, vote_record

from services.audit.replay import ballot_summary, moment, replay
from services.common import clock

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
C = "community-1"
CASE = "proposal-1"
VOTERS = ("wang", "li", "zhang", "liu")


class Log:
    """Envelopes in log order, with per-source positions and per-aggregate versions."""

    def __init__(self):
        self.entries: list[dict] = []
        self.positions: dict[str, int] = {}
        self.versions: dict[str, int] = {}

    def add(self, source, type_, aggregate, data, *, at, case=CASE, aggregate_type="X", actor="system") -> dict:
        self.positions[source] = self.positions.get(source, 0) + 1
        self.versions[aggregate] = self.versions.get(aggregate, 0) + 1
        env = {"schema": "consult.event/1", "id": str(uuid.uuid4()), "source": source,
               "position": self.positions[source], "type": type_, "event_version": 1, "community": C,
               "aggregate": {"type": aggregate_type, "id": aggregate, "version": self.versions[aggregate]},
               "occurred_at": clock.format(at), "actor": actor, "case": case, "causation": None, "data": data}
        self.entries.append(env)
        return env


def roll():
    return [rules.RollEntry(v, Decimal(1), 1) for v in VOTERS]


def opened(secret: bool) -> dict:
    entries = roll()
    return {"roll": [e.to_dict() for e in entries], "roll_hash": rules.roll_hash(entries),
            "rule": rules.residents_meeting().to_dict(), "options": [], "motion": None, "voting_unit": "resident",
            "opens_at": clock.format(T0), "closes_at": clock.format(T0), "secret": secret, "changeable": secret}


def ballot(log: Log, bid: str, votes: list[tuple[str, str]], *, secret: bool, at: datetime, case=CASE,
           late: tuple[str, str] | None = None, tamper=None) -> None:
    log.add("decisions", "BallotPrepared", bid, {
        "community": C, "case": case, "title_commitment": "t" * 64, "description_commitment": None, "options": [],
        "scope": "building", "scope_id": "b2", "category": "drainage", "consultation": None, "proposal": None,
        "convener": None, "suggested_rule": None, "rerun_of": None}, at=at, case=case)
    log.add("decisions", "BallotConfigured", bid, {"rule": rules.residents_meeting().to_dict(), "secret": secret},
            at=at, case=case)
    data = opened(secret)
    log.add("decisions", "BallotOpened", bid, data, at=at + timedelta(days=1), case=case)
    recorded = []
    for n, (voter, choice) in enumerate(votes):
        key = f"sealed-{voter}" if secret else f"vote-{voter}"
        kind = "VoteChanged" if log.versions.get(key) else "VoteCast"
        env = log.add("decisions", kind, key, {
            "ballot": bid, "voter": None if secret else voter, "choice": choice, "weight": "1", "headcount": 1,
            "receipt": "r", "nonce": "n", "channel": "online"}, at=at + timedelta(days=1, hours=n + 1), case=case,
            aggregate_type="Vote", actor="sealed" if secret else voter)
        recorded.append(vote_record(env))
    closes = at + timedelta(days=3)
    log.add("decisions", "BallotClosed", bid, {"reason": "closing_time", "closed_at": clock.format(closes)},
            at=closes, case=case)
    if late:
        log.add("decisions", "VoteChanged" if secret else "VoteCast", f"late-{late[0]}", {
            "ballot": bid, "voter": None if secret else late[0], "choice": late[1], "weight": "1", "headcount": 1},
            at=closes, case=case, aggregate_type="Vote")
    result = tally_record(data, recorded).to_dict()
    if tamper:
        tamper(result)
    log.add("decisions", "ResolutionAdopted" if result["outcome"] == "adopted" else "ResolutionRejected", bid,
            {"ballot": bid, "result": result, "publicity_until": clock.format(closes + timedelta(days=1))},
            at=closes, case=case)


def drainage() -> Log:
    log = Log()
    p = CASE
    log.add("proposals", "ProposalDrafted", p, {
        "community": C, "author": "wang", "scope": "building", "scope_id": "b2", "category": "drainage",
        "title_commitment": "a" * 64, "body_commitment": "b" * 64}, at=T0)
    log.add("proposals", "ProposalSubmitted", p, {}, at=T0)
    log.add("proposals", "ProposalScreened", p, {"admissible": True, "reason_commitment": None,
                                                 "category": "drainage"}, at=T0)
    log.add("proposals", "ProposalCollectionOpened", p, {
        "support_per": "resident", "unit": "households", "threshold_rule": {"unit": "households", "count": 2},
        "denominator": 4, "threshold": 2, "deadline": clock.format(T0 + timedelta(days=30))}, at=T0)
    support = {"proposal": p, "unit": "resident"}
    log.add("proposals", "SupportGiven", "s-li", dict(support, person="li", household="h1", carried_from=None),
            at=T0 + timedelta(minutes=1))
    log.add("proposals", "SupportGiven", "s-li2", dict(support, person="li2", household="h1", carried_from=None),
            at=T0 + timedelta(minutes=2))  # same household: two residents, one household
    log.add("proposals", "SupportWithdrawn", "s-li2", dict(support, person="li2", household="h1"),
            at=T0 + timedelta(minutes=3))
    log.add("proposals", "SupportGiven", "s-zhang", dict(support, person="zhang", household="h2", carried_from=None),
            at=T0 + timedelta(minutes=4))
    log.add("proposals", "ProposalQualified", p, {"proposal": p, "supports": 2, "threshold": 2}, at=T0 + timedelta(minutes=4))

    k = "consultation-1"
    at = T0 + timedelta(hours=1)
    log.add("deliberation", "ConsultationOpened", k, {
        "community": C, "case": p, "proposal": p, "scope": "building", "scope_id": "b2", "category": "drainage",
        "title_commitment": "a" * 64, "body_commitment": "b" * 64, "convened_by": "proposal", "convener": "lead",
        "body": [{"person": "lead", "role": "convener", "scope": None, "source": "directory", "status": "active"}],
        "rules": {}}, at=at)
    log.add("deliberation", "BodyMemberInvited", k, {"person": "pm", "role": "property_company"}, at=at)
    log.add("deliberation", "InvitationAccepted", k, {"person": "pm", "role": "property_company"}, at=at)
    log.add("deliberation", "OptionProposed", k, {"option": "o1", "proposer": "lead", "title_commitment": "c" * 64,
                                                  "description_commitment": "d" * 64}, at=at)
    log.add("deliberation", "AmendmentProposed", k, {"amendment": "a1", "option": "o1", "proposer": "pm",
                                                     "title_commitment": None, "description_commitment": "e" * 64},
            at=at)
    log.add("deliberation", "AmendmentAccepted", k, {"amendment": "a1", "option": "o1", "reason_commitment": "f" * 64},
            at=at)
    log.add("deliberation", "CommentPosted", "comment-1", {"consultation": k, "text_commitment": "9" * 64}, at=at,
            aggregate_type="Comment")
    log.add("deliberation", "OptionListFinalised", k, {"options": ["o1"]}, at=at)
    log.add("deliberation", "MeetingScheduled", "m1", {"consultation": k}, at=at, aggregate_type="Meeting")
    log.add("deliberation", "MeetingOpened", "m1", {"present": ["lead", "pm"]}, at=at + timedelta(days=1))
    log.add("deliberation", "MeetingClosed", "m1", {}, at=at + timedelta(days=1))
    log.add("deliberation", "DeliberationConcluded", k, {
        "consultation": k, "outcome": "vote_needed", "options": [{"id": "o1"}], "summary_commitment": "8" * 64,
        "meeting": "m1", "minutes": "min1"}, at=at + timedelta(days=1))

    ballot(log, "ballot-open", [("wang", "agree"), ("li", "agree"), ("zhang", "agree"), ("liu", "disagree")],
           secret=False, at=T0 + timedelta(days=2), late=("liu", "agree"))
    log.add("decisions", "ResolutionFinal", "ballot-open", {"ballot": "ballot-open", "outcome": "adopted"},
            at=T0 + timedelta(days=6))

    plan = "plan-1"
    at = T0 + timedelta(days=7)
    log.add("actions", "ActionPlanOpened", plan, {
        "plan": plan, "case": p, "basis": "resolution", "scope": "building", "scope_id": "b2",
        "category": "drainage", "ballot": "ballot-open", "consultation": k, "proposal": p}, at=at)
    log.add("actions", "TaskAssigned", plan, {"task": "t1", "title_commitment": "7" * 64, "due_at": "x",
                                             "budget": None, "funding_source": None}, at=at)
    log.add("actions", "TaskOverdue", plan, {"task": "t1"}, at=at + timedelta(days=2))
    log.add("actions", "ProgressReported", plan, {"task": "t1", "percent": 100}, at=at + timedelta(days=3))
    log.add("actions", "TaskCompleted", plan, {"task": "t1", "late": True}, at=at + timedelta(days=3))
    log.add("actions", "PlanReportedDone", plan, {"round": 1}, at=at + timedelta(days=3))
    log.add("actions", "ResultDisclosed", plan, {"round": 1, "summary_commitment": "6" * 64}, at=at + timedelta(days=3))
    log.add("actions", "EvaluationOpened", plan, {"round": 1, "closes_at": "y", "denominator": 4, "threshold": "1/3"},
            at=at + timedelta(days=3))
    for who, rating in (("wang", "satisfied"), ("li", "unsatisfied")):
        log.add("actions", "EvaluationGiven", f"ev-{who}", {"plan": plan, "round": 1, "person": who, "rating": rating},
                at=at + timedelta(days=4), aggregate_type="Evaluation")
    log.add("actions", "EvaluationChanged", "ev-li", {"rating": "basically_satisfied"}, at=at + timedelta(days=4, hours=1))
    log.add("actions", "EvaluationClosed", plan, {"round": 1, "counts": {}, "respondents": 2, "outcome": "accepted"},
            at=at + timedelta(days=5))
    log.add("actions", "CaseClosed", "closure-1", {"outcome": "completed", "stage": "action", "plan": plan,
                                                  "reason_commitment": "6" * 64, "merged_into": None},
            at=at + timedelta(days=5))
    # Another case: a secret ballot on the green space, in which zhang changes her vote.
    ballot(log, "ballot-secret", [("wang", "disagree"), ("li", "agree"), ("zhang", "agree"), ("zhang", "disagree")],
           secret=True, at=T0 + timedelta(days=20), case="ballot-secret")
    # A directory event: in the log, ignored by the stages' replay.
    log.add("communities", "PersonRegistered", "person-9", {"name_commitment": "5" * 64}, at=T0, case=None)
    return log


def test_a_case_through_every_stage_as_it_ended():
    state = replay(drainage().entries)
    p = state["proposals"][CASE]
    assert (p["status"], p["unit"], p["threshold"], p["qualified_with"]) == ("qualified", "households", 2, 2)
    assert (p["supports"], p["supports_residents"], p["supports_households"]) == (2, 2, 2)
    k = state["consultations"]["consultation-1"]
    assert k["status"] == "concluded" and k["conclusion"]["outcome"] == "vote_needed"
    assert k["options"] == [{"id": "o1", "title_commitment": "c" * 64, "description_commitment": "e" * 64,
                             "amendments": 1}], "the option as amended (its title kept)"
    assert k["final_options"] == ["o1"] and k["comments"] == 1 and k["meetings"] == {"m1": "closed"}
    assert {(m["person"], m["status"]) for m in k["body"]} == {("lead", "active"), ("pm", "active")}
    b = state["ballots"]["ballot-open"]
    assert (b["status"], b["outcome"], b["voted"], b["late_votes"]) == ("final", "adopted", 4, 1)
    assert b["matches_record"] is True and b["recount"] == b["recorded_result"]
    assert ballot_summary(b) == {"outcome": "adopted", "eligible_area": "4", "eligible_heads": 4,
                                 "participating_area": "4", "participating_heads": 4, "agreeing_area": "3",
                                 "agreeing_heads": 3}
    plan = state["action_plans"]["plan-1"]
    assert plan["status"] == "closed" and plan["round"] == 1
    [task] = plan["tasks"]
    assert (task["percent"], task["status"], task["overdue"]) == (100, "completed", True)
    assert plan["evaluation"]["counts"] == {"satisfied": 1, "basically_satisfied": 1, "unsatisfied": 0}
    completed = {"outcome": "completed", "stage": "action", "reason_commitment": "6" * 64, "merged_into": None}
    assert state["cases"][CASE] == {"case": CASE, "stages": ["proposal", "deliberation", "decision", "action"],
                                    "ending": dict(completed, by="EvaluationClosed"),
                                    "closed": dict(completed, plan="plan-1", by="system", reproduced=True,
                                                   at=clock.format(T0 + timedelta(days=12)))}
    assert state["entries"] == len(drainage().entries) and state["community"] == C


def test_a_secret_ballot_counts_the_latest_version_of_each_sealed_vote():
    b = replay(drainage().entries)["ballots"]["ballot-secret"]
    assert b["secret"] is True and b["votes"] == 4 and b["voted"] == 3
    assert b["matches_record"] is True
    r = b["recount"]
    assert (r["agreeing_heads"], r["disagreeing_heads"], r["superseded"], r["outcome"]) == (1, 2, 1, "rejected")


def test_the_state_as_it_stood_at_a_moment():
    entries = drainage().entries
    early = replay(entries, at=T0 + timedelta(minutes=2, seconds=30))
    p = early["proposals"][CASE]
    assert p["status"] == "collecting" and (p["supports_residents"], p["supports_households"], p["supports"]) == (2, 1, 1)
    assert early["consultations"] == {} and early["ballots"] == {}
    voting = replay(entries, at=T0 + timedelta(days=3, hours=2, minutes=30))
    b = voting["ballots"]["ballot-open"]
    assert b["status"] == "open" and b["voted"] == 2 and "recount" not in b, "an open ballot is not counted"
    assert voting["consultations"]["consultation-1"]["status"] == "concluded"
    # Times with another zone are the same instant.
    assert replay(entries, at="2026-11-29T18:30:00+08:00") == replay(entries, at=T0 + timedelta(days=3, hours=2, minutes=30))
    assert moment("2026-11-26T16:00:00+08:00") == clock.format(T0)


def test_one_case_alone():
    state = replay(drainage().entries, case="ballot-secret")
    assert list(state["ballots"]) == ["ballot-secret"] and state["proposals"] == {} and state["case"] == "ballot-secret"


def test_a_recorded_result_that_the_votes_do_not_give_is_reported():
    log = Log()

    def inflate(result):
        result["agreeing_heads"] += 1

    ballot(log, "b", [("wang", "agree"), ("li", "disagree")], secret=False, at=T0, tamper=inflate)
    b = replay(log.entries)["ballots"]["b"]
    assert b["matches_record"] is False
    assert {"field": "agreeing_heads", "recorded": 2, "replayed": 1} in b["differences"]
    broken = copy.deepcopy(log.entries)
    next(e for e in broken if e["type"] == "BallotOpened")["data"]["roll"][0]["weight"] = "2"
    b = replay(broken)["ballots"]["b"]
    assert b["recount"] is None and "hash" in b["recount_error"] and b["matches_record"] is False
