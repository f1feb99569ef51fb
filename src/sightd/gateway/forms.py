"""Request bodies as JSON documents: JSON as it is, and both multipart forms of v0.7 clients.

The official client flattens multipart bodies DRF-style (``inputs[0]image.source``,
``preprocessing.inputs[0]image.target_size``, ``metadata.origin``) and sends every value as ``str()`` of the
Python value (``"True"``, ``"3"``, ``"255.0"``), so the types are lost; it may also send a whole object as
one field of JSON text (``preprocessing='{...}'``, as the seed's curl example does). :func:`unflatten`
rebuilds the nested document and :func:`coerce` gives the values back their types from the sightd.v1
message the document is for, so that ``"True"`` becomes true where a bool is expected and stays
``"True"`` in a string field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from sightd.app.documents import FLOAT_TYPES, INT_TYPES
from sightd.app.errors import BadRequestError
from sightd.v1 import recognition_pb2

_NAME = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[(\d{1,6})\]")
_INT = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# Free JSON fields whose items are documents of a known message: their flattened values get its types.
_HINTS: dict[str, Descriptor] = {
    "sightd.v1.Network.postprocessings": recognition_pb2.PostProcessing.DESCRIPTOR
}


def split_key(key: str) -> list[str | int] | None:
    """The steps of a flattened key (``inputs[0]image.source`` -> inputs, 0, image, source); None when the
    key is not of that form. A name follows a name after a dot, an index after a name or an index, and a
    name may follow an index with or without a dot."""
    first = _NAME.match(key)
    if first is None:
        return None
    steps: list[str | int] = [first.group()]
    position = first.end()
    while position < len(key):
        if key[position] == "[":
            index = _INDEX.match(key, position)
            if index is None:
                return None
            steps.append(int(index.group(1)))
            position = index.end()
            continue
        if key[position] == ".":
            position += 1
        elif not isinstance(steps[-1], int):
            return None
        name = _NAME.match(key, position)
        if name is None:
            return None
        steps.append(name.group())
        position = name.end()
    return steps


def unflatten(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The nested document of flattened form fields. Lists are rebuilt from their indices, in order."""
    root: dict[str, Any] = {}
    for key, value in fields.items():
        steps = split_key(key) or [key]
        node: dict[Any, Any] = root
        for position, step in enumerate(steps):
            last = position == len(steps) - 1
            if last:
                if step in node:
                    raise BadRequestError.of(key, "given twice, or both as a value and as an object")
                node[step] = value
                break
            child = node.setdefault(step, {})
            if not isinstance(child, dict):
                raise BadRequestError.of(key, "given both as a value and as an object")
            node = child
    return _lists(root)  # type: ignore[no-any-return]


def _lists(node: Any) -> Any:
    """Dicts whose keys are all indices become lists (sorted by index)."""
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(key, int) for key in node):
        return [_lists(node[key]) for key in sorted(node)]
    return {str(key): _lists(value) for key, value in node.items()}


def coerce(document: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    """The document with form strings converted to the types of ``descriptor``'s fields: booleans, integers,
    numbers, and JSON text where an object or a list is expected. Values that do not convert stay strings,
    for the document reader to report with their path."""
    return {key: _coerce_field(value, descriptor.fields_by_name.get(key)) for key, value in document.items()}


def _coerce_field(value: Any, field: Any) -> Any:
    if field is None:
        return value
    structured = field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE
    if structured and isinstance(value, str):
        value = _json_text(value)
    if field.is_repeated:
        if not isinstance(value, list):
            return value
        return [_coerce_single(item, field) for item in value]
    return _coerce_single(value, field)


def _coerce_single(value: Any, field: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        message = _HINTS.get(field.full_name, field.message_type)
        if message.full_name.startswith("google.protobuf."):
            return value  # free JSON: the form's strings stay strings
        if isinstance(value, str):
            value = _json_text(value)
        return coerce(value, message) if isinstance(value, dict) else value
    if not isinstance(value, str):
        return value
    text = value.strip()
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else value
    if field.type in INT_TYPES:
        if _INT.fullmatch(text):
            return int(text)
        number = _float(text)
        return int(number) if number is not None and number.is_integer() else value
    if field.type in FLOAT_TYPES:
        number = _float(text)
        return value if number is None else number
    return value


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _json_text(text: str) -> Any:
    """An object or list given as JSON text; other text stays as it is."""
    if not text.lstrip().startswith(("{", "[")):
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise BadRequestError.of("", "a form field holds malformed JSON text") from None
