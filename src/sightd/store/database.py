"""The connection to the metadata store: an async SQLAlchemy engine on SQLite (WAL) or PostgreSQL, with
the schema migrated to the latest revision when it opens."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# Serialises concurrent start-ups of several replicas on one PostgreSQL database while they migrate.
_MIGRATION_LOCK = 0x5167_6874_6400
# SQLite connections kept open (each is a file handle and an aiosqlite thread): enough for the reads of a
# loaded server at once, so that none is opened and closed per transaction (docs/storage.md).
SQLITE_POOL_SIZE = 16


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; every timestamp sightd stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


class Database:
    """An async engine plus the two kinds of transactions sightd uses."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = sa.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                options.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        # SQLite takes one writer at a time: this process's writers wait their turn here, in order, rather
        # than in SQLite's busy handler, which sleeps up to 100 ms between tries (one lock per event loop).
        self._write_turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        if self.is_sqlite:
            self._configure_sqlite()

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # sightd emits BEGIN itself (below): the driver's own transaction handling would start write
            # transactions as readers, which fail with "database is locked" instead of waiting.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: sa.Connection) -> None:
            # A write transaction takes the write lock at once, waiting up to busy_timeout for it.
            immediate = connection.get_execution_options().get("sightd_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    async def migrate(self) -> None:
        """Brings the schema to the latest revision (creating it in an empty database)."""

        def upgrade(connection: sa.Connection) -> None:
            if not self.is_sqlite:
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            command.upgrade(_alembic_config(connection), "head")

        async with self.write() as connection:
            await connection.run_sync(upgrade)

    async def revision(self) -> str | None:
        """The schema revision the database is at (None when it has none yet)."""

        def current(connection: sa.Connection) -> str | None:
            return MigrationContext.configure(connection).get_current_revision()

        async with self.read() as connection:
            return await connection.run_sync(current)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for reads (it may write, but on SQLite a concurrent writer may then fail it)."""
        async with self.engine.connect() as connection, connection.begin():
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes: committed on success, rolled back on an exception. On SQLite, this
        process's write transactions run one at a time, in the order they asked."""
        if not self.is_sqlite:
            async with self._write_transaction() as connection:
                yield connection
            return
        async with self._write_turn(), self._write_transaction() as connection:
            yield connection

    def _write_turn(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._write_turns is None or self._write_turns[0] is not loop:
            self._write_turns = (loop, asyncio.Lock())
        return self._write_turns[1]

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as plain:
            connection = await plain.execution_options(sightd_write=True)
            async with connection.begin():
                yield connection

    async def close(self) -> None:
        await self.engine.dispose()


async def open_database(url: str) -> Database:
    """A migrated database at the URL."""
    database = Database(url)
    try:
        await database.migrate()
    except BaseException:
        await database.close()
        raise
    return database
