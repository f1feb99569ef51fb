"""The official Deepomatic client, installed from PyPI (deepomatic-api 1.0.0, and 0.9.4 which deepomatic-cli
pins), each in a venv of its own, against a live sightd (gRPC service + REST gateway) on loopback.

The client runs ``official_client_script.py``: public specs listed through ``next`` links, a spec and its
labels, inference from a URL (served locally), a file, a path, bytes and base64, ``wait``, ``Task.list``,
``batch_wait``; then ``Network.create`` with an ONNX model and a mean file, a spec, a version, inference on
them, updates, deletion. Its answers are checked here against independent references: the zoo's catalog,
the ImageNet label list, and imagenet-mobilenet-v2's probabilities computed with PIL and onnxruntime.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from integration.harness import image_server
from integration.references import mobilenet_reference
from integration.rest import LiveService, client_python
from sightd.zoo import catalog, installed

MODEL = "imagenet-mobilenet-v2"
SCRIPT = Path(__file__).with_name("official_client_script.py")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, zoo: installed.Zoo) -> Iterator[LiveService]:
    service = LiveService(tmp_path_factory.mktemp("official-client")).start()
    try:
        yield service
    finally:
        service.stop()


def _given(live: LiveService, zoo: installed.Zoo, folder: Path, url: str, tmp_path: Path) -> dict[str, Any]:
    # The public network's preprocessing with its per-channel mean moved into a mean file (.npy, HWC 1x1x3):
    # the same arithmetic, so the same predictions.
    preprocessing = json.loads(json.dumps(zoo.networks[MODEL].preprocessing))
    image = preprocessing["inputs"][0]["image"]
    mean = tmp_path / "imagenet_rgb_mean.npy"
    np.save(mean, np.array(image.pop("mean"), np.float64).reshape(1, 1, 3))
    image["mean_file"] = "channel_mean.npy"
    return {
        "host": live.url,
        "key": live.key(),
        "dog": str(folder / "dog.jpg"),
        "dog_url": f"{url}/dog.jpg",
        "model": str(zoo.networks[MODEL].path),
        "mean": str(mean),
        "preprocessing": preprocessing,
        "outputs": zoo.models[MODEL].spec["outputs"],
        "post_processing": zoo.models[MODEL].post_processing,
    }


@pytest.mark.parametrize("client", ["deepomatic-api-1.0.0", "deepomatic-api-0.9.4"])
def test_official_client_end_to_end(
    client: str, live: LiveService, zoo: installed.Zoo, darknet_data: Path, tmp_path: Path
) -> None:
    python = client_python(client)
    with image_server(darknet_data) as images:
        given = _given(live, zoo, darknet_data, images.url, tmp_path)
        run = subprocess.run(
            [str(python), str(SCRIPT), json.dumps(given)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])

    reference = mobilenet_reference(zoo, darknet_data / "dog.jpg")
    best = int(reference.argmax())
    names = [label["name"] for label in zoo.models[MODEL].spec["outputs"][0]["labels"]["labels"]]
    assert names[best] == "malamute"

    assert out["public_specs"] == sorted(catalog.MODELS)
    assert out["public_ids_are_strings"]
    assert out["labels"] == [1000, "malamute"]
    assert out["account"] == len(catalog.MODELS)
    for label_id, label_name, score in [*out["public_top"], *out["batch_top"]]:
        assert (label_id, label_name) == (best, "malamute")
        assert score == pytest.approx(float(reference[best]), abs=0.02)
    # show_discarded and max_predictions reached the service (3 of each list), every v0.7 field present.
    labels = out["file_result"]["outputs"][0]["labels"]
    assert (len(labels["predicted"]), len(labels["discarded"])) == (3, 3)
    assert all(p["score"] < p["threshold"] for p in labels["discarded"])
    for prediction in labels["predicted"]:
        assert set(prediction) == {"label_id", "label_name", "score", "threshold"}
        assert prediction["threshold"] == 0.025
    assert out["url_result"]["outputs"][0]["labels"]["discarded"] == []

    assert out["waited"] == "success"
    assert out["listed_tasks"] == out["task_ids"]
    assert all(isinstance(task_id, str) and task_id.isdigit() for task_id in out["task_ids"])
    assert out["batch_wait"] == [0, 3, 0]
    assert out["task_fields"] == ["data", "date_created", "date_updated", "error", "id", "status", "subtasks"]
    assert "inputs" in out["empty_inputs"]["error"]

    network = out["network"]
    assert isinstance(network["id"], int)
    assert (network["name"], network["description"], network["metadata"]) == (
        "my mobilenet",
        "uploaded by the official client",
        {"origin": "test"},
    )
    assert isinstance(network["task_id"], str)
    assert network["task_id"].isdigit()
    assert sorted(f["field_name"] for f in network["files"]) == ["channel_mean.npy", "model.onnx"]
    assert out["logits"] == [[1000], best]

    spec, version = out["spec"], out["version"]
    assert isinstance(spec["id"], int)
    assert spec["current_version_id"] is None
    assert spec["metadata"] == {"k": "v"}
    assert version["spec_id"] == spec["id"]
    assert version["network_id"] == network["id"]
    assert out["version_post_processings"] == [zoo.models[MODEL].post_processing]
    assert out["current_version_id"] == version["id"]
    assert out["spec_versions"] == [version["id"]]
    for label_id, label_name, score in (out["own_spec_top"], out["own_version_top"]):
        assert (label_id, label_name) == (best, "malamute")
        public_score = out["public_top"][0][2]
        assert score == pytest.approx(public_score, abs=1e-4)  # the mean file does what `mean` did
    assert out["own_lists"] == [[network["id"]], [spec["id"]], [version["id"]]]

    assert out["patched"] == ["my mobilenet", "updated"]
    assert out["replaced"] == ["renamed", "d", {}]
    assert out["spec_renamed"] == ["renamed spec", version["id"]]
    assert "error" in out["public_change"]
    assert out["deleted"] == [None, None, None]
    assert "error" in out["gone"]
