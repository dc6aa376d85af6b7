"""Per-service databases (CONSULT_DB_<SERVICE>): each service's stores where its own setting puts
them, the others on CONSULT_DB's (services/common/config.py, store.py); the platform on them:
tests/integration/test_service_databases.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.common import config
from services.common.store import event_store_env, state_engine

PG = "postgresql://consult@db-main:5432/consult"
PG_AUDIT = "postgresql://audit:pw@db-audit:6432/auditdb"


def test_a_service_without_its_own_setting_uses_the_shared_database():
    s = config.load({"CONSULT_DB": PG})
    assert s.for_service("audit") is s
    assert s.for_service("audit").postgres_params()["host"] == "db-main"


def test_a_service_with_its_own_setting_opens_its_stores_there_and_keeps_the_rest():
    s = config.load({"CONSULT_DB": PG, "CONSULT_DB_AUDIT": PG_AUDIT, "CONSULT_DATA_DIR": "/srv/consult",
                     "CONSULT_PREFIX": "city"})
    audit, proposals = s.for_service("audit"), s.for_service("proposals")
    assert audit.is_postgres and audit.postgres_params() == {
        "host": "db-audit", "port": "6432", "user": "audit", "password": "pw", "dbname": "auditdb"}
    assert audit.schema("audit", "state") == "city_audit_state"  # the same schema names, on its server
    assert proposals.postgres_params()["host"] == "db-main"
    # The data folder (keys, lock files, the training clock) is the deployment's, whatever the database.
    assert audit.data_dir == proposals.data_dir == Path("/srv/consult")
    assert (audit.amqp_uri, audit.prefix) == (s.amqp_uri, s.prefix)


def test_sqlite_files_of_one_service_in_a_folder_of_their_own(tmp_path):
    shared, own = tmp_path / "data", tmp_path / "audit-disk"
    s = config.load({"CONSULT_DATA_DIR": str(shared), "CONSULT_DB_AUDIT": f"sqlite:///{own}"})
    audit, decisions = s.for_service("audit"), s.for_service("decisions")
    assert not audit.is_postgres and audit.sqlite_dir == own and audit.data_dir == shared
    assert event_store_env("audit", audit)["SQLITE_DBNAME"] == str(own / "audit-events.sqlite3")
    assert event_store_env("decisions", decisions)["SQLITE_DBNAME"] == str(shared / "decisions-events.sqlite3")
    engine = state_engine("audit", audit)
    try:
        assert engine.url.database == str(own / "audit-state.sqlite3")
    finally:
        engine.dispose()


def test_a_postgresql_deployment_may_keep_one_service_on_sqlite_and_the_other_way_round(tmp_path):
    s = config.load({"CONSULT_DB": PG, "CONSULT_DB_NOTIFICATIONS": "sqlite", "CONSULT_DATA_DIR": str(tmp_path)})
    assert not s.for_service("notifications").is_postgres
    assert s.for_service("notifications").sqlite_dir == tmp_path
    s = config.load({"CONSULT_DB_DECISIONS": PG, "CONSULT_DATA_DIR": str(tmp_path)})
    assert s.for_service("decisions").is_postgres and not s.is_postgres


@pytest.mark.parametrize("env, refused", [
    ({"CONSULT_DB_AUDITS": PG}, "CONSULT_DB_AUDITS names no service"),  # a typo, not the shared database
    ({"CONSULT_DB_AUDIT": "mysql://x/y"}, "CONSULT_DB_AUDIT must be"),
])
def test_a_setting_that_names_no_service_or_no_database_is_refused(env, refused):
    with pytest.raises(ValueError, match=refused):
        config.load(env)


def test_an_empty_setting_falls_back():
    s = config.load({"CONSULT_DB": PG, "CONSULT_DB_AUDIT": " "})
    assert s.for_service("audit") is s
