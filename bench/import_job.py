"""One large CSV import through the gateway, as a job: how it is answered, how long until the job is
done, and how fast the directory answers while it runs (issue 15: "long operations never answer
5xx for work that committed", and the communities service keeps serving meanwhile).

    python -m bench.import_job [--backend sqlite|postgres] [--rows 10000] [--async]

`--async` sends `Prefer: respond-async` (202 at once, then the job is read every second, and each
second a directory read is timed); without it the gateway waits up to its 10 s for the import.
"""
from __future__ import annotations

import argparse
import sys
import time

from bench.world import csv_rows


def run(backend: str, rows: int, asynchronous: bool) -> dict:
    from tests.harness import running

    with running(backend, ["communities", "audit", "gateway"]) as p:
        c = p.new_community("import job")
        base = f"/api/v1/communities/{c['id']}/directory"
        body = csv_rows(0, rows).encode()
        prefer = {"Prefer": "respond-async"} if asynchronous else {}
        started = time.monotonic()
        resp = p.api("POST", base + "/import", c["token"], data=body, headers={"Content-Type": "text/csv", **prefer})
        answered = time.monotonic() - started
        job, reads = resp.json(), []
        while resp.status_code == 202 and job["status"] == "running":
            t = time.monotonic()
            read = p.api("GET", f"{base.rsplit('/directory', 1)[0]}/people/{c['worker']}", c["token"])
            reads.append((read.status_code, round(time.monotonic() - t, 3)))
            time.sleep(1)
            job = p.api("GET", resp.headers["Location"], c["token"], expect=200).json()
        done = time.monotonic() - started
        result = job.get("result") if resp.status_code == 202 else (job if resp.status_code == 201 else None)
        listed = len(p.api("GET", base, c["token"], expect=200).json()["households"])
    out = {"backend": backend, "rows": rows, "answered": resp.status_code, "answered_after_s": round(answered, 2),
           "job_status": job.get("status", "done" if resp.status_code == 201 else None),
           "done_after_s": round(done, 2), "rows_per_s": round(rows / done) if result else None,
           "households_imported": result["households"] if result else None, "households_listed": listed,
           "directory_reads_while_running": reads, "problem": job.get("problem")}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--async", dest="asynchronous", action="store_true")
    args = parser.parse_args(argv)
    r = run(args.backend, args.rows, args.asynchronous)
    slowest = max((s for _, s in r["directory_reads_while_running"]), default=None)
    print(f"{r['backend']}: {r['rows']} rows answered {r['answered']} after {r['answered_after_s']} s; job "
          f"{r['job_status']} after {r['done_after_s']} s ({r['rows_per_s']} rows/s); {r['households_listed']} "
          f"households listed; {len(r['directory_reads_while_running'])} directory reads while it ran, slowest "
          f"{slowest} s" + (f"; problem: {r['problem']}" if r["problem"] else ""))
    return 0 if r["households_listed"] == r["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
