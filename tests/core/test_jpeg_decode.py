"""The core's own JPEG decoder (libjpeg-turbo's API, cpp/src/jpeg_decode.cpp) against OpenCV-Python's.

Encoders are OpenCV-Python and Pillow; the reference decoder is the wheel's ``cv2.imdecode`` (its own
libjpeg-turbo 3.x, same integer IDCT and upsampling), including its ``IMREAD_REDUCED_COLOR_*`` sizes and
pixels. The two libjpeg-turbo versions give identical pixels on every variant here, so the comparisons are
exact (the wheel is pinned in requirements/dev.lock).
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_samples import cv2_encode, photo, pillow_encode
from numpy.typing import NDArray
from PIL import Image

from sightd import _core
from sightd.errors import ImageError

REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
           8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip
# cv2's IMWRITE_JPEG_SAMPLING_FACTOR values: luma's horizontal and vertical factors, then chroma's (1, 1).
SAMPLING = {"444": 0x111111, "422": 0x211111, "420": 0x221111, "411": 0x411111, "440": 0x121111}


@pytest.fixture(scope="module")
def odd_photo(darknet_data: Path) -> NDArray[np.uint8]:
    """A real photo at a size no reduction divides, so that every reduced size is a rounded-up one."""
    return photo(darknet_data, "dog.jpg", (203, 149))


def variants(bgr: NDArray[np.uint8]) -> dict[str, bytes]:
    quality = [cv2.IMWRITE_JPEG_QUALITY, 92]
    out = {
        f"sampling-{name}": cv2_encode(".jpg", bgr, [*quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor])
        for name, factor in SAMPLING.items()
    }
    out["progressive"] = cv2_encode(".jpg", bgr, [*quality, cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    out["optimized"] = cv2_encode(".jpg", bgr, [*quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    out["restarts"] = cv2_encode(".jpg", bgr, [*quality, cv2.IMWRITE_JPEG_RST_INTERVAL, 3])
    out["grey"] = cv2_encode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), quality)
    out["grey-progressive"] = pillow_encode(
        Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)), "JPEG", quality=90, progressive=True
    )
    rgb = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    out["pillow-progressive-420"] = pillow_encode(rgb, "JPEG", quality=75, progressive=True, subsampling=2)
    out["cmyk"] = pillow_encode(rgb.convert("CMYK"), "JPEG", quality=95)
    return out


def names() -> list[str]:
    return list(variants(np.zeros((16, 16, 3), np.uint8)))


def reference(data: bytes, reduction: int) -> NDArray[np.uint8]:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[reduction])
    assert decoded is not None
    return np.asarray(decoded, np.uint8)


@pytest.mark.parametrize("name", names())
def test_variants_and_reductions_match_opencv(odd_photo: NDArray[np.uint8], name: str) -> None:
    data = variants(odd_photo)[name]
    for reduction, minimum in ((1, 0), (2, 75), (4, 38), (8, 1)):
        image, got = _core.decode_image(data, min_height=minimum)
        assert got == reduction, (name, minimum)
        expected = reference(data, reduction)
        # OpenCV's IMREAD_REDUCED_* size, which is ceil(size / reduction).
        assert image.shape == expected.shape == (-(-149 // reduction), -(-203 // reduction), 3), name
        assert image.flags.c_contiguous
        np.testing.assert_array_equal(image, expected, err_msg=f"{name} at 1/{reduction}")


def adobe_transform_offset(jpeg: bytes) -> int:
    """Offset of the colour-transform byte of the APP14 "Adobe" segment (0 CMYK, 1 YCbCr, 2 YCCK)."""
    at = jpeg.index(b"\xff\xee")
    assert jpeg[at + 4 : at + 9] == b"Adobe"
    return at + 4 + 11


def test_ycck_jpeg_matches_opencv(odd_photo: NDArray[np.uint8]) -> None:
    """A YCCK file: Pillow's CMYK JPEG with its Adobe transform flag set to 2, so that libjpeg reads the same
    coefficients as Y, Cb, Cr, K and converts them (a different image, decoded alike by both libraries)."""
    cmyk = variants(odd_photo)["cmyk"]
    at = adobe_transform_offset(cmyk)
    assert cmyk[at] == 0
    ycck = cmyk[:at] + b"\x02" + cmyk[at + 1 :]
    image, _ = _core.decode_image(ycck)
    np.testing.assert_array_equal(image, reference(ycck, 1))
    as_cmyk, _ = _core.decode_image(cmyk)
    assert np.abs(image.astype(int) - as_cmyk).mean() > 10  # the flag was read: another colour space


def without_huffman_tables(jpeg: bytes) -> bytes:
    """The JPEG with its DHT segments removed, as Motion-JPEG frames are sent (standard tables implied)."""
    out, pos = bytearray(jpeg[:2]), 2
    while jpeg[pos + 1] != 0xDA:
        length = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        if jpeg[pos + 1] != 0xC4:
            out += jpeg[pos : pos + 2 + length]
        pos += 2 + length
    return bytes(out + jpeg[pos:])


def test_motion_jpeg_frame_without_huffman_tables(odd_photo: NDArray[np.uint8]) -> None:
    complete = cv2_encode(".jpg", odd_photo, [cv2.IMWRITE_JPEG_QUALITY, 90])  # libjpeg's standard tables
    frame = without_huffman_tables(complete)
    assert b"\xff\xc4" not in frame[: frame.index(b"\xff\xda")]
    image, _ = _core.decode_image(frame)
    np.testing.assert_array_equal(image, _core.decode_image(complete)[0])
    np.testing.assert_array_equal(image, reference(frame, 1))


def test_data_running_out_inside_a_complete_file_is_an_error(odd_photo: NDArray[np.uint8]) -> None:
    """A header announcing more rows than the entropy-coded data holds: libjpeg fills the rest with grey."""
    data = cv2_encode(".jpg", odd_photo)
    frame = data.index(b"\xff\xc0")
    taller = data[: frame + 5] + struct.pack(">H", 400) + data[frame + 7 :]
    assert cv2.imdecode(np.frombuffer(taller, np.uint8), cv2.IMREAD_COLOR).shape == (400, 203, 3)
    for minimum in (0, 1):
        with pytest.raises(ImageError, match="runs out before the image is complete"):
            _core.decode_image(taller, min_width=minimum)


WARNING_WORKER = r"""
import sys
from sightd import _core
image, _ = _core.decode_image(sys.stdin.buffer.read())
print(image.shape[0], image.shape[1], int(image.sum()))
"""


def test_extraneous_bytes_decode_silently(odd_photo: NDArray[np.uint8]) -> None:
    """Junk before the end-of-image marker is a libjpeg warning, not damage: the image decodes as without it,
    and nothing is printed (libjpeg's default prints "Corrupt JPEG data: ... extraneous bytes")."""
    data = cv2_encode(".jpg", odd_photo)
    assert data.endswith(b"\xff\xd9")
    junk = data[:-2] + b"\x12\x34\x56" + data[-2:]
    clean, _ = _core.decode_image(data)
    image, _ = _core.decode_image(junk)
    np.testing.assert_array_equal(image, clean)
    done = subprocess.run(
        [sys.executable, "-c", WARNING_WORKER], input=junk, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.split() == [b"149", b"203", str(int(clean.sum())).encode()]


def test_libjpeg_errors_are_image_errors(odd_photo: NDArray[np.uint8]) -> None:
    data = cv2_encode(".jpg", odd_photo)
    scan = data.index(b"\xff\xda")
    # A scan naming a component that the frame does not have: libjpeg's error_exit, reported with its words.
    bad_component = data[: scan + 5] + b"\x09" + data[scan + 6 :]
    with pytest.raises(ImageError, match="could not decode the JPEG image: Invalid component ID 9 in SOS"):
        _core.decode_image(bad_component)
    # A Huffman table with more codes than it has room for.
    table = data.index(b"\xff\xc4")
    bad_table = data[: table + 5] + b"\xff" * 16 + data[table + 21 :]
    with pytest.raises(ImageError, match="could not decode the JPEG image: Bogus Huffman table definition"):
        _core.decode_image(bad_table)
