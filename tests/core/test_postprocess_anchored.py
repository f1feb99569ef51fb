"""Anchored (Faster R-CNN style) decoding against the NumPy reference."""

from __future__ import annotations

import numpy as np
import postprocess_reference as ref
import pytest
from postprocess_checks import assert_result, processor, run

from sightd.errors import InvalidArgumentError

SEED = {
    "anchored_output": {"anchors_tensor": "rois", "scores_tensor": "cls_prob", "offsets_tensor": "bbox_pred"},
    "discard_threshold": 0.025,
    "nms_threshold": 0.3,
    "normalize_wrt_tensor": "im_info",
}


@pytest.mark.parametrize(("plus_one", "x2"), [(True, 51.0), (False, 50.0)])
def test_zero_deltas_give_the_roi_back(plus_one: bool, x2: float) -> None:
    body = {**SEED, "anchored_output": {**SEED["anchored_output"], "legacy_plus_one": plus_one}}
    pp = processor("detection", ["face"], {"detection": body})
    outputs = {
        "rois": np.array([[0, 10, 10, 50, 50]], np.float32),  # Caffe: batch index first
        "cls_prob": np.array([[0.1, 0.9]], np.float32),  # background first
        "bbox_pred": np.zeros((1, 8), np.float32),
        "im_info": np.array([[100, 200, 1.0]], np.float32),
    }
    frame = ref.Frame(400, 200, 200, 100, (0, 0, 400, 200), (0.5, 0.5))
    result = run(pp, outputs, frame)
    assert [p.label_name for p in result.predicted] == ["face"]
    box = result.predicted[0].bbox
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == pytest.approx((0.05, 0.1, x2 / 200, x2 / 100))
    assert result.predicted[0].score == pytest.approx(0.9)


def random_rois(rng: np.random.Generator, n: int, width: float, height: float) -> np.ndarray:
    xy = rng.uniform(0, [width * 0.9, height * 0.9], size=(n, 2))
    wh = rng.uniform(8, [width * 0.4, height * 0.4], size=(n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, [width - 1, height - 1])], axis=1)


@pytest.mark.parametrize(("seed", "scale"), [(0, 1.0), (1, 1.0), (2, 1.6)])
def test_faster_rcnn_matches_the_reference(seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    n, classes = 300, 6
    rois = random_rois(rng, n, 800, 600)
    cls_prob = ref.softmax(rng.normal(0, 2.5, size=(n, classes + 1))).astype(np.float32)
    bbox_pred = rng.normal(0, 0.2, size=(n, 4 * (classes + 1))).astype(np.float32)
    outputs = {
        "rois": np.concatenate([np.zeros((n, 1)), rois], axis=1).astype(np.float32),
        "cls_prob": cls_prob,
        "bbox_pred": bbox_pred,
        "im_info": np.array([600, 800, scale], np.float32),
    }
    thresholds = rng.uniform(0.3, 0.8, classes).round(2).tolist()
    anchored = {**SEED["anchored_output"], "legacy_plus_one": True}  # py-faster-rcnn's convention
    body = {**SEED, "anchored_output": anchored, "thresholds": thresholds}
    pp = processor("detection", [f"c{i}" for i in range(classes)], {"detection": body})
    frame = ref.Frame(1600, 1200, 800, 600, (0, 0, 1600, 1200), (0.5, 0.5))
    result = run(pp, outputs, frame)
    fl = np.minimum(0.025, thresholds)
    cands = ref.anchored_candidates(
        outputs["rois"], cls_prob, bbox_pred, list(range(1, classes + 1)), fl, True
    )
    s = float(np.float32(scale))  # as im_info holds it
    want = ref.detect(cands, frame, s / 800 * 800, s / 600 * 600, thresholds, 0.3)
    assert len(want[0]) > 5
    assert_result(result, want)


def test_retinaface_style_priors_with_shared_layout() -> None:
    """Priors in tensor pixels, softmaxed (background, face) scores, per-class deltas, no normalisation."""
    rng = np.random.default_rng(4)
    n = 2000
    priors = random_rois(rng, n, 640, 640).astype(np.float32)
    conf = ref.softmax(rng.normal(0, 3, size=(1, n, 2))).astype(np.float32)
    loc = rng.normal(0, 0.3, size=(1, n, 8)).astype(np.float32)
    body = {
        "anchored_output": {
            "anchors_tensor": "priors",
            "scores_tensor": "conf",
            "offsets_tensor": "loc",
            "legacy_plus_one": False,
        },
        "thresholds": [0.5],
        "nms_threshold": 0.4,
    }
    pp = processor("detection", ["face"], {"detection": body})
    frame = ref.letterbox_frame(1024, 768, 640)
    result = run(pp, {"priors": priors, "conf": conf, "loc": loc}, frame)
    cands = ref.anchored_candidates(priors, conf, loc, [1], np.array([0.025]), False)
    want = ref.detect(cands, frame, 1.0, 1.0, [0.5], 0.4)
    assert len(want[0]) > 5
    assert_result(result, want)


def test_class_agnostic_offsets_and_no_background_column() -> None:
    rng = np.random.default_rng(9)
    n, classes = 200, 3
    rois = random_rois(rng, n, 300, 300).astype(np.float32)
    scores = rng.uniform(0, 1, size=(n, classes)).astype(np.float32)
    offsets = rng.normal(0, 0.1, size=(n, 4)).astype(np.float32)
    body = {
        "anchored_output": {"anchors_tensor": "a", "scores_tensor": "s", "offsets_tensor": "o"},
        "thresholds": [0.9, 0.95, 0.9],
    }
    pp = processor("detection", ["x", "y", "z"], {"detection": body})
    frame = ref.Frame(300, 300, 300, 300)
    result = run(pp, {"a": rois, "s": scores, "o": offsets}, frame)
    cands = ref.anchored_candidates(rois, scores, offsets, [0, 1, 2], np.array([0.025] * 3), False)
    assert_result(result, ref.detect(cands, frame, 1.0, 1.0, [0.9, 0.95, 0.9], 0.3))


def test_mismatched_tensors_are_invalid_arguments() -> None:
    pp = processor("detection", ["a"], {"detection": {**SEED, "normalize_wrt_tensor": ""}})
    frame = ref.Frame(100, 100, 100, 100)
    good = {
        "rois": np.zeros((4, 5), np.float32),
        "cls_prob": np.zeros((4, 2), np.float32),
        "bbox_pred": np.zeros((4, 8), np.float32),
    }
    assert run(pp, good, frame).predicted == []
    with pytest.raises(InvalidArgumentError, match="as many rows"):
        run(pp, {**good, "cls_prob": np.zeros((3, 2), np.float32)}, frame)
    with pytest.raises(InvalidArgumentError, match="offsets per anchor"):
        run(pp, {**good, "bbox_pred": np.zeros((4, 6), np.float32)}, frame)
    with pytest.raises(InvalidArgumentError, match="4 or 5 values"):
        run(pp, {**good, "rois": np.zeros((4, 3), np.float32)}, frame)
    with pytest.raises(InvalidArgumentError, match="plus background"):
        run(
            pp,
            {**good, "cls_prob": np.zeros((4, 3), np.float32), "bbox_pred": np.zeros((4, 12), np.float32)},
            frame,
        )
    pp = processor("detection", ["a"], {"detection": SEED})
    with pytest.raises(InvalidArgumentError, match="positive"):
        run(pp, {**good, "im_info": np.array([0, 100, 1], np.float32)}, frame)
