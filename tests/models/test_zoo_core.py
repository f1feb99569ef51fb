"""The issue's acceptance test: every public model, run through the compiled core in one call per batch
(``Recognizer``: decode -> preprocess -> ONNX Runtime -> post-processing, from the image files' bytes as
stored), gives on real images (scikit-image's data folder, Debian's darknet package) the predictions
model-sources.md lists (tests/models/zoo_observations.py): the same top labels, scores within 0.02, boxes
within 2% of the image size.

One deviation cannot be met and is checked narrowly instead (docs/zoo.md, "Through the core"): rocket.jpg's
"space shuttle 0.30" for imagenet-mobilenet-v2, which no preprocessing recipe reproduces (torchvision's,
run with onnxruntime's Python API, gives it 0.18, second); the label is checked to be in the top three.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zoo_observations as seen
import zoo_reference as ref
from PIL import Image
from zoo_observations import SCORE_TOLERANCE

from sightd import _core
from sightd.recognition import Recognizer, SessionSettings
from sightd.zoo import installed

Key = tuple[str, str]  # (folder fixture, file name)
Recognized = Callable[[str, tuple[Key, ...]], dict[Key, _core.LabelsResult]]

# Images on which the subset specs are compared with the full detector: those of the observations, plus
# photos where the detector sees (below its threshold) furniture (clock_motion.png: vase, toilet; coffee.png:
# dining table; astronaut.png: vase, clock, chair) and fashion (kite.jpg: backpack).
SUBSET_IMAGES: tuple[Key, ...] = (
    *seen.YOLO,
    ("skimage", "coffee.png"),
    ("skimage", "clock_motion.png"),
    ("skimage", "camera.png"),
    ("skimage", "motorcycle_left.png"),
)


@functools.cache
def _recognizer(zoo_dest: Path, model: str) -> Recognizer:
    return Recognizer.from_zoo(model, installed.load(zoo_dest), session=SessionSettings(intra_op_threads=1))


@functools.cache
def _recognized(
    zoo_dest: Path, model: str, folders: tuple[tuple[str, Path], ...], keys: tuple[Key, ...]
) -> dict[Key, _core.LabelsResult]:
    """One recognize call for the whole batch, every prediction reported (discarded ones too, uncapped)."""
    paths = dict(folders)
    batch: list[tuple[bytes, _core.Roi | None]] = [
        ((paths[folder] / name).read_bytes(), None) for folder, name in keys
    ]
    results = _recognizer(zoo_dest, model).recognize(batch, show_discarded=True)
    out: dict[Key, _core.LabelsResult] = {}
    for key, result in zip(keys, results, strict=True):
        assert result.ok, (key, result.error)
        (out[key],) = result.outputs
    return out


@pytest.fixture(scope="module")
def recognized(zoo: installed.Zoo, images: dict[str, Path]) -> Recognized:
    """recognized(model, keys): each image's result, from one batch of those images (computed once)."""
    folders = tuple(sorted(images.items()))
    return lambda model, keys: _recognized(zoo.dest, model, folders, keys)


def image_size(images: dict[str, Path], key: Key) -> tuple[int, int]:
    with Image.open(images[key[0]] / key[1]) as image:
        return image.size


def detections(labels: _core.LabelsResult, size: tuple[int, int]) -> list[tuple[str, float, np.ndarray]]:
    """The predicted detections as zoo_reference compares them: (label, score, box in image pixels)."""
    width, height = size
    scale = np.array([width, height, width, height], np.float64)
    return [
        (p.label_name, p.score, np.array([p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax]) * scale)
        for p in labels.predicted
    ]


def all_scores(labels: _core.LabelsResult) -> dict[str, float]:
    """Every reported label's score of a classification or tagging result (predicted and discarded); of two
    classes with one name (ImageNet's crane, maillot), the better."""
    predictions = (*labels.predicted, *labels.discarded)
    assert len({p.label_id for p in predictions}) == len(predictions)  # one prediction per label
    scores: dict[str, float] = {}
    for p in predictions:
        scores[p.label_name] = max(p.score, scores.get(p.label_name, 0.0))
    return scores


