"""The REST views: ids typed as the official client needs, pages with absolute links, and the written-out
conversion of recognition results, checked against the generic v0.7 converter (sightd.app.documents)."""

from __future__ import annotations

import numpy as np

from sightd.app import documents
from sightd.gateway.views import page_json, recognition_json, rest_id, task_json
from sightd.v1 import inference_pb2, tasks_pb2


def test_rest_ids() -> None:
    assert rest_id("12") == 12
    assert rest_id("imagenet-mobilenet-v2") == "imagenet-mobilenet-v2"
    assert rest_id("١٢") == "١٢"  # non-ASCII digits are not a private id


def test_recognition_json_equals_the_generic_conversion() -> None:
    rng = np.random.default_rng(3)
    result = inference_pb2.RecognitionResult()
    for with_boxes in (False, True):
        labels = result.outputs.add().labels
        for target in (labels.predicted, labels.discarded):
            for index in range(5):
                prediction = target.add(
                    label_id=index, label_name=f"label {index}", score=float(rng.random()), threshold=0.347
                )
                if with_boxes:
                    prediction.roi.region_id = index + 1
                    xmin, ymin = rng.random(2) / 2
                    prediction.roi.bbox.xmin, prediction.roi.bbox.ymin = float(xmin), 0.0
                    prediction.roi.bbox.xmax, prediction.roi.bbox.ymax = float(xmin + 0.5), float(ymin)
    result.outputs.add().labels.SetInParent()  # nothing found: empty lists, still written
    assert recognition_json(result) == documents.to_document(result)


def test_task_json_and_pages() -> None:
    task = tasks_pb2.Task(id="7", status=tasks_pb2.TASK_STATUS_ERROR)
    task.error.message = "inputs[0].image.source: not an image"
    assert task_json(task) == {
        "id": "7",
        "status": "error",
        "error": "inputs[0].image.source: not an image",
        "data": None,
        "date_created": None,
        "date_updated": None,
        "subtasks": None,
    }
    tasks = [tasks_pb2.Task(id=str(i), status=tasks_pb2.TASK_STATUS_PENDING) for i in range(2)]
    query = [("task_ids", "1"), ("task_ids", "2"), ("offset", "2"), ("limit", "2"), ("x", "a b")]
    page = page_json(5, tasks, task_json, base_url="http://h:1/v0.7/tasks/", query=query, offset=2, limit=2)
    assert page["next"] == "http://h:1/v0.7/tasks/?task_ids=1&task_ids=2&x=a+b&offset=4&limit=2"
    assert (
        page["previous"]
        == page["prev"]
        == "http://h:1/v0.7/tasks/?task_ids=1&task_ids=2&x=a+b&offset=0&limit=2"
    )
    assert [t["id"] for t in page["results"]] == ["0", "1"]
    last = page_json(5, tasks[:1], task_json, base_url="http://h:1/t", query=[], offset=4, limit=2)
    assert (last["next"], last["count"]) == (None, 5)
