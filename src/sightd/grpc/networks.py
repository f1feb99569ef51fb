"""NetworkService: networks of the caller's tenant and the public ones, over ``sightd.app.networks``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from sightd.app import documents
from sightd.app.errors import BadRequestError, FieldViolation
from sightd.app.networks import MAX_FILES, NetworkFields, Networks
from sightd.grpc.auth import current_tenant
from sightd.grpc.handlers import answers_errors
from sightd.store.networks import MUTABLE_FIELDS, NetworkRecord
from sightd.v1 import networks_pb2, networks_pb2_grpc

# Network inference is the runtime's business: the servicer takes it as a function (Inference.infer_network),
# which answers the task's id.
InferNetwork = Callable[[int, networks_pb2.InferNetworkRequest], Awaitable[int]]


def network_message(record: NetworkRecord) -> networks_pb2.Network:
    """The ``sightd.v1.Network`` of a stored network."""
    network = networks_pb2.Network(
        id=record.id,
        name=record.name,
        description=record.description,
        framework=record.framework,
        public=record.public,
        preprocessing=documents.to_message(
            record.preprocessing, networks_pb2.Preprocessing, ignore_unknown=True
        ),
        files=[
            networks_pb2.NetworkFile(field_name=f.field_name, size=f.size, sha256=f.sha256)
            for f in record.files
        ],
    )
    documents.dict_to_struct(record.metadata, network.metadata)
    for item in record.postprocessings:
        documents.dict_to_struct(item, network.postprocessings.add())
    network.create_date.FromDatetime(record.created_at)
    network.update_date.FromDatetime(record.updated_at)
    return network


def mask_changes(
    mask: field_mask_pb2.FieldMask, allowed: Sequence[str], values: dict[str, Any]
) -> dict[str, Any]:
    """The changes an update names: ``allowed`` fields in the mask (all of them when it is empty)."""
    paths = list(mask.paths) or list(allowed)
    unknown = [path for path in paths if path not in allowed]
    if unknown:
        raise BadRequestError.of_violations(
            [
                FieldViolation("update_mask", f"{path!r} cannot change (only {', '.join(allowed)})")
                for path in unknown
            ]
        )
    return {path: values[path] for path in paths}


class NetworkServicer(networks_pb2_grpc.NetworkServiceServicer):
    """sightd.v1.NetworkService."""

    def __init__(self, networks: Networks, infer: InferNetwork) -> None:
        self.networks = networks
        self.infer = infer

    @answers_errors
    async def CreateNetwork(
        self,
        request_iterator: AsyncIterator[networks_pb2.CreateNetworkRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> networks_pb2.CreateNetworkResponse:
        tenant = current_tenant()
        upload = self.networks.upload()
        fields: NetworkFields | None = None
        try:
            try:
                async for part in request_iterator:
                    which = part.WhichOneof("part")
                    if fields is None:
                        if which != "network":
                            raise BadRequestError.of("network", "the first message must carry the network")
                        fields = _fields(part.network)
                    elif which == "chunk":
                        await upload.add(part.chunk.field_name, part.chunk.data)
                    else:
                        raise BadRequestError.of("network", "only the first message carries the network")
            except BadRequestError:
                # As much as a valid upload may carry: a refused one costs no more than an accepted one.
                await _discard_rest(request_iterator, MAX_FILES * self.networks.max_upload_bytes)
                raise
            if fields is None:
                raise BadRequestError.of("network", "the first message must carry the network")
            record, task_id = await self.networks.create(tenant, fields, upload)
        finally:
            upload.abort()
        return networks_pb2.CreateNetworkResponse(network=network_message(record), task_id=str(task_id))

    @answers_errors
    async def GetNetwork(
        self, request: networks_pb2.GetNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> networks_pb2.GetNetworkResponse:
        record = await self.networks.get(current_tenant(), request.id)
        return networks_pb2.GetNetworkResponse(network=network_message(record))

    @answers_errors
    async def ListNetworks(
        self, request: networks_pb2.ListNetworksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> networks_pb2.ListNetworksResponse:
        count, records = await self.networks.list(
            current_tenant(), public=request.public, offset=request.offset, limit=request.limit
        )
        return networks_pb2.ListNetworksResponse(count=count, results=[network_message(r) for r in records])

    @answers_errors
    async def UpdateNetwork(
        self, request: networks_pb2.UpdateNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> networks_pb2.UpdateNetworkResponse:
        given = request.network
        values = {
            "name": given.name,
            "description": given.description,
            "metadata": documents.struct_to_dict(given.metadata),
        }
        changes = mask_changes(request.update_mask, MUTABLE_FIELDS, values)
        record = await self.networks.update(current_tenant(), given.id, changes)
        return networks_pb2.UpdateNetworkResponse(network=network_message(record))

    @answers_errors
    async def DeleteNetwork(
        self, request: networks_pb2.DeleteNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> networks_pb2.DeleteNetworkResponse:
        await self.networks.delete(current_tenant(), request.id)
        return networks_pb2.DeleteNetworkResponse()

    @answers_errors
    async def InferNetwork(
        self, request: networks_pb2.InferNetworkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> networks_pb2.InferNetworkResponse:
        task_id = await self.infer(current_tenant(), request)
        return networks_pb2.InferNetworkResponse(task_id=str(task_id))


async def _discard_rest(
    request_iterator: AsyncIterator[networks_pb2.CreateNetworkRequest], budget: int
) -> None:
    """Reads what the client still sends, up to ``budget`` bytes, before the call is refused: a client
    whose messages are still in flight when the answer comes would see the call fail with its own write
    error (INTERNAL) instead of the refusal."""
    with contextlib.suppress(Exception):
        async for part in request_iterator:
            budget -= part.ByteSize()
            if budget < 0:
                break


def _fields(network: networks_pb2.Network) -> NetworkFields:
    given = network.HasField("preprocessing")
    return NetworkFields(
        name=network.name,
        framework=network.framework,
        preprocessing=documents.to_document(network.preprocessing) if given else None,
        description=network.description,
        metadata=documents.struct_to_dict(network.metadata),
        postprocessings=[documents.struct_to_dict(item) for item in network.postprocessings],
    )
