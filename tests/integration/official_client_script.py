"""Run by the official Deepomatic client's own venv (deepomatic-api 1.0.0 or 0.9.4, not sightd's venv)
against a live sightd gateway: everything a v0.7 user does, through the client's public API only.

Argument: a JSON object (host, key, image URL, paths of dog.jpg, of an ONNX model and of a mean file, the
model's preprocessing, labels and post-processing). Output: one JSON line with what the test compares with
its references. Any exception fails the run (exit status 1, traceback on stderr).
"""

import base64
import json
import sys

from deepomatic.api.client import Client
from deepomatic.api.exceptions import ClientError
from deepomatic.api.inputs import ImageInput

PUBLIC = "imagenet-mobilenet-v2"


def top(result):
    """(label_id, label_name, score) of the best prediction of a recognition result."""
    best = result["outputs"][0]["labels"]["predicted"][0]
    return [best["label_id"], best["label_name"], best["score"]]


def expect_client_error(call, status):
    try:
        call()
    except ClientError as error:
        failure = error
    else:
        raise AssertionError(f"expected HTTP {status}")
    if failure.status_code != status:
        raise AssertionError(f"expected HTTP {status}, got {failure.status_code}: {failure.content!r}")
    return json.loads(failure.content)


def main():
    given = json.loads(sys.argv[1])
    client = Client(api_key=given["key"], host=given["host"])
    out = {}

    # Public models: every page followed through `next` (3 per page), then one spec and its labels.
    listed = list(client.RecognitionSpec.list(public=True, limit=3))
    out["public_specs"] = sorted(spec["name"] for spec in listed)
    out["public_ids_are_strings"] = all(isinstance(spec.pk, str) for spec in listed)
    spec = client.RecognitionSpec.retrieve(PUBLIC)
    labels = spec["outputs"][0]["labels"]["labels"]
    out["labels"] = [len(labels), labels[249]["name"]]
    out["account"] = client.Account.retrieve("me")["public_recognition_specs_count"]

    # Inference on the public spec: a URL, a file, bytes, base64; each waits for its task.
    with open(given["dog"], "rb") as handle:
        dog = handle.read()
    url_result = spec.inference(inputs=[ImageInput(given["dog_url"])], show_discarded=False)
    with open(given["dog"], "rb") as handle:
        file_result = spec.inference(inputs=[ImageInput(handle)], show_discarded=True, max_predictions=3)
    bytes_result = spec.inference(inputs=[ImageInput(dog, encoding="binary")])
    b64_result = spec.inference(inputs=[ImageInput(base64.b64encode(dog), encoding="base64")])
    path_result = spec.inference(inputs=[ImageInput(given["dog"], encoding="binary")])
    out["public_top"] = [top(r) for r in (url_result, file_result, bytes_result, b64_result, path_result)]
    out["file_result"] = file_result
    out["url_result"] = url_result

    # Tasks: created without waiting, then wait, Task.list and batch_wait.
    tasks = [
        spec.inference(inputs=[ImageInput(dog, encoding="binary")], return_task=True, wait_task=False)
        for _ in range(3)
    ]
    tasks[0].wait(timeout=60)
    out["waited"] = tasks[0]["status"]
    listed_tasks = list(client.Task.list(task_ids=[task.pk for task in tasks]))
    out["listed_tasks"] = sorted(task.pk for task in listed_tasks)
    out["task_ids"] = sorted(task.pk for task in tasks)
    pending, success, error = client.Task.batch_wait(tasks=tasks, timeout=60)
    out["batch_wait"] = [len(pending), len(success), len(error)]
    out["batch_top"] = [top(task["data"]) for _, task in success]
    out["task_fields"] = sorted(success[0][1].data())
    out["empty_inputs"] = expect_client_error(lambda: spec.inference(inputs=[]), 400)

    # A network of our own, uploaded with a mean file under a field name that differs from its file name.
    network = client.Network.create(
        name="my mobilenet",
        description="uploaded by the official client",
        metadata={"origin": "test"},
        framework="onnx",
        preprocessing=given["preprocessing"],
        files={"model.onnx": given["model"], "channel_mean.npy": given["mean"]},
    )
    out["network"] = {
        key: network[key] for key in ("id", "name", "description", "metadata", "task_id", "files")
    }
    client.Task.retrieve(network["task_id"]).wait(timeout=60)
    tensors = network.inference(inputs=[ImageInput(dog, encoding="binary")], output_tensors=["logits"])
    out["logits"] = [list(tensors["logits"].shape), int(tensors["logits"].argmax())]

    my_spec = client.RecognitionSpec.create(
        name="my classifier", description="", metadata={"k": "v"}, outputs=given["outputs"]
    )
    out["spec"] = {key: my_spec[key] for key in ("id", "name", "metadata", "current_version_id")}
    version = client.RecognitionVersion.create(
        spec_id=my_spec["id"], network_id=network["id"], post_processings=[given["post_processing"]]
    )
    out["version"] = {key: version[key] for key in ("id", "spec_id", "network_id")}
    out["version_post_processings"] = version["post_processings"]
    my_spec.update(current_version_id=version["id"])
    out["current_version_id"] = my_spec["current_version_id"]
    out["spec_versions"] = [v.pk for v in my_spec.versions()]
    out["own_spec_top"] = top(my_spec.inference(inputs=[ImageInput(given["dog_url"])]))
    out["own_version_top"] = top(version.inference(inputs=[ImageInput(dog, encoding="binary")]))
    out["own_lists"] = [
        [n.pk for n in client.Network.list()],
        [s.pk for s in client.RecognitionSpec.list()],
        [v.pk for v in client.RecognitionVersion.list()],
    ]

    # Updates, then deletion of everything made.
    network.update(description="updated")
    out["patched"] = [network["name"], network["description"]]
    network.update(replace=True, name="renamed", description="d")
    out["replaced"] = [network["name"], network["description"], network["metadata"]]
    my_spec.update(name="renamed spec")
    out["spec_renamed"] = [my_spec["name"], my_spec["current_version_id"]]
    out["public_change"] = expect_client_error(lambda: spec.update(description="mine now"), 403)
    out["deleted"] = [version.delete(), my_spec.delete(), network.delete()]
    out["gone"] = expect_client_error(lambda: client.Network.retrieve(network["id"]).data(), 404)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
