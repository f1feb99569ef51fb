"""Regions of interest against references written here: NumPy slicing with the documented pixel rounding,
cv2.fillPoly for the polygon mask, and a NumPy bounding box of non-background pixels for trimming."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from sightd import _core
from sightd.errors import InvalidArgumentError

Array = NDArray[np.uint8]
SLACK = 1e-6  # docs/images.md: tolerance on the scaled coordinate before rounding


def span(low: float, high: float, size: int) -> tuple[int, int]:
    """Documented rounding: begin = floor(low * size), end = ceil(high * size), at least one pixel."""
    begin = min(max(math.floor(low * size + SLACK), 0), size - 1)
    end = max(min(max(math.ceil(high * size - SLACK), 0), size), begin + 1)
    return begin, end


def inside_reference(
    shape: tuple[int, int], offset: tuple[int, int], size: tuple[int, int], points: list[tuple[float, float]]
) -> NDArray[np.bool_]:
    """Pixels whose centre is inside the polygon (even-odd), by counting the edges crossed to the right of
    each centre; a centre exactly on an edge counts as inside a span it starts, outside one it ends."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    yc = rows + 0.5
    xc = cols + 0.5
    xs = [x * size[0] - offset[0] for x, _ in points]
    ys = [y * size[1] - offset[1] for _, y in points]
    inside = np.zeros(shape, bool)
    for i in range(len(points)):
        j = i - 1
        straddles = (ys[i] <= yc) != (ys[j] <= yc)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = xs[j] + (yc - ys[j]) * (xs[i] - xs[j]) / (ys[i] - ys[j])
        inside ^= straddles & (xc < crossing)
    return inside


def polygon_reference(
    image: Array, points: list[tuple[float, float]], fill: tuple[float, float, float] | None
) -> tuple[Array, tuple[int, int, int, int]]:
    height, width = image.shape[:2]
    x0, x1 = span(min(p[0] for p in points), max(p[0] for p in points), width)
    y0, y1 = span(min(p[1] for p in points), max(p[1] for p in points), height)
    crop = image[y0:y1, x0:x1].copy()
    inside = inside_reference(crop.shape[:2], (x0, y0), (width, height), points)
    if fill is not None:
        colour = np.array(fill, np.float64)
    else:
        colour = crop[inside].mean(axis=0) if inside.any() else crop.reshape(-1, 3).mean(axis=0)
    crop[~inside] = np.clip(np.floor(colour + 0.5), 0, 255).astype(np.uint8)
    return crop, (x0, y0, x1 - x0, y1 - y0)


def trim_reference(image: Array, tolerance: int) -> tuple[int, int, int, int]:
    """Bounding box of the pixels differing from the top-left one by more than `tolerance` in a channel."""
    differs = (np.abs(image.astype(int) - image[0, 0].astype(int)) > tolerance).any(axis=2)
    if not differs.any():
        return 0, 0, image.shape[1], image.shape[0]
    rows = np.flatnonzero(differs.any(axis=1))
    cols = np.flatnonzero(differs.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def crop_of(transform: _core.Transform) -> tuple[float, float, float, float]:
    return transform.crop_x, transform.crop_y, transform.crop_width, transform.crop_height


@pytest.fixture(scope="module")
def dog(darknet_data: Path) -> Array:
    image, _ = _core.decode_image((darknet_data / "dog.jpg").read_bytes())
    return image


def test_no_roi_is_the_whole_image_as_a_view(dog: Array) -> None:
    out, transform = _core.apply_roi(dog, _core.Roi())
    assert out.shape == dog.shape
    assert np.shares_memory(out, dog)
    assert (transform.image_width, transform.image_height) == (768, 576)
    assert crop_of(transform) == (0, 0, 768, 576)
    assert (transform.scale_x, transform.scale_y, transform.offset_x, transform.offset_y) == (1, 1, 0, 0)


def test_bbox_matches_numpy_slicing(dog: Array) -> None:
    rng = np.random.default_rng(5)
    for _ in range(60):
        xs = np.sort(rng.uniform(0, 1, 2))
        ys = np.sort(rng.uniform(0, 1, 2))
        bbox = (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))
        out, transform = _core.apply_roi(dog, _core.Roi(bbox=bbox))
        x0, x1 = span(bbox[0], bbox[2], 768)
        y0, y1 = span(bbox[1], bbox[3], 576)
        np.testing.assert_array_equal(out, dog[y0:y1, x0:x1])
        assert np.shares_memory(out, dog)  # a view, no copy
        assert crop_of(transform) == (x0, y0, x1 - x0, y1 - y0)
        # Mapping the crop's corner back gives the rounded box in normalised coordinates.
        assert transform.to_image_x(0) == pytest.approx(x0 / 768)
        assert transform.to_image_y(y1 - y0) == pytest.approx(y1 / 576)


