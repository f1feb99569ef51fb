"""ImagePreprocessor.write on real photos against the NumPy + OpenCV-Python reference (preprocess_reference),
for every combination of resize type, data type, dimension order, colour channels and mean kind."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from mean_files import blobproto, npy
from preprocess_reference import RefSpec, plan, preprocess

from sightd import _core
from sightd.errors import InvalidArgumentError

PHOTOS = [
    ("darknet", "dog.jpg"),
    ("skimage", "chelsea.png"),
    ("darknet", "person.jpg"),
    ("skimage", "astronaut.png"),
    ("skimage", "rocket.jpg"),
    ("darknet", "eagle.jpg"),
]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@pytest.fixture(scope="module")
def photos(darknet_data: Path, skimage_data: Path) -> list[np.ndarray]:
    folders = {"darknet": darknet_data, "skimage": skimage_data}
    images = [cv2.imread(str(folders[folder] / name), cv2.IMREAD_COLOR) for folder, name in PHOTOS]
    assert all(image is not None for image in images)
    return images


def core_spec(ref: RefSpec) -> _core.ImageInputSpec:
    spec = _core.ImageInputSpec()
    spec.tensor_name = "data"
    spec.resize_type = getattr(_core.ResizeType, ref.resize_type)
    spec.data_type = getattr(_core.DataType, ref.data_type)
    spec.dimension_order = getattr(_core.DimensionOrder, ref.dimension_order)
    spec.pixel_scaling = ref.pixel_scaling
    spec.color_channels = getattr(_core.ColorChannels, ref.color_channels)
    if ref.resize_type == "NETWORK":
        spec.target_width, spec.target_height = 0, ref.target_height
    else:
        spec.target_width, spec.target_height = ref.target_width, ref.target_height
    spec.mean, spec.std = ref.mean, ref.std
    spec.crop_ratio = ref.crop_ratio
    spec.pad_value = ref.pad_value
    spec.letterbox_align = getattr(_core.LetterboxAlign, ref.letterbox_align)
    spec.max_size, spec.stride = ref.max_size, ref.stride
    spec.interpolation = getattr(_core.Interpolation, ref.interpolation)
    spec.antialias = ref.antialias
    return spec


def pixel_mean(channels: int, scaling: float) -> np.ndarray:
    """A smooth 256x256 per-pixel mean (C, H, W) in output units, like Caffe's ImageNet mean."""
    y, x = np.mgrid[0:256, 0:256] / 255.0
    planes = [100 + 30 * x + 10 * y, 110 + 20 * np.sin(3 * y), 120 - 25 * x * y][:channels]
    return (np.stack(planes) * scaling / 255.0).astype(np.float32)


def with_mean(ref: RefSpec, kind: str) -> tuple[RefSpec, bytes | None]:
    """The reference spec with the mean of `kind`, and the mean file's bytes for the core."""
    c = ref.channels
    if kind == "channel_file":  # the seed's unitary_mean.npy layout: (1, 1, C)
        values = (np.array([104.0, 117.0, 123.0][:c]) * ref.pixel_scaling / 255.0).reshape(1, 1, c)
        ref.mean_file = values.transpose(2, 0, 1).astype(np.float32)
        return ref, npy(values)
    if kind == "pixel_file":  # Caffe's imagenet_mean.binaryproto layout: (1, C, 256, 256)
        values = pixel_mean(c, ref.pixel_scaling)
        ref.mean_file = values
        return ref, blobproto(values[None])
    if kind == "mean_std":
        ref.mean = IMAGENET_MEAN[:c]
        ref.std = IMAGENET_STD[:c]
        ref.pixel_scaling = 1.0
    return ref, None


def run_core(ref: RefSpec, mean_bytes: bytes | None, image: np.ndarray) -> tuple[np.ndarray, _core.Transform]:
    spec = core_spec(ref)
    if mean_bytes is not None:
        spec.mean_file = _core.parse_mean_file(mean_bytes)
    tensor, transform = _core.ImagePreprocessor(spec).write(image)
    return tensor, transform


def assert_matches(ref: RefSpec, tensor: np.ndarray, expected: np.ndarray) -> None:
    assert tensor.shape == expected.shape
    if ref.data_type == "UINT8":
        assert tensor.dtype == np.uint8
        assert np.abs(tensor.astype(np.int32) - expected.astype(np.int32)).max() <= 1
    else:
        assert tensor.dtype == np.float32
        np.testing.assert_allclose(tensor, expected, atol=1e-4, rtol=1e-6)


