"""`consult bench`: the whole platform measured end to end, beside bare baselines of the same run.

It boots every service as its own process (tests/harness.py's Platform: private RabbitMQ vhost,
private PostgreSQL schemas or SQLite files, the test clock), measures the bare baselines (event-
store appends on the backend, nameko RPC plus event round trips from 10 clients, raw SHA-256), then
the product's workloads through the gateway over real HTTP:

  votes, supports  votes and supports at 1, 10 and 50 clients, each counted once it is in the
                   community's audit log: accepted/s, audited/s, p50/p95/p99, errors, duplicates,
                   and CPU seconds per 1,000 of every process of the stack (the bottleneck named);
  burst            500 residents supporting one proposal at once, 500 owners voting on one ballot;
  cost             votes/s and supports/s at 10, 1,000 and 10,000 existing (one client);
  setup            directory set-up of 10,000 households: CSV import (files of 5,000 rows) and an
                   invitation per household (a request per 5,000: the target's figure), then
                   each one's sign-in by a resident (shown beside it);
  audit            offline verification of a 1,000,000-entry export; replay of the set-up
                   community's whole log (its size, and the time per 100,000 events).

Owners come from the directory import (a real CSV file) and vote on owners' ballots opened after
their notice period (the test clock is moved past it); residents sign in from invitations. The
figures go to one table (each with its baseline and the ratio to it, and the issue's target) and,
with --json FILE, to JSON. The exit status is 1 if a counted figure is inconsistent (a request
accepted but never audited, or audited twice, or an error), whatever the speed.
"""
from __future__ import annotations

import itertools
import json
import os
import platform as _platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import baselines, world
from bench.cpu import CpuMonitor, PostgresBackends, cpu_seconds, pids_named
from bench.load import AuditWatcher, AuditWatchers, run_clients, summarise
from services.communities.csv_import import MAX_ROWS

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("votes", "supports", "burst", "cost", "setup", "audit")
# Before each measured run the services must be idle (PlatformBench.settle): below this share of one
# core per process of the platform (0.15 of a core for the eight services without cells), summed, for
# two half-second windows in a row; waited for at most SETTLE_TIMEOUT_S. An idle process's timers
# and catch-ups use 0.3-1.5 % of a core at the production intervals (CONSULT_CATCHUP_INTERVAL 5 s).
SETTLE_BUSY_SHARE_PER_PROCESS, SETTLE_TIMEOUT_S = 0.15 / 8, 120.0
IDLE_SAMPLE_S = 5.0  # how long each process's idle draw is measured before a run (PlatformBench.idle_rates)


@dataclass
class Sizes:
    owners: int = 2000  # households (one owner each, one resident signed in each) of the voting community
    clients: tuple = (1, 10, 50)
    ops: dict = field(default_factory=lambda: {1: 200, 10: 1000, 50: 2000})  # requests per run, by clients
    burst: int = 500
    cost_levels: tuple = (10, 1000, 10000)
    cost_ops: int = 100
    setup_households: int = 10000
    # Rows per CSV file: the most a file may hold, as a worker uploads a whole community's list; not
    # scaled down, since each file is a job with a process of its own (about a second to start),
    # which files of 100 rows would mostly measure.
    import_chunk: int = MAX_ROWS
    setup_clients: int = 10
    verify_entries: int = 1_000_000
    rpc_ops: int = 2000
    append_ops: int = 500
    audit_timeout: float = 300.0
    settle: bool = True  # wait for idle services before each measured run (PlatformBench.settle)


QUICK = Sizes(owners=12, clients=(1, 10, 50), ops={1: 4, 10: 10, 50: 12}, burst=12, cost_levels=(1, 3, 5),
              cost_ops=2, setup_households=12, import_chunk=6, setup_clients=6, verify_entries=10_000, rpc_ops=200,
              append_ops=100, audit_timeout=60.0, settle=False)  # a smoke run: its figures are not read

TARGETS = {  # the targets (PostgreSQL, this 2-core machine, whole platform running)
    ("votes", 50, "audited_per_s"): (">=", 150.0),
    ("votes", 50, "p99_s"): ("<=", 0.5),
    ("votes", 50, "vs_rpc_event"): (">=", 0.5),
    ("burst", "supports", "p99_s"): ("<=", 2.0),
    ("cost", "votes", "ratio"): (">=", 0.8),
    ("cost", "supports", "ratio"): (">=", 0.8),
    ("setup", "households_per_s"): (">=", 200.0),
    ("audit", "verify_1m_s"): ("<=", 5.0),
    ("audit", "replay_100k_s"): ("<=", 10.0),
    ("cpu", "ms_per_vote"): ("<=", 12.0),
}


class Report:
    """The rows of the one table, with the detail behind them for the JSON."""

    def __init__(self):
        self.rows: list[dict] = []
        self.detail: dict = {}
        self.problems: list[str] = []

    def add(self, group: str, measure: str, value, unit: str, baseline: str | None = None, base=None,
            ratio_of=None, target=None):
        ratio = None
        if base:
            ratio = (ratio_of if ratio_of is not None else value) / base if value is not None else None
        met = None
        if target is not None and value is not None:
            op, limit = target
            subject = ratio if target_on_ratio(measure) and ratio is not None else value
            met = subject >= limit if op == ">=" else subject <= limit
        self.rows.append({"group": group, "measure": measure, "value": value, "unit": unit, "baseline": baseline,
                          "ratio": ratio, "target": f"{target[0]} {target[1]:g}" if target else None, "met": met})

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"  ! {text}", flush=True)


