"""What a task's store transactions cost on the embedded store (SQLite), side by side:

- **board**: sightd's ``TaskBoard`` on its ``Database`` (on SQLite, each transaction one call to a database
  thread, SQLAlchemy Core over the sqlite3 module there): a task's creation with its request, its outcome (a
  top-5 document) and a read by an instance that did not run it;
- **aiosqlite**: the same three transactions' SQL through aiosqlite alone (BEGIN, the statement with
  RETURNING, COMMIT), on a table of the same columns: the async driver's own cost;
- **sqlite3**: the same through the standard sqlite3 module on the calling thread: SQLite's own work.

Each variant has its own database file in WAL mode with ``synchronous=NORMAL``, as sightd's. Rounds
alternate between the variants. Prints the machine, the versions, a table with the median CPU and wall µs
per transaction and the ratios to sqlite3, then one JSON line. docs/benchmarks.md ("The task paths")
records a run.

Usage: python bench/task_store.py [--rounds N] [--tasks N] [--request-bytes N]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import sqlalchemy

from host import cpu_model
from postprocess_peers import machine
from sightd import __version__
from sightd.app.tasks import TaskBoard
from sightd.store import keys
from sightd.store.database import Database, open_database

OPERATIONS = ("create", "outcome", "read")
DOCUMENT = {
    "outputs": [
        {
            "labels": {
                "predicted": [
                    {"label_id": i, "label_name": f"label {i}", "score": 0.9 - 0.1 * i, "threshold": 0.0}
                    for i in range(5)
                ],
                "discarded": [],
            }
        }
    ]
}
TABLE = """CREATE TABLE tasks (
    id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    request BLOB, data TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, expires_at TEXT, owner TEXT, lease_expires_at TEXT)"""
COLUMNS = "id, tenant_id, kind, status, data, error, attempts, created_at, updated_at, expires_at"
INSERT = (
    "INSERT INTO tasks (tenant_id, kind, status, request, created_at, updated_at, owner, lease_expires_at) "
    f"VALUES (?, 'recognition', 'pending', ?, ?, ?, 'bench', ?) RETURNING {COLUMNS}"
)
FINISH = (
    "UPDATE tasks SET status = 'success', data = ?, request = NULL, updated_at = ?, expires_at = ?, "
    f"owner = NULL, lease_expires_at = NULL WHERE id = ? AND status = 'pending' RETURNING {COLUMNS}"
)
SELECT = f"SELECT {COLUMNS} FROM tasks WHERE id = ? AND tenant_id = ?"
# (create, outcome, read) of one task, each one transaction; the task's id comes from the first.
Step = Callable[[int], Awaitable[None]]
Transactions = tuple[Callable[[], Awaitable[int]], Step, Step]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


async def board_variant(folder: Path, request: bytes) -> tuple[Transactions, Callable[[], Awaitable[None]]]:
    database: Database = await open_database(f"sqlite+aiosqlite:///{folder / 'board.db'}")
    async with database.write() as connection:
        tenant = await keys.ensure_tenant(connection, "bench")
    board = TaskBoard(database, ttl=3600, owner="bench")

    async def create() -> int:
        return (await board.create(tenant, "recognition", request)).id

    async def outcome(task_id: int) -> None:
        assert await board.complete(task_id, DOCUMENT)

    async def read(task_id: int) -> None:
        # A board that did not run the task reads it from the store (this process's own knows it already).
        assert (await TaskBoard(database, ttl=3600).get(tenant, str(task_id))).done

    return (create, outcome, read), database.close


async def aiosqlite_variant(
    folder: Path, request: bytes
) -> tuple[Transactions, Callable[[], Awaitable[None]]]:
    connection = await aiosqlite.connect(folder / "aiosqlite.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
        await connection.execute(f"PRAGMA {pragma}")
    await connection.execute(TABLE)

    async def transaction(begin: str, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        await connection.execute(begin)
        async with connection.execute(sql, parameters) as cursor:
            rows = list(await cursor.fetchall())
        await connection.execute("COMMIT")
        return rows

    async def create() -> int:
        now = _now()
        rows = await transaction("BEGIN IMMEDIATE", INSERT, (1, request, now, now, now))
        return int(rows[0][0])

    async def outcome(task_id: int) -> None:
        now = _now()
        assert await transaction("BEGIN IMMEDIATE", FINISH, (json.dumps(DOCUMENT), now, now, task_id))

    async def read(task_id: int) -> None:
        rows = await transaction("BEGIN", SELECT, (task_id, 1))
        assert json.loads(rows[0][4]) == DOCUMENT

    return (create, outcome, read), connection.close


async def sqlite3_variant(folder: Path, request: bytes) -> tuple[Transactions, Callable[[], Awaitable[None]]]:
    connection = sqlite3.connect(folder / "sqlite3.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute(TABLE)

    def transaction(begin: str, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        connection.execute(begin)
        rows = connection.execute(sql, parameters).fetchall()
        connection.execute("COMMIT")
        return rows

    async def create() -> int:
        now = _now()
        return int(transaction("BEGIN IMMEDIATE", INSERT, (1, request, now, now, now))[0][0])

    async def outcome(task_id: int) -> None:
        now = _now()
        assert transaction("BEGIN IMMEDIATE", FINISH, (json.dumps(DOCUMENT), now, now, task_id))

    async def read(task_id: int) -> None:
        assert json.loads(transaction("BEGIN", SELECT, (task_id, 1))[0][4]) == DOCUMENT

    async def close() -> None:
        connection.close()

    return (create, outcome, read), close


VARIANTS = {"board": board_variant, "aiosqlite": aiosqlite_variant, "sqlite3": sqlite3_variant}


async def one_round(transactions: Transactions, tasks: int) -> dict[str, tuple[float, float]]:
    """Per operation, (CPU µs, wall µs) per transaction: ``tasks`` creations, their outcomes, then reads."""
    create, outcome, read = transactions
    ids: list[int] = []
    spent: dict[str, tuple[float, float]] = {}
    for name, run in (("create", None), ("outcome", outcome), ("read", read)):
        cpu, wall = time.process_time(), time.perf_counter()
        if run is None:
            ids = [await create() for _ in range(tasks)]
        else:
            for task_id in ids:
                await run(task_id)
        spent[name] = ((time.process_time() - cpu) / tasks * 1e6, (time.perf_counter() - wall) / tasks * 1e6)
    return spent


async def run(args: argparse.Namespace) -> dict[str, Any]:
    request = os.urandom(args.request_bytes)
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {op: [] for op in OPERATIONS} for name in VARIANTS
    }
    with tempfile.TemporaryDirectory() as folder:
        opened = {name: await make(Path(folder), request) for name, make in VARIANTS.items()}
        try:
            for transactions, _ in opened.values():  # warm-up: connections, caches, compiled statements
                await one_round(transactions, 5)
            for index in range(args.rounds):
                names = list(VARIANTS)
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    for op, spent in (await one_round(opened[name][0], args.tasks)).items():
                        samples[name][op].append(spent)
        finally:
            for _, close in opened.values():
                await close()
    results = []
    for name, ops in samples.items():
        for op, rounds in ops.items():
            cpu = statistics.median(s[0] for s in rounds)
            wall = statistics.median(s[1] for s in rounds)
            base = statistics.median(s[0] for s in samples["sqlite3"][op])
            results.append(
                {
                    "variant": name,
                    "operation": op,
                    "cpu_us": round(cpu, 1),
                    "wall_us": round(wall, 1),
                    "cpu_over_sqlite3": round(cpu / base, 2),
                }
            )
    return {
        "bench": "task_store",
        "machine": machine(),
        "versions": {
            "sightd": __version__,
            "sqlite": sqlite3.sqlite_version,
            "sqlalchemy": sqlalchemy.__version__,
            "aiosqlite": aiosqlite.__version__,
        },
        "rounds": args.rounds,
        "tasks": args.tasks,
        "request_bytes": args.request_bytes,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=150, help="tasks per variant and round")
    parser.add_argument("--request-bytes", type=int, default=163_759, help="a stored request (dog.jpg)")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    versions = report["versions"]
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(
        f"python {platform.python_version()}, sightd {versions['sightd']}, SQLite {versions['sqlite']}, "
        f"SQLAlchemy {versions['sqlalchemy']}, aiosqlite {versions['aiosqlite']}"
    )
    print(f"{report['rounds']} rounds of {report['tasks']} tasks of {report['request_bytes']} request bytes")
    print(f"{'variant':12s}{'operation':>10s}{'CPU us':>10s}{'wall us':>10s}{'x sqlite3':>11s}")
    for row in report["results"]:
        print(f"{row['variant']:12s}{row['operation']:>10s}{row['cpu_us']:10.1f}{row['wall_us']:10.1f}"
              f"{row['cpu_over_sqlite3']:11.2f}")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
