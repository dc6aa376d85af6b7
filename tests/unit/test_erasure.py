"""The consumer side of one erasure request (services/common/erasure.py), on the proposals
application on SQLite: the texts go, the completion is recorded once whether the request is
delivered again at the same position (tracking) or at another (its id derives from the request),
the other events of the directory are none of the stage's business, and the status finds it."""
from __future__ import annotations

import uuid

from services.common.consumer import EventSourcedSink
from services.common.erasure import ERASING, REQUESTED, completion, erasure_id, with_erasure
from services.common.relay import read_envelopes
from tests.unit.test_proposals_app import World, app, open_app, settings  # noqa: F401 - fixtures


def request(community: str, person: str, position: int, request_id: str | None = None) -> dict:
    rid = request_id or str(uuid.uuid4())
    return {"schema": "consult.event/1", "id": str(uuid.uuid4()), "source": "communities", "position": position,
            "type": REQUESTED, "community": community, "aggregate": {"type": "ErasureRequest", "id": rid, "version": 1},
            "occurred_at": "2026-03-01T08:00:00.000000Z", "actor": "worker-1", "case": None, "causation": None,
            "data": {"person": person, "reason_commitment": "ab" * 32}}


def test_a_request_delivered_twice_erases_and_is_recorded_once(app):  # noqa: F811
    world = World(app)
    pid = world.collecting(title="疏通排水沟")
    other_events = []
    sink = EventSourcedSink(app, with_erasure("proposals", app, lambda env: other_events.append(env) or [],
                                              app.erase_texts, sources=("actions",)))
    assert set(ERASING) == {"communities", "proposals", "deliberation", "decisions", "actions", "notifications"}

    # Another event of the directory reaches the stage (it consumes the directory for requests): ignored.
    registered = dict(request(world.community, world.author, 1), type="PersonRegistered", data={})
    assert sink.handle("communities", registered) and other_events == []

    head = app.head()
    env = request(world.community, world.author, 2)
    assert sink.handle("communities", env)
    assert app.view(world.community, pid, "x")["title"] is None
    [record] = read_envelopes(app, "proposals", head + 1, 10)
    assert (record["type"], record["actor"], record["causation"], record["aggregate"]["id"]) == (
        "PersonTextsErased", "worker-1", env["id"], str(erasure_id("proposals", env["aggregate"]["id"])))
    assert record["data"] == {"person": world.author, "texts": 2}
    done = completion(app, "proposals", env["aggregate"]["id"])
    assert done["done"] is True and done["texts"] == 2 and done["erasure"] == record["aggregate"]["id"]

    # Again at the same position: a duplicate for the tracking. At a later position (a request
    # re-published, a tracking record lost): the handler finds its record and adds nothing.
    assert not sink.handle("communities", env)
    assert sink.handle("communities", dict(env, position=3, id=str(uuid.uuid4())))
    assert app.head() == head + 1
    # A request never made here is not done; nor is a malformed id.
    assert completion(app, "proposals", str(uuid.uuid4())) is None
    assert completion(app, "proposals", "not-an-id") is None
