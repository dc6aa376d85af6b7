"""The verifiable record of a community that went through every stage, checked as an auditor would:
exported with `consult audit export`, verified offline with `consult audit verify`, then tampered
with — a byte changed in a stored entry, an entry deleted, two swapped, one inserted, a checkpoint
re-signed with another key, the history forked after the checkpoint on the notice board, a free
text altered — each caught at the position the verifier reports. Then replay from the export
(an open ballot and a secret ballot with a changed vote recounted to their recorded numbers) and
reconcile with the stage services (a difference planted in a stage's store is reported).

The audit service runs here with CONSULT_AUDIT_CHECKPOINT_EVERY=1: a checkpoint for every entry,
so that a change is pinned to one entry rather than to the entries between two checkpoints.
"""
from __future__ import annotations

import json
import re
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from services.audit import checkpoints as cp
from services.audit import merkle
from services.common import clock
from tests.harness import wait_for
from tests.integration.audit_world import STAGES, DrainageRecord, genesis_key, state_db

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


# --- the record ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dense_checkpoints(platform):
    for stage in STAGES:  # the stages the record needs, whatever CONSULT_TEST_SERVICES says
        if stage not in platform.procs:
            platform.start(stage)
    saved = platform.env.get("CONSULT_AUDIT_CHECKPOINT_EVERY")
    platform.env["CONSULT_AUDIT_CHECKPOINT_EVERY"] = "1"
    platform.stop("audit")
    platform.start("audit")
    try:
        yield
    finally:
        if saved is None:
            platform.env.pop("CONSULT_AUDIT_CHECKPOINT_EVERY", None)
        else:
            platform.env["CONSULT_AUDIT_CHECKPOINT_EVERY"] = saved
        platform.stop("audit")
        platform.start("audit")


class Record:
    HEAD = 1  # lines before the first entry: the export's signed header

    def __init__(self, platform, world: DrainageRecord):
        self.platform, self.world = platform, world
        self.dir = platform.dir / f"record-{world.id[:8]}"
        self.dir.mkdir(exist_ok=True)
        self.key = self.dir / "audit-public.pem"
        self.key.write_text(genesis_key(platform))
        self.export = self.dir / "export.jsonl"
        out = platform.cli("audit", "export", "--community", world.id, "--out", str(self.export), "--cut")
        assert "exported" in out.stdout
        self.lines = self.export.read_bytes().split(b"\n")[:-1]
        self.header = json.loads(self.lines[0])
        assert self.header["kind"] == "export_header" and self.header["unsigned"] is False
        self.entries = [json.loads(line) for line in self.lines if line.startswith(b'{"actor"')]
        assert self.lines[self.HEAD].startswith(b'{"actor"') and self.header["size"] == len(self.entries)
        self.checkpoints = {c["size"]: (i + 1, c) for i, c in enumerate(map(json.loads, self.lines))
                            if c.get("kind") == "checkpoint"}

    def index_of(self, predicate) -> int:
        return next(i for i, e in enumerate(self.entries) if predicate(e))

    def vote_of(self, ballot: str, who: str) -> int:
        voter = self.world.people[who]
        return self.index_of(lambda e: e["type"] == "VoteCast" and e["data"]["ballot"] == ballot
                             and e["data"]["voter"] == voter)

    def write(self, name: str, lines: list[bytes]) -> Path:
        path = self.dir / name
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return path

    def verify(self, path: Path, *extra: str) -> tuple[int, dict]:
        out = self.platform.cli("audit", "verify", str(path), "--public-key", str(self.key), "--json", *extra,
                                check=False)
        assert out.returncode in (0, 1), out.stderr
        return out.returncode, json.loads(out.stdout)


@pytest.fixture(scope="module")
def record(platform, dense_checkpoints) -> Record:
    return Record(platform, DrainageRecord(platform).build())


