"""The event contracts (services/contracts): they say exactly what the domains record, the pages in
docs/events are generated from them, and the audit replay reads every event through them, so a
renamed field fails loudly in the replay and in the docs check instead of reading as null."""
from __future__ import annotations

import importlib
import inspect
import uuid

import pytest

import services.contracts as contracts
from services.audit.reconcile import reconcile
from services.audit.replay import replay
from services.common.aggregate import Aggregate
from services.common.envelope import event_type_name
from services.contracts import docs
from services.contracts.schema import ContractViolation, Registry

DOMAINS = {
    "communities": ("services.communities.domain", "services.common.erasure"),
    "proposals": ("services.proposals.domain", "services.common.erasure"),
    "deliberation": ("services.deliberation.domain", "services.common.erasure"),
    "decisions": ("services.decisions.domain", "services.common.erasure"),
    "actions": ("services.actions.domain", "services.common.erasure"),
    "notifications": ("services.notifications.domain", "services.common.erasure"),
}
_NOT_DATA = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "originator_id_type"}


def domain_events(source: str) -> dict[tuple[str, int], tuple[str, set[str]]]:
    """(type, version) -> (aggregate, data field names) of every event class the source's domain
    declares (the generic `Event` and field-less `Created` bases aside)."""
    out = {}
    for name in DOMAINS[source]:
        module = importlib.import_module(name)
        for agg_name, agg in vars(module).items():
            if not (inspect.isclass(agg) and issubclass(agg, Aggregate) and agg.__module__ == name):
                continue
            for ev_name, ev in vars(agg).items():
                if inspect.isclass(ev) and issubclass(ev, Aggregate.Event) and ev_name != "Event":
                    names = set()
                    for klass in ev.__mro__:
                        names |= set(getattr(klass, "__annotations__", {}))
                    if ev_name == "Created" and not names - _NOT_DATA:
                        continue  # the generic base of an aggregate created by an event of its own name
                    out[(event_type_name(ev), int(getattr(ev, "class_version", 1)))] = (agg_name, names - _NOT_DATA)
    return out


@pytest.mark.parametrize("source", sorted(DOMAINS))
def test_every_domain_event_has_exactly_its_contract(source):
    declared = domain_events(source)
    contracted = {(c.type, c.version): c for c in contracts.EVENTS.by_source[source]}
    newest = {}
    for c in contracted.values():
        newest[c.type] = max(newest.get(c.type, 0), c.version)
    assert set(declared) == {(t, v) for t, v in newest.items()}, "contracted types/versions differ from the domain's"
    for key, (aggregate, names) in declared.items():
        assert contracted[key].aggregate == aggregate, key
        assert set(contracted[key].names) == names, f"{key}: contract {contracted[key].names} vs domain {names}"


def test_commitments_are_the_fields_named_so_and_only_those():
    for c in contracts.EVENTS:
        for x in c.fields:
            assert x.commitment == x.name.endswith(("_commitment", "_commitments")), (c.type, x.name)


def envelope(type_: str, data: dict, source: str = "proposals", version: int = 1) -> dict:
    return {"schema": "consult.event/1", "id": str(uuid.uuid4()), "source": source, "position": 1, "type": type_,
            "event_version": version, "community": "c", "aggregate": {"type": "Proposal", "id": "p1", "version": 1},
            "occurred_at": "2026-11-26T08:00:00.000000Z", "actor": "a", "case": "p1", "causation": None,
            "data": data}


DRAFTED = {"community": "c", "author": "a", "scope": "community", "scope_id": "c", "category": "drainage",
           "title_commitment": "ab" * 32, "body_commitment": "cd" * 32, "original_case": None}


def test_validation_names_every_departure():
    assert contracts.problems(envelope("ProposalDrafted", DRAFTED)) == []
    # recorded before follow-ups existed: original_case may be absent, not anything else
    assert contracts.problems(envelope("ProposalDrafted", {k: v for k, v in DRAFTED.items() if k != "original_case"})) == []
    bad = dict(DRAFTED, title_commitment="my title", extra=1, scope=None)
    del bad["author"]
    found = contracts.problems(envelope("ProposalDrafted", bad))
    assert "unexpected field 'extra'" in found and "missing field 'author'" in found
    assert any(p.startswith("title_commitment is not commitment") for p in found)
    assert "scope is null" in found
    assert contracts.problems(envelope("ProposalDrafted", DRAFTED, source="actions")) == [
        "ProposalDrafted is not contracted for source 'actions'"]
    assert contracts.problems(envelope("ProposalDrafted", DRAFTED, version=2)) == [
        "no contract for event type 'ProposalDrafted' version 2"]
    with pytest.raises(ContractViolation, match="missing field 'author'"):
        contracts.validate(envelope("ProposalDrafted", bad))


