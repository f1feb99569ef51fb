"""Decoding every format and layout, against independent references.

The reference decoder is OpenCV-Python's ``cv2.imdecode(IMREAD_UNCHANGED)`` (its own bundled codecs, not the
core's Debian OpenCV), followed by the conversions to 8-bit BGR written here in NumPy; lossless formats are
also compared with the pixels they were encoded from. JPEG and lossy WebP are allowed a difference of 1
(libjpeg-turbo 2.1 in the core against 3.x in the wheel); in practice both give the same pixels.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_samples import Sample, cv2_encode, photo, pillow_encode, png_chunk, samples
from numpy.typing import NDArray
from PIL import Image

from sightd import _core
from sightd.errors import ImageError, ImageTooLargeError, InvalidArgumentError

WHITE = (255, 255, 255)


def to_bgr8(
    raw: NDArray[np.generic], background: tuple[int, int, int] = WHITE, premultiplied: bool = False
) -> NDArray[np.uint8]:
    """The documented conversions, in NumPy: 16 bits -> round(v / 257), float -> round(v * 255) clamped,
    grey -> 3 equal channels, alpha -> composited over the (B, G, R) background."""
    if raw.dtype == np.uint16:
        raw = np.floor(raw / 257.0 + 0.5).astype(np.uint8)
    elif raw.dtype == np.float32:
        raw = np.clip(np.rint(np.nan_to_num(raw) * np.float32(255)), 0, 255).astype(np.uint8)
    if raw.ndim == 2:
        raw = raw[:, :, None]
    if raw.shape[2] in (2, 4):
        alpha = raw[:, :, -1:].astype(np.float64)
        colour = raw[:, :, :-1].astype(np.float64)
        colour = np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour
        under = np.array(background, np.float64) * (255 - alpha) / 255
        blended = colour + np.floor(under + 0.5) if premultiplied else colour * alpha / 255 + under
        raw = np.minimum(np.floor(blended + 0.5), 255).astype(np.uint8)
    if raw.shape[2] == 1:
        raw = np.repeat(raw, 3, axis=2)
    return np.asarray(raw, np.uint8)


def cv2_reference(
    data: bytes, background: tuple[int, int, int] = WHITE, premultiplied: bool = False
) -> NDArray[np.uint8]:
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw is not None
    return to_bgr8(raw, background, premultiplied)


# libtiff's RGBA interface (OpenCV's 8-bit TIFF path) multiplies unassociated alpha into the colours.
PREMULTIPLIED = {"rgba.tiff"}
EXPECTED_LAYOUT = {  # channels, bit depth as the header reports them
    "grey.jpg": (1, 8), "grey.png": (1, 8), "rgba.png": (4, 8), "rgb16.png": (3, 16), "grey16.png": (1, 16),
    "grey_alpha.png": (2, 8), "palette.png": (3, 8), "bilevel.png": (1, 1), "grey.bmp": (1, 8),
    "lossless_alpha.webp": (4, 8), "lossy_alpha.webp": (4, 8), "rgb16.tiff": (3, 16), "rgba.tiff": (4, 8),
    "float.tiff": (3, 32), "grey.pgm": (1, 8), "grey16.pgm": (1, 16), "bilevel.pbm": (1, 1),
    "ascii.pgm": (1, 8), "ascii.pbm": (1, 1),
}  # fmt: skip
FORMATS = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP", "tiff": "TIFF"}


@pytest.fixture(scope="module")
def encoded(darknet_data: Path) -> dict[str, Sample]:
    return {s.name: s for s in samples(photo(darknet_data, "dog.jpg", (192, 144)))}


def sample_names() -> list[str]:
    return [s.name for s in samples(np.zeros((4, 4, 3), np.uint8))]


@pytest.mark.parametrize("name", sample_names())
def test_every_format_matches_the_reference(encoded: dict[str, Sample], name: str) -> None:
    sample = encoded[name]
    background = (30, 140, 250)
    premultiplied = name in PREMULTIPLIED
    image, reduction = _core.decode_image(sample.data, background=background)
    assert reduction == 1
    assert image.dtype == np.uint8
    assert image.shape == (144, 192, 3)
    assert image.flags.c_contiguous
    reference = cv2_reference(sample.data, background, premultiplied)
    if sample.lossless:
        np.testing.assert_array_equal(image, reference)
        if premultiplied:
            alpha = sample.source[:, :, 3:].astype(np.int64)
            source = np.dstack([(sample.source[:, :, :3] * alpha + 127) // 255, alpha]).astype(np.uint8)
        else:
            source = sample.source
        np.testing.assert_array_equal(image, to_bgr8(source, background, premultiplied))
    else:
        assert np.abs(image.astype(int) - reference).max() <= 1


@pytest.mark.parametrize("name", sample_names())
def test_header_reports_the_stored_layout(encoded: dict[str, Sample], name: str) -> None:
    header = _core.read_image_header(encoded[name].data)
    raw = cv2.imdecode(np.frombuffer(encoded[name].data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert (header.width, header.height) == (raw.shape[1], raw.shape[0]) == (192, 144)
    assert header.orientation == 1
    assert (header.channels, header.bit_depth) == EXPECTED_LAYOUT.get(name, (3, 8))
    extension = name.rsplit(".", 1)[1]
    assert header.format == getattr(_core.ImageFormat, FORMATS.get(extension, "PNM"))


def real_photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png"))


def test_real_photos_match_the_reference(darknet_data: Path, skimage_data: Path) -> None:
    """Every photo of both packages, as shipped (RGBA, 16-bit, grey, palette PNGs and real JPEGs)."""
    checked = 0
    for path in real_photos(darknet_data) + real_photos(skimage_data):
        data = path.read_bytes()
        header = _core.read_image_header(data)
        image, _ = _core.decode_image(data)
        reference = cv2_reference(data)
        assert image.shape == reference.shape == (header.height, header.width, 3), path.name
        tolerance = 1 if path.suffix == ".jpg" else 0
        assert np.abs(image.astype(int) - reference).max() <= tolerance, path.name
        checked += 1
    assert checked >= 30


def test_cmyk_jpeg_becomes_bgr() -> None:
    rng = np.random.default_rng(3)
    cmyk = Image.fromarray(rng.integers(0, 256, (24, 32, 4), np.uint8), "CMYK")
    data = pillow_encode(cmyk, "JPEG", quality=95)
    header = _core.read_image_header(data)
    assert (header.channels, header.width, header.height) == (3, 32, 24)
    image, _ = _core.decode_image(data)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(image.astype(int) - reference).max() <= 1


def test_unsupported_sample_types_are_clear_errors() -> None:
    for dtype, words in ((np.int16, "signed integer"), (np.float64, "floating-point")):
        data = cv2_encode(".tiff", np.zeros((4, 5, 3), dtype))
        with pytest.raises(ImageError, match=words):
            _core.decode_image(data)


def test_float_tiff_is_clamped_and_nan_is_black() -> None:
    values = np.array([[[-0.5, 0.0, 0.2], [0.5, 1.0, 7.0], [np.nan, 1 / 255, 254.6 / 255]]], np.float32)
    image, _ = _core.decode_image(cv2_encode(".tiff", values))
    np.testing.assert_array_equal(image, [[[0, 0, 51], [128, 255, 255], [0, 1, 255]]])


def test_alpha_over_the_background() -> None:
    pixels = np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [200, 100, 0, 128]]], np.uint8)
    data = cv2_encode(".png", pixels)
    image, _ = _core.decode_image(data, background=(0, 50, 255))
    # By hand: clear -> background; opaque -> colour; half -> round((c * 128 + b * 127) / 255).
    np.testing.assert_array_equal(image, [[[0, 50, 255], [10, 20, 30], [100, 75, 127]]])
    default, _ = _core.decode_image(data)
    np.testing.assert_array_equal(default[0, 0], [255, 255, 255])


def test_bytes_like_inputs_are_accepted_without_copy(encoded: dict[str, Sample]) -> None:
    data = encoded["rgb.png"].data
    expected, _ = _core.decode_image(data)
    padded = b"xx" + data + b"yy"
    for view in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8), memoryview(padded)[2:-2]):
        image, _ = _core.decode_image(view)
        np.testing.assert_array_equal(image, expected)
        assert _core.read_image_header(view).width == 192
    with pytest.raises(TypeError, match="bytes-like"):
        _core.decode_image(memoryview(padded)[::2])
    with pytest.raises(TypeError, match="bytes-like"):
        _core.decode_image("not bytes")  # type: ignore[arg-type]


def test_concurrent_decoding_gives_the_same_pixels(encoded: dict[str, Sample]) -> None:
    """The GIL is released while decoding: threads decode at once, each getting its own correct image."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["baseline.jpg", "rgb.png", "lossy.webp", "rgb16.tiff", "rgba.png", "rgb.bmp"] * 4
    expected = {name: _core.decode_image(encoded[name].data)[0] for name in set(names)}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda name: _core.decode_image(encoded[name].data)[0], names))
    for name, image in zip(names, results, strict=True):
        np.testing.assert_array_equal(image, expected[name])


