"""Real public models through the runtime give exactly what the Recognizer gives when called directly on
the same batch (the gate fixes which images share a batch), and batching does not mix up answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runtime_support import Gate

from sightd import _core
from sightd.recognition import Recognizer, result_json
from sightd.runtime import ImageRequest, Runtime, RuntimeSettings, VersionDefinition
from sightd.zoo import installed

ROI = _core.Roi(bbox=(0.1, 0.2, 0.7, 0.9))


def direct(recognizer: Recognizer, images: list[ImageRequest], **options: Any) -> list[dict[str, Any] | str]:
    results = recognizer.recognize([(i.data, i.roi) for i in images], **options)
    return [result_json(r) if r.ok else type(r.error).__name__ for r in results]


def answers(outcomes: list[Any]) -> list[dict[str, Any] | str]:
    return [o.result if o.ok else type(o.error).__name__ for o in outcomes]


@pytest.mark.parametrize("model", ["imagenet-mobilenet-v2", "coco-yolov3-tiny"])
async def test_a_batch_formed_by_the_runtime_equals_the_direct_call(
    zoo: installed.Zoo, photos: dict[str, bytes], model: str
) -> None:
    images = [ImageRequest(data) for data in photos.values()]
    images[1] = ImageRequest(photos["dog.jpg"], ROI)
    images[3] = ImageRequest(b"\xff\xd8 not a jpeg")
    recognizer = Recognizer.from_zoo(model, zoo)
    gate = Gate()
    settings = RuntimeSettings(workers=1, max_batch=8, max_batch_delay_us=0, warmup=False)
    async with Runtime(settings, on_batch=gate) as runtime:
        version = VersionDefinition.from_zoo(model, zoo)
        first = asyncio.create_task(runtime.recognize(version, images[:1], max_predictions=5))
        await gate.entered()
        rest = [asyncio.create_task(runtime.recognize(version, [i], max_predictions=5)) for i in images[1:]]
        await asyncio.sleep(0.05)
        gate.open()
        got = answers(await first) + [answers(await task)[0] for task in rest]
    assert gate.sizes == [1, len(images) - 1]
    expected = direct(recognizer, images[:1], max_predictions=5) + direct(
        recognizer, images[1:], max_predictions=5
    )
    assert got == expected
    assert got[3] == "ImageError"


async def test_concurrent_requests_on_a_real_model_get_their_own_answers(
    zoo: installed.Zoo, photos: dict[str, bytes]
) -> None:
    recognizer = Recognizer.from_zoo("imagenet-mobilenet-v2", zoo)
    names = list(photos)
    alone = {name: direct(recognizer, [ImageRequest(photos[name])], max_predictions=3)[0] for name in names}
    async with Runtime(RuntimeSettings(max_batch=4, max_batch_delay_us=5000)) as runtime:
        version = VersionDefinition.from_zoo("imagenet-mobilenet-v2", zoo)
        order = [names[i % len(names)] for i in range(24)]
        outcomes = await asyncio.gather(
            *(runtime.recognize(version, [ImageRequest(photos[n])], max_predictions=3) for n in order)
        )
        batches = runtime.metrics.value("sightd_runtime_batch_images_count", {"kind": "recognition"})
    assert batches < 24
    for name, (outcome,) in zip(order, outcomes, strict=True):
        assert outcome.ok
        expected = alone[name]
        assert isinstance(expected, dict)
        # Batched runs may differ from a lone run in the last bits of ONNX Runtime's sums: same labels in
        # the same order, scores to 1e-5.
        got_labels = outcome.result["outputs"][0]["labels"]["predicted"]  # type: ignore[index]
        want_labels = expected["outputs"][0]["labels"]["predicted"]
        assert [p["label_id"] for p in got_labels] == [p["label_id"] for p in want_labels]
        assert [p["score"] for p in got_labels] == pytest.approx([p["score"] for p in want_labels], abs=1e-5)