def test_the_exported_record_verifies_offline(platform, record):
    code, report = record.verify(record.export)
    assert code == 0 and report["ok"], report["first_error"]
    counts = report["counts"]
    assert counts["entries"] == len(record.entries) == report["size"]
    assert counts["checkpoints_verified"] == counts["checkpoints"] == len(record.entries), "one per entry"
    assert counts["texts_verified"] + counts["erased"] == counts["commitments"] > 20
    assert report["erased"] == 2, "王's proposal title and body were erased: reported as erased, not as tampering"
    sources = {e["source"] for e in record.entries}
    assert set(STAGES) <= sources and "communities" in sources
    types = {e["type"] for e in record.entries}
    assert {"ProposalQualified", "DeliberationConcluded", "BallotOpened", "VoteChanged", "ResolutionFinal",
            "ActionPlanOpened", "EvaluationClosed", "CaseClosed", "CommentHidden"} <= types
    # Every entry line is the canonical envelope exactly as the log stored and hashed it.
    n = len(record.entries)
    stored = platform.rpc("audit", "export_lines", record.world.id, 0, n)
    assert [line.decode() for line in record.lines[record.HEAD:record.HEAD + n]] == stored
    tree = merkle.MerkleTree()
    tree.extend(stored)
    assert tree.root().hex() == report["root"] == record.checkpoints[n][1]["root"]
    # The hidden comment's text is in the auditor's export (its commitment must be checkable).
    hidden = next(e for e in record.entries if e["type"] == "CommentPosted"
                  and e["aggregate"]["id"] == record.world.hidden_comment)
    texts = {t["commitment"]: t for t in map(json.loads, record.lines) if t.get("kind") == "text"}
    assert texts[hidden["data"]["text_commitment"]]["text"] == "物业什么都不管！"


def test_the_checkpoint_on_the_notice_board_is_a_trusted_checkpoint(platform, record):
    notice = platform.cli("audit", "notice", "--community", record.world.id, "--lang", "en").stdout
    size = int(re.search(r"Entries: (\d+)", notice).group(1))
    root = "".join(re.search(r"Root hash \(SHA-256\):\n((?:  .*\n){2})", notice).group(1).split())
    assert size >= len(record.entries)
    later = record.dir / "after-notice.jsonl"  # exported after the notice was printed
    platform.cli("audit", "export", "--community", record.world.id, "--out", str(later), "--cut")
    code, report = record.verify(later, "--trusted-checkpoint", f"{size}:{root}")
    assert code == 0, report["first_error"]
    code, report = record.verify(later, "--trusted-checkpoint", f"{size}:{'0' * 64}")
    assert code == 1 and "fork" in report["first_error"]["message"]


def test_a_byte_changed_in_a_stored_entry_is_named(platform, record):
    """Someone with database access turns 刘's "disagree" into "agree" in the audit log's own table."""
    i = record.vote_of(record.world.ballot, "刘")
    community = record.world.id
    with state_db(platform, "audit") as run:
        [(body,)] = run("SELECT body FROM audit_entries WHERE community = ? AND idx = ?", (community, i))
        assert '"choice":"disagree"' in body
        run("UPDATE audit_entries SET body = ? WHERE community = ? AND idx = ?",
            (body.replace('"choice":"disagree"', '"choice":"agreee"'), community, i))
        try:
            tampered = record.dir / "stored-byte.jsonl"
            platform.cli("audit", "export", "--community", community, "--out", str(tampered))
        finally:
            run("UPDATE audit_entries SET body = ? WHERE community = ? AND idx = ?", (body, community, i))
    code, report = record.verify(tampered)
    assert code == 1
    err = report["first_error"]
    assert (err["kind"], err["index"], err["line"]) == ("entry", i, i + 1 + record.HEAD)
    assert "changed, inserted, deleted or moved" in err["message"]