def test_invalid_arguments_name_their_field(encoded: dict[str, Sample]) -> None:
    data = encoded["rgb.png"].data
    cases = [
        ({"background": (0, 0, 256)}, "background"),
        ({"background": (-1, 0, 0)}, "background"),
        ({"min_width": -1}, "min_width"),
        ({"min_height": -5}, "min_height"),
        ({"max_pixels": 0}, "max_pixels"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidArgumentError) as caught:
            _core.decode_image(data, **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field


def test_empty_and_unknown_data_are_image_errors() -> None:
    with pytest.raises(ImageError, match="empty"):
        _core.decode_image(b"")
    with pytest.raises(ImageError, match="unrecognised image format"):
        _core.read_image_header(b"GIF89a" + bytes(100))


# --- pixel limit (decompression bombs) -----------------------------------------------------------------


def test_pixel_limit_is_exact(darknet_data: Path) -> None:
    data = (darknet_data / "dog.jpg").read_bytes()
    pixels = 768 * 576
    image, _ = _core.decode_image(data, max_pixels=pixels)
    assert image.shape == (576, 768, 3)
    with pytest.raises(ImageTooLargeError, match="768x576") as caught:
        _core.decode_image(data, max_pixels=pixels - 1)
    assert caught.value.code == "IMAGE_TOO_LARGE"
    header = _core.read_image_header(data)
    _core.check_pixel_limit(header, pixels)
    with pytest.raises(ImageTooLargeError):
        _core.check_pixel_limit(header, pixels - 1)


def bombs(encoded: dict[str, Sample]) -> dict[str, bytes]:
    """Tiny files whose headers claim 60000 x 60000 pixels (10.8 GB of BGR)."""
    png = encoded["rgb.png"].data
    bmp = encoded["rgb.bmp"].data
    jpeg = encoded["baseline.jpg"].data
    sof = jpeg.index(b"\xff\xc0")
    webp = encoded["lossy_alpha.webp"].data
    return {
        "png": png[:16] + (60000).to_bytes(4, "big") * 2 + png[24:33] + png_chunk(b"IEND", b""),
        "jpeg": jpeg[: sof + 5] + (60000).to_bytes(2, "big") * 2 + jpeg[sof + 9 : sof + 600],
        "bmp": bmp[:18] + (60000).to_bytes(4, "little") * 2 + bmp[26:200],
        "webp": webp[:24] + (59999).to_bytes(3, "little") * 2 + webp[30:],
        "pnm": b"P6\n60000 60000\n255\n" + bytes(300),
        "tiff": b"II*\x00\x08\x00\x00\x00\x02\x00"
        + b"\x00\x01\x04\x00\x01\x00\x00\x00\x60\xea\x00\x00"
        + b"\x01\x01\x04\x00\x01\x00\x00\x00\x60\xea\x00\x00"
        + bytes(4),
    }


def test_bombs_are_refused_from_the_header(encoded: dict[str, Sample]) -> None:
    for name, data in bombs(encoded).items():
        assert len(data) < 10_000
        header = _core.read_image_header(data)
        assert (header.width, header.height) == (60000, 60000), name
        with pytest.raises(ImageTooLargeError, match="60000x60000"):
            _core.decode_image(data)


BOMB_WORKER = r"""
import resource, sys
from sightd import _core, errors
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# 2 GiB of address space more than now: a decoder that allocated the announced 10.8 GB would fail here
# with something other than ImageTooLargeError.
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
import os
used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (used + 2 * 1024**3, hard))
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    for _ in range(20):
        try:
            _core.decode_image(data)
        except errors.ImageTooLargeError:
            pass
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024)
"""


def test_bombs_allocate_nothing(encoded: dict[str, Sample], tmp_path: Path) -> None:
    paths = []
    for name, data in bombs(encoded).items():
        path = tmp_path / f"bomb.{name}"
        path.write_bytes(data)
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, "-c", BOMB_WORKER, *paths], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) < 32  # MiB of peak resident memory added by 120 refusals


