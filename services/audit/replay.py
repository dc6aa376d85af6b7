"""Replay: a community's cases as the audit log alone tells them, as they stood at a moment.

Pure functions over envelopes (as the log stores and exports them): no I/O, no framework, no
import of any stage service. It rebuilds

- proposals: status, threshold and its unit, the current supports (per Support aggregate its
  latest event; counted in residents and in distinct households);
- consultations: status, convener, body, options as amended, the final list, the conclusion,
  meetings and the number of comments;
- ballots: status, the frozen roll's hash, the votes recorded before BallotClosed (a vote after it
  is late and does not count), and for a closed ballot a recount with the shared `rules` package
  (`rules.record`: the same counting the decisions service does), compared number by number with
  the recorded resolution; a secret ballot's votes are keyed by their sealed aggregate ids, the
  latest version of each counting, and (VoteCast 2) sealed choices are opened with the ballot's
  VotesRevealed, each reveal checked against its seal; its turnout (`voted`) is not given before
  the count, as the decisions service does not publish it either;
- action plans: status, tasks and their progress, evaluation rounds with the current ratings;
- cases: which stages they went through and how they closed: the ending the stages' events
  bring about (`rules.endings`, the table the actions service closes cases by) reproduced from
  the log alone and compared with the recorded `CaseClosed` (`closed.reproduced`).

An event counts if it occurred at or before the moment (`occurred_at ≤ at`). Every stage's events
come in their source's order in the log, which is all the replay relies on.

Every event's data is read through its contract (`services.contracts`): a type or version no
contract has, or a field name its contract does not have, raises `ContractViolation` instead of
reading as missing, so a renamed field cannot quietly change what the replay says.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

import rules
from rules.endings import Ending, completed, ending_of
from rules.record import REVEAL_TYPE, differences, reveals_of, tally_record, vote_record

from services.contracts import EVENTS, Registry

from .checkpoints import format_time, parse_time

STAGE_OF_SOURCE = {"proposals": "proposal", "deliberation": "deliberation", "decisions": "decision",
                   "actions": "action"}


def moment(at: datetime | str | None) -> str | None:
    """`at` in the envelopes' own form (UTC, microseconds, 'Z'), so times compare as strings."""
    if at is None:
        return None
    return format_time(parse_time(at) if isinstance(at, str) else at)


def replay(envelopes: Iterable[dict], at: datetime | str | None = None, case: str | None = None, *,
           contracts: Registry = EVENTS) -> dict:
    """The state of every case (or of one case) after the events that occurred up to `at`, the
    events read through `contracts`."""
    until = moment(at)
    state = Replay(contracts)
    for env in envelopes:
        if until is not None and env["occurred_at"] > until:
            continue
        if case is not None and env.get("case") != case:
            continue
        state.apply(env)
    return state.result(at=until, case=case)


