"""The deliberation stage's "what needs me": the open consultations whose body the person sits
on, the body's meetings still ahead, and the minutes that wait for the person's signature."""
from __future__ import annotations

import uuid
from datetime import timedelta

from services.common import clock
from services.common.aggregate import command_context
from services.communities.domain import DEFAULT_RULES

from .test_deliberation_app import (  # noqa: F401 - app is a fixture
    C, NEIGHBOUR, OUTSIDER, WORKER, app, open_green_space, schedule, who,
)
from .test_deliberation_domain import B2, COMPOUND, DIRECTORY, HE, LEAD, LI, QIAN, T0, WANG, ZHANG

OTHER = "community-2"
TITLE = "草坪种菜之争"


def kinds(app, person, roles=("resident",), community=C) -> list[tuple[str, str]]:
    return [(n["kind"], n["id"]) for n in app.needs_of(community, person, list(roles))]


def held_meeting(app, cid, community=C) -> tuple[str, str]:
    """A meeting of the body held three days on, and its minutes recorded (not yet signed)."""
    meeting = app.schedule_meeting(who(LEAD), community, cid, clock.format(clock.now() + timedelta(days=3)),
                                   "on_site", "社区活动室", ["讨论方案"], WORKER)
    clock.set(clock.now() + timedelta(days=3))
    for person in (LEAD, WANG, LI, ZHANG):
        app.sign_in(who(person), community, meeting)
    app.open_meeting(who(LEAD), community, meeting)
    return meeting, app.record_minutes(who(WORKER), community, meeting, "纪要")


def test_a_body_member_is_asked_to_discuss_and_a_non_member_is_not(app):
    cid = open_green_space(app)  # body: lead, Wang, Li, He; Qian and Zhang accepted
    assert app.needs_of(C, ZHANG, ["resident"]) == [
        {"kind": "discuss", "stage": "deliberation", "id": cid, "title": TITLE, "due": None,
         "path": f"consultations/{cid}"}]
    for person in (LEAD, WANG, LI, HE, QIAN):
        assert kinds(app, person) == [("discuss", cid)]
    assert kinds(app, NEIGHBOUR) == []  # lives in the compound: may speak in public, sits on no body
    assert kinds(app, OUTSIDER) == []
    assert kinds(app, WORKER, ["community_worker", "moderator"]) == []  # staff run it; the body is the record's


def test_an_invitation_counts_once_accepted(app):
    cid = open_green_space(app)
    app.invite(who(LEAD), C, cid, NEIGHBOUR, "expert")
    assert kinds(app, NEIGHBOUR) == []
    app.answer_invitation(who(NEIGHBOUR), C, cid, "expert", True)
    assert kinds(app, NEIGHBOUR) == [("discuss", cid)]


def test_a_meeting_ahead_asks_the_body_to_attend_until_it_starts_or_is_cancelled(app):
    cid = open_green_space(app)
    meeting = schedule(app, cid)
    starts_at = app.meeting_view(C, meeting)["starts_at"]
    needs = app.needs_of(C, ZHANG, ["resident"])
    assert needs[1] == {"kind": "attend", "stage": "deliberation", "id": meeting, "title": TITLE, "due": starts_at,
                        "path": f"meetings/{meeting}"}
    assert kinds(app, LEAD) == [("discuss", cid), ("attend", meeting)]
    assert kinds(app, NEIGHBOUR) == [] and kinds(app, WORKER, ["community_worker"]) == []
    later = schedule(app, cid, days=5)
    assert kinds(app, WANG) == [("discuss", cid), ("attend", meeting), ("attend", later)]  # soonest first
    app.cancel_meeting(who(LEAD), C, later, "场地冲突")
    assert kinds(app, WANG) == [("discuss", cid), ("attend", meeting)]
    clock.set(T0 + timedelta(days=3))  # it starts: nothing left to attend ahead
    assert kinds(app, WANG) == [("discuss", cid)]