# --- reduced JPEG decoding -----------------------------------------------------------------------------


def expected_reduction(width: int, height: int, min_width: int, min_height: int) -> int:
    if min_width <= 0 and min_height <= 0:
        return 1
    for reduction in (8, 4, 2):
        if -(-width // reduction) >= min_width and -(-height // reduction) >= min_height:
            return reduction
    return 1


@pytest.mark.parametrize(
    ("photo_name", "min_size"),
    [("dog.jpg", (0, 0)), ("dog.jpg", (96, 72)), ("dog.jpg", (97, 72)), ("dog.jpg", (200, 0)),
     ("dog.jpg", (0, 145)), ("dog.jpg", (300, 300)), ("dog.jpg", (1000, 10)), ("dog.jpg", (1, 1))],
)  # fmt: skip
def test_reduced_decoding_sizes(darknet_data: Path, photo_name: str, min_size: tuple[int, int]) -> None:
    data = (darknet_data / photo_name).read_bytes()
    image, reduction = _core.decode_image(data, min_width=min_size[0], min_height=min_size[1])
    assert reduction == expected_reduction(768, 576, *min_size)
    assert image.shape == (-(-576 // reduction), -(-768 // reduction), 3)
    assert image.shape[1] >= min_size[0] or reduction == 1
    assert image.shape[0] >= min_size[1] or reduction == 1


@pytest.mark.parametrize("name", ["hubble_deep_field.jpg", "retina.jpg", "rocket.jpg"])
def test_reduced_decoding_is_close_to_an_area_resize(skimage_data: Path, name: str) -> None:
    data = (skimage_data / name).read_bytes()
    full, _ = _core.decode_image(data)
    for reduction, minimum in ((2, full.shape[0] // 2 - 1), (4, full.shape[0] // 4 - 1), (8, 1)):
        image, got = _core.decode_image(data, min_height=minimum)
        assert got == reduction
        height, width = -(-full.shape[0] // reduction), -(-full.shape[1] // reduction)
        assert image.shape == (height, width, 3)
        # libjpeg's own reduced decoding (the wheel's codec) as reference: the same DCT scaling.
        flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
        reference = cv2.imdecode(np.frombuffer(data, np.uint8), flag[reduction])
        assert np.abs(image.astype(int) - reference).max() <= 1
        # And close to the full decode shrunk with INTER_AREA (DCT scaling is a different low-pass filter).
        area = cv2.resize(full, (width, height), interpolation=cv2.INTER_AREA)
        difference = np.abs(image.astype(float) - area)
        assert difference.mean() < 2.5, (name, reduction, difference.mean())


def test_reduction_only_applies_to_jpeg(encoded: dict[str, Sample]) -> None:
    for name in ("rgb.png", "lossy.webp", "rgb.bmp", "rgb.tiff", "rgb.ppm"):
        image, reduction = _core.decode_image(encoded[name].data, min_width=1, min_height=1)
        assert reduction == 1
        assert image.shape == (144, 192, 3)


def test_header_of_a_progressive_and_a_grey_jpeg(encoded: dict[str, Sample]) -> None:
    for name in ("progressive.jpg", "grey.jpg"):
        image, reduction = _core.decode_image(encoded[name].data, min_width=48)
        assert reduction == 4
        assert image.shape == (36, 48, 3)


def test_header_does_not_need_the_pixel_data(encoded: dict[str, Sample]) -> None:
    """read_image_header needs only the first bytes (a prefix of the file, as a client may stream it)."""
    prefixes = {"baseline.jpg": 700, "rgb.png": 33, "rgb.bmp": 54, "lossy.webp": 30, "rgb.tiff": None,
                "rgb.ppm": 16}  # fmt: skip
    for name, size in prefixes.items():
        data = encoded[name].data
        header = _core.read_image_header(data if size is None else data[:size])
        assert (header.width, header.height) == (192, 144), name


def test_grey_alpha_tiff_loses_its_alpha_as_documented() -> None:
    grey_alpha = np.dstack([np.full((4, 6), 200, np.uint8), np.full((4, 6), 0, np.uint8)])
    data = pillow_encode(Image.fromarray(grey_alpha, "LA"), "TIFF")
    image, _ = _core.decode_image(data, background=(0, 0, 0))
    assert (image == 200).all()  # OpenCV 4.6 drops a TIFF's grey + alpha extra sample (docs/images.md)


def test_pillow_png_with_transparency_key(darknet_data: Path) -> None:
    """A palette PNG with a tRNS chunk has alpha: clear entries become the background."""
    pixels = np.zeros((8, 8), np.uint8)
    pixels[2:6, 2:6] = 1
    image = Image.fromarray(pixels, "P")
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0)
    header = _core.read_image_header(out.getvalue())
    assert header.channels == 4
    decoded, _ = _core.decode_image(out.getvalue(), background=(0, 255, 0))
    assert (decoded[0, 0] == [0, 255, 0]).all()  # clear palette entry 0 -> background
    assert (decoded[3, 3] == [255, 0, 0]).all()  # opaque blue (BGR)
