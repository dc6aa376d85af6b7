"""Community cells: the one place that says what a service is called inside a cell.

A deployment may run several cells (CONSULT_CELLS=c1,c2; docs/scaling.md). A cell is a full set of
the stage services -- audit, proposals, deliberation, decisions, actions, notifications -- with its
own stores and its own event sources, and every community belongs to exactly one cell: the
directory places it when it is created (`CommunityCreated`'s `cell`). The directory
(`communities`), the gateway and the web pages are the platform's, one set for all cells: the
gateway routes a community's requests to its cell, and every cell follows the directory's log.

All cells share the deployment's broker vhost, its exchanges (`<prefix>.events`, `<prefix>.rpc`)
and its database: a cell's services are told apart by name. Inside a cell a stage service is
called `<cell>-<service>` wherever its name reaches the broker or a store -- its RPC routing key and
queue, the routing keys of the events its relay publishes, its consumers' queues, its PostgreSQL
schemas and SQLite files, its advisory locks -- and by its plain name everywhere else (its code,
its event envelopes' `source`, its tracking rows, its metrics' labels). So a cell's services reach
each other and the directory with no configuration beyond CONSULT_CELL, a call for
`c1-proposals` can never be answered by `c2-proposals`, and a deployment without cells
(CONSULT_CELLS unset) keeps every name it had before cells.

Why names and not a prefix per cell: a prefix per cell gives each cell its own RPC exchange, and a
call across it (a cell's consumer asking the directory for its log, the gateway calling a cell)
would need its reply routed back over another exchange. With one exchange, the gateway's one reply
queue hears every cell.
"""
from __future__ import annotations

from services.contracts.communities import PLATFORM_LOG

from .config import Settings

# The platform's own services: one set for every cell of the deployment.
PLATFORM_SERVICES: tuple[str, ...] = ("communities", "gateway", "web")
# The stage services a deployment with cells also runs once for all cells, without CONSULT_CELL:
# the audit service, whose platform instance keeps no community's log but the platform log spanning
# the cells, one leaf per cell's signed head (services/audit/span.py).
SPANNING: tuple[str, ...] = ("audit",)
# The calls about the whole deployment that its platform instance answers, not a cell's.
PLATFORM_WIDE: frozenset[tuple[str, str]] = frozenset({("audit", "platform_checkpoint"),
                                                       ("audit", "platform_checkpoints")})


class _Own:
    def __repr__(self) -> str:
        return "OWN"


OWN = _Own()
"""`cell=OWN`: the cell of this process (settings.cell), which is None for a platform service and
in a deployment without cells."""


def in_cells(service: str) -> bool:
    """Whether each cell runs its own `service` (a stage service), rather than the platform one."""
    return service not in PLATFORM_SERVICES


def spanning_instance(settings: Settings, service: str) -> bool:
    """Whether this process is the platform instance of a stage service that spans the cells."""
    return bool(settings.cells) and settings.cell is None and service in SPANNING


def platform_wide(settings: Settings, service: str, method: str) -> bool:
    """Whether a call goes to the platform instance (cell None) rather than a community's cell."""
    return bool(settings.cells) and (service, method) in PLATFORM_WIDE


def qualified(service: str, cell: str | None) -> str:
    """The name `service` goes by on the broker and in the stores: `<cell>-<service>` for a stage
    service of a cell, the plain name for a platform service or without a cell."""
    if cell is None or not in_cells(service):
        return service
    return f"{cell}-{service}"


def resolve(settings: Settings, cell) -> str | None:
    return settings.cell if cell is OWN else cell


def own(settings: Settings, service: str) -> str:
    """`service` as this process addresses it: in its own cell (a stage service), or the platform's."""
    return qualified(service, settings.cell)


def served(settings: Settings) -> tuple:
    """The cells whose stage services a process of this deployment deals with: its own cell, or
    for a platform process every cell of the deployment (None: a deployment without cells)."""
    if settings.cell is not None:
        return (settings.cell,)
    return settings.cells or (None,)


def consumer_cells(settings: Settings, source: str) -> tuple:
    """The cells whose consumers follow `source`: every cell for the directory's log, the
    source's own cell for a stage's."""
    return served(settings) if not in_cells(source) else (settings.cell,)


class Placements:
    """Which cell holds each community, as the directory placed it (`CommunityCreated`'s `cell`,
    the `cell` of its GetCommunity answer). A placement never changes -- moving a community between
    cells is not built (docs/scaling.md says how it would be) -- so a process asks the directory
    once per community and keeps the answer. `ask(community)` asks; it raises the directory's
    refusal for a community that does not exist, which is then not kept."""

    def __init__(self, settings: Settings, ask):
        self.settings, self._ask = settings, ask
        self._known: dict[str, str] = {}

    @classmethod
    def asking(cls, settings: Settings, send) -> "Placements":
        """Placements learnt from the directory through `send` (a runtime's or the CLI's: a
        declared call in, its unwrapped result out)."""
        from services.contracts.communities import GetCommunity

        return cls(settings, lambda community: send(GetCommunity(community=community)).get("cell"))

    def learn(self, community: str, cell: str | None) -> None:
        if cell is not None:
            self._known[community] = cell

    def cell_of(self, community: str | None) -> str | None:
        """The community's cell (None in a deployment without cells). The platform's own records
        (no community: an administrator's token) belong to the first cell, and so does a community
        made before the deployment had cells."""
        if not self.settings.cells:
            return None
        if community is None or community == PLATFORM_LOG:
            return self.settings.cells[0]
        cell = self._known.get(community)
        if cell is None:
            # A community made before the deployment had cells has none: the first cell's.
            cell = self._ask(community) or self.settings.cells[0]
            self.learn(community, cell)
        return cell

    def is_own(self, community: str | None) -> bool:
        """Whether this process's cell holds the community (always, outside cells)."""
        return self.settings.cell is None or self.cell_of(community) == self.settings.cell


def processes(settings: Settings, services) -> list[tuple[str, str | None]]:
    """The (service, cell) of every process a deployment runs for `services`, in their order: a
    platform service once, a stage service once per cell (once, with no cell, without cells)."""
    return [(service, cell) for service in services
            for cell in ((settings.cells or (None,)) if in_cells(service) else (None,))
            + ((None,) if settings.cells and service in SPANNING else ())]


def label(service: str, cell: str | None) -> str:
    """How a process is named to people (logs, `consult up`): `c1-audit`, `gateway`."""
    return qualified(service, cell)


def in_process(settings: Settings, service: str, cell: str | None) -> Settings:
    """The settings of one process of `processes` (its HTTP port, its names)."""
    import dataclasses

    return dataclasses.replace(settings, cell=cell if in_cells(service) else None)


def check_process(settings: Settings, service: str) -> None:
    """Refuse a process that would serve no cell or the wrong one: a stage service of a deployment
    with cells without CONSULT_CELL (no gateway would route to it, and it would take the names of
    a deployment without cells), or a platform service given one. A spanning service (SPANNING)
    runs without one too: that is its platform instance."""
    if in_cells(service) and settings.cells and settings.cell is None and service not in SPANNING:
        raise ValueError(f"the {service} service of a deployment with cells ({','.join(settings.cells)}) runs in one: "
                         "set CONSULT_CELL")
    if not in_cells(service) and settings.cell is not None:
        raise ValueError(f"CONSULT_CELL is for the stage services; {service} is one for all cells: unset it")
