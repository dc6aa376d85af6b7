"""Notifications benchmark: notifications delivered per second to the inbox and to a local webhook,
beside the bare tracked-consume baseline, all measured in this process, per backend.

    python -m bench.notifications [--backend sqlite|postgres|both] [--runs 5]

Each measure runs the whole path of the notifications service on its real stores: the tracked
consumer's sink plans the deliveries (atomically with its tracking record), the sender renders
each message in the recipient's language, keeps its text, sends it and records
NotificationDelivered (for the inbox, the projection then writes the inbox row). The directory
and the stage services' texts are in-process fakes, so RPC round trips are not counted; the
webhook receiver is a local HTTP server that checks every signature.

- baseline: the tracked consumer's sink with a handler that does nothing (one tracking record per
  event) — the cost of consuming an event exactly once;
- inbox, one recipient per event (a screening told to its author);
- inbox, 100 recipients per event (a new proposal told to the residents of a building);
- webhook, 100 recipients per event, each with the inbox and a signed webhook (both counted).
"""
from __future__ import annotations

import argparse
import http.server
import os
import sys
import threading
import uuid

from bench.common import rate, report

SECRET = "bench-webhook-secret-0123456789"


class Directory:
    def __init__(self):
        self.residents: list[str] = []

    def residents_in_scope(self, community, scope, scope_id, at):
        return [{"person": p, "household": None, "adult": True} for p in self.residents]

    def role_holders(self, community, role, scope, at):
        return []


class Texts:
    def __init__(self):
        self.known: dict[str, str] = {}

    def read(self, wanted):
        return {c: self.known[c] for cs in wanted.values() for c in cs if c in self.known}


class Receiver:
    """A local webhook receiver that checks each signature (as a chat bot or SMS gateway would)."""

    def __init__(self):
        import time

        from services.notifications.channels import SIGNATURE_HEADER, verify_webhook_signature

        self.received, self.rejected = 0, 0
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify_webhook_signature(SECRET.encode(), self.headers[SIGNATURE_HEADER], body, time.time())
                me.received += ok
                me.rejected += not ok
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Bench:
    """One notifications application on the backend's real stores, fed envelopes as the bus would."""

    def __init__(self, settings, service: str):
        from services.common.consumer import EventSourcedSink
        from services.common.store import state_engine
        from services.common.tables import create_all
        from services.notifications import tables
        from services.notifications.application import NotificationsApp
        from services.notifications.channels import WebhookSender
        from services.notifications.dispatch import Dispatcher, SenderSettings, email_sender_from_env

        self.engine = state_engine(service, settings)
        create_all(self.engine, tables.metadata)
        self.app = NotificationsApp(settings, self.engine)
        self.directory, self.texts = Directory(), Texts()
        self.planner = EventSourcedSink(self.app, lambda env: self.app.plan(env, self.directory))
        self.bare = EventSourcedSink(self.app, lambda env: [])
        self.sender = Dispatcher(self.app, self.texts, email_sender_from_env({}), WebhookSender(),
                                 SenderSettings(batch=500))
        self.position = 0

    def envelope(self, community: str, type_: str, data: dict, aggregate: str, source: str = "proposals") -> dict:
        from services.common import clock, envelope

        self.position += 1
        return {"schema": envelope.SCHEMA, "id": str(uuid.uuid4()), "source": source, "position": self.position,
                "type": type_, "event_version": 1, "community": community,
                "aggregate": {"type": "Proposal", "id": aggregate, "version": 1},
                "occurred_at": clock.format(clock.now()), "actor": "bench", "case": aggregate, "causation": None,
                "data": data}

    def drafted(self, community: str) -> tuple[str, dict]:
        from services.common import envelope

        proposal = str(uuid.uuid4())
        title, _ = envelope.commit_text("3号院排水沟疏通")
        self.texts.known[title] = "3号院排水沟疏通"
        return proposal, self.envelope(community, "ProposalDrafted", {
            "author": str(uuid.uuid4()), "scope": "building", "scope_id": str(uuid.uuid4()),
            "title_commitment": title}, proposal)

    def send_all(self) -> int:
        sent = 0
        while True:
            done = self.sender.run_once()
            if not done:
                return sent
            sent += done

    def close(self):
        self.app.close()
        self.engine.dispose()


def run(backend: str, runs: int) -> None:
    from tests.harness import Platform

    from services.common import config

    p = Platform(backend, services=["communities"]).setup()
    receiver = Receiver()
    try:
        os.environ.update({k: v for k, v in p.env.items() if k.startswith("CONSULT_")})
        os.environ.pop("CONSULT_SERVICE", None)
        os.environ.pop("CONSULT_CLOCK_FILE", None)  # the real clock: webhook signatures are checked with it
        # The bench's own receiver listens on 127.0.0.1, which webhooks may not reach unless allowed.
        os.environ["CONSULT_WEBHOOK_ALLOWLIST"] = "127.0.0.1"
        b = Bench(config.load(), "notifications")
        rows = []

        events = 500

        def bare():
            community = str(uuid.uuid4())
            for _ in range(events):
                b.bare.handle("bare", b.envelope(community, "ProposalSubmitted", {}, str(uuid.uuid4()), "bare"))

        b.position = 0
        rows.append(("bare tracked consume (no-op handler), events", rate(events, bare, runs)))

        def scenario(n_events: int, fan_out: int, webhook: bool):
            """Setup and run for n_events events, each told to fan_out people."""
            work: list[dict] = []

            def setup():
                community = str(uuid.uuid4())
                b.directory.residents = [str(uuid.uuid4()) for _ in range(fan_out)]
                if webhook:
                    b.app.add_webhook("bench", community, receiver.url, SECRET)
                    for person in b.directory.residents:
                        b.app.set_preferences(community, person, {"channels": ["webhook"]})
                work.clear()
                for _ in range(n_events):
                    pid, drafted = b.drafted(community)
                    work.append(drafted)
                    opened = "ProposalCollectionOpened" if fan_out > 1 else "ProposalScreened"
                    work.append(b.envelope(community, opened, {"admissible": True, "deadline": drafted["occurred_at"]},
                                           pid))

            def go():
                for env in work:
                    b.planner.handle("proposals", env)
                b.send_all()

            return setup, go

        for name, n_events, fan_out, webhook in (
            ("inbox, 1 recipient per event, notifications", 200, 1, False),
            ("inbox, 100 recipients per event, notifications", 5, 100, False),
            ("inbox + webhook, 100 recipients per event, notifications", 3, 100, True),
        ):
            setup, go = scenario(n_events, fan_out, webhook)
            ops = n_events * fan_out * (2 if webhook else 1)
            rows.append((name, rate(ops, go, runs, setup=setup)))
        assert receiver.rejected == 0, "every webhook signature checks"
        report(f"backend={backend} runs={runs} (medians; notifications = deliveries recorded as delivered)", rows,
               "bare tracked consume (no-op handler), events")
        print(f"  webhook deliveries received and verified: {receiver.received}")
        b.close()
    finally:
        receiver.close()
        p.teardown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        run(backend, max(args.runs, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
