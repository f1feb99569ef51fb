"""BatchPreprocessor.prepare: decoding, rois, grouping by shape, constants, per-image failures and reduced
decoding, checked against OpenCV-Python decoding plus the NumPy reference of preprocess_reference."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from preprocess_reference import RefSpec, preprocess

from sightd import _core
from sightd.errors import InvalidArgumentError

NAMES = ["dog.jpg", "person.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg", "kite.jpg"]


@pytest.fixture(scope="module")
def encoded(darknet_data: Path) -> dict[str, bytes]:
    return {name: (darknet_data / name).read_bytes() for name in NAMES}


def decoded(data: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None
    return image


def image_input(ref: RefSpec, name: str = "data") -> _core.ImageInputSpec:
    spec = _core.ImageInputSpec()
    spec.tensor_name = name
    spec.resize_type = getattr(_core.ResizeType, ref.resize_type)
    spec.data_type = getattr(_core.DataType, ref.data_type)
    spec.dimension_order = getattr(_core.DimensionOrder, ref.dimension_order)
    spec.color_channels = getattr(_core.ColorChannels, ref.color_channels)
    spec.pixel_scaling = ref.pixel_scaling
    spec.target_width = 0 if ref.resize_type == "NETWORK" else ref.target_width
    spec.target_height = ref.target_height
    spec.mean, spec.std, spec.crop_ratio = ref.mean, ref.std, ref.crop_ratio
    return spec


def whole(
    *inputs: _core.ImageInputSpec, constants: list[_core.ConstantInputSpec] | None = None
) -> _core.PreprocessingSpec:
    spec = _core.PreprocessingSpec()
    spec.image_inputs = list(inputs)
    spec.constant_inputs = constants or []
    return spec


def row_of(batch: _core.PreparedBatch, index: int, tensor: str = "data") -> np.ndarray:
    image = batch.images[index]
    assert image.ok, image.error_message
    return np.asarray(batch.groups[image.group].feeds[tensor][image.row])


def test_same_shapes_form_one_group(encoded: dict[str, bytes]) -> None:
    ref = RefSpec(
        resize_type="CROP",
        crop_ratio=0.875,
        color_channels="RGB",
        pixel_scaling=1.0,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
    )
    preprocessor = _core.BatchPreprocessor(whole(image_input(ref)), threads=2)
    batch = preprocessor.prepare([(encoded[name], None) for name in NAMES])
    assert len(batch.groups) == 1
    group = batch.groups[0]
    assert group.images == list(range(len(NAMES)))
    assert group.feeds["data"].shape == (len(NAMES), 3, 224, 224)
    assert group.feeds["data"].dtype == np.float32
    for index, name in enumerate(NAMES):
        image = batch.images[index]
        assert (image.ok, image.group, image.row, image.error_code) == (True, 0, index, None)
        expected, _ = preprocess(decoded(encoded[name]), ref)
        np.testing.assert_allclose(row_of(batch, index), expected, atol=1e-4)
        transform = image.transforms[0]
        h, w = decoded(encoded[name]).shape[:2]
        assert (transform.image_width, transform.image_height) == (w, h)
        assert transform.to_image_x(transform.offset_x) == pytest.approx(0.0)


def test_network_resizing_groups_by_shape_with_constants(encoded: dict[str, bytes]) -> None:
    """The seed's Faster R-CNN layout: NETWORK resizing and im_info = ("data.1", "data.2", 1.0)."""
    ref = RefSpec(resize_type="NETWORK", target_height=200)
    constant = _core.ConstantInputSpec()
    constant.tensor_name = "im_info"
    constant.shape = [3]
    constant.data = [_core.ConstantValue("data", 1), _core.ConstantValue("data", 2), _core.ConstantValue(1.0)]
    names = ["dog.jpg", "horses.jpg", "person.jpg", "eagle.jpg", "dog.jpg", "kite.jpg"]
    batch = _core.BatchPreprocessor(whole(image_input(ref), constants=[constant])).prepare(
        [(encoded[name], None) for name in names]
    )
    shapes = {name: preprocess(decoded(encoded[name]), ref)[0].shape for name in set(names)}
    assert len(batch.groups) == len(set(shapes.values()))
    seen: set[int] = set()
    for group in batch.groups:
        data, info = group.feeds["data"], group.feeds["im_info"]
        assert list(group.feeds) == ["data", "im_info"]
        assert data.shape[0] == info.shape[0] == len(group.images)
        assert info.shape == (len(group.images), 3)
        np.testing.assert_array_equal(info, [[data.shape[2], data.shape[3], 1.0]] * len(group.images))
        for row, index in enumerate(group.images):
            assert batch.images[index].row == row
            assert data.shape[1:] == shapes[names[index]]
            expected, _ = preprocess(decoded(encoded[names[index]]), ref)
            np.testing.assert_allclose(data[row], expected, atol=1e-4)
            seen.add(index)
    assert seen == set(range(len(names)))


