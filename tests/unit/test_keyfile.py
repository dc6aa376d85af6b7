"""A secret of the data folder made once however many processes start together (keyfile.made_once):
the decisions sealing key, the web cookie key and the bus key all come from it."""
from __future__ import annotations

import multiprocessing
import os
import secrets

from services.common import keyfile


def _race(path: str, barrier, out) -> None:
    barrier.wait()
    out.put(keyfile.made_once(path, lambda: secrets.token_bytes(32)))


def test_processes_starting_together_all_read_the_one_secret_that_was_made(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(8), ctx.Queue()
    path = tmp_path / "folder" / "bus.key"
    procs = [ctx.Process(target=_race, args=(str(path), barrier, out)) for _ in range(8)]
    for p in procs:
        p.start()
    seen = [out.get(timeout=20) for _ in procs]
    for p in procs:
        p.join(20)
    assert len(set(seen)) == 1 and len(seen[0]) == 32, "every process reads the same 32 bytes"
    assert path.read_bytes() == seen[0] and path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["bus.key"], "no candidate file is left behind"


def test_an_existing_secret_is_read_never_replaced(tmp_path):
    path = tmp_path / "k"
    path.write_bytes(b"kept")
    assert keyfile.made_once(path, lambda: b"new") == b"kept" and path.read_bytes() == b"kept"
