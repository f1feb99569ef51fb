"""Handlers of inference (specs, versions, networks) and tasks.

Inference answers ``{"task_id": "..."}`` as soon as the service accepted the work (``Infer`` checks the
request and queues it; URL images are fetched in the task), so the official client's 8-second timeout is
never at risk and a retried POST never duplicates a task that is merely slow. Images come as JSON
``source`` strings (URL, ``data:`` URI, base64) or as multipart file parts, whose bytes go to
``ImageInput.data`` unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sightd.gateway.app import Answer, Call
from sightd.gateway.bodies import check_keys, message_of, read_body
from sightd.gateway.resources import page_args, paged, version_id
from sightd.gateway.views import task_json
from sightd.v1 import inference_pb2, networks_pb2, tasks_pb2

_RECOGNITION_FIELDS = ("inputs", "show_discarded", "max_predictions")
_NETWORK_FIELDS = ("inputs", "output_tensors")


def _binary_sources(document: dict[str, Any]) -> dict[int, bytes]:
    """Takes the file parts out of ``inputs[i].image.source`` (they go to the message's ``data``)."""
    found: dict[int, bytes] = {}
    inputs = document.get("inputs")
    if not isinstance(inputs, list):
        return found
    for index, item in enumerate(inputs):
        image = item.get("image") if isinstance(item, dict) else None
        if isinstance(image, dict) and isinstance(image.get("source"), bytes):
            found[index] = image.pop("source")
    return found


async def _request(call: Call, message_type: type[Any], allowed: tuple[str, ...]) -> Any:
    body = await read_body(call, message_type.DESCRIPTOR)
    document = check_keys(body.document, allowed)
    binary = _binary_sources(document)
    message = message_of(document, message_type)
    for index, data in binary.items():
        message.inputs[index].image.data = data
    return message


async def _infer(call: Call, **target: Any) -> Answer:
    request = await _request(call, inference_pb2.InferRequest, _RECOGNITION_FIELDS)
    for key, value in target.items():
        setattr(request, key, value)
    response = await call.stubs.inference.Infer(request, metadata=call.metadata, timeout=call.timeout)
    return 200, {"task_id": response.task_id}


async def spec_inference(call: Call) -> Answer:
    return await _infer(call, spec_id=call.params["id"])


async def version_inference(call: Call) -> Answer:
    return await _infer(call, version_id=version_id(call))


async def network_inference(call: Call) -> Answer:
    request = await _request(call, networks_pb2.InferNetworkRequest, _NETWORK_FIELDS)
    request.id = call.params["id"]
    response = await call.stubs.networks.InferNetwork(request, metadata=call.metadata, timeout=call.timeout)
    return 200, {"task_id": response.task_id}


async def get_task(call: Call) -> Answer:
    """The task as it is, or, with a task wait (rest_task_wait_seconds), once it is done or the wait runs out:
    then the official client, which looks again 50 ms later and 100 to 200 ms after that, sees its task
    done at its first look (docs/rest.md)."""
    wait = call.limits.task_wait
    if wait > 0:
        waiting = tasks_pb2.WaitTaskRequest(id=call.params["id"])
        waiting.timeout.FromTimedelta(dt.timedelta(seconds=wait))
        waited = await call.stubs.tasks.WaitTask(waiting, metadata=call.metadata, timeout=call.timeout)
        return 200, task_json(waited.task)
    request = tasks_pb2.GetTaskRequest(id=call.params["id"])
    response = await call.stubs.tasks.GetTask(request, metadata=call.metadata, timeout=call.timeout)
    return 200, task_json(response.task)


async def list_tasks(call: Call) -> Answer:
    """``task_ids`` repeated (the client's form) or comma-separated; none gives an empty page."""
    offset, limit = page_args(call)
    request = tasks_pb2.ListTasksRequest(task_ids=call.query_list("task_ids"), offset=offset, limit=limit)
    response = await call.stubs.tasks.ListTasks(request, metadata=call.metadata, timeout=call.timeout)
    return paged(call, response, task_json, offset, limit)
