"""Load through the gateway, counted where it counts: in the community's audit log.

A request is *accepted* when the gateway answers 2xx, and *audited* when the audit log of its
community holds its event. `AuditWatcher` follows the log through the audit entries API and notes
when each vote (by ballot and voter) and each support (by proposal and supporter) first appears there,
and how often: an entry seen twice is a duplicate. `run_clients` sends work items from a number of
client threads (each with its own HTTP session) and records every attempt: a client that gets a
5xx, a timeout or a broken connection may retry, as a person pressing the button again would.

Works with real threads (the test suite) and with eventlet's green threads (`consult bench`).
"""
from __future__ import annotations

import queue
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import requests

# What a vote and a support are in the audit log, and the key that ties an entry to the request
# that caused it: a voter on a ballot, a supporter on a proposal. One key, one entry: a second is
# a changed vote or a support given again that nobody asked for (the benchmark never retries).
VOTE_TYPES = ("VoteCast", "VoteChanged")
SUPPORT_TYPES = ("SupportGiven", "SupportGivenAgain")


def entry_key(envelope: dict) -> tuple | None:
    """The request key of an audit entry (None for entries that are neither a vote nor a support)."""
    kind, data = envelope["type"], envelope.get("data") or {}
    if kind in VOTE_TYPES:  # the voter is the actor of an open ballot's vote ("sealed" on a secret one)
        return ("vote", data.get("ballot"), envelope.get("actor"))
    if kind in SUPPORT_TYPES:
        return ("support", data.get("proposal"), envelope.get("actor"))
    return None


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))]


class AuditWatcher:
    """Follows one community's audit log through the gateway, recording the first time each key is
    seen and how many entries carry it. Start it before the load; stop it when done."""

    def __init__(self, base_url: str, community: str, token: str, interval: float = 0.3):
        self.url = f"{base_url}/api/v1/communities/{community}/audit/entries"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.interval = interval
        self.next_index = 0
        self.first_seen: dict[tuple, float] = {}
        self.counts: Counter = Counter()
        self.types: Counter = Counter()
        self.event_ids: Counter = Counter()
        self.aggregates: set[str] = set()
        self.envelopes: dict[tuple, list[dict]] = {}  # the entries behind each key, for reports
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, from_index: int | None = None) -> "AuditWatcher":
        self.next_index = self.size() if from_index is None else from_index
        self._thread = threading.Thread(target=self._run, name="audit-watcher", daemon=True)
        self._thread.start()
        return self

    def size(self) -> int:
        resp = requests.get(self.url, params={"from": 0, "limit": 1}, headers=self.headers, timeout=30)
        resp.raise_for_status()
        return resp.json()["size"]

    def poll(self) -> int:
        """Read what is new; returns the number of entries read."""
        read = 0
        session = requests.Session()
        while True:
            resp = session.get(self.url, params={"from": self.next_index, "limit": 1000}, headers=self.headers,
                               timeout=30)
            resp.raise_for_status()
            entries = resp.json()["entries"]
            now = time.monotonic()
            with self._lock:
                for e in entries:
                    env = e["envelope"]
                    self.types[env["type"]] += 1
                    self.event_ids[env["id"]] += 1
                    self.aggregates.add(env["aggregate"]["id"])
                    key = entry_key(env)
                    if key is not None:
                        self.counts[key] += 1
                        self.first_seen.setdefault(key, now)
                        self.envelopes.setdefault(key, []).append(env)
                    self.next_index = e["index"] + 1
            read += len(entries)
            if len(entries) < 1000:
                return read

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the gateway or audit may be down (fault injection): poll again
                self.errors += 1
            self._stop.wait(self.interval)

    def wait_quiet(self, quiet: float = 1.5, timeout: float = 300) -> bool:
        """Wait until the log has not grown for `quiet` seconds: a run then starts on an audit
        consumer that is not still working off an earlier backlog (the set-up's, say)."""
        deadline = time.monotonic() + timeout
        last, since = self.next_index, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if self.next_index != last:
                last, since = self.next_index, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return True
        return False

    def wait_for(self, keys, timeout: float) -> bool:
        """Wait until every key has been seen (True) or the time is up (False)."""
        keys = set(keys)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if keys <= self.first_seen.keys():
                    return True
            time.sleep(0.1)
        with self._lock:
            return keys <= self.first_seen.keys()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=35)
        try:
            self.poll()  # whatever arrived since the last tick
        except Exception:  # noqa: BLE001
            self.errors += 1


class AuditWatchers:
    """Several communities' AuditWatchers read as one (a run spread over cells: each community's
    log is kept by its own cell's audit service): the keys seen in any of them, counted together."""

    def __init__(self, watchers: list[AuditWatcher]):
        self.watchers = watchers

    @property
    def first_seen(self) -> dict:
        return {k: v for w in self.watchers for k, v in w.first_seen.items()}

    @property
    def counts(self) -> Counter:
        return sum((w.counts for w in self.watchers), Counter())

    def start(self) -> "AuditWatchers":
        for w in self.watchers:
            w.start()
        return self

    def wait_quiet(self) -> bool:
        return all([w.wait_quiet() for w in self.watchers])

    def wait_for(self, keys, timeout: float) -> bool:
        keys = set(keys)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if keys <= self.first_seen.keys():
                return True
            time.sleep(0.1)
        return keys <= self.first_seen.keys()

    def stop(self) -> None:
        for w in self.watchers:
            w.stop()


