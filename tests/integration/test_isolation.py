"""Two deployments on one RabbitMQ vhost, told apart by CONSULT_PREFIX alone (staging beside
production, two cities on one broker, two people trying the demo): each serves only its own calls
and events, and the CLI talks to the deployment its prefix names.

The shared platform is one deployment; a second one (directory, audit, gateway) runs beside it on
the same vhost with its own prefix, port range and stores."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.harness import ROOT, Platform, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def neighbour(platform):
    with running(platform.backend, ["communities", "audit", "gateway"], vhost_of=platform) as other:
        assert other.vhost == platform.vhost and other.prefix != platform.prefix
        yield other


def create_communities(p: Platform, n: int) -> list[str]:
    admin = p.admin_token
    return [p.api("POST", "/api/v1/communities", admin, {"name": f"{p.prefix} {i}"}, expect=201).json()["id"]
            for i in range(n)]


def pairs(platform: Platform, neighbour: Platform):
    return ((platform, neighbour), (neighbour, platform))


def test_a_community_created_in_one_deployment_is_unknown_to_the_other(platform, neighbour):
    # Several calls each: with a shared RPC queue about half of them would be served by the
    # other deployment's directory.
    created = {platform.prefix: create_communities(platform, 4), neighbour.prefix: create_communities(neighbour, 4)}
    for p, other in pairs(platform, neighbour):
        own, foreign = set(created[p.prefix]), set(created[other.prefix])
        listed = {c["id"] for c in p.rpc("communities", "list_communities")}
        assert own <= listed and not foreign & listed
        admin = p.admin_token
        via_gateway = {c["id"] for c in p.api("GET", "/api/v1/communities", admin, expect=200).json()}
        assert own <= via_gateway and not foreign & via_gateway
        for c in own:
            p.api("GET", f"/api/v1/communities/{c}", admin, expect=200)
        for c in foreign:
            p.api("GET", f"/api/v1/communities/{c}", admin, expect=404)


def test_their_audit_logs_are_disjoint(platform, neighbour):
    created = {platform.prefix: create_communities(platform, 2), neighbour.prefix: create_communities(neighbour, 2)}
    for p in (platform, neighbour):
        for c in created[p.prefix]:
            wait_for(lambda: p.rpc("audit", "size", c) > 0, timeout=60, message=f"{p.prefix}'s audit of {c}")
    time.sleep(3)  # three catch-up ticks (CONSULT_CATCHUP_INTERVAL=1): time to read another's log, if it could
    logged = {}
    for p, other in pairs(platform, neighbour):
        events = set()
        for c in created[p.prefix]:
            entries = p.rpc("audit", "entries", c, 0, 1000)["entries"]
            assert entries and all(e["envelope"]["community"] == c for e in entries)
            assert "CommunityCreated" in {e["type"] for e in entries}
            events |= {e["event_id"] for e in entries}
        for c in created[other.prefix]:
            assert p.rpc("audit", "size", c) == 0, f"{p.prefix}'s audit holds {other.prefix}'s community {c}"
        logged[p.prefix] = events
    assert not logged[platform.prefix] & logged[neighbour.prefix]


def test_a_cli_call_answers_from_its_own_deployment(platform, neighbour, tmp_path):
    token = neighbour.cli("admin-token").stdout.strip()
    neighbour.api("GET", "/api/v1/communities", token, expect=200)
    platform.api("GET", "/api/v1/communities", token, expect=401)

    [community] = create_communities(platform, 1)
    units = tmp_path / "units.csv"
    units.write_text("compound,building,unit,area,owners\n1号院,1栋,101,80,隔壁 Geb\n", encoding="utf-8")
    refused = neighbour.cli("directory", "import", str(units), "--community", community, check=False)
    assert refused.returncode == 1 and community in refused.stderr and "exist" in refused.stderr, refused.stderr
    platform.cli("directory", "import", str(units), "--community", community)
    assert [h["unit"] for h in platform.rpc("communities", "directory", community)["households"]] == ["101"]

    wait_for(lambda: platform.rpc("audit", "size", community) > 0, timeout=60, message="the community's audit log")
    entries = {}
    for p in (platform, neighbour):
        out = tmp_path / f"{p.prefix}.jsonl"
        p.cli("audit", "export", "--community", community, "--cut", "--out", str(out))
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        entries[p.prefix] = [line for line in lines if "schema" in line]  # the envelopes, not texts or checkpoints
    assert entries[platform.prefix] and all(e["community"] == community for e in entries[platform.prefix])
    assert entries[neighbour.prefix] == [], "the neighbour's audit has no log of this community"


def test_two_demos_loaded_at_once_on_one_vhost_do_not_collide(platform, neighbour):
    """What `consult up --demo` twice on one vhost does once the services are up: one demo each,
    loaded at the same time, every call answered by its own directory."""
    procs = [subprocess.Popen([sys.executable, "-m", "services.cli.main", "demo"], env=p.env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in (platform, neighbour)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Demo community S社区 loaded" in out
    demo = {p.prefix: json.loads((p.dir / "data" / "demo.json").read_text(encoding="utf-8"))
            for p in (platform, neighbour)}
    assert demo[platform.prefix]["community"] != demo[neighbour.prefix]["community"]
    for p, other in pairs(platform, neighbour):
        mine, theirs = demo[p.prefix], demo[other.prefix]
        directory = p.api("GET", f"/api/v1/communities/{mine['community']}/directory",
                          mine["tokens"]["community_worker"], expect=200).json()
        assert len(directory["households"]) == 12
        assert {person["id"] for person in directory["people"]} == set(mine["people"].values())
        p.api("GET", f"/api/v1/communities/{theirs['community']}/directory", p.admin_token, expect=404)
        p.api("GET", "/api/v1/me", theirs["tokens"]["community_worker"], expect=401)


def test_every_exchange_and_queue_on_the_shared_vhost_carries_one_prefix(platform, neighbour):
    platform.rpc("communities", "ping")  # both have served calls by now; make sure of one here
    neighbour.rpc("communities", "ping")
    names = platform.broker_names()
    everything = names["exchanges"] | names["queues"]
    prefixes = (f"{platform.prefix}.", f"{neighbour.prefix}.")
    assert all(name.startswith(prefixes) for name in everything), sorted(
        n for n in everything if not n.startswith(prefixes))
    for p in (platform, neighbour):
        assert {f"{p.prefix}.rpc", f"{p.prefix}.events"} <= names["exchanges"]
        assert {f"{p.prefix}.rpc-communities", f"{p.prefix}.rpc-audit", f"{p.prefix}.rpc-gateway",
                f"{p.prefix}.audit.communities"} <= names["queues"]
        assert any(q.startswith(f"{p.prefix}.rpc.reply-gateway-") for q in names["queues"])
        assert any(q.startswith(f"{p.prefix}.rpc.reply-standalone_rpc_proxy-") for q in names["queues"])
