"""The directory application: commands that record the directory's history, and queries on it."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from services.common import clock, signed_token
from services.common.aggregate import command_context, derived_id
from services.common.content import validate_text
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from services.common.ids import as_uuid, parse_id
from services.common.pooling import autocommit
from rules.community import in_force_at
from services.common.erasure import record_erasure
from services.common.store import StageApplication
from services.contracts.communities import MAX_INVITATIONS, MAX_TOKEN_DAYS, PLATFORM_LOG

from . import csv_import
from . import tables as t
from .domain import (
    DEFAULT_RULES, MANAGER_ROLES, ROLES, SCOPED_ROLES, Building, Community, Compound, ErasureRequest, Household, Invitation, Person,
    Token,
    least_loaded_cell, parse_area, validate_rules,
)

# A token that lasts as long as the deployment (the demo's; every token of a training deployment,
# whose fast clock would end a 30-day token within the hour) has no expiry: null in the record
# and the API. The credential table keeps this instant for it, after every time the clock reaches.
UNTIL_THE_DEPLOYMENT_ENDS = "9999-12-31T23:59:59.999999Z"
OPAQUE_PREFIX = "cst_"  # a token that cannot be signed (services/common/signed_token.py): checked over RPC
ADMIN_PREFIX = "admin-"  # a platform administrator's person id: admin-<uuid>, in no community
LEAD_APPOINTMENT = "communities.lead_role_given_by"  # the refusal's message key


def effective_time(value) -> str:
    """Effective times: now if absent; 'YYYY-MM-DD' means that day 00:00 UTC."""
    if value in (None, ""):
        return clock.format(clock.now())
    if not isinstance(value, str):
        raise InvalidInput.coded("communities.effective_date_yyyy_mm")
    try:
        if len(value) == 10:
            return clock.format(clock.parse(value + "T00:00:00Z"))
        return clock.format(clock.parse(value))
    except ValueError:
        raise InvalidInput.coded("communities.date_time", value=repr(value)) from None


def parse_uuid(value, field: str) -> str:
    return str(parse_id(value, field))


def _in_force(table: sa.Table, at) -> sa.ColumnElement:
    """A dated row (a role, a residence) in force at `at`: begun by then and not yet ended."""
    return sa.and_(table.c.valid_from <= at, sa.or_(table.c.valid_to.is_(None), table.c.valid_to > at))


# The roles a person holds in a community at a time, and every request the gateway has not seen
# signed in yet: its token by its hash with the holder's roles now, in one statement (a row per
# role, one with no role for none). Built once, the values bound at each execution.
_ROLES_AT = sa.select(t.roles).where(
    t.roles.c.community == sa.bindparam("of"), t.roles.c.person == sa.bindparam("who"),
    _in_force(t.roles, sa.bindparam("at")))
_SIGN_IN = (
    sa.select(t.tokens, t.roles.c.role.label("role_"), t.roles.c.scope.label("scope_"))
    .select_from(t.tokens.outerjoin(t.roles, sa.and_(
        t.roles.c.community == t.tokens.c.community, t.roles.c.person == t.tokens.c.person,
        _in_force(t.roles, sa.bindparam("at")))))
    .where(t.tokens.c.token_hash == sa.bindparam("token_hash_")))


def _roles(conn: sa.Connection, community: str, person: str, at: str) -> list[dict]:
    """The roles `person` holds in `community` at `at`."""
    return [{"role": r.role, "scope": r.scope or None}
            for r in conn.execute(_ROLES_AT, {"of": community, "who": person, "at": at})]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_expiry(stored: str) -> str | None:
    """A token's expiry as the API shows it: None for a token that lasts as long as the deployment."""
    return None if stored == UNTIL_THE_DEPLOYMENT_ENDS else stored


MAX_DISPLAY_NAMES = 2000  # ids named in one call (a roll of a large compound)

