"""The platform log spanning cells (services/audit/span.py) without a broker: two cells' audit
stores and the platform audit's, each SQLite in a temporary folder, one signing key file as a
deployment shares it. The platform audit witnesses each cell's signed head, refuses a head that
does not extend the one it witnessed (a fork, a split view, a shrunk log, a stranger's key), and a
community's platform proof chains on to it and is checked offline, tampering included.
tests/integration/test_cells.py does the same through the running services."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit import checkpointing, log, proofs, span, verify
from services.audit import checkpoints as cp
from services.audit.service import _sink
from services.common import cells, clock, config, metrics
from services.common.tables import create_all

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)


def envelope(i: int, community: str) -> dict:
    """The i-th event of the store's source (positions from 1, across its communities)."""
    return {"schema": "consult.event/1", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{community}/{i}")),
            "source": "proposals", "position": i, "type": "ProposalSubmitted", "event_version": 1,
            "community": community, "aggregate": {"type": "Proposal", "id": str(uuid.uuid4()), "version": 1},
            "occurred_at": clock.format(T0 + timedelta(seconds=i)), "actor": "r-1", "case": None,
            "causation": None, "data": {"n": i}}


class Store:
    """One audit store (a cell's or the platform audit's) and what writes to it."""

    def __init__(self, path, policy, signer):
        self.engine = sa.create_engine(f"sqlite:///{path}")
        create_all(self.engine, log.metadata, checkpointing.metadata)
        checkpointing.prepare(self.engine, signer)
        self.policy, self.signer = policy, signer
        self.sink = _sink(SimpleNamespace(engine=self.engine, app=SimpleNamespace(policy=policy, signer=signer)))
        self.position = 0

    def append(self, community: str, n: int) -> None:
        """n more entries of `community`, then a checkpoint of every community with new entries."""
        for _ in range(n):
            self.position += 1
            assert self.sink.handle("proposals", envelope(self.position, community))
        checkpointing.cut(self.engine, self.signer, self.policy, T0, force=True)

    def head(self, since=None) -> dict:
        with self.engine.connect() as conn:
            return checkpointing.cell_head(conn, since)


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_AUDIT_CHECKPOINT_EVERY", "1000")
    monkeypatch.delenv("CONSULT_AUDIT_KEY_FILE", raising=False)
    settings = config.load()
    policy = checkpointing.policy(settings)
    signer = checkpointing.Signer.open(policy.key_file)  # one key file, as the cells of a deployment share it
    d = SimpleNamespace(c1=Store(tmp_path / "c1-audit.db", policy, signer),
                        c2=Store(tmp_path / "c2-audit.db", policy, signer),
                        platform=Store(tmp_path / "audit.db", policy, signer), signer=signer)
    yield d
    for store in (d.c1, d.c2, d.platform):
        store.engine.dispose()


def witness(d, cell: str, since_witnessed: bool = True) -> dict:
    """What the platform audit's timer does for one cell (services/audit/service.py witness_cell),
    the RPC between them replaced by a call."""
    with d.platform.engine.connect() as conn:
        last = span.witnessed(conn, cell)
    reply = getattr(d, cell).head(last["checkpoint"]["size"] if last and since_witnessed else None)
    return span.witness(d.platform.engine, d.signer, cell, reply["checkpoint"], reply["proof"],
                        reply["key_rotations"], T0)


def platform_proof(d, cell: str, community: str) -> dict:
    """A community's platform proof as its cell's audit hands it out (service.py platform_proof)."""
    store = getattr(d, cell)
    with store.engine.connect() as conn:
        found = proofs.platform_inclusion(conn, community)
    with d.platform.engine.connect() as conn:
        spanned = span.proof(conn, cell)
    with store.engine.connect() as conn:
        return proofs.spanning(conn, found, spanned)


def keys(d) -> list[str]:
    return [cp.public_key_b64(d.signer.key)]


def span_size(d) -> int:
    with d.platform.engine.connect() as conn:
        return span.latest(conn)["size"]


def test_each_cell_s_head_is_witnessed_and_a_community_s_proof_chains_to_the_platform_head(deployment):
    d = deployment
    a, b = "a-" + uuid.uuid4().hex[:6], "b-" + uuid.uuid4().hex[:6]
    d.c1.append(a, 5)
    d.c2.append(b, 3)
    assert witness(d, "c1")["index"] == 0 and witness(d, "c2")["index"] == 1
    assert span_size(d) == 2
    for cell, community in (("c1", a), ("c2", b)):
        proof = platform_proof(d, cell, community)
        report = verify.verify_proof(proof, keys(d))
        assert report.ok, report.problems
        assert report.community == community and not report.warnings
        assert report.spanned["community"] == cp.SPAN and report.spanned["size"] == 2
    # c1 grows: its new head extends the witnessed one (a consistency proof), and is a new leaf;
    # c2 shows the same head again: nothing appended.
    d.c1.append(a, 4)
    assert witness(d, "c1")["index"] == 2
    assert witness(d, "c2")["index"] == 1 and span_size(d) == 3
    proof = platform_proof(d, "c1", a)
    assert proof["span"]["index"] == 2 and verify.verify_proof(proof, keys(d)).ok
    # Every head of the spanning log was signed in turn, and the history says so.
    with d.platform.engine.connect() as conn:
        assert [h["size"] for h in span.history(conn)] == [1, 2, 3]


