"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from sightd.store.database import Database, head_revision, utcnow
from sightd.store.schema import metadata, tasks, tenants


async def test_migrated_schema_matches_the_declared_tables(database: Database) -> None:
    def differences(connection: sa.Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with database.read() as connection:
        assert await connection.run_sync(differences) == []
    assert await database.revision() == head_revision()


async def test_migrating_again_changes_nothing(database: Database) -> None:
    await database.migrate()
    assert await database.revision() == head_revision()


async def test_sqlite_store_runs_in_wal_mode_with_foreign_keys(database: Database) -> None:
    if not database.is_sqlite:
        return
    async with database.read() as connection:
        assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1


async def test_task_status_is_limited_to_the_three_v07_states(database: Database) -> None:
    async with database.write() as connection:
        tenant = (
            await connection.execute(
                sa.insert(tenants).values(name="t", created_at=utcnow()).returning(tenants.c.id)
            )
        ).scalar_one()
    now = utcnow()
    running = sa.insert(tasks).values(
        tenant_id=tenant, kind="recognition", status="running", created_at=now, updated_at=now
    )
    async with database.write() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(running)
