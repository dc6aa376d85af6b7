"""Invitations in bulk: one request invites the residents of many households (a building's
letterbox slips), in one save, each code shown once and each redeemable by one resident."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common.errors import Forbidden, InvalidInput, NotFound
from services.communities import tables
from tests.unit.test_directory_app import HEADER, OPERATOR, app, community_with_staff  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(60)

FILE = HEADER + "".join(f"院,{b}栋,{u},50,业主{b}{u},K{b}{u},2020-01-01\n" for b in (1, 2) for u in (101, 102, 103))


def _households(app, c) -> dict[str, list[str]]:  # noqa: F811
    """Household ids by building name."""
    with app.engine.connect() as conn:
        rows = conn.execute(sa.select(tables.households.c.id, tables.buildings.c.name).join(
            tables.buildings, tables.buildings.c.id == tables.households.c.building).where(
            tables.households.c.community == c))
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r.name, []).append(r.id)
        return out


def test_a_buildings_households_are_invited_in_one_save_and_each_code_signs_one_resident_in(app):  # noqa: F811
    c, p = community_with_staff(app)
    app.import_csv(OPERATOR, c, FILE)
    by_building = _households(app, c)
    with app.engine.connect() as conn:
        b1 = conn.execute(sa.select(tables.buildings.c.id).where(tables.buildings.c.name == "1栋")).scalar()
    head = app.head()
    made = app.create_invitations(p["worker"], c, scope="building", scope_id=b1, days=30)
    assert made["count"] == 3 and sorted(i["household"] for i in made["invitations"]) == sorted(by_building["1栋"])
    assert app.head() == head + 3  # one InvitationIssued each, in one save
    assert len({i["code"] for i in made["invitations"]}) == 3 and all(i["roles"] == ["resident"] for i in made["invitations"])
    signed = app.redeem_invitation(made["invitations"][0]["code"], "居民甲")
    assert signed["community"] == c and signed["token"]
    with pytest.raises(NotFound):  # a code signs one resident in
        app.redeem_invitation(made["invitations"][0]["code"], "居民乙")
    named = app.create_invitations(p["lead"], c, households=by_building["2栋"][:2])
    assert sorted(i["household"] for i in named["invitations"]) == sorted(by_building["2栋"][:2])
    everyone = app.create_invitations(OPERATOR, c)
    assert everyone["count"] == 6


def test_nothing_is_issued_for_another_communitys_household_or_building_or_by_a_resident(app):  # noqa: F811
    c, p = community_with_staff(app)
    other = app.create_community(OPERATOR, "T")
    app.import_csv(OPERATOR, c, FILE)
    app.import_csv(OPERATOR, other, FILE)
    ours, theirs = _households(app, c)["1栋"], None
    with app.engine.connect() as conn:
        theirs = conn.execute(sa.select(tables.households.c.id).where(tables.households.c.community == other)).scalar()
        their_building = conn.execute(sa.select(tables.buildings.c.id).where(
            tables.buildings.c.community == other)).scalar()
    head = app.head()
    with pytest.raises(NotFound):
        app.create_invitations(p["worker"], c, households=[ours[0], theirs])
    with pytest.raises(NotFound):
        app.create_invitations(p["worker"], c, scope="building", scope_id=their_building)
    with pytest.raises(Forbidden, match="invitations are sent by"):
        app.create_invitations(p["resident"], c, households=ours)
    with pytest.raises(InvalidInput):
        app.create_invitations(p["worker"], c, households=ours, scope="building", scope_id=their_building)
    with pytest.raises(InvalidInput):
        app.create_invitations(p["worker"], c, households=ours, days=91)
    assert app.head() == head  # nothing recorded
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.invitations)).scalar() == 0


def test_a_scope_without_households_issues_nothing(app):  # noqa: F811
    c, p = community_with_staff(app)
    with pytest.raises(InvalidInput, match="1 to 5000"):
        app.create_invitations(p["worker"], c)
