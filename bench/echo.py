"""The bare baseline service: one nameko RPC that publishes one event, nothing stored.

    python -m bench.echo      (AMQP from CONSULT_AMQP_URI)

A vote through the platform is, at its core, an RPC (gateway -> decisions) whose effect reaches a
consumer (audit) as an event. This service does that and nothing else, so the rate of RPC-plus-
event round trips it sustains, measured in the same run on the same broker, is the floor against
which the platform's votes and supports are compared.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # noqa: E402 - nameko needs green sockets, as every service process

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from nameko.events import EventDispatcher  # noqa: E402
from nameko.rpc import rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

NAME = "bench_echo"
EVENT = "echoed"


class Echo:
    name = NAME
    dispatch = EventDispatcher()

    @rpc
    def echo(self, payload):
        self.dispatch(EVENT, payload)
        return payload


def main() -> int:
    runner = ServiceRunner({"AMQP_URI": os.environ["CONSULT_AMQP_URI"], "serializer": "json",
                            "max_workers": int(os.environ.get("CONSULT_MAX_WORKERS", "10"))})
    runner.add_service(Echo)
    signal.signal(signal.SIGTERM, lambda *_: eventlet.spawn_n(runner.stop))
    runner.start()
    print("ready", flush=True)
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
