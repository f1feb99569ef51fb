"""Requests and deployments shared by the service tests: uploads in chunks, image inputs, a deployed
imagenet-mobilenet-v2 (network, spec, current version) for one tenant, and reading refusals."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from integration.harness import Running, Stubs, running_service
from sightd.app import documents
from sightd.grpc.status import StatusDetails, details_of
from sightd.v1 import common_pb2, networks_pb2, recognition_pb2
from sightd.zoo import installed

CHUNK = 1 << 20
MODEL = "imagenet-mobilenet-v2"


def upload_requests(
    network: networks_pb2.Network, files: dict[str, bytes], chunk: int = CHUNK
) -> list[networks_pb2.CreateNetworkRequest]:
    requests = [networks_pb2.CreateNetworkRequest(network=network)]
    for name, data in files.items():
        for start in range(0, len(data), chunk):
            part = networks_pb2.FileChunk(field_name=name, data=data[start : start + chunk])
            requests.append(networks_pb2.CreateNetworkRequest(chunk=part))
    return requests


def mobilenet_network(zoo: installed.Zoo) -> networks_pb2.Network:
    return networks_pb2.Network(
        name="my mobilenet",
        description="uploaded in chunks",
        framework="onnx",
        preprocessing=documents.to_message(zoo.networks[MODEL].preprocessing, networks_pb2.Preprocessing),
    )


def image_input(**image: Any) -> list[common_pb2.Input]:
    return [common_pb2.Input(image=common_pb2.ImageInput(**image))]


async def refused(call: Awaitable[Any]) -> StatusDetails:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return details_of(failed.value)


@dataclass
class Deployed:
    running: Running
    client: Stubs
    network: networks_pb2.Network
    spec: recognition_pb2.RecognitionSpec
    version: recognition_pb2.RecognitionVersion
    dog: bytes


def fields(details: StatusDetails) -> list[str]:
    return [v.field for v in details.violations]


@contextlib.asynccontextmanager
async def deploy(data_dir: Path, zoo: installed.Zoo, darknet_data: Path) -> AsyncIterator[Deployed]:
    """acme's network, spec and current version of imagenet-mobilenet-v2; the public models too."""
    async with running_service(data_dir, public_models=True, max_running_tasks=2) as running:
        client = running.clients["acme"]
        md = client.metadata
        network = (
            await client.networks.CreateNetwork(
                iter(
                    upload_requests(
                        mobilenet_network(zoo), {"model.onnx": zoo.networks[MODEL].path.read_bytes()}
                    )
                ),
                metadata=md,
            )
        ).network
        spec = (
            await client.specs.CreateRecognitionSpec(
                recognition_pb2.CreateRecognitionSpecRequest(
                    spec=recognition_pb2.RecognitionSpec(
                        name="mine",
                        outputs=[
                            documents.to_message(o, recognition_pb2.RecognitionSpecOutput)
                            for o in zoo.models[MODEL].spec["outputs"]
                        ],
                    )
                ),
                metadata=md,
            )
        ).spec
        version = (
            await client.versions.CreateRecognitionVersion(
                recognition_pb2.CreateRecognitionVersionRequest(
                    version=recognition_pb2.RecognitionVersion(
                        spec_id=spec.id,
                        network_id=network.id,
                        post_processings=[
                            documents.to_message(
                                zoo.models[MODEL].post_processing, recognition_pb2.PostProcessing
                            )
                        ],
                    )
                ),
                metadata=md,
            )
        ).version
        spec = (
            await client.specs.UpdateRecognitionSpec(
                recognition_pb2.UpdateRecognitionSpecRequest(
                    spec=recognition_pb2.RecognitionSpec(id=spec.id, current_version_id=version.id),
                    update_mask=field_mask_pb2.FieldMask(paths=["current_version_id"]),
                ),
                metadata=md,
            )
        ).spec
        yield Deployed(running, client, network, spec, version, (darknet_data / "dog.jpg").read_bytes())
