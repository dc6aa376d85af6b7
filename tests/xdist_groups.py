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

import re

from xdist.scheduler.loadscope import LoadScopeScheduling

BACKENDS = ("sqlite", "postgres")
_PARAMS = re.compile(r"\[(.*)\]$")


def group_of(nodeid: str) -> str:
    """`backend-sqlite` / `backend-postgres` for a test parametrised by a backend (the backend is
    a whole `-`-separated part of its parameter id, as pytest joins them), else its file."""
    found = _PARAMS.search(nodeid)
    if found:
        for part in found.group(1).split("-"):
            if part in BACKENDS:
                return f"backend-{part}"
    return nodeid.split("::", 1)[0]


class BackendScheduling(LoadScopeScheduling):
    """xdist's scope scheduling (largest unit first, the rest as workers free up) with our units."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)

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
