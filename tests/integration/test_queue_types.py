"""Quorum queues on the real broker (CONSULT_QUEUE_TYPE, services/common/bus.py): a platform that
declares every queue of its event bus quorum, keeps a single active consumer per stream and parks a
poison message itself; and a deployment whose queues were declared classic, which a quorum process
refuses at start with the setting named, and which runs on with CONSULT_QUEUE_TYPE=classic."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kombu import Producer, Queue

from services.common import bus, config, registry, rpc
from tests.harness import ROOT, Platform, _rabbitmqctl, running, wait_for
from tests.integration.proposals_world import Neighbourhood

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def quorum():
    with running("sqlite", ["communities", "audit", "proposals", "gateway"], CONSULT_QUEUE_TYPE="quorum") as p:
        yield p


def queues(p: Platform) -> dict[str, dict]:
    """Every queue of the platform's vhost: name -> {"type", "arguments", "exclusive"}."""
    rows = json.loads(_rabbitmqctl("list_queues", "-p", p.vhost, "name", "type", "arguments", "exclusive",
                                   "--formatter", "json"))
    # arguments come as [name, type, value]; a quorum queue's "exclusive" as "" (never exclusive)
    return {r["name"]: {"type": r["type"], "arguments": {a[0]: a[-1] for a in r["arguments"]},
                        "exclusive": r["exclusive"] is True} for r in rows}


def bus_queue_names(p: Platform) -> set[str]:
    return {f"{p.prefix}.{consumer}.{source}{suffix}" for consumer, sources in registry.SUBSCRIPTIONS.items()
            for source in sources for suffix in ("", ".parked", ".rejected")}


def consumers_of(p: Platform, queue: str) -> list[dict]:
    rows = json.loads(_rabbitmqctl("list_consumers", "-p", p.vhost, "queue_name", "active", "activity_status",
                                   "--formatter", "json"))
    return [r for r in rows if r["queue_name"] == queue]


def test_a_proposal_travels_over_quorum_queues_each_stream_read_by_one_consumer(quorum):
    n = Neighbourhood(quorum)
    author = n.residents(n.buildings[0], 1)[0]
    proposal = n.draft(author)
    assert any(e["type"] == "ProposalDrafted" and e["aggregate"]["id"] == proposal for e in n.settled())

    found = queues(quorum)
    expected = bus_queue_names(quorum)
    assert expected <= set(found)  # check_broker declared every stream's queues at start
    for name in expected:
        assert found[name]["type"] == "quorum", (name, found[name])
        assert found[name]["arguments"]["x-delivery-limit"] == bus.DELIVERY_LIMIT, name
        stream_queue = not name.endswith((".parked", ".rejected"))
        assert found[name]["arguments"].get("x-single-active-consumer", False) is stream_queue, name
    # A queue of one process alone stays classic: the gateway's exclusive revocation queue.
    revocations = [q for name, q in found.items() if name.startswith(f"{quorum.prefix}.gateway.revocations.")]
    assert revocations and all(q["type"] == "classic" and q["exclusive"] for q in revocations)

    # Two audit instances: of each stream's two consumers, one reads and one waits.
    stream = f"{quorum.prefix}.audit.proposals"
    replica = quorum.start_replica("audit")
    try:
        wait_for(lambda: len(consumers_of(quorum, stream)) == 2, timeout=30, message="the replica's consumer")
        statuses = sorted(c["activity_status"] for c in consumers_of(quorum, stream))
        assert statuses == ["single_active", "waiting"], statuses
        second = n.draft(author, title="修补围墙")
        assert any(e["aggregate"]["id"] == second for e in n.settled())
    finally:
        quorum.stop(replica)


def test_replies_are_taken_without_acks_and_requests_with_them(quorum):
    """A reply queue is its process's own, so its replies are taken without acks (one frame and one
    settlement fewer per call); a service's request queue keeps them, so a request taken and not
    answered goes back. Asked of the broker, after calls through the gateway answered."""
    c = quorum.new_community("acks")
    assert quorum.api("GET", "/api/v1/me", c["token"], expect=200).json()["person"]
    rows = json.loads(_rabbitmqctl("list_consumers", "-p", quorum.vhost, "queue_name", "ack_required",
                                   "--formatter", "json"))
    # a service container's proxies (a standalone proxy -- the CLI's, this test's -- keeps nameko's acks)
    replies = [r for r in rows if r["queue_name"].startswith(f"{quorum.prefix}.rpc.reply-")
               and "standalone_rpc_proxy" not in r["queue_name"]]
    requests = [r for r in rows if r["queue_name"].startswith(f"{quorum.prefix}.rpc-")]
    assert {r["queue_name"].split(".rpc.reply-")[1].split("-")[0] for r in replies} >= {"gateway", "proposals"}
    serving = [s for s in ("communities", "audit", "proposals", "gateway") if s in rpc.SERVING]
    assert {r["queue_name"] for r in requests} == {rpc.service_queue_name(quorum.prefix, s) for s in serving}
    assert all(r["ack_required"] is False for r in replies), replies
    assert all(r["ack_required"] is True for r in requests), requests


