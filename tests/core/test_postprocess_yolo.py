"""YOLO region decoding (v2 softmax, v3 sigmoid, several heads) against the NumPy reference."""

from __future__ import annotations

import numpy as np
import postprocess_reference as ref
import pytest
from postprocess_checks import assert_result, processor, run

SEED_ANCHORS = [1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071]
V3_HEADS = [
    ("head13", [2.53125, 2.5625, 4.21875, 5.28125, 10.75, 9.96875], 13),
    ("head26", [0.625, 0.875, 1.4375, 1.6875, 2.3125, 3.625], 26),
]


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_one_cell_with_known_answer() -> None:
    """A single confident cell of a 13x13 grid in a 416 tensor: the box and score are known by hand."""
    out = np.full((1, 1 * (5 + 2), 13, 13), -20.0, np.float32)
    out[0, 0:4, 6, 4] = 0.0  # sigmoid(0) = 0.5: centre of cell (row 6, column 4); exp(0) = 1 anchor
    out[0, 4, 6, 4] = logit(0.9)
    out[0, 5:7, 6, 4] = [0.0, np.log(3.0)]  # softmax: 0.25, 0.75
    body = {"yolo_output": {"output_tensor": "out", "anchors": [2.0, 4.0]}, "thresholds": [0.2, 0.6]}
    pp = processor("detection", ["cat", "dog"], {"detection": body})
    frame = ref.Frame(832, 416, 416, 416, (0, 0, 832, 416), (0.5, 1.0))
    result = run(pp, {"out": out}, frame)
    # cx = 4.5 / 13, cy = 6.5 / 13, w = 2 / 13, h = 4 / 13, in tensor-normalised units; x maps 1:1 here
    assert [p.label_name for p in result.predicted] == ["dog", "cat"]
    assert [p.score for p in result.predicted] == pytest.approx([0.9 * 0.75, 0.9 * 0.25], rel=1e-6)
    dog = result.predicted[0].bbox
    assert (dog.xmin, dog.ymin, dog.xmax, dog.ymax) == pytest.approx((3.5 / 13, 4.5 / 13, 5.5 / 13, 8.5 / 13))
    assert [p.region_id for p in result.predicted] == [1, 2]
    assert result.discarded == []


def random_head(rng: np.random.Generator, anchors: int, classes: int, size: int) -> np.ndarray:
    out = rng.normal(0, 1.5, size=(1, anchors * (5 + classes), size, size)).astype(np.float32)
    view = out.reshape(anchors, 5 + classes, size, size)
    view[:, 4] += rng.choice([-6.0, 2.0], p=[0.9, 0.1], size=(anchors, size, size)).astype(np.float32)
    view[:, 5:] *= 2.5
    return out


def floors(thresholds: list[float], discard: float) -> np.ndarray:
    return np.minimum(discard, np.asarray(thresholds))


@pytest.mark.parametrize("seed", range(4))
def test_yolov2_region_matches_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = 20
    out = random_head(rng, 5, classes, 13)
    thresholds = rng.uniform(0.1, 0.6, classes).round(3).tolist()
    body = {
        "yolo_output": {"output_tensor": "import/output:0", "anchors": SEED_ANCHORS},
        "thresholds": thresholds,
        "discard_threshold": 0.025,
        "nms_threshold": 0.3,
        "normalize_wrt_tensor": "",
    }
    pp = processor("detection", [f"c{i}" for i in range(classes)], {"detection": body})
    frame = ref.letterbox_frame(500, 375, 416)
    result = run(pp, {"import/output:0": out}, frame)
    cands = ref.yolo_candidates(out, SEED_ANCHORS, list(range(classes)), floors(thresholds, 0.025), "SOFTMAX")
    want = ref.detect(cands, frame, 416, 416, thresholds, 0.3)
    assert len(want[0]) > 3
    assert len(want[1]) > 3
    assert_result(result, want)


@pytest.mark.parametrize("agnostic", [False, True])
def test_yolov3_heads_with_sigmoid_classes(agnostic: bool) -> None:
    rng = np.random.default_rng(11)
    classes = 80
    outputs = {name: random_head(rng, 3, classes, size) for name, _, size in V3_HEADS}
    body = {
        "yolo_output": {
            "output_tensors": [{"output_tensor": n, "anchors": a} for n, a, _ in V3_HEADS],
            "class_activation": "SIGMOID",
        },
        "thresholds": [0.3] * classes,
        "nms_threshold": 0.45,
        "nms_class_agnostic": agnostic,
        "discard_threshold": 0.1,
    }
    pp = processor("detection", [f"c{i}" for i in range(classes)], {"detection": body})
    frame = ref.letterbox_frame(768, 576, 416)
    result = run(pp, outputs, frame, max_predictions=40)
    fl = floors([0.3] * classes, 0.1)
    cands = ref.Candidates.concat(
        [ref.yolo_candidates(outputs[n], a, list(range(classes)), fl, "SIGMOID") for n, a, _ in V3_HEADS]
    )
    want = ref.detect(cands, frame, 416, 416, [0.3] * classes, 0.45, agnostic=agnostic, cap=40)
    assert len(want[0]) > 10
    assert_result(result, want)