RESIZE_TYPES = ["SQUASH", "CROP", "NETWORK", "LETTERBOX"]
MATRIX = list(
    itertools.product(
        RESIZE_TYPES,
        ["FLOAT32", "UINT8"],
        ["NCHW", "NHWC"],
        ["BGR", "RGB", "L"],
        ["none", "channel_file", "pixel_file", "mean_std"],
    )
)


@pytest.mark.parametrize(("resize", "dtype", "order", "colours", "mean"), MATRIX)
def test_matches_reference(  # noqa: PLR0917 (one argument per parametrised axis)
    photos: list[np.ndarray], resize: str, dtype: str, order: str, colours: str, mean: str
) -> None:
    index = MATRIX.index((resize, dtype, order, colours, mean))
    image = photos[index % len(photos)]
    ref = RefSpec(resize_type=resize, data_type=dtype, dimension_order=order, color_channels=colours)
    ref.target_width, ref.target_height = (224, 224) if resize != "NETWORK" else (0, 300)
    if resize == "CROP":
        ref.crop_ratio = 0.875
    ref, mean_bytes = with_mean(ref, mean)
    expected, p = preprocess(image, ref)
    tensor, transform = run_core(ref, mean_bytes, image)
    assert_matches(ref, tensor, expected)
    h, w = image.shape[:2]
    assert (transform.tensor_width, transform.tensor_height) == (p.tensor_width, p.tensor_height)
    assert transform.scale_x == pytest.approx(p.resized_width / w)
    assert transform.scale_y == pytest.approx(p.resized_height / h)
    # The resized image's corners map back to the image's corners.
    assert transform.to_image_x(p.offset_x) == pytest.approx(0.0, abs=1e-12)
    assert transform.to_image_y(p.offset_y + p.resized_height) == pytest.approx(1.0)


@pytest.mark.parametrize("interpolation", ["AREA", "CUBIC", "NEAREST", "LINEAR"])
@pytest.mark.parametrize("resize", RESIZE_TYPES)
def test_interpolations(photos: list[np.ndarray], interpolation: str, resize: str) -> None:
    ref = RefSpec(
        resize_type=resize, interpolation=interpolation, color_channels="RGB", dimension_order="NHWC"
    )
    ref.target_width, ref.target_height = (320, 240) if resize != "NETWORK" else (0, 600)  # NETWORK upscales
    ref, mean_bytes = with_mean(ref, "mean_std")
    expected, _ = preprocess(photos[1], ref)
    tensor, _ = run_core(ref, mean_bytes, photos[1])
    if interpolation != "CUBIC":
        assert_matches(ref, tensor, expected)
        return
    # OpenCV 4.6 (the core, Debian) and 4.14 (cv2, PyPI) round 8-bit bicubic results differently: allow one
    # pixel level on a few elements.
    levels = np.abs(tensor - expected) * 255.0 / ref.pixel_scaling * np.array(ref.std)
    assert levels.max() <= 1.0 + 1e-3
    assert (levels > 1e-3).mean() < 0.05


@pytest.mark.parametrize(
    ("resize", "extra"),
    [
        ("LETTERBOX", {"pad_value": [114.0]}),
        ("LETTERBOX", {"pad_value": [10.0, 20.0, 30.0], "letterbox_align": "TOP_LEFT"}),
        ("LETTERBOX", {"target_width": 200, "target_height": 400}),
        ("NETWORK", {"target_height": 200, "max_size": 250}),
        ("NETWORK", {"target_height": 200, "stride": 32}),
        ("NETWORK", {"target_height": 200, "stride": 32, "pad_value": [127.5]}),
        ("CROP", {"target_width": 300, "target_height": 100}),
        ("CROP", {"target_width": 100, "target_height": 300, "crop_ratio": 0.5}),
        ("SQUASH", {"target_width": 1000, "target_height": 50}),
    ],
)
@pytest.mark.parametrize("mean", ["none", "pixel_file"])
@pytest.mark.parametrize("dtype", ["FLOAT32", "UINT8"])
def test_extensions(
    photos: list[np.ndarray], resize: str, extra: dict[str, object], mean: str, dtype: str
) -> None:
    ref = RefSpec(resize_type=resize, data_type=dtype, color_channels="RGB")
    for key, value in extra.items():
        setattr(ref, key, value)
    ref, mean_bytes = with_mean(ref, mean)
    for image in photos[:3]:
        expected, _ = preprocess(image, ref)
        tensor, _ = run_core(ref, mean_bytes, image)
        assert_matches(ref, tensor, expected)


