"""The Recognizer (pipeline + post-processing in one core call) on small hand-made networks whose answers are
known: per-channel means of real photos as class scores (reference: OpenCV-Python), and fixed anchored boxes
whose coordinates are given in the frame of an im_info constant input (hand-computed answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import engine_graphs as graphs
import numpy as np
import pytest
from onnx import TensorProto, helper

from sightd import _core, engine
from sightd.errors import ImageError, InvalidArgumentError
from sightd.postprocessing import VersionPostProcessor
from sightd.preprocessing import parse_preprocessing

CHANNELS = [{"id": 10, "name": "blue"}, {"id": 11, "name": "green"}, {"id": 12, "name": "red"}]


def image_input(tensor_name: str = "data", **extra: Any) -> dict[str, Any]:
    image = {
        "resize_type": "SQUASH",
        "data_type": "FLOAT32",
        "dimension_order": "NCHW",
        "pixel_scaling": 1.0,
        "target_size": "64x48",
        "color_channels": "BGR",
        **extra,
    }
    return {"tensor_name": tensor_name, "image": image}


def channel_mean_model() -> bytes:
    """data (N, 3, 48, 64) -> channel_mean (N, 3): the mean of each channel, in 0..1 (pixel_scaling 1)."""
    return graphs.model_bytes(
        [helper.make_node("ReduceMean", ["data"], ["channel_mean"], axes=[2, 3], keepdims=0)],
        [graphs.value("data", TensorProto.FLOAT, ["N", 3, 48, 64])],
        [graphs.value("channel_mean", TensorProto.FLOAT, ["N", 3])],
    )


def classification(thresholds: list[float], labels: list[dict[str, Any]] = CHANNELS) -> VersionPostProcessor:
    return VersionPostProcessor.from_json(
        [{"labels": {"roi": "NONE", "exclusive": True, "labels": labels}}],
        [{"classification": {"output_tensor": "channel_mean", "thresholds": thresholds}}],
    )


def channel_recognizer(thresholds: list[float], **pipeline: Any) -> _core.Recognizer:
    session = engine.create_session(channel_mean_model(), intra_op_threads=1)
    spec = parse_preprocessing({"inputs": [image_input()], "batched_output": True})
    return _core.Recognizer(_core.Pipeline(session, spec, **pipeline), classification(thresholds).processors)


def channel_means(bgr: np.ndarray) -> np.ndarray:
    resized = cv2.resize(bgr, (64, 48), interpolation=cv2.INTER_LINEAR).astype(np.float64) / 255.0
    return resized.reshape(-1, 3).mean(axis=0)


@pytest.fixture(scope="module")
def photos(darknet_data: Path, skimage_data: Path) -> list[Path]:
    return [darknet_data / "dog.jpg", skimage_data / "chelsea.png", darknet_data / "eagle.jpg"]


def predicted(labels: _core.LabelsResult) -> list[tuple[int, float]]:
    return [(p.label_id, p.score) for p in labels.predicted]


def test_a_batch_is_classified_per_image(photos: list[Path]) -> None:
    recognizer = channel_recognizer([0.0, 0.0, 0.0])
    assert recognizer.output_count == 1
    dog = photos[0].read_bytes()
    roi = _core.Roi(bbox=(0.25, 0.5, 0.75, 1.0))  # dog.jpg 768x576: pixels 192..576 x 288..576
    images: list[tuple[bytes, _core.Roi | None]] = [(p.read_bytes(), None) for p in photos]
    images += [(dog[: len(dog) // 2], None), (dog, roi)]
    results = recognizer.recognize(images)
    assert len(results) == 5
    expected = [channel_means(cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in photos]
    expected.append(np.zeros(3))
    expected.append(channel_means(cv2.imread(str(photos[0]), cv2.IMREAD_COLOR)[288:576, 192:576]))
    for index, (result, means) in enumerate(zip(results, expected, strict=True)):
        if index == 3:
            assert not result.ok
            assert isinstance(result.error, ImageError)
            assert result.outputs == []
            continue
        assert result.ok, result.error
        (labels,) = result.outputs
        assert not labels.has_roi
        got = predicted(labels)
        order = sorted(range(3), key=lambda c: -means[c])
        assert [label_id for label_id, _ in got] == [CHANNELS[c]["id"] for c in order]
        np.testing.assert_allclose([score for _, score in got], means[order], atol=2e-3)


def test_thresholds_show_discarded_and_max_predictions(photos: list[Path]) -> None:
    means = channel_means(cv2.imread(str(photos[1]), cv2.IMREAD_COLOR))
    cut = float(np.sort(means)[1]) + 1e-3  # only the strongest channel reaches it
    recognizer = channel_recognizer([cut, cut, cut])
    image = [(photos[1].read_bytes(), None)]
    (result,) = recognizer.recognize(image)
    (labels,) = result.outputs
    assert len(labels.predicted) == 1
    assert labels.discarded == []
    assert labels.predicted[0].threshold == pytest.approx(cut)
    (result,) = recognizer.recognize(image, show_discarded=True)
    (labels,) = result.outputs
    assert len(labels.predicted) == 1
    assert len(labels.discarded) == 2
    (result,) = recognizer.recognize(image, show_discarded=True, max_predictions=1)
    (labels,) = result.outputs
    assert len(labels.predicted) == 1
    assert len(labels.discarded) == 1
    (result,) = recognizer.recognize(image, max_predictions=0)
    assert result.outputs[0].predicted == []
    with pytest.raises(InvalidArgumentError) as info:
        recognizer.recognize(image, max_predictions=-1)
    assert info.value.field == "max_predictions"


def test_a_post_processing_that_does_not_fit_fails_each_image_with_its_field(photos: list[Path]) -> None:
    session = engine.create_session(channel_mean_model(), intra_op_threads=1)
    spec = parse_preprocessing({"inputs": [image_input()], "batched_output": True})
    four = [*CHANNELS, {"id": 13, "name": "alpha"}]  # 4 labels, no class_indices, 3 scores
    recognizer = _core.Recognizer(_core.Pipeline(session, spec), classification([0.1] * 4, four).processors)
    results = recognizer.recognize([(photos[0].read_bytes(), None), (b"not an image", None)])
    assert isinstance(results[0].error, InvalidArgumentError)
    assert results[0].error_field.startswith("post_processings[0].")
    assert "3 classes" in results[0].error_message
    assert isinstance(results[1].error, ImageError)


# --- an anchored detector whose boxes are in the frame of an im_info constant ---------------------------

ANCHORS = np.array([[8, 6, 16, 12], [0, 0, 4, 4]], np.float32)  # x1, y1, x2, y2 in the im_info frame
SCORES = np.array([[0.1, 0.9], [0.8, 0.2]], np.float32)  # background, thing


def im_info_model() -> bytes:
    """data (1, 3, H, W) and im_info (3,) in; fixed anchors, scores and zero offsets out, plus im_info
    echoed as info_out. batched_output false: one image per run."""
    return graphs.model_bytes(
        [
            helper.make_node("Identity", ["anchors_init"], ["anchors"]),
            helper.make_node("Identity", ["scores_init"], ["scores"]),
            helper.make_node("Identity", ["offsets_init"], ["offsets"]),
            helper.make_node("Identity", ["im_info"], ["info_out"]),
            helper.make_node("Shape", ["data"], ["data_shape"]),
        ],
        [
            graphs.value("data", TensorProto.FLOAT, [1, 3, "H", "W"]),
            graphs.value("im_info", TensorProto.FLOAT, [3]),
        ],
        [
            graphs.value("anchors", TensorProto.FLOAT, [2, 4]),
            graphs.value("scores", TensorProto.FLOAT, [2, 2]),
            graphs.value("offsets", TensorProto.FLOAT, [2, 4]),
            graphs.value("info_out", TensorProto.FLOAT, [3]),
            graphs.value("data_shape", TensorProto.INT64, [4]),
        ],
        [
            ("anchors_init", ANCHORS),
            ("scores_init", SCORES),
            ("offsets_init", np.zeros((2, 4), np.float32)),
        ],
    )


def detection(normalize_wrt_tensor: str) -> VersionPostProcessor:
    anchored = {"anchors_tensor": "anchors", "scores_tensor": "scores", "offsets_tensor": "offsets"}
    return VersionPostProcessor.from_json(
        [{"labels": {"roi": "BBOX", "exclusive": True, "labels": [{"id": 7, "name": "thing"}]}}],
        [
            {
                "detection": {
                    "anchored_output": anchored,
                    "thresholds": [0.5],
                    "normalize_wrt_tensor": normalize_wrt_tensor,
                    "class_indices": [1],
                }
            }
        ],
    )


def im_info_pipeline(outputs: list[str]) -> _core.Pipeline:
    session = engine.create_session(im_info_model(), intra_op_threads=1)
    spec = parse_preprocessing(
        {
            "inputs": [
                image_input(),
                # (H, W, scale 2): boxes are in a frame of W/2 x H/2 pixels spanning the tensor.
                {"tensor_name": "im_info", "constant": {"shape": [3], "data": ["data.1", "data.2", 2.0]}},
            ],
            "batched_output": False,
        }
    )
    return _core.Pipeline(session, spec, outputs)


@pytest.mark.parametrize("frame", ["im_info", "info_out"], ids=["constant-input", "network-output"])
def test_boxes_in_the_frame_of_im_info(photos: list[Path], frame: str) -> None:
    outputs = ["anchors", "scores", "offsets"] + (["info_out"] if frame == "info_out" else [])
    post_processing = detection(frame)
    assert frame in post_processing.required_tensors
    recognizer = _core.Recognizer(im_info_pipeline(outputs), post_processing.processors)
    dog = photos[0].read_bytes()
    roi = _core.Roi(bbox=(0.5, 0.5, 1.0, 1.0))
    results = recognizer.recognize([(dog, None), (b"", None), (dog, roi)], show_discarded=True)
    # The box (8, 6, 16, 12) x 2 = (16, 12, 32, 24) tensor pixels of 64x48: a quarter-size box starting at a
    # quarter of the width and height of what the network saw (the whole image, then its bottom-right
    # quarter). The second anchor, (0, 0, 4, 4) x 2 = (0, 0, 8, 8), scores 0.2: discarded, not dropped.
    expected = [
        ((0.25, 0.25, 0.5, 0.5), (0.0, 0.0, 8 / 64, 8 / 48)),
        None,
        ((0.625, 0.625, 0.75, 0.75), (0.5, 0.5, 0.5 + 4 / 64, 0.5 + 4 / 48)),
    ]
    for result, boxes in zip(results, expected, strict=True):
        if boxes is None:
            assert isinstance(result.error, ImageError)
            continue
        assert result.ok, result.error
        (labels,) = result.outputs
        (kept,) = labels.predicted
        (dropped,) = labels.discarded
        assert (kept.label_id, kept.region_id, dropped.region_id) == (7, 1, 2)
        assert kept.score == pytest.approx(0.9)
        assert dropped.score == pytest.approx(0.2)
        for prediction, box in zip([kept, dropped], boxes, strict=True):
            got = prediction.bbox
            np.testing.assert_allclose([got.xmin, got.ymin, got.xmax, got.ymax], box, atol=1e-9)


def test_constants_reach_python_as_fed(photos: list[Path]) -> None:
    pipeline = im_info_pipeline(["info_out", "data_shape"])
    (result,) = pipeline.run([(photos[0].read_bytes(), None)])
    np.testing.assert_array_equal(result.constants["im_info"], [48, 64, 2])
    np.testing.assert_array_equal(result.outputs["info_out"], [48, 64, 2])


def test_tensors_the_pipeline_does_not_give_are_refused_at_construction() -> None:
    post_processing = detection("im_info")
    with pytest.raises(InvalidArgumentError, match="'offsets'") as info:
        _core.Recognizer(im_info_pipeline(["anchors", "scores"]), post_processing.processors)
    assert info.value.field == "post_processings[0]"
    # The network's image input is no tensor post-processing can read.
    with pytest.raises(InvalidArgumentError, match="image input") as info:
        _core.Recognizer(im_info_pipeline(["anchors", "scores", "offsets"]), detection("data").processors)
    assert info.value.field == "post_processings[0]"
    pipeline = im_info_pipeline([])
    with pytest.raises(InvalidArgumentError) as info:
        _core.Recognizer(pipeline, [])
    assert info.value.field == "post_processings"
    with pytest.raises(InvalidArgumentError) as info:
        _core.Recognizer(pipeline, ["not a post-processor"])  # type: ignore[list-item]
    assert info.value.field == "post_processings"


def test_bad_request_items_are_named(photos: list[Path]) -> None:
    recognizer = channel_recognizer([0.1] * 3)
    with pytest.raises(InvalidArgumentError) as info:
        recognizer.recognize([(photos[0].read_bytes(), None), (42, None)])  # type: ignore[list-item]
    assert info.value.field == "images[1]"
    with pytest.raises(InvalidArgumentError) as info:
        recognizer.recognize([(photos[0].read_bytes(), "roi")])  # type: ignore[list-item]
    assert info.value.field == "images[0].roi"
