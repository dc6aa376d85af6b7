"""The directory application: commands that record the directory's history, and queries on it."""
from __future__ import annotations

import csv
import hashlib
import io
import secrets
import uuid
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from services.common import clock
from services.common.aggregate import command_context
from services.common.content import ContentStore, validate_text
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from services.common.consumer import SqlSink, catch_up_projection
from services.common.store import ServiceApplication

from . import tables as t
from .domain import (
    DEFAULT_RULES, ROLES, SCOPED_ROLES, Building, Community, Compound, Household, Person,
    parse_area, validate_rules,
)

MAX_TOKEN_DAYS = 366


def effective_time(value) -> str:
    """Effective times: now if absent; 'YYYY-MM-DD' means that day 00:00 UTC."""
    if value in (None, ""):
        return clock.format(clock.now())
    if not isinstance(value, str):
        raise InvalidInput("effective must be a date 'YYYY-MM-DD' or an ISO-8601 time")
    try:
        if len(value) == 10:
            return clock.format(clock.parse(value + "T00:00:00Z"))
        return clock.format(clock.parse(value))
    except ValueError:
        raise InvalidInput(f"not a date or time: {value!r}") from None


def parse_uuid(value, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"{field} {value!r} does not exist") from None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class DirectoryApp(ServiceApplication):
    name = "communities"

    def __init__(self, settings, engine: sa.Engine):
        super().__init__(settings, "communities", env={"AGGREGATE_CACHE_MAXSIZE": "5000"})
        self.engine = engine
        self.content = ContentStore(engine)
        self.projection = SqlSink("projection", engine, project_envelope)

    # ---- loading with tenancy ---------------------------------------------------------
    def _get(self, cls, community: str, agg_id, field: str):
        agg_id = parse_uuid(agg_id, field)
        try:
            agg = self.repository.get(uuid.UUID(agg_id))
        except Exception:  # noqa: BLE001 - AggregateNotFound
            raise NotFound(f"{field} {agg_id} does not exist") from None
        if not isinstance(agg, cls) or (cls is not Community and agg.community != community):
            raise NotFound(f"{field} {agg_id} does not exist")
        return agg

    def community(self, community: str) -> Community:
        return self._get(Community, community, community, "community")

    # ---- communities --------------------------------------------------------------------
    def create_community(self, actor: str, name: str, rules: dict | None = None) -> str:
        name = validate_text(name, "name", max_len=200)
        merged = validate_rules(rules or {}, DEFAULT_RULES)
        cid = uuid.uuid4()
        with command_context(community=str(cid), actor=actor):
            c = Community._create(Community.Created, id=cid, name=name, rules=merged)
            self.save(c)
        return str(cid)

    def change_rules(self, actor: str, community: str, rules: dict) -> dict:
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
            raise InvalidInput("owners must be a list of person ids")
        owners = [self._get(Person, community, o, "owner").id.__str__() for o in owners]
        if developer_unsold and owners:
            raise InvalidInput("a unit the developer has not sold has no other owners")
        if not developer_unsold and not owners:
            raise InvalidInput("a unit needs at least one owner, or developer_unsold")
        if len(set(owners)) != len(owners):
            raise InvalidInput("an owner is listed twice")
        if representative is not None:
            representative = parse_uuid(representative, "representative")
            if representative not in owners:
                raise InvalidInput("the representative must be one of the owners")
        elif len(owners) > 1:
            raise InvalidInput("a co-owned unit needs the representative the co-owners designate")
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
            raise InvalidInput("developer_unsold must be true or false")
        owners, representative = self._check_owners(community, list(owners), representative, developer_unsold)
        eff = effective_time(effective)
        if self._unit_taken(str(b.id), unit):
            raise Conflict(f"unit {unit} already exists in this building")
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
            raise InvalidInput("adult must be true or false")
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
            raise InvalidInput("adult must be true or false")
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
            raise InvalidInput(f"the role {role} holds for the whole community and takes no scope")
        return None

    def grant_role(self, actor, community, person, role, scope=None, effective=None) -> None:
        if role == "platform_admin":
            raise Forbidden("platform administrators are not granted inside a community")
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
        p = self._get(Person, community, person, "person")
        scope = self._check_scope(community, role, scope)
        with command_context(community=community, actor=actor):
            p.grant_role(role, scope, effective_time(effective))
            self.save(p)
        self.project()

    def revoke_role(self, actor, community, person, role, scope=None, effective=None) -> None:
        p = self._get(Person, community, person, "person")
        scope = self._check_scope(community, role, scope) if role in ROLES else scope
        with command_context(community=community, actor=actor):
            p.revoke_role(role, scope, effective_time(effective))
            self.save(p)
        self.project()

    def erase_person(self, actor, community, person) -> int:
        """PIPL erasure: the name and every text of the person goes; every hash stays."""
        self._get(Person, community, person, "person")
        return self.content.erase_subject(str(person))

    # ---- bulk import ------------------------------------------------------------------------
    CSV_COLUMNS = ("compound", "building", "unit", "area", "owners", "representative", "developer_unsold", "effective")

    def import_csv(self, actor: str, community: str, text: str) -> dict:
        """Households and owners in bulk: every bad row is reported by line, and nothing is
        imported from a file with errors (one transaction for the whole file)."""
        self.community(community)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("the CSV file is empty")
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("compound", "building", "unit", "area", "owners") if c not in header]
        if missing:
            raise InvalidInput(f"line 1: missing columns: {', '.join(missing)}", errors=[
                {"line": 1, "message": f"missing columns: {', '.join(missing)}"}])
        self.project()
        with self.engine.connect() as conn:
            compounds = {r.name: r.id for r in conn.execute(sa.select(t.compounds).where(t.compounds.c.community == community))}
            buildings = {(r.compound, r.name): r.id for r in conn.execute(sa.select(t.buildings).where(t.buildings.c.community == community))}
            units = {(r.building, r.unit) for r in conn.execute(sa.select(t.households).where(t.households.c.community == community))}
        errors, rows, seen = [], [], set()
        for line_no, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
            try:
                if not row["compound"] or not row["building"] or not row["unit"]:
                    raise InvalidInput("compound, building and unit are required")
                if len(row["unit"]) > 40 or len(row["building"]) > 200 or len(row["compound"]) > 200:
                    raise InvalidInput("a name is too long")
                area = parse_area(row["area"])
                dev = row.get("developer_unsold", "").lower() in ("1", "true", "yes", "y")
                if row.get("developer_unsold", "").lower() not in ("", "0", "1", "true", "false", "yes", "no", "y", "n"):
                    raise InvalidInput("developer_unsold must be true or false")
                owners = [o.strip() for o in row["owners"].split(";") if o.strip()]
                if dev and owners:
                    raise InvalidInput("a unit the developer has not sold has no other owners")
                if not dev and not owners:
                    raise InvalidInput("owners are required (names separated by ';') unless developer_unsold")
                if len(set(owners)) != len(owners):
                    raise InvalidInput("an owner is listed twice")
                rep = row.get("representative") or None
                if len(owners) > 1 and not rep:
                    raise InvalidInput("a co-owned unit needs the representative the co-owners designate")
                if rep and rep not in owners:
                    raise InvalidInput("the representative must be one of the owners")
                eff = effective_time(row.get("effective") or None)
                key = (row["compound"], row["building"], row["unit"])
                if key in seen:
                    raise InvalidInput(f"unit {row['unit']} appears twice in the file")
                seen.add(key)
                bid = buildings.get((compounds.get(row["compound"]), row["building"]))
                if bid and (bid, row["unit"]) in units:
                    raise InvalidInput(f"unit {row['unit']} already exists in building {row['building']}")
                rows.append((row, area, dev, owners, rep or (owners[0] if len(owners) == 1 else None), eff))
            except InvalidInput as exc:
                errors.append({"line": line_no, "message": exc.detail})
        if not rows and not errors:
            errors.append({"line": 2, "message": "the file has no data rows"})
        if errors:
            first = errors[0]
            raise InvalidInput(f"line {first['line']}: {first['message']}" + (
                f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""), errors=errors)
        aggregates, people, texts = [], {}, []
        with command_context(community=community, actor=actor):
            for row, area, dev, owners, rep, eff in rows:
                if row["compound"] not in compounds:
                    c = Compound(community=community, name=row["compound"])
                    compounds[row["compound"]] = str(c.id)
                    aggregates.append(c)
                ckey = (compounds[row["compound"]], row["building"])
                if ckey not in buildings:
                    b = Building(community=community, compound=compounds[row["compound"]], name=row["building"])
                    buildings[ckey] = str(b.id)
                    aggregates.append(b)
                owner_ids = []
                for name in owners:
                    if name not in people:
                        pid = uuid.uuid4()
                        commitment = self.content.put(name, subject=str(pid))
                        texts.append(commitment)
                        people[name] = Person._create(Person.Registered, id=pid, community=community,
                                                      name_commitment=commitment, adult=True, household=None,
                                                      effective=eff)
                        aggregates.append(people[name])
                    owner_ids.append(str(people[name].id))
                aggregates.append(self._new_household(
                    community, buildings[ckey], row["unit"], area, owner_ids,
                    str(people[rep].id) if rep else None, dev, eff))
        self.save(*aggregates)
        self.project()
        return {"households": len(rows), "people": len(people), "events": len(aggregates)}

    # ---- credentials ----------------------------------------------------------------------------
    def issue_token(self, community: str | None, person: str, days: int = 90, label: str | None = None) -> dict:
        if community is not None:
            self._get(Person, community, person, "person")
        if not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
            raise InvalidInput(f"days must be between 1 and {MAX_TOKEN_DAYS}")
        token = "cst_" + secrets.token_urlsafe(32)
        now = clock.now()
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.tokens).values(
                token_hash=hash_secret(token), community=community, person=str(person), label=label,
                created_at=clock.format(now), expires_at=clock.format(now + timedelta(days=days))))
        return {"token": token, "expires_at": clock.format(now + timedelta(days=days)), "person": str(person)}

    def bootstrap_admin(self, label: str = "platform admin") -> dict:
        return self.issue_token(None, f"admin-{uuid.uuid4()}", days=MAX_TOKEN_DAYS, label=label)

    def authenticate(self, token: str) -> dict:
        if not isinstance(token, str) or not token:
            raise Unauthorized("a bearer token is required")
        now = clock.format(clock.now())
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.token_hash == hash_secret(token))).first()
        if row is None or row.revoked_at or row.expires_at <= now:
            raise Unauthorized("the token is unknown, expired or revoked")
        if row.community is None:
            return {"person": row.person, "community": None, "platform_admin": True,
                    "roles": [{"role": "platform_admin", "scope": None}]}
        return {"person": row.person, "community": row.community,
                "roles": self.roles_of(row.community, row.person, now), "platform_admin": False}

    def revoke_token(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.tokens).where(t.tokens.c.token_hash == hash_secret(token))
                         .values(revoked_at=clock.format(clock.now())))

    def create_invitation(self, community: str, household: str | None, roles: list, days: int = 14) -> dict:
        self.community(community)
        if household is not None:
            household = str(self._get(Household, community, household, "household").id)
        if not isinstance(roles, list) or any(r not in ROLES or r in SCOPED_ROLES or r == "platform_admin" for r in roles):
            raise InvalidInput("roles must be a list of community-wide role names")
        if not isinstance(days, int) or not 1 <= days <= 90:
            raise InvalidInput("days must be between 1 and 90")
        code = secrets.token_urlsafe(12)
        now = clock.now()
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.invitations).values(
                code_hash=hash_secret(code), community=community, household=household, roles=list(roles),
                created_at=clock.format(now), expires_at=clock.format(now + timedelta(days=days))))
        return {"code": code, "expires_at": clock.format(now + timedelta(days=days))}

    def redeem_invitation(self, code: str, name: str, adult: bool = True) -> dict:
        with self.engine.connect() as conn:
            inv = conn.execute(sa.select(t.invitations).where(t.invitations.c.code_hash == hash_secret(str(code)))).first()
        if inv is None or inv.used_by or inv.expires_at <= clock.format(clock.now()):
            raise NotFound("the invitation is unknown, used or expired")
        person = self.register_person(f"invitation:{inv.code_hash[:12]}", inv.community, name, adult, inv.household)
        for role in inv.roles:
            self.grant_role(person, inv.community, person, role)
        with self.engine.begin() as conn:
            used = conn.execute(sa.update(t.invitations).where(
                t.invitations.c.code_hash == inv.code_hash, t.invitations.c.used_by.is_(None)).values(used_by=person)).rowcount
        if not used:
            raise Conflict("the invitation was used at the same time")
        return dict(self.issue_token(inv.community, person), community=inv.community)

    # ---- projection (own log -> read tables) -------------------------------------------------------
    def project(self) -> int:
        return catch_up_projection(self, "communities", self.projection)

    # ---- queries ----------------------------------------------------------------------------
    def roles_of(self, community: str, person: str, at: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.roles).where(
                t.roles.c.community == community, t.roles.c.person == person, t.roles.c.valid_from <= at,
                sa.or_(t.roles.c.valid_to.is_(None), t.roles.c.valid_to > at)))
            return [{"role": r.role, "scope": r.scope or None} for r in rows]

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
            raise InvalidInput("scope must be community, compound or building")
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
                r.c.community == community, r.c.valid_from <= at,
                sa.or_(r.c.valid_to.is_(None), r.c.valid_to > at),
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
            cond = [t.roles.c.community == community, t.roles.c.role == role, t.roles.c.valid_from <= at,
                    sa.or_(t.roles.c.valid_to.is_(None), t.roles.c.valid_to > at)]
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

    def person_view(self, community: str, person: str, at: str | None = None) -> dict:
        p = self._get(Person, community, person, "person")
        at = effective_time(at)
        return {
            "id": str(p.id), "name": self.content.get(p.name_commitment), "adult": p.adult, "at": at,
            "household": p.household_at(at), "roles": p.roles_at(at),
            "residence_history": [dict(r) for r in p.residence],
            "role_history": [dict(r) for r in p.roles],
        }

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

    def community_view(self, community: str) -> dict:
        c = self.community(community)
        return {"id": community, "name": c.name, "rules": c.rules}


def project_envelope(conn: sa.Connection, env: dict) -> None:
    """The directory's read tables, kept from its own log (exactly once, in order)."""
    d, kind, agg = env["data"], env["type"], env["aggregate"]["id"]
    community = env["community"]
    if kind == "CommunityCreated":
        conn.execute(sa.insert(t.communities).values(id=agg, name=d["name"], created_at=env["occurred_at"]))
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
    elif kind == "PersonRoleRevoked":
        conn.execute(sa.update(t.roles).where(t.roles.c.person == agg, t.roles.c.role == d["role"],
                                              t.roles.c.scope == (d.get("scope") or ""), t.roles.c.valid_to.is_(None))
                     .values(valid_to=d["effective"]))
