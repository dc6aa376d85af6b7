"""`consult up`: run every service and the gateway as child processes, until Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services.common import cells, clock, config, registry
from services.common.bus import BrokerUnavailable, check_broker

from .rpc import CliError


def discover() -> list[str]:
    """The services `consult up` starts, in their start order (the registry's table)."""
    return list(registry.SERVICES)


def _why(log: Path | None) -> str:
    """The last line a service wrote before it died (its error), and where its whole log is."""
    if log is None or not log.exists():
        return ""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return (f": {lines[-1][:300]}" if lines else "") + f" (log: {log})"


def wait_ready(settings: config.Settings, service: str, proc: subprocess.Popen, timeout: float = 60,
               log: Path | None = None) -> None:
    url = f"http://127.0.0.1:{settings.http_port(service)}/readyz"
    name = cells.label(service, settings.cell)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"the {name} service exited with status {proc.returncode} while starting{_why(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise CliError(f"the {name} service did not become ready within {timeout:.0f} s ({url})")


def start(services: list[str] | None = None, env: dict | None = None, log_dir: Path | None = None) -> list:
    settings = config.load()
    try:
        check_broker(settings)  # also declares every stream's queues, before any relay publishes
    except BrokerUnavailable as exc:
        raise CliError(str(exc), 3) from None
    procs = []
    started = []
    child_env = dict(os.environ, **(env or {}))
    try:
        # All at once: no service needs another to start (consumers catch up when sources appear).
        # With cells (CONSULT_CELLS), each cell's stage services are processes of their own.
        for service, cell in cells.processes(settings, services or discover()):
            name = cells.label(service, cell)
            out = open(log_dir / f"{name}.log", "ab") if log_dir else None  # noqa: SIM115
            own_env = dict(child_env, CONSULT_CELL=cell or "")
            proc = subprocess.Popen([sys.executable, "-m", "services.common.runner", service], env=own_env,
                                    stdout=out, stderr=subprocess.STDOUT if out else None)
            procs.append((name, proc))
            started.append((service, cell, name, proc))
        for service, cell, name, proc in started:
            wait_ready(cells.in_process(settings, service, cell), service, proc, timeout=180,
                       log=log_dir / f"{name}.log" if log_dir else None)
    except BaseException:
        stop(procs)
        raise
    return procs


def deployment(training: bool, clock_speed: float | None) -> str | None:
    """`consult up --training [--clock-speed N]`: every process started runs as a training deployment
    (CONSULT_DEPLOYMENT, CONSULT_TRAINING_CLOCK_SPEED in the environment they inherit). A new speed
    for an existing training deployment takes effect from the training time reached. Returns what
    changed in the clock, if anything."""
    if clock_speed is not None and not training:
        raise CliError("--clock-speed is for a training deployment (--training): a production deployment's clock "
                       "is the real one")
    if not training:
        return None
    try:
        if clock_speed is not None:
            os.environ["CONSULT_TRAINING_CLOCK_SPEED"] = repr(config.training_speed(str(clock_speed), "--clock-speed"))
        os.environ["CONSULT_DEPLOYMENT"] = config.TRAINING
        settings = config.load()
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    if clock_speed is None or not (settings.data_dir / clock.TRAINING_CLOCK_FILE).exists():
        return None  # the first service to start makes the clock (at this speed, or a day a minute)
    return clock.start_training_clock(settings.data_dir, clock_speed)[1]


def training_banner() -> str:
    """What `consult up` says about a training deployment once it runs."""
    training = clock.training_clock()
    return (f"consult: TRAINING deployment. Its clock runs {training.speed:g}× real time (now "
            f"{clock.format(clock.now())}); every API answer, notification, audit notice and export says "
            "\"training\", and its record never verifies as a production one. Practise here; decide nothing.")


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
