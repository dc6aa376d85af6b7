"""Problem details raised by the gateway (bodies, queries and the roles its routes check).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "auth.sign_in": {EN: "sign in: send Authorization: Bearer <token>",
                     ZH: "请先登录：请求中需带 Authorization: Bearer <令牌>"},
    "community.not_found": {EN: "community {community} does not exist", ZH: "社区 {community} 不存在"},
    "roles.needed": {EN: "this needs one of the roles: {roles}", ZH: "此操作需要以下角色之一：{roles}"},
    "route.not_found": {EN: "no such resource", ZH: "没有这个资源"},
    "route.method": {EN: "{method} is not allowed here", ZH: "此处不允许 {method} 请求"},
    "body.too_large": {EN: "the body is {size} bytes; at most {limit}", ZH: "请求体有 {size} 字节，最多 {limit} 字节"},
    "internal": {EN: "the request failed unexpectedly; incident {incident} is logged",
                 ZH: "请求意外失败；事件编号 {incident} 已记录"},
    "input.schema": {EN: "{message}", ZH: "输入不符合要求：{message}"},
    "body.not_json": {EN: "the body is not valid JSON", ZH: "请求体不是有效的 JSON"},
    "body.not_utf8": {EN: "the body is not UTF-8", ZH: "请求体不是 UTF-8 编码"},
    "body.required": {EN: "a JSON body is required", ZH: "需要 JSON 请求体"},
    "body.none_taken": {EN: "this request takes no body", ZH: "此请求不接受请求体"},
    "gateway.numbers_fraction_sent_decimal": {EN: "numbers with a fraction must be sent as decimal "
                                                  "strings, like \"75.5\"",
                                              ZH: "带小数的数字必须以十进制字符串发送，例如 \"75.5\""},
    "gateway.whole_numbers_body_lie": {EN: "whole numbers in a body must lie within ±{max_safe_integer}",
                                       ZH: "请求体中的整数必须在 ±{max_safe_integer} 之内"},
    "gateway.json_object_names_member": {EN: "a JSON object names a member twice", ZH: "某个 JSON 对象中有重复的成员名"},
    "gateway.body_nested_too_deeply": {EN: "the body is nested too deeply (at most {max_depth} levels)",
                                       ZH: "请求体嵌套过深（最多 {max_depth} 层）"},
    "gateway.text_contain_nul_characters": {EN: "text must not contain NUL characters", ZH: "文本不能包含 NUL 字符"},
    "gateway.text_valid_unicode_ud": {EN: "text must be valid Unicode (a \\ud800-\\udfff escape must be "
                                          "one of a pair)",
                                      ZH: "文本必须是有效的 Unicode（\\ud800-\\udfff 转义必须成对出现）"},
    "gateway.file_utf_text": {EN: "the file must be UTF-8 text", ZH: "文件必须是 UTF-8 文本"},
    "gateway.file_contain_control_characters": {EN: "the file must not contain control characters",
                                                ZH: "文件不能包含控制字符"},
    "gateway.query_parameter_given_more": {EN: "query parameter {name} is given more than once",
                                           ZH: "查询参数 {name} 出现了不止一次"},
    "gateway.query_whole_number": {EN: "query.{name} must be a whole number", ZH: "query.{name} 必须是整数"},
    "gateway.from_size_older_checkpoint": {EN: "from (the size of the older checkpoint) is required",
                                           ZH: "需要提供 from（较早检查点的大小）"},
    "gateway.platform_administrator_creates_communities": {EN: "only a platform administrator creates "
                                                               "communities",
                                                           ZH: "只有平台管理员可以创建社区"},
    "gateway.party_committee_lead_role": {EN: "the party-committee lead role is given only by a "
                                              "party-committee lead or a platform administrator",
                                          ZH: "党组织负责人角色只能由党组织负责人或平台管理员授予"},
    "gateway.invitation_party_committee_lead": {EN: "an invitation with the party-committee lead role is "
                                                    "sent only by a party-committee lead or a platform "
                                                    "administrator",
                                                ZH: "带有党组织负责人角色的邀请只能由党组织负责人或平台管理员发出"},
    "gateway.service_not_running": {EN: "the {service} service is not running", ZH: "服务 {service} 未在运行"},
    "gateway.service_too_slow": {EN: "the {service} service did not answer in time (a request is given {seconds} s)",
                                 ZH: "服务 {service} 未能及时响应（每个请求限时 {seconds} 秒）"},
    "gateway.request_out_of_time": {EN: "the services did not answer this request within {seconds} s",
                                    ZH: "各服务未能在 {seconds} 秒内完成此请求"},
    "gateway.broker_refused": {EN: "the message broker did not take the request for the {service} service ({error})",
                               ZH: "消息代理未接收发往服务 {service} 的请求（{error}）"},
}
