"""The audit service: per community, the append-only record of every event with its Merkle tree,
signed checkpoints (and the platform log of logs over them), and the proofs handed out on them.

It consumes every source (a SqlSink: entries, tree nodes, tracking and every N-th entry's
checkpoint in one transaction) and publishes nothing. A timer cuts the checkpoints that time has
made due, every second.

A deployment with cells runs it once more, without CONSULT_CELL: the platform audit, which consumes
nothing and keeps the platform log spanning the cells (span.py). Its timer witnesses each cell's
signed head every second; its `platform_checkpoint(s)` answer that log's heads.
"""
from __future__ import annotations

import itertools
import logging
import time

from services.common import cells, clock, registry
from services.common.consumer import SqlSink
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.rpc import rpc
from services.common.runtime import Platform, Runtime, ServiceBase, command
from services.contracts import audit as contract

from . import checkpointing, export, log, proofs, span
from .checkpoints import notice_text

logger = logging.getLogger(__name__)
MAX_PAGE = 1000


class AuditApp:
    """What the audit service keeps beside its tables: the signing key and the checkpoint policy."""

    def __init__(self, settings, engine):
        self.engine = engine
        self.policy = checkpointing.policy(settings)
        self.signer = checkpointing.Signer.open(self.policy.key_file, self.policy.mode)
        checkpointing.prepare(engine, self.signer)
        self._refused_at: dict[str, float] = {}

    def refused(self, exc: Exception, about: str = "no checkpoint cut") -> None:
        """A cut or a witnessing refused (the key file is not the current key, a cell's head does
        not extend the one witnessed): loud, but once a minute for each kind."""
        if time.monotonic() - self._refused_at.get(about, -60.0) >= 60:
            self._refused_at[about] = time.monotonic()
            logger.error("audit: %s: %s", about, exc)

    def close(self) -> None:
        pass


def _sink(runtime: Runtime) -> SqlSink:
    app: AuditApp = runtime.app

    def record(conn, env: dict) -> None:
        """Append the envelope; at every N-th entry of its community, cut a checkpoint with it."""
        record_many(conn, [env])

    def record_many(conn, envs: list[dict]) -> None:
        """Append a batch, each run of one community's envelopes in one go (log.append_many), and
        cut the checkpoint of every N-th entry the run reached, in order: the same entries, tree
        and checkpoints as one envelope at a time (a checkpoint signs the root at its own size,
        whatever the run appended after it)."""
        every = app.policy.every
        for community, run in itertools.groupby(envs, key=lambda env: env["community"]):
            run = list(run)
            first = log.append_many(conn, run)
            for size in range(first + 1, first + len(run) + 1):
                if size % every == 0:
                    checkpointing.cut_on_append(conn, app.signer, community, size, clock.now())

    return SqlSink("audit", runtime.engine, record, handler_many=record_many)


def cut_due(runtime: Runtime) -> None:
    """The checkpoint timer: cut what is due, then publish every community's checkpoint age."""
    app: AuditApp = runtime.app
    now = clock.now()
    try:
        checkpointing.cut(runtime.engine, app.signer, app.policy, now)
    except Conflict as exc:
        app.refused(exc)
    checkpointing.observe_ages(runtime.engine, now)


def witness_cell(runtime: Runtime, cell: str) -> dict | None:
    """The platform audit witnesses `cell`: asks its audit for its latest signed head and a
    consistency proof from the head last witnessed, and appends it to the spanning log (span.py).
    Returns the cell's witnessed head and leaf, or None when the cell has signed nothing yet, does
    not answer within three seconds (it is witnessed on a later tick), or its head is refused."""
    app: AuditApp = runtime.app
    with runtime.engine.connect() as conn:
        last = span.witnessed(conn, cell)
    reply = runtime.send_or_none(contract.CellHead(since=last["checkpoint"]["size"] if last else None),
                                 timeout=3.0, in_cell=cell)
    if reply is None:
        return last
    try:
        return span.witness(runtime.engine, app.signer, cell, reply["checkpoint"], reply["proof"],
                            reply["key_rotations"], clock.now())
    except span.Fork as exc:
        app.refused(exc, f"cell {cell}'s head not witnessed")
    except Conflict as exc:
        app.refused(exc, "no cell witnessed")
    return None


def witness_cells(runtime: Runtime) -> None:
    """The platform audit's timer: witness every cell, one after the other."""
    for cell in runtime.settings.cells:
        witness_cell(runtime, cell)


