"""Reading request bodies: a JSON object, or a form (multipart or URL-encoded) rebuilt into one.

The Content-Type decides, and what v0.7 clients really send is accepted: JSON with any Content-Type but a
form one (the official client labels even bodiless GETs ``application/json``; curl's ``-d`` without a
header says ``application/x-www-form-urlencoded`` for a JSON text), an empty body as ``{}``, and forms in
both shapes (:mod:`sightd.gateway.forms`). File parts are either kept apart by field name (network uploads:
``model.onnx``, ``mean.binaryproto``, names with dots that must not be unflattened) or read into the
document as bytes (inference: ``inputs[0]image.source``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from sightd.app import documents
from sightd.app.errors import BadRequestError, FieldViolation
from sightd.gateway.app import Call
from sightd.gateway.errors import HttpError, bad_request
from sightd.gateway.forms import coerce, unflatten

_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# Fields of a form that are not files: small, but many (a flattened preprocessing has dozens).
_MAX_FIELDS = 10_000
_MAX_FILES = 64
_MAX_FIELD_BYTES = 1 << 20


@dataclass
class Body:
    """A request's document, and its file parts when kept apart."""

    document: dict[str, Any]
    files: dict[str, UploadFile] = field(default_factory=dict)


async def read_body(call: Call, descriptor: Descriptor, *, keep_files: bool = False) -> Body:
    """The body as a document whose form values have the types of ``descriptor``'s fields."""
    request = call.request
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in _FORM_TYPES:
        if content_type == _FORM_TYPES[1]:
            raw = await request.body()
            if raw.lstrip().startswith(b"{"):
                return Body(_json_object(raw))
        return await _read_form(call, descriptor, keep_files=keep_files)
    return Body(_json_object(await request.body()))


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise bad_request("the body must be a JSON object")
    return document


async def _read_form(call: Call, descriptor: Descriptor, *, keep_files: bool) -> Body:
    try:
        form = await call.request.form(
            max_files=_MAX_FILES, max_fields=_MAX_FIELDS, max_part_size=_MAX_FIELD_BYTES
        )
    except MultiPartException as error:
        raise bad_request(f"malformed form: {error.message}") from None
    except HttpError:
        raise
    except (ValueError, KeyError, AssertionError) as error:
        raise bad_request(f"malformed form: {error}") from None
    call.forms.append(form)
    fields: dict[str, Any] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if key in fields or key in files:
            raise bad_request(f"{key}: given twice", violations=[FieldViolation(key, "given twice")])
        if isinstance(value, UploadFile):
            if keep_files:
                files[key] = value
            else:
                fields[key] = await value.read()
        else:
            fields[key] = value
    try:
        document = coerce(unflatten(fields), descriptor)
    except BadRequestError as error:
        raise bad_request(error.message, violations=error.violations) from None
    return Body(document, files)


def check_keys(
    document: dict[str, Any],
    allowed: Collection[str],
    *,
    ignored: Collection[str] = (),
    immutable: Collection[str] = (),
) -> dict[str, Any]:
    """The document's ``allowed`` keys; ``ignored`` ones (output-only fields of a resource sent back as it
    was read) are dropped; ``immutable`` and unknown ones are refused, each with its reason."""
    violations = [
        FieldViolation(key, "cannot change" if key in immutable else "unknown field")
        for key in document
        if key not in allowed and key not in ignored
    ]
    if violations:
        raise _refusal(violations)
    return {key: value for key, value in document.items() if key in allowed}


def message_of(document: dict[str, Any], message_type: type[Any]) -> Any:
    """``documents.to_message`` with its violations answered 400."""
    try:
        return documents.to_message(document, message_type)
    except BadRequestError as error:
        raise bad_request(error.message, violations=error.violations) from None


def id_text(document: dict[str, Any], key: str) -> str | None:
    """A network's or spec's id given in a body (an integer, or a public name) as the contract's string."""
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _refusal([FieldViolation(key, "must be an integer id or a public name")])
    return str(value)


def _refusal(violations: list[FieldViolation]) -> HttpError:
    first = violations[0]
    message = f"{first.field}: {first.description}"
    if len(violations) > 1:
        message += f" (and {len(violations) - 1} more)"
    return bad_request(message, violations=violations)
