"""The audit log's storage without a broker (SQLite in a temporary folder): entries and tree nodes
written in one transaction, a log older than its tree, checkpoints cut by count (in the append)
and by time (the timer), the platform log of logs, proofs handed out and checked offline, key
rotation and a key file swapped by hand, and an export read back by the verifier."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from services.audit import checkpointing, export, log, merkle, proofs, verify
from services.audit import checkpoints as cp
from services.audit.service import _sink
from services.common import clock, config
from services.common.content import ContentStore
from services.common.errors import Conflict
from services.common.store import state_engine
from services.common.tables import create_all

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def audit(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_AUDIT_CHECKPOINT_EVERY", "4")
    monkeypatch.setenv("CONSULT_AUDIT_CHECKPOINT_SECONDS", "60")
    monkeypatch.delenv("CONSULT_AUDIT_KEY_FILE", raising=False)
    settings = config.load()
    engine = state_engine("audit", settings)
    create_all(engine, log.metadata, checkpointing.metadata)
    policy = checkpointing.policy(settings)
    signer = checkpointing.Signer.open(policy.key_file)
    checkpointing.prepare(engine, signer)
    runtime = SimpleNamespace(engine=engine, app=SimpleNamespace(policy=policy, signer=signer))
    yield SimpleNamespace(engine=engine, policy=policy, signer=signer, sink=_sink(runtime), dir=tmp_path)
    engine.dispose()


COMMUNITY = "c-" + uuid.uuid4().hex[:8]


def envelope(i: int, community: str = COMMUNITY, source: str = "proposals", data: dict | None = None,
             at: datetime = T0) -> dict:
    return {"schema": "consult.event/1", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{community}/{source}/{i}")),
            "source": source, "position": i, "type": "ProposalSubmitted", "event_version": 1,
            "community": community, "aggregate": {"type": "Proposal", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{i}")), "version": 1},
            "occurred_at": clock.format(at + timedelta(seconds=i)), "actor": "r-1", "case": None,
            "causation": None, "data": data or {"n": i, "楼": "3栋"}}


def append_all(audit, envs) -> None:
    for env in envs:
        assert audit.sink.handle(env["source"], env)


def stored_bodies(audit, community=COMMUNITY) -> list[bytes]:
    with audit.engine.connect() as conn:
        return [b.encode() for b in log.lines(conn, community, 0, 10**6)]


def test_entries_and_tree_nodes_commit_together(audit):
    append_all(audit, [envelope(i) for i in range(1, 11)])
    bodies = stored_bodies(audit)
    assert bodies[0] == cp.canonical(envelope(1)), "the leaf is the canonical envelope, byte for byte"
    with audit.engine.connect() as conn:
        tree = log.tree(conn, COMMUNITY)
        assert tree.size == 10
        assert tree.root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(b) for b in bodies])
    with pytest.raises(ZeroDivisionError), audit.engine.begin() as conn:
        log.append(conn, envelope(11))
        1 / 0  # the tracking transaction fails after the append
    with audit.engine.connect() as conn:
        assert log.head(conn, COMMUNITY) == 10 and log.tree(conn, COMMUNITY).size == 10


def test_a_duplicate_delivery_appends_nothing(audit):
    env = envelope(1)
    assert audit.sink.handle("proposals", env) is True
    assert audit.sink.handle("proposals", env) is False
    assert stored_bodies(audit) == [cp.canonical(env)]


def test_a_log_older_than_its_tree_is_hashed_in_and_a_tree_ahead_of_its_log_stops_the_writer(audit):
    append_all(audit, [envelope(i) for i in range(1, 8)])
    with audit.engine.begin() as conn:  # as a log written before the tree existed
        conn.execute(sa.delete(log.nodes))
        conn.execute(sa.delete(log.frontiers))
    append_all(audit, [envelope(8)])
    with audit.engine.begin() as conn:  # a tree without its kept edge opens from its nodes
        conn.execute(sa.delete(log.frontiers))
    append_all(audit, [envelope(9)])
    bodies = stored_bodies(audit)
    with audit.engine.connect() as conn:
        assert log.tree(conn, COMMUNITY).root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(b) for b in bodies])
        assert conn.execute(sa.select(log.frontiers.c.size)).scalar() == 9
    with audit.engine.begin() as conn:
        conn.execute(sa.insert(log.nodes).values(tree=COMMUNITY, level=0, idx=9, hash=bytes(32)))
    with pytest.raises(RuntimeError, match="disagree"), audit.engine.begin() as conn:
        log.append(conn, envelope(10))


def test_which_communities_are_due():
    sizes = {"a": 10, "b": 10, "c": 3, "d": 5}
    last = {"a": (6, clock.format(T0)), "b": (9, clock.format(T0)), "d": (5, clock.format(T0))}
    first = {"c": clock.format(T0)}
    now = T0 + timedelta(seconds=30)
    assert checkpointing.due(sizes, last, first, now, every=4, seconds=60) == ["a"]  # 4 new entries
    assert checkpointing.due(sizes, last, first, T0 + timedelta(seconds=60), 4, 60) == ["a", "b", "c"]
    assert checkpointing.due(sizes, last, first, T0 - timedelta(hours=1), 100, 60) == [], "a clock set back"


def test_checkpoints_every_n_entries_in_the_append_and_after_t_seconds_by_the_timer(audit):
    append_all(audit, [envelope(i, at=T0) for i in range(1, 4)])
    with audit.engine.connect() as conn:
        assert checkpointing.history(conn, COMMUNITY) == []
    assert checkpointing.cut(audit.engine, audit.signer, audit.policy, T0 + timedelta(seconds=30)) == []
    [by_time] = checkpointing.cut(audit.engine, audit.signer, audit.policy, T0 + timedelta(seconds=62))
    assert by_time["size"] == 3 and by_time["time"] == clock.format(T0 + timedelta(seconds=62))
    append_all(audit, [envelope(4, at=T0)])  # the 4th entry: cut with it, in its transaction
    append_all(audit, [envelope(i, at=T0) for i in range(5, 9)])
    with audit.engine.connect() as conn:
        history = checkpointing.history(conn, COMMUNITY)
        assert [c["size"] for c in history] == [3, 4, 8]
        tree = log.tree(conn, COMMUNITY)
        assert all(c["root"] == tree.root(c["size"]).hex() for c in history)
        ring = cp.KeyRing([audit.signer.key.public_key()])
        assert all(ring.verifies(c) for c in history)
        # The log of logs: one leaf per community checkpoint as cut; its head commits to them all.
        for c in history:
            p = proofs.platform_inclusion(conn, COMMUNITY, c["size"])
            assert verify.verify_proof(p, [audit.signer.key.public_key()]).ok
        head = checkpointing.platform_latest(conn)
        assert head["community"] == cp.PLATFORM and head["size"] == 3
    assert checkpointing.cut(audit.engine, audit.signer, audit.policy, T0 + timedelta(days=1), force=True) == []


def test_a_batch_appends_and_cuts_what_one_envelope_at_a_time_would_with_a_write_per_run(audit):
    """The consumer hands the audit service its batches whole (SqlSink.handler_many): each run of
    one community's envelopes is appended in one statement per table, and the checkpoint of every
    N-th entry (N=4 here) is cut at its own size, even when the run went past it."""
    other = "c-" + uuid.uuid4().hex[:8]
    envs = ([envelope(i) for i in range(1, 4)] + [envelope(i, community=other) for i in range(4, 6)]
            + [envelope(i) for i in range(6, 13)])
    seen = []
    sa.event.listen(audit.engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    assert audit.sink.handle_many("proposals", envs) == len(envs)
    assert sum(1 for s in seen if s.startswith("INSERT INTO audit_entries")) == 3  # one per run
    assert sum(1 for s in seen if s.startswith("INSERT INTO audit_nodes")) == 3
    assert audit.sink.handle_many("proposals", envs) == 0  # a redelivery appends nothing
    ours = [e for e in envs if e["community"] == COMMUNITY]
    assert stored_bodies(audit) == [cp.canonical(e) for e in ours]
    assert stored_bodies(audit, other) == [cp.canonical(e) for e in envs if e["community"] == other]
    hashes = [merkle.leaf_hash(cp.canonical(e)) for e in ours]
    with audit.engine.connect() as conn:
        assert log.tree(conn, COMMUNITY).root() == merkle.root_from_leaf_hashes(hashes)
        history = checkpointing.history(conn, COMMUNITY)
        assert [c["size"] for c in history] == [4, 8]
        assert [c["root"] for c in history] == [merkle.root_from_leaf_hashes(hashes[:n]).hex() for n in (4, 8)]
        assert checkpointing.history(conn, other) == []
        assert conn.execute(sa.select(log.frontiers.c.size).where(log.frontiers.c.community == COMMUNITY)).scalar() == 10
    append_all(audit, [envelope(13)])  # and the next single append resumes from the run's kept edge
    with audit.engine.connect() as conn:
        hashes.append(merkle.leaf_hash(cp.canonical(envelope(13))))
        assert log.tree(conn, COMMUNITY).root() == merkle.root_from_leaf_hashes(hashes)


def test_proofs_against_signed_checkpoints_verify_offline_and_refuse_what_is_not_covered(audit):
    append_all(audit, [envelope(i) for i in range(1, 14)])  # checkpoints at 4, 8, 12
    key = [audit.signer.key.public_key()]
    with audit.engine.connect() as conn:
        bundle = proofs.inclusion_bundle(conn, COMMUNITY, [0, 5, 11], since=4)
        assert bundle["checkpoint"]["size"] == 12 and all(len(e["proof"]) <= 4 for e in bundle["entries"])
        trusted = checkpointing.of_size(conn, COMMUNITY, 4)[0]
        assert verify.verify_proof(bundle, key, trusted).ok
        with pytest.raises(Conflict, match="not covered"):
            proofs.inclusion_bundle(conn, COMMUNITY, [12])
        consistency = proofs.consistency(conn, COMMUNITY, 4, 12)
        assert len(consistency["proof"]) <= 5 and verify.verify_proof(consistency, key, trusted).ok
        other = dict(trusted, root="00" * 32)
        assert "fork" in verify.verify_proof(consistency, key, other).first_error.message
    assert proofs.bundle_commitments(bundle) == {"proposals": []}


def test_a_key_rotation_is_signed_by_the_old_key_and_the_key_file_replaced(audit):
    append_all(audit, [envelope(i) for i in range(1, 5)])
    old = audit.signer.key
    new_file = audit.dir / "next.key"
    new = cp.generate_key_file(new_file)
    statement = checkpointing.rotate(audit.engine, audit.signer, new_file, T0 + timedelta(hours=1))
    assert cp.verify_signature(statement, old.public_key()) and statement["new_key_id"] == cp.key_id(new)
    assert audit.signer.key_id == cp.key_id(new) == cp.key_id(cp.load_private_key(audit.policy.key_file))
    assert audit.policy.key_file.stat().st_mode & 0o777 == 0o600
    with audit.engine.connect() as conn:
        keys = checkpointing.public_keys(conn)
        assert keys["current"] == cp.key_id(new) and [k["retired_at"] is None for k in keys["keys"]].count(True) == 1
        assert keys["key_rotations"] == [statement]
        leaf = conn.execute(sa.select(checkpointing.platform_log.c.body)
                            .where(checkpointing.platform_log.c.kind == cp.KEY_ROTATION)).scalar()
        assert json.loads(leaf) == statement, "announced in the platform log"
    with pytest.raises(Conflict, match="already the signing key"):
        checkpointing.rotate(audit.engine, audit.signer, new_file, T0 + timedelta(hours=2))
    append_all(audit, [envelope(i) for i in range(5, 9)])
    with audit.engine.connect() as conn:
        latest = checkpointing.latest(conn, COMMUNITY)
    assert latest["key_id"] == cp.key_id(new)
    ring = cp.KeyRing([old.public_key()])
    ring.learn(statement)
    assert ring.verifies(latest), "a verifier holding the old key learns the new one"


def test_a_key_file_swapped_by_hand_signs_nothing_and_holds_up_no_append(audit):
    append_all(audit, [envelope(i) for i in range(1, 4)])
    cp.generate_key_file(audit.policy.key_file, overwrite=True)
    with pytest.raises(Conflict, match="refusing to sign"):
        checkpointing.cut(audit.engine, audit.signer, audit.policy, T0, force=True)
    append_all(audit, [envelope(4)])  # the 4th entry would be checkpointed; it is still recorded
    with audit.engine.connect() as conn:
        assert log.head(conn, COMMUNITY) == 4 and checkpointing.history(conn, COMMUNITY) == []
    with pytest.raises(Conflict, match="refusing to sign"):  # nor an export's header
        checkpointing.export_header(audit.engine, audit.signer, COMMUNITY, True, T0)


def test_a_case_bundle_carries_its_signed_extent_and_its_unsigned_entries_only_when_asked(audit):
    case = "case-" + uuid.uuid4().hex[:6]
    envs = [envelope(i) for i in range(1, 7)]
    for env in envs[1::2]:
        env["case"] = case  # entries 1, 3 and 5
    append_all(audit, envs)  # the checkpoint of 4 entries is cut with the 4th
    key = [audit.signer.key.public_key()]
    with audit.engine.connect() as conn:
        assert checkpointing.extent(conn, COMMUNITY) == {"community": COMMUNITY, "size": 6, "covered": 4}
        _, indexes = log.case_indexes(conn, case)
        with pytest.raises(Conflict, match="not covered"):
            proofs.inclusion_bundle(conn, COMMUNITY, indexes)
        bundle = proofs.inclusion_bundle(conn, COMMUNITY, indexes, unsigned=True)
        bundle["extent"] = checkpointing.bundle_extent(conn, audit.signer, bundle, case, T0)
    assert [(e["index"], e["proof"] is None) for e in bundle["entries"]] == [(1, False), (3, False), (5, True)]
    assert bundle["extent"]["indexes"] == [1, 3, 5] and bundle["extent"]["unsigned"] is True
    report = verify.verify_proof(bundle, key)
    err = report.first_error
    assert not report.ok and err.index == 5 and "not covered by the bundle's" in err.message
    report = verify.verify_proof(bundle, key, allow_unsigned_tail=True)
    assert report.ok and report.unvouched == 1 and report.extent == bundle["extent"]
    bundle["entries"].pop()  # the unsigned entry dropped, the extent kept: it is missed
    assert verify.verify_proof(bundle, key, allow_unsigned_tail=True).first_error.kind == "extent"


def test_the_key_file_is_made_once_for_its_owner_only(tmp_path):
    path = tmp_path / "keys" / "audit-signing.key"
    first = checkpointing.Signer.open(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert checkpointing.Signer.open(path).key_id == first.key_id


def test_an_export_carries_entries_texts_and_checkpoints_that_verify(audit, tmp_path):
    texts = ContentStore(audit.engine)  # a stage's content store (here beside the audit tables)
    title, erased = texts.put("疏通排水沟", subject="wang"), texts.put("王的电话", subject="wang-phone")
    texts.erase(erased)
    unknown = hashlib.sha256(b"nobody holds this").hexdigest()
    envs = [envelope(1, data={"title_commitment": title}), envelope(2, data={"note_commitment": erased}),
            envelope(3), envelope(4, source="decisions", data={"options": [{"title_commitment": title}]})]
    append_all(audit, envs)

    def send(request):
        """The services answering declared calls (the CLI's Rpc.send), by their arguments' names."""
        a = request.arguments()
        if request.SERVICE != "audit":
            assert request.METHOD == "export_texts" and set(a) == {"commitments"}
            held = texts.get_many(a["commitments"])
            return texts.records(held) if request.SERVICE == "proposals" else []
        with audit.engine.connect() as conn:
            # the audit service's methods, with their defaults (a call leaves out what is at its default)
            return {"checkpoints": lambda community, start=0, limit=100: checkpointing.history(
                        conn, community, start, limit),
                    "export_header": lambda community, unsigned=False: checkpointing.export_header(
                        audit.engine, audit.signer, community, unsigned, T0 + timedelta(hours=1)),
                    "public_keys": lambda: checkpointing.public_keys(conn),
                    "export_lines": lambda community, start=0, limit=1000: log.lines(
                        conn, community, start, start + limit)}[request.METHOD](**a)

    out = tmp_path / "export.jsonl"
    summary = export.write_export(send, COMMUNITY, out, ("decisions", "proposals"))
    assert (summary["entries"], summary["texts"], summary["erased"], summary["missing_texts"]) == (4, 2, 1, [])
    report = verify.verify_export(out, [audit.signer.key.public_key()])
    assert report.ok and report.erased == [erased] and report.counts["texts_verified"] == 1
    header = json.loads(out.read_bytes().split(b"\n")[0])
    assert (header["kind"], header["size"], header["covered"], header["unsigned"]) == ("export_header", 4, 4, False)
    assert report.extent == header == summary["header"]
    entries, found, checkpoints = export.read_export(out)
    assert entries == envs and found[title]["text"] == "疏通排水沟" and checkpoints[-1]["size"] == 4
    # A commitment no service holds is reported by the exporter and by the verifier.
    append_all(audit, [envelope(5, data={"body_commitment": unknown})])
    summary = export.write_export(send, COMMUNITY, out, ("proposals",), unsigned=True)
    assert summary["missing_texts"] == [unknown] and (summary["entries"], summary["covered"]) == (5, 4)
    assert summary["header"]["unsigned"] is True
    report = verify.verify_export(out, [audit.signer.key.public_key()], allow_unsigned_tail=True)
    assert not report.ok and report.first_error.kind == "text" and report.first_error.index == 4
    assert report.unvouched == 1
    report = verify.verify_export(out, [audit.signer.key.public_key()])
    assert any(p.kind == "entry" and p.index == 4 and "not covered" in p.message for p in report.problems)
    # Without --unsigned the export still ends at the checkpoint, whatever was appended since.
    summary = export.write_export(send, COMMUNITY, out, ("proposals",))
    assert (summary["entries"], summary["header"]["unsigned"]) == (4, False)
    assert verify.verify_export(out, [audit.signer.key.public_key()]).ok


def test_a_tree_resumed_from_its_kept_edge_is_the_tree():
    leaves = [f"leaf {i}".encode() for i in range(37)]
    whole = merkle.MerkleTree()
    whole.extend(leaves[:29])
    resumed = merkle.MerkleTree.resume(whole.store, 29, whole.edge)
    resumed.extend(leaves[29:])
    assert resumed.root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves])
    assert resumed.inclusion_proof(3, 37) == merkle.reference_inclusion_proof(3, [merkle.leaf_hash(x) for x in leaves])
    with pytest.raises(ValueError):
        merkle.MerkleTree.resume(whole.store, 32, whole.edge)  # 32 leaves have an edge of one hash
