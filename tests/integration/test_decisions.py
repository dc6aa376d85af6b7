"""Decisions end to end: the worked example through the API, retally from the record, secret
ballots in the audit log, the publicity period, and the emergency path."""
from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import timedelta

import psycopg
import pytest

from rules import RollEntry, roll_hash
from rules.record import replay_ballot, tally_record
from tests.harness import PG_URL, wait_for
from tests.integration.decisions_world import EXAMPLE, building_2, t0  # noqa: F401 - t0 is a fixture

pytestmark = pytest.mark.integration


def numbers(result: dict) -> tuple:
    return (result["eligible_area"], result["eligible_heads"], result["participating_area"],
            result["participating_heads"], result["agreeing_area"], result["agreeing_heads"])


def test_worked_example_and_its_boundaries_through_the_api(platform, t0):
    w = building_2(platform, t0)
    scenarios = {  # ballot name: (preset, votes; 'developer' votes on paper)
        "ordinary": ("owners_ordinary", EXAMPLE),
        "major": ("owners_major", EXAMPLE),
        "major, Zhao agrees": ("owners_major", dict(EXAMPLE, Zhao="agree")),
        "quorum exactly": ("owners_ordinary", {v: "agree" for v in ("Li", "Zhang", "Liu", "Chen", "Zhao", "Sun")}),
        "three quarters exactly": ("owners_major", {"Liu": "agree", "Chen": "agree", "Zhao": "agree", "Sun": "agree",
                                                    "Zhou": "agree", "developer": "agree", "Wang": "disagree",
                                                    "Zhang": "disagree"}),
        "half the area exactly": ("owners_ordinary", {"Wang": "agree", "Li": "agree", "Liu": "agree", "Zhou": "agree",
                                                      "Zhang": "disagree", "Chen": "disagree", "Zhao": "abstain"}),
    }
    ballots = {name: w.ballot(preset) for name, (preset, _votes) in scenarios.items()}
    platform.set_clock(w.opens())
    for ballot in ballots.values():
        w.wait_status(ballot, "open")

    # The roll the service built from the directory at the opening: 9 heads, 870 m², Zhang once.
    roll = w.api("GET", f"/ballots/{ballots['ordinary']}/roll", expect=200).json()
    entries = {e["voter"]: e for e in roll["roll"]}
    assert len(entries) == 9 and sum(int(e["weight"]) for e in entries.values()) == 870
    assert entries[w.people["Zhang"]]["weight"] == "150" and len(entries[w.people["Zhang"]]["units"]) == 2
    assert entries["developer"]["weight"] == "120"
    assert roll["roll_hash"] == roll_hash([RollEntry.from_dict(e) for e in roll["roll"]])

    for name, (_preset, votes) in scenarios.items():
        for who, choice in votes.items():
            if who == "developer":
                w.api("POST", f"/ballots/{ballots[name]}/paper-ballots",
                      body={"voter": "developer", "choice": choice, "paper_serial": f"{name}-1"}, expect=201)
            elif name == "major, Zhao agrees" and who == "Zhao":
                w.vote(ballots[name], who, "abstain")  # Zhao first abstains, then agrees before the close
                w.vote(ballots[name], who, "agree")
            else:
                receipt = w.vote(ballots[name], who, choice).json()["receipt"]
                board = w.api("GET", f"/ballots/{ballots[name]}/board?receipt={receipt}", who, expect=200).json()
                assert board["entries"] == [{"receipt": receipt}]  # found, and no running tally shown

    platform.set_clock(w.closes())
    expected = {
        "ordinary": ("adopted", ("870", 9, "660", 7, "480", 5)),
        "major": ("rejected", ("870", 9, "660", 7, "480", 5)),
        "major, Zhao agrees": ("adopted", ("870", 9, "660", 7, "570", 6)),
        "quorum exactly": ("adopted", ("870", 9, "580", 6, "580", 6)),
        "three quarters exactly": ("adopted", ("870", 9, "800", 8, "600", 6)),
        "half the area exactly": ("rejected", ("870", 9, "660", 7, "330", 4)),
    }
    for name, (outcome, figures) in expected.items():
        view = w.wait_status(ballots[name], "adopted", "rejected")
        assert view["status"] == outcome, (name, view["result"]["failed"])
        # Every number is in the resolution event itself, as the audit log holds it.
        [resolution] = w.wait_audit(ballots[name], f"Resolution{outcome.capitalize()}")
        assert numbers(resolution["data"]["result"]) == figures, name
        assert resolution["data"]["result"]["quorum_met"] is True, name
    assert w.view(ballots["major"])["result"]["failed"] == ["approval_area", "approval_heads"]
    assert w.view(ballots["half the area exactly"])["result"]["failed"] == ["approval_area"]

    # consult decisions retally: the recount from the events matches ...
    out = platform.cli("decisions", "retally", ballots["ordinary"])
    assert out.stdout.startswith(f"MATCH ballot {ballots['ordinary']}: adopted")
    assert "eligible 870 m² / 9, participating 660 m² / 7, agreeing 480 m² / 5" in out.stdout
    # ... and reports a mismatch once the stored tally has been altered behind the service's back.
    tamper_with_result(platform, ballots["ordinary"], '"agreeing_area":"480"', '"agreeing_area":"490"')
    out = platform.cli("decisions", "retally", ballots["ordinary"], check=False)
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("MISMATCH") and "agreeing_area: recorded 490, recount 480" in out.stdout
    missing = platform.cli("decisions", "retally", "00000000-0000-4000-8000-000000000000", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def tamper_with_result(platform, ballot: str, old: str, new: str) -> None:
    """Alter the stored ResolutionAdopted event directly in the decisions event store."""
    where, topic = "originator_id = {0} AND topic LIKE {0}", "%ResolutionAdopted"
    if platform.backend == "postgres":
        table = f'"{platform.prefix}_decisions_events".decisions_events'
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            changed = conn.execute(
                f"UPDATE {table} SET state = convert_to(replace(convert_from(state, 'UTF8'), %s, %s), 'UTF8') "
                f"WHERE {where.format('%s')}", (old, new, ballot, topic)).rowcount
    else:
        with sqlite3.connect(platform.dir / "data" / "decisions-events.sqlite3") as conn:
            row = conn.execute(f"SELECT rowid, state FROM stored_events WHERE {where.format('?')}",
                               (uuid.UUID(ballot).hex, topic)).fetchone()  # SQLite keeps ids as hex
            state = bytes(row[1]).decode()
            assert old in state
            changed = conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                                   (state.replace(old, new).encode(), row[0])).rowcount
    assert changed == 1


