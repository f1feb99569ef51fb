"""Detection edge cases: nothing found, all below threshold, degenerate, inverted, non-finite, off-image."""

from __future__ import annotations

import math

import numpy as np
import postprocess_reference as ref
import pytest
from postprocess_checks import processor, run

from sightd.errors import InvalidArgumentError

DIRECT = {"direct_output": {"boxes_tensor": "b", "scores_tensor": "s", "classes_tensor": "c"}}
FRAME = ref.Frame(200, 100, 200, 100, (0, 0, 200, 100))


def direct(
    boxes: list[list[float]], scores: list[float], classes: list[float] | None = None
) -> dict[str, np.ndarray]:
    return {
        "b": np.array(boxes, np.float32).reshape(-1, 4),
        "s": np.array(scores, np.float32),
        "c": np.array(classes if classes is not None else [0] * len(scores), np.float32),
    }


def boxes_of(predictions) -> list[tuple[float, float, float, float]]:  # type: ignore[no-untyped-def]
    return [(p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax) for p in predictions]


def test_no_boxes_at_all() -> None:
    pp = processor("detection", ["a"], {"detection": DIRECT})
    result = run(pp, direct([], []), FRAME)
    assert result.predicted == []
    assert result.discarded == []
    yolo = processor(
        "detection", ["a"], {"detection": {"yolo_output": {"output_tensor": "y", "anchors": [1, 1]}}}
    )
    result = run(yolo, {"y": np.full((1, 6, 7, 7), -30, np.float32)}, FRAME)
    assert result.predicted == []
    assert result.discarded == []


def test_everything_below_threshold() -> None:
    pp = processor("detection", ["a"], {"detection": DIRECT})
    outputs = direct([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0, 1, 1]], [0.5, 0.79, 0.02])
    result = run(pp, outputs, FRAME)
    assert result.predicted == []
    assert [p.score for p in result.discarded] == pytest.approx(
        [0.79, 0.5]
    )  # 0.02 is under discard_threshold
    assert [p.region_id for p in result.discarded] == [1, 2]
    assert run(pp, outputs, FRAME, show_discarded=False).discarded == []


def test_degenerate_inverted_and_off_image_boxes() -> None:
    pp = processor("detection", ["a"], {"detection": {**DIRECT, "thresholds": [0.5]}})
    outputs = direct(
        [
            [0.2, 0.2, 0.2, 0.6],  # zero height: dropped
            [0.6, 0.7, 0.2, 0.1],  # inverted: taken as (ymin 0.2, xmin 0.1, ymax 0.6, xmax 0.7)
            [1.2, 1.2, 1.5, 1.5],  # entirely outside the image: dropped
            [-0.5, 0.8, 0.5, 1.5],  # partly outside: clamped
        ],
        [0.9, 0.8, 0.95, 0.7],
    )
    result = run(pp, outputs, FRAME)
    np.testing.assert_allclose(
        boxes_of(result.predicted), [(0.1, 0.2, 0.7, 0.6), (0.8, 0.0, 1.0, 0.5)], rtol=1e-6
    )
    assert [p.score for p in result.predicted] == pytest.approx([0.8, 0.7])


def test_boxes_are_clamped_to_the_roi_the_network_saw() -> None:
    pp = processor("detection", ["a"], {"detection": {**DIRECT, "thresholds": [0.5]}})
    # The network saw the crop x 100..300, y 50..150 of a 400x200 image, squashed into a 100x100 tensor.
    frame = ref.Frame(400, 200, 100, 100, (100, 50, 200, 100), (0.5, 1.0))
    result = run(pp, direct([[-0.1, -0.2, 0.5, 0.5]], [0.9]), frame)
    # x: -0.2 -> 100 + (-20) / 0.5 = 60 px, clamped to 100 px = 0.25; 0.5 -> 200 px = 0.5
    np.testing.assert_allclose(boxes_of(result.predicted), [(0.25, 0.25, 0.5, 0.5)], rtol=1e-6)
    assert result.predicted[0].region_id == 1


