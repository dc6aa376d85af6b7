"""Proposals benchmark: the cost of one support must not grow with the proposal's size.

Measures supports/s through the ProposalsApp (lock, load, save, read-model update, threshold
check; no nameko, no RPC) on a proposal that already has 10 supports and on one that already has
5,000, beside a bare eventsourcing Application saving trivial aggregates on the same backend, in
the same process. The small case takes a fresh proposal each run; the large one is seeded once and
keeps growing over the runs (5,000 → 6,000 at the defaults), which can only make it look worse.
Runs are interleaved so that load on the machine falls on every measure alike. Exits 1 if
supports/s at 5,000 is below 0.8 × supports/s at 10.

    python -m bench.proposals [--backend sqlite|postgres|both] [--ops 200] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

from bench.common import report
from tests.harness import PG_URL

SMALL, LARGE = 10, 5000
MIN_RATIO = 0.8


def run(backend: str, ops: int, runs: int) -> float:
    """Print the figures of one backend; returns supports/s at LARGE over supports/s at SMALL."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    from services.common import config
    from services.common.aggregate import command_context
    from services.common.store import event_store_env, state_engine
    from services.common.tables import create_all
    from services.communities.domain import DEFAULT_RULES
    from services.proposals import tables
    from services.proposals.application import ProposalsApp
    from services.proposals.domain import Support

    folder = tempfile.mkdtemp(prefix="consult-bench-proposals-")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    os.environ.update(CONSULT_DB=PG_URL if backend == "postgres" else "sqlite", CONSULT_DATA_DIR=folder,
                      CONSULT_PREFIX=prefix)
    settings = config.load()
    engine = state_engine("proposals", settings)
    create_all(engine, tables.metadata)
    app = ProposalsApp(settings, engine)
    bare = Application(env=event_store_env("bare", settings))
    community, author = str(uuid.uuid4()), str(uuid.uuid4())
    never = dict(DEFAULT_RULES, support_threshold={
        level: {"unit": "residents", "count": 10**9} for level in ("community", "compound", "building")})

    def proposal_with(existing: int) -> str:
        """A proposal collecting support that already has `existing` supports (saved in bulk)."""
        pid = app.draft(author, community, "bench", "bench", "drainage", "community", None,
                        categories=DEFAULT_RULES["categories"])
        app.submit(author, community, pid)
        app.screen("bench", community, pid, True, rules=never, in_scope=existing)
        with command_context(community=community, actor="bench", case=pid):
            supports = [Support.give(community, pid, "resident", str(uuid.uuid4()), str(uuid.uuid4()))
                        for _ in range(existing)]
        for i in range(0, existing, 500):
            app.save(*supports[i:i + 500])
        app.project()
        return pid

    def supports_per_second(pid: str) -> float:
        before = app.view(community, pid, author)["supports"]
        people = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(ops)]
        started = time.perf_counter()
        for person, household in people:
            app.give_support(person, community, pid, household, None)
        elapsed = time.perf_counter() - started
        assert app.view(community, pid, author)["supports"] == before + ops
        return ops / elapsed

    def bare_saves_per_second() -> float:
        started = time.perf_counter()
        for _ in range(ops):
            bare.save(Aggregate())
        return ops / (time.perf_counter() - started)

    rates: dict[str, list[float]] = {}
    try:
        large = proposal_with(LARGE)
        measures = {f"support at {SMALL} supports": lambda: supports_per_second(proposal_with(SMALL)),
                    f"support at {LARGE}+ supports": lambda: supports_per_second(large),
                    "bare store baseline (save loop)": bare_saves_per_second}
        rates = {name: [] for name in measures}
        measures[f"support at {SMALL} supports"]()  # warm-up: caches, connections, statements
        bare_saves_per_second()
        for _ in range(runs):
            for name, measure in measures.items():
                rates[name].append(measure())
    finally:
        app.close()
        bare.close()
        engine.dispose()
        _drop(backend, prefix, folder)
    rows = [(name, {"ops": ops, "runs": runs, "median": statistics.median(r), "all": r}) for name, r in rates.items()]
    report(f"backend={backend} supports per run={ops} runs={runs} (medians, supports/s)", rows,
           "bare store baseline (save loop)")
    medians = dict((name, r["median"]) for name, r in rows)
    ratio = medians[f"support at {LARGE}+ supports"] / medians[f"support at {SMALL} supports"]
    print(f"  ratio support at {LARGE} / at {SMALL} = {ratio:.3f} (needs ≥ {MIN_RATIO})")
    return ratio


def _drop(backend: str, prefix: str, folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if backend != "postgres":
        return
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for (schema,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                      (f"{prefix}\\_%",)).fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ops", type=int, default=200, help="supports per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (at least 5)")
    args = parser.parse_args(argv)
    ratios = {backend: run(backend, args.ops, max(args.runs, 5))
              for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend])}
    failed = [b for b, r in ratios.items() if r < MIN_RATIO]
    if failed:
        print(f"FAIL: the cost of a support grows with the proposal's size on {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
