"""Tasks: the three v0.7 states, one outcome only, waiting, recovery after a restart, expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from sightd.app import tasks as tasks_module
from sightd.app.errors import BadRequestError, FieldViolation, NotFoundError
from sightd.app.tasks import TaskBoard
from sightd.store import keys
from sightd.store import tasks as task_store
from sightd.store.database import Database, open_database
from sightd.store.tasks import PendingTask


async def _tenant(database: Database, name: str = "acme") -> int:
    async with database.write() as connection:
        return await keys.ensure_tenant(connection, name)


async def test_task_reaches_one_outcome_and_keeps_it(database: Database) -> None:
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=3600)
    task = await board.create(tenant, "recognition", b"request bytes")
    assert (task.status, task.attempts, task.expires_at) == ("pending", 0, None)
    async with database.read() as connection:
        assert await task_store.get_request(connection, task.id) == b"request bytes"
    assert await board.complete(task.id, {"outputs": []})
    assert not await board.fail(task.id, BadRequestError("too late"))
    done = await board.get(tenant, str(task.id))
    assert (done.status, done.data, done.error) == ("success", {"outputs": []}, None)
    assert done.expires_at is not None
    assert done.expires_at - done.updated_at == dt.timedelta(seconds=3600)
    async with database.read() as connection:
        assert await task_store.get_request(connection, task.id) is None


async def test_failed_task_keeps_code_message_and_fields(database: Database) -> None:
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=60)
    task = await board.create(tenant, "recognition")
    error = BadRequestError(
        "bad image", reason="INVALID_IMAGE", violations=[FieldViolation("inputs[0]", "corrupt")]
    )
    await board.fail(task.id, error)
    failed = await board.get(tenant, str(task.id))
    assert failed.status == "error"
    assert failed.data is None
    assert failed.error == {
        "code": 3,
        "message": "bad image",
        "reason": "INVALID_IMAGE",
        "field_violations": [{"field": "inputs[0]", "description": "corrupt"}],
    }


async def test_tasks_are_private_to_their_tenant(database: Database) -> None:
    acme, globex = await _tenant(database), await _tenant(database, "globex")
    board = TaskBoard(database, ttl=60)
    task = await board.create(acme, "recognition")
    with pytest.raises(NotFoundError):
        await board.get(globex, str(task.id))
    with pytest.raises(NotFoundError):
        await board.get(acme, "not-a-number")
    assert await board.list(globex, [str(task.id)]) == (0, [])
    count, listed = await board.list(acme, [str(task.id), "999999", "junk"])
    assert (count, [t.id for t in listed]) == (1, [task.id])
    assert await board.list(acme, []) == (0, [])


async def test_wait_returns_as_soon_as_the_task_completes(database: Database) -> None:
    tenant = await _tenant(database)
    # A long poll interval: only the in-process notification can end the wait early.
    board = TaskBoard(database, ttl=60, poll_interval=30, max_wait=30)
    task = await board.create(tenant, "recognition")
    waiter = asyncio.create_task(board.wait(tenant, str(task.id)))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await board.complete(task.id, {"outputs": []})
    done = await asyncio.wait_for(waiter, 10)
    assert done.status == "success"


class _ReadCounter:
    """Counts the database's read transactions from now on (``read`` and ``run_read``)."""

    def __init__(self, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        read, run_read = database.read, database.run_read

        def counted_read() -> Any:
            self.count += 1
            return read()

        def counted_run_read(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return run_read(*args, **kwargs)

        monkeypatch.setattr(database, "read", counted_read)
        monkeypatch.setattr(database, "run_read", counted_run_read)


@pytest.mark.parametrize("outcome", ["success", "error"])
async def test_a_task_running_or_finished_here_is_read_without_the_store_until_its_expiry(
    database: Database, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    tenant, other = await _tenant(database), await _tenant(database, "globex")
    board = TaskBoard(database, ttl=0.5, poll_interval=30, max_wait=30)
    task = await board.create(tenant, "recognition")
    reads = _ReadCounter(database, monkeypatch)
    assert await board.get(tenant, str(task.id)) == task  # pending, as created
    waiter = asyncio.create_task(board.wait(tenant, str(task.id)))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    assert reads.count == 0
    with pytest.raises(NotFoundError):  # another tenant's look goes to the store, which hides it
        await board.get(other, str(task.id))
    assert reads.count == 1
    if outcome == "success":
        assert await board.complete(task.id, {"outputs": [{"labels": {"predicted": [], "discarded": []}}]})
    else:
        assert await board.fail(task.id, BadRequestError.of("inputs[0]", "is not an image"))
    done = await asyncio.wait_for(waiter, 10)
    assert await board.get(tenant, str(task.id)) == done
    assert await board.wait(tenant, str(task.id)) == done
    assert reads.count == 1  # the completion handed the finished task over, and it is kept
    with pytest.raises(NotFoundError):
        await board.get(other, str(task.id))
    assert reads.count == 2
    assert done.expires_at is not None
    await asyncio.sleep((done.expires_at - dt.datetime.now(dt.UTC)).total_seconds() + 0.05)
    assert await board.get(tenant, str(task.id)) == done  # past its expiry: read, still stored
    assert reads.count == 3
    monkeypatch.undo()
    async with database.read() as connection:  # as stored, timestamps included
        assert done == await connection.run_sync(task_store.get_task, tenant, task.id)
    assert (done.status, done.id, done.created_at) == (outcome, task.id, task.created_at)
    async with database.write() as connection:
        assert await task_store.expire_tasks(connection) == 1
    with pytest.raises(NotFoundError):
        await board.get(tenant, str(task.id))


def _labels(count: int) -> dict[str, Any]:
    predicted = [{"label_id": i, "label_name": f"l{i}", "score": 0.5, "threshold": 0.1} for i in range(count)]
    return {"outputs": [{"labels": {"predicted": predicted, "discarded": []}}]}


async def test_the_finished_tasks_kept_here_stay_within_their_memory_budget(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks_module, "FINISHED_BYTES", 64 << 10)  # a task may take 4 KB: 3 predictions
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=60)
    small = [await board.create(tenant, "recognition") for _ in range(30)]
    for task in small:
        await board.complete(task.id, _labels(2))  # about 3 KB each: the last 21 fit in 64 KB
    large = await board.create(tenant, "recognition")
    await board.complete(large.id, _labels(10))
    tensors = await board.create(tenant, "network_inference")
    await board.complete(tensors.id, {"outputs": [{"tensor": {"name": "prob", "data": [0.5] * 4}}]})
    reads = _ReadCounter(database, monkeypatch)
    looked_up = []
    for task in [*small, large, tensors]:
        before = reads.count
        done = await board.get(tenant, str(task.id))
        assert done.status == "success"
        looked_up.append(reads.count - before)
    assert looked_up == [1] * 9 + [0] * 21 + [1, 1]


async def test_wait_sees_a_completion_by_another_process_by_polling(
    database: Database, database_url: str
) -> None:
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=60, poll_interval=0.05, max_wait=30)
    task = await board.create(tenant, "recognition")
    other_replica = await open_database(database_url)
    try:
        waiter = asyncio.create_task(board.wait(tenant, str(task.id)))
        await asyncio.sleep(0.05)
        await TaskBoard(other_replica, ttl=60).complete(task.id, {"outputs": []})
        assert (await asyncio.wait_for(waiter, 10)).status == "success"
    finally:
        await other_replica.close()


async def test_wait_gives_up_after_its_timeout_with_the_pending_task(database: Database) -> None:
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=60, poll_interval=0.01)
    task = await board.create(tenant, "recognition")
    assert (await board.wait(tenant, str(task.id), timeout=0.05)).status == "pending"


