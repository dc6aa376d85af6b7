"""Event contracts of the `communities` source: the directory (communities, compounds, buildings, households, people, tokens, invitations).

Prose: `services/contracts/prose/communities.md`; the generated page: `docs/events/communities.md`.
"""
from __future__ import annotations

from .calls import RpcCall, rpc_call
from .erasure import PERSON_TEXTS_ERASED
from .schema import event, f, older

# The directory's levels a proposal, a consultation or a plan is scoped to.
SCOPES = ("community", "compound", "building")
MAX_INVITATIONS = 5000  # the most invitations one request issues (CreateInvitations)
# What the gateway validates and lists (services/communities/domain.py checks rule sets against the first two).
SUPPORT_PER = ("resident", "household")  # rule `support_per`: one support per resident, or per household
THRESHOLD_UNITS = ("residents", "households")  # what a scope's support threshold counts
RULE_CHANGE_STATUSES = ("proposed", "confirmed", "withdrawn")  # a change of the community's rules

SOURCE = "communities"
# The log (community id) in which platform administrators' credentials are recorded: the community
# of the directory's events that belong to no community (a cell's services: services/common/cells.py).
PLATFORM_LOG = "00000000-0000-0000-0000-000000000000"

EVENTS = (
    event("CommunityCreated", "Community", 2, f("name", "str"), f("rules", "object"), f("cell", "str?")),
    event("CompoundCreated", "Compound", 1, f("community", "str"), f("name", "str")),
    event("BuildingCreated", "Building", 1, f("community", "str"), f("compound", "str"), f("name", "str")),
    event("CommunityRulesChanged", "Community", 1, f("rules", "object")),
    event("CommunityRuleChangeProposed", "Community", 1, f("change", "str"), f("settings", "object"),
          f("proposed_by", "str"), f("proposed_at", "str")),
    event("CommunityRuleChangeConfirmed", "Community", 1, f("change", "str"), f("confirmed_by", "str"),
          f("rules", "object")),
    event("CommunityRuleChangeWithdrawn", "Community", 1, f("change", "str"), f("withdrawn_by", "str")),
    event("HouseholdRegistered", "Household", 1, f("community", "str"), f("building", "str"), f("unit", "str"),
          f("area", "decimal"), f("effective", "str"), f("owners", "array"), f("representative", "str?"),
          f("developer_unsold", "bool")),
    event("HouseholdAreaCorrected", "Household", 1, f("area", "decimal"), f("reason_commitment", "commitment"),
          f("effective", "str")),
    event("HouseholdOwnershipTransferred", "Household", 1, f("owners", "array"), f("representative", "str?"),
          f("developer_unsold", "bool"), f("effective", "str")),
    event("PersonRegistered", "Person", 1, f("community", "str"), f("name_commitment", "commitment"),
          f("adult", "bool"), f("household", "str?"), f("effective", "str")),
    event("PersonMoved", "Person", 1, f("household", "str?"), f("effective", "str")),
    event("PersonAdultnessChanged", "Person", 1, f("adult", "bool")),
    event("PersonRenamed", "Person", 1, f("name_commitment", "commitment")),
    event("PersonRoleGranted", "Person", 1, f("role", "str"), f("scope", "str?"), f("effective", "str")),
    event("PersonRoleRevoked", "Person", 1, f("role", "str"), f("scope", "str?"), f("effective", "str")),
    event("TokenIssued", "Token", 1, f("community", "str?"), f("person", "str"), f("expires_at", "str?"),
          f("via", "str"), f("invitation", "str?")),
    event("TokenRevoked", "Token", 1, f("person", "str"), f("reason", "str"), f("revoked_at", "str")),
    event("InvitationIssued", "Invitation", 1, f("community", "str"), f("household", "str?"), f("roles", "array"),
          f("expires_at", "str")),
    event("InvitationRedeemed", "Invitation", 1, f("person", "str")),
    event("InvitationRevoked", "Invitation", 1),
    event("PersonErasureRequested", "ErasureRequest", 1, f("person", "str"),
          f("reason_commitment", "commitment")),
    PERSON_TEXTS_ERASED,  # its part of an erasure request (services/common/erasure.py)
)

