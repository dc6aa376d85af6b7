"""Structure of the deployment files: docker-compose.yml, the RabbitMQ cluster's files under
infra/rabbitmq/, the Prometheus scrape config and alert rules, and the Grafana dashboard must agree
with the service folders, with the port table and the cells settings in services/common/config.py
(every process of services/common/cells.py's `processes`, at the port Settings.http_port gives it)
and with the metric names the services expose. No Docker is needed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from kombu import Connection
from kombu.utils.url import parse_url
from prometheus_client.metrics import MetricWrapperBase

from services.common import cells, config, metrics
from services.common.config import HTTP_PORTS, QUORUM
from services.notifications import application as notifications_app

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"

# Folders under services/ that hold shared code, not a service.
NOT_SERVICES = {"common", "cli"}
RUNNER = ["python", "-m", "services.common.runner"]
# The only compose services that may bind a host port; everything else must stay scalable.
PUBLISHING = {"gateway", "web", "prometheus", "grafana"}  # web: the pages people open
# Instances of each consult service that binds no host port (issue 18: two of each service per cell).
INSTANCES = 2
# Cells of the deployment (issue 18: two).
CELLS = 2
# The stage services, which each cell runs its own of.
STAGES = sorted(service for service in HTTP_PORTS if cells.in_cells(service))
# The RabbitMQ cluster: its nodes' compose services, each also the node's host name.
BROKERS = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
RABBITMQ_CONF = "/etc/rabbitmq/rabbitmq.conf"  # where the image reads its config file
RABBITMQ_DATA = "/var/lib/rabbitmq"  # the node's data folder, and its user's $HOME
ERLANG_COOKIE = f"{RABBITMQ_DATA}/.erlang.cookie"  # where the node and its CLI read the cookie

# The metrics the deployment files are built on, as Prometheus sees them (a Counter X is exposed
# as X_total, a Histogram X as X_bucket, X_sum and X_count). They must be defined in
# services/common/metrics.py, which is the one place every metric name comes from.
REQUIRED_METRICS = {
    "consult_events_published_total",
    "consult_events_consumed_total",
    "consult_consumer_lag",
    "consult_outbox_lag",
    "consult_parked_messages",
    "consult_handler_seconds",
    "consult_http_requests_total",
    "consult_http_request_seconds",
    "consult_audit_tree_size",
    "consult_audit_checkpoint_age_seconds",
    "consult_stage_transitions_total",
}


def metric_families(module) -> dict[str, str]:
    """Name -> type of every prometheus-client metric a module defines (counters without _total)."""
    return {
        family.name: family.type
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
        for family in value.describe()
    }


def exposed_name(name: str, kind: str) -> str:
    return f"{name}_total" if kind == "counter" else name


def series_names(name: str, kind: str) -> set[str]:
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {exposed_name(name, kind)}


FAMILIES = metric_families(metrics)
SERVICE_FAMILIES = metric_families(notifications_app)  # a stage's own metrics, alerted on too
# Every series a consult service exposes, plus `up`, which Prometheus records for each scrape.
KNOWN_SERIES = {"up"}.union(*(series_names(name, kind) for name, kind in {**FAMILIES, **SERVICE_FAMILIES}.items()))


def test_required_metrics_are_defined_by_the_services():
    assert REQUIRED_METRICS - {exposed_name(name, kind) for name, kind in FAMILIES.items()} == set()


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# --- discovery -----------------------------------------------------------------------------


def discover_services(root: Path) -> list[str]:
    """Every folder services/<name>/ under root that holds a service.py."""
    return sorted(
        p.parent.name
        for p in (Path(root) / "services").glob("*/service.py")
        if p.parent.name not in NOT_SERVICES
    )


def compose_processes(compose: dict) -> dict[tuple[str, str | None], dict]:
    """Compose services that run `python -m services.common.runner <service>`, by the process they
    run: (service, its CONSULT_CELL, None for none), as cells.processes names it. Two compose
    services running one process are refused (one compose service runs all its instances)."""
    found = {}
    for key, spec in (compose.get("services") or {}).items():
        command = spec.get("command")
        if isinstance(command, list) and command[:3] == RUNNER and len(command) == 4:
            process = (command[3], (spec.get("environment") or {}).get("CONSULT_CELL") or None)
            assert process not in found, f"{key} and {found[process]['_compose_name']} both run {process}"
            found[process] = {**spec, "_compose_name": key}
    return found


def missing_from_compose(root: Path, compose: dict) -> list[str]:
    """Service folders under root that no compose service runs."""
    running = {service for service, _cell in compose_processes(compose)}
    return [name for name in discover_services(root) if name not in running]


def deployment(compose: dict) -> config.Settings:
    """The settings every consult process of the compose file shares (the `consult-env` anchor, read
    from the demo, which adds nothing to it): its cells above all."""
    return config.load(compose["services"]["consult-demo"]["environment"])


def instances(spec: dict) -> int:
    """How many containers `docker compose up` starts for a compose service."""
    return (spec.get("deploy") or {}).get("replicas", 1)


# --- PromQL metric names ---------------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# An identifier not glued to a number, a dot or a Grafana `$variable`; group 2 is set for a call.
_IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    for pattern in (_STRINGS, _MATCHERS, _RANGES, _GROUPING):
        expr = pattern.sub(" ", expr)
    return {
        m.group(1)
        for m in _IDENTIFIER.finditer(expr)
        if not m.group(2) and m.group(1).lower() not in _KEYWORDS
    }


def test_metric_names_ignores_functions_labels_and_grafana_variables():
    expr = (
        'histogram_quantile(0.95, sum by (le, consumer) (rate(consult_handler_seconds_bucket'
        '{source=~"$source", x="a{b}"}[$__rate_interval] offset 1h))) > 1e3 and on (job) up == 0'
    )
    assert metric_names(expr) == {"consult_handler_seconds_bucket", "up"}
    assert metric_names("rate(consult_typo_total[5m])") - KNOWN_SERIES == {"consult_typo_total"}


# --- service discovery and compose -------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(REPO_ROOT / "docker-compose.yml")


def broker_services(compose: dict) -> dict[str, dict]:
    """Compose services that run a RabbitMQ node, by service name."""
    return {
        name: spec
        for name, spec in (compose.get("services") or {}).items()
        if str(spec.get("image", "")).startswith("rabbitmq:")
    }


def mounts(spec: dict) -> dict[str, tuple[str, str]]:
    """A compose service's short-syntax volumes: container path -> (source, options)."""
    found = {}
    for mount in spec.get("volumes") or []:
        source, target, *options = mount.split(":")
        assert target not in found, f"{target} mounted twice"
        found[target] = (source, ",".join(options))
    return found


