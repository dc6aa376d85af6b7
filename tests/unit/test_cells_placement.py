"""Community cells (issue 18): the directory places each new community in the least-loaded cell and
records the placement in CommunityCreated (version 2); a version 1 event, from before cells, reads
back with no cell; the read model keeps the cell, also on a store made before its column."""
from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

import services.contracts as contracts
from services.common import clock, config
from services.common.aggregate import command_context
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all
from services.communities import tables
from services.communities.application import DirectoryApp
from services.communities.domain import DEFAULT_RULES, Community, least_loaded_cell

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)


# ---- the rule ----------------------------------------------------------------------------------------
def test_no_cells_no_placement():
    assert least_loaded_cell((), {}) is None
    assert least_loaded_cell((), {"a": 3}) is None


def test_the_cell_holding_fewest_communities():
    assert least_loaded_cell(("a", "b", "c"), {"a": 2, "b": 1, "c": 3}) == "b"
    assert least_loaded_cell(("a", "b", "c"), {"a": 2, "b": 1}) == "c", "a cell not counted holds none"
    assert least_loaded_cell(("a",), {"a": 100}) == "a"


def test_ties_go_to_the_cell_listed_first():
    assert least_loaded_cell(("a", "b", "c"), {}) == "a"
    assert least_loaded_cell(("c", "b", "a"), {}) == "c"
    assert least_loaded_cell(("a", "b", "c"), {"a": 1, "b": 0, "c": 0}) == "b"
    assert least_loaded_cell(("a", "b", "c"), {"a": 1, "b": 1, "c": 1}) == "a"
    assert least_loaded_cell(("a", "b"), {"x": 0, "a": 4, "b": 4}) == "a", "a cell no longer listed is ignored"


# ---- the event -------------------------------------------------------------------------------------------
def test_community_created_is_version_2_with_its_cell_and_version_1_is_still_contracted():
    assert Community.Created.class_version == 2
    v2 = contracts.EVENTS.get("CommunityCreated", 2)
    v1 = contracts.EVENTS.get("CommunityCreated", 1)
    assert v2.names == ("name", "rules", "cell") and v1.names == ("name", "rules")
    envelope = {"schema": "consult.event/1", "id": "e", "source": "communities", "position": 1,
                "type": "CommunityCreated", "event_version": 1, "community": "c",
                "aggregate": {"type": "Community", "id": "c", "version": 1},
                "occurred_at": "2025-01-01T00:00:00.000000Z", "actor": "tests", "case": None, "causation": None,
                "data": {"name": "S", "rules": {}}}
    assert contracts.problems(envelope) == []
    assert contracts.data(envelope).get("cell") is None, "a reader of version 2 reads version 1 without a cell"
    placed = dict(envelope, event_version=2, data={"name": "S", "rules": {}, "cell": "a"})
    assert contracts.problems(placed) == [] and contracts.data(placed)["cell"] == "a"
    assert contracts.problems(dict(placed, data={"name": "S", "rules": {}})) == ["missing field 'cell'"]


# ---- the application -------------------------------------------------------------------------------------
def make_settings(tmp_path, cells=()) -> config.Settings:
    return config.Settings(amqp_uri="", db="sqlite", data_dir=tmp_path, prefix="t", test_mode=True, clock_file=None,
                           relay_interval=1, catchup_interval=1, retry_delays=(), cells=tuple(cells))


@pytest.fixture
def open_app(tmp_path, monkeypatch):
    """open_app(cells) -> a DirectoryApp on SQLite in tmp_path (the same store each time)."""
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    clock.set(T0)
    opened = []

    def open_(cells=(), make_tables=True):
        settings = make_settings(tmp_path, cells)
        engine = state_engine("communities", settings)
        if make_tables:
            create_all(engine, tables.metadata)
        app = DirectoryApp(settings, engine)
        opened.append((app, engine))
        return app

    yield open_
    for app, engine in opened:
        app.close()
        engine.dispose()
    clock.set(None)


def created(app: DirectoryApp, community: str) -> dict:
    [env] = [e for e in read_envelopes(app, "communities", 1, 10_000)
             if e["type"] == "CommunityCreated" and e["community"] == community]
    return env


