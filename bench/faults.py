"""Fault injection under load: nothing acknowledged may be lost, doubled or invented.

Votes and supports flow steadily through the gateway from a few clients, each of which retries a
5xx, a timeout or a broken connection (as a person pressing the button again would, with the same
Idempotency-Key) until it gets a definitive answer. Meanwhile one fault is injected:

  kill:<service>         kill -9 one service process, then start it again
  broker-connections     close every connection of the platform's own RabbitMQ vhost
                         (`rabbitmqctl close_all_connections --vhost`; the shared server stays up)
  postgres-backends      terminate the platform's own PostgreSQL backends (pg_terminate_backend on
                         its application_name; the shared server stays up)
  poison-message         publish, into the audit consumer's queue for decisions, a message that is
                         not an event of the log: a malformed body, and an envelope forged at the
                         log's next position
  broker-restart         stop and start the RabbitMQ server itself: only with
                         `consult bench --faults --restart-broker`, on a machine of your own

Afterwards, for every request acknowledged to a client (a 2xx, or a 409 "already recorded": an
earlier execution of the same request had committed), the community's audit log is read:

  lost          acknowledged, but not in the audit log (or not counted by the stage) 30 s later
  duplicated    recorded twice: two votes cast by one voter, two supports given, an event id twice
  unexpected    in the audit log, or counted by the stage, but explained by no acknowledged request
  executed twice  a vote changed (support given again) though its client sent the request once:
                the platform executed one request twice (must be 0: a redelivered RPC request is
                answered its first reply, services/common/idempotency.py)
  changed by retry  a client's retry of a request that had committed changed the record (must be 0:
                the retry carries the same Idempotency-Key and is answered the first reply)
  recovered     answered after at least one failed attempt
  failed        never answered definitively (the client gave up after 60 s)

with the time from the fault until clients are answered again and until the record is complete,
whether a message was parked (holding a stream until a person runs `consult dlq`), and how many
messages were rejected (no event of their source's log: set aside, holding nothing).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bench import world
from bench.load import AuditWatcher, Outcome, run_clients

RECOVERY_LIMIT_S = 30.0
REQUEST_DEADLINE_S = 60.0


def close_broker_connections(vhost: str) -> None:
    """Close every connection of one vhost; refuses any vhost that is not a test platform's."""
    if not vhost.startswith("consult-test-"):
        raise ValueError(f"refusing to close the connections of {vhost!r}: not a test platform's vhost")
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "--limit", "10000",
                    "consult fault injection"], check=True, capture_output=True, timeout=60)


def terminate_postgres_backends(url: str, application_name: str) -> int:
    """Terminate the backends of one platform (by the application_name its processes connect with)."""
    import psycopg

    if not application_name.startswith("consult-"):
        raise ValueError(f"refusing to terminate backends named {application_name!r}")
    with psycopg.connect(url, autocommit=True, application_name="consult-fault-injector") as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                            (application_name,)).fetchall()
    return len(rows)


def restart_broker() -> None:
    """Stop and start the RabbitMQ server: every user of it sees the outage. Never in the test suite."""
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)


QUIET_SOURCE = "deliberation"  # no load writes to it, so the log's next position stays free


def _audit_queue(p, source: str):
    from unittest import mock

    from services.common import bus, config

    with mock.patch.dict(os.environ, {"CONSULT_PREFIX": p.prefix, "CONSULT_AMQP_URI": p.env["CONSULT_AMQP_URI"]}):
        settings = config.load()
    return settings, bus.consumer_queue(settings, "audit", source)


def _publish(p, source: str, bodies: list[bytes]) -> None:
    from kombu import Connection

    _settings, queue = _audit_queue(p, source)
    with Connection(p.env["CONSULT_AMQP_URI"]) as conn:
        producer = conn.Producer()
        for body in bodies:
            producer.publish(body, exchange="", routing_key=queue.name, content_type="application/json",
                             delivery_mode=2)


