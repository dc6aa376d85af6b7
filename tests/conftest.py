import faulthandler
import http
import http.server
import os
import sys
import time

import pytest

# nameko.web imports eventlet.wsgi, whose green import of http.server leaves `http.server` (in
# sys.modules and as the package's attribute) a copy bound to eventlet's green sockets. A test's
# webhook receiver built on that copy, serving from a real thread, hangs the test run. Let nameko
# make its copy now, then put the real module back for everything imported after this file.
_REAL_HTTP_SERVER = http.server
import nameko.web.handlers  # noqa: E402,F401

sys.modules["http.server"] = _REAL_HTTP_SERVER
http.server = _REAL_HTTP_SERVER

from tests import harness
from tests.harness import running

BACKENDS = [b.strip() for b in os.environ.get("CONSULT_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]


@pytest.fixture(scope="session", params=BACKENDS)
def platform(request):
    with running(request.param) as p:
        yield p


@pytest.fixture(autouse=True)
def _test_process_stays_unpatched(request):
    """No test may leave this process monkey-patched for eventlet (by importing a service's or the
    CLI's entry point, say): every later test in the worker would then run on green sockets and
    threads, and a browser test waits on eventlet's hub until CI's limit. Fail the test that did it,
    by name, instead."""
    yield
    from eventlet import patcher

    patched = [m for m in ("socket", "thread", "select", "time") if patcher.is_monkey_patched(m)]
    assert not patched, (f"{request.node.nodeid} monkey-patched the test process for eventlet ({patched}); "
                         "run that code in a subprocess")


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """(pytest-xdist, `--dist loadgroup`) one worker runs every test of one backend, the other
    tests go file by file (tests/xdist_groups.py says why)."""
    if config.getvalue("dist") == "loadgroup":
        from tests.xdist_groups import BackendScheduling

        return BackendScheduling(config, log)
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A backstop behind pytest-timeout: its signal can only interrupt Python code, so a test stuck
    in a C call (a lock wait in a driver, a browser's pipe) would hold the run until CI's own limit
    and say nothing. Two minutes past its time limit the process prints every thread's stack and
    exits; under xdist the worker is replaced and the test reported as crashed, so the run ends
    with the place it hung."""
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(item.config.getini("timeout") or 300)
    faulthandler.dump_traceback_later(limit + 120, exit=True)
    started = time.time()
    _timelog("start", item.nodeid)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        _timelog(f"end {time.time() - started:.1f}", item.nodeid)


def _timelog(what: str, nodeid: str) -> None:
    """With CONSULT_TEST_TIMELOG set (.ci/run sets it), one line per test start and end, written
    as it happens: when a run is stopped at its limit, the log names the tests still running and
    where the time went, which a stopped pytest cannot print."""
    path = os.environ.get("CONSULT_TEST_TIMELOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {os.environ.get('PYTEST_XDIST_WORKER', '-')} {what} {nodeid}\n")


def pytest_sessionfinish(session, exitstatus):
    """Every event the integration runs recorded must validate against its contract: a service
    that records a field its contract does not name (or misses one) fails the session, though
    every test passed. Under pytest-xdist each worker hands its checks to the controller, which
    decides for the run (a worker's own exit status would not fail it)."""
    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        out["contract_checks"] = [list(c) for c in harness.CONTRACT_CHECKS]
        out["contract_violations"] = list(harness.CONTRACT_VIOLATIONS)
    if harness.CONTRACT_VIOLATIONS and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """(pytest-xdist, on the controller) a worker's contract checks join the run's."""
    out = getattr(node, "workeroutput", None) or {}
    harness.CONTRACT_CHECKS.extend(tuple(c) for c in out.get("contract_checks", ()))
    harness.CONTRACT_VIOLATIONS.extend(out.get("contract_violations", ()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    checks, violations = harness.CONTRACT_CHECKS, harness.CONTRACT_VIOLATIONS
    if not checks:
        return
    events, seconds = sum(c[1] for c in checks), sum(c[2] for c in checks)
    terminalreporter.write_line(f"event contracts: {events} recorded events of {len(checks)} platform(s) checked "
                                f"in {seconds:.2f} s, {len(violations)} violation(s)")
    for name, _count, _seconds in checks:
        if "not checked" in name:
            terminalreporter.write_line(f"  {name}")
    for v in violations[:50]:
        terminalreporter.write_line(f"  CONTRACT VIOLATION {v}", red=True)
    if len(violations) > 50:
        terminalreporter.write_line(f"  … and {len(violations) - 50} more", red=True)
