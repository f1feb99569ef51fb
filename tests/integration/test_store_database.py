"""The store's transactions: on SQLite, this process's writers take turns in the order they asked, holding
no connection while they wait, and readers never wait for them; synchronous transactions (run_write,
run_read) run on database threads on an SQLite file, and through the async engine elsewhere."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sightd.app.errors import NotFoundError
from sightd.store.database import Database, open_database, utcnow
from sightd.store.schema import tenants


async def test_sqlite_writers_take_turns_in_order_without_holding_a_connection(tmp_path: Path) -> None:
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}")
    pool = database.engine.sync_engine.pool
    release = asyncio.Event()
    entered: list[str] = []

    async def writer(name: str, *, hold: bool = False, fail: bool = False) -> None:
        async with database.write() as connection:
            entered.append(name)
            await connection.execute(sa.insert(tenants).values(name=name, created_at=utcnow()))
            if hold:
                await release.wait()
            if fail:
                raise RuntimeError("this transaction is rolled back")

    try:
        first = asyncio.create_task(writer("first", hold=True))
        while not entered:
            await asyncio.sleep(0.01)
        names = [f"writer {i}" for i in range(10)]
        others = [asyncio.create_task(writer(name, fail=name == "writer 3")) for name in names]
        await asyncio.sleep(0.3)  # every writer has asked by now
        assert entered == ["first"]
        assert pool.checkedout() == 1  # only the writer in its transaction holds a connection
        # A reader does not wait for the writer (WAL), and sees what is committed only.
        async with database.read() as connection:
            assert (await connection.execute(sa.select(sa.func.count()).select_from(tenants))).scalar() == 0
        release.set()
        await first
        results = await asyncio.gather(*others, return_exceptions=True)
        assert [type(r) for r in results] == [RuntimeError if n == "writer 3" else type(None) for n in names]
        assert entered == ["first", *names]
        async with database.read() as connection:
            stored = (await connection.execute(sa.select(tenants.c.name).order_by(tenants.c.id))).scalars()
            assert list(stored) == ["first", *[n for n in names if n != "writer 3"]]
    finally:
        release.set()
        await database.close()


async def test_sqlite_write_turns_follow_the_running_event_loop(tmp_path: Path) -> None:
    """A database used from one event loop, then another (a command's steps), still writes."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}"
    database = await open_database(url)
    await database.close()

    def write_in_a_new_loop(names: list[str]) -> None:
        async def write(name: str) -> None:
            async with database.write() as connection:
                await connection.execute(sa.insert(tenants).values(name=name, created_at=utcnow()))

        async def both() -> None:
            await asyncio.gather(*(write(name) for name in names))  # one waits for its turn
            await database.engine.dispose()

        asyncio.run(both())

    await asyncio.to_thread(write_in_a_new_loop, ["a", "b"])
    await asyncio.to_thread(write_in_a_new_loop, ["c", "d"])
    async with database.read() as connection:
        stored = (await connection.execute(sa.select(tenants.c.name).order_by(tenants.c.id))).scalars()
        assert list(stored) == ["a", "b", "c", "d"]
    await database.close()


async def test_synchronous_transactions_take_turns_with_the_async_writers_on_database_threads(
    tmp_path: Path,
) -> None:
    """On an SQLite file, run_write's functions run on the database threads, in the order they asked among
    the async writers; one that raises is rolled back alone; run_read is not blocked by a writer."""
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}")
    release = asyncio.Event()
    entered: list[tuple[str, str]] = []

    def insert(connection: sa.Connection, name: str, fail: bool = False) -> str:
        entered.append((name, threading.current_thread().name))
        connection.execute(sa.insert(tenants).values(name=name, created_at=utcnow()))
        if fail:
            raise RuntimeError("this transaction is rolled back")
        return name

    async def async_writer(name: str) -> str:
        async with database.write() as connection:
            entered.append((name, threading.current_thread().name))
            await connection.execute(sa.insert(tenants).values(name=name, created_at=utcnow()))
            if name == "first":
                await release.wait()
        return name

    def names(connection: sa.Connection) -> list[str]:
        return list(connection.execute(sa.select(tenants.c.name).order_by(tenants.c.id)).scalars())

    try:
        first = asyncio.create_task(async_writer("first"))
        while not entered:
            await asyncio.sleep(0.01)
        order = ["sync 0", "async 1", "sync 2", "sync 3", "async 4", "sync 5"]
        writers = [
            asyncio.create_task(
                async_writer(name)
                if name.startswith("async")
                else database.run_write(insert, name, name == "sync 3")
            )
            for name in order
        ]
        await asyncio.sleep(0.3)
        assert [name for name, _ in entered] == ["first"]
        assert await database.run_read(names) == []  # not blocked, and sees only what is committed
        release.set()
        results = await asyncio.gather(first, *writers, return_exceptions=True)
        assert [r if isinstance(r, str) else type(r) for r in results] == [
            "first",
            *[RuntimeError if name == "sync 3" else name for name in order],
        ]
        assert [name for name, _ in entered] == ["first", *order]
        main = threading.current_thread().name
        for name, thread in entered:
            assert thread.startswith("sightd-db") if name.startswith("sync") else thread == main
        stored = await database.run_read(names)
        assert stored == ["first", *[name for name in order if name != "sync 3"]]
        async with database.read() as connection:  # the async engine sees the same file
            assert (
                list((await connection.execute(sa.select(tenants.c.name).order_by(tenants.c.id))).scalars())
                == stored
            )
    finally:
        release.set()
        await database.close()