def amqp_urls(uri: str) -> list[dict]:
    """Every URL of a CONSULT_AMQP_URI, split as the platform's connections split it (kombu's
    failover alternates, `;`-separated: bus.connect; a single URL has none, as bus.check_broker
    counts it) and each parsed by kombu."""
    return [parse_url(url) for url in Connection(uri).alt or [uri]]


def rabbitmq_conf(text: str) -> dict[str, str]:
    """A rabbitmq.conf (`key = value` lines, `#` comments) as a dict. A key set twice is refused
    rather than guessing which of the two RabbitMQ keeps."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if key in settings:
            raise ValueError(f"{key} is set twice")
        settings[key] = value
    return settings


def classic_config_nodes(settings: dict[str, str]) -> list[str]:
    """The node names a rabbitmq.conf lists for the classic_config peer discovery backend, in the
    order of their indexes; none if the file configures another backend (or none)."""
    backend = settings.get("cluster_formation.peer_discovery_backend")
    if backend not in ("classic_config", "rabbit_peer_discovery_classic_config"):
        return []
    indexed = (
        (int(match.group(1)), value)
        for key, value in settings.items()
        if (match := re.fullmatch(r"cluster_formation\.classic_config\.nodes\.(\d+)", key))
    )
    return [value for _index, value in sorted(indexed)]


def installed_cookie_source(spec: dict) -> str:
    """The file of the compose project a RabbitMQ node's command installs as its Erlang cookie: the
    container path it copies to ERLANG_COOKIE, owner-only (Erlang refuses a cookie others can read),
    followed back to its read-only mount."""
    command = spec.get("command")
    command = " ".join(command) if isinstance(command, list) else str(command or "")
    found = re.search(
        rf"install -m 0?[46]00 -o rabbitmq -g rabbitmq (\S+) {re.escape(ERLANG_COOKIE)} && ", command
    )
    assert found, f"no owner-only install of {ERLANG_COOKIE} in {command!r}"
    # ... and then the node starts as the image starts it (its entrypoint drops to the rabbitmq user).
    assert command.endswith("exec docker-entrypoint.sh rabbitmq-server"), command
    source, options = mounts(spec)[found.group(1)]
    assert "ro" in options.split(","), f"{found.group(1)} should be mounted read-only"
    return source


def test_amqp_urls_are_the_alternates_the_platform_connects_to():
    urls = amqp_urls("amqp://u:p@node-a:5672/;amqp://u:p@node-b:5673/")
    assert [(u["transport"], u["hostname"], u["port"]) for u in urls] == [
        ("amqp", "node-a", 5672),
        ("amqp", "node-b", 5673),
    ]
    assert [u["hostname"] for u in amqp_urls("amqp://u:p@only:5672/")] == ["only"]


def test_classic_config_nodes_reads_the_node_list():
    text = """
        # a comment
        cluster_formation.peer_discovery_backend = classic_config
        cluster_formation.classic_config.nodes.2 = rabbit@b
        cluster_formation.classic_config.nodes.10 = rabbit@c
        cluster_formation.classic_config.nodes.1 = rabbit@a
    """
    assert classic_config_nodes(rabbitmq_conf(text)) == ["rabbit@a", "rabbit@b", "rabbit@c"]
    # Another backend, or none: the list is not read.
    assert classic_config_nodes(rabbitmq_conf(text.replace("= classic_config", "= dns"))) == []
    assert classic_config_nodes(rabbitmq_conf("cluster_formation.classic_config.nodes.1 = rabbit@a")) == []
    with pytest.raises(ValueError, match="set twice"):
        rabbitmq_conf(text + "cluster_formation.classic_config.nodes.1 = rabbit@d\n")


def test_discovery_reports_a_service_folder_missing_from_compose(tmp_path):
    for folder, files in {
        "proposals": ["__init__.py", "service.py"],
        "decisions": ["service.py"],
        "common": ["service.py"],  # shared code, never a service
        "cli": ["main.py"],
        "drafts": ["domain.py"],  # no service.py: not (yet) a service
    }.items():
        (tmp_path / "services" / folder).mkdir(parents=True)
        for name in files:
            (tmp_path / "services" / folder / name).write_text("")
    assert discover_services(tmp_path) == ["decisions", "proposals"]

    only_proposals = {"services": {"proposals": {"command": RUNNER + ["proposals"]}}}
    assert missing_from_compose(tmp_path, only_proposals) == ["decisions"]
    # A compose service with the folder's name but another command does not count.
    misnamed = {"services": {**only_proposals["services"], "decisions": {"command": ["consult", "demo"]}}}
    assert missing_from_compose(tmp_path, misnamed) == ["decisions"]
    both = {"services": {**only_proposals["services"], "decisions": {"command": RUNNER + ["decisions"]}}}
    assert missing_from_compose(tmp_path, both) == []


def test_compose_processes_are_told_apart_by_their_cell():
    services = {
        "communities": {"command": RUNNER + ["communities"], "environment": {"CONSULT_CELLS": "c1,c2"}},
        "c1-audit": {"command": RUNNER + ["audit"], "environment": {"CONSULT_CELL": "c1"}},
        "c2-audit": {"command": RUNNER + ["audit"], "environment": {"CONSULT_CELL": "c2"}},
        "consult-demo": {"command": ["consult", "demo"]},
    }
    assert {process: spec["_compose_name"] for process, spec in compose_processes({"services": services}).items()} == {
        ("communities", None): "communities", ("audit", "c1"): "c1-audit", ("audit", "c2"): "c2-audit",
    }
    # Two compose services for one process: its instances belong in one (`deploy: replicas`).
    twice = {**services, "audit-c1": services["c1-audit"]}
    with pytest.raises(AssertionError, match="both run"):
        compose_processes({"services": twice})


def test_every_service_folder_runs_in_compose_and_has_a_port(compose):
    assert missing_from_compose(REPO_ROOT, compose) == [], "add these services to docker-compose.yml"
    unported = sorted(set(discover_services(REPO_ROOT)) - set(HTTP_PORTS))
    assert unported == [], "add these services to HTTP_PORTS in services/common/config.py"


def test_compose_runs_two_cells(compose):
    assert len(deployment(compose).cells) == CELLS
    assert len(STAGES) == 6, STAGES  # audit, proposals, deliberation, decisions, actions, notifications


def test_compose_runs_exactly_the_processes_of_the_port_table(compose):
    """Each platform service once, each stage service once per cell of CONSULT_CELLS, and nothing
    else; each compose service is named as cells.label names its process."""
    running = compose_processes(compose)
    assert sorted(running, key=str) == sorted(cells.processes(deployment(compose), HTTP_PORTS), key=str)
    for (service, cell), spec in running.items():
        # Prometheus, the healthchecks' peers and the demo find it by this DNS name.
        assert spec["_compose_name"] == cells.label(service, cell)


def test_every_consult_container_shares_the_deployments_cells(compose):
    """One CONSULT_CELLS for every consult process (the gateway routes to, and the directory places
    in, the cells the stage services run in), and every CONSULT_CELL one of them."""
    cells_of = deployment(compose).cells
    users = {name: spec["environment"] for name, spec in compose["services"].items()
             if "CONSULT_AMQP_URI" in (spec.get("environment") or {})}
    assert {spec["_compose_name"] for spec in compose_processes(compose).values()} | {"consult-demo"} <= set(users)
    for name, env in users.items():
        assert config.load(env).cells == cells_of, name
        assert env.get("CONSULT_CELL") in (None, *cells_of), name
    assert "CONSULT_CELL" not in users["consult-demo"], "the CLI is a client of every cell"


def test_each_cell_runs_every_stage_service_twice(compose):
    running = compose_processes(compose)
    for cell in deployment(compose).cells:
        in_cell = {service: spec for (service, own), spec in running.items() if own == cell}
        assert sorted(in_cell) == STAGES, f"cell {cell} is incomplete"
        for service, spec in in_cell.items():
            assert instances(spec) == INSTANCES, spec["_compose_name"]


def test_every_unpublished_consult_service_runs_two_instances(compose):
    """The directory too (its relay publishes under a lease, services/common/relay.py); the gateway
    and the web pages each bind a host port, which one container can."""
    for spec in compose_processes(compose).values():
        expected = 1 if spec.get("ports") else INSTANCES
        assert instances(spec) == expected, spec["_compose_name"]


@pytest.mark.parametrize("name", sorted(HTTP_PORTS))
def test_service_wiring(compose, name):
    running = compose_processes(compose)
    settings = deployment(compose)
    for service, cell in cells.processes(settings, [name]):
        spec = running[(service, cell)]
        assert_process_wiring(compose, settings, service, cell, spec)


def assert_process_wiring(compose: dict, settings: config.Settings, service: str, cell: str | None,
                          spec: dict) -> None:
    label = spec["_compose_name"]
    env = spec["environment"]
    assert_names_the_cluster(compose, env["CONSULT_AMQP_URI"])
    # Said explicitly, though it is the default; and read as the platform reads it.
    assert env["CONSULT_QUEUE_TYPE"] == QUORUM
    assert config.load(env).queue_type == QUORUM
    assert env["CONSULT_DB"].startswith("postgresql://") and "@postgres:5432/" in env["CONSULT_DB"]
    assert env["CONSULT_DATA_DIR"] == "/data"
    assert env["CONSULT_BIND"] == "0.0.0.0", "else nothing outside the container reaches its port"

    # Its cell: a stage service in one of the deployment's, a platform service in none.
    assert env.get("CONSULT_CELL") == cell, label
    # The port the code gives the process (HTTP_PORTS, 100 up per cell for a stage service), set
    # explicitly for the healthcheck, which reads CONSULT_HTTP_PORT.
    port = config.load({"CONSULT_CELLS": ",".join(settings.cells), **({"CONSULT_CELL": cell} if cell else {})}).http_port(service)
    assert str(env["CONSULT_HTTP_PORT"]) == str(port), label
    # ... and the process as the runner reads it (it sets CONSULT_SERVICE from the command): it
    # starts (cells.check_process), and listens on that port.
    own = config.load({**env, "CONSULT_SERVICE": service})
    cells.check_process(own, service)
    assert own.http_port(service) == port, label

    # Every node of the cluster, not one of them: a quorum queue is replicated on the nodes that are
    # members when it is declared.
    for backing in [*BROKERS, "postgres"]:
        assert spec["depends_on"][backing] == {"condition": "service_healthy"}

    probe = " ".join(spec["healthcheck"]["test"])
    assert "/healthz" in probe
    assert str(port) in probe or "CONSULT_HTTP_PORT" in probe
    assert "curl" not in probe and "wget" not in probe  # not in python:3.11-slim

    assert spec.get("build") == "."
    assert "container_name" not in spec, f"{label} must stay scalable"


def test_the_demo_waits_for_every_service_it_calls(compose):
    """The demo's community may be placed in any cell: it waits for every cell's stage services, the
    directory and the gateway (not the web pages, which it does not open) to be healthy."""
    expected = {spec["_compose_name"] for (service, _cell), spec in compose_processes(compose).items()
                if service != "web"}
    depends_on = compose["services"]["consult-demo"]["depends_on"]
    assert set(depends_on) == expected
    assert all(condition == {"condition": "service_healthy"} for condition in depends_on.values())


def assert_names_the_cluster(compose: dict, uri: str) -> None:
    """A CONSULT_AMQP_URI names every RabbitMQ node of the compose file once, and nothing else, by the
    service name the compose network resolves."""
    brokers = broker_services(compose)
    urls = amqp_urls(uri)
    assert [u["transport"] for u in urls] == ["amqp"] * len(urls)
    hosts = [u["hostname"] for u in urls]
    assert sorted(hosts) == sorted(brokers) == BROKERS, f"{uri} should list the cluster's nodes"
    assert all((u["port"] or 5672) == 5672 for u in urls)


def test_every_amqp_uri_names_the_whole_cluster(compose):
    # The platform services, and the one-shot demo (the `consult` command talks to the same bus).
    users = {name: spec["environment"] for name, spec in compose["services"].items()
             if "CONSULT_AMQP_URI" in (spec.get("environment") or {})}
    assert {spec["_compose_name"] for spec in compose_processes(compose).values()} | {"consult-demo"} <= set(users)
    for name, env in users.items():
        assert_names_the_cluster(compose, env["CONSULT_AMQP_URI"])
        assert env.get("CONSULT_QUEUE_TYPE") == QUORUM, name


def test_only_the_edge_publishes_host_ports(compose):
    services = compose["services"]
    publishing = {name for name, spec in services.items() if spec.get("ports")}
    assert publishing == PUBLISHING
    assert services["gateway"]["ports"] == [f"{HTTP_PORTS['gateway']}:{HTTP_PORTS['gateway']}"]
    assert not any("container_name" in spec for spec in services.values())


def test_compose_references_resolve(compose):
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, spec in services.items():
        for dependency in spec.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in spec.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared_volumes, f"{name} uses undeclared volume {source}"


def test_three_rabbitmq_nodes(compose):
    brokers = broker_services(compose)
    assert sorted(brokers) == BROKERS
    declared_volumes = set(compose.get("volumes") or {})
    data_volumes = {}
    for name, spec in brokers.items():
        assert spec["image"].startswith("rabbitmq:3.13-management")
        # RabbitMQ names the node rabbit@<host name>; the other nodes reach it by its service name.
        assert spec["hostname"] == name
        source, _options = mounts(spec)[RABBITMQ_DATA]
        assert source in declared_volumes, f"{name} keeps its data in a named volume"
        data_volumes[name] = source
        probe = " ".join(spec["healthcheck"]["test"])
        assert "rabbitmq-diagnostics" in probe
        # The nodes start together. One waiting for another to be healthy could stall a restart of
        # the whole cluster: a node that was a member waits at boot until a peer it knew is back.
        assert not spec.get("depends_on"), f"{name} must not wait for another node"
        assert not spec.get("ports") and "container_name" not in spec
    assert len(set(data_volumes.values())) == len(brokers), f"one data volume each: {data_volumes}"


def test_rabbitmq_nodes_share_one_erlang_cookie(compose):
    brokers = broker_services(compose)
    sources = {name: installed_cookie_source(spec) for name, spec in brokers.items()}
    assert len(set(sources.values())) == 1, f"one cookie for the cluster: {sources}"
    (source,) = set(sources.values())
    assert source.startswith("./infra/rabbitmq/")
    cookie = (REPO_ROOT / source).read_text(encoding="ascii")
    # What Erlang reads: the first line, up to 255 characters; the clustering guide asks for
    # alphanumerics.
    assert re.fullmatch(r"[A-Za-z0-9]{20,255}\n?", cookie), "a cookie of 20 to 255 letters and digits"
    for name, spec in brokers.items():
        # No second cookie by another route (RABBITMQ_ERLANG_COOKIE is deprecated in 3.13).
        env = " ".join(f"{key}={value}" for key, value in (spec.get("environment") or {}).items())
        assert "RABBITMQ_ERLANG_COOKIE" not in env and "-setcookie" not in env, name


def test_rabbitmq_conf_forms_the_cluster_from_the_three_nodes(compose):
    brokers = broker_services(compose)
    sources = set()
    for name, spec in brokers.items():
        source, options = mounts(spec)[RABBITMQ_CONF]
        assert "ro" in options.split(","), name
        sources.add(source)
    assert sources == {"./infra/rabbitmq/rabbitmq.conf"}, "one config file for the three nodes"
    (source,) = sources
    settings = rabbitmq_conf((REPO_ROOT / source).read_text())
    assert settings["cluster_formation.peer_discovery_backend"] == "classic_config"
    nodes = classic_config_nodes(settings)
    assert sorted(nodes) == sorted(f"rabbit@{spec['hostname']}" for spec in brokers.values())


def test_database(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    assert {k: postgres["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")} == {
        "POSTGRES_USER": "consult",
        "POSTGRES_PASSWORD": "consult",
        "POSTGRES_DB": "consult",
    }
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(m.endswith(":/var/lib/postgresql/data") for m in postgres["volumes"])


def test_dockerfile():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"^RUN .*pip install .*\s\.\s*(\\|&&|$)", dockerfile, re.M)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \[.*"--help"\]', dockerfile, re.M)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored


# --- Prometheus ----------------------------------------------------------------------------------


def relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str]:
    """Prometheus's `replace` relabelling (its default action, the only one used here): the source
    labels joined by `;`, matched whole against the regex, the replacement written to the target."""
    labels = dict(labels)
    for rule in rules:
        assert rule.get("action", "replace") == "replace", rule
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if match:
            replacement = re.sub(r"\$\{?(\d+)\}?", lambda m: match.group(int(m.group(1))) or "",
                                 rule.get("replacement", "$1"))
            if replacement:
                labels[rule["target_label"]] = replacement
            else:
                labels.pop(rule["target_label"], None)
    return labels


def test_relabel_follows_prometheus():
    rule = {"source_labels": ["__meta_dns_name"], "regex": "([a-z][a-z0-9]*)-.+", "target_label": "cell",
            "replacement": "$1"}
    assert relabel({"__meta_dns_name": "c12-audit"}, [rule])["cell"] == "c12"
    assert "cell" not in relabel({"__meta_dns_name": "communities"}, [rule])  # no match: unchanged


def test_prometheus_scrapes_every_replica_of_every_service(compose):
    """Every instance of every process: a DNS name resolving every replica of its compose service, at
    the port the code gives the process; the job is the service's (the alerts and the dashboard
    select by job), and a stage service's targets carry their cell."""
    scrape = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    scraped = {}
    for job in scrape["scrape_configs"]:
        for sd in job.get("dns_sd_configs") or []:
            assert sd["type"] == "A", "type A resolves every replica of a scaled service"
            for dns_name in sd["names"]:
                assert dns_name not in scraped, f"{dns_name} scraped twice"
                target = relabel({"__meta_dns_name": dns_name, "job": job["job_name"]}, job.get("relabel_configs") or [])
                scraped[dns_name] = (sd["port"], target["job"], target.get("cell"))
    settings = deployment(compose)
    expected = {
        cells.label(service, cell): (cells.in_process(settings, service, cell).http_port(service), service, cell)
        for service, cell in cells.processes(settings, set(HTTP_PORTS) | set(discover_services(REPO_ROOT)))
    }
    assert scraped == expected
    # Each name is a compose service's, which runs the process at that port.
    for spec in compose_processes(compose).values():
        assert str(spec["environment"]["CONSULT_HTTP_PORT"]) == str(scraped[spec["_compose_name"]][0])

    mount = next(m for m in compose["services"]["prometheus"]["volumes"] if m.startswith("./infra/prometheus"))
    assert mount.split(":")[1] == "/etc/prometheus"
    for rule_file in scrape["rule_files"]:
        assert (INFRA / "prometheus" / rule_file).is_file()


