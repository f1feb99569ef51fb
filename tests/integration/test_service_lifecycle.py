"""The whole life cycle over real gRPC on loopback, on SQLite and PostgreSQL: upload a network of several MB
in chunks, create a spec and a version, infer with every kind of input, wait, list, update, delete. The
predictions are checked against an independent recipe (PIL + onnxruntime, conftest.mobilenet_reference)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import field_mask_pb2

from integration.deployment import CHUNK, MODEL, image_input, mobilenet_network, upload_requests
from integration.harness import Stubs, image_server, running_service
from integration.references import mobilenet_reference
from sightd.app import documents
from sightd.store.database import Database
from sightd.v1 import (
    common_pb2,
    inference_pb2,
    networks_pb2,
    recognition_pb2,
    tasks_pb2,
)
from sightd.zoo import installed


def top(result: inference_pb2.RecognitionResult) -> list[tuple[str, float]]:
    return [(p.label_name, p.score) for p in result.outputs[0].labels.predicted]


async def wait_done(client: Stubs, task_id: str) -> tasks_pb2.Task:
    answer = await client.tasks.WaitTask(
        tasks_pb2.WaitTaskRequest(id=task_id), metadata=client.metadata, timeout=120
    )
    assert answer.task.status != tasks_pb2.TASK_STATUS_PENDING
    return answer.task


@pytest.mark.slow
async def test_life_cycle(database: Database, tmp_path: Path, zoo: installed.Zoo, darknet_data: Path) -> None:
    url = database.url.render_as_string(hide_password=False)
    model_bytes = zoo.networks[MODEL].path.read_bytes()
    assert len(model_bytes) > 8 * CHUNK  # several MB, many chunks
    dog = (darknet_data / "dog.jpg").read_bytes()
    reference = mobilenet_reference(zoo, darknet_data / "dog.jpg")
    labels = zoo.models[MODEL].spec["outputs"][0]["labels"]["labels"]
    expected_top = labels[int(np.argmax(reference))]["name"]
    assert expected_top == "malamute"  # as observed with the model's own recipe (docs/zoo.md)

    async with running_service(tmp_path / "data", url) as running:
        client = running.clients["acme"]
        md = client.metadata

        # Upload, in 1 MiB chunks.
        created = await client.networks.CreateNetwork(
            iter(upload_requests(mobilenet_network(zoo), {"model.onnx": model_bytes})), metadata=md
        )
        network = created.network
        assert network.id.isdigit()
        assert (network.name, network.framework, network.public) == ("my mobilenet", "onnx", False)
        assert [(f.field_name, f.size, f.sha256) for f in network.files] == [
            ("model.onnx", len(model_bytes), hashlib.sha256(model_bytes).hexdigest())
        ]
        deployment = await wait_done(client, created.task_id)
        assert deployment.status == tasks_pb2.TASK_STATUS_SUCCESS
        assert not deployment.data.HasField("recognition")

        # Spec and version.
        spec = (
            await client.specs.CreateRecognitionSpec(
                recognition_pb2.CreateRecognitionSpecRequest(
                    spec=recognition_pb2.RecognitionSpec(
                        name="dogs and more",
                        outputs=[
                            documents.to_message(o, recognition_pb2.RecognitionSpecOutput)
                            for o in zoo.models[MODEL].spec["outputs"]
                        ],
                    )
                ),
                metadata=md,
            )
        ).spec
        assert spec.id.isdigit()
        assert not spec.HasField("current_version_id")
        assert len(spec.outputs[0].labels.labels) == 1000
        post = documents.to_message(zoo.models[MODEL].post_processing, recognition_pb2.PostProcessing)
        version = (
            await client.versions.CreateRecognitionVersion(
                recognition_pb2.CreateRecognitionVersionRequest(
                    version=recognition_pb2.RecognitionVersion(
                        spec_id=spec.id, network_id=network.id, post_processings=[post]
                    )
                ),
                metadata=md,
            )
        ).version
        assert (version.spec_id, version.network_id, version.public) == (spec.id, network.id, False)
        updated = await client.specs.UpdateRecognitionSpec(
            recognition_pb2.UpdateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(id=spec.id, current_version_id=version.id),
                update_mask=field_mask_pb2.FieldMask(paths=["current_version_id"]),
            ),
            metadata=md,
        )
        assert updated.spec.current_version_id == version.id
        assert updated.spec.name == "dogs and more"

        # Infer with every kind of input, by spec and by version.
        with image_server(darknet_data) as images:
            sources = {
                "bytes": image_input(data=dog),
                "base64": image_input(source=base64.b64encode(dog).decode()),
                "data URI": image_input(source="data:image/jpeg;base64," + base64.b64encode(dog).decode()),
                "binary data URI": image_input(source="data:image/jpeg;binary," + dog.decode("latin-1")),
                "URL": image_input(source=f"{images.url}/dog.jpg"),
            }
            task_ids = {}
            for kind, inputs in sources.items():
                target = {"spec_id": spec.id} if len(task_ids) % 2 == 0 else {"version_id": version.id}
                answer = await client.inference.Infer(
                    inference_pb2.InferRequest(inputs=inputs, max_predictions=3, **target), metadata=md
                )
                assert answer.task_id.isdigit()
                task_ids[kind] = answer.task_id
            results = {}
            for kind, task_id in task_ids.items():
                task = await wait_done(client, task_id)
                assert task.status == tasks_pb2.TASK_STATUS_SUCCESS, (kind, task.error)
                results[kind] = task.data.recognition
        first = top(results["bytes"])
        for kind, result in results.items():
            assert top(result) == first, kind
        assert len(first) <= 3
        assert first[0][0] == expected_top
        assert first[0][1] == pytest.approx(float(reference.max()), abs=0.05)
        assert results["bytes"].outputs[0].labels.predicted[0].threshold == pytest.approx(0.025)

        # The same image, synchronously, and cut to a region.
        recognised = await client.inference.Recognize(
            inference_pb2.RecognizeRequest(spec_id=spec.id, inputs=image_input(data=dog), max_predictions=3),
            metadata=md,
            timeout=60,
        )
        assert top(recognised.result) == first
        region = await client.inference.Recognize(
            inference_pb2.RecognizeRequest(
                version_id=version.id,
                inputs=image_input(
                    data=dog, bbox=common_pb2.BoundingBox(xmin=0.1, ymin=0.2, xmax=0.5, ymax=0.9)
                ),
                show_discarded=True,
                max_predictions=2,
            ),
            metadata=md,
            timeout=60,
        )
        assert top(region.result) != first
        assert len(region.result.outputs[0].labels.discarded) == 2

        # Raw network inference: the logits, as onnxruntime computes them.
        raw = await client.networks.InferNetwork(
            networks_pb2.InferNetworkRequest(
                id=network.id, inputs=image_input(data=dog), output_tensors=["logits"]
            ),
            metadata=md,
        )
        tensors = (await wait_done(client, raw.task_id)).data.network_inference.tensors
        assert [(t.name, list(t.shape)) for t in tensors] == [("logits", [1000])]
        logits = np.array(tensors[0].data)
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert int(np.argmax(probabilities)) == int(np.argmax(reference))
        assert np.abs(probabilities - reference).max() < 0.05

        # Lists.
        listed = await client.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(task_ids=[*task_ids.values(), "999999"]), metadata=md
        )
        assert listed.count == len(task_ids)
        assert [t.id for t in listed.results] == sorted(task_ids.values(), key=int)
        networks = await client.networks.ListNetworks(networks_pb2.ListNetworksRequest(), metadata=md)
        assert [n.id for n in networks.results] == [network.id]
        specs = await client.specs.ListRecognitionSpecs(
            recognition_pb2.ListRecognitionSpecsRequest(), metadata=md
        )
        assert (specs.count, specs.results[0].id) == (1, spec.id)
        spec_versions = await client.specs.ListRecognitionSpecVersions(
            recognition_pb2.ListRecognitionSpecVersionsRequest(id=spec.id), metadata=md
        )
        assert [v.id for v in spec_versions.results] == [version.id]
        versions = await client.versions.ListRecognitionVersions(
            recognition_pb2.ListRecognitionVersionsRequest(), metadata=md
        )
        assert [v.id for v in versions.results] == [version.id]

        # Updates.
        renamed = await client.networks.UpdateNetwork(
            networks_pb2.UpdateNetworkRequest(
                network=networks_pb2.Network(id=network.id, description="updated"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=md,
        )
        assert (renamed.network.name, renamed.network.description) == ("my mobilenet", "updated")
        replaced = await client.networks.UpdateNetwork(
            networks_pb2.UpdateNetworkRequest(network=networks_pb2.Network(id=network.id, name="renamed")),
            metadata=md,
        )
        assert (replaced.network.name, replaced.network.description) == ("renamed", "")

        # Deletes: the version (the spec loses its current version), the spec, the network and its blob.
        await client.versions.DeleteRecognitionVersion(
            recognition_pb2.DeleteRecognitionVersionRequest(id=version.id), metadata=md
        )
        got = await client.specs.GetRecognitionSpec(
            recognition_pb2.GetRecognitionSpecRequest(id=spec.id), metadata=md
        )
        assert not got.spec.HasField("current_version_id")
        # At once, although the spec's version was just used (and remembered) for recognition.
        with pytest.raises(grpc.aio.AioRpcError) as no_version:
            await client.inference.Recognize(
                inference_pb2.RecognizeRequest(spec_id=spec.id, inputs=image_input(data=dog)), metadata=md
            )
        assert no_version.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        await client.specs.DeleteRecognitionSpec(
            recognition_pb2.DeleteRecognitionSpecRequest(id=spec.id), metadata=md
        )
        blob = tmp_path / "data" / "blobs" / network.files[0].sha256[:2] / network.files[0].sha256[2:]
        assert blob.is_file()
        await client.networks.DeleteNetwork(networks_pb2.DeleteNetworkRequest(id=network.id), metadata=md)
        assert not blob.exists()
        assert (
            await client.networks.ListNetworks(networks_pb2.ListNetworksRequest(), metadata=md)
        ).count == 0