class DirectoryApp(StageApplication):
    name = "communities"

    def __init__(self, settings, engine: sa.Engine, imports_in_process: bool = True):
        """`imports_in_process` False: each CSV import job runs in a process of its own (the
        service does so: services/communities/imports.py says why)."""
        from .imports import Imports

        t.add_missing_columns(engine)  # a store made before a read-model column was added
        super().__init__(settings, "communities", engine, project_envelope, cache_size=5000)
        self._token_key = None
        self.imports = Imports(self, engine, in_process=imports_in_process)  # CSV imports, as jobs

    # ---- loading with tenancy ---------------------------------------------------------
    def _load(self, cls, agg_id, field: str):
        agg_id = parse_uuid(agg_id, field)
        try:
            agg = self.repository.get(uuid.UUID(agg_id))
        except Exception:  # noqa: BLE001 - AggregateNotFound
            raise NotFound.coded("common.does_exist", what=field, value=agg_id) from None
        if not isinstance(agg, cls):
            raise NotFound.coded("common.does_exist", what=field, value=agg_id)
        return agg

    def _get(self, cls, community: str, agg_id, field: str):
        agg = self._load(cls, agg_id, field)
        if cls is not Community and agg.community != community:
            raise NotFound.coded("common.does_exist", what=field, value=agg.id)
        return agg

    def community(self, community: str) -> Community:
        return self._get(Community, community, community, "community")

    # ---- communities --------------------------------------------------------------------
    def create_community(self, actor: str, name: str, rules: dict | None = None) -> str:
        name = validate_text(name, "name", max_len=200)
        merged = validate_rules(rules or {}, DEFAULT_RULES)
        cell = self.placement()
        cid = uuid.uuid4()
        with command_context(community=str(cid), actor=actor):
            c = Community._create(Community.Created, id=cid, name=name, rules=merged, cell=cell)
            self.save(c)
        return str(cid)

    def placement(self) -> str | None:
        """The cell a community created now goes to: the least-loaded of the deployment's cells
        (domain.least_loaded_cell), counted in the read model in one query. Not under a lock: two
        communities created at once may both be placed in the same cell, which the rule allows (it
        balances, it guarantees nothing); the placement is then recorded in CommunityCreated."""
        cells = self.settings.cells
        if not cells:
            return None
        self.project()
        with self.engine.connect() as conn:
            counts = dict(conn.execute(sa.select(t.communities.c.cell, sa.func.count())
                                       .where(t.communities.c.cell.is_not(None)).group_by(t.communities.c.cell)).all())
        return least_loaded_cell(cells, counts)

    def placements(self) -> dict:
        """Every community's cell, {community id: cell or None}: one read of the read model."""
        self.project()
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(t.communities.c.id, t.communities.c.cell)).all())

    def change_rules(self, actor: str, community: str, rules: dict) -> dict:
        """The operator's one-step change (setting a community up from the command line or a
        test). Members change rules in two steps: propose_rule_change, confirm_rule_change."""
        if self._authority(actor) != "operator":
            raise Forbidden.coded("communities.rule_change_proposed_one")
        c = self.community(community)
        merged = validate_rules(rules, c.rules)
        with command_context(community=community, actor=actor):
            c.change_rules(merged)
            self.save(c)
        return merged

    # ---- structure ----------------------------------------------------------------------
    def add_compound(self, actor: str, community: str, name: str) -> str:
        self.community(community)
        name = validate_text(name, "name", max_len=200)
        with command_context(community=community, actor=actor):
            c = Compound(community=community, name=name)
            self.save(c)
        return str(c.id)

    def add_building(self, actor: str, community: str, compound: str, name: str) -> str:
        self._get(Compound, community, compound, "compound")
        name = validate_text(name, "name", max_len=200)
        with command_context(community=community, actor=actor):
            b = Building(community=community, compound=str(compound), name=name)
            self.save(b)
        return str(b.id)

    def _check_owners(self, community: str, owners, representative, developer_unsold) -> tuple[list, str | None]:
        if not isinstance(owners, list):
            raise InvalidInput.coded("communities.owners_list_person_ids")
        owners = [self._get(Person, community, o, "owner").id.__str__() for o in owners]
        if developer_unsold and owners:
            raise InvalidInput.coded("communities.unit_developer_sold_other")
        if not developer_unsold and not owners:
            raise InvalidInput.coded("communities.unit_needs_least_one")
        if len(set(owners)) != len(owners):
            raise InvalidInput.coded("communities.owner_listed_twice")
        if representative is not None:
            representative = parse_uuid(representative, "representative")
            if representative not in owners:
                raise InvalidInput.coded("communities.representative_one_owners")
        elif len(owners) > 1:
            raise InvalidInput.coded("communities.co_owned_unit_needs")
        return owners, representative

    def _new_household(self, community, building, unit, area, owners, representative, developer_unsold, effective):
        return Household(
            community=community, building=building, unit=unit, area=area, effective=effective,
            owners=owners, representative=representative, developer_unsold=bool(developer_unsold),
        )

    def register_household(self, actor, community, building, unit, area, owners=(), representative=None,
                           developer_unsold=False, effective=None) -> str:
        b = self._get(Building, community, building, "building")
        unit = validate_text(unit, "unit", max_len=40)
        area = parse_area(area)
        if not isinstance(developer_unsold, bool):
            raise InvalidInput.coded("communities.developer_unsold_true_false")
        owners, representative = self._check_owners(community, list(owners), representative, developer_unsold)
        eff = effective_time(effective)
        if self._unit_taken(str(b.id), unit):
            raise Conflict.coded("communities.unit_already_exists_building", unit=unit)
        with command_context(community=community, actor=actor):
            h = self._new_household(community, str(b.id), unit, area, owners, representative, developer_unsold, eff)
            self.save(h)
        self.project()
        return str(h.id)

    def _unit_taken(self, building: str, unit: str) -> bool:
        self.project()
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(t.households.c.id).where(t.households.c.building == building, t.households.c.unit == unit)
            ).first() is not None

    def correct_area(self, actor, community, household, area, reason, effective=None) -> None:
        h = self._get(Household, community, household, "household")
        area = parse_area(area)
        reason = validate_text(reason, "reason", max_len=1000)
        eff = effective_time(effective)
        commitment = self.content.put(reason)
        with command_context(community=community, actor=actor):
            h.correct_area(area=area, reason_commitment=commitment, effective=eff)
            self.save(h)

    def transfer_household(self, actor, community, household, owners, representative=None,
                           developer_unsold=False, effective=None) -> None:
        h = self._get(Household, community, household, "household")
        owners, representative = self._check_owners(community, owners, representative, developer_unsold)
        with command_context(community=community, actor=actor):
            h.transfer(owners, representative, bool(developer_unsold), effective_time(effective))
            self.save(h)

    # ---- people -------------------------------------------------------------------------
    def register_person(self, actor, community, name, adult=True, household=None, effective=None) -> str:
        self.community(community)
        name = validate_text(name, "name", max_len=100)
        if not isinstance(adult, bool):
            raise InvalidInput.coded("communities.adult_true_false")
        if household is not None:
            household = str(self._get(Household, community, household, "household").id)
        pid = uuid.uuid4()
        commitment = self.content.put(name, subject=str(pid))
        with command_context(community=community, actor=actor):
            p = Person._create(Person.Registered, id=pid, community=community, name_commitment=commitment,
                               adult=adult, household=household, effective=effective_time(effective))
            self.save(p)
        self.project()
        return str(pid)

    def move_person(self, actor, community, person, household, effective=None) -> None:
        p = self._get(Person, community, person, "person")
        if household is not None:
            household = str(self._get(Household, community, household, "household").id)
        with command_context(community=community, actor=actor):
            p.move(household, effective_time(effective))
            self.save(p)
        self.project()

    def set_adult(self, actor, community, person, adult: bool) -> None:
        p = self._get(Person, community, person, "person")
        if not isinstance(adult, bool):
            raise InvalidInput.coded("communities.adult_true_false")
        with command_context(community=community, actor=actor):
            p.set_adult(adult)
            self.save(p)

    def _check_scope(self, community, role, scope):
        kind = SCOPED_ROLES.get(role)
        if kind == "compound":
            return str(self._get(Compound, community, scope, "compound").id)
        if kind == "building":
            return str(self._get(Building, community, scope, "building").id)
        if scope not in (None, ""):
            raise InvalidInput.coded("communities.role_holds_whole_community", role=role)
        return None

    def grant_role(self, actor, community, person, role, scope=None, effective=None) -> None:
        if role == "platform_admin":
            raise Forbidden.coded("communities.platform_administrators_granted_inside")
        if role not in ROLES:
            raise InvalidInput.coded("communities.unknown_role_roles", role=repr(role), roles=", ".join(ROLES))
        p = self._get(Person, community, person, "person")
        if role == "party_lead":  # else a worker could make a second lead and pass every two-person rule alone
            self._require(community, actor, ("party_lead",), LEAD_APPOINTMENT)
        scope = self._check_scope(community, role, scope)
        with command_context(community=community, actor=actor):
            p.grant_role(role, scope, effective_time(effective))
            self.save(p)
        self.project()

    def revoke_role(self, actor, community, person, role, scope=None, effective=None) -> int:
        """Returns the log position of the revocation (the gateways drop their cached sign-ins
        of this person when it reaches them)."""
        p = self._get(Person, community, person, "person")
        if role == "party_lead":
            self._require(community, actor, ("party_lead",), LEAD_APPOINTMENT)
        scope = self._check_scope(community, role, scope) if role in ROLES else scope
        with command_context(community=community, actor=actor):
            p.revoke_role(role, scope, effective_time(effective))
            position = self._save(p)
        self.project()
        return position

    def request_erasure(self, actor, community, person, reason) -> str:
        """PIPL art. 47: one request erases a person's texts and contact data everywhere. Recorded
        here, with the directory's own erasure of their name and texts (its `PersonTextsErased`,
        saved with the request in one transaction, then the texts go); every other service that
        holds their texts consumes the request and records its own (services/common/erasure.py).
        A community worker or party-committee lead asks, with a reason; every hash stays."""
        p = self._get(Person, community, person, "person")
        self._require(community, actor, MANAGER_ROLES, "communities.erasure_requested_by")
        reason = validate_text(reason, "reason", max_len=1000)
        person = str(p.id)
        with self.content.for_command(str(actor), reason=reason) as texts, \
                command_context(community=community, actor=actor):
            request = ErasureRequest._create(ErasureRequest.PersonErasureRequested, person=person,
                                             reason_commitment=texts["reason"])
        record = record_erasure("communities", self.content, community, person, actor, cause=str(request.id))
        self._save(request, record)
        self.content.erase_subject(person)
        self.project()
        return str(request.id)

    def erasure_requests(self, actor, community, person) -> list[dict]:
        """The erasure requests recorded for a person, oldest first, with the directory's own part."""
        p = self._get(Person, community, person, "person")
        if str(actor) != str(p.id):
            self._require(community, actor, MANAGER_ROLES, "communities.erasure_shown_to")
        self.project()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.erasure_requests).where(
                t.erasure_requests.c.community == community, t.erasure_requests.c.person == str(p.id))
                .order_by(t.erasure_requests.c.requested_at, t.erasure_requests.c.id)).all()
        return [{"id": r.id, "person": r.person, "requested_at": r.requested_at, "requested_by": r.requested_by,
                 "reason": self.content.get(r.reason_commitment)} for r in rows]

    # ---- bulk import ------------------------------------------------------------------------
    def _owner_key_secret(self, community: str) -> bytes:
        """The community's HMAC key for owner keys, made on first use (kept in the state store only)."""
        ks = t.owner_key_secrets
        for _attempt in range(2):
            with self.engine.connect() as conn:
                found = conn.execute(sa.select(ks.c.secret).where(ks.c.community == community)).scalar()
            if found:
                return bytes.fromhex(found)
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(ks).values(community=community, secret=secrets.token_hex(32)))
            except sa.exc.IntegrityError:
                pass  # another import made it at the same moment: read theirs
        raise RuntimeError("no owner-key secret could be made")  # pragma: no cover

    def _owner_id(self, community: str, secret: bytes, key: str) -> str:
        """The person id an owner key stands for in this community: derived from HMAC(secret, key),
        so it says nothing about the key, and a concurrent import of the same new owner fails on
        the aggregate's version instead of making a second person."""
        digest = hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()
        return str(derived_id("owner", community, digest))

    def _existing_person(self, community: str, pid: str) -> Person | None:
        try:
            return self._get(Person, community, pid, "person")
        except NotFound:
            return None

    def import_csv(self, actor: str, community: str, text: str) -> dict:
        """Households and owners in bulk. Every bad row is reported by line, and nothing is
        imported from a file with errors (one transaction for the whole file). Owners with a key
        are matched to the people those keys already stand for; a unit already in the directory
        is left as it is when the file says the same about it, and refused when it says otherwise
        (a sale or a corrected area has its own command). So importing a file again changes
        nothing and makes nobody twice."""
        self.community(community)
        rows = csv_import.parse(text, effective_time)
        self.project()
        with self.engine.connect() as conn:
            compounds = {r.name: r.id for r in conn.execute(sa.select(t.compounds).where(t.compounds.c.community == community))}
            buildings = {(r.compound, r.name): r.id for r in conn.execute(sa.select(t.buildings).where(t.buildings.c.community == community))}
            units = {(r.building, r.unit): r.id for r in conn.execute(sa.select(t.households).where(t.households.c.community == community))}
        secret = self._owner_key_secret(community) if any(o.key for r in rows for o in r.owners) else b""
        keyed: dict[str, dict] = {}  # owner id -> {"person": aggregate or None, "name", "lines"}
        for row in rows:
            for owner in row.owners:
                if owner.key:
                    pid = self._owner_id(community, secret, owner.key)
                    entry = keyed.setdefault(pid, {"person": self._existing_person(community, pid),
                                                   "name": owner.name, "lines": []})
                    entry["lines"].append(row.line)
        errors, unchanged, matched_unkeyed = [], set(), {}
        for row in rows:
            hid = units.get((buildings.get((compounds.get(row.compound), row.building)), row.unit))
            if hid is None:
                continue
            same, owners = self._same_unit(community, secret, hid, row)
            if not same:
                errors.append({"line": row.line, "message": (
                    f"unit {row.unit} of building {row.building} is already in the directory with other owners or "
                    "another area: record a sale (transfers) or an area correction instead")})
                continue
            unchanged.add(row.line)
            for owner, pid in zip(row.owners, owners):
                if not owner.key:
                    matched_unkeyed[pid] = {"name": owner.name, "lines": [row.line]}
        if errors:
            csv_import.fail(errors)
        aggregates, created, renamed = [], [], set()
        names = self._names([e["person"].name_commitment for e in keyed.values() if e["person"] is not None])
        with command_context(community=community, actor=actor), self.content.batch() as new_texts:
            for pid, entry in keyed.items():
                person = entry["person"]
                if person is None:
                    continue
                current = names.get(person.name_commitment)
                if current is not None and current != entry["name"]:  # a corrected name; an erased one stays erased
                    person.rename(new_texts.put(entry["name"], subject=pid))
                    aggregates.append(person)
                    renamed.add(pid)
            for row in rows:
                if row.line in unchanged:
                    continue
                if row.compound not in compounds:
                    c = Compound(community=community, name=row.compound)
                    compounds[row.compound] = str(c.id)
                    aggregates.append(c)
                ckey = (compounds[row.compound], row.building)
                if ckey not in buildings:
                    b = Building(community=community, compound=compounds[row.compound], name=row.building)
                    buildings[ckey] = str(b.id)
                    aggregates.append(b)
                owner_ids = []
                for owner in row.owners:
                    if owner.key:
                        pid = self._owner_id(community, secret, owner.key)
                        entry = keyed[pid]
                        if entry["person"] is None:
                            entry["person"] = self._new_person(community, pid, owner.name, row.effective, new_texts)
                            aggregates.append(entry["person"])
                            created.append(pid)
                    else:
                        pid = str(uuid.uuid4())
                        keyed[pid] = {"person": self._new_person(community, pid, owner.name, row.effective,
                                                                  new_texts),
                                      "name": owner.name, "lines": [row.line]}
                        aggregates.append(keyed[pid]["person"])
                        created.append(pid)
                    owner_ids.append(pid)
                rep = owner_ids[row.representative] if row.representative is not None else None
                aggregates.append(self._new_household(community, buildings[ckey], row.unit, row.area, owner_ids, rep,
                                                      row.developer_unsold, row.effective))
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise Conflict.coded("communities.another_import_recorded_some") from None
        self.project()

        def listed(pid: str, entry: dict) -> dict:
            return {"id": pid, "name": entry["name"], "lines": entry["lines"]}

        matched = [dict(listed(pid, e), renamed=pid in renamed) for pid, e in keyed.items() if pid not in created]
        matched += [dict(listed(pid, e), renamed=False) for pid, e in matched_unkeyed.items()]
        return {"households": len(rows) - len(unchanged), "households_unchanged": len(unchanged),
                "people": {"created": [listed(pid, keyed[pid]) for pid in created], "matched": matched},
                "events": len(aggregates)}

    @staticmethod
    def _new_person(community: str, pid: str, name: str, effective: str, new_texts) -> Person:
        commitment = new_texts.put(name, subject=pid)
        return Person._create(Person.Registered, id=uuid.UUID(pid), community=community, name_commitment=commitment,
                              adult=True, household=None, effective=effective)

    def _same_unit(self, community: str, secret: bytes, household: str, row) -> tuple[bool, list[str]]:
        """Whether the directory already says what this row says about its unit (now): area,
        owners (by key; an owner without a key by name among this unit's owners only), the
        representative and the developer flag. Also the owners' ids, in the row's order."""
        h = self.repository.get(uuid.UUID(household))
        at = clock.format(clock.now())
        own, area = h.ownership_at(at), h.area_at(at)
        if own is None or area != row.area or own["developer_unsold"] != row.developer_unsold:
            return False, []
        current = list(own["owners"])
        by_name: dict[str, list[str]] = {}
        for pid in current:
            person = self._existing_person(community, pid)
            if person is not None:
                by_name.setdefault(self.content.get(person.name_commitment) or "", []).append(pid)
        ids = []
        for owner in row.owners:
            if owner.key:
                ids.append(self._owner_id(community, secret, owner.key))
            else:
                candidates = by_name.get(owner.name, [])
                if len(candidates) != 1:
                    return False, []
                ids.append(candidates[0])
        rep = ids[row.representative] if row.representative is not None else None
        same = sorted(ids) == sorted(current) and (rep == own["representative"] or len(ids) == 1)
        return same, ids

    # ---- who is acting ------------------------------------------------------------------------------
    def _authority(self, actor: str) -> str:
        """'person' (a member: what they may do follows from their roles, which live here),
        'admin' (a platform administrator with a live admin token), or 'operator' (a call on the
        bus from the operator's own tools: `consult demo`, `consult admin-token`, test set-up).
        The gateway always names the signed-in person, never an operator."""
        actor = str(actor)
        if actor.startswith(ADMIN_PREFIX):
            now = clock.format(clock.now())
            with self.engine.connect() as conn:
                live = conn.execute(sa.select(t.tokens.c.id).where(
                    t.tokens.c.person == actor, t.tokens.c.community.is_(None), t.tokens.c.revoked_at.is_(None),
                    t.tokens.c.expires_at > now).limit(1)).first()
            if live is None:
                raise Forbidden.coded("communities.platform_administrator")
            return "admin"
        return "operator" if as_uuid(actor) is None else "person"

    def _holds(self, community: str, person: str, *roles: str) -> bool:
        self.project()
        held = {r["role"] for r in self.roles_of(community, person, clock.format(clock.now()))}
        return bool(held & set(roles))

    def _require(self, community: str, actor: str, roles: tuple, why: str) -> str:
        """Operators and platform administrators pass; a person must hold one of `roles` now, else
        is refused in the words of message `why` (a key of services/common/problem_texts)."""
        kind = self._authority(actor)
        if kind == "person" and not self._holds(community, actor, *roles):
            raise Forbidden.coded(why)
        return kind

    # ---- rule changes (two people) ------------------------------------------------------------------
    def propose_rule_change(self, actor: str, community: str, settings: dict) -> dict:
        c = self.community(community)
        if not isinstance(settings, dict) or not settings:
            raise InvalidInput.coded("communities.name_least_one_rule")
        validate_rules(settings, c.rules)  # checked now, merged onto the rules in force at confirmation
        self._require(community, actor, MANAGER_ROLES, "communities.rule_change_proposed_by")
        change = str(uuid.uuid4())
        with command_context(community=community, actor=actor):
            c.propose_rule_change(change=change, settings=settings, proposed_by=str(actor),
                                  proposed_at=clock.format(clock.now()))
            self._save_rules(c)
        return dict(c.pending(change), status="proposed", rules=c.rules)

    def confirm_rule_change(self, actor: str, community: str, change: str) -> dict:
        c = self.community(community)
        change = parse_uuid(change, "rule change")
        pending = c.pending(change)
        if self._authority(actor) != "person" or not self._holds(community, actor, "party_lead"):
            raise Forbidden.coded("communities.rule_change_takes_effect")
        merged = validate_rules(pending["settings"], c.rules)
        with command_context(community=community, actor=actor):
            c.confirm_rule_change(change, str(actor), merged)
            self._save_rules(c)
        return {"id": change, "status": "confirmed", "settings": pending["settings"],
                "proposed_by": pending["proposed_by"], "confirmed_by": str(actor), "rules": merged}

    def _save_rules(self, c: Community) -> None:
        self.save_or_conflict(c, conflict="communities.community_rules_changed_same")

    def withdraw_rule_change(self, actor: str, community: str, change: str) -> dict:
        c = self.community(community)
        change = parse_uuid(change, "rule change")
        pending = c.pending(change)
        if str(actor) != pending["proposed_by"]:
            self._require(community, actor, ("party_lead",), "communities.rule_change_withdrawn_by")
        with command_context(community=community, actor=actor):
            c.withdraw_rule_change(change, str(actor))
            self._save_rules(c)
        return dict(pending, status="withdrawn")

    # ---- credentials ----------------------------------------------------------------------------
    # Tokens and invitations: the secrets' hashes stay in the state store; their life (issued,
    # redeemed, revoked: by whom, for whom, until when, an id) is recorded as events, so it reaches
    # the audit log. A platform administrator's tokens are recorded in the platform's own log
    # (community PLATFORM_LOG), as no community holds them.
    def _new_token(self, community: str | None, person: str, days: int | None, label: str | None, via: str,
                   invitation: str | None = None, not_after: str | None = None) -> tuple[Token, str, dict]:
        """A token aggregate (to save in the caller's transaction), its secret, and its row (to
        insert only after the save: a token whose issue is not recorded never works). `days`
        None, and every token of a training deployment: as long as the deployment."""
        if days is not None and (not isinstance(days, int) or isinstance(days, bool)
                                 or not 1 <= days <= MAX_TOKEN_DAYS):
            raise InvalidInput.coded("communities.days_between", max_token_days=MAX_TOKEN_DAYS)
        label = validate_text(label, "label", max_len=100, required=False)
        now = clock.now()
        expires = None if days is None or self.settings.training else clock.format(now + timedelta(days=days))
        if not_after is not None and not_after != UNTIL_THE_DEPLOYMENT_ENDS and (expires is None or not_after < expires):
            expires = not_after
        agg = Token(community=community, person=str(person), expires_at=expires, via=via, invitation=invitation)
        token = signed_token.sign(self.token_key, token_id=str(agg.id), person=str(person), community=community,
                                  expires_at=expires) or OPAQUE_PREFIX + secrets.token_urlsafe(32)
        row = {"id": str(agg.id), "token_hash": hash_secret(token), "community": community, "person": str(person),
               "label": label, "created_at": clock.format(now), "expires_at": expires or UNTIL_THE_DEPLOYMENT_ENDS}
        return agg, token, row

    def _store_token(self, row: dict) -> dict:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.tokens).values(**row))
        return {"id": row["id"], "expires_at": token_expiry(row["expires_at"]), "person": row["person"]}

    def issue_token(self, community: str | None, person: str, days: int | None = 90, label: str | None = None,
                    actor: str = "operator", presented: str | None = None) -> dict:
        """A token for `person`. Through the API only the person themselves (a further token, e.g.
        for another device) or a platform administrator; a worker gives access by invitation,
        never by a token for someone else. The operator's tools (no person named) may too, and
        only they may ask for a token without expiry (`days` None: the demo's).

        `presented` is the id of the token the request came with: a token a person mints for
        themselves never outlives it, so a stolen token cannot be turned into a longer-lived one."""
        if community is None:
            if self._authority(actor) != "operator":
                raise Forbidden.coded("communities.platform_administrator_tokens_issued")
            person = str(person)
        else:
            person = str(self._get(Person, community, person, "person").id)
        kind = self._authority(actor)
        if kind == "person" and str(actor) != person:
            raise Forbidden.coded("communities.token_issued_holder_give")
        if days is None and kind != "operator":
            raise InvalidInput.coded("communities.days_between", max_token_days=MAX_TOKEN_DAYS)
        via = {"operator": "operator", "admin": "platform_admin", "person": "self"}[kind]
        not_after = self._presented_expiry(presented, actor) if kind == "person" else None
        with command_context(community=community or PLATFORM_LOG, actor=actor):
            agg, token, row = self._new_token(community, person, days, label, via, not_after=not_after)
            self.save(agg)
        return dict(self._store_token(row), token=token)

    def _presented_expiry(self, presented: str | None, actor: str) -> str:
        """The stored expiry of the actor's own token that asked (a person must present one)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.tokens.c.expires_at).where(
                t.tokens.c.id == str(presented), t.tokens.c.person == str(actor),
                t.tokens.c.revoked_at.is_(None))).first() if presented else None
        if row is None:
            raise Forbidden.coded("communities.further_token_issued_valid")
        return row.expires_at

    def bootstrap_admin(self, label: str = "platform admin", actor: str = "operator",
                        days: int | None = MAX_TOKEN_DAYS) -> dict:
        return self.issue_token(None, f"{ADMIN_PREFIX}{uuid.uuid4()}", days=days, label=label, actor=actor)

    @property
    def token_key(self):
        """The key this directory signs sign-in tokens with (services/common/signed_token.py), read
        once."""
        if self._token_key is None:
            self._token_key = signed_token.private_key(self.settings)
        return self._token_key

    def token_check(self) -> dict:
        """What a gateway needs to check signed tokens itself: the public key, and the ids of the
        tokens revoked before their expiry (the gateway keeps the list up to date from the
        `TokenRevoked` events it hears after asking; services/gateway/auth_cache.py)."""
        self.project()  # every revocation in the log, not only those projected so far
        now = clock.format(clock.now())
        with autocommit(self.engine) as conn:
            revoked = conn.execute(sa.select(t.tokens.c.id).where(
                t.tokens.c.revoked_at.is_not(None), t.tokens.c.expires_at > now)).scalars().all()
        return {"key": signed_token.public_key_text(self.token_key), "revoked": sorted(revoked)}

    def authenticate(self, token: str) -> dict:
        if not isinstance(token, str) or not token:
            raise Unauthorized.coded("communities.bearer_token_required")
        now = clock.format(clock.now())
        with autocommit(self.engine) as conn:  # one statement, no transaction around it
            rows = conn.execute(_SIGN_IN, {"token_hash_": hash_secret(token), "at": now}).all()
        row = rows[0] if rows else None
        if row is None or row.revoked_at or row.expires_at <= now:
            raise Unauthorized.coded("communities.token_unknown_expired_revoked")
        expires = token_expiry(row.expires_at)
        if row.community is None:
            return {"person": row.person, "community": None, "platform_admin": True, "token": row.id,
                    "expires_at": expires, "roles": [{"role": "platform_admin", "scope": None}]}
        roles = [{"role": r.role_, "scope": r.scope_ or None} for r in rows if r.role_ is not None]
        return {"person": row.person, "community": row.community, "token": row.id, "expires_at": expires,
                "roles": roles, "platform_admin": False}

    def _may_manage_tokens_of(self, community: str, actor: str, person: str) -> None:
        """The holder, an operator or a platform administrator; the party-committee lead for anyone
        in the community; a community worker for anyone who holds no managing role (so a worker
        cannot lock the lead or a fellow worker out)."""
        if str(actor) == person:
            return
        kind = self._authority(actor)
        if kind != "person":
            return
        if self._holds(community, actor, "party_lead"):
            return
        if self._holds(community, actor, "community_worker") and not self._holds(community, person, *MANAGER_ROLES):
            return
        raise Forbidden.coded("communities.token_revoked_holder_community")

    def revoke_token(self, actor: str, community: str | None, token_id, reason: str = "revoked") -> int:
        """Revoke at once; returns the position of the TokenRevoked event in the log (the gateways
        drop their cached sign-ins when it reaches them)."""
        tok = self._load(Token, token_id, "token")
        if community is not None and tok.community != community:
            raise NotFound.coded("communities.token_does_exist", token_id=token_id)
        if tok.community is None:
            if str(actor) != tok.person and self._authority(actor) != "operator":
                raise Forbidden.coded("communities.platform_administrator_token_revoked")
        else:
            self._may_manage_tokens_of(tok.community, actor, tok.person)
        with command_context(community=tok.community or PLATFORM_LOG, actor=actor):
            tok.revoke(reason, clock.format(clock.now()))
            position = self._save(tok)
        self.project()  # the projection sets revoked_at: from now on the token is refused
        return position

    def sign_out(self, actor: str, token_id) -> int:
        tok = self._load(Token, token_id, "token")
        if tok.person != str(actor):
            raise Forbidden.coded("communities.holder_signs_out_their")
        return self.revoke_token(actor, tok.community, token_id, reason="signed_out")

    def list_tokens(self, actor: str, community: str, person) -> list[dict]:
        person = str(self._get(Person, community, person, "person").id)
        self._may_manage_tokens_of(community, actor, person)
        self.project()
        tk = t.tokens
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tk.c.id, tk.c.label, tk.c.created_at, tk.c.expires_at, tk.c.revoked_at)
                                .where(tk.c.community == community, tk.c.person == person).order_by(tk.c.created_at))
            return [dict(r._mapping, expires_at=token_expiry(r.expires_at)) for r in rows]

    def create_invitation(self, actor: str, community: str, household: str | None, roles: list,
                          days: int = 14) -> dict:
        self.community(community)
        if household is not None:
            household = str(self._get(Household, community, household, "household").id)
        if not isinstance(roles, list) or any(r not in ROLES or r in SCOPED_ROLES or r == "platform_admin" for r in roles):
            raise InvalidInput.coded("communities.roles_list_community_wide")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 90:
            raise InvalidInput.coded("communities.days_between_x")
        self._require(community, actor, MANAGER_ROLES, "communities.invitations_sent_by")
        if "party_lead" in roles:
            self._require(community, actor, ("party_lead",), LEAD_APPOINTMENT)
        return self._issue_invitations(actor, community, [household], list(dict.fromkeys(roles)), days)[0]

    def _issue_invitations(self, actor: str, community: str, households: list, roles: list, days: int) -> list[dict]:
        """An invitation per household (None: one for no household), saved together; the codes'
        hashes kept for sign-in. Each answer carries its code, shown this once."""
        expires = clock.format(clock.now() + timedelta(days=days))
        codes, invitations = [], []
        with command_context(community=community, actor=actor):
            for household in households:
                codes.append(secrets.token_urlsafe(16))
                invitations.append(Invitation(community=community, household=household, roles=roles,
                                              expires_at=expires))
            self.save(*invitations)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.invitations), [
                {"id": str(inv.id), "code_hash": hash_secret(code), "community": community}
                for inv, code in zip(invitations, codes)])
        return [{"id": str(inv.id), "code": code, "expires_at": expires, "household": inv.household, "roles": inv.roles}
                for inv, code in zip(invitations, codes)]

    def create_invitations(self, actor: str, community: str, households: list | None = None,
                           scope: str = "community", scope_id: str | None = None, days: int = 14) -> dict:
        """An invitation for the residents of each household named, or of every household in the
        scope (the community, a compound, a building), in one save: what a worker prints as slips
        for a building's letterboxes. Each code is shown this once. Asking again issues new codes;
        the earlier ones stay valid until they expire, are redeemed or are revoked."""
        self.community(community)
        self._require(community, actor, MANAGER_ROLES, "communities.invitations_sent_by")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 90:
            raise InvalidInput.coded("communities.days_between_x")
        hh = t.households
        self.project()
        if households is not None:
            if scope != "community" or scope_id is not None:
                raise InvalidInput.coded("communities.invitations_households_or_scope")
            wanted = list(dict.fromkeys(str(parse_uuid(h, "household")) for h in households))
            with self.engine.connect() as conn:
                found = {r.id for r in conn.execute(sa.select(hh.c.id).where(
                    hh.c.community == community, hh.c.id.in_(wanted)))}
            missing = next((h for h in wanted if h not in found), None)
            if missing is not None:  # not in this community (or nowhere): nothing is issued
                raise NotFound.coded("common.does_exist", what="household", value=missing)
        else:
            if scope in ("compound", "building"):  # another community's compound or building is not found
                self._get(Compound if scope == "compound" else Building, community, scope_id, scope)
            with self.engine.connect() as conn:
                wanted = [r.id for r in conn.execute(sa.select(hh.c.id).where(
                    *self._scope_filter(community, scope, scope_id)).order_by(hh.c.id))]
        if not 1 <= len(wanted) <= MAX_INVITATIONS:  # one request, one save of a bounded size
            raise InvalidInput.coded("communities.invitations_how_many", most=MAX_INVITATIONS)
        issued = self._issue_invitations(actor, community, wanted, ["resident"], days)
        return {"count": len(issued), "expires_at": issued[0]["expires_at"], "invitations": issued}

    def revoke_invitation(self, actor: str, community: str, invitation) -> dict:
        inv = self._get(Invitation, community, invitation, "invitation")
        self._require(community, actor, MANAGER_ROLES, "communities.invitations_revoked_by")
        with command_context(community=community, actor=actor):
            inv.revoke()
            self.save(inv)
        return {"id": str(inv.id), "revoked": True}

    def redeem_invitation(self, code: str, name: str, adult: bool = True) -> dict:
        """Register the invited person with the invitation's household and roles, and issue their
        first token: one transaction, so a code used twice at once registers one person."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.invitations).where(t.invitations.c.code_hash == hash_secret(str(code)))).first()
        if row is None:
            raise NotFound.coded("communities.invitation_unknown_used_revoked")
        inv = self._load(Invitation, row.id, "invitation")
        name = validate_text(name, "name", max_len=100)
        if not isinstance(adult, bool):
            raise InvalidInput.coded("communities.adult_true_false")
        now = clock.format(clock.now())
        pid = uuid.uuid4()
        with self.content.for_command(str(pid), name=name) as texts:
            with command_context(community=inv.community, actor=str(pid)):
                inv.redeem(str(pid), now)
                person = Person._create(Person.Registered, id=pid, community=inv.community,
                                        name_commitment=texts["name"], adult=adult, household=inv.household,
                                        effective=now)
                for role in inv.roles:
                    person.grant_role(role, None, now)
                tok, token, token_row = self._new_token(inv.community, str(pid), 90, "invitation", "invitation",
                                                        invitation=str(inv.id))
            try:
                self.save(person, inv, tok)
            except IntegrityError:
                raise Conflict.coded("communities.invitation_was_used_same") from None
        self.project()
        return dict(self._store_token(token_row), token=token, community=inv.community)

    def _save(self, *aggregates) -> int:
        """Save; the log position of the last event saved."""
        recordings = self.save(*aggregates)
        return max(r.notification.id for r in recordings)

    # ---- projection (own log -> read tables) -------------------------------------------------------
    # ---- queries ----------------------------------------------------------------------------
    def roles_of(self, community: str, person: str, at: str) -> list[dict]:
        with self.engine.connect() as conn:
            return _roles(conn, community, person, at)

    def _names(self, commitments) -> dict:
        return self.content.get_many(commitments)

    def _scope_filter(self, community: str, scope: str, scope_id: str | None):
        """Households of the community, one compound or one building."""
        hh = t.households
        cond = [hh.c.community == community]
        if scope == "building":
            cond.append(hh.c.building == parse_uuid(scope_id, "building"))
        elif scope == "compound":
            cond.append(hh.c.building.in_(sa.select(t.buildings.c.id).where(
                t.buildings.c.compound == parse_uuid(scope_id, "compound"))))
        elif scope != "community":
            raise InvalidInput.coded("communities.scope_community_compound_building")
        return cond

    def households_in_scope(self, community: str, scope: str, scope_id: str | None, at: str | None = None) -> list[str]:
        self.project()
        with self.engine.connect() as conn:
            return [r.id for r in conn.execute(sa.select(t.households.c.id).where(*self._scope_filter(community, scope, scope_id)))]

    def residents_in_scope(self, community: str, scope: str, scope_id: str | None, at: str | None = None) -> list[dict]:
        """Who lived in the scope at `at` (default now): person, household, adult."""
        self.project()
        at = effective_time(at)
        r = t.residences
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(r.c.person, r.c.household).where(
                r.c.community == community, _in_force(r, at),
                r.c.household.in_(sa.select(t.households.c.id).where(*self._scope_filter(community, scope, scope_id)))))
            rows = list(rows)
        out = []
        for row in rows:
            person = self.repository.get(uuid.UUID(row.person))
            out.append({"person": row.person, "household": row.household, "adult": person.adult})
        return sorted(out, key=lambda x: x["person"])

    def role_holders(self, community: str, role: str, scope: str | None = None, at: str | None = None) -> list[str]:
        self.project()
        at = effective_time(at)
        with self.engine.connect() as conn:
            cond = [t.roles.c.community == community, t.roles.c.role == role, _in_force(t.roles, at)]
            if scope is not None:
                cond.append(t.roles.c.scope == scope)
            return sorted({r.person for r in conn.execute(sa.select(t.roles.c.person).where(*cond))})

    def units_in_scope(self, community: str, scope: str, scope_id: str | None, at: str | None = None) -> list[dict]:
        """Every unit with its area and owners as they stood at `at`: the input of an owners' roll."""
        at = effective_time(at)
        out = []
        for hid in self.households_in_scope(community, scope, scope_id):
            h = self.repository.get(uuid.UUID(hid))
            area, own = h.area_at(at), h.ownership_at(at)
            if area is None or own is None:
                continue
            out.append({"unit": hid, "label": h.unit, "building": h.building, "area": str(area),
                        "owners": list(own["owners"]), "representative": own["representative"],
                        "developer_unsold": own["developer_unsold"]})
        return out

    def household_view(self, community: str, household: str, at: str | None = None) -> dict:
        h = self._get(Household, community, household, "household")
        at = effective_time(at)
        own = h.ownership_at(at)
        reasons = self._names([a.get("reason_commitment") for a in h.areas])
        return {
            "id": str(h.id), "building": h.building, "unit": h.unit, "at": at,
            "area": str(h.area_at(at)) if h.area_at(at) is not None else None,
            "owners": list(own["owners"]) if own else [],
            "representative": own["representative"] if own else None,
            "developer_unsold": own["developer_unsold"] if own else False,
            "area_history": [{"from": a["from"], "area": str(a["area"]),
                              "reason": reasons.get(a.get("reason_commitment"))} for a in h.areas],
            "ownership_history": [dict(o) for o in h.ownership],
            "residents": [r["person"] for r in self.residents_in_scope(community, "community", None, at)
                          if r["household"] == str(h.id)],
        }

    def display_names(self, community: str, people) -> dict:
        """{person id: display name} for the ids that are people of this community (others are
        left out); an erased person's name is None. For every read that lists people: names are
        asked of the directory when a read is answered, never copied, so an erasure here takes a
        name off every read at once."""
        wanted = []
        for pid in list(dict.fromkeys(people or ()))[:MAX_DISPLAY_NAMES]:
            parsed = as_uuid(pid)
            if parsed is not None:
                wanted.append(str(parsed))
        if not wanted:
            return {}
        self.project()
        with self.engine.connect() as conn:
            known = [r.id for r in conn.execute(sa.select(t.people.c.id).where(
                t.people.c.community == community, t.people.c.id.in_(wanted)))]
        commitments = {pid: self._load(Person, pid, "person").name_commitment for pid in known}
        names = self._names(commitments.values())
        return {pid: names.get(c) for pid, c in commitments.items()}

    def person_view(self, community: str, person: str, at: str | None = None) -> dict:
        p = self._get(Person, community, person, "person")
        at = effective_time(at)
        return {
            "id": str(p.id), "name": self.content.get(p.name_commitment), "adult": p.adult, "at": at,
            "household": p.household_at(at), "roles": p.roles_at(at),
            "residence_history": [dict(r) for r in p.residence],
            "role_history": [dict(r) for r in p.roles],
        }

    def personal_data(self, community: str, person: str) -> dict:
        """What the directory holds about the person (PIPL art. 45): their record (name, residence
        and role history), their tokens (labels and dates; never a secret) and erasure requests."""
        self.project()
        with self.engine.connect() as conn:
            tokens = [{"id": r.id, "label": r.label, "created_at": r.created_at,
                       "expires_at": token_expiry(r.expires_at), "revoked_at": r.revoked_at}
                      for r in conn.execute(sa.select(t.tokens).where(t.tokens.c.community == community,
                                                                      t.tokens.c.person == str(person))
                                            .order_by(t.tokens.c.created_at))]
        return {"person": self.person_view(community, person), "tokens": tokens,
                "erasure_requests": self.erasure_requests(person, community, person)}

    def directory(self, community: str, at: str | None = None) -> dict:
        c = self.community(community)
        self.project()
        at = effective_time(at)
        with self.engine.connect() as conn:
            compounds = [dict(r._mapping) for r in conn.execute(sa.select(t.compounds).where(t.compounds.c.community == community).order_by(t.compounds.c.name))]
            buildings = [dict(r._mapping) for r in conn.execute(sa.select(t.buildings).where(t.buildings.c.community == community).order_by(t.buildings.c.name))]
            hh = [r.id for r in conn.execute(sa.select(t.households.c.id).where(t.households.c.community == community).order_by(t.households.c.building, t.households.c.unit))]
            ppl = [r.id for r in conn.execute(sa.select(t.people.c.id).where(t.people.c.community == community))]
        households = []
        for hid in hh:
            h = self.repository.get(uuid.UUID(hid))
            own = h.ownership_at(at)
            area = h.area_at(at)
            if own is None or area is None:
                continue
            households.append({"id": hid, "building": h.building, "unit": h.unit, "area": str(area),
                               "owners": list(own["owners"]), "representative": own["representative"],
                               "developer_unsold": own["developer_unsold"]})
        people_aggs = [self.repository.get(uuid.UUID(pid)) for pid in ppl]
        names = self._names([p.name_commitment for p in people_aggs])
        people = sorted(({"id": str(p.id), "name": names.get(p.name_commitment), "adult": p.adult,
                          "household": p.household_at(at), "roles": p.roles_at(at)} for p in people_aggs),
                        key=lambda x: (x["name"] or "", x["id"]))
        return {"community": {"id": community, "name": c.name}, "at": at, "compounds": compounds,
                "buildings": buildings, "households": households, "people": people}

    def list_communities(self) -> list[dict]:
        self.project()
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(t.communities).order_by(t.communities.c.created_at))]

    def rules_at(self, community: str, at: str) -> dict:
        """The rules in force at `at` (a stage opened by an event of that time opens under them),
        from the community's own events: each of its rule changes carries the whole rule set."""
        c = self.community(community)
        history = [(clock.format(e.timestamp), e.rules) for e in self.repository.event_store.get(c.id)
                   if isinstance(getattr(e, "rules", None), dict)]
        return validate_rules({}, in_force_at(history, at) or c.rules)

    def community_view(self, community: str, at: str | None = None) -> dict:
        c = self.community(community)
        if at is not None:
            return {"id": community, "name": c.name, "cell": c.cell, "rules": self.rules_at(community, at), "at": at}
        return {"id": community, "name": c.name, "cell": c.cell, "rules": c.rules,
                "pending_rule_changes": sorted(c.pending_rule_changes.values(), key=lambda x: x["proposed_at"])}