@pytest.mark.parametrize(
    ("bbox", "columns"),
    [
        ((0.3, 0.0, 0.7, 1.0), (3, 7)),  # 0.7 * 10 is 7.000000000000001: still ends at 7
        ((0.25, 0.0, 0.35, 1.0), (2, 4)),  # floor(2.5), ceil(3.5)
        ((0.0, 0.0, 1.0, 1.0), (0, 10)),
        ((0.5, 0.0, 0.5000001, 1.0), (5, 6)),  # thinner than a pixel: one pixel
        ((0.999, 0.0, 1.0, 1.0), (9, 10)),
        ((0.0, 0.0, 0.01, 1.0), (0, 1)),
        ((0.1, 0.0, 0.1 + 1e-9, 1.0), (1, 2)),
    ],
)
def test_bbox_pixel_rounding(bbox: tuple[float, float, float, float], columns: tuple[int, int]) -> None:
    image = np.arange(10 * 4 * 3, dtype=np.uint8).reshape(4, 10, 3)
    out, transform = _core.apply_roi(image, _core.Roi(bbox=bbox))
    np.testing.assert_array_equal(out, image[:, columns[0] : columns[1]])
    assert (transform.crop_x, transform.crop_width) == (columns[0], columns[1] - columns[0])


POLYGONS = [
    [(0.1, 0.1), (0.9, 0.2), (0.5, 0.8)],
    [(0.2, 0.3), (0.8, 0.3), (0.8, 0.6), (0.2, 0.6)],
    [(0.5, 0.0), (0.6, 0.4), (1.0, 0.45), (0.65, 0.6), (0.8, 1.0), (0.5, 0.7), (0.2, 1.0), (0.35, 0.6),
     (0.0, 0.45), (0.4, 0.4)],  # a concave star
    [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
    [(0.3, 0.3), (0.3004, 0.3), (0.3004, 0.3006)],  # smaller than a pixel: no centre inside
    [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)],  # edges through pixel boundaries
    [(0.5 + 0.5 / 768, 0.1), (0.9, 0.5 + 0.5 / 576), (0.1, 0.9)],  # vertices on pixel centres
    [(0.9, 0.9), (0.1, 0.9), (0.5, 0.1)],  # clockwise
]  # fmt: skip


@pytest.mark.parametrize("fill", [None, (0.0, 128.4, 255.0), (-20.0, 300.0, 17.5)])
@pytest.mark.parametrize("index", range(len(POLYGONS)))
def test_polygon_matches_fillpoly(dog: Array, index: int, fill: tuple[float, float, float] | None) -> None:
    points = POLYGONS[index]
    out, transform = _core.apply_roi(dog, _core.Roi(polygon=points), fill)
    expected, rect = polygon_reference(dog, points, fill)
    assert crop_of(transform) == rect
    np.testing.assert_array_equal(out, expected)
    assert not np.shares_memory(out, dog)
    assert out.flags.c_contiguous


@pytest.mark.parametrize("index", range(len(POLYGONS)))
def test_polygon_mask_agrees_with_fillpoly_away_from_the_outline(dog: Array, index: int) -> None:
    """cv2.fillPoly (OpenCV-Python's, another release than the core's) paints the same pixels, except some
    touching the outline, where rasterisation rules differ."""
    points = POLYGONS[index]
    out, transform = _core.apply_roi(dog, _core.Roi(polygon=points), (0, 0, 0))
    other, _ = _core.apply_roi(dog, _core.Roi(polygon=points), (1, 1, 1))
    inside_core = (out == other).all(axis=2)  # only the pixels outside take the fill colour
    x0, y0 = int(transform.crop_x), int(transform.crop_y)
    vertices = np.array([[(x * 768 - 0.5 - x0) * 256, (y * 576 - 0.5 - y0) * 256] for x, y in points])
    vertices = np.rint(vertices).astype(np.int32)
    painted = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(painted, [vertices], 255, lineType=cv2.LINE_8, shift=8)
    outline = np.zeros(out.shape[:2], np.uint8)
    cv2.polylines(outline, [vertices], True, 255, thickness=3, lineType=cv2.LINE_8, shift=8)
    differ = inside_core != (painted > 0)
    assert not (differ & (outline == 0)).any()
    assert differ.sum() <= 0.02 * painted.size + 4 * len(points)


