"""``sightd serve`` as an operator runs it: the first API key printed once, the public models ready, health,
reflection and metrics, a client in a second language (Node.js), SIGKILL with tasks pending then a restart
that finishes every task answered, and the drain on SIGTERM."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from integration.harness import ServeProcess, image_server
from integration.references import mobilenet_reference
from sightd.v1 import common_pb2, inference_pb2, inference_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".deps" / "node-client" / "node_modules"
KEY = "operator-chosen-key-0123456789"
SIGHTD_SERVICES = {
    "sightd.v1.NetworkService",
    "sightd.v1.RecognitionSpecService",
    "sightd.v1.RecognitionVersionService",
    "sightd.v1.InferenceService",
    "sightd.v1.TaskService",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, zoo: installed.Zoo) -> Iterator[ServeProcess]:
    """One server with the public models, its key given by SIGHTD_API_KEY."""
    data_dir = tmp_path_factory.mktemp("served")
    server = ServeProcess(data_dir, environ={"SIGHTD_API_KEY": KEY})
    try:
        server.wait_serving()
        yield server
    finally:
        server.close()


def test_health_reflection_and_metrics(served: ServeProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ["", *SIGHTD_SERVICES]:
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        (listing,) = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {service.name for service in listing.list_services_response.service}
        assert (
            SIGHTD_SERVICES | {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
        )
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            tasks.GetTask(tasks_pb2.GetTaskRequest(id="123456"), metadata=[("x-api-key", KEY)], timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError):
            tasks.GetTask(tasks_pb2.GetTaskRequest(id="1"), timeout=10)
    labels = 'grpc_method="GetTask",grpc_service="sightd.v1.TaskService",grpc_type="unary"'
    # A call is counted as handled once its answer is sent, so the client may read the metrics first:
    # read them until both calls are counted.
    for _ in range(100):
        with urllib.request.urlopen(
            f"http://127.0.0.1:{served.metrics_port}/metrics", timeout=10
        ) as response:
            text = response.read().decode()
        samples = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and line[0] != "#"
        }
        if f'grpc_server_handled_total{{grpc_code="UNAUTHENTICATED",{labels}}}' in samples:
            break
        time.sleep(0.1)
    assert samples[f'grpc_server_handled_total{{grpc_code="NOT_FOUND",{labels}}}'] >= 1
    assert samples[f'grpc_server_handled_total{{grpc_code="UNAUTHENTICATED",{labels}}}'] >= 1
    assert samples[f"grpc_server_started_total{{{labels}}}"] >= 2
    assert any(name.startswith("grpc_server_handling_seconds_bucket") for name in samples)
    assert "# TYPE sightd_runtime_requests_total counter" in text  # the runtime's, on the same registry


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_a_node_client_recognises_a_photo_with_a_public_model(
    served: ServeProcess, zoo: installed.Zoo, darknet_data: Path
) -> None:
    assert NODE_MODULES.is_dir(), "run `make node-client` (make test does)"
    script = ROOT / "tests" / "integration" / "node" / "recognize.js"
    command = [
        "node", str(script), "--address", f"127.0.0.1:{served.grpc_port}", "--key", KEY,
        "--spec", "imagenet-mobilenet-v2", "--image", str(darknet_data / "dog.jpg"), "--max-predictions", "3",
        "--proto-dir", str(ROOT / "proto"),
    ]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "NODE_PATH": str(NODE_MODULES)}
    finished = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert finished.returncode == 0, finished.stderr
    printed = json.loads(finished.stdout)
    reference = mobilenet_reference(zoo, darknet_data / "dog.jpg")
    names = [
        label["name"] for label in zoo.models["imagenet-mobilenet-v2"].spec["outputs"][0]["labels"]["labels"]
    ]
    best = int(reference.argmax())
    assert printed["labels"][0]["label_name"] == names[best] == "malamute"
    assert printed["labels"][0]["label_id"] == best
    assert printed["labels"][0]["score"] == pytest.approx(float(reference[best]), abs=0.05)
    # The same answer as a Python client of the same server.
    with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
        answer = inference_pb2_grpc.InferenceServiceStub(channel).Recognize(
            inference_pb2.RecognizeRequest(
                spec_id="imagenet-mobilenet-v2",
                inputs=[
                    common_pb2.Input(
                        image=common_pb2.ImageInput(data=(darknet_data / "dog.jpg").read_bytes())
                    )
                ],
                max_predictions=3,
            ),
            metadata=[("x-api-key", KEY)],
            timeout=120,
        )
    python_labels = [(p.label_name, round(p.score, 6)) for p in answer.result.outputs[0].labels.predicted]
    assert [(p["label_name"], round(p["score"], 6)) for p in printed["labels"]] == python_labels


def test_the_first_key_is_printed_once_and_sigterm_drains(tmp_path: Path) -> None:
    first = ServeProcess(tmp_path, "--public-models", "false")
    try:
        first.wait_serving()
        assert first.terminate() == 0
    finally:
        first.close()
    lines = first.stdout.splitlines()
    key = lines[lines.index(next(line for line in lines if "API key was created" in line)) + 1]
    assert key.startswith("sd_")
    assert key not in first.log_path.read_text()  # never in the logs
    assert any(line.get("message") == "draining" for line in first.log_lines())
    second = ServeProcess(tmp_path, "--public-models", "false")
    try:
        second.wait_serving()
        with grpc.insecure_channel(f"127.0.0.1:{second.grpc_port}") as channel:
            tasks = tasks_pb2_grpc.TaskServiceStub(channel)
            with pytest.raises(grpc.RpcError) as missing:
                tasks.GetTask(tasks_pb2.GetTaskRequest(id="1"), metadata=[("x-api-key", key)], timeout=10)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # the key works
        assert second.terminate() == 0
    finally:
        second.close()
    assert "API key" not in second.stdout


@pytest.mark.slow
def test_tasks_answered_before_a_sigkill_finish_after_the_restart(
    tmp_path: Path, zoo: installed.Zoo, darknet_data: Path
) -> None:
    environ = {"SIGHTD_API_KEY": KEY}
    md = [("x-api-key", KEY)]
    dog = (darknet_data / "dog.jpg").read_bytes()
    with image_server(darknet_data) as images:
        first = ServeProcess(tmp_path, "--allow-url-host", "127.0.0.1", environ=environ)
        try:
            first.wait_serving()
            with grpc.insecure_channel(f"127.0.0.1:{first.grpc_port}") as channel:
                inference = inference_pb2_grpc.InferenceServiceStub(channel)

                def infer(image: common_pb2.ImageInput) -> str:
                    request = inference_pb2.InferRequest(
                        spec_id="imagenet-mobilenet-v2", inputs=[common_pb2.Input(image=image)]
                    )
                    return str(inference.Infer(request, metadata=md, timeout=30).task_id)

                # These wait for their image until after the kill: pending when it comes.
                hanging = [
                    infer(common_pb2.ImageInput(source=f"{images.url}/slow/dog.jpg")) for _ in range(4)
                ]
                quick = [infer(common_pb2.ImageInput(data=dog)) for _ in range(2)]
        finally:
            first.kill()
        images.release()
        second = ServeProcess(tmp_path, "--allow-url-host", "127.0.0.1", environ=environ)
        try:
            second.wait_serving()
            with grpc.insecure_channel(f"127.0.0.1:{second.grpc_port}") as channel:
                tasks = tasks_pb2_grpc.TaskServiceStub(channel)
                for task_id in hanging + quick:
                    task = tasks.WaitTask(
                        tasks_pb2.WaitTaskRequest(id=task_id), metadata=md, timeout=120
                    ).task
                    assert task.status in (tasks_pb2.TASK_STATUS_SUCCESS, tasks_pb2.TASK_STATUS_ERROR), (
                        task_id
                    )
                    assert task.status == tasks_pb2.TASK_STATUS_SUCCESS, task.error
                    assert task.data.recognition.outputs[0].labels.predicted[0].label_name == "malamute"
            assert any(
                line.get("message") == "pending tasks recovered" and line.get("resumed", 0) >= len(hanging)
                for line in second.log_lines()
            )
        finally:
            second.close()