def _next_envelope(p, community: str, source: str, **changes) -> dict:
    """An envelope of `source` at its log's next position, naming no real event."""
    from services.common import envelope

    head = p.rpc(source, "log_head")
    env = {"schema": envelope.SCHEMA, "id": str(uuid.uuid4()), "source": source, "position": head + 1,
           "type": "VoteCast", "event_version": 1, "community": community,
           "aggregate": {"type": "Vote", "id": str(uuid.uuid4()), "version": 1},
           "occurred_at": "2026-01-01T00:00:00.000000Z", "actor": "fault-injector", "case": None,
           "causation": None, "data": {}}
    env.update(changes)
    return env


def publish_poison(p, community: str) -> None:
    """Messages the audit consumer cannot handle, into its queue for a quiet source: bytes that are
    no JSON, and an envelope at the log's next position that cannot be stored (a float in its data,
    which canonical JSON refuses). The log holds neither: the consumer sets both aside (`consult dlq
    list` shows them as rejected), holds nothing and goes on."""
    poison = _next_envelope(p, community, QUIET_SOURCE, data={"weight": 0.5})
    _publish(p, QUIET_SOURCE, [b"{this is not an envelope", json.dumps(poison).encode()])


def publish_forged(p, community: str) -> None:
    """A well-formed envelope at the log's next position that is no event of the log: the audit log
    must not take it in (and, having taken it, it would skip the real event at that position); the
    consumer checks it against the log and sets it aside."""
    forged = _next_envelope(p, community, QUIET_SOURCE, data={"forged": "not an event of the log"})
    _publish(p, QUIET_SOURCE, [json.dumps(forged).encode()])


def purge_parked(p) -> None:
    """Clean up after a scenario that parked or rejected a message (`consult dlq` can only put a
    parked message back): the parked and rejected queues are emptied here."""
    from kombu import Connection

    from services.common import bus, registry

    settings, _queue = _audit_queue(p, QUIET_SOURCE)
    with Connection(p.env["CONSULT_AMQP_URI"]) as conn:
        channel = conn.channel()
        for consumer, sources in registry.SUBSCRIPTIONS.items():
            for source in sources:
                for queue in (bus.parked_queue, bus.rejected_queue):
                    try:
                        queue(settings, consumer, source)(channel).purge()
                    except Exception:  # noqa: BLE001 - a queue never declared
                        channel = conn.channel()


@dataclass
class FaultWorld:
    """A community under test: owners with tokens, signed-in residents, a ballot per scenario."""
    p: object
    community: world.Community
    ballots: list[str]
    app_name: str
    results: list[dict] = field(default_factory=list)
    used: int = 0

    def next_ballot(self) -> int:
        """The index of a ballot no scenario has used (each voter votes once per ballot)."""
        if self.used >= len(self.ballots):
            raise RuntimeError(f"all {len(self.ballots)} ballots of this world are used: build it with more")
        self.used += 1
        return self.used - 1

    @classmethod
    def build(cls, p, scenarios: int, members: int = 60, clients: int = 6) -> "FaultWorld":
        c = world.community(p, "fault injection")
        world.import_directory(c, members, members)
        now = datetime.now(timezone.utc)
        ballots = [world.prepare_owners_ballot(c, f"scenario {i}", now) for i in range(scenarios)]
        p.set_clock((now + world.OWNERS_NOTICE + timedelta(minutes=1)).replace(microsecond=0))
        world.wait_open(c, ballots)
        world.owner_tokens(c, clients)
        world.invite_residents(c, clients)
        return cls(p, c, ballots, p.env.get("PGAPPNAME", ""))


def _retry_if(resp) -> bool:
    return resp is None or resp.status_code >= 500


def _settle(o: Outcome, kind: str, target: str) -> None:
    """A 409 "already recorded" means an earlier execution of this very request committed (every
    member sends one request per ballot or proposal): the client retried one that had committed,
    or the platform executed its only attempt twice. Either way it is recorded; its key is known."""
    if o.accepted or not o.attempts or o.attempts[-1].status != 409:
        return
    member: world.Member = o.item
    o.key, o.body = (kind, target, member.person), {"settled_by": 409}


