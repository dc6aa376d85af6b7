"""Offline audit figures for `consult bench`, in a process of its own (no eventlet, no platform):

    python -m bench.offline verify N     full verification of a generated N-entry export

Prints one JSON line: the seconds to verify (median of 3), beside raw SHA-256 of the same entries'
bytes; the export comes from the audit core's generator (services/audit/bench.py: envelopes of
several sources, texts with salts, a signed checkpoint every 10,000 entries, a key rotation).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def verify(n: int, repeats: int = 3) -> dict:
    import hashlib
    import statistics

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.audit import bench as core_bench
    from services.audit import verify as audit_verify

    key, new_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.jsonl")
        core_bench.generate_export(path, n, key, new_key)
        with open(path, "rb") as f:
            entries = [line[:-1] for line in f if line.startswith(b'{"actor"')]
        times, raw = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            for line in entries:
                hashlib.sha256(line).digest()
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = audit_verify.verify_export(path, [key.public_key()])
            times.append(time.perf_counter() - started)
            if not report.ok:
                raise SystemExit(f"the generated export did not verify: {report.first_error}")
        return {"entries": n, "verify_s": statistics.median(times), "raw_sha256_s": statistics.median(raw),
                "repeats": repeats, "workers": report.workers, "megabytes": os.path.getsize(path) / 1e6,
                "load_average": os.getloadavg()}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "verify":
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(verify(int(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
