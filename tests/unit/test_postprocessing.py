"""Parsing and validation of v0.7 spec outputs and post_processings, and the result JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from sightd import _core
from sightd.errors import InvalidArgumentError
from sightd.postprocessing import (
    PostProcessingError,
    VersionPostProcessor,
    parse_post_processings,
    parse_spec_outputs,
)


def generate_outputs(labels: list[str], algo: str) -> list[dict[str, Any]]:
    """The seed's own example, verbatim."""
    return [
        {
            "labels": {
                "roi": "BBOX" if algo == "detection" else "NONE",
                "exclusive": algo != "tagging",
                "labels": [{"id": i, "name": l} for (i, l) in enumerate(labels)],  # noqa: E741
            }
        }
    ]


SEED_POST_PROCESSINGS = {
    "classification": {"classification": {"output_tensor": "inception_v3/logits/predictions"}},
    "anchored": {
        "detection": {
            "anchored_output": {
                "anchors_tensor": "rois",
                "scores_tensor": "cls_prob",
                "offsets_tensor": "bbox_pred",
            },
            "discard_threshold": 0.025,
            "nms_threshold": 0.3,
            "normalize_wrt_tensor": "im_info",
        }
    },
    "direct": {
        "detection": {
            "direct_output": {
                "boxes_tensor": "detection_boxes:0",
                "scores_tensor": "detection_scores:0",
                "classes_tensor": "detection_classes:0",
            },
            "discard_threshold": 0.025,
            "nms_threshold": 0.3,
            "normalize_wrt_tensor": "",
        }
    },
    "yolo": {
        "detection": {
            "yolo_output": {
                "output_tensor": "import/output:0",
                "anchors": [
                    1.3221,
                    1.73145,
                    3.19275,
                    4.00944,
                    5.05587,
                    8.09892,
                    9.47112,
                    4.84053,
                    11.2364,
                    10.0071,
                ],
            },
            "discard_threshold": 0.025,
            "nms_threshold": 0.3,
            "normalize_wrt_tensor": "",
        }
    },
}


@pytest.mark.parametrize(
    ("example", "algo", "required"),
    [
        ("classification", "classification", ["inception_v3/logits/predictions"]),
        ("classification", "tagging", ["inception_v3/logits/predictions"]),
        ("anchored", "detection", ["rois", "cls_prob", "bbox_pred", "im_info"]),
        ("direct", "detection", ["detection_boxes:0", "detection_scores:0", "detection_classes:0"]),
        ("yolo", "detection", ["import/output:0"]),
    ],
)
def test_seed_examples_parse(example: str, algo: str, required: list[str]) -> None:
    version = VersionPostProcessor.from_json(
        generate_outputs(["a", "b"], algo), [SEED_POST_PROCESSINGS[example]]
    )
    assert version.required_tensors == required
    default = {"classification": 0.025, "tagging": 0.5, "detection": 0.8}[algo]
    assert version.processors[0].thresholds == [default, default]


def test_extensions_parse() -> None:
    spec = generate_outputs(["car", "dog"], "detection")
    post = {
        "detection": {
            "yolo_output": {
                "output_tensors": [
                    {"output_tensor": "h13", "anchors": [2.5, 2.5, 4.2, 5.3]},
                    {"output_tensor": "h26", "anchors": [0.6, 0.9]},
                ],
                "class_activation": "SIGMOID",
            },
            "thresholds": [0.3, 0.4],
            "class_indices": [2, 16],
            "nms_class_agnostic": True,
        }
    }
    (config,) = parse_post_processings([post], parse_spec_outputs(spec))
    assert [h.output_tensor for h in config.detection.yolo.heads] == ["h13", "h26"]
    assert config.detection.yolo.class_activation == _core.Activation.SIGMOID
    assert config.class_indices == [2, 16]
    assert config.detection.nms_class_agnostic
    assert config.thresholds == [0.3, 0.4]
    classification = {
        "classification": {"output_tensor": "x", "activation": "SOFTMAX", "class_indices": [5, 1]}
    }
    (config,) = parse_post_processings(
        [classification], parse_spec_outputs(generate_outputs(["a", "b"], "tagging"))
    )
    assert config.classification.activation == _core.Activation.SOFTMAX
    anchored = {
        "detection": {
            "anchored_output": {
                "anchors_tensor": "a",
                "scores_tensor": "s",
                "offsets_tensor": "o",
                "legacy_plus_one": False,
            }
        }
    }
    direct = {
        "detection": {
            "direct_output": {
                "boxes_tensor": "b",
                "scores_tensor": "s",
                "classes_tensor": "c",
                "num_detections_tensor": "n",
            }
        }
    }
    version = VersionPostProcessor.from_json(generate_outputs(["a"], "detection") * 2, [anchored, direct])
    assert version.required_tensors == ["a", "s", "o", "b", "c", "n"]
    assert version.processors[0].thresholds == [0.8]


