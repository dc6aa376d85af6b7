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
# Events in the audit logs of the platforms torn down in this session that break their contract
# (services/contracts); tests/conftest.py fails the session when there are any.
CONTRACT_VIOLATIONS: list[str] = []
CONTRACT_CHECKS: list[tuple[str, int, float]] = []  # (platform, events checked, seconds)
PG_URL = os.environ.get("CONSULT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_HOST = os.environ.get("CONSULT_TEST_AMQP_HOST", "127.0.0.1:5672")


def postgres_reachable() -> bool:
    """Whether the test PostgreSQL answers (a unit test's postgres parameter needs it)."""
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=2).close()
        return True
    except Exception:  # noqa: BLE001
        return False


def store_settings(backend: str, tmp_path, monkeypatch, prefix: str):
    """Settings for a unit test's own stores on `backend` ("sqlite", or "postgres": skipped when it
    does not answer), under a fresh `prefix` (its schemas on PostgreSQL) and data folder `tmp_path`."""
    import pytest

    from services.common import config

    if backend == "postgres" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    monkeypatch.setenv("CONSULT_DB", PG_URL if backend == "postgres" else "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_PREFIX", f"{prefix}{uuid.uuid4().hex[:8]}")
    return config.load()


def drop_schema(schema: str) -> None:
    """Drop a unit test's PostgreSQL schema and everything in it."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def _free_offset(shifts: tuple = (0,)) -> int:
    """A port offset whose ports (every service, and replicas #2 and #3) are free now and all lie
    below Linux's ephemeral range (32768+), where an outgoing connection of this very test run
    (to RabbitMQ, PostgreSQL, a service) could hold one and make a service fail to bind."""
    import socket

    from services.common.config import HTTP_PORTS

    for _ in range(200):
        offset = random.randint(200, 2000) * 10
        ports = [base + offset + shift + 1000 * n for base in HTTP_PORTS.values() for n in (0, 2, 3) for shift in shifts]
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
    """One deployment under test. Its RabbitMQ vhost is its own, or with `vhost_of` another
    platform's: two deployments told apart by their CONSULT_PREFIX alone, as two cities or staging
    beside production on one broker are."""

    def __init__(self, backend: str, services: list[str] | None = None, vhost_of: "Platform | None" = None,
                 cells: tuple = ()):
        self.backend = backend
        self.cells = tuple(cells)  # community cells (services/common/cells.py): each a process per stage service
        self.tag = uuid.uuid4().hex[:8]
        self.owns_vhost = vhost_of is None
        self.vhost = f"consult-test-{self.tag}" if vhost_of is None else vhost_of.vhost
        self.dir = Path(tempfile.mkdtemp(prefix=f"consult-{backend}-"))
        self.prefix = f"t{self.tag}"
        self.offset = _free_offset(tuple(100 * n for n in range(len(self.cells) + 1)))
        self.clock_file = self.dir / "clock"
        self.faults_file = self.dir / "faults.json"
        self.procs: dict[str, subprocess.Popen] = {}
        self.services = services or self._discover()
        from services.common.config import CLASSIC

        self.env = dict(
            os.environ,
            CONSULT_AMQP_URI=f"amqp://guest:guest@{AMQP_HOST}/{self.vhost}",
            CONSULT_DB=PG_URL if backend == "postgres" else "sqlite",
            CONSULT_DATA_DIR=str(self.dir / "data"),
            CONSULT_PREFIX=self.prefix,
            CONSULT_PORT_OFFSET=str(self.offset),
            CONSULT_TEST_MODE="1",
            # Test platforms run on classic queues: every platform declares ~80 queues on a vhost
            # of its own and deletes them minutes later, and that churn of quorum queues (a Raft
            # group each) stalled RabbitMQ 3.10 here -- `add_vhost` hung for minutes in a CI run.
            # The quorum path is tested where it matters (test_queue_types, test_rabbit_cluster,
            # `consult bench`); CONSULT_TEST_QUEUE_TYPE=quorum runs the whole suite on it.
            CONSULT_QUEUE_TYPE=os.environ.get("CONSULT_TEST_QUEUE_TYPE", CLASSIC),
            CONSULT_CLOCK_FILE=str(self.clock_file),
            CONSULT_FAULTS_FILE=str(self.faults_file),
            # Shorter than production's (5 s, 0.2 s) so a test sees a gap filled within seconds, but
            # not so short that idle platforms eat the machine: each catch-up asks every source for
            # its log head over RPC. At 1 s and 0.1 s an idle platform used 31 % of a core; at
            # these, 15 % (CPU-seconds of its processes over 30 idle seconds).
            CONSULT_CATCHUP_INTERVAL="2",
            CONSULT_RETRY_DELAYS="0.1,0.2",
            CONSULT_RELAY_INTERVAL="0.5",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("CONSULT_SERVICE", None)
        self.env.pop("CONSULT_CELL", None)
        if self.cells:
            self.env["CONSULT_CELLS"] = ",".join(self.cells)
        else:
            self.env.pop("CONSULT_CELLS", None)
        self._admin = None

    @staticmethod
    def _discover() -> list[str]:
        from services.common import registry

        only = [s.strip() for s in os.environ.get("CONSULT_TEST_SERVICES", "").split(",") if s.strip()]
        # The web pages are started by the browser tests that need them (web_world).
        return [s for s in registry.SERVICES if s != "web"
                and (not only or s in only or s in ("communities", "audit", "gateway"))]

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self) -> "Platform":
        if self.owns_vhost:
            _rabbitmqctl("add_vhost", self.vhost)
            _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        return self

    def broker_names(self) -> dict[str, set[str]]:
        """Every exchange and queue on the platform's vhost (shared or not), RabbitMQ's own aside."""
        def names(kind: str) -> set[str]:
            out = _rabbitmqctl(f"list_{kind}", "-p", self.vhost, "name", "--no-table-headers")
            return {n.strip() for n in out.splitlines() if n.strip() and not n.strip().startswith("amq.")}

        return {"exchanges": names("exchanges"), "queues": names("queues")}

    def port(self, service: str) -> int:
        from services.common.config import HTTP_PORTS

        return HTTP_PORTS[service] + self.offset

    def process(self, name: str) -> tuple[str, str | None]:
        """(service, cell) of a process name: `audit`, `c1-audit`, `audit#2` (a replica)."""
        from services.common import cells

        base = name.partition("#")[0]
        for cell in self.cells:
            if base.startswith(f"{cell}-") and cells.in_cells(base[len(cell) + 1:]):
                return base[len(cell) + 1:], cell
        return base, None

    def processes(self, *services: str) -> list[str]:
        """Process names for services (all of the platform's by default): a stage service once per
        cell (`c1-audit`, `c2-audit`), a process name as given."""
        from services.common import cells

        names = []
        for name in services or self.services:
            if name in self.services:
                names += [cells.label(s, c) for s, c in cells.processes(self.settings, [name])]
            else:
                names.append(name)
        return names

    def _http_port(self, name: str) -> int:
        from services.common import cells

        service, cell = self.process(name)
        n = name.partition("#")[2]
        return cells.in_process(self.settings, service, cell).http_port(service) + (1000 * int(n) if n else 0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port('gateway')}"

    def start(self, *services: str, wait: bool = True) -> None:
        """Start services (every one by default), each in every cell, or processes by name (`c2-audit`)."""
        started = self.processes(*services)
        for name in started:  # all at once, then wait: no service needs another to start
            service, cell = self.process(name)
            log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.common.runner", service], env=dict(self.env, CONSULT_CELL=cell or ""),
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
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
        # Signal every one, then wait for each: a graceful stop takes a service a second or more,
        # and the suite stops a platform's eight services dozens of times.
        stopping = []
        for service in (self.processes(*services) if services else list(self.procs)):
            proc = self.procs.pop(service, None)
            if proc and proc.poll() is None:
                proc.send_signal(sig)
                stopping.append(proc)
        deadline = time.monotonic() + 20
        for proc in stopping:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self, service: str) -> None:
        self.stop(service, sig=signal.SIGKILL)

    def log(self, service: str) -> str:
        path = self.dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_digest(self, lines: int = 12) -> str:
        """Each process's last warnings and errors, for a failed test's report: CI runs in a fresh
        clone whose platform directories are gone afterwards, so what the services said about a
        stall is printed with the failure or never seen."""
        out = []
        for name in sorted({*self.procs, *(p.stem for p in self.dir.glob("*.log"))}):
            said, previous = [], ""
            for line in self.log(name).splitlines():
                # a log line of concern, or the line that ends a traceback and names its exception
                # (`amqp.exceptions.ConnectionForced: ...` says neither "Error" nor "Exception")
                ends_traceback = previous.startswith(" ") and not line.startswith((" ", "20"))
                if ends_traceback or any(w in line for w in ("CRITICAL", "ERROR", "WARNING", "Traceback", "Error:",
                                                             "Exception")):
                    said.append(line)
                previous = line
            if said:
                out.append(f"--- {name}: {len(said)} warning/error line(s), the last {min(lines, len(said))}:")
                out.extend(line[:400] for line in said[-lines:])
        return "\n".join(out) or "(no warnings or errors in any service's log)"

    def check_event_contracts(self) -> list[str]:
        """Every event the audit service recorded, in every community's log, checked against its
        contract: the services' real output, whatever the tests made them do. Read from the audit
        store directly once the services stopped (one query, no service needed)."""
        import services.contracts as contracts
        from services.common import cells
        from services.common.store import state_engine

        if "audit" not in self.services:
            return []
        started = time.monotonic()
        found, count = [], 0
        for cell in self.cells or (None,):  # each cell's audit keeps its own communities' logs
            settings = cells.in_process(self.settings.for_service("audit"), "audit", cell)  # CONSULT_DB_AUDIT, if set
            count += self._check_audit_store(state_engine("audit", settings), contracts, found)
        CONTRACT_CHECKS.append((f"{self.backend}/{self.tag}", count, time.monotonic() - started))
        return found

    def _check_audit_store(self, engine, contracts, found: list) -> int:
        """Check one audit store's entries into `found`; returns how many it read."""
        import sqlalchemy as sa

        count = 0
        try:
            if not sa.inspect(engine).has_table("audit_entries"):
                return 0
            with engine.connect() as conn:
                for community, idx, body in conn.execute(sa.text("SELECT community, idx, body FROM audit_entries")):
                    count += 1
                    env = json.loads(body)
                    problems = contracts.problems(env)
                    if problems:
                        found.append(f"{self.backend} platform {self.tag}, community {community} entry {idx} "
                                     f"({env.get('source')} {env.get('type')} v{env.get('event_version')}): "
                                     + "; ".join(problems))
        finally:
            engine.dispose()
        return count

    def teardown(self) -> None:
        self.stop()
        try:
            CONTRACT_VIOLATIONS.extend(self.check_event_contracts())
        except Exception as exc:  # noqa: BLE001 - a platform that never got far: nothing to check, say so
            CONTRACT_CHECKS.append((f"{self.backend}/{self.tag} (not checked: {exc.__class__.__name__}: {exc})"[:300],
                                    0, 0.0))
        if self.owns_vhost:
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
    def cli(self, *args: str, check: bool = True, input_text: str | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "services.cli.main", *args], env=dict(self.env, **(env or {})), cwd=ROOT,
                              capture_output=True, text=True, timeout=120, input=input_text)
        if check and proc.returncode != 0:
            raise AssertionError(f"consult {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    @property
    def settings(self):
        """The platform's settings as its services read them (from its environment, not this process's)."""
        from services.common import config

        return config.load(self.env)

    def rpc_proxy(self, timeout: float = 60):
        """A standalone RPC proxy to this platform's services (its prefix, its vhost)."""
        from services.common.rpc import cluster_proxy

        return cluster_proxy(self.settings, timeout=timeout)

    def rpc(self, service: str, method: str, *args, **kwargs):
        with self.rpc_proxy() as proxy:
            reply = getattr(getattr(proxy, service), method)(*args, **kwargs)
        if isinstance(reply, dict) and "ok" in reply:
            if not reply["ok"]:
                raise AssertionError(reply["problem"])
            return reply["result"]
        return reply

    def log_of(self, source: str, community: str | None = None) -> list[dict]:
        """A source's whole log as envelopes, in order (of one community, if named)."""
        out, start = [], 1
        while batch := self.rpc(source, "read_log", start, 1000):
            out += batch
            start = batch[-1]["position"] + 1
        return [e for e in out if community is None or e["community"] == community]

    @property
    def admin_token(self) -> str:
        """A fresh platform-admin token: tests move the shared clock back and forth, so a token
        issued at one test's frozen time may have expired (or not begun) at the next test's."""
        return self.rpc("communities", "bootstrap_admin", "tests")["token"]

    def api(self, method: str, path: str, token: str | None = None, json_body=None, data=None,
            headers: dict | None = None, expect: int | None = None):
        # The suite reads problems in English; a test of the default language (zh-CN) sends
        # {"Accept-Language": None}, which requests leaves out.
        h = {"Accept-Language": "en", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            h.setdefault("Content-Type", "application/json")
            data = json.dumps(json_body, ensure_ascii=False).encode()
        resp = requests.request(method, self.url + path, data=data, headers=h, timeout=60)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text[:2000]}"
        problems = self.response_problems(method, path, resp)
        assert not problems, f"{method} {path} answered {resp.status_code} outside its published schema: {problems}"
        return resp

    def response_problems(self, method: str, path: str, resp) -> list[str]:
        """Where a success answer breaks the response schema `/api/openapi.json` publishes for its
        route (every test's API call is checked, so a published schema cannot drift from what the
        services really answer). Problems and files are not checked here."""
        if not 200 <= resp.status_code < 300 or resp.status_code == 204:
            return []
        if not resp.headers.get("Content-Type", "").startswith("application/json"):
            return []
        route = self._published_route(method, path.split("?", 1)[0])
        if route is None:
            return []
        answer = route["responses"].get(str(resp.status_code))
        if answer is None:
            return [f"status {resp.status_code} is not published (only {sorted(route['responses'])})"]
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return []
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
                for e in list(validator.iter_errors(resp.json()))[:5]]

    def _published_route(self, method: str, path: str) -> dict | None:
        """The OpenAPI operation of (method, path): the document as the platform's gateway serves it
        (read once per platform), the route found by the gateway's own routing table."""
        from services.gateway import router, routes_load

        if getattr(self, "_published", None) is None:
            routes_load.load_all()
            self._published = requests.get(self.url + "/api/openapi.json", timeout=60).json()
        try:
            route, _params = router.find(method.upper(), path)
        except router.Problem:  # no such route: the test expects the gateway's own 404 / 405
            return None
        return self._published["paths"][route.path][route.method.lower()]

    def set_clock(self, instant: datetime | None) -> None:
        from services.common import clock

        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(clock.format(instant) if instant else "")
        os.replace(tmp, self.clock_file)

    def set_faults(self, rules: list[dict]) -> None:
        self.faults_file.write_text(json.dumps(rules))

    def metrics(self, service: str) -> str:
        return requests.get(f"http://127.0.0.1:{self.port(service)}/metrics", timeout=10).text

    def new_community(self, name: str = "test community", rules: dict | None = None) -> dict:
        """A fresh community with a worker token, so tests never see each other's data; `rules`
        are settings it starts with (changing them later takes a second person's confirmation)."""
        body = {"name": name, **({"rules": rules} if rules else {})}
        c = self.api("POST", "/api/v1/communities", self.admin_token, body, expect=201).json()["id"]
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
def running(backend: str, services: list[str] | None = None, vhost_of: Platform | None = None, cells: tuple = (),
            **env: str):
    """A started platform of its own (extra settings in `env`; on another platform's vhost with
    `vhost_of`; with community cells), torn down afterwards."""
    p = Platform(backend, services, vhost_of, cells).setup()
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


# Waits are for eventual consistency (a consumer, a timer, a restarted service), and CI shares two
# cores with a whole platform per worker: a wait that succeeds returns at once whatever its limit,
# so every limit is stretched by this factor rather than tuned test by test for the load of the day.
WAIT_SCALE = float(os.environ.get("CONSULT_TEST_WAIT_SCALE", "3"))


def wait_for(predicate, timeout: float = 20, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout * WAIT_SCALE
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")
