"""PIPL erasure of a person's texts in one service's erasable content store, recorded in that
service's own log (so the community's audit log shows it) without any of the erased texts.

Every service that keeps texts erases the same way: the `Erasure` aggregate records who asked for
whose texts to go and how many there were, then the texts and their salts are deleted; every
commitment (hash) in the record stays. Recorded first, erased second: a crash in between leaves
the texts, and erasing again erases them (and records that too). The person must belong to the
community named in the command: the service asks the directory before it calls `erase_person`.

An erasure can be a command (a worker's request: a new id each time) or the effect of an event
another service published (`cause`: its event id), whose id is derived from that event, so a
consumer handling the same event twice records and erases once.
"""
from __future__ import annotations

import uuid

from . import clock
from .aggregate import Aggregate, command_context, derived_id
from .content import ContentStore
from .ids import as_uuid
from .registry import SOURCES


class Erasure(Aggregate):
    EVENT_NAMES_ARE_TYPES = True

    class PersonTextsErased(Aggregate.Created):
        person: str
        texts: int

    def __init__(self, person: str, texts: int):
        self.person, self.texts = person, texts


def erasure_id(service: str, cause: str | None = None) -> uuid.UUID:
    """A fresh id for a command; for an erasure caused by an event, one derived from it."""
    return derived_id("erasure", service, cause) if cause else uuid.uuid4()


def record_erasure(service: str, content: ContentStore, community: str, person: str, actor: str,
                   cause: str | None = None) -> Erasure:
    """The erasure of `person`'s texts held in `content`, to be saved before `content.erase_subject`
    runs (returned, not saved: a consumer saves it with its tracking record)."""
    held = content.count_subject(str(person))
    with command_context(community=community, actor=actor, causation=cause):
        return Erasure._create(Erasure.PersonTextsErased, id=erasure_id(service, cause), person=str(person),
                               texts=held)


# ---- one request, erased everywhere (issue 17.2) ------------------------------------------------------
# The directory records the request (`PersonErasureRequested`, in the communities log); every
# service that holds a person's texts or contact data consumes it with its tracked consumer and
# records its own `PersonTextsErased`, whose id derives from (service, request): delivered twice,
# it is recorded once. The status asks each of these services whether its record exists.
ERASING = tuple(s for s in ("communities", "proposals", "deliberation", "decisions", "actions", "notifications")
                if s in SOURCES)
REQUESTED = "PersonErasureRequested"  # the directory's ErasureRequest (services/communities/domain.py)


def completion(app, service: str, request: str) -> dict | None:
    """This service's record of having erased for `request`, or None if it has not (yet). The
    request's id is unique (the directory checks it belongs to the caller's community before it
    asks), so the record's id alone finds it."""
    parsed = as_uuid(request)
    if parsed is None:
        return None
    rid = erasure_id(service, str(parsed))
    try:
        found = app.repository.get(rid)
    except Exception:  # noqa: BLE001 - AggregateNotFoundError: not done here
        return None
    if not isinstance(found, Erasure):
        return None
    return {"done": True, "erasure": str(found.id), "texts": found.texts,
            "at": clock.format(found.created_on)}


def erase_on_request(service: str, app, erase, env: dict) -> list:
    """The consumer's effect of a `PersonErasureRequested`: erase this service's texts of the
    person (`erase(community, person)`, which must be safe to run again), then return the record
    for the sink to save with the tracking position. Erased before recorded, unlike a command:
    the request is already on record in the directory's log, and a crash between the two leaves
    the message untracked, so it is delivered again, erases nothing more and is recorded then
    (with the count it then finds). A request already recorded here changes nothing."""
    request, community, person = env["aggregate"]["id"], env["community"], str(env["data"]["person"])
    if completion(app, service, request) is not None:
        return []
    held = app.content.count_subject(person)
    erase(community, person)
    with command_context(community=community, actor=env["actor"], causation=env["id"]):
        return [Erasure._create(Erasure.PersonTextsErased, id=erasure_id(service, request), person=person,
                                texts=held)]


def with_erasure(service: str, app, handler, erase=None, sources: tuple[str, ...] | None = None):
    """A consumer handler that also carries out erasure requests. `erase(community, person)` is
    the service's own erasure (by default: the texts of its content store whose subject is the
    person; a service with contact data or copies of texts elsewhere passes its own). `sources`
    are the sources the inner `handler` is meant for (None: all); the directory's other events
    (which every erasing service now consumes for its requests) are none of its business."""
    if erase is None:
        def erase(community: str, person: str) -> int:
            return app.content.erase_subject(person)

    def handle(env: dict) -> list:
        if env.get("source") == "communities" and env["type"] == REQUESTED:
            return erase_on_request(service, app, erase, env)
        if sources is not None and env.get("source") not in sources:
            return []
        return handler(env)

    return handle
