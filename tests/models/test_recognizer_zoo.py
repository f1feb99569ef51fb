"""The Recognizer on the zoo's real models and real photos, against the already-tested pieces composed in
Python (Pipeline.run, then each PostProcessor on the image's outputs and constants): the one-call path must
give exactly the same results. The top labels and boxes must be the ones model-sources.md observed (the
scores are compared with the observations in test_zoo_core.py).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import pytest
import zoo_observations as seen

from sightd import _core
from sightd.errors import ImageError
from sightd.postprocessing import result_to_json
from sightd.recognition import Recognizer, SessionSettings, result_json
from sightd.zoo import installed

Image = tuple[bytes, _core.Roi | None]


@functools.cache
def _recognizer(zoo_dest: Path, model: str) -> Recognizer:
    return Recognizer.from_zoo(model, installed.load(zoo_dest), session=SessionSettings(intra_op_threads=1))


def recognizer(zoo: installed.Zoo, model: str) -> Recognizer:
    return _recognizer(zoo.dest, model)


def composed(recognizer: Recognizer, images: list[Image], **options: Any) -> list[Any]:
    """Pipeline.run, then the version's post-processors in Python: per image, a list of LabelsResult or the
    image's error."""
    out: list[Any] = []
    for result in recognizer.pipeline.run(images):
        if not result.ok:
            out.append(result.error)
            continue
        tensors = {**result.outputs, **result.constants}
        out.append(recognizer.post_processing.process(tensors, result.transforms[0], **options))
    return out


def exact(labels: _core.LabelsResult) -> list[tuple[Any, ...]]:
    rows = []
    for kind, predictions in (("predicted", labels.predicted), ("discarded", labels.discarded)):
        for p in predictions:
            box = (p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax)
            rows.append(
                (kind, p.label_index, p.label_id, p.label_name, p.score, p.threshold, p.region_id, box)
            )
    return rows


def assert_same_as_composed(recognizer: Recognizer, images: list[Image], **options: Any) -> list[Any]:
    results = recognizer.recognize(images, **options)
    reference = composed(recognizer, images, **options)
    assert len(results) == len(reference) == len(images)
    for result, expected in zip(results, reference, strict=True):
        if isinstance(expected, Exception):
            assert not result.ok
            assert type(result.error) is type(expected)
            assert (result.error_field, result.error_message) == (expected.field, expected.message)
            continue
        assert result.ok, result.error
        assert [exact(r) for r in result.outputs] == [exact(r) for r in expected]
        assert result_json(result) == result_to_json(expected)
    return results


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def normalised(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, ...]:
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


def found(labels: _core.LabelsResult, observation: seen.Seen, width: int, height: int) -> bool:
    assert observation.box is not None
    want = normalised(observation.box, width, height)
    return any(
        p.label_name == observation.label
        and iou((p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax), want) > 0.5
        for p in labels.predicted
    )


@pytest.fixture(scope="module")
def photos(images: dict[str, Path]) -> dict[str, bytes]:
    return {
        name: (images[folder] / name).read_bytes()
        for folder, name in [
            ("darknet", "dog.jpg"),
            ("darknet", "person.jpg"),
            ("skimage", "chelsea.png"),
            ("skimage", "astronaut.png"),
        ]
    }


