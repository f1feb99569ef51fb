"""The core's NMS against the NumPy reference and OpenCV, on hand-made cases and hypothesis-generated ones."""

from __future__ import annotations

import math

import cv2
import numpy as np
import postprocess_reference as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sightd import _core
from sightd.errors import InvalidArgumentError


def core_nms(boxes, scores, classes=None, threshold=0.5):  # type: ignore[no-untyped-def]
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = None if classes is None else np.asarray(classes, dtype=np.int32)
    return _core.nms(b, np.asarray(scores, dtype=np.float64), c, threshold).tolist()


def test_overlapping_boxes_keep_the_best() -> None:
    boxes = [[0, 0, 10, 10], [4, 4, 14, 14], [20, 20, 30, 30], [0, 0, 10, 9]]
    assert core_nms(boxes, [0.8, 0.9, 0.7, 0.95]) == [3, 1, 2]


def test_iou_equal_to_the_threshold_is_not_suppressed() -> None:
    boxes = [[0, 0, 2, 1], [1, 0, 3, 1]]  # IoU exactly 1/3
    assert core_nms(boxes, [0.9, 0.8], threshold=1 / 3) == [0, 1]
    assert core_nms(boxes, [0.9, 0.8], threshold=0.33) == [0]


def test_ties_keep_the_lower_index() -> None:
    boxes = [[0, 0, 1, 1]] * 3
    assert core_nms(boxes, [0.5, 0.5, 0.5]) == [0]
    assert core_nms([[0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1]], [0.5, 0.5, 0.5]) == [0, 1]


def test_classes_do_not_suppress_each_other() -> None:
    boxes = [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]
    assert core_nms(boxes, [0.9, 0.8, 0.7], [0, 1, 0]) == [0, 1]
    assert core_nms(boxes, [0.9, 0.8, 0.7], None) == [0]
    # Class values far apart take the core's sorting path instead of its counting one.
    assert core_nms(boxes, [0.9, 0.8, 0.7], [-(2**31), 2**31 - 1, -(2**31)]) == [0, 1]


def test_non_finite_boxes_and_scores_are_never_kept() -> None:
    boxes = [[0, 0, 1, 1], [0, 0, math.nan, 1], [0, 0, 1, 1], [0, 0, 1, math.inf]]
    assert core_nms(boxes, [math.nan, 0.9, 0.5, 0.8]) == [2]
    assert core_nms([[0, 0, 1, 1]], [math.inf]) == []


def test_inverted_boxes_are_swapped() -> None:
    assert core_nms([[10, 10, 0, 0], [0, 0, 10, 10]], [0.9, 0.8]) == [0]


def test_empty_boxes_overlap_nothing() -> None:
    assert core_nms([[0, 0, 0, 0], [0, 0, 0, 0]], [0.9, 0.8]) == [0, 1]
    assert core_nms(np.zeros((0, 4)), np.zeros(0)) == []


def test_threshold_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        core_nms([[0, 0, 1, 1]], [0.5], threshold=1.5)
    with pytest.raises(InvalidArgumentError):
        core_nms([[0, 0, 1, 1]], [0.5], threshold=math.nan)
    with pytest.raises(InvalidArgumentError):
        _core.nms(np.zeros((2, 3)), np.zeros(2), None, 0.5)


def test_agrees_with_opencv_on_random_boxes() -> None:
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 500, size=(2000, 2))
    wh = rng.uniform(5, 80, size=(2000, 2))
    scores = rng.uniform(0, 1, size=2000)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    rects = [tuple(map(float, r)) for r in np.concatenate([xy, wh], axis=1)]
    for threshold in (0.3, 0.5, 0.7):
        want = np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, threshold)).reshape(-1).tolist()
        assert core_nms(boxes, scores, threshold=threshold) == want
        assert core_nms(boxes, scores, threshold=threshold) == ref.nms(boxes, scores, None, threshold)


# Coordinates on a small integer grid make exact ties and IoUs equal to the threshold likely.
coordinate = st.one_of(st.integers(-3, 12).map(float), st.floats(-5, 15, allow_nan=False, width=32))
score = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0, 1, width=32))
threshold = st.one_of(st.sampled_from([0.0, 1 / 3, 0.5, 1.0]), st.floats(0, 1))


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
    n = draw(st.integers(0, 40))
    boxes = np.array(draw(st.lists(st.tuples(*[coordinate] * 4), min_size=n, max_size=n)), dtype=np.float64)
    scores = np.array(draw(st.lists(score, min_size=n, max_size=n)), dtype=np.float64)
    classes = draw(st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return (
        boxes.reshape(-1, 4),
        scores,
        None if classes is None else np.array(classes, np.int32),
        draw(threshold),
    )


@settings(max_examples=300, deadline=None)
@given(problems())
def test_nms_properties(problem: tuple[np.ndarray, np.ndarray, np.ndarray | None, float]) -> None:
    boxes, scores, classes, thr = problem
    kept = core_nms(boxes, scores, classes, thr)
    # a subset, without repeats
    assert len(set(kept)) == len(kept)
    assert set(kept) <= set(range(len(boxes)))
    # ordered by score, ties by index
    keys = [(-scores[i], i) for i in kept]
    assert keys == sorted(keys)
    # no two kept boxes of one class overlap above the threshold
    canon = ref.canonical(boxes)
    for a in range(len(kept)):
        for b in range(a + 1, len(kept)):
            i, j = kept[a], kept[b]
            if classes is None or classes[i] == classes[j]:
                assert ref.iou_matrix(canon[i : i + 1], canon[j : j + 1])[0, 0] <= thr
    # and it is the reference's set, in the reference's order
    assert kept == ref.nms(boxes, scores, classes, thr)


@settings(max_examples=100, deadline=None)
@given(problems(), st.lists(st.integers(0, 39), max_size=5))
def test_nms_skips_nan_like_the_reference(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray | None, float], poisoned: list[int]
) -> None:
    boxes, scores, classes, thr = problem
    for i in poisoned:
        if i < len(boxes):
            if i % 2:
                scores[i] = math.nan
            else:
                boxes[i, i % 4] = math.inf
    kept = core_nms(boxes, scores, classes, thr)
    assert not set(kept) & {i for i in poisoned if i < len(boxes)}
    assert kept == ref.nms(boxes, scores, classes, thr)


def test_strided_arrays_are_accepted() -> None:
    """Detections usually come as one [N, 6] array: its column views are not C-contiguous."""
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, size=(50, 2))
    dets = np.concatenate([xy, xy + rng.uniform(5, 40, size=(50, 2)), rng.uniform(size=(50, 1))], axis=1)
    dets = np.concatenate([dets, rng.integers(0, 3, size=(50, 1))], axis=1)
    want = ref.nms(dets[:, :4].copy(), dets[:, 4].copy(), dets[:, 5].astype(np.int32), 0.5)
    assert _core.nms(dets[:, :4], dets[:, 4], dets[:, 5], 0.5).tolist() == want