@pytest.fixture(scope="module")
def alerts() -> dict[str, dict]:
    document = load_yaml(INFRA / "prometheus" / "alerts.yml")
    rules = {}
    assert isinstance(document["groups"], list) and document["groups"]
    for group in document["groups"]:
        assert isinstance(group["name"], str) and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
            assert rule["alert"] not in rules, f"duplicate alert {rule['alert']}"
            rules[rule["alert"]] = rule
    return rules


# alert -> (for, substrings its expression must hold)
REQUIRED_ALERTS = {
    "ConsumerLagGrowing": ("10m", ["consult_consumer_lag[10m]", "consult_consumer_lag > 0"]),
    "OutboxLagGrowing": ("10m", ["consult_outbox_lag[10m]", "consult_outbox_lag > 0"]),
    "MessagesParked": ("1m", ["consult_parked_messages > 0"]),
    "ServiceDown": ("2m", ["up == 0"]),
    "HighHttpErrorRate": (None, ["consult_http_requests_total", 'status=~"5.."']),
    "AuditCheckpointStale": (None, ["consult_audit_checkpoint_age_seconds > 3600"]),
    "NotificationsFailing": (None, ["increase(consult_notifications_failed_total[30m])"]),
    "WebhookEndpointPaused": (None, ["consult_webhook_endpoint_paused == 1"]),
}


