"""Operator access from the command line: nameko RPC to the services, with clear errors."""
from __future__ import annotations

import os
import sys

from services.common import config
from services.common.errors import DomainError, unwrap
from services.common.bus import BrokerUnavailable, check_broker


class CliError(Exception):
    """A plain message for the operator; exit status 1 (or the given code)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Rpc:
    def __init__(self, settings: config.Settings | None = None, timeout: float = 60):
        self.settings = settings or config.load()
        self.timeout = timeout
        self._proxy = None

    def __enter__(self):
        try:
            check_broker(self.settings)
        except BrokerUnavailable as exc:
            raise CliError(str(exc), 3) from None
        from services.common.rpc import Listening, cluster_proxy  # nameko only for the commands that call the platform

        self._cluster = cluster_proxy(self.settings, timeout=self.timeout)
        self._proxy = self._cluster.start()
        self._listening = Listening(self.settings)
        return self

    def __exit__(self, *exc):
        self._listening.close()
        self._cluster.stop()

    def _placements(self):
        if getattr(self, "_known", None) is None:
            from services.common.cells import Placements

            self._known = Placements.asking(self.settings, self.send)
        return self._known

    def send(self, request):
        """Send a declared call (services/contracts/calls.py RpcCall) by its arguments' names."""
        return self.call(request.SERVICE, request.METHOD, **request.arguments())

    def call(self, service: str, method: str, *args, **kwargs):
        """Call a service; a stage service, in a deployment with cells, in the cell of the community
        the call names (as the gateway routes it: `consult audit export --community X` needs no
        cell) or the command named before, or else in CONSULT_CELL's (`consult audit public-key`)."""
        from nameko.exceptions import UnknownService

        from services.common import cells

        cell = cells.OWN
        if cells.platform_wide(self.settings, service, method):
            cell = None  # the platform audit's: the platform log spanning the cells
        elif self.settings.cells and cells.in_cells(service):
            if kwargs.get("community") is not None:  # the directory's refusal, as it says it
                cell = self._cell = self._placements().cell_of(kwargs["community"])
            elif self.settings.cell is None:
                # A command is about one community: its calls that name none (the signing keys, the
                # texts of an export) go to that community's cell.
                if getattr(self, "_cell", None) is None:
                    raise CliError(f"the {service} service runs in each cell ({','.join(self.settings.cells)}): "
                                   "set CONSULT_CELL to the cell to ask")
                cell = self._cell
        name = cells.qualified(service, cells.resolve(self.settings, cell))
        if not self._listening.hears(name, grace=self._listening.GRACE_S):  # not the whole timeout's wait for a stopped service
            raise CliError(f"the {name} service is not running (start the platform with `consult up`)")
        try:
            from services.common.rpc import target

            reply = getattr(target(self._proxy, self.settings, service, cell), method)(*args, **kwargs)
        except UnknownService:
            raise CliError(f"the {service} service is not running (start the platform with `consult up`)") from None
        except Exception as exc:  # noqa: BLE001 - RPC timeout and remote crashes
            raise CliError(f"{service}.{method} failed: {exc.__class__.__name__}: {exc}") from None
        try:
            return unwrap(reply)
        except DomainError as exc:
            raise refused(exc.to_problem()) from None


def refused(problem: dict) -> CliError:
    """A refusal (a problem, as a service answers it) as the CLI says it: its detail, and each
    line of a file it names (an import's errors)."""
    lines = [problem.get("detail") or problem.get("title")]
    for err in problem.get("errors", [])[1:] if problem.get("errors") else []:
        if "line" in err:
            lines.append(f"line {err['line']}: {err['message']}")
    return CliError("\n".join(lines))


def operator() -> str:
    """The actor the operator's commands are recorded with (never a person of a community)."""
    return f"operator:{os.environ.get('USER', 'cli')}"


def fail(message: str, code: int = 1) -> int:
    print(f"consult: {message}", file=sys.stderr)
    return code
