"""The audit service through the API and the CLI: checkpoints cut by time and on demand, the
checkpoint history, notices, proofs by index and by event id, the public keys and the platform log
of logs, refusals, metrics, the OpenAPI document, and a key rotation that an auditor holding only
the first key follows through the export. Then what is vouched for when entries follow the latest
checkpoint: an `--unsigned` export and its signed header (a line appended, the file cut back), an
export truncated to a size no checkpoint covers, replay and reconcile of the live log stopping at
the checkpoint, and a case bundle past it."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.audit import checkpoints as cp
from tests.harness import wait_for, frozen_now
from tests.integration.audit_world import genesis_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def frozen(platform):
    """The clock stands still, so no checkpoint is cut by time while a test counts them."""
    now = frozen_now()
    platform.set_clock(now)
    yield now
    platform.set_clock(None)


def community_with_entries(platform, people: int = 3) -> dict:
    c = platform.new_community("S社区")
    c["base"] = f"/api/v1/communities/{c['id']}"
    for i in range(people):
        platform.api("POST", c["base"] + "/people", c["token"], {"name": f"居民{i}", "adult": True}, expect=201)
    # The community, its worker, the worker's role and token (TokenIssued), then the people.
    c["size"] = wait_for(lambda: (n := platform.rpc("audit", "size", c["id"])) >= 4 + people and n,
                         message="the community's entries in the audit log")
    return c


def test_a_checkpoint_is_cut_once_entries_have_waited_t_seconds(platform):
    c = community_with_entries(platform)
    resp = platform.api("GET", c["base"] + "/audit/checkpoint", c["token"])
    assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("application/problem+json")
    platform.set_clock(datetime.now(timezone.utc) + timedelta(seconds=61))  # the default T is 60 s
    try:
        latest = wait_for(lambda: (r := platform.api("GET", c["base"] + "/audit/checkpoint", c["token"])).status_code
                          == 200 and r.json(), timeout=30, message="the checkpoint the timer cuts")
    finally:
        platform.set_clock(None)
    assert latest["size"] == c["size"] and latest["community"] == c["id"]
    keys = platform.api("GET", "/api/v1/audit/public-keys", expect=200).json()  # public: no token
    assert cp.KeyRing([k["public_key"] for k in keys["keys"]]).verifies(latest)
    text = platform.metrics("audit")
    assert re.search(rf'consult_audit_checkpoint_age_seconds{{community="{c["id"]}"}} \d', text)
    assert f'consult_audit_tree_size{{community="{c["id"]}"}} {float(c["size"])}' in text


def test_checkpoints_history_notice_and_proofs_through_the_api(platform, frozen):
    c = community_with_entries(platform)
    token, base = c["token"], c["base"] + "/audit"
    first = platform.rpc("audit", "cut_checkpoints", c["id"])
    assert [x["size"] for x in first] == [c["size"]]
    assert platform.rpc("audit", "cut_checkpoints", c["id"]) == [], "nothing new, nothing cut"
    platform.api("POST", c["base"] + "/people", token, {"name": "新居民", "adult": True}, expect=201)
    wait_for(lambda: platform.rpc("audit", "size", c["id"]) > c["size"], message="the new entry")
    out = platform.cli("audit", "cut", "--community", c["id"])
    assert f"size {c['size'] + 1}" in out.stdout
    history = platform.api("GET", base + "/checkpoints", token, expect=200).json()
    assert [h["size"] for h in history] == [c["size"], c["size"] + 1]
    latest = platform.api("GET", base + "/checkpoint", token, expect=200).json()
    assert latest == history[-1] == json.loads(platform.cli("audit", "checkpoint", "--community", c["id"]).stdout)
    notice = platform.api("GET", base + "/notice", token, expect=200).json()["text"]
    assert notice.startswith("审计记录公告") and f"记录条数：{latest['size']}" in notice
    assert latest["root"][:8] in notice and latest["key_id"] in notice
    assert platform.cli("audit", "notice", "--community", c["id"]).stdout == notice

    entries = platform.audit_entries(c["id"], token)
    by_event = platform.api("GET", f"{base}/proofs/inclusion?event={entries[2]['event_id']}&size={c['size']}",
                            token, expect=200).json()
    by_index = platform.api("GET", f"{base}/proofs/inclusion?index=2&size={c['size']}", token, expect=200).json()
    assert by_event == by_index and by_event["checkpoint"] == history[0]
    assert by_event["entries"][0]["line"] == entries[2]["canonical"]
    assert len(by_event["entries"][0]["proof"]) <= (c["size"] - 1).bit_length()
    consistency = platform.api("GET", f"{base}/proofs/consistency?from={c['size']}", token, expect=200).json()
    assert (consistency["old"], consistency["new"]) == (history[0], history[1])
    from services.audit import verify

    keys = [k["public_key"] for k in platform.api("GET", "/api/v1/audit/public-keys", expect=200).json()["keys"]]
    assert verify.verify_proof(by_event, keys, history[0]).ok
    assert verify.verify_proof(consistency, keys, history[0]).ok
    platform_proof = platform.api("GET", base + "/proofs/platform", token, expect=200).json()
    assert platform_proof["checkpoint"] == latest and verify.verify_proof(platform_proof, keys).ok
    latest_platform = platform.api("GET", "/api/v1/audit/platform-checkpoint", expect=200).json()
    assert latest_platform["community"] == "platform" and latest_platform["size"] > platform_proof["index"]
    assert platform.api("GET", "/api/v1/audit/platform-checkpoints?limit=1", expect=200).json()[0]["size"] >= 1

    # Refusals, as problems.
    cases = [(f"{base}/proofs/inclusion", 422), (f"{base}/proofs/inclusion?index=99999", 404),
             (f"{base}/proofs/inclusion?event=00000000-0000-0000-0000-000000000000", 404),
             (f"{base}/proofs/consistency", 422), (f"{base}/proofs/consistency?from=1", 404),
             (f"{base}/checkpoints?limit=0", 422), (f"{base}/notice?lang=fr", 422)]
    for path, status in cases:
        resp = platform.api("GET", path, token)
        assert resp.status_code == status, (path, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
    platform.api("POST", c["base"] + "/people", token, {"name": "再一位", "adult": True}, expect=201)
    newest = wait_for(lambda: (n := platform.rpc("audit", "size", c["id"])) > c["size"] + 1 and n,
                      message="an entry after the latest checkpoint")
    resp = platform.api("GET", f"{base}/proofs/inclusion?index={newest - 1}", token)
    assert resp.status_code == 409 and "not covered by a signed checkpoint" in resp.json()["detail"]


def test_the_openapi_document_describes_the_audit_api(platform):
    doc = platform.api("GET", "/api/openapi.json", expect=200).json()
    c = "/api/v1/communities/{community}/audit"
    for path in ("/entries", "/checkpoint", "/checkpoints", "/notice", "/proofs/inclusion", "/proofs/consistency",
                 "/proofs/platform"):
        op = doc["paths"][c + path]["get"]
        assert op["summary"] and op["tags"] == ["audit"] and op["security"] == [{"bearer": []}]
    assert {p["name"] for p in doc["paths"][c + "/proofs/inclusion"]["get"]["parameters"]} >= {"index", "event",
                                                                                              "size", "since"}
    schema = doc["paths"][c + "/checkpoint"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == cp.CHECKPOINT_FIELDS
    for path in ("/api/v1/audit/public-keys", "/api/v1/audit/platform-checkpoint", "/api/v1/audit/platform-checkpoints"):
        assert doc["paths"][path]["get"]["security"] == []


def test_a_key_rotation_is_announced_signed_by_the_old_key_and_followed_by_an_auditor(platform, frozen):
    c = community_with_entries(platform, people=2)
    platform.rpc("audit", "cut_checkpoints", c["id"])
    first_key = genesis_key(platform)
    key_file = platform.dir / "data" / "audit-signing.key"
    old_private = cp.load_private_key(key_file)
    new_file = platform.dir / f"rotated-{c['id'][:8]}.key"
    out = platform.cli("audit", "rotate-key", "--new-key-file", str(new_file))
    assert "made a new key" in out.stdout and (new_file.stat().st_mode & 0o777) == 0o600
    new_id = cp.key_id(cp.load_private_key(new_file))
    keys = platform.api("GET", "/api/v1/audit/public-keys", expect=200).json()
    assert keys["current"] == new_id
    rotation = keys["key_rotations"][-1]
    assert rotation["old_key_id"] == cp.key_id(old_private) and rotation["new_key_id"] == new_id
    assert cp.verify_signature(rotation, old_private.public_key()), "the announcement is signed by the old key"
    assert cp.key_id(cp.load_private_key(key_file)) == new_id and (key_file.stat().st_mode & 0o777) == 0o600
    platform_head = platform.api("GET", "/api/v1/audit/platform-checkpoint", expect=200).json()
    assert platform_head["key_id"] == new_id, "the rotation is a leaf of the platform log, signed in by the new key"
    assert new_id in platform.cli("audit", "public-key").stdout
    assert platform.cli("audit", "rotate-key", "--new-key-file", str(new_file), check=False).returncode == 1

    platform.api("POST", c["base"] + "/people", c["token"], {"name": "轮换后", "adult": True}, expect=201)
    wait_for(lambda: platform.rpc("audit", "size", c["id"]) > c["size"], message="an entry after the rotation")
    export = platform.dir / f"rotation-{c['id'][:8]}.jsonl"
    platform.cli("audit", "export", "--community", c["id"], "--out", str(export), "--cut")
    lines = export.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["key_id"] == new_id and json.loads(lines[-2])["key_id"] == cp.key_id(old_private)
    pem = platform.dir / f"first-key-{c['id'][:8]}.pem"
    pem.write_text(first_key)
    out = platform.cli("audit", "verify", str(export), "--public-key", str(pem), "--json", check=False)
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["counts"]["key_rotations_learnt"] >= 1, report["first_error"]
    # A checkpoint the old key signs after its rotation is refused, though its signature is good.
    late = cp.sign_checkpoint(old_private, c["id"], report["size"], report["root"],
                              cp.parse_time(rotation["time"]) + timedelta(seconds=1))
    export.write_text("\n".join(lines + [json.dumps(late)]) + "\n", encoding="utf-8")
    out = platform.cli("audit", "verify", str(export), "--public-key", str(pem), "--json", check=False)
    assert out.returncode == 1 and "rotated out" in json.loads(out.stdout)["first_error"]["message"]


def test_a_key_file_replaced_without_a_rotation_signs_nothing(platform, frozen):
    c = community_with_entries(platform, people=1)
    key_file = platform.dir / "data" / "audit-signing.key"
    genuine = key_file.read_bytes()
    try:
        cp.generate_key_file(key_file, overwrite=True)  # another key, put in place by hand
        with pytest.raises(AssertionError, match="refusing to sign"):
            platform.rpc("audit", "cut_checkpoints", c["id"])
    finally:
        tmp = key_file.with_suffix(".restore")
        tmp.write_bytes(genuine)
        tmp.chmod(0o600)
        tmp.replace(key_file)
    assert [x["size"] for x in platform.rpc("audit", "cut_checkpoints", c["id"])] == [c["size"]]


# --- what an export, a bundle, replay and reconcile vouch for ------------------------------------------------

def keyfile(platform, c) -> str:
    pem = platform.dir / f"first-key-{c['id'][:8]}.pem"
    pem.write_text(genesis_key(platform))
    return str(pem)


def grown_past_a_checkpoint(platform, people: int = 2) -> dict:
    """A community whose latest checkpoint is followed by `people` entries no checkpoint covers
    (the clock stands still, so the timer cuts none)."""
    c = community_with_entries(platform, people=2)
    [first] = platform.rpc("audit", "cut_checkpoints", c["id"])
    c["covered"] = first["size"]
    for i in range(people):
        platform.api("POST", c["base"] + "/people", c["token"], {"name": f"后来{i}", "adult": True}, expect=201)
    c["size"] = wait_for(lambda: (n := platform.rpc("audit", "size", c["id"])) >= c["covered"] + people and n,
                         message="entries after the checkpoint")
    return c


def verify_cli(platform, path, key, *extra):
    return platform.cli("audit", "verify", str(path), "--public-key", key, *extra, check=False)


def export_lines(path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path, lines: list[bytes]):
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_an_unsigned_export_says_so_in_its_signed_header_and_its_tail_is_vouched_for_only_when_allowed(platform,
                                                                                                       frozen):
    c = grown_past_a_checkpoint(platform)
    key, covered, n = keyfile(platform, c), c["covered"], c["size"]
    signed = platform.dir / f"signed-{c['id'][:8]}.jsonl"
    platform.cli("audit", "export", "--community", c["id"], "--out", str(signed))
    header = json.loads(export_lines(signed)[0])
    assert (header["kind"], header["size"], header["covered"], header["unsigned"]) == ("export_header", covered,
                                                                                       covered, False)
    assert verify_cli(platform, signed, key).returncode == 0, "by default an export ends at its latest checkpoint"

    unsigned = platform.dir / f"unsigned-{c['id'][:8]}.jsonl"
    out = platform.cli("audit", "export", "--community", c["id"], "--out", str(unsigned), "--unsigned")
    assert f"entries [{covered}, {n}) are not covered by a signed checkpoint" in out.stderr
    lines = export_lines(unsigned)
    header = json.loads(lines[0])
    assert (header["size"], header["covered"], header["unsigned"]) == (n, covered, True)
    keys = platform.rpc("audit", "public_keys")
    assert header["key_id"] == keys["current"], "signed by the log's key of the day"
    assert cp.KeyRing([k["public_key"] for k in keys["keys"]]).verifies(header, cp.EXPORT_HEADER)
    out = verify_cli(platform, unsigned, key)
    assert out.returncode == 1
    assert out.stdout.startswith(f"FAILED: entry line {covered + 2} entry {covered}: entries [{covered}, {n}) are "
                                 "not covered by a signed checkpoint"), out.stdout
    out = verify_cli(platform, unsigned, key, "--allow-unsigned-tail", "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 0 and (report["covered"], report["unvouched"]) == (covered, n - covered)
    out = verify_cli(platform, unsigned, key, "--allow-unsigned-tail")
    assert out.returncode == 0 and f"{n - covered} entries could not be vouched for" in out.stdout

    # One more line after the last entry of the unsigned export: beyond what its header signed.
    last = json.loads(lines[n])
    forged = cp.canonical({**last, "id": str(uuid.uuid4()), "position": last["position"] + 1})
    appended = write_lines(platform.dir / f"unsigned-appended-{c['id'][:8]}.jsonl",
                           lines[:n + 1] + [forged] + lines[n + 1:])
    for extra in ((), ("--allow-unsigned-tail",)):
        out = verify_cli(platform, appended, key, *extra, "--json")
        report = json.loads(out.stdout)
        assert out.returncode == 1 and any(p["index"] == n and "added after the export was made" in p["message"]
                                           for p in report["problems"]), extra
    # The unsigned export cut back by one entry (a size no checkpoint covers): the header says it held more.
    truncated = write_lines(platform.dir / f"unsigned-truncated-{c['id'][:8]}.jsonl", lines[:n] + lines[n + 1:])
    out = verify_cli(platform, truncated, key, "--allow-unsigned-tail", "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["first_error"]["kind"] == "header"
    assert report["first_error"]["range"] == [n - 1, n] and "cut off" in report["first_error"]["message"]


def test_an_export_truncated_to_a_size_no_checkpoint_covers_is_refused(platform, frozen):
    c = grown_past_a_checkpoint(platform, people=3)
    key, covered, n = keyfile(platform, c), c["covered"], c["size"]
    export = platform.dir / f"cut-{c['id'][:8]}.jsonl"
    platform.cli("audit", "export", "--community", c["id"], "--out", str(export), "--cut")
    lines = export_lines(export)
    assert json.loads(lines[0])["size"] == n and json.loads(lines[-1])["size"] == n
    # The last entry cut off, and with it the checkpoint that covered it.
    shorter = [line for line in lines[:n] + lines[n + 1:] if json.loads(line).get("size") != n or
               json.loads(line).get("kind") != "checkpoint"]
    out = verify_cli(platform, write_lines(platform.dir / f"cut-short-{c['id'][:8]}.jsonl", shorter), key, "--json")
    report = json.loads(out.stdout)
    err = report["first_error"]
    assert out.returncode == 1 and (err["kind"], err["index"], err["line"]) == ("entry", covered, covered + 2)
    assert err["range"] == [covered, n - 1] and "not covered by a signed checkpoint" in err["message"]
    assert any(p["kind"] == "header" and "cut off" in p["message"] for p in report["problems"])
    out = verify_cli(platform, platform.dir / f"cut-short-{c['id'][:8]}.jsonl", key, "--allow-unsigned-tail")
    assert out.returncode == 1, "the signed header still says how many entries there were"
    # Cut to the earlier checkpoint's size exactly, later checkpoints gone: only the header tells.
    prefix = [line for line in lines[:covered + 1] + lines[n + 1:]
              if json.loads(line).get("kind") != "checkpoint" or json.loads(line)["size"] <= covered]
    out = verify_cli(platform, write_lines(platform.dir / f"cut-prefix-{c['id'][:8]}.jsonl", prefix), key, "--json")
    err = json.loads(out.stdout)["first_error"]
    assert out.returncode == 1 and (err["kind"], err["line"], err["range"]) == ("header", 1, [covered, n])


def test_replay_and_reconcile_of_the_live_log_stop_at_the_latest_checkpoint(platform, frozen):
    c = grown_past_a_checkpoint(platform, people=1)
    covered, n = c["covered"], c["size"]
    out = platform.cli("audit", "replay", "--community", c["id"])
    state = json.loads(out.stdout)
    assert (state["entries"], state["log"]["stopped_at"], state["log"]["entries"]) == (covered, covered, n)
    assert f"entries [{covered}, {n}) are not covered by a signed checkpoint and were left out" in out.stderr
    state = json.loads(platform.cli("audit", "replay", "--community", c["id"], "--allow-unsigned-tail").stdout)
    assert state["entries"] == n and state["log"]["unvouched"] == n - covered
    out = platform.cli("audit", "reconcile", "--community", c["id"])
    assert f"used entries [0, {covered}) of {n}" in out.stdout and "--cut" in out.stdout
    report = json.loads(platform.cli("audit", "reconcile", "--community", c["id"], "--json").stdout)
    assert (report["entries"], report["log"]["stopped_at"]) == (covered, covered)
    report = json.loads(platform.cli("audit", "reconcile", "--community", c["id"], "--cut", "--json").stdout)
    assert (report["entries"], report["log"]["stopped_at"], report["log"]["covered"]) == (n, None, n)


def test_a_case_bundle_past_the_checkpoint_is_refused_cut_or_carried_unproven(platform, frozen):
    c = platform.new_community("S社区")
    base = f"/api/v1/communities/{c['id']}"
    compound = platform.rpc("communities", "add_compound", "tests", c["id"], "1号院")["id"]
    building = platform.rpc("communities", "add_building", "tests", c["id"], compound, "1栋")["id"]
    unit = platform.rpc("communities", "register_household", "tests", c["id"], building, "101", "60", [], None, True,
                        None)["id"]
    author = platform.rpc("communities", "register_person", "tests", c["id"], "周", True, unit, None)["id"]
    token = platform.rpc("communities", "issue_token", c["id"], author, 30, "tests")["token"]
    proposal = platform.api("POST", base + "/proposals", token, {
        "title": "修缮楼道灯", "body": "楼道灯坏了。", "category": "other", "scope": "building", "scope_id": building},
        expect=201).json()["id"]
    wait_for(lambda: platform.rpc("audit", "entries", c["id"], 0, 100, proposal)["entries"],
             message="the proposal's entry in the audit log")
    platform.rpc("audit", "cut_checkpoints", c["id"])
    platform.api("POST", f"{base}/proposals/{proposal}/submit", token, expect=200)
    case = wait_for(lambda: len(e := platform.rpc("audit", "entries", c["id"], 0, 100, proposal)["entries"]) == 2 and e,
                    message="the submission in the audit log")
    key = keyfile(platform, c)
    path = platform.dir / f"bundle-{c['id'][:8]}.json"
    out = platform.cli("audit", "bundle", "--case", proposal, "--out", str(path), check=False)
    assert out.returncode == 1 and "not covered by a signed checkpoint" in out.stderr and "--unsigned" in out.stderr
    out = platform.cli("audit", "bundle", "--case", proposal, "--out", str(path), "--unsigned")
    assert "carry no proof" in out.stderr
    bundle = json.loads(path.read_text())
    assert bundle["extent"]["unsigned"] is True and bundle["entries"][1]["proof"] is None
    out = platform.cli("audit", "verify-proof", str(path), "--public-key", key, check=False)
    assert out.returncode == 1 and out.stdout.startswith(
        f"FAILED: entry entry {case[1]['index']}: not covered by the bundle's checkpoint of {case[1]['index']} "
        f"entries: 1 entry from entry {case[1]['index']}")
    out = platform.cli("audit", "verify-proof", str(path), "--public-key", key, "--allow-unsigned-tail")
    assert "1 entry could not be vouched for" in out.stdout
    platform.cli("audit", "bundle", "--case", proposal, "--out", str(path), "--cut")
    bundle = json.loads(path.read_text())
    assert bundle["extent"]["unsigned"] is False and all(e["proof"] for e in bundle["entries"])
    assert platform.cli("audit", "verify-proof", str(path), "--public-key", key).returncode == 0
