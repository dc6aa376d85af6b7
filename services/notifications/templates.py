"""Message templates of the notifications service, in zh-CN (default) and en.

``render(event_type, lang, context) -> (subject, body)``.

* ``event_type`` is the envelope ``type`` (``"BallotOpened"`` ...); an unknown type
  raises ``KeyError``.
* ``lang`` is resolved by :func:`resolve_lang`: ``zh*`` gives zh-CN, ``en*`` gives en,
  anything else (or None) the default zh-CN.
* ``context`` holds plain strings prepared by the service (titles already looked up,
  times already formatted in the community's time zone, links). Values are inserted
  as they are, never interpreted as template text.
* A key a line needs and the context lacks (missing, None or blank) never crashes:
  on a line marked optional (``?`` in the tables below) the whole line is left out; on
  any other line the value is rendered as a placeholder, "（未提供）" / "(not provided)".
* ``outcome`` values with a known label (``admissible``, ``resolved`` ...) are shown
  translated; other values are shown as given.

:func:`template_fields` tells the service which keys a type uses.

A training deployment's messages say so: :func:`mark_training` puts a marker before the subject
and a line at the top of the body (``render`` does it for every message of such a deployment).
"""

from __future__ import annotations

import re
import string
from typing import Any, Mapping, Optional

__all__ = [
    "DEFAULT_LANG",
    "mark_training",
    "LANGUAGES",
    "EVENT_TYPES",
    "PLACEHOLDER",
    "render",
    "resolve_lang",
    "template_fields",
]

DEFAULT_LANG = "zh-CN"
LANGUAGES = ("zh-CN", "en")
PLACEHOLDER = {"zh-CN": "（未提供）", "en": "(not provided)"}

# A body line starting with "?" is optional: it is dropped when any key it uses is
# missing. Lines are separated by "\n"; runs of blank lines are collapsed afterwards.

_FOOTER = {
    "zh-CN": (
        "\n\n——\n"
        "本消息由社区议事平台自动发送，请勿直接回复。\n"
        "?管理通知设置：{preferences_link}"
    ),
    "en": (
        "\n\n-- \n"
        "This message was sent automatically by the community consultation platform; "
        "please do not reply to it.\n"
        "?Notification settings: {preferences_link}"
    ),
}

_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "zh-CN": {
        "outcome": {
            "admissible": "予以受理",
            "inadmissible": "不予受理",
            "resolved": "已解决",
            "partly_resolved": "部分解决",
            "unresolved": "未解决",
            "rejected": "未通过",
            "withdrawn": "已撤回",
            "expired": "已过期",
            "upheld": "异议成立",
            "dismissed": "异议不成立",
            "merged": "已合并至其他事项",
            "no_action": "经议事无需行动",
            "annulled": "表决已撤销，不再重新表决",
            "closed_by_lead": "由党组织书记办结",
        },
    },
    "en": {
        "outcome": {
            "admissible": "admissible",
            "inadmissible": "inadmissible",
            "resolved": "resolved",
            "partly_resolved": "partly resolved",
            "unresolved": "not resolved",
            "rejected": "rejected",
            "withdrawn": "withdrawn",
            "expired": "expired",
            "upheld": "upheld",
            "dismissed": "dismissed",
            "merged": "merged into another case",
            "no_action": "no action needed, as the consultation concluded",
            "annulled": "ballot annulled, not to be re-run",
            "closed_by_lead": "closed by the party-committee lead",
        },
    },
}

# ProposalScreened has one template per outcome; the others have one each.
_SELECTOR = {"ProposalScreened": "outcome"}

