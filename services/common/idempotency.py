"""A command is executed once, however often its request arrives.

RabbitMQ delivers an RPC request at least once: a service killed -9 after its command committed
but before it acked, or a connection closed in between, gets the same message again. A client
that timed out (or got a 5xx) sends the same HTTP request again. Executing the command again
would record it twice (a VoteCast, then a VoteChanged), or refuse the repeat ("already
supported") although the first one succeeded.

So each command runs under a request key:

- the client's `Idempotency-Key` header, which the gateway carries to every service it calls in
  that request (nameko context data `idempotency_key`), combined with the service, the method and
  the arguments (one key may name one HTTP request, which calls several commands); otherwise
- the RPC message's correlation id, which a redelivery keeps.

A repeat can only be a client's retry (its key) or a redelivery (RabbitMQ marks the message
`redelivered`): a first delivery without a client key looks for no stored reply. A copy of a
request published twice (a publisher's retry after a lost confirm) is a first delivery twice: the
marker still records it once, and the gateway takes the first reply to arrive, the other's being
for a call it no longer waits on.

The first save of a command writes a marker with its events, in the same transaction (a tracking
record `request:<key>` in the event store: a second one is an IntegrityError, so a repeat that
gets as far as saving records nothing). After the command the reply is stored under the key in
the service's state store; a repeat answers that stored reply instead of executing again. Only
commands that recorded something leave a marker and a reply: a refusal that recorded nothing is
simply executed again.

What is not covered: a crash in the instant between the events' commit and the reply's store. A
repeat then finds the marker without a reply and is answered 409 `AlreadyExecuted` (recorded,
nothing recorded again) rather than with the first reply.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import time

import sqlalchemy as sa

from .errors import Conflict
from .pooling import autocommit
from .tables import command_replies

log = logging.getLogger(__name__)

# nameko context-data keys: the client's key (propagated to every call the worker makes) and the
# delivery's correlation id (set by services.common.rpc for each incoming request, never propagated).
IDEMPOTENCY_KEY = "idempotency_key"
DELIVERY_ID = "consult_delivery"
REDELIVERED = "consult_redelivered"  # set by services.common.rpc likewise: the broker has delivered it before
MAX_KEY_LENGTH = 200
MARKER_PREFIX = "request:"
REPLY_WAIT_S = 10.0  # how long a repeat waits for the reply of an execution still finishing



class AlreadyExecuted(Conflict):
    """A repeat of a request whose command was recorded, but whose reply was not kept."""


class _Request:
    def __init__(self, key: str):
        self.key = key
        self.attempted = False  # a save carried the marker (it may have failed on it)
        self.marked = False  # a save carrying the marker committed

    @property
    def marker(self) -> str:
        return MARKER_PREFIX + self.key


_current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("consult_request", default=None)
# What a query runs under (`reading`): a request with nothing to mark, whose save is a mistake.
_QUERY = _Request("")


def reading(execute):
    """Run a query's `execute()`: a read answers what is there now however often its request
    comes, so no stored reply is looked for and none is kept. A save inside it raises (marker_for_save):
    a method that records must be a command."""
    token = _current.set(_QUERY)
    try:
        return execute()
    finally:
        _current.reset(token)


def request_key(context_data: dict | None, service: str, method: str, args: tuple, kwargs: dict) -> str | None:
    """The key a command runs under, or None (no RPC delivery: a direct call, a test)."""
    data = context_data or {}
    client_key = data.get(IDEMPOTENCY_KEY)
    if client_key:
        arguments = json.dumps([list(args), kwargs], sort_keys=True, default=str, ensure_ascii=False)
        basis = f"client\0{client_key}\0{service}.{method}\0{arguments}"
    elif data.get(DELIVERY_ID):
        basis = f"delivery\0{data[DELIVERY_ID]}\0{service}.{method}"
    else:
        return None
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:48]


def may_be_repeated(context_data: dict | None) -> bool:
    """Whether a request may have been executed before, so its stored reply is looked for first: a
    client's key (a retry), or a delivery the broker has made before, or one whose delivery is not
    known (not an RPC of ours)."""
    data = context_data or {}
    return bool(data.get(IDEMPOTENCY_KEY)) or data.get(REDELIVERED) is not False


def current() -> _Request | None:
    return _current.get()


def marker_for_save() -> str | None:
    """The marker the next save must write with its events (once per command), or None."""
    request = _current.get()
    if request is _QUERY:
        raise RuntimeError("a query recorded events: make the RPC method a command (services.common.runtime)")
    if request is None or request.marked:
        return None
    request.attempted = True
    return request.marker


def saved() -> None:
    """The save that carried the marker committed."""
    request = _current.get()
    if request is not None:
        request.marked = True


def _stored_reply(engine: sa.Engine, key: str) -> dict | None:
    with autocommit(engine) as conn:
        row = conn.execute(sa.select(command_replies.c.reply).where(command_replies.c.request == key)).first()
    return json.loads(row[0]) if row else None


def _store_reply(engine: sa.Engine, key: str, reply: dict) -> None:
    try:
        with autocommit(engine) as conn:  # one statement: no BEGIN and COMMIT around it
            conn.execute(sa.insert(command_replies).values(
                request=key, reply=json.dumps(reply, default=str, ensure_ascii=False), stored_at=time.time()))
    except sa.exc.IntegrityError:
        pass  # a concurrent execution of the same request stored it (it recorded nothing)


def _marked(app, key: str) -> bool:
    try:
        return bool(app.recorder.max_tracking_id(MARKER_PREFIX + key))
    except Exception:  # noqa: BLE001 - the store is unreachable: the caller's own error stands
        log.warning("cannot read the marker of request %s", key, exc_info=True)
        return False


def _earlier_reply(engine: sa.Engine, key: str) -> dict:
    """The reply of an execution that recorded the command: stored, or about to be."""
    deadline = time.monotonic() + REPLY_WAIT_S
    while True:
        reply = _stored_reply(engine, key)
        if reply is not None:
            return reply
        if time.monotonic() >= deadline:
            return {"ok": False, "problem": AlreadyExecuted.coded("common.request_was_already_executed").to_problem()}
        time.sleep(0.1)


def once(runtime, key: str | None, execute, repeated: bool = True):
    """Run `execute()` (which returns an RPC reply dict) at most once per key; a repeat gets the
    first reply. Without a key, or in a service with no event store, it just runs. `repeated`: whether
    the request may have come before (`may_be_repeated`); if not, no stored reply is looked for (a
    round trip to the state store on every command, which decisions' whole process waits for)."""
    app = getattr(runtime, "app", None)
    if key is None or app is None or not hasattr(app, "recorder"):
        return execute()
    engine = runtime.engine
    reply = _stored_reply(engine, key) if repeated else None
    if reply is not None:
        log.info("%s: request %s repeated: answering its first reply", runtime.service, key)
        return reply
    request = _Request(key)
    token = _current.set(request)
    try:
        try:
            reply = execute()
        except Exception:
            if request.attempted and not request.marked and _marked(app, key):
                return _earlier_reply(engine, key)  # another execution recorded it first
            raise
    finally:
        _current.reset(token)
    if request.marked:
        _store_reply(engine, key, reply)
        return reply
    if request.attempted and _marked(app, key):
        # A save failed on the marker: another execution of this request recorded it. Whatever this
        # one made of that failure (a Conflict, or a save some code treats as done elsewhere), the
        # answer is what that execution answered.
        log.info("%s: request %s executed concurrently: answering the recorded one's reply", runtime.service, key)
        return _earlier_reply(engine, key)
    return reply
