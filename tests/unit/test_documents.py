"""v0.7 JSON documents <-> sightd.v1 messages, against documents written by hand after the v0.7 API's own
examples (the bodies the official client sends) and messages built field by field."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2

from sightd.app import documents
from sightd.v1 import (
    common_pb2,
    inference_pb2,
    networks_pb2,
    recognition_pb2,
    tasks_pb2,
)

# The official client's spec creation body (reference capture), with label id 0.
SPEC_OUTPUTS: list[dict[str, Any]] = [
    {
        "labels": {
            "roi": "NONE",
            "exclusive": True,
            "labels": [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}, {"id": 2, "name": "other"}],
        }
    }
]


def test_spec_outputs_keep_label_zero_and_enum_spellings() -> None:
    message = documents.to_message(SPEC_OUTPUTS[0], recognition_pb2.RecognitionSpecOutput)
    expected = recognition_pb2.RecognitionSpecOutput(
        labels=recognition_pb2.LabelsOutputSpec(
            roi=recognition_pb2.ROI_TYPE_NONE,
            exclusive=True,
            labels=[
                recognition_pb2.Label(id=0, name="cat"),
                recognition_pb2.Label(id=1, name="dog"),
                recognition_pb2.Label(id=2, name="other"),
            ],
        )
    )
    assert message == expected
    assert documents.to_document(message) == SPEC_OUTPUTS[0]
    tagging = recognition_pb2.RecognitionSpecOutput(
        labels=recognition_pb2.LabelsOutputSpec(roi=recognition_pb2.ROI_TYPE_BBOX, exclusive=False)
    )
    assert documents.to_document(tagging) == {"labels": {"roi": "BBOX", "exclusive": False, "labels": []}}


def test_post_processings_with_thresholds_that_stay_exact() -> None:
    document = {
        "detection": {
            "anchored_output": {
                "anchors_tensor": "rois",
                "scores_tensor": "cls_prob",
                "offsets_tensor": "bbox_pred",
                "legacy_plus_one": True,
            },
            "thresholds": [0.347, 0.8],
            "discard_threshold": 0.025,
            "nms_threshold": 0.3,
            "normalize_wrt_tensor": "im_info",
            "class_indices": [1, 2],
        }
    }
    message = documents.to_message(document, recognition_pb2.PostProcessing)
    assert list(message.detection.thresholds) == [0.347, 0.8]  # doubles: no 0.347000003
    assert message.detection.anchored_output.legacy_plus_one
    assert documents.to_document(message) == document
    direct = {
        "detection": {
            "direct_output": {
                "boxes_tensor": "detection_boxes",
                "scores_tensor": "detection_scores",
                "classes_tensor": "detection_classes",
                "num_detections_tensor": "num_detections",
            }
        }
    }
    assert documents.to_document(documents.to_message(direct, recognition_pb2.PostProcessing)) == direct
    yolo = {
        "detection": {
            "yolo_output": {
                "output_tensors": [
                    {"output_tensor": "yolo_stride32", "anchors": [2.53125, 2.5625]},
                    {"output_tensor": "yolo_stride16", "anchors": [0.625, 0.875]},
                ],
                "class_activation": "SIGMOID",
            },
            "nms_class_agnostic": True,
        }
    }
    yolo_message = documents.to_message(yolo, recognition_pb2.PostProcessing)
    assert yolo_message.detection.yolo_output.class_activation == recognition_pb2.CLASS_ACTIVATION_SIGMOID
    # No empty output_tensor/anchors beside output_tensors: the post-processing refuses both forms at once.
    assert documents.to_document(yolo_message) == yolo


def test_preprocessing_of_the_client_multipart_example_with_constants() -> None:
    document = {
        "inputs": [
            {
                "tensor_name": "data",
                "image": {
                    "dimension_order": "NCHW",
                    "target_size": "224x224",
                    "resize_type": "SQUASH",
                    "mean_file": "mean.binaryproto",
                    "color_channels": "GRAY",
                    "pixel_scaling": 255.0,
                    "data_type": "FLOAT32",
                    "pad_value": 127,
                    "antialias": True,
                },
            },
            {"tensor_name": "im_info", "constant": {"shape": [3], "data": ["data.1", "data.2", 1.0]}},
        ],
        "batched_output": False,
    }
    message = documents.to_message(document, networks_pb2.Preprocessing)
    image = message.inputs[0].image
    assert (image.resize_type, image.color_channels, image.data_type, image.dimension_order) == (
        networks_pb2.RESIZE_TYPE_SQUASH,
        networks_pb2.COLOR_CHANNELS_L,
        networks_pb2.DATA_TYPE_FLOAT32,
        networks_pb2.DIMENSION_ORDER_NCHW,
    )
    assert list(image.pad_value) == [127.0]
    assert image.antialias
    assert message.HasField("batched_output")
    assert not message.batched_output
    data = message.inputs[1].constant.data
    assert [d.WhichOneof("value") for d in data] == ["tensor_dimension", "tensor_dimension", "number"]
    back = documents.to_document(message)
    assert back["inputs"][0]["image"]["color_channels"] == "L"
    assert back["inputs"][0]["image"]["pad_value"] == [127.0]
    assert back["inputs"][1] == {
        "tensor_name": "im_info",
        "constant": {"shape": [3], "data": ["data.1", "data.2", 1.0]},
    }
    assert back["batched_output"] is False
    # Unset optional fields and defaults are absent, not zeros.
    assert "crop_ratio" not in back["inputs"][0]["image"]
    assert "max_size" not in back["inputs"][0]["image"]


def test_every_problem_of_a_document_is_reported_with_its_path() -> None:
    with pytest.raises(documents.DocumentError) as bad:
        documents.to_message(
            {
                "inputs": [
                    {
                        "tensor_name": 3,
                        "image": {"resize_type": "STRETCH", "mean": [0.5, "x"], "max_size": 2.5},
                        "colour": "RGB",
                    },
                    {"image": {}, "constant": {}},
                ],
                "batched_output": "yes",
            },
            networks_pb2.Preprocessing,
        )
    fields = {v.field: v.description for v in bad.value.violations}
    assert fields == {
        "inputs[0].tensor_name": "must be a string",
        "inputs[0].image.resize_type": "must be one of SQUASH, CROP, NETWORK, LETTERBOX",
        "inputs[0].image.mean[1]": "must be a number",
        "inputs[0].image.max_size": "must be an integer",
        "inputs[0].colour": "unknown field",
        "inputs[1].constant": "give only one of image and constant",
        "batched_output": "must be true or false",
    }
    assert bad.value.code == "INVALID_ARGUMENT"
    lenient = documents.to_message(
        {"name": "n", "subtasks": None, "extra": 1}, networks_pb2.Network, ignore_unknown=True
    )
    assert lenient.name == "n"


def test_results_keep_empty_lists_zero_ids_and_int64_numbers() -> None:
    result = {
        "outputs": [
            {
                "labels": {
                    "predicted": [
                        {
                            "label_id": 0,
                            "label_name": "person",
                            "score": 0.903562248,
                            "threshold": 0.3,
                            "roi": {
                                "region_id": 1,
                                "bbox": {"xmin": 0.0, "ymin": 0.1, "xmax": 0.5, "ymax": 1.0},
                            },
                        }
                    ],
                    "discarded": [],
                }
            }
        ]
    }
    message = documents.to_message(result, inference_pb2.RecognitionResult)
    assert message.outputs[0].labels.predicted[0].score == 0.903562248
    assert documents.to_document(message) == result
    version = recognition_pb2.RecognitionVersion(id=3, spec_id="2", network_id="1", public=False)
    assert documents.to_document(version) == {
        "id": 3,
        "spec_id": "2",
        "network_id": "1",
        "post_processings": [],
        "public": False,
    }
    constant = networks_pb2.ConstantInput(shape=[1, 3])
    assert documents.to_document(constant) == {"shape": [1, 3]}  # numbers, not "1" and "3"


def test_tasks_and_pages() -> None:
    task = tasks_pb2.Task(
        id="1000", status=tasks_pb2.TASK_STATUS_ERROR, error=common_pb2.Error(code=3, message="corrupt image")
    )
    task.date_created.FromJsonString("2024-05-01T10:00:00Z")
    document = documents.to_document(task)
    assert document["status"] == "error"
    assert document["date_created"] == "2024-05-01T10:00:00Z"
    assert document["error"] == {"code": 3, "message": "corrupt image"}
    assert (
        documents.to_message({"id": "7", "status": "pending"}, tasks_pb2.Task).status
        == tasks_pb2.TASK_STATUS_PENDING
    )
    assert documents.to_document(tasks_pb2.ListTasksResponse()) == {"count": 0, "results": []}


def test_free_json_comes_back_with_whole_numbers() -> None:
    struct = struct_pb2.Struct()
    documents.dict_to_struct(
        {"origin": "example", "count": 3, "ratio": 0.5, "nested": {"ids": [1, 2]}}, struct
    )
    assert documents.struct_to_dict(struct) == {
        "origin": "example",
        "count": 3,
        "ratio": 0.5,
        "nested": {"ids": [1, 2]},
    }
    network = documents.to_message({"name": "n", "metadata": {"k": "v"}}, networks_pb2.Network)
    assert documents.to_document(network)["metadata"] == {"k": "v"}