@dataclass
class Attempt:
    started: float
    ended: float
    status: int | None  # None: a timeout or a broken connection
    error: str | None = None


@dataclass
class Outcome:
    """One work item: every attempt, and the key its audit entry will carry (once known)."""
    item: object
    attempts: list[Attempt] = field(default_factory=list)
    key: tuple | None = None
    body: dict | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].status is not None and 200 <= self.attempts[-1].status < 300

    @property
    def latency(self) -> float | None:
        """From the first attempt to the answer that settled it (the client's view of a retry)."""
        return self.attempts[-1].ended - self.attempts[0].started if self.attempts else None


def run_clients(items: list, clients: int, send: Callable[[requests.Session, object], requests.Response],
                key_of: Callable[[object, requests.Response], tuple | None], *, retries: int = 0,
                retry_if: Callable[[requests.Response | None], bool] | None = None, retry_for: float | None = None,
                timeout: float = 60,
                barrier: bool = False, stop: threading.Event | None = None, pause: float = 0.0) -> list[Outcome]:
    """Send every item once from `clients` threads, retrying what `retry_if` says (a 5xx or no
    answer, by default) up to `retries` times or, with `retry_for`, for that many seconds; returns
    the outcomes in the order of `items`. With `barrier` every client waits until all are connected and ready,
    then all fire at once (a burst: use as many clients as items). `stop` ends the run early (the
    items not taken are left without attempts); `pause` is a wait after each request (a steady
    load rather than as fast as possible)."""
    retry_if = retry_if or (lambda resp: resp is None or resp.status_code >= 500)
    work: queue.Queue = queue.Queue()
    outcomes = [Outcome(item) for item in items]
    for o in outcomes:
        work.put(o)
    gate = threading.Barrier(clients) if barrier else None

    def client() -> None:
        session = requests.Session()
        if gate is not None:
            try:
                gate.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
        while not (stop is not None and stop.is_set()):
            try:
                o = work.get_nowait()
            except queue.Empty:
                return
            first = time.monotonic()
            for attempt in range(10**6):
                started = time.monotonic()
                try:
                    resp = send(session, o.item)
                except requests.RequestException as exc:
                    o.attempts.append(Attempt(started, time.monotonic(), None, type(exc).__name__))
                    session = requests.Session()  # a broken connection: a new one, as a browser would
                    resp = None
                else:
                    o.attempts.append(Attempt(started, time.monotonic(), resp.status_code,
                                              None if resp.ok else resp.text[:300]))
                    if resp.ok:
                        o.body = resp.json() if resp.content else None
                        o.key = key_of(o.item, resp)
                if not retry_if(resp) or (attempt >= retries if retry_for is None
                                          else time.monotonic() - first >= retry_for):
                    break
                time.sleep(0.2)
            if pause:
                time.sleep(pause)

    threads = [threading.Thread(target=client, name=f"client-{i}", daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return outcomes


def summarise(outcomes: list[Outcome], watcher: AuditWatcher | None, started: float) -> dict:
    """accepted/s, audited/s, latency quantiles and errors of one run (times in seconds)."""
    tried = [o for o in outcomes if o.attempts]
    accepted = [o for o in tried if o.accepted]
    latencies = [o.latency for o in accepted]
    errors = Counter()
    for o in tried:
        for a in o.attempts:
            if a.status is None or a.status >= 400:
                errors[str(a.status or a.error)] += 1
    last_answer = max((o.attempts[-1].ended for o in accepted), default=started)
    out = {
        "requests": len(tried), "accepted": len(accepted), "errors": sum(errors.values()), "error_kinds": dict(errors),
        "seconds": last_answer - started,
        "accepted_per_s": len(accepted) / (last_answer - started) if accepted else 0.0,
        "p50_s": percentile(latencies, 0.50), "p95_s": percentile(latencies, 0.95),
        "p99_s": percentile(latencies, 0.99), "max_s": max(latencies, default=None),
        "mean_s": statistics.fmean(latencies) if latencies else None,
    }
    if watcher is not None:
        keys = [o.key for o in accepted if o.key is not None]
        seen = [watcher.first_seen[k] for k in keys if k in watcher.first_seen]
        last_audited = max(seen, default=started)
        lags = [watcher.first_seen[o.key] - o.attempts[-1].ended for o in accepted if o.key in watcher.first_seen]
        out.update({
            "audited": len(seen),
            "audited_per_s": len(seen) / (last_audited - started) if seen else 0.0,
            "duplicated": sum(1 for k in keys if watcher.counts.get(k, 0) > 1),
            "audit_lag_p50_s": percentile(lags, 0.5), "audit_lag_p99_s": percentile(lags, 0.99),
            "audit_complete_after_s": (last_audited - last_answer) if seen else None,
        })
    return out
