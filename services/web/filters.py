"""Template filters: dates in the reader's language, and the platform's codes (stages, statuses,
roles, categories) as words from the catalogues."""
from __future__ import annotations

from datetime import datetime, timezone

from jinja2 import Environment

# Codes the API returns, and the message ids that name them (every one is in both catalogues).
CODES = {
    # stages of the 1+4+N flow
    "proposal": "Proposal", "deliberation": "Deliberation", "decision": "Decision", "action": "Action",
    "closed": "Closed",
    # proposal statuses
    "draft": "Draft", "submitted": "Submitted (awaiting screening)", "inadmissible": "Not admitted",
    "collecting": "Collecting support", "qualified": "Qualified", "expired": "Expired", "withdrawn": "Withdrawn",
    "merged": "Merged",
    # consultation, meeting, ballot, plan statuses
    "open": "Open", "opened": "In session", "concluded": "Concluded", "scheduled": "Scheduled", "held": "Held", "cancelled": "Cancelled",
    "prepared": "Prepared", "configured": "Announced", "adopted": "Adopted", "rejected": "Rejected",
    "final": "Final", "annulled": "Annulled", "in_progress": "In progress", "evaluating": "Being evaluated",
    "completed": "Completed", "follow_up": "Follow-up opened", "emergency_declared": "Emergency declared",
    # scopes
    "community": "Whole community", "compound": "Compound", "building": "Building",
    # categories
    "drainage": "Drainage", "green_space": "Green space", "parking": "Parking", "safety": "Safety",
    "sanitation": "Sanitation", "other": "Other",
    # stances, ratings
    "for": "For", "against": "Against", "neutral": "Neutral", "question": "Question",
    "satisfied": "Satisfied", "basically_satisfied": "Basically satisfied", "unsatisfied": "Unsatisfied",
    # roles
    "resident": "Resident", "community_worker": "Community worker", "party_lead": "Party-committee lead",
    "grid_leader": "Grid leader", "building_leader": "Building leader", "property_company": "Property company",
    "expert": "Expert", "auditor": "Auditor", "owners_committee": "Owners' committee",
    "council_member": "Council member", "moderator": "Moderator", "facilitator": "Facilitator",
    # vote choices of majority presets
    "agree": "Agree", "disagree": "Disagree", "abstain": "Abstain",
    # ballot presets and methods
    "owners_ordinary": "Owners, ordinary matter (Civil Code art. 278)",
    "owners_major": "Owners, major matter (Civil Code art. 278)", "residents_meeting": "Residents' meeting",
    "council": "Residents' council", "generic": "General vote", "majority": "Majority", "supermajority":
    "Supermajority", "consent": "Consent (objections block)", "approval": "Approval", "schulze": "Ranking (Schulze)",
    "irv": "Ranking (instant runoff)", "score": "Scores",
    # voting units
    "owner": "Owners", "household": "Households",
    # meetings, task parties and funding
    "on_site": "On site", "online": "Online", "reopened": "Reopened", "accepted": "Accepted",
    "community_committee": "Residents' committee", "volunteer_team": "Volunteer team", "contractor": "Contractor",
    "maintenance_fund": "Maintenance fund", "public_service_fund": "Public service fund", "government": "Government",
    "owners": "Owners", "donation": "Donation", "paper": "On paper", "convener": "Convener", "proxy": "By a proxy", "emergency": "Emergency repair (no vote)", "block": "Block", "vote_needed": "A vote is needed",
    "agreed": "Agreed without a vote",
}


def code(value, t) -> str:
    if value is None:
        return "—"
    msg = CODES.get(str(value))
    return t(msg) if msg else str(value)


def when(value, lang: str) -> str:
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return str(value)
    if lang == "zh-CN":
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M} UTC"
    return f"{moment:%d %b %Y, %H:%M} UTC"


def install(env: Environment, lang: str, t) -> None:
    env.filters["code"] = lambda v: code(v, t)
    env.filters["when"] = lambda v: when(v, lang)
    env.filters["short"] = lambda v: (str(v)[:8] if v else "—")