def corrupt(data: bytes) -> bytes:
    return data[: len(data) // 3]


# dog.jpg is 768x576; these rois hold the dog and the car of model-sources.md's boxes.
DOG_ROI = _core.Roi(bbox=(0.15, 0.30, 0.50, 0.92))
CAR_ROI = _core.Roi(bbox=(0.55, 0.05, 0.95, 0.40))


def test_imagenet_mobilenet_v2(zoo: installed.Zoo, photos: dict[str, bytes]) -> None:
    images: list[Image] = [
        (photos["dog.jpg"], None),
        (photos["chelsea.png"], None),
        (corrupt(photos["dog.jpg"]), None),
        (photos["dog.jpg"], DOG_ROI),
    ]
    results = assert_same_as_composed(recognizer(zoo, "imagenet-mobilenet-v2"), images, max_predictions=5)
    top = [r.outputs[0].predicted[0].label_name if r.ok else None for r in results]
    assert top[0] == "malamute"
    assert top[1] == "Egyptian cat"
    assert isinstance(results[2].error, ImageError)
    assert top[3] in {"malamute", "Eskimo dog", "Siberian husky"}
    for result in (results[0], results[1], results[3]):
        (labels,) = result.outputs
        assert len(labels.predicted) <= 5
        scores = [p.score for p in labels.predicted]
        assert scores == sorted(scores, reverse=True)
        assert 0.0 < sum(scores) <= 1.0 + 1e-6


def test_coco_yolov3_tiny(zoo: installed.Zoo, photos: dict[str, bytes]) -> None:
    images: list[Image] = [
        (photos["dog.jpg"], None),
        (photos["dog.jpg"], CAR_ROI),
        (b"\xff\xd8\xff\xe0 not really a JPEG", None),
        (photos["person.jpg"], None),
        (photos["astronaut.png"], None),
    ]
    model = recognizer(zoo, "coco-yolov3-tiny")
    results = assert_same_as_composed(model, images)
    assert_same_as_composed(model, images, show_discarded=True, max_predictions=3)
    (dog,) = results[0].outputs
    for observation in seen.YOLO[("darknet", "dog.jpg")]:
        assert found(dog, observation, 768, 576), observation
    # Through the roi the car is found where it is in the whole image, and nothing outside the roi is.
    (car,) = results[1].outputs
    assert found(car, seen.YOLO[("darknet", "dog.jpg")][0], 768, 576)
    for p in car.predicted:
        assert p.bbox.xmin >= 0.55 - 1e-9
        assert p.bbox.xmax <= 0.95 + 1e-9
        assert p.bbox.ymin >= 0.05 - 1e-9
        assert p.bbox.ymax <= 0.40 + 1e-9
    assert isinstance(results[2].error, ImageError)
    (person,) = results[3].outputs
    width, height = 640, 424  # person.jpg
    assert found(person, seen.YOLO[("darknet", "person.jpg")][1], width, height)
    assert {p.label_name for p in person.predicted} >= {"horse", "person", "dog"}
    assert results[4].outputs[0].predicted == []


def test_coco_yolov3_tiny_direct_runs_one_image_at_a_time(
    zoo: installed.Zoo, photos: dict[str, bytes]
) -> None:
    model = recognizer(zoo, "coco-yolov3-tiny-direct")
    assert model.pipeline.max_batch == 1
    images: list[Image] = [
        (photos["dog.jpg"], None),
        (corrupt(photos["dog.jpg"]), None),
        (photos["dog.jpg"], None),
    ]
    results = assert_same_as_composed(model, images)
    for result in (results[0], results[2]):
        (labels,) = result.outputs
        for observation in seen.YOLO[("darknet", "dog.jpg")]:
            assert found(labels, observation, 768, 576), observation


def test_face_retina_v1(zoo: installed.Zoo, photos: dict[str, bytes]) -> None:
    face_roi = _core.Roi(bbox=(0.2, 0.0, 0.7, 0.5))  # astronaut.png 512x512
    images: list[Image] = [
        (photos["astronaut.png"], None),
        (photos["chelsea.png"], None),
        (corrupt(photos["astronaut.png"]), None),
        (photos["astronaut.png"], face_roi),
    ]
    results = assert_same_as_composed(recognizer(zoo, "face-retina-v1"), images, show_discarded=True)
    (observation,) = seen.RETINA_FACE[("skimage", "astronaut.png")]
    for index in (0, 3):
        (labels,) = results[index].outputs
        assert found(labels, observation, 512, 512)
        assert len(labels.predicted) == 1
    assert results[1].outputs[0].predicted == []
    assert isinstance(results[2].error, ImageError)


def test_concurrent_recognize_calls_match_serial_ones(zoo: installed.Zoo, photos: dict[str, bytes]) -> None:
    model = recognizer(zoo, "coco-yolov3-tiny")
    batches: list[list[Image]] = [
        [(photos["dog.jpg"], None), (photos["person.jpg"], None)],
        [(photos["dog.jpg"], CAR_ROI), (corrupt(photos["person.jpg"]), None), (photos["chelsea.png"], None)],
        [(photos["person.jpg"], None)],
    ]

    def summary(results: list[_core.RecognitionResult]) -> list[Any]:
        return [[exact(o) for o in r.outputs] if r.ok else repr(r.error) for r in results]

    serial = [summary(model.recognize(batch, show_discarded=True)) for batch in batches]
    got: dict[tuple[int, int], list[Any]] = {}
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            for round_ in range(2):
                index = (thread + round_) % len(batches)
                got[(thread, round_)] = summary(model.recognize(batches[index], show_discarded=True))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(got) == 8
    for (thread, round_), summary_ in got.items():
        assert summary_ == serial[(thread + round_) % len(batches)]
