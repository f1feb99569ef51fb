"""Every error path of the service over gRPC, with its status code and details (ErrorInfo reason,
BadRequest field violations, RetryInfo)."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from integration.deployment import (
    MODEL,
    Deployed,
    fields,
    image_input,
    mobilenet_network,
    refused,
    upload_requests,
)
from integration.harness import image_server, running_service
from sightd.app import documents
from sightd.store import keys
from sightd.store import recognition as recognition_store
from sightd.store.database import open_database
from sightd.v1 import common_pb2, inference_pb2, networks_pb2, recognition_pb2, tasks_pb2
from sightd.zoo import installed


async def test_network_creation_errors(deployed: Deployed, zoo: installed.Zoo) -> None:
    client, md = deployed.client, deployed.client.metadata
    model = zoo.networks[MODEL].path.read_bytes()
    good = mobilenet_network(zoo)

    no_network = await refused(
        client.networks.CreateNetwork(
            iter(
                [
                    networks_pb2.CreateNetworkRequest(
                        chunk=networks_pb2.FileChunk(field_name="model.onnx", data=b"x")
                    )
                ]
            ),
            metadata=md,
        )
    )
    assert (no_network.code, fields(no_network)) == (grpc.StatusCode.INVALID_ARGUMENT, ["network"])

    bad_fields = networks_pb2.Network(framework="tensorflow")
    many = await refused(
        client.networks.CreateNetwork(
            iter(upload_requests(bad_fields, {"model.onnx": b"a", "other.onnx": b"b"})), metadata=md
        )
    )
    assert many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(many) == ["name", "framework", "preprocessing", "files"]
    assert "tf2onnx" in many.violations[1].description

    wrong_size = networks_pb2.Network()
    wrong_size.CopyFrom(good)
    wrong_size.preprocessing.inputs[0].image.target_size = "300x300"
    misfit = await refused(
        client.networks.CreateNetwork(iter(upload_requests(wrong_size, {"model.onnx": model})), metadata=md)
    )
    assert misfit.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(misfit) == ["preprocessing.inputs[0].image.target_size"]

    corrupt = await refused(
        client.networks.CreateNetwork(
            iter(upload_requests(good, {"model.onnx": os.urandom(5000)})), metadata=md
        )
    )
    assert (corrupt.code, fields(corrupt)) == (grpc.StatusCode.INVALID_ARGUMENT, ["network"])

    interleaved = [
        networks_pb2.CreateNetworkRequest(network=good),
        networks_pb2.CreateNetworkRequest(chunk=networks_pb2.FileChunk(field_name="model.onnx", data=b"1")),
        networks_pb2.CreateNetworkRequest(chunk=networks_pb2.FileChunk(field_name="mean.npy", data=b"2")),
        networks_pb2.CreateNetworkRequest(chunk=networks_pb2.FileChunk(field_name="model.onnx", data=b"3")),
    ]
    split = await refused(client.networks.CreateNetwork(iter(interleaved), metadata=md))
    assert (split.code, fields(split)) == (grpc.StatusCode.INVALID_ARGUMENT, ["model.onnx"])
    # Nothing of the refused uploads was kept.
    blobs = deployed.running.service.settings.blob_dir
    assert list((blobs / "tmp").iterdir()) == []
    assert (await client.networks.ListNetworks(networks_pb2.ListNetworksRequest(), metadata=md)).count == 1


async def test_upload_over_the_size_limit(tmp_path: Path, zoo: installed.Zoo) -> None:
    async with running_service(tmp_path / "data", max_upload_bytes=3 << 20) as running:
        client = running.clients["acme"]
        model = zoo.networks[MODEL].path.read_bytes()
        too_large = await refused(
            client.networks.CreateNetwork(
                iter(upload_requests(mobilenet_network(zoo), {"model.onnx": model})), metadata=client.metadata
            )
        )
        assert (too_large.code, too_large.reason, fields(too_large)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "FILE_TOO_LARGE",
            ["model.onnx"],
        )
        assert list((running.service.settings.blob_dir / "tmp").iterdir()) == []


async def test_spec_and_version_errors(deployed: Deployed, zoo: installed.Zoo) -> None:
    client, md = deployed.client, deployed.client.metadata
    bad_spec = await refused(
        client.specs.CreateRecognitionSpec(
            recognition_pb2.CreateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(
                    outputs=[
                        recognition_pb2.RecognitionSpecOutput(labels=recognition_pb2.LabelsOutputSpec())
                    ],
                    current_version_id=1,
                )
            ),
            metadata=md,
        )
    )
    assert bad_spec.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(bad_spec) == [
        "name",
        "current_version_id",
        "outputs[0].labels.roi",
        "outputs[0].labels.labels",
    ]

    def version_of(post: dict[str, Any], spec_id: str = "", network_id: str = "") -> Awaitable[Any]:
        return client.versions.CreateRecognitionVersion(
            recognition_pb2.CreateRecognitionVersionRequest(
                version=recognition_pb2.RecognitionVersion(
                    spec_id=spec_id or deployed.spec.id,
                    network_id=network_id or deployed.network.id,
                    post_processings=[documents.to_message(post, recognition_pb2.PostProcessing)],
                )
            ),
            metadata=md,
        )

    few = await refused(version_of({"classification": {"output_tensor": "logits", "thresholds": [0.5, 0.5]}}))
    assert (few.code, fields(few)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["post_processings[0].classification.thresholds"],
    )
    missing_tensor = await refused(version_of({"classification": {"output_tensor": "scores"}}))
    assert missing_tensor.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(missing_tensor)[0].startswith("post_processings[0]")
    unknown = await refused(version_of({"classification": {"output_tensor": "logits"}}, spec_id="424242"))
    assert (unknown.code, fields(unknown)) == (grpc.StatusCode.NOT_FOUND, ["spec_id"])

    other = (
        await client.specs.CreateRecognitionSpec(
            recognition_pb2.CreateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(name="other", outputs=deployed.spec.outputs)
            ),
            metadata=md,
        )
    ).spec
    not_its_version = await refused(
        client.specs.UpdateRecognitionSpec(
            recognition_pb2.UpdateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(id=other.id, current_version_id=deployed.version.id),
                update_mask=field_mask_pb2.FieldMask(paths=["current_version_id"]),
            ),
            metadata=md,
        )
    )
    assert (not_its_version.code, fields(not_its_version)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["current_version_id"],
    )
    immutable = await refused(
        client.specs.UpdateRecognitionSpec(
            recognition_pb2.UpdateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(id=other.id),
                update_mask=field_mask_pb2.FieldMask(paths=["outputs"]),
            ),
            metadata=md,
        )
    )
    assert (immutable.code, fields(immutable)) == (grpc.StatusCode.INVALID_ARGUMENT, ["update_mask"])
    public = await refused(
        client.specs.DeleteRecognitionSpec(
            recognition_pb2.DeleteRecognitionSpecRequest(id="nsfw-v1"), metadata=md
        )
    )
    assert (public.code, public.reason) == (grpc.StatusCode.PERMISSION_DENIED, "READ_ONLY")
    paging = await refused(
        client.specs.ListRecognitionSpecs(
            recognition_pb2.ListRecognitionSpecsRequest(limit=5000), metadata=md
        )
    )
    assert (paging.code, fields(paging)) == (grpc.StatusCode.INVALID_ARGUMENT, ["limit"])
    no_version = await refused(
        client.inference.Recognize(
            inference_pb2.RecognizeRequest(spec_id=other.id, inputs=image_input(data=deployed.dog)),
            metadata=md,
        )
    )
    assert (no_version.code, no_version.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CURRENT_VERSION")


async def test_inference_request_errors(deployed: Deployed, skimage_data: Path) -> None:
    client, md = deployed.client, deployed.client.metadata
    spec_id = deployed.spec.id

    def recognize(inputs: list[common_pb2.Input], **fields: Any) -> Awaitable[Any]:
        request = inference_pb2.RecognizeRequest(spec_id=spec_id, inputs=inputs, **fields)
        return client.inference.Recognize(request, metadata=md, timeout=60)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    upside_down = common_pb2.BoundingBox(xmin=0.6, ymin=0, xmax=0.2, ymax=1)
    unknown_spec = inference_pb2.RecognizeRequest(spec_id="31337", inputs=image_input(data=b"x"))
    no_target = inference_pb2.RecognizeRequest(inputs=image_input(data=b"x"))
    source = "inputs[0].image.source"
    cases = [
        (recognize([]), invalid, "INVALID_ARGUMENT", ["inputs"]),
        (recognize(image_input(source="not base64!")), invalid, "INVALID_SOURCE", [source]),
        (recognize(image_input(data=b"not an image at all")), invalid, "INVALID_IMAGE", ["inputs[0].image"]),
        (recognize(image_input(data=deployed.dog, bbox=upside_down)), invalid, "INVALID_ARGUMENT",
         ["inputs[0].image.bbox.xmax"]),
        (recognize(image_input(data=deployed.dog), max_predictions=-1), invalid, "INVALID_ARGUMENT",
         ["max_predictions"]),
        (client.inference.Recognize(unknown_spec, metadata=md), grpc.StatusCode.NOT_FOUND, "NOT_FOUND", []),
        (client.inference.Recognize(no_target, metadata=md), invalid, "INVALID_ARGUMENT", ["spec_id"]),
        (recognize(image_input(source="http://10.1.2.3/dog.jpg")), invalid, "URL_REFUSED", [source]),
    ]  # fmt: skip
    for call, code, reason, violated in cases:
        details = await refused(call)
        assert (details.code, details.reason, fields(details)) == (code, reason, violated), details.message

    # The same faults in a task: Infer answers, the task fails with the same details.
    corrupt = await client.inference.Infer(
        inference_pb2.InferRequest(spec_id=spec_id, inputs=image_input(data=b"corrupt")), metadata=md
    )
    task = (
        await client.tasks.WaitTask(tasks_pb2.WaitTaskRequest(id=corrupt.task_id), metadata=md, timeout=60)
    ).task
    assert task.status == tasks_pb2.TASK_STATUS_ERROR
    assert (task.error.code, task.error.reason) == (3, "INVALID_IMAGE")
    assert [v.field for v in task.error.field_violations] == ["inputs[0].image"]
    # A request Infer cannot take is refused at once, without a task.
    no_inputs = await refused(
        client.inference.Infer(inference_pb2.InferRequest(spec_id=spec_id), metadata=md)
    )
    assert no_inputs.code == grpc.StatusCode.INVALID_ARGUMENT

    # A deadline too short for the work.
    late = await refused(
        client.inference.Recognize(
            inference_pb2.RecognizeRequest(
                spec_id=spec_id, inputs=image_input(data=(skimage_data / "astronaut.png").read_bytes())
            ),
            metadata=md,
            timeout=0.001,
        )
    )
    assert late.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_stream_answers_each_request_by_its_id(deployed: Deployed) -> None:
    client, md = deployed.client, deployed.client.metadata
    requests = [
        inference_pb2.RecognizeStreamRequest(
            request_id=f"r{i}",
            request=inference_pb2.RecognizeRequest(
                spec_id=deployed.spec.id,
                inputs=image_input(data=deployed.dog if i != 2 else b"broken"),
                max_predictions=1,
            ),
        )
        for i in range(5)
    ]
    answers = {a.request_id: a async for a in client.inference.RecognizeStream(iter(requests), metadata=md)}
    assert sorted(answers) == [f"r{i}" for i in range(5)]
    assert answers["r2"].WhichOneof("outcome") == "error"
    assert (answers["r2"].error.code, answers["r2"].error.reason) == (3, "INVALID_IMAGE")
    labels = {answers[f"r{i}"].result.outputs[0].labels.predicted[0].label_name for i in (0, 1, 3, 4)}
    assert labels == {"malamute"}


async def test_too_many_tasks_are_refused_with_retry_info(deployed: Deployed, darknet_data: Path) -> None:
    client, md = deployed.client, deployed.client.metadata
    with image_server(darknet_data) as images:
        slow = [
            await client.inference.Infer(
                inference_pb2.InferRequest(
                    spec_id=deployed.spec.id, inputs=image_input(source=f"{images.url}/slow/dog.jpg")
                ),
                metadata=md,
            )
            for _ in range(2)  # the service holds 2 tasks at most
        ]
        full = await refused(
            client.inference.Infer(
                inference_pb2.InferRequest(spec_id=deployed.spec.id, inputs=image_input(data=deployed.dog)),
                metadata=md,
            )
        )
        assert (full.code, full.reason, full.retry_after) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TOO_MANY_TASKS",
            1.0,
        )
        images.release()
        for answer in slow:
            done = await client.tasks.WaitTask(
                tasks_pb2.WaitTaskRequest(id=answer.task_id), metadata=md, timeout=60
            )
            assert done.task.status == tasks_pb2.TASK_STATUS_SUCCESS


async def test_a_version_that_does_not_fit_its_network_fails_its_precondition(deployed: Deployed) -> None:
    # Written to the store directly, as a version from before a network change would be: the check at
    # creation never saw it. Its classification reads 3 scores for 1000 labels... of a 2-label spec.
    settings = deployed.running.service.settings
    database = await open_database(settings.resolved_database_url)
    try:
        async with database.write() as connection:
            acme = await keys.ensure_tenant(connection, "acme")
            spec = await recognition_store.create_spec(
                connection,
                acme,
                name="two labels",
                outputs=[
                    {
                        "labels": {
                            "roi": "NONE",
                            "exclusive": True,
                            "labels": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}],
                        }
                    }
                ],
            )
            network = int(deployed.network.id)
            version = await recognition_store.create_version(
                connection,
                acme,
                spec_row_id=spec.row_id,
                network_row_id=network,
                post_processings=[
                    {"classification": {"output_tensor": "logits", "class_indices": [0, 5000]}}
                ],
            )
    finally:
        await database.close()
    client = deployed.client
    mismatch = await refused(
        client.inference.Recognize(
            inference_pb2.RecognizeRequest(version_id=version.id, inputs=image_input(data=deployed.dog)),
            metadata=client.metadata,
            timeout=60,
        )
    )
    assert (mismatch.code, mismatch.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "VERSION_MISMATCH")
    assert fields(mismatch)[0].startswith("post_processings[0]")


async def test_internal_errors_answer_an_id_only(
    deployed: Deployed, caplog: pytest.LogCaptureFixture
) -> None:
    # The network's file is damaged on disk behind the service's back: ONNX Runtime's message (with the
    # path) goes to the log, the caller gets an id to quote.
    blob = deployed.running.service.settings.blob_dir / deployed.network.files[0].sha256[:2]
    path = blob / deployed.network.files[0].sha256[2:]
    path.unlink()
    path.write_bytes(b"\x00" * 100)
    client = deployed.client
    failed = await refused(
        client.inference.Recognize(
            inference_pb2.RecognizeRequest(
                version_id=deployed.version.id, inputs=image_input(data=deployed.dog)
            ),
            metadata=client.metadata,
            timeout=60,
        )
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    error_id = failed.metadata["error_id"]
    assert error_id in failed.message
    assert str(path) not in failed.message
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert logged
    assert logged[0].exc_info is not None
