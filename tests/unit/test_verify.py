"""Offline verification of exports, bundles and checkpoint pairs, and where it says things went wrong."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit import bench, checkpoints as cp, merkle, verify
from tests.harness import ROOT

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


def canonical(obj) -> str:
    return cp.canonical(obj).decode("utf-8")


def envelope(i: int, *, community="c1", sources=("proposals", "decisions"), text=None, salt=None) -> dict:
    source = sources[i % len(sources)]
    data = {"building": "3栋", "weight": "86.50", "options": [{"label": "甲"}, {"label": "乙"}]}
    if text is not None:
        data["title_commitment"] = hashlib.sha256(salt + text.encode()).hexdigest()
    return {
        "schema": "consult.event/1", "id": f"00000000-0000-0000-0000-{i:012d}", "source": source,
        "position": 100 + 10 * i, "type": "ProposalSubmitted", "event_version": 1, "community": community,
        "aggregate": {"type": "Proposal", "id": f"10000000-0000-0000-0000-{i // 2:012d}", "version": i % 2 + 1},
        "occurred_at": (T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": f"r-{i % 7}",
        "case": f"case-{i // 4}", "causation": None, "data": data,
    }


class Export:
    """A small export: entries (every third with a free text), texts, checkpoints every `every`,
    and the signed header (last, or first in the interleaved layout: it may come anywhere)."""

    def __init__(self, n=20, every=5, *, layout="end", community="c1", key=KEY, sources=("proposals", "decisions")):
        self.entries, self.texts = [], {}
        for i in range(n):
            if i % 3 == 0:
                salt, text = i.to_bytes(2, "big") * 8, f"第{i}号提议：修缮楼道"
                env = envelope(i, community=community, sources=sources, text=text, salt=salt)
                c = env["data"]["title_commitment"]
                self.texts[i] = json.dumps({"kind": "text", "commitment": c, "salt": salt.hex(), "text": text},
                                           ensure_ascii=False)
            else:
                env = envelope(i, community=community, sources=sources)
            self.entries.append(canonical(env))
        self.tree = merkle.MerkleTree()
        self.tree.extend(self.entries)
        self.checkpoints = {s: self.checkpoint(s, key, community) for s in range(every, n + 1, every)}
        self.layout = layout
        self.header = cp.sign_export_header(key, community, n, max(self.checkpoints, default=0),
                                            T0 + timedelta(hours=n + 1))

    def checkpoint(self, size, key=KEY, community="c1"):
        return cp.sign_checkpoint(key, community, size, self.tree.root(size), T0 + timedelta(hours=size))

    def lines(self, entries=None):
        entries = self.entries if entries is None else entries
        out = []
        if self.layout == "interleaved":
            out.append(json.dumps(self.header))
            for i, e in enumerate(entries):
                out.append(e)
                if i in self.texts:
                    out.append(self.texts[i])
                if i + 1 in self.checkpoints:
                    out.append(json.dumps(self.checkpoints[i + 1]))
            return out
        out = list(entries) + [self.texts[i] for i in sorted(self.texts)]
        return out + [json.dumps(self.checkpoints[s]) for s in sorted(self.checkpoints)] + [json.dumps(self.header)]


def check(lines, keys=(KEY,), trusted=None, **kw):
    return verify.verify_export(lines, [k.public_key() for k in keys], trusted, **kw)


def line_no(lines, text) -> int:
    return lines.index(text) + 1


def test_an_intact_export_verifies():
    ex = Export(30)
    report = check(ex.lines())
    assert report.ok, report.problems
    assert report.first_error is None
    assert report.size == 30 and report.root == ex.tree.root().hex()
    assert report.counts["entries"] == 30 and report.counts["checkpoints_verified"] == 6
    assert report.counts["texts_verified"] == 10 and report.community == "c1"
    assert report.checkpoint == ex.checkpoints[30]


def test_lines_may_be_bytes_str_with_newlines_or_a_file(tmp_path):
    ex = Export(12, 4, layout="interleaved")
    lines = ex.lines()
    path = tmp_path / "export.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    for source in (lines, [line.encode() + b"\n" for line in lines], str(path), path, open(path, "rb")):
        assert check(source).ok


def test_a_changed_byte_that_breaks_canonical_form_names_the_entry():
    ex = Export(20)
    lines = ex.lines()
    lines[7] = lines[7].replace('"actor":', '"actor" :')
    report = check(lines)
    assert not report.ok
    assert report.first_error.kind == "entry" and report.first_error.index == 7 and report.first_error.line == 8
    assert "canonical" in report.first_error.message


def test_a_changed_byte_in_a_value_is_caught_by_the_checkpoint_covering_it():
    ex = Export(20, 5)
    lines = ex.lines()
    lines[7] = lines[7].replace("-000000000007", "-000000000008")  # still canonical
    report = check(lines)
    err = report.first_error
    assert err.kind == "checkpoint" and err.range == (5, 10)
    assert err.line == line_no(lines, json.dumps(ex.checkpoints[10]))
    # the checkpoints of 15 and 20 entries fail too; the one of 5 does not
    assert sorted(p.range for p in report.problems) == [(5, 10), (5, 15), (5, 20)]


def test_with_a_checkpoint_after_every_entry_the_changed_entry_is_named():
    ex = Export(20, 1, layout="interleaved")
    lines = ex.lines()
    target = lines.index(ex.entries[7])
    lines[target] = lines[target].replace("r-0", "r-9")
    err = check(lines).first_error
    assert err.kind == "entry" and err.index == 7 and err.line == target + 1


def test_a_deleted_entry():
    ex = Export(20, 5)
    report = check(ex.lines(ex.entries[:7] + ex.entries[8:]))
    err = report.first_error
    assert err.kind == "checkpoint" and err.range == (5, 10)
    assert any(p.range == (19, 20) and "removed" in p.message for p in report.problems)
    exact = Export(20, 1, layout="interleaved")
    err = check(exact.lines(exact.entries[:7] + exact.entries[8:])).first_error
    assert err.kind == "entry" and err.index == 7


def test_two_swapped_entries():
    ex = Export(20, 5)
    swapped = list(ex.entries)
    swapped[7], swapped[8] = swapped[8], swapped[7]
    err = check(ex.lines(swapped)).first_error
    assert err.kind == "checkpoint" and err.range == (5, 10)
    # within one source, the position order names the second of the pair
    one = Export(20, 5, sources=("proposals",))
    swapped = list(one.entries)
    swapped[7], swapped[8] = swapped[8], swapped[7]
    report = check(one.lines(swapped))
    assert report.first_error.kind == "entry" and report.first_error.index == 8
    assert "out of order" in report.first_error.message
    # with a checkpoint after every entry, the first moved entry is named
    exact = Export(20, 1, layout="interleaved")
    swapped = list(exact.entries)
    swapped[7], swapped[8] = swapped[8], swapped[7]
    err = check(exact.lines(swapped)).first_error
    assert err.kind == "entry" and err.index == 7


def test_an_inserted_entry():
    ex = Export(20, 5)
    forged = canonical(envelope(50, sources=("actions",)))  # a source of its own: no order to break
    report = check(ex.lines(ex.entries[:7] + [forged] + ex.entries[7:]))
    assert report.first_error.kind == "checkpoint" and report.first_error.range == (5, 10)
    replayed = check(ex.lines(ex.entries[:7] + [ex.entries[3]] + ex.entries[7:])).first_error
    assert replayed.kind == "entry" and replayed.index == 7 and "replayed" in replayed.message
    exact = Export(20, 1, layout="interleaved")
    err = check(exact.lines(exact.entries[:7] + [forged] + exact.entries[7:])).first_error
    assert err.kind == "entry" and err.index == 7


def test_a_checkpoint_re_signed_with_another_key():
    ex = Export(20, 5)
    lines = ex.lines()
    original = json.dumps(ex.checkpoints[10])
    at = lines.index(original)
    lines[at] = json.dumps(ex.checkpoint(10, OTHER))
    report = check(lines)
    assert report.first_error.kind == "checkpoint" and report.first_error.line == at + 1
    assert "not trusted" in report.first_error.message
    # keeping the trusted key's id does not help
    lines[at] = json.dumps({**ex.checkpoint(10, OTHER), "key_id": cp.key_id(KEY)})
    report = check(lines)
    assert report.first_error.line == at + 1 and "does not verify" in report.first_error.message
    # and a root simply edited in place breaks the signature
    lines[at] = json.dumps({**ex.checkpoints[10], "root": "0" * 64})
    assert check(lines).first_error.line == at + 1


def test_a_fork_after_a_trusted_checkpoint():
    a = Export(20, 5)
    trusted = a.checkpoints[10]  # the auditor copied this from the notice board
    # the log later shows a history where entry 4 differs, every checkpoint re-signed by the log's key
    b = Export(20, 5)
    b.entries[4] = b.entries[4].replace("r-4", "r-5")
    b.tree = merkle.MerkleTree()
    b.tree.extend(b.entries)
    b.checkpoints = {s: b.checkpoint(s) for s in b.checkpoints}
    assert check(b.lines()).ok  # on its own the forged history is self-consistent
    report = check(b.lines(), trusted=trusted)
    err = report.first_error
    assert err.kind == "checkpoint" and err.line == 0 and err.range == (0, 10) and "fork" in err.message
    assert "split view" in err.message  # the export carries another signed root for size 10
    # a trusted checkpoint of one entry pins the divergence exactly
    c = Export(20, 5)
    c.entries[0] = c.entries[0].replace("r-0", "r-6")
    c.tree = merkle.MerkleTree()
    c.tree.extend(c.entries)
    c.checkpoints = {s: c.checkpoint(s) for s in c.checkpoints}
    err = check(c.lines(), trusted=a.checkpoint(1)).first_error
    assert err.kind == "entry" and err.index == 0
    # a history that only grew past the trusted checkpoint is fine
    assert check(a.lines(), trusted=a.checkpoint(7)).ok


def test_an_export_shorter_than_the_trusted_checkpoint_is_a_rollback():
    ex = Export(20, 5)
    short = Export(12, 4)
    err = check(short.lines(), trusted=ex.checkpoints[15]).first_error
    assert err.kind == "checkpoint" and err.line == 0 and "rolled back" in err.message


def test_an_altered_free_text():
    ex = Export(20, 5)
    lines = ex.lines()
    at = lines.index(ex.texts[6])
    lines[at] = ex.texts[6].replace("修缮", "拆除")
    report = check(lines)
    assert report.first_error.kind == "text" and report.first_error.line == at + 1
    salt_changed = json.loads(ex.texts[6])
    salt_changed["salt"] = "00" * 16
    lines[at] = json.dumps(salt_changed, ensure_ascii=False)
    assert check(lines).first_error.line == at + 1


def test_an_erased_text_is_reported_as_erased_not_as_tampering():
    ex = Export(20, 5)
    lines = ex.lines()
    commitment = json.loads(ex.texts[9])["commitment"]
    lines[lines.index(ex.texts[9])] = json.dumps({"kind": "text", "commitment": commitment, "erased": True})
    report = check(lines)
    assert report.ok and report.erased == [commitment] and report.counts["erased"] == 1


def test_a_missing_text_names_the_entry_that_needs_it():
    ex = Export(20, 5)
    lines = ex.lines()
    lines.remove(ex.texts[12])
    err = check(lines).first_error
    assert err.kind == "text" and err.index == 12 and err.line == 13


def test_an_entry_of_another_community():
    ex = Export(20, 5)
    entries = list(ex.entries)
    entries[11] = canonical({**json.loads(entries[11]), "community": "c2"})
    ex.tree = merkle.MerkleTree()
    ex.tree.extend(entries)
    ex.checkpoints = {s: ex.checkpoint(s) for s in ex.checkpoints}  # signed as they are
    err = check(ex.lines(entries)).first_error
    assert err.kind == "entry" and err.index == 11 and "c2" in err.message


@pytest.mark.parametrize("name,change", [
    ("whitespace", lambda s: s.replace(',"case"', ', "case"')),
    ("unsorted keys", lambda s: s.replace('"actor":"r-2","aggregate"', '"aggregate"').replace(
        '"case"', '"actor":"r-2","case"', 1)),
    ("two keys swapped, same shape", lambda s: s.replace('"actor":"r-2"', '"case":"r-2"').replace(
        '"case":"case-7"', '"actor":"case-7"')),
    ("escaped letter", lambda s: s.replace("ProposalSubmitted", "Proposal\\u0053ubmitted")),
    ("escaped slash", lambda s: s.replace("c1", "c\\/1")),
    ("leading zero, same length", lambda s: s.replace('"position":400', '"position":040')),
    ("leading zero", lambda s: s.replace('"position":400', '"position":0400')),
    ("negative zero", lambda s: s.replace('"event_version":1', '"event_version":-0')),
    ("exponent", lambda s: s.replace('"event_version":1', '"event_version":1e0')),
    ("duplicate key", lambda s: s.replace('"actor":"r-2"', '"actor":"r-2","actor":"r-2"')),
    ("raw control character", lambda s: s.replace("r-2", "r-\x012")),
    ("trailing space", lambda s: s + " "),
    ("carriage return", lambda s: s + "\r"),
    ("renamed key, same shape", lambda s: s.replace('"source"', '"sourcf"')),
    ("other schema", lambda s: s.replace("consult.event/1", "consult.event/2")),
    ("not json", lambda s: s[:-1]),
    ("empty", lambda s: ""),
])
def test_every_non_canonical_or_malformed_entry_is_named_even_among_many_alike(name, change):
    ex = Export(40, 40, sources=("proposals",))
    lines = ex.lines()
    victim = lines[30]  # 29 entries before it, ten of its very shape: the fast path is in use
    assert victim.count('"position":400') == 1 and victim.count('"actor":"r-2"') == 1
    assert victim.count('"case":"case-7"') == 1
    lines[30] = change(victim)
    assert lines[30] != victim
    report = check(lines)
    assert report.first_error is not None, name
    assert report.first_error.kind == "entry" and report.first_error.index == 30, (name, report.first_error)


def test_invalid_utf8_is_named(tmp_path):
    ex = Export(10, 10)
    raw = [line.encode() for line in ex.lines()]
    raw[4] = raw[4].replace("3栋".encode(), b"3\xff")
    err = check(raw).first_error
    assert err.kind == "entry" and err.index == 4 and "UTF-8" in err.message


def test_the_fast_path_serves_most_entries(monkeypatch):
    ex = Export(300, 100)
    calls = []
    real = verify._parse
    monkeypatch.setattr(verify, "_parse", lambda raw: calls.append(raw) or real(raw))
    assert check(ex.lines()).ok
    parsed_entries = [c for c in calls if c.startswith(b'{"actor"')]
    assert len(parsed_entries) < 20  # the first of each shape, not every entry


def test_fast_and_full_paths_agree_on_what_they_read():
    # commitments nested in lists and objects, nulls, several shapes: the same report either way
    entries = []
    texts = []
    for i in range(60):
        salt, text = bytes([i]) * 8, f"text {i}"
        c = hashlib.sha256(salt + text.encode()).hexdigest()
        texts.append(json.dumps({"kind": "text", "commitment": c, "salt": salt.hex(), "text": text}))
        env = envelope(i)
        env["data"] = [{"body_commitment": c}, {"reason_commitment": None, "x": [{"option_commitment": [c, None]}]},
                       {"minutes_commitment": [[c]]}, {"other": c}][i % 4]
        entries.append(canonical(env))
    tree = merkle.MerkleTree()
    tree.extend(entries)
    lines = entries + texts + [json.dumps(cp.sign_checkpoint(KEY, "c1", 60, tree.root(), T0)),
                               json.dumps(cp.sign_export_header(KEY, "c1", 60, 60, T0))]
    assert check(lines).ok
    # drop the text of an entry whose commitment sits deep in a list: the fast path must still see it
    missing = check([line for line in lines if line != texts[42]]).first_error
    assert missing.kind == "text" and missing.index == 42


def test_key_rotation_inside_an_export():
    ex = Export(20, 5)
    new = Ed25519PrivateKey.generate()
    rotation = cp.rotate_key(KEY, new, T0 + timedelta(hours=12))
    ex.checkpoints[15] = ex.checkpoint(15, new)
    ex.checkpoints[20] = ex.checkpoint(20, new)
    ex.header = cp.sign_export_header(new, "c1", 20, 20, T0 + timedelta(hours=21))  # the key of the day signs it
    lines = ex.lines()
    lines.insert(lines.index(json.dumps(ex.checkpoints[15])), json.dumps(rotation))
    report = check(lines)
    assert report.ok, report.problems
    assert report.counts["key_rotations_learnt"] == 1 and cp.key_id(new) in report.key_ids
    # trusting only the new key, the old checkpoints cannot be checked
    assert not check(lines, keys=(new,)).ok
    # a rotation signed by a stranger teaches nothing
    forged = {**cp.rotate_key(OTHER, new, T0), "old_key_id": cp.key_id(KEY)}
    lines[lines.index(json.dumps(rotation))] = json.dumps(forged)
    report = check(lines)
    assert report.first_error.kind == "key_rotation"
    assert any("not trusted" in p.message for p in report.problems if p.kind == "checkpoint")
    # the old key cannot sign after its rotation
    late = Export(20, 5)
    late.checkpoints[20] = late.checkpoint(20, KEY)
    lines = late.lines()
    lines.insert(0, json.dumps(cp.rotate_key(KEY, new, T0 + timedelta(hours=12))))
    err = check(lines).first_error
    assert err.kind == "checkpoint" and "rotated out" in err.message


def test_an_export_without_a_valid_checkpoint_proves_nothing():
    ex = Export(10, 5)
    report = check(ex.entries + list(ex.texts.values()))
    assert not report.ok and report.first_error.kind == "checkpoint" and "no checkpoint" in report.first_error.message
    assert (report.first_error.index, report.first_error.line) == (0, 1), "the first uncovered position"
    # An empty export says so in its signed header; an empty file says nothing.
    assert check([json.dumps(cp.sign_export_header(KEY, "c1", 0, 0, T0))]).ok
    empty = check([])
    assert not empty.ok and empty.first_error.kind == "header" and "no signed header" in empty.first_error.message


def unsigned_export(n=22, every=5) -> Export:
    """An export made with --unsigned: the entries after the latest checkpoint come along, and the
    signed header says how many entries there are and how many the checkpoints cover."""
    ex = Export(n, every)
    assert ex.header["unsigned"] is True and (ex.header["size"], ex.header["covered"]) == (n, n // every * every)
    return ex


def test_entries_past_the_last_checkpoint_fail_unless_an_unsigned_tail_is_allowed():
    ex = unsigned_export()
    lines = ex.lines()
    report = check(lines)
    err = report.first_error
    assert not report.ok and (err.kind, err.index, err.line, err.range) == ("entry", 20, 21, (20, 22))
    assert "not covered by a signed checkpoint" in err.message and "unsigned" in err.message
    assert "FAILED: entry line 21 entry 20" in report.summary()
    allowed = check(lines, allow_unsigned_tail=True)
    assert allowed.ok and allowed.unvouched == 2 and allowed.covered == 20
    assert "2 entries could not be vouched for" in allowed.summary()


def forged_support(ex: Export, i: int) -> str:
    """A well-formed canonical envelope that continues the log as the next entry would."""
    env = envelope(i)
    env.update(type="SupportGiven", position=100 + 10 * i, aggregate={"type": "Support", "id": "forged", "version": 1},
               data={"proposal": "10000000-0000-0000-0000-000000000000", "household": "h-forged"})
    return canonical(env)


def test_an_entry_appended_after_the_last_one_is_named_even_with_an_unsigned_tail_allowed():
    ex = Export(20, 5)
    lines = ex.lines()
    lines.insert(20, forged_support(ex, 20))  # after the last entry, before the texts
    for allow in (False, True):
        report = check(lines, allow_unsigned_tail=allow)
        err = report.first_error
        assert not report.ok and (err.kind, err.index, err.line) == ("entry", 20, 21)
        assert "added after the export was made" in err.message and report.covered == 20
    tail = unsigned_export()
    lines = tail.lines()
    lines.insert(22, forged_support(tail, 22))
    report = check(lines, allow_unsigned_tail=True)
    assert not report.ok and any(p.index == 22 and "added after" in p.message for p in report.problems)
    assert report.unvouched == 2, "the tail the header vouches for the number of, not the forged line"


def test_a_checkpoint_and_a_signed_header_forged_for_the_appended_entry_are_refused():
    ex = Export(20, 5)
    entries = ex.entries + [forged_support(ex, 20)]
    tree = merkle.MerkleTree()
    tree.extend(entries)
    lines = ex.lines(entries) + [json.dumps(cp.sign_checkpoint(OTHER, "c1", 21, tree.root(), T0)),
                                 json.dumps(cp.sign_export_header(OTHER, "c1", 21, 21, T0))]
    report = check(lines)
    assert not report.ok and report.first_error.index == 20
    assert any(p.kind == "header" and "second export header" in p.message for p in report.problems)
    assert any(p.kind == "checkpoint" and "not trusted" in p.message for p in report.problems)


def test_an_export_truncated_to_an_uncovered_size():
    ex = Export(20, 5)
    # the last three entries cut off, with the checkpoint that covered them
    lines = ex.lines(ex.entries[:17])
    lines.remove(json.dumps(ex.checkpoints[20]))
    report = check(lines, allow_unsigned_tail=True)
    assert not report.ok
    assert any(p.kind == "header" and p.range == (17, 20) and "cut off" in p.message for p in report.problems)
    assert any(p.kind == "checkpoint" and "removed" in p.message for p in report.problems) is False
    err = check(lines).first_error
    assert (err.kind, err.index, err.line, err.range) == ("entry", 15, 16, (15, 17))
    # cut to a covered size, the later checkpoints with it: only the signed header tells
    lines = ex.lines(ex.entries[:15])
    for size in (20,):
        lines.remove(json.dumps(ex.checkpoints[size]))
    err = check(lines).first_error
    assert (err.kind, err.line, err.range) == ("header", len(lines), (15, 20)) and "cut off" in err.message
    # the checkpoint the export was made with, removed
    lines = ex.lines()
    lines.remove(json.dumps(ex.checkpoints[20]))
    report = check(lines)
    assert any("which the file no longer carries" in p.message for p in report.problems)
    assert any(p.kind == "entry" and p.range == (15, 20) for p in report.problems)


def test_an_unsigned_export_truncated_or_stripped_of_its_header():
    ex = unsigned_export()
    report = check(ex.lines(ex.entries[:21]), allow_unsigned_tail=True)
    assert not report.ok and report.first_error.kind == "header" and report.first_error.range == (21, 22)
    stripped = [line for line in ex.lines() if line != json.dumps(ex.header)]
    report = check(stripped, allow_unsigned_tail=True)
    assert not report.ok and report.first_error.kind == "header" and "no signed header" in report.first_error.message


def test_a_header_signed_by_another_key_or_edited_is_refused():
    ex = Export(20, 5)
    lines = ex.lines()
    for forged in (cp.sign_export_header(OTHER, "c1", 20, 20, T0), {**ex.header, "size": 21},
                   {**ex.header, "unsigned": True}, {**ex.header, "community": "c2"}):
        lines[-1] = json.dumps(forged)
        report = check(lines)
        assert not report.ok and report.first_error.kind == "header" and report.first_error.line == len(lines), forged
    lines[-1] = json.dumps(cp.sign_export_header(KEY, "c2", 20, 20, T0))
    err = check(lines).first_error
    assert err.kind == "header" and "community 'c2'" in err.message


def test_a_header_first_as_the_platform_writes_it():
    ex = Export(20, 5)
    lines = [json.dumps(ex.header)] + ex.lines()[:-1]
    report = check(lines)
    assert report.ok and report.extent == ex.header and report.covered == 20
    lines.insert(21, forged_support(ex, 20))
    err = check(lines).first_error
    assert (err.kind, err.index, err.line) == ("entry", 20, 22)


def test_a_checkpoint_of_another_community_in_the_export():
    ex = Export(10, 5)
    lines = ex.lines() + [json.dumps(ex.checkpoint(10, community="c2"))]
    err = check(lines).first_error
    assert err.kind == "checkpoint" and err.line == len(lines)


def test_large_exports_split_over_workers_give_the_same_report(tmp_path, monkeypatch):
    path = tmp_path / "export.jsonl"
    info = bench.generate_export(str(path), 3000, KEY, checkpoint_every=500)
    lines = path.read_bytes().split(b"\n")[:-1]
    entry_lines = [i for i, line in enumerate(lines) if line.startswith(b'{"actor"')]
    victim = entry_lines[1777]
    lines[victim] = lines[victim].replace(b'"actor":', b'"actor" :')
    lines[entry_lines[2222]] = lines[entry_lines[2222]].replace(b'"position":', b'"position": ')
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(verify, "_PIECE", 64 << 10)  # many small pieces
    one = verify.verify_export(path, [KEY.public_key()], workers=1)
    # The split run goes in a fresh interpreter, as `consult audit verify` runs: verify forks its
    # workers only from a process with no other thread, and a test process has several (xdist's,
    # pytest-timeout's, eventlet's patched ones) -- forcing a fork there once hung a whole CI run.
    pem = tmp_path / "key.pem"
    pem.write_bytes(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    script = (
        "import json, sys\n"
        "from cryptography.hazmat.primitives import serialization\n"
        "from services.audit import verify\n"
        "verify._PIECE = 64 << 10\n"
        "key = serialization.load_pem_public_key(open(sys.argv[2], 'rb').read())\n"
        "r = verify.verify_export(sys.argv[1], [key], workers=2)\n"
        "print(json.dumps({'workers': r.workers, 'problems': [[p.kind, p.index, p.message] for p in r.problems],\n"
        "                  'counts': r.counts, 'root': r.root}))\n")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(pem)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    two = json.loads(done.stdout)
    assert one.workers == 1 and two["workers"] == 2
    assert [[p.kind, p.index, p.message] for p in one.problems] == two["problems"]
    assert (one.counts, one.root) == (two["counts"], two["root"])
    assert one.counts["entries"] == 3000 and one.counts["texts"] == info["texts"]
    assert one.counts["checkpoints_verified"] == 3  # those of 500, 1000 and 1500 entries
    assert [p.index for p in one.problems if p.kind == "entry"] == [1777, 2222]
    assert one.first_error.line == victim + 1


# --- bundles and checkpoint pairs ----------------------------------------------------------------

def bundle_for(ex, indices, size=20):
    c = ex.checkpoint(size)
    return {"kind": "bundle", "checkpoint": c,
            "entries": [{"index": i, "line": ex.entries[i], "proof": [p.hex() for p in ex.tree.inclusion_proof(i, size)]}
                        for i in indices],
            "texts": [json.loads(ex.texts[i]) for i in indices if i in ex.texts]}


def test_an_inclusion_bundle_verifies():
    ex = Export(20, 5)
    report = verify.verify_inclusion_bundle(bundle_for(ex, [0, 3, 7, 19]), [KEY.public_key()])
    assert report.ok, report.problems


def test_a_bundle_with_a_forged_proof_or_line_is_refused():
    ex = Export(20, 5)
    b = bundle_for(ex, [3, 7])
    b["entries"][1]["proof"][0] = "00" * 32
    err = verify.verify_inclusion_bundle(b, [KEY]).first_error
    assert err.kind == "entry" and err.index == 7
    b = bundle_for(ex, [3, 7])
    b["entries"][0]["line"] = b["entries"][0]["line"].replace("r-3", "r-4")
    err = verify.verify_inclusion_bundle(b, [KEY]).first_error
    assert err.kind == "entry" and err.index == 3
    b = bundle_for(ex, [3])
    b["texts"] = []
    assert verify.verify_inclusion_bundle(b, [KEY]).first_error.kind == "text"
    b = bundle_for(ex, [3])
    b["texts"][0]["text"] += "!"
    assert verify.verify_inclusion_bundle(b, [KEY]).first_error.kind == "text"
    assert verify.verify_inclusion_bundle(bundle_for(ex, [3]), [OTHER]).first_error.kind == "checkpoint"


def test_a_bundle_against_a_trusted_checkpoint():
    ex = Export(20, 5)
    trusted = ex.checkpoint(9)
    b = bundle_for(ex, [12])
    assert verify.verify_inclusion_bundle(b, [KEY], trusted).first_error.kind == "checkpoint"  # no proof
    b["consistency"] = [p.hex() for p in ex.tree.consistency_proof(9, 20)]
    assert verify.verify_inclusion_bundle(b, [KEY], trusted).ok
    forked = Export(20, 5)
    forked.entries[2] = forked.entries[2].replace("r-2", "r-3")
    forked.tree = merkle.MerkleTree()
    forked.tree.extend(forked.entries)
    fb = bundle_for(forked, [12])
    fb["consistency"] = [p.hex() for p in forked.tree.consistency_proof(9, 20)]
    err = verify.verify_inclusion_bundle(fb, [KEY], trusted).first_error
    assert err.kind == "checkpoint" and "fork" in err.message


def test_consistency_between_two_checkpoints():
    ex = Export(20, 5)
    old, new = ex.checkpoint(6), ex.checkpoint(19)
    proof = ex.tree.consistency_proof(6, 19)
    assert verify.verify_consistency_between(old, new, [p.hex() for p in proof], [KEY]).ok
    assert verify.verify_consistency_between(old, new, proof, [KEY]).ok
    forged = [proof[0][:-1] + bytes([proof[0][-1] ^ 1])] + proof[1:]
    err = verify.verify_consistency_between(old, new, forged, [KEY]).first_error
    assert err.kind == "checkpoint" and "fork" in err.message
    assert "shrank" in verify.verify_consistency_between(new, old, proof, [KEY]).first_error.message
    assert not verify.verify_consistency_between(old, ex.checkpoint(19, OTHER), proof, [KEY]).ok
    assert not verify.verify_consistency_between(old, ex.checkpoint(19, community="c2"), proof, [KEY]).ok


def _scan_state(s):
    return (s.entries, bytes(s.leaves), s.problems, s.first_pos, s.last_pos, s.communities, s.refs, s.texts)


@pytest.fixture(scope="module")
def alike_lines():
    ex = Export(24, 24, sources=("proposals",))
    lines = [line.encode() for line in ex.lines()]
    assert lines[24].startswith(b'{"kind": "text"') and lines[31].startswith(b'{"kind": "text"')
    return lines


@settings(max_examples=400, deadline=None)
@given(k=st.integers(12, 31), at=st.integers(0, 10_000), op=st.sampled_from(["replace", "insert", "delete"]),
       byte=st.sampled_from(list(b'0123456789"\\:,{}[]-+.eE ntrulfa\x01\x7f\xff\xe4')))
def test_the_fast_path_agrees_with_the_full_path_on_any_one_byte_change(alike_lines, k, at, op, byte):
    lines = list(alike_lines)
    line = lines[k]
    at %= len(line)
    if op == "replace":
        line = line[:at] + bytes([byte]) + line[at + 1:]
    elif op == "insert":
        line = line[:at] + bytes([byte]) + line[at:]
    else:
        line = line[:at] + line[at + 1:]
    lines[k] = line
    fast = _scan_state(verify._scan(lines, None))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(verify, "_derive_plan", lambda *a: None)
        m.setattr(verify, "_fast_text", lambda *a: False)
        full = _scan_state(verify._scan(lines, None))
    assert fast == full


def test_malformed_bundles_are_refused_not_crashed_on():
    ex = Export(20, 5)
    assert not verify.verify_inclusion_bundle({"checkpoint": {}}, [KEY]).ok
    b = bundle_for(ex, [3])
    b["entries"].append("nonsense")
    b["entries"].append({"index": 5, "line": ex.entries[5], "proof": ["zz"]})
    report = verify.verify_inclusion_bundle(b, [KEY])
    assert not report.ok and len([p for p in report.problems if p.kind == "entry"]) == 2


# --- bundles: their signed extent and the entries beyond their checkpoint --------------------------------

def case_bundle(ex, case_no, size=20, *, key=KEY):
    """Every entry of case-<case_no> (entries 4k..4k+3), proven against the checkpoint of `size`
    entries where it can be, and the extent the platform signs for it."""
    indices = [i for i in range(len(ex.entries)) if i // 4 == case_no]
    tree_size = min(size, len(ex.entries))
    return {"kind": "bundle", "checkpoint": ex.checkpoint(tree_size), "case": f"case-{case_no}",
            "entries": [{"index": i, "line": ex.entries[i],
                         "proof": [p.hex() for p in ex.tree.inclusion_proof(i, tree_size)] if i < tree_size else None}
                        for i in indices],
            "texts": [json.loads(ex.texts[i]) for i in indices if i in ex.texts],
            "extent": cp.sign_bundle_extent(key, "c1", f"case-{case_no}", tree_size, indices, T0)}


def test_a_case_bundle_with_its_signed_extent_verifies():
    ex = Export(20, 5)
    report = verify.verify_proof(case_bundle(ex, 1), [KEY])
    assert report.ok, report.problems
    assert report.extent["indexes"] == [4, 5, 6, 7] and report.covered == 4 and report.warnings == []


def test_an_entry_removed_from_or_added_to_a_case_bundle_is_named():
    ex = Export(20, 5)
    b = case_bundle(ex, 1)
    del b["entries"][2]  # a vote the bundle would rather not show
    err = verify.verify_proof(b, [KEY]).first_error
    assert (err.kind, err.index) == ("extent", 6) and "missing" in err.message
    b = case_bundle(ex, 1)
    other = bundle_for(ex, [9])["entries"][0]  # a genuine entry of another case, with its genuine proof
    b["entries"].append(other)
    report = verify.verify_proof(b, [KEY])
    assert not report.ok
    assert any(p.kind == "entry" and p.index == 9 and "case-2" in p.message for p in report.problems)
    assert any(p.kind == "extent" and p.index == 9 and "added" in p.message for p in report.problems)
    # without its extent the bundle proves its entries, and says it claims nothing about the case
    del b["extent"]
    b["entries"].pop()
    report = verify.verify_proof(b, [KEY])
    assert report.ok and report.extent is None and "no signed extent" in report.warnings[0]


def test_a_bundle_extent_forged_or_of_another_checkpoint_is_refused():
    ex = Export(20, 5)
    b = case_bundle(ex, 1)
    b["extent"] = cp.sign_bundle_extent(OTHER, "c1", "case-1", 20, [4, 5, 6], T0)
    err = verify.verify_proof(b, [KEY]).first_error
    assert err.kind == "extent" and "not trusted" in err.message
    b["extent"] = {**case_bundle(ex, 1)["extent"], "indexes": [4, 5, 7]}
    assert "does not verify" in verify.verify_proof(b, [KEY]).first_error.message
    b["extent"] = cp.sign_bundle_extent(KEY, "c1", "case-1", 15, [4, 5, 6, 7], T0)
    assert verify.verify_proof(b, [KEY]).first_error.kind == "extent"


def test_bundle_entries_beyond_its_checkpoint_fail_unless_an_unsigned_tail_is_allowed():
    ex = Export(20, 5)
    b = case_bundle(ex, 4, size=18)  # entries 16..19; the checkpoint covers 18
    assert b["extent"]["unsigned"] is True and [e["proof"] is None for e in b["entries"]] == [False, False, True, True]
    report = verify.verify_proof(b, [KEY])
    err = report.first_error
    assert not report.ok and (err.kind, err.index) == ("entry", 18) and "not covered by the bundle's" in err.message
    allowed = verify.verify_proof(b, [KEY], allow_unsigned_tail=True)
    assert allowed.ok and allowed.unvouched == 2 and allowed.covered == 2
    # an entry appended to a bundle without an extent (as the API serves one) is caught the same way
    single = bundle_for(ex, [3], size=18)
    single["entries"].append({"index": 18, "line": forged_support(ex, 18), "proof": None})
    err = verify.verify_proof(single, [KEY]).first_error
    assert (err.kind, err.index) == ("entry", 18)
    assert verify.verify_proof(single, [KEY], allow_unsigned_tail=True).unvouched == 1
    # and one smuggled in below the checkpoint without a proof is not taken for an unsigned entry
    single["entries"][-1]["index"] = 17
    err = verify.verify_proof(single, [KEY], allow_unsigned_tail=True).first_error
    assert err.kind == "entry" and "needs an index, a line and a hex proof" in err.message
