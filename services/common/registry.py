"""The platform's services, declared in one table: which run, in what order they start, which
publish their event log on the bus (sources), who consumes which source, and which add commands to
the CLI. Every consumer queue is declared from it at start-up (by the consumers and by every relay
before it publishes), so no event is dropped for want of a queue. `consult up`, the CLI, the test
harness and the benchmarks read it; nothing finds services by looking at the file system
(tests/unit/test_registry.py checks the table against the tree instead).
"""
from __future__ import annotations

# Start order: the directory first (the others ask it), the audit log, the stages, notifications,
# then the gateway, then the web pages (the gateway's client).
SERVICES: tuple[str, ...] = ("communities", "audit", "proposals", "deliberation", "decisions", "actions",
                             "notifications", "gateway", "web")

# Services whose event log is published on the bus.
SOURCES: tuple[str, ...] = ("communities", "proposals", "deliberation", "decisions", "actions", "notifications")

# consumer -> the sources it tracks. Every service that holds a person's texts consumes the
# directory for its erasure requests (services/common/erasure.py), besides the stages it follows.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "audit": SOURCES,
    "proposals": ("communities", "actions"),
    "deliberation": ("communities", "proposals"),
    "decisions": ("communities", "deliberation"),
    "actions": ("communities", "proposals", "deliberation", "decisions"),
    "notifications": ("communities", "proposals", "deliberation", "decisions", "actions"),
}

# Modules that add commands to `consult` (each has register(subparsers) and a handler table).
CLI_PLUGINS: tuple[str, ...] = ("services.audit.cli", "services.decisions.cli")


def consumers_of(source: str) -> list[str]:
    return sorted(c for c, sources in SUBSCRIPTIONS.items() if source in sources)
