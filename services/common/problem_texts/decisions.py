"""Problem details raised by the decisions service (ballots, votes, proxies, objections, emergencies).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "vote.invalid_choice": {EN: "invalid choice: {reason}. The options are: {options}",
                            ZH: "选择无效：{reason}。可选的方案：{options}"},
    "decisions.ballot_does_exist": {EN: "ballot {ballot_id} does not exist", ZH: "表决 {ballot_id} 不存在"},
    "decisions.options_list_most_options": {EN: "options must be a list of at most {max_options} options",
                                            ZH: "options 必须是最多 {max_options} 个选项的列表"},
    "decisions.each_option_object_title": {EN: "each option is an object with a title (and optionally an "
                                               "id and a description)",
                                           ZH: "每个选项都是一个带 title 的对象（id 和 description 可选）"},
    "decisions.option_id_letters_digits": {EN: "option id {option_id} must be 1-40 letters, digits, '-' "
                                               "or '_' (not 'abstain')",
                                           ZH: "选项 ID {option_id} 必须由 1 到 40 个字母、数字、'-' 或 '_' 组成（且不能是 'abstain'）"},
    "decisions.option_ids_unique": {EN: "option ids must be unique", ZH: "选项 ID 不能重复"},
    "decisions.scope_one": {EN: "scope must be one of {scopes}", ZH: "scope 必须是以下之一：{scopes}"},
    "decisions.true_false": {EN: "{name} must be true or false", ZH: "{name} 必须是 true 或 false"},
    "decisions.voter_roll_built": {EN: "the voter roll cannot be built: {exc}", ZH: "无法生成投票人名册：{exc}"},
    "decisions.nobody_scope_vote_voter": {EN: "nobody in this scope can vote as {voting_unit}: the voter "
                                              "roll would be empty",
                                          ZH: "此范围内没有人能以 {voting_unit} 身份投票：投票人名册将为空"},
    "decisions.channel_one": {EN: "channel must be one of {channels}", ZH: "channel 必须是以下之一：{channels}"},
    "decisions.proxy_votes_someone_else": {EN: "a proxy votes for someone else: vote for yourself "
                                               "directly",
                                           ZH: "代理人是替他人投票的：请直接为自己投票"},
    "decisions.vote_through_another_channel": {EN: "a vote through another channel was recorded first "
                                                   "for this voter, and a voter votes through one "
                                                   "channel only: this {channel} vote is refused (and "
                                                   "kept in the record)",
                                               ZH: "此投票人已先通过其他渠道投票，而每位投票人只能通过一种渠道投票："
                                                   "此 {channel} 投票被拒绝（并保留在记录中）"},
    "decisions.paper_ballot_voter_correct": {EN: "there is no paper ballot of this voter to correct: "
                                                 "enter it without a correction_reason",
                                             ZH: "此投票人没有可更正的纸质选票：请不带 correction_reason 录入"},
    "decisions.paper_ballot_serial_already": {EN: "a paper ballot (serial {paper_serial}) is already "
                                                  "recorded for this voter: a second one is refused "
                                                  "unless a community worker records it as a correction, "
                                                  "with a reason (correction_reason)",
                                              ZH: "此投票人已有一张纸质选票（编号 {paper_serial}）的记录："
                                                  "除非社区工作者将其作为更正并附理由（correction_reason）录入，否则第二张选票将被拒绝"},
    "decisions.voter_their_own_proxy": {EN: "a voter cannot be their own proxy", ZH: "投票人不能做自己的代理人"},
    "decisions.you_standing_proxy_authorisation": {EN: "you have no standing proxy authorisation on this "
                                                       "ballot",
                                                   ZH: "您在此表决中没有有效的代理授权"},
    "decisions.your_proxy_already_voted": {EN: "your proxy has already voted for you: the authorisation "
                                               "can no longer be revoked",
                                           ZH: "您的代理人已替您投票：授权不能再撤销"},
    "decisions.you_given_proxy_authorisation": {EN: "you have given no proxy authorisation on this ballot",
                                                ZH: "您在此表决中没有给出代理授权"},
    "decisions.voting_closed_before_vote": {EN: "voting closed before this vote was recorded: it does "
                                                "not count",
                                            ZH: "此票记录前投票已截止：不计入"},
    "decisions.serial_already_been_entered": {EN: "{paper} serial {serial} has already been entered for "
                                                  "this ballot",
                                              ZH: "此表决已录入过编号为 {serial} 的{paper}"},
    "decisions.upheld_true_false": {EN: "upheld must be true or false", ZH: "upheld 必须是 true 或 false"},
    "decisions.community_worker_party_committee": {EN: "only a community worker or the party-committee "
                                                       "lead closes a ballot without a re-run",
                                                   ZH: "只有社区工作者或党组织负责人可以不重新表决而结束表决"},
    "decisions.ballot_does_exist_never": {EN: "ballot {bid} does not exist or never opened",
                                          ZH: "表决 {bid} 不存在或从未开始"},
    "decisions.ballot_recorded_result_yet": {EN: "ballot {bid} has no recorded result yet",
                                             ZH: "表决 {bid} 尚无记录的结果"},
    "decisions.voter_roll_frozen_when": {EN: "the voter roll is frozen when the ballot opens; it has not "
                                             "opened",
                                         ZH: "投票人名册在表决开始时冻结；表决尚未开始"},
    "decisions.vote_yours_recorded_ballot": {EN: "no vote of yours is recorded on this ballot",
                                             ZH: "此表决中没有您的投票记录"},
    "decisions.voting_unit_one": {EN: "voting_unit must be one of {voting_units}",
                                  ZH: "voting_unit 必须是以下之一：{voting_units}"},
    "decisions.ballot": {EN: "cannot {doing}: the ballot is {status}", ZH: "不能{doing}：表决当前状态为 {status}"},
    "decisions.ballot_open_rule_options": {EN: "the ballot is open: its rule, options and voter roll are "
                                               "frozen until it closes",
                                           ZH: "表决正在进行：其规则、选项和投票人名册在结束前均已冻结"},
    "decisions.rule_counts_votes_votes": {EN: "the {preset} rule counts {units_by_preset} votes, not "
                                              "{voting_unit} votes",
                                          ZH: "{preset} 规则按 {units_by_preset} 计票，"
                                              "而不是按 {voting_unit} 计票"},
    "decisions.rule_needs_days_notice": {EN: "the {preset} rule needs {notice_days} days' notice: open "
                                             "at {now} or later",
                                         ZH: "{preset} 规则需要提前 {notice_days} 天通知：请在 {now} 或之后开始"},
    "decisions.closes_after_opens": {EN: "closes_at must be after opens_at", ZH: "closes_at 必须晚于 opens_at"},
    "decisions.ballot_votes_longer_accepted": {EN: "the ballot is {status}: votes are no longer accepted",
                                               ZH: "表决当前状态为 {status}：不再接受投票"},
    "decisions.voting_closed_votes_longer": {EN: "voting closed at {closes_at}: votes are no longer "
                                                 "accepted",
                                             ZH: "投票已于 {closes_at} 截止：不再接受投票"},
    "decisions.proxy_authorised_once_ballot": {EN: "a proxy is authorised once the ballot is configured "
                                                   "and until voting closes: the ballot is {status}",
                                               ZH: "代理只能在表决配置完成后、投票截止前授权：表决当前状态为 {status}"},
    "decisions.ballot_voter_roll_roll": {EN: "not on this ballot's voter roll: the roll was frozen when "
                                             "the ballot opened",
                                         ZH: "不在此表决的投票人名册中：名册在表决开始时已冻结"},
    "decisions.invalid_choice": {EN: "invalid choice: {exc}", ZH: "选择无效：{exc}"},
    "decisions.publicity_period_ended": {EN: "the publicity period ended at {publicity_until}",
                                         ZH: "公示期已于 {publicity_until} 结束"},
    "decisions.objection_does_exist_ballot": {EN: "objection {objection} does not exist on this ballot",
                                              ZH: "此表决中不存在异议 {objection}"},
    "decisions.objections_ruled_consultation_convener": {EN: "objections are ruled on by the "
                                                             "consultation's convener",
                                                         ZH: "异议由协商的召集人裁定"},
    "decisions.objections_ballot_without_consultation": {EN: "objections to a ballot without a "
                                                             "consultation are ruled on by the "
                                                             "party-committee lead",
                                                         ZH: "对没有协商的表决提出的异议由党组织负责人裁定"},
    "decisions.objection_already_been_ruled": {EN: "this objection has already been ruled on",
                                               ZH: "此异议已经裁定过"},
    "decisions.publicity_period_runs_until": {EN: "the publicity period runs until {publicity_until}",
                                              ZH: "公示期持续到 {publicity_until}"},
    "decisions.objection_waiting_ruling": {EN: "an objection is waiting for a ruling", ZH: "有一项异议正在等待裁定"},
    "decisions.final_resolution_changed_new": {EN: "a final resolution can only be changed by a new case",
                                               ZH: "最终决议只能通过新事项改变"},
    "decisions.ballot_already_annulled": {EN: "the ballot is already annulled", ZH: "此表决已被撤销"},
    "decisions.ballot_will_re_run": {EN: "the ballot will not be re-run: its case was closed without a "
                                         "re-run",
                                     ZH: "此表决不会重新进行：其事项已在不重新表决的情况下结案"},
    "decisions.ballot_already_been_re": {EN: "the ballot has already been re-run as {rerun}",
                                         ZH: "此表决已重新进行，新表决为 {rerun}"},
    "decisions.ballot_already_been_closed": {EN: "the ballot has already been closed without a re-run",
                                             ZH: "此表决已在不重新表决的情况下结束"},
    "decisions.emergency_declared_two_people": {EN: "an emergency is declared by two people together: "
                                                    "someone else must confirm it",
                                                ZH: "紧急事项须由两人共同宣布：必须由另一人确认"},
    "decisions.emergency_needs_lead": {EN: "this emergency was declared by the community worker: it needs the "
                                           "party lead to confirm it",
                                       ZH: "此紧急事项由社区工作者宣布：需要党组织负责人确认"},
    "decisions.emergency_needs_worker": {EN: "this emergency was declared by the party lead: it needs the "
                                             "community worker to confirm it",
                                         ZH: "此紧急事项由党组织负责人宣布：需要社区工作者确认"},
    "decisions.emergency_declared_community_worker": {EN: "an emergency is declared by a community "
                                                          "worker or the party-committee lead",
                                                      ZH: "紧急事项由社区工作者或党组织负责人宣布"},
    "decisions.ballot_does_allow_changing": {EN: "this ballot does not allow changing a vote: the vote "
                                                 "with receipt {receipt} stands",
                                             ZH: "此表决不允许改票：回执为 {receipt} 的投票有效"},
    "decisions.proxy_already_authorised_voter": {EN: "a proxy is already authorised for this voter on "
                                                     "this ballot: it must be revoked first",
                                                 ZH: "此投票人在此表决中已授权了代理人：必须先撤销"},
    "decisions.proxy_authorisation_already_been": {EN: "this proxy authorisation has already been revoked",
                                                   ZH: "此代理授权已被撤销"},
    "decisions.person_already_holds_proxy": {EN: "this person already holds {held} proxy "
                                                 "authorisation(s) on this ballot; the community allows "
                                                 "{limit} per person",
                                             ZH: "此人在此表决中已持有 {held} 份代理授权；本社区每人最多允许 {limit} 份"},
    "decisions.voter_does_exist_community": {EN: "voter {voter} does not exist in this community",
                                             ZH: "本社区中不存在投票人 {voter}"},
    "decisions.community_worker_may": {EN: "only a community worker may {doing}", ZH: "只有社区工作者可以{doing}"},
    "decisions.ballot_not_open_yet": {EN: "the ballot is not open for voting yet", ZH: "表决尚未开始投票"},
    "decisions.ballot_not_open_yet_opens_at": {EN: "the ballot is not open for voting yet (it opens at "
                                                   "{opens_at})",
                                               ZH: "表决尚未开始投票（将于 {opens_at} 开始）"},
    "decisions.rules_refused": {EN: "{reason}", ZH: "计票规则不允许：{reason}"},
    "decisions.no_proxy_from_voter": {EN: "you hold no proxy authorisation from this voter on this "
                                          "ballot: a proxy votes only on an authorisation the voter gave "
                                          "on the platform, or a paper authorisation a community worker "
                                          "recorded with its serial",
                                      ZH: "您在此表决中没有此投票人的代理授权：代理人只能凭投票人在平台上给出的授权，"
                                          "或凭社区工作者连同编号录入的纸质授权投票"},
    "decisions.paper_ballot_came_first": {EN: "a paper ballot (serial {paper_serial}) was recorded first "
                                              "for this voter, and a voter votes through one channel "
                                              "only: this vote is refused (and kept in the record)",
                                          ZH: "此投票人已先有一张纸质选票（编号 {paper_serial}）的记录，"
                                              "而每位投票人只能通过一种渠道投票：此票被拒绝（并保留在记录中）"},
    "decisions.channel_vote_came_first": {EN: "a {channel} vote was recorded first for this voter, and a "
                                              "voter votes through one channel only: this vote is "
                                              "refused (and kept in the record)",
                                          ZH: "此投票人已先有一张 {channel} 渠道的投票记录，而每位投票人只能通过一种渠道投票："
                                              "此票被拒绝（并保留在记录中）"},
    "decisions.ballot_changed_look_again": {EN: "the ballot was changed at the same time; look at it "
                                                "again",
                                            ZH: "表决在同一时刻被修改；请重新查看"},
    "decisions.another_vote_same_moment": {EN: "another vote of this voter was recorded at the same "
                                               "moment: look at your current vote (and its receipt) "
                                               "before voting again",
                                           ZH: "同一时刻已记录了此投票人的另一张票：请先查看您当前的投票（及其回执）再重新投票"},
    "decisions.authorisation_recorded_same_moment": {EN: "an authorisation of this voter or this proxy "
                                                         "was recorded at the same moment; look again "
                                                         "and try again",
                                                     ZH: "同一时刻已记录了此投票人或此代理人的一项授权；请重新查看后重试"},
    "decisions.authorisation_changed_same_moment": {EN: "the authorisation was changed at the same "
                                                        "moment; look again",
                                                    ZH: "该授权在同一时刻被修改；请重新查看"},
    "decisions.ballot_changed_try_again": {EN: "the ballot was changed at the same time; try again",
                                           ZH: "表决在同一时刻被修改；请重试"},
    "decisions.ballot_re_run_same_time": {EN: "the ballot was re-run at the same time", ZH: "表决在同一时刻已重新进行"},
    "decisions.emergency_confirmed_same_time": {EN: "the emergency was confirmed at the same time",
                                                ZH: "紧急事项在同一时刻已被确认"},
}