@pytest.fixture(scope="module")
def spec_labels(zoo: installed.Zoo) -> Callable[[str], dict[str, int]]:
    """spec_labels(model): the built spec's labels, name -> id, in the spec's order."""

    def labels(model: str) -> dict[str, int]:
        listed = zoo.models[model].spec["outputs"][0]["labels"]["labels"]
        return {label["name"]: label["id"] for label in listed}

    return labels


# --- classification: imagenet-mobilenet-v2, nsfw-v1 ---

MOBILENET_EXACT = [key for key in seen.MOBILENET if key[1] != "rocket.jpg"]


@pytest.mark.parametrize("key", MOBILENET_EXACT, ids=lambda k: k[1])
def test_imagenet_mobilenet_v2(recognized: Recognized, key: Key) -> None:
    labels = recognized("imagenet-mobilenet-v2", tuple(seen.MOBILENET))[key]
    expected = seen.MOBILENET[key]
    # The observations list the top labels in order (chelsea.png: its top three).
    assert [p.label_name for p in labels.predicted[: len(expected)]] == [s.label for s in expected]
    ref.assert_scores(all_scores(labels), expected, expected[0].label)


def test_imagenet_mobilenet_v2_rocket_deviation(recognized: Recognized) -> None:
    """model-sources.md's "space shuttle 0.30" is reproduced by no preprocessing: torchvision's own recipe
    run with onnxruntime gives drilling platform 0.35 first and space shuttle 0.18 second
    (test_zoo_onnxruntime), the core (whose crop starts a pixel to the left) 0.30 and 0.15. Narrowed, for
    this image only, to: the observed label is in the top three; its score is not checked."""
    key = ("skimage", "rocket.jpg")
    labels = recognized("imagenet-mobilenet-v2", tuple(seen.MOBILENET))[key]
    assert seen.MOBILENET[key][0].label in [p.label_name for p in labels.predicted[:3]]


@pytest.mark.parametrize("key", list(seen.NSFW), ids=lambda k: k[1])
def test_nsfw_v1(recognized: Recognized, key: Key) -> None:
    labels = recognized("nsfw-v1", tuple(seen.NSFW))[key]
    scores = all_scores(labels)
    safe, unsafe = seen.NSFW[key]
    # Without the recipe's JPEG round trip (docs/zoo.md, nsfw-v1) astronaut.png's unsafe reads 0.015 for the
    # observed 0.032: inside the tolerance, which is not widened for it.
    np.testing.assert_allclose([scores["safe"], scores["unsafe"]], [safe, unsafe], atol=SCORE_TOLERANCE)
    (top,) = labels.predicted  # exclusive, threshold 0.5
    assert top.label_name == ("safe" if safe > unsafe else "unsafe")


# --- tagging: coco-tags ---

TAG_IMAGES = (*seen.TAGS, ("skimage", "chelsea.png"))


@pytest.mark.parametrize("key", list(seen.TAGS), ids=lambda k: k[1])
def test_coco_tags(recognized: Recognized, key: Key) -> None:
    labels = recognized("coco-tags", TAG_IMAGES)[key]
    scores = all_scores(labels)
    for expected in seen.TAGS[key]:
        assert abs(scores[expected.label] - expected.score) <= SCORE_TOLERANCE, (
            expected,
            scores[expected.label],
        )
    floor = min(s.score for s in seen.TAGS[key]) - SCORE_TOLERANCE
    assert {label for label, score in scores.items() if score >= floor} == {s.label for s in seen.TAGS[key]}
    threshold = 0.3  # the spec's
    assert {p.label_name for p in labels.predicted} == {
        s.label for s in seen.TAGS[key] if s.score >= threshold
    }


def test_coco_tags_weak_on_chelsea(recognized: Recognized) -> None:
    labels = recognized("coco-tags", TAG_IMAGES)[("skimage", "chelsea.png")]
    assert labels.predicted == []
    assert abs(all_scores(labels)["cat"] - seen.CHELSEA_CAT_TAG) <= SCORE_TOLERANCE


# --- detection: coco-yolov3-tiny, coco-yolov3-tiny-direct, face-tiny-v1, face-retina-v1 ---

DETECTORS = {
    "coco-yolov3-tiny": seen.YOLO,
    "coco-yolov3-tiny-direct": seen.YOLO,
    "face-tiny-v1": seen.TINY_FACE,
    "face-retina-v1": seen.RETINA_FACE,
}


