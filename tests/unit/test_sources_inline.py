"""Inline image sources: base64 and data: URIs, with their limits."""

from __future__ import annotations

import base64
import os

import pytest

from sightd.app.errors import BadRequestError
from sightd.sources.inline import SourceKind, decode_inline, source_kind

PAYLOAD = b"\x89PNG\r\n\x1a\n" + os.urandom(300)


def test_source_kinds() -> None:
    assert source_kind("https://example.com/dog.jpg") is SourceKind.URL
    assert source_kind("HTTP://example.com/dog.jpg") is SourceKind.URL
    assert source_kind("data:image/png;base64,AAAA") is SourceKind.DATA_URI
    assert source_kind("iVBORw0KGgo=") is SourceKind.BASE64


@pytest.mark.parametrize(
    "source",
    [
        base64.b64encode(PAYLOAD).decode(),
        base64.b64encode(PAYLOAD).decode().rstrip("="),
        base64.urlsafe_b64encode(PAYLOAD).decode(),
        "\n".join(base64.encodebytes(PAYLOAD).decode().splitlines()),
        "data:image/png;base64," + base64.b64encode(PAYLOAD).decode(),
        "data:image/png;binary," + PAYLOAD.decode("latin-1"),
        "data:application/octet-stream," + "".join(f"%{b:02X}" for b in PAYLOAD),
    ],
)
def test_every_inline_form_gives_the_same_bytes(source: str) -> None:
    assert decode_inline(source, max_bytes=len(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize(
    "source",
    [
        base64.b64encode(PAYLOAD).decode(),
        "data:image/png;base64," + base64.b64encode(PAYLOAD).decode(),
        "data:image/png;binary," + PAYLOAD.decode("latin-1"),
    ],
)
def test_one_byte_over_the_limit_is_refused(source: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        decode_inline(source, max_bytes=len(PAYLOAD) - 1, field="inputs[0].image.source")
    assert refused.value.reason == "IMAGE_TOO_LARGE"
    assert refused.value.violations[0].field == "inputs[0].image.source"


@pytest.mark.parametrize(
    "source",
    ["not base64 at all!", "", "data:image/png;base64", "data:image/png;binary,\u20ac", "data:image/png,"],
)
def test_malformed_sources_are_invalid_arguments(source: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        decode_inline(source, max_bytes=1000)
    assert refused.value.reason == "INVALID_SOURCE"
