"""Recognition and network inference for the caller's tenant: synchronous (``recognize``, within the
call's deadline) or as persisted tasks run in the background (``infer``, ``infer_network``), which a
restart runs again (``resume``).

A task answers its id at once: the request is checked (target, image, region) and its inline image decoded
before, URL images are fetched in the task. An instance holds at most ``max_running_tasks`` tasks in memory
(running, or waiting for room in the runtime's queues): beyond, ``Infer`` answers RESOURCE_EXHAUSTED with a
RetryInfo. A task the runtime's queues refuse waits and tries again, until ``task_timeout``.

Errors: a version that does not fit its network when it runs (its post-processing reads tensors the network
does not give as it should) answers FAILED_PRECONDITION, the request being fine; bad images and regions
INVALID_ARGUMENT on the input's field; the runtime's refusals RESOURCE_EXHAUSTED (full queues, with
RetryInfo), DEADLINE_EXCEEDED and UNAVAILABLE (stopping).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from sightd.app import inputs
from sightd.app.definitions import Definitions
from sightd.app.errors import (
    BadRequestError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    ResourceExhaustedError,
    ServiceError,
    UnavailableError,
)
from sightd.app.tasks import TaskBoard
from sightd.errors import CoreError, ImageError, InvalidArgumentError
from sightd.postprocessing import PostProcessingError
from sightd.preprocessing import PreprocessingError
from sightd.runtime import DeadlineExceededError as RuntimeDeadlineError
from sightd.runtime import (
    ImageOutcome,
    ImageRequest,
    QueueFullError,
    Runtime,
    RuntimeStoppedError,
    TensorsOutcome,
)
from sightd.sources.fetch import UrlFetcher
from sightd.store.tasks import PendingTask
from sightd.v1 import inference_pb2, networks_pb2

log = logging.getLogger(__name__)
_T = TypeVar("_T")
DEFAULT_MAX_PREDICTIONS = 100
# Waits between tries of a task the runtime's queues refused.
_MIN_RETRY, _MAX_RETRY = 0.05, 5.0

Recognition = inference_pb2.InferRequest | inference_pb2.RecognizeRequest


def runtime_error(error: BaseException) -> BaseException:
    """The service error of a refusal or failure of the runtime as a whole (not of one image)."""
    if isinstance(error, QueueFullError):
        return ResourceExhaustedError(error.message, reason="QUEUE_FULL", retry_after=error.retry_after)
    if isinstance(error, RuntimeDeadlineError):
        return DeadlineExceededError(error.message)
    if isinstance(error, RuntimeStoppedError):
        return UnavailableError(error.message, reason="STOPPING")
    if isinstance(error, PreprocessingError | PostProcessingError):
        violations = [FieldViolation(f, m) for f, m in error.violations]
        return FailedPreconditionError(
            f"the version cannot run on its network: {error.message}",
            reason="VERSION_MISMATCH",
            violations=violations,
        )
    if isinstance(error, InvalidArgumentError):
        return FailedPreconditionError(
            f"the version cannot run on its network: {error}",
            reason="VERSION_MISMATCH",
            violations=[FieldViolation(error.field, error.message)] if error.field else [],
        )
    return error  # EngineError and the rest: internal (public_error conceals them)


def image_error(error: CoreError, image: inputs.PreparedImage) -> BaseException:
    """The service error of one image's failure."""
    field = error.field
    if field.startswith(("post_processings", "outputs")):
        return FailedPreconditionError(
            f"the version does not fit what its network gives: {error}",
            reason="VERSION_MISMATCH",
            violations=[FieldViolation(field, error.message)],
        )
    if isinstance(error, ImageError):
        return BadRequestError.of(image.field, error.message, reason=error.code)
    if isinstance(error, InvalidArgumentError) and not isinstance(error, PostProcessingError):
        where = f"{inputs.FIELD}.{field}" if field.startswith(("bbox", "polygon")) else image.field
        return BadRequestError.of(where, error.message)
    return error  # EngineError (ONNX Runtime failed on this image) and the rest: internal