async def test_recovery_resumes_pending_tasks_and_abandons_repeatedly_interrupted_ones(
    database: Database,
) -> None:
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=60)
    done = await board.create(tenant, "recognition", b"done")
    await board.complete(done.id, {})
    pending = [await board.create(tenant, "recognition", f"req {i}".encode()) for i in range(3)]
    seen: list[PendingTask] = []

    async def interrupted(task: PendingTask) -> None:
        seen.append(task)  # a crash: the task stays pending

    for attempt in (1, 2):
        seen.clear()
        report = await board.recover(interrupted, max_attempts=2)
        assert (report.resumed, report.abandoned) == (3, 0)
        assert [(t.record.id, t.request, t.record.attempts) for t in seen] == [
            (t.id, f"req {i}".encode(), attempt) for i, t in enumerate(pending)
        ]

    async def runs(task: PendingTask) -> None:
        await board.complete(task.record.id, {"ran": True})

    report = await board.recover(runs, max_attempts=2)
    assert (report.resumed, report.abandoned) == (0, 3)
    for task in pending:
        failed = await board.get(tenant, str(task.id))
        assert failed.status == "error"
        assert failed.error is not None
        assert failed.error["reason"] == "TASK_ABANDONED"
    assert (await board.get(tenant, str(done.id))).data == {}


