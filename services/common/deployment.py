"""What a deployment is — production (the default) or training — marked in every service's store
the first time the service starts there, and never flipped afterwards.

A training deployment (CONSULT_DEPLOYMENT=training, `consult up --training`) runs the fast clock,
signs its audit record with its own key and marks it, and says so in every answer; none of that
may ever reach a production record. So each state store keeps one row naming the deployment it
belongs to, and a service refuses to start on a store of the other kind: a production store never
becomes a training one (whose clock and tokens would rewrite its time), and a training store never
becomes a production one (whose record would then pass for real). A store made before stores were
marked was made by a production deployment. A training store also names its training time line
(the epoch of the training clock), so it is not run on another training deployment's clock.
"""
from __future__ import annotations

import sqlalchemy as sa

from . import clock
from .config import PRODUCTION, TRAINING, Settings

metadata = sa.MetaData()

marker = sa.Table(
    "deployment_marker",
    metadata,
    sa.Column("name", sa.String(16), primary_key=True),  # one row: "deployment"
    sa.Column("mode", sa.String(16), nullable=False),  # production | training
    sa.Column("training_epoch", sa.String(40)),  # a training deployment's clock epoch (its time line)
    sa.Column("recorded_at", sa.String(40), nullable=False),
)
ROW = "deployment"


class DeploymentRefused(RuntimeError):
    """A service asked to start as a kind of deployment its store does not belong to."""


def prepare(engine: sa.Engine) -> set[str]:
    """The tables the store held before this start (none: a new store), then the marker's table,
    made before any other, so that a store holding any table holds the marker's too."""
    before = set(sa.inspect(engine).get_table_names())
    metadata.create_all(engine)
    return before


def recorded(engine: sa.Engine) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(marker).where(marker.c.name == ROW)).first()
    return dict(row._mapping) if row is not None else None


def mark(engine: sa.Engine, settings: Settings, service: str, tables_before: set[str]) -> dict:
    """Check the store against the deployment this process runs as, and mark a new store with it
    (`tables_before`: what the store held before this start created its tables). Raises
    DeploymentRefused, with what to do, on a store of the other kind."""
    if not settings.training and settings.training_clock_speed is not None:
        raise DeploymentRefused(
            "CONSULT_TRAINING_CLOCK_SPEED is set, but this is a production deployment, whose clock is the real "
            "one: unset it, or run a training deployment (consult up --training)")
    found = recorded(engine)
    if found is None and tables_before and marker.name not in tables_before:
        # A store made before deployments were marked: only production deployments existed then.
        found = {"mode": PRODUCTION, "training_epoch": None, "recorded_at": "before deployments were marked"}
        if settings.training:
            raise DeploymentRefused(_refusal(service, found, settings))
        _insert(engine, PRODUCTION, None)
        return found
    if found is not None and found["mode"] != settings.deployment:
        raise DeploymentRefused(_refusal(service, found, settings))
    epoch = None
    if settings.training:
        started = clock.start_training_clock(settings.data_dir, settings.training_clock_speed, keep_speed=True)[0]
        epoch = clock.format(started.epoch)
        if found is not None and found["training_epoch"] != epoch:
            raise DeploymentRefused(
                f"the {service} store belongs to the training deployment whose clock started at "
                f"{found['training_epoch']}, but the data folder {settings.data_dir} holds the training clock of "
                f"another one (started at {epoch}): run it with the data folder it was made with")
    if found is None:
        _insert(engine, settings.deployment, epoch)
        found = recorded(engine)
    return found


def _insert(engine: sa.Engine, mode: str, epoch: str | None) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(marker).values(name=ROW, mode=mode, training_epoch=epoch,
                                                  recorded_at=clock.format(clock.now())))
    except sa.exc.IntegrityError:
        pass  # another instance marked it at the same moment; the caller reads what it wrote


def _refusal(service: str, found: dict, settings: Settings) -> str:
    # One line that `consult up` shows whole when the service dies of it.
    if found["mode"] == PRODUCTION:
        return (f"the {service} store belongs to a production deployment (marked {found['recorded_at']}): it refuses "
                f"to start as training; a training deployment needs its own data folder"
                + (" and CONSULT_PREFIX" if settings.is_postgres else ""))
    return (f"the {service} store belongs to a training deployment (marked {found['recorded_at']}): it refuses to "
            f"start as production, so a training record never passes for a real one; start it with --training "
            f"(CONSULT_DEPLOYMENT={TRAINING})")
