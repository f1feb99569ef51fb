"""Each detection decoder of the core on the real outputs of real models (the zoo's networks run with
onnxruntime's Python API on real images).

The outputs are decoded twice: by the core, configured from the zoo's own post-processing JSON through
``sightd.postprocessing``, and by the NumPy reference of the post-processing tests (tests/core), configured
from model-sources.md's facts (anchors, class order, background column, thresholds), not from the catalog.
Both must agree to 1e-5, and the core's detections must be the ones model-sources.md observed. The input
tensors are made with each source project's preprocessing (tests/models/zoo_reference.py: PIL's bilinear
resize, which reproduces the observed scores), and the Transform given to the core records exactly that
preprocessing, so mapping boxes back to the original image is checked against the observed boxes too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import postprocess_checks as checks
import postprocess_reference as pref
import pytest
import zoo_observations as seen
import zoo_reference as zref
from PIL import Image

from sightd.postprocessing import VersionPostProcessor
from sightd.zoo import installed

Key = tuple[str, str]  # (image folder fixture, file)
IMAGES: list[Key] = [
    ("darknet", "dog.jpg"),
    ("darknet", "person.jpg"),
    ("darknet", "eagle.jpg"),
    ("darknet", "kite.jpg"),
    ("skimage", "astronaut.png"),
    ("skimage", "chelsea.png"),
]
TOLERANCE = 1e-5

# model-sources.md: yolov3-tiny's heads (stride 32, then 16) and their anchors in pixels; thresholds 0.3,
# NMS 0.45; the tiny face detector's anchors in grid cells; NMS 0.4 and threshold 0.5 for the faces.
YOLO_HEADS = [
    ("yolo_stride32", 32, [(81, 82), (135, 169), (344, 319)]),
    ("yolo_stride16", 16, [(10, 14), (23, 27), (37, 58)]),
]
FACE_ANCHORS = [
    (1.603231, 2.094468),
    (6.041143, 7.080126),
    (2.882459, 3.518061),
    (4.266906, 5.178857),
    (9.041765, 10.66308),
]
DISCARD = 0.025


@functools.cache
def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(zoo: installed.Zoo, network: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = _session(zoo.networks[network].path)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _frame(
    image: Image.Image, tensor_size: int, scale: tuple[float, float], offset: tuple[float, float]
) -> pref.Frame:
    width, height = image.size
    return pref.Frame(width, height, tensor_size, tensor_size, (0.0, 0.0, width, height), scale, offset)


def _letterbox(
    image: Image.Image, size: int, pad: int | tuple[int, int, int]
) -> tuple[np.ndarray, pref.Frame]:
    """zoo_reference.letterbox (darknet's: integer resized sizes, centred) and the frame recording it."""
    pixels, geometry = zref.letterbox(image, size, pad)
    w, h = image.size
    nw, nh = (size, h * size // w) if size / w < size / h else (w * size // h, size)
    assert geometry.scale == nw / w
    return pixels, _frame(image, size, (nw / w, nh / h), (geometry.offset_x, geometry.offset_y))


@functools.cache
def _yolo_input(path: Path) -> tuple[np.ndarray, pref.Frame]:
    image = zref.rgb(path)
    pixels, frame = _letterbox(image, 416, pad=127)
    return zref.nchw(pixels.astype(np.float32) / 255), frame


def _version(zoo: installed.Zoo, model: str) -> VersionPostProcessor:
    entry = zoo.models[model]
    return VersionPostProcessor.from_json(entry.spec["outputs"], [entry.post_processing])


def _spec_names(zoo: installed.Zoo, model: str) -> list[str]:
    return [label["name"] for label in zoo.models[model].spec["outputs"][0]["labels"]["labels"]]


def _coco_names(darknet: Path) -> list[str]:
    return (darknet / "coco.names").read_text().splitlines()


def _floors(thresholds: Sequence[float]) -> np.ndarray:
    return np.minimum(DISCARD, np.asarray(thresholds, np.float64))


def _process(version: VersionPostProcessor, outputs: dict[str, np.ndarray], frame: pref.Frame) -> Any:
    (result,) = version.process(outputs, frame.transform(), show_discarded=True)
    return result


def _check(
    result: Any,
    want: tuple[list[pref.RefPrediction], list[pref.RefPrediction]],
    names: list[str],
    frame: pref.Frame,
    observed: tuple[seen.Seen, ...] | None,
) -> None:
    """(a) the core agrees with the reference, predicted and discarded; (b) with model-sources.md."""
    checks.assert_result(result, want, tol=TOLERANCE)
    if observed is None:
        return
    size = np.array([frame.image_width, frame.image_height] * 2)
    found = [
        (names[p.label_index], p.score, np.array([p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax]) * size)
        for p in result.predicted
    ]
    zref.assert_detections(found, observed, (frame.image_width, frame.image_height))


# --- yolo_output, two YOLOv3 heads (sigmoid classes): coco-yolov3-tiny and its label subsets -------------


def _yolo_reference(
    outputs: dict[str, np.ndarray], classes: list[int], frame: pref.Frame
) -> tuple[list[pref.RefPrediction], list[pref.RefPrediction]]:
    thresholds = [0.3] * len(classes)
    candidates = pref.Candidates.concat(
        [
            pref.yolo_candidates(
                outputs[name],
                [v / stride for anchor in anchors for v in anchor],
                classes,
                _floors(thresholds),
                "SIGMOID",
            )
            for name, stride, anchors in YOLO_HEADS
        ]
    )
    return pref.detect(candidates, frame, 416, 416, thresholds, 0.45)


@pytest.mark.parametrize("key", IMAGES, ids=lambda k: k[1])
def test_yolov3_tiny_heads(zoo: installed.Zoo, images: dict[str, Path], darknet_data: Path, key: Key) -> None:
    x, frame = _yolo_input(images[key[0]] / key[1])
    outputs = _run(zoo, "coco-yolov3-tiny", {"input": x})
    names = _spec_names(zoo, "coco-yolov3-tiny")
    assert names == _coco_names(darknet_data)  # label k is COCO class k
    result = _process(_version(zoo, "coco-yolov3-tiny"), outputs, frame)
    want = _yolo_reference(outputs, list(range(80)), frame)
    _check(result, want, names, frame, seen.YOLO.get(key))


@pytest.mark.parametrize("key", [("darknet", "dog.jpg"), ("darknet", "person.jpg")], ids=lambda k: k[1])
def test_street_v1_reads_its_coco_classes(
    zoo: installed.Zoo, images: dict[str, Path], darknet_data: Path, key: Key
) -> None:
    """A spec listing some COCO labels reads their classes (class_indices) from the same real outputs."""
    model = "street-v1"
    x, frame = _yolo_input(images[key[0]] / key[1])
    outputs = _run(zoo, "coco-yolov3-tiny", {"input": x})
    names = _spec_names(zoo, model)
    coco = _coco_names(darknet_data)
    want = _yolo_reference(outputs, [coco.index(n) for n in names], frame)
    result = _process(_version(zoo, model), outputs, frame)
    observed = tuple(
        s for s in seen.YOLO[key] if s.label in names
    )  # dog.jpg: car, bicycle; person.jpg: person
    _check(result, want, names, frame, observed)


# --- direct_output: the same network with decoding and NMS in the graph (TF Object Detection API) ------


@pytest.mark.parametrize("key", IMAGES, ids=lambda k: k[1])
def test_yolov3_tiny_direct(
    zoo: installed.Zoo, images: dict[str, Path], darknet_data: Path, key: Key
) -> None:
    x, frame = _yolo_input(images[key[0]] / key[1])
    outputs = _run(zoo, "coco-yolov3-tiny-direct", {"input": x})
    names = _spec_names(zoo, "coco-yolov3-tiny-direct")
    coco = _coco_names(darknet_data)
    assert names == coco
    thresholds = [0.3] * len(names)
    candidates = pref.direct_candidates(
        outputs["detection_boxes"],
        outputs["detection_scores"],
        outputs["detection_classes"],
        [coco.index(n) + 1 for n in names],  # TF label-map ids: 1-based
        _floors(thresholds),
        count=int(outputs["num_detections"].reshape(-1)[0]),
    )
    want = pref.detect(candidates, frame, 416, 416, thresholds, 0.45)
    result = _process(_version(zoo, "coco-yolov3-tiny-direct"), outputs, frame)
    _check(result, want, names, frame, seen.YOLO.get(key))


def test_direct_output_honours_num_detections(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    """Rows past num_detections are not detections, whatever they hold."""
    x, frame = _yolo_input(images["darknet"] / "dog.jpg")
    outputs = _run(zoo, "coco-yolov3-tiny-direct", {"input": x})
    count = int(outputs["num_detections"].reshape(-1)[0])
    assert 0 < count < 100
    version = _version(zoo, "coco-yolov3-tiny-direct")
    honest = _process(version, outputs, frame)
    tampered = {name: value.copy() for name, value in outputs.items()}
    tampered["detection_boxes"][0, count:] = [0.1, 0.1, 0.9, 0.9]
    tampered["detection_scores"][0, count:] = 0.99
    tampered["detection_classes"][0, count:] = 1.0  # person
    same = _process(version, tampered, frame)
    assert [(p.label_index, p.score) for p in same.predicted] == [
        (p.label_index, p.score) for p in honest.predicted
    ]
    assert len(same.discarded) == len(honest.discarded)


@pytest.mark.parametrize("key", [("darknet", "dog.jpg"), ("darknet", "person.jpg")], ids=lambda k: k[1])
def test_in_graph_decoding_matches_the_core_decoding_the_heads(
    zoo: installed.Zoo, images: dict[str, Path], key: Key
) -> None:
    """The graph decodes and suppresses in float32, the core in double: the predictions are the same."""
    x, frame = _yolo_input(images[key[0]] / key[1])
    heads = _process(_version(zoo, "coco-yolov3-tiny"), _run(zoo, "coco-yolov3-tiny", {"input": x}), frame)
    direct = _process(
        _version(zoo, "coco-yolov3-tiny-direct"), _run(zoo, "coco-yolov3-tiny-direct", {"input": x}), frame
    )
    assert [p.label_index for p in direct.predicted] == [p.label_index for p in heads.predicted]
    np.testing.assert_allclose(
        [p.score for p in direct.predicted], [p.score for p in heads.predicted], rtol=0, atol=1e-4
    )
    boxes = [
        [[p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax] for p in r.predicted] for r in (direct, heads)
    ]
    np.testing.assert_allclose(boxes[0], boxes[1], rtol=0, atol=1e-4)


# --- yolo_output, YOLOv2 region with one class: face-api.js's tiny face detector --------------------------


@pytest.mark.parametrize("key", IMAGES, ids=lambda k: k[1])
def test_tiny_face_region(zoo: installed.Zoo, images: dict[str, Path], key: Key) -> None:
    image = zref.rgb(images[key[0]] / key[1])
    pixels, geometry = zref.pad_to_square_and_resize(image, 416)  # black bands at the right or bottom
    frame = _frame(image, 416, (geometry.scale, geometry.scale), (0.0, 0.0))
    x = (pixels.astype(np.float32) - [117.001, 114.697, 97.404]) / 255
    outputs = _run(zoo, "face-tiny-v1", {"input": zref.nchw(x)})
    assert outputs["region"].shape == (1, 30, 13, 13)  # 5 anchors x (5 + 1 class)
    candidates = pref.yolo_candidates(
        outputs["region"], [v for a in FACE_ANCHORS for v in a], [0], _floors([0.5]), "SOFTMAX"
    )
    want = pref.detect(candidates, frame, 416, 416, [0.5], 0.4)
    result = _process(_version(zoo, "face-tiny-v1"), outputs, frame)
    _check(result, want, _spec_names(zoo, "face-tiny-v1"), frame, seen.TINY_FACE.get(key))


# --- anchored_output: RetinaFace's priors, softmaxed scores (background first) and deltas -----------------


@pytest.mark.parametrize("key", IMAGES, ids=lambda k: k[1])
def test_retina_face_anchored(zoo: installed.Zoo, images: dict[str, Path], key: Key) -> None:
    image = zref.rgb(images[key[0]] / key[1])
    pixels, frame = _letterbox(image, 640, pad=(123, 117, 104))  # the mean colour, RGB
    x = pixels[:, :, ::-1].astype(np.float32) - [104.0, 117.0, 123.0]
    outputs = _run(zoo, "face-retina-v1", {"input": zref.nchw(x)})
    candidates = pref.anchored_candidates(
        outputs["anchors"],
        outputs["scores"],
        outputs["offsets"],
        [1],  # column 0 is the background
        _floors([0.5]),
        plus_one=False,
    )
    want = pref.detect(candidates, frame, 1.0, 1.0, [0.5], 0.4)
    result = _process(_version(zoo, "face-retina-v1"), outputs, frame)
    _check(result, want, _spec_names(zoo, "face-retina-v1"), frame, seen.RETINA_FACE.get(key))