def test_torchvision_recipe_geometry() -> None:
    """crop_ratio 0.875 at 224x224 is torchvision's Resize(256) + CenterCrop(224): on a 768x576 image the
    shorter side becomes 256, the longer int(256 * 768 / 576) = 341, and the crop starts at (58, 16)."""
    spec = core_spec(RefSpec(resize_type="CROP", crop_ratio=0.875))
    p = _core.plan_resize(spec, 768, 576)
    assert (p.resized_width, p.resized_height, p.offset_x, p.offset_y) == (341, 256, -58, -16)
    portrait = _core.plan_resize(spec, 480, 640)
    assert (portrait.resized_width, portrait.resized_height) == (256, 341)
    assert (portrait.tensor_width, portrait.tensor_height) == (224, 224)


@pytest.mark.parametrize(
    ("resize", "target", "src", "expected"),
    [
        # (resized w, h, offset x, y, tensor w, h), worked out by hand from docs/preprocessing.md
        ("LETTERBOX", (416, 416), (768, 576), (416, 312, 0, 52, 416, 416)),
        ("LETTERBOX", (416, 416), (101, 200), (210, 416, 103, 0, 416, 416)),
        ("NETWORK", (0, 800), (500, 375), (1067, 800, 0, 0, 1067, 800)),
        ("SQUASH", (224, 224), (5, 7), (224, 224, 0, 0, 224, 224)),
        ("CROP", (224, 224), (224, 224), (224, 224, 0, 0, 224, 224)),
        ("CROP", (224, 224), (1, 20000), (224, 16384, 0, -8080, 224, 224)),  # capped following side
    ],
)
def test_plan_known_answers(
    resize: str, target: tuple[int, int], src: tuple[int, int], expected: tuple[int, ...]
) -> None:
    spec = core_spec(RefSpec(resize_type=resize, target_width=target[0], target_height=target[1]))
    p = _core.plan_resize(spec, *src)
    got = (p.resized_width, p.resized_height, p.offset_x, p.offset_y, p.tensor_width, p.tensor_height)
    assert got == expected
    ref = plan(RefSpec(resize_type=resize, target_width=target[0], target_height=target[1]), *src)
    assert got == (
        ref.resized_width,
        ref.resized_height,
        ref.offset_x,
        ref.offset_y,
        ref.tensor_width,
        ref.tensor_height,
    )


def test_caffe_and_inception_known_values() -> None:
    """Caffe: scaling 255 gives pixel - mean; TensorFlow Inception: scaling 2, unit mean gives [-1, 1]."""
    image = np.zeros((50, 60, 3), np.uint8)
    image[:, :30] = (10, 20, 30)
    image[:, 30:] = (255, 0, 128)
    caffe = RefSpec(resize_type="SQUASH", target_width=60, target_height=50)
    spec = core_spec(caffe)
    spec.mean_file = _core.parse_mean_file(blobproto(np.array([104.0, 117.0, 123.0]).reshape(1, 3, 1, 1)))
    tensor, _ = _core.ImagePreprocessor(spec).write(image)
    np.testing.assert_allclose(tensor[:, 0, 0], [10 - 104, 20 - 117, 30 - 123])
    np.testing.assert_allclose(tensor[:, 0, 59], [255 - 104, -117, 128 - 123])

    inception = core_spec(
        RefSpec(resize_type="CROP", target_width=60, target_height=50, dimension_order="NHWC")
    )
    inception.pixel_scaling = 2.0
    inception.mean_file = _core.parse_mean_file(npy(np.ones((1, 1, 3))))
    tensor, _ = _core.ImagePreprocessor(inception).write(image)
    np.testing.assert_allclose(tensor[0, 59], [1.0, -1.0, 128 * 2 / 255 - 1], atol=1e-6)
    assert tensor.min() >= -1.0
    assert tensor.max() <= 1.0


