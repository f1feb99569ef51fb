"""Raw network inference through the runtime (known answers: per-channel means of solid colours), and the
stage durations the core reports per batch (StageTimes)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from runtime_support import BLUE, GREEN, RED, Gate, colour_network, network, ppm, preprocessing, version

from sightd import _core, engine
from sightd.errors import ImageError, InvalidArgumentError
from sightd.preprocessing import parse_preprocessing
from sightd.recognition import Recognizer
from sightd.runtime import ImageRequest, NetworkDefinition, Runtime, RuntimeSettings


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_network(tmp_path_factory.mktemp("network") / "colours.onnx")


def means_of(bgr: tuple[int, int, int]) -> np.ndarray:
    return np.array(bgr, np.float32) / 255  # BGR order, pixel_scaling 1


def settings(**values: object) -> RuntimeSettings:
    defaults: dict[str, object] = {"workers": 1, "max_batch": 8, "max_batch_delay_us": 0, "warmup": False}
    return RuntimeSettings(**{**defaults, **values})  # type: ignore[arg-type]


async def test_network_inference_answers_the_asked_tensors(colours: Path) -> None:
    definition = network(colours)
    async with Runtime(settings()) as runtime:
        images = [ImageRequest(ppm(RED)), ImageRequest(b"junk"), ImageRequest(ppm(GREEN))]
        everything = await runtime.infer_network(definition, images)
        assert [o.ok for o in everything] == [True, False, True]
        assert isinstance(everything[1].error, ImageError)
        assert set(everything[0].tensors) == {"means", "doubled"}
        np.testing.assert_allclose(everything[0].tensors["means"], means_of(RED), atol=1e-6)
        np.testing.assert_allclose(everything[2].tensors["doubled"], 2 * means_of(GREEN), atol=1e-6)
        (doubled,) = await runtime.infer_network(
            definition, [ImageRequest(ppm(BLUE))], ["doubled", "doubled"]
        )
        assert list(doubled.tensors) == ["doubled"]
        np.testing.assert_allclose(doubled.tensors["doubled"], 2 * means_of(BLUE), atol=1e-6)
        with pytest.raises(InvalidArgumentError) as info:
            await runtime.infer_network(definition, [ImageRequest(ppm(BLUE))], ["doubled", "logits"])
        assert info.value.field == "output_tensors[1]"
        assert "'means', 'doubled'" not in info.value.message  # listed without quotes
        assert "means, doubled" in info.value.message


async def test_network_requests_asking_different_tensors_share_a_batch(colours: Path) -> None:
    gate = Gate()
    definition = network(colours)
    async with Runtime(settings(), on_batch=gate) as runtime:
        first = asyncio.create_task(runtime.infer_network(definition, [ImageRequest(ppm(RED))]))
        await gate.entered()
        asked = [["means"], ["doubled"], []]
        tasks = [
            asyncio.create_task(runtime.infer_network(definition, [ImageRequest(ppm(BLUE))], names))
            for names in asked
        ]
        await asyncio.sleep(0.05)
        gate.open()
        await first
        results = [(await task)[0] for task in tasks]
        assert gate.sizes == [1, 3]
        assert [sorted(r.tensors) for r in results] == [["means"], ["doubled"], ["doubled", "means"]]
        assert runtime.metrics.value("sightd_runtime_batch_images_count", {"kind": "network"}) == 2


async def test_a_version_and_a_network_on_one_file_are_cached_apart(colours: Path) -> None:
    async with Runtime(settings()) as runtime:
        await runtime.recognize(version(colours), [ImageRequest(ppm(RED))])
        await runtime.infer_network(
            NetworkDefinition("network:x", colours, preprocessing(), {}), [ImageRequest(ppm(RED))]
        )
        assert runtime.is_loaded("version:colours")
        assert runtime.is_loaded("network:x")


def test_stage_times_are_filled_for_each_batch(colours: Path) -> None:
    session = engine.create_session(colours, intra_op_threads=1)
    pipeline = _core.Pipeline(session, parse_preprocessing(preprocessing()))
    images = [(ppm(RED, 640, 480), None)] * 4
    times = _core.StageTimes()
    started = time.perf_counter()
    pipeline.run(images, times=times)
    wall = time.perf_counter() - started
    assert times.decode_preprocess > 0
    assert times.inference > 0
    assert times.postprocess == 0  # no post-processing in a pipeline
    assert times.decode_preprocess + times.inference <= wall

    recognizer = Recognizer.from_documents(
        colours, preprocessing(), version(colours).spec_outputs, version(colours).post_processings
    )
    times = _core.StageTimes()
    started = time.perf_counter()
    results = recognizer.recognize(images, times=times)
    wall = time.perf_counter() - started
    assert all(r.ok for r in results)
    assert min(times.decode_preprocess, times.inference, times.postprocess) > 0
    assert times.decode_preprocess + times.inference + times.postprocess <= wall
    # Without times, nothing changes.
    assert [r.outputs[0].predicted[0].label_name for r in recognizer.recognize(images[:1])] == ["red"]


def test_stage_times_of_a_batch_whose_images_all_fail(colours: Path) -> None:
    recognizer = Recognizer.from_documents(
        colours, preprocessing(), version(colours).spec_outputs, version(colours).post_processings
    )
    times = _core.StageTimes()
    results = recognizer.recognize([(b"junk", None)], times=times)
    assert not results[0].ok
    assert times.decode_preprocess >= 0
    assert times.inference >= 0
    assert "StageTimes(decode_preprocess=" in repr(times)
