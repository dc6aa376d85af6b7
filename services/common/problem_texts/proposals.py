"""Problem details raised by the proposals service (proposals and their supports).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "proposals.proposal_does_exist": {EN: "proposal {pid} does not exist", ZH: "提案 {pid} 不存在"},
    "proposals.changed_same_time_nothing": {EN: "this changed at the same time; nothing was recorded, "
                                                "try again",
                                            ZH: "此内容在同一时刻被修改；未记录任何内容，请重试"},
    "proposals.category_one": {EN: "category must be one of: {categories}",
                               ZH: "category 必须是以下之一：{categories}"},
    "proposals.admissible_true_false": {EN: "admissible must be true or false",
                                        ZH: "admissible 必须是 true 或 false"},
    "proposals.residents_living_proposal_may": {EN: "only residents living in this proposal's {scope} "
                                                    "may support it",
                                                ZH: "只有居住在此提案所属{scope}内的居民才能附议"},
    "proposals.support_yours_proposal_withdraw": {EN: "there is no support of yours on this proposal to "
                                                      "withdraw",
                                                  ZH: "您没有附议此提案，无可撤回"},
    "proposals.proposal_merged_into_itself": {EN: "a proposal cannot be merged into itself", ZH: "提案不能合并到自身"},
    "proposals.target_proposal_scope_does": {EN: "the target proposal's scope does not cover this "
                                                 "proposal's scope",
                                             ZH: "目标提案的范围不涵盖此提案的范围"},
    "proposals.status_one": {EN: "status must be one of: {statuses}", ZH: "status 必须是以下之一：{statuses}"},
    "proposals.community_rules_support_threshold": {EN: "the community's rules have no support threshold "
                                                        "for the {scope} level",
                                                    ZH: "社区规则中没有 {scope} 层级的附议门槛"},
    "proposals.proposal_whole_community_takes": {EN: "a proposal for the whole community takes no "
                                                     "scope_id (or the community's id)",
                                                 ZH: "全社区范围的提案不接受 scope_id（或只能是社区本身的 ID）"},
    "proposals.proposal_one_needs_id": {EN: "a proposal for one {scope} needs the {scope}'s id as "
                                            "scope_id",
                                        ZH: "针对单个 {scope} 的提案需要以该 {scope} 的 ID 作为 scope_id"},
    "proposals.supports_here_given_per": {EN: "supports here are given per household, and you do not "
                                              "live in one",
                                          ZH: "此处按户附议，而您不属于任何住户"},
    "proposals.proposal_now": {EN: "this proposal is {status}; it cannot be {doing} now",
                               ZH: "此提案当前状态为 {status}；现在不能{doing}"},
    "proposals.proposal_author_may": {EN: "only the proposal's author may {doing} it",
                                      ZH: "只有提案作者可以{doing}此提案"},
    "proposals.proposal_qualified_longer": {EN: "this proposal has qualified; it can no longer be {doing}",
                                            ZH: "此提案已达到附议门槛；不能再{doing}"},
    "proposals.support_window_closed": {EN: "the support window closed at {deadline}",
                                        ZH: "附议期已于 {deadline} 结束"},
    "proposals.inadmissible_proposal_needs_written": {EN: "an inadmissible proposal needs a written "
                                                          "reason",
                                                      ZH: "不予受理的提案需要书面理由"},
    "proposals.supports_do_reach_threshold": {EN: "{supports} supports do not reach the threshold of "
                                                  "{threshold}",
                                              ZH: "{supports} 个附议未达到 {threshold} 的门槛"},
    "proposals.proposal_collecting_support_past": {EN: "this proposal is not collecting support past its "
                                                       "deadline",
                                                   ZH: "此提案并非在截止时间后仍在征集附议"},
    "proposals.proposal_qualified_longer_withdrawn": {EN: "this proposal has qualified; it can no longer "
                                                          "be withdrawn",
                                                      ZH: "此提案已达到附议门槛；不能再撤回"},
    "proposals.proposal_supports_merged_into": {EN: "this proposal has supports; it can only be merged "
                                                    "into one that collects support",
                                                ZH: "此提案已有附议；只能合并到正在征集附议的提案中"},
    "proposals.merge_source_proposal_first": {EN: "merge the source proposal first", ZH: "请先合并源提案"},
    "proposals.household_already_supports": {EN: "your household already supports this proposal",
                                             ZH: "您的住户已经附议了此提案"},
    "proposals.you_already_support": {EN: "you already support this proposal", ZH: "您已经附议了此提案"},
}