class Replay:
    def __init__(self, contracts: Registry = EVENTS) -> None:
        self.read = contracts.read
        self.community: str | None = None
        self.entries = 0
        self.proposals = Proposals(self.read)
        self.consultations = Consultations(self.read)
        self.ballots = Ballots(self.read)
        self.plans = Plans(self.read)
        self.cases: dict[str, dict] = {}
        self._endings: dict[str, Ending] = {}  # triggering event id -> the ending it brings about
        self._closings: dict[str, dict] = {}  # case -> its CaseClosed envelope
        self._stages = {"proposals": self.proposals, "deliberation": self.consultations,
                        "decisions": self.ballots, "actions": self.plans}

    def apply(self, env: dict) -> None:
        self.entries += 1
        self.community = self.community or env["community"]
        stage = self._stages.get(env["source"])
        if stage is not None:
            stage.apply(env)
        if env.get("case") and env["source"] in STAGE_OF_SOURCE:
            c = self.cases.setdefault(env["case"], {"case": env["case"], "stages": [], "ending": None,
                                                    "closed": None})
            name = STAGE_OF_SOURCE[env["source"]]
            if name not in c["stages"]:
                c["stages"].append(name)
            ending = self._ending(env)
            if ending is not None:
                self._endings[env["id"]] = ending
                if c["ending"] is None and ending.case == env["case"]:
                    c["ending"] = dict(ending.as_data(), by=env["type"])
            if env["type"] == "CaseClosed":
                self._closings[env["case"]] = env

    def _ending(self, env: dict) -> Ending | None:
        """The ending this event brings about: a stage's (`rules.endings`), or an accepted
        evaluation's (the plan's case completes with its disclosed result as the reason)."""
        if env["source"] == "actions" and env["type"] == "EvaluationClosed" and env["data"].get("outcome") == "accepted":
            plan = self.plans.items.get(env["aggregate"]["id"])
            if plan is not None:
                return completed(plan["case"], plan["result_commitment"], None)
            return None
        return ending_of(env)

    def _closed(self, env: dict) -> dict:
        """The recorded closing, and whether the log reproduces it: the ending its cause brings
        about (the triggering event, or for a completed plan its accepted evaluation), or for the
        party-committee lead's closing a person's act with its reason (it is its own cause).
        Judged once the whole log is read: the audit log takes each source on its own stream, so
        a closing may stand in it before the stage event that caused it."""
        d = self.read(env)
        recorded = {"outcome": d["outcome"], "stage": d["stage"], "reason_commitment": d.get("reason_commitment"),
                    "merged_into": d.get("merged_into")}
        if d["outcome"] == "closed_by_lead":
            reproduced = env.get("actor") not in (None, "system") and bool(d.get("reason_commitment"))
            expected = recorded if reproduced else None
        else:
            cause = self._endings.get(env.get("causation") or "")
            if cause is None:  # a completed plan: the accepted evaluation saved with it
                c = self.cases.get(env["case"], {})
                expected = c.get("ending") and {k: v for k, v in c["ending"].items() if k != "by"}
            else:
                expected = cause.as_data()
            reproduced = expected == recorded
        return dict(recorded, plan=d.get("plan"), at=env["occurred_at"], by=env.get("actor"),
                    reproduced=reproduced, **({} if reproduced else {"expected": expected}))

    def result(self, at: str | None = None, case: str | None = None) -> dict:
        for closed_case, env in self._closings.items():
            self.cases[closed_case]["closed"] = self._closed(env)
        return {"community": self.community, "at": at, "case": case, "entries": self.entries,
                "proposals": self.proposals.result(), "consultations": self.consultations.result(),
                "ballots": self.ballots.result(), "action_plans": self.plans.result(), "cases": self.cases}


# --- 1 提议 proposals -----------------------------------------------------------------------------------

_PROPOSAL_STATUS = {"ProposalSubmitted": "submitted", "ProposalQualified": "qualified", "ProposalExpired": "expired",
                    "ProposalWithdrawn": "withdrawn", "ProposalMerged": "merged",
                    "ProposalCollectionOpened": "collecting"}
_SUPPORTING = ("SupportGiven", "SupportGivenAgain")


class Proposals:
    def __init__(self, read: Callable[[dict], Mapping[str, Any]] = EVENTS.read) -> None:
        self.read = read
        self.items: dict[str, dict] = {}
        self.supports: dict[str, dict] = {}  # Support aggregate -> its latest event's facts

    def apply(self, env: dict) -> None:
        kind, d, agg = env["type"], self.read(env), env["aggregate"]["id"]
        if kind == "ProposalDrafted":
            self.items[agg] = {"id": agg, "case": env.get("case"), "status": "draft", "author": d["author"],
                               "scope": d["scope"], "scope_id": d["scope_id"], "category": d["category"],
                               "title_commitment": d["title_commitment"], "unit": None, "threshold": None,
                               "denominator": None, "deadline": None, "merged_into": None,
                               "qualified_with": None, "drafted_at": env["occurred_at"]}
            return
        if kind in _SUPPORTING or kind == "SupportWithdrawn":
            self.supports[agg] = {"proposal": d["proposal"], "household": d.get("household"),
                                  "current": kind in _SUPPORTING}
            return
        p = self.items.get(agg)
        if p is None:
            return
        if kind == "ProposalScreened":
            p["status"] = "screened" if d["admissible"] else "inadmissible"
            p["category"] = d["category"]
        elif kind in _PROPOSAL_STATUS:
            p["status"] = _PROPOSAL_STATUS[kind]
            if kind == "ProposalCollectionOpened":
                p.update(unit=d["unit"], threshold=d["threshold"], denominator=d["denominator"], deadline=d["deadline"])
            elif kind == "ProposalQualified":
                p["qualified_with"] = d["supports"]
            elif kind == "ProposalMerged":
                p["merged_into"] = d["into"]

    def result(self) -> dict[str, dict]:
        residents: Counter = Counter()
        households: dict[str, set] = {}
        for s in self.supports.values():
            if s["current"]:
                residents[s["proposal"]] += 1
                if s["household"]:
                    households.setdefault(s["proposal"], set()).add(s["household"])
        out = {}
        for pid, p in self.items.items():
            r, h = residents[pid], len(households.get(pid, ()))
            out[pid] = dict(p, supports_residents=r, supports_households=h,
                            supports=h if p["unit"] == "households" else r)
        return out