def model_or_image(value: object) -> str:
    return value if isinstance(value, str) else str(value[1])  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "key"),
    [(model, key) for model, observations in DETECTORS.items() for key in observations],
    ids=model_or_image,
)
def test_detector(recognized: Recognized, images: dict[str, Path], model: str, key: Key) -> None:
    """Each observed label's best detection has the observed score and box; nothing else scores as high as
    the weakest observed detection; an image observed to show nothing shows nothing."""
    labels = recognized(model, tuple(DETECTORS[model]))[key]
    size = image_size(images, key)
    ref.assert_detections(detections(labels, size), DETECTORS[model][key], size)
    scores = [p.score for p in labels.predicted]
    assert scores == sorted(scores, reverse=True)


# --- subset specs: street-v1, furniture-v1, fashion-v1 over coco-yolov3-tiny ---

SUBSETS = ["street-v1", "furniture-v1", "fashion-v1"]

# Images on which the subset specs are compared with the full detector: those of the observations, and
# photos on which the detector sees (mostly below its threshold) the subsets' classes: furniture on
# clock_motion.png (vase, toilet), coffee.png (dining table), dog.jpg (tv monitor, chair, potted plant);
# fashion on kite.jpg (backpack); street on camera.png (person, car, truck) and motorcycle_left.png.
SUBSET_IMAGES: tuple[Key, ...] = (
    *seen.YOLO,
    ("skimage", "coffee.png"),
    ("skimage", "clock_motion.png"),
    ("skimage", "camera.png"),
    ("skimage", "motorcycle_left.png"),
)


def rows(labels: _core.LabelsResult, names: set[str]) -> list[tuple[object, ...]]:
    return [
        (
            kind,
            p.label_id,
            p.label_name,
            p.score,
            p.threshold,
            p.bbox.xmin,
            p.bbox.ymin,
            p.bbox.xmax,
            p.bbox.ymax,
        )
        for kind, predictions in (("predicted", labels.predicted), ("discarded", labels.discarded))
        for p in predictions
        if p.label_name in names
    ]


@pytest.mark.parametrize("model", SUBSETS)
def test_subset_reads_the_detector_restricted_to_its_labels(
    recognized: Recognized, spec_labels: Callable[[str], dict[str, int]], model: str
) -> None:
    """On every image, a subset spec's predictions, discarded ones included, are the full detector's for
    its labels: the same COCO ids, scores and boxes; label indices follow the subset's own label list."""
    labels = spec_labels(model)
    coco = spec_labels("coco-yolov3-tiny")
    assert {name: coco[name] for name in labels} == labels
    full = recognized("coco-yolov3-tiny", SUBSET_IMAGES)
    subset = recognized(model, SUBSET_IMAGES)
    reported: set[str] = set()
    for key in SUBSET_IMAGES:
        assert rows(subset[key], set(labels)) == rows(full[key], set(labels)), key
        for p in (*subset[key].predicted, *subset[key].discarded):
            assert p.label_name in labels
            assert list(labels)[p.label_index] == p.label_name
            reported.add(p.label_name)
    # Not a comparison of two empty lists.
    assert reported, f"{model} reports none of its labels on these images, even below its threshold"


@pytest.mark.parametrize(
    ("model", "key"), [(model, key) for model in SUBSETS for key in seen.YOLO], ids=model_or_image
)
def test_subset_gives_the_observations_of_its_labels(
    recognized: Recognized,
    spec_labels: Callable[[str], dict[str, int]],
    images: dict[str, Path],
    model: str,
    key: Key,
) -> None:
    """The observed detections of the subset's labels (street-v1 on dog.jpg: car and bicycle, not the dog),
    with their scores and boxes, and none of its other labels as high as the weakest observed detection."""
    names = set(spec_labels(model))
    size = image_size(images, key)
    found = detections(recognized(model, SUBSET_IMAGES)[key], size)
    expected = tuple(s for s in seen.YOLO[key] if s.label in names)
    for observation in expected:
        ref.assert_detections([d for d in found if d[0] == observation.label], (observation,), size)
    floor = min((s.score for s in seen.YOLO[key]), default=0.0) - SCORE_TOLERANCE
    others = [d for d in found if d[0] not in {s.label for s in expected} and d[1] >= floor]
    assert not others, f"unexpected detections {others}"
