"""CPU seconds of every process of the stack during a run, read from /proc, so a benchmark can
name the bottleneck: each platform service, the benchmark's own clients, RabbitMQ's beam.smp and
the PostgreSQL backends, each backend attributed to the service process holding its connection
(matched by the client's TCP port).

RabbitMQ and PostgreSQL's background processes serve every user of this machine: their figures
include other people's work and are labelled shared.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5), after pid and comm


def pids_named(comm: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == comm:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(target[8:-1])
    except OSError:
        pass
    return out


def _local_ports_by_inode() -> dict[str, int]:
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            ports[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    return ports


class PostgresBackends:
    """The PostgreSQL server processes serving a set of client processes."""

    def __init__(self, url: str, application_name: str):
        self.url, self.application_name = url, application_name

    def by_client(self, clients: dict[str, int]) -> dict[int, str]:
        """backend pid -> the name of the client process whose connection it serves."""
        import psycopg

        ports = _local_ports_by_inode()
        port_owner = {}
        for name, pid in clients.items():
            for inode in _socket_inodes(pid):
                if inode in ports:
                    port_owner[ports[inode]] = name
        with psycopg.connect(self.url, autocommit=True, application_name="consult-bench-monitor") as conn:
            rows = conn.execute("SELECT pid, client_port FROM pg_stat_activity WHERE application_name = %s",
                                (self.application_name,)).fetchall()
        return {pid: port_owner.get(port, "unattributed") for pid, port in rows}


class CpuMonitor:
    """Samples CPU times of named processes every second during a run; `result()` gives CPU
    seconds per name between start() and stop(). A PostgreSQL backend that closes during the run
    keeps the CPU it had when last sampled."""

    def __init__(self, processes: dict[str, int], postgres: PostgresBackends | None = None,
                 shared: dict[str, list[int]] | None = None, interval: float = 1.0):
        self.processes, self.postgres, self.shared, self.interval = processes, postgres, shared or {}, interval
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = self.ended = 0.0

    def _targets(self) -> list[tuple[str, int]]:
        targets = list(self.processes.items())
        for name, pids in self.shared.items():
            targets += [(name, pid) for pid in pids]
        if self.postgres is not None:
            try:
                targets += [(f"postgres backends of {owner}", pid)
                            for pid, owner in self.postgres.by_client(self.processes).items()]
            except Exception:  # noqa: BLE001 - PostgreSQL may be unreachable (fault injection)
                pass
        return targets

    def sample(self, first: bool = False) -> None:
        for name, pid in self._targets():
            value = cpu_seconds(pid)
            if value is None:
                continue
            key = (name, pid)
            if first:
                self._first[key] = value
            else:
                self._first.setdefault(key, 0.0 if self.postgres and name.startswith("postgres backends") else value)
            self._last[key] = value

    def start(self) -> "CpuMonitor":
        self.started = time.monotonic()
        self.sample(first=True)
        self._thread = threading.Thread(target=self._run, name="cpu-monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self.sample()
        self.ended = time.monotonic()
        return self.result()

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (name, pid), last in self._last.items():
            out[name] = out.get(name, 0.0) + max(0.0, last - self._first.get((name, pid), last))
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))
