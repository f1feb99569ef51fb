"""Task life cycle on top of the store: creation, completion with in-process notification, waiting
(``WaitTask``), recovery of pending tasks at start-up and expiry.

Waiting wakes on an in-process notification when this process finishes the task, and otherwise reads the
store every ``poll_interval`` seconds: tasks finished by another replica (PostgreSQL) or process are seen
that way.

Every pending task is leased to the instance running it (``owner``, docs/storage.md): the board renews its
leases every third of ``lease`` seconds, and takes over the tasks whose lease ran out (their instance
died) every ``lease`` seconds, besides its own left by a previous run at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sightd.app.errors import ServiceError, public_error
from sightd.store import tasks as task_store
from sightd.store.database import Database
from sightd.store.tasks import PendingTask, TaskRecord

log = logging.getLogger(__name__)

# google.rpc.Code numbers of ServiceError.code names.
_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


def error_document(error: ServiceError) -> dict[str, Any]:
    """How a failed task stores its error (the fields of ``sightd.v1.Error``)."""
    return {
        "code": _CODES[error.code],
        "message": error.message,
        "reason": error.reason,
        "field_violations": [{"field": v.field, "description": v.description} for v in error.violations],
    }


@dataclass(frozen=True)
class RecoveryReport:
    """What start-up did with the tasks left pending by the previous run."""

    resumed: int
    abandoned: int


class TaskBoard:
    """Tasks of this process: every completion goes through it so that waiters wake at once."""

    def __init__(
        self,
        database: Database,
        *,
        ttl: float,
        poll_interval: float = 0.5,
        max_wait: float = 600.0,
        owner: str = "sightd",
        lease: float = 60.0,
    ):
        self.database = database
        self.ttl = ttl
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.owner = owner
        self.lease = lease
        self._waiters: dict[int, set[asyncio.Event]] = {}

    async def create(self, tenant_id: int, kind: str, request: bytes | None = None) -> TaskRecord:
        """A pending task, leased to this instance (which must run it, or leave it to a restart)."""
        async with self.database.write() as connection:
            return await task_store.create_task(
                connection, tenant_id, kind, request, owner=self.owner, lease=self.lease
            )

    async def complete(self, task_id: int, data: Mapping[str, Any] | None) -> bool:
        async with self.database.write() as connection:
            changed = await task_store.complete_task(connection, task_id, data, ttl=self.ttl)
        self._notify(task_id)
        return changed

    async def fail(self, task_id: int, error: BaseException) -> bool:
        """Marks the task failed with what ``public_error`` lets the caller know of ``error``."""
        document = error_document(public_error(error, context=f"task {task_id}"))
        async with self.database.write() as connection:
            changed = await task_store.fail_task(connection, task_id, document, ttl=self.ttl)
        self._notify(task_id)
        return changed

    def _notify(self, task_id: int) -> None:
        for event in self._waiters.get(task_id, ()):
            event.set()

    async def get(self, tenant_id: int, task_id: str) -> TaskRecord:
        async with self.database.read() as connection:
            return await task_store.get_task(connection, tenant_id, task_store.parse_task_id(task_id))

    async def list(
        self, tenant_id: int, task_ids: Sequence[str], *, offset: int = 0, limit: int = 0
    ) -> tuple[int, list[TaskRecord]]:
        ids = [int(value) for value in task_ids if value.isdigit() and value.isascii() and len(value) <= 18]
        async with self.database.read() as connection:
            return await task_store.list_tasks(connection, tenant_id, ids, offset=offset, limit=limit)

    async def wait(self, tenant_id: int, task_id: str, timeout: float | None = None) -> TaskRecord:
        """The task once done, or as it is when ``timeout`` (capped at ``max_wait``) runs out."""
        parsed = task_store.parse_task_id(task_id)
        budget = self.max_wait if timeout is None or timeout <= 0 else min(timeout, self.max_wait)
        deadline = time.monotonic() + budget
        event = asyncio.Event()
        self._waiters.setdefault(parsed, set()).add(event)
        try:
            while True:
                # Registered before reading, so a completion between the read and the wait is not missed.
                event.clear()
                async with self.database.read() as connection:
                    record = await task_store.get_task(connection, tenant_id, parsed)
                remaining = deadline - time.monotonic()
                if record.done or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(self.poll_interval, remaining))
        finally:
            waiters = self._waiters.get(parsed)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[parsed]

    async def recover(
        self, run: Callable[[PendingTask], Awaitable[None]], *, max_attempts: int, reclaim_own: bool = True
    ) -> RecoveryReport:
        """Hands every pending task that no live instance holds to ``run`` (which must complete or fail it,
        or hand it to something that will), in id order: those whose lease ran out and, with
        ``reclaim_own`` (at start-up), those the previous run of this instance left. Tasks interrupted
        ``max_attempts`` times are failed instead."""
        resumed = abandoned = 0
        after_id = 0
        while True:
            async with self.database.write() as connection:
                batch, failed = await task_store.claim_pending(
                    connection,
                    owner=self.owner,
                    lease=self.lease,
                    max_attempts=max_attempts,
                    ttl=self.ttl,
                    reclaim_own=reclaim_own,
                    after_id=after_id,
                )
            for task_id in failed:
                self._notify(task_id)
            abandoned += len(failed)
            if not batch and not failed:
                break
            after_id = max([pending.record.id for pending in batch] + failed)
            for pending in batch:
                await run(pending)
                resumed += 1
        if resumed or abandoned:
            log.info("pending tasks recovered", extra={"resumed": resumed, "abandoned": abandoned})
        return RecoveryReport(resumed, abandoned)

    async def renew_leases(self) -> int:
        async with self.database.write() as connection:
            return await task_store.renew_leases(connection, self.owner, self.lease)

    async def keep_leases_forever(
        self, run: Callable[[PendingTask], Awaitable[None]], *, max_attempts: int
    ) -> None:
        """Until cancelled: renews this instance's leases every third of the lease, and takes over the
        tasks of dead instances (lease run out) every lease."""
        period = self.lease / 3
        loops = 0
        while True:
            await asyncio.sleep(period)
            loops += 1
            try:
                await self.renew_leases()
                if loops % 3 == 0:
                    await self.recover(run, max_attempts=max_attempts, reclaim_own=False)
            except Exception:
                log.exception("task lease upkeep failed")

    async def expire(self) -> int:
        async with self.database.write() as connection:
            return await task_store.expire_tasks(connection)

    async def expire_forever(self, interval: float = 60.0) -> None:
        """Deletes expired tasks every ``interval`` seconds until cancelled."""
        while True:
            try:
                removed = await self.expire()
                if removed:
                    log.info("expired tasks deleted", extra={"count": removed})
            except Exception:
                log.exception("task expiry failed")
            await asyncio.sleep(interval)
