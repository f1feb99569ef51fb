"""The Runtime: recognition and network inference for the service, batched per version, run on worker
threads while the event loop keeps serving, bounded by queues and deadlines, over a memory-bounded cache of
loaded models. docs/runtime.md describes its behaviour, settings and metrics.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from sightd import _core
from sightd.errors import InvalidArgumentError
from sightd.runtime import models
from sightd.runtime.batcher import Batcher, BatchInfo, Context, Image, Request, RequestResult
from sightd.runtime.cache import ModelCache
from sightd.runtime.definitions import (
    ImageOutcome,
    ImageRequest,
    NetworkDefinition,
    RuntimeSettings,
    TensorsOutcome,
    VersionDefinition,
)
from sightd.runtime.errors import DeadlineExceededError, QueueFullError, RuntimeStoppedError
from sightd.runtime.metrics import RuntimeMetrics


def _run_recognition(
    model: models.LoadedVersion, requests: Sequence[Request]
) -> tuple[list[RequestResult], _core.StageTimes | None, int]:
    show_discarded, max_predictions = requests[0].options  # equal in a batch
    images = [image for request in requests for image in request.images]
    outcomes, times = model.run(images, show_discarded, max_predictions)
    results: list[RequestResult] = []
    start = 0
    for request in requests:
        results.append(outcomes[start : start + len(request.images)])
        start += len(request.images)
    return results, times, len(images)


def _run_network(
    model: models.LoadedNetwork, requests: Sequence[Request]
) -> tuple[list[RequestResult], _core.StageTimes | None, int]:
    results: dict[int, RequestResult] = {}
    live: list[Request] = []
    for request in requests:
        names: tuple[str, ...] = request.payload
        unknown = next((i for i, name in enumerate(names) if name not in model.output_names), None)
        if unknown is None:
            live.append(request)
        else:
            results[id(request)] = InvalidArgumentError(
                f"'{names[unknown]}' is not an output of the network ({', '.join(model.output_names)})",
                field=f"output_tensors[{unknown}]",
            )
    times: _core.StageTimes | None = None
    images = [image for request in live for image in request.images]
    if images:
        outcomes, times = model.run(images)
        start = 0
        for request in live:
            names = request.payload or tuple(model.output_names)
            results[id(request)] = [
                TensorsOutcome(tensors={n: o.tensors[n] for n in names}) if o.ok else o
                for o in outcomes[start : start + len(request.images)]
            ]
            start += len(request.images)
    return [results[id(r)] for r in requests], times, len(images)


def _checked(images: Sequence[ImageRequest]) -> list[Image]:
    """The images as the core takes them. A wrong type is the caller's bug, refused here: in a batch, the
    core would refuse the whole batch, other callers' requests included."""
    checked: list[Image] = []
    for index, image in enumerate(images):
        if not isinstance(image.data, bytes | bytearray | memoryview):
            raise InvalidArgumentError("expected encoded image bytes", field=f"images[{index}].data")
        if image.roi is not None and not isinstance(image.roi, _core.Roi):
            raise InvalidArgumentError("expected a sightd._core.Roi or None", field=f"images[{index}].roi")
        checked.append((bytes(image.data), image.roi))
    return checked


@dataclass(frozen=True)
class _Job:
    """What a request needs besides its images: the model's key, kind and loader, how a batch of it runs,
    and its options (batched only with equal ones) and payload."""

    key: str
    kind: str
    load: Callable[[], tuple[Any, int]]
    run_batch: Callable[[Any, Sequence[Request]], tuple[list[RequestResult], _core.StageTimes | None, int]]
    options: tuple[Any, ...] = ()
    payload: Any = None


