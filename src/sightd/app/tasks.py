"""Task life cycle on top of the store: creation, completion with in-process notification, waiting
(``WaitTask``), recovery of pending tasks at start-up and expiry.

The tasks this process created and is running are known without reading the store: until this process finishes
one (or claims it again, ``recover``), it is pending as created. So are the last tasks it finished, as stored,
up to about ``FINISHED_BYTES`` of them (tensor results are not kept): a finished task never changes, and it is
deleted only once past its expiry date, when it is read from the store again. Reading such a task or starting
to wait for it costs no store read. Waiting wakes on an in-process notification when this process finishes the
task, which hands the waiters the task as stored, and otherwise reads the store every ``poll_interval``
seconds: tasks finished by another replica (PostgreSQL) or process are seen that way.

Every pending task is leased to the instance running it (``owner``, docs/storage.md): the board renews its
leases every third of ``lease`` seconds, and takes over the tasks whose lease ran out (their instance
died) every ``lease`` seconds, besides its own left by a previous run at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sightd.app.errors import ServiceError, public_error
from sightd.store import tasks as task_store
from sightd.store.database import Database, utcnow
from sightd.store.tasks import PendingTask, TaskRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

# About how much memory the tasks this process finished and keeps as stored may take (a finished task never
# changes); one alone may take a sixteenth of it at most.
FINISHED_BYTES = 16 << 20

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


def _footprint(record: TaskRecord) -> int | None:
    """About how many bytes a finished task takes in memory, with its document as Python objects (about 1 KB
    per prediction); None for a network inference's tensors, which may take megabytes."""
    if record.kind == "network_inference" and record.data is not None:
        return None
    size = 1024
    outputs = record.data.get("outputs") if record.data is not None else None
    for output in outputs if isinstance(outputs, list) else ():
        labels = output.get("labels") if isinstance(output, dict) else None
        if isinstance(labels, dict):
            size += 1024 * sum(len(labels.get(kind) or ()) for kind in ("predicted", "discarded"))
    if record.error is not None:
        size += 512 * len(record.error.get("field_violations") or ())
    return size


class _Waiter:
    """One ``TaskBoard.wait`` call: woken when this process finishes the task, with the finished task
    when the notification carries it."""

    __slots__ = ("event", "record")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.record: TaskRecord | None = None


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
        self._waiters: dict[int, set[_Waiter]] = {}
        # The tasks created here and not finished here yet, as created (pending).
        self._running: dict[int, TaskRecord] = {}
        # The last tasks finished here, as stored, with their footprints (_footprint), the oldest first.
        self._finished: OrderedDict[int, tuple[TaskRecord, int]] = OrderedDict()
        self._finished_bytes = 0

    async def create(self, tenant_id: int, kind: str, request: bytes | None = None) -> TaskRecord:
        """A pending task, leased to this instance (which must run it, or leave it to a restart)."""
        record = await self.database.run_write(
            task_store.create_task, tenant_id, kind, request, owner=self.owner, lease=self.lease
        )
        self._running[record.id] = record
        return record

    async def complete(self, task_id: int, data: Mapping[str, Any] | None) -> bool:
        """Marks the task successful; False when it was done already."""
        return await self._finish(
            task_id, lambda connection: task_store.complete_task(connection, task_id, data, ttl=self.ttl)
        )

    async def fail(self, task_id: int, error: BaseException) -> bool:
        """Marks the task failed with what ``public_error`` lets the caller know of ``error``; False when it
        was done already."""
        document = error_document(public_error(error, context=f"task {task_id}"))
        return await self._finish(
            task_id, lambda connection: task_store.fail_task(connection, task_id, document, ttl=self.ttl)
        )

    async def _finish(self, task_id: int, record_outcome: Callable[[Connection], TaskRecord | None]) -> bool:
        """Records the task's outcome (``record_outcome``, in a write transaction: the task as stored, None
        when it was done already), keeps the task and wakes its waiters."""
        try:
            record = await self.database.run_write(record_outcome)
        finally:
            self._running.pop(task_id, None)
        if record is not None:
            self._keep(record)
        self._notify(task_id, record)
        return record is not None

    def _keep(self, record: TaskRecord) -> None:
        """Keeps a task this process finished, dropping the oldest kept past ``FINISHED_BYTES``."""
        footprint = _footprint(record)
        if footprint is None or footprint > FINISHED_BYTES // 16:
            return
        self._finished[record.id] = (record, footprint)
        self._finished_bytes += footprint
        while self._finished_bytes > FINISHED_BYTES:
            _, (_, dropped) = self._finished.popitem(last=False)
            self._finished_bytes -= dropped

    def _notify(self, task_id: int, record: TaskRecord | None = None) -> None:
        """Wakes the task's waiters, handing them ``record`` (the task as this process finished it; None:
        they read the store again)."""
        for waiter in self._waiters.get(task_id, ()):
            waiter.record = record
            waiter.event.set()

    async def get(self, tenant_id: int, task_id: str) -> TaskRecord:
        parsed = task_store.parse_task_id(task_id)
        known = self._known(tenant_id, parsed)
        if known is not None:
            return known
        return await self.database.run_read(task_store.get_task, tenant_id, parsed)

    def _known(self, tenant_id: int, task_id: int) -> TaskRecord | None:
        """The tenant's task as this process knows it without reading the store: running here (as created),
        or finished here and kept, before its expiry date; else None."""
        record = self._running.get(task_id)
        if record is None:
            kept = self._finished.get(task_id)
            if kept is None:
                return None
            record, footprint = kept
            if record.expires_at is not None and record.expires_at <= utcnow():
                del self._finished[task_id]  # may be deleted by now: the store says
                self._finished_bytes -= footprint
                return None
        return record if record.tenant_id == tenant_id else None

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
        waiter = _Waiter()
        self._waiters.setdefault(parsed, set()).add(waiter)
        try:
            first = True
            while True:
                # Registered before looking, so a completion between the look and the wait is not missed.
                # The first look takes a task this process knows as it is; the polls read the store, where a
                # task taken over by another instance (its lease ran out here) is seen done.
                waiter.event.clear()
                record = self._known(tenant_id, parsed) if first else None
                first = False
                if record is None:
                    record = await self.database.run_read(task_store.get_task, tenant_id, parsed)
                remaining = deadline - time.monotonic()
                if record.done or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), min(self.poll_interval, remaining))
                finished = waiter.record
                # The task was found in this tenant above: the finished task is the same one.
                if finished is not None and finished.tenant_id == tenant_id:
                    return finished
        finally:
            waiters = self._waiters.get(parsed)
            if waiters is not None:
                waiters.discard(waiter)
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
            # Claimed again (their attempts counted) or failed: what this process knew of them is old.
            for pending in batch:
                self._running.pop(pending.record.id, None)
            for task_id in failed:
                self._running.pop(task_id, None)
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
