"""Configuration read once from the environment (12-factor); every service and the CLI use it."""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

# One place for the HTTP port of each service (metrics, health; the gateway also serves the API).
HTTP_PORTS = {
    "gateway": 8080,
    "communities": 9101,
    "audit": 9102,
    "proposals": 9103,
    "deliberation": 9104,
    "decisions": 9105,
    "actions": 9106,
    "notifications": 9107,
    "web": 8081,  # the web pages (services/web), a client of the gateway's API
}


def _flag(env: Mapping[str, str], name: str, default: str = "0") -> bool:
    return env.get(name, default).strip().lower() in ("1", "true", "yes", "y", "on")


def test_mode(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in test mode (CONSULT_TEST_MODE): a test may freeze the clock and
    inject faults. Parsed here only: the settings, the clock and fault injection ask this."""
    return _flag(os.environ if env is None else env, "CONSULT_TEST_MODE")


PRODUCTION, TRAINING = "production", "training"  # what a deployment is: services/common/deployment.py


def _deployment(value: str) -> str:
    if value not in (PRODUCTION, TRAINING):
        raise ValueError(f"CONSULT_DEPLOYMENT must be {PRODUCTION!r} or {TRAINING!r}, not {value!r}")
    return value


QUORUM, CLASSIC = "quorum", "classic"  # RabbitMQ queue types: services/common/bus.py


def _queue_type(value: str) -> str:
    """CONSULT_QUEUE_TYPE: quorum (replicated over a cluster's nodes; the default) or classic (a
    single-node broker, or a deployment whose queues were declared classic: docs/architecture.md)."""
    value = value.strip().lower() or QUORUM
    if value not in (QUORUM, CLASSIC):
        raise ValueError(f"CONSULT_QUEUE_TYPE must be {QUORUM!r} or {CLASSIC!r}, not {value!r}")
    return value


def training_speed(value: str | None, name: str = "CONSULT_TRAINING_CLOCK_SPEED") -> float | None:
    """How many training seconds pass per real second (1440: a day a minute). Unset: the training
    clock's own (or the default when it starts)."""
    if value is None or not value.strip():
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not 1 <= speed <= 10_000_000:
        raise ValueError(f"{name} must be a number from 1 to 10000000, not {value!r}")
    return speed


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    db: str
    data_dir: Path
    prefix: str
    test_mode: bool
    clock_file: str | None
    relay_interval: float
    catchup_interval: float
    retry_delays: tuple[float, ...]
    port_offset: int = 0
    extra: dict = field(default_factory=dict)
    deployment: str = PRODUCTION  # CONSULT_DEPLOYMENT: production, or training (marked everywhere)
    training_clock_speed: float | None = None
    # CONSULT_EVIDENCE_MAX_BYTES: the largest evidence file accepted (the gateway's body limit follows it).
    evidence_max_bytes: int = 5 * 1024 * 1024
    transient_backoff_max: float = 10.0  # CONSULT_TRANSIENT_BACKOFF_MAX: longest wait between transient retries
    consumer_rpc_timeout: float = 30.0  # CONSULT_CONSUMER_RPC_TIMEOUT: a consumer's or timer's RPC to another service
    # A service process (services/common/runner.py): the address its HTTP server binds, how many
    # requests or messages it works on at once, its log level.
    bind: str = "127.0.0.1"  # CONSULT_BIND (0.0.0.0 in a container)
    max_workers: int = 10  # CONSULT_MAX_WORKERS
    log_level: str = "INFO"  # CONSULT_LOG_LEVEL
    # The web pages (services/web): the gateway they call, and cookies behind HTTPS.
    web_api_url: str | None = None  # CONSULT_WEB_API_URL, e.g. http://gateway:8080 in a container
    web_secure_cookies: bool = False  # CONSULT_WEB_SECURE_COOKIES
    web_trust_proxy: bool = False  # CONSULT_WEB_TRUST_PROXY: believe X-Forwarded-Proto
    # The audit service's checkpoints: how often, and the signing key files.
    audit_checkpoint_every: int = 1000  # CONSULT_AUDIT_CHECKPOINT_EVERY (entries)
    audit_checkpoint_seconds: float = 60.0  # CONSULT_AUDIT_CHECKPOINT_SECONDS
    audit_key_file: str | None = None  # CONSULT_AUDIT_KEY_FILE (default: in the data folder)
    audit_training_key_file: str | None = None  # CONSULT_AUDIT_TRAINING_KEY_FILE
    # CONSULT_DECISIONS_KEY: the key that seals secret votes (default: a file in the data folder).
    # A secret: kept out of the settings' repr, so it cannot reach a log line that prints them.
    decisions_key: str | None = field(default=None, repr=False)
    # CONSULT_BUS_KEY: the key relays vouch for their messages with (voucher.py; default: a file in
    # the data folder). A secret too.
    bus_key: str | None = field(default=None, repr=False)
    # CONSULT_TOKEN_KEY: the directory's key for signing sign-in tokens (signed_token.py; default: a
    # file in the data folder). A secret too.
    token_key: str | None = field(default=None, repr=False)
    # HTTP ports set one by one (CONSULT_<SERVICE>_PORT; CONSULT_HTTP_PORT for this process's own
    # service, CONSULT_SERVICE, which the runner sets), read with the rest, not at each lookup.
    port_overrides: dict = field(default_factory=dict)
    queue_type: str = QUORUM  # CONSULT_QUEUE_TYPE: how every queue of the event bus is declared (bus.py)
    # CONSULT_DB_<SERVICE>: the database of one service's stores, where it is not CONSULT_DB's
    # (service -> (db, SQLite folder)); `for_service` gives the settings a service opens them with.
    # Their URLs may carry passwords: kept out of the repr.
    service_dbs: dict = field(default_factory=dict, repr=False)
    # The folder of the SQLite files in one service's settings whose CONSULT_DB_<SERVICE> names a
    # folder of its own; None: the data folder.
    store_dir: Path | None = None
    # Community cells (services/common/cells.py, docs/scaling.md). CONSULT_CELLS: the cells of the
    # deployment, in placement order (empty: one deployment-wide set of stage services, as before
    # cells). CONSULT_CELL: the cell this process's stage service belongs to (None: a platform
    # service, or a deployment without cells).
    cells: tuple = ()
    cell: str | None = None

    @property
    def training(self) -> bool:
        return self.deployment == TRAINING

    @property
    def is_postgres(self) -> bool:
        return self.db.startswith("postgres")

    @property
    def backend(self) -> str:
        return "postgres" if self.is_postgres else "sqlite"

    @property
    def sqlite_dir(self) -> Path:
        """Where the SQLite files of the stores are (services/common/store.py)."""
        return self.store_dir or self.data_dir

    def for_service(self, service: str) -> "Settings":
        """The settings a service opens its stores with (services/common/runtime.py): its own
        database if CONSULT_DB_<SERVICE> names one, else CONSULT_DB's. Everything else stays the
        deployment's: the data folder (keys, lock files, the training clock) does not move with
        the service's SQLite files, and a database's locks (table creation, the relay's lease) are
        taken in the database the service writes to."""
        if service not in self.service_dbs:
            return self
        db, folder = self.service_dbs[service]
        return dataclasses.replace(self, db=db, store_dir=folder)

    def http_port(self, service: str) -> int:
        """A service's HTTP port (metrics, health). A stage service of a cell is 100 ports up per
        cell (the first cell's audit on 9202, the second's on 9302), so that cells can share a host."""
        if service in self.port_overrides:
            return self.port_overrides[service]
        from .cells import in_cells

        shift = 100 * (self.cells.index(self.cell) + 1) if self.cell is not None and in_cells(service) else 0
        return HTTP_PORTS[service] + self.port_offset + shift

    def postgres_params(self) -> dict:
        url = urlparse(self.db)
        return {
            "host": url.hostname or "127.0.0.1",
            "port": str(url.port or 5432),
            "user": url.username or "postgres",
            "password": url.password or "",
            "dbname": (url.path or "/postgres").lstrip("/") or "postgres",
        }

    def schema(self, service: str, part: str) -> str:
        """PostgreSQL schema of one service's store: part is 'events' or 'state'. A stage service
        of a cell has its own (`<prefix>_<cell>_<service>_<part>`: services/common/cells.py)."""
        from .cells import own

        return f"{self.prefix}_{own(self, service)}_{part}".replace("-", "_").lower()

    def store_name(self, service: str) -> str:
        """What one service's SQLite files are named after: the service, or `<cell>-<service>` in a cell."""
        from .cells import own

        return own(self, service)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the process environment, or from `environ` (a test harness's or a benchmark's
    platform, which is not this process's)."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("CONSULT_DATA_DIR", "consult-data")).resolve()
    db, folder = _database(env.get("CONSULT_DB", "sqlite"))
    data_dir = folder or data_dir  # 'sqlite:///folder' moves the whole data folder
    delays = env.get("CONSULT_RETRY_DELAYS", "0.2,1,3")
    return Settings(
        amqp_uri=env.get("CONSULT_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
        db=db,
        data_dir=data_dir,
        prefix=env.get("CONSULT_PREFIX") or "consult",  # names every exchange, queue and schema
        test_mode=test_mode(env),
        clock_file=env.get("CONSULT_CLOCK_FILE") or None,
        relay_interval=float(env.get("CONSULT_RELAY_INTERVAL", "0.2")),
        catchup_interval=float(env.get("CONSULT_CATCHUP_INTERVAL", "5")),
        retry_delays=tuple(float(x) for x in delays.split(",") if x.strip()),
        port_offset=int(env.get("CONSULT_PORT_OFFSET", "0")),
        deployment=_deployment(env.get("CONSULT_DEPLOYMENT", PRODUCTION).strip().lower() or PRODUCTION),
        training_clock_speed=training_speed(env.get("CONSULT_TRAINING_CLOCK_SPEED")),
        evidence_max_bytes=evidence_max_bytes(env.get("CONSULT_EVIDENCE_MAX_BYTES")),
        transient_backoff_max=float(env.get("CONSULT_TRANSIENT_BACKOFF_MAX", "10")),
        consumer_rpc_timeout=float(env.get("CONSULT_CONSUMER_RPC_TIMEOUT", "30")),
        bind=env.get("CONSULT_BIND", "127.0.0.1"),
        max_workers=int(env.get("CONSULT_MAX_WORKERS", "10")),
        log_level=env.get("CONSULT_LOG_LEVEL", "INFO"),
        web_api_url=(env.get("CONSULT_WEB_API_URL") or "").strip().rstrip("/") or None,
        web_secure_cookies=_flag(env, "CONSULT_WEB_SECURE_COOKIES"),
        web_trust_proxy=_flag(env, "CONSULT_WEB_TRUST_PROXY"),
        audit_checkpoint_every=int(env.get("CONSULT_AUDIT_CHECKPOINT_EVERY", "1000")),
        audit_checkpoint_seconds=float(env.get("CONSULT_AUDIT_CHECKPOINT_SECONDS", "60")),
        audit_key_file=env.get("CONSULT_AUDIT_KEY_FILE") or None,
        audit_training_key_file=env.get("CONSULT_AUDIT_TRAINING_KEY_FILE") or None,
        decisions_key=env.get("CONSULT_DECISIONS_KEY"),
        bus_key=env.get("CONSULT_BUS_KEY") or None,
        token_key=env.get("CONSULT_TOKEN_KEY") or None,
        port_overrides=_port_overrides(env),
        queue_type=_queue_type(env.get("CONSULT_QUEUE_TYPE", QUORUM)),
        service_dbs=_service_dbs(env),
        cells=_cells(env.get("CONSULT_CELLS", "")),
        cell=_cell(env),
    )


CELL_NAME = re.compile(r"[a-z][a-z0-9]{0,15}")


def _cells(value: str) -> tuple:
    """CONSULT_CELLS=c1,c2: short lower-case names (they become part of queue, routing key and
    schema names), each once."""
    cells = tuple(c.strip() for c in value.split(",") if c.strip())
    for cell in cells:
        if not CELL_NAME.fullmatch(cell):
            raise ValueError(f"CONSULT_CELLS: {cell!r} is no cell name: a lower-case letter, then up to 15 "
                             "lower-case letters or digits")
    if len(set(cells)) != len(cells):
        raise ValueError(f"CONSULT_CELLS names a cell twice: {value!r}")
    return cells


def _cell(env: Mapping[str, str]) -> str | None:
    """CONSULT_CELL: one of CONSULT_CELLS; a cell the deployment does not list is refused, or the
    service would serve communities no gateway routes to it."""
    cell = (env.get("CONSULT_CELL") or "").strip() or None
    if cell is not None and cell not in _cells(env.get("CONSULT_CELLS", "")):
        raise ValueError(f"CONSULT_CELL={cell!r} is not one of CONSULT_CELLS ({env.get('CONSULT_CELLS', '')!r})")
    return cell


def _database(value: str) -> tuple[str, Path | None]:
    """A database setting (CONSULT_DB, CONSULT_DB_<SERVICE>) as (db, SQLite folder): 'sqlite' (the
    files in the data folder: no folder of its own), 'sqlite:///folder', or a PostgreSQL URL."""
    if value.startswith("sqlite"):
        folder = value.split("sqlite:///", 1)[1] if "sqlite:///" in value else ""
        return "sqlite", Path(folder).resolve() if folder else None
    return value, None


DB_OVERRIDE = "CONSULT_DB_"


def _service_dbs(env: Mapping[str, str]) -> dict:
    """CONSULT_DB_<SERVICE> (CONSULT_DB_AUDIT=postgresql://audit-db/consult): one service's stores
    on a database of their own. A name that is no service is refused rather than ignored: with a
    typo the service's records would quietly go to the shared database."""
    dbs = {}
    for name, value in env.items():
        if not name.startswith(DB_OVERRIDE) or not value.strip():
            continue
        service = name[len(DB_OVERRIDE):].lower()
        if service not in HTTP_PORTS:
            raise ValueError(f"{name} names no service: CONSULT_DB_<SERVICE> is one of "
                             + ", ".join(f"{DB_OVERRIDE}{s.upper()}" for s in HTTP_PORTS))
        value = value.strip()
        if not value.startswith(("sqlite", "postgres")):
            raise ValueError(f"{name} must be 'sqlite', 'sqlite:///FOLDER' or a postgresql:// URL")
        dbs[service] = _database(value)
    return dbs


def _port_overrides(env: Mapping[str, str]) -> dict:
    ports = {}
    own = env.get("CONSULT_SERVICE")
    for service in HTTP_PORTS:
        value = env.get(f"CONSULT_{service.upper()}_PORT") or (env.get("CONSULT_HTTP_PORT") if own == service else None)
        if value:
            ports[service] = int(value)
    return ports


def evidence_max_bytes(value: str | None) -> int:
    """CONSULT_EVIDENCE_MAX_BYTES: 1 byte to 100 MiB; 5 MiB when unset."""
    if value in (None, ""):
        return 5 * 1024 * 1024
    if not value.strip().isdigit() or not 1 <= int(value) <= 100 * 1024 * 1024:
        raise ValueError(f"CONSULT_EVIDENCE_MAX_BYTES must be a whole number of bytes from 1 to 104857600, not {value!r}")
    return int(value)