# Version 1 of CommunityCreated, from before cells (services/communities/domain.py versions the
# event): the audit log keeps envelopes as they were published, so a log from before holds it.
EVENTS += (older(next(e for e in EVENTS if e.type == "CommunityCreated"), 1, without=("cell",)),)


# ---- calls: the communities service's RPC methods, by their arguments' names (calls.py) -----------------
MAX_TOKEN_DAYS = 366  # the longest a token lasts (services/communities/application.py checks it)


@rpc_call(SOURCE, "create_community")
class CreateCommunity(RpcCall):
    actor: str
    name: str
    rules: dict | None = None


@rpc_call(SOURCE, "propose_rule_change")
class ProposeRuleChange(RpcCall):
    actor: str
    community: str
    settings: dict


@rpc_call(SOURCE, "confirm_rule_change")
class ConfirmRuleChange(RpcCall):
    actor: str
    community: str
    change: str


@rpc_call(SOURCE, "withdraw_rule_change")
class WithdrawRuleChange(RpcCall):
    actor: str
    community: str
    change: str


@rpc_call(SOURCE, "add_compound")
class AddCompound(RpcCall):
    actor: str
    community: str
    name: str


@rpc_call(SOURCE, "add_building")
class AddBuilding(RpcCall):
    actor: str
    community: str
    compound: str
    name: str


@rpc_call(SOURCE, "register_household")
class RegisterHousehold(RpcCall):
    actor: str
    community: str
    building: str
    unit: str
    area: str  # a decimal number written as a string
    owners: list[str] | tuple[str, ...] = ()
    representative: str | None = None
    developer_unsold: bool = False
    effective: str | None = None


@rpc_call(SOURCE, "correct_area")
class CorrectArea(RpcCall):
    actor: str
    community: str
    household: str
    area: str
    reason: str
    effective: str | None = None


@rpc_call(SOURCE, "transfer_household")
class TransferHousehold(RpcCall):
    actor: str
    community: str
    household: str
    owners: list[str]
    representative: str | None = None
    developer_unsold: bool = False
    effective: str | None = None


@rpc_call(SOURCE, "register_person")
class RegisterPerson(RpcCall):
    actor: str
    community: str
    name: str
    adult: bool = True
    household: str | None = None
    effective: str | None = None


@rpc_call(SOURCE, "move_person")
class MovePerson(RpcCall):
    actor: str
    community: str
    person: str
    household: str | None  # None: moved out
    effective: str | None = None


@rpc_call(SOURCE, "grant_role")
class GrantRole(RpcCall):
    actor: str
    community: str
    person: str
    role: str
    scope: str | None = None
    effective: str | None = None


@rpc_call(SOURCE, "revoke_role")
class RevokeRole(RpcCall):
    actor: str
    community: str
    person: str
    role: str
    scope: str | None = None
    effective: str | None = None


@rpc_call(SOURCE, "request_erasure")
class RequestErasure(RpcCall):
    actor: str
    community: str
    person: str
    reason: str


@rpc_call(SOURCE, "erasure_status")
class ErasureStatus(RpcCall):
    actor: str
    community: str
    person: str


# A directory import's job (services/communities/imports.py): running, then done (its result),
# failed (its problem: the file's errors by line, or a conflict) or interrupted (run it again).
IMPORT_RUNNING, IMPORT_DONE, IMPORT_FAILED, IMPORT_INTERRUPTED = "running", "done", "failed", "interrupted"
IMPORT_STATUSES = (IMPORT_RUNNING, IMPORT_DONE, IMPORT_FAILED, IMPORT_INTERRUPTED)


@rpc_call(SOURCE, "start_import")
class StartImport(RpcCall):
    """Start importing a CSV file (or find its job: same community, same bytes) and wait up to
    `wait` seconds for it to end; answers the job."""
    actor: str
    community: str
    text: str
    wait: float = 0.0


