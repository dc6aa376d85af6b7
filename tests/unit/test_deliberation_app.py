"""The deliberation application on SQLite (no broker): permissions, texts and commitments,
the projection, the conclusion's event, and the consumer's opening from ProposalQualified."""
from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from services.common import clock, config
from services.common.aggregate import command_context
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.common.relay import read_envelopes
from services.common.store import state_engine
from services.common.tables import create_all, texts
from services.communities.domain import DEFAULT_RULES
from services.deliberation import tables
from services.common.caller import Caller
from services.deliberation.application import DeliberationApp
from services.deliberation.domain import MinutesAlreadyConfirmed, NoticeTooShort, QuorumNotMet, RequiredRolesAbsent

from .test_deliberation_domain import B2, COMPOUND, DIRECTORY, HE, LEAD, LI, QIAN, T0, WANG, ZHANG

C = "community-1"
WORKER = "0f000000-0000-0000-0000-000000000099"
OUTSIDER = "0f000000-0000-0000-0000-000000000098"
MODERATOR = "0f000000-0000-0000-0000-000000000097"
NEIGHBOUR = "0f000000-0000-0000-0000-000000000096"  # lives in the compound, holds no role
IN_COMPOUND = {NEIGHBOUR, ZHANG}


def who(person: str, *roles: str) -> Caller:
    return Caller(person, frozenset(roles), lambda scope, scope_id: person in IN_COMPOUND)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSULT_TEST_MODE", "1")
    monkeypatch.delenv("CONSULT_CLOCK_FILE", raising=False)
    clock.set(T0)
    settings = dataclasses.replace(config.load(), data_dir=tmp_path, db="sqlite")
    engine = state_engine("deliberation", settings)
    create_all(engine, tables.metadata)
    application = DeliberationApp(settings, engine)
    yield application
    application.close()
    engine.dispose()
    clock.set(None)


def open_green_space(app, **rules) -> str:
    """Compound 3's lawn: the lead convenes; Qian (property company) and Zhang (resident) join."""
    cid = app.open_topic(who(WORKER, "community_worker"), C, "草坪种菜之争", "Vegetables on the shared lawn",
                         "compound", COMPOUND, "green_space", dict(DEFAULT_RULES, **rules), DIRECTORY)
    for person, role in ((QIAN, "property_company"), (ZHANG, "resident")):
        app.invite(who(LEAD), C, cid, person, role)
        app.answer_invitation(who(person), C, cid, role, True)
    return cid


def log(app) -> list[dict]:
    return read_envelopes(app, "deliberation", 1, 1000)


def stored_text(app, commitment):
    return app.content.records([commitment])[0]


def test_a_topic_opens_its_own_case_with_the_standing_body_and_frozen_rules(app):
    cid = open_green_space(app)
    view = app.consultation_view(C, cid)
    assert view["case"] == cid and view["proposal"] is None and view["convened_by"] == "party_committee"
    assert view["title"] == "草坪种菜之争" and view["convener"] == LEAD
    assert {(m["person"], m["role"], m["status"]) for m in view["body"]} == {
        (LEAD, "convener", "active"), (WANG, "grid_leader", "active"), (LI, "building_leader", "active"),
        (HE, "building_leader", "active"), (QIAN, "property_company", "active"), (ZHANG, "resident", "active")}
    assert view["rules"]["meeting_quorum"] == "2/3"
    opened = log(app)[0]
    assert opened["type"] == "ConsultationOpened" and opened["case"] == cid
    assert "草坪" not in str(opened) and len(opened["data"]["title_commitment"]) == 64
    assert [c["id"] for c in app.list_consultations(C)] == [cid]
    with pytest.raises(Forbidden):
        app.open_topic(who(ZHANG), C, "t", "d", "compound", COMPOUND, "green_space", DEFAULT_RULES, DIRECTORY)
    with pytest.raises(InvalidInput, match="category"):
        app.open_topic(who(WORKER, "community_worker"), C, "t", "d", "compound", COMPOUND, "gardening",
                       DEFAULT_RULES, DIRECTORY)