def test_a_field_of_several_types():
    """BallotPrepared.suggested_rule is the preset the deliberation suggested, or for a rerun the
    annulled ballot's rule (the session-end check found the string where only an object was
    contracted)."""
    field = {x.name: x for x in contracts.EVENTS.get("BallotPrepared").fields}["suggested_rule"]
    assert field.problem("owners_major") is None and field.problem({"preset": "owners_major"}) is None
    assert field.problem(None) is None
    assert field.problem(5) == "suggested_rule is not string or object: 5"


def test_older_versions_are_contracted_and_a_reader_of_the_newest_reads_them():
    v1 = {"ballot": "b", "voter": "v", "channel": "online", "paper_serial": None, "reason": "not on the roll"}
    env = envelope("VoteRefused", v1, source="decisions")
    assert contracts.problems(env) == []
    assert contracts.problems(dict(env, event_version=2)) == ["missing field 'entered_by'"]
    assert contracts.data(env).get("entered_by") is None  # added in version 2: absent, not an error


def test_a_renamed_field_fails_the_replay_and_the_docs_check(tmp_path):
    """Rename `author` of ProposalDrafted in a copy of the contracts: the events recorded under the
    old name no longer validate and the replay (and reconcile) refuse them; events under the new
    name are refused by a replay that still asks for the old one; and the generated docs no longer
    match the pages in docs/events."""
    log = [envelope("ProposalDrafted", DRAFTED)]
    assert replay(log)["proposals"]["p1"]["author"] == "a"

    renamed: Registry = contracts.EVENTS.replaced(contracts.EVENTS.get("ProposalDrafted").renamed("author", "author_id"))
    assert contracts.EVENTS.get("ProposalDrafted").names != renamed.get("ProposalDrafted").names  # a copy
    assert set(contracts.problems(log[0], renamed)) == {"unexpected field 'author'", "missing field 'author_id'"}
    # the events recorded under the old name: the replay refuses them
    with pytest.raises(ContractViolation, match=r"ProposalDrafted v1\): unexpected field\(s\) author$"):
        replay(log, contracts=renamed)
    with pytest.raises(ContractViolation, match=r"ProposalDrafted v1\): unexpected field\(s\) author$"):
        reconcile(lambda request: None, "c", log, ("proposals",), contracts=renamed)
    # events recorded under the new name, read by a replay that still asks for the old one
    new_log = [envelope("ProposalDrafted", {("author_id" if k == "author" else k): v for k, v in DRAFTED.items()})]
    with pytest.raises(ContractViolation, match="ProposalDrafted has no field 'author'"):
        replay(new_log, contracts=renamed)

    assert docs.stale() == []
    assert docs.stale(renamed) == ["proposals.md"]


def test_reading_a_field_no_contract_names_raises():
    d = contracts.data(envelope("ProposalDrafted", DRAFTED))
    assert d["author"] == "a" and d.get("original_case") is None
    with pytest.raises(ContractViolation):
        d.get("authour")
    with pytest.raises(ContractViolation):
        d["authour"]
    older = contracts.data(envelope("ProposalDrafted", {k: v for k, v in DRAFTED.items() if k != "original_case"}))
    with pytest.raises(KeyError):  # a field of the contract this (older) event lacks: absent, as ever
        older["original_case"]
    with pytest.raises(ContractViolation, match=r"unexpected field\(s\) extra"):
        contracts.data(envelope("ProposalDrafted", dict(DRAFTED, extra=1)))
    with pytest.raises(ContractViolation, match="no contract for event type 'ProposalRenamed'"):
        contracts.data(envelope("ProposalRenamed", {}))


def test_the_event_pages_are_generated_from_the_contracts():
    """docs/events/*.md are what `python -m services.contracts.docs` writes; edit the prose in
    services/contracts/prose/ or the contracts, then run it."""
    assert docs.stale() == [], "docs/events is stale: run python -m services.contracts.docs"
    for source, text in docs.pages().items():
        assert text.startswith("<!-- Generated by")
    assert "| `ProposalDrafted` | 1 | `Proposal` | `community` string, `author` string" in docs.pages()["proposals.md"]


def test_a_contracted_type_the_prose_never_mentions_is_refused(monkeypatch, tmp_path):
    (tmp_path / "proposals.md").write_text("# Events\n\nnothing here\n", encoding="utf-8")
    monkeypatch.setattr(docs, "PROSE", tmp_path)
    with pytest.raises(ValueError, match="does not mention .*ProposalDrafted"):
        docs.page("proposals")
