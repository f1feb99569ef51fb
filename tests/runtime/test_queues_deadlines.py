"""Bounded queues (QueueFullError with a retry-after), deadlines (expired work is dropped, never run: proved
through the images-run metric), cancellation, and stopping. The gate holds the workers so that what is
queued is known without timing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from runtime_support import GREEN, RED, Gate, colour_network, ppm, top_label, version

from sightd.runtime import (
    DeadlineExceededError,
    ImageRequest,
    QueueFullError,
    Runtime,
    RuntimeSettings,
    RuntimeStoppedError,
    VersionDefinition,
)


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runtime")
    colour_network(folder / "colours.onnx")
    return folder


@pytest.fixture(scope="module")
def colours(networks: Path) -> VersionDefinition:
    return version(networks / "colours.onnx")


def settings(**values: object) -> RuntimeSettings:
    defaults: dict[str, object] = {"workers": 1, "max_batch": 4, "max_batch_delay_us": 0, "warmup": False}
    return RuntimeSettings(**{**defaults, **values})  # type: ignore[arg-type]


def red() -> list[ImageRequest]:
    return [ImageRequest(ppm(RED))]


def images_run(runtime: Runtime) -> float:
    return runtime.metrics.value("sightd_runtime_batch_images_sum", {"kind": "recognition"})


def outcome_count(runtime: Runtime, outcome: str) -> float:
    return runtime.metrics.value("sightd_runtime_requests_total", {"kind": "recognition", "outcome": outcome})


async def test_a_full_version_queue_refuses_with_a_retry_delay(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(queue_depth=2), on_batch=gate) as runtime:
        running = asyncio.create_task(runtime.recognize(colours, red()))
        await gate.entered()
        queued = [asyncio.create_task(runtime.recognize(colours, red())) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError) as info:
            await runtime.recognize(colours, red())
        assert info.value.retry_after > 0
        assert info.value.code == "RESOURCE_EXHAUSTED"
        assert runtime.metrics.value("sightd_runtime_queued_requests") == 2
        gate.open()
        for task in [running, *queued]:
            assert top_label((await task)[0].result or {}) == "red"
        assert outcome_count(runtime, "queue_full") == 1
        # Room again once the queue drained.
        assert top_label((await runtime.recognize(colours, red()))[0].result or {}) == "red"


async def test_the_global_queue_bounds_all_versions_together(networks: Path) -> None:
    gate = Gate()
    one = version(networks / "colours.onnx", key="version:one")
    two = version(networks / "colours.onnx", key="version:two")
    async with Runtime(settings(queue_depth=10, max_queued_requests=3), on_batch=gate) as runtime:
        running = asyncio.create_task(runtime.recognize(one, red()))
        await gate.entered()
        queued = [asyncio.create_task(runtime.recognize(v, red())) for v in (one, two, two)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError) as info:
            await runtime.recognize(one, red())
        assert "queues are full" in str(info.value)
        gate.open()
        await asyncio.gather(running, *queued)
        assert images_run(runtime) == 4


async def test_the_global_queue_bounds_the_bytes_waiting(colours: VersionDefinition) -> None:
    gate = Gate()
    image = ppm(RED, 200, 100)  # 60 kB of pixels
    async with Runtime(settings(max_queued_bytes=3 * len(image)), on_batch=gate) as runtime:
        running = asyncio.create_task(
            runtime.recognize(colours, [ImageRequest(image)] * 4)
        )  # alone: admitted
        await gate.entered()
        queued = asyncio.create_task(runtime.recognize(colours, [ImageRequest(image)] * 3))
        await asyncio.sleep(0)
        assert runtime.metrics.value("sightd_runtime_queued_bytes") == 3 * len(image)
        with pytest.raises(QueueFullError) as info:
            await runtime.recognize(colours, [ImageRequest(image)])
        assert "image bytes waiting" in str(info.value)
        gate.open()
        assert len(await running) == 4
        assert len(await queued) == 3
        assert runtime.metrics.value("sightd_runtime_queued_bytes") == 0


async def test_a_request_whose_deadline_passed_is_refused_without_running(colours: VersionDefinition) -> None:
    async with Runtime(settings()) as runtime:
        with pytest.raises(DeadlineExceededError):
            await runtime.recognize(colours, red(), deadline=time.monotonic() - 1)
        assert images_run(runtime) == 0
        assert outcome_count(runtime, "deadline_exceeded") == 1
        assert not runtime.is_loaded(colours.key)  # nothing was even loaded for it


async def test_a_deadline_passing_in_the_queue_drops_the_work(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(), on_batch=gate) as runtime:
        running = asyncio.create_task(runtime.recognize(colours, red()))
        await gate.entered()
        with pytest.raises(DeadlineExceededError):  # answered when the deadline passes, worker still busy
            await runtime.recognize(colours, [ImageRequest(ppm(GREEN))] * 3, deadline=time.monotonic() + 0.2)
        assert runtime.metrics.value("sightd_runtime_queued_requests") == 0
        gate.open()
        await running
        assert gate.sizes == [1]  # the expired request never reached a worker
        assert images_run(runtime) == 1


async def test_a_deadline_passing_before_the_worker_starts_drops_the_work(colours: VersionDefinition) -> None:
    gate = Gate(closed=False)
    async with Runtime(settings(), on_batch=gate) as runtime:
        await runtime.recognize(colours, red())  # loaded: the next batch forms at once
        gate.close()
        late = asyncio.create_task(runtime.recognize(colours, red(), deadline=time.monotonic() + 0.5))
        await gate.entered(2)  # its batch was formed in time and waits on the worker
        with pytest.raises(DeadlineExceededError):
            await late
        gate.open()
        await runtime.stop()
        assert gate.sizes == [1, 1]
        assert images_run(runtime) == 1  # checked again on the worker: the late one did not run


async def test_a_cancelled_caller_withdraws_its_request(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(), on_batch=gate) as runtime:
        running = asyncio.create_task(runtime.recognize(colours, red()))
        await gate.entered()
        waiting = asyncio.create_task(runtime.recognize(colours, red() * 2))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.open()
        await running
        await runtime.stop()
        assert images_run(runtime) == 1
        assert outcome_count(runtime, "cancelled") == 1


async def test_stop_finishes_accepted_work_then_refuses(colours: VersionDefinition) -> None:
    # A delay far longer than the test: stopping dispatches at once instead of waiting for company.
    runtime = Runtime(settings(max_batch=64, max_batch_delay_us=60_000_000))
    await runtime.start()
    accepted = [asyncio.create_task(runtime.recognize(colours, red())) for _ in range(5)]
    await asyncio.sleep(0)
    await runtime.stop()
    for task in accepted:
        assert top_label((await task)[0].result or {}) == "red"
    with pytest.raises(RuntimeStoppedError):
        await runtime.recognize(colours, red())
    with pytest.raises(RuntimeStoppedError):
        await Runtime(settings()).recognize(colours, red())  # never started
    assert outcome_count(runtime, "stopped") == 1
