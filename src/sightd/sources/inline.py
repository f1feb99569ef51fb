"""Inline image sources: ``data:`` URIs (RFC 2397, plus v0.7's ``;binary,`` form) and base64 text.

Sizes are checked before decoding, so an oversized payload costs no memory beyond the request itself.
"""

from __future__ import annotations

import base64
import binascii
import re
from enum import Enum
from urllib.parse import unquote_to_bytes

from sightd.app.errors import BadRequestError

_WHITESPACE = re.compile(r"\s+")


class SourceKind(Enum):
    URL = "url"
    DATA_URI = "data"
    BASE64 = "base64"


def source_kind(source: str) -> SourceKind:
    """How a text ``source`` is read: a URL (http, https), a data: URI, else base64."""
    head = source[:8].lower()
    if head.startswith(("http://", "https://")):
        return SourceKind.URL
    if head.startswith("data:"):
        return SourceKind.DATA_URI
    return SourceKind.BASE64


def _too_large(field: str, limit: int) -> BadRequestError:
    return BadRequestError.of(
        field, f"the image is larger than the limit of {limit} bytes", reason="IMAGE_TOO_LARGE"
    )


def decode_base64(text: str, *, max_bytes: int, field: str = "source") -> bytes:
    """Standard or URL-safe base64, padding optional, whitespace ignored."""
    compact = _WHITESPACE.sub("", text)
    if len(compact) // 4 * 3 > max_bytes + 2:
        raise _too_large(field, max_bytes)
    if not compact:
        raise BadRequestError.of(field, "is empty", reason="INVALID_SOURCE")
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            data = base64.b64decode(compact, altchars=b"-_", validate=True)
        else:
            data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError.of(
            field, "is neither an http(s) URL, a data: URI nor valid base64", reason="INVALID_SOURCE"
        ) from None
    if len(data) > max_bytes:
        raise _too_large(field, max_bytes)
    return data


def decode_data_uri(uri: str, *, max_bytes: int, field: str = "source") -> bytes:
    """The bytes of ``data:[<media type>][;base64|;binary],<data>``."""
    header, comma, payload = uri.partition(",")
    if not comma:
        raise BadRequestError.of(field, "a data: URI has a comma before its data", reason="INVALID_SOURCE")
    parameters = [part.strip().lower() for part in header[5:].split(";")]
    if "base64" in parameters[1:]:
        return decode_base64(payload, max_bytes=max_bytes, field=field)
    if len(payload) > 3 * max_bytes:
        raise _too_large(field, max_bytes)
    if "binary" in parameters[1:]:
        # v0.7's raw form: the bytes themselves, one character each.
        try:
            data = payload.encode("latin-1")
        except UnicodeEncodeError:
            raise BadRequestError.of(
                field, "a ;binary data: URI holds characters U+0000 to U+00FF only", reason="INVALID_SOURCE"
            ) from None
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large(field, max_bytes)
    if not data:
        raise BadRequestError.of(field, "the data: URI holds no data", reason="INVALID_SOURCE")
    return data


def decode_inline(source: str, *, max_bytes: int, field: str = "source") -> bytes:
    """The bytes of a data: URI or base64 source (URLs are fetched elsewhere: see ``fetch``)."""
    kind = source_kind(source)
    if kind is SourceKind.DATA_URI:
        return decode_data_uri(source, max_bytes=max_bytes, field=field)
    if kind is SourceKind.BASE64:
        return decode_base64(source, max_bytes=max_bytes, field=field)
    raise ValueError("a URL is not an inline source")
