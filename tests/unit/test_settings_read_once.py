"""Settings are read once, in services/common/config.py, into one Settings object that is passed
down (issue 16: "os.environ is read 19 more times in seven modules"). What may still read the
environment elsewhere is listed here, each with its reason; a new read anywhere else fails."""
from __future__ import annotations

import ast
from pathlib import Path

from services.common import config

ROOT = Path(__file__).resolve().parents[2]

# module -> why it may read os.environ itself
ALLOWED = {
    "services/common/config.py": "the one reader",
    # The test clock and fault files are asked on every call: unit tests switch test mode and the
    # clock file on and off inside one process, and a service reads the harness's file as it changes.
    "services/common/clock.py": "test clock file, training anchor",
    "services/common/faults.py": "fault file (test mode only)",
    # Writes, not reads: the runner names its service for the settings; the CLI passes its options
    # on to the services it starts.
    "services/common/runner.py": "sets CONSULT_SERVICE",
    "services/cli/main.py": "sets options for child processes",
    "services/cli/up.py": "environment of child processes",
    "services/cli/rpc.py": "the operator's login name in the record",
    # Notification channels take a mapping (the service passes its environment once, at start; tests
    # pass their own): SMTP, webhook targets and sending policy are the notification service's alone.
    "services/notifications/dispatch.py": "from_env(environ) defaults",
    "services/notifications/channels.py": "from_env(environ) default",
    "services/notifications/links.py": "public_url(environ) default",
}


def environ_reads(path: Path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                getattr(node.value, "id", None) == "os":
            count += 1
    return count


def test_only_the_listed_modules_touch_the_environment():
    readers = {str(p.relative_to(ROOT)) for p in (ROOT / "services").rglob("*.py") if environ_reads(p)}
    assert readers - set(ALLOWED) == set(), "read these settings in config.load() and pass the Settings down"
    assert set(ALLOWED) - readers == set(), "no longer reads the environment: take it off the list"


def test_every_setting_comes_from_the_mapping_given_not_the_process():
    env = {"CONSULT_DB": "sqlite", "CONSULT_DATA_DIR": "/tmp/x", "CONSULT_BIND": "0.0.0.0",
           "CONSULT_MAX_WORKERS": "32", "CONSULT_LOG_LEVEL": "DEBUG", "CONSULT_WEB_API_URL": "http://gateway:8080/",
           "CONSULT_WEB_SECURE_COOKIES": "1", "CONSULT_WEB_TRUST_PROXY": "yes",
           "CONSULT_AUDIT_CHECKPOINT_EVERY": "7", "CONSULT_AUDIT_CHECKPOINT_SECONDS": "1.5",
           "CONSULT_AUDIT_KEY_FILE": "/k", "CONSULT_DECISIONS_KEY": "s" * 40,
           "CONSULT_BUS_KEY": "b" * 40, "CONSULT_TOKEN_KEY": "k" * 40,
           "CONSULT_SERVICE": "web", "CONSULT_HTTP_PORT": "18081", "CONSULT_GATEWAY_PORT": "18080",
           "CONSULT_PORT_OFFSET": "5"}
    s = config.load(env)
    assert (s.bind, s.max_workers, s.log_level, s.web_api_url) == ("0.0.0.0", 32, "DEBUG", "http://gateway:8080")
    assert s.web_secure_cookies and s.web_trust_proxy
    assert (s.audit_checkpoint_every, s.audit_checkpoint_seconds, s.audit_key_file) == (7, 1.5, "/k")
    assert s.decisions_key == "s" * 40 and "s" * 40 not in repr(s)
    assert s.bus_key == "b" * 40 and "b" * 40 not in repr(s)
    assert s.token_key == "k" * 40 and "k" * 40 not in repr(s)
    # this process's own port, another service's port set alone, and the offset for the rest
    assert (s.http_port("web"), s.http_port("gateway"), s.http_port("audit")) == (18081, 18080, 9102 + 5)
    defaults = config.load({})
    assert (defaults.bind, defaults.max_workers, defaults.web_api_url, defaults.decisions_key) == \
        ("127.0.0.1", 10, None, None)
    assert defaults.http_port("gateway") == 8080
