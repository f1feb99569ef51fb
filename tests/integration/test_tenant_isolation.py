"""Tenant isolation over gRPC: a second key sees none of the first key's networks, specs, versions and
tasks (NOT_FOUND, exactly as what does not exist), and both see the public models."""

from __future__ import annotations

import grpc

from integration.deployment import Deployed, fields, image_input, refused
from sightd.v1 import inference_pb2, networks_pb2, recognition_pb2, tasks_pb2


async def test_a_second_key_sees_nothing_of_the_first(deployed: Deployed) -> None:
    owner, md = deployed.client, deployed.client.metadata
    other = deployed.running.clients["globex"]
    task = await owner.inference.Infer(
        inference_pb2.InferRequest(version_id=deployed.version.id, inputs=image_input(data=deployed.dog)),
        metadata=md,
    )
    network_id, spec_id, version_id = deployed.network.id, deployed.spec.id, deployed.version.id
    omd = other.metadata
    hidden = [
        other.networks.GetNetwork(networks_pb2.GetNetworkRequest(id=network_id), metadata=omd),
        other.networks.UpdateNetwork(
            networks_pb2.UpdateNetworkRequest(network=networks_pb2.Network(id=network_id, name="x")),
            metadata=omd,
        ),
        other.networks.DeleteNetwork(networks_pb2.DeleteNetworkRequest(id=network_id), metadata=omd),
        other.networks.InferNetwork(
            networks_pb2.InferNetworkRequest(id=network_id, inputs=image_input(data=deployed.dog)),
            metadata=omd,
        ),
        other.specs.GetRecognitionSpec(recognition_pb2.GetRecognitionSpecRequest(id=spec_id), metadata=omd),
        other.specs.DeleteRecognitionSpec(
            recognition_pb2.DeleteRecognitionSpecRequest(id=spec_id), metadata=omd
        ),
        other.specs.ListRecognitionSpecVersions(
            recognition_pb2.ListRecognitionSpecVersionsRequest(id=spec_id), metadata=omd
        ),
        other.versions.GetRecognitionVersion(
            recognition_pb2.GetRecognitionVersionRequest(id=version_id), metadata=omd
        ),
        other.versions.DeleteRecognitionVersion(
            recognition_pb2.DeleteRecognitionVersionRequest(id=version_id), metadata=omd
        ),
        other.inference.Recognize(
            inference_pb2.RecognizeRequest(version_id=version_id, inputs=image_input(data=deployed.dog)),
            metadata=omd,
        ),
        other.inference.Infer(
            inference_pb2.InferRequest(spec_id=spec_id, inputs=image_input(data=deployed.dog)), metadata=omd
        ),
        other.tasks.GetTask(tasks_pb2.GetTaskRequest(id=task.task_id), metadata=omd),
        other.tasks.WaitTask(tasks_pb2.WaitTaskRequest(id=task.task_id), metadata=omd),
    ]
    for call in hidden:
        assert (await refused(call)).code == grpc.StatusCode.NOT_FOUND
    own_spec = (
        await other.specs.CreateRecognitionSpec(
            recognition_pb2.CreateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(name="theirs", outputs=deployed.spec.outputs)
            ),
            metadata=omd,
        )
    ).spec
    borrowed = await refused(
        other.versions.CreateRecognitionVersion(
            recognition_pb2.CreateRecognitionVersionRequest(
                version=recognition_pb2.RecognitionVersion(
                    spec_id=own_spec.id,
                    network_id=network_id,
                    post_processings=deployed.version.post_processings,
                )
            ),
            metadata=omd,
        )
    )
    assert borrowed.code == grpc.StatusCode.NOT_FOUND
    assert fields(borrowed) == ["network_id"]
    assert (await other.networks.ListNetworks(networks_pb2.ListNetworksRequest(), metadata=omd)).count == 0
    theirs = await other.specs.ListRecognitionSpecs(
        recognition_pb2.ListRecognitionSpecsRequest(), metadata=omd
    )
    assert [spec.id for spec in theirs.results] == [own_spec.id]
    assert (
        await other.versions.ListRecognitionVersions(
            recognition_pb2.ListRecognitionVersionsRequest(), metadata=omd
        )
    ).count == 0
    assert (
        await other.tasks.ListTasks(tasks_pb2.ListTasksRequest(task_ids=[task.task_id]), metadata=omd)
    ).count == 0
    # Both see the public models, and the owner still has everything.
    public = await other.specs.ListRecognitionSpecs(
        recognition_pb2.ListRecognitionSpecsRequest(public=True), metadata=omd
    )
    assert "imagenet-mobilenet-v2" in {s.id for s in public.results}
    assert (
        await owner.networks.GetNetwork(networks_pb2.GetNetworkRequest(id=network_id), metadata=md)
    ).network.id
    done = await owner.tasks.WaitTask(tasks_pb2.WaitTaskRequest(id=task.task_id), metadata=md, timeout=60)
    assert done.task.status == tasks_pb2.TASK_STATUS_SUCCESS
