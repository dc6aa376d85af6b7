"""A directory import as a job (issue 15). A file of thousands of households can take longer than
the RPC timeout, and a client told "not answered in time" about an import that then committed had
no way to know what happened. So the import runs in the communities service on its own, its state
kept in a row (`dir_import_jobs`); the request waits for it a few seconds -- a small file is
answered as before, with its result -- and otherwise is answered with the job, whose status the
client reads until it is done (the gateway: 202 and GET .../directory/imports/{job}).

A job is named by its community and the SHA-256 of its file. Posting the same file again while it
runs finds that run (a client's retry never starts a second one beside it). Once it has ended, the
same file runs again under the same name: an import is all or nothing and changes nothing that is
already so, so a second run doubles nothing, and it answers what is true now (a week later the
same file "matched" every owner, not "created" them again). A job whose process died says so: its
heartbeat (wall-clock seconds, not the platform clock, which tests and training deployments move)
stops, and after STALE_S it reads as interrupted.

In the communities service a job runs in a process of its own (`python -m
services.communities.imports`): an import of tens of thousands of rows is seconds of CPU and of
driver calls the eventlet hub cannot interrupt, and in the service's own process it held every
other request -- sign-ins for the whole deployment -- as long (30,000 rows: the gateway's wait
itself timed out, 503). Elsewhere (tests, the child itself) it runs in a thread.
"""
from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from services.common import clock
from services.common.errors import DomainError, NotFound, Unavailable
from services.contracts.communities import IMPORT_DONE, IMPORT_FAILED, IMPORT_INTERRUPTED, IMPORT_RUNNING

from . import tables as t
from .domain import MANAGER_ROLES

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # a running job says it is alive this often
STALE_S = 30.0  # and is taken for interrupted when it has not for this long
MAX_WAIT_S = 20.0  # a request waits at most this long (well inside the 30 s RPC timeout)
# A job's process is stopped after this long: a file of csv_import.MAX_ROWS rows takes seconds, and
# one stuck for good (a driver that never returns) holds the event store's table lock, so every
# write of the directory waits behind it. Killed, its connection closes and its transaction rolls
# back; the job reads interrupted, and the same file may be posted again.
JOB_LIMIT_S = 180.0
def _failed_logged() -> dict:  # what a client is told of a failure only the operator's log explains
    return Unavailable.coded("communities.import_failed_logged").to_problem()


_NAMESPACE = uuid.UUID("6f1d4c4e-2b8a-4c59-9a0e-0d7c5b1e9a31")