def test_non_finite_values_are_never_reported() -> None:
    pp = processor("detection", ["a"], {"detection": {**DIRECT, "thresholds": [0.5]}})
    outputs = direct(
        [[0, 0, 0.5, 0.5], [0, 0, math.nan, 0.5], [0, 0, 0.5, math.inf], [0.5, 0.5, 1, 1], [0.5, 0, 1, 0.4]],
        [math.inf, 0.9, 0.9, math.nan, 0.6],
        [0, 0, 0, 0, math.nan],
    )
    result = run(pp, outputs, FRAME)
    assert result.predicted == []
    assert result.discarded == []

    yolo = processor(
        "detection", ["a"], {"detection": {"yolo_output": {"output_tensor": "y", "anchors": [1, 1]}}}
    )
    out = np.full((1, 6, 4, 4), -30, np.float32)
    out[0, 4, :2, :2] = 10  # four confident cells...
    out[0, 0, 0, 0] = math.nan  # ...a NaN x
    out[0, 2, 0, 1] = 1e30  # ...an infinite width
    out[0, 4, 1, 0] = math.nan  # ...a NaN objectness
    result = run(yolo, {"y": out}, FRAME)
    assert len(result.predicted) == 1
    assert all(math.isfinite(p.score) for p in result.predicted)


def test_a_batch_where_one_image_has_no_detections() -> None:
    """A batched output sliced per image, as the pipeline hands it over: the second image finds nothing."""
    rng = np.random.default_rng(0)
    batch = np.full((2, 6, 13, 13), -30, np.float32)
    batch[0, :4] = rng.normal(0, 0.5, size=(4, 13, 13))
    batch[0, 4, 3, 5] = 6
    pp = processor(
        "detection", ["a"], {"detection": {"yolo_output": {"output_tensor": "y", "anchors": [2, 2]}}}
    )
    first = run(pp, {"y": batch[0]}, FRAME)
    second = run(pp, {"y": batch[1]}, FRAME)
    assert len(first.predicted) == 1
    assert second.predicted == []
    assert second.discarded == []


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_element_types_decode_alike(dtype: type) -> None:
    rng = np.random.default_rng(1)
    out = rng.normal(0, 2, size=(1, 2 * 8, 9, 9)).astype(dtype)
    body = {"yolo_output": {"output_tensor": "y", "anchors": [1, 2, 3, 1]}, "thresholds": [0.3, 0.3, 0.3]}
    pp = processor("detection", ["a", "b", "c"], {"detection": body})
    got = run(pp, {"y": out}, FRAME)
    want = run(pp, {"y": out.astype(np.float32)}, FRAME)
    assert boxes_of(got.predicted) == boxes_of(want.predicted)
    assert len(got.predicted) > 0


def test_empty_tensors_declaring_huge_dimensions() -> None:
    """Zero-element tensors may declare any other dimension: shape arithmetic must not overflow on them,
    nor walk their rows (a model can output such shapes)."""
    anchored = processor(
        "detection",
        ["a"],
        {
            "detection": {
                "anchored_output": {"anchors_tensor": "r", "scores_tensor": "s", "offsets_tensor": "o"},
                "class_indices": [0],
            }
        },
    )
    # 4 x 2**62 columns wraps to 0 in 64 bits: 0 offsets per row must not pass for 4 per column.
    outputs = {"r": np.zeros((0, 4), np.float32), "s": np.empty((0, 2**62), np.int8), "o": np.zeros((0, 0))}
    with pytest.raises(InvalidArgumentError) as refused:
        run(anchored, outputs, FRAME)
    assert refused.value.field == "detection.anchored_output.offsets_tensor"

    yolo = processor(
        "detection", ["a"], {"detection": {"yolo_output": {"output_tensor": "y", "anchors": [1, 1]}}}
    )
    for shape in [(1, 6, 2**50, 0), (6, 0, 2**50)]:
        result = run(yolo, {"y": np.empty(shape, np.float32)}, FRAME)
        assert result.predicted == []
        assert result.discarded == []