def _page(start, limit) -> tuple[int, int]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput.coded("common.limit_between", max_page=MAX_PAGE)
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise InvalidInput.coded("audit.from_whole_number_least")
    return start, limit


class AuditService(ServiceBase):
    name = "audit"
    platform = Platform("audit", app_factory=AuditApp, tables=(log.metadata, checkpointing.metadata),
                        consumer_sink=_sink, upcast=False, timers=((1.0, cut_due),),
                        spanning_timers=((1.0, witness_cells),))

    @property
    def app(self) -> AuditApp:
        return self.platform.app

    # The audit service is no source: nothing consumes it.
    @rpc
    def read_log(self, start: int, limit: int = 100) -> list:
        return []

    @rpc
    def log_head(self) -> int:
        return 0

    # ---- the log ------------------------------------------------------------------------------------
    @rpc
    @command
    def entries(self, community, start=0, limit=100, case=None):
        start, limit = _page(start, limit)
        items = log.read(self.platform.engine, community, start, limit, case)
        return {"community": community, "size": log.size(self.platform.engine, community), "entries": items}

    @rpc
    @command
    def size(self, community):
        return log.size(self.platform.engine, community)

    @rpc
    @command
    def extent(self, community):
        """The log's size and how many of its entries the latest checkpoint covers."""
        with self.platform.engine.connect() as conn:
            return checkpointing.extent(conn, community)

    @rpc
    @command
    def export_header(self, community, unsigned=False):
        """The signed header an export of the community starts with: how many entries it holds
        (up to the latest checkpoint, or, `unsigned`, up to the latest entry) and how many of them
        the checkpoint covers. The exporter writes exactly those entries."""
        return checkpointing.export_header(self.platform.engine, self.app.signer, community, bool(unsigned),
                                           clock.now())

    @rpc
    @command
    def export_lines(self, community, start=0, limit=MAX_PAGE):
        """The stored bytes of entries [start, start + limit): the lines of an export."""
        start, limit = _page(start, limit)
        with self.platform.engine.connect() as conn:
            return log.lines(conn, community, start, start + limit)

    # ---- checkpoints --------------------------------------------------------------------------------
    @rpc
    @command
    def checkpoint(self, community):
        with self.platform.engine.connect() as conn:
            return checkpointing.latest(conn, community)

    @rpc
    @command
    def checkpoints(self, community, start=0, limit=100):
        start, limit = _page(start, limit)
        with self.platform.engine.connect() as conn:
            return checkpointing.history(conn, community, start, limit)

    @rpc
    @command
    def notice(self, community, lang="zh-CN"):
        with self.platform.engine.connect() as conn:
            latest = checkpointing.latest(conn, community)
        try:
            return {"checkpoint": latest, "lang": lang, "text": notice_text(latest, lang)}
        except ValueError as exc:
            raise InvalidInput.coded("audit.notice_refused", reason=str(exc)) from None

    @property
    def spanning(self) -> bool:
        """Whether this is the platform audit of a deployment with cells (span.py)."""
        return cells.spanning_instance(self.platform.settings, "audit")

    @rpc
    @command
    def platform_checkpoint(self):
        """The latest platform checkpoint: of the spanning log on the platform audit, else of this
        audit's log of logs (a cell's, with cells)."""
        with self.platform.engine.connect() as conn:
            return span.latest(conn) if self.spanning else checkpointing.platform_latest(conn)

    @rpc
    @command
    def platform_checkpoints(self, start=0, limit=100):
        start, limit = _page(start, limit)
        with self.platform.engine.connect() as conn:
            return (span.history if self.spanning else checkpointing.platform_history)(conn, start, limit)

    @rpc
    @command
    def cell_head(self, since=None):
        """This cell's latest signed head, a consistency proof from `since` entries, and the key
        rotations that vouch for it: what the platform audit witnesses."""
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise InvalidInput.coded("audit.from_whole_number_least")
        with self.platform.engine.connect() as conn:
            return checkpointing.cell_head(conn, since)

    @rpc
    @command
    def span_proof(self, cell, at_least=0):
        """On the platform audit: `cell`'s witnessed head as a leaf of the spanning log, proven
        against the log's latest head; the cell is witnessed first if its head so far has fewer
        than `at_least` entries."""
        if not self.spanning or cell not in self.platform.settings.cells:
            raise NotFound.coded("audit.cell_not_witnessed", cell=cell)
        with self.platform.engine.connect() as conn:
            last = span.witnessed(conn, cell)
        if last is None or last["checkpoint"]["size"] < at_least:
            witness_cell(self.platform, cell)
        with self.platform.engine.connect() as conn:
            return span.proof(conn, cell)

    @rpc
    @command
    def public_keys(self):
        """The keys, and the kind of deployment whose record they sign (a training key checks only
        a training record)."""
        with self.platform.engine.connect() as conn:
            return dict(checkpointing.public_keys(conn), mode=self.app.signer.mode)

    @rpc
    @command
    def cut_checkpoints(self, community=None):
        """Cut a checkpoint now for every community with entries not yet covered (or only
        `community`), whatever the policy says: for operators and tests."""
        return checkpointing.cut(self.platform.engine, self.app.signer, self.app.policy, clock.now(),
                                 community=community, force=True)

    @rpc
    @command
    def rotate_key(self, new_key_file):
        """Rotate the signing key to the key in `new_key_file` (a path this service can read)."""
        return checkpointing.rotate(self.platform.engine, self.app.signer, new_key_file, clock.now())

    # ---- proofs -------------------------------------------------------------------------------------
    @rpc
    @command
    def inclusion_proof(self, community, index=None, event=None, size=None, since=None, texts=False):
        """One entry (by index or by event id) with its inclusion proof: a bundle of one."""
        with self.platform.engine.connect() as conn:
            if event is not None:
                found = log.find_event(conn, str(event))
                if found is None or found[0] != community:
                    raise NotFound.coded("audit.event_audit_log_community", event=event, community=community)
                index = found[1]
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise InvalidInput.coded("audit.give_entry_index_whole")
            if index >= log.head(conn, community):
                raise NotFound.coded("audit.audit_log_community_entry", community=community, index=index)
            bundle = proofs.inclusion_bundle(conn, community, [index], size, since)
        return self._with_texts(bundle) if texts else bundle

    @rpc
    @command
    def case_bundle(self, case, community=None, since=None, unsigned=False, cut=False):
        """Every entry of a case with its inclusion proof against the latest checkpoint, the texts,
        and the bundle's signed extent (which entries it holds). `cut`: cut a checkpoint first, so
        that it covers every entry of the case; `unsigned`: carry the case's entries after the
        latest checkpoint without a proof (else they are refused)."""
        engine = self.platform.engine
        with engine.connect() as conn:
            try:
                community, indexes = log.case_indexes(conn, str(case), community)
            except ValueError as exc:
                raise InvalidInput.coded("audit.case_refused", reason=str(exc)) from None
        if not indexes:
            raise NotFound.coded("audit.case_entry_audit_log", case=case)
        if cut:
            checkpointing.cut(engine, self.app.signer, self.app.policy, clock.now(), community=community, force=True)
        with engine.connect() as conn:
            bundle = proofs.inclusion_bundle(
                conn, community, indexes, None, since, unsigned=bool(unsigned),
                uncovered="audit.entry_not_covered_cut")
            bundle["case"] = str(case)
            bundle["extent"] = checkpointing.bundle_extent(conn, self.app.signer, bundle, str(case), clock.now())
        return self._with_texts(bundle)

    @rpc
    @command
    def consistency_proof(self, community, old_size, new_size=None):
        with self.platform.engine.connect() as conn:
            return proofs.consistency(conn, community, old_size, new_size)

    @rpc
    @command
    def platform_proof(self, community, size=None):
        """The community's checkpoint as a leaf of this audit's log of logs. With cells, that log is
        the cell's, and the proof goes on to the platform log spanning the cells: against the
        cell's head the platform audit witnessed (`span`; None when it did not answer)."""
        with self.platform.engine.connect() as conn:
            found = proofs.platform_inclusion(conn, community, size)
        if self.platform.settings.cell is None:
            return found
        spanned = self.platform.send_or_none(
            contract.SpanProof(cell=self.platform.settings.cell, at_least=found["platform_checkpoint"]["size"]),
            timeout=5.0, in_cell=None)
        with self.platform.engine.connect() as conn:
            return proofs.spanning(conn, found, spanned)

    def _with_texts(self, bundle: dict) -> dict:
        """The bundle's texts with their salts, from the stage services that hold them."""
        wanted = proofs.bundle_commitments(bundle)
        found, unreachable = export.fetch_texts(self.platform.send, wanted, registry.SOURCES)
        every = sorted({c for cs in wanted.values() for c in cs})
        bundle["texts"] = [found[c] for c in every if c in found]
        if unreachable:
            bundle["texts_unavailable_from"] = unreachable
        return bundle


SERVICE = AuditService