def test_every_violation_is_reported_with_its_path() -> None:
    spec = [
        {
            "labels": {
                "roi": "BOX",
                "exclusive": "yes",
                "labels": [{"id": 1, "name": "a"}, {"id": 1, "name": ""}],
            }
        },
        {"labels": {"roi": "BBOX", "exclusive": True, "labels": [{"id": 0, "name": "x"}]}},
    ]
    post = [
        {"classification": {"output_tensor": "", "thresholds": [0.5], "activation": "RELU"}},
        {
            "detection": {
                "yolo_output": {"output_tensor": "y", "anchors": [1, -2, 3]},
                "nms_treshold": 0.3,
                "discard_threshold": 1.5,
                "nms_threshold": "0.3",
                "thresholds": [True],
                "class_indices": [-1],
                "normalize_wrt_tensor": "im_info",
            }
        },
    ]
    with pytest.raises(PostProcessingError) as caught:
        VersionPostProcessor.from_json(spec, post)
    error = caught.value
    assert isinstance(error, InvalidArgumentError)
    fields = [field for field, _ in error.violations]
    assert fields == [
        "outputs[0].labels.roi",
        "outputs[0].labels.exclusive",
        "outputs[0].labels.labels[1].name",
        "outputs[0].labels.labels[1].id",
        "post_processings[0].classification.output_tensor",
        "post_processings[0].classification.activation",
        "post_processings[0].classification.thresholds",
        "post_processings[1].detection.nms_treshold",
        "post_processings[1].detection.discard_threshold",
        "post_processings[1].detection.nms_threshold",
        "post_processings[1].detection.yolo_output.anchors",
        "post_processings[1].detection.yolo_output.anchors[1]",
        "post_processings[1].detection.normalize_wrt_tensor",
        "post_processings[1].detection.thresholds[0]",
        "post_processings[1].detection.class_indices[0]",
    ]
    assert error.field == "outputs[0].labels.roi"
    assert "nms_treshold: unknown field" in str(error)


def test_kind_and_count_mismatches() -> None:
    detection_spec = generate_outputs(["a"], "detection")
    with pytest.raises(PostProcessingError) as caught:
        VersionPostProcessor.from_json(detection_spec, [SEED_POST_PROCESSINGS["classification"]])
    assert caught.value.violations[0][0] == "post_processings[0].classification"
    with pytest.raises(PostProcessingError) as caught:
        VersionPostProcessor.from_json(detection_spec, [])
    assert caught.value.violations == [
        ("post_processings", "expected one post-processing per spec output (1), got 0")
    ]
    with pytest.raises(PostProcessingError) as caught:
        VersionPostProcessor.from_json(detection_spec, [{"detection": {"thresholds": [0.5]}}])
    assert caught.value.violations[0] == (
        "post_processings[0].detection",
        "expected exactly one of anchored_output, direct_output, yolo_output",
    )
    with pytest.raises(PostProcessingError) as caught:
        parse_spec_outputs([])
    assert caught.value.violations == [("outputs", "must hold at least one output")]
    with pytest.raises(PostProcessingError) as caught:
        parse_spec_outputs([{"labels": {"labels": []}}])
    assert [f for f, _ in caught.value.violations] == [
        "outputs[0].labels.roi",
        "outputs[0].labels.exclusive",
        "outputs[0].labels.labels",
    ]


