"""How the suite is split over pytest-xdist workers (`--dist loadgroup`, on the controller).

Every test of one backend runs on one worker, and every other test with the rest of its file. Why:
a platform takes ~20 s and ~17 CPU-seconds to start. Given whole files (`--dist loadfile`), a
worker ran a file's SQLite tests, then its PostgreSQL tests, then the next file's SQLite tests,
tearing down the session's shared platform and starting the other at every switch, about seventy
times a run. Grouped by backend, each worker starts its backend's shared platform once, as a
single-process run does, and tests with their own module platform keep them for their file.

Why not xdist's own `xdist_group` marks: they work by renaming each test's node id, which pytest 9
no longer lets a plugin do, so the marks are silently ignored; the grouping is decided here from
the node id itself instead.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from xdist.scheduler.loadscope import LoadScopeScheduling

BACKENDS = ("sqlite", "postgres")
_PARAMS = re.compile(r"\[(.*)\]$")
# Seconds each unit took in a CI run (`python -m tests.xdist_groups TIMELOG` writes it).
DURATIONS = Path(__file__).with_name("durations.json")
SECONDS_PER_UNKNOWN_TEST = 2.0


def group_of(nodeid: str) -> str:
    """`backend-sqlite` / `backend-postgres` for a test parametrised by a backend (the backend is
    a whole `-`-separated part of its parameter id, as pytest joins them), else its file."""
    found = _PARAMS.search(nodeid)
    if found:
        for part in found.group(1).split("-"):
            if part in BACKENDS:
                return f"backend-{part}"
    return nodeid.split("::", 1)[0]


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError):
        return {}


def by_expected_time(units: dict[str, dict], durations: dict[str, float]) -> list[str]:
    """The units, longest expected first (a unit not in `durations`: its tests at a guess each).
    Longest first is what keeps two workers finishing together: xdist's own order (most tests
    first) left the single-test files for last, among them the cluster test, whose two to five
    minutes then ran alone at the end of the run."""
    return sorted(units, key=lambda u: -durations.get(u, SECONDS_PER_UNKNOWN_TEST * len(units[u])))


def durations_from_timelog(lines) -> dict[str, float]:
    """Seconds per unit from a CONSULT_TEST_TIMELOG (one `end <seconds> <nodeid>` line per test)."""
    out: dict[str, float] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 5 and parts[2] == "end":
            unit = group_of(parts[4])
            out[unit] = round(out.get(unit, 0.0) + float(parts[3]), 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class BackendScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with our units, handed out longest expected first (the durations
    of a CI run, tests/durations.json), the rest as workers free up."""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)

    def _assign_work_unit(self, node) -> None:
        if not self._ordered:  # the queue is complete when the first unit is handed out
            self._ordered = True
            order = by_expected_time(self.workqueue, load_durations())
            units = dict(self.workqueue)
            self.workqueue.clear()
            self.workqueue.update((u, units[u]) for u in order)
        super()._assign_work_unit(node)

    def remove_node(self, node):
        """A worker went down. xdist's scope scheduling puts its unfinished unit back *including*
        the test that was running: a test that hangs until the backstop ends its worker would run
        again on the replacement, and again, each time for its whole limit — a run that cannot
        finish within CI's time. The crashed test is reported failed by xdist; mark it done so only
        the tests after it are given to the replacement."""
        workload = self.assigned_work.get(node, {})
        crashitem = None
        for unit in workload.values():
            for nodeid, completed in unit.items():
                if not completed:
                    crashitem = nodeid
                    break
            if crashitem:
                break
        reported = super().remove_node(node)
        if crashitem is not None:
            for unit in self.workqueue.values():
                if crashitem in unit:
                    unit[crashitem] = True
            for scope in [s for s, unit in self.workqueue.items() if all(unit.values())]:
                del self.workqueue[scope]
        return reported


if __name__ == "__main__":  # python -m tests.xdist_groups TIMELOG: refresh tests/durations.json
    with open(sys.argv[1], encoding="utf-8") as f:
        found = durations_from_timelog(f)
    DURATIONS.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(found)} units, {sum(found.values()):.0f} s in all, written to {DURATIONS}")
