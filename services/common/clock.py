"""The one clock: deadlines, timers and event timestamps all read it.

Production reads the system time. In test mode (CONSULT_TEST_MODE=1) a test may freeze the clock
by writing an ISO-8601 instant into CONSULT_CLOCK_FILE (all service processes read the same file),
or in-process with set()/advance(). Outside test mode both are refused, so production cannot.

A training deployment (CONSULT_DEPLOYMENT=training, and only one) runs a faster clock, so that a
whole case with its notice, publicity and evaluation periods can be tried in an afternoon:
training time = at + (real − since) × speed. Every process of the deployment reads the same
anchor from the data folder (`training-clock.json`, written once when the deployment starts), so
they all agree on the training time, and the clock goes on (faster) while the platform is stopped.
A change of speed (`consult up --training --clock-speed N`) starts a new segment from the training
time reached, so the clock never goes back. A production deployment never reads the anchor.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

_frozen: datetime | None = None
_file_cache: tuple[float, datetime | None] | None = None

TRAINING_CLOCK_FILE = "training-clock.json"
DEFAULT_TRAINING_SPEED = 1440.0  # one day per minute


def _test_mode() -> bool:
    # read on each call, not once: a unit test switches test mode on and off in one process
    from .config import test_mode

    return test_mode()


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
    test = _from_file()
    if test is not None:
        return test
    real = datetime.now(timezone.utc)
    training = training_clock()
    return training.time_at(real) if training is not None else real


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


def parse_input(value, what: str) -> datetime:
    """A time a command was given (a task's due date, a meeting's start, a ballot's opening), in
    UTC. Anything but an ISO-8601 text with its zone is the caller's mistake, told with the
    field's name (InvalidInput, 422): one rule for every stage, not one parser per service."""
    from .errors import InvalidInput

    if not isinstance(value, str):
        raise InvalidInput.coded("common.iso_time_zone_like", what=what)
    try:
        return parse(value)
    except ValueError:
        raise InvalidInput.coded("common.iso_time_zone", what=what, value=repr(value)) from None


# --- the training clock ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingClock:
    """Training time = at + (real − since) × speed. `epoch` is the real instant the training
    deployment began (its clock read real time then); it names the deployment's time line."""

    epoch: datetime
    since: datetime
    at: datetime
    speed: float

    def time_at(self, real: datetime) -> datetime:
        return self.at + (real - self.since) * self.speed

    def to_json(self) -> str:
        return json.dumps({"epoch": format(self.epoch), "since": format(self.since), "at": format(self.at),
                           "speed": self.speed}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainingClock":
        data = json.loads(text)
        speed = float(data["speed"])
        if not speed >= 1:
            raise ValueError(f"a training clock runs at least at real speed, not {speed}")
        return cls(parse(data["epoch"]), parse(data["since"]), parse(data["at"]), speed)


_training_cache: dict = {}  # anchor path -> ((inode, mtime, size), TrainingClock)
_paths: dict = {}  # (data folder, database) settings -> the anchor's path


def _training_path() -> Path | None:
    """The anchor of this process's training deployment, or None in a production one."""
    if os.environ.get("CONSULT_DEPLOYMENT", "").strip().lower() != "training":
        return None
    key = (os.environ.get("CONSULT_DATA_DIR"), os.environ.get("CONSULT_DB"), os.getcwd())
    if key not in _paths:
        from . import config

        _paths[key] = config.load().data_dir / TRAINING_CLOCK_FILE
    return _paths[key]


def training_clock() -> TrainingClock | None:
    """The training deployment's clock (started now if it never was), or None in production."""
    path = _training_path()
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        from . import config

        return start_training_clock(path.parent, config.load().training_clock_speed, keep_speed=True)[0]
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _training_cache.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, TrainingClock.from_json(path.read_text(encoding="utf-8")))
        _training_cache[path] = cached
    return cached[1]


def start_training_clock(data_dir: Path, speed: float | None = None, real: datetime | None = None, *,
                         keep_speed: bool = False) -> tuple[TrainingClock, str | None]:
    """The training clock of the deployment whose data folder is `data_dir`: made (reading real time
    now, at `speed` or one day a minute) if it has none, else kept; a different `speed` starts a
    new segment from the training time reached (unless `keep_speed`: a service process only reads
    the clock the operator set). Returns the clock and what changed, in words."""
    path = Path(data_dir) / TRAINING_CLOCK_FILE
    real = real or datetime.now(timezone.utc)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        made = TrainingClock(real, real, real, float(speed or DEFAULT_TRAINING_SPEED))
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(made.to_json(), encoding="utf-8")
        try:
            os.link(tmp, path)  # made once: whoever comes second reads the first one's anchor
            return made, f"the training clock starts at {format(real)}, {made.speed:g}× real time"
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    current = TrainingClock.from_json(path.read_text(encoding="utf-8"))
    if speed is None or float(speed) == current.speed or keep_speed:
        return current, None
    reached = current.time_at(real)
    changed = TrainingClock(current.epoch, real, reached, float(speed))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(changed.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    return changed, (f"the training clock, at {format(reached)}, now runs {changed.speed:g}× real time "
                     f"(was {current.speed:g}×)")
