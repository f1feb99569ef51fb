"""The `antialias` extension against Pillow itself: Image.resize with BILINEAR (LINEAR) and BICUBIC
(CUBIC), the resize torchvision's Resize does on PIL images. The core reproduces Pillow's 8-bit arithmetic,
so the pixels must be identical: on real photos, on random images of many sizes and scale factors (each
axis shrunk, enlarged or kept, both orders of Pillow's two passes), through ImagePreprocessor.write for
every resize type and through BatchPreprocessor with several threads sharing the taps cache."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from preprocess_reference import RefSpec, pillow_resize, plan, preprocess
from test_preprocess import PHOTOS, core_spec

from sightd import _core

FILTERS = ["LINEAR", "CUBIC"]


@pytest.fixture(scope="module")
def photos(darknet_data: Path, skimage_data: Path) -> list[np.ndarray]:
    folders = {"darknet": darknet_data, "skimage": skimage_data}
    names = [*PHOTOS, ("skimage", "camera.png"), ("skimage", "coffee.png")]
    images = [cv2.imread(str(folders[folder] / name), cv2.IMREAD_COLOR) for folder, name in names]
    assert all(image is not None for image in images)
    return images


def core_resize(bgr: np.ndarray, width: int, height: int, interpolation: str = "LINEAR") -> np.ndarray:
    """The core's resized pixels: SQUASH to UINT8 NHWC BGR with scaling 255 gives them back unchanged."""
    ref = RefSpec(
        resize_type="SQUASH",
        data_type="UINT8",
        dimension_order="NHWC",
        target_width=width,
        target_height=height,
        interpolation=interpolation,
        antialias=True,
    )
    tensor, _ = _core.ImagePreprocessor(core_spec(ref)).write(bgr)
    return np.asarray(tensor)


def assert_same_pixels(got: np.ndarray, expected: np.ndarray, what: object) -> None:
    assert got.shape == expected.shape, what
    differ = got != expected
    assert not differ.any(), f"{what}: {differ.sum()} of {differ.size} values differ"


