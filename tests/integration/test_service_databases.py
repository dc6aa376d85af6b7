"""One service on a database of its own (CONSULT_DB_<SERVICE>): the audit service's stores where its
setting puts them, the others' where CONSULT_DB does, and the platform working across them."""
from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing

import pytest

from tests.harness import running
from tests.integration.proposals_world import Neighbourhood

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def tables(path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_services_keep_their_stores_on_their_own_databases_and_a_proposal_reaches_the_audit_log(tmp_path):
    audit_db, proposals_db = tmp_path / "audit-db", tmp_path / "proposals-db"
    with running("sqlite", ["communities", "audit", "proposals", "gateway"],
                 CONSULT_DB_AUDIT=f"sqlite:///{audit_db}", CONSULT_DB_PROPOSALS=f"sqlite:///{proposals_db}") as p:
        n = Neighbourhood(p)
        author = n.residents(n.buildings[0], 1)[0]
        proposal = n.draft(author)
        assert any(e["type"] == "ProposalDrafted" and e["aggregate"]["id"] == proposal for e in n.settled())

        shared = p.dir / "data"
        # The audit service has a state store only (its log is tables); proposals has both stores.
        assert sorted(f.name for f in audit_db.glob("*.sqlite3")) == ["audit-state.sqlite3"]
        assert sorted(f.name for f in proposals_db.glob("*.sqlite3")) == ["proposals-events.sqlite3",
                                                                          "proposals-state.sqlite3"]
        assert not list(shared.glob("audit-*.sqlite3")) and not list(shared.glob("proposals-*.sqlite3"))
        assert (shared / "communities-events.sqlite3").exists() and (shared / "gateway-state.sqlite3").exists()
        assert {"audit_entries", "consumer_tracking"} <= tables(audit_db / "audit-state.sqlite3")
        with closing(sqlite3.connect(audit_db / "audit-state.sqlite3")) as db:
            recorded = [r[0] for r in db.execute("SELECT body FROM audit_entries WHERE community = ?", (n.id,))]
        assert any(proposal in body and "ProposalDrafted" in body for body in recorded)
        with closing(sqlite3.connect(proposals_db / "proposals-events.sqlite3")) as db:
            drafted = db.execute("SELECT count(*) FROM stored_events WHERE originator_id = ?",
                                 (uuid.UUID(proposal).hex,)).fetchone()  # eventsourcing keeps ids as hex
        assert drafted[0] >= 1  # the proposal's own events, in its event store
        # Keys and lock files stay in the deployment's data folder.
        assert (shared / "audit-signing.key").exists() and not (audit_db / "audit-signing.key").exists()
