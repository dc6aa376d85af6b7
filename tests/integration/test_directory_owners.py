"""Owners are told apart by their keys, never merged by name (issue 11, part 3): namesakes in an
imported file are two heads on an owners' roll, one owner of two units is one head with both
areas, and a file that repeats a name without keys is refused with its lines and imports nothing."""
from __future__ import annotations

import json

import pytest

from services.common import clock
from tests.harness import wait_for
from tests.integration.decisions_world import NOTICE, VOTING, t0  # noqa: F401 - t0 is a fixture

pytestmark = pytest.mark.integration

FILE = (
    "compound,building,unit,area,owners,owner_keys,effective\n"
    "3号院坝,2栋,101,50,王伟,京(2019)不动产权第0001号,2020-01-01\n"
    "3号院坝,2栋,102,70,王伟,京(2019)不动产权第0002号,2020-01-01\n"
    "3号院坝,2栋,201,75,张伟,138-0013-8000,2020-01-01\n"
    "3号院坝,2栋,202,75,张伟,13800138000,2020-01-01\n"
)


def _import(platform, c, text: str, expect: int | None = None):
    return platform.api("POST", f"/api/v1/communities/{c['id']}/directory/import", c["token"], data=text.encode(),
                        headers={"Content-Type": "text/csv"}, expect=expect)


def test_namesakes_are_two_heads_and_one_owner_of_two_units_is_one(platform, t0):
    if "decisions" not in platform.services:
        pytest.skip("the decisions service is not running in this platform")
    c = platform.new_community("S社区")
    base = f"/api/v1/communities/{c['id']}"
    result = _import(platform, c, FILE, expect=201).json()
    created = result["people"]["created"]
    assert result["households"] == 4 and result["people"]["matched"] == []
    assert sorted(p["name"] for p in created) == ["张伟", "王伟", "王伟"]
    ids = {p["id"] for p in created}
    wangs = [p["id"] for p in created if p["name"] == "王伟"]
    [zhang] = [p["id"] for p in created if p["name"] == "张伟"]

    # An owners' ballot on the building: three heads, 王伟 twice, 张伟 once with 150 m².
    directory = platform.api("GET", base + "/directory", c["token"], expect=200).json()
    [building] = [b["id"] for b in directory["buildings"]]
    ballot = platform.api("POST", base + "/ballots", c["token"], {
        "title": "疏通排水管 unblock the drains", "scope": "building", "scope_id": building}, expect=201).json()["id"]
    opens = t0 + NOTICE
    platform.api("PUT", f"{base}/ballots/{ballot}/configuration", c["token"], {
        "preset": "owners_ordinary", "voting_unit": "owner", "opens_at": clock.format(opens),
        "closes_at": clock.format(opens + VOTING)}, expect=200)
    platform.set_clock(opens)
    wait_for(lambda: platform.api("GET", f"{base}/ballots/{ballot}", c["token"]).json()["status"] == "open",
             timeout=30, message="the ballot to open")
    roll = {e["voter"]: e for e in platform.api("GET", f"{base}/ballots/{ballot}/roll", c["token"],
                                                expect=200).json()["roll"]}
    assert set(roll) == ids, "three heads: two different 王伟 and one 张伟"
    assert sorted(roll[w]["weight"] for w in wangs) == ["50", "70"]
    assert roll[zhang]["weight"] == "150" and len(roll[zhang]["units"]) == 2

    # The same file again updates nobody twice: everyone matched, nothing recorded.
    head = platform.rpc("communities", "log_head")
    again = _import(platform, c, FILE, expect=201).json()
    assert again["households"] == 0 and again["households_unchanged"] == 4 and again["people"]["created"] == []
    assert {p["id"] for p in again["people"]["matched"]} == ids
    assert platform.rpc("communities", "log_head") == head
    people = platform.api("GET", base + "/directory", c["token"], expect=200).json()["people"]
    assert sorted(p["name"] for p in people if p["id"] in ids) == ["张伟", "王伟", "王伟"]
    assert len([p for p in people if p["name"] in ("张伟", "王伟")]) == 3

    # The keys are nowhere: not in the answers, not in the record.
    entries = platform.audit_entries(c["id"], c["token"])
    seen = json.dumps([result, again], ensure_ascii=False) + "".join(e["canonical"] for e in entries)
    for key in ("不动产权第0001号", "0001号", "138-0013-8000", "13800138000"):
        assert key not in seen


def test_a_name_repeated_without_keys_is_refused_with_its_lines_and_nothing_imported(platform):
    c = platform.new_community()
    text = ("compound,building,unit,area,owners,owner_keys\n"
            "院坝,1栋,101,50,王伟,\n"
            "院坝,1栋,102,70,李娜,K-1\n"
            "院坝,1栋,103,60,王伟,K-2\n"
            "院坝,1栋,104,60,陈静,\n")
    wait_for(lambda: len(platform.audit_entries(c["id"], c["token"])) >= 4, message="the set-up in the audit log")
    head, size = platform.rpc("communities", "log_head"), len(platform.audit_entries(c["id"], c["token"]))
    resp = _import(platform, c, text)
    assert resp.status_code == 422 and resp.headers["Content-Type"].startswith("application/problem+json")
    problem = resp.json()
    assert sorted(e["line"] for e in problem["errors"]) == [2, 4]
    assert all("王伟" in e["message"] for e in problem["errors"]) and "K-2" not in resp.text
    # The CLI says the same, by line, and imports nothing either.
    path = platform.dir / "namesakes.csv"
    path.write_text(text, encoding="utf-8")
    out = platform.cli("directory", "import", str(path), "--community", c["id"], check=False)
    assert out.returncode == 1 and "line 2" in out.stderr and "line 4" in out.stderr and "K-2" not in out.stderr
    assert platform.rpc("communities", "log_head") == head
    assert len(platform.audit_entries(c["id"], c["token"])) == size
    assert platform.api("GET", f"/api/v1/communities/{c['id']}/directory", c["token"]).json()["households"] == []
    # With a key on every row of the name, the same file imports: two different 王伟.
    keyed = text.replace("101,50,王伟,", "101,50,王伟,K-3")
    done = _import(platform, c, keyed, expect=201).json()
    assert sorted(p["name"] for p in done["people"]["created"]) == ["李娜", "王伟", "王伟", "陈静"]
    path.with_name("keyed.csv").write_text(keyed, encoding="utf-8")
    out = platform.cli("directory", "import", str(path.with_name("keyed.csv")), "--community", c["id"])
    assert "0 owners created, 4 matched" in out.stdout and "王伟" in out.stdout


