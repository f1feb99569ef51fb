"""Tasks: v0.7's asynchronous results, persisted so that a restart loses none.

A task is ``pending`` until it reaches ``success`` (with data) or ``error`` (with an error object), and
never changes after that; these are the only states (v0.7 clients treat any other as finished). While
pending it keeps the serialized request, so that it can run again (:func:`claim_pending`); once done the
request is dropped and an expiry date is set.

A pending task has an ``owner``, the instance running it, and a lease that this instance renews while it
is alive (:func:`renew_leases`). A task whose lease ran out (its instance died) is claimed by another
instance, or by the same one when it restarts (:func:`claim_pending`); on PostgreSQL the claim locks the
rows with ``FOR UPDATE SKIP LOCKED``, so two replicas claiming at once never take the same task.

The steps of a task's life on the request path (:func:`create_task`, :func:`get_task`, :func:`complete_task`,
:func:`fail_task`) are synchronous functions of a connection, which ``Database.run_write`` and ``run_read``
run in one hop to a database thread on SQLite (``AsyncConnection.run_sync`` runs them in an async
transaction). The others are coroutines on an async connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sightd.app.errors import BadRequestError, NotFoundError, quoted
from sightd.store import scoping
from sightd.store.database import aware, utcnow
from sightd.store.schema import tasks

PENDING, SUCCESS, ERROR = "pending", "success", "error"
KINDS = ("recognition", "network_inference", "network_creation")
# Most task ids one ListTasks may name: each is a bound parameter, and PostgreSQL takes 32767 at most.
MAX_TASK_IDS = 10_000


@dataclass(frozen=True)
class TaskRecord:
    """A stored task (without its request)."""

    id: int
    tenant_id: int
    kind: str
    status: str
    data: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime | None

    @property
    def done(self) -> bool:
        return self.status != PENDING


_COLUMNS = [column for column in tasks.c if column.name != "request"]

# The statements of a task's life on the request path, built once with bound parameters: SQLAlchemy then
# reuses their cache key and compiled form. Measured in a tight loop on SQLite (6 interleaved rounds of 150
# tasks), a creation, its outcome and a read took 4.3 to 4.9 ms of CPU, against 4.7 to 5.5 ms when the
# statements were built on each call.
_CREATE = (
    sa.insert(tasks)
    .values(
        tenant_id=sa.bindparam("tenant_id"),
        kind=sa.bindparam("kind"),
        status=PENDING,
        request=sa.bindparam("request"),
        created_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
        owner=sa.bindparam("owner"),
        lease_expires_at=sa.bindparam("lease_expires_at"),
    )
    .returning(*_COLUMNS)
)
_GET = sa.select(*_COLUMNS).where(
    tasks.c.id == sa.bindparam("task_id"), tasks.c.tenant_id == sa.bindparam("tenant_id")
)


def _finishing(status: str, outcome: str) -> sa.Update:
    """Finishes a pending task with ``status`` and its ``outcome`` (the data or error column), dropping the
    request and the lease; answers the task as stored."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == sa.bindparam("task_id"), tasks.c.status == PENDING)
        .values(
            {
                tasks.c.status: status,
                tasks.c[outcome]: sa.bindparam("outcome"),
                tasks.c.request: None,
                tasks.c.updated_at: sa.bindparam("now"),
                tasks.c.expires_at: sa.bindparam("expires_at"),
                tasks.c.owner: None,
                tasks.c.lease_expires_at: None,
            }
        )
        .returning(*_COLUMNS)
    )


_COMPLETE = _finishing(SUCCESS, "data")
_FAIL = _finishing(ERROR, "error")


def _record(row: Any) -> TaskRecord:
    return TaskRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        status=row.status,
        data=row.data,
        error=row.error,
        attempts=row.attempts,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        expires_at=aware(row.expires_at) if row.expires_at is not None else None,
    )


def parse_task_id(value: str) -> int:
    """Task ids are decimal digits; anything else names no task."""
    if not (value.isdigit() and value.isascii()) or len(value) > 18:
        raise NotFoundError(f"task {quoted(value)} not found", metadata={"task_id": value[:64]})
    return int(value)


def create_task(
    connection: sa.Connection,
    tenant_id: int,
    kind: str,
    request: bytes | None = None,
    *,
    owner: str | None = None,
    lease: float = 0.0,
) -> TaskRecord:
    """A new pending task holding the request needed to run it (again, after a restart), leased to
    ``owner`` for ``lease`` seconds when given (the instance that runs it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}")
    now = utcnow()
    inserted = connection.execute(
        _CREATE,
        {
            "tenant_id": tenant_id,
            "kind": kind,
            "request": request,
            "now": now,
            "owner": owner,
            "lease_expires_at": now + dt.timedelta(seconds=lease) if owner is not None else None,
        },
    )
    return _record(inserted.one())


def get_task(connection: sa.Connection, tenant_id: int, task_id: int) -> TaskRecord:
    row = connection.execute(_GET, {"task_id": task_id, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFoundError(f"task {task_id} not found", metadata={"task_id": str(task_id)})
    return _record(row)


async def list_tasks(
    connection: AsyncConnection, tenant_id: int, task_ids: Sequence[int], *, offset: int = 0, limit: int = 0
) -> tuple[int, list[TaskRecord]]:
    """The tenant's tasks among ``task_ids``, in id order (unknown ids are left out; none: empty page)."""
    offset, limit = scoping.page(offset, limit)
    if len(task_ids) > MAX_TASK_IDS:
        raise BadRequestError.of("task_ids", f"at most {MAX_TASK_IDS} task ids per call")
    if not task_ids:
        return 0, []
    condition = sa.and_(tasks.c.tenant_id == tenant_id, tasks.c.id.in_(sorted(set(task_ids))))
    total = await scoping.count_where(connection, tasks, condition)
    rows = await connection.execute(
        sa.select(*_COLUMNS).where(condition).order_by(tasks.c.id).offset(offset).limit(limit)
    )
    return total, [_record(row) for row in rows]


