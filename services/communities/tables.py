"""Read models of the directory (projections of its own log) and the credential tables."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

communities = sa.Table(
    "dir_communities", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(40)),
    # The cell the community was placed in (CommunityCreated 2); NULL: no cells. Up to 16
    # characters: services/common/config.py CELL_NAME.
    sa.Column("cell", sa.String(16)),
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
# Erasure requests (PIPL art. 47), from the log: whose, when, by whom; what each service has done
# is asked of the service (services/common/erasure.py).
erasure_requests = sa.Table(
    "dir_erasure_requests", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("community", sa.String(36), index=True, nullable=False),
    sa.Column("person", sa.String(36), index=True, nullable=False),
    sa.Column("requested_at", sa.String(40), nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("reason_commitment", sa.String(64), nullable=False),
)
# Credentials are not democratic record: the secrets' SHA-256 hashes live here only. Their life
# (issued, redeemed, revoked: who, for whom, until when, a token id) is in the log as Token and
# Invitation events; `revoked_at` is kept from TokenRevoked by the projection.
tokens = sa.Table(
    "credential_tokens", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the Token aggregate's id: shown, revocable by
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("community", sa.String(36), index=True),  # NULL for a platform admin token
    sa.Column("person", sa.String(64), nullable=False, index=True),
    sa.Column("label", sa.String(100)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)
invitations = sa.Table(
    "credential_invitations", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the Invitation aggregate's id
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("community", sa.String(36), nullable=False),
)
# Owner keys (a certificate number, a phone number…) are never stored: an owner imported with a
# key gets a person id derived from HMAC-SHA256(this community's secret, normalised key), so the
# same key finds the same person again and different keys never meet. The secret stays here.
owner_key_secrets = sa.Table(
    "dir_owner_key_secrets", metadata,
    sa.Column("community", sa.String(36), primary_key=True),
    sa.Column("secret", sa.String(64), nullable=False),
)
# Directory imports run as jobs (imports.py): one row per (community, file hash), with how the
# last run of that file went. `heartbeat` is wall-clock seconds: a running job writes it every
# few seconds, and one that stopped writing it died with its process.
import_jobs = sa.Table(
    "dir_import_jobs", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # derived from the community and the file's hash
    sa.Column("community", sa.String(36), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("finished_at", sa.String(40)),
    sa.Column("result", sa.Text),
    sa.Column("problem", sa.Text),
)


# Columns added to a table after stores were made with it. create_all makes a new store whole but
# leaves an existing table as it is, so a store made before gets these here; each is nullable, and
# the rows it held read as NULL (a community created before cells has none).
ADDED_COLUMNS = ((communities, "cell"),)


def add_missing_columns(engine: sa.Engine) -> None:
    """ALTER TABLE … ADD COLUMN for each of ADDED_COLUMNS the store's table lacks: a store made
    before this version still starts. Checked and added in one transaction: on SQLite it holds the
    write lock from its BEGIN (store.state_engine), on PostgreSQL IF NOT EXISTS makes a second
    instance starting at the same moment a no-op, so instances racing at start-up add it once."""
    postgres, prep = engine.dialect.name == "postgresql", engine.dialect.identifier_preparer
    for table, name in ADDED_COLUMNS:
        with engine.begin() as conn:
            if name in {c["name"] for c in sa.inspect(conn).get_columns(table.name)}:
                continue
            column = table.c[name]
            conn.execute(sa.text(
                f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {'IF NOT EXISTS ' if postgres else ''}"
                f"{prep.format_column(column)} {column.type.compile(dialect=engine.dialect)}"))
