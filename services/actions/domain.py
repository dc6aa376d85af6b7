"""Action (行动): action plans, their tasks and progress, the disclosure of the result, the
residents' evaluation, and the end of a case. Pure Python on eventsourcing aggregates; no I/O.

An ActionPlan opens for a case on an adopted resolution, a confirmed emergency, an agreement
reached in deliberation, or directly by a community worker (with the basis written down). Tasks
name a responsible party, a due date and optionally a budget with its funding source; the
responsible party reports progress with evidence files (their SHA-256 in the event). When every
task is complete the plan is reported done: the result is disclosed (实施结果公开, the second of
the "two disclosures") and the residents' evaluation (满意度评议) opens for the adult residents
living in the plan's scope, frozen into the EvaluationOpened event with the community's rules.
When the window has passed the evaluation is judged on those who answered (rules.evaluation):
enough answers and too many unsatisfied reopen the plan and request a follow-up proposal quoting
the unsatisfied comments; too few answers extend the window once; otherwise the case closes.

One Evaluation aggregate per (plan, round, resident) holds that resident's current rating, so an
evaluation of 5,000 residents costs the same per rating as one of 10, and a concurrent duplicate
fails on its version. A CaseClosure per case records how the case ended; its id derives from the
case, so a case closes once.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from eventsourcing.domain import event

from rules.endings import OUTCOMES
from services.common import clock
from services.common.aggregate import Aggregate, derived_id
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from rules import evaluation as evaluation_rule
from services.contracts.actions import (  # noqa: F401 - the contract owns what the gateway shares
    DOWNLOAD, EVIDENCE_TYPES, sniff,
    COMMENT_MAX, FUNDING_SOURCES, RATINGS, RESPONSIBLE_KINDS, SCOPES, TEXT_MAX, TITLE_MAX,
    CLOSED, EVALUATING, OPEN, REOPENED, TASK_COMPLETED, TASK_OPEN,
)

# Where a plan comes from: ResolutionFinal (adopted / emergency), DeliberationConcluded (agreed),
# or a community worker acting on a decision taken outside the platform's ballot.
BASES = ("resolution", "emergency", "agreement", "direct")
# How a case ended, as CaseClosed says it (the table of endings is the pure `rules.endings`).
CASE_OUTCOMES = OUTCOMES

ACTIVE = (OPEN, REOPENED)  # tasks are assigned and progress reported only in these

MAX_TASKS = 100
MAX_EVIDENCE = 20
MAX_BUDGET = Decimal("10000000000")  # yuan; a sanity bound, not a policy
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Evaluations are counted this long after the window closed, so that a rating whose window check
# passed just before the close is saved before the count (commands take milliseconds).
TALLY_GRACE = timedelta(minutes=1)


def plan_id(case: str) -> uuid.UUID:
    """One plan per case: a replayed trigger cannot open a second one."""
    return derived_id("action-plan", case)


def evaluation_id(plan: str, round_: int, person: str) -> uuid.UUID:
    return derived_id("evaluation", plan, round_, person)


def closure_id(case: str) -> uuid.UUID:
    return derived_id("case-closed", case)


def when(instant: datetime) -> str:
    return clock.format(instant)


def parse_budget(value) -> str | None:
    """A budget in yuan as a decimal string with at most two places (fen); None for no budget."""
    if value is None:
        return None
    if isinstance(value, (float, bool)) or not isinstance(value, (str, int)):
        raise InvalidInput.coded("actions.budget_decimal_string_such")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput.coded("actions.budget_decimal_number", value=repr(value)) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_BUDGET:
        raise InvalidInput.coded("actions.budget_non_negative_amount")
    if -amount.as_tuple().exponent > 2:
        raise InvalidInput.coded("actions.budget_more_than_two")
    return str(amount)


def unsatisfied_share(unsatisfied: int, denominator: int) -> str:
    """The share as it is counted, 'n/d' unreduced, so a reader sees both numbers."""
    return f"{unsatisfied}/{denominator}"


def passes(unsatisfied: int, denominator: int, threshold: str) -> bool:
    """'Passes the threshold' is strict and exact: with 1/3, 4 of 12 does not pass, 5 of 12 does.
    Nobody to ask (an empty scope) passes nothing."""
    return denominator > 0 and Fraction(unsatisfied, denominator) > Fraction(threshold)


def check_threshold(value, name: str = "unsatisfied_reopen_share") -> str:
    if not isinstance(value, str):
        raise InvalidInput.coded("actions.fraction_written_like", name=name)
    try:
        share = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InvalidInput.coded("common.not_a_fraction", field=name, value=repr(value)) from None
    if not 0 <= share <= 1:
        raise InvalidInput.coded("common.fraction_between_0_1", field=name)
    return value


# ---- the plan ------------------------------------------------------------------------------------
class ActionPlan(Aggregate):
    EVENT_NAMES_ARE_TYPES = True  # "TaskAssigned" reads better than "ActionPlanTaskAssigned"

    @classmethod
    def open(cls, *, id: uuid.UUID, community: str, case: str, basis: str, scope: str,  # noqa: A002
             scope_id: str | None, category: str | None, title_commitment: str | None,
             basis_commitment: str | None = None, ballot: str | None = None, consultation: str | None = None,
             proposal: str | None = None, option: dict | None = None) -> "ActionPlan":
        if basis not in BASES:
            raise InvalidInput.coded("actions.basis_one", bases=", ".join(BASES))
        if scope not in SCOPES:
            raise InvalidInput.coded("common.scope_one", scopes=", ".join(SCOPES))
        if scope != "community" and not scope_id:
            raise InvalidInput.coded("actions.scope_needs_scope_id", scope=scope)
        if basis == "direct" and not basis_commitment:
            raise InvalidInput.coded("actions.plan_opened_directly_needs")
        return cls._create(cls.ActionPlanOpened, id=id, plan=str(id), community=community, case=case, basis=basis,
                           basis_commitment=basis_commitment, scope=scope,
                           scope_id=None if scope == "community" else scope_id, category=category,
                           title_commitment=title_commitment, ballot=ballot, consultation=consultation,
                           proposal=proposal, option=option)

    @event("ActionPlanOpened")
    def __init__(self, plan: str, community: str, case: str, basis: str, basis_commitment: str | None, scope: str,
                 scope_id: str | None, category: str | None, title_commitment: str | None, ballot: str | None,
                 consultation: str | None, proposal: str | None, option: dict | None):
        self.community = community
        self.case = case
        self.basis = basis
        self.scope, self.scope_id, self.category = scope, scope_id, category
        self.title_commitment = title_commitment
        self.status = OPEN
        self.tasks: dict[str, dict] = {}
        self.round = 0  # evaluation rounds: 1 after the first report of done, 2 after a reopening…
        self.evaluation: dict | None = None
        self.result_commitment: str | None = None  # the disclosed result
        self.last_tally: dict | None = None  # the numbers of the last EvaluationClosed

    # -- guards --------------------------------------------------------------------------------
    def _must_be(self, *statuses: str, doing: str) -> None:
        if self.status not in statuses:
            raise Conflict.coded("actions.plan", doing=doing, status=self.status, extra={"status_now": self.status})

    def task(self, task: str) -> dict:
        found = self.tasks.get(task)
        if found is None:
            raise NotFound.coded("actions.task_does_exist_plan", task=task)
        return found

    # -- tasks ---------------------------------------------------------------------------------
    def assign(self, *, task: str, title_commitment: str, responsible_party: dict, due_at: datetime,
               budget: str | None, funding_source: str | None, now: datetime) -> None:
        self._must_be(*ACTIVE, doing="assign a task")
        if len(self.tasks) >= MAX_TASKS:
            raise Conflict.coded("actions.plan_most_tasks", max_tasks=MAX_TASKS)
        if task in self.tasks:
            raise Conflict.coded("actions.task_already_exists", task=task)
        if responsible_party.get("kind") not in RESPONSIBLE_KINDS:
            raise InvalidInput.coded("actions.responsible_party_one", responsible_kinds=", ".join(RESPONSIBLE_KINDS))
        if due_at <= now:
            raise InvalidInput.coded("actions.due_future_now", now=when(now))
        budget = parse_budget(budget)
        if funding_source is not None and funding_source not in FUNDING_SOURCES:
            raise InvalidInput.coded("actions.funding_source_one", funding_sources=", ".join(FUNDING_SOURCES))
        if budget is not None and funding_source is None:
            raise InvalidInput.coded("actions.budget_needs_funding_source")
        self._assigned(task=task, title_commitment=title_commitment, responsible_party=dict(responsible_party),
                       due_at=when(due_at), budget=budget, funding_source=funding_source)

    @event("TaskAssigned")
    def _assigned(self, task: str, title_commitment: str, responsible_party: dict, due_at: str, budget: str | None,
                  funding_source: str | None):
        self.tasks[task] = {"title_commitment": title_commitment, "responsible_party": dict(responsible_party),
                            "due_at": due_at, "budget": budget, "funding_source": funding_source,
                            "percent": 0, "status": TASK_OPEN, "overdue": False}

    def report_progress(self, *, task: str, percent: int, note_commitment: str | None, evidence: list[str],
                        now: datetime) -> None:
        """Percent done with a note and evidence; 100 completes the task (TaskCompleted follows)."""
        self._must_be(*ACTIVE, doing="report progress")
        t = self.task(task)
        if t["status"] == TASK_COMPLETED:
            raise Conflict.coded("actions.task_complete_progress_longer")
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise InvalidInput.coded("actions.percent_whole_number_from")
        if len(evidence) > MAX_EVIDENCE or any(not isinstance(h, str) or not SHA256.match(h) for h in evidence):
            raise InvalidInput.coded("actions.evidence_most_sha_hashes", max_evidence=MAX_EVIDENCE)
        if len(set(evidence)) != len(evidence):
            raise InvalidInput.coded("actions.evidence_file_listed_twice")
        self._progress(task=task, percent=percent, note_commitment=note_commitment, evidence=list(evidence))
        if percent == 100:
            self._completed(task=task, late=when(now) > t["due_at"])

    @event("ProgressReported")
    def _progress(self, task: str, percent: int, note_commitment: str | None, evidence: list):
        self.tasks[task]["percent"] = percent

    @event("TaskCompleted")
    def _completed(self, task: str, late: bool):
        self.tasks[task]["status"] = TASK_COMPLETED

    def overdue_tasks(self, now: datetime) -> list[str]:
        """Open tasks past their due time (strictly: done at the due time is on time) that are not
        flagged yet."""
        if self.status not in ACTIVE:
            return []
        at = when(now)
        return sorted(k for k, t in self.tasks.items()
                      if t["status"] == TASK_OPEN and not t["overdue"] and t["due_at"] < at)

    def flag_overdue(self, now: datetime) -> list[str]:
        flagged = self.overdue_tasks(now)
        for task in flagged:
            self._overdue(task=task, due_at=self.tasks[task]["due_at"], percent=self.tasks[task]["percent"])
        return flagged

    @event("TaskOverdue")
    def _overdue(self, task: str, due_at: str, percent: int):
        self.tasks[task]["overdue"] = True

    # -- done, disclosure, evaluation -------------------------------------------------------------
    def report_done(self, *, summary_commitment: str, residents: list[str], window_days: int, threshold: str,
                    now: datetime, min_response_share: str | None = None) -> None:
        """Every task complete: the result is disclosed and the residents' evaluation opens."""
        self._must_be(*ACTIVE, doing="report the plan done")
        if not self.tasks:
            raise Conflict.coded("actions.plan_without_tasks_done")
        unfinished = sorted(k for k, t in self.tasks.items() if t["status"] != TASK_COMPLETED)
        if unfinished:
            raise Conflict.coded("actions.task_complete_yet", unfinished_count=len(unfinished),
                                 extra={"unfinished_tasks": unfinished})
        if not isinstance(window_days, int) or isinstance(window_days, bool) or window_days < 1:
            raise InvalidInput.coded("actions.evaluation_window_least_one")
        threshold = check_threshold(threshold)
        if min_response_share is not None:
            min_response_share = check_threshold(min_response_share, "evaluation_min_response_share")
        round_ = self.round + 1
        residents = sorted(set(residents))
        self._reported_done(round=round_)
        self._disclosed(round=round_, summary_commitment=summary_commitment)
        self._evaluation_opened(round=round_, opens_at=when(now), closes_at=when(now + timedelta(days=window_days)),
                                window_days=window_days, threshold=threshold, denominator=len(residents),
                                residents=residents, min_response_share=min_response_share)

    @event("PlanReportedDone")
    def _reported_done(self, round: int):  # noqa: A002 - the field's name in the event
        self.round = round

    @event("ResultDisclosed")
    def _disclosed(self, round: int, summary_commitment: str):  # noqa: A002
        self.result_commitment = summary_commitment

    @event("EvaluationOpened")
    def _evaluation_opened(self, round: int, opens_at: str, closes_at: str, window_days: int,  # noqa: A002
                           threshold: str, denominator: int, residents: list, min_response_share: str | None = None):
        # The community's rules as they stood when the evaluation opened: a later change of the rules
        # does not touch it. An evaluation opened before the minimum response share existed (None)
        # keeps the rule it opened under: the unsatisfied share of everyone asked.
        self.evaluation = {"round": round, "opens_at": opens_at, "closes_at": closes_at, "threshold": threshold,
                           "residents": frozenset(residents), "denominator": denominator,
                           "window_days": window_days, "min_response_share": min_response_share,
                           "extended": False}
        self.status = EVALUATING

    def check_evaluator(self, person: str, now: datetime) -> int:
        """The round a resident may rate now, or a clear refusal."""
        if self.status != EVALUATING:
            if self.evaluation is None:
                raise Conflict.coded("actions.evaluation_opened_opens_when")
            raise Conflict.coded("actions.evaluation_closed", closes_at=self.evaluation["closes_at"])
        if when(now) >= self.evaluation["closes_at"]:
            raise Conflict.coded("actions.evaluation_window_closed", closes_at=self.evaluation["closes_at"])
        if person not in self.evaluation["residents"]:
            raise Forbidden.coded("actions.adult_residents_living_plan")
        return self.evaluation["round"]

    def tally_due(self, now: datetime) -> bool:
        return self.status == EVALUATING and when(now - TALLY_GRACE) >= self.evaluation["closes_at"]

    def close_evaluation(self, *, counts: dict[str, int], now: datetime,
                         unsatisfied_comment_commitments: list[str] | None = None) -> str:
        """Count the current ratings and judge them (rules.evaluation): reopen with a follow-up that
        quotes the unsatisfied comments (their commitments), accept, or, when too few answered,
        extend the window once. Returns 'accepted' (the case may close), 'reopened' or 'extended'."""
        if not self.tally_due(now):
            raise Conflict.coded("actions.evaluation_due_close_yet")
        ev = self.evaluation
        counts = {r: int(counts.get(r, 0)) for r in RATINGS}
        respondents = sum(counts.values())
        if respondents > ev["denominator"]:
            raise Conflict.coded("actions.more_ratings_than_residents")
        judged = None
        if ev.get("min_response_share") is None:  # opened under the earlier rule: everyone asked counts
            reopen = passes(counts["unsatisfied"], ev["denominator"], ev["threshold"])
            share = unsatisfied_share(counts["unsatisfied"], ev["denominator"])
        else:
            judged = evaluation_rule.judge_evaluation(unsatisfied=counts["unsatisfied"], respondents=respondents,
                                      denominator=ev["denominator"], threshold=ev["threshold"],
                                      min_response_share=ev["min_response_share"], extended=ev["extended"])
            if judged.outcome == evaluation_rule.EXTENDED:
                closes = clock.parse(ev["closes_at"]) + timedelta(days=ev["window_days"])
                self._evaluation_extended(round=ev["round"], closes_at=when(closes), counts=counts,
                                          respondents=respondents, denominator=ev["denominator"],
                                          response_share=judged.response_share,
                                          min_response_share=ev["min_response_share"])
                return evaluation_rule.EXTENDED
            reopen, share = judged.outcome == evaluation_rule.REOPENED, judged.unsatisfied_share
        outcome = "reopened" if reopen else "accepted"
        extra = {} if judged is None else {"response_share": judged.response_share,
                                           "response_share_met": judged.response_share_met,
                                           "min_response_share": ev["min_response_share"]}
        self._evaluation_closed(round=ev["round"], counts=counts, respondents=respondents,
                                denominator=ev["denominator"], unsatisfied_share=share,
                                threshold=ev["threshold"], outcome=outcome, **extra)
        if reopen:
            self._reopened(round=ev["round"])
            self._follow_up(original_case=self.case, plan=str(self.id), round=ev["round"], scope=self.scope,
                            scope_id=self.scope_id, category=self.category, title_commitment=self.title_commitment,
                            unsatisfied_share=share, threshold=ev["threshold"],
                            unsatisfied_comment_commitments=list(unsatisfied_comment_commitments or []))
        return outcome

    @event("EvaluationExtended")
    def _evaluation_extended(self, round: int, closes_at: str, counts: dict, respondents: int,  # noqa: A002
                             denominator: int, response_share: str, min_response_share: str):
        self.evaluation = dict(self.evaluation, closes_at=closes_at, extended=True)

    @event("EvaluationClosed")
    def _evaluation_closed(self, round: int, counts: dict, respondents: int, denominator: int,  # noqa: A002
                           unsatisfied_share: str, threshold: str, outcome: str, response_share: str | None = None,
                           response_share_met: bool | None = None, min_response_share: str | None = None):
        self.last_tally = {"round": round, "counts": dict(counts), "respondents": respondents,
                           "denominator": denominator, "unsatisfied_share": unsatisfied_share, "threshold": threshold}
        self.status = CLOSED if outcome == "accepted" else self.status

    @event("PlanReopened")
    def _reopened(self, round: int):  # noqa: A002
        # Completed tasks stay completed (that is what happened); remedial work is assigned as new
        # tasks, and the plan is reported done again for a new round of evaluation.
        self.status = REOPENED

    @event("FollowUpRequested")
    def _follow_up(self, original_case: str, plan: str, round: int, scope: str,  # noqa: A002
                   scope_id: str | None, category: str | None, title_commitment: str | None,
                   unsatisfied_share: str, threshold: str, unsatisfied_comment_commitments: list | None = None):
        pass


