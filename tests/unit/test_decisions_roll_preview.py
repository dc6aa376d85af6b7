"""The roll preview a worker sees while preparing a ballot is the opening's own rule over the
directory as it stands now: for the same facts it equals the roll frozen at the opening (same
voters, weights and hash), it records nothing, and a roll that cannot be built is refused with the
reason, as opening would refuse it."""
from __future__ import annotations

import pytest

from services.common.errors import InvalidInput, NotFound
from tests.unit.decisions_fixtures import COMMUNITY, app, events, open_ballot, residents, units  # noqa: F401

OTHER = "c0ffee00-0000-4000-8000-000000000002"


def test_the_preview_is_the_roll_the_opening_freezes_from_the_same_facts(app):  # noqa: F811
    ballot = open_ballot(app)
    frozen = app.roll(COMMUNITY, ballot)
    before = len(events(app))
    preview = app.roll_preview(COMMUNITY, ballot, "owner", units())
    assert preview["preview"] is True
    assert preview["roll"] == frozen["roll"] and preview["roll_hash"] == frozen["roll_hash"]
    # the worked example: 8 owners and the developer's unsold unit, 870 m² in all
    assert len(preview["roll"]) == 9
    assert len(events(app)) == before  # a preview records nothing


def test_a_residents_preview_leaves_minors_out_and_another_community_sees_no_ballot(app):  # noqa: F811
    ballot = open_ballot(app)
    preview = app.roll_preview(COMMUNITY, ballot, "resident", residents(6, minors=2))
    assert sorted(e["voter"] for e in preview["roll"]) == [f"r{i:03}" for i in range(6)]
    with pytest.raises(NotFound):
        app.roll_preview(OTHER, ballot, "owner", units())


def test_a_roll_that_cannot_be_built_is_refused_with_the_reason(app):  # noqa: F811
    ballot = open_ballot(app)
    co_owned = units()
    co_owned[0] = dict(co_owned[0], owners=["Wang", "Wu"], representative=None, developer_unsold=False)
    with pytest.raises(InvalidInput):
        app.roll_preview(COMMUNITY, ballot, "owner", co_owned)
    with pytest.raises(InvalidInput):
        app.roll_preview(COMMUNITY, ballot, "resident", [])