def test_an_entry_deleted_is_named(record):
    i = record.vote_of(record.world.ballot, "李")
    k = i + record.HEAD  # its line in the export, counted from 0
    code, report = record.verify(record.write("deleted.jsonl", record.lines[:k] + record.lines[k + 1:]))
    assert code == 1
    err = report["first_error"]
    assert (err["kind"], err["index"], err["line"]) == ("entry", i, k + 1)
    assert any("entries were removed" in p["message"] for p in report["problems"])


def test_two_entries_swapped_are_named(record):
    i, j = record.vote_of(record.world.ballot, "王"), record.vote_of(record.world.ballot, "李")
    assert i < j
    lines = list(record.lines)
    h = record.HEAD
    lines[i + h], lines[j + h] = lines[j + h], lines[i + h]
    code, report = record.verify(record.write("swapped.jsonl", lines))
    assert code == 1
    assert (report["first_error"]["kind"], report["first_error"]["index"]) == ("entry", i)
    assert any(p["index"] == j and "out of order" in p["message"] for p in report["problems"])


def test_an_entry_inserted_is_named(record):
    """A replayed vote: 刘's vote line again, right after it."""
    i = record.vote_of(record.world.ballot, "刘")
    k = i + record.HEAD
    lines = record.lines[:k + 1] + [record.lines[k]] + record.lines[k + 1:]
    code, report = record.verify(record.write("inserted.jsonl", lines))
    assert code == 1
    assert (report["first_error"]["kind"], report["first_error"]["index"]) == ("entry", i + 1)
    assert any(p["index"] == i + 1 and "replayed or inserted" in p["message"] for p in report["problems"])


def test_a_checkpoint_re_signed_with_another_key_is_named(record):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    size = len(record.entries)
    line, genuine = record.checkpoints[size]
    forged = cp.sign_checkpoint(Ed25519PrivateKey.generate(), genuine["community"], size, genuine["root"],
                                genuine["time"])
    forged["key_id"] = genuine["key_id"]  # claims to be the platform's key
    lines = list(record.lines)
    lines[line - 1] = cp.canonical(forged)
    code, report = record.verify(record.write("resigned.jsonl", lines))
    assert code == 1
    err = report["first_error"]
    assert (err["kind"], err["line"]) == ("checkpoint", line) and "does not verify" in err["message"]
    # Signed with another key under its own id: a key nobody trusts.
    forged = cp.sign_checkpoint(Ed25519PrivateKey.generate(), genuine["community"], size, genuine["root"],
                                genuine["time"])
    lines[line - 1] = cp.canonical(forged)
    code, report = record.verify(record.write("other-key.jsonl", lines))
    assert code == 1 and report["first_error"]["line"] == line and "not trusted" in report["first_error"]["message"]


def forked(record, at: int, key) -> list[bytes]:
    """The history a dishonest operator holding the signing key would show: entry `at` changed
    (刘's vote), every checkpoint from there re-signed over the new tree."""
    lines = list(record.lines)
    h = record.HEAD
    lines[at + h] = lines[at + h].replace(b'"choice":"disagree"', b'"choice":"agree"')
    tree = merkle.MerkleTree()
    tree.extend(lines[h:h + len(record.entries)])
    for size, (line, genuine) in record.checkpoints.items():
        if size > at:
            lines[line - 1] = cp.canonical(cp.sign_checkpoint(key, genuine["community"], size,
                                                              tree.root(size), genuine["time"]))
    return lines


