"""The audit service: the per-community append-only record of every event."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.consumer import SqlSink
from services.common.errors import InvalidInput
from services.common.runtime import Platform, ServiceBase, command

from . import log


def _sink(runtime):
    return SqlSink("audit", runtime.engine, log.append)


class AuditService(ServiceBase):
    name = "audit"
    platform = Platform("audit", tables=(log.metadata,), consumer_sink=_sink, upcast=False)

    @rpc
    @command
    def entries(self, community, start=0, limit=100, case=None):
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        items = log.read(self.platform.engine, community, int(start), limit, case)
        return {"community": community, "size": log.size(self.platform.engine, community), "entries": items}

    @rpc
    @command
    def size(self, community):
        return log.size(self.platform.engine, community)


SERVICE = AuditService
