"""Directory imports as jobs (services/communities/imports.py), on SQLite without nameko: a file is
waited for and answered, or left running and read later; the same file finds its job; a refusal, an
interruption and a dead process each say so, and the same file then runs again."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from services.common.errors import Forbidden, NotFound
from services.communities import imports, tables
from services.contracts.communities import IMPORT_DONE, IMPORT_FAILED, IMPORT_INTERRUPTED, IMPORT_RUNNING
from tests.unit.test_directory_app import HEADER, OPERATOR, app, community_with_staff  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(60)

FILE = HEADER + "院,2栋,101,50,王伟,K1,2020-01-01\n院,2栋,102,70,李娜,K2,2020-01-01\n"


def _wait_until_ended(app, community: str, job: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = app.imports.status(community, job, OPERATOR)
        if found["status"] != IMPORT_RUNNING or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_small_file_is_answered_done_and_the_same_file_runs_again_changing_nothing(app):  # noqa: F811
    c = app.create_community(OPERATOR, "S")
    job = app.imports.start(OPERATOR, c, FILE, wait=10)
    assert job["status"] == IMPORT_DONE and job["lines"] == 2 and job["problem"] is None
    assert job["result"]["households"] == 2 and len(job["result"]["people"]["created"]) == 2
    head = app.head()
    again = app.imports.start(OPERATOR, c, FILE, wait=10)  # the same bytes: the same job, run again
    assert again["id"] == job["id"] and again["status"] == IMPORT_DONE
    assert again["result"]["households"] == 0 and again["result"]["households_unchanged"] == 2
    assert len(again["result"]["people"]["matched"]) == 2 and not again["result"]["people"]["created"]
    assert app.head() == head, "nothing recorded twice"
    other = app.imports.start(OPERATOR, c, FILE + "院,2栋,103,60,赵六,K3,2020-01-01\n", wait=10)
    assert other["id"] != job["id"] and other["result"]["households"] == 1
    assert other["result"]["households_unchanged"] == 2


def test_a_long_import_is_left_running_and_read_until_it_is_done(app, monkeypatch):  # noqa: F811
    c = app.create_community(OPERATOR, "S")
    release, calls = threading.Event(), []
    real = app.import_csv

    def slow(*args):
        calls.append(args)
        assert release.wait(20)
        return real(*args)

    monkeypatch.setattr(app, "import_csv", slow)
    started = time.monotonic()
    job = app.imports.start(OPERATOR, c, FILE, wait=0.2)
    assert job["status"] == IMPORT_RUNNING and job["result"] is None and time.monotonic() - started < 5
    assert app.imports.start(OPERATOR, c, FILE)["status"] == IMPORT_RUNNING
    assert len(calls) == 1, "posting the file again while it runs does not run it twice"
    release.set()
    done = _wait_until_ended(app, c, job["id"])
    assert done["status"] == IMPORT_DONE and done["result"]["households"] == 2 and done["finished_at"]


def test_a_refused_file_is_a_failed_job_with_its_rows_and_runs_again_when_posted_again(app, monkeypatch):  # noqa: F811
    c = app.create_community(OPERATOR, "S")
    bad = HEADER + "院,2栋,101,50,王伟,,2020-01-01\n院,2栋,103,70,王伟,K2,2020-01-01\n"
    head = app.head()
    job = app.imports.start(OPERATOR, c, bad, wait=10)
    assert job["status"] == IMPORT_FAILED and job["result"] is None
    assert job["problem"]["status"] == 422 and sorted(e["line"] for e in job["problem"]["errors"]) == [2, 3]
    assert app.head() == head
    runs = []
    real = app.import_csv
    monkeypatch.setattr(app, "import_csv", lambda *a: runs.append(a) or real(*a))
    assert app.imports.start(OPERATOR, c, bad, wait=10)["status"] == IMPORT_FAILED
    assert len(runs) == 1, "a failed file runs again: the directory may have changed since"


def test_a_lost_database_is_an_interrupted_job_and_the_same_file_then_imports(app, monkeypatch):  # noqa: F811
    c = app.create_community(OPERATOR, "S")
    real = app.import_csv

    def lost(*args):
        raise sa.exc.OperationalError("INSERT ...", {}, Exception("server closed the connection"))

    monkeypatch.setattr(app, "import_csv", lost)
    job = app.imports.start(OPERATOR, c, FILE, wait=10)
    assert job["status"] == IMPORT_INTERRUPTED and job["problem"]["status"] == 503
    assert "INSERT" not in str(job["problem"]), "the driver's text is the operator's, not the client's"
    monkeypatch.setattr(app, "import_csv", real)
    assert app.imports.start(OPERATOR, c, FILE, wait=10)["status"] == IMPORT_DONE


def test_a_job_whose_process_died_reads_interrupted_and_runs_again(app):  # noqa: F811
    c = app.create_community(OPERATOR, "S")
    job = imports.job_id(c, __import__("hashlib").sha256(FILE.encode()).hexdigest())
    with app.engine.begin() as conn:  # what a process killed mid-import leaves: running, no longer beating
        conn.execute(sa.insert(tables.import_jobs).values(
            id=job, community=c, sha256="x", actor=OPERATOR, status=IMPORT_RUNNING, lines=2,
            started_at="2026-03-01T08:00:00Z", heartbeat=time.time() - imports.STALE_S - 1))
    assert app.imports.status(c, job, OPERATOR)["status"] == IMPORT_INTERRUPTED
    again = app.imports.start(OPERATOR, c, FILE, wait=10)
    assert again["id"] == job and again["status"] == IMPORT_DONE and again["result"]["households"] == 2


def test_a_job_is_found_only_in_its_own_community(app):  # noqa: F811
    c, other = app.create_community(OPERATOR, "S"), app.create_community(OPERATOR, "T")
    job = app.imports.start(OPERATOR, c, FILE, wait=10)
    with pytest.raises(NotFound):
        app.imports.status(other, job["id"], OPERATOR)
    with pytest.raises(NotFound):
        app.imports.status(c, "00000000-0000-4000-8000-000000000000", OPERATOR)
    with pytest.raises(NotFound):
        app.imports.start(OPERATOR, "00000000-0000-4000-8000-000000000000", FILE)


def test_in_the_service_a_job_runs_in_a_process_of_its_own_and_leaves_no_file(app, tmp_path):  # noqa: F811
    """What the communities service does (DirectoryApp(imports_in_process=False)): the import runs
    in `python -m services.communities.imports`, on the same stores, and says how it ended in the
    job's row; the file handed to it is gone afterwards. A bad file's rows come back the same way."""
    c = app.create_community(OPERATOR, "S")
    app.imports.in_process = False
    head = app.head()
    job = app.imports.start(OPERATOR, c, FILE, wait=50)
    assert job["status"] == IMPORT_DONE, job
    assert job["result"]["households"] == 2 and app.head() > head
    assert not list((tmp_path / "imports").glob("*")), "the file handed to the child is removed"
    bad = app.imports.start(OPERATOR, c, FILE.replace(",50,", ",abc,"), wait=50)
    assert bad["status"] == IMPORT_FAILED and [e["line"] for e in bad["problem"]["errors"]] == [2]


def test_a_file_of_more_than_the_most_rows_is_refused_whole_and_says_to_split_it(app):  # noqa: F811
    from services.communities.csv_import import MAX_ROWS

    c = app.create_community(OPERATOR, "S")
    rows = "".join(f"院,{k // 50}栋,{k % 50 + 1},50,住户{k},K{k},2020-01-01\n" for k in range(MAX_ROWS + 1))
    head = app.head()
    job = app.imports.start(OPERATOR, c, HEADER + rows, wait=30)
    assert job["status"] == IMPORT_FAILED and job["problem"]["status"] == 422
    assert str(MAX_ROWS) in job["problem"]["detail"] and "split" in job["problem"]["detail"]
    assert app.head() == head


def test_a_job_process_that_never_ends_is_stopped_and_the_job_reads_interrupted(app, monkeypatch):  # noqa: F811
    """A stuck import holds the event store's table lock: past JOB_LIMIT_S its process is killed (its
    transaction then rolls back) and the job says so."""
    import subprocess
    import sys

    c = app.create_community(OPERATOR, "S")
    app.imports.in_process = False
    monkeypatch.setattr(imports, "JOB_LIMIT_S", 1.0)
    started = []
    real_popen = subprocess.Popen

    def stuck(args, **kwargs):  # the job's process, as one that never returns
        child = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(imports.subprocess, "Popen", stuck)
    job = app.imports.start(OPERATOR, c, FILE, wait=15)
    assert job["status"] == IMPORT_INTERRUPTED and job["problem"]["status"] == 503, job
    assert "1 s" in job["problem"]["detail"]
    assert started and started[0].poll() is not None, "the stuck process was stopped"


def test_the_service_itself_lets_only_a_worker_or_the_lead_import_or_read_a_job(app):  # noqa: F811
    """The gateway checks the role too, but the communities service is where the directory lives:
    a resident (or a grid leader) calling it directly starts nothing and reads no job."""
    c, p = community_with_staff(app)
    head = app.head()
    with pytest.raises(Forbidden, match="imported by a community worker"):
        app.imports.start(p["resident"], c, FILE, wait=10)
    assert app.head() == head  # nothing recorded, no job claimed
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.import_jobs)).scalar() == 0
    job = app.imports.start(p["worker"], c, FILE, wait=10)
    assert job["status"] == IMPORT_DONE and job["actor"] == p["worker"]
    assert app.imports.status(c, job["id"], p["lead"])["status"] == IMPORT_DONE
    with pytest.raises(Forbidden):
        app.imports.status(c, job["id"], p["resident"])
