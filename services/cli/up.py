"""`consult up`: run every service and the gateway as child processes, until Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services.common import config
from services.common.bus import BrokerUnavailable, check_broker, declare_all

from .rpc import CliError

ROOT = Path(__file__).resolve().parents[1]
# Start order: the directory first (others ask it), the gateway last.
ORDER = ("communities", "audit", "proposals", "deliberation", "decisions", "actions", "notifications", "gateway")


def discover() -> list[str]:
    present = {p.parent.name for p in ROOT.glob("*/service.py")}
    return [s for s in ORDER if s in present] + sorted(present - set(ORDER))


def _why(log: Path | None) -> str:
    """The last line a service wrote before it died (its error), and where its whole log is."""
    if log is None or not log.exists():
        return ""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return (f": {lines[-1][:300]}" if lines else "") + f" (log: {log})"


def wait_ready(settings: config.Settings, service: str, proc: subprocess.Popen, timeout: float = 60,
               log: Path | None = None) -> None:
    url = f"http://127.0.0.1:{settings.http_port(service)}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"the {service} service exited with status {proc.returncode} while starting{_why(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise CliError(f"the {service} service did not become ready within {timeout:.0f} s ({url})")


def start(services: list[str] | None = None, env: dict | None = None, log_dir: Path | None = None) -> list:
    settings = config.load()
    try:
        check_broker(settings)
    except BrokerUnavailable as exc:
        raise CliError(str(exc), 3) from None
    declare_all(settings)
    procs = []
    child_env = dict(os.environ, **(env or {}))
    try:
        # All at once: no service needs another to start (consumers catch up when sources appear).
        for service in services or discover():
            out = open(log_dir / f"{service}.log", "ab") if log_dir else None  # noqa: SIM115
            proc = subprocess.Popen([sys.executable, "-m", "services.common.runner", service], env=child_env,
                                    stdout=out, stderr=subprocess.STDOUT if out else None)
            procs.append((service, proc))
        for service, proc in procs:
            wait_ready(settings, service, proc, timeout=180, log=log_dir / f"{service}.log" if log_dir else None)
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs: list, timeout: float = 15) -> None:
    for _service, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for _service, proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