def target_on_ratio(measure: str) -> bool:
    return "vs " in measure or measure.startswith("ratio")


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if value < 10 else f"{value:,.1f} s"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def print_table(report: Report, out=sys.stdout) -> None:
    width = max(len(r["measure"]) for r in report.rows) + 2
    print(f"\n{'measure':<{width}} {'value':>12}  {'unit':<10} {'ratio':>8}  {'baseline':<34} {'target':>10} met", file=out)
    print("-" * (width + 88), file=out)
    group = None
    for r in report.rows:
        if r["group"] != group:
            group = r["group"]
            print(f"[{group}]", file=out)
        ratio = f"{r['ratio']:.3g}x" if r["ratio"] is not None else ""
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        unit = "" if r["unit"] == "s" else r["unit"]
        print(f"{r['measure']:<{width}} {_fmt(r['value'], r['unit']):>12}  {unit:<10} {ratio:>8}  "
              f"{r['baseline'] or '':<34} {r['target'] or '':>10} {met}", file=out)


def machine() -> dict:
    info = {"hostname": _platform.node(), "kernel": _platform.release(), "cpus": os.cpu_count(),
            "python": sys.version.split()[0]}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()
        info["memory_gib"] = round(int(mem[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip()
    except OSError:
        pass
    return info


class PlatformBench:
    def __init__(self, backend: str, sizes: Sizes, only: set[str], cells: int = 0, busy_cells: int | None = None,
                 replicas: tuple[str, ...] = ()):
        self.backend, self.sizes, self.only = backend, sizes, only
        # Services started twice, as docker-compose runs them (a deployment without cells only).
        self.replicas = replicas
        self.cells = cells  # community cells (services/common/cells.py); 0: a deployment without
        # How many cells get a voting community (None: every cell); the others run idle beside them.
        self.busy_cells = busy_cells
        self.report = Report()
        self.p = None
        self.shared_cpu = {"rabbitmq beam.smp (shared)": pids_named("beam.smp")}

    # -- the platform --------------------------------------------------------------------------------
    def boot(self) -> None:
        from services.common.config import QUORUM
        from tests.harness import Platform

        cells = tuple(f"c{i}" for i in range(1, self.cells + 1))
        print(f"booting the platform on {self.backend}" + (f" with {len(cells)} cell(s)" if cells else "") + " …",
              flush=True)
        self.p = Platform(self.backend, cells=cells).setup()
        self.app_name = f"consult-bench-{self.p.tag}"
        self.p.env["PGAPPNAME"] = self.app_name  # the platform's PostgreSQL backends, found by name
        self.p.env["CONSULT_QUEUE_TYPE"] = os.environ.get("CONSULT_QUEUE_TYPE", QUORUM)  # production's default
        # Production's intervals, not the test harness's shorter ones: an idle process's catch-up asks
        # every source for its head at each interval, and at the harness's 2 s fourteen processes of two
        # cells idled at 0.24 of a core, charged to the votes of every run.
        for name in ("CONSULT_CATCHUP_INTERVAL", "CONSULT_RELAY_INTERVAL", "CONSULT_RETRY_DELAYS"):
            self.p.env.pop(name, None)
        started = time.monotonic()
        self.p.start()
        for service in self.replicas:
            self.p.start_replica(service)
        self.report.detail["boot_s"] = time.monotonic() - started
        self.report.detail["replicas"] = list(self.replicas)

    def processes(self) -> dict[str, int]:
        return {**{name: proc.pid for name, proc in self.p.procs.items()}, "benchmark clients": os.getpid()}

    def monitor(self) -> CpuMonitor:
        from tests.harness import PG_URL

        pg = PostgresBackends(PG_URL, self.app_name) if self.backend == "postgres" else None
        shared = dict(self.shared_cpu)
        if pg is not None:
            shared["postgres background (shared)"] = [pid for pid in pids_named("postgres") if not _is_backend(pid)]
        return CpuMonitor(self.processes(), pg, shared).start()

    def settings(self):
        from services.common import config

        os.environ.update({k: v for k, v in self.p.env.items() if k.startswith("CONSULT_")})
        os.environ.pop("CONSULT_SERVICE", None)
        return config.load()

    # -- baselines -----------------------------------------------------------------------------------
    def baselines(self) -> None:
        s, r = self.sizes, self.report
        print("baselines …", flush=True)
        sha = baselines.sha256()
        appends = baselines.event_store_appends(self.settings(), s.append_ops)
        rpc = baselines.rpc_event(self.p.env["CONSULT_AMQP_URI"], self.p.dir, 10, s.rpc_ops, self.shared_cpu)
        self.base = {"sha": sha["per_s"], "appends": appends["per_s"], "rpc": rpc["per_s"]}
        r.detail["baselines"] = {"sha256": sha, "event_store_appends": appends, "rpc_event_10_clients": rpc}
        r.add("baselines", f"raw SHA-256 of a vote envelope ({sha['bytes']} B)", sha["per_s"], "/s")
        r.add("baselines", f"event-store appends ({self.backend}, 1 client)", appends["per_s"], "/s")
        r.add("baselines", "nameko RPC+event round trips, 10 clients", rpc["per_s"], "/s")
        r.add("baselines", "  p50 round trip", rpc["p50_s"], "s")
        r.add("baselines", "  p99 round trip", rpc["p99_s"], "s")
        r.add("baselines", "  CPU per round trip, echo service + broker", sum(
            v for k, v in rpc["cpu_ms_per_op"].items() if k != "benchmark clients"), "ms")

    # -- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        s, now = self.sizes, datetime.now(timezone.utc)
        want = self.only
        self.a = self.b = None
        self.voting: list[world.Community] = []
        self.cell_ballots: dict[str, dict] = {}
        if want & {"votes", "supports", "burst"}:
            # With cells, a voting community in each (the directory places each new community in
            # the least loaded cell), the owners shared out between them: the same votes in all.
            n = max(1, self.cells if self.busy_cells is None else min(self.busy_cells, self.cells))
            each = -(-s.owners // n)
            print(f"setting up {'the voting community' if n == 1 else f'{n} voting communities, one per cell'}: "
                  f"{each:,} households{' each' if n > 1 else ''} from CSV …", flush=True)
            for i in range(n):
                c = world.community(self.p, "S社区 bench" + (f" {i + 1}" if n > 1 else ""))
                world.import_directory(c, each, s.import_chunk)
                self.cell_ballots[c.id] = {k: world.prepare_owners_ballot(c, f"{k} clients", now) for k in s.clients}
                self.voting.append(c)
            self.a = self.voting[0]
            self.ballots = self.cell_ballots[self.a.id]
            self.ballots["burst"] = world.prepare_owners_ballot(self.a, "burst", now)
        if want & {"cost", "setup", "audit"}:
            needed = max(s.cost_levels) + len(s.cost_levels) * s.cost_ops if "cost" in want else 0
            households = max(s.setup_households, needed)
            print(f"setting up the directory community: {households:,} households from CSV in files of "
                  f"{s.import_chunk:,} …", flush=True)
            self.b = world.community(self.p, "set-up bench")
            world.import_directory(self.b, households, s.import_chunk)
            self.cost_ballot = world.prepare_owners_ballot(self.b, "cost", now)
        opens = now + world.OWNERS_NOTICE + timedelta(minutes=1)
        print(f"moving the platform's clock past the owners' notice period, to {opens:%Y-%m-%d %H:%M} UTC …", flush=True)
        self.p.set_clock(opens.replace(microsecond=0))
        for c in self.voting:
            world.wait_open(c, list(self.cell_ballots[c.id].values()))
            world.owner_tokens(c, s.setup_clients)
            world.invite_residents(c, s.setup_clients)
        if self.a:
            self.report.detail["voting_community"] = self.a.timings
        if self.b:
            world.wait_open(self.b, [self.cost_ballot])
            world.invite_residents(self.b, s.setup_clients)
            t = self.b.timings
            # Set up, as issue 15 counts it: imported and invited (a worker's part, what the target
            # is for); the residents' sign-ins follow at their own pace and are shown beside it.
            set_up = t["import"]["seconds"] + t["invitations"]["seconds"]
            n = t["import"]["households"]
            self.report.detail["setup_community"] = t
            r = self.report
            if "setup" in want:
                r.add("setup", f"{n:,} households set up (import + invitations)", n / set_up, "/s",
                      "event-store appends", self.base["appends"], target=TARGETS[("setup", "households_per_s")])
                r.add("setup", f"  … and each signed in by a resident, {s.setup_clients} clients",
                      n / (set_up + t["sign_ins"]["seconds"]), "/s", "event-store appends", self.base["appends"])
                r.add("setup", f"  CSV import, files of {s.import_chunk:,} rows", t["import"]["per_s"], "/s",
                      "event-store appends", self.base["appends"])
                r.add("setup", "  import files answered 5xx / of which committed anyway",
                      f"{sum(v for k, v in t['import']['statuses'].items() if k.startswith('5'))}/"
                      f"{t['import']['committed_despite_an_error']}", "n")
                r.add("setup", "  invitations (a request per 5,000 households)", t["invitations"]["per_s"], "/s",
                      "event-store appends", self.base["appends"])
                r.add("setup", f"  sign-ins, {s.setup_clients} clients", t["sign_ins"]["per_s"], "/s",
                      "event-store appends", self.base["appends"])
            cost_owners = self.b.owners[:needed]
            if cost_owners:
                self.b.owners = cost_owners
                world.owner_tokens(self.b, s.setup_clients)
        for name, c in (("voting", self.a), ("set-up", self.b)):
            if c is not None and c.timings["import"]["committed_despite_an_error"]:
                self.report.problem(f"{name} community: {c.timings['import']['committed_despite_an_error']} CSV "
                                    "import file(s) answered 5xx for rows that were imported all the same")

    # -- one measured run ----------------------------------------------------------------------------
    def settle(self, busy_share: float | None = None, timeout: float = SETTLE_TIMEOUT_S) -> float:
        """Wait until the platform's services are idle: their CPU, summed, below `busy_share` of
        one core for two half-second windows in a row. The audit log of the measured community can
        be quiet while the other services still work off an earlier phase's backlog (the set-up
        community's directory events reach five consumers): a run started then is charged their
        CPU and shares the cores with them. Returns the seconds waited (at the timeout the run
        starts all the same)."""
        pids = [proc.pid for proc in self.p.procs.values()]
        busy_share = SETTLE_BUSY_SHARE_PER_PROCESS * len(pids) if busy_share is None else busy_share
        started, quiet = time.monotonic(), 0

        def total() -> float:
            return sum(cpu_seconds(pid) or 0.0 for pid in pids)

        before = total()
        while time.monotonic() - started < timeout:
            time.sleep(0.5)
            now = total()
            quiet = quiet + 1 if now - before < busy_share * 0.5 else 0
            before = now
            if quiet >= 2:
                break
        return time.monotonic() - started

    def idle_rates(self, seconds: float = IDLE_SAMPLE_S) -> dict[str, float]:
        """Each process's CPU per second while the platform idles (just settled): its timers and
        catch-ups, which run whatever the load. A run's CPU less this, for as long as it ran, is what
        its requests cost (`cpu_ms_per_op_net`): the gross figure also charges them the idle draw,
        which grows with the number of processes (a second cell's six) and not with the requests."""
        monitor = self.monitor()
        time.sleep(seconds)
        cpu = monitor.stop()
        return {k: v / (monitor.ended - monitor.started) for k, v in cpu.items() if k != "benchmark clients"}

    def consumer_batches(self) -> dict[str, list[float]]:
        """Each process's consumer batches so far, from its /metrics, per `<process> <- <source>`:
        [batches, events applied, messages checked against the source's log]. A batch is what a
        consumer applies at once (at most one transaction per sink); each is timed once in
        consult_handler_seconds (a batch of one by `apply`, a larger one by `apply_many`), and
        consult_events_consumed_total counts the events applied. A message is checked against the
        log (a `read_log` RPC per batch of them) unless its relay's voucher is believed
        (consult_messages_checked_total, by="log")."""
        import re

        import requests

        found: dict[str, list[float]] = {}
        pattern = re.compile(r'^consult_(handler_seconds_count|events_consumed_total|messages_checked_total)'
                             r'\{consumer="[^"]*",source="([^"]*)"(?:,type="[^"]*"|,by="(log)")?\} (\S+)$')
        for name in self.p.procs:
            try:
                port = self.p._http_port(name)  # noqa: SLF001 - a cell's process is 100 ports up per cell
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except Exception:  # noqa: BLE001 - a process without metrics, or gone: no figure, not a failure
                continue
            for line in text.splitlines():
                m = pattern.match(line)
                if m:  # messages_checked_total matches only by="log"
                    figures = found.setdefault(f"{name} <- {m.group(2)}", [0.0, 0.0, 0.0])
                    figures[("handler_seconds_count", "events_consumed_total", "messages_checked_total")
                            .index(m.group(1))] += float(m.group(4))
        return found

    def run(self, c, label: str, members: list, clients: int, send, key, *, barrier=False) -> dict:
        """One measured run; `c` is the community whose audit log counts it, or several (a run spread
        over cells)."""
        # Several communities' logs are polled as often in all as one's (each the less often): the
        # polls are requests to the gateway and the audit service, charged to the run's CPU.
        watcher = (AuditWatcher(self.p.url, c.id, c.token, interval=0.2) if not isinstance(c, list) else
                   AuditWatchers([AuditWatcher(self.p.url, x.id, x.token, interval=0.2 * len(c)) for x in c])).start()
        watcher.wait_quiet()
        settled = self.settle() if self.sizes.settle else 0.0
        if settled > 3:
            print(f"  ({label}: waited {settled:.0f} s for the services to finish earlier work)", flush=True)
        idle = self.idle_rates() if self.sizes.settle else {}
        batches_before = self.consumer_batches()
        monitor = self.monitor()
        started = time.monotonic()
        outcomes = run_clients(members, clients, send, key, barrier=barrier, timeout=self.sizes.audit_timeout + 600)
        keys = [o.key for o in outcomes if o.accepted]
        complete = watcher.wait_for(keys, self.sizes.audit_timeout)
        cpu = monitor.stop()
        watcher.stop()
        batches = {k: [now - then for now, then in zip(v, batches_before.get(k, (0.0, 0.0, 0.0)))]
                   for k, v in self.consumer_batches().items()}
        result = summarise(outcomes, watcher, started)
        seconds = monitor.ended - monitor.started
        net = {k: max(0.0, v - idle.get(k, 0.0) * seconds) for k, v in cpu.items()}
        result.update(label=label, clients=clients, audit_complete=complete, settled_s=settled,
                      cpu_s=cpu, cpu_ms_per_op={k: v / max(result["accepted"], 1) * 1000 for k, v in cpu.items()},
                      idle_cpu_per_s=idle,
                      cpu_ms_per_op_net={k: v / max(result["accepted"], 1) * 1000 for k, v in net.items()},
                      # per consumer stream with batches in the run: [batches, events in them,
                      # messages checked against the source's log]
                      consumer_batches={k: v for k, v in batches.items() if v[0] > 0})
        busy = sorted(result["consumer_batches"].items(), key=lambda kv: -kv[1][1])[:6]
        if busy:
            print(f"  ({label}: events per consumer batch: "
                  + ", ".join(f"{k} {v[1] / v[0]:.1f} in {v[0]:.0f}" for k, v in busy)
                  + f"; messages checked against the source's log: "
                  f"{sum(v[2] for v in result['consumer_batches'].values()):.0f})", flush=True)
        problems = []
        if result["errors"]:
            problems.append(f"{result['errors']} errors {result['error_kinds']}")
        if result["accepted"] != len(members):
            problems.append(f"{result['accepted']} of {len(members)} accepted")
        if result["audited"] != result["accepted"]:
            problems.append(f"{result['accepted'] - result['audited']} accepted but not in the audit log "
                            f"after {self.sizes.audit_timeout:.0f} s")
        if result["duplicated"]:
            problems.append(f"{result['duplicated']} in the audit log more than once")
        for text in problems:
            self.report.problem(f"{label}: {text}")
        print(f"  {label}: {result['accepted']} accepted, {result['audited']} audited, "
              f"{result['accepted_per_s']:.1f} accepted/s, {result['audited_per_s']:.1f} audited/s, "
              f"p50 {_ms(result['p50_s'])}, p99 {_ms(result['p99_s'])}, {result['errors']} errors", flush=True)
        self.report.detail.setdefault("runs", []).append(result)
        return result

    def e2e(self, kind: str) -> None:
        s, a = self.sizes, self.a
        print(f"{kind} through the gateway …", flush=True)
        for clients in s.clients:
            name = f"{kind}, {_clients(clients)}"
            if kind == "votes":  # over every voting community: one per cell
                members, send, key = self._votes(clients, s.ops[clients])
                res = self.run(self.voting if len(self.voting) > 1 else a, name, members, clients, send, key)
            else:
                supporters = a.residents[:-1]  # the last resident drafts the proposals
                pid = world.open_proposal(a, a.residents[-1], f"{clients} clients")
                send, key = world.support_sender(a, pid)
                res = self.run(a, name, supporters[:min(s.ops[clients], len(supporters))], clients, send, key)
            self._e2e_rows(kind, name, res, clients)

    def _votes(self, clients: int, n: int):
        """n votes on the `clients` ballot of every voting community, taken in turn from each (the
        clients' load spread evenly over the cells): (members, send, key) for `run`."""
        senders = {c.id: world.vote_sender(c, self.cell_ballots[c.id][clients]) for c in self.voting}
        turns = [[(c.id, owner) for owner in c.owners] for c in self.voting]
        members = [m for group in itertools.zip_longest(*turns) for m in group if m is not None][:n]

        def send(session, member):
            return senders[member[0]][0](session, member[1])

        def key(member, resp):
            return senders[member[0]][1](member[1], resp)

        return members, send, key

    def _e2e_rows(self, group: str, name: str, res: dict, clients) -> None:
        r, rpc = self.report, self.base["rpc"]
        r.add(group, f"{name}: accepted/s", res["accepted_per_s"], "/s", "bare RPC+event, 10 clients", rpc)
        r.add(group, f"{name}: audited/s", res["audited_per_s"], "/s", "bare RPC+event, 10 clients", rpc,
              target=TARGETS.get((group, clients, "audited_per_s")))
        if (group, clients, "vs_rpc_event") in TARGETS:
            r.add(group, f"{name}: audited/s vs bare RPC+event", res["audited_per_s"] / rpc, "x",
                  target=TARGETS[(group, clients, "vs_rpc_event")])
        for q in ("p50", "p95", "p99"):
            r.add(group, f"{name}: {q}", res[f"{q}_s"], "s", f"bare RPC+event {q if q != 'p95' else 'p99'}",
                  self.report.detail["baselines"]["rpc_event_10_clients"][f"{q if q != 'p95' else 'p99'}_s"],
                  target=TARGETS.get((group, clients, f"{q}_s")))
        r.add(group, f"{name}: errors", res["errors"], "")
        r.add(group, f"{name}: accepted, audited, duplicated",
              f"{res['accepted']}/{res['audited']}/{res['duplicated']}", "n")
        cpu = res["cpu_ms_per_op"]
        total = sum(cpu.values())
        base_cpu = sum(v for k, v in self.report.detail["baselines"]["rpc_event_10_clients"]["cpu_ms_per_op"].items()
                       if k != "benchmark clients")
        stack = total - cpu.get("benchmark clients", 0.0)
        r.add(group, f"{name}: CPU per request, whole stack (clients excluded)", stack, "ms",
              "bare RPC+event CPU per round trip", base_cpu,
              target=TARGETS[("cpu", "ms_per_vote")] if group == "votes" and clients == 50 else None)
        if res.get("idle_cpu_per_s"):
            net = res["cpu_ms_per_op_net"]
            r.add(group, f"{name}:   … net of the idle draw ({sum(res['idle_cpu_per_s'].values()):.2f} core)",
                  sum(net.values()) - net.get("benchmark clients", 0.0), "ms", "bare RPC+event CPU per round trip",
                  base_cpu)

    def bursts(self) -> None:
        s, a = self.sizes, self.a
        n = min(s.burst, len(a.owners), len(a.residents) - 1)
        print(f"bursts of {n} at once …", flush=True)
        pid = world.open_proposal(a, a.residents[-1], "burst")
        send, key = world.support_sender(a, pid)
        sup = self.run(a, f"burst, {n} supports of one proposal", a.residents[:n], n, send, key, barrier=True)
        counted = a.api("GET", f"/proposals/{pid}", expect=200).json()["supports"]
        send, key = world.vote_sender(a, self.ballots["burst"])
        vote = self.run(a, f"burst, {n} votes on one ballot", a.owners[:n], n, send, key, barrier=True)
        board = a.api("GET", f"/ballots/{self.ballots['burst']}/board?limit=1000", expect=200).json()
        votes_counted = len(board.get("entries", board.get("votes", []))) if isinstance(board, dict) else len(board)
        r = self.report
        for kind, res, count in (("supports", sup, counted), ("votes", vote, votes_counted)):
            r.add("burst", f"{n} {kind} at once: p50", res["p50_s"], "s")
            r.add("burst", f"{n} {kind} at once: p99", res["p99_s"], "s", target=TARGETS.get(("burst", kind, "p99_s")))
            r.add("burst", f"{n} {kind} at once: counted by the stage / audited", f"{count}/{res['audited']}", "n")
            r.add("burst", f"{n} {kind} at once: errors", res["errors"], "")
            if count != n or res["audited"] != n:
                r.problem(f"burst of {n} {kind}: {count} counted by the stage, {res['audited']} audited")
        r.detail["burst_counts"] = {"at_once": n, "supports": counted, "votes": votes_counted}

    def cost(self) -> None:
        s, b, r = self.sizes, self.b, self.report
        print(f"per-request cost at {', '.join(f'{x:,}' for x in s.cost_levels)} existing …", flush=True)
        pid = world.open_proposal(b, b.residents[-1], "cost")
        for kind in ("votes", "supports"):
            pool = b.owners if kind == "votes" else b.residents[:-1]
            send, key = world.vote_sender(b, self.cost_ballot) if kind == "votes" else world.support_sender(b, pid)
            used, rates = 0, {}
            for level in s.cost_levels:
                if level > used:  # fill to the level with 10 clients, through the same path
                    self.run(b, f"{kind}: fill to {level:,}", pool[used:level], 10, send, key)
                    used = level
                res = self.run(b, f"{kind} at {level:,} existing", pool[used:used + s.cost_ops], 1, send, key)
                used += s.cost_ops
                rates[level] = res["accepted_per_s"]
                r.add("cost", f"{kind} at {level:,} existing, 1 client: accepted/s", res["accepted_per_s"], "/s",
                      "event-store appends", self.base["appends"])
                r.add("cost", f"{kind} at {level:,} existing: p50", res["p50_s"], "s")
            lo, hi = s.cost_levels[0], s.cost_levels[-1]
            r.add("cost", f"ratio {kind}/s at {hi:,} / at {lo:,}", rates[hi] / rates[lo] if rates[lo] else None, "x",
                  target=TARGETS[("cost", kind, "ratio")])

    def audit(self) -> None:
        s, r = self.sizes, self.report
        print(f"audit: verification of a {s.verify_entries:,}-entry export (a process of its own) …", flush=True)
        out = subprocess.run([sys.executable, "-m", "bench.offline", "verify", str(s.verify_entries)], cwd=ROOT,
                             capture_output=True, text=True, timeout=3600, env=dict(os.environ))
        if out.returncode != 0:
            r.problem(f"offline verification failed: {out.stderr[-2000:]}")
            return
        v = json.loads(out.stdout.strip().splitlines()[-1])
        r.detail["verify"] = v
        r.add("audit", f"verify a {v['entries']:,}-entry export", v["verify_s"], "s", "raw SHA-256 of its entries",
              v["raw_sha256_s"], target=TARGETS[("audit", "verify_1m_s")] if v["entries"] >= 1_000_000 else None)
        if self.b is not None:
            from services.audit.cli import log_envelopes
            from services.audit.replay import replay
            from services.cli.rpc import Rpc

            print("audit: replay of the set-up community's log …", flush=True)
            with Rpc(self.settings(), timeout=120) as rpc:
                started = time.monotonic()
                envelopes, _stopped = log_envelopes(rpc.send, self.b.id, allow_unsigned_tail=True)
                read = time.monotonic() - started
            started = time.perf_counter()
            state = replay(envelopes)
            replayed = time.perf_counter() - started
            n = len(envelopes)
            r.detail["replay"] = {"events": n, "read_s": read, "replay_s": replayed,
                                  "ballots": len(state["ballots"]), "proposals": len(state["proposals"])}
            r.add("audit", f"read the log of {n:,} events (RPC)", read, "s")
            r.add("audit", f"replay {n:,} events", replayed, "s", "raw SHA-256 of as many envelopes",
                  n / self.base["sha"])
            r.add("audit", "read + replay, per 100,000 events", (read + replayed) / max(n, 1) * 100_000, "s",
                  target=TARGETS[("audit", "replay_100k_s")])

    def cpu_rows(self) -> None:
        """CPU seconds per 1,000 votes (and supports) of each process, from the 10-client runs; the
        busiest platform process is the bottleneck to look at first."""
        for res in self.report.detail.get("runs", []):
            if res["label"] not in ("votes, 10 clients", "supports, 10 clients"):
                continue
            kind = res["label"].split(",")[0]
            ranked = [(name, ms) for name, ms in res["cpu_ms_per_op"].items() if ms >= 0.05]
            for name, ms in ranked:
                self.report.add("cpu", f"{kind}, 10 clients: {name}", ms, f"s/1000 {kind}")
            own = [(name, ms) for name, ms in ranked if "shared" not in name and name != "benchmark clients"]
            if own:
                self.report.add("cpu", f"{kind}, 10 clients: busiest process of the platform", own[0][0], "")

    # -- everything ----------------------------------------------------------------------------------
    def go(self) -> Report:
        r = self.report
        r.detail.update(backend=self.backend, sizes=asdict(self.sizes), only=sorted(self.only), machine=machine(),
                        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        load_average_before=os.getloadavg())
        try:
            phases = [("boot", self.boot), ("baselines", self.baselines), ("setup", self.setup)]
            phases += [(g, fn) for g, fn in (("votes", lambda: self.e2e("votes")),
                                             ("supports", lambda: self.e2e("supports")), ("burst", self.bursts),
                                             ("cost", self.cost), ("audit", self.audit)) if g in self.only]
            r.detail["phase_seconds"] = {}
            for name, fn in phases:
                started = time.monotonic()
                fn()
                r.detail["phase_seconds"][name] = round(time.monotonic() - started, 1)
            self.cpu_rows()
        finally:
            r.detail["load_average_after"] = os.getloadavg()
            r.detail["ended"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if self.p is not None:
                if os.environ.get("CONSULT_BENCH_KEEP_LOGS") == "1":
                    os.environ["CONSULT_KEEP_TEST_DIRS"] = "1"
                    print(f"service logs kept in {self.p.dir}")
                stop_all(self.p)
                self.p.teardown()
        return r


def stop_all(p) -> None:
    """Signal every service at once and then wait (the harness stops them one after another)."""
    for proc in p.procs.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 20
    for proc in p.procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _is_backend(pid: int) -> bool:
    """A PostgreSQL client backend (its title names the client's address), not a server process."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return True
    return "(" in title or "[local]" in title


def _clients(n: int) -> str:
    return f"{n} client{'s' if n != 1 else ''}"


def _ms(seconds) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.0f} ms"


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure the whole platform end to end (or, with --faults, inject faults)",
                              description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--quick", action="store_true", help="a small smoke run (seconds, not an hour)")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(GROUPS)} (baselines always run); with "
                                  "--faults, of the scenarios (kill:gateway, broker-connections, …)")
    p.add_argument("--json", metavar="FILE", help="also write every figure and its detail as JSON")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every count of the full run (e.g. 0.1 for a tenth), not the client numbers")
    p.add_argument("--clients", metavar="N[,N…]",
                   help="the client counts of the votes and supports runs (default 1,10,50); a count the full run "
                        "does not have gets 100 requests per client, from 200 to 2,000, before --scale")
    p.add_argument("--cells", default="0", metavar="N[,N…]",
                   help="run the platform with N community cells (0: without cells), the voting community split "
                        "into one per cell; several counts (1,2) run one after another in this process and end "
                        "with the CPU per vote of each against the first; with cells only the votes group runs")
    p.add_argument("--replicas", default="", metavar="SERVICE[,SERVICE…]",
                   help="start a second instance of each named service, as docker-compose runs two of each "
                        "(without cells only); its CPU is counted as '<service>#2'")
    p.add_argument("--busy-cells", type=int, metavar="K",
                   help="with cells: a voting community in the first K cells only, the others idle beside them "
                        "(tells the cost of more processes from the cost of a load split between cells)")
    p.add_argument("--faults", action="store_true", help="run the fault-injection scenarios instead (bench/faults.py)")
    p.add_argument("--restart-broker", action="store_true",
                   help="with --faults: also restart the RabbitMQ server itself (only on a machine of your own)")
    p.set_defaults(fn=main)


def scaled(sizes: Sizes, factor: float) -> Sizes:
    if factor == 1.0:
        return sizes

    def k(n):
        return max(1, int(round(n * factor)))

    return replace(sizes, owners=k(sizes.owners), ops={c: k(n) for c, n in sizes.ops.items()}, burst=k(sizes.burst),
                   cost_levels=tuple(k(x) for x in sizes.cost_levels), cost_ops=k(sizes.cost_ops),
                   setup_households=k(sizes.setup_households),
                   verify_entries=k(sizes.verify_entries), rpc_ops=k(sizes.rpc_ops), append_ops=k(sizes.append_ops))


def _numbers(text: str) -> list[int]:
    """A comma-separated list of integers (`--cells`, `--clients`); empty if any is not one."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        return []


def with_clients(sizes: Sizes, text: str) -> Sizes:
    """`--clients 1,5,10`: those client counts, each with the full run's requests where it has the
    count, else 100 per client (200 to 2,000)."""
    from services.cli.rpc import CliError

    counts = tuple(dict.fromkeys(_numbers(text)))
    if not counts or any(not 1 <= n <= 500 for n in counts):
        raise CliError(f"--clients: client counts from 1 to 500, separated by commas, not {text!r}")
    ops = {n: sizes.ops.get(n, min(2000, max(200, 100 * n))) for n in counts}
    return replace(sizes, clients=counts, ops=ops)


def compare_cells(args, sizes: Sizes, only: set[str], counts: list[int]) -> int:
    """The votes group on one platform per count of cells, one after another in this process
    (`--cells 1,2,1,2`: rounds, interleaved, against the machine's drift); then, per run, each
    count's median CPU per vote (whole stack, the clients excluded) and audited votes/s, with the
    ratio to the first count's (issue 18: two cells must not cost more per vote than one, within 10 %)."""
    import statistics

    reports = []
    for n in counts:
        report = PlatformBench(args.backend, sizes, only, n, args.busy_cells).go()
        print_table(report)
        reports.append((n, report))

    def cpu_per_vote(run, key="cpu_ms_per_op"):
        return sum(v for k, v in run.get(key, {}).items() if k != "benchmark clients")

    figures: dict = {}  # label -> count -> [(gross ms per vote, net ms per vote, audited/s)]
    for n, report in reports:
        for run in report.detail.get("runs", []):
            figures.setdefault(run["label"], {}).setdefault(n, []).append(
                (cpu_per_vote(run), cpu_per_vote(run, "cpu_ms_per_op_net"), run["audited_per_s"]))
    first = counts[0]
    print(f"\ncells compared ({args.backend}; {len(reports)} platforms; medians, ratio to {first} cell(s)); CPU per "
          "vote of the whole stack (clients excluded), gross and net of the platform's idle draw:")
    for label, by_count in figures.items():
        base = [statistics.median(x[i] for x in by_count[first]) for i in range(3)]
        for n in dict.fromkeys(counts):
            got = by_count.get(n, [])
            if not got:
                continue
            gross, net, rate = (statistics.median(x[i] for x in got) for i in range(3))
            print(f"  {label}, {n} cell(s): gross {gross:5.1f} ms/vote ({gross / base[0]:.2f}x; runs "
                  f"{', '.join(f'{x[0]:.1f}' for x in got)}), net {net:5.1f} ({net / max(base[1], 1e-9):.2f}x; runs "
                  f"{', '.join(f'{x[1]:.1f}' for x in got)}), {rate:5.1f} audited/s ({rate / max(base[2], 1e-9):.2f}x)")
    problems = [text for _, r in reports for text in r.problems]
    if args.json:
        Path(args.json).write_text(json.dumps([{"cells": n, "busy_cells": args.busy_cells, "rows": r.rows,
                                                "problems": r.problems, **r.detail}
                                               for n, r in reports], ensure_ascii=False, indent=2, default=str))
        print(f"JSON: {args.json}")
    for text in problems:
        print(f"  {text}", file=sys.stderr)
    return 1 if problems else 0


def main(args) -> int:
    from services.cli.rpc import CliError

    if args.faults:
        from bench import faults

        return faults.main(args.backend, restart_broker=args.restart_broker, json_path=args.json,
                           only=[s.strip() for s in args.only.split(",")] if args.only else None)
    only = set(GROUPS) if not args.only else {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = only - set(GROUPS)
    if unknown:
        raise CliError(f"--only: unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    if args.scale <= 0:
        raise CliError("--scale must be positive")
    sizes = QUICK if args.quick else Sizes()
    if args.clients:
        sizes = with_clients(sizes, args.clients)
    sizes = scaled(sizes, args.scale)
    counts = _numbers(args.cells)
    if not counts or any(not 0 <= n <= 9 for n in counts):
        raise CliError(f"--cells: a count of cells from 0 to 9, or several separated by commas, not {args.cells!r}")
    if any(counts) and only != {"votes"}:
        raise CliError("--cells: with cells only the votes group runs (add --only votes): the other groups' "
                       "communities would all be one cell's")
    if args.busy_cells is not None and not (1 <= args.busy_cells and any(counts)):
        raise CliError("--busy-cells: a count of at least 1, with --cells")
    from services.common import registry

    replicas = tuple(x.strip() for x in args.replicas.split(",") if x.strip())
    unknown = [s for s in replicas if s not in registry.SERVICES or s in ("gateway", "web")]
    if unknown:
        raise CliError(f"--replicas: not a stage service or the directory: {', '.join(unknown)}")
    if replicas and any(counts):
        raise CliError("--replicas: a deployment without cells only (--cells 0)")
    if len(counts) > 1:
        return compare_cells(args, sizes, only, counts)
    report = PlatformBench(args.backend, sizes, only, counts[0], args.busy_cells, replicas).go()
    print_table(report)
    d = report.detail
    print(f"phases (s): {d.get('phase_seconds')}")
    print(f"\nbackend {args.backend}; load average {d['load_average_before'][0]:.2f} before, "
          f"{d['load_average_after'][0]:.2f} after, on {os.cpu_count()} CPUs; {d['started']} – {d['ended']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": report.rows, "problems": report.problems, **d},
                                              ensure_ascii=False, indent=2, default=str))
        print(f"JSON: {args.json}")
    if report.problems:
        print(f"\n{len(report.problems)} counted figure(s) inconsistent:", file=sys.stderr)
        for text in report.problems:
            print(f"  {text}", file=sys.stderr)
        return 1
    return 0
