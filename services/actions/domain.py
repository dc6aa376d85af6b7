"""Action (行动): action plans, their tasks and progress, the disclosure of the result, the
residents' evaluation, and the end of a case. Pure Python on eventsourcing aggregates; no I/O.

An ActionPlan opens for a case on an adopted resolution, a confirmed emergency, an agreement
reached in deliberation, or directly by a community worker (with the basis written down). Tasks
name a responsible party, a due date and optionally a budget with its funding source; the
responsible party reports progress with evidence files (their SHA-256 in the event). When every
task is complete the plan is reported done: the result is disclosed (实施结果公开, the second of
the "two disclosures") and the residents' evaluation (满意度评议) opens for the adult residents
living in the plan's scope, frozen into the EvaluationOpened event. When the window has passed the
evaluation closes: if the unsatisfied share of those residents passes the community's threshold
the plan reopens and a follow-up proposal is requested; otherwise the case closes.

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

from services.common import clock
from services.common.aggregate import Aggregate, derived_id
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound

SCOPES = ("community", "compound", "building")
# Where a plan comes from: ResolutionFinal (adopted / emergency), DeliberationConcluded (agreed),
# or a community worker acting on a decision taken outside the platform's ballot.
BASES = ("resolution", "emergency", "agreement", "direct")
RESPONSIBLE_KINDS = ("property_company", "community_committee", "volunteer_team", "grid_leader", "contractor")
FUNDING_SOURCES = ("maintenance_fund", "public_service_fund", "government", "property_company", "owners",
                   "donation", "other")
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
# How a case ended, as CaseClosed says it.
CASE_OUTCOMES = ("completed", "rejected", "inadmissible")

OPEN, EVALUATING, REOPENED, CLOSED = "open", "evaluating", "reopened", "closed"
ACTIVE = (OPEN, REOPENED)  # tasks are assigned and progress reported only in these
TASK_OPEN, TASK_COMPLETED = "open", "completed"

TITLE_MAX, TEXT_MAX, COMMENT_MAX = 200, 5000, 1000  # characters of a title, a report or summary, a comment
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
        raise InvalidInput("budget must be a decimal string such as '12800.00'")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"budget is not a decimal number: {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_BUDGET:
        raise InvalidInput("budget must be a non-negative amount in yuan")
    if -amount.as_tuple().exponent > 2:
        raise InvalidInput("budget has more than two decimal places")
    return str(amount)


def unsatisfied_share(unsatisfied: int, denominator: int) -> str:
    """The share as it is counted, 'n/d' unreduced, so a reader sees both numbers."""
    return f"{unsatisfied}/{denominator}"


def passes(unsatisfied: int, denominator: int, threshold: str) -> bool:
    """'Passes the threshold' is strict and exact: with 1/3, 4 of 12 does not pass, 5 of 12 does.
    Nobody to ask (an empty scope) passes nothing."""
    return denominator > 0 and Fraction(unsatisfied, denominator) > Fraction(threshold)


def check_threshold(value) -> str:
    if not isinstance(value, str):
        raise InvalidInput("unsatisfied_reopen_share must be a fraction written like '1/3'")
    try:
        share = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InvalidInput(f"unsatisfied_reopen_share is not a fraction: {value!r}") from None
    if not 0 <= share <= 1:
        raise InvalidInput("unsatisfied_reopen_share must lie between 0 and 1")
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
            raise InvalidInput(f"basis must be one of: {', '.join(BASES)}")
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of: {', '.join(SCOPES)}")
        if scope != "community" and not scope_id:
            raise InvalidInput(f"a {scope} scope needs scope_id")
        if basis == "direct" and not basis_commitment:
            raise InvalidInput("a plan opened directly needs its basis written down")
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
            raise Conflict(f"cannot {doing}: the plan is {self.status}", status_now=self.status)

    def task(self, task: str) -> dict:
        found = self.tasks.get(task)
        if found is None:
            raise NotFound(f"task {task} does not exist in this plan")
        return found

    # -- tasks ---------------------------------------------------------------------------------
    def assign(self, *, task: str, title_commitment: str, responsible_party: dict, due_at: datetime,
               budget: str | None, funding_source: str | None, now: datetime) -> None:
        self._must_be(*ACTIVE, doing="assign a task")
        if len(self.tasks) >= MAX_TASKS:
            raise Conflict(f"a plan has at most {MAX_TASKS} tasks")
        if task in self.tasks:
            raise Conflict(f"task {task} already exists")
        if responsible_party.get("kind") not in RESPONSIBLE_KINDS:
            raise InvalidInput(f"the responsible party must be one of: {', '.join(RESPONSIBLE_KINDS)}")
        if due_at <= now:
            raise InvalidInput(f"due_at must be in the future (now is {when(now)})")
        budget = parse_budget(budget)
        if funding_source is not None and funding_source not in FUNDING_SOURCES:
            raise InvalidInput(f"funding_source must be one of: {', '.join(FUNDING_SOURCES)}")
        if budget is not None and funding_source is None:
            raise InvalidInput("a budget needs its funding source (e.g. maintenance_fund)")
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
            raise Conflict("this task is complete; progress can no longer be reported on it")
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise InvalidInput("percent must be a whole number from 0 to 100")
        if len(evidence) > MAX_EVIDENCE or any(not isinstance(h, str) or not SHA256.match(h) for h in evidence):
            raise InvalidInput(f"evidence must be at most {MAX_EVIDENCE} SHA-256 hashes (64 lowercase hex digits)")
        if len(set(evidence)) != len(evidence):
            raise InvalidInput("an evidence file is listed twice")
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
                    now: datetime) -> None:
        """Every task complete: the result is disclosed and the residents' evaluation opens."""
        self._must_be(*ACTIVE, doing="report the plan done")
        if not self.tasks:
            raise Conflict("a plan without tasks cannot be done: assign its tasks first")
        unfinished = sorted(k for k, t in self.tasks.items() if t["status"] != TASK_COMPLETED)
        if unfinished:
            raise Conflict(f"{len(unfinished)} task(s) are not complete yet", unfinished_tasks=unfinished)
        if not isinstance(window_days, int) or isinstance(window_days, bool) or window_days < 1:
            raise InvalidInput("the evaluation window must be at least one day")
        threshold = check_threshold(threshold)
        round_ = self.round + 1
        residents = sorted(set(residents))
        self._reported_done(round=round_)
        self._disclosed(round=round_, summary_commitment=summary_commitment)
        self._evaluation_opened(round=round_, opens_at=when(now), closes_at=when(now + timedelta(days=window_days)),
                                window_days=window_days, threshold=threshold, denominator=len(residents),
                                residents=residents)

    @event("PlanReportedDone")
    def _reported_done(self, round: int):  # noqa: A002 - the field's name in the event
        self.round = round

    @event("ResultDisclosed")
    def _disclosed(self, round: int, summary_commitment: str):  # noqa: A002
        self.result_commitment = summary_commitment

    @event("EvaluationOpened")
    def _evaluation_opened(self, round: int, opens_at: str, closes_at: str, window_days: int,  # noqa: A002
                           threshold: str, denominator: int, residents: list):
        self.evaluation = {"round": round, "opens_at": opens_at, "closes_at": closes_at, "threshold": threshold,
                           "residents": frozenset(residents), "denominator": denominator}
        self.status = EVALUATING

    def check_evaluator(self, person: str, now: datetime) -> int:
        """The round a resident may rate now, or a clear refusal."""
        if self.status != EVALUATING:
            if self.evaluation is None:
                raise Conflict("the evaluation has not opened: it opens when the plan is reported done")
            raise Conflict(f"the evaluation closed at {self.evaluation['closes_at']}")
        if when(now) >= self.evaluation["closes_at"]:
            raise Conflict(f"the evaluation window closed at {self.evaluation['closes_at']}")
        if person not in self.evaluation["residents"]:
            raise Forbidden("only the adult residents living in the plan's scope when the evaluation opened "
                            "may evaluate it")
        return self.evaluation["round"]

    def tally_due(self, now: datetime) -> bool:
        return self.status == EVALUATING and when(now - TALLY_GRACE) >= self.evaluation["closes_at"]

    def close_evaluation(self, *, counts: dict[str, int], now: datetime) -> str:
        """Count the current ratings; reopen with a follow-up if too many are unsatisfied.
        Returns the outcome: 'accepted' (the case may close) or 'reopened'."""
        if not self.tally_due(now):
            raise Conflict("the evaluation is not due to close yet")
        ev = self.evaluation
        counts = {r: int(counts.get(r, 0)) for r in RATINGS}
        respondents = sum(counts.values())
        if respondents > ev["denominator"]:
            raise Conflict("more ratings than residents asked: the count is inconsistent")
        reopen = passes(counts["unsatisfied"], ev["denominator"], ev["threshold"])
        outcome = "reopened" if reopen else "accepted"
        self._evaluation_closed(round=ev["round"], counts=counts, respondents=respondents,
                                denominator=ev["denominator"],
                                unsatisfied_share=unsatisfied_share(counts["unsatisfied"], ev["denominator"]),
                                threshold=ev["threshold"], outcome=outcome)
        if reopen:
            self._reopened(round=ev["round"])
            self._follow_up(original_case=self.case, plan=str(self.id), round=ev["round"], scope=self.scope,
                            scope_id=self.scope_id, category=self.category, title_commitment=self.title_commitment,
                            unsatisfied_share=unsatisfied_share(counts["unsatisfied"], ev["denominator"]),
                            threshold=ev["threshold"])
        return outcome

    @event("EvaluationClosed")
    def _evaluation_closed(self, round: int, counts: dict, respondents: int, denominator: int,  # noqa: A002
                           unsatisfied_share: str, threshold: str, outcome: str):
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
                   unsatisfied_share: str, threshold: str):
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
        raise InvalidInput(f"rating must be one of: {', '.join(RATINGS)}")
    return rating


# ---- how a case ended ---------------------------------------------------------------------------
class CaseClosure(Aggregate):
    """The end of a case, published so that everyone who took part can learn the outcome."""

    EVENT_NAMES_ARE_TYPES = True

    @classmethod
    def close(cls, *, community: str, case: str, outcome: str, stage: str, reason_commitment: str | None,
              result: dict | None = None, plan: str | None = None) -> "CaseClosure":
        """`reason_commitment` is the written reason (a screening's, a disclosed result); `result`
        the numbers behind the outcome (a resolution's count, an evaluation's tally)."""
        if outcome not in CASE_OUTCOMES:
            raise InvalidInput(f"outcome must be one of: {', '.join(CASE_OUTCOMES)}")
        return cls._create(cls.CaseClosed, id=closure_id(case), community=community, case=case, outcome=outcome,
                           stage=stage, reason_commitment=reason_commitment, result=result, plan=plan)

    @event("CaseClosed")
    def __init__(self, community: str, case: str, outcome: str, stage: str, reason_commitment: str | None,
                 result: dict | None, plan: str | None):
        self.community, self.case, self.outcome, self.stage = community, case, outcome, stage