def test_a_secret_ballots_record_does_not_reveal_who_voted_what(platform, t0):
    """While open: the log and every read carry a seal per vote, no choice, no voter, no turnout.
    After the count: the reveal lets anyone recount from the log, and both recounts say MATCH."""
    w = building_2(platform, t0)
    ballot = w.ballot("owners_ordinary", secret=True)
    platform.set_clock(w.opens())
    w.wait_status(ballot, "open")
    receipts = {who: w.vote(ballot, who, choice).json()["receipt"] for who, choice in EXAMPLE.items()}
    w.api("POST", f"/ballots/{ballot}/proxies", "Sun", {"holder": w.people["Zhou"]}, expect=201)
    receipts["Sun"] = w.api("POST", f"/ballots/{ballot}/votes", "Zhou", {"choice": "agree", "voter": w.people["Sun"]},
                            expect=201).json()["receipt"]
    assert w.api("GET", f"/ballots/{ballot}/my-vote", "Chen", expect=200).json()["receipt"] == receipts["Chen"]

    votes = w.wait_audit(ballot, "VoteCast", 8)
    for env in votes:  # what the log holds while voting is open
        assert env["event_version"] == 2 and env["data"]["choice"] is None and len(env["data"]["sealed_choice"]) == 64
        assert not any(f'"{c}"' in json.dumps(env["data"]) for c in ("agree", "disagree", "abstain"))
    view = w.view(ballot)
    assert (view["voted"], view["revealed"]) == (None, False)
    assert {b["id"]: b["voted"] for b in w.api("GET", "/ballots", expect=200).json()}[ballot] is None
    board = w.api("GET", f"/ballots/{ballot}/board", "Wang", expect=200).json()
    assert board["entries"] == [] and board["listed"] is False
    assert w.api("GET", f"/ballots/{ballot}/board?receipt={receipts['Wang']}", "Wang",
                 expect=200).json()["entries"] == [{"receipt": receipts["Wang"]}]

    platform.set_clock(w.closes())
    view = w.wait_status(ballot, "adopted", "rejected")
    assert numbers(view["result"]) == ("870", 9, "750", 8, "570", 6) and view["voted"] == 8
    w.wait_audit(ballot, f"Resolution{view['status'].capitalize()}")
    [opened] = w.audit(ballot, "BallotOpened")
    roll_voters = {e["voter"] for e in opened["data"]["roll"]} | set(w.people.values())
    sealed = [e for e in w.audit(ballot) if e["aggregate"]["type"] in ("Vote", "Proxy", "ProxyHolder")]
    assert len(sealed) == 11  # 8 votes; the authorisation, its holder's registration and count
    for env in sealed:
        assert env["actor"] == "sealed" and env["causation"] is None
        assert not any(v in str(env) for v in roll_voters), "a vote or proxy in the record names a person"
    # Anyone holding the log recounts from it: the reveal opens every seal, the numbers are the record's.
    record = replay_ballot(w.audit(ballot), ballot)
    assert len(record.reveals) == 8
    assert tally_record(record.opened, record.votes, record.reveals).to_dict() == view["result"]
    # Each voter finds their receipt on the board; the choices are there, not the voters.
    board = {e["receipt"]: e for e in w.api("GET", f"/ballots/{ballot}/board", expect=200).json()["entries"]}
    assert board[receipts["Chen"]]["choice"] == "disagree" and len(board) == 8
    assert platform.cli("decisions", "retally", ballot).stdout.startswith("MATCH")
    platform.cli("audit", "cut", "--community", w.community)  # the replay uses what a signed checkpoint covers
    replayed = json.loads(platform.cli("audit", "replay", "--community", w.community).stdout)["ballots"][ballot]
    assert replayed["matches_record"] is True and replayed["recount"] == view["result"]