def test_alert_rules_are_well_formed(alerts):
    for name, rule in alerts.items():
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", rule["for"]), name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"], name


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_required_alert(alerts, name):
    duration, fragments = REQUIRED_ALERTS[name]
    rule = alerts[name]
    if duration:
        assert rule["for"] == duration
    expr = " ".join(rule["expr"].split())
    for fragment in fragments:
        assert fragment in expr
    if name.endswith("Growing"):
        assert "deriv(" in expr or "increase(" in expr


def test_parked_messages_page_an_operator(alerts):
    rule = alerts["MessagesParked"]
    assert rule["labels"]["severity"] == "critical"
    assert "a democratic record stream is held" in rule["annotations"]["summary"]


def test_a_service_without_any_replica_is_alerted(alerts, compose):
    """Every process of the deployment, a stage service in each cell: one cell without its audit
    must page even while the other's runs."""
    expr = alerts["ServiceMissing"]["expr"]
    # cell="": the platform instance of a service that also runs in each cell (the platform audit)
    found = {(job, cell or None) for job, cell in re.findall(r'absent\(up\{job="([^"]+)"(?:,cell="([^"]*)")?\}\)', expr)}
    cells_ = tuple(compose["x-consult-env"]["CONSULT_CELLS"].split(","))
    assert found == set(cells.processes(config.load({"CONSULT_CELLS": ",".join(cells_)}), HTTP_PORTS))