def test_proposal_qualified_opens_one_consultation_for_the_proposals_case(app):
    proposal = str(uuid.uuid4())
    env = {"type": "ProposalQualified", "community": C, "case": "case-of-proposal", "id": "event-1",
           "data": {"proposal": proposal, "scope": "building", "scope_id": B2, "category": "drainage",
                    "title_commitment": "t" * 64, "body_commitment": "b" * 64, "author": ZHANG, "supports": 3,
                    "threshold": 3}}
    with command_context(community=C, actor="system", case="case-of-proposal", causation="event-1"):
        [consultation] = app.open_for_proposal(env, DEFAULT_RULES, DIRECTORY)
        app.save(consultation)
        assert app.open_for_proposal(env, DEFAULT_RULES, DIRECTORY) == []
    view = app.consultation_view(C, str(consultation.id))
    assert view["proposal"] == proposal and view["case"] == "case-of-proposal" and view["title"] is None
    assert {m["person"] for m in view["body"]} == {LEAD, WANG, LI}


def test_discussion_permissions_stances_threads_and_edit_history(app):
    cid = open_green_space(app)
    first = app.post_comment(who(ZHANG), C, cid, "种菜能美化环境", "for", "body")
    reply = app.post_comment(who(QIAN), C, cid, "草坪是公共绿地", "against", "body", reply_to=first)
    question = app.post_comment(who(NEIGHBOUR), C, cid, "谁来浇水？", "question")
    with pytest.raises(Forbidden, match="body"):
        app.post_comment(who(NEIGHBOUR), C, cid, "我也要在会上说", "for", "body")
    with pytest.raises(Forbidden, match="residents of the consultation's scope"):
        app.post_comment(who(OUTSIDER, "resident"), C, cid, "路过", "neutral")
    app.post_comment(who(WORKER, "community_worker"), C, cid, "请大家文明讨论", "neutral")
    app.edit_comment(who(ZHANG), C, first, "种菜能美化环境，也能增进邻里关系")
    with pytest.raises(Forbidden, match="author"):
        app.edit_comment(who(QIAN), C, first, "改别人的话")
    page = app.comments(C, cid)
    assert [c["id"] for c in page["comments"]][:3] == [first, reply, question]
    assert page["comments"][1]["reply_to"] == first and page["comments"][2]["stance"] == "question"
    assert page["comments"][2]["author_roles"] == ["resident"]
    view = app.comment_view(C, first)
    assert view["text"] == "种菜能美化环境，也能增进邻里关系" and view["edits"] == 1
    assert [h["text"] for h in view["history"]] == ["种菜能美化环境"]
    assert app.comments(C, cid, limit=2)["next"] is not None
    with pytest.raises(NotFound):
        app.comment_view("another-community", first)


def test_posting_never_touches_the_consultation_or_other_comments(app):
    """Why posting cost stays flat: a comment is its own aggregate; the consultation it belongs
    to keeps its version however long the discussion grows."""
    cid = open_green_space(app)
    version = app.repository.get(uuid.UUID(cid)).version
    first = app.post_comment(who(ZHANG), C, cid, "第一条", "for")
    for i in range(50):
        app.post_comment(who(NEIGHBOUR), C, cid, f"回复{i}", "neutral", reply_to=first)
    assert app.repository.get(uuid.UUID(cid)).version == version
    assert app.repository.get(uuid.UUID(first)).version == 1
    assert app.consultation_view(C, cid)["comment_count"] == 51


def test_a_refused_command_leaves_no_text_behind(app):
    cid = open_green_space(app)
    with pytest.raises(Forbidden):
        app.post_comment(who(OUTSIDER), C, cid, "个人信息：某某住在101", "neutral")
    with app.engine.connect() as conn:
        rows = [r for r in conn.execute(texts.select()) if r.body and "101" in r.body]
    assert rows == []


