"""Community cells' names (services/common/cells.py): what a stage service of a cell is called on
the broker and in the stores, and that a deployment without cells keeps every name it had."""
from __future__ import annotations

import pytest

from services.common import bus, cells, config, locks, registry, rpc
from services.common.envelope import routing_key

NO_CELLS = config.load({"CONSULT_PREFIX": "city"})
PLATFORM = config.load({"CONSULT_PREFIX": "city", "CONSULT_CELLS": "c1,c2"})
C1 = config.load({"CONSULT_PREFIX": "city", "CONSULT_CELLS": "c1,c2", "CONSULT_CELL": "c1"})
C2 = config.load({"CONSULT_PREFIX": "city", "CONSULT_CELLS": "c1,c2", "CONSULT_CELL": "c2"})


def test_a_deployment_without_cells_keeps_its_names():
    assert bus.queue_name(NO_CELLS, "audit", "proposals") == "city.audit.proposals"
    assert bus.consumer_queue(NO_CELLS, "audit", "proposals").routing_key == "proposals.#"
    assert rpc.service_queue(rpc.nameko_config(NO_CELLS), "proposals").name == "city.rpc-proposals"
    assert NO_CELLS.schema("proposals", "events") == "city_proposals_events"
    assert NO_CELLS.store_name("audit") == "audit"
    assert NO_CELLS.http_port("audit") == config.HTTP_PORTS["audit"]
    assert cells.processes(NO_CELLS, registry.SERVICES) == [(s, None) for s in registry.SERVICES]


def test_a_stage_service_of_a_cell_is_named_in_its_cell_the_platform_s_are_not():
    assert bus.queue_name(C1, "audit", "proposals") == "city.c1-audit.c1-proposals"
    assert bus.queue_name(C1, "audit", "communities") == "city.c1-audit.communities"
    assert bus.consumer_queue(C1, "audit", "communities").routing_key == "communities.#"
    assert bus.consumer_queue(C2, "decisions", "deliberation").routing_key == "c2-deliberation.#"
    assert bus.parked_name(C2, "audit", "actions") == "city.c2-audit.c2-actions.parked"
    assert rpc.service_queue(rpc.nameko_config(C1), "proposals").name == "city.rpc-c1-proposals"
    assert rpc.service_queue(rpc.nameko_config(C1), "proposals").routing_key == "c1-proposals.*"
    assert rpc.service_queue(rpc.nameko_config(C1), "communities").routing_key == "communities.*"
    assert C2.schema("decisions", "state") == "city_c2_decisions_state"
    assert C2.store_name("decisions") == "c2-decisions"
    assert PLATFORM.schema("communities", "events") == C1.schema("communities", "events") == "city_communities_events"
    # The events of a cell's source go out under its name in the cell; the envelope keeps its own.
    env = {"source": "proposals", "type": "ProposalSubmitted", "community": "k"}
    assert routing_key(env, bus.source_key(C1, "proposals")) == "c1-proposals.ProposalSubmitted.k"
    assert routing_key(env) == "proposals.ProposalSubmitted.k"


def test_every_name_on_the_broker_differs_between_cells_and_the_platform_s_are_shared():
    def names(settings):
        out = {q.name for q in rpc.service_queues(settings)}
        for consumer, sources in registry.SUBSCRIPTIONS.items():
            out |= {bus.queue_name(settings, consumer, source) for source in sources}
        return out

    shared = names(C1) & names(C2)
    # the platform's answer every cell: the directory, the gateway, and the platform audit, which
    # keeps the platform log spanning the cells (services/audit/span.py)
    assert shared == {"city.rpc-communities", "city.rpc-gateway", "city.rpc-audit"}
    assert names(C1) - shared and all("c1-" in n for n in names(C1) - shared)


def test_the_directory_s_relay_declares_a_queue_for_each_cell_s_consumers():
    declared = []

    class Channel:
        pass

    real = bus.declare
    bus.declare = lambda channel, settings, queue: declared.append(queue.name)
    try:
        class Exchange:
            def __call__(self, channel):
                return self

            def declare(self):
                pass

        original = bus.exchange
        bus.exchange = lambda settings: Exchange()
        try:
            bus.declare_for_source(Channel(), PLATFORM, "communities")
            platform_declared = list(declared)
            declared.clear()
            bus.declare_for_source(Channel(), C2, "proposals")
        finally:
            bus.exchange = original
    finally:
        bus.declare = real
    consumers = registry.consumers_of("communities")
    assert {n for n in platform_declared if not n.endswith(".parked")} == {
        f"city.{cell}-{c}.communities" for cell in ("c1", "c2") for c in consumers}
    assert {n for n in declared if not n.endswith(".parked")} == {
        f"city.c2-{c}.c2-proposals" for c in registry.consumers_of("proposals")}


