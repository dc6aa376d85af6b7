"""Signed checkpoints: keys on disk, signatures, rotation, the log of logs, the notice text."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit import checkpoints as cp
from services.audit import merkle

T0 = datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc)
ROOT8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def test_key_file_is_pkcs8_pem_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "audit.key"
    key = cp.generate_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    loaded = cp.load_private_key(path)
    assert cp.key_id(loaded) == cp.key_id(key)
    with pytest.raises(FileExistsError):
        cp.generate_key_file(path)  # never overwrites by accident
    replaced = cp.generate_key_file(path, overwrite=True)
    assert cp.key_id(cp.load_private_key(path)) == cp.key_id(replaced) != cp.key_id(key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_key_file_mode_ignores_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        cp.generate_key_file(tmp_path / "k.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "k.pem").st_mode) == 0o600


def test_public_key_exports_round_trip_and_key_id_is_sha256_prefix(key, tmp_path):
    raw = cp.public_key_raw(key)
    assert len(raw) == 32
    assert cp.key_id(key) == hashlib.sha256(raw).hexdigest()[:16]
    b64, pem = cp.public_key_b64(key), cp.public_key_pem(key)
    assert base64.b64decode(b64) == raw
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "pub.pem").write_text(pem)
    for form in (b64, pem, pem.encode(), raw, key, key.public_key(), tmp_path / "pub.pem"):
        assert cp.public_key_raw(cp.load_public_key(form)) == raw
    with pytest.raises(ValueError):
        cp.load_public_key("bm90IGEga2V5")  # base64, but not 32 bytes


def test_checkpoint_has_the_documented_fields_and_signs_its_canonical_json(key):
    c = cp.sign_checkpoint(key, "社区-1", 8, bytes.fromhex(ROOT8), T0)
    assert set(c) == {"kind", "community", "size", "root", "time", "key_id", "signature"}
    assert c["kind"] == "checkpoint" and c["size"] == 8 and c["root"] == ROOT8
    assert c["time"] == "2026-11-26T08:30:00.000000Z"
    assert c["key_id"] == cp.key_id(key)
    message = json.dumps({k: v for k, v in c.items() if k != "signature"}, sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False).encode()
    key.public_key().verify(base64.b64decode(c["signature"]), message)  # raises if wrong
    assert cp.verify_signature(c, key.public_key())
    assert cp.KeyRing([key.public_key()]).verifies(c)


@pytest.mark.parametrize("field,value", [
    ("size", 9), ("root", "0" * 64), ("community", "other"), ("time", "2026-11-26T08:30:01.000000Z")])
def test_any_changed_field_breaks_the_signature(key, field, value):
    c = cp.sign_checkpoint(key, "c1", 8, ROOT8, T0)
    ring = cp.KeyRing([key.public_key()])
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        ring.check({**c, field: value})


def test_a_checkpoint_signed_by_an_untrusted_key_is_refused(key):
    other = Ed25519PrivateKey.generate()
    c = cp.sign_checkpoint(other, "c1", 8, ROOT8, T0)
    with pytest.raises(cp.CheckpointError, match="not trusted"):
        cp.KeyRing([key.public_key()]).check(c)
    # claiming the trusted key's id does not help
    forged = {**c, "key_id": cp.key_id(key)}
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        cp.KeyRing([key.public_key()]).check(forged)


@pytest.mark.parametrize("change", [
    {"size": -1}, {"size": True}, {"size": "8"}, {"root": ROOT8.upper()}, {"root": ROOT8[:-2]},
    {"time": "yesterday"}, {"time": "2026-11-26T08:30:00"}, {"key_id": "xyz"}, {"signature": "abc"},
    {"extra": 1}, {"kind": "key_rotation"}, {"community": ""}])
def test_malformed_checkpoints_are_refused(key, change):
    c = {**cp.sign_checkpoint(key, "c1", 8, ROOT8, T0), **change}
    assert cp.checkpoint_form_problem(c)
    with pytest.raises(cp.CheckpointError):
        cp.KeyRing([key]).check(c)


def test_an_export_header_and_a_bundle_extent_sign_their_extent_and_nothing_else(key):
    header = cp.sign_export_header(key, "c1", 10, 8, T0)
    assert set(header) == cp.EXPORT_HEADER_FIELDS and "root" not in header
    assert (header["kind"], header["size"], header["covered"], header["unsigned"]) == ("export_header", 10, 8, True)
    assert cp.sign_export_header(key, "c1", 8, 8, T0)["unsigned"] is False
    extent = cp.sign_bundle_extent(key, "c1", "case-1", 8, [9, 3, 3, 5], T0)
    assert (extent["indexes"], extent["unsigned"]) == ([3, 5, 9], True) and "root" not in extent
    ring = cp.KeyRing([key.public_key()])
    ring.check(header, cp.EXPORT_HEADER)
    ring.check(extent, cp.BUNDLE_EXTENT)
    # each is only what it says it is: a header is no checkpoint, a checkpoint no header
    with pytest.raises(cp.CheckpointError):
        ring.check(header)
    with pytest.raises(cp.CheckpointError):
        ring.check(cp.sign_checkpoint(key, "c1", 8, ROOT8, T0), cp.EXPORT_HEADER)
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        ring.check({**header, "size": 11, "unsigned": True}, cp.EXPORT_HEADER)
    with pytest.raises(ValueError):
        cp.sign_export_header(key, "c1", 7, 8, T0)


@pytest.mark.parametrize("change", [
    {"unsigned": False}, {"unsigned": "yes"}, {"covered": 11}, {"size": -1}, {"root": ROOT8}, {"kind": "checkpoint"}])
def test_malformed_export_headers_are_refused(key, change):
    header = {**cp.sign_export_header(key, "c1", 10, 8, T0), **change}
    assert cp.export_header_problem(header)
    with pytest.raises(cp.CheckpointError):
        cp.KeyRing([key]).check(header, cp.EXPORT_HEADER)


@pytest.mark.parametrize("change", [
    {"indexes": [5, 3]}, {"indexes": [3, 3]}, {"indexes": [-1]}, {"unsigned": False}, {"case": None}])
def test_malformed_bundle_extents_are_refused(key, change):
    extent = {**cp.sign_bundle_extent(key, "c1", "case-1", 8, [3, 9], T0), **change}
    assert cp.bundle_extent_problem(extent)


def test_naive_times_and_bad_sizes_are_refused_when_signing(key):
    with pytest.raises(ValueError):
        cp.sign_checkpoint(key, "c1", 8, ROOT8, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        cp.sign_checkpoint(key, "c1", -1, ROOT8, T0)
    with pytest.raises(ValueError):
        cp.sign_checkpoint(key, "c1", 1, b"short", T0)


def test_rotation_teaches_the_new_key_only_through_the_old_one(key):
    new = Ed25519PrivateKey.generate()
    rotation = cp.rotate_key(key, new.public_key(), T0 + timedelta(days=1))
    assert rotation["kind"] == "key_rotation"
    assert rotation["old_key_id"] == cp.key_id(key) and rotation["new_key_id"] == cp.key_id(new)
    assert base64.b64decode(rotation["new_public_key"]) == cp.public_key_raw(new)
    later = cp.sign_checkpoint(new, "c1", 9, ROOT8, T0 + timedelta(days=2))

    ring = cp.KeyRing([key.public_key()])
    assert not ring.verifies(later)
    assert ring.learn(rotation) == cp.key_id(new)
    assert ring.verifies(later)

    # a verifier that does not trust the old key learns nothing
    stranger = cp.KeyRing([Ed25519PrivateKey.generate().public_key()])
    with pytest.raises(cp.CheckpointError, match="not trusted"):
        stranger.learn(rotation)


def test_a_rotation_signed_by_someone_else_is_refused(key):
    thief = Ed25519PrivateKey.generate()
    forged = cp.rotate_key(thief, thief.public_key(), T0)
    forged = {**forged, "old_key_id": cp.key_id(key)}  # pretends to come from the trusted key
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        cp.KeyRing([key]).learn(forged)
    tampered = {**cp.rotate_key(key, Ed25519PrivateKey.generate().public_key(), T0),
                "new_public_key": cp.public_key_b64(thief)}
    with pytest.raises(cp.CheckpointError, match="not the id"):
        cp.KeyRing([key]).learn(tampered)


def test_a_rotated_out_key_signs_nothing_after_its_rotation(key):
    new = Ed25519PrivateKey.generate()
    ring = cp.KeyRing([key])
    ring.learn(cp.rotate_key(key, new, T0))
    assert ring.verifies(cp.sign_checkpoint(key, "c1", 3, ROOT8, T0 - timedelta(hours=1)))
    assert ring.verifies(cp.sign_checkpoint(key, "c1", 3, ROOT8, T0))
    with pytest.raises(cp.CheckpointError, match="rotated out"):
        ring.check(cp.sign_checkpoint(key, "c1", 4, ROOT8, T0 + timedelta(seconds=1)))
    # and it cannot name a second successor
    with pytest.raises(cp.CheckpointError, match="already rotated"):
        ring.learn(cp.rotate_key(key, Ed25519PrivateKey.generate(), T0 - timedelta(days=1)))


def test_rotation_chains(key):
    k2, k3 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ring = cp.KeyRing([key])
    ring.learn(cp.rotate_key(key, k2, T0))
    ring.learn(cp.rotate_key(k2, k3, T0 + timedelta(days=1)))
    assert ring.verifies(cp.sign_checkpoint(k3, "c1", 1, ROOT8, T0 + timedelta(days=2)))
    assert not ring.verifies(cp.sign_checkpoint(k2, "c1", 1, ROOT8, T0 + timedelta(days=2)))


def test_platform_checkpoint_commits_every_community_checkpoint(key):
    cps = [cp.sign_checkpoint(key, f"community-{i}", i + 1, hashlib.sha256(bytes([i])).digest(), T0)
           for i in range(5)]
    store = merkle.MemoryNodeStore()
    tree = merkle.MerkleTree(store)
    head = cp.platform_checkpoint(cps, key, T0 + timedelta(minutes=1), tree=tree)
    assert head["community"] == cp.PLATFORM and head["size"] == 5
    leaves = [merkle.leaf_hash(cp.canonical(c)) for c in cps]
    assert head["root"] == merkle.root_from_leaf_hashes(leaves).hex()
    ring = cp.KeyRing([key])
    assert ring.verifies(head)
    for i, c in enumerate(cps):
        assert cp.verify_platform_inclusion(head, c, i, tree.inclusion_proof(i), ring)
    # a community checkpoint changed after the fact is not committed
    changed = cp.sign_checkpoint(key, "community-2", 3, bytes(32), T0)
    assert not cp.verify_platform_inclusion(head, changed, 2, tree.inclusion_proof(2), ring)
    # the log continues: the next head is consistent with this one
    nxt = cp.platform_checkpoint([cp.sign_checkpoint(key, "community-0", 2, bytes(32), T0)], key,
                                 T0 + timedelta(minutes=2), tree=tree)
    assert nxt["size"] == 6
    assert merkle.verify_consistency(5, 6, bytes.fromhex(head["root"]), bytes.fromhex(nxt["root"]),
                                     tree.consistency_proof(5, 6))


def test_platform_log_refuses_something_that_is_not_a_checkpoint(key):
    with pytest.raises(cp.CheckpointError):
        cp.platform_checkpoint([{"kind": "checkpoint"}], key, T0)


def test_notice_text_in_chinese_and_english(key):
    c = cp.sign_checkpoint(key, "锦江-水井坊", 8, ROOT8, T0)
    zh = cp.notice_text(c)
    assert zh == cp.notice_text(c, "zh-CN")
    assert "锦江-水井坊" in zh and "记录条数：8" in zh and cp.key_id(key) in zh
    assert "5dc9da79 a70659a9 ad559cb7 01ded9a2" in zh
    assert "ab9d823a ad2f4960 cfe370ef f4604328" in zh
    assert "2026-11-26T08:30:00.000000Z" in zh
    en = cp.notice_text(c, "en")
    assert "Entries: 8" in en and "5dc9da79 a70659a9" in en and "Signing key id: " + cp.key_id(key) in en
    assert len(en.splitlines()) <= 10
    # every hex digit of the root is on the notice, in order
    assert "".join(x for line in en.splitlines()[4:6] for x in line.split()) == ROOT8
    with pytest.raises(ValueError):
        cp.notice_text(c, "fr")