def _max_predictions(request: Recognition) -> int:
    if not request.HasField("max_predictions"):
        return DEFAULT_MAX_PREDICTIONS
    if request.max_predictions < 0:
        raise BadRequestError.of("max_predictions", "must not be negative")
    return request.max_predictions


def _target(request: Recognition) -> dict[str, Any]:
    which = request.WhichOneof("target")
    if which == "spec_id":
        if not request.spec_id:
            raise BadRequestError.of("spec_id", "is empty")
        return {"spec_id": request.spec_id}
    if which == "version_id":
        return {"version_id": request.version_id}
    raise BadRequestError.of("spec_id", "give the spec (spec_id) or the version (version_id) to run")


def tensors_document(outcome: TensorsOutcome, names: list[str]) -> dict[str, Any]:
    """v0.7's network inference data: ``{"tensors": [{"name", "shape", "data"}]}`` (float values)."""
    tensors = []
    for name in names or list(outcome.tensors):
        array = np.asarray(outcome.tensors[name])
        tensors.append(
            {"name": name, "shape": list(array.shape), "data": array.astype(np.float32).ravel().tolist()}
        )
    return {"tensors": tensors}


class Inference:
    """The inference use cases of one service instance."""

    def __init__(
        self,
        definitions: Definitions,
        board: TaskBoard,
        runtime: Runtime,
        fetcher: UrlFetcher,
        *,
        max_image_bytes: int,
        task_timeout: float,
        max_running_tasks: int,
    ) -> None:
        self.definitions = definitions
        self.board = board
        self.runtime = runtime
        self.fetcher = fetcher
        self.max_image_bytes = max_image_bytes
        self.task_timeout = task_timeout
        self.max_running_tasks = max_running_tasks
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Condition()

    # --- synchronous ----------------------------------------------------------------------------------

    async def recognize(self, tenant_id: int, request: Recognition, deadline: float | None) -> ImageOutcome:
        """The successful outcome of the request's image (``deadline``: a ``time.monotonic()`` time): its
        serialized result message, and its v0.7 document when read (``ImageOutcome``)."""
        image = inputs.prepare(request.inputs, max_image_bytes=self.max_image_bytes)
        target = _target(request)
        max_predictions = _max_predictions(request)
        definition = await self.definitions.version(tenant_id, **target)
        data = image.data
        if data is None:
            data = await self._within(deadline, inputs.fetch(image, self.fetcher, tenant_id))
        try:
            outcomes: list[ImageOutcome] = await self.runtime.recognize(
                definition,
                [ImageRequest(data, image.roi)],
                show_discarded=request.show_discarded,
                max_predictions=max_predictions,
                deadline=deadline,
            )
        except Exception as error:
            raise runtime_error(error) from error
        outcome = outcomes[0]
        if outcome.error is not None:
            raise image_error(outcome.error, image)
        return outcome

    async def _within(self, deadline: float | None, work: Awaitable[_T]) -> _T:
        if deadline is None:
            return await work
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                return await work
        except TimeoutError:
            raise DeadlineExceededError("the deadline passed while the image was fetched") from None

    # --- tasks ----------------------------------------------------------------------------------------

    def _check_room(self) -> None:
        if len(self._tasks) >= self.max_running_tasks:
            raise ResourceExhaustedError(
                f"this server holds {len(self._tasks)} tasks already; retry later",
                reason="TOO_MANY_TASKS",
                retry_after=1.0,
            )

    async def infer(self, tenant_id: int, request: inference_pb2.InferRequest) -> int:
        """Checks the request and answers the id of the task that runs it."""
        image = inputs.prepare(request.inputs, max_image_bytes=self.max_image_bytes)
        _max_predictions(request)
        await self.definitions.version(tenant_id, **_target(request))  # NOT_FOUND, no version: now
        return await self._start_task(tenant_id, "recognition", request, image)

    async def infer_network(self, tenant_id: int, request: networks_pb2.InferNetworkRequest) -> int:
        image = inputs.prepare(request.inputs, max_image_bytes=self.max_image_bytes)
        await self.definitions.network(tenant_id, request.id)
        return await self._start_task(tenant_id, "network_inference", request, image)

    async def _start_task(
        self,
        tenant_id: int,
        kind: str,
        request: inputs.TaskRequest,
        image: inputs.PreparedImage,
    ) -> int:
        """Stores the checked request as a task (inline sources decoded, so that it runs again after a
        restart), starts it, and answers its id."""
        self._check_room()
        kept = inputs.as_kept(request, image)
        task = await self.board.create(tenant_id, kind, kept.SerializeToString())
        self._spawn(task.id, tenant_id, kind, kept)
        return task.id

    async def resume(self, pending: PendingTask) -> None:
        """Runs a task again (start-up, or taken over from a dead instance), once there is room."""
        record = pending.record
        request: Any
        if record.kind == "recognition":
            request = inference_pb2.InferRequest.FromString(pending.request or b"")
        elif record.kind == "network_inference":
            request = networks_pb2.InferNetworkRequest.FromString(pending.request or b"")
        else:
            await self.board.fail(record.id, ServiceError(f"a {record.kind} task cannot run again"))
            return
        async with self._room:
            await self._room.wait_for(lambda: len(self._tasks) < self.max_running_tasks)
        self._spawn(record.id, record.tenant_id, record.kind, request)

    def _spawn(self, task_id: int, tenant_id: int, kind: str, request: Any) -> None:
        task = asyncio.create_task(
            self._run(task_id, tenant_id, kind, request), name=f"sightd-task-{task_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)

        async def notify() -> None:
            async with self._room:
                self._room.notify_all()

        if not task.get_loop().is_closed():
            task.get_loop().create_task(notify())

    async def _run(self, task_id: int, tenant_id: int, kind: str, request: Any) -> None:
        deadline = time.monotonic() + self.task_timeout
        try:
            run: Callable[[], Awaitable[dict[str, Any]]]
            if kind == "recognition":
                run = lambda: self._recognition_document(tenant_id, request, deadline)  # noqa: E731
            else:
                run = lambda: self._network_inference(tenant_id, request, deadline)  # noqa: E731
            while True:
                try:
                    data = await run()
                    break
                except ResourceExhaustedError as error:
                    wait = min(max(error.retry_after or _MIN_RETRY, _MIN_RETRY), _MAX_RETRY)
                    if error.reason != "QUEUE_FULL" or time.monotonic() + wait >= deadline:
                        raise
                    await asyncio.sleep(wait)
            await self.board.complete(task_id, data)
        except asyncio.CancelledError:
            raise  # left pending: a restart (or another instance, once the lease runs out) runs it
        except Exception as error:
            try:
                await self.board.fail(task_id, error)
            except Exception:
                log.exception("cannot record the failure of a task", extra={"task_id": task_id})

    async def _recognition_document(
        self, tenant_id: int, request: inference_pb2.InferRequest, deadline: float
    ) -> dict[str, Any]:
        result = (await self.recognize(tenant_id, request, deadline)).result
        assert result is not None  # a successful outcome
        return result

    async def _network_inference(
        self, tenant_id: int, request: networks_pb2.InferNetworkRequest, deadline: float
    ) -> dict[str, Any]:
        image = inputs.prepare(request.inputs, max_image_bytes=self.max_image_bytes)
        definition = await self.definitions.network(tenant_id, request.id)
        data = await self._within(deadline, inputs.fetch(image, self.fetcher, tenant_id))
        names = list(request.output_tensors)
        try:
            outcomes: list[TensorsOutcome] = await self.runtime.infer_network(
                definition, [ImageRequest(data, image.roi)], names, deadline
            )
        except InvalidArgumentError as error:
            if error.field.startswith("output_tensors"):
                raise BadRequestError.of(error.field, error.message) from None
            raise runtime_error(error) from error
        except Exception as error:
            raise runtime_error(error) from error
        outcome = outcomes[0]
        if outcome.error is not None:
            raise image_error(outcome.error, image)
        return tensors_document(outcome, names)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def wait_idle(self, timeout: float) -> bool:
        """Waits until no task runs (drain); False when ``timeout`` ran out first."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def cancel(self) -> None:
        """Stops the tasks still running: they stay pending for a restart to run again."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
