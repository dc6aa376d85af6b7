"""Bare baselines measured in the same run as the platform, on the same backend and broker: what
the machine does without the platform's logic, so every platform figure is read as a ratio.

- event-store appends: an eventsourcing Application saving trivial aggregates on the backend;
- nameko RPC plus event round trips from 10 clients (`bench/echo.py`), timed to the event's arrival;
- raw SHA-256 of vote-sized envelopes.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.cpu import CpuMonitor
from bench.load import percentile

ROOT = Path(__file__).resolve().parents[1]
ENVELOPE = json.dumps({
    "actor": "sealed", "aggregate": {"id": "5f0c3c4e-3b1a-4d7e-9a51-0d4b8a9e2f11", "type": "Vote", "version": 1},
    "case": "0b7e0c86-8f7c-4b34-9a3e-4fd2b6c1d0aa", "causation": None, "community": "c2f0a4a8-6d0e-4c1b-8f35-1b2c3d4e5f60",
    "data": {"ballot": "8a1f0c2e-3d4b-4c5d-8e6f-7a8b9c0d1e2f", "channel": "online", "choice": "agree",
             "headcount": 1, "receipt": "9" * 64, "weight": "86.50"},
    "event_version": 1, "id": "3c9a1d2e-4f5b-4a6c-8d7e-9f0a1b2c3d4e", "occurred_at": "2026-11-26T08:30:00.000000Z",
    "position": 123456, "schema": "consult.event/1", "source": "decisions", "type": "VoteCast"},
    sort_keys=True, separators=(",", ":")).encode()


def sha256(seconds: float = 1.0) -> dict:
    """Hashes per second of a vote's envelope bytes."""
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            hashlib.sha256(ENVELOPE).digest()
        n += 1000
    elapsed = time.perf_counter() - started
    return {"ops": n, "per_s": n / elapsed, "bytes": len(ENVELOPE)}


def event_store_appends(settings, ops: int) -> dict:
    """Appends per second of one-event aggregates, one transaction each, one client."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    from services.common.store import event_store_env

    env = event_store_env("benchbare", settings)
    app = Application(env=env)
    try:
        for _ in range(10):  # connections, statements
            app.save(Aggregate())
        started = time.perf_counter()
        for _ in range(ops):
            app.save(Aggregate())
        elapsed = time.perf_counter() - started
    finally:
        app.close()
    return {"ops": ops, "per_s": ops / elapsed, "ms_each": elapsed / ops * 1000}


class EchoService:
    """The baseline nameko service as its own process on the platform's vhost."""

    def __init__(self, amqp_uri: str, log_dir: Path):
        env = dict(os.environ, CONSULT_AMQP_URI=amqp_uri, PYTHONUNBUFFERED="1")
        self.log = open(log_dir / "bench_echo.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.echo"], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"ready" not in Path(self.log.name).read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the baseline echo service did not start: {Path(self.log.name).read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def rpc_event(amqp_uri: str, log_dir: Path, clients: int, ops: int, shared_cpu: dict | None = None) -> dict:
    """RPC plus event round trips from `clients` clients: each call is done when its event has
    reached a consumer in this process. Rate = round trips / time to the last event."""
    from kombu import Connection, Consumer, Queue
    from nameko.events import get_event_exchange
    from nameko.standalone.rpc import ClusterRpcProxy

    from bench import echo

    service = EchoService(amqp_uri, log_dir)
    arrived: dict[int, float] = {}
    sent: dict[int, float] = {}
    done = threading.Event()
    try:
        with Connection(amqp_uri) as conn:
            queue = Queue(f"bench-echo-{os.getpid()}", exchange=get_event_exchange(echo.NAME, {}),
                          routing_key=echo.EVENT, auto_delete=True)

            def on_message(body, message):
                arrived[json.loads(body)["i"] if isinstance(body, str) else body["i"]] = time.monotonic()
                message.ack()
                if len(arrived) >= ops + clients:
                    done.set()

            consumer = Consumer(conn.channel(), queues=[queue], callbacks=[on_message], accept=["json"])
            consumer.consume()

            def drain():
                while not done.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except Exception:  # noqa: BLE001 - socket.timeout between messages
                        pass

            drainer = threading.Thread(target=drain, daemon=True)
            drainer.start()
            counter = iter(range(ops))
            lock = threading.Lock()

            def client(warm: int):
                with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as proxy:
                    proxy.bench_echo.echo({"i": warm, "pad": "x" * 300})  # warm-up: connection, reply queue
                    barrier.wait()
                    while True:
                        with lock:
                            i = next(counter, None)
                        if i is None:
                            return
                        sent[i] = time.monotonic()
                        proxy.bench_echo.echo({"i": i, "pad": "x" * 300})

            barrier = threading.Barrier(clients + 1)
            threads = [threading.Thread(target=client, args=(ops + k,), daemon=True) for k in range(clients)]
            for t in threads:
                t.start()
            barrier.wait(timeout=120)
            monitor = CpuMonitor({"bench_echo": service.proc.pid, "benchmark clients": os.getpid()},
                                 shared=shared_cpu).start()
            started = time.monotonic()
            for t in threads:
                t.join(300)
            deadline = time.monotonic() + 60
            while len([i for i in sent if i in arrived]) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
            done.set()
            cpu = monitor.stop()
            drainer.join(5)
    finally:
        service.stop()
    trips = [arrived[i] - sent[i] for i in sent if i in arrived]
    last = max((arrived[i] for i in sent if i in arrived), default=started)
    return {"clients": clients, "ops": len(sent), "completed": len(trips), "per_s": len(trips) / (last - started),
            "p50_s": percentile(trips, 0.5), "p99_s": percentile(trips, 0.99),
            "cpu_ms_per_op": {k: v / max(len(trips), 1) * 1000 for k, v in cpu.items()}}
