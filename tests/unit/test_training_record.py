"""A training deployment's audit record: every statement it signs says "mode": "training" inside
the signature, and a verifier checks one kind of record — a training record never verifies as a
production one, whatever key signed it, and a production record never as a training one."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit import checkpointing, checkpoints as cp, merkle, verify
from services.audit.cli import main as audit_cli
from services.common import config

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.generate()


def export_lines(mode: str, n: int = 6, key=KEY) -> list[str]:
    entries = [cp.canonical({
        "schema": "consult.event/1", "id": f"00000000-0000-0000-0000-{i:012d}", "source": "proposals",
        "position": i + 1, "type": "ProposalSubmitted", "event_version": 1, "community": "c1",
        "aggregate": {"type": "Proposal", "id": "10000000-0000-0000-0000-000000000000", "version": i + 1},
        "occurred_at": (T0 + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": "r-1", "case": "k",
        "causation": None, "data": {}}).decode() for i in range(n)]
    tree = merkle.MerkleTree()
    tree.extend(entries)
    checkpoint = cp.sign_checkpoint(key, "c1", n, tree.root(n), T0 + timedelta(days=n), mode=mode)
    header = cp.sign_export_header(key, "c1", n, n, T0 + timedelta(days=n + 1), mode=mode)
    return [json.dumps(header)] + entries + [json.dumps(checkpoint)]


def test_a_training_statement_says_so_inside_its_signature():
    made = cp.sign_checkpoint(KEY, "c1", 3, "ab" * 32, T0, mode=cp.TRAINING)
    assert made["mode"] == "training" and cp.checkpoint_form_problem(made) is None
    assert cp.KeyRing([KEY.public_key()], cp.TRAINING).verifies(made)
    stripped = {k: v for k, v in made.items() if k != "mode"}
    with pytest.raises(cp.CheckpointError, match="signature does not verify"):
        cp.KeyRing([KEY.public_key()]).check(stripped)  # taking the flag off breaks the signature
    production = cp.sign_checkpoint(KEY, "c1", 3, "ab" * 32, T0)
    assert "mode" not in production, "a production statement is as it always was"
    assert cp.checkpoint_form_problem(dict(production, mode="production")) == \
        "checkpoint mode must be 'training' (a production statement carries no mode)"


@pytest.mark.parametrize("kind, sign", [
    (cp.CHECKPOINT, lambda mode: cp.sign_checkpoint(KEY, "c1", 3, "ab" * 32, T0, mode=mode)),
    (cp.EXPORT_HEADER, lambda mode: cp.sign_export_header(KEY, "c1", 3, 3, T0, mode=mode)),
    (cp.BUNDLE_EXTENT, lambda mode: cp.sign_bundle_extent(KEY, "c1", "k", 3, [0, 2], T0, mode=mode)),
])
def test_a_verifier_checks_one_kind_of_record_whatever_key_signed_it(kind, sign):
    production_ring, training_ring = cp.KeyRing([KEY.public_key()]), cp.KeyRing([KEY.public_key()], cp.TRAINING)
    training, production = sign(cp.TRAINING), sign(cp.PRODUCTION)
    name = kind.replace("_", " ")
    with pytest.raises(cp.CheckpointError) as refused:
        production_ring.check(training, kind)  # the same key: only the kind of record differs
    assert str(refused.value).startswith(f'this {name} comes from a training deployment ("mode": "training"): '
                                         "a training record never verifies as a production one")
    with pytest.raises(cp.CheckpointError, match=f"this {name} comes from a production deployment"):
        training_ring.check(production, kind)
    training_ring.check(training, kind)
    production_ring.check(production, kind)


def test_a_training_key_rotation_teaches_only_a_training_verifier():
    new = Ed25519PrivateKey.generate()
    rotation = cp.rotate_key(KEY, new.public_key(), T0, mode=cp.TRAINING)
    with pytest.raises(cp.CheckpointError, match="comes from a training deployment"):
        cp.KeyRing([KEY.public_key()]).learn(rotation)
    assert cp.KeyRing([KEY.public_key()], cp.TRAINING).learn(rotation) == cp.key_id(new)


def test_a_training_export_fails_as_production_on_its_first_line_and_verifies_as_training():
    lines = export_lines(cp.TRAINING)
    report = verify.verify_export(lines, [KEY.public_key()])
    assert not report.ok and (report.first_error.kind, report.first_error.line) == ("header", 1)
    assert report.summary().splitlines()[0] == (
        'FAILED: header line 1: this export header comes from a training deployment ("mode": "training"): a '
        "training record never verifies as a production one (to check it as the training record it is: "
        "--training, with the training deployment's public key)")
    assert [(p.kind, p.line) for p in report.problems] == [("header", 1), ("checkpoint", 8)], "each statement says why"
    trained = verify.verify_export(lines, [KEY.public_key()], mode=cp.TRAINING)
    assert trained.ok, trained.problems
    assert trained.mode == "training" and trained.summary().startswith("OK: a TRAINING record")
    production = verify.verify_export(export_lines(cp.PRODUCTION), [KEY.public_key()], mode=cp.TRAINING)
    assert not production.ok and "comes from a production deployment" in production.first_error.message
    assert verify.verify_export(export_lines(cp.PRODUCTION), [KEY.public_key()]).summary().startswith("OK\n")


def test_the_cli_verifies_a_training_export_only_with_training(tmp_path, capsys):
    path, key = tmp_path / "training.jsonl", tmp_path / "training.pem"
    path.write_text("\n".join(export_lines(cp.TRAINING)) + "\n", encoding="utf-8")
    key.write_text(cp.public_key_pem(KEY), encoding="ascii")
    assert audit_cli(["audit", "verify", str(path), "--public-key", str(key)]) == 1
    assert capsys.readouterr().out.startswith("FAILED: header line 1: this export header comes from a training "
                                              "deployment")
    assert audit_cli(["audit", "verify", str(path), "--public-key", str(key), "--training"]) == 0
    assert capsys.readouterr().out.startswith("OK: a TRAINING record")


def test_the_notice_of_a_training_record_says_so_first_and_last():
    checkpoint = cp.sign_checkpoint(KEY, "c1", 12, "ab" * 32, T0, mode=cp.TRAINING)
    zh, en = cp.notice_text(checkpoint, "zh-CN").splitlines(), cp.notice_text(checkpoint, "en").splitlines()
    assert zh[0] == zh[-1] and zh[0].startswith("【培训】") and "不是正式记录" in zh[0]
    assert en[0] == en[-1] and en[0].startswith("TRAINING: ") and "not a real record" in en[0]
    assert "培训" not in cp.notice_text(cp.sign_checkpoint(KEY, "c1", 12, "ab" * 32, T0), "zh-CN")


def test_a_training_deployment_signs_with_its_own_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_DB", "sqlite")
    monkeypatch.setenv("CONSULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONSULT_AUDIT_KEY_FILE", str(tmp_path / "production.key"))
    monkeypatch.delenv("CONSULT_AUDIT_TRAINING_KEY_FILE", raising=False)
    monkeypatch.delenv("CONSULT_DEPLOYMENT", raising=False)
    production = checkpointing.policy(config.load())
    assert (production.key_file, production.mode) == (tmp_path / "production.key", "production")
    monkeypatch.setenv("CONSULT_DEPLOYMENT", "training")
    training = checkpointing.policy(config.load())
    assert (training.key_file, training.mode) == (tmp_path / "audit-training-signing.key", "training")
    monkeypatch.setenv("CONSULT_AUDIT_TRAINING_KEY_FILE", str(tmp_path / "production.key"))
    with pytest.raises(ValueError, match="a training deployment never signs with the production key file"):
        checkpointing.policy(config.load())
