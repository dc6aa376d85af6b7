"""The directory application on SQLite, without nameko: owner keys in the CSV import, credentials
recorded without secrets and the rules on who may issue and revoke them, and two-person rule
changes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from services.common import clock, config
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all
from services.communities import csv_import, tables
from services.communities.application import PLATFORM_LOG, DirectoryApp

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
OPERATOR = "tests"


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    clock.set(T0)
    settings = config.load()
    engine = state_engine("communities", settings)
    create_all(engine, tables.metadata)
    application = DirectoryApp(settings, engine)
    yield application
    application.close()
    engine.dispose()
    clock.set(None)


def events(app: DirectoryApp, community: str | None = None) -> list[dict]:
    envs = read_envelopes(app, "communities", 1, 10_000)
    return [e for e in envs if community is None or e["community"] == community]


# ---- owner keys -----------------------------------------------------------------------------
HEADER = "compound,building,unit,area,owners,owner_keys,effective\n"


def test_keys_are_compared_without_spaces_hyphens_width_or_case():
    assert csv_import.normalise_key(" 138-0013 8000 ") == csv_import.normalise_key("１３８００１３８０００")
    assert csv_import.normalise_key("京A-001x") == csv_import.normalise_key("京a001X")


def test_a_name_repeated_without_keys_is_refused_with_its_lines(app):
    c = app.create_community(OPERATOR, "S")
    text = HEADER + ("院,2栋,101,50,王伟,,2020-01-01\n"
                     "院,2栋,102,70,李娜,K1,2020-01-01\n"
                     "院,2栋,103,70,王伟,K2,2020-01-01\n")
    before = app.head()
    with pytest.raises(InvalidInput) as refused:
        app.import_csv(OPERATOR, c, text)
    assert sorted(e["line"] for e in refused.value.extra["errors"]) == [2, 4]
    assert "王伟" in refused.value.detail and "owner_keys" in refused.value.detail
    assert app.head() == before, "nothing is recorded from a refused file"


def test_one_key_for_two_names_is_refused_without_showing_the_key(app):
    c = app.create_community(OPERATOR, "S")
    text = HEADER + "院,2栋,101,50,王伟,SECRET-KEY-1\n院,2栋,102,70,王薇,secret key 1\n"
    with pytest.raises(InvalidInput) as refused:
        app.import_csv(OPERATOR, c, text)
    assert sorted(e["line"] for e in refused.value.extra["errors"]) == [2, 3]
    assert "SECRET" not in json.dumps(refused.value.to_problem(), ensure_ascii=False).upper()


def test_namesakes_with_different_keys_are_two_owners_and_one_key_is_one_owner(app):
    c = app.create_community(OPERATOR, "S")
    text = HEADER + ("院,2栋,101,50,王伟,110101-1,2020-01-01\n"
                     "院,2栋,102,70,王伟,110101-2,2020-01-01\n"
                     "院,2栋,201,75,张伟,13800138000,2020-01-01\n"
                     "院,2栋,202,75,张伟,138 0013 8000,2020-01-01\n")
    result = app.import_csv(OPERATOR, c, text)
    created = result["people"]["created"]
    assert result["households"] == 4 and result["people"]["matched"] == []
    assert sorted(p["name"] for p in created) == ["张伟", "王伟", "王伟"]
    zhang = next(p for p in created if p["name"] == "张伟")
    assert zhang["lines"] == [4, 5]
    units = app.units_in_scope(c, "community", None, "2021-01-01")
    owners = {u["label"]: u["owners"] for u in units}
    assert owners["101"] != owners["102"]
    assert owners["201"] == owners["202"] == [zhang["id"]]
    # Keys are nowhere in the record, nor in the state store but as the community's HMAC secret.
    record = json.dumps(events(app), ensure_ascii=False)
    assert "13800138000" not in record and "110101" not in record
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.owner_key_secrets)).scalar() == 1

    # The same file again: nothing new, everybody matched; a corrected spelling renames.
    head = app.head()
    again = app.import_csv(OPERATOR, c, text)
    assert again["households"] == 0 and again["households_unchanged"] == 4 and again["people"]["created"] == []
    assert sorted(p["id"] for p in again["people"]["matched"]) == sorted(p["id"] for p in created)
    assert app.head() == head
    renamed = app.import_csv(OPERATOR, c, text.replace("张伟,138 0013", "張偉,138 0013")
                             .replace("张伟,13800138000", "張偉,13800138000"))
    assert [p["renamed"] for p in renamed["people"]["matched"] if p["id"] == zhang["id"]] == [True]
    assert app.person_view(c, zhang["id"])["name"] == "張偉"
    # A new unit of a known owner joins that owner; an existing unit said differently is refused.
    more = app.import_csv(OPERATOR, c, HEADER + "院,2栋,301,90,王伟,110101-1,2020-01-01\n")
    assert more["people"]["created"] == [] and more["households"] == 1
    with pytest.raises(InvalidInput) as refused:
        app.import_csv(OPERATOR, c, HEADER + "院,2栋,101,55,王伟,110101-1,2020-01-01\n")
    assert refused.value.extra["errors"][0]["line"] == 2 and "area correction" in refused.value.detail


def test_keys_of_one_community_say_nothing_in_another(app):
    a, b = app.create_community(OPERATOR, "A"), app.create_community(OPERATOR, "B")
    text = HEADER + "院,2栋,101,50,王伟,K-1,2020-01-01\n"
    ida = app.import_csv(OPERATOR, a, text)["people"]["created"][0]["id"]
    idb = app.import_csv(OPERATOR, b, text)["people"]["created"][0]["id"]
    assert ida != idb


def test_unkeyed_rows_for_units_already_there_are_matched_by_the_units_owners(app):
    c = app.create_community(OPERATOR, "S")
    text = "compound,building,unit,area,owners\n院,1栋,101,50,王\n院,1栋,102,70,李\n"
    first = app.import_csv(OPERATOR, c, text)
    again = app.import_csv(OPERATOR, c, text)
    assert again["households"] == 0 and again["people"]["created"] == []
    assert sorted(p["id"] for p in again["people"]["matched"]) == sorted(p["id"] for p in first["people"]["created"])


# ---- credentials ------------------------------------------------------------------------------
def community_with_staff(app: DirectoryApp):
    c = app.create_community(OPERATOR, "S")
    people = {}
    for name, role in (("worker", "community_worker"), ("lead", "party_lead"), ("lead2", "party_lead"),
                       ("resident", "resident"), ("worker2", "community_worker")):
        people[name] = app.register_person(OPERATOR, c, name)
        app.grant_role(OPERATOR, c, people[name], role)
    return c, people


def test_a_worker_cannot_issue_a_token_for_someone_else_and_nothing_is_recorded(app):
    c, p = community_with_staff(app)
    head = app.head()
    for target in ("lead", "resident"):
        with pytest.raises(Forbidden, match="invitation"):
            app.issue_token(c, p[target], 30, None, actor=p["worker"])
    assert app.head() == head
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.tokens)).scalar() == 0
    first = app.issue_token(c, p["worker"], 30, "laptop")  # the operator's path
    own = app.issue_token(c, p["worker"], 30, "phone", actor=p["worker"], presented=first["id"])  # for oneself
    assert app.authenticate(own["token"])["person"] == p["worker"]


def test_a_token_minted_for_oneself_never_outlives_the_token_that_asked(app):
    c, p = community_with_staff(app)
    short = app.issue_token(c, p["resident"], 2, "borrowed phone")
    longer = app.issue_token(c, p["resident"], 300, "mine", actor=p["resident"], presented=short["id"])
    assert longer["expires_at"] == short["expires_at"]
    shorter = app.issue_token(c, p["resident"], 1, "an hour", actor=p["resident"], presented=short["id"])
    assert shorter["expires_at"] < short["expires_at"]
    head = app.head()
    with pytest.raises(Forbidden):  # a person must present a valid token of their own
        app.issue_token(c, p["resident"], 30, None, actor=p["resident"])
    other = app.issue_token(c, p["worker"], 30, None)
    with pytest.raises(Forbidden):
        app.issue_token(c, p["resident"], 30, None, actor=p["resident"], presented=other["id"])
    app.revoke_token(p["resident"], c, short["id"])
    with pytest.raises(Forbidden):
        app.issue_token(c, p["resident"], 30, None, actor=p["resident"], presented=short["id"])
    assert app.head() == head + 2  # the worker's token and the revocation; no refused issue recorded


def test_issuing_and_revoking_are_recorded_without_the_secret(app):
    c, p = community_with_staff(app)
    issued = app.issue_token(c, p["resident"], 30, "tablet")  # the operator's path
    principal = app.authenticate(issued["token"])
    assert principal["token"] == issued["id"]
    app.revoke_token(p["worker"], c, issued["id"])
    with pytest.raises(Unauthorized):
        app.authenticate(issued["token"])
    envs = [e for e in events(app, c) if e["type"].startswith("Token")]
    assert [e["type"] for e in envs] == ["TokenIssued", "TokenRevoked"]
    assert envs[0]["aggregate"]["id"] == issued["id"] and envs[0]["data"]["person"] == p["resident"]
    assert envs[0]["data"]["via"] == "operator" and envs[0]["data"]["expires_at"] == issued["expires_at"]
    assert envs[1]["actor"] == p["worker"] and envs[1]["data"]["person"] == p["resident"]
    with app.engine.connect() as conn:
        digest = conn.execute(sa.select(tables.tokens.c.token_hash)).scalar()
    text = json.dumps(events(app))
    assert issued["token"] not in text and digest not in text and "tablet" not in text


def test_who_may_revoke_whose_token(app):
    c, p = community_with_staff(app)
    tok = {name: app.issue_token(c, pid, 30)["id"] for name, pid in p.items()}
    with pytest.raises(Forbidden):
        app.revoke_token(p["resident"], c, tok["worker"])  # a resident: only their own
    with pytest.raises(Forbidden):
        app.revoke_token(p["worker"], c, tok["lead"])  # a worker cannot lock the lead out
    with pytest.raises(Forbidden):
        app.revoke_token(p["worker"], c, tok["worker2"])  # nor a fellow worker
    app.revoke_token(p["lead"], c, tok["worker2"])  # the lead may
    app.revoke_token(p["resident"], c, tok["resident"])  # the holder may
    with pytest.raises(Conflict):
        app.revoke_token(p["lead"], c, tok["resident"])
    other = app.create_community(OPERATOR, "other")
    with pytest.raises(NotFound):
        app.revoke_token(p["lead"], other, tok["worker"])
    with pytest.raises(Forbidden):
        app.sign_out(p["worker"], tok["lead"])
    app.sign_out(p["lead"], tok["lead"])
    assert [e["data"]["reason"] for e in events(app, c) if e["type"] == "TokenRevoked"][-1] == "signed_out"


def test_admin_tokens_are_recorded_in_the_platform_log(app):
    admin = app.bootstrap_admin("ops", actor="operator:alice")
    env = [e for e in events(app, PLATFORM_LOG) if e["type"] == "TokenIssued"][-1]
    assert env["actor"] == "operator:alice" and env["data"]["person"] == admin["person"]
    assert app.authenticate(admin["token"])["platform_admin"] is True
    c, p = community_with_staff(app)
    issued = app.issue_token(c, p["resident"], 30, None, actor=admin["person"])  # an administrator may
    assert [e["data"]["via"] for e in events(app, c) if e["type"] == "TokenIssued"] == ["platform_admin"]
    with pytest.raises(Forbidden):
        app.issue_token(c, p["resident"], 30, None, actor="admin-forged")
    app.sign_out(admin["person"], admin["id"])
    with pytest.raises(Forbidden):  # a revoked administrator is no administrator
        app.issue_token(c, p["resident"], 30, None, actor=admin["person"])
    assert app.authenticate(issued["token"])["person"] == p["resident"]


def test_an_invitation_is_recorded_issued_and_redeemed_once(app):
    c, p = community_with_staff(app)
    with pytest.raises(Forbidden):
        app.create_invitation(p["resident"], c, None, ["resident"])
    with pytest.raises(Forbidden):  # a worker cannot make a second lead by invitation
        app.create_invitation(p["worker"], c, None, ["party_lead"])
    inv = app.create_invitation(p["worker"], c, None, ["resident"])
    signed = app.redeem_invitation(inv["code"], "新居民")
    with pytest.raises(NotFound):
        app.redeem_invitation(inv["code"], "冒名")
    assert app.authenticate(signed["token"])["roles"] == [{"role": "resident", "scope": None}]
    envs = {e["type"]: e for e in events(app, c)}
    assert envs["InvitationIssued"]["actor"] == p["worker"] and envs["InvitationIssued"]["data"]["roles"] == ["resident"]
    assert envs["InvitationRedeemed"]["data"]["person"] == signed["person"]
    assert envs["TokenIssued"]["data"]["via"] == "invitation"
    assert envs["TokenIssued"]["data"]["invitation"] == inv["id"]
    assert inv["code"] not in json.dumps(events(app))
    revoked = app.create_invitation(p["worker"], c, None, ["resident"])
    app.revoke_invitation(p["worker"], c, revoked["id"])
    with pytest.raises(NotFound):
        app.redeem_invitation(revoked["code"], "迟到")


def test_only_a_lead_appoints_a_lead(app):
    c, p = community_with_staff(app)
    with pytest.raises(Forbidden):
        app.grant_role(p["worker"], c, p["resident"], "party_lead")
    with pytest.raises(Forbidden):
        app.revoke_role(p["worker"], c, p["lead"], "party_lead")
    app.grant_role(p["lead"], c, p["resident"], "party_lead")
    app.revoke_role(p["lead"], c, p["resident"], "party_lead")


# ---- two-person rule changes ---------------------------------------------------------------------
def test_a_rule_change_takes_a_proposer_and_a_different_lead(app):
    c, p = community_with_staff(app)
    change = app.propose_rule_change(p["worker"], c, {"meeting_notice_days": 0})
    assert app.community_view(c)["rules"]["meeting_notice_days"] == 3
    assert [x["id"] for x in app.community_view(c)["pending_rule_changes"]] == [change["id"]]
    with pytest.raises(Forbidden):
        app.confirm_rule_change(p["worker"], c, change["id"])  # not a lead
    with pytest.raises(Forbidden):
        app.confirm_rule_change(OPERATOR, c, change["id"])  # a person must confirm
    own = app.propose_rule_change(p["lead"], c, {"publicity_days": 1})
    with pytest.raises(Forbidden, match="second person"):
        app.confirm_rule_change(p["lead"], c, own["id"])  # a lead alone is one person
    done = app.confirm_rule_change(p["lead"], c, change["id"])
    assert done["rules"]["meeting_notice_days"] == 0 and app.community_view(c)["rules"]["meeting_notice_days"] == 0
    with pytest.raises(NotFound):
        app.confirm_rule_change(p["lead2"], c, change["id"])  # once
    with pytest.raises(Forbidden):
        app.withdraw_rule_change(p["worker"], c, own["id"])  # neither its proposer nor a lead
    app.withdraw_rule_change(p["lead2"], c, own["id"])
    assert app.community_view(c)["pending_rule_changes"] == []
    with pytest.raises(Forbidden):
        app.propose_rule_change(p["resident"], c, {"publicity_days": 1})
    with pytest.raises(Forbidden):
        app.change_rules(p["lead"], c, {"publicity_days": 1})  # the one-step path is the operator's only
    with pytest.raises(InvalidInput):
        app.propose_rule_change(p["worker"], c, {"publicity_days": -1})
    kinds = [(e["type"], e["actor"]) for e in events(app, c) if "RuleChange" in e["type"]]
    assert kinds == [("CommunityRuleChangeProposed", p["worker"]), ("CommunityRuleChangeProposed", p["lead"]),
                     ("CommunityRuleChangeConfirmed", p["lead"]), ("CommunityRuleChangeWithdrawn", p["lead2"])]


def test_an_import_stores_its_owners_names_in_one_transaction_before_its_events(app):
    """A name per new owner used to cost a transaction each (1,000 of them for a 1,000-row file on
    PostgreSQL, more than half the import); they are now stored together, before the save."""
    c = app.create_community(OPERATOR, "S")
    text = HEADER + "".join(f"院,{1 + i // 20}栋,{100 + i},50,业主{i},,2020-01-01\n" for i in range(60))
    commits = []

    def committed(conn):
        commits.append(1)

    sa.event.listen(app.engine, "commit", committed)
    try:
        result = app.import_csv(OPERATOR, c, text)
    finally:
        sa.event.remove(app.engine, "commit", committed)
    assert result["households"] == 60 and len(result["people"]["created"]) == 60
    assert len(commits) < 10, f"{len(commits)} transactions for 60 new owners"
    names = {p["name"] for p in result["people"]["created"]}
    assert names == {f"业主{i}" for i in range(60)}
    registered = [e for e in events(app, c) if e["type"] == "PersonRegistered"]
    assert len(registered) == 60 and set(app.content.get_many(
        e["data"]["name_commitment"] for e in registered).values()) == names, "every event's name is stored"


def test_a_sign_in_is_one_statement_with_the_roles_held_now(app):
    """The gateway signs in nearly every vote of a ballot day (each voter's token is new to it): the
    token and its holder's roles now come in one statement, ended roles left out, none as []."""
    c, p = community_with_staff(app)
    app.grant_role(OPERATOR, c, p["worker"], "resident")
    issued = app.issue_token(c, p["worker"], 30, None)
    assert sorted(r["role"] for r in app.authenticate(issued["token"])["roles"]) == ["community_worker", "resident"]
    app.revoke_role(OPERATOR, c, p["worker"], "community_worker")
    seen = []
    sa.event.listen(app.engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    assert app.authenticate(issued["token"])["roles"] == [{"role": "resident", "scope": None}]
    assert len(seen) == 1, seen
    nobody = app.register_person(OPERATOR, c, "no roles")
    assert app.authenticate(app.issue_token(c, nobody, 30, None)["token"])["roles"] == []
    app.sign_out(p["worker"], issued["id"])
    with pytest.raises(Unauthorized):
        app.authenticate(issued["token"])