def test_votes_reach_the_audit_log_s_queue_and_not_the_queues_of_consumers_that_read_them_from_the_log(quorum):
    """registry.FROM_LOG on RabbitMQ: actions' queue for the decisions log, declared by an earlier
    version with the catch-all binding, is bound anew to every decisions type but votes; the broker
    then routes a vote to the audit log's queue only, a ballot's opening to both. A deployment of
    its own on the vhost (its own prefix), so that no running consumer takes the messages."""
    s = config.load({**quorum.env, "CONSULT_PREFIX": f"{quorum.prefix}x"})
    name = bus.queue_name(s, "actions", "decisions")
    with bus.connect(s, confirm=True) as conn:
        channel = conn.channel()
        Queue(name, exchange=bus.exchange(s), routing_key="decisions.#", durable=True,
              queue_arguments=bus.queue_arguments(s.queue_type, single_active_consumer=True))(channel).declare()
        for consumer in ("actions", "audit"):
            bus.declare_for_consumer(channel, s, consumer)
        producer = Producer(channel, exchange=bus.exchange(s))
        for kind in ("VoteCast", "VoteChanged", "BallotOpened"):
            producer.publish({"type": kind}, routing_key=f"decisions.{kind}.c1")

        def held(queue: str) -> int:
            return channel.queue_declare(queue, passive=True).message_count

        wait_for(lambda: held(bus.queue_name(s, "audit", "decisions")) == 3 and held(name) >= 1, timeout=30,
                 message="the three messages in the audit log's queue, one in actions'")
        assert held(name) == 1, "only the ballot's opening: the votes are read from the log"
        for queue in (name, bus.queue_name(s, "audit", "decisions")):
            channel.queue_purge(queue)


def test_a_poison_message_is_parked_by_the_consumer_not_dropped_by_the_broker(quorum):
    c = quorum.new_community("poison")
    parked = f"{quorum.prefix}.audit.communities.parked"
    quorum.set_faults([{"consumer": "audit", "community": c["id"]}])
    try:
        quorum.rpc("communities", "register_person", "tests", c["id"], "触发故障", True, None, None)
        wait_for(lambda: 'consult_parked_messages{consumer="audit",source="communities"} 1.0'
                 in quorum.metrics("audit"), timeout=30, message="the parked-message metric")
        # Listing reads the parked messages without taking them: each listing is a return to a
        # quorum queue, counted against its delivery limit, and the message stays.
        for _ in range(3):
            listed = json.loads(quorum.cli("dlq", "list", "--json").stdout)
            assert [(m["consumer"], m["source"], m["community"]) for m in listed] == [("audit", "communities", c["id"])]
            assert "injected fault" in listed[0]["error"]
        assert queues(quorum)[parked]["type"] == "quorum"
    finally:
        quorum.set_faults([])
    assert "put back" in quorum.cli("dlq", "resume", "audit", "communities").stdout
    expected = [e["id"] for e in _community_events(quorum, c["id"])]
    wait_for(lambda: [e["event_id"] for e in quorum.audit_entries(c["id"], c["token"])] == expected, timeout=30,
             message="the audit log to take the event once the stream is resumed")
    assert quorum.cli("dlq", "list").stdout.strip() == "nothing is parked"


def _community_events(p: Platform, community: str) -> list[dict]:
    """The communities source log, as envelopes of one community, in order."""
    return p.log_of("communities", community)


def test_classic_queues_stop_a_quorum_service_at_start_run_on_with_the_classic_setting_and_migrate():
    p = Platform("sqlite", services=["communities", "audit", "gateway"]).setup()
    try:
        # A deployment whose queues were declared classic (before CONSULT_QUEUE_TYPE, or with =classic).
        bus.declare_all(config.load(dict(p.env, CONSULT_QUEUE_TYPE="classic")))
        started = subprocess.run([sys.executable, "-m", "services.common.runner", "audit"], cwd=ROOT,
                                 env=dict(p.env, CONSULT_QUEUE_TYPE="quorum"), capture_output=True, text=True,
                                 timeout=120)
        assert started.returncode == 3, started.stderr[-2000:]
        assert "exists on RabbitMQ as a classic queue" in started.stderr
        assert "Set CONSULT_QUEUE_TYPE=classic to run this deployment on its classic queues" in started.stderr
        assert "Traceback" not in started.stderr

        p.env["CONSULT_QUEUE_TYPE"] = "classic"
        p.start()
        c = p.new_community("classic")
        _wait_audited(p, c)
        found = queues(p)
        assert all(found[name]["type"] == "classic" for name in bus_queue_names(p))
        assert found[f"{p.prefix}.audit.communities"]["arguments"] == {"x-single-active-consumer": True}

        # The migration docs/architecture.md describes: with the platform stopped, delete the bus's
        # queues and start it on quorum. An event that waited in a deleted queue is not lost: the
        # consumer reads it from its source's log.
        p.stop("audit")
        p.rpc("communities", "register_person", "tests", c["id"], "迁移前", True, None, None)
        p.stop()
        rpc_queues = {rpc.service_queue_name(p.prefix, s) for s in rpc.SERVING}
        # Over one AMQP connection: a rabbitmqctl call per queue costs a second or two each.
        with bus.connect(p.settings) as conn:
            channel = conn.channel()
            for name in bus_queue_names(p) | (rpc_queues & set(queues(p))):
                channel.queue_delete(name)
        p.env["CONSULT_QUEUE_TYPE"] = "quorum"
        p.start()
        _wait_audited(p, c)
        found = queues(p)  # one rabbitmqctl call (a second or more each)
        assert all(found[name]["type"] == "quorum" for name in bus_queue_names(p))
        assert found[f"{p.prefix}.rpc-communities"]["type"] == "quorum", "the RPC queues moved too"
    finally:
        p.teardown()


def _wait_audited(p: Platform, c: dict) -> None:
    wait_for(lambda: [e["event_id"] for e in p.audit_entries(c["id"], c["token"])]
             == [e["id"] for e in _community_events(p, c["id"])], timeout=30,
             message="the community's events in the audit log")