async def get_request(connection: AsyncConnection, task_id: int) -> bytes | None:
    """The serialized request of a pending task (None once done)."""
    value = await connection.scalar(sa.select(tasks.c.request).where(tasks.c.id == task_id))
    return bytes(value) if value is not None else None


def _finish(
    connection: sa.Connection, statement: sa.Update, task_id: int, ttl: float, outcome: Mapping[str, Any]
) -> TaskRecord | None:
    now = utcnow()
    parameters = {
        "task_id": task_id,
        "outcome": dict(outcome),
        "now": now,
        "expires_at": now + dt.timedelta(seconds=ttl),
    }
    row = connection.execute(statement, parameters).first()
    return None if row is None else _record(row)


def complete_task(
    connection: sa.Connection, task_id: int, data: Mapping[str, Any] | None, *, ttl: float
) -> TaskRecord | None:
    """Marks a pending task successful with its data and answers it as stored; None when it was done
    already (a finished task never changes, so a task run twice after a restart keeps its first outcome)."""
    return _finish(connection, _COMPLETE, task_id, ttl, data or {})


def fail_task(
    connection: sa.Connection, task_id: int, error: Mapping[str, Any], *, ttl: float
) -> TaskRecord | None:
    """Marks a pending task failed (``error`` holds code, message, reason and field_violations) and
    answers it as stored; None when it was done already."""
    return _finish(connection, _FAIL, task_id, ttl, error)


@dataclass(frozen=True)
class PendingTask:
    """A pending task to run again at start-up."""

    record: TaskRecord
    request: bytes | None


async def claim_pending(
    connection: AsyncConnection,
    *,
    owner: str,
    lease: float,
    max_attempts: int,
    ttl: float,
    reclaim_own: bool = False,
    batch: int = 500,
    after_id: int = 0,
) -> tuple[list[PendingTask], list[int]]:
    """Claims, for ``owner``, the pending tasks with ids above ``after_id`` (``batch`` at most, id order)
    that no live instance holds: no lease, a lease that ran out, or (``reclaim_own``, at start-up) a lease
    of ``owner`` itself, which the previous run of this instance left. Each claim counts an attempt; tasks
    that used up ``max_attempts`` (interrupted that many times, by crashes for instance) are failed
    instead, so that one poisonous request cannot crash every start-up. Returns (tasks to run, ids
    failed)."""
    now = utcnow()
    claimable = sa.or_(tasks.c.lease_expires_at.is_(None), tasks.c.lease_expires_at < now)
    if reclaim_own:
        claimable = sa.or_(claimable, tasks.c.owner == owner)
    rows = (
        await connection.execute(
            sa.select(*_COLUMNS, tasks.c.request)
            .where(tasks.c.status == PENDING, tasks.c.id > after_id, claimable)
            .order_by(tasks.c.id)
            .limit(batch)
            # PostgreSQL: rows another replica is claiming right now are skipped, not claimed twice
            # (SQLite serialises write transactions and ignores the clause).
            .with_for_update(skip_locked=True)
        )
    ).all()
    to_run: list[PendingTask] = []
    failed: list[int] = []
    for row in rows:
        if row.attempts >= max_attempts:
            await connection.run_sync(
                fail_task,
                row.id,
                {
                    "code": 13,
                    "message": f"the task was interrupted {row.attempts} times and is abandoned",
                    "reason": "TASK_ABANDONED",
                    "field_violations": [],
                },
                ttl=ttl,
            )
            failed.append(row.id)
            continue
        await connection.execute(
            sa.update(tasks)
            .where(tasks.c.id == row.id)
            .values(
                attempts=row.attempts + 1, owner=owner, lease_expires_at=now + dt.timedelta(seconds=lease)
            )
        )
        record = _record(row)
        to_run.append(
            PendingTask(
                TaskRecord(**{**record.__dict__, "attempts": row.attempts + 1}),
                bytes(row.request) if row.request is not None else None,
            )
        )
    return to_run, failed


async def renew_leases(connection: AsyncConnection, owner: str, lease: float) -> int:
    """Extends the leases of the pending tasks ``owner`` holds; returns how many."""
    result = await connection.execute(
        sa.update(tasks)
        .where(tasks.c.owner == owner, tasks.c.status == PENDING)
        .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease))
    )
    return int(result.rowcount)


async def expire_tasks(connection: AsyncConnection, now: dt.datetime | None = None) -> int:
    """Deletes the finished tasks whose expiry date has passed; returns how many."""
    result = await connection.execute(sa.delete(tasks).where(tasks.c.expires_at <= (now or utcnow())))
    return int(result.rowcount)
