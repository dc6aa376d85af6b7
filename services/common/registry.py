"""One registry of who consumes which source. Every consumer queue is declared from it at start-up
(by the consumers and by every relay before it publishes), so no event is dropped for want of a queue.
"""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parents[1]
_ALL_SOURCES = ("communities", "proposals", "deliberation", "decisions", "actions", "notifications")

# Sources: services whose event log is published on the bus (those that exist in this tree).
SOURCES = tuple(s for s in _ALL_SOURCES if (_HERE / s / "service.py").exists())

# consumer -> the sources it tracks; filtered to what exists in this tree.
_WANTED: dict[str, tuple[str, ...]] = {
    "audit": _ALL_SOURCES,
    # Every service that holds a person's texts consumes the directory for its erasure requests
    # (services/common/erasure.py), besides the stages it follows.
    "proposals": ("communities", "actions"),
    "deliberation": ("communities", "proposals"),
    "decisions": ("communities", "deliberation"),
    "actions": ("communities", "proposals", "deliberation", "decisions"),
    "notifications": ("communities", "proposals", "deliberation", "decisions", "actions"),
}
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    consumer: tuple(s for s in sources if s in SOURCES)
    for consumer, sources in _WANTED.items()
    if (_HERE / consumer / "service.py").exists()
}


def consumers_of(source: str) -> list[str]:
    return sorted(c for c, sources in SUBSCRIPTIONS.items() if source in sources)