def test_class_indices_expose_a_subset() -> None:
    rng = np.random.default_rng(5)
    out = random_head(rng, 5, 20, 13)
    subset = [14, 2, 7]
    body = {
        "yolo_output": {"output_tensor": "y", "anchors": SEED_ANCHORS},
        "class_indices": subset,
        "thresholds": [0.2, 0.2, 0.2],
    }
    pp = processor("detection", ["person", "bicycle", "car"], {"detection": body})
    frame = ref.Frame(416, 416, 416, 416)
    result = run(pp, {"y": out}, frame)
    cands = ref.yolo_candidates(out, SEED_ANCHORS, subset, floors([0.2] * 3, 0.025), "SOFTMAX")
    assert_result(result, ref.detect(cands, frame, 416, 416, [0.2] * 3, 0.3))


def test_objectness_only_equals_a_constant_class() -> None:
    """The face-api layout has no class channel; appending a constant logit gives darknet's [region]."""
    rng = np.random.default_rng(3)
    anchors = [
        1.603231,
        2.094468,
        6.041143,
        7.080126,
        2.882459,
        3.518061,
        4.266906,
        5.178857,
        9.041765,
        10.66308,
    ]
    raw = random_head(rng, 5, 0, 13)
    region = np.concatenate([raw.reshape(5, 5, 13, 13), np.zeros((5, 1, 13, 13), np.float32)], axis=1)
    frame = ref.Frame(640, 480, 416, 416, (0, 0, 640, 480), (416 / 640, 416 / 640))
    body = {"yolo_output": {"output_tensor": "out", "anchors": anchors}, "thresholds": [0.5]}
    pp = processor("detection", ["face"], {"detection": body})
    got_raw = run(pp, {"out": raw}, frame)
    got_region = run(pp, {"out": region.reshape(1, 30, 13, 13)}, frame)
    cands = ref.yolo_candidates(raw, anchors, [-1], floors([0.5], 0.025), "SOFTMAX")
    want = ref.detect(cands, frame, 416, 416, [0.5], 0.3)
    assert len(want[0]) > 2
    assert_result(got_raw, want)
    assert_result(got_region, want)
    body = {**body, "class_indices": [0]}
    assert_result(run(processor("detection", ["face"], {"detection": body}), {"out": raw}, frame), want)


def test_mismatched_layout_is_an_invalid_argument() -> None:
    from sightd.errors import InvalidArgumentError

    body = {"yolo_output": {"output_tensor": "out", "anchors": [1.0, 1.0, 2.0, 2.0]}}
    pp = processor("detection", ["a", "b"], {"detection": body})
    frame = ref.Frame(416, 416, 416, 416)
    with pytest.raises(InvalidArgumentError, match="anchors x"):
        run(pp, {"out": np.zeros((1, 13, 13, 13), np.float32)}, frame)
    with pytest.raises(InvalidArgumentError, match="classes but the spec has"):
        run(pp, {"out": np.zeros((1, 16, 13, 13), np.float32)}, frame)
    with pytest.raises(InvalidArgumentError, match="shape"):
        run(pp, {"out": np.zeros((2, 14, 13, 13), np.float32)}, frame)
    with pytest.raises(InvalidArgumentError) as error:
        run(pp, {"out": np.zeros((1, 14, 13, 13), np.float32)}, ref.Frame(416, 416, 0, 0))
    assert error.value.field == "transform"


def test_concurrent_processing_gives_the_sequential_results() -> None:
    """process() releases the GIL and keeps its scratch per thread: threads must not disturb each other."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(21)
    classes = 80
    body = {
        "yolo_output": {
            "output_tensors": [{"output_tensor": n, "anchors": a} for n, a, _ in V3_HEADS],
            "class_activation": "SIGMOID",
        },
        "thresholds": [0.3] * classes,
    }
    pp = processor("detection", [f"c{i}" for i in range(classes)], {"detection": body})
    frame = ref.letterbox_frame(640, 480, 416)
    images = [{name: random_head(rng, 3, classes, size) for name, _, size in V3_HEADS} for _ in range(8)]

    def boxes(outputs: dict[str, np.ndarray]) -> list[tuple[int, float, float, float]]:
        result = run(pp, outputs, frame)
        return [
            (p.label_index, p.score, p.bbox.xmin, p.bbox.ymax) for p in result.predicted + result.discarded
        ]

    sequential = [boxes(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(boxes, images)) == sequential
