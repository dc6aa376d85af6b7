"""How fast the audit core is, measured against plain SHA-256 of the same entry bytes.

    python -c "from services.audit import bench; bench.run(100_000)"

Generates a realistic export (its signed header, envelopes of several sources, one in four carrying
free-text commitments with their text lines, a signed checkpoint every 10,000 entries, one key rotation)
in a temporary file, then times (median of 3, time.perf_counter) full offline verification,
raw hashing, tree appends, and proof generation and verification.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import checkpoints, merkle, verify

SOURCES = ("proposals", "deliberation", "decisions", "actions")
# (type, aggregate type, names of free-text fields, extra data)
KINDS = [
    ("SupportGiven", "Support", (), '"household":"{h}","weight":"86.50"'),
    ("VoteCast", "Vote", (), '"ballot":"{h}","choice":"同意","receipt":"{r}","weight":"92.30"'),
    ("AttendanceRecorded", "Meeting", (), '"present":true,"resident":"{h}"'),
    ("ProposalSubmitted", "Proposal", ("body", "title"), '"building":"3栋","category":"环境卫生"'),
    ("SupportGiven", "Support", (), '"household":"{h}","weight":"120.00"'),
    ("VoteCast", "Vote", (), '"ballot":"{h}","choice":"反对","receipt":"{r}","weight":"75.10"'),
    ("CommentPosted", "Topic", ("body",), '"reply_to":null,"stance":"support"'),
    ("VoteCast", "Vote", (), '"ballot":"{h}","choice":"弃权","receipt":"{r}","weight":"60.00"'),
    ("TaskProgressReported", "Task", (), '"percent":40,"task":"{h}"'),
]


def _uuid(n: int) -> str:
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_export(path: str, n_entries: int, key: Ed25519PrivateKey, new_key: Ed25519PrivateKey | None = None, *,
                    community: str = "c-bench", checkpoint_every: int = 10_000, seed: int = 0) -> dict:
    """Write an export of n_entries to path; returns what a test or a bench needs to know about it."""
    rng = random.Random(seed)
    tree = merkle.MerkleTree()
    positions = dict.fromkeys(SOURCES, 0)
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    signer = key
    rotated_at = n_entries // 2 if new_key is not None else -1
    texts = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        # The header the platform signs last: with the key of the day (after the rotation, the new one).
        header = checkpoints.sign_export_header(new_key or key, community, n_entries, n_entries,
                                                t0 + timedelta(seconds=n_entries * 3 + 2))
        out.write(checkpoints.canonical(header).decode("utf-8") + "\n")
        for i in range(n_entries):
            source = SOURCES[i % len(SOURCES)]
            positions[source] += rng.randint(1, 3)  # positions can have holes
            etype, agg, free, extra = KINDS[(i * 7 + i // 13) % len(KINDS)]
            data = [extra.format(h=_uuid(i * 31 + 7), r=hashlib.sha256(b"%d" % i).hexdigest()[:32])]
            text_lines = []
            for name in free:
                salt = rng.randbytes(16)
                text = f"第{i}号：修缮{i % 40}栋电梯与楼道照明\n请各位邻居提出意见。" if name == "body" else f"提议 {i}"
                commitment = hashlib.sha256(salt + text.encode("utf-8")).hexdigest()
                data.append(f'"{name}_commitment":"{commitment}"')
                if i % 97 == 0:
                    text_lines.append(json.dumps({"kind": "text", "commitment": commitment, "erased": True}))
                else:
                    text_lines.append(json.dumps({"kind": "text", "commitment": commitment, "salt": salt.hex(),
                                                  "text": text}, ensure_ascii=False))
            data.sort()  # canonical: keys in order
            when = (t0 + timedelta(seconds=i * 3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            line = (f'{{"actor":"{_uuid(i % 5000 + 1)}","aggregate":{{"id":"{_uuid(i // 3 + 10**6)}",'
                    f'"type":"{agg}","version":{i % 3 + 1}}},"case":"{_uuid(i // 50 + 2 * 10**6)}",'
                    f'"causation":null,"community":"{community}","data":{{{",".join(data)}}},"event_version":1,'
                    f'"id":"{_uuid(i + 3 * 10**6)}","occurred_at":"{when}","position":{positions[source]},'
                    f'"schema":"consult.event/1","source":"{source}","type":"{etype}"}}')
            if i < 3:
                assert checkpoints.canonical(json.loads(line)).decode() == line
            tree.append(line.encode("utf-8"))
            out.write(line + "\n")
            for t in text_lines:
                out.write(t + "\n")
            texts += len(text_lines)
            size = i + 1
            if size == rotated_at:
                out.write(json.dumps(checkpoints.rotate_key(key, new_key, t0 + timedelta(seconds=i * 3))) + "\n")
                signer = new_key
            if size % checkpoint_every == 0 or size == n_entries:
                cp = checkpoints.sign_checkpoint(signer, community, size, tree.root(), t0 + timedelta(seconds=i * 3 + 1))
                out.write(json.dumps(cp, ensure_ascii=False) + "\n")
    return {"tree": tree, "checkpoint": cp, "texts": texts, "community": community}


def _median(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(n_entries: int = 1_000_000, *, repeats: int = 3, proofs: int = 10_000, workers: int | None = None) -> dict:
    key, new_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.jsonl")
        start = time.perf_counter()
        info = generate_export(path, n_entries, key, new_key)
        generated = time.perf_counter() - start
        with open(path, "rb") as f:
            entries = [line[:-1] for line in f if line.startswith(b'{"actor"')]
        megabytes = os.path.getsize(path) / 1e6
        print(f"export: {n_entries:,} entries, {info['texts']:,} texts, {megabytes:,.1f} MB "
              f"(generated in {generated:.1f} s)")

        sha = hashlib.sha256
        raw = _median(lambda: [sha(line).digest() for line in entries], repeats)
        results = {"raw_sha256": raw}

        def show(name: str, seconds: float, ops: int | None = None) -> None:
            results[name] = seconds
            per = f", {seconds / ops * 1e6:8.2f} us each" if ops else ""
            print(f"{name:<28} {seconds:8.3f} s  {seconds / raw:6.2f}x raw hashing{per}")

        show("raw_sha256", raw, len(entries))
        report = None
        cpu = []

        def verify_once():
            nonlocal report
            before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            report = verify.verify_export(path, [key.public_key()], workers=workers)
            after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            cpu.append([a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before)])

        show("verify_export", _median(verify_once, repeats), n_entries)
        own, workers_cpu = (statistics.median(c[i] for c in cpu) for i in (0, 1))
        results["verify_export_cpu"] = own + workers_cpu
        print(f"{'':<28} CPU {own + workers_cpu:.3f} s: {own:.3f} s in this process, {workers_cpu:.3f} s in "
              f"{report.workers} worker process(es); load average {os.getloadavg()[0]:.1f}")
        if not report.ok:
            raise AssertionError(f"the generated export did not verify: {report.first_error}")
        show("verify_export_1_process",
             _median(lambda: verify.verify_export(path, [key.public_key()], workers=1), 1), n_entries)
        show("merkle_append", _median(lambda: merkle.MerkleTree().extend(entries), repeats), n_entries)

        tree: merkle.MerkleTree = info["tree"]
        n = tree.size
        rng = random.Random(1)
        picks = [(rng.randrange(n), rng.randint(1, n)) for _ in range(proofs)]
        picks = [(min(i, size - 1), size) for i, size in picks]
        pairs = [tuple(sorted((rng.randint(1, n), rng.randint(1, n)))) for _ in range(proofs)]
        roots = {s: tree.root(s) for s in {s for _, s in picks} | {s for p in pairs for s in p}}
        made: dict[str, list] = {}
        show("inclusion_proofs", _median(lambda: made.__setitem__(
            "inc", [tree.inclusion_proof(i, s) for i, s in picks]), repeats), proofs)
        show("inclusion_verify", _median(lambda: [
            merkle.verify_inclusion(tree.leaf_hash_at(i), i, s, p, roots[s])
            for (i, s), p in zip(picks, made["inc"])], repeats), proofs)
        show("consistency_proofs", _median(lambda: made.__setitem__(
            "con", [tree.consistency_proof(a, b) for a, b in pairs]), repeats), proofs)
        show("consistency_verify", _median(lambda: [
            merkle.verify_consistency(a, b, roots[a], roots[b], p)
            for (a, b), p in zip(pairs, made["con"])], repeats), proofs)
        assert all(merkle.verify_consistency(a, b, roots[a], roots[b], p) for (a, b), p in zip(pairs, made["con"]))
    return results


if __name__ == "__main__":
    import sys

    run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
