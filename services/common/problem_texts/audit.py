"""Problem details raised by the audit service (checkpoints, keys, proofs).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "audit.key_file_holds_key": {EN: "the key file {path} holds key {key_id}, but the audit log's "
                                     "current key is {current}: refusing to sign (restore the key file, "
                                     "or rotate with consult audit rotate-key)",
                                 ZH: "密钥文件 {path} 中是密钥 {key_id}，但审计日志当前的密钥是 {current}："
                                     "拒绝签名（请恢复密钥文件，或使用 consult audit rotate-key 轮换）"},
    "audit.read_ed_private_key": {EN: "cannot read an Ed25519 private key from {path}: {exc}",
                                  ZH: "无法从 {path} 读取 Ed25519 私钥：{exc}"},
    "audit.key_file_folder_writable": {EN: "the key file's folder {parent} is not writable: the new key "
                                           "could not be installed, so nothing was rotated",
                                       ZH: "密钥文件所在目录 {parent} 不可写：新密钥无法安装，因此未进行轮换"},
    "audit.key_already_signing_key": {EN: "key {new_id} is already the signing key",
                                      ZH: "密钥 {new_id} 已经是签名密钥"},
    "audit.key_was_used_before": {EN: "key {new_id} was used before; a rotation needs a new key",
                                  ZH: "密钥 {new_id} 以前用过；轮换需要一个新密钥"},
    "audit.community_checkpoint_yet": {EN: "community {community} has no checkpoint yet",
                                       ZH: "社区 {community} 还没有检查点"},
    "audit.community_checkpoint_size": {EN: "community {community} has no checkpoint of size {size}",
                                        ZH: "社区 {community} 没有大小为 {size} 的检查点"},
    "audit.platform_checkpoint_yet": {EN: "no platform checkpoint yet", ZH: "平台还没有检查点"},
    "audit.cell_not_witnessed": {EN: "the platform log has not witnessed cell {cell} yet",
                                 ZH: "平台日志还没有见证单元 {cell}"},
    "audit.entries_prove": {EN: "no entries to prove", ZH: "没有可证明的条目"},
    "audit.most_entries_one_bundle": {EN: "at most {max_bundle_entries} entries in one bundle",
                                      ZH: "一个证明包最多包含 {max_bundle_entries} 个条目"},
    "audit.since_size_from_checkpoint": {EN: "since must be a size from 0 to {n}, the checkpoint's",
                                         ZH: "since 必须是 0 到 {n}（该检查点的大小）之间的大小"},
    "audit.old_size_larger_than": {EN: "the old size must not be larger than the new one",
                                   ZH: "旧的大小不能大于新的大小"},
    "audit.from_whole_number_least": {EN: "from must be a whole number, at least 0", ZH: "from 必须是不小于 0 的整数"},
    "audit.event_audit_log_community": {EN: "event {event} is not in the audit log of community "
                                            "{community}",
                                        ZH: "事件 {event} 不在社区 {community} 的审计日志中"},
    "audit.give_entry_index_whole": {EN: "give the entry's index (a whole number, at least 0) or its "
                                         "event id",
                                     ZH: "请提供条目的序号（不小于 0 的整数）或其事件 ID"},
    "audit.audit_log_community_entry": {EN: "the audit log of community {community} has no entry {index}",
                                        ZH: "社区 {community} 的审计日志中没有条目 {index}"},
    "audit.case_entry_audit_log": {EN: "case {case} has no entry in the audit log",
                                   ZH: "审计日志中没有事项 {case} 的条目"},
    "audit.notice_refused": {EN: "{reason}", ZH: "无法生成公告：{reason}"},
    "audit.case_refused": {EN: "{reason}", ZH: "无法确定事项：{reason}"},
    "audit.entry_not_covered_wait": {EN: "entry {beyond} is not covered by a signed checkpoint yet (the "
                                         "latest covers {n} entries); the next checkpoint is cut within "
                                         "the configured interval",
                                     ZH: "条目 {beyond} 尚未被已签名的检查点覆盖（最新的检查点覆盖 {n} 个条目）；"
                                         "下一个检查点会在设定的间隔内生成"},
    "audit.entry_not_covered_cut": {EN: "entry {beyond} is not covered by a signed checkpoint yet (the "
                                        "latest covers {n} entries); cut one first (consult audit bundle "
                                        "--cut), or carry the entries after it unproven (--unsigned)",
                                    ZH: "条目 {beyond} 尚未被已签名的检查点覆盖（最新的检查点覆盖 {n} 个条目）；"
                                        "请先生成一个（consult audit bundle --cut），"
                                        "或不带证明地附上其后的条目（--unsigned）"},
}
