"""The demo "S community" (S社区): the compound, the worked example's building, every role."""
from __future__ import annotations

import json
from pathlib import Path

from services.contracts import communities

from .rpc import Rpc

# Building 2 of compound 3 exactly as DOMAIN.md's worked example.
WORKED_EXAMPLE = [
    ("101", "50", "王芳 Wang"), ("102", "70", "李强 Li"), ("201", "75", "张伟 Zhang"), ("202", "75", "张伟 Zhang"),
    ("301", "90", "刘洋 Liu"), ("302", "90", "陈静 Chen"), ("401", "90", "赵磊 Zhao"), ("402", "90", "孙丽 Sun"),
    ("501", "120", "周杰 Zhou"), ("502", "120", None),  # None: the developer has not sold it
]


def load(rpc: Rpc, data_dir: Path, effective: str = "2020-01-01") -> dict:
    """Create the demo community through the directory service; returns ids and tokens."""
    marker = data_dir / "demo.json"
    actor = "demo"
    c = rpc.send(communities.CreateCommunity(actor=actor, name="S社区 (S community)"))["id"]
    compound = rpc.send(communities.AddCompound(actor=actor, community=c, name="3号院坝 (compound 3)"))["id"]
    b2 = rpc.send(communities.AddBuilding(actor=actor, community=c, compound=compound, name="2栋 (building 2)"))["id"]
    b1 = rpc.send(communities.AddBuilding(actor=actor, community=c, compound=compound, name="1栋 (building 1)"))["id"]
    people: dict[str, str] = {}

    def person(name, *, household=None, adult=True):
        pid = rpc.send(communities.RegisterPerson(actor=actor, community=c, name=name, adult=adult, household=household,
                                                  effective=effective))["id"]
        people[name] = pid
        return pid

    def register_unit(*, building, unit, area, owners, representative=None, developer_unsold=False):
        return rpc.send(communities.RegisterHousehold(
            actor=actor, community=c, building=building, unit=unit, area=area, owners=owners,
            representative=representative, developer_unsold=developer_unsold, effective=effective))["id"]

    def move(*, person, household):
        rpc.send(communities.MovePerson(actor=actor, community=c, person=person, household=household,
                                        effective=effective))

    def grant(*, person, role, scope=None):
        rpc.send(communities.GrantRole(actor=actor, community=c, person=person, role=role, scope=scope,
                                       effective=effective))

    units = {}
    for unit, area, owner in WORKED_EXAMPLE:
        owners = []
        if owner:
            owners = [people.get(owner) or person(owner)]
        units[unit] = register_unit(building=b2, unit=unit, area=area, owners=owners, developer_unsold=owner is None)
        if owner and unit != "202":
            move(person=people[owner], household=units[unit])
    # Building 1: a co-owned unit, a tenant household and a minor.
    co1, co2 = person("何敏 He"), person("何军 He Jun")
    u1 = register_unit(building=b1, unit="101", area="88.5", owners=[co1, co2], representative=co1)
    for p in (co1, co2):
        move(person=p, household=u1)
    landlord = person("马超 Ma (landlord)")
    u2 = register_unit(building=b1, unit="102", area="64", owners=[landlord])
    person("吴婷 Wu (tenant)", household=u2)
    person("吴小宝 Wu Xiaobao (minor)", household=u2, adult=False)
    # The 1+2+X body and the other roles.
    staff = {
        "party_lead": person("许书记 Secretary Xu"),
        "community_worker": person("林社工 Lin (social worker)"),
        "property_company": person("物业经理 Property manager Qian"),
        "expert": person("排水专家 Drainage expert Gao"),
        "auditor": person("审计 Auditor Fang"),
    }
    for role, pid in staff.items():
        grant(person=pid, role=role)
    grant(person=staff["community_worker"], role="moderator")
    grant(person=people["王芳 Wang"], role="grid_leader", scope=compound)
    grant(person=people["李强 Li"], role="building_leader", scope=b2)
    grant(person=co1, role="building_leader", scope=b1)
    grant(person=people["周杰 Zhou"], role="owners_committee")
    for name in ("刘洋 Liu", "陈静 Chen", "赵磊 Zhao"):
        grant(person=people[name], role="council_member")
    for pid in list(people.values()):
        grant(person=pid, role="resident")
    # Tokens for every role, issued on the operator's path (the API issues a token only to its own
    # holder) and recorded like any other credential: TokenIssued with the actor "demo". They last as
    # long as the deployment (days None), so a demo or a training afternoon never runs out of them.
    tokens = {}
    for label, pid in [("party_lead", staff["party_lead"]), ("community_worker", staff["community_worker"]),
                       ("grid_leader", people["王芳 Wang"]), ("building_leader", people["李强 Li"]),
                       ("property_company", staff["property_company"]), ("auditor", staff["auditor"]),
                       ("resident", people["张伟 Zhang"]), ("tenant", people["吴婷 Wu (tenant)"])]:
        tokens[label] = rpc.send(communities.IssueToken(community=c, person=pid, days=None, label=f"demo {label}",
                                                        actor=actor))["token"]
    tokens["platform_admin"] = rpc.send(communities.BootstrapAdmin(label="demo platform admin", actor=actor,
                                                                   days=None))["token"]
    result = {"community": c, "compound": compound, "buildings": {"1": b1, "2": b2}, "units": units,
              "people": people, "tokens": tokens}
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return result


def describe(result: dict, gateway: str, web: str | None = None) -> str:
    lines = [f"Demo community S社区 loaded: {result['community']}", "", "Sign-in tokens (Authorization: Bearer ...):"]
    for label, token in result["tokens"].items():
        lines.append(f"  {label:<18} {token}")
    lines += ["", f"Try: curl -H 'Authorization: Bearer {result['tokens']['community_worker']}' "
                  f"{gateway}/api/v1/communities/{result['community']}/directory"]
    if web:
        # One click into the pages per role: the link fills the sign-in form (a GET changes nothing;
        # the person presses "sign in"). The platform admin belongs to no community, so has no page.
        lines += ["", f"Web pages: {web}/  (中文默认 · English: {web}/lang/en)", "Sign-in links:"]
        for label, token in result["tokens"].items():
            if label != "platform_admin":
                lines.append(f"  {label:<18} {web}/sign-in?token={token}")
    return "\n".join(lines)
