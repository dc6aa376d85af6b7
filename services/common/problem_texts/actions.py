"""Problem details raised by the actions service (action plans, tasks, evidence, evaluations, case closing).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "actions.closed_from_before_closed": {EN: "closed_from must be before closed_to",
                                          ZH: "closed_from 必须早于 closed_to"},
    "actions.evidence_file_may_most": {EN: "an evidence file may be at most {max_bytes} bytes; this one "
                                           "is {size}",
                                       ZH: "证据文件最多 {max_bytes} 字节；此文件有 {size} 字节"},
    "actions.content_base_file_base": {EN: "content_base64 must be the file, base64-encoded",
                                       ZH: "content_base64 必须是经 base64 编码的文件"},
    "actions.content_base_valid_base": {EN: "content_base64 is not valid base64",
                                        ZH: "content_base64 不是有效的 base64"},
    "actions.evidence_file_empty": {EN: "the evidence file is empty", ZH: "证据文件是空的"},
    "actions.evidence_does_exist": {EN: "evidence {digest} does not exist", ZH: "证据 {digest} 不存在"},
    "actions.evidence_longer_matches_hash": {EN: "evidence {digest} no longer matches its hash: the file "
                                                 "was altered",
                                             ZH: "证据 {digest} 与其哈希值不再相符：文件已被改动"},
    "actions.plan_does_exist": {EN: "plan {plan} does not exist", ZH: "行动计划 {plan} 不存在"},
    "actions.community_worker_party_committee": {EN: "only a community worker or the party-committee "
                                                     "lead opens an action plan directly",
                                                 ZH: "只有社区工作者或党组织负责人可以直接开启行动计划"},
    "actions.scope_needs_scope_id": {EN: "a {scope} scope needs scope_id", ZH: "{scope} 范围需要提供 scope_id"},
    "actions.community_wide_plan_takes": {EN: "a community-wide plan takes no scope_id (or the "
                                              "community's id)",
                                          ZH: "全社区范围的计划不接受 scope_id（或只能是社区本身的 ID）"},
    "actions.case_already_action_plan": {EN: "case {case} already has an action plan",
                                         ZH: "事项 {case} 已经有行动计划"},
    "actions.case_does_exist": {EN: "case {case} does not exist", ZH: "事项 {case} 不存在"},
    "actions.case_closed_new_case": {EN: "case {case} is closed: only a new case can change its outcome",
                                     ZH: "事项 {case} 已结案：只有新事项才能改变其结果"},
    "actions.case_reached_decision_agreement": {EN: "case {case} has reached no decision or agreement "
                                                    "yet: a plan opens on a final resolution, an "
                                                    "emergency or a consultation concluded in agreement",
                                                ZH: "事项 {case} 尚未形成决定或共识：行动计划只能基于最终决议、紧急事项或以共识结束的协商而开启"},
    "actions.party_committee_lead_closes": {EN: "only the party-committee lead closes a case",
                                            ZH: "只有党组织负责人可以结案"},
    "actions.case_already_closed": {EN: "case {case} is already closed ({outcome})",
                                    ZH: "事项 {case} 已结案（{outcome}）"},
    "actions.case_already_ended_closing": {EN: "case {case} has already ended ({ended}); its closing is "
                                               "being recorded",
                                           ZH: "事项 {case} 已经结束（{ended}）；正在记录其结案"},
    "actions.case_was_closed_same": {EN: "case {case} was closed at the same moment",
                                     ZH: "事项 {case} 在同一时刻已被结案"},
    "actions.community_worker_party_committee_lead": {EN: "only a community worker or the "
                                                          "party-committee lead assigns tasks",
                                                      ZH: "只有社区工作者或党组织负责人可以分配任务"},
    "actions.responsible_party_kind_one": {EN: "responsible_party.kind must be one of: "
                                               "{responsible_kinds}",
                                           ZH: "responsible_party.kind 必须是以下之一：{responsible_kinds}"},
    "actions.person_does_exist": {EN: "person {person} does not exist", ZH: "人员 {person} 不存在"},
    "actions.progress_reported_task_responsible": {EN: "progress is reported by the task's responsible "
                                                       "party (or a community worker for them)",
                                                   ZH: "进展由任务的责任方报告（或由社区工作者代为报告）"},
    "actions.evidence_list_sha_hashes": {EN: "evidence must be a list of SHA-256 hashes",
                                         ZH: "evidence 必须是 SHA-256 哈希值的列表"},
    "actions.upload_evidence_first_stored": {EN: "upload the evidence first: {missing} is not stored",
                                             ZH: "请先上传证据：{missing} 尚未保存"},
    "actions.community_worker_party_committee_lead_reports": {EN: "only a community worker or the "
                                                                  "party-committee lead reports a plan "
                                                                  "done",
                                                              ZH: "只有社区工作者或党组织负责人可以报告计划已完成"},
    "actions.rating_one": {EN: "rating must be one of: {ratings}", ZH: "rating 必须是以下之一：{ratings}"},
    "actions.task_does_exist": {EN: "task {task} does not exist", ZH: "任务 {task} 不存在"},
    "actions.case_does_exist_audit": {EN: "case {case} does not exist (or the audit log has not recorded "
                                          "it yet)",
                                      ZH: "事项 {case} 不存在（或审计日志尚未记录它）"},
    "actions.budget_decimal_string_such": {EN: "budget must be a decimal string such as '12800.00'",
                                           ZH: "budget 必须是十进制字符串，例如 '12800.00'"},
    "actions.budget_decimal_number": {EN: "budget is not a decimal number: {value}",
                                      ZH: "budget 不是十进制数：{value}"},
    "actions.budget_non_negative_amount": {EN: "budget must be a non-negative amount in yuan",
                                           ZH: "budget 必须是以元为单位的非负金额"},
    "actions.budget_more_than_two": {EN: "budget has more than two decimal places", ZH: "budget 的小数超过两位"},
    "actions.fraction_written_like": {EN: "{name} must be a fraction written like '1/3'",
                                      ZH: "{name} 必须是形如 '1/3' 的分数"},
    "actions.basis_one": {EN: "basis must be one of: {bases}", ZH: "basis 必须是以下之一：{bases}"},
    "actions.plan_opened_directly_needs": {EN: "a plan opened directly needs its basis written down",
                                           ZH: "直接开启的计划需要写明其依据"},
    "actions.plan": {EN: "cannot {doing}: the plan is {status}", ZH: "不能{doing}：计划当前状态为 {status}"},
    "actions.task_does_exist_plan": {EN: "task {task} does not exist in this plan", ZH: "此计划中不存在任务 {task}"},
    "actions.plan_most_tasks": {EN: "a plan has at most {max_tasks} tasks", ZH: "一个计划最多有 {max_tasks} 项任务"},
    "actions.task_already_exists": {EN: "task {task} already exists", ZH: "任务 {task} 已存在"},
    "actions.responsible_party_one": {EN: "the responsible party must be one of: {responsible_kinds}",
                                      ZH: "责任方必须是以下之一：{responsible_kinds}"},
    "actions.due_future_now": {EN: "due_at must be in the future (now is {now})",
                               ZH: "due_at 必须是将来的时间（现在是 {now}）"},
    "actions.funding_source_one": {EN: "funding_source must be one of: {funding_sources}",
                                   ZH: "funding_source 必须是以下之一：{funding_sources}"},
    "actions.budget_needs_funding_source": {EN: "a budget needs its funding source (e.g. "
                                                "maintenance_fund)",
                                            ZH: "预算需要注明资金来源（例如 maintenance_fund）"},
    "actions.task_complete_progress_longer": {EN: "this task is complete; progress can no longer be "
                                                  "reported on it",
                                              ZH: "此任务已完成；不能再报告进展"},
    "actions.percent_whole_number_from": {EN: "percent must be a whole number from 0 to 100",
                                          ZH: "percent 必须是 0 到 100 之间的整数"},
    "actions.evidence_most_sha_hashes": {EN: "evidence must be at most {max_evidence} SHA-256 hashes (64 "
                                             "lowercase hex digits)",
                                         ZH: "evidence 最多包含 {max_evidence} 个 SHA-256 哈希值（64 位小写十六进制数字）"},
    "actions.evidence_file_listed_twice": {EN: "an evidence file is listed twice", ZH: "同一个证据文件被列了两次"},
    "actions.plan_without_tasks_done": {EN: "a plan without tasks cannot be done: assign its tasks first",
                                        ZH: "没有任务的计划不能完成：请先分配任务"},
    "actions.task_complete_yet": {EN: "{unfinished_count} task(s) are not complete yet",
                                  ZH: "还有 {unfinished_count} 项任务未完成"},
    "actions.evaluation_window_least_one": {EN: "the evaluation window must be at least one day",
                                            ZH: "评价期至少为一天"},
    "actions.evaluation_opened_opens_when": {EN: "the evaluation has not opened: it opens when the plan "
                                                 "is reported done",
                                             ZH: "评价尚未开始：计划报告完成后才开始"},
    "actions.evaluation_closed": {EN: "the evaluation closed at {closes_at}", ZH: "评价已于 {closes_at} 结束"},
    "actions.evaluation_window_closed": {EN: "the evaluation window closed at {closes_at}",
                                         ZH: "评价期已于 {closes_at} 结束"},
    "actions.adult_residents_living_plan": {EN: "only the adult residents living in the plan's scope "
                                                "when the evaluation opened may evaluate it",
                                            ZH: "只有评价开始时居住在计划范围内的成年居民才能评价"},
    "actions.evaluation_due_close_yet": {EN: "the evaluation is not due to close yet", ZH: "评价尚未到结束时间"},
    "actions.more_ratings_than_residents": {EN: "more ratings than residents asked: the count is "
                                                "inconsistent",
                                            ZH: "评价数多于受邀居民数：计数不一致"},
    "actions.merged_case_names_case": {EN: "a merged case names the case it was merged into",
                                       ZH: "被合并的事项需要写明合并到哪个事项"},
    "actions.closing_case_needs_reason": {EN: "closing a case needs its reason", ZH: "结案需要写明理由"},
    "actions.evidence_file_one_contents": {EN: "an evidence file must be one of {allowed}, as its "
                                               "contents show; these contents are none of them",
                                           ZH: "证据文件按其内容必须是以下类型之一：{allowed}；此文件的内容都不是"},
    "actions.media_type_does_match": {EN: "media_type does not match the file: its contents are {found}",
                                      ZH: "media_type 与文件不符：文件内容是 {found}"},
}
