"""Read models of the decisions service (projections of its own log) and its sealed tables.

Nothing here is the record: every row of a read model can be rebuilt from the events. The sealed
tables are the exception: what a secret ballot keeps out of the record while voting is open (the
choices and their salts until the count reveals them, who cast a proxy vote, who holds a proxy).
Each sealed row is written *before* the event that refers to it is saved, so no saved event lacks
its row (a refused save leaves an unreferenced row behind, which is harmless).
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

# Written by VoteCast version 1 only (before proxies needed a recorded authorisation): a secret
# ballot's free-text proxy authorisation, kept here because it names the voter. Read by nobody now;
# kept so that what was recorded then is not lost.
sealed_authorisations = sa.Table(
    "decisions_sealed_authorisations", metadata,
    sa.Column("vote", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("commitment", sa.String(64), nullable=False),
)

# Secret ballots: per vote event (keyed by its receipt, which the votes read model holds) the choice
# and the salt of its seal, revealed in the count; for a proxy vote, who cast it and the salt of
# `cast_by_seal`, shown to the voter (the principal) so they can check the record's seal.
sealed_votes = sa.Table(
    "decisions_sealed_votes", metadata,
    sa.Column("receipt", sa.String(64), primary_key=True),
    sa.Column("vote", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sealed_choice", sa.String(64), nullable=False),
    sa.Column("choice", sa.JSON, nullable=False),
    sa.Column("salt", sa.String(32), nullable=False),
    sa.Column("cast_by", sa.String(64)),
    sa.Column("cast_by_salt", sa.String(32)),
)

# Secret ballots: who holds a proxy authorisation, behind the holder_seal of ProxyAuthorised.
sealed_proxies = sa.Table(
    "decisions_sealed_proxies", metadata,
    sa.Column("holder_seal", sa.String(64), primary_key=True),
    sa.Column("proxy", sa.String(36), index=True, nullable=False),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("salt", sa.String(32), nullable=False),
)

# Proxy authorisations (a projection); principal and holder are NULL on a secret ballot.
proxies = sa.Table(
    "decisions_proxies", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("ballot", sa.String(36), nullable=False),
    sa.Column("principal", sa.String(64)),
    sa.Column("holder", sa.String(64)),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("paper_serial", sa.String(64)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_decisions_proxies_serial", "ballot", "paper_serial"),
)

# Paper ballots a community worker corrected (VoteChanged with a reason), for the ballot view.
corrections = sa.Table(
    "decisions_corrections", metadata,
    sa.Column("vote", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("ballot", sa.String(36), index=True, nullable=False),
    sa.Column("receipt", sa.String(64), nullable=False),
    sa.Column("paper_serial", sa.String(64)),
    sa.Column("replaces_serial", sa.String(64)),
    sa.Column("reason_commitment", sa.String(64), nullable=False),
    sa.Column("entered_by", sa.String(64)),
    sa.Column("recorded_at", sa.String(40), nullable=False),
)