@rpc_call(SOURCE, "import_status")
class ImportStatus(RpcCall):
    """A job of `community` as `actor` may read it: a community worker or the party lead (or the
    operator's tools)."""
    actor: str
    community: str
    job: str


@rpc_call(SOURCE, "issue_token")
class IssueToken(RpcCall):
    community: str
    person: str
    days: int | None = 90  # None: as long as the deployment
    label: str | None = None
    actor: str = "operator"
    presented: str | None = None  # the id of the token the request came with (the gateway's)


@rpc_call(SOURCE, "bootstrap_admin")
class BootstrapAdmin(RpcCall):
    label: str = "platform admin"
    actor: str = "operator"
    days: int | None = MAX_TOKEN_DAYS


@rpc_call(SOURCE, "authenticate")
class Authenticate(RpcCall):
    token: str  # the bearer token as presented (the gateway's sign-in)


@rpc_call(SOURCE, "token_check")
class TokenCheck(RpcCall):
    """The public key of signed tokens and the ids of those revoked (a gateway's own sign-in)."""


@rpc_call(SOURCE, "list_tokens")
class ListTokens(RpcCall):
    actor: str
    community: str
    person: str


@rpc_call(SOURCE, "revoke_token")
class RevokeToken(RpcCall):
    actor: str
    community: str
    token: str


@rpc_call(SOURCE, "sign_out")
class SignOut(RpcCall):
    actor: str
    token: str


@rpc_call(SOURCE, "create_invitation")
class CreateInvitation(RpcCall):
    actor: str
    community: str
    household: str | None = None
    roles: list[str] | tuple[str, ...] = ()
    days: int = 14


@rpc_call(SOURCE, "create_invitations")
class CreateInvitations(RpcCall):
    """Invitations for the residents of the households named, or of every household in the scope
    (community, compound or building): one request, one save, each code shown once."""
    actor: str
    community: str
    households: list[str] | tuple[str, ...] | None = None
    scope: str = "community"
    scope_id: str | None = None
    days: int = 14


@rpc_call(SOURCE, "revoke_invitation")
class RevokeInvitation(RpcCall):
    actor: str
    community: str
    invitation: str


@rpc_call(SOURCE, "redeem_invitation")
class RedeemInvitation(RpcCall):
    code: str
    name: str
    adult: bool = True


@rpc_call(SOURCE, "list_communities")
class ListCommunities(RpcCall):
    pass


@rpc_call(SOURCE, "get_community")
class GetCommunity(RpcCall):
    """The community: id, name, rules (as they stood `at`, or now with the pending rule changes),
    and `cell`, the cell it was placed in (None: a deployment without cells, or created before)."""
    community: str
    at: str | None = None


@rpc_call(SOURCE, "directory")
class Directory(RpcCall):
    community: str
    at: str | None = None


@rpc_call(SOURCE, "get_household")
class GetHousehold(RpcCall):
    community: str
    household: str
    at: str | None = None


@rpc_call(SOURCE, "get_person")
class GetPerson(RpcCall):
    community: str
    person: str
    at: str | None = None


# The directory's questions the stages ask (services/common/directory.py, the one client that asks them).
@rpc_call(SOURCE, "residents_in_scope")
class ResidentsInScope(RpcCall):
    community: str
    scope: str  # one of SCOPES
    scope_id: str | None = None
    at: str | None = None


@rpc_call(SOURCE, "households_in_scope")
class HouseholdsInScope(RpcCall):
    community: str
    scope: str
    scope_id: str | None = None
    at: str | None = None


@rpc_call(SOURCE, "units_in_scope")
class UnitsInScope(RpcCall):
    community: str
    scope: str
    scope_id: str | None = None
    at: str | None = None


@rpc_call(SOURCE, "role_holders")
class RoleHolders(RpcCall):
    community: str
    role: str
    scope: str | None = None  # only holders of the role with this scope; None: with any scope
    at: str | None = None


@rpc_call(SOURCE, "display_names")
class DisplayNames(RpcCall):
    community: str
    people: list[str]