def test_cells_share_a_host_on_ports_of_their_own_and_never_a_lock():
    assert C1.http_port("audit") == config.HTTP_PORTS["audit"] + 100
    assert C2.http_port("audit") == config.HTTP_PORTS["audit"] + 200
    assert C2.http_port("communities") == config.HTTP_PORTS["communities"]
    assert locks.advisory_id(C1, "relay", "proposals") != locks.advisory_id(C2, "relay", "proposals")
    assert locks.advisory_id(NO_CELLS, "relay", "proposals") == locks.advisory_id(PLATFORM, "relay", "proposals")


def test_the_processes_of_a_deployment_with_cells():
    assert cells.processes(PLATFORM, ["communities", "audit", "proposals", "gateway"]) == [
        ("communities", None), ("audit", "c1"), ("audit", "c2"), ("audit", None), ("proposals", "c1"),
        ("proposals", "c2"), ("gateway", None)]  # ("audit", None): the platform audit (services/audit/span.py)
    assert cells.in_process(PLATFORM, "audit", "c2").http_port("audit") == C2.http_port("audit")
    assert len({cells.in_process(PLATFORM, "audit", c).http_port("audit") for c in ("c1", "c2", None)}) == 3
    cells.check_process(C1, "audit")
    cells.check_process(PLATFORM, "gateway")
    cells.check_process(PLATFORM, "audit")  # the platform audit
    with pytest.raises(ValueError, match="set CONSULT_CELL"):
        cells.check_process(PLATFORM, "proposals")
    with pytest.raises(ValueError, match="unset it"):
        cells.check_process(C1, "communities")


@pytest.mark.parametrize("env, message", [
    ({"CONSULT_CELLS": "c1,C2"}, "no cell name"),
    ({"CONSULT_CELLS": "c1,c1"}, "twice"),
    ({"CONSULT_CELLS": "c1", "CONSULT_CELL": "c3"}, "not one of CONSULT_CELLS"),
    ({"CONSULT_CELL": "c1"}, "not one of CONSULT_CELLS"),
])
def test_a_cell_setting_that_cannot_be_meant_is_refused(env, message):
    with pytest.raises(ValueError, match=message):
        config.load(env)


def test_placements_are_asked_once_and_the_platform_s_records_go_to_the_first_cell():
    asked = []

    def ask(community):
        asked.append(community)
        return {"k1": "c1", "k2": "c2"}[community]

    placements = cells.Placements(C2, ask)
    assert placements.cell_of("k2") == "c2" and placements.cell_of("k2") == "c2" and asked == ["k2"]
    assert placements.is_own("k2") and not placements.is_own("k1")
    placements.learn("k3", "c1")
    assert placements.cell_of("k3") == "c1" and asked == ["k2", "k1"]
    assert placements.cell_of(None) == "c1"  # an administrator's token: the first cell keeps it
    assert cells.Placements(NO_CELLS, ask).cell_of("k1") is None and cells.Placements(NO_CELLS, ask).is_own("k1")


def test_consult_dlq_sees_every_cell_s_streams_and_the_directory_s_read_model_once():
    from services.cli import dlq

    streams = list(dlq._streams(PLATFORM))
    assert ("audit", "proposals", "c1") in streams and ("audit", "proposals", "c2") in streams
    assert ("audit", "communities", "c2") in streams
    assert [s for s in streams if s[:2] == (dlq.PROJECTION, "communities")] == [(dlq.PROJECTION, "communities", None)]
    assert (dlq.PROJECTION, "decisions", "c2") in streams
    assert bus.parked_name(PLATFORM, dlq.PROJECTION, "decisions", "c2") == bus.parked_name(C2, dlq.PROJECTION, "decisions")
    assert list(dlq._streams(C1)) == [s for s in streams if s[2] in ("c1", None)]
    assert {s[2] for s in dlq._streams(NO_CELLS)} == {None}
    assert len(list(dlq._streams(NO_CELLS))) == sum(map(len, registry.SUBSCRIPTIONS.values())) + len(registry.SOURCES)
