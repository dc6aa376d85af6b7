"""Reliability of the bus with real processes and the real broker: kills, duplicates, reordering,
loss, PostgreSQL position holes, parked messages, and events published before a consumer existed."""
from __future__ import annotations

import json
import re

import psycopg
import pytest
from kombu import Connection

from services.common import bus, config
from tests.harness import PG_URL, Platform, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _settings(p: Platform) -> config.Settings:
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"CONSULT_PREFIX": p.prefix, "CONSULT_AMQP_URI": p.env["CONSULT_AMQP_URI"]}):
        return config.load()


def _community_events(p: Platform, community: str) -> list[dict]:
    """The communities source log, as envelopes of one community, in order."""
    return p.log_of("communities", community)


def _audit_ids(p: Platform, c: dict) -> list[str]:
    return [e["event_id"] for e in p.audit_entries(c["id"], c["token"])]


def _assert_exactly_once_in_order(p: Platform, c: dict, timeout: float = 20) -> None:
    expected = [e["id"] for e in _community_events(p, c["id"])]
    wait_for(lambda: _audit_ids(p, c) == expected, timeout=timeout, message="the audit log to equal the source log")
    entries = p.audit_entries(c["id"], c["token"])
    assert [e["index"] for e in entries] == list(range(len(expected)))
    assert len(set(_audit_ids(p, c))) == len(expected)


class Lossy:
    """Unbind the audit queue so the relay's messages for it are lost, then hand-deliver some."""

    def __init__(self, p: Platform):
        self.p, self.settings = p, _settings(p)
        self.queue = bus.consumer_queue(self.settings, "audit", "communities")

    def __enter__(self):
        with Connection(self.p.env["CONSULT_AMQP_URI"]) as conn:
            self.queue(conn.default_channel).unbind_from(bus.exchange(self.settings), routing_key="communities.#")
        return self

    def __exit__(self, *exc):
        with Connection(self.p.env["CONSULT_AMQP_URI"]) as conn:
            self.queue(conn.default_channel).bind_to(bus.exchange(self.settings), routing_key="communities.#")

    def deliver(self, envelopes: list[dict]) -> None:
        with Connection(self.p.env["CONSULT_AMQP_URI"]) as conn:
            producer = conn.Producer()
            for env in envelopes:
                producer.publish(json.dumps(env).encode(), exchange="", routing_key=self.queue.name,
                                 content_type="application/json", delivery_mode=2, message_id=env["id"])


def _lost_events(p: Platform, c: dict, n: int = 4) -> tuple[Lossy, list[dict]]:
    lossy = Lossy(p)
    with lossy:
        for i in range(n):
            p.rpc("communities", "register_person", "tests", c["id"], f"居民 {i}", True, None, None)
    events = _community_events(p, c["id"])[-n:]
    return lossy, events


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def quiet(request):
    """A platform whose consumers never run their catch-up timer after start-up: only messages
    (and the source log they trigger reads of) can bring the audit log up to date."""
    with running(request.param, ["communities", "audit", "gateway"], CONSULT_CATCHUP_INTERVAL="3600") as p:
        yield p


def test_duplicated_messages_have_one_effect(quiet):
    c = quiet.new_community()
    lossy, ev = _lost_events(quiet, c)
    lossy.deliver([ev[0], ev[0], ev[1], ev[1], ev[2], ev[3], ev[3], ev[2]])
    _assert_exactly_once_in_order(quiet, c)


def test_reordered_messages_are_applied_in_source_order(quiet):
    c = quiet.new_community()
    lossy, ev = _lost_events(quiet, c)
    lossy.deliver([ev[1], ev[0], ev[3], ev[2]])
    _assert_exactly_once_in_order(quiet, c)


def test_a_dropped_message_is_read_from_the_source_log(quiet):
    c = quiet.new_community()
    lossy, ev = _lost_events(quiet, c)
    lossy.deliver([ev[0], ev[1], ev[3]])  # ev[2] never arrives
    _assert_exactly_once_in_order(quiet, c)
    assert re.search(r'consult_gaps_filled_total\{consumer="audit",source="communities"\} [1-9]',
                     quiet.metrics("audit"))


@pytest.mark.parametrize("quiet", ["postgres"], indirect=True)  # SQLite never burns ids
def test_holes_in_positions_never_stall_a_consumer(quiet):
    c = quiet.new_community()
    _assert_exactly_once_in_order(quiet, c)
    table = f'"{quiet.prefix}_communities_events".communities_events'
    with psycopg.connect(PG_URL) as conn:  # three rolled-back inserts burn three notification ids
        for i in range(3):
            with conn.transaction(force_rollback=True):
                conn.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                             "VALUES (gen_random_uuid(), 1, 'burn', '\\x00')")
    quiet.rpc("communities", "register_person", "tests", c["id"], "after the holes", True, None, None)
    _assert_exactly_once_in_order(quiet, c)
    positions = [e["position"] for e in _community_events(quiet, c["id"])]
    assert positions[-1] - positions[-2] >= 4, "the log really has a hole before the last event"