class Runtime:
    """Runs recognitions and network inferences for the service; create it, ``await start()`` on the event
    loop that will call it, ``await stop()`` at shutdown (or use ``async with``).

    ``on_batch``, when given, is called on the worker thread before each batch runs (tracing, tests).
    """

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        metrics: RuntimeMetrics | None = None,
        *,
        on_batch: Callable[[BatchInfo], None] | None = None,
    ) -> None:
        self.settings = settings or RuntimeSettings()
        self.metrics = metrics or RuntimeMetrics()
        self._on_batch = on_batch
        self._context: Context | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._loaders: ThreadPoolExecutor | None = None
        self._batchers: dict[str, Batcher[Any]] = {}
        self._pool: _core.ThreadPool | None = None
        self._outcomes: dict[tuple[str, str], Any] = {}  # the labelled request counters, looked up once

    def _count(self, kind: str, outcome: str) -> None:
        counter = self._outcomes.get((kind, outcome))
        if counter is None:
            counter = self._outcomes[(kind, outcome)] = self.metrics.requests.labels(kind, outcome)
        counter.inc()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Starts the worker and loader threads (idempotent)."""
        if self._context is not None:
            return
        settings = self.settings
        if settings.decode_threads is not None:
            self._pool = _core.ThreadPool(settings.decode_threads)
        self._workers = ThreadPoolExecutor(settings.workers, thread_name_prefix="sightd-inference")
        self._loaders = ThreadPoolExecutor(settings.load_threads, thread_name_prefix="sightd-load")
        cache: ModelCache[Any] = ModelCache(settings.cache_bytes, self._loaders, self.metrics)
        self._context = Context(settings, self.metrics, cache, self._workers, self._on_batch)

    async def stop(self) -> None:
        """Refuses new work (RuntimeStoppedError), finishes the accepted work (batches are dispatched at once,
        without waiting for company), then stops the threads and forgets the loaded models."""
        context = self._context
        if context is None or context.stopping:
            return
        context.stopping = True
        for batcher in list(self._batchers.values()):
            batcher.wake()
        while tasks := [b.task for b in self._batchers.values() if b.task is not None]:
            await asyncio.gather(*tasks, return_exceptions=True)
        context.cache.clear()
        for executor in (self._workers, self._loaders):
            if executor is not None:
                await asyncio.to_thread(executor.shutdown)

    def _started(self) -> Context:
        if self._context is None or self._context.stopping:
            raise RuntimeStoppedError("the runtime is not running")
        return self._context

    def is_loaded(self, key: str) -> bool:
        """Whether the key's model is in the cache now."""
        return self._context is not None and key in self._context.cache

    async def recognize(
        self,
        version: VersionDefinition,
        images: Sequence[ImageRequest],
        *,
        show_discarded: bool = False,
        max_predictions: int | None = None,
        deadline: float | None = None,
    ) -> list[ImageOutcome]:
        """One outcome per image, in order: its v0.7 result or its own error (a bad image fails alone).

        ``deadline`` is a ``time.monotonic()`` time. Raises QueueFullError, DeadlineExceededError,
        RuntimeStoppedError; InvalidArgumentError for a negative ``max_predictions``; and, when the version
        does not load, its error (PreprocessingError, PostProcessingError, InvalidArgumentError, EngineError).
        """
        if max_predictions is not None and (isinstance(max_predictions, bool) or max_predictions < 0):
            raise InvalidArgumentError("must be a non-negative integer or None", field="max_predictions")
        job = _Job(
            version.key,
            "recognition",
            functools.partial(models.load, version, self.settings, self._pool),
            _run_recognition,
            options=(bool(show_discarded), max_predictions),
        )
        outcomes: list[ImageOutcome] = await self._submit(job, images, deadline)
        return outcomes

    async def infer_network(
        self,
        network: NetworkDefinition,
        images: Sequence[ImageRequest],
        output_tensors: Sequence[str] = (),
        deadline: float | None = None,
    ) -> list[TensorsOutcome]:
        """The asked output tensors of each image (all the network's numeric outputs when none are asked).
        Raises as ``recognize``; an unknown tensor name is InvalidArgumentError ``output_tensors[i]``."""
        job = _Job(
            network.key,
            "network",
            functools.partial(models.load, network, self.settings, self._pool),
            _run_network,
            payload=tuple(dict.fromkeys(output_tensors)),
        )
        outcomes: list[TensorsOutcome] = await self._submit(job, images, deadline)
        return outcomes

    async def validate(self, definition: VersionDefinition | NetworkDefinition) -> list[tuple[str, str]]:
        """Every (field, message) violation of a definition, [] when it builds and runs (models.validate):
        builds its session, pipeline and post-processing on a loader thread and runs it once on a synthetic
        image. The cache is left as it is."""
        self._started()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._loaders, models.validate, definition, self.settings)

    async def _submit(self, job: _Job, images: Sequence[ImageRequest], deadline: float | None) -> list[Any]:
        kind = job.kind
        request_images = _checked(images)
        try:
            context = self._started()
        except RuntimeStoppedError:
            self._count(kind, "stopped")
            raise
        if not images:
            return []
        settings = self.settings
        if deadline is not None and deadline <= time.monotonic():
            self._count(kind, "deadline_exceeded")
            raise DeadlineExceededError("the deadline passed before the request was queued")
        nbytes = sum(len(data) for data, _ in request_images)
        if context.queued_requests >= settings.max_queued_requests or (
            context.queued_requests and context.queued_bytes + nbytes > settings.max_queued_bytes
        ):
            self._count(kind, "queue_full")
            raise QueueFullError(
                f"the inference queues are full ({context.queued_requests} requests, "
                f"{context.queued_bytes} image bytes waiting)",
                context.drain_estimate(context.queued_images),
            )
        batcher = self._batchers.get(job.key)
        if batcher is None:
            batcher = Batcher(
                context,
                job.key,
                kind=kind,
                load=job.load,
                run_batch=job.run_batch,
                on_idle=self._idle,
            )
            self._batchers[job.key] = batcher
        if batcher.queued_requests >= settings.queue_depth:
            self._count(kind, "queue_full")
            raise QueueFullError(
                f"the queue of this {'version' if kind == 'recognition' else 'network'} is full "
                f"({batcher.queued_requests} requests waiting)",
                context.drain_estimate(batcher.queued_images + batcher.running_images),
            )
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        request = Request(request_images, job.options, deadline, future, job.payload)
        immediate = batcher.run_now(request)
        if immediate is None:
            batcher.submit(request)
        elif isinstance(immediate, BaseException):
            future.set_exception(immediate)
        else:
            future.set_result(immediate)
        try:
            if deadline is None or future.done():  # done: run at once (run_now)
                result = await future
            else:
                async with asyncio.timeout(deadline - time.monotonic()):
                    result = await future
        except TimeoutError:
            batcher.withdraw(request)
            self._count(kind, "deadline_exceeded")
            raise DeadlineExceededError("the deadline passed before the result was ready") from None
        except asyncio.CancelledError:
            batcher.withdraw(request)
            self._count(kind, "cancelled")
            raise
        except DeadlineExceededError:
            self._count(kind, "deadline_exceeded")
            raise
        except BaseException:
            self._count(kind, "failed")
            raise
        self._count(kind, "ok")
        return result

    def _idle(self, batcher: Batcher[Any]) -> None:
        if self._batchers.get(batcher.key) is batcher:
            del self._batchers[batcher.key]