# ---- one resident's evaluation ---------------------------------------------------------------
class Evaluation(Aggregate):
    """One resident's current rating of one plan in one round; later ratings change it."""

    EVENT_NAMES_ARE_TYPES = True

    @classmethod
    def give(cls, *, community: str, case: str, plan: str, round_: int, person: str, rating: str,
             comment_commitment: str | None) -> "Evaluation":
        check_rating(rating)
        return cls._create(cls.EvaluationGiven, id=evaluation_id(plan, round_, person), community=community,
                           case=case, plan=plan, round=round_, person=person, rating=rating,
                           comment_commitment=comment_commitment)

    @event("EvaluationGiven")
    def __init__(self, community: str, case: str, plan: str, round: int, person: str, rating: str,  # noqa: A002
                 comment_commitment: str | None):
        self.community, self.case, self.plan, self.round, self.person = community, case, plan, round, person
        self.rating, self.comment_commitment = rating, comment_commitment

    def change(self, rating: str, comment_commitment: str | None) -> None:
        """The last rating within the window counts."""
        check_rating(rating)
        self._changed(rating=rating, comment_commitment=comment_commitment)

    @event("EvaluationChanged")
    def _changed(self, rating: str, comment_commitment: str | None):
        self.rating, self.comment_commitment = rating, comment_commitment


