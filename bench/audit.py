"""Audit benchmark: how fast the verifiable record is, every figure beside raw SHA-256 of the same
bytes measured in the same run.

    python -m bench.audit [--entries 1000000] [--stored 20000] [--backend sqlite|postgres|both|none]

1. The audit core on a generated export of --entries entries (`services/audit/bench.py`: envelopes
   of several sources, texts with salts, a checkpoint every 10,000 entries, a key rotation): full
   offline verification (target: 1,000,000 entries in under 15 s), tree appends in memory, and
   inclusion and consistency proofs made and checked.
2. Appends to the stored log as the audit consumer makes them — entry, tree nodes, tracking and
   every 1,000th entry's checkpoint in one transaction, through the service's own sink — on an
   empty log and on one holding --stored entries, run by run in turn so that drift of the machine
   hits both. An append costs O(log n): the rate must not fall as the log grows.

Exits 1 if full verification of 1,000,000 entries takes 15 s or more, or appends to the large log
run below 0.8 of the rate on an empty one.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import closing

import sqlalchemy as sa

warnings.filterwarnings("ignore", message=".*[Ee]ventlet.*")  # nameko's import warns; the bench runs no nameko

VERIFY_TARGET_S = 15.0
MIN_RATIO = 0.8


def _environment(backend: str, tag: str) -> None:
    os.environ.update(CONSULT_TEST_MODE="1", CONSULT_PREFIX=f"bench{tag}",
                      CONSULT_DATA_DIR=tempfile.mkdtemp(prefix="consult-bench-audit-"),
                      CONSULT_AUDIT_CHECKPOINT_EVERY="1000", CONSULT_AUDIT_CHECKPOINT_SECONDS="3600",
                      CONSULT_DB=os.environ.get("CONSULT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
                      if backend == "postgres" else "sqlite")
    for name in ("CONSULT_CLOCK_FILE", "CONSULT_AUDIT_KEY_FILE"):
        os.environ.pop(name, None)


def _drop_schemas(prefix: str) -> None:
    import psycopg

    with psycopg.connect(os.environ["CONSULT_DB"], autocommit=True) as conn:
        for (schema,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}\\_%",)):
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def core(entries: int, repeats: int) -> dict:
    from services.audit import bench as core_bench

    print(f"audit core, {entries:,} entries (medians of {repeats}; ratio = seconds / seconds of raw SHA-256 "
          "of the same entry bytes)")
    return core_bench.run(entries, repeats=repeats)


def _lines(n: int) -> list[bytes]:
    """n canonical envelopes of one community, several sources, from the core bench's generator."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.audit import bench as core_bench

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.jsonl")
        core_bench.generate_export(path, n, Ed25519PrivateKey.generate(), checkpoint_every=10**9)
        with open(path, "rb") as f:
            return [line[:-1] for line in f if line.startswith(b'{"actor"')]


