"""sightd.grpc.tasks.task_message against protobuf's own JSON parser (json_format.ParseDict) reading the
stored documents: the same Task message for every state and kind of task."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.protobuf import json_format

from sightd.grpc.tasks import task_message
from sightd.store.tasks import TaskRecord
from sightd.v1 import tasks_pb2


def _prediction(label_id: int, score: float, roi: bool) -> dict[str, Any]:
    prediction: dict[str, Any] = {
        "label_id": label_id,
        "label_name": f"label {label_id} é 猫",
        "score": score,
        "threshold": 0.3,
    }
    if roi:
        bbox = {"xmin": 0.125, "ymin": 0.1, "xmax": 0.9, "ymax": 0.95}
        prediction["roi"] = {"region_id": label_id % 1000 + 1, "bbox": bbox}
    return prediction


CLASSIFICATION = {
    "outputs": [
        {
            "labels": {
                "predicted": [_prediction(258, 0.8164, False), _prediction(-7, 1e-30, False)],
                "discarded": [_prediction(0, 0.0, False)],
            }
        }
    ]
}
DETECTION = {
    "outputs": [
        {
            "labels": {
                "predicted": [_prediction(i, 0.05 * i, True) for i in range(17)],
                "discarded": [_prediction(2**31 - 1, 0.1, True)],
            }
        },
        {"labels": {"predicted": [], "discarded": []}},
    ]
}
TENSORS = {"outputs": [{"tensor": {"name": "prob", "shape": [1, 2], "data": [0.25, 0.75]}}]}
ERROR = {"code": 3, "message": "bad image", "reason": "INVALID_IMAGE", "field_violations": []}


def _record(kind: str, status: str, data: dict[str, Any] | None, error: dict[str, Any] | None) -> TaskRecord:
    created = dt.datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=dt.UTC)
    return TaskRecord(
        id=42,
        tenant_id=1,
        kind=kind,
        status=status,
        data=data,
        error=error,
        attempts=0,
        created_at=created,
        updated_at=created + dt.timedelta(seconds=1),
        expires_at=None,
    )


def _reference(record: TaskRecord) -> tasks_pb2.Task:
    task = tasks_pb2.Task(
        id=str(record.id), status=tasks_pb2.TaskStatus.Value(f"TASK_STATUS_{record.status.upper()}")
    )
    task.date_created.FromDatetime(record.created_at)
    task.date_updated.FromDatetime(record.updated_at)
    if record.error is not None:
        json_format.ParseDict(record.error, task.error)
    if record.status == "success":
        if record.kind == "recognition":
            json_format.ParseDict(record.data or {}, task.data.recognition)
        elif record.kind == "network_inference":
            json_format.ParseDict(record.data or {}, task.data.network_inference, ignore_unknown_fields=True)
        else:
            task.data.SetInParent()
    return task


@pytest.mark.parametrize(
    "record",
    [
        _record("recognition", "success", CLASSIFICATION, None),
        _record("recognition", "success", DETECTION, None),
        _record("recognition", "success", {"outputs": []}, None),
        _record("recognition", "pending", None, None),
        _record("recognition", "error", None, ERROR),
        _record("network_inference", "success", TENSORS, None),
        _record("network_creation", "success", None, None),
    ],
    ids=["classification", "detection", "no-output", "pending", "error", "tensors", "network-creation"],
)
def test_task_message_equals_protobufs_reading_of_the_stored_documents(record: TaskRecord) -> None:
    message = task_message(record)
    assert message == _reference(record)
    assert message.SerializeToString(deterministic=True) == _reference(record).SerializeToString(
        deterministic=True
    )