def test_uint8_pixels_are_exact() -> None:
    """UINT8 NHWC BGR with scaling 255 and no mean: the tensor is the resized image itself."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    for resize, extra in (("SQUASH", {}), ("LETTERBOX", {"pad_value": [7.0]}), ("CROP", {})):
        ref = RefSpec(resize_type=resize, data_type="UINT8", dimension_order="NHWC", **extra)
        tensor, _ = run_core(ref, None, image)
        expected, _ = preprocess(image, ref)
        np.testing.assert_array_equal(tensor, expected.astype(np.uint8))


@pytest.mark.parametrize("resize", RESIZE_TYPES)
def test_transform_maps_a_marker_back(resize: str) -> None:
    """A white square on a black image, found in the tensor and mapped back through the transform."""
    image = np.zeros((480, 640, 3), np.uint8)
    x0, y0, x1, y1 = 400, 100, 480, 180  # the square covers [x0, x1) x [y0, y1)
    image[y0:y1, x0:x1] = 255
    ref = RefSpec(resize_type=resize, data_type="UINT8", dimension_order="NHWC", target_width=300)
    ref.target_height = 200 if resize != "NETWORK" else 333
    tensor, transform = run_core(ref, None, image)
    ys, xs = np.nonzero(tensor[:, :, 0] > 127)
    # Pixel edges of the found square, in tensor coordinates, mapped back to image pixels.
    left = transform.to_image_x(xs.min()) * 640
    right = transform.to_image_x(xs.max() + 1) * 640
    top = transform.to_image_y(ys.min()) * 480
    bottom = transform.to_image_y(ys.max() + 1) * 480
    tolerance = 1.5 / min(transform.scale_x, transform.scale_y)
    assert left == pytest.approx(x0, abs=tolerance)
    assert right == pytest.approx(x1, abs=tolerance)
    assert top == pytest.approx(y0, abs=tolerance)
    assert bottom == pytest.approx(y1, abs=tolerance)


@pytest.mark.parametrize("colours", ["BGR", "RGB", "L"])
def test_neutral_colour_maps_to_zero(colours: str) -> None:
    ref = RefSpec(color_channels=colours, pixel_scaling=1.0)
    spec = core_spec(ref)
    assert _core.neutral_colour(spec) is None
    channel_mean = [100 / 255, 150 / 255, 200 / 255][: ref.channels]
    spec.mean = channel_mean
    spec.std = [0.5] * ref.channels
    neutral = _core.neutral_colour(spec)
    assert neutral is not None
    image = np.empty((40, 40, 3), np.uint8)
    image[:] = np.round(neutral)
    tensor, _ = _core.ImagePreprocessor(spec).write(image)
    if colours == "L":
        assert neutral == pytest.approx((100, 100, 100))
        # L of a grey pixel is that grey level, up to the rounding of the weights.
        np.testing.assert_allclose(tensor, 0.0, atol=1e-5)
    else:
        expected = (100, 150, 200) if colours == "BGR" else (200, 150, 100)
        assert neutral == pytest.approx(expected)
        np.testing.assert_allclose(tensor, 0.0, atol=1e-5)


def test_concurrent_writes_share_the_mean_cache(photos: list[np.ndarray]) -> None:
    """Many threads, many tensor sizes (NETWORK resizing), one per-pixel mean cache: same results as alone."""
    ref = RefSpec(resize_type="NETWORK", target_width=0, target_height=96)
    ref, mean_bytes = with_mean(ref, "pixel_file")
    spec = core_spec(ref)
    spec.mean_file = _core.parse_mean_file(mean_bytes or b"")
    preprocessor = _core.ImagePreprocessor(spec)
    images = [cv2.resize(photo, (64 + 7 * k, 64 + 5 * (k % 4))) for k, photo in enumerate(photos * 4)]
    expected = [preprocess(image, ref)[0] for image in images]
    failures: list[str] = []

    def work(offset: int) -> None:
        for k in range(len(images)):
            index = (k + offset) % len(images)
            tensor, _ = preprocessor.write(images[index])
            if not np.allclose(tensor, expected[index], atol=1e-4):
                failures.append(f"image {index}")

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_strided_and_bad_pixel_arrays(photos: list[np.ndarray]) -> None:
    """A crop of a larger array is read in place; other layouts are copied; wrong arrays are refused."""
    preprocessor = _core.ImagePreprocessor(core_spec(RefSpec(resize_type="LETTERBOX")))
    crop = photos[0][50:300, 100:500]
    expected, _ = preprocessor.write(np.ascontiguousarray(crop))
    np.testing.assert_array_equal(preprocessor.write(crop)[0], expected)
    np.testing.assert_array_equal(preprocessor.write(np.asfortranarray(crop))[0], expected)
    for bad in (crop.astype(np.float32), crop[:, :, 0], crop[:, :, :2], np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(InvalidArgumentError) as error:
            preprocessor.write(bad)
        assert error.value.field == "image"