def _job(platform, c, location: str) -> dict:
    """Read an import's job until it has ended."""
    found: dict = {}

    def ended() -> bool:
        found.update(platform.api("GET", location, c["token"], expect=200).json())
        return found["status"] != "running"

    wait_for(ended, timeout=60, message="the import's job to end")
    return found


def test_an_import_answered_as_a_job_is_read_at_its_location_until_done(platform):
    """`Prefer: respond-async` (what a file too large for the gateway's wait gets anyway): 202 with
    the job and its Location; the job reads running, then done with what was imported. A refused
    file's job says why, by line; a resident may not read a job; nor may another community."""
    c = platform.new_community()
    base = f"/api/v1/communities/{c['id']}/directory"
    resp = platform.api("POST", base + "/import", c["token"], data=FILE.encode(),
                        headers={"Content-Type": "text/csv", "Prefer": "respond-async"})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] in ("running", "done") and job["lines"] == 4
    assert resp.headers["Location"] == f"{base}/imports/{job['id']}"
    done = _job(platform, c, resp.headers["Location"])
    assert done["status"] == "done" and done["result"]["households"] == 4 and done["finished_at"]
    assert len(done["result"]["people"]["created"]) == 3  # 张伟 twice with one key (spaces and hyphens aside)
    assert len(platform.api("GET", base, c["token"], expect=200).json()["households"]) == 4
    # The same file, waited for (the default): run again, it changes nothing and says so.
    again = _import(platform, c, FILE, expect=201).json()
    assert (again["households"], again["households_unchanged"], again["events"]) == (0, 4, 0)

    bad = FILE.replace("50,王伟,京(2019)不动产权第0001号", "abc,王伟,京(2019)不动产权第0001号")
    resp = platform.api("POST", base + "/import", c["token"], data=bad.encode(),
                        headers={"Content-Type": "text/csv", "Prefer": "respond-async"}, expect=202)
    failed = _job(platform, c, resp.headers["Location"])
    assert failed["status"] == "failed" and failed["problem"]["status"] == 422
    assert [e["line"] for e in failed["problem"]["errors"]] == [2]

    other = platform.new_community("another")
    gone = platform.api("GET", f"/api/v1/communities/{other['id']}/directory/imports/{job['id']}", other["token"])
    assert gone.status_code == 404, "a job is found in its own community only"
    resident = platform.rpc("communities", "register_person", "tests", c["id"], "居民", True, None, None)["id"]
    token = platform.rpc("communities", "issue_token", c["id"], resident, 1, "tests")["token"]
    assert platform.api("GET", resp.headers["Location"], token).status_code == 403


def test_a_worker_invites_a_buildings_households_at_once_and_each_slip_signs_one_resident_in(platform):
    """`POST …/invitations/batch`: one request, an invitation per household of a building (or of the
    households named), each code shown once; a code signs one resident in, into that household.
    A resident may not issue them, and another community's building or household is not found."""
    c = platform.new_community()
    base = f"/api/v1/communities/{c['id']}"
    _import(platform, c, FILE, expect=201)
    directory = platform.api("GET", base + "/directory", c["token"], expect=200).json()
    households = [h["id"] for h in directory["households"]]
    building = directory["households"][0]["building"]
    made = platform.api("POST", base + "/invitations/batch", c["token"],
                        {"scope": "building", "scope_id": building, "days": 30}, expect=201).json()
    in_building = sorted(h["id"] for h in directory["households"] if h["building"] == building)
    assert made["count"] == len(in_building) and sorted(i["household"] for i in made["invitations"]) == in_building
    code = made["invitations"][0]["code"]
    signed = platform.api("POST", "/api/v1/sign-in", None, {"code": code, "name": "新居民"}, expect=201).json()
    person = platform.api("GET", f"{base}/people/{signed['person']}", c["token"], expect=200).json()
    assert person["household"] == made["invitations"][0]["household"]
    again = platform.api("POST", "/api/v1/sign-in", None, {"code": code, "name": "又一人"})
    assert again.status_code == 404, again.text
    named = platform.api("POST", base + "/invitations/batch", c["token"], {"households": households[:2]},
                         expect=201).json()
    assert sorted(i["household"] for i in named["invitations"]) == sorted(households[:2])
    assert platform.api("POST", base + "/invitations/batch", signed["token"], {"households": households[:1]}
                        ).status_code == 403
    other = platform.new_community("another")
    _import(platform, other, FILE, expect=201)
    theirs = platform.api("GET", f"/api/v1/communities/{other['id']}/directory", other["token"], expect=200).json()
    for body in ({"households": [theirs["households"][0]["id"]]},
                 {"scope": "building", "scope_id": theirs["households"][0]["building"]}):
        refused = platform.api("POST", base + "/invitations/batch", c["token"], body)
        assert refused.status_code == 404, (body, refused.text)
