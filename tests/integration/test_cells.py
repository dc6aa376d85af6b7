"""Community cells (issue 18; services/common/cells.py): two cells on one broker and one database.

One deployment with CONSULT_CELLS=c1,c2: the directory and the gateway once, the six stage services
once per cell (fourteen processes). The directory places each new community in the least loaded
cell; the gateway routes a community's requests to its cell; each cell's services keep their own
communities' records only and refuse another cell's; and a cell that is stopped takes only its own
communities down with it."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from services.common import registry
from services.contracts.communities import PLATFORM_LOG
from tests.harness import PG_URL, running, wait_for
from tests.integration.audit_world import DrainageRecord

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CELLS = ("c1", "c2")
STAGES = ("proposals", "deliberation", "decisions", "actions", "notifications")


@pytest.fixture(scope="module")
def cells_platform():
    with running("postgres", cells=CELLS) as p:
        yield p


@pytest.fixture(scope="module")
def records(cells_platform):
    """A community in each cell, each through the drainage case's four stages to its closed case."""
    return [DrainageRecord(cells_platform).build(secret_ballot=False) for _ in CELLS]


def log_of(p, service: str, cell: str) -> list[dict]:
    out, start = [], 1
    while batch := p.rpc(f"{cell}-{service}", "read_log", start, 1000):
        out += batch
        if len(batch) < 1000:
            break
        start = batch[-1]["position"] + 1
    return out


