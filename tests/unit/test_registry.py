"""The declared registry of services is the tree's: nothing is found by globbing at run time, so
this checks that the table and the folders agree."""
from pathlib import Path

from services.common import registry

SERVICES_DIR = Path(registry.__file__).resolve().parents[1]


def test_every_service_in_the_tree_is_declared_and_every_declared_one_exists():
    in_tree = {p.parent.name for p in SERVICES_DIR.glob("*/service.py")}
    assert set(registry.SERVICES) == in_tree


def test_sources_and_consumers_are_services_and_every_consumer_reads_the_directory():
    assert set(registry.SOURCES) <= set(registry.SERVICES)
    for consumer, sources in registry.SUBSCRIPTIONS.items():
        assert consumer in registry.SERVICES and set(sources) <= set(registry.SOURCES), consumer
        assert "communities" in sources, f"{consumer} would miss erasure requests"
    assert registry.consumers_of("decisions") == ["actions", "audit", "notifications"]


def test_every_cli_plugin_in_the_tree_is_declared():
    in_tree = {f"services.{p.parent.name}.cli" for p in SERVICES_DIR.glob("*/cli.py") if p.parent.name != "cli"}
    assert set(registry.CLI_PLUGINS) == in_tree
