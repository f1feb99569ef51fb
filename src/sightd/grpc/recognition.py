"""RecognitionSpecService and RecognitionVersionService over ``sightd.app.recognition``."""

from __future__ import annotations

from typing import Any

import grpc

from sightd.app import documents
from sightd.app.recognition import Recognition
from sightd.grpc.auth import current_tenant
from sightd.grpc.handlers import answers_errors
from sightd.grpc.networks import mask_changes
from sightd.store.recognition import SPEC_MUTABLE_FIELDS, SpecRecord, VersionRecord
from sightd.v1 import recognition_pb2, recognition_pb2_grpc


def spec_message(record: SpecRecord) -> recognition_pb2.RecognitionSpec:
    """The ``sightd.v1.RecognitionSpec`` of a stored spec."""
    spec = recognition_pb2.RecognitionSpec(
        id=record.id,
        name=record.name,
        description=record.description,
        public=record.public,
        outputs=[
            documents.to_message(output, recognition_pb2.RecognitionSpecOutput, ignore_unknown=True)
            for output in record.outputs
        ],
    )
    if record.current_version_id is not None:
        spec.current_version_id = record.current_version_id
    documents.dict_to_struct(record.metadata, spec.metadata)
    spec.create_date.FromDatetime(record.created_at)
    spec.update_date.FromDatetime(record.updated_at)
    return spec


def version_message(record: VersionRecord) -> recognition_pb2.RecognitionVersion:
    """The ``sightd.v1.RecognitionVersion`` of a stored version."""
    version = recognition_pb2.RecognitionVersion(
        id=record.id,
        spec_id=record.spec_id,
        network_id=record.network_id,
        public=record.public,
        post_processings=[
            documents.to_message(item, recognition_pb2.PostProcessing, ignore_unknown=True)
            for item in record.post_processings
        ],
    )
    version.create_date.FromDatetime(record.created_at)
    return version


class RecognitionSpecServicer(recognition_pb2_grpc.RecognitionSpecServiceServicer):
    """sightd.v1.RecognitionSpecService."""

    def __init__(self, recognition: Recognition) -> None:
        self.recognition = recognition

    @answers_errors
    async def CreateRecognitionSpec(
        self,
        request: recognition_pb2.CreateRecognitionSpecRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.CreateRecognitionSpecResponse:
        given = request.spec
        record = await self.recognition.create_spec(
            current_tenant(),
            name=given.name,
            description=given.description,
            metadata=documents.struct_to_dict(given.metadata),
            outputs=[documents.to_document(output) for output in given.outputs],
            current_version_id=given.current_version_id if given.HasField("current_version_id") else None,
        )
        return recognition_pb2.CreateRecognitionSpecResponse(spec=spec_message(record))

    @answers_errors
    async def GetRecognitionSpec(
        self, request: recognition_pb2.GetRecognitionSpecRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> recognition_pb2.GetRecognitionSpecResponse:
        record = await self.recognition.get_spec(current_tenant(), request.id)
        return recognition_pb2.GetRecognitionSpecResponse(spec=spec_message(record))

    @answers_errors
    async def ListRecognitionSpecs(
        self,
        request: recognition_pb2.ListRecognitionSpecsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.ListRecognitionSpecsResponse:
        count, records = await self.recognition.list_specs(
            current_tenant(), public=request.public, offset=request.offset, limit=request.limit
        )
        return recognition_pb2.ListRecognitionSpecsResponse(
            count=count, results=[spec_message(r) for r in records]
        )

    @answers_errors
    async def UpdateRecognitionSpec(
        self,
        request: recognition_pb2.UpdateRecognitionSpecRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.UpdateRecognitionSpecResponse:
        given = request.spec
        values = {
            "name": given.name,
            "description": given.description,
            "metadata": documents.struct_to_dict(given.metadata),
            "current_version_id": given.current_version_id if given.HasField("current_version_id") else None,
        }
        changes = mask_changes(request.update_mask, SPEC_MUTABLE_FIELDS, values)
        record = await self.recognition.update_spec(current_tenant(), given.id, changes)
        return recognition_pb2.UpdateRecognitionSpecResponse(spec=spec_message(record))

    @answers_errors
    async def DeleteRecognitionSpec(
        self,
        request: recognition_pb2.DeleteRecognitionSpecRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.DeleteRecognitionSpecResponse:
        await self.recognition.delete_spec(current_tenant(), request.id)
        return recognition_pb2.DeleteRecognitionSpecResponse()

    @answers_errors
    async def ListRecognitionSpecVersions(
        self,
        request: recognition_pb2.ListRecognitionSpecVersionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.ListRecognitionSpecVersionsResponse:
        count, records = await self.recognition.list_spec_versions(
            current_tenant(), request.id, offset=request.offset, limit=request.limit
        )
        return recognition_pb2.ListRecognitionSpecVersionsResponse(
            count=count, results=[version_message(r) for r in records]
        )


class RecognitionVersionServicer(recognition_pb2_grpc.RecognitionVersionServiceServicer):
    """sightd.v1.RecognitionVersionService."""

    def __init__(self, recognition: Recognition) -> None:
        self.recognition = recognition

    @answers_errors
    async def CreateRecognitionVersion(
        self,
        request: recognition_pb2.CreateRecognitionVersionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.CreateRecognitionVersionResponse:
        given = request.version
        record = await self.recognition.create_version(
            current_tenant(),
            spec_id=given.spec_id,
            network_id=given.network_id,
            post_processings=[documents.to_document(item) for item in given.post_processings],
        )
        return recognition_pb2.CreateRecognitionVersionResponse(version=version_message(record))

    @answers_errors
    async def GetRecognitionVersion(
        self,
        request: recognition_pb2.GetRecognitionVersionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.GetRecognitionVersionResponse:
        record = await self.recognition.get_version(current_tenant(), request.id)
        return recognition_pb2.GetRecognitionVersionResponse(version=version_message(record))

    @answers_errors
    async def ListRecognitionVersions(
        self,
        request: recognition_pb2.ListRecognitionVersionsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.ListRecognitionVersionsResponse:
        count, records = await self.recognition.list_versions(
            current_tenant(), offset=request.offset, limit=request.limit
        )
        return recognition_pb2.ListRecognitionVersionsResponse(
            count=count, results=[version_message(r) for r in records]
        )

    @answers_errors
    async def DeleteRecognitionVersion(
        self,
        request: recognition_pb2.DeleteRecognitionVersionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> recognition_pb2.DeleteRecognitionVersionResponse:
        await self.recognition.delete_version(current_tenant(), request.id)
        return recognition_pb2.DeleteRecognitionVersionResponse()
