"""Initial schema: tenants, API keys, blobs, networks and their files, specs, versions, tasks.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sightd.store.schema import Id, JSONValue, Timestamp

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _tenant(nullable: bool) -> sa.Column[int]:
    return sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tenants",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.UniqueConstraint("name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "api_keys",
        _id(),
        _tenant(nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.UniqueConstraint("prefix"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "networks",
        _id(),
        _tenant(nullable=True),
        sa.Column("public_id", sa.String(200), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("metadata", JSONValue, nullable=False),
        sa.Column("framework", sa.String(50), nullable=False),
        sa.Column("preprocessing", JSONValue, nullable=False),
        sa.Column("postprocessings", JSONValue, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("public_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_networks_tenant_id", "networks", ["tenant_id"])
    op.create_table(
        "network_files",
        sa.Column("network_id", Id, sa.ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("field_name", sa.String(500), primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_network_files_sha256", "network_files", ["sha256"])
    op.create_table(
        "specs",
        _id(),
        _tenant(nullable=True),
        sa.Column("public_id", sa.String(200), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("metadata", JSONValue, nullable=False),
        sa.Column("outputs", JSONValue, nullable=False),
        sa.Column("current_version_id", Id, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("public_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_specs_tenant_id", "specs", ["tenant_id"])
    op.create_table(
        "versions",
        _id(),
        _tenant(nullable=True),
        sa.Column("spec_id", Id, sa.ForeignKey("specs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("network_id", Id, sa.ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("post_processings", JSONValue, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sqlite_autoincrement=True,
    )
    for column in ("tenant_id", "spec_id", "network_id"):
        op.create_index(f"ix_versions_{column}", "versions", [column])
    op.create_table(
        "tasks",
        _id(),
        _tenant(nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.LargeBinary, nullable=True),
        sa.Column("data", JSONValue, nullable=True),
        sa.Column("error", JSONValue, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'success', 'error')", name="status"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tasks_tenant_id", "tasks", ["tenant_id"])
    op.create_index("ix_tasks_expires_at", "tasks", ["expires_at"])
    op.create_index("ix_tasks_pending", "tasks", ["status", "id"])


def downgrade() -> None:
    for table in ("tasks", "versions", "specs", "network_files", "networks", "blobs", "api_keys", "tenants"):
        op.drop_table(table)
