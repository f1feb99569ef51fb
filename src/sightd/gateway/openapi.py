"""The OpenAPI 3.0 document of the REST API, built from the route table and the sightd.v1 messages.

Body and answer schemas derive from the contract's descriptors with the same rules as the JSON mapping
(``sightd.app.documents``): enums in their v0.7 spelling, int64 as integers, free JSON as objects, plus the
REST id rules of ``sightd.gateway.views``. It is served at ``/v0.7/openapi.json`` (and ``/openapi.json``).
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from sightd.app import documents
from sightd.gateway.app import PREFIX
from sightd.gateway.routes import PATHS, Operation
from sightd.v1 import common_pb2, inference_pb2, networks_pb2, recognition_pb2, tasks_pb2

_INTEGER = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
}
_ID = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
_NULLABLE_INT = {"type": "integer", "nullable": True}
# Fields whose REST form differs from the contract's (see sightd.gateway.views).
_OVERRIDES: dict[str, dict[str, Any]] = {
    "sightd.v1.Network.id": _ID,
    "sightd.v1.RecognitionSpec.id": _ID,
    "sightd.v1.RecognitionVersion.spec_id": _ID,
    "sightd.v1.RecognitionVersion.network_id": _ID,
    "sightd.v1.RecognitionSpec.current_version_id": _NULLABLE_INT,
    "sightd.v1.ImagePreprocessing.pad_value": {
        "oneOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]
    },
    "sightd.v1.ImageInput.source": {
        "type": "string",
        "description": "an http(s) URL, a data:image/...;base64, URI, or base64; in a multipart form, the "
        "image file itself",
    },
}
_SKIPPED = frozenset({"sightd.v1.ImageInput.data"})


class _Schemas:
    """Component schemas of messages, added as they are referenced."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        name = descriptor.name
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages
            self.components[name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, descriptor: Descriptor, only: tuple[str, ...] | None = None) -> dict[str, Any]:
        properties = {}
        for field in descriptor.fields:
            if field.full_name in _SKIPPED or (only is not None and field.name not in only):
                continue
            properties[field.name] = self.field(field)
        return {"type": "object", "properties": properties}

    def field(self, field: Any) -> dict[str, Any]:
        if field.full_name in _OVERRIDES:
            return dict(_OVERRIDES[field.full_name])
        single = self.single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def single(self, field: Any) -> dict[str, Any]:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            name = field.message_type.full_name
            if name == "google.protobuf.Struct":
                return {"type": "object"}
            if name == "google.protobuf.Timestamp":
                return {"type": "string", "format": "date-time"}
            if name == "sightd.v1.ConstantValue":
                return {"oneOf": [{"type": "number"}, {"type": "string"}]}
            return self.ref(field.message_type)
        if kind == FieldDescriptor.TYPE_ENUM:
            names = [documents.enum_to_json(field.enum_type, v.number) for v in field.enum_type.values]
            return {"type": "string", "enum": [name for name in names if name]}
        if kind == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == FieldDescriptor.TYPE_STRING:
            return {"type": "string"}
        if kind in _INTEGER:
            low, high = _INTEGER[kind]
            return {"type": "integer", "minimum": low, "maximum": high}
        return {"type": "number"}