def test_objections_in_the_publicity_period_and_the_final_resolution(platform, t0):
    w = building_2(platform, t0)
    upheld, dismissed = w.ballot("owners_ordinary"), w.ballot("owners_ordinary")
    platform.set_clock(w.opens())
    for ballot in (upheld, dismissed):
        w.wait_status(ballot, "open")
        for who, choice in EXAMPLE.items():
            w.vote(ballot, who, choice)
    platform.set_clock(w.closes())
    for ballot in (upheld, dismissed):
        w.wait_status(ballot, "adopted")
    objections = {b: w.api("POST", f"/ballots/{b}/objections", "Sun", {"text": "我没有收到通知 no notice reached me"},
                           expect=201).json()["objection"] for b in (upheld, dismissed)}
    ruling = f"/ballots/{upheld}/objections/{objections[upheld]}/ruling"
    # Ruled on by the party-committee lead (no consultation before these ballots), with a reason.
    w.api("POST", ruling, "worker", {"upheld": True, "reason": "x"}, expect=403)
    view = w.api("POST", ruling, "Lead", {"upheld": True, "reason": "the notice was not posted in building 2"},
                 expect=200).json()
    assert view["status"] == "annulled" and view["objections"][0]["reason"].startswith("the notice")
    rerun = w.api("POST", f"/ballots/{upheld}/reruns", expect=201).json()["id"]
    assert w.view(rerun)["rerun_of"] == upheld and w.view(rerun)["status"] == "prepared"
    w.api("POST", f"/ballots/{dismissed}/objections/{objections[dismissed]}/ruling", "Lead",
          {"upheld": False, "reason": "the notice was posted on 1 March (photo on file)"}, expect=200)

    platform.set_clock(w.closes() + timedelta(days=7))  # the community's publicity period: 7 days
    w.api("POST", f"/ballots/{dismissed}/objections", "Chen", {"text": "too late"}, expect=409)
    assert w.wait_status(dismissed, "final")["outcome"] == "adopted"
    [final] = w.wait_audit(dismissed, "ResolutionFinal")
    assert final["data"]["outcome"] == "adopted" and final["data"]["summary"]["agreeing_area"] == "480"
    history = w.audit(upheld)  # the re-run belongs to the same case
    assert [e["type"] for e in history if e["aggregate"]["id"] == upheld][-2:] == ["ResolutionAnnulled", "BallotRerun"]
    assert history[-1]["type"] == "BallotPrepared" and history[-1]["aggregate"]["id"] == rerun
    assert w.view(upheld)["status"] == "annulled"


def test_an_emergency_needs_a_worker_and_the_lead_and_records_the_justification(platform, t0):
    w = building_2(platform, t0)
    body = {"title": "化粪池 septic tank overflowing", "justification": "sewage in three ground-floor flats since "
            "this morning; the property company confirms a collapsed pipe", "scope": "building",
            "scope_id": w.building, "category": "drainage"}
    w.api("POST", "/emergencies", "Wang", body, expect=403)  # a resident may not
    emergency = w.api("POST", "/emergencies", "worker", body, expect=201).json()["id"]
    w.api("POST", f"/emergencies/{emergency}/confirmation", "worker", expect=403)  # not the same person
    view = w.api("POST", f"/emergencies/{emergency}/confirmation", "Lead", expect=200).json()
    assert (view["status"], view["outcome"]) == ("final", "emergency")
    envs = wait_for(lambda: len(found := [e for e in w.audit(emergency) if e["source"] == "decisions"]) >= 4
                    and found, message="the emergency in the record")
    # (The actions service, when it runs, opens the repair plan in the same case: its events follow.)
    assert [e["type"] for e in envs] == ["BallotPrepared", "EmergencyDeclared", "EmergencyConfirmed", "ResolutionFinal"]
    assert [e["actor"] for e in envs[1:3]] == [w.people["worker"], w.people["Lead"]]
    assert envs[3]["data"]["outcome"] == "emergency" and envs[3]["data"]["justification_commitment"]
    assert "collapsed pipe" not in str(envs)  # the justification is a commitment; the text is erasable
