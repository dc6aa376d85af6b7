"""A community built through the gateway as its workers would build it: the directory from a real
CSV file, owners with sign-in tokens, residents signed in from invitations, owners' ballots opened
after their notice period, and proposals collecting support. Every step is timed, for the
directory set-up figures, and each uses `clients` concurrent HTTP clients.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from bench.load import run_clients
from services.common import clock
from services.contracts.communities import MAX_INVITATIONS

OWNERS_NOTICE = timedelta(days=15, minutes=5)  # the owners' rules' notice period, and a little more
VOTING = timedelta(days=7)
# Nothing qualifies by accident: a qualified proposal stops collecting support.
NEVER_QUALIFIES = {"support_threshold": {level: {"unit": "residents", "count": 1_000_000}
                                         for level in ("community", "compound", "building")}}


class SetupError(RuntimeError):
    """The platform refused or failed a set-up step; the benchmark cannot go on without it."""


@dataclass
class Member:
    person: str
    token: str
    household: str | None = None


@dataclass
class Community:
    platform: object
    id: str
    worker: str
    token: str
    owners: list[Member] = field(default_factory=list)
    residents: list[Member] = field(default_factory=list)
    households: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"/api/v1/communities/{self.id}"

    def api(self, method: str, path: str, body=None, token: str | None = None, expect: int | None = None, **kw):
        for _ in range(3 if method == "GET" else 1):  # a read may be retried when a busy service timed out
            resp = self.platform.api(method, self.base + path, token or self.token, body, **kw)
            if resp.status_code < 500:
                break
        if expect is not None and resp.status_code != expect:
            raise SetupError(f"{method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp


def community(platform, name: str) -> Community:
    c = platform.new_community(name, rules=NEVER_QUALIFIES)
    return Community(platform, c["id"], c["worker"], c["token"])


def csv_rows(first: int, count: int) -> str:
    """Households numbered first.. as CSV rows: 50 units a building, 20 buildings a compound."""
    rows = []
    for k in range(first, first + count):
        rows.append(f"{k // 1000 + 1}号院,{k // 50 + 1}栋,{k % 50 + 101},{60 + k % 61}.{k % 10}0,业主{k}")
    return "compound,building,unit,area,owners\n" + "\n".join(rows) + "\n"


def _parallel(items: list, clients: int, send, what: str) -> list:
    # Each client thread is waited for up to a second per item: the default minute per thread ended
    # the 10,000 sign-ins of a full set-up run while one was still to go ("not sent").
    outcomes = run_clients(items, clients, send, lambda item, resp: None, retries=0, timeout=max(60.0, len(items)))
    failed = [o for o in outcomes if not o.accepted]
    if failed:
        last = failed[0].attempts[-1] if failed[0].attempts else None
        raise SetupError(f"{len(failed)} of {len(items)} {what} failed; first: "
                         f"{last.status if last else 'not sent'} {last.error if last else ''}")
    return [o.body for o in outcomes]


def _household_count(c: Community) -> int:
    return len(c.api("GET", "/directory", expect=200).json()["households"])


def follow_import(c: Community, accepted: requests.Response, timeout: float = 600) -> requests.Response:
    """Read an import's job (a 202's Location) until it ends; answers a stand-in response: 201 with
    the result when done, else the job's problem status with the job."""
    location = accepted.headers["Location"]
    deadline = time.monotonic() + timeout
    while True:
        resp = c.platform.api("GET", location, c.token)
        job = resp.json() if resp.status_code == 200 else None
        if job is not None and job["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
            continue
        if job is not None and job["status"] == "done":
            resp.status_code, resp._content = 201, json.dumps(job["result"]).encode()
        elif job is not None:
            resp.status_code = (job.get("problem") or {}).get("status", 504 if job["status"] == "running" else 500)
        return resp


def import_directory(c: Community, households: int, chunk: int) -> dict:
    """Import `households` rows in files of `chunk` rows through the gateway (text/csv).

    A file answered with a 5xx may still have been imported (the service finished after the
    gateway gave up waiting): the directory is then checked, and the file counted as committed
    despite the error; a file that really failed is sent once more."""
    statuses: dict[str, int] = {}
    committed_despite_error = 0
    started = time.monotonic()
    for first in range(0, households, chunk):
        body = csv_rows(first, min(chunk, households - first)).encode()
        for attempt in (1, 2):
            t = time.monotonic()
            resp = c.api("POST", "/directory/import", data=body, headers={"Content-Type": "text/csv"})
            statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1
            if resp.status_code == 202:  # not done within the gateway's wait: follow its job
                resp = follow_import(c, resp)
                statuses[f"202 then {resp.status_code}"] = statuses.get(f"202 then {resp.status_code}", 0) + 1
            if resp.status_code == 201:
                break
            if resp.status_code < 500 or attempt == 2:
                raise SetupError(f"a {chunk}-row import answered {resp.status_code} after "
                                 f"{time.monotonic() - t:.1f} s: {resp.text[:300]}")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and _household_count(c) < first + chunk:
                time.sleep(1)
            if _household_count(c) >= min(first + chunk, households):
                committed_despite_error += 1
                break
    elapsed = time.monotonic() - started
    directory = c.api("GET", "/directory", expect=200).json()
    c.households = [h["id"] for h in directory["households"]]
    owners = {h["id"]: h["owners"][0] for h in directory["households"] if h["owners"]}
    c.owners = [Member(person, "", household) for household, person in owners.items()]
    c.timings["import"] = {"households": households, "files": -(-households // chunk), "rows_per_file": chunk,
                           "seconds": elapsed, "per_s": households / elapsed, "statuses": statuses,
                           "committed_despite_an_error": committed_despite_error}
    return c.timings["import"]


def owner_tokens(c: Community, clients: int) -> dict:
    """A token for every imported owner. Through the API only a platform administrator may issue a
    token for someone else (a worker gives access by invitation, which registers a new resident)."""
    admin = c.platform.admin_token

    def send(session: requests.Session, owner: Member):
        return session.post(f"{c.platform.url}{c.base}/people/{owner.person}/tokens", json={"days": 90},
                            headers={"Authorization": f"Bearer {admin}"}, timeout=60)

    started = time.monotonic()
    bodies = _parallel(c.owners, clients, send, "owner tokens")
    for owner, body in zip(c.owners, bodies):
        owner.token = body["token"]
    elapsed = time.monotonic() - started
    c.timings["owner_tokens"] = {"count": len(c.owners), "seconds": elapsed, "per_s": len(c.owners) / elapsed}
    return c.timings["owner_tokens"]


INVITATIONS_PER_REQUEST = MAX_INVITATIONS  # as many as one request may issue


def invite_residents(c: Community, clients: int, count: int | None = None) -> dict:
    """An invitation per household, as a worker issues them for letterbox slips (a request per
    5,000 households), each then redeemed (sign-in) by a resident living there, `clients` at once."""
    households = c.households[:count] if count is not None else c.households

    def sign_in(session: requests.Session, code: str):
        return session.post(f"{c.platform.url}/api/v1/sign-in", json={"code": code, "name": f"居民 {code[:6]}"},
                            timeout=60)

    started = time.monotonic()
    by_household: dict[str, str] = {}
    for i in range(0, len(households), INVITATIONS_PER_REQUEST):
        made = c.api("POST", "/invitations/batch", {"households": households[i:i + INVITATIONS_PER_REQUEST],
                                                    "days": 30}, expect=201).json()
        by_household.update({inv["household"]: inv["code"] for inv in made["invitations"]})
    codes = [by_household[h] for h in households]
    invited = time.monotonic()
    signed = _parallel(codes, clients, sign_in, "sign-ins")
    ended = time.monotonic()
    c.residents += [Member(b["person"], b["token"], h) for b, h in zip(signed, households)]
    c.timings["invitations"] = {"count": len(codes), "seconds": invited - started,
                                "per_s": len(codes) / (invited - started)}
    c.timings["sign_ins"] = {"count": len(codes), "seconds": ended - invited, "per_s": len(codes) / (ended - invited)}
    return c.timings


def prepare_owners_ballot(c: Community, title: str, now: datetime) -> str:
    """An owners' ballot of the whole community, noticed now, opening after the notice period."""
    ballot = c.api("POST", "/ballots", {"title": title, "scope": "community"}, expect=201).json()["id"]
    opens = now + OWNERS_NOTICE
    c.api("PUT", f"/ballots/{ballot}/configuration", {
        "preset": "owners_ordinary", "voting_unit": "owner", "opens_at": clock.format(opens),
        "closes_at": clock.format(opens + VOTING)}, expect=200)
    return ballot


def wait_open(c: Community, ballots: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ballots)
    while pending and time.monotonic() < deadline:
        for b in list(pending):
            if c.api("GET", f"/ballots/{b}", expect=200).json()["status"] == "open":
                pending.discard(b)
        time.sleep(0.5)
    if pending:
        raise SetupError(f"{len(pending)} ballots did not open within {timeout:.0f} s")


def open_proposal(c: Community, author: Member, title: str) -> str:
    """A community-wide proposal collecting support (drafted, submitted, screened admissible)."""
    pid = c.api("POST", "/proposals", {"title": title, "body": "每逢雨季院坝排水沟堵塞，一楼进水。", "category": "drainage",
                                       "scope": "community", "scope_id": None}, token=author.token, expect=201).json()["id"]
    c.api("POST", f"/proposals/{pid}/submit", token=author.token, expect=200)
    view = c.api("POST", f"/proposals/{pid}/screen", {"admissible": True}, expect=200).json()
    if view["status"] != "collecting":
        raise SetupError(f"the proposal is {view['status']}, not collecting")
    return pid


# -- the two requests measured --------------------------------------------------------------------

def _headers(token: str, idempotency_key: str | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def vote_sender(c: Community, ballot: str, choice: str = "agree", keyed: bool = False):
    """With `keyed`, each voter's request carries an Idempotency-Key that its retries repeat."""
    url = f"{c.platform.url}{c.base}/ballots/{ballot}/votes"

    def send(session: requests.Session, voter: Member):
        return session.post(url, json={"choice": choice},
                            headers=_headers(voter.token, f"vote-{ballot}-{voter.person}" if keyed else None),
                            timeout=60)

    def key(voter: Member, resp) -> tuple:
        return ("vote", ballot, voter.person)

    return send, key


def support_sender(c: Community, proposal: str, keyed: bool = False):
    url = f"{c.platform.url}{c.base}/proposals/{proposal}/supports"

    def send(session: requests.Session, resident: Member):
        return session.post(url, headers=_headers(resident.token,
                                                  f"support-{proposal}-{resident.person}" if keyed else None),
                            timeout=60)

    def key(resident: Member, resp) -> tuple:
        return ("support", proposal, resident.person)

    return send, key
