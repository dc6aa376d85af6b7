"""Run one service process: `python -m services.common.runner <service>`."""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # noqa: E402 - must precede every other import

import importlib  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from . import cells, config, rpc  # noqa: E402
from .bus import BrokerUnavailable, check_broker  # noqa: E402


def nameko_config(settings: config.Settings, service: str) -> dict:
    return rpc.nameko_config(
        settings,
        WEB_SERVER_ADDRESS=f"{settings.bind}:{settings.http_port(service)}",
        max_workers=settings.max_workers,
        parent_calls_tracked=10,
    )


def service_class(service: str):
    module = importlib.import_module(f"services.{service}.service")
    return module.SERVICE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m services.common.runner <service>", file=sys.stderr)
        return 2
    service = argv[0]
    os.environ["CONSULT_SERVICE"] = service
    try:
        settings = config.load()
        cells.check_process(settings, service)
    except ValueError as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s {cells.label(service, settings.cell)} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kombu").setLevel(logging.WARNING)
    logging.getLogger("amqp").setLevel(logging.ERROR)
    try:
        check_broker(settings)
    except BrokerUnavailable as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return 3
    rpc.share_pool_keys()
    runner = ServiceRunner(nameko_config(settings, service))
    runner.add_service(service_class(service))

    def shutdown(signum, frame):  # noqa: ARG001
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.start()
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
