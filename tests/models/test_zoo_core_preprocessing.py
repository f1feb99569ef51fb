"""The zoo's preprocessing documents, run by the core, make the tensors of each source project's own
preprocessing (tests/models/zoo_reference.py: PIL's bilinear resize), with which test_zoo_onnxruntime
reproduces model-sources.md's observations. Compared where the two geometries agree (LETTERBOX rounds the
fitted side down as darknet does, so person.jpg and kite.jpg are compared too): the core's CROP rounds an odd
margin down where torchvision rounds half to even, and Open-NSFW's recipe has a JPEG round trip
(docs/zoo.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zoo_reference as ref

from sightd import _core
from sightd.preprocessing import parse_preprocessing
from sightd.zoo import catalog

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def core_tensor(network: str, path: Path) -> np.ndarray:
    spec = parse_preprocessing(catalog.NETWORKS[network].preprocessing)
    batch = _core.BatchPreprocessor(spec, threads=1).prepare([(path.read_bytes(), None)])
    image = batch.images[0]
    assert image.ok, image.error_message
    (name,) = (entry.tensor_name for entry in spec.image_inputs)
    return np.asarray(batch.groups[image.group].feeds[name][image.row])


def reference_tensor(network: str, path: Path) -> np.ndarray:
    """The source recipe's tensor (no batch dimension), as test_zoo_onnxruntime makes it."""
    image = ref.rgb(path)
    if network == "imagenet-mobilenet-v2":
        pixels = ref.torchvision_crop(image).astype(np.float32) / 255
        return ref.nchw((pixels - IMAGENET_MEAN) / IMAGENET_STD)[0]
    if network == "coco-yolov3-tiny":
        pixels, _ = ref.letterbox(image, 416, pad=127)
        return ref.nchw(pixels.astype(np.float32) / 255)[0]
    if network == "face-tiny-v1":
        pixels, _ = ref.pad_to_square_and_resize(image, 416)
        return ref.nchw((pixels.astype(np.float32) - [117.001, 114.697, 97.404]) / 255)[0]
    assert network == "face-retina-v1"
    pixels, _ = ref.letterbox(image, 640, pad=(123, 117, 104))
    return ref.nchw(pixels[:, :, ::-1].astype(np.float32) - [104.0, 117.0, 123.0])[0]


# Output units per pixel level, per channel.
LEVEL = {
    "imagenet-mobilenet-v2": 1 / 255 / IMAGENET_STD,
    "coco-yolov3-tiny": np.full(3, 1 / 255),
    "face-tiny-v1": np.full(3, 1 / 255),
    "face-retina-v1": np.ones(3),
}


@pytest.mark.parametrize(
    ("network", "folder", "name"),
    [
        ("imagenet-mobilenet-v2", "skimage", "chelsea.png"),
        ("imagenet-mobilenet-v2", "skimage", "coffee.png"),
        ("imagenet-mobilenet-v2", "darknet", "dog.jpg"),
        ("imagenet-mobilenet-v2", "darknet", "eagle.jpg"),
        ("coco-yolov3-tiny", "darknet", "dog.jpg"),
        ("coco-yolov3-tiny", "darknet", "person.jpg"),
        ("coco-yolov3-tiny", "darknet", "kite.jpg"),
        ("coco-yolov3-tiny", "skimage", "coffee.png"),
        ("coco-yolov3-tiny", "skimage", "astronaut.png"),
        ("face-tiny-v1", "skimage", "astronaut.png"),
        ("face-retina-v1", "skimage", "astronaut.png"),
    ],
)
def test_the_core_makes_the_source_recipes_tensor(
    images: dict[str, Path], network: str, folder: str, name: str
) -> None:
    path = images[folder] / name
    got = core_tensor(network, path)
    expected = reference_tensor(network, path)
    assert got.shape == expected.shape
    levels = np.abs(got - expected) / LEVEL[network][:, None, None]
    if network == "face-retina-v1":
        # 512 -> 640 enlarges: OpenCV's bilinear interpolation, which rounds one level apart from Pillow's
        assert levels.max() < 1 + 1e-3
        assert (levels > 1e-3).mean() < 0.5
    else:
        assert levels.max() < 1e-3, f"{(levels > 1e-3).sum()} elements differ, by up to {levels.max():.2f}"
