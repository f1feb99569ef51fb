"""Direct (TensorFlow Object Detection API style) outputs against the NumPy reference."""

from __future__ import annotations

import numpy as np
import postprocess_reference as ref
import pytest
from postprocess_checks import assert_result, processor, run

SEED = {
    "direct_output": {
        "boxes_tensor": "detection_boxes:0",
        "scores_tensor": "detection_scores:0",
        "classes_tensor": "detection_classes:0",
    },
    "discard_threshold": 0.025,
    "nms_threshold": 0.3,
    "normalize_wrt_tensor": "",
}


def tf_outputs(rng: np.random.Generator, n: int, max_class: int) -> dict[str, np.ndarray]:
    ymin, xmin = rng.uniform(0, 0.8, size=(2, n))
    h, w = rng.uniform(0.05, 0.4, size=(2, n))
    boxes = np.stack([ymin, xmin, np.minimum(ymin + h, 1), np.minimum(xmin + w, 1)], axis=1)
    return {
        "detection_boxes:0": boxes[None].astype(np.float32),
        "detection_scores:0": np.sort(rng.uniform(0, 1, n))[::-1][None].astype(np.float32),
        "detection_classes:0": rng.integers(1, max_class + 1, n)[None].astype(np.float32),
    }


@pytest.mark.parametrize("count", [None, 37])
def test_classes_map_to_spec_label_ids(count: int | None) -> None:
    """Class values are spec label ids (1-based COCO ids here); ids the spec lacks are not exposed."""
    rng = np.random.default_rng(1)
    outputs = tf_outputs(rng, 100, 5)
    ids = [1, 3, 4]
    body = {**SEED, "thresholds": [0.5, 0.6, 0.7]}
    if count is not None:
        body["direct_output"] = {**SEED["direct_output"], "num_detections_tensor": "num_detections:0"}
        outputs["num_detections:0"] = np.array([count], np.float32)
    pp = processor("detection", ["person", "car", "motorcycle"], {"detection": body}, ids=ids)
    frame = ref.Frame(1000, 750, 500, 375, (0, 0, 1000, 750), (0.5, 0.5))
    result = run(pp, outputs, frame)
    cands = ref.direct_candidates(
        *(outputs[k] for k in ("detection_boxes:0", "detection_scores:0", "detection_classes:0")),
        ids,
        np.array([0.025] * 3),
        count,
    )
    want = ref.detect(cands, frame, 500, 375, [0.5, 0.6, 0.7], 0.3)
    assert len(want[0]) > 3
    assert_result(result, want)
    assert {p.label_id for p in result.predicted} <= set(ids)


def test_class_indices_override_the_ids() -> None:
    rng = np.random.default_rng(2)
    outputs = tf_outputs(rng, 60, 4)
    body = {**SEED, "class_indices": [4, 2], "thresholds": [0.4, 0.4]}
    pp = processor("detection", ["a", "b"], {"detection": body}, ids=[10, 20])
    frame = ref.Frame(300, 300, 300, 300)
    result = run(pp, outputs, frame)
    cands = ref.direct_candidates(
        outputs["detection_boxes:0"],
        outputs["detection_scores:0"],
        outputs["detection_classes:0"],
        [4, 2],
        np.array([0.025] * 2),
    )
    assert_result(result, ref.detect(cands, frame, 300, 300, [0.4, 0.4], 0.3))
    assert {p.label_id for p in result.predicted} == {10, 20}


def test_normalize_wrt_tensor_takes_pixel_boxes() -> None:
    """Boxes in pixels of a (height, width) frame named by normalize_wrt_tensor."""
    body = {**SEED, "normalize_wrt_tensor": "size", "thresholds": [0.5]}
    pp = processor("detection", ["a"], {"detection": body}, ids=[1])
    outputs = {
        "detection_boxes:0": np.array([[20, 40, 60, 100]], np.float32),  # ymin, xmin, ymax, xmax px
        "detection_scores:0": np.array([0.9], np.float32),
        "detection_classes:0": np.array([1], np.float32),
        "size": np.array([100, 200], np.int64),
    }
    result = run(pp, outputs, ref.Frame(400, 200, 400, 200, (0, 0, 400, 200)))
    box = result.predicted[0].bbox
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == pytest.approx((0.2, 0.2, 0.5, 0.6))
