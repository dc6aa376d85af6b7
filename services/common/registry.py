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

# (consumer, source) -> the source's event types the consumer reads from the source's log instead
# of taking each over the bus: the many events of a ballot day (votes) or of a support drive, which
# these consumers do little with (the board's last-activity time, the list of a proposal's
# supporters) or nothing. Their queue is bound to the source's other types only
# (bus.consumer_queue), so the broker routes them no copy; the consumer applies them, in the log's
# order, when the next event it does take shows the gap before it, or at its next catch-up
# (CONSULT_CATCHUP_INTERVAL) -- one log read per 100 events instead of one delivery, one wake-up
# and one batch each. Nothing is applied later than the events after it, so nothing a consumer
# does on another event misses them. A vote cost each of actions and notifications about 0.9 ms of
# CPU besides the broker's share (docs/performance.md).
_BALLOT_DAY = frozenset({"VoteCast", "VoteChanged"})
_SUPPORT_DRIVE = frozenset({"SupportGiven", "SupportGivenAgain", "SupportWithdrawn"})
FROM_LOG: dict[tuple[str, str], frozenset[str]] = {
    ("actions", "decisions"): _BALLOT_DAY,
    ("notifications", "decisions"): _BALLOT_DAY,
    ("actions", "proposals"): _SUPPORT_DRIVE,
    ("notifications", "proposals"): _SUPPORT_DRIVE,
    ("deliberation", "proposals"): _SUPPORT_DRIVE,
}


def read_from_log(consumer: str, source: str) -> frozenset[str]:
    """The types of `source` that `consumer` reads from the log rather than the bus (FROM_LOG)."""
    return FROM_LOG.get((consumer, source), frozenset())


# Modules that add commands to `consult` (each has register(subparsers) and a handler table).
CLI_PLUGINS: tuple[str, ...] = ("services.audit.cli", "services.decisions.cli")


def consumers_of(source: str) -> list[str]:
    return sorted(c for c, sources in SUBSCRIPTIONS.items() if source in sources)