# --- 2 议事 consultations ------------------------------------------------------------------------------

_MEETING_STATUS = {"MeetingScheduled": "scheduled", "MeetingOpened": "opened", "MeetingClosed": "closed",
                   "MeetingCancelled": "cancelled"}


class Consultations:
    def __init__(self, read: Callable[[dict], Mapping[str, Any]] = EVENTS.read) -> None:
        self.read = read
        self.items: dict[str, dict] = {}
        self.amendments: dict[str, dict] = {}
        self.meetings: dict[str, str] = {}  # meeting -> consultation

    def apply(self, env: dict) -> None:
        kind, d, agg = env["type"], self.read(env), env["aggregate"]["id"]
        if kind == "ConsultationOpened":
            self.items[agg] = {"id": agg, "case": env.get("case"), "proposal": d["proposal"], "status": "open",
                               "scope": d["scope"], "scope_id": d["scope_id"], "category": d["category"],
                               "title_commitment": d["title_commitment"], "convened_by": d["convened_by"],
                               "convener": d["convener"], "body": [dict(m) for m in d["body"]], "options": {},
                               "final_options": None, "conclusion": None, "meetings": {}, "comments": 0}
            return
        if kind == "CommentPosted":
            if d["consultation"] in self.items:
                self.items[d["consultation"]]["comments"] += 1
            return
        if kind in _MEETING_STATUS:
            if kind == "MeetingScheduled":
                self.meetings[agg] = d["consultation"]
            c = self.items.get(self.meetings.get(agg, ""))
            if c is not None:
                c["meetings"][agg] = _MEETING_STATUS[kind]
            return
        c = self.items.get(agg)
        if c is None:
            return
        if kind == "ConvenerDesignated":
            for m in c["body"]:
                if m["role"] == "convener" and m["status"] == "active":
                    m["status"] = "replaced"
            c["body"].append({"person": d["person"], "role": "convener", "status": "active"})
            c["convener"] = d["person"]
        elif kind == "BodyMemberInvited":
            c["body"].append({"person": d["person"], "role": d["role"], "status": "invited"})
        elif kind in ("InvitationAccepted", "InvitationDeclined"):
            for m in c["body"]:
                if m["person"] == d["person"] and m["role"] == d["role"] and m["status"] == "invited":
                    m["status"] = "active" if kind == "InvitationAccepted" else "declined"
                    break
        elif kind == "OptionProposed":
            c["options"][d["option"]] = {"id": d["option"], "title_commitment": d["title_commitment"],
                                         "description_commitment": d["description_commitment"], "amendments": 0}
        elif kind == "AmendmentProposed":
            self.amendments[d["amendment"]] = {"title_commitment": d["title_commitment"],
                                               "description_commitment": d["description_commitment"]}
        elif kind == "AmendmentAccepted":
            o, a = c["options"][d["option"]], self.amendments[d["amendment"]]
            if a["title_commitment"]:
                o["title_commitment"] = a["title_commitment"]
            o["description_commitment"] = a["description_commitment"]
            o["amendments"] += 1
        elif kind == "OptionListFinalised":
            c["final_options"] = list(d["options"])
        elif kind == "DeliberationConcluded":
            c["status"] = "concluded"
            c["conclusion"] = {"outcome": d["outcome"], "options": [o["id"] for o in d["options"]],
                               "summary_commitment": d["summary_commitment"], "meeting": d["meeting"],
                               "minutes": d["minutes"], "at": env["occurred_at"]}

    def result(self) -> dict[str, dict]:
        return {cid: dict(c, options=list(c["options"].values())) for cid, c in self.items.items()}


