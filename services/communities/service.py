"""The communities (directory) service: thin nameko entrypoints over the DirectoryApp."""
from __future__ import annotations

import functools
import time

from services.common.erasure import ERASING, completion
from services.common.rpc import rpc
from services.common.runtime import Platform, ServiceBase, command, query
from services.contracts.every_service import ERASURE_DONE

from . import tables
from .application import MAX_TOKEN_DAYS, DirectoryApp


class CommunitiesService(ServiceBase):
    name = "communities"
    # Each CSV import job in a process of its own: a large file would hold this one's hub.
    platform = Platform("communities", app_factory=functools.partial(DirectoryApp, imports_in_process=False),
                        tables=(tables.metadata,))

    @property
    def app(self) -> DirectoryApp:
        return self.platform.app

    def _published(self, position: int, timeout: float = 2.0) -> None:
        """Answer a revocation only once its event is on the bus: every gateway's invalidation
        queue then holds it, so no gateway keeps serving a cached sign-in for long after the
        caller was told "revoked". The revocation itself holds already (the credential table);
        a slow relay costs at most `timeout` here, and the caches' own 5 s expiry bounds the rest."""
        relay = self.platform.relay
        deadline = time.monotonic() + timeout
        while relay is not None and not relay.has_published(position) and time.monotonic() < deadline:
            time.sleep(0.02)

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
    def propose_rule_change(self, actor, community, settings):
        return self.app.propose_rule_change(actor, community, settings)

    @rpc
    @command
    def confirm_rule_change(self, actor, community, change):
        return self.app.confirm_rule_change(actor, community, change)

    @rpc
    @command
    def withdraw_rule_change(self, actor, community, change):
        return self.app.withdraw_rule_change(actor, community, change)

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
        self._published(self.app.revoke_role(actor, community, person, role, scope, effective))
        return self.app.person_view(community, person)

    @rpc
    @command
    def request_erasure(self, actor, community, person, reason):
        """One request erases a person's texts and contact data in every service (PIPL art. 47);
        the answer is the status as it stands (the directory's part is done at once)."""
        request = self.app.request_erasure(actor, community, person, reason)
        self._published(self.app.head())  # the request is on the bus before the caller looks again
        return self._erasure_status(actor, community, person, only=request)

    @rpc
    @query
    def erasure_status(self, actor, community, person):
        """Which services have completed each erasure request for the person."""
        return self._erasure_status(actor, community, person)

    def _erasure_status(self, actor, community, person, only=None) -> dict:
        requests = self.app.erasure_requests(actor, community, person)
        if only is not None:
            requests = [r for r in requests if r["id"] == only]
        cell = self.platform.placements.cell_of(community)  # the stage services of its cell erase (cells.py)
        for r in requests:
            services = {}
            for service in ERASING:
                if service == self.name:
                    done = completion(self.app, service, r["id"])
                else:  # a service that does not answer in time is shown as not (yet) known to be done
                    done = self.platform.send_or_none(ERASURE_DONE[service](request=r["id"]), in_cell=cell)
                services[service] = done or {"done": False}
            r["services"] = services
            r["complete"] = all(v["done"] for v in services.values())
        if only is not None:
            return requests[0]
        return {"person": str(person), "services": list(ERASING), "requests": requests}

    @rpc
    @command
    def start_import(self, actor, community, text, wait=0.0):
        return self.app.imports.start(actor, community, text, wait)

    @rpc
    @command
    def import_status(self, actor, community, job):
        return self.app.imports.status(community, job, actor)

    # credentials ---------------------------------------------------------------------------
    @rpc
    @command
    def issue_token(self, community, person, days=90, label=None, actor="operator", presented=None):
        """`actor` is the signed-in person when the gateway asks (with `presented`, the id of the
        token the request came with); the operator's tools leave both."""
        return self.app.issue_token(community, person, days, label, actor, presented)

    @rpc
    @command
    def bootstrap_admin(self, label="platform admin", actor="operator", days=MAX_TOKEN_DAYS):
        """`days` None: as long as the deployment (the demo's administrator)."""
        return self.app.bootstrap_admin(label, actor, days)

    @rpc
    @query
    def authenticate(self, token):
        return self.app.authenticate(token)

    @rpc
    @query
    def token_check(self):
        return self.app.token_check()

    @rpc
    @query
    def list_tokens(self, actor, community, person):
        return self.app.list_tokens(actor, community, person)

    @rpc
    @command
    def revoke_token(self, actor, community, token):
        self._published(self.app.revoke_token(actor, community, token))
        return {"id": str(token), "revoked": True}

    @rpc
    @command
    def sign_out(self, actor, token):
        self._published(self.app.sign_out(actor, token))
        return {"id": str(token), "revoked": True}

    @rpc
    @command
    def create_invitation(self, actor, community, household=None, roles=(), days=14):
        return self.app.create_invitation(actor, community, household, list(roles), days)

    @rpc
    @command
    def create_invitations(self, actor, community, households=None, scope="community", scope_id=None, days=14):
        return self.app.create_invitations(actor, community, None if households is None else list(households),
                                           scope, scope_id, days)

    @rpc
    @command
    def revoke_invitation(self, actor, community, invitation):
        return self.app.revoke_invitation(actor, community, invitation)

    @rpc
    @command
    def redeem_invitation(self, code, name, adult=True):
        return self.app.redeem_invitation(code, name, adult)

    # queries -------------------------------------------------------------------------------
    @rpc
    @query
    def list_communities(self):
        return self.app.list_communities()

    @rpc
    @query
    def get_community(self, community, at=None):
        return self.app.community_view(community, at)

    @rpc
    @query
    def directory(self, community, at=None):
        return self.app.directory(community, at)

    @rpc
    @query
    def get_household(self, community, household, at=None):
        return self.app.household_view(community, household, at)

    @rpc
    @query
    def display_names(self, community, people):
        return self.app.display_names(community, people)

    @rpc
    @query
    def get_person(self, community, person, at=None):
        return self.app.person_view(community, person, at)

    @rpc
    @query
    def residents_in_scope(self, community, scope, scope_id=None, at=None):
        return self.app.residents_in_scope(community, scope, scope_id, at)

    @rpc
    @query
    def households_in_scope(self, community, scope, scope_id=None, at=None):
        return self.app.households_in_scope(community, scope, scope_id, at)

    @rpc
    @query
    def units_in_scope(self, community, scope, scope_id=None, at=None):
        return self.app.units_in_scope(community, scope, scope_id, at)

    @rpc
    @query
    def role_holders(self, community, role, scope=None, at=None):
        return self.app.role_holders(community, role, scope, at)


SERVICE = CommunitiesService