def _forged_head(d, size: int, root: bytes, key=None) -> dict:
    return cp.sign_checkpoint(key or d.signer.key, cp.PLATFORM, size, root, T0 + timedelta(hours=1))


def test_a_head_that_does_not_extend_the_witnessed_one_is_refused_and_counted(deployment):
    d = deployment
    a = "a-" + uuid.uuid4().hex[:6]
    d.c1.append(a, 5)
    witnessed = witness(d, "c1")["checkpoint"]
    forks = metrics.AUDIT_CELL_FORKS.labels("c1")
    before = forks._value.get()
    other_root = hashlib.sha256(b"another history").digest()
    cases = {
        "another root for the same entries (split view)": (_forged_head(d, witnessed["size"], other_root), []),
        "a longer log whose proof does not verify (fork)": (_forged_head(d, witnessed["size"] + 1, other_root), []),
        "a shrunk log": (_forged_head(d, witnessed["size"] - 1, other_root), []),
        "a stranger's key": (_forged_head(d, witnessed["size"] + 1, other_root, Ed25519PrivateKey.generate()), []),
        "a community's checkpoint, not a cell's head": (
            cp.sign_checkpoint(d.signer.key, a, 5, other_root, T0), []),
    }
    for name, (head, proof) in cases.items():
        with pytest.raises(span.Fork):
            span.witness(d.platform.engine, d.signer, "c1", head, proof, [], T0)
    assert forks._value.get() == before + len(cases)
    assert span_size(d) == 1  # nothing appended, no head signed
    # The cell's real next head still extends the witnessed one.
    d.c1.append(a, 2)
    assert witness(d, "c1")["index"] == 1


def test_a_head_without_its_consistency_proof_is_refused(deployment):
    d = deployment
    a = "a-" + uuid.uuid4().hex[:6]
    d.c1.append(a, 3)
    witness(d, "c1")
    d.c1.append(a, 3)
    with pytest.raises(span.Fork):
        witness(d, "c1", since_witnessed=False)  # the head, but no proof that it extends the witnessed one
    assert witness(d, "c1")["index"] == 1


def test_a_tampered_span_fails_offline_and_a_missing_one_is_a_warning(deployment):
    d = deployment
    a, b = "a-" + uuid.uuid4().hex[:6], "b-" + uuid.uuid4().hex[:6]
    d.c1.append(a, 4)
    d.c2.append(b, 4)
    witness(d, "c1")
    witness(d, "c2")
    good = platform_proof(d, "c1", a)
    assert verify.verify_proof(good, keys(d)).ok

    def tampered(change) -> verify.Report:
        proof = {**good, "span": dict(good["span"])}
        change(proof["span"])
        return verify.verify_proof(proof, keys(d))

    other = platform_proof(d, "c2", b)
    for change in (lambda s: s.update(cell="c2"),  # c1's head passed off as c2's
                   lambda s: s.update(index=1),
                   lambda s: s.update(proof=list(reversed(s["proof"])) + ["00" * 32]),
                   lambda s: s.update(span_checkpoint=dict(s["span_checkpoint"], size=s["span_checkpoint"]["size"] + 1)),
                   lambda s: s.update(span_checkpoint=other["platform_checkpoint"])):  # a cell head, not the span's
        report = tampered(change)
        assert not report.ok and report.spanned is None
    # The platform audit did not answer: the cell's proof alone, said so.
    report = verify.verify_proof({**good, "span": None}, keys(d))
    assert report.ok and report.spanned is None and any("not yet witnessed" in w for w in report.warnings)
    # A proof of a deployment without cells has no span at all, and no warning.
    with d.c1.engine.connect() as conn:
        plain = proofs.platform_inclusion(conn, a)
    assert "span" not in plain and not verify.verify_proof(plain, keys(d)).warnings


def test_a_witnessed_head_older_than_the_proof_leaves_the_proof_unspanned(deployment):
    d = deployment
    a = "a-" + uuid.uuid4().hex[:6]
    d.c1.append(a, 2)
    witness(d, "c1")
    d.c1.append(a, 2)  # a newer head, not witnessed yet
    proof = platform_proof(d, "c1", a)
    assert proof["span"] is None
    assert verify.verify_proof(proof, keys(d)).ok


def test_the_platform_audit_is_one_more_process_of_a_deployment_with_cells():
    s = config.load({"CONSULT_CELLS": "c1,c2"})
    assert cells.processes(s, ["communities", "audit", "proposals"]) == [
        ("communities", None), ("audit", "c1"), ("audit", "c2"), ("audit", None), ("proposals", "c1"), ("proposals", "c2")]
    cells.check_process(s, "audit")  # without CONSULT_CELL: the platform audit
    with pytest.raises(ValueError):
        cells.check_process(s, "proposals")
    assert cells.spanning_instance(s, "audit") and not cells.spanning_instance(s, "proposals")
    assert cells.platform_wide(s, "audit", "platform_checkpoint")
    assert not cells.platform_wide(s, "audit", "platform_proof")
    in_cell = config.load({"CONSULT_CELLS": "c1,c2", "CONSULT_CELL": "c1"})
    assert not cells.spanning_instance(in_cell, "audit")
    plain = config.load({})
    assert cells.processes(plain, ["audit"]) == [("audit", None)]
    assert not cells.spanning_instance(plain, "audit") and not cells.platform_wide(plain, "audit", "platform_checkpoint")