# --- 3 决策 ballots -------------------------------------------------------------------------------------

_BALLOT_STATUS = {"BallotPrepared": "prepared", "BallotConfigured": "configured", "BallotOpened": "open",
                  "BallotNotOpened": "prepared", "BallotClosed": "closed", "ResolutionAdopted": "adopted",
                  "ResolutionRejected": "rejected", "ResolutionAnnulled": "annulled", "BallotAnnulled": "annulled",
                  "ResolutionFinal": "final", "EmergencyDeclared": "emergency_declared"}
_VOTES = ("VoteCast", "VoteChanged")


class Ballots:
    def __init__(self, read: Callable[[dict], Mapping[str, Any]] = EVENTS.read) -> None:
        self.read = read
        self.items: dict[str, dict] = {}
        self.opened: dict[str, dict] = {}
        self.votes: dict[str, list[dict]] = {}
        self.reveals: dict[str, dict] = {}  # ballot -> (vote, version) -> reveal

    def apply(self, env: dict) -> None:
        kind, d, agg = env["type"], self.read(env), env["aggregate"]["id"]
        if kind in _VOTES:
            b = self.items.get(d["ballot"])
            if b is None:
                return
            if b["closed_at"] is not None:
                b["late_votes"] += 1  # recorded after BallotClosed: kept, not counted
            else:
                self.votes[d["ballot"]].append(vote_record(env))
            return
        if kind == "BallotPrepared":
            self.items[agg] = {"id": agg, "case": env.get("case"), "status": "prepared",
                               "consultation": d["consultation"], "proposal": d["proposal"],
                               "title_commitment": d["title_commitment"], "rerun_of": d["rerun_of"], "rerun": None,
                               "secret": None, "preset": None, "roll_hash": None, "roll_size": None,
                               "closed_at": None, "late_votes": 0, "recorded_result": None, "publicity_until": None,
                               "outcome": None, "objections": 0}
            self.votes[agg] = []
            return
        b = self.items.get(agg)
        if b is None:
            return
        if kind in _BALLOT_STATUS:
            b["status"] = _BALLOT_STATUS[kind]
        if kind == "BallotConfigured":
            b.update(secret=d["secret"], preset=d["rule"]["preset"])
        elif kind == "BallotOpened":
            self.opened[agg] = d
            b.update(roll_hash=d["roll_hash"], roll_size=len(d["roll"]), secret=d["secret"])
        elif kind == "BallotClosed":
            b["closed_at"] = d["closed_at"]
        elif kind == REVEAL_TYPE:
            self.reveals.setdefault(agg, {}).update(reveals_of(env))
        elif kind in ("ResolutionAdopted", "ResolutionRejected"):
            b.update(recorded_result=d["result"], publicity_until=d["publicity_until"])
        elif kind == "ResolutionFinal":
            b["outcome"] = d["outcome"]
        elif kind == "BallotRerun":
            b["rerun"] = d["rerun"]
        elif kind == "ObjectionLodged":
            b["objections"] += 1

    def result(self) -> dict[str, dict]:
        out = {}
        for bid, b in self.items.items():
            votes = self.votes[bid]
            counted = not b["secret"] or b["recorded_result"] is not None
            item = dict(b, votes=len(votes), voted=len({v["voter"] for v in votes}) if counted else None)
            if b["closed_at"] is not None and bid in self.opened:
                item.update(recount(self.opened[bid], votes, b["recorded_result"], self.reveals.get(bid)))
            out[bid] = item
        return out


