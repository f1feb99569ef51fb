"""sightd.v1 answers as v0.7 JSON objects, with the REST API's id rules.

``sightd.app.documents`` does the field mapping; this module adds what only REST has: a private network or
spec id is a JSON integer and a public one its name (the official client picks the route by the id's Python
type), task ids are decimal strings everywhere (``{"task_id": "1000"}`` and the task's ``id`` alike: the
client's ``batch_wait`` matches them by equality, and the seed's curl example extracts the digits), raw
tensors carry ``dims`` next to ``shape`` (clients up to 0.9.4 read ``dims``), and optional fields are
present as ``null`` or empty rather than missing (the client reads ``current_version_id`` and ``task_id``
straight from a create answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from google.protobuf.message import Message

from sightd.app import documents
from sightd.v1 import inference_pb2, networks_pb2, recognition_pb2, tasks_pb2

_M = TypeVar("_M", bound=Message)


def rest_id(value: str) -> int | str:
    """A network's or spec's id in JSON: an integer when private (decimal), the name when public."""
    return int(value) if value.isdigit() and value.isascii() else value


def network_json(network: networks_pb2.Network) -> dict[str, Any]:
    document = documents.to_document(network)
    document["id"] = rest_id(network.id)
    document["metadata"] = documents.struct_to_dict(network.metadata)
    document["postprocessings"] = [documents.struct_to_dict(item) for item in network.postprocessings]
    document.setdefault("framework", "")
    document.setdefault("preprocessing", {})
    document.setdefault("files", [])
    return document


def spec_json(spec: recognition_pb2.RecognitionSpec) -> dict[str, Any]:
    document = documents.to_document(spec)
    document["id"] = rest_id(spec.id)
    document["metadata"] = documents.struct_to_dict(spec.metadata)
    document.setdefault("outputs", [])
    document.setdefault("current_version_id", None)
    return document


def version_json(version: recognition_pb2.RecognitionVersion) -> dict[str, Any]:
    document = documents.to_document(version)
    document["spec_id"] = rest_id(version.spec_id)
    document["network_id"] = rest_id(version.network_id)
    return document


def _prediction(prediction: inference_pb2.Prediction) -> dict[str, Any]:
    document: dict[str, Any] = {
        "label_id": prediction.label_id,
        "label_name": prediction.label_name,
        "score": prediction.score,
        "threshold": prediction.threshold,
    }
    if prediction.HasField("roi"):
        roi, box = prediction.roi, prediction.roi.bbox
        document["roi"] = {
            "region_id": roi.region_id,
            "bbox": {"xmin": box.xmin, "ymin": box.ymin, "xmax": box.xmax, "ymax": box.ymax},
        }
    return document


def recognition_json(result: inference_pb2.RecognitionResult) -> dict[str, Any]:
    """``documents.to_document`` of a recognition result, written out: with ``show_discarded`` an ImageNet
    result holds 1000 predictions, which the generic converter takes 20 ms to walk."""
    outputs: list[dict[str, Any]] = []
    for output in result.outputs:
        if output.WhichOneof("output") != "labels":
            outputs.append(documents.to_document(output))
            continue
        labels = output.labels
        outputs.append(
            {
                "labels": {
                    "predicted": [_prediction(p) for p in labels.predicted],
                    "discarded": [_prediction(p) for p in labels.discarded],
                }
            }
        )
    return {"outputs": outputs}


def task_json(task: tasks_pb2.Task) -> dict[str, Any]:
    """v0.7's task object: ``error`` is the message (null unless failed), ``data`` the result (null
    unless succeeded)."""
    data: Any = None
    if task.HasField("data"):
        which = task.data.WhichOneof("result")
        if which == "recognition":
            data = recognition_json(task.data.recognition)
        elif which == "network_inference":
            data = documents.to_document(task.data.network_inference)
            for tensor in data["tensors"]:
                tensor["dims"] = tensor["shape"]
        else:
            data = {}
    document: dict[str, Any] = {
        "id": task.id,
        "status": documents.enum_to_json(tasks_pb2.TaskStatus.DESCRIPTOR, task.status),
        "error": task.error.message if task.HasField("error") else None,
        "data": data,
        "date_created": task.date_created.ToJsonString() if task.HasField("date_created") else None,
        "date_updated": task.date_updated.ToJsonString() if task.HasField("date_updated") else None,
        "subtasks": None,
    }
    return document


def page_json(
    count: int,
    items: Sequence[_M],
    view: Callable[[_M], dict[str, Any]],
    *,
    base_url: str,
    query: Sequence[tuple[str, str]],
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """A DRF page ``{count, next, previous, results}`` plus ``prev`` (what the client's ``prev()`` reads).
    Links are absolute and carry every query parameter of the request (the client follows ``next`` as it
    is, adding nothing)."""

    def link(at: int) -> str:
        kept = [(k, v) for k, v in query if k not in ("offset", "limit")]
        return f"{base_url}?{urlencode([*kept, ('offset', str(at)), ('limit', str(limit))])}"

    following = link(offset + limit) if offset + len(items) < count and items else None
    previous = link(max(0, offset - limit)) if offset > 0 else None
    return {
        "count": count,
        "next": following,
        "previous": previous,
        "prev": previous,
        "results": [view(item) for item in items],
    }