def test_polygon_mean_fill_by_hand() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[:2, :2] = (10, 20, 30)
    image[2:, 2:] = (200, 100, 0)
    # Under the diagonal of the square: pixel centres (c + 0.5, r + 0.5) with r > c (the diagonal's own
    # centres are on the edge that ends each row's span: outside).
    out, _ = _core.apply_roi(image, _core.Roi(polygon=[(0.0, 0.0), (1.0, 1.0), (0.0, 1.0)]))
    inside = np.tril(np.ones((4, 4), bool), k=-1)
    expected_colour = np.floor(image[inside].mean(axis=0) + 0.5)
    np.testing.assert_array_equal(out[~inside], np.tile(expected_colour, (int((~inside).sum()), 1)))
    np.testing.assert_array_equal(out[inside], image[inside])


def framed(
    photo: Array, colour: tuple[int, int, int], noise: int, seed: int
) -> tuple[Array, tuple[int, int]]:
    """The photo on a uniform background with noise within +-noise; returns it and the photo's position."""
    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    canvas = np.empty((height + 70, width + 45, 3), np.int16)
    canvas[:] = colour
    if noise:
        canvas += rng.integers(-noise, noise + 1, canvas.shape, dtype=np.int16)
    canvas[0, 0] = colour  # the reference pixel itself
    canvas[30 : 30 + height, 20 : 20 + width] = photo
    return np.clip(canvas, 0, 255).astype(np.uint8), (20, 30)


@pytest.mark.parametrize(("noise", "tolerance"), [(0, 0), (5, 8), (8, 8), (12, 8), (3, 0)])
def test_trim_uniform_background(dog: Array, noise: int, tolerance: int) -> None:
    photo = dog[100:300, 200:500]
    image, _ = framed(photo, (240, 240, 235), noise, seed=noise * 31 + tolerance)
    out, transform = _core.apply_roi(
        image, _core.Roi(crop_uniform_background=True, uniform_tolerance=tolerance)
    )
    x, y, width, height = trim_reference(image, tolerance)
    assert crop_of(transform) == (x, y, width, height)
    np.testing.assert_array_equal(out, image[y : y + height, x : x + width])
    if noise <= tolerance:  # the frame goes, the photo stays (the photo has no border close to the frame)
        assert out.shape[:2] == (200, 300) or (x, y) != (0, 0)


def test_trim_never_trims_to_nothing() -> None:
    flat = np.full((7, 9, 3), 77, np.uint8)
    out, transform = _core.apply_roi(flat, _core.Roi(crop_uniform_background=True))
    assert out.shape == (7, 9, 3)
    assert crop_of(transform) == (0, 0, 9, 7)
    dot = flat.copy()
    dot[3, 8] = (77, 77, 200)
    out, transform = _core.apply_roi(dot, _core.Roi(crop_uniform_background=True))
    assert out.shape == (1, 1, 3)
    assert crop_of(transform) == (8, 3, 1, 1)


def test_trim_after_bbox_adds_offsets(dog: Array) -> None:
    image, (left, top) = framed(dog[50:250, 100:400], (0, 0, 0), 0, seed=1)
    roi = _core.Roi(bbox=(0.01, 0.05, 0.99, 0.97), crop_uniform_background=True, uniform_tolerance=3)
    out, transform = _core.apply_roi(image, roi)
    x0, _ = span(0.01, 0.99, image.shape[1])
    y0, y1 = span(0.05, 0.97, image.shape[0])
    x1 = span(0.01, 0.99, image.shape[1])[1]
    inner = image[y0:y1, x0:x1]
    x, y, width, height = trim_reference(inner, 3)
    assert crop_of(transform) == (x0 + x, y0 + y, width, height)
    np.testing.assert_array_equal(out, inner[y : y + height, x : x + width])
    assert (transform.image_width, transform.image_height) == (image.shape[1], image.shape[0])
    assert left > 0
    assert top > 0


def test_trim_after_polygon(dog: Array) -> None:
    points = [(0.2, 0.2), (0.7, 0.25), (0.45, 0.8)]
    roi = _core.Roi(polygon=points, crop_uniform_background=True, uniform_tolerance=0)
    out, transform = _core.apply_roi(dog, roi, (0, 0, 0))
    filled, (x0, y0, _, _) = polygon_reference(dog, points, (0, 0, 0))
    x, y, width, height = trim_reference(filled, 0)
    assert crop_of(transform) == (x0 + x, y0 + y, width, height)
    np.testing.assert_array_equal(out, filled[y : y + height, x : x + width])