def project_envelope(conn: sa.Connection, env: dict) -> None:
    """The directory's read tables, kept from its own log (exactly once, in order)."""
    d, kind, agg = env["data"], env["type"], env["aggregate"]["id"]
    community = env["community"]
    if kind == "CommunityCreated":
        conn.execute(sa.insert(t.communities).values(id=agg, name=d["name"], created_at=env["occurred_at"],
                                                     cell=d.get("cell")))
    elif kind == "CompoundCreated":
        conn.execute(sa.insert(t.compounds).values(id=agg, community=community, name=d["name"]))
    elif kind == "BuildingCreated":
        conn.execute(sa.insert(t.buildings).values(id=agg, community=community, compound=d["compound"], name=d["name"]))
    elif kind == "HouseholdRegistered":
        conn.execute(sa.insert(t.households).values(id=agg, community=community, building=d["building"], unit=d["unit"]))
    elif kind == "PersonRegistered":
        conn.execute(sa.insert(t.people).values(id=agg, community=community))
        if d.get("household"):
            conn.execute(sa.insert(t.residences).values(person=agg, valid_from=d["effective"], community=community,
                                                        household=d["household"]))
    elif kind == "PersonMoved":
        conn.execute(sa.update(t.residences).where(t.residences.c.person == agg, t.residences.c.valid_to.is_(None))
                     .values(valid_to=d["effective"]))
        if d.get("household"):
            conn.execute(sa.insert(t.residences).values(person=agg, valid_from=d["effective"], community=community,
                                                        household=d["household"]))
    elif kind == "PersonRoleGranted":
        conn.execute(sa.insert(t.roles).values(person=agg, role=d["role"], scope=d.get("scope") or "",
                                               valid_from=d["effective"], community=community))
    elif kind == "PersonErasureRequested":
        conn.execute(sa.insert(t.erasure_requests).values(
            id=agg, community=community, person=d["person"], requested_at=env["occurred_at"],
            requested_by=env["actor"], reason_commitment=d["reason_commitment"]))
    elif kind == "TokenRevoked":
        conn.execute(sa.update(t.tokens).where(t.tokens.c.id == agg, t.tokens.c.revoked_at.is_(None))
                     .values(revoked_at=d["revoked_at"]))
    elif kind == "PersonRoleRevoked":
        conn.execute(sa.update(t.roles).where(t.roles.c.person == agg, t.roles.c.role == d["role"],
                                              t.roles.c.scope == (d.get("scope") or ""), t.roles.c.valid_to.is_(None))
                     .values(valid_to=d["effective"]))
