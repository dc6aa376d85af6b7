"""Foundation benchmark: the directory's commands/s and the outbox relay's events/s, beside a bare
eventsourcing save loop and a bare nameko RPC loop, all measured in this process, per backend.

    python -m bench.foundation [--backend sqlite|postgres|both] [--ops 200] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid

from bench.common import rate, report


def _platform(backend: str):
    from tests.harness import Platform

    p = Platform(backend, services=["communities"]).setup()
    p.start("communities")
    return p


def run(backend: str, ops: int, runs: int) -> None:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate
    from kombu import Connection

    from services.common import config
    from services.common.aggregate import command_context
    from services.common.relay import OutboxRelay
    from services.common.store import ServiceApplication, state_engine
    from services.common.tables import create_all

    p = _platform(backend)
    try:
        os.environ.update({k: v for k, v in p.env.items() if k.startswith("CONSULT_")})
        os.environ.pop("CONSULT_SERVICE", None)
        settings = config.load()
        rows = []
        with p.rpc_proxy() as rpc:
            community = rpc.communities.create_community("bench", "bench", None)["result"]["id"]

            def commands():
                for i in range(ops):
                    reply = rpc.communities.register_person("bench", community, f"resident {i}", True, None, None)
                    assert reply["ok"], reply

            rows.append(("directory command (RPC register_person)", rate(ops, commands, runs)))

            def pings():
                for _ in range(ops):
                    rpc.communities.ping()

            rows.append(("bare nameko RPC loop (ping)", rate(ops, pings, runs)))

        # A bare eventsourcing save loop on the same backend (own store).
        bare_env = _bare_env(settings, backend)
        app = Application(env=bare_env)

        def bare():
            for _ in range(ops):
                app.save(Aggregate())

        rows.append(("bare eventsourcing save loop", rate(ops, bare, runs)))

        # The outbox relay: publish `ops` stored events with confirms, position recorded.
        relay_settings = config.Settings(**{**settings.__dict__, "prefix": settings.prefix + "_r"})
        engine = state_engine("benchrelay", relay_settings)
        create_all(engine)
        source_app = ServiceApplication(relay_settings, "benchrelay")
        relay = OutboxRelay("benchrelay", source_app, engine, relay_settings, batch=ops)

        def fill():
            from services.communities.domain import Compound

            with command_context(community=str(uuid.uuid4()), actor="bench"):
                source_app.save(*[Compound(community="bench", name=f"c{i}") for i in range(ops)])

        def publish():
            while relay.relay_once():
                pass
            relay.record_published(now=float("inf"))  # recorded at most every 0.5 s: here, once

        rows.append(("outbox relay (read, envelope, confirm, record)", rate(ops, publish, runs, setup=fill)))
        relay._reset_producer()

        with Connection(settings.amqp_uri, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            body = b'{"x":' + b"1" * 400 + b"}"

            def raw():
                for _ in range(ops):
                    producer.publish(body, exchange="", routing_key="bench-void", delivery_mode=2)

            rows.append(("bare kombu publish with confirms", rate(ops, raw, runs)))
        report(f"backend={backend} ops={ops} runs={runs} (medians)", rows, "bare eventsourcing save loop")
        rpc_base = dict(rows)["bare nameko RPC loop (ping)"]["median"]
        print(f"  directory command / bare RPC = {dict(rows)['directory command (RPC register_person)']['median'] / rpc_base:.3f}")
        source_app.close()
        engine.dispose()
    finally:
        p.teardown()


def _bare_env(settings, backend: str) -> dict:
    if backend == "postgres":
        from services.common.store import event_store_env

        env = event_store_env("benchbare", settings)
        return env
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": os.path.join(tempfile.mkdtemp(), "bare.sqlite3")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        run(backend, args.ops, max(args.runs, 5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
