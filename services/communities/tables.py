"""Read models of the directory (projections of its own log) and the credential tables."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

communities = sa.Table(
    "dir_communities", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(40)),
)
compounds = sa.Table(
    "dir_compounds", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
)
buildings = sa.Table(
    "dir_buildings", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("compound", sa.String(36), index=True, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
)
households = sa.Table(
    "dir_households", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("building", sa.String(36), index=True, nullable=False),
    sa.Column("unit", sa.String(40), nullable=False),
    sa.UniqueConstraint("building", "unit", name="uq_household_unit"),
)
people = sa.Table(
    "dir_people", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
)
# Every residence period and role period, so "who, where, as what, on date X" is one query.
residences = sa.Table(
    "dir_residences", metadata,
    sa.Column("person", sa.String(36), primary_key=True),
    sa.Column("valid_from", sa.String(40), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("household", sa.String(36), index=True, nullable=False),
    sa.Column("valid_to", sa.String(40)),
)
roles = sa.Table(
    "dir_roles", metadata,
    sa.Column("person", sa.String(36), primary_key=True),
    sa.Column("role", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(36), primary_key=True),  # '' for the whole community
    sa.Column("valid_from", sa.String(40), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("valid_to", sa.String(40)),
)
tokens = sa.Table(
    "credentials_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("community", sa.String(36), index=True),  # NULL for a platform admin token
    sa.Column("person", sa.String(64), nullable=False),
    sa.Column("label", sa.String(100)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)
invitations = sa.Table(
    "credentials_invitations", metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("community", sa.String(36), nullable=False),
    sa.Column("household", sa.String(36)),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("used_by", sa.String(36)),
)