def check_rating(rating) -> str:
    if rating not in RATINGS:
        raise InvalidInput.coded("actions.rating_one", ratings=", ".join(RATINGS))
    return rating


# ---- how a case ended ---------------------------------------------------------------------------
class CaseClosure(Aggregate):
    """The end of a case, published so that everyone who took part can learn the outcome. Its id
    derives from the case, so a case closes once: a second ending (a redelivered trigger, the lead
    closing a case the consumer has just closed) fails on the aggregate's version."""

    EVENT_NAMES_ARE_TYPES = True

    @classmethod
    def close(cls, *, community: str, case: str, outcome: str, stage: str, reason_commitment: str | None,
              result: dict | None = None, plan: str | None = None, merged_into: str | None = None) -> "CaseClosure":
        """`reason_commitment` is the written reason (a screening's, a disclosed result, the lead's);
        `result` the numbers behind the outcome (a resolution's count, an evaluation's tally);
        `merged_into` the case a merged proposal continues in."""
        if outcome not in CASE_OUTCOMES:
            raise InvalidInput.coded("common.outcome_one", outcomes=", ".join(CASE_OUTCOMES))
        if outcome == "merged" and not merged_into:
            raise InvalidInput.coded("actions.merged_case_names_case")
        if outcome == "closed_by_lead" and not reason_commitment:
            raise InvalidInput.coded("actions.closing_case_needs_reason")
        return cls._create(cls.CaseClosed, id=closure_id(case), community=community, case=case, outcome=outcome,
                           stage=stage, reason_commitment=reason_commitment, result=result, plan=plan,
                           merged_into=merged_into)

    @event("CaseClosed")
    def __init__(self, community: str, case: str, outcome: str, stage: str, reason_commitment: str | None,
                 result: dict | None, plan: str | None, merged_into: str | None = None):
        # merged_into defaults: CaseClosed events recorded before merges closed cases lack it.
        self.community, self.case, self.outcome, self.stage = community, case, outcome, stage
        self.merged_into = merged_into
