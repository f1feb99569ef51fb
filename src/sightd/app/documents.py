"""sightd.v1 messages <-> v0.7 JSON documents.

Proto field names are v0.7's JSON keys, so most of the mapping is the identity; this module does the rest,
the same way for the server (requests into the documents it stores and validates, stored documents into
answers) and the REST gateway (JSON bodies into requests, answers into JSON), as docs/api.md tabulates:

- enum values carry their type as prefix in the proto (``RESIZE_TYPE_SQUASH``) and not in JSON
  (``"SQUASH"``); ``*_UNSPECIFIED`` is an absent key; ``"GRAY"`` is ``COLOR_CHANNELS_L``; task statuses are
  lowercase in JSON (``"pending"``);
- a constant input's ``data`` holds numbers and ``"<tensor>.<N>"`` strings, one ``ConstantValue`` each;
- ``pad_value`` may be one number in JSON (it applies to every channel);
- int64 values are JSON numbers (the protobuf JSON codec writes them as strings);
- scalars at their default (0, "", false) and empty lists are left out of documents, as proto3 cannot tell
  them from absent, except the fields of ``_ALWAYS`` where the default is a real value (label id 0,
  ``exclusive: false``, ``predicted: []``, ``count: 0``...).

Well-known types (Struct, Timestamp, Duration, FieldMask) use the protobuf JSON codec. Reading a document
reports every problem as a :class:`FieldViolation` with the document's dotted path, in one
:class:`DocumentError` (INVALID_ARGUMENT).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from sightd.app.errors import BadRequestError, FieldViolation

_M = TypeVar("_M", bound=Message)
# Descriptors: the stubs type them as the pure-Python classes or upb's, which mypy does not unify.
_Enum = Any
_Field = Any

# Fields written even at their default value, by full name: there the default is a value, not "absent".
_ALWAYS = frozenset(
    {
        "sightd.v1.Label.id",
        "sightd.v1.Label.name",
        "sightd.v1.LabelsOutputSpec.exclusive",
        "sightd.v1.LabelsOutputSpec.labels",
        "sightd.v1.LabelsResult.predicted",
        "sightd.v1.LabelsResult.discarded",
        "sightd.v1.Prediction.label_id",
        "sightd.v1.Prediction.label_name",
        "sightd.v1.Prediction.score",
        "sightd.v1.Prediction.threshold",
        "sightd.v1.Roi.region_id",
        "sightd.v1.BoundingBox.xmin",
        "sightd.v1.BoundingBox.ymin",
        "sightd.v1.BoundingBox.xmax",
        "sightd.v1.BoundingBox.ymax",
        "sightd.v1.Point.x",
        "sightd.v1.Point.y",
        "sightd.v1.Network.id",
        "sightd.v1.Network.name",
        "sightd.v1.Network.description",
        "sightd.v1.Network.public",
        "sightd.v1.NetworkFile.size",
        "sightd.v1.RecognitionSpec.id",
        "sightd.v1.RecognitionSpec.name",
        "sightd.v1.RecognitionSpec.description",
        "sightd.v1.RecognitionSpec.public",
        "sightd.v1.RecognitionVersion.id",
        "sightd.v1.RecognitionVersion.public",
        "sightd.v1.RecognitionVersion.post_processings",
        "sightd.v1.OutputTensor.shape",
        "sightd.v1.OutputTensor.data",
        "sightd.v1.InferNetworkResult.tensors",
        "sightd.v1.RecognitionResult.outputs",
        "sightd.v1.ListNetworksResponse.count",
        "sightd.v1.ListNetworksResponse.results",
        "sightd.v1.ListRecognitionSpecsResponse.count",
        "sightd.v1.ListRecognitionSpecsResponse.results",
        "sightd.v1.ListRecognitionSpecVersionsResponse.count",
        "sightd.v1.ListRecognitionSpecVersionsResponse.results",
        "sightd.v1.ListRecognitionVersionsResponse.count",
        "sightd.v1.ListRecognitionVersionsResponse.results",
        "sightd.v1.ListTasksResponse.count",
        "sightd.v1.ListTasksResponse.results",
    }
)
# Enums spelled in lowercase in v0.7 JSON.
_LOWERCASE_ENUMS = frozenset({"sightd.v1.TaskStatus"})
# JSON spellings accepted besides the canonical ones.
_ENUM_ALIASES = {("sightd.v1.ColorChannels", "GRAY"): "L"}
# Repeated number fields that JSON may also give as a single number.
_SCALAR_OR_LIST = frozenset({"sightd.v1.ImagePreprocessing.pad_value"})
_WELL_KNOWN = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    }
)
_CONSTANT_VALUE = "sightd.v1.ConstantValue"
INT_TYPES = frozenset(  # protobuf's integer field types
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_INT64_RANGE = (-(2**63), 2**63 - 1)
FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})


class DocumentError(BadRequestError):
    """A JSON document that does not fit its message; ``violations`` lists every problem."""


def enum_prefix(enum: _Enum) -> str:
    """``RESIZE_TYPE_`` of ``ResizeType``: the value prefix buf's STANDARD lint asks for."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_to_json(enum: _Enum, number: int) -> str | None:
    """The v0.7 spelling of an enum value; None for ``*_UNSPECIFIED`` (absent)."""
    value = enum.values_by_number.get(number)
    if value is None or value.number == 0:
        return None
    name: str = value.name.removeprefix(enum_prefix(enum))
    return name.lower() if enum.full_name in _LOWERCASE_ENUMS else name


