"""Classification and tagging through the core against the NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import postprocess_reference as ref
import pytest
from postprocess_checks import assert_result, processor, run

from sightd.errors import InvalidArgumentError


def test_seed_classification_with_default_thresholds() -> None:
    pp = processor(
        "classification", ["hot-dog", "not hot-dog", "other"], {"classification": {"output_tensor": "prob"}}
    )
    result = run(pp, {"prob": np.array([[0.02, 0.9, 0.08]], np.float32)})
    assert [(p.label_name, p.label_id) for p in result.predicted] == [("not hot-dog", 1), ("other", 2)]
    assert [p.threshold for p in result.predicted] == [0.025, 0.025]
    assert [p.label_name for p in result.discarded] == ["hot-dog"]
    assert result.predicted[0].score == pytest.approx(0.9)


def test_tagging_defaults_to_one_half() -> None:
    pp = processor("tagging", ["is_reptile", "is_lezard"], {"classification": {"output_tensor": "p"}})
    result = run(pp, {"p": np.array([0.49, 0.51], np.float32)})
    assert [p.label_name for p in result.predicted] == ["is_lezard"]
    assert [p.threshold for p in result.predicted] == [0.5]


def test_ties_keep_spec_order() -> None:
    pp = processor("tagging", list("abcd"), {"classification": {"output_tensor": "p"}})
    result = run(pp, {"p": np.array([0.6, 0.7, 0.6, 0.7], np.float32)})
    assert [p.label_name for p in result.predicted] == ["b", "d", "a", "c"]


@pytest.mark.parametrize("activation", ["NONE", "SOFTMAX", "SIGMOID"])
@pytest.mark.parametrize("seed", range(4))
def test_random_scores_match_the_reference(activation: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = 60
    labels = 25
    class_indices = rng.permutation(classes)[:labels].tolist()
    thresholds = rng.uniform(0, 0.3 if activation == "SOFTMAX" else 0.8, labels).round(3).tolist()
    values = rng.normal(0, 3, classes).astype(np.float32)
    if activation == "NONE":
        values = rng.uniform(0, 1, classes).astype(np.float32)
    body = {
        "output_tensor": "out",
        "activation": activation,
        "class_indices": class_indices,
        "thresholds": thresholds,
    }
    pp = processor("tagging", [f"l{i}" for i in range(labels)], {"classification": body})
    cap = int(rng.integers(1, 10)) if seed % 2 else None
    result = run(pp, {"out": values[None]}, max_predictions=cap)
    assert_result(result, ref.classify(values, activation, class_indices, thresholds, cap), boxes=False)
    assert not result.has_roi


def test_softmax_is_over_every_network_class() -> None:
    values = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    body = {"output_tensor": "out", "activation": "SOFTMAX", "class_indices": [3, 0]}
    result = run(processor("classification", ["three", "zero"], {"classification": body}), {"out": values})
    probs = ref.softmax(values)
    assert [p.score for p in result.predicted] == pytest.approx([probs[3], probs[0]], rel=1e-12)


def test_max_predictions_caps_predicted_and_discarded() -> None:
    pp = processor("tagging", list("abcdef"), {"classification": {"output_tensor": "p"}})
    values = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3], np.float32)
    result = run(pp, {"p": values}, max_predictions=2)
    assert [p.label_name for p in result.predicted] == ["a", "c"]
    assert [p.label_name for p in result.discarded] == ["f", "d"]
    result = run(pp, {"p": values}, max_predictions=0)
    assert result.predicted == []
    assert result.discarded == []
    assert run(pp, {"p": values}, show_discarded=False).discarded == []


def test_non_finite_scores_are_never_reported() -> None:
    pp = processor("tagging", list("abcd"), {"classification": {"output_tensor": "p"}})
    result = run(pp, {"p": np.array([math.nan, math.inf, 0.9, -math.inf], np.float32)})
    assert [p.label_name for p in result.predicted] == ["c"]
    assert result.discarded == []
    body = {"output_tensor": "p", "activation": "SOFTMAX"}
    result = run(
        processor("classification", list("ab"), {"classification": body}), {"p": np.array([math.nan, 1.0])}
    )
    assert result.predicted == []
    assert result.discarded == []


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.uint8])
def test_other_element_types(dtype: type) -> None:
    pp = processor("tagging", list("abc"), {"classification": {"output_tensor": "p"}})
    result = run(pp, {"p": np.array([[[[0]], [[1]], [[1]]]], dtype=dtype)})  # Caffe's [1, C, 1, 1]
    assert [p.label_name for p in result.predicted] == ["b", "c"]
    assert [p.score for p in result.predicted] == [1.0, 1.0]


def test_shape_and_class_count_mismatches_are_invalid_arguments() -> None:
    pp = processor("classification", list("abc"), {"classification": {"output_tensor": "p"}})
    with pytest.raises(InvalidArgumentError, match="classes but the spec has"):
        run(pp, {"p": np.zeros(4, np.float32)})
    with pytest.raises(InvalidArgumentError) as error:
        run(pp, {"p": np.zeros((2, 3), np.float32)})
    assert error.value.field == "classification.output_tensor"
    with pytest.raises(InvalidArgumentError, match="missing"):
        run(pp, {"other": np.zeros(3, np.float32)})
    body = {"output_tensor": "p", "class_indices": [0, 1, 7]}
    with pytest.raises(InvalidArgumentError) as error:
        run(
            processor("classification", list("abc"), {"classification": body}), {"p": np.zeros(5, np.float32)}
        )
    assert error.value.field == "class_indices[2]"
