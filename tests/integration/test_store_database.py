"""The store's transactions: on SQLite, this process's writers take turns in the order they asked, holding
no connection while they wait, and readers never wait for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from sightd.store.database import open_database, utcnow
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
