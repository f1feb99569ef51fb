"""The image of an inference request: one input, its source read, its region checked, field by field."""

from __future__ import annotations

import base64

import pytest

from sightd.app import inputs
from sightd.app.errors import BadRequestError
from sightd.v1 import common_pb2, inference_pb2, networks_pb2

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def one(**image: object) -> list[common_pb2.Input]:
    return [common_pb2.Input(image=common_pb2.ImageInput(**image))]  # type: ignore[arg-type]


def refusal(items: list[common_pb2.Input], max_image_bytes: int = 1 << 20) -> tuple[str, list[str]]:
    with pytest.raises(BadRequestError) as refused:
        inputs.prepare(items, max_image_bytes=max_image_bytes)
    return refused.value.reason, [v.field for v in refused.value.violations]


def test_sources_are_read_or_left_to_fetch() -> None:
    encoded = base64.b64encode(PNG).decode()
    for image in (
        {"data": PNG},
        {"source": encoded},
        {"source": f"data:image/png;base64,{encoded}"},
        {"source": "data:image/png;binary," + PNG.decode("latin-1")},
    ):
        prepared = inputs.prepare(one(**image), max_image_bytes=1 << 20)
        assert (prepared.data, prepared.url, prepared.roi) == (PNG, None, None)
    url = inputs.prepare(one(source=" https://images.example/cat.jpg "), max_image_bytes=10)
    assert (url.data, url.url, url.field) == (
        None,
        "https://images.example/cat.jpg",
        "inputs[0].image.source",
    )


def test_a_region_becomes_a_checked_roi() -> None:
    bbox = common_pb2.BoundingBox(xmin=0.1, ymin=0.2, xmax=0.6, ymax=0.9)
    polygon = [common_pb2.Point(x=0.1, y=0.1), common_pb2.Point(x=0.9, y=0.1), common_pb2.Point(x=0.5, y=0.9)]
    boxed = inputs.prepare(one(data=PNG, bbox=bbox), max_image_bytes=1 << 20)
    assert boxed.roi is not None
    assert boxed.roi.bbox == pytest.approx((0.1, 0.2, 0.6, 0.9))
    shaped = inputs.prepare(one(data=PNG, polygon=polygon), max_image_bytes=1 << 20)
    assert shaped.roi is not None
    assert [c for point in shaped.roi.polygon for c in point] == pytest.approx([0.1, 0.1, 0.9, 0.1, 0.5, 0.9])
    assert refusal(one(data=PNG, bbox=bbox, polygon=polygon)) == (
        "INVALID_ARGUMENT",
        ["inputs[0].image.polygon"],
    )
    upside_down = common_pb2.BoundingBox(xmin=0.6, ymin=0.2, xmax=0.1, ymax=0.9)
    assert refusal(one(data=PNG, bbox=upside_down))[1][0].startswith("inputs[0].image.bbox.")


def test_every_fault_names_its_field() -> None:
    assert refusal([]) == ("INVALID_ARGUMENT", ["inputs"])
    assert refusal(one(data=PNG) * 2) == ("INVALID_ARGUMENT", ["inputs"])
    assert refusal([common_pb2.Input()]) == ("INVALID_ARGUMENT", ["inputs[0]"])
    assert refusal(one()) == ("INVALID_SOURCE", ["inputs[0].image.source"])
    assert refusal(one(data=b"")) == ("INVALID_SOURCE", ["inputs[0].image.data"])
    assert refusal(one(data=PNG), max_image_bytes=8) == ("IMAGE_TOO_LARGE", ["inputs[0].image.data"])
    assert refusal(one(source="%%% not base64")) == ("INVALID_SOURCE", ["inputs[0].image.source"])


def test_a_task_keeps_inline_images_decoded() -> None:
    encoded = "data:image/png;base64," + base64.b64encode(PNG).decode()
    image = one(source=encoded, crop_uniform_background=True)
    request = inference_pb2.InferRequest(spec_id="s", inputs=image)
    sent = request.SerializeToString()
    kept = inputs.as_kept(request, inputs.prepare(request.inputs, max_image_bytes=1 << 20))
    assert kept.inputs[0].image.WhichOneof("image_source") == "data"
    assert kept.inputs[0].image.data == PNG
    assert kept.inputs[0].image.crop_uniform_background
    assert kept.spec_id == "s"
    assert request.SerializeToString() == sent  # the request as sent is left as it is
    for source in ({"source": "https://images.example/cat.jpg"}, {"data": PNG}):  # kept as they were sent
        network = networks_pb2.InferNetworkRequest(id="n", inputs=one(**source), output_tensors=["prob"])
        assert inputs.as_kept(network, inputs.prepare(network.inputs, max_image_bytes=1 << 20)) is network
