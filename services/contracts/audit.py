"""The audit service's calls: its RPC methods the gateway, the CLI and the export and reconcile
(services/audit/export.py, reconcile.py: the CLI's and the audit service's own) call, by their
arguments' names (services/contracts/calls.py). The audit service is no event source: it has no
EVENTS."""
from __future__ import annotations

from .calls import RpcCall, rpc_call

SERVICE = "audit"

# The `kind` of what the audit service signs and answers: a checkpoint, a key rotation statement, an
# inclusion bundle, a consistency proof, a platform inclusion proof (services/audit/checkpoints.py, proofs.py).
CHECKPOINT, KEY_ROTATION = "checkpoint", "key_rotation"
BUNDLE, CONSISTENCY, PLATFORM_INCLUSION = "bundle", "consistency", "platform_inclusion"


# ---- calls: the audit service's RPC methods, by their arguments' names --------------------------------------
@rpc_call(SERVICE, "entries")
class Entries(RpcCall):
    community: str
    start: int = 0
    limit: int = 100
    case: str | None = None


@rpc_call(SERVICE, "extent")
class Extent(RpcCall):
    community: str


@rpc_call(SERVICE, "export_header")
class ExportHeader(RpcCall):
    community: str
    unsigned: bool = False


@rpc_call(SERVICE, "export_lines")
class ExportLines(RpcCall):
    community: str
    start: int = 0
    limit: int = 1000  # the audit service's page, at most


@rpc_call(SERVICE, "checkpoint")
class Checkpoint(RpcCall):
    community: str


@rpc_call(SERVICE, "checkpoints")
class Checkpoints(RpcCall):
    community: str
    start: int = 0
    limit: int = 100


@rpc_call(SERVICE, "notice")
class Notice(RpcCall):
    community: str
    lang: str = "zh-CN"


@rpc_call(SERVICE, "platform_checkpoint")
class PlatformCheckpoint(RpcCall):
    pass


@rpc_call(SERVICE, "platform_checkpoints")
class PlatformCheckpoints(RpcCall):
    start: int = 0
    limit: int = 100


@rpc_call(SERVICE, "public_keys")
class PublicKeys(RpcCall):
    pass


@rpc_call(SERVICE, "inclusion_proof")
class InclusionProof(RpcCall):
    community: str
    index: int | None = None
    event: str | None = None
    size: int | None = None
    since: int | None = None
    texts: bool = False


@rpc_call(SERVICE, "consistency_proof")
class ConsistencyProof(RpcCall):
    community: str
    old_size: int
    new_size: int | None = None


@rpc_call(SERVICE, "platform_proof")
class PlatformProof(RpcCall):
    community: str
    size: int | None = None


# ---- the platform log spanning cells (services/audit/span.py) ------------------------------------------
@rpc_call(SERVICE, "cell_head")
class CellHead(RpcCall):
    """Asked of a cell's audit by the platform audit: its latest signed head, with a consistency
    proof from the head of `since` entries last witnessed."""
    since: int | None = None


@rpc_call(SERVICE, "span_proof")
class SpanProof(RpcCall):
    """Asked of the platform audit by a cell's: the cell's witnessed head (witnessed now if it has
    fewer than `at_least` entries) as a leaf of the spanning log, proven against its latest head."""
    cell: str
    at_least: int = 0


# ---- calls the operator's CLI makes (`consult audit …`, services/audit/cli.py) ------------------------
@rpc_call(SERVICE, "case_bundle")
class CaseBundle(RpcCall):
    case: str
    community: str | None = None  # found from the case when not given
    since: int | None = None
    unsigned: bool = False
    cut: bool = False


@rpc_call(SERVICE, "cut_checkpoints")
class CutCheckpoints(RpcCall):
    community: str | None = None  # None: every community with entries not yet covered


@rpc_call(SERVICE, "rotate_key")
class RotateKey(RpcCall):
    new_key_file: str  # a path the audit service can read