_TEMPLATES: dict[str, dict[str, Any]] = {
    "ProposalSubmitted": {
        "zh-CN": (
            "【新提议】{title}",
            "您好！\n\n"
            "您所在的范围内有居民提出了一项新提议：“{title}”。\n"
            "?范围：{scope}\n"
            "?支持征集截止：{support_deadline}\n\n"
            "?查看详情并表示支持：{link}",
        ),
        "en": (
            "New proposal: {title}",
            "Hello,\n\n"
            'A new proposal has been submitted in your area: "{title}".\n'
            "?Scope: {scope}\n"
            "?Support can be shown until: {support_deadline}\n\n"
            "?Read it and show your support: {link}",
        ),
    },
    "ProposalScreened": {
        "zh-CN": {
            "admissible": (
                "【提议已受理】{title}",
                "您好！\n\n"
                "提议“{title}”经审核，予以受理。\n"
                "?说明：{reason}\n\n"
                "?查看详情：{link}",
            ),
            "inadmissible": (
                "【提议未予受理】{title}",
                "您好！\n\n"
                "提议“{title}”经审核，不予受理。\n"
                "理由：{reason}\n\n"
                "如有疑问，可以联系社区工作者，或修改后重新提出。\n"
                "?查看详情：{link}",
            ),
            None: (
                "【提议审核结果】{title}",
                "您好！\n\n"
                "提议“{title}”的审核结果：{outcome}。\n"
                "?理由：{reason}\n\n"
                "?查看详情：{link}",
            ),
        },
        "en": {
            "admissible": (
                "Proposal admissible: {title}",
                "Hello,\n\n"
                'The proposal "{title}" has been screened and found admissible.\n'
                "?Note: {reason}\n\n"
                "?Details: {link}",
            ),
            "inadmissible": (
                "Proposal inadmissible: {title}",
                "Hello,\n\n"
                'The proposal "{title}" has been screened and found inadmissible.\n'
                "Reason: {reason}\n\n"
                "If you have questions, contact a community worker, or revise the "
                "proposal and submit it again.\n"
                "?Details: {link}",
            ),
            None: (
                "Proposal screened: {title}",
                "Hello,\n\n"
                'Screening result for the proposal "{title}": {outcome}.\n'
                "?Reason: {reason}\n\n"
                "?Details: {link}",
            ),
        },
    },
    "ProposalQualified": {
        "zh-CN": (
            "【提议获得足够支持】{title}",
            "您好！\n\n"
            "提议“{title}”已获得足够的居民支持，将进入议事环节。\n"
            "?支持情况：{supports}（门槛：{threshold}）\n\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Proposal qualified: {title}",
            "Hello,\n\n"
            'The proposal "{title}" has gathered enough support and moves on to '
            "deliberation.\n"
            "?Support: {supports} (threshold: {threshold})\n\n"
            "?Details: {link}",
        ),
    },
    "ProposalExpired": {
        "zh-CN": (
            "【提议已过期】{title}",
            "您好！\n\n"
            "提议“{title}”未能在截止时间前获得足够支持，已过期。\n"
            "?截止时间：{deadline}\n"
            "?支持情况：{supports}（门槛：{threshold}）\n\n"
            "如问题仍未解决，可以重新提出提议。\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Proposal expired: {title}",
            "Hello,\n\n"
            'The proposal "{title}" did not gather enough support before its deadline '
            "and has expired.\n"
            "?Deadline: {deadline}\n"
            "?Support: {supports} (threshold: {threshold})\n\n"
            "If the problem remains, a new proposal can be raised.\n"
            "?Details: {link}",
        ),
    },
    "ProposalWithdrawn": {
        "zh-CN": (
            "【提议已撤回】{title}",
            "您好！\n\n"
            "提议“{title}”已由提议人撤回。\n"
            "?说明：{reason}\n\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Proposal withdrawn: {title}",
            "Hello,\n\n"
            'The proposal "{title}" has been withdrawn by its proposer.\n'
            "?Note: {reason}\n\n"
            "?Details: {link}",
        ),
    },
    "ConsultationOpened": {
        "zh-CN": (
            "【议事邀请】{title}",
            "您好！\n\n"
            "关于“{title}”的社区议事已经开始，您是本次议事的参与方。\n"
            "?您的身份：{role}\n"
            "?召集人：{convener}\n\n"
            "?请查阅材料并参与讨论：{link}",
        ),
        "en": (
            "Invitation to a consultation: {title}",
            "Hello,\n\n"
            'The community consultation on "{title}" has opened, and you are one of '
            "its participants.\n"
            "?Your role: {role}\n"
            "?Convener: {convener}\n\n"
            "?Read the material and join the discussion: {link}",
        ),
    },
    "MeetingScheduled": {
        "zh-CN": (
            "【议事会议通知】{title}",
            "您好！\n\n"
            "关于“{title}”的议事会议已安排：\n"
            "时间：{starts_at}\n"
            "地点：{place}\n"
            "?议程：{agenda}\n\n"
            "请准时参加。\n"
            "?会议材料：{link}",
        ),
        "en": (
            "Meeting scheduled: {title}",
            "Hello,\n\n"
            'A meeting on "{title}" has been scheduled.\n'
            "Time: {starts_at}\n"
            "Place: {place}\n"
            "?Agenda: {agenda}\n\n"
            "Please attend on time.\n"
            "?Meeting material: {link}",
        ),
    },
    "BallotOpened": {
        "zh-CN": (
            "【投票开始】{title}",
            "您好！\n\n"
            "关于“{title}”的表决已经开始，您可以参加投票。\n"
            "投票截止时间：{closes_at}\n"
            "?表决规则：{rule}\n\n"
            "?前往投票：{link}",
        ),
        "en": (
            "Voting open: {title}",
            "Hello,\n\n"
            'Voting on "{title}" is open, and you may vote.\n'
            "Voting closes: {closes_at}\n"
            "?Decision rule: {rule}\n\n"
            "?Vote here: {link}",
        ),
    },
    "BallotClosingSoon": {
        "zh-CN": (
            "【投票即将截止】{title}",
            "您好！\n\n"
            "关于“{title}”的表决将于 {closes_at} 截止（不足24小时）。"
            "如您尚未投票，请尽快投票。\n\n"
            "?前往投票：{link}",
        ),
        "en": (
            "Voting closes soon: {title}",
            "Hello,\n\n"
            'Voting on "{title}" closes at {closes_at}, in less than 24 hours. '
            "If you have not voted yet, please do so soon.\n\n"
            "?Vote here: {link}",
        ),
    },
    "ResolutionAdopted": {
        "zh-CN": (
            "【决议通过】{title}",
            "您好！\n\n"
            "关于“{title}”的表决结果：通过。\n"
            "?表决情况：{result}\n"
            "?公示期至 {publicity_ends_at}，公示期内可以提出异议。\n\n"
            "?查看决议：{link}",
        ),
        "en": (
            "Resolution adopted: {title}",
            "Hello,\n\n"
            'The vote on "{title}" adopted the resolution.\n'
            "?Result: {result}\n"
            "?Publicity period ends: {publicity_ends_at}; objections may be raised "
            "until then.\n\n"
            "?Read the resolution: {link}",
        ),
    },
    "ResolutionRejected": {
        "zh-CN": (
            "【决议未通过】{title}",
            "您好！\n\n"
            "关于“{title}”的表决结果：未通过。\n"
            "?表决情况：{result}\n"
            "?原因：{reason}\n\n"
            "如问题仍未解决，可以发起新一轮提议。\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Resolution rejected: {title}",
            "Hello,\n\n"
            'The vote on "{title}" did not adopt the resolution.\n'
            "?Result: {result}\n"
            "?Reason: {reason}\n\n"
            "If the problem remains, a new round can be started with a new proposal.\n"
            "?Details: {link}",
        ),
    },
    "ResolutionFinal": {
        "zh-CN": (
            "【决议已生效】{title}",
            "您好！\n\n"
            "关于“{title}”的决议公示期已满，决议已成为最终决议。\n"
            "?最终结果：{result}\n\n"
            "?查看决议：{link}",
        ),
        "en": (
            "Resolution final: {title}",
            "Hello,\n\n"
            'The publicity period of the resolution on "{title}" has ended; the '
            "resolution is now final.\n"
            "?Outcome: {result}\n\n"
            "?Read the resolution: {link}",
        ),
    },
    "TaskAssigned": {
        "zh-CN": (
            "【新任务】{task}",
            "您好！\n\n"
            "您（或您所在的单位）被指派了一项任务：{task}\n"
            "?所属事项：“{title}”\n"
            "?完成期限：{due_at}\n"
            "?任务说明：{description}\n\n"
            "?查看任务并报告进展：{link}",
        ),
        "en": (
            "New task: {task}",
            "Hello,\n\n"
            "You (or your organisation) have been assigned a task: {task}\n"
            '?Case: "{title}"\n'
            "?Due: {due_at}\n"
            "?Description: {description}\n\n"
            "?See the task and report progress: {link}",
        ),
    },
    "TaskOverdue": {
        "zh-CN": (
            "【任务已逾期】{task}",
            "您好！\n\n"
            "任务“{task}”已于 {due_at} 到期，尚未完成。\n"
            "?所属事项：“{title}”\n"
            "?负责方：{assignee}\n\n"
            "请尽快报告进展或说明原因。\n"
            "?查看任务：{link}",
        ),
        "en": (
            "Task overdue: {task}",
            "Hello,\n\n"
            'The task "{task}" was due {due_at} and is not done yet.\n'
            '?Case: "{title}"\n'
            "?Responsible: {assignee}\n\n"
            "Please report progress or explain the delay as soon as possible.\n"
            "?See the task: {link}",
        ),
    },
    "EvaluationOpened": {
        "zh-CN": (
            "【实施结果公开，请评议】{title}",
            "您好！\n\n"
            "“{title}”的行动已完成，实施结果已公开。请您对结果进行满意度评议。\n"
            "评议截止时间：{closes_at}\n\n"
            "?查看结果并评议：{link}",
        ),
        "en": (
            "Result disclosed, please evaluate: {title}",
            "Hello,\n\n"
            'The action on "{title}" is done and its result has been disclosed. Please say how '
            "satisfied you are with it.\n"
            "Evaluation closes: {closes_at}\n\n"
            "?Read the result and evaluate: {link}",
        ),
    },
    "EvaluationClosingSoon": {
        "zh-CN": (
            "【评议即将截止】{title}",
            "您好！\n\n"
            "“{title}”的满意度评议将于 {closes_at} 截止（不足48小时），您尚未评议。\n\n"
            "?前往评议：{link}",
        ),
        "en": (
            "Evaluation closes soon: {title}",
            "Hello,\n\n"
            'The evaluation of "{title}" closes at {closes_at}, in less than 48 hours, and you have '
            "not evaluated yet.\n\n"
            "?Evaluate here: {link}",
        ),
    },
    "EvaluationExtended": {
        "zh-CN": (
            "【评议回应不足，已延长】{title}",
            "您好！\n\n"
            "“{title}”的满意度评议回应人数不足（{respondents}/{denominator}，最低回应比例 {min_response_share}），"
            "评议期已延长一次，至 {closes_at}。请协助动员居民参与评议。\n\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Too few evaluations, window extended: {title}",
            "Hello,\n\n"
            'Too few residents evaluated "{title}" ({respondents} of {denominator}; the minimum response '
            "share is {min_response_share}). The evaluation has been extended once, until {closes_at}. "
            "Please help residents take part.\n\n"
            "?Details: {link}",
        ),
    },
    "PlanReopened": {
        "zh-CN": (
            "【行动重新开启】{title}",
            "您好！\n\n"
            "居民对“{title}”实施结果的评议未通过，行动计划已重新开启，将安排整改。\n\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Action reopened: {title}",
            "Hello,\n\n"
            'Residents found the result of "{title}" unsatisfactory: the action plan has been reopened '
            "for remedial work.\n\n"
            "?Details: {link}",
        ),
    },
    "FollowUpOpened": {
        "zh-CN": (
            "【跟进提议】{title}",
            "您好！\n\n"
            "因满意度评议未通过，平台已代居民提出跟进提议：“{title}”，等待社区工作者审查。\n\n"
            "?查看跟进提议：{link}",
        ),
        "en": (
            "Follow-up proposal: {title}",
            "Hello,\n\n"
            'Because the evaluation did not pass, the platform has raised a follow-up proposal on the '
            'residents\' behalf: "{title}". A community worker will screen it.\n\n'
            "?See the follow-up: {link}",
        ),
    },
    "MeetingCancelled": {
        "zh-CN": (
            "【议事会议取消】{title}",
            "您好！\n\n"
            "关于“{title}”、原定于 {starts_at} 的议事会议已取消。\n"
            "?原因：{reason}\n\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Meeting cancelled: {title}",
            "Hello,\n\n"
            'The meeting on "{title}" planned for {starts_at} has been cancelled.\n'
            "?Reason: {reason}\n\n"
            "?Details: {link}",
        ),
    },
    "MinutesAwaitingSignature": {
        "zh-CN": (
            "【会议纪要待您签字】{title}",
            "您好！\n\n"
            "关于“{title}”的会议纪要已记录，需要您以{role}身份核对并签字确认。\n\n"
            "?查看并签字：{link}",
        ),
        "en": (
            "Minutes awaiting your signature: {title}",
            "Hello,\n\n"
            'The minutes of the meeting on "{title}" have been recorded and await your signature as '
            "{role}.\n\n"
            "?Read and sign: {link}",
        ),
    },
    "ObjectionRuled": {
        "zh-CN": (
            "【异议处理结果】{title}",
            "您好！\n\n"
            "您对“{title}”表决结果提出的异议已有处理结果：{outcome}。\n"
            "?理由：{reason}\n\n"
            "?查看详情：{link}",
        ),
        "en": (
            "Your objection was ruled on: {title}",
            "Hello,\n\n"
            'Your objection to the vote on "{title}" has been ruled on: {outcome}.\n'
            "?Reasons: {reason}\n\n"
            "?Details: {link}",
        ),
    },
    "ProposalMerged": {
        "zh-CN": (
            "【提议已合并】{title}",
            "您好！\n\n"
            "提议“{title}”与另一项相同的提议合并，已有的支持一并转入。\n\n"
            "?查看合并后的提议：{link}",
        ),
        "en": (
            "Proposal merged: {title}",
            "Hello,\n\n"
            'The proposal "{title}" has been merged with another one on the same matter; its supports '
            "were carried over.\n\n"
            "?See the merged proposal: {link}",
        ),
    },
    "CaseClosed": {
        "zh-CN": (
            "【事项已办结】{title}",
            "您好！\n\n"
            "关于“{title}”的事项已办结。\n"
            "结果：{outcome}\n"
            "理由：{reason}\n\n"
            "如对结果不满意，您可以提出评价或异议，也可以发起新一轮提议。\n"
            "?查看全过程记录：{link}",
        ),
        "en": (
            "Case closed: {title}",
            "Hello,\n\n"
            'The case "{title}" has been closed.\n'
            "Outcome: {outcome}\n"
            "Reasons: {reason}\n\n"
            "If you are not satisfied with the result, you can leave an evaluation or "
            "an objection, or start a new round with a new proposal.\n"
            "?See the full record: {link}",
        ),
    },
}