def enum_from_json(enum: _Enum, text: str) -> int | None:
    """The number of a v0.7 spelling (or of the prefixed proto name); None when unknown."""
    key = text.strip()
    key = _ENUM_ALIASES.get((enum.full_name, key.upper()), key)
    prefix = enum_prefix(enum)
    for candidate in (prefix + key.upper(), key):
        value = enum.values_by_name.get(candidate)
        if value is not None and value.number != 0:
            return int(value.number)
    return None


def _enum_names(enum: _Enum) -> str:
    names = [enum_to_json(enum, value.number) for value in enum.values]
    return ", ".join(name for name in names if name)


# --- message -> document ----------------------------------------------------------------------------


def to_document(message: Message) -> dict[str, Any]:
    """The v0.7 JSON document of a message."""
    result = _value_of_message(message)
    assert isinstance(result, dict)
    return result


def _value_of_message(message: Message) -> Any:
    descriptor = message.DESCRIPTOR
    if descriptor.full_name in _WELL_KNOWN:
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    if descriptor.full_name == _CONSTANT_VALUE:
        which = message.WhichOneof("value")
        return getattr(message, which) if which else None
    document: dict[str, Any] = {}
    for field in descriptor.fields:
        value = getattr(message, field.name)
        always = field.full_name in _ALWAYS
        if field.is_repeated:
            if len(value) or always:
                document[field.name] = [_scalar_or_message(field, item) for item in value]
            continue
        if field.has_presence:
            if message.HasField(field.name):
                converted = _scalar_or_message(field, value)
                if converted is not None:
                    document[field.name] = converted
            continue
        if always or value != field.default_value:
            converted = _scalar_or_message(field, value)
            if converted is not None:
                document[field.name] = converted
    return document


