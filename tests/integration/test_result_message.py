"""The gRPC result message of a recognition, built field by field, against the generic document reader
(documents.to_message) on real results of every public model, boxes and discarded predictions included."""

from __future__ import annotations

from pathlib import Path

import pytest

from sightd.app import documents
from sightd.grpc.inference import result_message
from sightd.recognition import Recognizer, result_json
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