EVENT_TYPES: tuple[str, ...] = tuple(_TEMPLATES)

TRAINING_MARK = {
    "zh-CN": ("【培训】", "【培训演练】本消息来自培训部署（演练用的平台），不是真实通知，请勿据此行事。"),
    "en": ("[TRAINING] ", "TRAINING: this message comes from a training deployment (a platform for practice); it is "
                          "not a real notice, so do not act on it."),
}


def mark_training(subject: str, body: str, lang: Optional[str], training: Optional[bool] = None) -> tuple[str, str]:
    """``(subject, body)`` marked as a training deployment's, when it is one (``training`` None:
    this process's deployment, CONSULT_DEPLOYMENT)."""
    if training is None:
        from services.common.config import load

        training = load().training
    if not training:
        return subject, body
    prefix, line = TRAINING_MARK[resolve_lang(lang)]
    return prefix + subject, f"{line}\n\n{body}"


_FORMATTER = string.Formatter()


def resolve_lang(lang: Optional[str]) -> str:
    """``zh``, ``zh_CN``, ``zh-Hans`` ... -> ``zh-CN``; ``en-GB`` ... -> ``en``;
    anything else, or None -> the default ``zh-CN``."""
    tag = (lang or "").strip().replace("_", "-").lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return DEFAULT_LANG


