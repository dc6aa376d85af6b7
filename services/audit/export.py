"""The auditor's export of one community's log, and the texts that go with entries.

Export format (JSON Lines, UTF-8, one object a line; read by `verify.verify_export`):

1. the export header, signed by the log's key: {"community", "covered", "key_id",
   "kind": "export_header", "signature", "size", "time", "unsigned"} — the file holds exactly
   `size` entries, the first `covered` of them under the checkpoint it ends with;
2. every entry, in log order, as the canonical envelope bytes exactly as they were hashed;
3. one text line per commitment the entries hold, sorted by commitment:
   {"commitment", "kind": "text", "salt", "text"}, or {"commitment", "erased": true, "kind": "text"};
4. the key rotation statements, oldest first;
5. the community's checkpoints up to the header's size, in the order they were cut.

By default the export stops at the latest checkpoint, so every entry in it is vouched for by a
signature; `cut` asks the service to cut one first, `unsigned` adds the entries after it, and
the signed header says so. The audit service decides the extent when it signs the header, so a
checkpoint or an entry that arrives while the file is written does not change what it holds.

Texts live in each stage service's erasable store. A commitment is asked of the service whose
entry holds it first (a stage writes its own texts), then of the others (a later stage carries an
earlier one's commitments, e.g. a consultation opened from a proposal keeps the proposal's title).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterable, Sequence

from services.common.canonical import canonical_bytes
from services.contracts import audit
from services.contracts.calls import RpcCall
from services.contracts.every_service import EXPORT_TEXTS

from .verify import commitments_of

PAGE = 1000  # what one RPC carries: entries per page, commitments per text request

# send(request) -> the unwrapped result of a declared call (services/contracts/calls.py), a refusal
# raised: the CLI's `Rpc.send`, or the runtime's `send` in the audit service.
Send = Callable[[RpcCall], object]


def fetch_texts(send: Send, wanted: dict[str, Iterable[str]], sources: Sequence[str]) -> tuple[dict[str, dict], list[str]]:
    """Text records by commitment, asked of the services that may hold them; and the services
    that did not answer (their texts are then missing, which the verifier reports)."""
    found: dict[str, dict] = {}
    unreachable: list[str] = []

    def ask(source: str, commitments: Iterable[str]) -> None:
        todo = sorted({c for c in commitments if c not in found})
        for i in range(0, len(todo), PAGE):
            try:
                records = send(EXPORT_TEXTS[source](commitments=todo[i:i + PAGE]))
            except Exception:  # noqa: BLE001 - a stage that is down: say so, ask the others
                unreachable.append(source)
                return
            for record in records:
                found.setdefault(record["commitment"], record)

    everything = set().union(*(set(v) for v in wanted.values())) if wanted else set()
    for source in sorted(wanted):
        if source in sources:
            ask(source, wanted[source])
    for source in sources:
        rest = everything - set(found)
        if not rest:
            break
        if source not in unreachable:
            ask(source, rest)
    return found, sorted(set(unreachable))


def text_line(record: dict) -> bytes:
    return canonical_bytes(record)


def _pages(send: Send, request: RpcCall) -> list:
    """Every item of a paged query (a declared call with `start` and `limit`), PAGE at a time."""
    out, start = [], 0
    while True:
        page = send(dataclasses.replace(request, start=start, limit=PAGE))
        out += page
        if len(page) < PAGE:
            return out
        start += PAGE


def write_export(send: Send, community: str, path: str | os.PathLike, sources: Sequence[str], *,
                 cut: bool = False, unsigned: bool = False) -> dict:
    """Write the export of `community` to `path` (atomically); returns what it holds."""
    if cut:
        send(audit.CutCheckpoints(community=community))
    header = send(audit.ExportHeader(community=community, unsigned=unsigned))
    size = header["size"]
    checkpoints = [c for c in _pages(send, audit.Checkpoints(community=community)) if c["size"] <= size]
    rotations = send(audit.PublicKeys())["key_rotations"]
    tmp = f"{os.fspath(path)}.partial"
    wanted: dict[str, set[str]] = {}
    with open(tmp, "wb") as out:
        out.write(text_line(header) + b"\n")
        for start in range(0, size, PAGE):
            lines = send(audit.ExportLines(community=community, start=start, limit=min(PAGE, size - start)))
            if len(lines) != min(PAGE, size - start):
                raise RuntimeError(f"the audit service returned {len(lines)} entries from {start}; expected "
                                   f"{min(PAGE, size - start)}")
            for line in lines:
                out.write(line.encode("utf-8") + b"\n")
                env = json.loads(line)
                wanted.setdefault(env["source"], set()).update(commitments_of(env["data"]))
        texts, unreachable = fetch_texts(send, wanted, sources)
        commitments = sorted(set().union(*wanted.values())) if wanted else []
        for c in commitments:
            if c in texts:
                out.write(text_line(texts[c]) + b"\n")
        for statement in rotations:
            out.write(text_line(statement) + b"\n")
        for checkpoint in checkpoints:
            out.write(text_line(checkpoint) + b"\n")
    os.replace(tmp, path)
    return {"community": community, "entries": size, "covered": header["covered"], "header": header,
            "texts": sum(1 for c in commitments if c in texts),
            "erased": sum(1 for c in commitments if texts.get(c, {}).get("erased")),
            "missing_texts": [c for c in commitments if c not in texts], "unreachable": unreachable,
            "key_rotations": len(rotations), "checkpoints": len(checkpoints),
            "latest": checkpoints[-1] if checkpoints else None}


def read_export(path: str | os.PathLike) -> tuple[list[dict], dict[str, dict], list[dict]]:
    """(entries as envelopes in log order, text records by commitment, checkpoints) of an export,
    read as it is (verify it first: this trusts the file)."""
    entries, texts, checkpoints = [], {}, []
    with open(path, "rb") as f:
        for raw in f:
            obj = json.loads(raw)
            kind = obj.get("kind") if "schema" not in obj else None
            if kind == "text":
                texts[obj["commitment"]] = obj
            elif kind == "checkpoint":
                checkpoints.append(obj)
            elif kind is None:
                entries.append(obj)
    return entries, texts, checkpoints
