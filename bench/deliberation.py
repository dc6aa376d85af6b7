"""Deliberation benchmark: comments/s posted on a consultation that already has 10 comments and on
one that has 1,000, through the application's full command path (permission check, content
store, save, projection), beside a bare eventsourcing save loop on the same backend.

    python -m bench.deliberation [--backend sqlite|postgres|both] [--ops 200] [--runs 5]

One aggregate per comment keeps posting flat: the ratio (1,000 / 10) must be at least 0.8, or
the command exits non-zero. Each run posts onto a fresh consultation filled to its size first
(filling is not timed), so "10" and "1,000" stay what they say; the runs of the two sizes
alternate, so a busy machine slows both alike.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
import statistics
import sys
import tempfile
import uuid
from contextlib import closing
from pathlib import Path

import psycopg

from bench.common import rate, report

MIN_RATIO = 0.8
SIZES = (10, 1000)
PG_URL = os.environ.get("CONSULT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
COMMUNITY = "bench-community"
RESIDENT = str(uuid.UUID(int=1))
COMPOUND = str(uuid.UUID(int=2))
DIRECTORY = {"community": {"id": COMMUNITY}, "compounds": [{"id": COMPOUND}], "buildings": [],
             "people": [{"id": str(uuid.UUID(int=3)), "roles": [{"role": "party_lead", "scope": None}]}]}


def _settings(backend: str):
    from services.common import config

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    base = config.load()
    if backend == "postgres":
        return dataclasses.replace(base, db=PG_URL, prefix=prefix)
    return dataclasses.replace(base, db="sqlite", data_dir=Path(tempfile.mkdtemp()), prefix=prefix)


def _drop_schemas(settings) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for (schema,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                      (f"{settings.prefix}\\_%",)).fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(backend: str, ops: int, runs: int) -> float:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    from bench.foundation import _bare_env
    from services.common.aggregate import command_context
    from services.common.store import state_engine
    from services.common.tables import create_all
    from services.communities.domain import DEFAULT_RULES
    from services.deliberation import tables
    from services.deliberation.application import Caller, DeliberationApp

    settings = _settings(backend)
    engine = state_engine("deliberation", settings)
    create_all(engine, tables.metadata)
    app = DeliberationApp(settings, engine)
    resident = Caller(RESIDENT, frozenset({"resident"}), lambda scope, scope_id: True)
    worker = Caller(str(uuid.UUID(int=4)), frozenset({"community_worker"}))
    current = {}

    def consultation_with(n: int):
        def setup():
            cid = app.open_topic(worker, COMMUNITY, "草坪", "种菜之争", "compound", COMPOUND, "green_space",
                                 DEFAULT_RULES, DIRECTORY)
            c = app.repository.get(uuid.UUID(cid))
            with command_context(community=COMMUNITY, actor=RESIDENT, case=c.case):
                earlier = [c.comment(id=uuid.uuid4(), author=RESIDENT, author_roles=["resident"], venue="public",
                                     stance="for", parent=None, text_commitment=app.content.put(f"earlier {i}"))
                           for i in range(n)]
            app.save(*earlier)
            app.project()
            settle()
            current["id"] = cid
        return setup

    def settle():
        """Write the filling's burst out of the write-ahead log before timing: a discussion of
        1,000 comments grew over days, and its checkpoints are long done."""
        if backend == "postgres":
            with psycopg.connect(PG_URL, autocommit=True) as db:
                db.execute("CHECKPOINT")
            return
        for path in settings.data_dir.glob("*.sqlite3"):
            with closing(sqlite3.connect(path, timeout=30)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def post():
        for i in range(ops):
            app.post_comment(resident, COMMUNITY, current["id"], f"第{i}条意见", "neutral")

    consultation_with(SIZES[0])()
    post()  # warm-up, untimed: connections and statement caches
    samples: dict[int, list[float]] = {n: [] for n in SIZES}
    for _ in range(runs):  # interleaved, so drift on a shared machine falls on both sizes alike
        for n in SIZES:
            samples[n] += rate(ops, post, 1, setup=consultation_with(n))["all"]
    rows = [(f"post a comment ({n} comments already)",
             {"ops": ops, "runs": runs, "median": statistics.median(samples[n]), "all": samples[n]}) for n in SIZES]
    bare = Application(env=_bare_env(settings, backend))

    def bare_saves():
        for _ in range(ops):
            bare.save(Aggregate())

    rows.append(("bare eventsourcing save loop", rate(ops, bare_saves, runs)))
    report(f"deliberation: posting cost vs. discussion size ({backend})", rows, "bare eventsourcing save loop")
    by_name = dict(rows)
    ratio = by_name[rows[1][0]]["median"] / by_name[rows[0][0]]["median"]
    print(f"  ratio 1,000 vs 10 comments = {ratio:.3f} (needs at least {MIN_RATIO})")
    app.close()
    bare.close()
    engine.dispose()
    if backend == "postgres":
        _drop_schemas(settings)
    return ratio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ops", type=int, default=200, help="comments posted per timed run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measure (at least 5)")
    args = parser.parse_args(argv)
    ratios = [run(backend, args.ops, max(args.runs, 5))
              for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend])]
    return 0 if min(ratios) >= MIN_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