def recount(opened: dict, votes: list[dict], recorded: dict | None, reveals: dict | None = None) -> dict:
    """A closed ballot counted again from its record with the shared rules, and how the count
    compares with the recorded resolution (None while none is recorded, or while a secret ballot's
    sealed votes wait for their reveal)."""
    try:
        counted = tally_record(opened, votes, reveals).to_dict()
    except rules.NotRevealed as exc:  # closed, not yet counted: nothing to compare
        return {"recount": None, "recount_error": str(exc), "matches_record": None, "differences": []}
    except rules.RulesError as exc:  # the record itself cannot be counted (e.g. its roll's hash is wrong)
        return {"recount": None, "recount_error": str(exc), "matches_record": False, "differences": []}
    if recorded is None:
        return {"recount": counted, "matches_record": None, "differences": []}
    diff = differences(recorded, counted)
    return {"recount": counted, "matches_record": not diff, "differences": diff}


# --- 4 行动 action plans -----------------------------------------------------------------------------------

class Plans:
    def __init__(self, read: Callable[[dict], Mapping[str, Any]] = EVENTS.read) -> None:
        self.read = read
        self.items: dict[str, dict] = {}
        self.evaluations: dict[str, dict] = {}  # Evaluation aggregate -> plan, round, current rating

    def apply(self, env: dict) -> None:
        kind, d, agg = env["type"], self.read(env), env["aggregate"]["id"]
        if kind == "ActionPlanOpened":
            self.items[agg] = {"id": agg, "case": d["case"], "basis": d["basis"], "status": "open", "scope": d["scope"],
                               "scope_id": d["scope_id"], "category": d["category"], "ballot": d["ballot"],
                               "consultation": d["consultation"], "proposal": d["proposal"], "tasks": {},
                               "round": 0, "result_commitment": None, "evaluation": None, "evaluations_closed": []}
            return
        if kind == "EvaluationGiven":
            self.evaluations[agg] = {"plan": d["plan"], "round": d["round"], "rating": d["rating"]}
            return
        if kind == "EvaluationChanged":
            if agg in self.evaluations:
                self.evaluations[agg]["rating"] = d["rating"]
            return
        p = self.items.get(agg)
        if p is None:
            return
        tasks = p["tasks"]
        if kind == "TaskAssigned":
            tasks[d["task"]] = {"task": d["task"], "title_commitment": d["title_commitment"], "due_at": d["due_at"],
                                "budget": d["budget"], "funding_source": d["funding_source"], "percent": 0,
                                "status": "open", "overdue": False}
        elif kind == "ProgressReported":
            tasks[d["task"]]["percent"] = d["percent"]
        elif kind == "TaskCompleted":
            tasks[d["task"]]["status"] = "completed"
        elif kind == "TaskOverdue":
            tasks[d["task"]]["overdue"] = True
        elif kind == "PlanReportedDone":
            p["round"] = d["round"]
        elif kind == "ResultDisclosed":
            p["result_commitment"] = d["summary_commitment"]
        elif kind == "EvaluationOpened":
            p["status"] = "evaluating"
            p["evaluation"] = {"round": d["round"], "closes_at": d["closes_at"], "denominator": d["denominator"],
                               "threshold": d["threshold"]}
        elif kind == "EvaluationClosed":
            p["evaluations_closed"].append({k: d[k] for k in ("round", "counts", "respondents", "outcome")})
            if d["outcome"] == "accepted":
                p["status"] = "closed"
        elif kind == "PlanReopened":
            p["status"] = "reopened"

    def result(self) -> dict[str, dict]:
        counts: dict[tuple[str, int], Counter] = {}
        for e in self.evaluations.values():
            counts.setdefault((e["plan"], e["round"]), Counter())[e["rating"]] += 1
        out = {}
        for pid, p in self.items.items():
            evaluation = None
            if p["evaluation"] is not None:
                current = counts.get((pid, p["evaluation"]["round"]), Counter())
                evaluation = dict(p["evaluation"], counts={r: current[r] for r in RATINGS})
            out[pid] = dict(p, tasks=list(p["tasks"].values()), evaluation=evaluation)
        return out


RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")


def ballot_summary(ballot: dict) -> dict[str, Any]:
    """The numbers people quote of a ballot's recount: participation and agreement."""
    r = ballot.get("recount") or {}
    keys = ("outcome", "eligible_area", "eligible_heads", "participating_area", "participating_heads",
            "agreeing_area", "agreeing_heads")
    return {k: r.get(k) for k in keys}
