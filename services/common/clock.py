"""The one clock: deadlines, timers and event timestamps all read it.

Production reads the system time. In test mode (CONSULT_TEST_MODE=1) a test may freeze the clock
by writing an ISO-8601 instant into CONSULT_CLOCK_FILE (all service processes read the same file),
or in-process with set()/advance(). Outside test mode both are refused, so production cannot.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

_frozen: datetime | None = None
_file_cache: tuple[float, datetime | None] | None = None


def _test_mode() -> bool:
    return os.environ.get("CONSULT_TEST_MODE", "0").lower() in ("1", "true", "yes")


def _from_file() -> datetime | None:
    global _file_cache
    path = os.environ.get("CONSULT_CLOCK_FILE")
    if not path or not _test_mode():
        return None
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None
    if _file_cache and _file_cache[0] == mtime:
        return _file_cache[1]
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    value = parse(text) if text else None
    _file_cache = (mtime, value)
    return value


def now() -> datetime:
    if _frozen is not None:
        return _frozen
    return _from_file() or datetime.now(timezone.utc)


def set(instant: datetime | None) -> None:  # noqa: A001 - reads well as clock.set(...)
    """Freeze the clock at instant (None unfreezes). Test mode only."""
    global _frozen
    if not _test_mode():
        raise RuntimeError("the clock can only be set in test mode (CONSULT_TEST_MODE=1)")
    if instant is not None and instant.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    _frozen = instant
    path = os.environ.get("CONSULT_CLOCK_FILE")
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(format(instant) if instant else "")
        os.replace(tmp, path)


def advance(delta: timedelta) -> datetime:
    set(now() + delta)
    return now()


def format(instant: datetime) -> str:  # noqa: A001
    """Event timestamps: UTC, microseconds, 'Z'."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a timezone: {text!r}")
    return value.astimezone(timezone.utc)
