"""Handlers of the resources: networks, recognition specs and versions, and ``accounts/me``.

Each handler reads the request (path, query, body), makes one gRPC call with the request's key (a few for
``accounts/me``) and answers the v0.7 JSON of the result. Updates take the mutable fields only; fields
that a retrieved object carries but that cannot be set (``id``, dates...) are ignored, so an object can be
sent back as it was read, while a changed immutable field (``framework``, ``outputs``...) is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import field_mask_pb2

from sightd.gateway.app import Answer, Call
from sightd.gateway.bodies import check_keys, id_text, message_of, read_body
from sightd.gateway.errors import not_found
from sightd.gateway.views import network_json, page_json, spec_json, version_json
from sightd.v1 import networks_pb2, recognition_pb2

_CHUNK = 1 << 20
_NETWORK_FIELDS = ("name", "description", "metadata", "framework", "preprocessing", "postprocessings")
_NETWORK_MUTABLE = ("name", "description", "metadata")
_NETWORK_IMMUTABLE = ("framework", "preprocessing", "postprocessings")
_NETWORK_OUTPUT = ("id", "public", "files", "create_date", "update_date", "task_id")
_SPEC_MUTABLE = ("name", "description", "metadata", "current_version_id")
_SPEC_OUTPUT = ("id", "public", "create_date", "update_date")
_VERSION_FIELDS = ("spec_id", "network_id", "post_processings")
_VERSION_OUTPUT = ("id", "public", "create_date")
_INT64_MAX = 2**63 - 1


def page_args(call: Call) -> tuple[int, int]:
    """offset and limit of a list request (limit 0 or absent: 100, the client's default)."""
    offset = call.query_int("offset", 0)
    limit = call.query_int("limit", 100) or 100
    return offset, limit


def paged(call: Call, response: Any, view: Any, offset: int, limit: int) -> Answer:
    query = list(call.request.query_params.multi_items())
    return 200, page_json(
        response.count,
        response.results,
        view,
        base_url=call.base_url(),
        query=query,
        offset=offset,
        limit=limit,
    )


def version_id(call: Call) -> int:
    text = call.params["id"]
    if not (text.isascii() and text.isdigit()) or int(text) > _INT64_MAX:
        raise not_found(f"no recognition version {text[:32]!r}")
    return int(text)


# --- networks ----------------------------------------------------------------------------------------


async def list_networks(call: Call, public: bool = False) -> Answer:
    offset, limit = page_args(call)
    request = networks_pb2.ListNetworksRequest(public=public, offset=offset, limit=limit)
    response = await call.stubs.networks.ListNetworks(request, metadata=call.metadata, timeout=call.timeout)
    return paged(call, response, network_json, offset, limit)


async def list_public_networks(call: Call) -> Answer:
    return await list_networks(call, public=True)


async def get_network(call: Call) -> Answer:
    request = networks_pb2.GetNetworkRequest(id=call.params["id"])
    response = await call.stubs.networks.GetNetwork(request, metadata=call.metadata, timeout=call.timeout)
    return 200, network_json(response.network)


async def create_network(call: Call) -> Answer:
    """JSON or multipart; files are streamed to CreateNetwork by field name, a chunk at a time."""
    body = await read_body(call, networks_pb2.Network.DESCRIPTOR, keep_files=True)
    fields = check_keys(body.document, _NETWORK_FIELDS, ignored=_NETWORK_OUTPUT)
    network = message_of(fields, networks_pb2.Network)

    async def parts() -> AsyncIterator[networks_pb2.CreateNetworkRequest]:
        yield networks_pb2.CreateNetworkRequest(network=network)
        for name, upload in body.files.items():
            while chunk := await upload.read(_CHUNK):
                yield networks_pb2.CreateNetworkRequest(
                    chunk=networks_pb2.FileChunk(field_name=name, data=chunk)
                )

    response = await call.stubs.networks.CreateNetwork(
        parts(), metadata=call.metadata, timeout=call.limits.upload_timeout
    )
    document = network_json(response.network)
    document["task_id"] = response.task_id
    return 201, document


async def _unchanged(call: Call, document: dict[str, Any], immutable: tuple[str, ...], get: Any) -> list[str]:
    """The immutable fields a body carries with the resource's current values (a retrieved object sent
    back): those are ignored. One more read, only when such fields are there."""
    given = [key for key in immutable if key in document]
    if not given:
        return []
    current = (await get(call))[1]
    return [key for key in given if current.get(key) == document[key]]


async def update_network(call: Call, replace: bool = False) -> Answer:
    body = await read_body(call, networks_pb2.Network.DESCRIPTOR)
    same = await _unchanged(call, body.document, _NETWORK_IMMUTABLE, get_network)
    fields = check_keys(
        body.document,
        _NETWORK_MUTABLE,
        ignored=(*_NETWORK_OUTPUT, *same),
        immutable=_NETWORK_IMMUTABLE,
    )
    network = message_of(fields, networks_pb2.Network)
    network.id = call.params["id"]
    mask = field_mask_pb2.FieldMask(paths=[] if replace else list(fields))
    if not replace and not fields:
        return await get_network(call)
    request = networks_pb2.UpdateNetworkRequest(network=network, update_mask=mask)
    response = await call.stubs.networks.UpdateNetwork(request, metadata=call.metadata, timeout=call.timeout)
    return 200, network_json(response.network)


async def replace_network(call: Call) -> Answer:
    return await update_network(call, replace=True)


async def delete_network(call: Call) -> Answer:
    request = networks_pb2.DeleteNetworkRequest(id=call.params["id"])
    await call.stubs.networks.DeleteNetwork(request, metadata=call.metadata, timeout=call.timeout)
    return 204, None


# --- recognition specs --------------------------------------------------------------------------------


async def list_specs(call: Call, public: bool = False) -> Answer:
    offset, limit = page_args(call)
    request = recognition_pb2.ListRecognitionSpecsRequest(public=public, offset=offset, limit=limit)
    response = await call.stubs.specs.ListRecognitionSpecs(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return paged(call, response, spec_json, offset, limit)


async def list_public_specs(call: Call) -> Answer:
    return await list_specs(call, public=True)


async def get_spec(call: Call) -> Answer:
    request = recognition_pb2.GetRecognitionSpecRequest(id=call.params["id"])
    response = await call.stubs.specs.GetRecognitionSpec(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return 200, spec_json(response.spec)


async def create_spec(call: Call) -> Answer:
    body = await read_body(call, recognition_pb2.RecognitionSpec.DESCRIPTOR)
    fields = check_keys(body.document, ("name", "description", "metadata", "outputs", "current_version_id"))
    spec = message_of(fields, recognition_pb2.RecognitionSpec)
    request = recognition_pb2.CreateRecognitionSpecRequest(spec=spec)
    response = await call.stubs.specs.CreateRecognitionSpec(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return 201, spec_json(response.spec)


async def update_spec(call: Call, replace: bool = False) -> Answer:
    body = await read_body(call, recognition_pb2.RecognitionSpec.DESCRIPTOR)
    same = await _unchanged(call, body.document, ("outputs",), get_spec)
    fields = check_keys(body.document, _SPEC_MUTABLE, ignored=(*_SPEC_OUTPUT, *same), immutable=("outputs",))
    spec = message_of(fields, recognition_pb2.RecognitionSpec)
    spec.id = call.params["id"]
    if not replace and not fields:
        return await get_spec(call)
    mask = field_mask_pb2.FieldMask(paths=[] if replace else list(fields))
    request = recognition_pb2.UpdateRecognitionSpecRequest(spec=spec, update_mask=mask)
    response = await call.stubs.specs.UpdateRecognitionSpec(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return 200, spec_json(response.spec)


async def replace_spec(call: Call) -> Answer:
    return await update_spec(call, replace=True)


async def delete_spec(call: Call) -> Answer:
    request = recognition_pb2.DeleteRecognitionSpecRequest(id=call.params["id"])
    await call.stubs.specs.DeleteRecognitionSpec(request, metadata=call.metadata, timeout=call.timeout)
    return 204, None


async def list_spec_versions(call: Call) -> Answer:
    offset, limit = page_args(call)
    request = recognition_pb2.ListRecognitionSpecVersionsRequest(
        id=call.params["id"], offset=offset, limit=limit
    )
    response = await call.stubs.specs.ListRecognitionSpecVersions(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return paged(call, response, version_json, offset, limit)


# --- recognition versions -----------------------------------------------------------------------------


async def list_versions(call: Call) -> Answer:
    offset, limit = page_args(call)
    request = recognition_pb2.ListRecognitionVersionsRequest(offset=offset, limit=limit)
    response = await call.stubs.versions.ListRecognitionVersions(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return paged(call, response, version_json, offset, limit)


async def get_version(call: Call) -> Answer:
    request = recognition_pb2.GetRecognitionVersionRequest(id=version_id(call))
    response = await call.stubs.versions.GetRecognitionVersion(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return 200, version_json(response.version)


async def create_version(call: Call) -> Answer:
    body = await read_body(call, recognition_pb2.RecognitionVersion.DESCRIPTOR)
    fields = check_keys(body.document, _VERSION_FIELDS, ignored=_VERSION_OUTPUT)
    ids = {key: id_text(fields, key) for key in ("spec_id", "network_id")}
    version = message_of(
        {k: v for k, v in fields.items() if k not in ids}, recognition_pb2.RecognitionVersion
    )
    for key, value in ids.items():
        if value is not None:
            setattr(version, key, value)
    request = recognition_pb2.CreateRecognitionVersionRequest(version=version)
    response = await call.stubs.versions.CreateRecognitionVersion(
        request, metadata=call.metadata, timeout=call.timeout
    )
    return 201, version_json(response.version)


async def delete_version(call: Call) -> Answer:
    request = recognition_pb2.DeleteRecognitionVersionRequest(id=version_id(call))
    await call.stubs.versions.DeleteRecognitionVersion(request, metadata=call.metadata, timeout=call.timeout)
    return 204, None


# --- accounts -----------------------------------------------------------------------------------------


async def get_account(call: Call) -> Answer:
    """``accounts/me``: the gRPC API has no account object, so the gateway answers what the key can see,
    from four list calls (each also checks the key: an invalid one answers 401)."""
    if call.params["id"] != "me":
        raise not_found("only accounts/me exists")
    md, timeout = call.metadata, call.timeout
    networks, specs, versions, public = await asyncio.gather(
        call.stubs.networks.ListNetworks(
            networks_pb2.ListNetworksRequest(limit=1), metadata=md, timeout=timeout
        ),
        call.stubs.specs.ListRecognitionSpecs(
            recognition_pb2.ListRecognitionSpecsRequest(limit=1), metadata=md, timeout=timeout
        ),
        call.stubs.versions.ListRecognitionVersions(
            recognition_pb2.ListRecognitionVersionsRequest(limit=1), metadata=md, timeout=timeout
        ),
        call.stubs.specs.ListRecognitionSpecs(
            recognition_pb2.ListRecognitionSpecsRequest(public=True, limit=1), metadata=md, timeout=timeout
        ),
    )
    return 200, {
        "id": "me",
        "networks_count": networks.count,
        "recognition_specs_count": specs.count,
        "recognition_versions_count": versions.count,
        "public_recognition_specs_count": public.count,
    }
