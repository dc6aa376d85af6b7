"""Configuration read once from the environment (12-factor); every service and the CLI use it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
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
}


def _flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "y", "on")


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

    @property
    def is_postgres(self) -> bool:
        return self.db.startswith("postgres")

    @property
    def backend(self) -> str:
        return "postgres" if self.is_postgres else "sqlite"

    def http_port(self, service: str) -> int:
        env = os.environ.get(f"CONSULT_{service.upper()}_PORT") or (
            os.environ.get("CONSULT_HTTP_PORT") if os.environ.get("CONSULT_SERVICE") == service else None
        )
        if env:
            return int(env)
        return HTTP_PORTS[service] + self.port_offset

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
        """PostgreSQL schema of one service's store: part is 'events' or 'state'."""
        return f"{self.prefix}_{service}_{part}".replace("-", "_").lower()


def load() -> Settings:
    data_dir = Path(os.environ.get("CONSULT_DATA_DIR", "consult-data")).resolve()
    db = os.environ.get("CONSULT_DB", "sqlite")
    if db.startswith("sqlite"):
        # 'sqlite' or 'sqlite:///folder': SQLite files under the data folder.
        folder = db.split("sqlite:///", 1)[1] if "sqlite:///" in db else ""
        if folder:
            data_dir = Path(folder).resolve()
        db = "sqlite"
    delays = os.environ.get("CONSULT_RETRY_DELAYS", "0.2,1,3")
    return Settings(
        amqp_uri=os.environ.get("CONSULT_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
        db=db,
        data_dir=data_dir,
        prefix=os.environ.get("CONSULT_PREFIX", "consult"),
        test_mode=_flag("CONSULT_TEST_MODE"),
        clock_file=os.environ.get("CONSULT_CLOCK_FILE") or None,
        relay_interval=float(os.environ.get("CONSULT_RELAY_INTERVAL", "0.2")),
        catchup_interval=float(os.environ.get("CONSULT_CATCHUP_INTERVAL", "5")),
        retry_delays=tuple(float(x) for x in delays.split(",") if x.strip()),
        port_offset=int(os.environ.get("CONSULT_PORT_OFFSET", "0")),
    )
