"""The public record for auditors and the public, beyond the checkpoint page (pages_more.py): the
printable notice (公示) with a QR code to itself, an entry's inclusion proof as a file for
`consult audit verify-proof`, and the record replayed "as of" a chosen time.

The "as of" page reads the community's audit log through the API (GET …/audit/entries and
…/audit/checkpoints) and replays it here: the web service imports no service module, and
`services/audit/replay.py` lives in one (its full replay -- supports, votes recounted, evaluations --
stays `consult audit replay`'s). What the page needs is small: per case, the stages its events went
through and the status its stage's object had, counting the events that occurred at or before the
chosen time (`occurred_at <= at`, as `consult audit replay --at` counts them); the number of such
entries; and the latest checkpoint signed at or before that time."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from werkzeug.wrappers import Response

from .api import ApiError
from .app import Ctx, Refused, page
from .pages_more import public_url, qr_svg

PAGE = 1000  # the API's largest page of entries and of checkpoints
MAX_ENTRIES = 200_000  # a bound on what one page view reads (200 API calls)
STAGES = ("proposal", "deliberation", "decision", "action")
STAGE_OF_SOURCE = {"proposals": "proposal", "deliberation": "deliberation", "decisions": "decision",
                   "actions": "action"}
# The object whose status stands for its stage, and the status each of its events leaves it in
# (the same tables as services/audit/replay.py).
MAIN = {"proposal": "Proposal", "deliberation": "Consultation", "decision": "Ballot", "action": "ActionPlan"}
STATUS = {
    "ProposalDrafted": "draft", "ProposalSubmitted": "submitted", "ProposalCollectionOpened": "collecting",
    "ProposalQualified": "qualified", "ProposalExpired": "expired", "ProposalWithdrawn": "withdrawn",
    "ProposalMerged": "merged",
    "ConsultationOpened": "open", "DeliberationConcluded": "concluded",
    "BallotPrepared": "prepared", "BallotConfigured": "configured", "BallotOpened": "open",
    "BallotNotOpened": "prepared", "BallotClosed": "closed", "ResolutionAdopted": "adopted",
    "ResolutionRejected": "rejected", "ResolutionAnnulled": "annulled", "BallotAnnulled": "annulled",
    "ResolutionFinal": "final", "EmergencyDeclared": "emergency_declared",
    "ActionPlanOpened": "open", "EvaluationOpened": "evaluating", "PlanReopened": "reopened",
}


def say(message: str) -> str:
    """A message id (the catalogue tool finds it), translated where it is shown."""
    return message


# Statuses the shared code table (filters.CODES) does not name.
EXTRA_STATUS = {"screened": say("Screened (admitted)"), "evaluated": say("Evaluation closed")}
BAD_TIME = say("That is not a date and time we can read. Pick one with the field, e.g. 2026-05-01T09:30.")


# ---- reading the time ------------------------------------------------------------------------------
def parse_moment(value: str) -> datetime:
    """A chosen time: a datetime-local field's value (read as UTC, as the form says) or an RFC 3339
    time with its zone. Anything else is refused with a page saying so (422), never a 500."""
    text = (value or "").strip()
    if not text or len(text) > 40:
        raise Refused(422, BAD_TIME)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise Refused(422, BAD_TIME) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise Refused(422, BAD_TIME) from None


def instant(text: str | None) -> datetime | None:
    """A time the API gave (entries' occurred_at, checkpoints' time)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def field_value(moment: datetime) -> str:
    """The chosen time back in the datetime-local field (UTC, to the second)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# ---- reading the log through the API ---------------------------------------------------------------
def all_entries(ctx: Ctx) -> tuple[list[dict], int]:
    """Every entry of the community's log, in log order, and the log's size when read."""
    out: list[dict] = []
    size = None
    while size is None or len(out) < min(size, MAX_ENTRIES):
        got = ctx.api.get(ctx.c("/audit/entries"), **{"from": len(out), "limit": PAGE})
        size = got.get("size", 0)
        batch = got.get("entries", [])
        if not batch:
            break
        out.extend(batch)
    return out, size or 0


def all_checkpoints(ctx: Ctx) -> list[dict]:
    out: list[dict] = []
    while True:
        batch = ctx.api.get(ctx.c("/audit/checkpoints"), **{"from": len(out), "limit": PAGE})
        out.extend(batch)
        if len(batch) < PAGE:
            return out


def checkpoint_at(checkpoints: list[dict], at: datetime) -> dict | None:
    """The checkpoint in force at `at`: the latest one signed at or before it."""
    best = None
    for cp in checkpoints:
        signed = instant(cp.get("time"))
        if signed is not None and signed <= at and (best is None or cp.get("size", 0) >= best.get("size", 0)):
            best = cp
    return best


# ---- the replay ------------------------------------------------------------------------------------
def replay(entries: list[dict], at: datetime) -> dict:
    """The cases as the log tells them up to `at`: per case its stages, the stage it stood at and
    its stage's status, how many of its entries there were and the last one; and the log's count."""
    counted = 0
    last_index = None
    cases: dict[str, dict] = {}
    for e in entries:
        occurred = instant(e.get("occurred_at"))
        if occurred is None or occurred > at:
            continue
        counted += 1
        last_index = e["index"] if last_index is None else max(last_index, e["index"])
        case = e.get("case")
        if not case:
            continue
        c = cases.setdefault(case, {"case": case, "stages": [], "status": {}, "objects": {}, "entries": 0,
                                    "first": None, "last": None, "closed": None})
        c["entries"] += 1
        c["first"] = c["first"] or e
        c["last"] = e
        env = e.get("envelope") or {}
        data = env.get("data") or {}
        kind = e.get("type")
        stage = STAGE_OF_SOURCE.get(e.get("source", ""))
        if kind == "CaseClosed":
            c["closed"] = {"outcome": data.get("outcome"), "at": e.get("occurred_at"), "index": e["index"]}
            continue
        if stage is None:
            continue
        aggregate = env.get("aggregate") or {}
        if aggregate.get("type") != MAIN[stage]:
            continue
        if stage not in c["stages"]:
            c["stages"].append(stage)
        status = STATUS.get(kind)
        if kind == "ProposalScreened":
            status = "screened" if data.get("admissible") else "inadmissible"
        elif kind == "EvaluationClosed":
            status = "closed" if data.get("outcome") == "accepted" else "evaluated"
        if status is not None:
            c["status"][stage] = status
            c["objects"][stage] = aggregate.get("id")
    for c in cases.values():
        reached = [s for s in STAGES if s in c["stages"]]
        c["stages"] = reached
        c["stage"] = "closed" if c["closed"] else (reached[-1] if reached else None)
        c["at_stage"] = reached[-1] if reached else None
        c["stage_status"] = c["status"].get(c["at_stage"]) if c["at_stage"] else None
    ordered = sorted(cases.values(), key=lambda c: (c["first"]["occurred_at"], c["first"]["index"]))
    return {"entries": counted, "last_index": last_index, "cases": ordered}


def titles(ctx: Ctx) -> dict:
    """Case -> title, from the progress board (titles are texts; the log holds only their commitments)."""
    try:
        board = ctx.api.get(ctx.c("/board"))
    except ApiError as exc:
        if exc.status in (401,):
            raise
        return {}
    found = {}
    for items in (board.get("open_cases") or {}).values():
        for item in items:
            found[item["case"]] = item.get("title")
    for item in board.get("closed_cases") or []:
        found[item["case"]] = item.get("title")
    return found


# ---- pages -----------------------------------------------------------------------------------------
@page("/communities/<community>/audit/as-of")
def audit_as_of(ctx: Ctx, community: str):
    raw = ctx.request.args.get("at")
    if not (raw or "").strip():  # the form alone
        return ctx.render("audit_as_of.html", at=None, value="", result=None)
    at = parse_moment(raw)
    entries, size = all_entries(ctx)
    result = replay(entries, at)
    checkpoint = checkpoint_at(all_checkpoints(ctx), at)
    first = instant(entries[0]["occurred_at"]) if entries else None
    latest = max((instant(e["occurred_at"]) for e in entries if instant(e["occurred_at"])), default=None)
    names = titles(ctx) if result["cases"] else {}
    for c in result["cases"]:
        c["title"] = names.get(c["case"])
        c["status_label"] = ctx.t(EXTRA_STATUS[c["stage_status"]]) if c["stage_status"] in EXTRA_STATUS else None
    return ctx.render("audit_as_of.html", at=at, at_text=at.strftime("%Y-%m-%dT%H:%M:%SZ"), value=field_value(at),
                      result=result, checkpoint=checkpoint, size=size, before_first=first is not None and at < first,
                      after_latest=latest is not None and at >= latest, empty=not entries,
                      partial=size > len(entries))


@page("/communities/<community>/audit/notice")
def audit_notice(ctx: Ctx, community: str):
    """The latest checkpoint as a notice for the notice board, printable, with a QR code to this page."""
    notice = None
    try:
        notice = ctx.api.get(ctx.c("/audit/notice"), lang=ctx.lang)
    except ApiError as exc:
        if exc.status not in (404, 409, 422):
            raise
    link = f"{public_url(ctx)}/communities/{community}/audit/notice"
    name = ctx.api.get(ctx.c()).get("name")  # residents read the community's name, not its id, on the board
    return ctx.render("audit_notice.html", notice=notice, checkpoint=(notice or {}).get("checkpoint"),
                      qr=qr_svg(link), link=link, name=name)


@page("/communities/<community>/audit/entries/<int:index>/proof.json")
def audit_entry_proof(ctx: Ctx, community: str, index: int):
    """An entry's inclusion proof as the API gives it (a bundle), to save and check offline with
    `consult audit verify-proof` or any RFC 6962 tool."""
    query = {"index": index}
    size = ctx.request.args.get("size", "")
    if size:
        if not size.isdigit() or len(size) > 12:
            raise Refused(422, "Some of what you entered is not valid.")
        query["size"] = int(size)
    bundle = ctx.api.get(ctx.c("/audit/proofs/inclusion"), **query)
    body = json.dumps(bundle, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(body, content_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="entry-{index}-proof.json"'})