async def test_a_cancelled_synchronous_writer_keeps_its_turn_until_its_transaction_ends(
    tmp_path: Path,
) -> None:
    """A transaction on a database thread cannot be stopped: the caller cancelled meanwhile waits for its end
    (here a commit), and the next writer starts only then, never finding SQLite's write lock taken."""
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}")
    started, release = threading.Event(), threading.Event()
    entered: list[str] = []

    def slow_insert(connection: sa.Connection) -> None:
        connection.execute(sa.insert(tenants).values(name="slow", created_at=utcnow()))
        started.set()
        release.wait(10)

    def insert(connection: sa.Connection, name: str) -> None:
        entered.append(name)
        connection.execute(sa.insert(tenants).values(name=name, created_at=utcnow()))

    try:
        slow = asyncio.create_task(database.run_write(slow_insert))
        assert await asyncio.to_thread(started.wait, 10)
        slow.cancel()
        await asyncio.sleep(0.05)
        assert not slow.done()  # waits for the thread's transaction
        after = asyncio.create_task(database.run_write(insert, "after"))
        await asyncio.sleep(0.2)
        assert entered == []
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await after
        assert entered == ["after"]
        async with database.read() as connection:
            stored = (await connection.execute(sa.select(tenants.c.name).order_by(tenants.c.id))).scalars()
            assert list(stored) == ["slow", "after"]  # the cancelled caller's transaction committed
    finally:
        release.set()
        await database.close()


async def _synchronous_transactions(database: Database) -> None:
    """run_write and run_read answer what the function returns and roll back what raises."""

    def insert(connection: sa.Connection, name: str, *, fail: bool = False) -> int:
        identifier = connection.execute(
            sa.insert(tenants).values(name=name, created_at=utcnow()).returning(tenants.c.id)
        ).scalar_one()
        if fail:
            raise NotFoundError("rolled back")
        return int(identifier)

    def names(connection: sa.Connection) -> list[str]:
        return list(connection.execute(sa.select(tenants.c.name).order_by(tenants.c.id)).scalars())

    if database.is_sqlite:  # the connections' settings, on the database threads too

        def settings(connection: sa.Connection) -> list[Any]:
            pragmas = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            return [connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in pragmas]

        expected = ["memory" if database.url.database in (None, "", ":memory:") else "wal", 1, 1, 30000]
        assert await database.run_read(settings) == expected

    first = await database.run_write(insert, "acme")
    with pytest.raises(NotFoundError):
        await database.run_write(insert, "globex", fail=True)
    assert await database.run_read(names) == ["acme"]
    assert await database.run_write(insert, "initech") > first


async def test_synchronous_transactions_on_sqlite_and_postgresql(database: Database) -> None:
    """On an SQLite file on the database threads, on PostgreSQL through the async engine; both again after
    the database was closed (it connects again)."""
    await _synchronous_transactions(database)
    await database.close()
    async with database.write() as connection:
        await connection.execute(sa.delete(tenants))
    await _synchronous_transactions(database)


async def test_synchronous_transactions_on_in_memory_sqlite() -> None:
    """An in-memory database has no file for a second engine: they run through the async engine."""
    database = await open_database("sqlite+aiosqlite://")
    try:
        await _synchronous_transactions(database)
    finally:
        await database.close()
