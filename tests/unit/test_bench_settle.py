"""`consult bench` starts a measured run only once the platform's services are idle
(bench/platform.py, PlatformBench.settle): a busy process holds it back, an idle one does not."""
from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from bench.platform import PlatformBench

pytestmark = pytest.mark.timeout(60)


def _bench_over(*procs) -> PlatformBench:
    bench = PlatformBench.__new__(PlatformBench)  # only the processes matter here, no platform is booted
    bench.p = SimpleNamespace(procs={f"p{i}": proc for i, proc in enumerate(procs)})
    return bench


def test_idle_services_let_the_run_start_at_once():
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)  # past the interpreter's start
        assert _bench_over(idle).settle(timeout=10) < 3
    finally:
        idle.kill()
        idle.wait()


def test_a_busy_service_holds_the_run_back_until_it_is_idle_or_the_timeout():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"
                             "time.sleep(30)"])
    try:
        waited = _bench_over(busy).settle(timeout=20)
        assert 2.5 <= waited < 10  # the three busy seconds, then two quiet half-seconds
        still_busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            assert _bench_over(still_busy).settle(timeout=2) >= 2  # never idle: the timeout ends the wait
        finally:
            still_busy.kill()
            still_busy.wait()
    finally:
        busy.kill()
        busy.wait()
