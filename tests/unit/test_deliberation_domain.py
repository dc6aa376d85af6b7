"""The deliberation's aggregates on their own: body formation, quorum boundaries, flags and
moderation, minutes signing. No storage, no broker."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.common.aggregate import command_context
from services.common.errors import Conflict, Forbidden, InvalidInput
from services.communities.domain import DEFAULT_RULES
from services.deliberation.domain import (
    Consultation, MinutesAlreadyConfirmed, NoticeTooShort, NotInBody, QuorumNotMet, RequiredRolesAbsent,
    minutes_id, signer_roles, standing_body,
)

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)
COMPOUND, OTHER_COMPOUND = "c0000000-0000-0000-0000-000000000003", "c0000000-0000-0000-0000-000000000009"
B1, B2, B9 = ("b0000000-0000-0000-0000-000000000001", "b0000000-0000-0000-0000-000000000002",
              "b0000000-0000-0000-0000-000000000009")
LEAD, WANG, LI, HE, ZHAO, QIAN, ZHANG = (f"0f000000-0000-0000-0000-00000000000{i}" for i in range(1, 8))
DIRECTORY = {
    "community": {"id": "community-1"},
    "compounds": [{"id": COMPOUND}, {"id": OTHER_COMPOUND}],
    "buildings": [{"id": B1, "compound": COMPOUND}, {"id": B2, "compound": COMPOUND},
                  {"id": B9, "compound": OTHER_COMPOUND}],
    "people": [
        {"id": LEAD, "roles": [{"role": "party_lead", "scope": None}]},
        {"id": WANG, "roles": [{"role": "grid_leader", "scope": COMPOUND}]},
        {"id": LI, "roles": [{"role": "building_leader", "scope": B2}]},
        {"id": HE, "roles": [{"role": "building_leader", "scope": B1}]},
        {"id": ZHAO, "roles": [{"role": "grid_leader", "scope": OTHER_COMPOUND},
                               {"role": "building_leader", "scope": B9}]},
        {"id": QIAN, "roles": [{"role": "property_company", "scope": None}]},
        {"id": ZHANG, "roles": []},
    ],
}


@pytest.fixture(autouse=True)
def _context():
    with command_context(community="community-1", actor="tests", case="case-1"):
        yield


def consultation(scope="compound", scope_id=COMPOUND, **rules) -> Consultation:
    return Consultation.open(
        id=uuid.uuid4(), community="community-1", case="case-1", proposal=None, scope=scope, scope_id=scope_id,
        category="green_space", title_commitment="t" * 64, body_commitment="b" * 64,
        body=standing_body(scope, scope_id, DIRECTORY), rules=dict(DEFAULT_RULES, **rules))


def people_in_body(c: Consultation) -> set[tuple[str, str]]:
    return {(m["person"], m["role"]) for m in c.body if m["status"] == "active"}


def test_the_body_takes_the_leaders_of_the_places_concerned():
    assert people_in_body(consultation()) == {(LEAD, "convener"), (WANG, "grid_leader"),
                                              (LI, "building_leader"), (HE, "building_leader")}
    assert people_in_body(consultation("building", B2)) == {(LEAD, "convener"), (WANG, "grid_leader"),
                                                            (LI, "building_leader")}
    everyone = people_in_body(consultation("community", None))
    assert (ZHAO, "grid_leader") in everyone and (ZHAO, "building_leader") in everyone and len(everyone) == 6
    assert people_in_body(consultation("community", "community-1")) == everyone  # as proposals name it
    with pytest.raises(InvalidInput, match="not in the directory"):
        standing_body("building", "nowhere", DIRECTORY)
    with pytest.raises(InvalidInput, match="takes no scope_id"):
        standing_body("community", COMPOUND, DIRECTORY)


def test_without_a_party_lead_there_is_no_convener_until_one_is_designated():
    c = Consultation.open(
        id=uuid.uuid4(), community="community-1", case="case-1", proposal="p", scope="building", scope_id=B2,
        category="drainage", title_commitment=None, body_commitment=None,
        body=standing_body("building", B2, dict(DIRECTORY, people=DIRECTORY["people"][1:])), rules=DEFAULT_RULES)
    assert c.convener is None and c.convened_by == "proposal"
    with pytest.raises(Conflict, match="no convener yet"):
        c.invite(WANG, QIAN, "property_company")
    c.designate_convener(LEAD)
    c.invite(LEAD, QIAN, "property_company")
    assert c.roles_of(QIAN) == []  # invited is not yet a member
    c.answer_invitation(QIAN, "property_company", True, None)
    assert c.roles_of(QIAN) == ["property_company"]


def test_a_designated_convener_replaces_the_lead():
    c = consultation()
    c.designate_convener(ZHANG)
    assert c.convener == ZHANG and c.roles_of(LEAD) == [] and c.roles_of(ZHANG) == ["convener"]
    with pytest.raises(Forbidden):
        c.invite(LEAD, QIAN, "expert")


def test_invitations_take_only_the_invited_roles_once():
    c = consultation()
    with pytest.raises(InvalidInput, match="roles"):
        c.invite(LEAD, QIAN, "grid_leader")
    c.invite(LEAD, QIAN, "property_company")
    with pytest.raises(Conflict):
        c.invite(LEAD, QIAN, "property_company")
    c.answer_invitation(QIAN, "property_company", False, "r" * 64)
    with pytest.raises(Conflict, match="no open invitation"):
        c.answer_invitation(QIAN, "property_company", True, None)
    c.invite(LEAD, QIAN, "property_company")  # invited again after declining
    assert [type(e).__name__ for e in c.collect_events()] == [
        "ConsultationOpened", "BodyMemberInvited", "InvitationDeclined", "BodyMemberInvited"]


def held_meeting(c: Consultation, attendees, now=T0):
    meeting = c.schedule_meeting(id=uuid.uuid4(), by=c.convener, now=now, starts_at=now + timedelta(days=3),
                                 mode="on_site", place_commitment="p" * 64, agenda_commitments=["a" * 64],
                                 secretary=ZHANG)
    start = now + timedelta(days=3)
    for person in attendees:
        meeting.sign_in(person, c.roles_of(person), person, start)
    return meeting, start


def test_notice_is_exact_to_the_second():
    c = consultation(meeting_notice_days=3)
    with pytest.raises(NoticeTooShort, match="3 days' notice"):
        c.schedule_meeting(id=uuid.uuid4(), by=LEAD, now=T0, starts_at=T0 + timedelta(days=3, seconds=-1),
                           mode="on_site", place_commitment="p" * 64, agenda_commitments=["a" * 64],
                           secretary=ZHANG)
    c.schedule_meeting(id=uuid.uuid4(), by=LEAD, now=T0, starts_at=T0 + timedelta(days=3), mode="online",
                       place_commitment="p" * 64, agenda_commitments=["a" * 64], secretary=ZHANG)


def test_quorum_of_two_thirds_includes_the_boundary():
    # Body: lead, Wang, Li, He, Qian, Zhang = 6 members; 2/3 needs 4.
    c = consultation()
    for person, role in ((QIAN, "property_company"), (ZHANG, "resident")):
        c.invite(LEAD, person, role)
        c.answer_invitation(person, role, True, None)
    meeting, start = held_meeting(c, [LEAD, WANG, QIAN])
    with pytest.raises(QuorumNotMet, match="3 of the body's 6 members are present; the quorum of 2/3 needs 4"):
        meeting.open(c, start)
    meeting.sign_in(LI, c.roles_of(LI), ZHANG, start)
    meeting.open(c, start)
    assert meeting.quorum == {"present": sorted([LEAD, WANG, QIAN, LI]), "body_size": 6, "quorum": "2/3"}


def test_a_meeting_without_the_required_roles_is_refused_even_with_quorum():
    c = consultation()
    meeting, start = held_meeting(c, [LEAD, LI, HE])  # 3 of 4, but no grid leader
    with pytest.raises(RequiredRolesAbsent, match="grid_leader"):
        meeting.open(c, start)
    with pytest.raises(Conflict, match="cannot be opened earlier"):
        held_meeting(c, [])[0].open(c, T0)


def test_a_concluding_meeting_is_refused_at_its_opening_naming_the_conclusions_absent_roles():
    c = consultation(meeting_quorum="1/2", conclusion_required_roles=["convener", "grid_leader", "building_leader"])
    meeting, start = held_meeting(c, [LEAD, WANG])  # the meeting's own roles and quorum are met
    with pytest.raises(RequiredRolesAbsent, match="concluding meeting: .*: building_leader$") as refused:
        meeting.open(c, start, concluding=True)
    assert refused.value.extra["missing_roles"] == ["building_leader"]
    assert meeting.status == "scheduled"
    meeting.sign_in(HE, c.roles_of(HE), HE, start)
    meeting.open(c, start, concluding=True)
    assert meeting.status == "opened"


def test_only_body_members_sign_in_and_only_once():
    c = consultation()
    meeting, start = held_meeting(c, [LEAD])
    with pytest.raises(NotInBody):
        meeting.sign_in(ZHANG, c.roles_of(ZHANG), ZHANG, start)
    with pytest.raises(Conflict, match="already signed in"):
        meeting.sign_in(LEAD, c.roles_of(LEAD), LEAD, start)
    with pytest.raises(Conflict, match="sign-in opens"):
        held_meeting(c, [])[0].sign_in(LEAD, ["convener"], LEAD, T0)


def test_flags_hide_at_the_communitys_number_and_stop_after_review():
    c = consultation()
    comment = c.comment(id=uuid.uuid4(), author=ZHANG, author_roles=["resident"], venue="public", stance="for",
                        parent=None, text_commitment="x" * 64)
    with pytest.raises(Conflict, match="your own"):
        comment.flag(ZHANG, 2)
    comment.flag(LI, 2)
    with pytest.raises(Conflict, match="already flagged"):
        comment.flag(LI, 2)
    assert comment.hidden is None
    comment.flag(HE, 2)
    assert comment.hidden == {"moderator": None, "reason_commitment": None, "automatic": True}
    assert comment.text_commitment == "x" * 64  # the commitment stays
    comment.restore("moderator", "r" * 64)
    with pytest.raises(Conflict, match="reviewed"):
        comment.flag(WANG, 2)
    comment.hide("moderator", "s" * 64)
    with pytest.raises(Conflict, match="hidden"):
        comment.edit(ZHANG, "y" * 64)


def test_zero_flags_to_hide_switches_automatic_hiding_off():
    comment = consultation().comment(id=uuid.uuid4(), author=ZHANG, author_roles=["resident"], venue="public",
                                     stance="question", parent=None, text_commitment="x" * 64)
    for person in (LI, HE, WANG, QIAN):
        comment.flag(person, 0)
    assert comment.hidden is None and len(comment.flaggers) == 4


def test_body_sessions_are_for_members_and_replies_stay_in_their_consultation():
    c, other = consultation(), consultation()
    with pytest.raises(NotInBody):
        c.comment(id=uuid.uuid4(), author=ZHANG, author_roles=[], venue="body", stance="for", parent=None,
                  text_commitment="x" * 64)
    first = c.comment(id=uuid.uuid4(), author=WANG, author_roles=["grid_leader"], venue="body", stance="against",
                      parent=None, text_commitment="x" * 64)
    with pytest.raises(InvalidInput, match="same consultation"):
        other.comment(id=uuid.uuid4(), author=WANG, author_roles=[], venue="public", stance="for", parent=first,
                      text_commitment="y" * 64)
    with pytest.raises(InvalidInput, match="stance"):
        c.comment(id=uuid.uuid4(), author=WANG, author_roles=[], venue="public", stance="angry", parent=None,
                  text_commitment="y" * 64)


def test_minutes_freeze_at_the_first_signature_and_corrections_link_back():
    c = consultation(minutes_signers=["convener", "grid_leader", "building_leader"])
    assert signer_roles(c.rules) == ["convener", "grid_leader", "building_leader"]
    meeting, start = held_meeting(c, [LEAD, WANG, LI])
    meeting.open(c, start)
    with pytest.raises(Forbidden, match="secretary"):
        meeting.record_minutes(LEAD, "m" * 64, signer_roles(c.rules))
    minutes = meeting.record_minutes(ZHANG, "m" * 64, signer_roles(c.rules))
    assert minutes.id == minutes_id(meeting.id)
    minutes.revise(ZHANG, "n" * 64)
    with pytest.raises(Forbidden, match="none of these roles"):
        minutes.sign(QIAN, c.roles_of(QIAN))
    minutes.sign(LEAD, c.roles_of(LEAD))
    with pytest.raises(Conflict, match="signed"):
        minutes.revise(ZHANG, "o" * 64)
    minutes.sign(WANG, c.roles_of(WANG))
    assert not minutes.confirmed and minutes.outstanding_roles() == ["building_leader"]
    minutes.sign(LI, c.roles_of(LI))
    assert minutes.confirmed
    with pytest.raises(MinutesAlreadyConfirmed, match="record a correction"):
        minutes.revise(ZHANG, "o" * 64)
    correction = minutes.correct(ZHANG, "c" * 64)
    assert correction.corrects == str(minutes.id) and correction.id == minutes_id(minutes.id)
    assert minutes.text_commitment == "n" * 64 and not correction.confirmed