class _Defaulting(dict):
    """Mapping for ``str.format_map`` that renders missing keys as a placeholder."""

    def __init__(self, values: Mapping[str, str], placeholder: str) -> None:
        super().__init__(values)
        self.placeholder = placeholder

    def __missing__(self, key: str) -> str:
        return self.placeholder


def _fields(line: str) -> list[str]:
    return [name for _, name, _, _ in _FORMATTER.parse(line) if name is not None]


def _clean_context(context: Optional[Mapping[str, Any]], lang: str) -> dict[str, str]:
    values: dict[str, str] = {}
    labels = _LABELS[lang]
    for key, value in (context or {}).items():
        if value is None:
            continue
        text = str(value).strip()
        if not text:
            continue
        known = labels.get(key, {})
        values[str(key)] = known.get(text.lower(), text)
    return values


def _fill(template: str, values: Mapping[str, str], placeholder: str) -> str:
    lines = []
    mapping = _Defaulting(values, placeholder)
    for line in template.split("\n"):
        if line.startswith("?"):
            line = line[1:]
            if any(name not in values for name in _fields(line)):
                continue
        lines.append(line.format_map(mapping))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _select(event_type: str, lang: str, context: Mapping[str, Any]) -> tuple[str, str]:
    entry = _TEMPLATES[event_type][lang]
    key = _SELECTOR.get(event_type)
    if key is None:
        return entry
    choice = str((context or {}).get(key) or "").strip().lower()
    return entry.get(choice, entry[None])