def test_hidden_comment_keeps_its_commitment_and_loses_its_text_in_reads(app):
    cid = open_green_space(app, flags_to_hide=2)
    rude = app.post_comment(who(NEIGHBOUR), C, cid, "粗话", "against")
    with pytest.raises(Forbidden, match="moderator"):
        app.hide_comment(who(WORKER, "community_worker"), C, rude, "不文明")
    app.hide_comment(who(MODERATOR, "moderator"), C, rude, "不文明用语")
    view = app.comment_view(C, rude)
    assert view["hidden"] and view["text"] is None and view["hidden_reason"] == "不文明用语"
    assert app.comments(C, cid)["comments"][0]["text"] is None
    posted = next(e for e in log(app) if e["type"] == "CommentPosted" and e["aggregate"]["id"] == rude)
    hidden = next(e for e in log(app) if e["type"] == "CommentHidden")
    assert view["text_commitment"] == posted["data"]["text_commitment"]
    assert hidden["data"]["automatic"] is False and hidden["actor"] == MODERATOR
    # The text stays in the content store for the auditor's export, checkable against the record.
    assert stored_text(app, view["text_commitment"])["text"] == "粗话"
    app.restore_comment(who(MODERATOR, "moderator"), C, rude, "复核后恢复")
    assert app.comment_view(C, rude)["text"] == "粗话"


def test_flags_hide_a_comment_automatically(app):
    cid = open_green_space(app, flags_to_hide=2)
    comment = app.post_comment(who(ZHANG), C, cid, "有争议的话", "for")
    assert app.flag_comment(who(NEIGHBOUR), C, comment) == {"flags": 1, "hidden": False}
    with pytest.raises(Forbidden):
        app.flag_comment(who(OUTSIDER), C, comment)
    assert app.flag_comment(who(QIAN), C, comment) == {"flags": 2, "hidden": True}
    view = app.comment_view(C, comment)
    assert view["hidden"] and view["hidden_automatically"] and view["text"] is None and view["flags"] == 2


def test_options_amendments_and_the_final_list(app):
    cid = open_green_space(app)
    restore = app.propose_option(who(QIAN), C, cid, "恢复草坪", "Restore the whole lawn")
    plots = app.propose_option(who(ZHANG), C, cid, "划定菜地", "Allow vegetable plots")
    with pytest.raises(Forbidden):
        app.propose_option(who(NEIGHBOUR), C, cid, "别的", "something")
    limit = app.propose_amendment(who(WANG), C, cid, plots, "Plots on at most 10 m², by lot, for one year",
                                  "限定面积的菜地")
    fence = app.propose_amendment(who(QIAN), C, cid, plots, "Fence the plots at residents' cost")
    with pytest.raises(Conflict, match="pending"):
        app.finalise_options(who(LEAD), C, cid, [restore, plots])
    with pytest.raises(Forbidden, match="convener"):
        app.rule_on_amendment(who(WANG), C, cid, limit, True, "ok")
    app.rule_on_amendment(who(LEAD), C, cid, limit, True, "keeps most of the lawn green")
    app.rule_on_amendment(who(LEAD), C, cid, fence, False, "the cost would fall on too few households")
    app.finalise_options(who(LEAD), C, cid, [restore, plots])
    view = app.consultation_view(C, cid)
    amended = next(o for o in view["options"] if o["id"] == plots)
    assert amended["title"] == "限定面积的菜地" and amended["description"].startswith("Plots on at most")
    assert amended["amended_by"][0]["title"] == "划定菜地"
    assert {a["status"]: a["reason"] for a in view["amendments"]} == {
        "accepted": "keeps most of the lawn green", "rejected": "the cost would fall on too few households"}
    assert view["final_options"] == [restore, plots]
    with pytest.raises(Conflict, match="final"):
        app.propose_option(who(QIAN), C, cid, "late", "too late")


def schedule(app, cid, days=3, secretary=WORKER):
    return app.schedule_meeting(who(LEAD), C, cid, clock.format(clock.now() + timedelta(days=days)), "on_site",
                                "社区活动室", ["介绍双方意见", "讨论方案"], secretary)