def test_a_history_forked_after_the_trusted_checkpoint_is_caught(platform, record):
    """The operator rewrites 刘's vote and re-signs every later checkpoint with the real key: the
    export is consistent in itself, and only the checkpoint an auditor kept (from the notice board,
    cut after the vote) exposes the split view."""
    key = cp.load_private_key(platform.dir / "data" / "audit-signing.key")
    if cp.key_id(key) != json.loads(record.lines[-1])["key_id"]:
        pytest.skip("the signing key was rotated since the record was made")
    i = record.vote_of(record.world.ballot, "刘")
    trusted_size = i + 10
    trusted = record.checkpoints[trusted_size][1]
    lines = forked(record, i, key)
    fork = record.write("forked.jsonl", lines)
    code, report = record.verify(fork)
    assert code == 0, "a re-signed rewrite is consistent in itself: this is what a trusted checkpoint is for"
    trusted_file = record.dir / "trusted.json"
    trusted_file.write_text(json.dumps(trusted))
    code, report = record.verify(fork, "--trusted-checkpoint", str(trusted_file))
    assert code == 1
    err = report["first_error"]
    assert err["kind"] == "checkpoint" and err["line"] == 0 and "fork" in err["message"]
    assert err["range"] == [0, trusted_size]
    # With the genuine checkpoint of that size beside the forged one, the two signed histories show.
    both = record.write("split-view.jsonl", lines + [cp.canonical(trusted)])
    code, report = record.verify(both, "--trusted-checkpoint", str(trusted_file))
    assert code == 1 and "split view" in report["first_error"]["message"]
    code, report = record.verify(both)
    assert code == 1 and any("two histories" in p["message"] for p in report["problems"])


