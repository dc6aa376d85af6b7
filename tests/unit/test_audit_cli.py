"""`consult audit verify / verify-proof / replay --export` offline, as an auditor runs them
(`python -m services.audit.cli`), on exports built here: exit statuses, the line that names the
first uncovered entry, the count of unvouched entries, and a replay that stops where the
signatures stop."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit import checkpoints as cp
from services.audit import cli, merkle
from services.audit.verify import commitments_of
from tests.unit.test_audit_replay import CASE, T0, drainage

KEY = Ed25519PrivateKey.generate()
PUBLIC = cp.public_key_b64(KEY)
QUALIFIED = 9  # drainage(): the proposal qualifies with its 9th entry, with 2 households' support


def export_lines(envelopes: list[dict], covered: int, size: int | None = None) -> list[bytes]:
    """An export as the platform writes it: the signed header, `size` entries (default: all), the
    texts (here all erased: the commitments are made up), and a checkpoint of `covered` entries."""
    size = len(envelopes) if size is None else size
    entries = [cp.canonical(env) for env in envelopes[:size]]
    tree = merkle.MerkleTree()
    tree.extend(entries)
    commitments = sorted({c for env in envelopes[:size] for c in commitments_of(env["data"]) if c})
    return ([cp.canonical(cp.sign_export_header(KEY, envelopes[0]["community"], size, covered, T0))] + entries
            + [cp.canonical({"commitment": c, "erased": True, "kind": "text"}) for c in commitments]
            + [cp.canonical(cp.sign_checkpoint(KEY, envelopes[0]["community"], covered, tree.root(covered), T0))])


def another_support(log, at_minutes: int = 5) -> dict:
    """One more household's support for the qualified proposal, as the proposals stage would record it."""
    return log.add("proposals", "SupportGiven", "s-wu", {"proposal": CASE, "unit": "resident", "person": "wu",
                                                         "household": "h3", "carried_from": None},
                   at=T0 + timedelta(minutes=at_minutes))


@pytest.fixture
def log():
    full = drainage()
    log = drainage()
    log.entries = full.entries[:QUALIFIED]
    log.positions = {"proposals": QUALIFIED}
    return log


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["audit", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def write(tmp_path, lines: list[bytes], name: str = "export.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def test_verify_names_the_first_entry_no_checkpoint_covers_and_the_flag_counts_them(tmp_path, capsys, log):
    another_support(log)
    path = write(tmp_path, export_lines(log.entries, covered=QUALIFIED))  # an --unsigned export
    code, out, _ = run(capsys, "verify", path, "--public-key", PUBLIC)
    assert code == 1
    assert out.splitlines()[0].startswith(f"FAILED: entry line {QUALIFIED + 2} entry {QUALIFIED}: entries "
                                          f"[{QUALIFIED}, {QUALIFIED + 1}) are not covered by a signed checkpoint")
    code, out, _ = run(capsys, "verify", path, "--public-key", PUBLIC, "--allow-unsigned-tail")
    assert code == 0 and out.startswith("OK") and "1 entry could not be vouched for" in out
    code, out, _ = run(capsys, "verify", path, "--public-key", PUBLIC, "--allow-unsigned-tail", "--json")
    report = json.loads(out)
    assert code == 0 and (report["covered"], report["unvouched"]) == (QUALIFIED, 1)
    assert report["extent"]["unsigned"] is True


def test_replay_uses_only_what_a_checkpoint_covers_and_says_where_it_stopped(tmp_path, capsys, log):
    another_support(log)
    path = write(tmp_path, export_lines(log.entries, covered=QUALIFIED))
    code, out, err = run(capsys, "replay", "--export", path, "--public-key", PUBLIC)
    state = json.loads(out)
    assert code == 0 and state["proposals"][CASE]["supports"] == 2 == state["proposals"][CASE]["qualified_with"]
    assert state["log"] == {"entries": QUALIFIED + 1, "covered": QUALIFIED, "used": QUALIFIED,
                            "stopped_at": QUALIFIED, "unvouched": 0, "note": state["log"]["note"]}
    assert f"entries [{QUALIFIED}, {QUALIFIED + 1}) are not covered by a signed checkpoint" in err
    code, out, err = run(capsys, "replay", "--export", path, "--public-key", PUBLIC, "--allow-unsigned-tail")
    state = json.loads(out)
    assert code == 0 and state["proposals"][CASE]["supports"] == 3 and state["log"]["unvouched"] == 1
    assert "nothing vouches for them" in err


def test_replay_refuses_an_export_with_an_entry_appended(tmp_path, capsys, log):
    lines = export_lines(log.entries, covered=QUALIFIED)
    forged = cp.canonical(another_support(log))
    path = write(tmp_path, lines[:QUALIFIED + 1] + [forged] + lines[QUALIFIED + 1:])
    code, out, _ = run(capsys, "verify", path, "--public-key", PUBLIC, "--allow-unsigned-tail")
    assert code == 1 and f"FAILED: entry line {QUALIFIED + 2} entry {QUALIFIED}" in out
    code, out, err = run(capsys, "replay", "--export", path, "--public-key", PUBLIC, "--allow-unsigned-tail")
    assert code == 1 and out == "" and "does not verify, so nothing in it is replayed" in err
    assert "added after the export was made" in err


def test_replay_of_an_export_needs_a_key(tmp_path, capsys, log):
    path = write(tmp_path, export_lines(log.entries, covered=QUALIFIED))
    code, out, err = run(capsys, "replay", "--export", path)
    assert code == cli.UNREADABLE and out == "" and "--public-key" in err


def test_verify_proof_counts_a_bundles_unsigned_entries_only_when_asked(tmp_path, capsys, log):
    another_support(log)
    entries = [cp.canonical(env) for env in log.entries]
    tree = merkle.MerkleTree()
    tree.extend(entries[:QUALIFIED])
    indexes = list(range(QUALIFIED + 1))
    bundle = {"kind": "bundle", "case": CASE,
              "checkpoint": cp.sign_checkpoint(KEY, log.entries[0]["community"], QUALIFIED, tree.root(), T0),
              "entries": [{"index": i, "line": entries[i].decode(),
                           "proof": [h.hex() for h in tree.inclusion_proof(i, QUALIFIED)] if i < QUALIFIED else None}
                          for i in indexes],
              "extent": cp.sign_bundle_extent(KEY, log.entries[0]["community"], CASE, QUALIFIED, indexes, T0)}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    code, out, _ = run(capsys, "verify-proof", str(path), "--public-key", PUBLIC)
    assert code == 1 and out.startswith(f"FAILED: entry entry {QUALIFIED}: not covered by the bundle's checkpoint of "
                                        f"{QUALIFIED} entries: 1 entry from entry {QUALIFIED}")
    code, out, _ = run(capsys, "verify-proof", str(path), "--public-key", PUBLIC, "--allow-unsigned-tail")
    assert code == 0 and "1 entry could not be vouched for" in out
