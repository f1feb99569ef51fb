"""The tables, as SQLAlchemy Core metadata. Migrations (``migrations/versions``) create them; a test
checks that the migrated database and this metadata agree, on SQLite and PostgreSQL.

``tenant_id`` NULL marks the system's public resources (the model zoo), which every tenant sees. Public
networks and specs are addressed by ``public_id`` (a name that never consists of digits only), private
ones by ``id``; versions of public specs are public too.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only gives AUTOINCREMENT (ids never reused, so an expired task's id is never answered again) to an
# INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    # The key's public part, to find its row without scanning; the secret is only stored hashed.
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sqlite_autoincrement=True,
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

networks = sa.Table(
    "networks",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("public_id", sa.String(200), nullable=True, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("metadata", JSONValue, nullable=False),
    sa.Column("framework", sa.String(50), nullable=False),
    sa.Column("preprocessing", JSONValue, nullable=False),
    sa.Column("postprocessings", JSONValue, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

network_files = sa.Table(
    "network_files",
    metadata,
    sa.Column("network_id", Id, sa.ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("field_name", sa.String(500), primary_key=True),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
)

specs = sa.Table(
    "specs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("public_id", sa.String(200), nullable=True, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("metadata", JSONValue, nullable=False),
    sa.Column("outputs", JSONValue, nullable=False),
    # No foreign key: specs and versions would reference each other. The repository keeps it consistent
    # (it must be a version of this spec; deleting the version clears it).
    sa.Column("current_version_id", Id, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("spec_id", Id, sa.ForeignKey("specs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("network_id", Id, sa.ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("post_processings", JSONValue, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sqlite_autoincrement=True,
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    # What the task does ("recognition", "network_inference", "network_creation"): tells the runtime how
    # to re-run `request` after a restart.
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The serialized request, kept while the task is pending so that a restart can run it again.
    sa.Column("request", sa.LargeBinary, nullable=True),
    sa.Column("data", JSONValue, nullable=True),
    sa.Column("error", JSONValue, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Set when the task finishes: the expiry sweep deletes it after that.
    sa.Column("expires_at", Timestamp, nullable=True, index=True),
    # The instance running the pending task, and until when its lease holds (renewed while it runs). A
    # task whose lease ran out belongs to no live instance and may be taken over (docs/storage.md).
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", Timestamp, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'success', 'error')", name="status"),
    sa.Index("ix_tasks_pending", "status", "id"),
    sqlite_autoincrement=True,
)
