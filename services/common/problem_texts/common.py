"""Problem details raised by the shared platform code (more than one service).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "text.not_string": {EN: "{field} must be a string", ZH: "{field} 必须是文本"},
    "text.unstorable": {EN: "{field} must not contain NUL characters or unpaired surrogates",
                        ZH: "{field} 不能包含 NUL 字符或不成对的代理字符"},
    "text.empty": {EN: "{field} must not be empty", ZH: "{field} 不能为空"},
    "text.too_short": {EN: "{field} needs at least {min} characters", ZH: "{field} 至少需要 {min} 个字符"},
    "text.too_long": {EN: "{field} is too long ({length} characters, at most {max})",
                      ZH: "{field} 太长（{length} 个字符，最多 {max} 个）"},
    "common.iso_time_zone_like": {EN: "{what} must be an ISO-8601 time with a zone, like 2026-05-01T14:00:00+08:00",
                                  ZH: "{what} 必须是带时区的 ISO-8601 时间，例如 2026-05-01T14:00:00+08:00"},
    "common.iso_time_zone": {EN: "{what} is not an ISO-8601 time with a zone: {value}",
                             ZH: "{what} 不是带时区的 ISO-8601 时间：{value}"},
    "common.outcome_one": {EN: "outcome must be one of: {outcomes}", ZH: "outcome 必须是以下之一：{outcomes}"},
    "common.someone_else_changed_same": {EN: "someone else changed this at the same moment; reload and "
                                             "try again",
                                         ZH: "有人在同一时刻修改了此内容；请刷新后重试"},
    "common.scope_one": {EN: "scope must be one of: {scopes}", ZH: "scope 必须是以下之一：{scopes}"},
    "common.limit_between": {EN: "limit must be between 1 and {max_page}", ZH: "limit 必须在 1 到 {max_page} 之间"},
    "common.service_records_held_event": {EN: "the {source} service's records are held at an event it "
                                              "could not apply; nothing new is recorded until an "
                                              "operator has acted (consult dlq list)",
                                          ZH: "{source} 服务的记录停在一条无法应用的事件上；"
                                              "在运维人员处理之前不会记录任何新内容（consult dlq list）"},
    "common.nothing_was_recorded_change": {EN: "nothing was recorded: this change does not fit the "
                                               "records as they stand",
                                           ZH: "未记录任何内容：此变更与现有记录不符"},
    "common.request_was_already_executed": {EN: "this request was already executed and recorded; nothing "
                                                "was recorded again",
                                            ZH: "此请求已执行并记录过；未再次记录"},
    "common.does_exist": {EN: "{what} {value} does not exist", ZH: "{what} {value} 不存在"},
    "common.not_now_try_again": {EN: "the {service} service could not record this now (a database lock or "
                                     "connection was not free in time); nothing was recorded, try again",
                                 ZH: "{service} 服务现在无法记录（数据库锁或连接未能及时获得）；未记录任何内容，请重试"},
    "common.busy_try_again": {EN: "{namespace} is busy; try again", ZH: "{namespace} 正忙，请稍后重试"},
    "common.does_exist_community": {EN: "{what} {value} does not exist in this community",
                                    ZH: "本社区中不存在 {what} {value}"},
    "common.not_a_fraction": {EN: "{field} is not a fraction: {value}", ZH: "{field} 不是分数：{value}"},
    "common.fraction_between_0_1": {EN: "{field} must lie between 0 and 1", ZH: "{field} 必须在 0 到 1 之间"},
}
