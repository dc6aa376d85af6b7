"""The notifications service reads other services' events (who takes part, what a message says):
every field it reads of an event type is a field of that type's contract, so a renamed field
fails here instead of leaving a message blank. Its reads of what an event *may* name (a title, the
topic it is about) are optional by design and listed below."""
from __future__ import annotations

import uuid

import pytest

import services.contracts as contracts
from services.notifications import domain

# Read of every event, present or not: the title, and the id of the topic an event names.
OPTIONAL = {"title_commitment", "proposal", "consultation", "ballot", "task", "case"}
# Branches shared by two types read a field only one of them has, falling back on purpose: a
# designated convener's role is "convener"; an overdue task's party is the one it was assigned.
SHARED_BRANCH = {"ConvenerDesignated": {"role"}, "TaskOverdue": {"responsible_party"}}
TIME = "2026-11-26T08:00:00.000000Z"
REMINDERS = {"BallotClosingSoon", "EvaluationClosingSoon"}  # raised by the service itself, not events


def sample(contract) -> dict:
    """Data with every field of the contract, of its type."""
    def value(field):
        kind = field.type.split("|")[0]  # of several types, the first
        if kind == "str":
            return TIME if field.name.endswith(("_at", "deadline", "_until")) else str(uuid.uuid4())
        return {"int": 1, "bool": True, "object": {}, "array": [], "decimal": "1", "commitment": "ab" * 32,
                "commitments": ["ab" * 32], "any": "x"}[kind]
    return {x.name: value(x) for x in contract.fields}


class Reads(dict):
    """An event's data that remembers which fields were asked for."""

    def __init__(self, data):
        super().__init__(data)
        self.asked: set[str] = set()

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def newest(type_: str):
    return contracts.EVENTS.versions(type_)[-1]


TYPES = sorted({*domain.NOTICES, *domain.CANCELS_REMINDER, "ProposalDrafted", "SupportGiven", "SupportGivenAgain",
                "SupportWithdrawn", "InvitationAccepted", "ConvenerDesignated", "BallotPrepared", "TaskAssigned",
                "ObjectionLodged", "ActionPlanOpened", "EvaluationGiven", "EvaluationChanged", "EvaluationClosed"}
               - REMINDERS)


@pytest.mark.parametrize("type_", TYPES)
def test_notifications_read_only_contracted_fields(type_):
    contract = newest(type_)
    data = Reads(sample(contract) or {"_": None})
    env = {"id": str(uuid.uuid4()), "type": type_, "source": contract.sources[0], "case": str(uuid.uuid4()),
           "aggregate": {"type": contract.aggregate, "id": str(uuid.uuid4()), "version": 1},
           "occurred_at": TIME, "data": data}
    domain.remember(env)
    if type_ in domain.NOTICES:
        domain.content_of(env, domain.NOTICES[type_], None, None)
    unknown = data.asked - set(contract.names) - OPTIONAL - SHARED_BRANCH.get(type_, set())
    assert not unknown, f"the notifications service reads {sorted(unknown)} of {type_}, whose contract has no such field"


def test_the_reminder_is_the_only_notice_that_is_not_a_contracted_event():
    assert {t for t in domain.NOTICES if (t, 1) not in contracts.EVENTS.by_key and not contracts.EVENTS.versions(t)} \
        == REMINDERS
