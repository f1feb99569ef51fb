"""Fixtures of the storage tests: a migrated database on SQLite and on PostgreSQL.

PostgreSQL is the server of this machine (127.0.0.1:5432, user postgres, trust authentication; override
with SIGHTD_TEST_POSTGRES_URL). Each test session (each xdist worker) creates its own database
``sightd_test_<random>`` and drops it at the end; each test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from sightd.store.database import Database, open_database
from sightd.store.schema import metadata
from sightd.zoo import build, installed

POSTGRES_ADMIN_URL = os.environ.get(
    "SIGHTD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"sightd_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An async SQLAlchemy URL of each supported store."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database."""
    database = await open_database(database_url)
    if not database.is_sqlite:
        async with database.write() as connection:
            names = ", ".join(table.name for table in metadata.sorted_tables)
            await connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture(scope="session")
def zoo() -> installed.Zoo:
    """The built public zoo (built once; idempotent, and safe when xdist workers build at once)."""
    build.build()
    return installed.load()


@pytest.fixture
async def deployed(tmp_path: Path, zoo: installed.Zoo, darknet_data: Path) -> AsyncIterator[Any]:
    """A running service where acme has imagenet-mobilenet-v2 deployed (integration.deployment)."""
    from integration.deployment import deploy  # imports the whole service: only for the tests using it

    async with deploy(tmp_path / "data", zoo, darknet_data) as deployed:
        yield deployed