def yolo_version(labels: list[str]) -> VersionPostProcessor:
    post = {
        "detection": {
            "yolo_output": {"output_tensor": "y", "anchors": [2.0, 2.0]},
            "thresholds": [0.5] * len(labels),
        }
    }
    return VersionPostProcessor.from_json(generate_outputs(labels, "detection"), [post])


def square_transform(size: int) -> _core.Transform:
    t = _core.Transform()
    t.image_width = t.image_height = t.tensor_width = t.tensor_height = size
    return t


def test_detection_result_json_has_the_seed_structure() -> None:
    out = np.full((1, 7, 4, 4), -30, np.float32)
    out[0, 0:4, 1, 2] = 0.0
    out[0, 4, 1, 2] = 3.0  # objectness 0.952574...
    out[0, 5:7, 1, 2] = [2.0, 0.0]
    result = yolo_version(["sunglasses", "hat"]).process_json(
        {"y": out}, square_transform(100), show_discarded=True
    )
    assert json.loads(json.dumps(result)) == result
    (output,) = result["outputs"]
    predicted = output["labels"]["predicted"]
    assert [list(p) for p in predicted] == [["label_name", "label_id", "roi", "score", "threshold"]]
    item = predicted[0]
    assert item["label_name"] == "sunglasses"
    assert item["label_id"] == 0
    assert item["threshold"] == 0.5
    assert list(item["roi"]) == ["region_id", "bbox"]
    assert item["roi"]["region_id"] == 1
    assert list(item["roi"]["bbox"]) == ["xmin", "ymin", "ymax", "xmax"]
    assert item["roi"]["bbox"] == {"xmin": 0.375, "ymin": 0.125, "ymax": 0.625, "xmax": 0.875}
    obj = 1 / (1 + np.exp(-3.0))
    assert item["score"] == float(f"{obj * np.exp(2) / (np.exp(2) + 1):.9g}")
    assert [d["label_name"] for d in output["labels"]["discarded"]] == ["hat"]
    assert output["labels"]["discarded"][0]["roi"]["region_id"] == 2
    hidden = yolo_version(["sunglasses", "hat"]).process_json({"y": out}, square_transform(100))
    assert hidden["outputs"][0]["labels"]["discarded"] == []


def test_classification_result_json_has_no_roi() -> None:
    version = VersionPostProcessor.from_json(
        generate_outputs(["hot-dog", "not hot-dog"], "classification"),
        [SEED_POST_PROCESSINGS["classification"]],
    )
    result = version.process_json(
        {"inception_v3/logits/predictions": np.array([[0.990304172, 0.009695828]], np.float32)},
        _core.Transform(),
    )
    assert result == {
        "outputs": [
            {
                "labels": {
                    "predicted": [
                        {"label_name": "hot-dog", "label_id": 0, "score": 0.990304172, "threshold": 0.025}
                    ],
                    "discarded": [],
                }
            }
        ]
    }


def test_max_predictions_must_be_non_negative() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        yolo_version(["a"]).process(
            {"y": np.zeros((6, 2, 2), np.float32)}, square_transform(10), max_predictions=-1
        )
    assert caught.value.field == "max_predictions"


class _CountingInt(int):
    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountingInt.comparisons += 1
        return int(self) == other

    __hash__ = int.__hash__


def test_class_indices_are_checked_for_duplicates_in_linear_work() -> None:
    """A spec may have very many labels: duplicate class_indices are found without comparing all pairs."""
    count = 2000
    spec = generate_outputs([f"l{i}" for i in range(count)], "classification")
    indices: list[int] = [_CountingInt(i) for i in range(count)]
    body = {"classification": {"output_tensor": "x", "class_indices": [*indices[:-1], _CountingInt(7)]}}
    with pytest.raises(PostProcessingError) as caught:
        VersionPostProcessor.from_json(spec, [body])
    assert caught.value.violations == [
        ("post_processings[0].classification.class_indices[1999]", "network class 7 is given to two labels")
    ]
    assert _CountingInt.comparisons < 10 * count
