"""The envelope: deterministic ids, canonical bytes, commitments, upcasting."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from services.common import envelope
from services.common.aggregate import SELF, Aggregate, command_context
from eventsourcing.domain import event


class Petition(Aggregate):
    @event("Filed")
    def __init__(self, community: str, area: Decimal, title_commitment: str):
        self.community = community
        self.case = str(self.id)

    @event("Amended")
    def amend(self, note_commitment: str):
        pass


def _envelopes(p):
    return [envelope.from_domain_event("petitions", i + 1, e) for i, e in enumerate(p.collect_events())]


def test_envelope_carries_meta_and_is_deterministic():
    commitment, _salt = envelope.commit_text("清理下水道")
    with command_context(community="c1", actor="resident-1", case=SELF):
        p = Petition(community="c1", area=Decimal("75.50"), title_commitment=commitment)
    with command_context(community="c1", actor="worker-9", case=None, causation="ev-0"):
        p.amend(note_commitment=commitment)
    filed, amended = _envelopes(p)
    assert filed["type"] == "PetitionFiled" and amended["type"] == "PetitionAmended"
    assert filed["case"] == str(p.id) and amended["case"] == str(p.id), "a later event inherits the case"
    assert filed["actor"] == "resident-1" and amended["causation"] == "ev-0"
    assert filed["data"]["area"] == "75.50"
    assert filed["id"] == envelope.event_id(p.id, 1) == str(uuid.uuid5(envelope.NAMESPACE, f"{p.id}/1"))
    again = envelope.canonical(filed)
    assert again == envelope.canonical(envelope.decode(again)), "canonical bytes are a fixed point"
    assert again.startswith(b'{"actor":"resident-1","aggregate":')


def test_canonical_form_sorts_keys_and_refuses_floats():
    assert envelope.canonical({"b": 1, "a": {"d": [1, "二"], "c": None}}) == '{"a":{"c":null,"d":[1,"二"]},"b":1}'.encode()
    with pytest.raises(TypeError):
        envelope.canonical({"area": 1.5})


def test_event_outside_a_command_context_is_refused():
    with pytest.raises(RuntimeError):
        Petition(community="c1", area=Decimal("1"), title_commitment="x")


def test_commitments_check_and_fail_on_altered_text():
    commitment, salt = envelope.commit_text("排水沟堵塞")
    assert envelope.check_commitment(commitment, salt, "排水沟堵塞")
    assert not envelope.check_commitment(commitment, salt, "排水沟堵塞 ")


def test_old_event_versions_are_upcast_on_read():
    @envelope.upcaster("PetitionFiled", 1)
    def _v1_to_v2(data):
        data["unit"] = "m2"
        return data

    try:
        old = {"schema": envelope.SCHEMA, "type": "PetitionFiled", "event_version": 1, "data": {"area": "5"}}
        new = envelope.decode(old)
        assert new["event_version"] == 2 and new["data"] == {"area": "5", "unit": "m2"}
        assert old["data"] == {"area": "5"}, "the stored envelope is never rewritten"
        assert envelope.decode(old, upcast=False) is old
    finally:
        envelope.UPCASTERS.clear()


def test_unknown_schema_is_refused():
    with pytest.raises(ValueError):
        envelope.decode({"schema": "other/1", "type": "X"})