async def test_only_finished_tasks_past_their_expiry_are_deleted(database: Database) -> None:
    tenant = await _tenant(database)
    board = TaskBoard(database, ttl=60)
    running = await board.create(tenant, "recognition")
    old = await board.create(tenant, "recognition")
    await board.complete(old.id, {})
    async with database.write() as connection:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
        assert await task_store.expire_tasks(connection, later) == 1
    # Read by a board that did not finish it (this one keeps it until its expiry date, 60 s from now).
    reader = TaskBoard(database, ttl=60)
    with pytest.raises(NotFoundError):
        await reader.get(tenant, str(old.id))
    assert (await reader.get(tenant, str(running.id))).status == "pending"
    # Ids are never reused, so an expired task's id never names another task.
    assert (await board.create(tenant, "recognition")).id > old.id


async def test_listing_too_many_task_ids_is_a_bad_request(database: Database) -> None:
    """Each id is a bound parameter: past PostgreSQL's 32767 the store would fail with an internal error."""
    tenant = await _tenant(database)
    task = await TaskBoard(database, ttl=60).create(tenant, "recognition")
    async with database.read() as connection:
        ids = [task.id, *range(10**9, 10**9 + task_store.MAX_TASK_IDS - 1)]
        assert await task_store.list_tasks(connection, tenant, ids) == (1, [task])
        with pytest.raises(BadRequestError) as refused:
            await task_store.list_tasks(connection, tenant, list(range(1, 40_000)))
    assert [v.field for v in refused.value.violations] == ["task_ids"]


async def _expire_leases(database: Database) -> None:
    """Moves every lease into the past, as the clock would after its owner died."""
    from sightd.store.schema import tasks

    async with database.write() as connection:
        await connection.execute(
            sa.update(tasks).values(lease_expires_at=task_store.utcnow() - dt.timedelta(seconds=1))
        )


async def test_tasks_of_a_live_instance_are_not_taken_over(database: Database) -> None:
    tenant = await _tenant(database)
    alive = TaskBoard(database, ttl=60, owner="replica-a", lease=60)
    other = TaskBoard(database, ttl=60, owner="replica-b", lease=60)
    created = [await alive.create(tenant, "recognition", b"r") for _ in range(2)]
    claimed: list[int] = []

    async def run(task: PendingTask) -> None:
        claimed.append(task.record.id)

    assert (await other.recover(run, max_attempts=3)).resumed == 0
    assert await alive.renew_leases() == 2
    await _expire_leases(database)
    # The lease ran out (replica-a died): replica-b takes the tasks over, each once.
    assert (await other.recover(run, max_attempts=3, reclaim_own=False)).resumed == 2
    assert (await other.recover(run, max_attempts=3, reclaim_own=False)).resumed == 0
    assert claimed == [task.id for task in created]
    assert await alive.renew_leases() == 0  # they are not replica-a's any more


async def test_a_restarted_instance_reclaims_its_own_tasks_at_once(database: Database) -> None:
    tenant = await _tenant(database)
    before = TaskBoard(database, ttl=60, owner="node-1", lease=60)
    task = await before.create(tenant, "recognition", b"r")
    after = TaskBoard(database, ttl=60, owner="node-1", lease=60)  # the same instance, restarted
    claimed: list[PendingTask] = []

    async def run(pending: PendingTask) -> None:
        claimed.append(pending)

    assert (await after.recover(run, max_attempts=3, reclaim_own=False)).resumed == 0
    assert (await after.recover(run, max_attempts=3)).resumed == 1
    assert [(p.record.id, p.record.attempts) for p in claimed] == [(task.id, 1)]


async def test_replicas_claiming_at_once_never_share_a_task(database: Database) -> None:
    tenant = await _tenant(database)
    creator = TaskBoard(database, ttl=60, owner="gone", lease=60)
    created = {(await creator.create(tenant, "recognition", b"r")).id for _ in range(40)}
    await _expire_leases(database)
    boards = [TaskBoard(database, ttl=60, owner=f"replica-{i}", lease=60) for i in range(3)]
    claims: list[list[int]] = [[] for _ in boards]

    def runner(index: int) -> Callable[[PendingTask], Awaitable[None]]:
        async def run(task: PendingTask) -> None:
            claims[index].append(task.record.id)
            await asyncio.sleep(0)

        return run

    await asyncio.gather(
        *(board.recover(runner(i), max_attempts=3, reclaim_own=False) for i, board in enumerate(boards))
    )
    everything = [task_id for claim in claims for task_id in claim]
    assert sorted(everything) == sorted(created)  # each task claimed exactly once
