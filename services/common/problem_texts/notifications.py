"""Problem details raised by the notifications service (webhooks, deliveries, preferences).

Part of the one catalogue: see the package docstring."""
from .languages import EN, ZH

MESSAGES: dict[str, dict[str, str]] = {
    "notifications.url_https_address": {EN: "url must be an https:// address", ZH: "url 必须是 https:// 地址"},
    "notifications.secret_string_characters": {EN: "secret must be a string of 16 to 200 characters",
                                               ZH: "secret 必须是 16 到 200 个字符的文本"},
    "notifications.include_personal_data_true": {EN: "include_personal_data must be true or false",
                                                 ZH: "include_personal_data 必须是 true 或 false"},
    "notifications.webhook_endpoint_does_exist": {EN: "webhook endpoint {webhook} does not exist",
                                                  ZH: "Webhook 端点 {webhook} 不存在"},
    "notifications.message_does_exist": {EN: "message {delivery} does not exist", ZH: "消息 {delivery} 不存在"},
    "notifications.delivery_does_exist_community": {EN: "delivery {missing} does not exist in this "
                                                        "community",
                                                    ZH: "本社区中不存在投递 {missing}"},
    "notifications.delivery_does_exist": {EN: "delivery {delivery} does not exist", ZH: "投递 {delivery} 不存在"},
    "notifications.preferences_object": {EN: "preferences must be an object", ZH: "preferences 必须是一个对象"},
    "notifications.unknown_preference_settings": {EN: "unknown preference settings: {unknown}",
                                                  ZH: "未知的偏好设置：{unknown}"},
    "notifications.channels_list": {EN: "channels must be a list of: {channels}",
                                    ZH: "channels 必须是由以下各项组成的列表：{channels}"},
    "notifications.email_usable_mail_address": {EN: "email is not a usable e-mail address",
                                                ZH: "email 不是可用的电子邮件地址"},
    "notifications.email_channel_needs_email": {EN: "the email channel needs an email address",
                                                ZH: "电子邮件渠道需要一个电子邮件地址"},
    "notifications.digest_one": {EN: "digest must be one of: {digests}", ZH: "digest 必须是以下之一：{digests}"},
    "notifications.lang_one": {EN: "lang must be one of: {langs}", ZH: "lang 必须是以下之一：{langs}"},
    "notifications.delivery_already": {EN: "delivery {id} is already {status}",
                                       ZH: "投递 {id} 已经是 {status} 状态"},
    "notifications.delivery_failed_delivery_sent": {EN: "delivery {id} is {status}; only a failed "
                                                        "delivery is sent again",
                                                    ZH: "投递 {id} 的状态是 {status}；只有失败的投递才能重发"},
    "notifications.webhook_url_refused": {EN: "{reason}", ZH: "Webhook 地址不可用：{reason}"},
    "notifications.delivery_endpoint_removed": {EN: "delivery {id} cannot be sent again: its webhook "
                                                    "endpoint was removed; only a failed delivery is",
                                                ZH: "投递 {id} 不能重新发送：其 Webhook 端点已被移除；只有失败的投递才能重发"},
    "notifications.delivery_not_failed": {EN: "delivery {id} cannot be sent again: it is {status}; only "
                                              "a failed delivery is",
                                          ZH: "投递 {id} 不能重新发送：其状态为 {status}；只有失败的投递才能重发"},
}
