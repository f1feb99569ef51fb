"""Real photos encoded by the tests in every format and sample layout the core decodes.

Encoders are OpenCV-Python (``cv2.imencode``) and Pillow, never the code under test. Each sample records the
pixels it was encoded from, so lossless formats are checked against them exactly, and a hand-written PNM
encoder covers the ASCII variants that neither library writes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

U8 = NDArray[np.uint8]


@dataclass(frozen=True)
class Sample:
    name: str  # also a file name: the extension is the format's
    data: bytes
    source: NDArray[np.generic]  # the pixels encoded, as stored (BGR/BGRA/grey, 8 or 16 bits, float)
    lossless: bool


def photo(folder: Path, name: str, size: tuple[int, int] | None = None) -> U8:
    """A real photo as 8-bit BGR, shrunk with INTER_AREA to (width, height) when given."""
    bgr = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    if size is not None:
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr)


def cv2_encode(extension: str, pixels: NDArray[np.generic], params: list[int] | None = None) -> bytes:
    ok, encoded = cv2.imencode(extension, pixels, params or [])
    assert ok, extension
    return encoded.tobytes()


def pillow_encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def ascii_pnm(pixels: NDArray[np.generic], maxval: int) -> bytes:
    """P1 (maxval 1, 1 = black), P2 (grey) or P3 (colour, pixels in BGR) with comments and ragged lines."""
    if maxval == 1:
        magic, values = "P1", (pixels == 0).astype(np.uint8).reshape(-1)
    elif pixels.ndim == 2:
        magic, values = "P2", pixels.reshape(-1)
    else:
        magic, values = "P3", pixels[:, :, ::-1].reshape(-1)
    height, width = pixels.shape[:2]
    header = f"{magic}\n# written by the sightd tests\n{width} {height}\n"
    if maxval != 1:
        header += f"{maxval}\n"
    lines = [" ".join(str(int(v)) for v in values[i : i + 17]) for i in range(0, values.size, 17)]
    return (header + "\n".join(lines) + "\n").encode()


def bgra(bgr: U8) -> U8:
    """The photo with a real-looking alpha channel: a radial fade, fully opaque and fully clear parts."""
    height, width = bgr.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot((x - width / 2) / width, (y - height / 2) / height)
    alpha = np.clip(255 - (distance - 0.15) * 900, 0, 255).astype(np.uint8)
    return np.dstack([bgr, alpha])


def samples(bgr: U8) -> list[Sample]:
    """Every format and layout, encoded from one 8-bit BGR photo."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    with_alpha = bgra(bgr)
    # Every low byte value, so that the 16 -> 8 bit rounding is exercised, not only multiples of 257.
    deep = bgr.astype(np.uint16) * 256 + np.arange(bgr.size, dtype=np.uint16).reshape(bgr.shape) % 256
    deep_grey = grey.astype(np.uint16) * 251
    floats = (bgr.astype(np.float32) / 255.0).astype(np.float32)
    rgb_image = Image.fromarray(bgr[:, :, ::-1].copy())
    rgba_image = Image.fromarray(with_alpha[:, :, [2, 1, 0, 3]].copy())
    grey_image = Image.fromarray(grey)
    bits = grey > 127
    palette = rgb_image.quantize(64)

    return [
        Sample("baseline.jpg", cv2_encode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90]), bgr, False),
        Sample(
            "progressive.jpg",
            cv2_encode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, 85]),
            bgr,
            False,
        ),
        Sample("grey.jpg", cv2_encode(".jpg", grey), grey, False),
        Sample("rgb.png", cv2_encode(".png", bgr), bgr, True),
        Sample("grey.png", cv2_encode(".png", grey), grey, True),
        Sample("rgba.png", cv2_encode(".png", with_alpha), with_alpha, True),
        Sample("rgb16.png", cv2_encode(".png", deep), deep, True),
        Sample("grey16.png", cv2_encode(".png", deep_grey), deep_grey, True),
        Sample(
            "grey_alpha.png",
            pillow_encode(Image.fromarray(np.dstack([grey, with_alpha[:, :, 3]]), "LA"), "PNG"),
            np.dstack([grey, with_alpha[:, :, 3]]),
            True,
        ),
        Sample(
            "palette.png", pillow_encode(palette, "PNG"), np.asarray(palette.convert("RGB"))[:, :, ::-1], True
        ),
        Sample("bilevel.png", pillow_encode(Image.fromarray(bits), "PNG"), bits.astype(np.uint8) * 255, True),
        Sample("rgb.bmp", cv2_encode(".bmp", bgr), bgr, True),
        Sample("grey.bmp", pillow_encode(grey_image, "BMP"), grey, True),
        Sample("lossless.webp", pillow_encode(rgb_image, "WEBP", lossless=True), bgr, True),
        Sample(
            "lossless_alpha.webp",
            pillow_encode(rgba_image, "WEBP", lossless=True, exact=True),
            with_alpha,
            True,
        ),
        Sample("lossy.webp", cv2_encode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 80]), bgr, False),
        Sample("lossy_alpha.webp", pillow_encode(rgba_image, "WEBP", quality=80), with_alpha, False),
        Sample("rgb.tiff", cv2_encode(".tiff", bgr), bgr, True),
        Sample("rgb_raw.tiff", pillow_encode(rgb_image, "TIFF"), bgr, True),
        Sample("rgb16.tiff", cv2_encode(".tiff", deep), deep, True),
        Sample("rgba.tiff", pillow_encode(rgba_image, "TIFF", compression="tiff_deflate"), with_alpha, True),
        Sample("float.tiff", cv2_encode(".tiff", floats), floats, True),
        Sample("grey.pgm", cv2_encode(".pgm", grey), grey, True),
        Sample("grey16.pgm", cv2_encode(".pgm", deep_grey), deep_grey, True),
        Sample("rgb.ppm", cv2_encode(".ppm", bgr), bgr, True),
        Sample("bilevel.pbm", pillow_encode(Image.fromarray(bits), "PPM"), bits.astype(np.uint8) * 255, True),
        Sample("ascii.pgm", ascii_pnm(grey, 255), grey, True),
        Sample("ascii.ppm", ascii_pnm(bgr, 255), bgr, True),
        Sample("ascii.pbm", ascii_pnm(bits.astype(np.uint8) * 255, 1), bits.astype(np.uint8) * 255, True),
    ]


# --- EXIF, written byte by byte -------------------------------------------------------------------------


def exif_tiff(orientation: int, little_endian: bool = True) -> bytes:
    """A TIFF-structured EXIF block: IFD0 with one Orientation entry (SHORT), no next IFD."""
    order = "<" if little_endian else ">"
    head = (b"II" if little_endian else b"MM") + struct.pack(order + "HI", 42, 8)
    ifd = struct.pack(order + "H", 1) + struct.pack(order + "HHIHH", 274, 3, 1, orientation, 0)
    return head + ifd + struct.pack(order + "I", 0)


def with_jpeg_app1(jpeg: bytes, payload: bytes) -> bytes:
    """The JPEG with an APP1 segment (FFE1, big-endian length including itself) right after SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def with_jpeg_exif(jpeg: bytes, orientation: int, little_endian: bool = True) -> bytes:
    return with_jpeg_app1(jpeg, b"Exif\x00\x00" + exif_tiff(orientation, little_endian))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def with_png_exif(png: bytes, orientation: int) -> bytes:
    """The PNG with an eXIf chunk after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + png_chunk(b"eXIf", exif_tiff(orientation, little_endian=False)) + png[33:]
