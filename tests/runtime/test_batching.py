"""The dynamic batcher: which requests share a batch, counted through the batch hook and the metrics (never
through timing), and the answers each request gets (solid colours through a channel-means network)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from runtime_support import BLUE, GREEN, NAMES, RED, Gate, colour_network, ppm, top_label, version

from sightd.errors import ImageError, InvalidArgumentError
from sightd.runtime import ImageRequest, Runtime, RuntimeSettings, VersionDefinition, batcher


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> VersionDefinition:
    return version(colour_network(tmp_path_factory.mktemp("runtime") / "colours.onnx"))


def settings(**values: object) -> RuntimeSettings:
    defaults: dict[str, object] = {"workers": 1, "max_batch": 4, "max_batch_delay_us": 0, "warmup": False}
    return RuntimeSettings(**{**defaults, **values})  # type: ignore[arg-type]


def image(colour: tuple[int, int, int]) -> ImageRequest:
    return ImageRequest(ppm(colour))


def batches_run(runtime: Runtime) -> float:
    return runtime.metrics.value("sightd_runtime_batch_images_count", {"kind": "recognition"})


async def test_a_lone_request_is_answered_after_the_delay(colours: VersionDefinition) -> None:
    async with Runtime(settings(max_batch=8, max_batch_delay_us=20_000)) as runtime:
        (outcome,) = await runtime.recognize(colours, [image(RED)])
        assert outcome.ok
        assert outcome.result is not None
        assert top_label(outcome.result) == "red"
        assert batches_run(runtime) == 1


async def test_requests_arriving_together_share_a_batch(colours: VersionDefinition) -> None:
    gate = Gate(closed=False)
    # A long delay: only a full batch (4 images) is dispatched before it, so one batch proves they shared it.
    async with Runtime(
        settings(max_batch=4, max_batch_delay_us=30_000_000, workers=1), on_batch=gate
    ) as runtime:
        palette = [RED, GREEN, BLUE, RED]
        answers = await asyncio.gather(*(runtime.recognize(colours, [image(c)]) for c in palette))
        assert gate.sizes == [4]
        assert [top_label(a[0].result or {}) for a in answers] == [NAMES[c] for c in palette]
        assert runtime.metrics.value("sightd_runtime_batch_requests_sum", {"kind": "recognition"}) == 4


async def test_waiting_requests_are_shared_out_among_the_idle_workers(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(max_batch=8, workers=3), on_batch=gate) as runtime:
        first = asyncio.create_task(runtime.recognize(colours, [image(RED)]))
        await gate.entered()  # one worker busy, two idle
        palette = [RED, GREEN, BLUE, RED, GREEN, BLUE, RED, GREEN, BLUE, RED]
        # Queued while the dispatcher cannot run (no await in between): 10 images wait for 2 idle workers.
        later = [asyncio.create_task(runtime.recognize(colours, [image(c)])) for c in palette]
        await gate.entered(2)
        assert gate.sizes == [1, 5, 5]  # not 8 and 2: each idle worker takes its share
        gate.open()
        answers = await asyncio.gather(first, *later)
        assert [top_label(a[0].result or {}) for a in answers] == ["red", *(NAMES[c] for c in palette)]


async def test_requests_queued_behind_a_busy_worker_form_the_next_batch(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(max_batch=4), on_batch=gate) as runtime:
        first = asyncio.create_task(runtime.recognize(colours, [image(GREEN)]))
        await gate.entered()  # the only worker holds the first batch
        palette = [RED, BLUE, GREEN, RED, BLUE]
        later = [asyncio.create_task(runtime.recognize(colours, [image(c)])) for c in palette]
        await asyncio.sleep(0.05)  # let them queue (no effect on what is asserted)
        gate.open()
        answers = await asyncio.gather(first, *later)
        assert gate.sizes == [1, 4, 1]  # max_batch 4, in arrival order
        assert [top_label(a[0].result or {}) for a in answers] == ["green", *(NAMES[c] for c in palette)]
        assert batches_run(runtime) == 3
        assert runtime.metrics.value("sightd_runtime_batch_images_sum", {"kind": "recognition"}) == 6


async def test_single_image_batches_wait_in_line_one_per_busy_worker(colours: VersionDefinition) -> None:
    """max_batch 1 (batching off): while the only worker is busy, one more batch is handed to it ahead of
    time, to start as soon as the running one ends; the rest stay queued. Larger batches never do this (the
    test above: [1, 4, 1])."""
    gate = Gate()
    async with Runtime(settings(max_batch=1), on_batch=gate) as runtime:
        first = asyncio.create_task(runtime.recognize(colours, [image(GREEN)]))
        await gate.entered()
        palette = [RED, BLUE, GREEN]
        later = [asyncio.create_task(runtime.recognize(colours, [image(c)])) for c in palette]
        await asyncio.sleep(0.05)  # let the dispatcher run
        assert runtime.metrics.value("sightd_runtime_running_batches") == 2  # running, and next in line
        assert runtime.metrics.value("sightd_runtime_queued_requests") == 2
        gate.open()
        answers = await asyncio.gather(first, *later)
        assert gate.sizes == [1, 1, 1, 1]
        assert all(name.startswith("sightd-inference") for name in gate.threads)
        assert [top_label(a[0].result or {}) for a in answers] == ["green", *(NAMES[c] for c in palette)]
        assert runtime.metrics.value("sightd_runtime_running_batches") == 0
        # Each request's wait is observed once, when its batch starts (the wait in line included).
        assert runtime.metrics.value("sightd_runtime_queue_seconds_count", {"kind": "recognition"}) == 4


async def test_a_request_keeps_its_images_together_in_one_batch(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(max_batch=4), on_batch=gate) as runtime:
        blocker = asyncio.create_task(runtime.recognize(colours, [image(RED)]))
        await gate.entered()
        three = asyncio.create_task(runtime.recognize(colours, [image(RED), image(GREEN), image(BLUE)]))
        two = asyncio.create_task(runtime.recognize(colours, [image(BLUE), image(BLUE)]))
        one = asyncio.create_task(runtime.recognize(colours, [image(GREEN)]))
        six = asyncio.create_task(runtime.recognize(colours, [image(c) for c in [RED, GREEN, BLUE] * 2]))
        await asyncio.sleep(0.05)
        gate.open()
        await blocker
        # The 2-image request does not fit beside the 3 and waits for the next batch; the lone image that
        # fits joins the first; a request larger than max_batch runs alone, whole.
        assert [top_label(o.result or {}) for o in await three] == ["red", "green", "blue"]
        assert [top_label(o.result or {}) for o in await two] == ["blue", "blue"]
        assert [top_label(o.result or {}) for o in await one] == ["green"]
        assert [top_label(o.result or {}) for o in await six] == ["red", "green", "blue"] * 2
        assert gate.sizes == [1, 4, 2, 6]


async def test_only_requests_with_the_same_options_share_a_batch(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(max_batch=8), on_batch=gate) as runtime:
        blocker = asyncio.create_task(runtime.recognize(colours, [image(RED)]))
        await gate.entered()
        plain = [asyncio.create_task(runtime.recognize(colours, [image(RED)])) for _ in range(2)]
        shown = [
            asyncio.create_task(runtime.recognize(colours, [image(GREEN)], show_discarded=True))
            for _ in range(2)
        ]
        capped = asyncio.create_task(
            runtime.recognize(colours, [image(BLUE)], show_discarded=True, max_predictions=0)
        )
        await asyncio.sleep(0.05)
        gate.open()
        await blocker
        for task in plain:
            labels = (await task)[0].result["outputs"][0]["labels"]  # type: ignore[index]
            assert [p["label_name"] for p in labels["predicted"]] == ["red"]
            assert labels["discarded"] == []
        for task in shown:
            labels = (await task)[0].result["outputs"][0]["labels"]  # type: ignore[index]
            assert [p["label_name"] for p in labels["predicted"]] == ["green"]
            assert {p["label_name"] for p in labels["discarded"]} == {"red", "blue"}
        labels = (await capped)[0].result["outputs"][0]["labels"]  # type: ignore[index]
        assert labels == {"predicted": [], "discarded": []}
        assert gate.sizes == [1, 2, 2, 1]


async def test_a_bad_image_fails_alone_and_results_stay_in_order(colours: VersionDefinition) -> None:
    async with Runtime(settings(max_batch=8, max_batch_delay_us=1000)) as runtime:
        outcomes = await runtime.recognize(
            colours, [image(BLUE), ImageRequest(b"not an image"), image(RED), ImageRequest(ppm(GREEN)[:30])]
        )
        assert [o.ok for o in outcomes] == [True, False, True, False]
        assert isinstance(outcomes[1].error, ImageError)
        assert isinstance(outcomes[3].error, ImageError)
        assert [top_label(outcomes[i].result or {}) for i in (0, 2)] == ["blue", "red"]


async def test_inference_runs_on_worker_threads_while_the_loop_serves(
    colours: VersionDefinition,
) -> None:
    gate = Gate()
    async with Runtime(settings(), on_batch=gate) as runtime:
        running = asyncio.create_task(runtime.recognize(colours, [image(RED)]))
        await gate.entered()
        ticks = 0
        for _ in range(5):  # the loop is free while a batch is held on its worker
            await asyncio.sleep(0)
            ticks += 1
        assert not running.done()
        assert ticks == 5
        gate.open()
        assert top_label((await running)[0].result or {}) == "red"
        assert gate.threads[0] != threading.current_thread().name
        assert gate.threads[0].startswith("sightd-inference")


async def test_many_tasks_at_once_each_get_their_own_answers(colours: VersionDefinition) -> None:
    palette = [RED, GREEN, BLUE]
    async with Runtime(settings(workers=2, max_batch=8, max_batch_delay_us=2000)) as runtime:
        requests = [[image(palette[(i + j) % 3]) for j in range(1 + i % 3)] for i in range(60)]
        answers = await asyncio.gather(*(runtime.recognize(colours, r) for r in requests))
        for request, outcomes in zip(requests, answers, strict=True):
            assert [top_label(o.result or {}) for o in outcomes] == [
                NAMES[next(c for c in palette if ppm(c) == i.data)] for i in request
            ]
        metrics = runtime.metrics
        assert metrics.value("sightd_runtime_batch_images_sum", {"kind": "recognition"}) == 120
        batches = batches_run(runtime)
        assert batches < 60  # some requests shared batches
        for stage in ("decode_preprocess", "inference", "postprocess"):
            labels = {"kind": "recognition", "stage": stage}
            assert metrics.value("sightd_runtime_stage_seconds_count", labels) == batches
            assert metrics.value("sightd_runtime_stage_seconds_sum", labels) > 0
        assert metrics.value("sightd_runtime_queue_seconds_count", {"kind": "recognition"}) == 60
        assert metrics.value("sightd_runtime_requests_total", {"kind": "recognition", "outcome": "ok"}) == 60
        assert metrics.value("sightd_runtime_queued_requests") == 0
        assert metrics.value("sightd_runtime_queued_images") == 0
        assert metrics.value("sightd_runtime_running_batches") == 0


async def test_negative_max_predictions_is_refused_before_queueing(colours: VersionDefinition) -> None:
    async with Runtime(settings()) as runtime:
        with pytest.raises(InvalidArgumentError) as info:
            await runtime.recognize(colours, [image(RED)], max_predictions=-1)
        assert info.value.field == "max_predictions"
        assert await runtime.recognize(colours, []) == []
        assert batches_run(runtime) == 0


async def test_images_of_the_wrong_type_are_refused_before_they_reach_a_batch(
    colours: VersionDefinition,
) -> None:
    async with Runtime(settings()) as runtime:
        with pytest.raises(InvalidArgumentError) as info:
            await runtime.recognize(colours, [image(RED), ImageRequest(ppm(RED), roi="top")])  # type: ignore[arg-type]
        assert info.value.field == "images[1].roi"
        with pytest.raises(InvalidArgumentError) as info:
            await runtime.recognize(colours, [ImageRequest("red")])  # type: ignore[arg-type]
        assert info.value.field == "images[0].data"
        (outcome,) = await runtime.recognize(colours, [ImageRequest(bytearray(ppm(BLUE)))])
        assert top_label(outcome.result or {}) == "blue"
        assert batches_run(runtime) == 1


@pytest.mark.parametrize("decode_threads", [0, 1])
async def test_a_runtime_pool_decodes_the_batches(colours: VersionDefinition, decode_threads: int) -> None:
    async with Runtime(
        settings(max_batch=8, max_batch_delay_us=5000, decode_threads=decode_threads)
    ) as runtime:
        palette = [RED, GREEN, BLUE] * 3
        answers = await asyncio.gather(*(runtime.recognize(colours, [image(c)]) for c in palette))
        assert [top_label(a[0].result or {}) for a in answers] == [NAMES[c] for c in palette]


def dispatchers(key: str) -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == f"batcher {key}"]


async def test_the_dispatcher_lingers_for_the_next_request_and_ends_when_the_runtime_stops(
    colours: VersionDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batcher, "LINGER_SECONDS", 60.0)
    runtime = Runtime(settings())
    await runtime.start()
    try:
        await runtime.recognize(colours, [image(RED)])
        (lingering,) = dispatchers(colours.key)  # still there once the answer is out
        assert not lingering.done()
        answers = await asyncio.gather(*(runtime.recognize(colours, [image(c)]) for c in (GREEN, BLUE)))
        assert [top_label(a[0].result or {}) for a in answers] == ["green", "blue"]
        assert dispatchers(colours.key) == [lingering]  # served by the same one
    finally:
        await asyncio.wait_for(runtime.stop(), 30)  # not the 60 s of lingering
    assert lingering.done()
    assert dispatchers(colours.key) == []


async def test_a_dispatcher_ends_after_lingering(
    colours: VersionDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batcher, "LINGER_SECONDS", 0.05)
    async with Runtime(settings()) as runtime:
        await runtime.recognize(colours, [image(RED)])
        (lingering,) = dispatchers(colours.key)
        await asyncio.wait_for(lingering, 30)
        (outcome,) = await runtime.recognize(colours, [image(GREEN)])  # a new dispatcher serves it
        assert top_label(outcome.result or {}) == "green"
        assert batches_run(runtime) == 2


def inline_batches(runtime: Runtime) -> float:
    return runtime.metrics.value("sightd_runtime_inline_batches_total", {"kind": "recognition"})


async def test_lone_small_images_of_a_fast_model_run_on_the_event_loop(colours: VersionDefinition) -> None:
    # The model's speed is what decides in production (inline_max_us 250); here any speed qualifies, so that
    # what is checked is the rule, not this machine's load.
    async with Runtime(settings(workers=2, inline_max_us=10_000_000)) as runtime:
        palette = [RED, GREEN, BLUE, RED]
        for colour in palette:
            (outcome,) = await runtime.recognize(colours, [image(colour)])
            assert top_label(outcome.result or {}) == NAMES[colour]
        # The first batch runs on a worker (the model's speed is not known yet), the others inline.
        assert inline_batches(runtime) == len(palette) - 1
        assert batches_run(runtime) == len(palette)
        (outcome,) = await runtime.recognize(colours, [ImageRequest(ppm(RED, width=600, height=600))])
        assert top_label(outcome.result or {}) == "red"
        assert inline_batches(runtime) == len(palette) - 1  # 360,000 pixels: too large to run inline
        (bad,) = await runtime.recognize(colours, [ImageRequest(b"not an image")])
        assert isinstance(bad.error, ImageError)  # reported by a worker, as always
        assert inline_batches(runtime) == len(palette) - 1
        both = await asyncio.gather(*(runtime.recognize(colours, [image(c)]) for c in (GREEN, BLUE)))
        assert [top_label(a[0].result or {}) for a in both] == ["green", "blue"]


@pytest.mark.parametrize("values", [{"inline_max_us": 0}, {"inline_max_us": 1}])
async def test_no_batch_runs_inline_when_disabled_or_when_the_model_is_slower(
    colours: VersionDefinition, values: dict[str, int]
) -> None:
    async with Runtime(settings(workers=2, **values)) as runtime:
        for colour in (RED, GREEN, BLUE):
            (outcome,) = await runtime.recognize(colours, [image(colour)])
            assert top_label(outcome.result or {}) == NAMES[colour]
        assert inline_batches(runtime) == 0


async def test_a_runtime_with_a_batch_hook_runs_every_batch_on_a_worker(colours: VersionDefinition) -> None:
    gate = Gate(closed=False)
    async with Runtime(settings(workers=2, inline_max_us=10_000_000), on_batch=gate) as runtime:
        for colour in (RED, GREEN, BLUE):
            await runtime.recognize(colours, [image(colour)])
        assert inline_batches(runtime) == 0
        assert all(name.startswith("sightd-inference") for name in gate.threads)


async def test_a_model_on_the_cpu_gets_batches_of_at_most_cpu_max_batch(colours: VersionDefinition) -> None:
    gate = Gate()
    async with Runtime(settings(max_batch=8, cpu_max_batch=2), on_batch=gate) as runtime:
        first = asyncio.create_task(runtime.recognize(colours, [image(GREEN)]))
        await gate.entered()
        palette = [RED, BLUE, GREEN, RED, BLUE]
        later = [asyncio.create_task(runtime.recognize(colours, [image(c)])) for c in palette]
        await asyncio.sleep(0.05)  # let them queue (no effect on what is asserted)
        gate.open()
        answers = await asyncio.gather(first, *later)
        assert gate.sizes == [1, 2, 2, 1]  # not [1, 5]: the colour network runs on the CPU
        assert [top_label(a[0].result or {}) for a in answers] == ["green", *(NAMES[c] for c in palette)]
