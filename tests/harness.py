"""A real platform for tests: every service as its own process, on a private RabbitMQ vhost and
(for PostgreSQL) private schemas, with the test clock and fault injection switched on."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("CONSULT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_HOST = os.environ.get("CONSULT_TEST_AMQP_HOST", "127.0.0.1:5672")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=60)


def _free_offset() -> int:
    """A port offset whose ports (every service, and replicas #2 and #3) are free now and all lie
    below Linux's ephemeral range (32768+), where an outgoing connection of this very test run
    (to RabbitMQ, PostgreSQL, a service) could hold one and make a service fail to bind."""
    import socket

    from services.common.config import HTTP_PORTS

    for _ in range(200):
        offset = random.randint(200, 2000) * 10
        ports = [base + offset + 1000 * n for base in HTTP_PORTS.values() for n in (0, 2, 3)]
        if max(ports) >= 32768:
            continue
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free port offset for a test platform")


class Platform:
    def __init__(self, backend: str, services: list[str] | None = None):
        self.backend = backend
        self.tag = uuid.uuid4().hex[:8]
        self.vhost = f"consult-test-{self.tag}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"consult-{backend}-"))
        self.prefix = f"t{self.tag}"
        self.offset = _free_offset()
        self.clock_file = self.dir / "clock"
        self.faults_file = self.dir / "faults.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.services = services or self._discover()
        self.env = dict(
            os.environ,
            CONSULT_AMQP_URI=f"amqp://guest:guest@{AMQP_HOST}/{self.vhost}",
            CONSULT_DB=PG_URL if backend == "postgres" else "sqlite",
            CONSULT_DATA_DIR=str(self.dir / "data"),
            CONSULT_PREFIX=self.prefix,
            CONSULT_PORT_OFFSET=str(self.offset),
            CONSULT_TEST_MODE="1",
            CONSULT_CLOCK_FILE=str(self.clock_file),
            CONSULT_FAULTS_FILE=str(self.faults_file),
            CONSULT_CATCHUP_INTERVAL="1",
            CONSULT_RETRY_DELAYS="0.1,0.2",
            CONSULT_RELAY_INTERVAL="0.1",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("CONSULT_SERVICE", None)
        self._admin = None

    @staticmethod
    def _discover() -> list[str]:
        order = ("communities", "audit", "proposals", "deliberation", "decisions", "actions", "notifications",
                 "gateway")
        present = {p.parent.name for p in (ROOT / "services").glob("*/service.py")}
        only = [s.strip() for s in os.environ.get("CONSULT_TEST_SERVICES", "").split(",") if s.strip()]
        return [s for s in order if s in present and (not only or s in only or s in ("communities", "audit", "gateway"))]

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self) -> "Platform":
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        return self

    def port(self, service: str) -> int:
        from services.common.config import HTTP_PORTS

        return HTTP_PORTS[service] + self.offset

    def _http_port(self, name: str) -> int:
        service, _, n = name.partition("#")
        return self.port(service) + (1000 * int(n) if n else 0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port('gateway')}"

    def start(self, *services: str, wait: bool = True) -> None:
        started = list(services or self.services)
        for service in started:  # all at once, then wait: no service needs another to start
            log = open(self.dir / f"{service}.log", "ab")  # noqa: SIM115
            self.procs[service] = subprocess.Popen(
                [sys.executable, "-m", "services.common.runner", service], env=self.env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT)
        if wait:
            for service in started:
                self.wait_ready(service)

    def start_replica(self, service: str, n: int = 2) -> str:
        """A further instance of a service (its own HTTP port), named '<service>#<n>'."""
        name = f"{service}#{n}"
        env = dict(self.env, CONSULT_SERVICE=service, CONSULT_HTTP_PORT=str(self.port(service) + 1000 * n))
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "services.common.runner", service], env=env,
                                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(name)
        return name

    def wait_ready(self, service: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[service]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{service} exited ({proc.returncode}):\n{self.log(service)[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{self._http_port(service)}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready:\n{self.log(service)[-3000:]}")

    def stop(self, *services: str, sig=signal.SIGTERM) -> None:
        for service in services or list(self.procs):
            proc = self.procs.pop(service, None)
            if proc and proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def kill(self, service: str) -> None:
        self.stop(service, sig=signal.SIGKILL)

    def log(self, service: str) -> str:
        path = self.dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def teardown(self) -> None:
        self.stop()
        try:
            _rabbitmqctl("delete_vhost", self.vhost)
        except Exception:  # noqa: BLE001
            pass
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                schemas = [r[0] for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{self.prefix}\\_%",))]
                for s in schemas:
                    conn.execute(f'DROP SCHEMA "{s}" CASCADE')
        if os.environ.get("CONSULT_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "services.cli.main", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, input=input_text)
        if check and proc.returncode != 0:
            raise AssertionError(f"consult {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def rpc(self, service: str, method: str, *args, **kwargs):
        from nameko.standalone.rpc import ClusterRpcProxy

        with ClusterRpcProxy({"AMQP_URI": self.env["CONSULT_AMQP_URI"]}, timeout=60) as proxy:
            reply = getattr(getattr(proxy, service), method)(*args, **kwargs)
        if isinstance(reply, dict) and "ok" in reply:
            if not reply["ok"]:
                raise AssertionError(reply["problem"])
            return reply["result"]
        return reply

    @property
    def admin_token(self) -> str:
        """A fresh platform-admin token: tests move the shared clock back and forth, so a token
        issued at one test's frozen time may have expired (or not begun) at the next test's."""
        return self.rpc("communities", "bootstrap_admin", "tests")["token"]

    def api(self, method: str, path: str, token: str | None = None, json_body=None, data=None,
            headers: dict | None = None, expect: int | None = None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            h.setdefault("Content-Type", "application/json")
            data = json.dumps(json_body, ensure_ascii=False).encode()
        resp = requests.request(method, self.url + path, data=data, headers=h, timeout=60)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text[:2000]}"
        return resp

    def set_clock(self, instant: datetime | None) -> None:
        from services.common import clock

        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(clock.format(instant) if instant else "")
        os.replace(tmp, self.clock_file)

    def set_faults(self, rules: list[dict]) -> None:
        self.faults_file.write_text(json.dumps(rules))

    def metrics(self, service: str) -> str:
        return requests.get(f"http://127.0.0.1:{self.port(service)}/metrics", timeout=10).text

    def new_community(self, name: str = "test community") -> dict:
        """A fresh community with a worker token, so tests never see each other's data."""
        c = self.api("POST", "/api/v1/communities", self.admin_token, {"name": name}, expect=201).json()["id"]
        worker = self.rpc("communities", "register_person", "tests", c, "社工 worker", True, None, None)["id"]
        self.rpc("communities", "grant_role", "tests", c, worker, "community_worker", None, None)
        token = self.rpc("communities", "issue_token", c, worker, 30, "tests")["token"]
        return {"id": c, "worker": worker, "token": token}

    def audit_entries(self, community: str, token: str, case: str | None = None) -> list[dict]:
        out, start = [], 0
        while True:
            q = f"?from={start}&limit=1000" + (f"&case={case}" if case else "")
            page = self.api("GET", f"/api/v1/communities/{community}/audit/entries{q}", token, expect=200).json()
            out += page["entries"]
            if len(page["entries"]) < 1000:
                return out
            start = out[-1]["index"] + 1


@contextmanager
def running(backend: str, services: list[str] | None = None, **env: str):
    """A started platform of its own (extra settings in `env`), torn down afterwards."""
    p = Platform(backend, services).setup()
    p.env.update(env)
    try:
        p.start()
        yield p
    finally:
        p.teardown()


def frozen_now() -> datetime:
    """A whole second for freezing the shared clock, strictly after everything recorded so far.
    Rounding now *down* would freeze the clock up to a second before a role or residence that was
    granted a moment ago, and the platform would rightly say it does not hold yet."""
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)


def wait_for(predicate, timeout: float = 20, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")
