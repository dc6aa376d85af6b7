"""Concurrent writers in one eventlet process (and a second process) on PostgreSQL.

psycopg waits in C, which blocks eventlet's hub, and the recorder takes an exclusive table lock on
every write. This shows that many green threads writing at once in one process, next to a writer
in another process, all finish (nothing deadlocks until the lock timeout) and every event is kept.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import psycopg
import pytest

from tests.harness import PG_URL, ROOT

pytestmark = pytest.mark.integration

WRITER = textwrap.dedent('''
    import eventlet
    eventlet.monkey_patch()
    import os, sys, time, uuid
    from services.common import config
    from services.common.aggregate import command_context
    from services.common.store import ServiceApplication
    from services.communities.domain import Compound

    settings = config.load()
    app = ServiceApplication(settings, "writers")
    greenthreads, each = int(sys.argv[1]), int(sys.argv[2])
    errors = []

    def write(n):
        for i in range(each):
            try:
                with command_context(community="c", actor=f"g{n}"):
                    app.save(Compound(community="c", name=f"{n}-{i}"))
            except Exception as exc:
                errors.append(repr(exc))

    started = time.time()
    pool = eventlet.GreenPool(greenthreads)
    for n in range(greenthreads):
        pool.spawn(write, n)
    pool.waitall()
    print(f"wrote {greenthreads * each - len(errors)} in {time.time() - started:.2f}s errors={errors[:3]}")
    sys.exit(1 if errors else 0)
''')


def test_many_green_writers_in_one_process_and_another_process_all_finish():
    prefix = f"w{uuid.uuid4().hex[:8]}"
    env = {"CONSULT_DB": PG_URL, "CONSULT_PREFIX": prefix, "PATH": "/usr/bin:/bin"}
    import os

    env = dict(os.environ, **env)
    try:
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, "40", "10"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[-3000:] for o in outputs]
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(
                f'SELECT notification_id FROM "{prefix}_writers_events".writers_events ORDER BY notification_id'
            ).fetchall()
        assert len(rows) == 800
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for (schema,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                          (f"{prefix}\\_%",)).fetchall():
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