def test_a_dropped_last_message_is_caught_up_by_the_timer(platform):
    c = platform.new_community()
    lossy, ev = _lost_events(platform, c)
    lossy.deliver(ev[:-1])  # nothing after the last one will ever trigger a gap read
    _assert_exactly_once_in_order(platform, c)


def test_a_consumer_killed_mid_stream_catches_up_with_nothing_lost_or_doubled(platform):
    c = platform.new_community()
    rows = "\n".join(f"院坝,{1 + i // 50}栋,{100 + i},{50 + i % 40},业主{i}" for i in range(300))
    platform.api("POST", f"/api/v1/communities/{c['id']}/directory/import", c["token"],
                 data=f"compound,building,unit,area,owners\n{rows}\n".encode(),
                 headers={"Content-Type": "text/csv"}, expect=201)
    # Watched in the audit store itself (a read through the gateway takes long enough under load
    # for the audit service to finish the whole stream before the kill).
    wait_for(lambda: len(_audit_ids_direct(platform, c)) >= 20, timeout=60, interval=0.05,
             message="the stream to start")
    platform.kill("audit")
    seen = len(_audit_ids_direct(platform, c))
    platform.start("audit")
    # A restarted service first starts (seconds on a loaded machine), then works off ~600 events.
    _assert_exactly_once_in_order(platform, c, timeout=180)
    assert seen < len(_community_events(platform, c["id"])), "the kill happened mid-stream"


def _audit_ids_direct(platform, c):
    """Read the audit store while the audit service is down (through the gateway it is unreachable)."""
    import sqlalchemy as sa

    from services.audit import log as audit_log
    from services.common.store import state_engine

    settings = config.Settings(amqp_uri="", db=platform.env["CONSULT_DB"], data_dir=platform.dir / "data",
                               prefix=platform.prefix, test_mode=True, clock_file=None, relay_interval=1,
                               catchup_interval=1, retry_delays=())
    engine = state_engine("audit", settings)
    with engine.connect() as conn:
        ids = [r.event_id for r in conn.execute(sa.select(audit_log.entries.c.event_id).where(
            audit_log.entries.c.community == c["id"]))]
    engine.dispose()
    return ids


def test_a_failing_handler_parks_the_message_holds_the_stream_and_resumes_in_order(platform):
    c, other = platform.new_community("faulty"), platform.new_community("bystander")
    _assert_exactly_once_in_order(platform, c)
    _assert_exactly_once_in_order(platform, other)
    platform.set_faults([{"consumer": "audit", "community": c["id"]}])
    try:
        platform.rpc("communities", "register_person", "tests", c["id"], "触发故障", True, None, None)
        wait_for(lambda: 'consult_parked_messages{consumer="audit",source="communities"} 1.0'
                 in platform.metrics("audit"), timeout=20, message="the parked-message metric")
        listed = platform.cli("dlq", "list", "--json")
        parked = json.loads(listed.stdout)
        assert len(parked) == 1 and parked[0]["consumer"] == "audit" and parked[0]["source"] == "communities"
        assert "injected fault" in parked[0]["error"] and parked[0]["community"] == c["id"]
        # The stream is held: a later event of another community waits behind the parked one.
        platform.rpc("communities", "register_person", "tests", other["id"], "排队", True, None, None)
        import time

        time.sleep(3)
        assert len(_audit_ids(platform, other)) < len(_community_events(platform, other["id"]))
    finally:
        platform.set_faults([])
    out = platform.cli("dlq", "resume", "audit", "communities")
    assert "put back" in out.stdout
    _assert_exactly_once_in_order(platform, c)
    _assert_exactly_once_in_order(platform, other)
    wait_for(lambda: 'consult_parked_messages{consumer="audit",source="communities"} 0.0'
             in platform.metrics("audit"), timeout=10, message="the metric to clear")
    assert platform.cli("dlq", "list").stdout.strip() == "nothing is parked"


def test_events_published_before_a_consumer_ever_ran_are_processed_when_it_starts():
    p = Platform("sqlite", services=["communities", "audit"]).setup()
    try:
        p.start("communities")
        c = p.rpc("communities", "create_community", "tests", "before audit", None)["id"]
        for i in range(5):
            p.rpc("communities", "register_person", "tests", c, f"p{i}", True, None, None)
        p.start("audit")  # its queue was declared by the relay, from the registry, before publishing
        wait_for(lambda: p.rpc("audit", "size", c) == 6, timeout=20, message="the early events in the audit log")
        entries = p.rpc("audit", "entries", c, 0, 100)["entries"]
        assert [e["position"] for e in entries] == sorted(e["position"] for e in entries)
    finally:
        p.teardown()
