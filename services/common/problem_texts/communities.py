"""Problem details raised by the communities service (directory, roles, tokens, invitations, rules, imports).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "communities.effective_date_yyyy_mm": {EN: "effective must be a date 'YYYY-MM-DD' or an ISO-8601 time",
                                           ZH: "effective 必须是 'YYYY-MM-DD' 格式的日期或 ISO-8601 时间"},
    "communities.date_time": {EN: "not a date or time: {value}", ZH: "不是日期或时间：{value}"},
    "communities.rule_change_proposed_one": {EN: "a rule change is proposed by one person and confirmed "
                                                 "by a party-committee lead",
                                             ZH: "规则变更由一人提出，并由党组织负责人确认"},
    "communities.owners_list_person_ids": {EN: "owners must be a list of person ids",
                                           ZH: "owners 必须是人员 ID 的列表"},
    "communities.unit_developer_sold_other": {EN: "a unit the developer has not sold has no other owners",
                                              ZH: "开发商未售出的房屋没有其他业主"},
    "communities.unit_needs_least_one": {EN: "a unit needs at least one owner, or developer_unsold",
                                         ZH: "房屋至少需要一位业主，或标明 developer_unsold"},
    "communities.owner_listed_twice": {EN: "an owner is listed twice", ZH: "有业主被列了两次"},
    "communities.representative_one_owners": {EN: "the representative must be one of the owners",
                                              ZH: "代表人必须是业主之一"},
    "communities.co_owned_unit_needs": {EN: "a co-owned unit needs the representative the co-owners "
                                            "designate",
                                        ZH: "共有房屋需要共有人指定的代表人"},
    "communities.developer_unsold_true_false": {EN: "developer_unsold must be true or false",
                                                ZH: "developer_unsold 必须是 true 或 false"},
    "communities.unit_already_exists_building": {EN: "unit {unit} already exists in this building",
                                                 ZH: "此楼栋中已存在房屋 {unit}"},
    "communities.adult_true_false": {EN: "adult must be true or false", ZH: "adult 必须是 true 或 false"},
    "communities.role_holds_whole_community": {EN: "the role {role} holds for the whole community and "
                                                   "takes no scope",
                                               ZH: "角色 {role} 适用于整个社区，不接受范围"},
    "communities.platform_administrators_granted_inside": {EN: "platform administrators are not granted "
                                                               "inside a community",
                                                           ZH: "不能在社区内授予平台管理员角色"},
    "communities.unknown_role_roles": {EN: "unknown role {role}; roles are: {roles}",
                                       ZH: "未知角色 {role}；可用的角色有：{roles}"},
    "communities.csv_too_many_rows": {EN: "a file holds at most {max_rows} rows: split it and import each part "
                                          "(each is imported whole or not at all)",
                                      ZH: "一个文件最多 {max_rows} 行：请拆分文件，逐个导入（每个文件要么整体导入，要么完全不导入）"},
    "communities.import_took_too_long": {EN: "the import was stopped after {seconds} s and nothing of the file was "
                                             "recorded; post the file again",
                                         ZH: "导入在 {seconds} 秒后被中止，文件内容均未记录；请重新提交该文件"},
    "communities.import_not_found": {EN: "no import {job} in this community", ZH: "本社区没有导入任务 {job}"},
    "communities.import_failed_logged": {EN: "the import stopped on an unexpected error, written to the operator's log; "
                                             "nothing of the file was recorded",
                                         ZH: "导入因意外错误中止，详情已写入运维日志；该文件的内容均未记录"},
    "communities.another_import_recorded_some": {EN: "another import recorded some of these owners at "
                                                     "the same moment: import the file again (it will "
                                                     "find them)",
                                                 ZH: "另一次导入在同一时刻记录了其中部分业主：请重新导入该文件（会识别出这些业主）"},
    "communities.platform_administrator": {EN: "not a platform administrator", ZH: "不是平台管理员"},
    "communities.name_least_one_rule": {EN: "name at least one rule setting to change",
                                        ZH: "请至少指明一项要变更的规则设置"},
    "communities.rule_change_takes_effect": {EN: "a rule change takes effect when a party-committee lead "
                                                 "other than its proposer confirms it",
                                             ZH: "规则变更须由提出人以外的党组织负责人确认后才生效"},
    "communities.community_rules_changed_same": {EN: "the community's rules changed at the same moment: "
                                                     "look again and retry",
                                                 ZH: "社区规则在同一时刻被修改：请重新查看后重试"},
    "communities.days_between": {EN: "days must be between 1 and {max_token_days}",
                                 ZH: "days 必须在 1 到 {max_token_days} 之间"},
    "communities.platform_administrator_tokens_issued": {EN: "platform administrator tokens are issued "
                                                             "by the operator (consult admin-token)",
                                                         ZH: "平台管理员令牌由运维人员签发（consult admin-token）"},
    "communities.token_issued_holder_give": {EN: "a token is issued only to its holder: to give someone "
                                                 "access, send them an invitation",
                                             ZH: "令牌只签发给其持有人本人：如需让他人访问，请向其发送邀请"},
    "communities.further_token_issued_valid": {EN: "a further token is issued only with a valid token of "
                                                   "its holder",
                                               ZH: "只有凭持有人的有效令牌才能签发新令牌"},
    "communities.bearer_token_required": {EN: "a bearer token is required", ZH: "需要 Bearer 令牌"},
    "communities.token_unknown_expired_revoked": {EN: "the token is unknown, expired or revoked",
                                                  ZH: "令牌无效、已过期或已被吊销"},
    "communities.token_revoked_holder_community": {EN: "a token is revoked by its holder, a community "
                                                       "worker (for a resident's token) or the "
                                                       "party-committee lead",
                                                   ZH: "令牌只能由其持有人、社区工作者（对居民的令牌）或党组织负责人吊销"},
    "communities.token_does_exist": {EN: "token {token_id} does not exist", ZH: "令牌 {token_id} 不存在"},
    "communities.platform_administrator_token_revoked": {EN: "a platform administrator's token is "
                                                             "revoked by its holder or the operator",
                                                         ZH: "平台管理员的令牌只能由其持有人或运维人员吊销"},
    "communities.holder_signs_out_their": {EN: "only the holder signs out with their token",
                                           ZH: "只有持有人本人可以用其令牌退出登录"},
    "communities.roles_list_community_wide": {EN: "roles must be a list of community-wide role names",
                                              ZH: "roles 必须是全社区范围角色名称的列表"},
    "communities.days_between_x": {EN: "days must be between 1 and 90", ZH: "days 必须在 1 到 90 之间"},
    "communities.invitation_unknown_used_revoked": {EN: "the invitation is unknown, used, revoked or "
                                                        "expired",
                                                    ZH: "邀请无效、已使用、已撤销或已过期"},
    "communities.invitation_was_used_same": {EN: "the invitation was used at the same time",
                                             ZH: "该邀请在同一时刻已被使用"},
    "communities.scope_community_compound_building": {EN: "scope must be community, compound or building",
                                                      ZH: "scope 必须是 community、compound 或 building"},
    "communities.compound_building_unit_required": {EN: "compound, building and unit are required",
                                                    ZH: "compound、building 和 unit 均为必填"},
    "communities.name_too_long": {EN: "a name is too long", ZH: "名称过长"},
    "communities.owners_required_names_separated": {EN: "owners are required (names separated by ';') "
                                                        "unless developer_unsold",
                                                    ZH: "除非标明 developer_unsold，否则必须填写 owners（姓名之间用 ';' 分隔）"},
    "communities.owner_name_too_long": {EN: "an owner's name is too long (at most 100 characters)",
                                        ZH: "业主姓名过长（最多 100 个字符）"},
    "communities.owner_keys_gives_keys": {EN: "owner_keys gives {given_count} keys for {names_count} "
                                              "owners: one per owner, in the owners' order, separated by "
                                              "';' (an empty one for an owner without a key)",
                                          ZH: "owner_keys 为 {names_count} 位业主给出了 {given_count} 个键："
                                              "每位业主一个，按业主顺序排列，用 ';' 分隔（没有键的业主留空）"},
    "communities.owner_key_too_long": {EN: "an owner key is too long (at most {max_key} characters)",
                                       ZH: "业主键过长（最多 {max_key} 个字符）"},
    "communities.two_owners_unit_same": {EN: "two owners of this unit have the same owner key",
                                         ZH: "此房屋有两位业主的业主键相同"},
    "communities.csv_file_empty": {EN: "the CSV file is empty", ZH: "CSV 文件是空的"},
    "communities.unit_appears_twice_file": {EN: "unit {unit} appears twice in the file (also line "
                                                "{seen_units})",
                                            ZH: "房屋 {unit} 在文件中出现了两次（另见第 {seen_units} 行）"},
    "communities.fraction_written_string_like": {EN: "{field} must be a fraction written as a string "
                                                     "like '2/3'",
                                                 ZH: "{field} 必须是以字符串书写的分数，例如 '2/3'"},
    "communities.rules_object": {EN: "rules must be an object", ZH: "rules 必须是一个对象"},
    "communities.unknown_rule_settings": {EN: "unknown rule settings: {unknown}", ZH: "未知的规则设置：{unknown}"},
    "communities.whole_number_days_count": {EN: "{key_} must be a whole number of days/count between 0 "
                                                "and 3650",
                                            ZH: "{key_} 必须是 0 到 3650 之间的整数（天数或次数）"},
    "communities.support_per_resident_household": {EN: "support_per must be 'resident' or 'household'",
                                                   ZH: "support_per 必须是 'resident' 或 'household'"},
    "communities.categories_non_empty_list": {EN: "categories must be a non-empty list of short names",
                                              ZH: "categories 必须是由简短名称组成的非空列表"},
    "communities.support_threshold_needs_community": {EN: "support_threshold needs community, compound "
                                                          "and building",
                                                      ZH: "support_threshold 需要包含 community、compound 和 building"},
    "communities.support_threshold_unit_residents": {EN: "support_threshold.{level}.unit must be "
                                                         "'residents' or 'households'",
                                                     ZH: "support_threshold.{level}.unit 必须是 'residents' 或 'households'"},
    "communities.support_threshold_needs_exactly": {EN: "support_threshold.{level} needs exactly one of "
                                                        "count or share",
                                                    ZH: "support_threshold.{level} 必须且只能包含 count 或 share 之一"},
    "communities.support_threshold_count_positive": {EN: "support_threshold.{level}.count must be a "
                                                         "positive whole number",
                                                     ZH: "support_threshold.{level}.count 必须是正整数"},
    "communities.list_role_names": {EN: "{key_} must be a list of role names", ZH: "{key_} 必须是角色名称的列表"},
    "communities.decimal_string_such_float": {EN: "{field} must be a decimal string such as '75.50', not "
                                                  "a float",
                                              ZH: "{field} 必须是十进制字符串，例如 '75.50'，不能是浮点数"},
    "communities.decimal_number": {EN: "{field} is not a decimal number: {value}",
                                   ZH: "{field} 不是十进制数：{value}"},
    "communities.positive_area_most": {EN: "{field} must be a positive area in m² (at most 100000)",
                                       ZH: "{field} 必须是以平方米计的正面积（最多 100000）"},
    "communities.more_than_decimal_places": {EN: "{field} has more than 4 decimal places",
                                             ZH: "{field} 的小数超过 4 位"},
    "communities.rule_change_pending_community": {EN: "rule change {change} is not pending in this "
                                                      "community",
                                                  ZH: "本社区中没有待确认的规则变更 {change}"},
    "communities.rule_change_needs_second": {EN: "a rule change needs a second person: whoever proposed "
                                                 "it cannot confirm it",
                                             ZH: "规则变更需要第二个人确认：提出人不能自行确认"},
    "communities.transfer_effective_after": {EN: "a transfer must be effective after {from_}",
                                             ZH: "过户的生效时间必须晚于 {from_}"},
    "communities.move_effective_after": {EN: "a move must be effective after {from_}",
                                         ZH: "搬迁的生效时间必须晚于 {from_}"},
    "communities.person_does_live_unit": {EN: "this person does not live in a unit of the community now",
                                          ZH: "此人目前不住在本社区的任何房屋中"},
    "communities.person_does_hold_role": {EN: "this person does not hold the role {role}",
                                          ZH: "此人不担任角色 {role}"},
    "communities.token_already_revoked": {EN: "this token is already revoked", ZH: "此令牌已被吊销"},
    "communities.invitation_was_already_redeemed": {EN: "this invitation was already redeemed: revoke "
                                                        "the person's token instead",
                                                    ZH: "此邀请已被使用：请改为吊销此人的令牌"},
    "communities.invitation_already_revoked": {EN: "this invitation is already revoked", ZH: "此邀请已被撤销"},
    "communities.lead_role_given_by": {EN: "the party-committee lead role is given (or taken away) only "
                                           "by a party-committee lead or a platform administrator",
                                       ZH: "党组织负责人角色只能由党组织负责人或平台管理员授予（或撤销）"},
    "communities.erasure_requested_by": {EN: "a person's data is erased at the request of a community "
                                             "worker or a party-committee lead",
                                         ZH: "个人数据须应社区工作者或党组织负责人的请求删除"},
    "communities.erasure_shown_to": {EN: "the erasure of a person's data is shown to them, a community "
                                         "worker or a party-committee lead",
                                     ZH: "个人数据的删除情况只向本人、社区工作者或党组织负责人展示"},
    "communities.rule_change_proposed_by": {EN: "a rule change is proposed by a community worker or the "
                                                "party-committee lead",
                                            ZH: "规则变更由社区工作者或党组织负责人提出"},
    "communities.rule_change_withdrawn_by": {EN: "a rule change is withdrawn by its proposer or a "
                                                 "party-committee lead",
                                             ZH: "规则变更由其提出人或党组织负责人撤回"},
    "communities.invitations_sent_by": {EN: "invitations are sent by a community worker or the "
                                            "party-committee lead",
                                        ZH: "邀请由社区工作者或党组织负责人发出"},
    "communities.imports_by": {EN: "the directory is imported by a community worker or the "
                                   "party-committee lead",
                               ZH: "住户名录由社区工作者或党组织负责人导入"},
    "communities.invitations_households_or_scope": {EN: "name the households, or a scope, not both",
                                                    ZH: "请指定住户或范围，二者选一"},
    "communities.invitations_how_many": {EN: "one request issues 1 to {most} invitations: name fewer households or a "
                                             "smaller scope",
                                         ZH: "每次请求可发出 1 至 {most} 份邀请：请减少住户或缩小范围"},
    "communities.invitations_revoked_by": {EN: "invitations are revoked by a community worker or the "
                                               "party-committee lead",
                                           ZH: "邀请由社区工作者或党组织负责人撤销"},
    "communities.csv_line": {EN: "line {line}: {message}", ZH: "第 {line} 行：{message}"},
    "communities.csv_line_and_more": {EN: "line {line}: {message} (and {more} more errors)",
                                      ZH: "第 {line} 行：{message}（另有 {more} 处错误）"},
    "communities.already_holds_role": {EN: "this person already holds the role {role}", ZH: "此人已担任角色 {role}"},
    "communities.already_holds_role_for": {EN: "this person already holds the role {role} for {scope}",
                                           ZH: "此人已在 {scope} 担任角色 {role}"},
}
