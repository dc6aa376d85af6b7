"""The communities (directory) service: thin nameko entrypoints over the DirectoryApp."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.runtime import Platform, ServiceBase, command

from . import tables
from .application import DirectoryApp


class CommunitiesService(ServiceBase):
    name = "communities"
    platform = Platform("communities", app_factory=DirectoryApp, tables=(tables.metadata,))

    @property
    def app(self) -> DirectoryApp:
        return self.platform.app

    # commands ------------------------------------------------------------------------------
    @rpc
    @command
    def create_community(self, actor, name, rules=None):
        return {"id": self.app.create_community(actor, name, rules)}

    @rpc
    @command
    def change_rules(self, actor, community, rules):
        return {"rules": self.app.change_rules(actor, community, rules)}

    @rpc
    @command
    def add_compound(self, actor, community, name):
        return {"id": self.app.add_compound(actor, community, name)}

    @rpc
    @command
    def add_building(self, actor, community, compound, name):
        return {"id": self.app.add_building(actor, community, compound, name)}

    @rpc
    @command
    def register_household(self, actor, community, building, unit, area, owners=(), representative=None,
                           developer_unsold=False, effective=None):
        return {"id": self.app.register_household(actor, community, building, unit, area, owners, representative,
                                                  developer_unsold, effective)}

    @rpc
    @command
    def correct_area(self, actor, community, household, area, reason, effective=None):
        self.app.correct_area(actor, community, household, area, reason, effective)
        return self.app.household_view(community, household)

    @rpc
    @command
    def transfer_household(self, actor, community, household, owners, representative=None, developer_unsold=False,
                           effective=None):
        self.app.transfer_household(actor, community, household, owners, representative, developer_unsold, effective)
        return self.app.household_view(community, household)

    @rpc
    @command
    def register_person(self, actor, community, name, adult=True, household=None, effective=None):
        return {"id": self.app.register_person(actor, community, name, adult, household, effective)}

    @rpc
    @command
    def move_person(self, actor, community, person, household, effective=None):
        self.app.move_person(actor, community, person, household, effective)
        return self.app.person_view(community, person)

    @rpc
    @command
    def set_adult(self, actor, community, person, adult):
        self.app.set_adult(actor, community, person, adult)
        return self.app.person_view(community, person)

    @rpc
    @command
    def grant_role(self, actor, community, person, role, scope=None, effective=None):
        self.app.grant_role(actor, community, person, role, scope, effective)
        return self.app.person_view(community, person)

    @rpc
    @command
    def revoke_role(self, actor, community, person, role, scope=None, effective=None):
        self.app.revoke_role(actor, community, person, role, scope, effective)
        return self.app.person_view(community, person)

    @rpc
    @command
    def erase_person(self, actor, community, person):
        return {"erased_texts": self.app.erase_person(actor, community, person)}

    @rpc
    @command
    def import_csv(self, actor, community, text):
        return self.app.import_csv(actor, community, text)

    # credentials ---------------------------------------------------------------------------
    @rpc
    @command
    def issue_token(self, community, person, days=90, label=None):
        return self.app.issue_token(community, person, days, label)

    @rpc
    @command
    def bootstrap_admin(self, label="platform admin"):
        return self.app.bootstrap_admin(label)

    @rpc
    @command
    def authenticate(self, token):
        return self.app.authenticate(token)

    @rpc
    @command
    def revoke_token(self, token):
        self.app.revoke_token(token)
        return {}

    @rpc
    @command
    def create_invitation(self, community, household=None, roles=(), days=14):
        return self.app.create_invitation(community, household, list(roles), days)

    @rpc
    @command
    def redeem_invitation(self, code, name, adult=True):
        return self.app.redeem_invitation(code, name, adult)

    # queries -------------------------------------------------------------------------------
    @rpc
    @command
    def list_communities(self):
        return self.app.list_communities()

    @rpc
    @command
    def get_community(self, community):
        return self.app.community_view(community)

    @rpc
    @command
    def directory(self, community, at=None):
        return self.app.directory(community, at)

    @rpc
    @command
    def get_household(self, community, household, at=None):
        return self.app.household_view(community, household, at)

    @rpc
    @command
    def get_person(self, community, person, at=None):
        return self.app.person_view(community, person, at)

    @rpc
    @command
    def residents_in_scope(self, community, scope, scope_id=None, at=None):
        return self.app.residents_in_scope(community, scope, scope_id, at)

    @rpc
    @command
    def households_in_scope(self, community, scope, scope_id=None, at=None):
        return self.app.households_in_scope(community, scope, scope_id, at)

    @rpc
    @command
    def units_in_scope(self, community, scope, scope_id=None, at=None):
        return self.app.units_in_scope(community, scope, scope_id, at)

    @rpc
    @command
    def role_holders(self, community, role, scope=None, at=None):
        return self.app.role_holders(community, role, scope, at)


SERVICE = CommunitiesService
