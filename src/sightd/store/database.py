"""The connection to the metadata store: an async SQLAlchemy engine on SQLite (WAL) or PostgreSQL, with
the schema migrated to the latest revision when it opens, and on an SQLite file a synchronous engine on
database threads for the transactions of the request path (``run_read``, ``run_write``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

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
# Threads (each with its own connection) that run the synchronous transactions on an SQLite file: one writes
# at a time, the others read.
SQLITE_THREADS = 4

P = ParamSpec("P")
T = TypeVar("T")


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
    """An async engine and its two kinds of transactions (``read``, ``write``), plus synchronous functions
    run in one transaction (``run_read``, ``run_write``): on an SQLite file, on database threads."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = sa.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {"echo": echo}
        database = self.url.database or ""
        sqlite_file = self.is_sqlite and database not in ("", ":memory:")
        if sqlite_file:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            options.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        # SQLite takes one writer at a time: this process's writers wait their turn here, in order, rather
        # than in SQLite's busy handler, which sleeps up to 100 ms between tries (one lock per event loop).
        self._write_turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        # On an SQLite file, run_read and run_write take a transaction to a database thread in one hop, on
        # a synchronous engine (the standard sqlite3 driver) of the same file, where the async engine makes
        # about nine round trips to its connection's thread: docs/storage.md. The threads start on first use
        # (again after close(), as the engines reconnect).
        self._sync_engine: sa.Engine | None = None
        self._threads: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine.sync_engine)
        if sqlite_file:
            self._sync_engine = sa.create_engine(
                self.url.set(drivername="sqlite+pysqlite"),
                echo=echo,
                pool_size=SQLITE_THREADS,
                max_overflow=0,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            _configure_sqlite(self._sync_engine)

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

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction for reads (it may write, but on SQLite a concurrent writer may then fail it)."""
        return self._read_transaction()

    @asynccontextmanager
    async def _read_transaction(self) -> AsyncIterator[AsyncConnection]:
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

    async def run_read(
        self, read: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``read(connection, *args, **kwargs)``, a synchronous function, in a read transaction (as
        ``read()``): on an SQLite file, on a database thread; elsewhere through the async engine."""
        if self._sync_engine is None:
            async with self._read_transaction() as connection:
                return await connection.run_sync(read, *args, **kwargs)
        return await self._on_a_thread(False, read, *args, **kwargs)

    async def run_write(
        self, write: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``write(connection, *args, **kwargs)``, a synchronous function, in a write transaction (as
        ``write()``, taking its turn among this process's writers): committed when it returns, rolled back
        when it raises. On an SQLite file it runs on a database thread; elsewhere through the async engine.
        A caller cancelled while it runs still waits for its end (it may have committed), so that the next
        writer's turn never finds SQLite's write lock taken."""
        if self._sync_engine is None:
            async with self.write() as connection:
                return await connection.run_sync(write, *args, **kwargs)
        async with self._write_turn():
            return await self._on_a_thread(True, write, *args, **kwargs)

    async def _on_a_thread(
        self,
        writes: bool,
        work: Callable[Concatenate[sa.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``work`` in a transaction of the synchronous engine, on a database thread. The work cannot be
        stopped there: a caller cancelled meanwhile waits for its end before the cancellation goes on."""
        engine = self._sync_engine
        assert engine is not None
        if self._threads is None:
            self._threads = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="sightd-db")

        def transaction() -> T:
            with engine.connect() as plain:
                connection = plain.execution_options(sightd_write=writes)
                with connection.begin():
                    return work(connection, *args, **kwargs)

        future = asyncio.get_running_loop().run_in_executor(self._threads, transaction)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([future])
            raise

    async def close(self) -> None:
        """Closes every connection (a later transaction connects again)."""
        threads, self._threads = self._threads, None
        if threads is not None:
            await asyncio.to_thread(threads.shutdown)  # after the transactions under way
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self.engine.dispose()


def _configure_sqlite(engine: sa.Engine) -> None:
    """The connections' settings and the transactions' BEGIN of an SQLite engine (async or not)."""

    @event.listens_for(engine, "connect")
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

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A write transaction takes the write lock at once, waiting up to busy_timeout for it.
        immediate = connection.get_execution_options().get("sightd_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def open_database(url: str) -> Database:
    """A migrated database at the URL."""
    database = Database(url)
    try:
        await database.migrate()
    except BaseException:
        await database.close()
        raise
    return database
