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
"""

from __future__ import annotations

import re
import string
from typing import Any, Mapping, Optional

__all__ = [
    "DEFAULT_LANG",
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
    event_type: str, lang: Optional[str], context: Optional[Mapping[str, Any]]
) -> tuple[str, str]:
    """``(subject, body)`` for ``event_type`` in ``lang``. KeyError for unknown types."""
    if event_type not in _TEMPLATES:
        raise KeyError(event_type)
    lang = resolve_lang(lang)
    subject_t, body_t = _select(event_type, lang, context or {})
    values = _clean_context(context, lang)
    placeholder = PLACEHOLDER[lang]
    subject = " ".join(_fill(subject_t, values, placeholder).split())
    body = _fill(body_t + _FOOTER[lang], values, placeholder)
    return subject, body + "\n"


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