def test_a_free_text_altered_is_named_and_an_erased_one_is_not_tampering(record):
    line = next(n for n, raw in enumerate(record.lines, 1) if b'"text":"\xe6\x8e\x92\xe6\xb0\xb4\xe7\xae\xa1' in raw)
    lines = list(record.lines)
    text = json.loads(lines[line - 1])
    text["text"] = text["text"].replace("更换", "修补")
    lines[line - 1] = json.dumps(text, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    code, report = record.verify(record.write("text.jsonl", lines))
    assert code == 1
    err = report["first_error"]
    assert (err["kind"], err["line"]) == ("text", line) and text["commitment"] in err["message"]
    # A text erased (its salt and text gone, as PIPL erasure leaves it) is reported as erased.
    lines[line - 1] = json.dumps({"commitment": text["commitment"], "erased": True, "kind": "text"}).encode()
    code, report = record.verify(record.write("erased.jsonl", lines))
    assert code == 0 and report["erased"] == 3


def forged_support(record) -> bytes:
    """What anyone can write: a well-formed canonical envelope of one more support for the
    qualified proposal (王's), continuing the proposals stage's positions, as the next entry."""
    w = record.world
    genuine = [e for e in record.entries if e["type"] == "SupportGiven" and e["data"]["proposal"] == w.proposal][-1]
    forged = json.loads(json.dumps(genuine))
    forged.update(id=str(uuid.uuid4()), actor=w.people["王"], occurred_at=record.entries[-1]["occurred_at"],
                  position=max(e["position"] for e in record.entries if e["source"] == "proposals") + 1)
    forged["aggregate"].update(id=str(uuid.uuid4()), version=1)
    for field, value in (("person", w.people["王"]), ("supporter", w.people["王"]), ("household", str(uuid.uuid4()))):
        if field in forged["data"]:
            forged["data"][field] = value
    return cp.canonical(forged)


def test_a_support_appended_after_the_last_entry_is_refused_and_never_replayed(platform, record):
    """The issue's forgery: one SupportGiven line after the last entry of a real export. The
    verifier names it, with or without --allow-unsigned-tail, and replay refuses the file rather
    than count a fourth support for a proposal that qualified with three."""
    w, n = record.world, len(record.entries)
    assert replayed(platform, record)["proposals"][w.proposal]["supports"] == 3
    last = record.HEAD + n  # the first line after the entries
    appended = record.write("appended.jsonl", record.lines[:last] + [forged_support(record)] + record.lines[last:])
    for extra in ((), ("--allow-unsigned-tail",)):
        code, report = record.verify(appended, *extra)
        err = report["first_error"]
        assert code == 1 and (err["kind"], err["index"], err["line"]) == ("entry", n, last + 1), extra
        assert "added after the export was made" in err["message"] and report["covered"] == n
    out = platform.cli("audit", "verify", str(appended), "--public-key", str(record.key), check=False)
    assert out.returncode == 1 and out.stdout.startswith(f"FAILED: entry line {last + 1} entry {n}:")
    out = platform.cli("audit", "replay", "--export", str(appended), "--public-key", str(record.key),
                       "--allow-unsigned-tail", check=False)
    assert out.returncode == 1 and out.stdout == "" and f"entry {n}" in out.stderr, out.stdout
    # Without the header that fixes its size, the forged line is still an entry nothing signed covers.
    stripped = record.write("appended-headless.jsonl", record.lines[1:last] + [forged_support(record)]
                            + record.lines[last:])
    code, report = record.verify(stripped)
    assert code == 1 and (report["first_error"]["index"], report["first_error"]["range"]) == (n, [n, n + 1])
    assert any(p["kind"] == "header" and "no signed header" in p["message"] for p in report["problems"])


def test_a_case_bundle_holds_exactly_the_entries_its_signed_extent_lists(platform, record):
    w = record.world
    path = record.dir / "case-extent.json"
    platform.cli("audit", "bundle", "--case", w.proposal, "--out", str(path))
    bundle = json.loads(path.read_text())
    case_entries = [i for i, e in enumerate(record.entries) if e.get("case") == w.proposal]
    assert bundle["extent"]["indexes"] == [e["index"] for e in bundle["entries"]] == case_entries
    assert (bundle["extent"]["case"], bundle["extent"]["unsigned"]) == (w.proposal, False)
    code, report = verify_proof(record, bundle)
    assert code == 0 and report["extent"] == bundle["extent"], report["first_error"]
    # A support withdrawn from the bundle: the signed extent misses it.
    dropped = json.loads(json.dumps(bundle))
    gone = next(e for e in dropped["entries"] if json.loads(e["line"])["type"] == "SupportGiven")
    dropped["entries"].remove(gone)
    code, report = verify_proof(record, dropped)
    assert code == 1 and (report["first_error"]["kind"], report["first_error"]["index"]) == ("extent", gone["index"])
    # A genuine entry of another case, with its genuine proof, slipped in.
    elsewhere = record.index_of(lambda e: e.get("case") not in (None, w.proposal))
    size = bundle["checkpoint"]["size"]
    other = platform.api("GET", f"{w.base}/audit/proofs/inclusion?index={elsewhere}&size={size}", w.tokens["审计"],
                         expect=200).json()
    added = json.loads(json.dumps(bundle))
    added["entries"].append(other["entries"][0])
    added["texts"] += other.get("texts", [])
    code, report = verify_proof(record, added)
    assert code == 1 and any(p["kind"] == "extent" and "added" in p["message"] for p in report["problems"])
    assert any(p["kind"] == "entry" and "belongs to case" in p["message"] for p in report["problems"])


# --- proofs one at a time ----------------------------------------------------------------------------------

def verify_proof(record, proof: dict | Path, *extra: str) -> tuple[int, dict]:
    path = proof if isinstance(proof, Path) else record.write("proof.json", [json.dumps(proof).encode()])
    out = record.platform.cli("audit", "verify-proof", str(path), "--public-key", str(record.key), "--json", *extra,
                              check=False)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def test_a_case_bundle_verifies_offline(platform, record):
    w = record.world
    path = record.dir / "case.json"
    out = platform.cli("audit", "bundle", "--case", w.proposal, "--out", str(path), "--since", "20")
    assert "entries" in out.stdout
    bundle = json.loads(path.read_text())
    case_entries = [i for i, e in enumerate(record.entries) if e.get("case") == w.proposal]
    assert [e["index"] for e in bundle["entries"]] == case_entries
    assert {json.loads(e["line"])["type"] for e in bundle["entries"]} >= {"ProposalDrafted", "CaseClosed"}
    trusted = record.dir / "trusted-20.json"
    trusted.write_text(json.dumps(record.checkpoints[20][1]))
    code, report = verify_proof(record, path, "--trusted-checkpoint", str(trusted))
    assert code == 0, report["first_error"]
    assert report["erased"] == 2 and report["counts"]["texts"] >= 10
    bundle["entries"][3]["line"] = bundle["entries"][3]["line"].replace('"version":', '"version": ')
    code, report = verify_proof(record, bundle)
    assert code == 1 and report["first_error"]["index"] == case_entries[3]


@contextmanager
def tampered_node(platform, community: str, hashes: list[str]):
    """The server's stored tree with one node changed: the first node of `hashes` that is stored
    and whose parent is complete too, so that no append reads it meanwhile (appends read only the
    right edge, whose nodes have no parent yet)."""
    with state_db(platform, "audit") as run:
        [(n,)] = run("SELECT size FROM audit_heads WHERE community = ?", (community,))
        rows = run("SELECT level, idx, hash FROM audit_nodes WHERE tree = ? AND level > 0", (community,))
        stored = {bytes(h).hex(): (level, idx, bytes(h)) for level, idx, h in rows
                  if ((idx >> 1) + 1) << (level + 1) <= n}
        level, idx, good = next(stored[h] for h in hashes if h in stored)
        run("UPDATE audit_nodes SET hash = ? WHERE tree = ? AND level = ? AND idx = ?", (bytes(32), community, level, idx))
        try:
            yield
        finally:
            run("UPDATE audit_nodes SET hash = ? WHERE tree = ? AND level = ? AND idx = ?", (good, community, level, idx))


def test_forged_proofs_from_a_modified_server_are_rejected(platform, record):
    w = record.world
    base = f"/api/v1/communities/{w.id}/audit"
    token = w.tokens["王"]
    i = record.vote_of(w.ballot, "刘")
    event = record.entries[i]["id"]
    proof = platform.api("GET", f"{base}/proofs/inclusion?event={event}&since=20", token, expect=200).json()
    assert proof["entries"][0]["index"] == i and "texts" not in proof, "a member's proof carries no texts"
    trusted = record.dir / "trusted-20.json"
    trusted.write_text(json.dumps(record.checkpoints[20][1]))
    code, report = verify_proof(record, proof, "--trusted-checkpoint", str(trusted))
    assert code == 0 and report["warnings"] == [], report
    auditor = platform.api("GET", f"{base}/proofs/inclusion?index={i}", w.tokens["审计"], expect=200).json()
    assert auditor["texts"] is not None and verify_proof(record, auditor)[0] == 0
    # A server that changed a node of its tree hands out proofs that do not reach the signed roots.
    with tampered_node(platform, w.id, proof["entries"][0]["proof"]):
        served = platform.api("GET", f"{base}/proofs/inclusion?index={i}", token, expect=200).json()
    code, report = verify_proof(record, served)
    assert code == 1 and report["first_error"]["index"] == i and "does not verify" in report["first_error"]["message"]
    consistency = platform.api("GET", f"{base}/proofs/consistency?from=100", token, expect=200).json()
    assert verify_proof(record, consistency)[0] == 0
    with tampered_node(platform, w.id, consistency["proof"]):
        served = platform.api("GET", f"{base}/proofs/consistency?from=100", token, expect=200).json()
    code, report = verify_proof(record, served)
    assert code == 1 and "fork" in report["first_error"]["message"]
    # Forged by hand: one hash of the path, the line itself, the checkpoint's root.
    forged = json.loads(json.dumps(proof))
    forged["entries"][0]["proof"][0] = "00" * 32
    assert verify_proof(record, forged)[0] == 1
    forged = json.loads(json.dumps(proof))
    forged["entries"][0]["line"] = forged["entries"][0]["line"].replace('"disagree"', '"agree"')
    assert verify_proof(record, forged)[1]["first_error"]["index"] == i
    forged = json.loads(json.dumps(proof))
    forged["checkpoint"]["root"] = "11" * 32
    assert verify_proof(record, forged)[1]["first_error"]["kind"] == "checkpoint"


def test_consistency_and_platform_proofs_verify_and_a_forked_one_does_not(platform, record):
    w = record.world
    base = f"/api/v1/communities/{w.id}/audit"
    token = w.tokens["审计"]
    size = len(record.entries)
    trusted = record.dir / "trusted-20.json"
    trusted.write_text(json.dumps(record.checkpoints[20][1]))
    proof = platform.api("GET", f"{base}/proofs/consistency?from=20&to={size}", token, expect=200).json()
    assert len(proof["proof"]) <= (size - 1).bit_length() + 1
    code, report = verify_proof(record, proof, "--trusted-checkpoint", str(trusted))
    assert code == 0, report["first_error"]
    # The forked history of the test above, served with a consistency proof from its own tree.
    key = cp.load_private_key(platform.dir / "data" / "audit-signing.key")
    if cp.key_id(key) == json.loads(record.lines[-1])["key_id"]:
        i = record.vote_of(w.ballot, "刘")
        lines = forked(record, i, key)
        tree = merkle.MerkleTree()
        tree.extend(lines[record.HEAD:record.HEAD + size])
        old = record.checkpoints[i + 10][1]
        fork = {"kind": "consistency", "old": old, "new": json.loads(lines[record.checkpoints[size][0] - 1]),
                "proof": [h.hex() for h in tree.consistency_proof(i + 10, size)],
                "key_rotations": platform.rpc("audit", "public_keys")["key_rotations"]}
        code, report = verify_proof(record, fork)
        assert code == 1 and "fork" in report["first_error"]["message"]
    # The community's latest checkpoint is a leaf of the platform log of logs.
    platform_proof = platform.api("GET", f"{base}/proofs/platform", token, expect=200).json()
    assert platform_proof["checkpoint"]["size"] >= size
    assert verify_proof(record, platform_proof)[0] == 0
    platform_proof["index"] += 1
    assert verify_proof(record, platform_proof)[0] == 1


# --- replay and reconcile -------------------------------------------------------------------------------------

def replayed(platform, record, *extra: str) -> dict:
    return json.loads(platform.cli("audit", "replay", "--export", str(record.export), "--public-key", str(record.key),
                                   *extra).stdout)


def test_replay_of_the_export_reproduces_the_recorded_numbers(platform, record):
    w = record.world
    state = replayed(platform, record)
    open_ballot, secret = state["ballots"][w.ballot], state["ballots"][w.secret]
    for ballot in (open_ballot, secret):
        assert ballot["matches_record"] is True and ballot["differences"] == []
        recorded = platform.rpc("decisions", "get_ballot", w.id, ballot["id"])["result"]
        assert ballot["recount"] == recorded == ballot["recorded_result"]
    assert open_ballot["status"] == "final" and open_ballot["outcome"] == "adopted" and open_ballot["secret"] is False
    assert (open_ballot["recount"]["participating_heads"], open_ballot["recount"]["agreeing_heads"],
            open_ballot["recount"]["disagreeing_heads"]) == (4, 3, 1)
    # The secret ballot: 张 agreed, then changed to disagree; the latest version of her sealed vote counts.
    assert secret["secret"] is True and secret["votes"] == 4 and secret["voted"] == 3
    assert (secret["recount"]["agreeing_heads"], secret["recount"]["disagreeing_heads"],
            secret["recount"]["superseded"], secret["recount"]["outcome"]) == (1, 2, 1, "rejected")
    sealed = [e for e in record.entries if e["type"] in ("VoteCast", "VoteChanged") and e["data"]["ballot"] == w.secret]
    assert {e["actor"] for e in sealed} == {"sealed"} and {e["data"]["voter"] for e in sealed} == {None}
    proposal = state["proposals"][w.proposal]
    assert (proposal["status"], proposal["supports"], proposal["qualified_with"]) == ("qualified", 3, 3)
    assert state["consultations"][w.consultation]["conclusion"]["outcome"] == "vote_needed"
    plan = state["action_plans"][w.plan]
    assert plan["status"] == "closed" and plan["evaluation"]["counts"]["satisfied"] == 2
    assert state["cases"][w.proposal]["stages"] == ["proposal", "deliberation", "decision", "action"]
    assert state["cases"][w.proposal]["closed"]["outcome"] == "completed"


def test_replay_as_things_stood_at_a_time(platform, record):
    w = record.world
    before_change = clock.format(w.secret_opened + timedelta(minutes=30))
    state = replayed(platform, record, "--at", before_change)
    secret = state["ballots"][w.secret]
    assert secret["status"] == "open" and secret["votes"] == 3 and "recount" not in secret, \
        "an open ballot is not counted before it closes"
    assert secret["voted"] is None, "a secret ballot's turnout is not given before its count"
    assert state["ballots"][w.ballot]["status"] == "final"
    early = replayed(platform, record, "--at", clock.format(w.t0 + timedelta(hours=1)), "--case", w.proposal)
    assert early["proposals"][w.proposal]["status"] == "qualified"
    assert early["consultations"][w.consultation]["status"] == "open"
    assert early["ballots"] == {} and early["action_plans"] == {}


def test_reconcile_finds_no_difference_then_the_one_planted_in_a_stage_store(platform, record):
    w = record.world
    out = platform.cli("audit", "reconcile", "--community", w.id, check=False)
    assert out.returncode == 0 and "no differences" in out.stdout, out.stdout + out.stderr
    with state_db(platform, "decisions") as run:
        run("UPDATE decisions_ballots SET voted = voted + 5 WHERE id = ?", (w.secret,))
        try:
            with state_db(platform, "proposals") as run_p:
                run_p("UPDATE proposals_proposals SET supports = 1 WHERE id = ?", (w.proposal,))
                try:
                    out = platform.cli("audit", "reconcile", "--community", w.id, "--json", check=False)
                finally:
                    run_p("UPDATE proposals_proposals SET supports = 3 WHERE id = ?", (w.proposal,))
        finally:
            run("UPDATE decisions_ballots SET voted = voted - 5 WHERE id = ?", (w.secret,))
    assert out.returncode == 1
    found = {(d["stage"], d["id"], d["field"]): (d["log"], d["service"]) for d in json.loads(out.stdout)["differences"]}
    assert found == {("decisions", w.secret, "voted"): (3, 8), ("decisions", w.secret, "listed voted"): (3, 8),
                     ("proposals", w.proposal, "supports"): (3, 1),
                     ("proposals", w.proposal, "supports_residents"): (3, 1)}
    assert platform.cli("audit", "reconcile", "--community", w.id, check=False).returncode == 0


def test_a_later_export_extends_the_verified_history(platform, record):
    """Appends go on after an export: a later export (with the entries since) verifies as well, and
    every earlier checkpoint is consistent with the newer history."""
    w = record.world
    platform.api("POST", f"{w.base}/people", w.worker_token, {"name": "新居民", "adult": True}, expect=201)
    wait_for(lambda: platform.rpc("audit", "size", w.id) > len(record.entries), message="the new entry")
    later = record.dir / "later.jsonl"
    platform.cli("audit", "export", "--community", w.id, "--out", str(later), "--cut")
    trusted = record.dir / "trusted-latest.json"
    trusted.write_text(json.dumps(record.checkpoints[len(record.entries)][1]))
    code, report = record.verify(later, "--trusted-checkpoint", str(trusted))
    assert code == 0 and report["size"] > len(record.entries), report["first_error"]
