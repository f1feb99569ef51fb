"""The pipeline (decode -> preprocess -> ONNX Runtime -> per-image outputs) end to end on real photos, with
small real-valued ONNX graphs whose outputs are checked against a NumPy + OpenCV reference of the
preprocessing."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import cv2
import engine_graphs as graphs
import numpy as np
import pytest
from onnx import TensorProto, helper

from sightd import _core, engine
from sightd.errors import EngineError, ImageError, InvalidArgumentError
from sightd.preprocessing import parse_preprocessing

PHOTOS = [
    ("darknet", "dog.jpg"),
    ("darknet", "person.jpg"),
    ("skimage", "chelsea.png"),
    ("darknet", "horses.jpg"),
    ("skimage", "camera.png"),  # grey
    ("darknet", "eagle.jpg"),
    ("skimage", "rocket.jpg"),
]
MEAN = [104.0, 117.0, 123.0]


@pytest.fixture(scope="module")
def photo_paths(darknet_data: Path, skimage_data: Path) -> list[Path]:
    folders = {"darknet": darknet_data, "skimage": skimage_data}
    return [folders[folder] / name for folder, name in PHOTOS]


def image_input(
    tensor_name: str = "data",
    *,
    resize_type: str = "SQUASH",
    target_size: str = "64x48",
    data_type: str = "FLOAT32",
    dimension_order: str = "NCHW",
    color_channels: str = "BGR",
    **extra: Any,
) -> dict[str, Any]:
    image = {
        "resize_type": resize_type,
        "data_type": data_type,
        "dimension_order": dimension_order,
        "pixel_scaling": 255.0,
        "mean_file": "",
        "target_size": target_size,
        "color_channels": color_channels,
        **extra,
    }
    return {"tensor_name": tensor_name, "image": image}


def spec_of(*inputs: dict[str, Any], batched_output: bool = True) -> _core.PreprocessingSpec:
    return parse_preprocessing({"inputs": list(inputs), "batched_output": batched_output})


def reference(
    path: Path, width: int, height: int, *, mean: list[float] | None = None, rgb: bool = False
) -> np.ndarray:
    """(3, height, width) float32: SQUASH-resized BGR (or RGB) pixels minus the mean, as cv2 computes them."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    resized = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    if rgb:
        resized = resized[:, :, ::-1]
    if mean is not None:
        resized = resized - np.array(mean, np.float32)
    return np.ascontiguousarray(resized.transpose(2, 0, 1))


def identity_and_mean(batch: graphs.Dim = "N", height: graphs.Dim = 48, width: graphs.Dim = 64) -> bytes:
    """data (batch, 3, H, W) float -> same (identity) and channel_mean (batch, 3) = mean over H and W."""
    return graphs.model_bytes(
        [
            helper.make_node("Identity", ["data"], ["same"]),
            helper.make_node("ReduceMean", ["data"], ["channel_mean"], axes=[2, 3], keepdims=0),
        ],
        [graphs.value("data", TensorProto.FLOAT, [batch, 3, height, width])],
        [
            graphs.value("same", TensorProto.FLOAT, [batch, 3, height, width]),
            graphs.value("channel_mean", TensorProto.FLOAT, [batch, 3]),
        ],
    )


def read(paths: list[Path]) -> list[tuple[bytes, None]]:
    return [(path.read_bytes(), None) for path in paths]


def test_batch_of_real_photos_matches_the_reference(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean())
    pipeline = _core.Pipeline(session, spec_of(image_input(mean=MEAN)))
    assert pipeline.output_names == ["same", "channel_mean"]
    assert pipeline.max_batch == 0
    results = pipeline.run(read(photo_paths))
    assert len(results) == len(photo_paths)
    for path, result in zip(photo_paths, results, strict=True):
        assert result.ok, result.error
        assert result.error is None
        expected = reference(path, 64, 48, mean=MEAN)
        same = result.outputs["same"]
        assert same.shape == (3, 48, 64)
        np.testing.assert_allclose(same, expected, atol=1e-3)
        np.testing.assert_allclose(result.outputs["channel_mean"], expected.mean(axis=(1, 2)), atol=1e-3)
        (transform,) = result.transforms
        height, width = cv2.imread(str(path), cv2.IMREAD_COLOR).shape[:2]
        assert (transform.image_width, transform.image_height) == (width, height)
        assert (transform.tensor_width, transform.tensor_height) == (64, 48)
        assert transform.scale_x == pytest.approx(64 / width)