def render(
    event_type: str, lang: Optional[str], context: Optional[Mapping[str, Any]],
    training: Optional[bool] = None,
) -> tuple[str, str]:
    """``(subject, body)`` for ``event_type`` in ``lang``, marked on a training deployment
    (``training`` None: this process's). KeyError for unknown types."""
    if event_type not in _TEMPLATES:
        raise KeyError(event_type)
    lang = resolve_lang(lang)
    subject_t, body_t = _select(event_type, lang, context or {})
    values = _clean_context(context, lang)
    placeholder = PLACEHOLDER[lang]
    subject = " ".join(_fill(subject_t, values, placeholder).split())
    body = _fill(body_t + _FOOTER[lang], values, placeholder)
    return mark_training(subject, body + "\n", lang, training)


def template_fields(event_type: str) -> dict[str, frozenset[str]]:
    """Keys the templates of ``event_type`` use, over all languages and variants:
    ``{"required": ..., "optional": ...}`` (required ones render a placeholder when
    missing; optional ones drop their line). KeyError for unknown types."""
    required: set[str] = set()
    optional: set[str] = set()
    for entry in _TEMPLATES[event_type].values():
        variants = entry.values() if isinstance(entry, dict) else [entry]
        for subject_t, body_t in variants:
            for line in (subject_t + "\n" + body_t).split("\n"):
                (optional if line.startswith("?") else required).update(_fields(line))
    for footer in _FOOTER.values():
        for line in footer.split("\n"):
            (optional if line.startswith("?") else required).update(_fields(line))
    if event_type in _SELECTOR:
        required.add(_SELECTOR[event_type])
    return {"required": frozenset(required), "optional": frozenset(optional - required)}