def scenario(fw: FaultWorld, name: str, inject, index: int, *, vote_clients: int = 2, support_clients: int = 2,
             warmup: float = 1.5, after: float = 1.5, linger: float = 1.0) -> dict:
    """Steady load, one fault, then the count."""
    import threading

    c = fw.community
    ballot = fw.ballots[index]
    proposal = world.open_proposal(c, c.residents[-1], f"scenario {name}")
    watcher = AuditWatcher(fw.p.url, c.id, c.token, interval=0.3).start()
    stop = threading.Event()
    # Each request carries an Idempotency-Key its retries repeat, as a client that retries should.
    send_vote, key_vote = world.vote_sender(c, ballot, keyed=True)
    send_support, key_support = world.support_sender(c, proposal, keyed=True)
    results: dict[str, list[Outcome]] = {}

    def load(kind, members, clients, send, key):
        results[kind] = run_clients(members, clients, send, key, retry_for=REQUEST_DEADLINE_S, retry_if=_retry_if,
                                    stop=stop, pause=0.1, timeout=REQUEST_DEADLINE_S * 3)

    threads = [threading.Thread(target=load, args=("vote", c.owners, vote_clients, send_vote, key_vote), daemon=True),
               threading.Thread(target=load, args=("support", c.residents[:-1], support_clients, send_support,
                                                   key_support), daemon=True)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    fault_started = time.monotonic()
    injected = inject() or {}
    probes = injected.get("probes", [])  # aggregates the fault's own follow-up created: audited too
    fault_ended = time.monotonic()
    time.sleep(after)
    stop.set()
    for t in threads:
        t.join(REQUEST_DEADLINE_S * 3)
    answered = time.monotonic()
    for kind, target in (("vote", ballot), ("support", proposal)):
        for o in results.get(kind, []):
            _settle(o, kind, target)
    outcomes = [o for kind in ("vote", "support") for o in results.get(kind, []) if o.attempts]
    expected = {o.key for o in outcomes if o.key is not None}
    watcher.wait_for(expected, RECOVERY_LIMIT_S + max(0.0, answered - fault_started))
    deadline = time.monotonic() + RECOVERY_LIMIT_S
    while not set(probes) <= watcher.aggregates and time.monotonic() < deadline:
        time.sleep(0.2)
    lost_probes = set(probes) - watcher.aggregates
    time.sleep(linger)  # anything unexpected that was about to arrive
    watcher.stop()
    # This scenario's votes and supports, and any vote or support entry that names no ballot or
    # proposal at all (a forged message the audit log took for an event).
    mine = {k for k in watcher.counts if k[1] in (ballot, proposal, None)}
    lost = expected - set(watcher.first_seen)
    board = c.api("GET", f"/ballots/{ballot}/board?limit=1000", expect=200).json()["entries"]
    supports = c.api("GET", f"/proposals/{proposal}", expect=200).json()["supports"]
    n_votes = len([k for k in expected if k[0] == "vote"])
    n_supports = len([k for k in expected if k[0] == "support"])
    # One entry per key. A second one is a duplicate if it is a second creation (two VoteCast of
    # one voter); a change (VoteChanged, SupportGivenAgain) is what a client's own retry of a request
    # that had committed does on a changeable ballot (counted once: the latest), but unasked for when
    # the client sent the request once (the platform executed it twice).
    attempts = {o.key: len(o.attempts) for o in outcomes if o.key is not None}
    created = {k: sum(1 for e in watcher.envelopes.get(k, []) if e["type"] in ("VoteCast", "SupportGiven"))
               for k in mine}
    doubled = {k for k, n in created.items() if n > 1}
    changed = {k for k in mine if watcher.counts[k] > created[k]}
    retried_changes = {k for k in changed if attempts.get(k, 0) > 1}
    unasked = changed - retried_changes
    failed_attempts = [a for o in outcomes for a in o.attempts if a.status is None or a.status >= 500]
    seen_times = [watcher.first_seen[k] for k in expected if k in watcher.first_seen]
    listed = _parked(fw.p)
    parked = [m for m in listed if not m.get("rejected")]  # holding a stream until a person acts
    rejected = [m for m in listed if m.get("rejected")]  # set aside as no event of a log: holding nothing
    expected_rejected = injected.get("rejected", 0)
    result = {
        "scenario": name, "requests": len(outcomes),
        "acknowledged": len(expected) + len(probes),
        "lost": len(lost) + len(lost_probes) + max(0, n_votes - len(board)) + max(0, n_supports - supports),
        "duplicated": len(doubled) + sum(1 for v in watcher.event_ids.values() if v > 1),
        "unexpected": len(mine - expected) + max(0, len(board) - n_votes) + max(0, supports - n_supports),
        "executed_twice": len(unasked),
        "conflict_on_only_attempt": sum(1 for o in outcomes if o.body == {"settled_by": 409} and len(o.attempts) == 1),
        "changed_by_retry": len(retried_changes),
        "recovered": sum(1 for o in outcomes if o.key is not None and len(o.attempts) > 1),
        "failed": sum(1 for o in outcomes if o.key is None and (o.attempts[-1].status is None
                                                                  or o.attempts[-1].status >= 500)),
        "refused": sum(1 for o in outcomes if o.key is None and o.attempts[-1].status is not None
                       and o.attempts[-1].status < 500),
        "failed_attempts": len(failed_attempts),
        "failed_attempt_kinds": dict(Counter(str(a.status or a.error) for a in failed_attempts)),
        "failed_attempt_example": next((a.error for a in failed_attempts if a.status), None),
        "fault_s": round(fault_ended - fault_started, 2),
        "answering_again_after_s": round(max((a.ended for a in failed_attempts), default=fault_started)
                                         - fault_started, 2),
        "record_complete_after_s": (round(max(seen_times) - fault_started, 2)
                                    if seen_times and not lost and not lost_probes else None),
        "parked": parked,
        "rejected": len(rejected), "expected_rejected": expected_rejected,
        "rejected_examples": [{k: m.get(k) for k in ("consumer", "source", "position", "error")} for m in rejected[:3]],
        "stage_counts": {"votes_on_board": len(board), "supports": supports},
        "spinning": injected.get("spinning", False),
        "injected": {k: v for k, v in injected.items() if k != "probes"},
        "examples": {"lost": [list(k) for k in sorted(lost, key=str)[:3]] + [["probe", a] for a in lost_probes],
                     "unexpected": [_brief(e) for k in sorted(mine - expected, key=str)[:3]
                                    for e in watcher.envelopes.get(k, [])],
                     "duplicated": [_brief(e) for k in doubled for e in watcher.envelopes.get(k, [])][:6],
                     "unasked_changes": [_brief(e) for k in sorted(unasked, key=str)[:3]
                                         for e in watcher.envelopes.get(k, [])]},
    }
    result["ok"] = (result["lost"] == result["duplicated"] == result["unexpected"] == result["failed"] == 0
                    and result["executed_twice"] == 0
                    and not parked and not result["spinning"] and result["record_complete_after_s"] is not None
                    and len(rejected) == expected_rejected
                    and result["record_complete_after_s"] <= RECOVERY_LIMIT_S + result["fault_s"])
    fw.results.append(result)
    return result


def _brief(env: dict) -> dict:
    return {k: env.get(k) for k in ("id", "source", "position", "type", "actor", "occurred_at")} | {
        "data": {k: v for k, v in (env.get("data") or {}).items() if k in ("ballot", "proposal", "receipt", "forged")}}


def _parked(p) -> list[dict]:
    """What `consult dlq list` shows for the platform (parked: a person would have to act on it;
    rejected: set aside, holding nothing). Read in this process: the CLI's start costs seconds."""
    from services.cli import dlq

    try:
        return dlq.list_parked(p.settings)
    except Exception as exc:  # noqa: BLE001 - shown in the result, and failing it
        return [{"error": repr(exc)[:500]}]


def suite_scenarios(services: list[str], backend: str, backends: list[str]) -> list[str]:
    """The scenarios tests/reliability runs on one backend: fewer than the full matrix (`consult
    bench --faults`), still one of each kind -- kill -9 of a stage service (a different one per
    backend) together with audit (both restarted at once: the cost of a kill scenario is mostly the
    restart), the broker connections closed, the PostgreSQL backends terminated -- and the two
    message scenarios once (the consumer code does not depend on the store)."""
    first = backend == backends[0]
    stages = [s for s in ("decisions", "proposals", "deliberation", "actions") if s in services]
    stage = stages[0 if first or len(stages) < 2 else 1] if stages else None
    names = [f"kill:{stage}+audit" if stage else "kill:audit", "broker-connections"]
    if backend == "postgres":
        names.append("postgres-backends")
    if first:
        names += ["poison-message", "forged-message"]
    return names


def scenario_names(services: list[str], backend: str, broker_restart: bool = False) -> list[str]:
    names = [f"kill:{s}" for s in services] + ["broker-connections"]
    if backend == "postgres":
        names.append("postgres-backends")
    names += ["poison-message", "forged-message"]
    return names + (["broker-restart"] if broker_restart else [])


def injections(p, fw: FaultWorld, *, broker_restart: bool = False) -> dict:
    """Every scenario's injection, by name, for this platform."""
    from tests.harness import PG_URL

    def kill(*services):
        def go():
            for service in services:
                p.kill(service)
            time.sleep(0.5)
            p.start(*services)  # all at once, then each waited for
        return go

    out = {f"kill:{s}": kill(s) for s in p.services}
    for stage in p.services:  # a stage service and audit at once (the suite's kill scenario)
        if stage != "audit":
            out[f"kill:{stage}+audit"] = kill(stage, "audit")
    out["broker-connections"] = lambda: close_broker_connections(p.vhost)
    if p.backend == "postgres":
        out["postgres-backends"] = lambda: {"terminated": terminate_postgres_backends(PG_URL, p.env["PGAPPNAME"])}

    def failures() -> float:
        text = p.metrics("audit")
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("consult_handler_failures_total{") and f'source="{QUIET_SOURCE}"' in line)

    def then_a_real_event(publish, rejected: int):
        def go():
            publish(p, fw.community.id)
            time.sleep(1.0)  # the consumer meets the messages first
            before = failures()
            time.sleep(1.5)  # a consumer that keeps failing on them fails again within this (retries ~1.3 s)
            spinning = failures() > before  # still failing on it, neither dropped nor parked
            consultation = fw.community.api("POST", "/consultations", {
                "title": "楼道照明", "description": "Corridor lights after the fault.", "scope": "community",
                "category": "safety"}, expect=201).json()["id"]
            return {"probes": [consultation], "spinning": spinning, "rejected": rejected}
        return go

    # Each message is set aside (rejected, listed by `consult dlq list`) by the audit consumer.
    out["poison-message"] = then_a_real_event(publish_poison, 2)
    out["forged-message"] = then_a_real_event(publish_forged, 1)
    if broker_restart:
        out["broker-restart"] = restart_broker
    return out