def _scalar_or_message(field: _Field, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _value_of_message(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_to_json(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        raise TypeError(f"{field.full_name}: bytes have no v0.7 JSON form")
    if field.type == FieldDescriptor.TYPE_FLOAT:
        # float32 fields (raw tensor values) with the 9 digits that give the float32 back.
        return float(f"{value:.9g}")
    return value


# --- document -> message ----------------------------------------------------------------------------


def to_message(document: Mapping[str, Any], message_type: type[_M], *, ignore_unknown: bool = False) -> _M:
    """The message of a v0.7 JSON document; raises DocumentError listing every problem. Unknown keys are
    problems unless ``ignore_unknown``."""
    message = message_type()
    reader = _Reader(ignore_unknown)
    reader.message(document, message, "")
    if reader.violations:
        raise DocumentError.of_violations(reader.violations)
    return message


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Reader:
    def __init__(self, ignore_unknown: bool) -> None:
        self.ignore_unknown = ignore_unknown
        self.violations: list[FieldViolation] = []

    def fail(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def message(self, value: Any, message: Message, path: str) -> None:
        descriptor = message.DESCRIPTOR
        if descriptor.full_name in _WELL_KNOWN:
            try:
                json_format.ParseDict(value, message)
            except json_format.ParseError as error:
                self.fail(path, str(error))
            return
        if not isinstance(value, Mapping):
            self.fail(path, "must be an object")
            return
        oneofs_seen: dict[str, str] = {}
        for key, item in value.items():
            field = descriptor.fields_by_name.get(key) if isinstance(key, str) else None
            field_path = _join(path, str(key))
            if field is None:
                if not self.ignore_unknown:
                    self.fail(field_path, "unknown field")
                continue
            if item is None:
                continue  # JSON null: absent
            oneof = field.containing_oneof
            if oneof is not None and not oneof.name.startswith("_"):
                if oneof.name in oneofs_seen:
                    self.fail(field_path, f"give only one of {oneofs_seen[oneof.name]} and {key}")
                    continue
                oneofs_seen[oneof.name] = key
            self.field(item, message, field, field_path)

    def field(self, value: Any, message: Message, field: _Field, path: str) -> None:
        if field.is_repeated:
            if field.full_name in _SCALAR_OR_LIST and not isinstance(value, list):
                value = [value]
            if not isinstance(value, list):
                self.fail(path, "must be an array")
                return
            container = getattr(message, field.name)
            for index, item in enumerate(value):
                item_path = f"{path}[{index}]"
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    self.element(item, container.add(), item_path)
                else:
                    converted = self.scalar(item, field, item_path)
                    if converted is not None:
                        container.append(converted)
            return
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            target = getattr(message, field.name)
            target.SetInParent()
            self.element(value, target, path)
            return
        converted = self.scalar(value, field, path)
        if converted is not None:
            setattr(message, field.name, converted)

    def element(self, value: Any, message: Message, path: str) -> None:
        if message.DESCRIPTOR.full_name == _CONSTANT_VALUE:
            if isinstance(value, str):
                message.tensor_dimension = value  # type: ignore[attr-defined]
            elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                message.number = float(value)  # type: ignore[attr-defined]
            else:
                self.fail(path, 'must be a number or "<tensor>.<dimension>"')
            return
        self.message(value, message, path)

    def scalar(self, value: Any, field: _Field, path: str) -> Any:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            if not isinstance(value, str):
                self.fail(path, "must be a string")
                return None
            return value
        if kind == FieldDescriptor.TYPE_BOOL:
            if not isinstance(value, bool):
                self.fail(path, "must be true or false")
                return None
            return value
        if kind == FieldDescriptor.TYPE_ENUM:
            number = enum_from_json(field.enum_type, value) if isinstance(value, str) else None
            if number is None:
                self.fail(path, f"must be one of {_enum_names(field.enum_type)}")
            return number
        if kind in INT_TYPES:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, "must be an integer")
                return None
            low, high = _INT_RANGES.get(kind, _INT64_RANGE)
            if not low <= value <= high:
                self.fail(path, f"must be between {low} and {high}")
                return None
            return value
        if kind in FLOAT_TYPES:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                self.fail(path, "must be a number")
                return None
            return float(value)
        self.fail(path, "has no JSON form")
        return None


# --- free JSON (google.protobuf.Struct) ---------------------------------------------------------------


def _integral(value: Any) -> Any:
    """Struct numbers are doubles: whole numbers come back as ints, as they were most likely given."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def struct_to_dict(struct: Message) -> dict[str, Any]:
    """A Struct's JSON object."""
    value = _integral(json_format.MessageToDict(struct))
    assert isinstance(value, dict)
    return value


def dict_to_struct(value: Mapping[str, Any], struct: Message) -> None:
    """Fills a Struct with a JSON object."""
    json_format.ParseDict(dict(value), struct)
