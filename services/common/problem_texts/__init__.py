"""The one catalogue of problem texts, in Simplified Chinese (the default) and English.

Why one place: a refusal is raised in whichever service owns the data, but its words are chosen
once, at the gateway, for the language the client asks for (`Accept-Language`). So a domain error
carries a stable message key and its parameters (`DomainError.coded`) beside its English detail,
the key and parameters travel in the RPC reply, and `localise` renders the problem's `title` (by its
code) and `detail` (by its key) in the client's language. The `type` URI never changes with the
language. A detail without a key, or a key this catalogue does not know, keeps its English text.

The messages are kept in one module per service whose refusals they are (actions.py, …), merged
here into the one MESSAGES; a key is named after its service ("proposals.…"), or "common." for
words more than one service uses. Parameters are data, not sentences: a text that changes with the
case has a key of its own; a parameter in words (what could not be done, what does not exist) is
looked up in terms.py for the Chinese text.

Every problem code has a title in both languages (tests/unit/test_problem_texts.py holds this to
every DomainError subclass and every code the gateway answers with itself).
"""
from __future__ import annotations

import string

from . import actions, audit, common, communities, decisions, deliberation, gateway, notifications, proposals
from .languages import DEFAULT, EN, LANGUAGES, ZH
from .terms import TERMS

# code -> title. The English titles are those the problems carried before the catalogue.
TITLES: dict[str, dict[str, str]] = {
    # DomainError and its subclasses (the code is the class name)
    "DomainError": {EN: "Bad request", ZH: "请求有误"},
    "InvalidInput": {EN: "Invalid input", ZH: "输入无效"},
    "NotFound": {EN: "Not found", ZH: "未找到"},
    "Forbidden": {EN: "Forbidden", ZH: "无权操作"},
    "Unauthorized": {EN: "Unauthorized", ZH: "未登录"},
    "Conflict": {EN: "Conflict", ZH: "与当前状态冲突"},
    "Unavailable": {EN: "Service unavailable", ZH: "服务暂不可用"},
    "LockTimeout": {EN: "Busy", ZH: "系统繁忙"},
    "ProjectionHeld": {EN: "Service unavailable", ZH: "服务暂不可用"},
    "NotRecorded": {EN: "Conflict", ZH: "未能记录"},
    "RecordedButHeld": {EN: "Service unavailable", ZH: "已记录，但暂不可用"},
    "NoticeTooShort": {EN: "Invalid input", ZH: "通知期不足"},
    "RequiredRolesAbsent": {EN: "Conflict", ZH: "必需角色未到场"},
    "QuorumNotMet": {EN: "Conflict", ZH: "未达法定人数"},
    "MinutesAlreadyConfirmed": {EN: "Conflict", ZH: "会议记录已确认"},
    "NotInBody": {EN: "Forbidden", ZH: "非议事成员"},
    "ConsultationClosed": {EN: "Conflict", ZH: "协商已结束"},
    "AlreadyExecuted": {EN: "Conflict", ZH: "请求已执行过"},
    # what the gateway answers by itself (its edge and its routing table)
    "BadRequest": {EN: "Bad request", ZH: "请求有误"},
    "MethodNotAllowed": {EN: "Method not allowed", ZH: "不允许此方法"},
    "PayloadTooLarge": {EN: "Payload too large", ZH: "请求体过大"},
    "URITooLong": {EN: "URI too long", ZH: "请求地址过长"},
    "UnsupportedMediaType": {EN: "Unsupported media type", ZH: "不支持的媒体类型"},
    "RequestHeaderFieldsTooLarge": {EN: "Request header fields too large", ZH: "请求头过大"},
    "HTTPVersionNotSupported": {EN: "HTTP version not supported", ZH: "不支持此 HTTP 版本"},
    "InternalError": {EN: "Internal server error", ZH: "服务器内部错误"},
    "ServiceUnavailable": {EN: "Service unavailable", ZH: "服务暂不可用"},
    "InvalidIdempotencyKey": {EN: "Bad request", ZH: "幂等键无效"},
}

# Problems the gateway makes without a code are known by their English title.
_CODE_OF_TITLE = {"Not found": "NotFound", "Method not allowed": "MethodNotAllowed", "Bad request": "BadRequest",
                  "Payload too large": "PayloadTooLarge", "Unsupported media type": "UnsupportedMediaType",
                  "URI too long": "URITooLong", "Internal server error": "InternalError"}

# message key -> detail template ({name} parameters, str.format syntax), one part per service
# whose refusals they are; a key lives in exactly one part.
MESSAGES: dict[str, dict[str, str]] = {}
for _part in (gateway, common, communities, proposals, deliberation, decisions, actions, notifications, audit):
    _twice = MESSAGES.keys() & _part.MESSAGES.keys()
    if _twice:
        raise RuntimeError(f"message keys in two parts of the catalogue: {sorted(_twice)}")
    MESSAGES.update(_part.MESSAGES)


def negotiate(header: str | None) -> str:
    """The language to answer in, from an Accept-Language header (RFC 9110 §12.5.4): the
    highest-weighted range we serve; Chinese and anything unknown get the default."""
    best, best_q = DEFAULT, -1.0
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = EN if tag == "en" or tag.startswith("en-") else ZH if tag == "zh" or tag.startswith("zh-") else None
        if lang is not None and q > 0 and q > best_q:
            best, best_q = lang, q
    return best


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def render(key: str, lang: str, params: dict | None) -> str | None:
    """The detail of message `key` in `lang`, or None if the catalogue cannot render it."""
    entry = MESSAGES.get(key)
    if entry is None:
        return None
    params = params or {}
    if lang == ZH:  # a parameter in words (terms.py) reads in Chinese too
        params = {name: TERMS.get(value, value) if isinstance(value, str) else value for name, value in params.items()}
    try:
        return entry.get(lang, entry[EN]).format(**params)
    except (KeyError, IndexError, ValueError):
        return None


def title_of(problem: dict, lang: str) -> str | None:
    code = problem.get("code") or _CODE_OF_TITLE.get(problem.get("title", ""))
    entry = TITLES.get(code or "")
    return entry.get(lang) if entry else None


def localise(problem: dict, header: str | None) -> dict:
    """The problem as the client reads it: title and detail in its language, `type` and every
    other member unchanged. The message key and parameters stay inside the platform."""
    lang = negotiate(header)
    out = dict(problem)
    message = out.pop("i18n", None)
    title = title_of(out, lang)
    if title:
        out["title"] = title
    if isinstance(message, dict):
        detail = render(message.get("key", ""), lang, message.get("params"))
        if detail is not None:
            out["detail"] = detail
    return out
