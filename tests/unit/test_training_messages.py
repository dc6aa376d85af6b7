"""Every message of a training deployment says so, in its subject and at the top of its body."""
from __future__ import annotations

from services.notifications import templates


def test_every_message_of_a_training_deployment_says_so(monkeypatch):
    context = {"title": "疏通排水沟", "closes_at": "2026-12-01 18:00", "link": "http://x/ballots/1"}
    subject, body = templates.render("BallotOpened", "zh-CN", context, training=True)
    assert subject == "【培训】【投票开始】疏通排水沟"
    assert body.startswith("【培训演练】本消息来自培训部署（演练用的平台），不是真实通知，请勿据此行事。\n\n您好！")
    subject, body = templates.render("BallotOpened", "en", context, training=True)
    assert subject == "[TRAINING] Voting open: 疏通排水沟" and body.startswith("TRAINING: this message comes from")
    plain = templates.render("BallotOpened", "zh-CN", context, training=False)
    assert plain[0] == "【投票开始】疏通排水沟" and "培训" not in plain[1]
    monkeypatch.setenv("CONSULT_DEPLOYMENT", "training")  # unsaid: the process's own deployment
    assert templates.render("BallotOpened", "zh-CN", context)[0].startswith("【培训】")
    monkeypatch.setenv("CONSULT_DEPLOYMENT", "production")
    assert templates.render("BallotOpened", "zh-CN", context) == plain