def test_without_cells_a_community_has_none(open_app):
    app = open_app()
    c = app.create_community("tests", "S")
    env = created(app, c)
    assert env["event_version"] == 2 and env["data"]["cell"] is None
    assert contracts.problems(env) == []
    assert app.community_view(c)["cell"] is None
    assert app.community_view(c, clock.format(clock.now()))["cell"] is None
    assert app.placements() == {c: None}


def test_new_communities_fill_the_least_loaded_cell_in_order(open_app):
    app = open_app(cells=("north", "south", "east"))
    placed = {}
    for i in range(7):
        c = app.create_community("tests", f"S{i}")
        placed[c] = app.community_view(c)["cell"]
        assert created(app, c)["data"]["cell"] == placed[c]
        assert contracts.problems(created(app, c)) == []
    assert list(placed.values()) == ["north", "south", "east", "north", "south", "east", "north"]
    assert app.placements() == placed
    assert {x["id"]: x["cell"] for x in app.list_communities()} == placed


def test_a_cell_added_later_is_filled_first_and_old_communities_keep_theirs(open_app):
    app = open_app(cells=("a",))
    first = [app.create_community("tests", f"A{i}") for i in range(2)]
    app.close()
    app = open_app(cells=("a", "b"))
    later = [app.create_community("tests", f"B{i}") for i in range(3)]
    assert [app.community_view(c)["cell"] for c in first + later] == ["a", "a", "b", "b", "a"]


def test_a_community_created_before_cells_reads_back_with_none(open_app):
    """A CommunityCreated stored at version 1 (no class_version, no cell): the aggregate, the view, the
    republished envelope and the read model (rebuilt from the log) all say no cell; the deployment
    that adds cells refuses nothing for it and counts it in no cell."""
    app = open_app()
    cid = uuid.uuid4()
    with command_context(community=str(cid), actor="tests"):
        c = Community._create(Community.Created, id=cid, name="Old", rules=DEFAULT_RULES, cell=None)
    # store it as version 1 would have been: the state without `cell`, without class_version
    stored = app.mapper.to_stored_event(c.collect_events()[0])
    state = app.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2 and state.pop("cell") is None
    app.recorder.insert_events([dataclasses.replace(stored, state=app.mapper.transcoder.encode(state))])
    old = str(cid)
    assert app.repository.get(cid).cell is None
    assert app.community_view(old)["cell"] is None
    env = created(app, old)
    assert env["event_version"] == 2 and env["data"] == {"name": "Old", "rules": DEFAULT_RULES, "cell": None}
    assert app.placements() == {old: None}
    app.close()
    with_cells = open_app(cells=("a", "b"))
    new = with_cells.create_community("tests", "New")
    assert with_cells.community_view(new)["cell"] == "a", "communities without a cell load no cell"
    assert with_cells.community_view(old)["cell"] is None


def test_a_store_made_before_the_cell_column_still_starts(open_app, tmp_path):
    """The read model's table as it was before cells: the directory adds the column when it starts,
    the rows it held read as no cell, and new communities are placed and counted."""
    settings = make_settings(tmp_path)
    engine = state_engine("communities", settings)
    old = sa.MetaData()
    sa.Table("dir_communities", old, sa.Column("id", sa.String(36), primary_key=True),
             sa.Column("name", sa.String(200), nullable=False), sa.Column("created_at", sa.String(40)))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO dir_communities (id, name, created_at) VALUES ('x', 'X', NULL)"))
    create_all(engine, tables.metadata)  # what a start does: the table is there, so it is left as it was
    assert "cell" not in {c["name"] for c in sa.inspect(engine).get_columns("dir_communities")}
    engine.dispose()

    app = open_app(cells=("a", "b"), make_tables=False)
    assert "cell" in {c["name"] for c in sa.inspect(app.engine).get_columns("dir_communities")}
    with app.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT cell FROM dir_communities WHERE id = 'x'")).scalar_one() is None
    c = app.create_community("tests", "S")
    assert app.community_view(c)["cell"] == "a"
    assert app.placements()[c] == "a"
    tables.add_missing_columns(app.engine)  # a second start: nothing to add
    open_app(cells=("a", "b"))  # nor for another instance opening the same store
