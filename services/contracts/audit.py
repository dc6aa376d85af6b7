"""The audit service's calls: its RPC methods the gateway and the CLI call, by their arguments'
names (services/contracts/calls.py). The audit service is no event source: it has no EVENTS."""
from __future__ import annotations

from .calls import RpcCall, rpc_call

SERVICE = "audit"


# ---- calls: the audit service's RPC methods the gateway calls, by their arguments' names -----------------
@rpc_call(SERVICE, "entries")
class Entries(RpcCall):
    community: str
    start: int = 0
    limit: int = 100
    case: str | None = None


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