def audited_communities(p, cell: str) -> set:
    """Every community with an entry in a cell's audit store (read from the store itself)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            f'SELECT DISTINCT community FROM "{p.prefix}_{cell}_audit_state".audit_entries WHERE community IS NOT NULL')}


def test_each_community_lives_in_one_cell_and_its_whole_case_is_recorded_there(cells_platform, records):
    p = cells_platform
    assert [r.cell for r in records] == ["c1", "c2"], "the least loaded cell, in the order CONSULT_CELLS names them"
    for record, other in (records, records[::-1]):
        cell, elsewhere = record.cell, other.cell
        # The whole case is in the cell's stage logs and its audit log (DrainageRecord.settle waited for it).
        types = {e["type"] for e in p.audit_entries(record.id, record.tokens["审计"])}
        assert {"ProposalSubmitted", "ConsultationOpened", "VoteCast", "CaseClosed"} <= {t for t in types}, types
        assert p.rpc(f"{cell}-audit", "size", record.id) > 0
        # Nothing of it anywhere in the other cell: no stage event, no audit entry.
        assert record.id not in audited_communities(p, elsewhere)
        for stage in STAGES:
            assert not [e for e in log_of(p, stage, elsewhere) if e["community"] == record.id], (stage, elsewhere)
            assert {e["community"] for e in log_of(p, stage, cell)} <= {record.id}
    # The administrators' credentials (the directory's events of no community) are the first cell's.
    assert audited_communities(p, "c1") == {records[0].id, PLATFORM_LOG}
    assert audited_communities(p, "c2") == {records[1].id}
    # The directory's own events of each community reached its cell's audit only.
    assert {e["type"] for e in p.audit_entries(records[0].id, records[0].tokens["审计"])} >= {
        "CommunityCreated", "PersonRegistered", "PersonRoleGranted"}


def test_a_cell_refuses_a_call_about_a_community_of_the_other_cell_whoever_sends_it(cells_platform, records):
    p = cells_platform
    first, second = records
    # The gateway routes by placement; a direct call to the wrong cell (past the gateway) is refused
    # where the data lives, as a call naming no community at all is.
    with p.rpc_proxy() as proxy:
        reply = proxy[f"{second.cell}-proposals"].list_proposals(viewer="tests", community=first.id)
        assert not reply["ok"] and reply["problem"]["status"] == 404, reply
        reply = proxy[f"{first.cell}-audit"].entries(community=first.id)
        assert reply["ok"] and reply["result"]["size"] > 0
        assert not proxy[f"{second.cell}-audit"].entries(community=first.id)["ok"]


def test_an_auditor_exports_and_verifies_each_cell_s_community_from_the_command_line(cells_platform, records):
    p = cells_platform
    # A call about a community goes to its cell, as through the gateway: no cell to name.
    for record in records:
        export = p.dir / f"export-{record.cell}.jsonl"
        p.cli("audit", "export", "--community", record.id, "--out", str(export), "--cut")
        pem = p.dir / f"key-{record.cell}.pem"
        pem.write_text(p.cli("audit", "public-key", "--pem", env={"CONSULT_CELL": record.cell}).stdout)
        out = p.cli("audit", "verify", str(export), "--public-key", str(pem), "--json", check=False)
        report = json.loads(out.stdout)
        assert out.returncode == 0 and report["community"] == record.id, report.get("first_error")
    # A call about no community is one cell's: the operator names it.
    refused = p.cli("audit", "public-key", check=False)
    assert refused.returncode == 1 and "set CONSULT_CELL" in refused.stderr, refused.stderr


def test_one_cell_stopped_the_other_keeps_serving_and_the_stopped_one_catches_up(cells_platform, records):
    p = cells_platform
    first, second = records
    stopped = [f"{second.cell}-{s}" for s in registry.SERVICES if s in STAGES + ("audit",)]
    p.stop(*stopped)
    try:
        # The first cell's community is served as before: a new proposal, recorded and audited.
        draft = p.api("POST", f"/api/v1/communities/{first.id}/proposals", first.tokens["李"], {
            "title": "楼道灯不亮", "body": "2栋三楼楼道灯坏了。", "category": "other", "scope": "building",
            "scope_id": first.building}, expect=201).json()
        wait_for(lambda: any(e["type"] == "ProposalDrafted" and e["envelope"]["aggregate"]["id"] == draft["id"]
                             for e in p.audit_entries(first.id, first.tokens["审计"])),
                 timeout=30, message="the new draft in the first cell's audit log")
        # The second cell's community hears "not now" (503, problem+json) at once, not after the
        # gateway's 30 s timeout (rpc.Listening); its directory (the platform's) still answers.
        started = time.monotonic()
        down = p.api("GET", f"/api/v1/communities/{second.id}/proposals", second.tokens["李"])
        assert down.status_code == 503 and down.headers["Content-Type"].startswith("application/problem+json")
        assert down.json()["code"] == "ServiceUnavailable"
        assert f"the {second.cell}-proposals service is not running" in down.json()["detail"]
        assert time.monotonic() - started < 5, "answered at once, not after the RPC timeout"
        # Its residents retrying all at once hold none of the gateway's ten workers: the first
        # cell's community is answered meanwhile.
        with ThreadPoolExecutor(30) as pool:
            retries = [pool.submit(p.api, "GET", f"/api/v1/communities/{second.id}/proposals", second.tokens["李"])
                       for _ in range(30)]
            started = time.monotonic()
            p.api("GET", f"/api/v1/communities/{first.id}/proposals", first.tokens["李"], expect=200)
            served = time.monotonic() - started
            statuses = [f.result().status_code for f in retries]
        assert statuses == [503] * 30 and served < 10, (statuses, served)
        p.api("GET", f"/api/v1/communities/{second.id}", second.tokens["李"], expect=200)
        # The directory goes on recording for the stopped cell: a new resident of its community.
        newcomer = p.rpc("communities", "register_person", "tests", second.id, "新居民", True, None, None)["id"]
    finally:
        p.start(*stopped)
    # Back, the second cell catches up on the directory's log and serves again.
    wait_for(lambda: any(e["type"] == "PersonRegistered" and e["envelope"]["aggregate"]["id"] == newcomer
                         for e in p.audit_entries(second.id, second.tokens["审计"])),
             timeout=60, message="the second cell's audit to catch up on the directory")
    p.api("GET", f"/api/v1/communities/{second.id}/proposals", second.tokens["李"], expect=200)
    assert second.id not in audited_communities(p, first.cell)


def spanned_proof(p, record) -> dict:
    """The community's platform proof through the gateway, once the platform audit has witnessed
    its cell's head (it does so on demand: `span_proof`'s at_least)."""
    def proof():
        got = p.api("GET", f"/api/v1/communities/{record.id}/audit/proofs/platform", record.tokens["审计"],
                    expect=200).json()
        return got if got.get("span") else None
    return wait_for(proof, timeout=30, message=f"a platform proof of {record.cell} through the spanning log")


def test_the_platform_log_spans_both_cells_and_each_community_s_proof_goes_through_it(cells_platform, records):
    """The platform audit (the audit service run without CONSULT_CELL: services/audit/span.py)
    witnesses each cell's signed head; a community's platform proof chains its checkpoint into its
    cell's log and that log's head into the platform log; the platform-wide routes answer the
    platform log's head; and an auditor checks it all offline."""
    from services.audit import checkpoints as cp
    from services.audit import verify

    p = cells_platform
    for record in records:
        p.cli("audit", "cut", "--community", record.id)  # a checkpoint of everything the case recorded
    keys = p.api("GET", "/api/v1/audit/public-keys", expect=200).json()
    public = [k["public_key"] for k in keys["keys"]]
    heads = {}
    for record in records:
        proof = spanned_proof(p, record)
        assert proof["span"]["cell"] == record.cell and proof["checkpoint"]["community"] == record.id
        report = verify.verify_proof(proof, public)
        assert report.ok and not report.warnings, (report.problems, report.warnings)
        assert report.spanned["community"] == cp.SPAN
        heads[record.cell] = proof["platform_checkpoint"]  # the cell's head the platform log witnessed
        # The auditor's own tool, offline: the proof as saved, the public key as published.
        saved, pem = p.dir / f"platform-proof-{record.cell}.json", p.dir / "platform-key.pem"
        saved.write_text(json.dumps(proof), encoding="utf-8")
        pem.write_text(next(k["pem"] for k in keys["keys"] if k["key_id"] == keys["current"]), encoding="utf-8")
        shown = p.cli("audit", "verify-proof", str(saved), "--public-key", str(pem))
        assert shown.stdout.startswith("OK") and "platform log spanning the cells" in shown.stdout, shown.stdout
        # Tampered: the head of one cell passed off as the other's is caught offline.
        forged = {**proof, "span": {**proof["span"], "cell": "c2" if record.cell == "c1" else "c1"}}
        assert not verify.verify_proof(forged, public).ok
    assert heads["c1"]["root"] != heads["c2"]["root"]
    # Both cells are leaves of the one platform log, whose head the platform-wide routes answer
    # (the gateway sends them to the platform audit, not to a cell); so does the CLI.
    head = p.api("GET", "/api/v1/audit/platform-checkpoint", expect=200).json()
    assert head["community"] == cp.SPAN and head["size"] >= 2
    history = p.api("GET", "/api/v1/audit/platform-checkpoints?limit=1000", expect=200).json()
    assert {h["community"] for h in history} == {cp.SPAN} and history[-1]["size"] >= head["size"]
    assert json.loads(p.cli("audit", "checkpoint").stdout)["community"] == cp.SPAN
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        witnessed = dict(conn.execute(
            f'SELECT cell, max(size) FROM "{p.prefix}_audit_state".audit_span_log GROUP BY cell').fetchall())
        # The platform audit keeps no community's log.
        assert conn.execute(f'SELECT count(*) FROM "{p.prefix}_audit_state".audit_entries').fetchone()[0] == 0
    assert set(witnessed) == set(CELLS) and all(witnessed[c] >= heads[c]["size"] for c in CELLS)
