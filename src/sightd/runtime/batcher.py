"""The dynamic batcher of one version (or network): a queue of requests, a dispatcher task that forms
batches, and their execution on the worker threads.

Everything here runs on the event loop's thread except ``_execute``, which runs a batch on a worker thread
(or, for the inline runs of tiny models, on the loop's own); futures are resolved on the loop, where the
worker hands its results back with ``call_soon_threadsafe``. Rules (docs/runtime.md):

- A batch is dispatched when its queue holds ``max_batch`` images, or when the oldest waiting request has
  waited ``max_batch_delay_us``, or at once while the runtime stops; and only when a worker is free, so
  that requests arriving while every worker is busy join the next batch (batches grow with the load).
  Except for a model whose batches are single images (``max_batch`` 1: the CPU's default), which cannot
  grow: while every worker is busy, one such batch per worker may wait in line on the workers' queue, so
  that a worker ending a batch starts the next at once instead of waiting for the loop to hand it one.
- A batch takes requests in arrival order, whole (a request's images stay together; one larger than
  ``max_batch`` runs alone), and only requests with the same options (``show_discarded``,
  ``max_predictions``), since the core applies one setting per call; the others wait for the next batch.
- Requests whose deadline has passed are dropped, not run: when the caller's timer fires (it withdraws the
  request), when a batch is formed, and once more on the worker right before the run.
- The dispatcher holds the model's cache lease while it has work queued or running, so the model is not
  evicted under it, and releases it when both are done. It then lingers, without the lease, for
  ``LINGER_SECONDS``: a request arriving meanwhile is served without a new dispatcher (creating one, with
  its task and cache lookup, cost a lone request more than a small model's whole inference); after that it
  ends, and so does a lingering one as soon as the runtime stops.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sightd import _core
from sightd.runtime.cache import ModelCache
from sightd.runtime.definitions import RuntimeSettings
from sightd.runtime.errors import DeadlineExceededError
from sightd.runtime.metrics import RuntimeMetrics


class Batched(Protocol):
    max_batch: int  # the most images one of its batches takes


M = TypeVar("M", bound=Batched)
LINGER_SECONDS = 2.0
INLINE_MAX_PIXELS = 512 * 512
Image = tuple[bytes, _core.Roi | None]
# What one request gets: one outcome per image, or the error of the whole request.
RequestResult = list[Any] | BaseException


class State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WITHDRAWN = "withdrawn"  # the caller gave up (deadline, cancellation) while it was queued
    DONE = "done"


@dataclass(eq=False)
class Request:
    images: Sequence[Image]
    options: tuple[Any, ...]  # requests are batched together only when their options are equal
    deadline: float | None  # time.monotonic()
    future: asyncio.Future[list[Any]]
    payload: Any = None  # what the kind's run function needs besides the options (asked tensors)
    enqueued: float = field(default_factory=time.monotonic)
    state: State = State.QUEUED
    nbytes: int = field(init=False)  # encoded image bytes it holds

    def __post_init__(self) -> None:
        self.nbytes = sum(len(data) for data, _ in self.images)

    def expired(self, now: float) -> bool:
        return self.deadline is not None and self.deadline <= now


@dataclass(frozen=True)
class BatchInfo:
    """What the batch observer hook sees, on the worker thread, before each batch runs."""

    key: str
    kind: str
    requests: int
    images: int


class Context:
    """What every batcher of a runtime shares: settings, metrics, cache, workers and the queue totals."""

    def __init__(
        self,
        settings: RuntimeSettings,
        metrics: RuntimeMetrics,
        cache: ModelCache[Any],
        executor: Executor,
        on_batch: Callable[[BatchInfo], None] | None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cache = cache
        self.executor = executor
        self.on_batch = on_batch
        self.slots = asyncio.Semaphore(settings.workers)  # batches running at once
        self.idle_workers = settings.workers  # slots not taken
        # Places in line behind the running batches, for single-image batches only (the module's rules).
        self.line = asyncio.Semaphore(settings.workers)
        self.batches = 0  # dispatched and not finished: running or in line
        self.stopping = False
        self.queued_requests = 0
        self.queued_images = 0
        self.queued_bytes = 0
        # Seconds of worker time per image (moving average), for the retry-after estimate of a full queue.
        self.seconds_per_image = 0.05
        # The gauges read these counts when scraped (an int read is atomic under the GIL): a request costs
        # no gauge update, and a gauge never drifts from the count it shows.
        metrics.queued_requests.set_function(lambda: self.queued_requests)
        metrics.queued_images.set_function(lambda: self.queued_images)
        metrics.queued_bytes.set_function(lambda: self.queued_bytes)
        metrics.running_batches.set_function(lambda: self.batches)

    def count_queued(self, request: Request, sign: int) -> None:
        self.queued_requests += sign
        self.queued_images += sign * len(request.images)
        self.queued_bytes += sign * request.nbytes

    def record_service(self, seconds: float, images: int) -> None:
        if images > 0:  # a float store is atomic under the GIL; the average need not be exact
            self.seconds_per_image += 0.2 * (seconds / images - self.seconds_per_image)

    def drain_estimate(self, images: int) -> float:
        """Seconds until ``images`` queued images have run, at the recent pace, on every worker."""
        return min(60.0, max(0.01, images * self.seconds_per_image / self.settings.workers))


class Batcher(Generic[M]):
    def __init__(
        self,
        context: Context,
        key: str,
        *,
        kind: str,
        load: Callable[[], tuple[M, int]],
        run_batch: Callable[[M, Sequence[Request]], tuple[list[RequestResult], _core.StageTimes | None, int]],
        on_idle: Callable[[Batcher[M]], None],
    ) -> None:
        self.context = context
        self.key = key
        self.kind = kind
        self._load = load
        # Runs the requests' images as one batch on the worker thread: each request's result, in order, the
        # batch's stage durations and the images it ran (None and 0 when every request was refused).
        self._run_batch = run_batch
        self._on_idle = on_idle
        self._queue: deque[Request] = deque()
        self.queued_requests = 0
        self.queued_images = 0
        self.running_images = 0
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Seconds a batch of one image takes (moving average), for _inline; None until one ran.
        self._single_seconds: float | None = None
        self._active_at = time.monotonic()  # when a request was last served (lingering)
        # The labelled metrics of this kind, looked up once (a lookup costs about as much as an observation).
        metrics = context.metrics
        self._queue_seconds = metrics.queue_seconds.labels(kind)
        self._batch_images = metrics.batch_images.labels(kind)
        self._batch_requests = metrics.batch_requests.labels(kind)
        self._batch_seconds = metrics.batch_seconds.labels(kind)
        self._stage_decode = metrics.stage_seconds.labels(kind, "decode_preprocess")
        self._stage_inference = metrics.stage_seconds.labels(kind, "inference")
        self._stage_postprocess = metrics.stage_seconds.labels(kind, "postprocess")
        self._inline_batches = metrics.inline_batches.labels(kind)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def submit(self, request: Request) -> None:
        self._queue.append(request)
        self._count(request, 1)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._dispatch(), name=f"batcher {self.key}")

    def withdraw(self, request: Request) -> bool:
        """Takes a queued request out (its caller gave up); False when it already runs or is answered."""
        if request.state is not State.QUEUED:
            return False
        request.state = State.WITHDRAWN
        self._count(request, -1)
        self._wake.set()
        return True

    def wake(self) -> None:
        self._wake.set()

    def _count(self, request: Request, sign: int) -> None:
        self.queued_requests += sign
        self.queued_images += sign * len(request.images)
        self.context.count_queued(request, sign)

    def _answer(self, request: Request, result: RequestResult) -> None:
        request.state = State.DONE
        if request.future.done():  # the caller stopped waiting (deadline, cancellation)
            return
        if isinstance(result, BaseException):
            request.future.set_exception(result)
        else:
            request.future.set_result(result)

    async def _dispatch(self) -> None:
        try:
            while True:
                try:
                    lease = await self.context.cache.acquire(self.key, self._load)
                except Exception as error:
                    self._fail_queued(error)
                    return
                try:
                    await self._serve(lease.value)
                finally:
                    lease.release()
                if not await self._linger():
                    return
        finally:
            self._task = None
            self._on_idle(self)

    async def _linger(self) -> bool:
        """Whether work arrived within LINGER_SECONDS of the last request served (False at once when the
        runtime stops); requests run at once (run_now) count as served."""
        self._active_at = time.monotonic()
        while not self.context.stopping:
            if self.queued_requests:
                return True
            self._queue.clear()  # only withdrawn requests can be left
            remaining = self._active_at + LINGER_SECONDS - time.monotonic()
            if remaining <= 0:
                return False
            await self._wait(remaining)
        return False

    def run_now(self, request: Request) -> RequestResult | None:
        """The request's result, run at once on the loop's thread, when nothing is queued or running for
        this model nor any batch in the runtime, the model is loaded, and the request qualifies to run
        inline (``_inline``); None otherwise (then it is to be submitted). Skips the dispatcher's turn of
        the loop: for a tiny model, a lone request's time is mostly such turns."""
        context = self.context
        if (
            self.queued_requests
            or self._in_flight
            or context.stopping
            or context.batches
            or not self._inline([request])
        ):
            return None
        lease = context.cache.try_acquire(self.key)
        if lease is None:
            return None
        try:
            self._inline_batches.inc()
            (result,) = self._run(lease.value, [request])
        finally:
            lease.release()
        self._active_at = time.monotonic()
        request.state = State.DONE
        return result

    def _fail_queued(self, error: BaseException) -> None:
        while self._queue:
            request = self._queue.popleft()
            if request.state is State.QUEUED:
                self._count(request, -1)
                self._answer(request, error)

    async def _serve(self, model: M) -> None:
        settings = self.context.settings
        while True:
            if self.queued_requests == 0:
                self._queue.clear()  # only withdrawn requests can be left
                if self._in_flight == 0:
                    return
                await self._wait(None)
                continue
            head = next(r for r in self._queue if r.state is State.QUEUED)
            max_batch = model.max_batch
            if self.queued_images < max_batch and not self.context.stopping:
                remaining = head.enqueued + settings.max_batch_delay - time.monotonic()
                if remaining > 0:
                    await self._wait(remaining)
                    continue
            slot = await self._slot(max_batch)
            # The waiting images are shared out among this worker and the other idle ones: one batch taking
            # them all would leave the others idle, with a worker's share of the cores each (measured on
            # 2 cores: a batch of 8 at 8 clients gave half the images per second of two batches of 4).
            share = -(-self.queued_images // (self.context.idle_workers + 1))
            batch = self._take(max(1, min(max_batch, share)))
            if not batch:
                self._release(slot)
                continue
            self._start(model, batch, slot)

    async def _slot(self, max_batch: int) -> asyncio.Semaphore:
        """Takes a place for the next batch and answers the semaphore it came from: a free worker's; or, for
        single-image batches while every worker is busy, a place in line (measured on 2 cores, 8 clients,
        imagenet-mobilenet-v2 over gRPC: 240 against 263 img/s without and with it, since the loop's turn
        between a batch's end and the next one's start no longer leaves the worker idle)."""
        context = self.context
        if max_batch == 1 and context.slots.locked() and not context.line.locked():
            await context.line.acquire()  # free: at once
            return context.line
        await context.slots.acquire()
        context.idle_workers -= 1
        return context.slots

    def _release(self, slot: asyncio.Semaphore) -> None:
        if slot is self.context.slots:
            self.context.idle_workers += 1
        slot.release()

    async def _wait(self, timeout: float | None) -> None:
        """Until a request arrives or leaves, a batch ends, the runtime stops, or ``timeout`` passes."""
        self._wake.clear()
        if timeout is None:
            await self._wake.wait()
            return
        # A timer handle is cheaper than asyncio.timeout's context, and this runs for every lone request.
        timer = asyncio.get_running_loop().call_later(timeout, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _take(self, max_batch: int) -> list[Request]:
        """Waiting requests, in arrival order, up to ``max_batch`` images (a larger request alone)."""
        now = time.monotonic()
        batch: list[Request] = []
        images = 0
        left: deque[Request] = deque()
        while self._queue and images < max_batch:
            request = self._queue.popleft()
            if request.state is not State.QUEUED:
                continue
            count = len(request.images)
            if request.expired(now):
                self._count(request, -1)
                self._answer(
                    request, DeadlineExceededError("the deadline passed while the request was queued")
                )
            elif not batch or (request.options == batch[0].options and images + count <= max_batch):
                self._count(request, -1)
                request.state = State.RUNNING
                batch.append(request)
                images += count
            else:
                left.append(request)
        left.extend(self._queue)
        self._queue = left
        return batch

    def _start(self, model: M, batch: list[Request], slot: asyncio.Semaphore) -> None:
        """Runs the batch (``slot`` taken for it): on a worker thread, answered on the loop when it is done;
        or, for a lone small image of a model that runs in microseconds, here on the loop (``_inline``)."""
        images = sum(len(r.images) for r in batch)
        self._in_flight += 1
        self.running_images += images
        self.context.batches += 1
        if self._inline(batch):
            self._inline_batches.inc()
            self._finish(batch, images, slot, self._run(model, batch))
            return
        loop = asyncio.get_running_loop()

        def work() -> None:
            loop.call_soon_threadsafe(self._finish, batch, images, slot, self._run(model, batch))

        self.context.executor.submit(work)

    def _run(self, model: M, batch: list[Request]) -> list[RequestResult]:
        """``_execute``, an internal failure shared by the batch's requests instead of raised."""
        try:
            return self._execute(model, batch)
        except Exception as error:
            return [error] * len(batch)

    def _finish(
        self, batch: list[Request], images: int, slot: asyncio.Semaphore, results: list[RequestResult]
    ) -> None:
        self.running_images -= images
        self._in_flight -= 1
        self.context.batches -= 1
        self._release(slot)
        self._wake.set()
        for request, result in zip(batch, results, strict=True):
            self._answer(request, result)

    def _inline(self, batch: list[Request]) -> bool:
        """Whether the batch runs on the event loop's thread: one small image (INLINE_MAX_PIXELS, from its
        header), nothing else running in the runtime, no batch hook, and this model's recent single-image
        batches took less than ``inline_max_us`` on average. Handing such a batch to a worker thread and
        back costs more than running it (about 200 µs against 40 µs for a tiny model)."""
        context = self.context
        limit = context.settings.inline_max_us
        if (
            not limit
            or self._single_seconds is None
            or self._single_seconds * 1e6 >= limit
            or len(batch) != 1
            or len(batch[0].images) != 1
            or context.batches > 1  # this one is counted already
            or context.on_batch is not None
        ):
            return False
        try:
            header = _core.read_image_header(batch[0].images[0][0])
        except Exception:  # not an image: the worker reports it
            return False
        return 0 < header.width * header.height <= INLINE_MAX_PIXELS

    def _execute(self, model: M, batch: list[Request]) -> list[RequestResult]:
        """Each request's result: the batch's live requests run as one batch of the kind's; those whose
        deadline passed or whose caller gave up get DeadlineExceededError without running."""
        context = self.context
        if context.on_batch is not None:
            context.on_batch(BatchInfo(self.key, self.kind, len(batch), sum(len(r.images) for r in batch)))
        now = time.monotonic()
        for request in batch:  # waited until now: queued, then in line when the batch was one
            self._queue_seconds.observe(now - request.enqueued)
        # future.done() read off the loop is a plain attribute read: at worst a request given up this very
        # moment runs for nothing.
        live = [r for r in batch if not r.expired(now) and not r.future.done()]
        results: dict[int, RequestResult] = {}
        if live:
            started = time.perf_counter()
            outcomes, times, images = self._run_batch(model, live)
            elapsed = time.perf_counter() - started
            if images == 1:  # a float store is atomic under the GIL; the average need not be exact
                previous = self._single_seconds
                self._single_seconds = elapsed if previous is None else previous + 0.2 * (elapsed - previous)
            for request, outcome in zip(live, outcomes, strict=True):
                results[id(request)] = outcome
            if times is not None:
                self._observe(len(live), images, elapsed, times)
        if len(live) == len(batch):
            return [results[id(r)] for r in batch]
        return [
            results[id(r)]
            if id(r) in results
            else DeadlineExceededError("the deadline passed before the batch ran")
            for r in batch
        ]

    def _observe(self, requests: int, images: int, elapsed: float, times: _core.StageTimes) -> None:
        self._batch_images.observe(images)
        self._batch_requests.observe(requests)
        self._batch_seconds.observe(elapsed)
        self._stage_decode.observe(times.decode_preprocess)
        self._stage_inference.observe(times.inference)
        # The core's post-processing plus what Python adds after the core call (each image's outcome, with its
        # serialized result message).
        postprocess = max(0.0, elapsed - times.decode_preprocess - times.inference)
        self._stage_postprocess.observe(postprocess)
        self.context.record_service(elapsed, images)
