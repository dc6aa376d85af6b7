"""`consult bench --quick`: the end-to-end benchmark runs, prints its table and JSON, and every
figure it counts is consistent (everything accepted is in the audit log once, nothing failed)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_consult_bench_quick_prints_every_figure_and_counts_each_request_once(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "services.cli.main", "bench", "--quick", "--backend", "sqlite",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["problems"] == []
    groups = {row["group"] for row in report["rows"]}
    assert groups == {"baselines", "votes", "supports", "burst", "cost", "setup", "audit", "cpu"}
    for row in report["rows"]:  # every figure is printed, with its ratio where it has a baseline
        assert row["measure"] in proc.stdout
        assert row["value"] is not None, row
        if row["baseline"]:
            assert row["ratio"] is not None and row["ratio"] > 0, row
    runs = {r["label"]: r for r in report["runs"]}
    for kind in ("votes", "supports"):
        for clients in ("1 client", "10 clients", "50 clients"):
            r = runs[f"{kind}, {clients}"]
            assert r["requests"] == r["accepted"] == r["audited"] > 0, r
            assert r["errors"] == 0 and r["duplicated"] == 0 and r["audit_complete"], r
            assert 0 < r["p50_s"] <= r["p95_s"] <= r["p99_s"], r
            assert r["accepted_per_s"] > 0 and r["audited_per_s"] > 0
            assert r["cpu_ms_per_op"]["decisions" if kind == "votes" else "proposals"] >= 0
    for clients in ("10 clients", "50 clients"):  # the audit's stream of votes, as the bench saw it
        r = runs[f"votes, {clients}"]
        batches, applied, from_log = r["consumer_batches"]["audit <- decisions"]
        assert applied >= r["accepted"] and 0 < batches <= applied, r["consumer_batches"]
        assert from_log <= 3, f"the relay vouches for its messages: {from_log} of {applied} read from the log"
    counts = report["burst_counts"]
    assert counts["supports"] == counts["votes"] == counts["at_once"] > 0, counts
    assert report["verify"]["entries"] == report["sizes"]["verify_entries"]
    assert report["replay"]["events"] > 0
    assert {"decisions", "audit", "gateway", "benchmark clients"} <= set(runs["votes, 10 clients"]["cpu_s"])
    assert report["load_average_before"] and report["machine"]["cpus"]