def test_minutes_ask_each_signer_until_they_sign(app):
    cid = open_green_space(app)
    meeting, minutes = held_meeting(app, cid)
    need = {"kind": "sign", "stage": "deliberation", "id": minutes, "title": TITLE, "due": None,
            "path": f"meetings/{meeting}"}
    assert need in app.needs_of(C, LEAD, ["party_lead"]) and need in app.needs_of(C, WANG, ["grid_leader"])
    for person in (ZHANG, LI, QIAN, WORKER):  # in the body but no signer role, or the secretary
        assert ("sign", minutes) not in kinds(app, person)
    app.sign_minutes(who(LEAD), C, minutes)
    assert kinds(app, LEAD) == [("discuss", cid)]
    assert kinds(app, WANG) == [("discuss", cid), ("sign", minutes)]
    app.sign_minutes(who(WANG), C, minutes)
    assert kinds(app, WANG) == [("discuss", cid)]
    correction = app.correct_minutes(who(WORKER), C, minutes, "更正")  # a correction is signed anew
    assert kinds(app, LEAD) == [("discuss", cid), ("sign", correction)]
    app.sign_minutes(who(LEAD), C, correction)
    app.sign_minutes(who(WANG), C, correction)
    assert kinds(app, LEAD) == kinds(app, WANG) == [("discuss", cid)]


def test_a_concluded_consultation_needs_nothing_and_is_not_loaded(app):
    done = open_green_space(app)
    meeting, minutes = held_meeting(app, done)
    app.sign_minutes(who(LEAD), C, minutes)
    app.sign_minutes(who(WANG), C, minutes)
    app.conclude(who(LEAD), C, done, "no_action", "已自行解决", meeting, reason="双方已协商一致")
    live = open_green_space(app)
    loaded = []
    get = app.repository.get
    app.repository.get = lambda agg_id, *a, **kw: loaded.append(str(agg_id)) or get(agg_id, *a, **kw)
    try:
        assert kinds(app, ZHANG) == [("discuss", live)]
    finally:
        app.repository.get = get
    assert done not in loaded and minutes not in loaded and loaded == [live]


def test_another_communitys_objects_never_appear(app):
    theirs = app.open_topic(who(WORKER, "community_worker"), OTHER, "别的社区", "d", "compound", COMPOUND,
                            "green_space", DEFAULT_RULES, DIRECTORY)
    app.invite(who(LEAD), OTHER, theirs, ZHANG, "resident")
    app.answer_invitation(who(ZHANG), OTHER, theirs, "resident", True)
    meeting, minutes = held_meeting(app, theirs, OTHER)
    ahead = app.schedule_meeting(who(LEAD), OTHER, theirs, clock.format(clock.now() + timedelta(days=3)),
                                 "online", "线上", ["再议"], WORKER)
    for person in (LEAD, WANG, ZHANG):
        assert kinds(app, person) == []
    assert kinds(app, LEAD, community=OTHER) == [("discuss", theirs), ("attend", ahead), ("sign", minutes)]
    ours = open_green_space(app)
    assert kinds(app, ZHANG) == [("discuss", ours)]
    assert ("discuss", ours) not in kinds(app, ZHANG, community=OTHER)


def test_a_consultation_opened_from_a_proposal_takes_its_title_from_the_proposals_store(app):
    proposal = str(uuid.uuid4())
    env = {"type": "ProposalQualified", "community": C, "case": "case-of-proposal", "id": "event-1",
           "data": {"proposal": proposal, "scope": "building", "scope_id": B2, "category": "drainage",
                    "title_commitment": "t" * 64, "body_commitment": "b" * 64}}
    with command_context(community=C, actor="system", case="case-of-proposal", causation="event-1"):
        [consultation] = app.open_for_proposal(env, DEFAULT_RULES, DIRECTORY)
        app.save(consultation)
    cid = str(consultation.id)
    asked = []

    def proposals(commitments):
        asked.append(commitments)
        return {"t" * 64: "疏通排水管"}

    [need] = app.needs_of(C, LI, ["building_leader"], proposals)
    assert (need["id"], need["title"]) == (cid, "疏通排水管") and asked == [["t" * 64]]
    assert app.needs_of(C, LI, ["building_leader"])[0]["title"] is None  # not held here
    assert app.needs_of(C, LI, ["building_leader"], lambda commitments: None)[0]["title"] is None  # stage down
