"""Read models of the decisions service (projections of its own log) and its sealed table.

Nothing here is the record: every row can be rebuilt from the events, except the sealed proxy
authorisations of secret ballots, which must never enter the record (they name the voter).
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ballots = sa.Table(
    "decisions_ballots", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("case_id", sa.String(36)),
    sa.Column("status", sa.String(24), index=True, nullable=False),
    sa.Column("title_commitment", sa.String(64)),
    sa.Column("preset", sa.String(24)),
    sa.Column("voting_unit", sa.String(12)),
    sa.Column("secret", sa.Boolean),
    sa.Column("opens_at", sa.String(40)),
    sa.Column("closes_at", sa.String(40)),
    sa.Column("roll_size", sa.Integer),
    # distinct voters whose vote was recorded before the close: the early close compares it with
    # roll_size in O(1), whatever the number of votes
    sa.Column("voted", sa.Integer, nullable=False, default=0),
    sa.Column("closed_position", sa.BigInteger),  # votes recorded at or after it do not count
    sa.Column("publicity_until", sa.String(40)),
    sa.Column("pending_objections", sa.Integer, nullable=False, default=0),
    sa.Column("outcome", sa.String(24)),
    sa.Column("updated_at", sa.String(40)),
)

# One row per recorded vote (VoteCast / VoteChanged), so the count reads exactly the votes
# recorded before BallotClosed, in record order. `voter` is NULL for a secret ballot.
votes = sa.Table(
    "decisions_votes", metadata,
    sa.Column("vote", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("ballot", sa.String(36), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("voter", sa.String(64)),
    sa.Column("receipt", sa.String(64), nullable=False),
    sa.Column("choice", sa.JSON, nullable=False),
    sa.Column("weight", sa.String(40), nullable=False),
    sa.Column("headcount", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("paper_serial", sa.String(64)),
    sa.Column("cast_at", sa.String(40), nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),  # the voter's standing vote (shown on the board)
    sa.Column("late", sa.Boolean, nullable=False),  # recorded after BallotClosed: does not count
    sa.Index("ix_decisions_votes_ballot_position", "ballot", "position"),
    sa.Index("ix_decisions_votes_board", "ballot", "current", "receipt"),
    sa.Index("ix_decisions_votes_serial", "ballot", "paper_serial"),
)

objections = sa.Table(
    "decisions_objections", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("ballot", sa.String(36), index=True, nullable=False),
    sa.Column("lodged_by", sa.String(64), nullable=False),
    sa.Column("lodged_at", sa.String(40), nullable=False),
    sa.Column("text_commitment", sa.String(64), nullable=False),
    sa.Column("upheld", sa.Boolean),
    sa.Column("reason_commitment", sa.String(64)),
    sa.Column("ruled_by", sa.String(64)),
    sa.Column("ruled_at", sa.String(40)),
)

# Secret ballots only: the written authorisation of a proxy vote names the voter, so its
# commitment stays here, inside the service, instead of in the VoteCast event.
sealed_authorisations = sa.Table(
    "decisions_sealed_authorisations", metadata,
    sa.Column("vote", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("commitment", sa.String(64), nullable=False),
)