def test_a_bad_image_fails_alone(encoded: dict[str, bytes]) -> None:
    ref = RefSpec(resize_type="SQUASH", data_type="UINT8", dimension_order="NHWC")
    dog = encoded["dog.jpg"]
    requests = [
        (dog, None),
        (b"not an image at all", None),
        (dog[: len(dog) // 2], None),  # truncated JPEG
        (encoded["horses.jpg"], None),
        (dog, _core.Roi(bbox=(0.5, 0.1, 0.2, 0.9))),  # inverted box
        (b"", None),
        (bytearray(encoded["eagle.jpg"]), _core.Roi(bbox=(0.25, 0.0, 0.75, 1.0))),
    ]
    batch = _core.BatchPreprocessor(whole(image_input(ref))).prepare(requests)
    assert [image.ok for image in batch.images] == [True, False, False, True, False, False, True]
    assert batch.images[1].error_code == _core.ErrorCode.INVALID_IMAGE
    assert batch.images[2].error_code == _core.ErrorCode.INVALID_IMAGE
    assert batch.images[4].error_code == _core.ErrorCode.INVALID_ARGUMENT
    assert batch.images[4].error_field.startswith("bbox")
    assert batch.images[5].error_code == _core.ErrorCode.INVALID_IMAGE
    assert all(batch.images[i].transforms == [] for i in (1, 2, 4, 5))
    assert len(batch.groups) == 1
    assert batch.groups[0].images == [0, 3, 6]
    assert batch.groups[0].feeds["data"].shape == (3, 224, 224, 3)
    np.testing.assert_array_equal(row_of(batch, 0), preprocess(decoded(dog), ref)[0])
    eagle = decoded(encoded["eagle.jpg"])
    w = eagle.shape[1]
    expected, _ = preprocess(eagle[:, round(w * 0.25) : round(w * 0.75)], ref)
    assert np.abs(row_of(batch, 6).astype(int) - expected).max() <= 1
    transform = batch.images[6].transforms[0]
    assert transform.to_image_x(0) == pytest.approx(0.25, abs=1 / w)
    assert transform.to_image_x(224) == pytest.approx(0.75, abs=1 / w)


def test_pixel_limit_and_empty_batch(encoded: dict[str, bytes]) -> None:
    spec = whole(image_input(RefSpec()))
    small_limit = _core.BatchPreprocessor(spec, max_pixels=768 * 576 - 1)
    batch = small_limit.prepare([(encoded["dog.jpg"], None), (encoded["person.jpg"], None)])
    assert batch.images[0].error_code == _core.ErrorCode.IMAGE_TOO_LARGE
    assert batch.images[1].ok  # 640x424 fits
    empty = small_limit.prepare([])
    assert (empty.images, empty.groups) == ([], [])


def test_threads_give_identical_results(encoded: dict[str, bytes]) -> None:
    spec = whole(image_input(RefSpec(resize_type="LETTERBOX", color_channels="L")))
    requests = [(encoded[name], None) for name in NAMES * 3]
    one = _core.BatchPreprocessor(spec, threads=1).prepare(requests)
    three = _core.BatchPreprocessor(spec, threads=3).prepare(requests)
    np.testing.assert_array_equal(one.groups[0].feeds["data"], three.groups[0].feeds["data"])


def test_two_image_inputs(encoded: dict[str, bytes]) -> None:
    small = RefSpec(target_width=64, target_height=48, color_channels="RGB")
    large = RefSpec(resize_type="LETTERBOX", target_width=300, target_height=300, dimension_order="NHWC")
    batch = _core.BatchPreprocessor(whole(image_input(small, "small"), image_input(large, "large"))).prepare(
        [(encoded["dog.jpg"], None), (encoded["kite.jpg"], None)]
    )
    assert list(batch.groups[0].feeds) == ["small", "large"]
    for index, name in enumerate(["dog.jpg", "kite.jpg"]):
        image = decoded(encoded[name])
        np.testing.assert_allclose(row_of(batch, index, "small"), preprocess(image, small)[0], atol=1e-4)
        np.testing.assert_allclose(row_of(batch, index, "large"), preprocess(image, large)[0], atol=1e-4)
        assert len(batch.images[index].transforms) == 2


def test_polygon_outside_is_the_neutral_colour(encoded: dict[str, bytes]) -> None:
    ref = RefSpec(
        resize_type="SQUASH",
        target_width=100,
        target_height=100,
        pixel_scaling=1.0,
        mean=[0.4, 0.5, 0.6],
        std=[0.2, 0.2, 0.2],
    )
    triangle = _core.Roi(polygon=[(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
    batch = _core.BatchPreprocessor(whole(image_input(ref))).prepare([(encoded["dog.jpg"], triangle)])
    tensor = row_of(batch, 0)
    # The bottom-right corner lies outside the triangle: the mean colour, i.e. zeros up to 8-bit rounding.
    corner = tensor[:, 90:, 90:]
    assert np.abs(corner).max() <= 0.5 / 255 / 0.2 + 1e-6
    assert np.abs(tensor[:, :10, :10]).max() > 0.1


@pytest.fixture(scope="module")
def large_jpeg(darknet_data: Path) -> bytes:
    """4000x3000, made from a real photo (upscaled with INTER_CUBIC, JPEG quality 90)."""
    photo = cv2.imread(str(darknet_data / "dog.jpg"), cv2.IMREAD_COLOR)
    big = cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("roi", "flags", "crop"),
    [
        (None, cv2.IMREAD_REDUCED_COLOR_8, None),  # needs 341x256: 1/8 gives 500x375
        ((0.0, 0.0, 0.5, 0.5), cv2.IMREAD_REDUCED_COLOR_4, (0, 0, 500, 375)),  # needs 682x512 of the whole
    ],
)
def test_reduced_decoding(
    large_jpeg: bytes, roi: tuple[float, float, float, float] | None, flags: int, crop: tuple[int, ...] | None
) -> None:
    ref = RefSpec(
        resize_type="CROP",
        crop_ratio=0.875,
        color_channels="RGB",
        pixel_scaling=1.0,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
    )
    spec = whole(image_input(ref))
    request = [(large_jpeg, None if roi is None else _core.Roi(bbox=roi))]
    exact = _core.BatchPreprocessor(spec).prepare(request)
    reduced = _core.BatchPreprocessor(spec, reduced_decoding=True).prepare(request)
    # DCT-scaled decoding, as OpenCV-Python's IMREAD_REDUCED_* does it, then the same preprocessing.
    small = decoded(large_jpeg, flags)
    if crop is not None:
        x0, y0, x1, y1 = crop
        small = small[y0:y1, x0:x1]
    expected, _ = preprocess(small, ref)
    np.testing.assert_allclose(row_of(reduced, 0), expected, atol=1e-4)
    # Close to exact mode (which aliases: LINEAR samples 2 of every 12 pixels at this scale; about 4 pixel
    # levels on average), and the transforms still refer to the full-resolution image.
    assert np.abs(row_of(reduced, 0) - row_of(exact, 0)).mean() < 0.1
    t_exact, t_reduced = exact.images[0].transforms[0], reduced.images[0].transforms[0]
    assert (t_reduced.image_width, t_reduced.image_height) == (4000, 3000)
    for x in (0.0, 111.0, 224.0):
        assert t_reduced.to_image_x(x) == pytest.approx(t_exact.to_image_x(x), abs=0.002)
        assert t_reduced.to_image_y(x) == pytest.approx(t_exact.to_image_y(x), abs=0.002)


def test_reduced_decoding_keeps_small_images_exact(encoded: dict[str, bytes]) -> None:
    """Nothing to gain when the network needs the full resolution: identical to exact mode."""
    spec = whole(image_input(RefSpec(resize_type="NETWORK", target_height=600)))
    requests = [(encoded[name], None) for name in NAMES]
    exact = _core.BatchPreprocessor(spec).prepare(requests)
    reduced = _core.BatchPreprocessor(spec, reduced_decoding=True).prepare(requests)
    for index in range(len(NAMES)):
        np.testing.assert_array_equal(row_of(exact, index), row_of(reduced, index))


@pytest.mark.parametrize("bad", [[(1, None)], [b"jpeg"], ["ab"], [(b"jpeg", "roi")], [(b"a", None, None)]])
def test_malformed_requests_are_refused(bad: list[object]) -> None:
    preprocessor = _core.BatchPreprocessor(whole(image_input(RefSpec())))
    with pytest.raises(InvalidArgumentError, match="expected"):
        preprocessor.prepare(bad)  # type: ignore[arg-type]


def test_buffers_of_any_kind(encoded: dict[str, bytes]) -> None:
    dog = encoded["dog.jpg"]
    preprocessor = _core.BatchPreprocessor(whole(image_input(RefSpec())))
    batch = preprocessor.prepare(
        [(dog, None), (bytearray(dog), None), (memoryview(dog), None), (np.frombuffer(dog, np.uint8), None)]
    )
    assert len(batch.groups) == 1
    rows = batch.groups[0].feeds["data"]
    for row in rows[1:]:
        np.testing.assert_array_equal(row, rows[0])
