"""Event contracts of the `communities` source: the directory (communities, compounds, buildings, households, people, tokens, invitations).

Prose: `services/contracts/prose/communities.md`; the generated page: `docs/events/communities.md`.
"""
from __future__ import annotations

from .erasure import PERSON_TEXTS_ERASED
from .schema import event, f

# The directory's levels a proposal, a consultation or a plan is scoped to.
SCOPES = ("community", "compound", "building")

SOURCE = "communities"

EVENTS = (
    event("CommunityCreated", "Community", 1, f("name", "str"), f("rules", "object")),
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