def test_alert_expressions_use_only_known_metrics(alerts):
    unknown = {name: metric_names(rule["expr"]) - KNOWN_SERIES for name, rule in alerts.items()}
    assert {name: names for name, names in unknown.items() if names} == {}


# --- Grafana -------------------------------------------------------------------------------------


def dashboard_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels") or [])


@pytest.fixture(scope="module")
def dashboard() -> dict:
    with open(INFRA / "grafana" / "dashboards" / "consult.json", encoding="utf-8") as f:
        return json.load(f)


def test_grafana_provisioning(compose):
    datasources = load_yaml(INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (prometheus,) = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"

    providers = load_yaml(INFRA / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")
    mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"])
    assert mounts["./infra/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert [p["options"]["path"] for p in providers["providers"]] == [mounts["./infra/grafana/dashboards"]]


def test_dashboard_panels_query_known_metrics(dashboard):
    datasource_uid = load_yaml(INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ][0]["uid"]
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"]
    used = set()
    panels = [p for p in dashboard_panels(dashboard["panels"]) if p["type"] != "row"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names and names <= KNOWN_SERIES, (panel["title"], names - KNOWN_SERIES)
            used |= names
    for variable in dashboard["templating"]["list"]:
        (metric,) = re.findall(r"label_values\(([\w:]+),", variable["definition"])
        assert metric in KNOWN_SERIES
    shown = {exposed_name(name, kind) for name, kind in FAMILIES.items() if series_names(name, kind) & used}
    assert REQUIRED_METRICS - shown == set(), "missing from the dashboard"


def test_dashboard_shows_handler_latency_p95(dashboard):
    exprs = [t["expr"] for p in dashboard_panels(dashboard["panels"]) for t in p.get("targets", [])]
    assert any(
        "histogram_quantile(0.95" in e and "consult_handler_seconds_bucket" in e for e in exprs
    ), "handler latency p95 panel"


def test_prometheus_scrapes_every_rabbitmq_node(compose):
    """Each node reports the queues it leads: a scrape of one node alone misses the others' queues."""
    scrape = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "rabbitmq")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    brokers = {name for name, svc in compose["services"].items() if str(svc.get("image", "")).startswith("rabbitmq")}
    assert len(brokers) == 3
    assert targets == {f"{b}:15692" for b in brokers}
