"""Problem details raised by the deliberation service (consultations, comments, meetings, minutes).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "meeting.quorum": {EN: "the meeting cannot be held: {present} of the body's {size} members are present; "
                           "the quorum of {quorum} needs {needed}",
                       ZH: "会议不能召开：议事成员 {size} 人中到场 {present} 人；法定人数 {quorum} 需要 {needed} 人"},
    "deliberation.party_committee_lead_community": {EN: "only the party-committee lead or a community "
                                                        "worker opens a consultation directly",
                                                    ZH: "只有党组织负责人或社区工作者可以直接开启协商"},
    "deliberation.category_one_community": {EN: "category must be one of the community's: {categories}",
                                            ZH: "category 必须是本社区的类别之一：{categories}"},
    "deliberation.party_committee_lead_designates": {EN: "only the party-committee lead designates the "
                                                         "convener",
                                                     ZH: "只有党组织负责人可以指定召集人"},
    "deliberation.convener_party_committee_lead": {EN: "the convener is the party-committee lead or a "
                                                       "community worker",
                                                   ZH: "召集人必须是党组织负责人或社区工作者"},
    "deliberation.accept_true_false": {EN: "accept must be true or false", ZH: "accept 必须是 true 或 false"},
    "deliberation.role_one": {EN: "role must be one of: {invited_roles}", ZH: "role 必须是以下之一：{invited_roles}"},
    "deliberation.residents_consultation_scope_body": {EN: "only residents of the consultation's scope, "
                                                           "its body and community staff take part in "
                                                           "its discussion; everyone in the community "
                                                           "may read it",
                                                       ZH: "只有协商范围内的居民、议事成员和社区工作人员可以参与讨论；社区内所有人都可以阅读"},
    "deliberation.comment_being_flagged_others": {EN: "the comment is being flagged by others right now; "
                                                      "try again",
                                                  ZH: "此评论正被其他人举报；请重试"},
    "deliberation.moderator_hides_restores_comments": {EN: "only a moderator hides or restores comments",
                                                       ZH: "只有版主可以隐藏或恢复评论"},
    "deliberation.options_list_option_ids": {EN: "options must be a list of option ids",
                                             ZH: "options 必须是选项 ID 的列表"},
    "deliberation.agenda_list_items": {EN: "agenda must be a list of items", ZH: "agenda 必须是议程项的列表"},
    "deliberation.meeting_secretary_convener_records": {EN: "only the meeting's secretary or the "
                                                            "convener records someone else's attendance",
                                                        ZH: "只有会议记录员或召集人可以记录他人的出席情况"},
    "deliberation.convener_meeting_secretary_closes": {EN: "only the convener or the meeting's secretary "
                                                           "closes a meeting",
                                                       ZH: "只有召集人或会议记录员可以结束会议"},
    "deliberation.meeting_minutes_recorded_revise": {EN: "this meeting's minutes are recorded; revise "
                                                         "the draft or correct confirmed minutes",
                                                     ZH: "此会议的记录已录入；请修改草稿或更正已确认的记录"},
    "deliberation.meeting_secretary_convener_records_correction": {EN: "only the meeting's secretary or "
                                                                       "the convener records a correction",
                                                                   ZH: "只有会议记录员或召集人可以录入更正"},
    "deliberation.these_minutes_already_correction": {EN: "these minutes already have a correction "
                                                          "({id}); correct that one",
                                                      ZH: "此会议记录已有更正（{id}）；请更正那一份"},
    "deliberation.suggested_rule_one": {EN: "suggested_rule must be one of: {preset_functions}",
                                        ZH: "suggested_rule 必须是以下之一：{preset_functions}"},
    "deliberation.limit_between": {EN: "limit must be between 1 and 500", ZH: "limit 必须在 1 到 500 之间"},
    "deliberation.community_rules_lack": {EN: "the community's rules lack {missing}", ZH: "社区规则缺少 {missing}"},
    "deliberation.community_wide_consultation_takes": {EN: "a community-wide consultation takes no "
                                                           "scope_id (or the community's id)",
                                                       ZH: "全社区范围的协商不接受 scope_id（或只能是社区本身的 ID）"},
    "deliberation.compound_directory": {EN: "compound {scope_id} is not in the directory",
                                        ZH: "名录中没有小区 {scope_id}"},
    "deliberation.building_directory": {EN: "building {scope_id} is not in the directory",
                                        ZH: "名录中没有楼栋 {scope_id}"},
    "deliberation.consultation_concluded_record_closed": {EN: "this consultation has concluded; the "
                                                              "record is closed",
                                                          ZH: "此协商已结束；记录已关闭"},
    "deliberation.consultation_convener_yet_party": {EN: "this consultation has no convener yet: the "
                                                         "party-committee lead designates one",
                                                     ZH: "此协商还没有召集人：由党组织负责人指定"},
    "deliberation.convener_may": {EN: "only the convener may {what}", ZH: "只有召集人可以{what}"},
    "deliberation.members_consultation_body_may": {EN: "only members of the consultation body may {what}",
                                                   ZH: "只有议事成员可以{what}"},
    "deliberation.person_already_convener": {EN: "this person is already the convener", ZH: "此人已经是召集人"},
    "deliberation.invited_parties_take_one": {EN: "invited parties take one of the roles: {invited_roles}",
                                              ZH: "受邀方的角色必须是以下之一：{invited_roles}"},
    "deliberation.person_already_body_invited": {EN: "this person is already in the body or invited as "
                                                     "{role}",
                                                 ZH: "此人已是议事成员，或已以 {role} 身份受邀"},
    "deliberation.consultation_body_most_places": {EN: "a consultation body has at most {max_body} places",
                                                   ZH: "议事成员最多 {max_body} 名"},
    "deliberation.open_invitation_you": {EN: "there is no open invitation for you as {role}",
                                         ZH: "没有以 {role} 身份邀请您的未决邀请"},
    "deliberation.stance_one": {EN: "stance must be one of: {stances}", ZH: "stance 必须是以下之一：{stances}"},
    "deliberation.venue_one": {EN: "venue must be one of: {venues}", ZH: "venue 必须是以下之一：{venues}"},
    "deliberation.reply_answer_comment_same": {EN: "a reply must answer a comment of the same "
                                                   "consultation",
                                               ZH: "回复必须针对同一协商中的评论"},
    "deliberation.comment_hidden_takes_replies": {EN: "this comment is hidden and takes no replies",
                                                  ZH: "此评论已隐藏，不能回复"},
    "deliberation.option_list_final": {EN: "the option list is final", ZH: "选项列表已确定"},
    "deliberation.consultation_most_options": {EN: "a consultation has at most {max_options} options",
                                               ZH: "一项协商最多有 {max_options} 个选项"},
    "deliberation.option_option_consultation": {EN: "option {option} is not an option of this "
                                                    "consultation",
                                                ZH: "{option} 不是此协商的选项"},
    "deliberation.consultation_takes_most_amendments": {EN: "a consultation takes at most "
                                                            "{max_amendments} amendments",
                                                        ZH: "一项协商最多接受 {max_amendments} 项修正"},
    "deliberation.amendment_amendment_consultation": {EN: "amendment {amendment} is not an amendment of "
                                                          "this consultation",
                                                      ZH: "{amendment} 不是此协商的修正"},
    "deliberation.amendment_was_already": {EN: "this amendment was already {status}",
                                           ZH: "此修正已经是 {status} 状态"},
    "deliberation.final_option_list_needs": {EN: "the final option list needs at least one option, each "
                                                 "once",
                                             ZH: "最终选项列表至少需要一个选项，且每个选项只能出现一次"},
    "deliberation.options_consultation": {EN: "not options of this consultation: {unknown}",
                                          ZH: "以下不是此协商的选项：{unknown}"},
    "deliberation.rule_every_pending_amendment": {EN: "rule on every pending amendment first "
                                                      "({pending_count} pending)",
                                                  ZH: "请先对每项待定修正作出裁定（待定 {pending_count} 项）"},
    "deliberation.mode_one": {EN: "mode must be one of: {meeting_modes}", ZH: "mode 必须是以下之一：{meeting_modes}"},
    "deliberation.agenda_needs_between_items": {EN: "the agenda needs between 1 and {max_agenda} items",
                                                ZH: "议程需要 1 到 {max_agenda} 项"},
    "deliberation.meeting_needs_least_days": {EN: "this meeting needs at least {days} days' notice (the "
                                                  "community's rule meeting_notice_days): the earliest "
                                                  "start now is {earliest}",
                                              ZH: "此会议至少需要提前 {days} 天通知（社区规则 meeting_notice_days）："
                                                  "现在最早可在 {earliest} 开始"},
    "deliberation.body_nobody_roles_meeting": {EN: "the body has nobody in the roles a meeting requires: "
                                                   "{missing}; invite them first",
                                               ZH: "议事成员中没有人担任会议必需的角色：{missing}；请先邀请他们"},
    "deliberation.vote_needs_final_option": {EN: "a vote needs the final option list: finalise the "
                                                 "options first",
                                             ZH: "表决需要最终选项列表：请先确定选项"},
    "deliberation.reason_recorded_when_matter": {EN: "a reason is recorded only when the matter is "
                                                     "resolved by agreement",
                                                 ZH: "只有以共识解决事项时才记录理由"},
    "deliberation.conclusion_action_needs_reason": {EN: "a conclusion with no action needs the reason "
                                                        "why nothing needs doing",
                                                    ZH: "无需行动的结论需要说明为何无需任何行动"},
    "deliberation.resolution_agreement_needs_reason": {EN: "a resolution by agreement needs the reason "
                                                           "why no vote is needed",
                                                       ZH: "以共识作出的决议需要说明为何无需表决"},
    "deliberation.meeting_meeting_consultation": {EN: "the meeting is not a meeting of this consultation",
                                                  ZH: "该会议不是此协商的会议"},
    "deliberation.deliberation_concludes_meeting_was": {EN: "a deliberation concludes at a meeting that "
                                                            "was held",
                                                        ZH: "协商须在已召开的会议上得出结论"},
    "deliberation.deliberation_conclude_these_roles": {EN: "the deliberation cannot conclude: these "
                                                           "roles were not present at the meeting: "
                                                           "{missing}",
                                                       ZH: "协商不能得出结论：以下角色未出席会议：{missing}"},
    "deliberation.meeting_minutes_confirmed_before": {EN: "the meeting's minutes must be confirmed "
                                                          "before the deliberation concludes",
                                                      ZH: "协商得出结论之前，会议记录必须先确认"},
    "deliberation.author_may_edit_comment": {EN: "only the author may edit a comment", ZH: "只有作者可以编辑评论"},
    "deliberation.hidden_comment_edited": {EN: "a hidden comment cannot be edited", ZH: "已隐藏的评论不能编辑"},
    "deliberation.comment_edited_most_times": {EN: "a comment can be edited at most {max_edits} times; "
                                                   "post a new one",
                                               ZH: "一条评论最多可编辑 {max_edits} 次；请发表新评论"},
    "deliberation.you_flag_your_own": {EN: "you cannot flag your own comment", ZH: "您不能举报自己的评论"},
    "deliberation.comment_already_hidden": {EN: "this comment is already hidden", ZH: "此评论已被隐藏"},
    "deliberation.moderator_reviewed_comment_kept": {EN: "a moderator has reviewed this comment and kept "
                                                         "it visible",
                                                     ZH: "版主已审核此评论并保留其可见"},
    "deliberation.you_already_flagged_comment": {EN: "you have already flagged this comment",
                                                 ZH: "您已经举报过此评论"},
    "deliberation.comment_hidden": {EN: "this comment is not hidden", ZH: "此评论未被隐藏"},
    "deliberation.meeting_sign_over": {EN: "this meeting is {status}; sign-in is over",
                                       ZH: "此会议当前状态为 {status}；签到已结束"},
    "deliberation.sign_opens_one_hour": {EN: "sign-in opens at {opens}, one hour before the meeting",
                                         ZH: "签到于 {opens} 开始，即会议开始前一小时"},
    "deliberation.members_consultation_body_sign": {EN: "only members of the consultation body sign in "
                                                        "to its meetings",
                                                    ZH: "只有议事成员可以签到参加其会议"},
    "deliberation.person_already_signed": {EN: "this person has already signed in", ZH: "此人已经签到"},
    "deliberation.meeting": {EN: "this meeting is {status}", ZH: "此会议当前状态为 {status}"},
    "deliberation.meeting_starts_opened_earlier": {EN: "the meeting starts at {starts_at}; it cannot be "
                                                       "opened earlier",
                                                   ZH: "会议于 {starts_at} 开始；不能提前开始"},
    "deliberation.meeting_opened_concluding_meeting": {EN: "the meeting cannot be opened as the "
                                                           "concluding meeting: these roles a conclusion "
                                                           "requires have not signed in: {absent}",
                                                       ZH: "此会议不能作为得出结论的会议开始：以下结论必需的角色尚未签到：{absent}"},
    "deliberation.meeting_held_these_roles": {EN: "the meeting cannot be held: these roles are required "
                                                  "and not present: {missing}",
                                              ZH: "会议不能召开：以下必需的角色未到场：{missing}"},
    "deliberation.opened_meeting_closed_one": {EN: "only an opened meeting can be closed; this one is "
                                                   "{status}",
                                               ZH: "只有已开始的会议才能结束；此会议当前状态为 {status}"},
    "deliberation.scheduled_meeting_cancelled_one": {EN: "only a scheduled meeting can be cancelled; "
                                                         "this one is {status}",
                                                     ZH: "只有已安排的会议才能取消；此会议当前状态为 {status}"},
    "deliberation.meeting_secretary_records_minutes": {EN: "only the meeting's secretary records its "
                                                           "minutes",
                                                       ZH: "只有会议记录员可以录入会议记录"},
    "deliberation.minutes_recorded_meeting_was": {EN: "minutes are recorded for a meeting that was held",
                                                  ZH: "只能为已召开的会议录入会议记录"},
    "deliberation.confirmed_minutes_altered_record": {EN: "confirmed minutes cannot be altered; record a "
                                                          "correction instead",
                                                      ZH: "已确认的会议记录不能修改；请改为录入更正"},
    "deliberation.whoever_recorded_these_minutes": {EN: "only whoever recorded these minutes may revise "
                                                        "them",
                                                    ZH: "只有录入此会议记录的人可以修改它"},
    "deliberation.these_minutes_been_signed": {EN: "these minutes have been signed and can no longer "
                                                   "change; record a correction once they are confirmed",
                                               ZH: "此会议记录已签署，不能再修改；确认后可录入更正"},
    "deliberation.you_already_signed_these": {EN: "you have already signed these minutes", ZH: "您已经签署了此会议记录"},
    "deliberation.these_minutes_still_need": {EN: "these minutes still need signatures from: "
                                                  "{outstanding_roles}; you hold none of these roles in "
                                                  "the body",
                                              ZH: "此会议记录还需要以下角色签署：{outstanding_roles}；"
                                                  "您在议事成员中不担任其中任何角色"},
    "deliberation.these_minutes_confirmed_yet": {EN: "these minutes are not confirmed yet; revise them "
                                                     "instead of correcting them",
                                                 ZH: "此会议记录尚未确认；请直接修改，而不是更正"},
}