def stored(backend: str, lines: list[bytes], existing: int, ops: int, runs: int) -> bool:
    """Appends/s through the audit consumer's sink, on an empty log and on one of `existing` entries."""
    tag = uuid.uuid4().hex[:8]
    _environment(backend, tag)
    from types import SimpleNamespace

    from services.audit import checkpointing, log
    from services.audit.service import _sink
    from services.common import config
    from services.common.consumer import SqlSink
    from services.common.store import state_engine
    from services.common.tables import create_all

    settings = config.load()
    engine = state_engine("audit", settings)
    try:
        create_all(engine, log.metadata, checkpointing.metadata)
        policy = checkpointing.policy(settings)
        signer = checkpointing.Signer.open(policy.key_file)
        checkpointing.prepare(engine, signer)
        record = _sink(SimpleNamespace(engine=engine, app=SimpleNamespace(policy=policy, signer=signer))).handler
        envs = [json.loads(line) for line in lines]
        big = envs[0]["community"]
        # The large log, filled 1,000 entries a transaction through the same append.
        for start in range(0, existing, 1000):
            with engine.begin() as conn:
                for env in envs[start:start + 1000]:
                    record(conn, env)
        if backend == "sqlite":  # the fill's WAL is checkpointed now, not in the middle of a timed run
            with closing(sqlite3.connect(settings.data_dir / "audit-state.sqlite3", timeout=30)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        scratch = sa.Table("bench_bare", sa.MetaData(), sa.Column("i", sa.Integer, primary_key=True),
                           sa.Column("body", sa.Text))
        scratch.create(engine)
        low, high, raw, bare = [], [], [], []
        cursor = existing
        for run in range(runs):
            batch = envs[cursor:cursor + ops]
            cursor += ops
            small = [dict(env, community=f"{big}-empty-{run}", id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{env['id']}")))
                     for env in batch]  # the same envelopes in a fresh log (event ids are unique)
            pair = [("empty", low, small), ("large", high, batch)]
            for name, rates, items in (pair if run % 2 == 0 else pair[::-1]):  # neither always goes first
                sink = SqlSink(f"bench-{name}-{run}", engine, record)  # its own tracking: positions restart
                started = time.perf_counter()
                for env in items:
                    assert sink.handle(env["source"], env)
                rates.append(ops / (time.perf_counter() - started))
            started = time.perf_counter()
            for line in lines[cursor - ops:cursor]:
                hashlib.sha256(line).digest()
            raw.append(ops / (time.perf_counter() - started))
            started = time.perf_counter()  # the store's floor: one row of the same bytes a transaction
            for k, line in enumerate(lines[cursor - ops:cursor]):
                with engine.begin() as conn:
                    conn.execute(sa.insert(scratch).values(i=run * ops + k, body=line.decode()))
            bare.append(ops / (time.perf_counter() - started))
        with engine.connect() as conn:
            assert log.tree(conn, big).size == cursor
            assert [c["size"] for c in checkpointing.history(conn, big)][-1] == cursor // 1000 * 1000
    finally:
        engine.dispose()
        if backend == "postgres":
            _drop_schemas(f"bench{tag}")
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    m_low, m_high, m_raw, m_bare = (statistics.median(x) for x in (low, high, raw, bare))
    ratio = m_high / m_low
    print(f"\nstored appends, backend={backend}: {ops} appends per run, {runs} runs (medians, appends/s)")
    print(f"  {'measure':<56} {'per second':>12} {'us each':>9} {'vs raw':>9} {'vs bare':>8}")
    for name, rate in (("raw SHA-256 of the same envelope bytes", m_raw),
                       ("bare insert of the same bytes, a transaction each", m_bare),
                       ("append to an empty log", m_low), (f"append to a log of {existing:,} entries", m_high)):
        print(f"  {name:<56} {rate:>12,.0f} {1e6 / rate:>9.1f} {m_raw / rate:>8.0f}x {m_bare / rate:>7.1f}x")
    print(f"  ratio large / empty = {ratio:.3f} (must be at least {MIN_RATIO}); each append also writes its "
          "tree nodes and tracking, and every 1,000th a signed checkpoint")
    return ratio >= MIN_RATIO


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries of the generated export")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stored", type=int, default=20_000, help="entries already in the large stored log")
    parser.add_argument("--ops", type=int, default=300, help="stored appends timed per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both", "none"], default="sqlite")
    args = parser.parse_args(argv)
    ok = True
    if args.entries:
        results = core(args.entries, args.repeats)
        if args.entries >= 1_000_000:
            met = results["verify_export"] < VERIFY_TARGET_S
            print(f"full verification of {args.entries:,} entries: {results['verify_export']:.2f} s "
                  f"(target under {VERIFY_TARGET_S:.0f} s: {'met' if met else 'MISSED'}; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
            ok = met
    backends = {"both": ["sqlite", "postgres"], "none": []}.get(args.backend, [args.backend])
    if backends:
        lines = _lines(args.stored + args.ops * args.runs)
        for backend in backends:
            ok = stored(backend, lines, args.stored, args.ops, args.runs) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