def test_outputs_are_views_of_one_batch_output(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean())
    pipeline = _core.Pipeline(session, spec_of(image_input()), ["channel_mean"])
    results = pipeline.run(read(photo_paths[:3]))
    arrays = [r.outputs["channel_mean"] for r in results]
    assert all(not a.flags.owndata for a in arrays)
    # Consecutive rows of one ONNX Runtime output: 3 float32 values apart.
    addresses = [a.__array_interface__["data"][0] for a in arrays]
    assert [b - a for a, b in itertools.pairwise(addresses)] == [12, 12]


def test_a_corrupt_image_fails_alone(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean())
    pipeline = _core.Pipeline(session, spec_of(image_input()))
    dog = photo_paths[0].read_bytes()
    images = [
        (dog, None),
        (dog[: len(dog) // 3], None),
        (b"not an image at all", None),
        (photo_paths[2].read_bytes(), None),
    ]
    results = pipeline.run(images)
    assert [r.ok for r in results] == [True, False, False, True]
    for bad in results[1:3]:
        assert isinstance(bad.error, ImageError)
        assert bad.outputs == {}
    np.testing.assert_allclose(results[0].outputs["same"], reference(photo_paths[0], 64, 48), atol=1e-3)
    np.testing.assert_allclose(results[3].outputs["same"], reference(photo_paths[2], 64, 48), atol=1e-3)


def test_too_many_pixels_is_per_image(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean())
    pipeline = _core.Pipeline(session, spec_of(image_input()), max_pixels=500 * 500)
    results = pipeline.run(read([photo_paths[2], photo_paths[0]]))  # chelsea 451x300, dog 768x576
    assert results[0].ok
    assert not results[1].ok
    assert results[1].error_code == _core.ErrorCode.IMAGE_TOO_LARGE


@pytest.mark.parametrize("fixed_batch", [1, 2, 3])
def test_fixed_batch_dimension_runs_in_chunks(photo_paths: list[Path], fixed_batch: int) -> None:
    session = engine.create_session(identity_and_mean(batch=fixed_batch))
    pipeline = _core.Pipeline(session, spec_of(image_input()), pool=_core.ThreadPool(1))
    assert pipeline.max_batch == fixed_batch
    results = pipeline.run(read(photo_paths[:5]))  # 5 images: the last chunk is padded
    for path, result in zip(photo_paths[:5], results, strict=True):
        assert result.ok, result.error
        np.testing.assert_allclose(result.outputs["same"], reference(path, 64, 48), atol=1e-3)


def test_network_resizing_groups_images_by_shape(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean(height="H", width="W"))
    pipeline = _core.Pipeline(session, spec_of(image_input(resize_type="NETWORK", target_size="40")))
    results = pipeline.run(read(photo_paths))
    shapes = set()
    for path, result in zip(photo_paths, results, strict=True):
        assert result.ok, result.error
        (transform,) = result.transforms
        assert min(transform.tensor_width, transform.tensor_height) == 40
        same = result.outputs["same"]
        assert same.shape == (3, transform.tensor_height, transform.tensor_width)
        np.testing.assert_allclose(
            same, reference(path, transform.tensor_width, transform.tensor_height), atol=1e-3
        )
        shapes.add(same.shape)
    assert len(shapes) > 1


def test_uint8_nhwc_rgb_input(photo_paths: list[Path]) -> None:
    model = graphs.model_bytes(
        [helper.make_node("Cast", ["image_tensor"], ["as_int"], to=TensorProto.INT32)],
        [graphs.value("image_tensor", TensorProto.UINT8, ["N", 32, 32, 3])],
        [graphs.value("as_int", TensorProto.INT32, ["N", 32, 32, 3])],
    )
    session = engine.create_session(model)
    spec = spec_of(
        image_input(
            "image_tensor",
            target_size="32x32",
            data_type="UINT8",
            dimension_order="NHWC",
            color_channels="RGB",
        )
    )
    results = _core.Pipeline(session, spec).run(read(photo_paths[:3]))
    for path, result in zip(photo_paths[:3], results, strict=True):
        got = result.outputs["as_int"]
        assert got.dtype == np.int32
        expected = reference(path, 32, 32, rgb=True).transpose(1, 2, 0)
        assert np.abs(got - np.round(expected)).max() <= 1


@pytest.mark.parametrize("info_rank", [1, 2])
def test_one_image_per_run_with_a_constant_input(photo_paths: list[Path], info_rank: int) -> None:
    # Caffe's Faster R-CNN style: data (1, 3, H, W) or (3, H, W), im_info (1, 3) or (3,) = (H, W, scale).
    data_shape: list[graphs.Dim] = [1, 3, "H", "W"] if info_rank == 2 else [3, "H", "W"]
    info_shape: list[graphs.Dim] = [1, 3] if info_rank == 2 else [3]
    model = graphs.model_bytes(
        [
            helper.make_node("Identity", ["im_info"], ["info_out"]),
            helper.make_node("Shape", ["data"], ["data_shape"]),
        ],
        [
            graphs.value("data", TensorProto.FLOAT, data_shape),
            graphs.value("im_info", TensorProto.FLOAT, info_shape),
        ],
        [
            graphs.value("info_out", TensorProto.FLOAT, info_shape),
            graphs.value("data_shape", TensorProto.INT64, [len(data_shape)]),
        ],
    )
    session = engine.create_session(model)
    spec = spec_of(
        image_input(resize_type="NETWORK", target_size="50"),
        {"tensor_name": "im_info", "constant": {"shape": [3], "data": ["data.1", "data.2", 1.0]}},
        batched_output=False,
    )
    pipeline = _core.Pipeline(session, spec)
    assert pipeline.max_batch == 1
    results = pipeline.run(read(photo_paths[:4]))
    for result in results:
        assert result.ok, result.error
        (transform,) = result.transforms
        height, width = transform.tensor_height, transform.tensor_width
        info = result.outputs["info_out"]
        assert info.shape == tuple(info_shape)
        np.testing.assert_array_equal(info.reshape(3), [height, width, 1.0])
        expected_shape = [1, 3, height, width] if info_rank == 2 else [3, height, width]
        np.testing.assert_array_equal(result.outputs["data_shape"], expected_shape)


def test_constant_converted_to_the_network_type(photo_paths: list[Path]) -> None:
    model = graphs.model_bytes(
        [
            helper.make_node("Identity", ["size"], ["size_out"]),
            helper.make_node("Identity", ["data"], ["same"]),
        ],
        [
            graphs.value("data", TensorProto.FLOAT, ["N", 3, 48, 64]),
            graphs.value("size", TensorProto.INT64, ["N", 2]),
        ],
        [
            graphs.value("size_out", TensorProto.INT64, ["N", 2]),
            graphs.value("same", TensorProto.FLOAT, ["N", 3, 48, 64]),
        ],
    )
    session = engine.create_session(model)
    spec = spec_of(
        image_input(), {"tensor_name": "size", "constant": {"shape": [2], "data": ["data.2", "data.1"]}}
    )
    results = _core.Pipeline(session, spec, ["size_out"]).run(read(photo_paths[:2]))
    for result in results:
        assert result.outputs["size_out"].dtype == np.int64
        np.testing.assert_array_equal(result.outputs["size_out"], [64, 48])


def test_a_failed_run_fails_only_its_images(photo_paths: list[Path]) -> None:
    # Reshape to 3*40*60 values per image: only the group of 60x40 tensors can run.
    model = graphs.model_bytes(
        [helper.make_node("Reshape", ["data", "flat"], ["flattened"])],
        [graphs.value("data", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [graphs.value("flattened", TensorProto.FLOAT, [None, 7200])],
        [("flat", np.array([-1, 7200], np.int64))],
    )
    session = engine.create_session(model)
    pipeline = _core.Pipeline(session, spec_of(image_input(resize_type="NETWORK", target_size="40")))
    results = pipeline.run(read(photo_paths))
    ok = [(r.transforms[0].tensor_width, r.transforms[0].tensor_height) == (60, 40) for r in results]
    assert any(ok)
    assert not all(ok)
    for fits, result in zip(ok, results, strict=True):
        assert result.ok == fits
        if not fits:
            assert isinstance(result.error, EngineError)


def test_outputs_that_are_not_per_image_need_batched_output_false(photo_paths: list[Path]) -> None:
    model = graphs.model_bytes(
        [helper.make_node("ReduceMean", ["data"], ["overall"], keepdims=0)],
        [graphs.value("data", TensorProto.FLOAT, ["N", 3, 48, 64])],
        [graphs.value("overall", TensorProto.FLOAT, [])],
    )
    session = engine.create_session(model)
    (result,) = _core.Pipeline(session, spec_of(image_input())).run(read(photo_paths[:1]))
    assert isinstance(result.error, EngineError)
    assert "batched_output" in result.error_message
    (result,) = _core.Pipeline(session, spec_of(image_input(), batched_output=False)).run(
        read(photo_paths[:1])
    )
    assert result.ok
    assert result.outputs["overall"].shape == ()
    np.testing.assert_allclose(result.outputs["overall"], reference(photo_paths[0], 64, 48).mean(), rtol=1e-4)


def test_roi_crops_before_preprocessing(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean())
    pipeline = _core.Pipeline(session, spec_of(image_input()))
    dog = photo_paths[0]
    roi = _core.Roi(bbox=(0.25, 0.5, 0.75, 1.0))
    (result,) = pipeline.run([(dog.read_bytes(), roi)])
    assert result.ok, result.error
    bgr = cv2.imread(str(dog), cv2.IMREAD_COLOR)  # 768x576
    crop = bgr[288:576, 192:576]
    expected = (
        cv2.resize(crop, (64, 48), interpolation=cv2.INTER_LINEAR).astype(np.float32).transpose(2, 0, 1)
    )
    np.testing.assert_allclose(result.outputs["same"], expected, atol=1e-3)
    (transform,) = result.transforms
    assert (transform.crop_x, transform.crop_y, transform.crop_width, transform.crop_height) == (
        192,
        288,
        384,
        288,
    )


def test_concurrent_runs_from_python_threads(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean(height="H", width="W"), intra_op_threads=1)
    pipeline = _core.Pipeline(session, spec_of(image_input(resize_type="NETWORK", target_size="32")))
    images = read(photo_paths)
    expected = [r.outputs["channel_mean"].copy() for r in pipeline.run(images)]
    failures: list[BaseException] = []
    start = threading.Barrier(3)

    def worker(shift: int) -> None:
        try:
            start.wait()
            for round_ in range(4):
                order = [(i + shift + round_) % len(images) for i in range(len(images))]
                results = pipeline.run([images[i] for i in order])
                for i, result in zip(order, results, strict=True):
                    np.testing.assert_array_equal(result.outputs["channel_mean"], expected[i])
        except BaseException as error:  # collected for the main thread to report
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_bytes_like_inputs(photo_paths: list[Path]) -> None:
    session = engine.create_session(identity_and_mean())
    pipeline = _core.Pipeline(session, spec_of(image_input()), ["channel_mean"])
    dog = photo_paths[0].read_bytes()
    results = pipeline.run(
        [dog, (bytearray(dog), None), (memoryview(dog), None), (np.frombuffer(dog, np.uint8), None)]
    )
    for result in results:
        np.testing.assert_array_equal(result.outputs["channel_mean"], results[0].outputs["channel_mean"])
    assert pipeline.run([]) == []
    with pytest.raises(InvalidArgumentError) as info:
        pipeline.run([(dog, None), (12, None)])
    assert info.value.field == "images[1]"
    with pytest.raises(InvalidArgumentError) as info:
        pipeline.run([(dog, "roi")])
    assert info.value.field == "images[0].roi"


def fixed_rgb_model() -> bytes:
    return graphs.model_bytes(
        [helper.make_node("Identity", ["data"], ["same"])],
        [graphs.value("data", TensorProto.FLOAT, ["N", 3, 48, 64])],
        [graphs.value("same", TensorProto.FLOAT, ["N", 3, 48, 64])],
    )


@pytest.mark.parametrize(
    ("model", "inputs", "batched_output", "outputs", "field"),
    [
        (fixed_rgb_model(), [image_input("images")], True, [], "inputs[0].tensor_name"),
        (fixed_rgb_model(), [image_input(data_type="UINT8")], True, [], "inputs[0].image.data_type"),
        (fixed_rgb_model(), [image_input(target_size="64x64")], True, [], "inputs[0].image.target_size"),
        (fixed_rgb_model(), [image_input(color_channels="L")], True, [], "inputs[0].image.color_channels"),
        (
            fixed_rgb_model(),
            [image_input(dimension_order="NHWC")],
            True,
            [],
            "inputs[0].image.dimension_order",
        ),
        (
            fixed_rgb_model(),
            [image_input(resize_type="NETWORK", target_size="48")],
            True,
            [],
            "inputs[0].image.resize_type",
        ),
        (fixed_rgb_model(), [image_input()], True, ["same", "logits"], "output_tensors[1]"),
        (
            fixed_rgb_model(),
            [image_input(), {"tensor_name": "extra", "constant": {"shape": [1], "data": [1]}}],
            True,
            [],
            "inputs[1].tensor_name",
        ),
        (graphs.two_inputs(), [image_input("a")], True, [], "inputs[0].tensor_name"),
        (
            graphs.model_bytes(
                [helper.make_node("Identity", ["data"], ["same"])],
                [graphs.value("data", TensorProto.FLOAT, [3, 48, 64])],
                [graphs.value("same", TensorProto.FLOAT, [3, 48, 64])],
            ),
            [image_input()],
            True,
            [],
            "batched_output",
        ),
        (identity_and_mean(batch=2), [image_input()], False, [], "batched_output"),
    ],
    ids=[
        "unknown-input",
        "data-type",
        "target-size",
        "channels",
        "dimension-order",
        "network-resize-on-fixed-size",
        "unknown-output",
        "unknown-constant",
        "rank",
        "no-batch-dim",
        "fixed-batch-without-batched-output",
    ],
)
def test_spec_is_checked_against_the_network(
    model: bytes, inputs: list[dict[str, Any]], batched_output: bool, outputs: list[str], field: str
) -> None:
    session = engine.create_session(model)
    with pytest.raises(InvalidArgumentError) as info:
        _core.Pipeline(session, spec_of(*inputs, batched_output=batched_output), outputs)
    assert info.value.field == field


def test_an_unfed_network_input_is_named() -> None:
    model = graphs.model_bytes(
        [helper.make_node("Add", ["data", "bias"], ["out"])],
        [
            graphs.value("data", TensorProto.FLOAT, ["N", 3, 48, 64]),
            graphs.value("bias", TensorProto.FLOAT, [1]),
        ],
        [graphs.value("out", TensorProto.FLOAT, ["N", 3, 48, 64])],
    )
    session = engine.create_session(model)
    with pytest.raises(InvalidArgumentError, match="'bias'") as info:
        _core.Pipeline(session, spec_of(image_input()))
    assert info.value.field == "inputs"


def test_bad_pipeline_options() -> None:
    session = engine.create_session(identity_and_mean())
    with pytest.raises(InvalidArgumentError) as info:
        _core.Pipeline(session, spec_of(image_input()), max_pixels=0)
    assert info.value.field == "max_pixels"


def test_field_names_follow_the_order_of_the_json_inputs() -> None:
    # A constant listed before the image input: the image is inputs[1] in the document the user wrote.
    session = engine.create_session(fixed_rgb_model())
    spec = parse_preprocessing(
        {
            "inputs": [
                {"tensor_name": "extra", "constant": {"shape": [1], "data": [1]}},
                image_input(target_size="64x64"),
            ],
            "batched_output": True,
        }
    )
    with pytest.raises(InvalidArgumentError) as info:
        _core.Pipeline(session, spec)
    assert info.value.field == "inputs[1].image.target_size"
    spec = parse_preprocessing(
        {
            "inputs": [{"tensor_name": "extra", "constant": {"shape": [1], "data": [1]}}, image_input()],
            "batched_output": True,
        }
    )
    with pytest.raises(InvalidArgumentError) as info:
        _core.Pipeline(session, spec)
    assert info.value.field == "inputs[0].tensor_name"