def test_meeting_notice_roles_quorum_minutes_and_correction(app):
    cid = open_green_space(app)
    with pytest.raises(NoticeTooShort, match="at least 3 days"):
        schedule(app, cid, days=2)
    meeting = schedule(app, cid)
    clock.set(T0 + timedelta(days=3))
    for person in (LEAD, QIAN, ZHANG, LI):
        app.sign_in(who(person), C, meeting)
    with pytest.raises(RequiredRolesAbsent, match="grid_leader"):
        app.open_meeting(who(LEAD), C, meeting)
    with pytest.raises(Forbidden, match="secretary or the convener"):
        app.sign_in(who(ZHANG), C, meeting, WANG)
    app.sign_in(who(WORKER), C, meeting, WANG)  # the secretary records Wang's paper sign-in
    quorum = app.meeting_view(C, meeting)
    assert [a["person"] for a in quorum["attendance"]][-1] == WANG
    assert quorum["attendance"][-1]["recorded_by"] == WORKER
    app.open_meeting(who(LEAD), C, meeting)
    with pytest.raises(Forbidden):
        app.record_minutes(who(LEAD), C, meeting, "纪要")
    minutes = app.record_minutes(who(WORKER), C, meeting, "双方陈述意见，形成两个方案。")
    app.sign_minutes(who(LEAD), C, minutes)
    app.sign_minutes(who(WANG), C, minutes)
    view = app.minutes_view(C, minutes)
    assert view["confirmed"] and [s["person"] for s in view["signatures"]] == [LEAD, WANG]
    with pytest.raises(MinutesAlreadyConfirmed):
        app.revise_minutes(who(WORKER), C, minutes, "改过的纪要")
    correction = app.correct_minutes(who(WORKER), C, minutes, "更正：方案二由张伟提出。")
    with pytest.raises(Conflict, match="already have a correction"):
        app.correct_minutes(who(WORKER), C, minutes, "再次更正")
    assert app.minutes_view(C, minutes)["corrected_by"] == correction
    assert app.minutes_view(C, minutes)["text"] == "双方陈述意见，形成两个方案。"
    assert app.minutes_view(C, correction)["corrects"] == minutes
    assert [r["id"] for r in app.meeting_view(C, meeting)["minutes"]] == [minutes, correction]


def test_quorum_refusal_names_the_numbers(app):
    cid = open_green_space(app)
    meeting = schedule(app, cid)
    clock.set(T0 + timedelta(days=3))
    for person in (LEAD, WANG, QIAN):
        app.sign_in(who(person), C, meeting)
    with pytest.raises(QuorumNotMet) as refused:
        app.open_meeting(who(LEAD), C, meeting)
    assert refused.value.extra == {"present": 3, "body": 6, "quorum": "2/3", "needed": 4}


def held_meeting_with_minutes(app, cid) -> str:
    meeting = schedule(app, cid)
    clock.set(T0 + timedelta(days=3))
    for person in (LEAD, WANG, LI, ZHANG):
        app.sign_in(who(person), C, meeting)
    app.open_meeting(who(LEAD), C, meeting)
    minutes = app.record_minutes(who(WORKER), C, meeting, "纪要")
    return meeting, minutes


