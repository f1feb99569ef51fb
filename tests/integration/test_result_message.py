"""The gRPC result message of a recognition, against independent references: the message built field by
field against the generic document reader (documents.to_message), and the message the core serializes
(``_core.RecognitionResult.message``) against Python protobuf's bytes for the message built from the v0.7
document, on real results of every public model (boxes and discarded predictions included) and on a model
whose outputs are chosen edge values; then the responses that the service wraps around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from sightd.app import documents
from sightd.grpc.inference import recognize_response, result_message, stream_response
from sightd.recognition import Recognizer, result_json
from sightd.runtime import ImageOutcome
from sightd.v1 import inference_pb2
from sightd.zoo import catalog, installed


def generic(result: dict[str, object]) -> inference_pb2.RecognitionResult:
    return documents.to_message(result, inference_pb2.RecognitionResult, ignore_unknown=True)


@pytest.mark.parametrize("model", sorted(catalog.MODELS))
def test_every_public_model_gives_the_message_of_the_generic_reader(
    model: str, zoo: installed.Zoo, darknet_data: Path, skimage_data: Path
) -> None:
    recognizer = Recognizer.from_zoo(model, zoo)
    files = [darknet_data / n for n in ("dog.jpg", "person.jpg", "horses.jpg", "kite.jpg")]
    files += [skimage_data / n for n in ("astronaut.png", "coffee.png")]
    images = [(file.read_bytes(), None) for file in files]
    predictions = 0
    for show_discarded in (False, True):
        for found in recognizer.recognize(images, show_discarded=show_discarded):
            result = result_json(found)
            message = result_message(result)
            assert message == generic(result)
            # The core's bytes are protobuf's for the same message (field order, defaults, rounding).
            assert found.message == message.SerializeToString()
            predictions += sum(len(o.labels.predicted) + len(o.labels.discarded) for o in message.outputs)
    assert predictions > 0


def test_boxes_and_discarded_predictions_are_carried() -> None:
    box = {"xmin": 0.125, "ymin": 0.25, "ymax": 0.75, "xmax": 0.5}
    result = {
        "outputs": [
            {
                "labels": {
                    "predicted": [
                        {
                            "label_name": "dog",
                            "label_id": 16,
                            "roi": {"region_id": 1, "bbox": box},
                            "score": 0.875,
                            "threshold": 0.5,
                        }
                    ],
                    "discarded": [{"label_name": "cat", "label_id": 15, "score": 0.25, "threshold": 0.5}],
                }
            }
        ]
    }
    message = result_message(result)
    assert message == generic(result)
    (predicted,) = message.outputs[0].labels.predicted
    assert (predicted.roi.region_id, predicted.roi.bbox.xmax, predicted.score) == (1, 0.5, 0.875)
    assert message.outputs[0].labels.discarded[0].label_name == "cat"


def test_another_shape_is_read_by_the_generic_reader() -> None:
    unusual = {"outputs": [{"labels": {"predicted": [{"label_name": "x", "label_id": 1, "score": 1.0}]}}]}
    assert result_message(unusual) == generic(unusual)  # no "discarded", no "threshold"
    wrong = {"outputs": [{"labels": {"predicted": [{"score": "high"}]}}]}
    with pytest.raises(documents.DocumentError, match="score") as raised:
        generic(wrong)
    with pytest.raises(documents.DocumentError, match="score") as same:
        result_message(wrong)
    assert str(same.value) == str(raised.value)


# Scores that the network gives as they are (a constant output, whatever the image): +0.0 (left out of the
# message), a float32 that its 9 significant digits round (0.1), a tiny one, a third, 1.
EDGE_SCORES = [0.0, 0.1, 1e-30, 1 / 3, 1.0, 0.75]
EDGE_LABELS = [
    {"id": -7, "name": "négatif"},
    {"id": 0, "name": "zéro"},
    {"id": 2**31 - 1, "name": "int32 max"},
    {"id": -(2**31), "name": "int32 min"},
    {"id": 5, "name": "狗"},
    {"id": 300, "name": "a label name longer than one hundred and twenty-eight bytes, " * 3},
]
PREPROCESSING = {
    "inputs": [
        {
            "tensor_name": "image",
            "image": {"resize_type": "SQUASH", "data_type": "FLOAT32", "dimension_order": "NCHW",
                      "target_size": "8x8", "color_channels": "RGB"},
        }
    ],
    "batched_output": True,
}  # fmt: skip


def constant_scores(scores: list[float]) -> bytes:
    """image (N, 3, 8, 8) -> mean -> times a zero weight -> plus ``scores``: the scores, for any image."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "scores"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_scores",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(scores)])],
        initializer=[
            numpy_helper.from_array(np.zeros((3, len(scores)), np.float32), "zero"),
            numpy_helper.from_array(np.array(scores, np.float32), "scores"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def edge_recognizer(labels: list[dict[str, object]], thresholds: list[float]) -> Recognizer:
    return Recognizer.from_documents(
        constant_scores(EDGE_SCORES),
        PREPROCESSING,
        [{"labels": {"roi": "NONE", "exclusive": False, "labels": labels}}],
        [{"classification": {"output_tensor": "probabilities", "thresholds": thresholds}}],
    )


def test_edge_values_are_serialized_as_protobuf_does(darknet_data: Path) -> None:
    image = (darknet_data / "dog.jpg").read_bytes()
    # Four labels at or over their threshold, two under; 0 makes a +0.0 threshold (left out too).
    recognizer = edge_recognizer(EDGE_LABELS, [0.0, 0.5, 0.0, 0.5, 0.5, 0.5])
    for show_discarded in (False, True):
        (found,) = recognizer.recognize([(image, None)], show_discarded=show_discarded)
        result = result_json(found)
        message = result_message(result)
        assert found.message == message.SerializeToString()
        parsed = inference_pb2.RecognitionResult.FromString(found.message or b"")
        assert parsed == generic(result)
        labels = parsed.outputs[0].labels
        shown = list(labels.predicted) + list(labels.discarded)
        assert len(shown) == (6 if show_discarded else 4)
        assert {p.label_id for p in labels.predicted} == {-7, 2**31 - 1, 5, 300}
    by_id = {p.label_id: p for p in shown}
    assert by_id[-7].score == 0.0
    assert by_id[-(2**31)].score == pytest.approx(1 / 3)
    assert by_id[0].score == 0.100000001  # float32 0.1 (0.100000001490116...) to 9 significant digits
    assert by_id[2**31 - 1].score == 1e-30
    assert by_id[5].label_name == "狗"


def test_a_label_id_beyond_int32_is_left_to_the_python_path(darknet_data: Path) -> None:
    image = (darknet_data / "dog.jpg").read_bytes()
    labels = [dict(label) for label in EDGE_LABELS]
    labels[0]["id"] = 2**31
    (found,) = edge_recognizer(labels, [0.0] * 6).recognize([(image, None)])
    assert found.ok
    assert found.message is None
    assert ImageOutcome(found).result == result_json(found)


@pytest.mark.parametrize("request_id", ["", "r-1", "é" * 200])
def test_the_responses_wrap_the_core_message(request_id: str, darknet_data: Path, zoo: installed.Zoo) -> None:
    recognizer = Recognizer.from_zoo("imagenet-mobilenet-v2", zoo)
    image = (darknet_data / "dog.jpg").read_bytes()
    # Top 5 (a one-byte length), and 1000 labels with the discarded ones (a three-byte length).
    for show_discarded in (False, True):
        (found,) = recognizer.recognize([(image, None)], show_discarded=show_discarded)
        outcome = ImageOutcome(found)
        expected = result_message(result_json(found))
        unary = recognize_response(outcome)
        assert isinstance(unary, bytes)
        assert inference_pb2.RecognizeResponse.FromString(unary) == inference_pb2.RecognizeResponse(
            result=expected
        )
        streamed = stream_response(request_id, outcome)
        assert isinstance(streamed, bytes)
        assert inference_pb2.RecognizeStreamResponse.FromString(streamed) == (
            inference_pb2.RecognizeStreamResponse(request_id=request_id, result=expected)
        )
        assert streamed == expected_stream_bytes(request_id, expected)


def expected_stream_bytes(request_id: str, result: inference_pb2.RecognitionResult) -> bytes:
    return inference_pb2.RecognizeStreamResponse(request_id=request_id, result=result).SerializeToString()
