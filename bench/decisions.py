"""Decisions benchmark: votes/s on a ballot holding 10 and 10,000 votes, and the time to count
10,000 votes, beside a bare eventsourcing save loop on the same backend, all in this process.

    python -m bench.decisions [--backend sqlite|postgres|both] [--ops 200] [--runs 5] [--existing 10000]

The decisions application runs directly (no nameko, no broker): cast_vote is the whole command a
vote costs in the service (ballot read, roll lookup, vote aggregate, save, the check that it
counts), and the read model's catch-up with the votes is timed with them. Runs alternate between
a fresh ballot with 10 votes and the big ballot, so a drift of the machine hits both; medians of
the runs are compared. Exits 1 if votes/s at 10,000 existing votes fall below 0.8 of votes/s at
10 — a vote must not cost more as a ballot fills.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

MIN_RATIO = 0.8
T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
RULES = {"ballot_notice_days": 7, "publicity_days": 7}


def _environment(backend: str, tag: str) -> None:
    os.environ.update(CONSULT_TEST_MODE="1", CONSULT_PREFIX=f"bench{tag}",
                      CONSULT_DATA_DIR=tempfile.mkdtemp(prefix="consult-bench-"),
                      CONSULT_DB=os.environ.get("CONSULT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
                      if backend == "postgres" else "sqlite")
    for name in ("CONSULT_CLOCK_FILE", "CONSULT_DECISIONS_KEY"):
        os.environ.pop(name, None)


def _drop_schemas(prefix: str) -> None:
    import psycopg

    with psycopg.connect(os.environ["CONSULT_DB"], autocommit=True) as conn:
        for (schema,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}\\_%",)):
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Bench:
    """One ballot-filled store with the helpers the measurements need."""

    def __init__(self):
        from services.common import clock, config
        from services.common.store import state_engine
        from services.common.tables import create_all
        from services.decisions import tables
        from services.decisions.application import DecisionsApp

        self.clock = clock
        self.settings = config.load()
        self.engine = state_engine("decisions", self.settings)
        create_all(self.engine, tables.metadata)
        self.app = DecisionsApp(self.settings, self.engine)
        self.community = str(uuid.uuid4())

    def ballot(self, voters: int) -> tuple[str, list[str]]:
        """An open residents' ballot (simple majority) with `voters` on its roll."""
        clock, app = self.clock, self.app
        facts = [{"person": f"p{i:06}", "household": None, "adult": True} for i in range(voters)]
        clock.set(T0)
        ballot = app.prepare_ballot("bench", self.community, "benchmark ballot", "community")
        opens, closes = T0 + timedelta(days=7), T0 + timedelta(days=14)
        app.configure_ballot("bench", self.community, ballot, preset="generic", voting_unit="resident",
                             opens_at=clock.format(opens), closes_at=clock.format(closes), community_rules=RULES,
                             facts_now=facts[:1])
        clock.set(opens)
        assert app.open_ballot(ballot, facts)
        return ballot, [f["person"] for f in facts]

    def fill(self, ballot: str, voters: list[str]) -> None:
        """Votes recorded in bulk (1,000 per transaction): the same events and read-model rows as
        one by one, so the store then holds a ballot with that many votes; only faster to set up."""
        from services.common.aggregate import derived_id
        from services.decisions.domain import Vote

        app = self.app
        b = app.ballot(self.community, ballot, copy=False)
        for start in range(0, len(voters), 1000):
            with app._context(b, "bench"):
                votes = [Vote.cast(derived_id("vote", ballot, v), community=self.community, ballot=ballot, voter=v,
                                   choice="agree" if i % 3 else "disagree", weight="1", headcount=1, channel="online")
                         for i, v in enumerate(voters[start:start + 1000])]
            app.save(*votes)
            app.project()

    def votes_per_second(self, ballot: str, voters: list[str]) -> float:
        """Votes cast one by one, and the read model brought up to date with them (its work is
        part of what a vote costs, even though the service does it off the request path)."""
        started = time.perf_counter()
        for i, voter in enumerate(voters):
            self.app.cast_vote(voter, self.community, ballot, voter, "agree" if i % 2 else "disagree")
        self.app.project()
        return len(voters) / (time.perf_counter() - started)

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()


def bare_saves_per_second(ops: int, runs: int) -> list[float]:
    """The store's own speed: eventsourcing saving new small aggregates, one per transaction."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    from services.common import config
    from services.common.store import event_store_env

    app = Application(env=event_store_env("benchbare", config.load()))
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(ops):
            app.save(Aggregate())
        rates.append(ops / (time.perf_counter() - started))
    app.close()
    return rates


def run(backend: str, ops: int, runs: int, existing: int) -> bool:
    tag = uuid.uuid4().hex[:8]
    _environment(backend, tag)
    bench = Bench()
    try:
        big, big_voters = bench.ballot(existing + ops * runs)
        bench.fill(big, big_voters[:existing])
        low, high = [], []
        for run_no in range(runs):  # alternate, so drift of the machine hits both alike
            small, small_voters = bench.ballot(10 + ops)
            bench.fill(small, small_voters[:10])
            low.append(bench.votes_per_second(small, small_voters[10:]))
            new = big_voters[existing + run_no * ops: existing + (run_no + 1) * ops]
            high.append(bench.votes_per_second(big, new))
        bare = bare_saves_per_second(ops, runs)

        # The count of the big ballot once closed: read model + rules (what the close does), and
        # the full replay from the log (what `consult decisions retally` does).
        app = bench.app
        app.close_ballot(big, "closing_time")
        counted = app._ballot_by_id(big)
        counts, replays = [], []
        for _ in range(runs):
            started = time.perf_counter()
            result, _reveals = app.count(counted)  # the count and the reveals of a secret ballot
            counts.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert app.retally(big)["match"]
            replays.append(time.perf_counter() - started)
        total_votes = result.ballots
    finally:
        bench.close()
        if backend == "postgres":
            _drop_schemas(f"bench{tag}")

    m_low, m_high, m_bare = statistics.median(low), statistics.median(high), statistics.median(bare)
    ratio = m_high / m_low
    print(f"\nbackend={backend}  ops={ops} votes per run  runs={runs}  (medians; all in this process)")
    print(f"  {'measure':<52} {'median':>12} {'vs bare save':>13}")
    print(f"  {'bare eventsourcing save loop (saves/s)':<52} {m_bare:>12.1f} {1:>13.3f}")
    print(f"  {'votes/s on a ballot with 10 votes':<52} {m_low:>12.1f} {m_low / m_bare:>13.3f}")
    print(f"  {f'votes/s on a ballot with {existing:,} votes':<52} {m_high:>12.1f} {m_high / m_bare:>13.3f}")
    print(f"  {f'count of {total_votes:,} votes at the close (s)':<52} {statistics.median(counts):>12.3f}")
    print(f"  {f'retally of {total_votes:,} votes from the log (s)':<52} {statistics.median(replays):>12.3f}")
    print(f"  ratio votes/s at {existing:,} / at 10 = {ratio:.3f} (must be at least {MIN_RATIO})")
    print(f"  runs: at 10 {[round(x) for x in low]}, at {existing:,} {[round(x) for x in high]}, "
          f"bare {[round(x) for x in bare]}")
    return ratio >= MIN_RATIO


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ops", type=int, default=200, help="votes timed per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--existing", type=int, default=10_000, help="votes already on the big ballot")
    args = parser.parse_args(argv)
    ok = True
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        ok = run(backend, args.ops, max(args.runs, 5), args.existing) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
