"""EXIF orientation 1..8, applied the same way for every container that carries it.

The JPEG's APP1 segment is written here byte by byte (image_samples.with_jpeg_exif); the expected pixels are
the plain decode turned with NumPy, and the NumPy table itself is checked against Pillow's exif_transpose.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_samples import cv2_encode, photo, pillow_encode, with_jpeg_app1, with_jpeg_exif, with_png_exif
from numpy.typing import NDArray
from PIL import Image, ImageOps

from sightd import _core

Array = NDArray[np.uint8]

# What a viewer does to the stored pixels for each EXIF orientation (TIFF 6.0 / EXIF 2.3 definitions).
ORIENT: dict[int, Callable[[Array], Array]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transposed
    6: lambda a: np.rot90(a, -1),  # rotated 90 clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transversed
    8: lambda a: np.rot90(a, 1),  # rotated 90 counter-clockwise
}


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[274] = orientation
    return exif.tobytes()


@pytest.fixture(scope="module")
def small(darknet_data: Path) -> Array:
    return photo(darknet_data, "dog.jpg", (48, 32))


def test_the_numpy_table_agrees_with_pillow(small: Array) -> None:
    for orientation, turn in ORIENT.items():
        image = Image.fromarray(small[:, :, ::-1].copy())
        image.getexif()[274] = orientation
        pillow = np.asarray(ImageOps.exif_transpose(image))[:, :, ::-1]
        np.testing.assert_array_equal(turn(small), pillow, err_msg=str(orientation))


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_app1_orientation(darknet_data: Path, orientation: int, little_endian: bool) -> None:
    plain = (darknet_data / "dog.jpg").read_bytes()
    data = with_jpeg_exif(plain, orientation, little_endian)
    header = _core.read_image_header(data)
    assert header.orientation == orientation
    assert (header.width, header.height) == (768, 576)
    swapped = orientation >= 5
    assert (header.oriented_width, header.oriented_height) == ((576, 768) if swapped else (768, 576))
    expected = ORIENT[orientation](_core.decode_image(plain)[0])
    image, _ = _core.decode_image(data)
    np.testing.assert_array_equal(image, expected)
    assert image.flags.c_contiguous


def test_jpeg_orientation_against_pillow(darknet_data: Path) -> None:
    """Pillow (its own libjpeg) decoding the same bytes and applying the tag itself."""
    plain = (darknet_data / "dog.jpg").read_bytes()
    for orientation in range(1, 9):
        data = with_jpeg_exif(plain, orientation)
        pillow = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))[:, :, ::-1]
        image, _ = _core.decode_image(data)
        assert image.shape == pillow.shape
        assert np.abs(image.astype(int) - pillow).max() <= 1


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_reduced_decoding_counts_oriented_pixels(darknet_data: Path, orientation: int) -> None:
    data = with_jpeg_exif((darknet_data / "dog.jpg").read_bytes(), orientation)
    # 768 x 576 stored; as displayed 576 wide when rotated. min_width 100: 576 / 4 = 144 ok, / 8 = 72 not.
    image, reduction = _core.decode_image(data, min_width=100, min_height=0)
    rotated = orientation >= 5
    assert reduction == 4
    assert image.shape == ((192, 144, 3) if rotated else (144, 192, 3))
    image, reduction = _core.decode_image(data, min_width=150)
    assert reduction == (2 if rotated else 4)
    reduced, _ = _core.decode_image((darknet_data / "dog.jpg").read_bytes(), min_width=1, min_height=1)
    oriented, _ = _core.decode_image(data, min_width=1, min_height=1)
    np.testing.assert_array_equal(oriented, ORIENT[orientation](reduced))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_chunk(small: Array, orientation: int) -> None:
    data = with_png_exif(cv2_encode(".png", small), orientation)
    assert _core.read_image_header(data).orientation == orientation
    image, _ = _core.decode_image(data)
    np.testing.assert_array_equal(image, ORIENT[orientation](small))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_webp_exif_chunk(small: Array, orientation: int) -> None:
    rgb = Image.fromarray(small[:, :, ::-1].copy())
    data = pillow_encode(rgb, "WEBP", lossless=True, exif=exif_bytes(orientation))
    assert data[12:16] == b"VP8X"
    assert _core.read_image_header(data).orientation == orientation
    image, _ = _core.decode_image(data)
    np.testing.assert_array_equal(image, ORIENT[orientation](small))


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_tag(small: Array, orientation: int, deep: bool) -> None:
    """8-bit TIFFs go through libtiff's RGBA interface, which applies the tag itself, 16-bit ones do not:
    both must come out the same, turned once."""
    if deep:
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
        image = Image.fromarray(grey)
        stored = np.repeat(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2)
    else:
        image = Image.fromarray(small[:, :, ::-1].copy())
        stored = small
    data = pillow_encode(image, "TIFF", tiffinfo={274: orientation})
    header = _core.read_image_header(data)
    assert header.orientation == orientation
    decoded, _ = _core.decode_image(data)
    np.testing.assert_array_equal(decoded, ORIENT[orientation](stored))


def test_damaged_or_odd_exif_means_no_rotation(darknet_data: Path) -> None:
    plain = (darknet_data / "dog.jpg").read_bytes()
    expected, _ = _core.decode_image(plain)
    damaged = [
        with_jpeg_app1(plain, b"Exif\x00\x00II*\x00\xff\xff\xff\x7f"),  # IFD beyond the segment
        with_jpeg_app1(plain, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"),  # 65535 entries, none there
        with_jpeg_exif(plain, 0),
        with_jpeg_exif(plain, 9),
        with_jpeg_app1(plain, b"Exif\x00\x00"),
        with_jpeg_app1(plain, b"NotExif\x00" + bytes(40)),
    ]
    for data in damaged:
        assert _core.read_image_header(data).orientation == 1
        image, _ = _core.decode_image(data)
        np.testing.assert_array_equal(image, expected)


def test_first_exif_segment_wins(darknet_data: Path) -> None:
    plain = (darknet_data / "dog.jpg").read_bytes()
    data = with_jpeg_exif(with_jpeg_exif(plain, 3), 6)  # the APP1 added last comes first
    assert _core.read_image_header(data).orientation == 6
