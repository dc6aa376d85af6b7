"""What this deployment is, in one place pages and clients read: production, or training (a
platform for practice, whose clock runs faster and whose record is marked and never verifies as a
production one). `GET /api/v1/deployment`; every API answer also says it in a header."""
from __future__ import annotations

import functools

from services.common import clock, config

from .router import PUBLIC, Call, route

HEADER = "Consult-Deployment"  # production | training, on every answer of the API
TAG = "deployment"

NOTICE = {  # what a page or client shows on a training deployment
    "zh-CN": "培训部署：本平台用于演练，时钟加速运行，所有记录、通知和公告都不是正式的。",
    "en": "Training deployment: this platform is for practice; its clock runs faster, and no record, notice or "
          "announcement it makes is real.",
}

RESPONSE = {
    "type": "object",
    "required": ["mode", "clock_speed", "now"],
    "properties": {
        "mode": {"type": "string", "enum": [config.PRODUCTION, config.TRAINING]},
        "clock_speed": {"type": "number", "description": "platform seconds per real second: 1 in production; "
                                                         "1440 (a day a minute) by default in training"},
        "now": {"type": "string", "format": "date-time", "description": "the platform's clock now"},
        "training_since": {"type": ["string", "null"], "format": "date-time",
                           "description": "when the training clock started (it read real time then)"},
        "notice": {"type": ["object", "null"], "description": "training only: a banner text, zh-CN and en"},
    },
}


@functools.cache
def mode() -> str:
    """This gateway's deployment, production or training: fixed for the process, so read once (it
    is put on every answer, and reading the settings again cost each request a pass over the
    whole environment)."""
    return config.load().deployment


def describe() -> dict:
    training = clock.training_clock()
    speed = training.speed if training is not None else 1
    return {"mode": mode(), "clock_speed": int(speed) if float(speed).is_integer() else speed,
            "now": clock.format(clock.now()),
            "training_since": clock.format(training.epoch) if training is not None else None,
            "notice": dict(NOTICE) if training is not None else None}


@route("GET", "/api/v1/deployment", summary="What this deployment is: production, or training (a faster clock, a "
       f"marked record); every answer of the API says it too, in the {HEADER} header", tag=TAG, roles=PUBLIC,
       response=RESPONSE)
def deployment(c: Call):
    return describe()