NAN = float("nan")
INVALID = [
    ({"bbox": (NAN, 0.0, 1.0, 1.0)}, "bbox.xmin"),
    ({"bbox": (0.0, float("inf"), 1.0, 1.0)}, "bbox.ymin"),
    ({"bbox": (0.0, 0.0, 1.1, 1.0)}, "bbox.xmax"),
    ({"bbox": (0.0, 0.0, 1.0, -0.2)}, "bbox.ymax"),
    ({"bbox": (-0.1, 0.0, 1.0, 1.0)}, "bbox.xmin"),
    ({"bbox": (0.5, 0.0, 0.5, 1.0)}, "bbox.xmax"),  # empty
    ({"bbox": (0.6, 0.0, 0.5, 1.0)}, "bbox.xmax"),  # inverted
    ({"bbox": (0.0, 0.7, 1.0, 0.2)}, "bbox.ymax"),
    ({"polygon": [(0.1, 0.1), (0.5, 0.5)]}, "polygon"),
    ({"polygon": []}, "polygon"),
    ({"polygon": [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)]}, "polygon"),  # collinear: no area
    ({"polygon": [(0.1, 0.1), (0.1, 0.1), (0.1, 0.1), (0.1, 0.1)]}, "polygon"),
    ({"polygon": [(0.1, 0.1), (0.5, 0.1), (0.5, NAN)]}, "polygon[2].y"),
    ({"polygon": [(0.1, 0.1), (1.5, 0.1), (0.5, 0.5)]}, "polygon[1].x"),
    ({"bbox": (0.0, 0.0, 1.0, 1.0), "polygon": [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5)]}, "polygon"),
    ({"crop_uniform_background": True, "uniform_tolerance": 256}, "uniform_tolerance"),
    ({"uniform_tolerance": -1}, "uniform_tolerance"),
]


@pytest.mark.parametrize(("kwargs", "field"), INVALID)
def test_invalid_rois_name_their_field(dog: Array, kwargs: dict[str, object], field: str) -> None:
    # An explicit polygon with fewer than 3 points is refused by the constructor already.
    with pytest.raises(InvalidArgumentError) as caught:
        _core.validate_roi(_core.Roi(**kwargs))  # type: ignore[arg-type]
    assert caught.value.field == field
    if field != "polygon" or kwargs.get("polygon"):
        with pytest.raises(InvalidArgumentError):
            _core.apply_roi(dog, _core.Roi(**kwargs))  # type: ignore[arg-type]


def test_roi_attributes_round_trip() -> None:
    roi = _core.Roi(bbox=(0.1, 0.2, 0.3, 0.4), crop_uniform_background=True, uniform_tolerance=3)
    assert roi.bbox == pytest.approx((0.1, 0.2, 0.3, 0.4))
    assert roi.polygon == []
    roi.bbox = None
    roi.polygon = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert roi.bbox is None
    assert roi.polygon == [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert roi.crop_uniform_background
    assert roi.uniform_tolerance == 3
    _core.validate_roi(roi)
    assert "3 points" in repr(roi)


def test_apply_roi_checks_its_image(dog: Array) -> None:
    for bad in (dog.astype(np.float32), dog[:, :, 0], dog[:, :, :2], np.zeros((0, 5, 3), np.uint8)):
        with pytest.raises(InvalidArgumentError) as caught:
            _core.apply_roi(bad, _core.Roi())
        assert caught.value.field == "image"
    with pytest.raises(InvalidArgumentError) as caught:
        _core.apply_roi(dog, _core.Roi(polygon=POLYGONS[0]), (NAN, 0.0, 0.0))
    assert caught.value.field == "fill"


def test_strided_inputs(dog: Array) -> None:
    bbox = (0.1, 0.1, 0.6, 0.9)
    rows = dog[10:500]  # a row view: used in place
    out, _ = _core.apply_roi(rows, _core.Roi(bbox=bbox))
    x0, x1 = span(0.1, 0.6, 768)
    y0, y1 = span(0.1, 0.9, 490)
    np.testing.assert_array_equal(out, rows[y0:y1, x0:x1])
    assert np.shares_memory(out, dog)
    every_other = dog[:, ::2]  # pixels not packed: copied first
    out, _ = _core.apply_roi(every_other, _core.Roi(bbox=bbox))
    x0, x1 = span(0.1, 0.6, 384)
    y0, y1 = span(0.1, 0.9, 576)
    np.testing.assert_array_equal(out, every_other[y0:y1, x0:x1])
    bgr_reversed = dog[:, :, ::-1]
    out, _ = _core.apply_roi(bgr_reversed, _core.Roi())
    np.testing.assert_array_equal(out, bgr_reversed)


def test_result_outlives_the_input(dog: Array) -> None:
    image = dog.copy()
    out, _ = _core.apply_roi(image, _core.Roi(bbox=(0.0, 0.0, 0.5, 0.5)))
    expected = out.copy()
    del image
    np.testing.assert_array_equal(out, expected)