def _rest_schemas(schemas: _Schemas) -> None:
    """The bodies and answers of the REST API that are not plain messages."""
    add = schemas.components.update
    network = networks_pb2.Network.DESCRIPTOR
    spec = recognition_pb2.RecognitionSpec.DESCRIPTOR
    version = recognition_pb2.RecognitionVersion.DESCRIPTOR
    for descriptor in (network, spec, version, tasks_pb2.Task.DESCRIPTOR, common_pb2.Input.DESCRIPTOR):
        schemas.ref(descriptor)
    created = schemas.message(network)
    created["properties"]["task_id"] = {"type": "string", "pattern": "^[0-9]+$"}
    image_inputs = {"type": "array", "items": schemas.ref(common_pb2.Input.DESCRIPTOR)}
    add(
        {
            "NetworkCreated": created,
            "NetworkCreate": _required(
                schemas.message(
                    network,
                    ("name", "description", "metadata", "framework", "preprocessing", "postprocessings"),
                ),
                "name",
                "framework",
                "preprocessing",
            ),
            "NetworkUpdate": schemas.message(network, ("name", "description", "metadata")),
            "SpecCreate": _required(
                schemas.message(spec, ("name", "description", "metadata", "outputs")), "name", "outputs"
            ),
            "SpecUpdate": schemas.message(spec, ("name", "description", "metadata", "current_version_id")),
            "VersionCreate": _required(
                schemas.message(version, ("spec_id", "network_id", "post_processings")),
                "spec_id",
                "network_id",
                "post_processings",
            ),
            "Inference": _required(
                {
                    "type": "object",
                    "properties": {
                        "inputs": image_inputs,
                        **schemas.message(
                            inference_pb2.InferRequest.DESCRIPTOR, ("show_discarded", "max_predictions")
                        )["properties"],
                    },
                },
                "inputs",
            ),
            "NetworkInference": _required(
                {
                    "type": "object",
                    "properties": {
                        "inputs": image_inputs,
                        "output_tensors": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "inputs",
            ),
            "TaskId": _required(
                {"type": "object", "properties": {"task_id": {"type": "string", "pattern": "^[0-9]+$"}}},
                "task_id",
            ),
            "Account": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    **{
                        f"{name}_count": {"type": "integer"}
                        for name in (
                            "networks",
                            "recognition_specs",
                            "recognition_versions",
                            "public_recognition_specs",
                        )
                    },
                },
            },
            "Error": _required(
                {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "code": {"type": "string"},
                        "reason": {"type": "string"},
                        "field_violations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "field": {"type": "string"},
                                    "description": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "error",
            ),
        }
    )
    task = schemas.components["Task"]
    task["properties"].update(
        {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "error": {"type": "string", "nullable": True},
            "data": {"type": "object", "nullable": True},
            "date_created": {"type": "string", "format": "date-time", "nullable": True},
            "date_updated": {"type": "string", "format": "date-time", "nullable": True},
            "subtasks": {"nullable": True},
        }
    )
    for name, item in (
        ("NetworkPage", "Network"),
        ("SpecPage", "RecognitionSpec"),
        ("VersionPage", "RecognitionVersion"),
        ("TaskPage", "Task"),
    ):
        link = {"type": "string", "nullable": True, "format": "uri"}
        add(
            {
                name: _required(
                    {
                        "type": "object",
                        "properties": {
                            "count": {"type": "integer"},
                            "next": link,
                            "previous": link,
                            "prev": link,
                            "results": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
                        },
                    },
                    "count",
                    "next",
                    "previous",
                    "results",
                )
            }
        )


def _required(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    schema["required"] = list(names)
    return schema


_QUERY = {
    "offset": {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    "limit": {
        "name": "limit",
        "in": "query",
        "description": "page size: 100 when 0 or absent, at most 1000",
        "schema": {"type": "integer", "minimum": 0, "maximum": 1000},
    },
    "task_ids": {
        "name": "task_ids",
        "in": "query",
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]+$"}},
    },
}
_ERROR_STATUSES = {
    "400": "invalid request",
    "401": "missing or invalid API key",
    "403": "a public resource cannot change",
    "404": "no such resource (or not visible to the key)",
    "409": "conflict",
    "413": "request too large",
    "503": "starting, overloaded (Retry-After) or unavailable",
    "504": "the service did not answer in time",
}


def _operation(path: str, method: str, operation: Operation) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    answer: dict[str, Any] = {"description": "done"}
    if operation.answer is not None:
        answer["content"] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{operation.answer}"}}
        }
    status = str(operation.status if operation.answer is not None else 204)
    document: dict[str, Any] = {
        "summary": operation.summary,
        "operationId": method.lower() + "_" + re.sub(r"[^a-z]+", "_", path).strip("_"),
        "responses": {
            status: answer,
            **{code: {"description": text, **error} for code, text in _ERROR_STATUSES.items()},
        },
    }
    parameters = [_QUERY[name] for name in operation.query]
    if "{id}" in path:
        integer = path.startswith("/recognition/versions/")
        schema = {"type": "integer", "minimum": 0} if integer else {"type": "string"}
        parameters.insert(0, {"name": "id", "in": "path", "required": True, "schema": schema})
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        content: dict[str, Any] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{operation.body}"}}
        }
        if operation.form:
            content["multipart/form-data"] = {
                "schema": {
                    "type": "object",
                    "description": "the JSON fields flattened (inputs[0]image.source, preprocessing.inputs[0]"
                    "tensor_name...) or as JSON text, and the files as parts",
                    "additionalProperties": True,
                }
            }
        document["requestBody"] = {"required": operation.body != "NetworkUpdate", "content": content}
    return document


def openapi_document() -> dict[str, Any]:
    schemas = _Schemas()
    _rest_schemas(schemas)
    paths: dict[str, Any] = {}
    for path in PATHS:
        paths[PREFIX + path.path] = {
            method.lower(): _operation(path.path, method, operation)
            for method, operation in path.operations.items()
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sightd REST gateway (Deepomatic API v0.7)",
            "version": "0.7",
            "description": "v0.7 JSON over sightd's gRPC API; docs/rest.md describes the rules.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
        },
        "security": [{"apiKey": []}],
    }