def summary_line(r: dict) -> str:
    return (f"{r['scenario']:<22} {r['requests']:>5} {r['acknowledged']:>5} {r['lost']:>5} {r['duplicated']:>5} "
            f"{r['unexpected']:>6} {r['executed_twice']:>5} {r['recovered']:>6} {r['failed']:>6} {r['answering_again_after_s']:>8.1f} "
            f"{(r['record_complete_after_s'] if r['record_complete_after_s'] is not None else float('nan')):>8.1f} "
            f"{len(r['parked']):>6} {r['rejected']:>5}  {'ok' if r['ok'] else 'FAILED'}")


HEADER = (f"{'scenario':<22} {'sent':>5} {'acked':>5} {'lost':>5} {'dupl':>5} {'unexp':>6} {'twice':>5} {'recov':>6} "
          f"{'failed':>6} {'answer s':>8} {'record s':>8} {'parked':>6} {'rejct':>5}")


def main(backend: str, *, restart_broker: bool = False, json_path: str | None = None,
         only: list[str] | None = None) -> int:
    """`consult bench --faults`: every scenario on a platform of its own; exit 1 if any failed."""
    from tests.harness import running

    tag = uuid.uuid4().hex[:8]
    with running(backend, PGAPPNAME=f"consult-faults-{tag}") as p:
        names = [n for n in scenario_names(p.services, backend, restart_broker) if not only or n in only]
        print(f"setting up a community for {len(names)} scenarios on {backend} …", flush=True)
        fw = FaultWorld.build(p, len(names))
        print(HEADER)
        for name in names:
            r = scenario(fw, name, injections(p, fw, broker_restart=restart_broker)[name], fw.next_ballot())
            print(summary_line(r), flush=True)
            if r["parked"] or r["rejected"]:  # the next scenario starts clean; the failure is recorded
                purge_parked(p)
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"backend": backend, "scenarios": fw.results, "load_average": os.getloadavg()}, f, indent=2,
                      default=str)
    return 0 if all(r["ok"] for r in fw.results) else 1