def test_conclusion_vote_needed_carries_what_the_decision_stage_consumes(app):
    cid = open_green_space(app)
    a = app.propose_option(who(QIAN), C, cid, "恢复草坪", "Restore")
    b = app.propose_option(who(ZHANG), C, cid, "划定菜地", "Plots")
    meeting, minutes = held_meeting_with_minutes(app, cid)
    with pytest.raises(Conflict, match="finalise"):
        app.conclude(who(LEAD), C, cid, "vote_needed", "两个方案交付表决", meeting)
    app.finalise_options(who(LEAD), C, cid, [a, b])
    with pytest.raises(Conflict, match="minutes must be confirmed"):
        app.conclude(who(LEAD), C, cid, "vote_needed", "两个方案交付表决", meeting)
    app.sign_minutes(who(LEAD), C, minutes)
    app.sign_minutes(who(WANG), C, minutes)
    with pytest.raises(InvalidInput, match="suggested_rule"):
        app.conclude(who(LEAD), C, cid, "vote_needed", "s", meeting, suggested_rule="owners_maybe")
    with pytest.raises(Forbidden, match="convener"):
        app.conclude(who(WANG), C, cid, "vote_needed", "s", meeting)
    app.conclude(who(LEAD), C, cid, "vote_needed", "两个方案交付表决", meeting, suggested_rule="owners_major")
    concluded = log(app)[-1]
    assert concluded["type"] == "DeliberationConcluded" and concluded["case"] == cid
    d = concluded["data"]
    assert d["consultation"] == cid and d["proposal"] is None and d["outcome"] == "vote_needed"
    assert (d["scope"], d["scope_id"], d["category"]) == ("compound", COMPOUND, "green_space")
    assert [o["id"] for o in d["options"]] == [a, b] and d["reason_commitment"] is None
    assert set(d["options"][0]) == {"id", "title_commitment", "description_commitment"}
    assert d["suggested_rule"] == "owners_major" and len(d["summary_commitment"]) == 64 and d["convener"] == LEAD
    view = app.consultation_view(C, cid)
    assert view["status"] == "concluded" and view["conclusion"]["summary"] == "两个方案交付表决"
    assert [o["title"] for o in view["conclusion"]["options"]] == ["恢复草坪", "划定菜地"]
    with pytest.raises(Conflict, match="concluded"):
        app.post_comment(who(ZHANG), C, cid, "还有话说", "for")


def test_agreed_needs_a_reason_and_the_conclusion_roles_present(app):
    cid = open_green_space(app)
    meeting = schedule(app, cid)
    clock.set(T0 + timedelta(days=3))
    for person in (LEAD, WANG, QIAN, ZHANG):  # no building leader
        app.sign_in(who(person), C, meeting)
    app.open_meeting(who(LEAD), C, meeting)
    minutes = app.record_minutes(who(WORKER), C, meeting, "纪要")
    app.sign_minutes(who(LEAD), C, minutes)
    app.sign_minutes(who(WANG), C, minutes)
    with pytest.raises(InvalidInput, match="reason"):
        app.conclude(who(LEAD), C, cid, "agreed", "大家同意恢复草坪", meeting)
    with pytest.raises(RequiredRolesAbsent, match="building_leader"):
        app.conclude(who(LEAD), C, cid, "agreed", "大家同意恢复草坪", meeting, reason="种菜户自愿退出")


def test_agreed_outcome(app):
    cid = open_green_space(app)
    meeting, minutes = held_meeting_with_minutes(app, cid)
    app.sign_minutes(who(LEAD), C, minutes)
    app.sign_minutes(who(WANG), C, minutes)
    app.conclude(who(LEAD), C, cid, "agreed", "大家同意恢复草坪", meeting, reason="种菜户自愿退出")
    d = log(app)[-1]["data"]
    assert d["outcome"] == "agreed" and d["options"] == [] and len(d["reason_commitment"]) == 64
    assert app.consultation_view(C, cid)["conclusion"]["reason"] == "种菜户自愿退出"


def test_no_action_needs_a_reason_and_ends_the_case(app):
    """Issue 17.1: the body may conclude that nothing needs doing; the reason is recorded, and the
    conclusion is the ending the actions service closes the case by."""
    from rules.endings import ending_of

    cid = open_green_space(app)
    meeting, minutes = held_meeting_with_minutes(app, cid)
    app.sign_minutes(who(LEAD), C, minutes)
    app.sign_minutes(who(WANG), C, minutes)
    with pytest.raises(InvalidInput, match="nothing needs doing"):
        app.conclude(who(LEAD), C, cid, "no_action", "维持现状", meeting)
    app.conclude(who(LEAD), C, cid, "no_action", "维持现状", meeting, reason="草坪已自然恢复")
    env = log(app)[-1]
    assert env["type"] == "DeliberationConcluded" and env["data"]["outcome"] == "no_action"
    ending = ending_of(env)
    assert (ending.outcome, ending.stage, ending.reason_commitment) == (
        "no_action", "deliberation", env["data"]["reason_commitment"])