@pytest.mark.parametrize("interpolation", FILTERS)
def test_real_photos(photos: list[np.ndarray], interpolation: str) -> None:
    for image in photos:
        h, w = image.shape[:2]
        short = min(w, h)
        targets = [
            (w * 256 // short, h * 256 // short),  # torchvision's Resize(256)
            (224, 224),  # a squash
            (416, h * 416 // w),  # a letterbox's inside
            (w // 7, h // 3),
            (w * 3 // 2, h // 2),  # one axis enlarged, the other shrunk
            (w, h // 5),  # one axis kept
        ]
        for width, height in targets:
            expected = pillow_resize(image, width, height, interpolation)
            assert_same_pixels(
                core_resize(image, width, height, interpolation), expected, (w, h, width, height)
            )


def random_cases(count: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    cases: list[tuple[int, int, int, int]] = []
    while len(cases) < count:
        w, h, tw, th = (int(v) for v in rng.integers(1, 260, 4))
        if tw < w or th < h:  # antialiasing applies when an axis shrinks
            cases.append((w, h, tw, th))
    return cases


EDGE_CASES = [
    (1, 1, 1, 1),
    (2, 1, 1, 1),
    (5, 5, 1, 1),
    (2000, 3, 3, 2),  # a large factor: hundreds of taps
    (3, 2000, 2, 3),
    (5, 40, 3, 7),  # narrower than one 16-byte block
    (7, 7, 6, 3),
    (6, 100, 5, 99),
    (17, 33, 16, 1),
    (33, 17, 1, 16),
    (100, 50, 300, 10),  # enlarged width, shrunk height
    (50, 100, 10, 300),
    (100, 100, 90, 79),  # Pillow 13: the height shrinks by more than twice the width: vertical pass first
    (100, 100, 90, 80),  # exactly twice: horizontal first
    (100, 99, 101, 97),
    (640, 20, 639, 19),
    (3000, 2000, 224, 150),
]


@pytest.mark.parametrize("interpolation", FILTERS)
def test_random_sizes_and_factors(interpolation: str) -> None:
    """Noise is the hardest case for rounding: every value's fraction is different."""
    rng = np.random.default_rng(11)
    for w, h, tw, th in EDGE_CASES + random_cases(150, seed=3):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        expected = pillow_resize(image, tw, th, interpolation)
        assert_same_pixels(core_resize(image, tw, th, interpolation), expected, (w, h, tw, th))


def test_extreme_values() -> None:
    """Black and white stripes: bicubic's negative lobes overshoot, and Pillow clips to 0..255."""
    image = np.zeros((60, 90, 3), np.uint8)
    image[:, ::3] = 255
    image[::4, :, 1] = 255
    for tw, th in ((41, 29), (89, 7), (200, 31)):
        for interpolation in FILTERS:
            expected = pillow_resize(image, tw, th, interpolation)
            assert_same_pixels(core_resize(image, tw, th, interpolation), expected, (tw, th, interpolation))


def test_enlarging_is_unchanged(photos: list[np.ndarray]) -> None:
    """When no axis shrinks, `antialias` changes nothing: OpenCV's resize as without it."""
    image = photos[1]
    h, w = image.shape[:2]
    for interpolation in FILTERS:
        for width, height in ((w * 2, h + 1), (w, h * 3), (w + 7, h)):
            got = core_resize(image, width, height, interpolation)
            expected = cv2.resize(
                image, (width, height), interpolation=getattr(cv2, f"INTER_{interpolation}")
            )
            if interpolation == "LINEAR":
                np.testing.assert_array_equal(got, expected)
            else:  # OpenCV 4.6 (the core) and 4.14 (cv2) round 8-bit bicubic results differently
                assert np.abs(got.astype(int) - expected).max() <= 1
            plain = core_spec(
                RefSpec(
                    resize_type="SQUASH",
                    data_type="UINT8",
                    dimension_order="NHWC",
                    target_width=width,
                    target_height=height,
                    interpolation=interpolation,
                )
            )
            np.testing.assert_array_equal(got, _core.ImagePreprocessor(plain).write(image)[0])


@pytest.mark.parametrize(
    ("resize", "extra"),
    [
        ("SQUASH", {"target_width": 300, "target_height": 100}),
        ("CROP", {"crop_ratio": 0.875}),
        ("CROP", {"target_width": 100, "target_height": 200, "crop_ratio": 0.9}),
        ("LETTERBOX", {"target_width": 416, "target_height": 416, "pad_value": [127.0]}),
        ("LETTERBOX", {"letterbox_align": "TOP_LEFT", "pad_value": [0.0]}),
        ("NETWORK", {"target_height": 200, "max_size": 250}),
        ("NETWORK", {"target_height": 300, "stride": 32, "pad_value": [114.0]}),
    ],
)
@pytest.mark.parametrize(
    "layout",
    [
        {"data_type": "UINT8", "dimension_order": "NHWC"},  # resized straight into the tensor
        {"data_type": "FLOAT32", "color_channels": "RGB", "pixel_scaling": 1.0},
        {
            "data_type": "FLOAT32",
            "color_channels": "RGB",
            "pixel_scaling": 1.0,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "interpolation": "CUBIC",
        },
    ],
)
def test_every_resize_type(
    photos: list[np.ndarray], resize: str, extra: dict[str, object], layout: dict[str, object]
) -> None:
    ref = RefSpec(resize_type=resize, antialias=True)
    for key, value in {**layout, **extra}.items():
        setattr(ref, key, value)
    if resize == "NETWORK":
        ref.target_width = 0
    for image in photos[:4]:
        expected, p = preprocess(image, ref)
        tensor, transform = _core.ImagePreprocessor(core_spec(ref)).write(image)
        assert tensor.shape == expected.shape
        if ref.data_type == "UINT8":
            np.testing.assert_array_equal(tensor, expected)
        else:
            np.testing.assert_allclose(tensor, expected, atol=1e-4, rtol=1e-6)
        assert transform.scale_x == pytest.approx(p.resized_width / image.shape[1])
        assert (transform.offset_x, transform.offset_y) == (p.offset_x, p.offset_y)


@pytest.mark.parametrize("interpolation", FILTERS)
def test_crops_of_every_shape(interpolation: str) -> None:
    """CROP computes only the part of the resized image it keeps: every kept pixel is still Pillow's, down
    to crops a few pixels wide (too narrow for 16-byte blocks)."""
    rng = np.random.default_rng(23)
    done = 0
    while done < 60:
        h, w = (int(v) for v in rng.integers(8, 300, 2))
        ref = RefSpec(
            resize_type="CROP",
            data_type="UINT8",
            dimension_order="NHWC",
            target_width=int(rng.integers(1, 120)),
            target_height=int(rng.integers(1, 120)),
            crop_ratio=float(rng.uniform(0.3, 1.0)),
            interpolation=interpolation,
            antialias=True,
        )
        p = plan(ref, w, h)
        if p.resized_width >= w and p.resized_height >= h:
            continue  # OpenCV's resize: test_enlarging_is_unchanged
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        expected, _ = preprocess(image, ref)
        tensor, _ = _core.ImagePreprocessor(core_spec(ref)).write(image)
        what = (w, h, p.resized_width, p.resized_height, ref.target_width, ref.target_height)
        assert_same_pixels(np.asarray(tensor), expected.astype(np.uint8), what)
        done += 1


def test_a_crop_of_a_larger_array(photos: list[np.ndarray]) -> None:
    """Rows of the source may be strided (write reads a crop of a larger array in place)."""
    image = photos[0]
    crop = image[31:-40, 17:-60]
    assert not crop.flags["C_CONTIGUOUS"]
    for tw, th in ((123, 77), (5, 300)):
        expected = pillow_resize(np.ascontiguousarray(crop), tw, th)
        assert_same_pixels(core_resize(crop, tw, th), expected, (tw, th))


def test_batches_share_the_taps_cache(photos: list[np.ndarray]) -> None:
    """Three threads, 24 source sizes (more than the cache's 16 entries), each size several times: every image
    is Pillow's, whichever thread computed the taps and whatever was evicted meanwhile."""
    rng = np.random.default_rng(5)
    sources = []
    for k in range(24):
        photo = photos[k % 3]
        h, w = (int(rng.integers(150, side)) for side in photo.shape[:2])
        y, x = (
            int(rng.integers(0, side - size + 1)) for side, size in zip(photo.shape[:2], (h, w), strict=True)
        )
        sources.append(photo[y : y + h, x : x + w].copy())
    assert len({source.shape for source in sources}) == 24
    ref = RefSpec(
        resize_type="CROP", crop_ratio=0.875, data_type="UINT8", dimension_order="NHWC", antialias=True
    )
    spec = _core.PreprocessingSpec()
    spec.image_inputs = [core_spec(ref)]
    preprocessor = _core.BatchPreprocessor(spec, threads=3)
    order = [int(i) for i in rng.permutation(np.repeat(np.arange(24), 3))]
    encoded = [cv2.imencode(".png", sources[i])[1].tobytes() for i in range(24)]
    batch = preprocessor.prepare([(encoded[i], None) for i in order])
    assert len(batch.groups) == 1
    for position, index in enumerate(order):
        image = batch.images[position]
        assert image.ok, image.error_message
        expected, _ = preprocess(sources[index], ref)
        got = batch.groups[0].feeds["data"][image.row]
        assert_same_pixels(np.asarray(got), expected.astype(np.uint8), (position, sources[index].shape))