def job_id(community: str, digest: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{community}/{digest}"))


class Imports:
    """Starts, runs and reports the directory imports of one communities process."""

    def __init__(self, app, engine: sa.Engine, in_process: bool = True):
        self.app, self.engine, self.in_process = app, engine, in_process
        self._running: dict[str, threading.Event] = {}  # this process's jobs -> set when each ends

    def start(self, actor: str, community: str, text: str, wait: float = 0.0) -> dict:
        """The job for this file (started, unless it runs or succeeded already), after waiting up
        to `wait` seconds for it to end."""
        self.app.community(community)  # NotFound for a community that is not
        self.app._require(community, actor, MANAGER_ROLES, "communities.imports_by")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        job = job_id(community, digest)
        finishing = self._running.get(job)
        if finishing is not None:  # this process's last run of the file: its row may say done already
            finishing.wait(5.0)
        if self._claim(job, actor, community, digest, text):
            ended = self._running[job] = threading.Event()
            threading.Thread(target=self._run if self.in_process else self._run_in_child,
                             args=(job, actor, community, text, ended), daemon=True, name=f"import-{job[:8]}").start()
        deadline = time.monotonic() + max(0.0, min(float(wait), MAX_WAIT_S))
        while True:
            found = self._read(community, job)
            left = deadline - time.monotonic()
            ended = self._running.get(job)  # this process's run: done when its runner is, file removed
            if (found["status"] != IMPORT_RUNNING and (ended is None or ended.is_set())) or left <= 0:
                return found
            if ended is not None:
                ended.wait(min(left, 0.5))
            else:  # another instance runs it: read its row now and then
                time.sleep(min(left, 0.2))

    def _claim(self, job: str, actor: str, community: str, digest: str, text: str) -> bool:
        """Whether this process is to run the job: it is new, or its last run has ended."""
        values = {"community": community, "sha256": digest, "actor": actor, "status": IMPORT_RUNNING,
                  "lines": max(0, sum(1 for line in text.splitlines() if line.strip()) - 1),  # rows after the header
                  "started_at": clock.format(clock.now()), "heartbeat": time.time(), "finished_at": None,
                  "result": None, "problem": None}
        try:
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(t.import_jobs).where(t.import_jobs.c.id == job).with_for_update()).first()
                if row is None:
                    conn.execute(sa.insert(t.import_jobs).values(id=job, **values))
                    return True
                if _status(row) == IMPORT_RUNNING:
                    return False
                conn.execute(sa.update(t.import_jobs).where(t.import_jobs.c.id == job).values(**values))
                return True
        except sa.exc.IntegrityError:  # another instance inserted it at the same moment: theirs runs
            return False

    def _run(self, job: str, actor: str, community: str, text: str, ended: threading.Event) -> None:
        try:
            self.execute(job, actor, community, text)
        finally:
            self._ended(job, ended)

    def _run_in_child(self, job: str, actor: str, community: str, text: str, ended: threading.Event) -> None:
        """Run the job in a process of its own and wait for it (in small green sleeps)."""
        folder = self.app.settings.data_dir / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{job}-{uuid.uuid4().hex[:8]}.csv"  # this run's own: an earlier one may be removing its file
        try:
            path.write_text(text, encoding="utf-8")
            child = subprocess.Popen([sys.executable, "-m", "services.communities.imports", job, actor, community,
                                      str(path)], stdin=subprocess.DEVNULL)  # the service's own environment
            deadline = time.monotonic() + JOB_LIMIT_S
            while child.poll() is None:
                if time.monotonic() > deadline:
                    log.error("communities: import %s still running after %.0f s: stopping it", job, JOB_LIMIT_S)
                    child.kill()
                    child.wait()
                    self._finish(job, IMPORT_INTERRUPTED, only_if_running=True, problem=Unavailable.coded(
                        "communities.import_took_too_long", seconds=int(JOB_LIMIT_S)).to_problem())
                    return
                time.sleep(0.2)
            if child.returncode != 0:  # it died before saying how the import ended
                log.error("communities: import %s: its process exited with %s", job, child.returncode)
                self._finish(job, IMPORT_FAILED, problem=_failed_logged(), only_if_running=True)
        except Exception:  # noqa: BLE001 - the job row says what became of it
            log.exception("communities: import %s could not be run", job)
            self._finish(job, IMPORT_FAILED, problem=_failed_logged(), only_if_running=True)
        finally:
            path.unlink(missing_ok=True)
            self._ended(job, ended)

    def _ended(self, job: str, ended: threading.Event) -> None:
        if self._running.get(job) is ended:  # a later run of the same file is not this one
            del self._running[job]
        ended.set()

    def execute(self, job: str, actor: str, community: str, text: str) -> None:
        """Import the file, beating all the while, and write how it ended in the job's row."""
        stopped = threading.Event()
        beating = threading.Thread(target=self._beat, args=(job, stopped), daemon=True, name=f"import-beat-{job[:8]}")
        beating.start()
        try:
            result = self.app.import_csv(actor, community, text)
        except DomainError as exc:  # the file's own errors (422, each by line), or a conflict
            self._finish(job, IMPORT_FAILED, problem=exc.to_problem())
        except Exception as exc:  # noqa: BLE001 - told to the client as the job's state, logged here
            from services.common.consumer import is_transient

            if is_transient(exc):  # the database went away: nothing was recorded, the same file may run again
                log.warning("communities: import %s interrupted (%s)", job, type(exc).__name__)
                problem = Unavailable.coded("common.not_now_try_again", service="communities").to_problem()
                self._finish(job, IMPORT_INTERRUPTED, problem=problem)
            else:
                log.exception("communities: import %s failed", job)
                self._finish(job, IMPORT_FAILED, problem=_failed_logged())
        else:
            self._finish(job, IMPORT_DONE, result=result)
        finally:
            stopped.set()

    def _beat(self, job: str, ended: threading.Event) -> None:
        while not ended.wait(HEARTBEAT_S):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.update(t.import_jobs).where(t.import_jobs.c.id == job,
                                                                t.import_jobs.c.status == IMPORT_RUNNING)
                                 .values(heartbeat=time.time()))
            except Exception as exc:  # noqa: BLE001 - a missed beat; the next one may pass
                log.info("communities: import %s: heartbeat not written (%s)", job, type(exc).__name__)

    def _finish(self, job: str, status: str, result: dict | None = None, problem: dict | None = None,
                only_if_running: bool = False) -> None:
        which = [t.import_jobs.c.id == job] + ([t.import_jobs.c.status == IMPORT_RUNNING] if only_if_running else [])
        for attempt in range(5):  # the row says how it ended, or it reads as interrupted later
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.update(t.import_jobs).where(*which).values(
                        status=status, finished_at=clock.format(clock.now()), heartbeat=time.time(),
                        result=None if result is None else json.dumps(result, ensure_ascii=False),
                        problem=None if problem is None else json.dumps(problem, ensure_ascii=False)))
                return
            except Exception as exc:  # noqa: BLE001
                log.warning("communities: import %s: its end not written (%s)", job, type(exc).__name__)
                time.sleep(0.5 * (attempt + 1))

    def status(self, community: str, job: str, actor: str) -> dict:
        """The job as `actor` may read it: the workers who may import read every import of their
        community (the job names who started it, and the file's errors name households)."""
        self.app._require(community, actor, MANAGER_ROLES, "communities.imports_by")
        return self._read(community, job)

    def _read(self, community: str, job: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.import_jobs).where(t.import_jobs.c.id == job,
                                                              t.import_jobs.c.community == community)).first()
        if row is None:
            raise NotFound.coded("communities.import_not_found", job=job)
        return {"id": row.id, "community": row.community, "status": _status(row), "sha256": row.sha256,
                "lines": row.lines, "actor": row.actor, "started_at": row.started_at, "finished_at": row.finished_at,
                "result": json.loads(row.result) if row.result else None,
                "problem": json.loads(row.problem) if row.problem else None}


def _status(row) -> str:
    if row.status == IMPORT_RUNNING and time.time() - row.heartbeat > STALE_S:
        return IMPORT_INTERRUPTED  # its process stopped beating: it died, or lost its database
    return row.status


def main(argv: list[str]) -> int:
    """`python -m services.communities.imports JOB ACTOR COMMUNITY FILE`: run one import job (the
    communities service starts it; the file is removed by the service afterwards)."""
    from services.common import config
    from services.common.store import state_engine

    from .application import DirectoryApp

    job, actor, community, path = argv
    settings = config.load().for_service("communities")
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s communities-import %(levelname)s %(name)s: %(message)s")
    engine = state_engine("communities", settings)
    app = DirectoryApp(settings, engine)
    try:
        app.imports.execute(job, actor, community, Path(path).read_text(encoding="utf-8"))
    finally:
        app.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
