"""A seeded corpus of hostile image files: empty, truncated, bit-flipped, corrupt and oversized.

Each case says what the core must do with it: raise ImageError (``error``), raise ImageTooLargeError
(``too_large``), decode (``ok``: damage confined to metadata the decoder must shrug off), or either decode
or raise ImageError (``any``: random damage may leave a valid image). Whatever the case, nothing else may
happen: no other exception, no crash, no hang.

Importable by tests/core/test_corrupt_images.py, and runnable as ``python tests/core/corrupt_corpus.py
FOLDER``, which writes every case into FOLDER for `make asan` (build-asan/decode_check FOLDER).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_samples import (
    Sample,
    exif_tiff,
    photo,
    pillow_encode,
    png_chunk,
    samples,
    with_jpeg_app1,
)

ERROR = "error"
TOO_LARGE = "too_large"
OK = "ok"
ANY = "any"

SEED = 20240611
HUGE = 60000  # 60000 x 60000 = 3.6e9 pixels: over any sane limit, and 10.8 GB as BGR


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: str


def _stem(sample: Sample) -> str:
    return sample.name.replace(".", "_")


def _ext(sample: Sample) -> str:
    return sample.name.rsplit(".", 1)[1]


# --- mutations of valid files ------------------------------------------------------------------------


def truncations(sample: Sample) -> list[Case]:
    """Prefixes cut in the header, in the middle of the data and in the last bytes."""
    n = len(sample.data)
    cuts = {1, 2, 3, 5, 8, 13, 21, 34, 55, n // 8, n // 4, n // 2, 3 * n // 4, n - 16, n - 2, n - 1}
    cases = []
    for cut in sorted(c for c in cuts if 0 < c < n):
        # An ASCII PNM cut inside its last number or its final newline still holds a complete image.
        expect = ANY if sample.name.startswith("ascii") and cut >= n - 4 else ERROR
        cases.append(Case(f"{_stem(sample)}-cut{cut:06d}.{_ext(sample)}", sample.data[:cut], expect))
    return cases


def bit_flips(sample: Sample, rng: np.random.Generator) -> list[Case]:
    """Random bit flips: anywhere (1 or 8 bits), and concentrated in the first 64 bytes (the header)."""
    cases = []
    variants = [("flip1", 1, len(sample.data))] * 4 + [("flip8", 8, len(sample.data))] * 3
    variants += [("hdrflip", 2, min(64, len(sample.data)))] * 4
    for index, (kind, count, span) in enumerate(variants):
        data = bytearray(sample.data)
        for position in rng.integers(0, span, count):
            data[position] ^= 1 << int(rng.integers(0, 8))
        cases.append(Case(f"{_stem(sample)}-{kind}-{index:02d}.{_ext(sample)}", bytes(data), ANY))
    for index in range(3):  # whole header bytes replaced by random values
        data = bytearray(sample.data)
        for position in rng.integers(2, min(40, len(data)), 4):
            data[position] = int(rng.integers(0, 256))
        cases.append(Case(f"{_stem(sample)}-hdrbytes-{index:02d}.{_ext(sample)}", bytes(data), ANY))
    return cases


# --- headers that lie about the size -----------------------------------------------------------------


def _jpeg_frame_offset(jpeg: bytes) -> int:
    """Offset of the first SOFn marker's FF byte (walking the marker segments)."""
    pos = 2
    while pos + 4 <= len(jpeg):
        marker = jpeg[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return pos
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    raise ValueError("no SOF")


def _tiff_entries(tiff: bytes) -> tuple[str, dict[int, tuple[int, int]]]:
    """Byte order and {tag: (entry offset, type)} of the first directory."""
    order = "<" if tiff[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]
    entries = {}
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", tiff[at : at + 4])
        entries[tag] = (at, kind)
    return order, entries


def _set_tiff_value(tiff: bytearray, tag: int, value: int) -> None:
    order, entries = _tiff_entries(bytes(tiff))
    at, kind = entries[tag]
    packed = struct.pack(order + ("HH" if kind == 3 else "I"), *((value, 0) if kind == 3 else (value,)))
    tiff[at + 8 : at + 12] = packed


def resized(sample: Sample, width: int, height: int) -> bytes:
    """The file with its header's size replaced (the pixel data left as it is)."""
    data = bytearray(sample.data)
    ext = _ext(sample)
    if ext == "jpg":
        at = _jpeg_frame_offset(sample.data) + 5
        data[at : at + 4] = struct.pack(">HH", height, width)
    elif ext == "png":
        data[16:24] = struct.pack(">II", width, height)
    elif ext == "bmp":
        data[18:26] = struct.pack("<ii", width, height)
    elif ext == "webp" and data[12:16] == b"VP8X":
        data[24:30] = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    elif ext == "webp" and data[12:16] == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0] & ~((1 << 28) - 1)
        data[21:25] = struct.pack("<I", bits | (width - 1) | (height - 1) << 14)
    elif ext == "webp":
        data[26:30] = struct.pack("<HH", width, height)
    elif ext == "tiff":
        _set_tiff_value(data, 256, width)
        _set_tiff_value(data, 257, height)
    else:
        lines = sample.data.split(b"\n", 3)
        return lines[0] + b"\n" + f"{width} {height}".encode() + b"\n" + b"\n".join(lines[2:])
    return bytes(data)


def size_lies(sources: list[Sample]) -> list[Case]:
    cases = []
    wanted = [
        "baseline.jpg",
        "progressive.jpg",
        "rgb.png",
        "rgb16.png",
        "rgb.bmp",
        "lossy.webp",
        "lossless.webp",
        "lossy_alpha.webp",
        "rgb.tiff",
        "rgb_raw.tiff",
        "rgb.ppm",
        "grey.pgm",
    ]
    for sample in (s for s in sources if s.name in wanted):
        webp_limit = 16384 if sample.name in ("lossy.webp", "lossless.webp") else HUGE  # 14-bit fields
        big = min(HUGE, webp_limit - (1 if sample.name == "lossy.webp" else 0))
        cases.append(Case(f"{_stem(sample)}-huge.{_ext(sample)}", resized(sample, big, big), TOO_LARGE))
        cases.append(Case(f"{_stem(sample)}-wide.{_ext(sample)}", resized(sample, 10001, 10000), TOO_LARGE))
        if sample.name not in ("lossless.webp", "lossy_alpha.webp"):  # VP8L and VP8X store size - 1
            cases.append(Case(f"{_stem(sample)}-zero.{_ext(sample)}", resized(sample, 0, 7), ERROR))
        # Smaller than the data: decoders must not read or write past what the header promises.
        cases.append(Case(f"{_stem(sample)}-smaller.{_ext(sample)}", resized(sample, 3, 2), ANY))
        # libjpeg pads entropy-coded data that runs out early with grey (a warning only), and OpenCV reports
        # success: undetectable through imdecode when the file itself is complete (docs/images.md).
        larger = ANY if _ext(sample) == "jpg" else ERROR
        cases.append(Case(f"{_stem(sample)}-larger.{_ext(sample)}", resized(sample, 400, 300), larger))
    return cases


# --- hand-made hostile structures --------------------------------------------------------------------


def _find(sources: list[Sample], name: str) -> bytes:
    return next(s.data for s in sources if s.name == name)


def jpeg_cases(sources: list[Sample]) -> list[Case]:
    jpeg = _find(sources, "baseline.jpg")
    frame = _jpeg_frame_offset(jpeg)
    scan = jpeg.index(b"\xff\xda")
    exif = b"Exif\x00\x00"
    return [
        # Damaged EXIF never makes a good image undecodable (orientation 1).
        Case("exif-ifd-beyond.jpg", with_jpeg_app1(jpeg, exif + b"II*\x00" + struct.pack("<I", 10**6)), OK),
        Case("exif-count-huge.jpg", with_jpeg_app1(jpeg, exif + b"II*\x00\x08\x00\x00\x00\xff\xff"), OK),
        Case("exif-bad-order.jpg", with_jpeg_app1(jpeg, exif + b"XX*\x00\x08\x00\x00\x00"), OK),
        Case("exif-short.jpg", with_jpeg_app1(jpeg, exif + b"MM"), OK),
        Case("exif-orientation-0.jpg", with_jpeg_app1(jpeg, exif + exif_tiff(0)), OK),
        Case("exif-orientation-9.jpg", with_jpeg_app1(jpeg, exif + exif_tiff(9)), OK),
        Case("exif-orientation-65535.jpg", with_jpeg_app1(jpeg, exif + exif_tiff(65535, False)), OK),
        Case(
            "exif-orientation-offset-beyond.jpg",
            with_jpeg_app1(
                jpeg, exif + b"II*\x00\x08\x00\x00\x00\x01\x00" + struct.pack("<HHII", 274, 3, 9, 10**6)
            ),
            OK,
        ),
        Case("exif-empty.jpg", with_jpeg_app1(jpeg, exif), OK),
        Case("app1-length-beyond.jpg", jpeg[:2] + b"\xff\xe1\xff\xff" + exif + b"II", ERROR),
        Case("marker-length-0.jpg", jpeg[:2] + b"\xff\xe0\x00\x00" + jpeg[2:], ERROR),
        Case("marker-length-1.jpg", jpeg[:2] + b"\xff\xe0\x00\x01" + jpeg[2:], ERROR),
        Case("garbage-between-markers.jpg", jpeg[:2] + b"\x00garbage" + jpeg[2:], ANY),
        Case("no-frame.jpg", jpeg[:frame] + jpeg[scan:], ERROR),
        Case("no-scan.jpg", jpeg[:scan] + b"\xff\xd9", ERROR),
        Case("eoi-only.jpg", b"\xff\xd8\xff\xd9", ERROR),
        Case("soi-only.jpg", b"\xff\xd8\xff", ERROR),
        Case("fill-bytes-only.jpg", b"\xff\xd8" + b"\xff" * 4096, ERROR),
        Case("precision-12.jpg", jpeg[: frame + 4] + b"\x0c" + jpeg[frame + 5 :], ERROR),
        Case("components-2.jpg", jpeg[: frame + 9] + b"\x02" + jpeg[frame + 10 :], ERROR),
        Case("components-0.jpg", jpeg[: frame + 9] + b"\x00" + jpeg[frame + 10 :], ERROR),
        Case("dnl-height.jpg", jpeg[: frame + 5] + b"\x00\x00" + jpeg[frame + 7 :], ERROR),
        Case("trailing-garbage.jpg", jpeg + bytes(range(256)) * 4, OK),
        Case("no-eoi.jpg", jpeg[:-2], ERROR),
        # A CPU bomb: hundreds of scans, each a pass over the whole image.
        Case(
            "many-scans.jpg",
            jpeg[:scan] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x00" * 501 + jpeg[scan:],
            ERROR,
        ),
        Case("huge-restart-run.jpg", jpeg[:-2] + b"\xff\xd0" * 5000 + b"\xff\xd9", ANY),
    ]


def png_cases(sources: list[Sample]) -> list[Case]:
    png = _find(sources, "rgb.png")
    rgba = _find(sources, "rgba.png")
    ihdr = png[:33]
    return [
        Case("chunk-length-huge.png", ihdr + struct.pack(">I", 0xFFFFFFFF) + b"IDAT" + png[41:], ERROR),
        Case("ihdr-length-wrong.png", png[:8] + struct.pack(">I", 12) + png[12:], ERROR),
        Case("ihdr-depth-3.png", png[:24] + b"\x03" + png[25:], ERROR),
        Case("ihdr-colour-7.png", png[:25] + b"\x07" + png[26:], ERROR),
        Case("ihdr-only.png", ihdr, ERROR),
        Case("ihdr-missing.png", png[:8] + png_chunk(b"IEND", b""), ERROR),
        Case("no-idat.png", ihdr + png_chunk(b"IEND", b""), ERROR),
        Case("exif-garbage.png", ihdr + png_chunk(b"eXIf", b"MM\x00*garbage") + png[33:], ANY),
        Case("exif-loop.png", ihdr + png_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\xff\xff") + png[33:], ANY),
        Case("trns-on-rgba.png", rgba[:33] + png_chunk(b"tRNS", b"\x00" * 6) + rgba[33:], ANY),
        Case(
            "idat-garbage.png",
            ihdr + png_chunk(b"IDAT", bytes(range(256)) * 8) + png_chunk(b"IEND", b""),
            ERROR,
        ),
        Case("many-empty-chunks.png", ihdr + png_chunk(b"tEXt", b"") * 20000 + png[33:], ANY),
    ]


def bmp_cases(sources: list[Sample]) -> list[Case]:
    bmp = _find(sources, "rgb.bmp")
    grey = _find(sources, "grey.bmp")

    def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
        return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]

    return [
        Case("height-int-min.bmp", patch(bmp, 22, "<i", -(2**31)), ERROR),
        Case("width-negative.bmp", patch(bmp, 18, "<i", -5), ERROR),
        Case("bpp-7.bmp", patch(bmp, 28, "<H", 7), ERROR),
        Case("bpp-0.bmp", patch(bmp, 28, "<H", 0), ERROR),
        Case("compression-jpeg.bmp", patch(bmp, 30, "<I", 4), ERROR),
        Case("compression-rle8-on-24.bmp", patch(bmp, 30, "<I", 1), ERROR),
        Case("offset-beyond.bmp", patch(bmp, 10, "<I", 10**6), ERROR),
        Case("info-size-7.bmp", patch(bmp, 14, "<I", 7), ERROR),
        Case("info-size-huge.bmp", patch(bmp, 14, "<I", 0xFFFFFFF0), ERROR),
        Case("colours-used-huge.bmp", patch(grey, 46, "<I", 0xFFFFFFFF), ANY),
        Case("rle8-garbage.bmp", patch(patch(grey, 30, "<I", 1), 34, "<I", len(grey) - 1078), ANY),
        Case("top-down.bmp", patch(bmp, 22, "<i", -struct.unpack("<i", bmp[22:26])[0]), OK),
        Case("header-only.bmp", bmp[:54], ERROR),
    ]


def tiff_cases(sources: list[Sample]) -> list[Case]:
    tiff = _find(sources, "rgb_raw.tiff")
    rgb = np.ascontiguousarray(next(s.source for s in sources if s.name == "rgb_raw.tiff")[:, :, ::-1])
    order, _ = _tiff_entries(tiff)

    def with_value(tag: int, value: int) -> bytes:
        data = bytearray(tiff)
        _set_tiff_value(data, tag, value)
        return bytes(data)

    def with_ifd_count(count: int) -> bytes:
        ifd = struct.unpack(order + "I", tiff[4:8])[0]
        return tiff[:ifd] + struct.pack(order + "H", count) + tiff[ifd + 2 :]

    return [
        Case("ifd-offset-beyond.tiff", tiff[:4] + struct.pack(order + "I", 10**7) + tiff[8:], ERROR),
        Case("ifd-offset-zero.tiff", tiff[:4] + struct.pack(order + "I", 0) + tiff[8:], ERROR),
        Case("ifd-count-huge.tiff", with_ifd_count(0xFFFF), ERROR),
        Case("ifd-count-zero.tiff", with_ifd_count(0), ERROR),
        Case("strip-offset-beyond.tiff", with_value(273, 10**8), ERROR),
        Case("strip-bytes-huge.tiff", with_value(279, 0xFFFFFFF0), ANY),
        Case("bits-0.tiff", with_value(258, 0), ERROR),
        Case("samples-0.tiff", with_value(277, 0), ERROR),
        Case("samples-200.tiff", with_value(277, 200), ERROR),
        Case("compression-jpeg-garbage.tiff", with_value(259, 7), ERROR),
        Case("compression-unknown.tiff", with_value(259, 12345), ERROR),
        Case("photometric-unknown.tiff", with_value(262, 999), ANY),
        Case("orientation-9.tiff", pillow_encode(Image.fromarray(rgb), "TIFF", tiffinfo={274: 9}), OK),
        Case("orientation-0.tiff", pillow_encode(Image.fromarray(rgb), "TIFF", tiffinfo={274: 0}), OK),
        Case("bigtiff.tiff", b"II+\x00\x08\x00\x00\x00" + tiff[8:], ERROR),
        Case("header-only.tiff", tiff[:8], ERROR),
    ]


def webp_cases(sources: list[Sample]) -> list[Case]:
    lossy = _find(sources, "lossy.webp")
    alpha = _find(sources, "lossy_alpha.webp")  # VP8X
    return [
        Case("riff-size-huge.webp", lossy[:4] + struct.pack("<I", 0xFFFFFFFF) + lossy[8:], ANY),
        Case("riff-size-small.webp", lossy[:4] + struct.pack("<I", 4) + lossy[8:], ANY),
        Case("animated-flag.webp", alpha[:20] + bytes([alpha[20] | 0x02]) + alpha[21:], ERROR),
        Case("vp8x-only.webp", alpha[:30], ERROR),
        Case(
            "vp8x-exif-loop.webp",
            alpha[:20] + bytes([alpha[20] | 0x08]) + alpha[21:30] + b"EXIF\xff\xff\xff\xff",
            ERROR,
        ),
        Case("not-a-key-frame.webp", lossy[:20] + bytes([lossy[20] | 1]) + lossy[21:], ERROR),
        Case("vp8-no-start-code.webp", lossy[:23] + b"\x00\x00\x00" + lossy[26:], ERROR),
        Case(
            "vp8l-bad-signature.webp", b"RIFF\x20\x00\x00\x00WEBPVP8L\x10\x00\x00\x00\x2e" + bytes(20), ERROR
        ),
        Case("unknown-chunk.webp", lossy[:12] + b"ABCD" + lossy[16:], ERROR),
        Case("riff-only.webp", b"RIFF\x04\x00\x00\x00WEBP", ERROR),
    ]


def pnm_cases() -> list[Case]:
    pixels = bytes(range(256)) * 3
    return [
        Case("comment-to-eof.pgm", b"P5\n# " + b"x" * 5000, ERROR),
        Case("comments-only.pgm", b"P5\n" + b"# c\n" * 2000, ERROR),
        Case("number-huge.pgm", b"P5\n99999999999999999999 2\n255\n" + pixels, ERROR),
        Case("number-int-max.pgm", b"P5\n2147483647 2147483647\n255\n" + pixels, TOO_LARGE),
        Case("negative.pgm", b"P5\n-16 16\n255\n" + pixels, ERROR),
        Case("maxval-0.pgm", b"P5\n16 16\n0\n" + pixels, ERROR),
        Case("maxval-65536.pgm", b"P5\n16 16\n65536\n" + pixels, ERROR),
        Case("maxval-1000.pgm", b"P5\n16 16\n1000\n" + pixels * 2, ANY),
        Case("maxval-100.pgm", b"P5\n16 16\n100\n" + pixels, ANY),
        Case("no-space-after-maxval.pgm", b"P5\n16 16\n255", ERROR),
        Case("short-data.ppm", b"P6\n16 16\n255\n" + pixels[:100], ERROR),
        Case("letters.pgm", b"P2\n4 4\n255\n1 2 3 a b c\n", ERROR),
        Case("values-over-maxval.pgm", b"P2\n2 2\n10\n11 200 3000 70000\n", ANY),
        Case("ascii-missing-values.ppm", b"P3\n4 4\n255\n1 2 3\n", ERROR),
        Case("pbm-ascii-digits-2.pbm", b"P1\n4 1\n0 1 2 1\n", ANY),
        Case("width-zero.pbm", b"P4\n0 5\n" + pixels, ERROR),
    ]


def generic_cases() -> list[Case]:
    rng = np.random.default_rng(SEED + 1)
    signatures = {
        "jpg": b"\xff\xd8\xff",
        "png": b"\x89PNG\r\n\x1a\n",
        "bmp": b"BM",
        "webp": b"RIFF\x00\x10\x00\x00WEBP",
        "tiff": b"II*\x00",
        "tif-be": b"MM\x00*",
        "pgm": b"P5\n",
    }
    cases = [
        Case("empty.bin", b"", ERROR),
        Case("one-byte.bin", b"\xff", ERROR),
        Case("zeros.bin", bytes(4096), ERROR),
        Case("text.txt", b"this is not an image\n" * 20, ERROR),
        Case("gif.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", ERROR),
        Case("jpeg2000.jp2", b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(64), ERROR),
        Case("openexr.exr", b"\x76\x2f\x31\x01\x02\x00\x00\x00" + bytes(64), ERROR),
        Case("radiance.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 8 +X 8\n" + bytes(256), ERROR),
        Case("sunraster.ras", b"\x59\xa6\x6a\x95" + bytes(64), ERROR),
        Case(
            "pam.pam",
            b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(12),
            ERROR,
        ),
        Case("gzip.gz", b"\x1f\x8b\x08\x00" + bytes(64), ERROR),
    ]
    for ext, signature in signatures.items():
        cases.append(Case(f"signature-only.{ext}", signature, ERROR))
        for index in range(3):
            garbage = rng.integers(0, 256, int(rng.integers(16, 2048)), dtype=np.uint8).tobytes()
            cases.append(Case(f"signature-garbage-{index}.{ext}", signature + garbage, ANY))
    return cases


def build_corpus(darknet: Path, seed: int = SEED) -> list[Case]:
    """Every case, deterministic for a seed. The photo is small so that hundreds of decodes stay fast."""
    sources = samples(photo(darknet, "dog.jpg", (40, 30)))
    rng = np.random.default_rng(seed)
    cases = generic_cases()
    # The real photo file as well: a camera-made JPEG, larger than the small encodings.
    real = Sample("dog_real.jpg", (darknet / "dog.jpg").read_bytes(), photo(darknet, "dog.jpg"), False)
    for sample in [*sources, real]:
        cases += truncations(sample)
        cases += bit_flips(sample, rng)
    cases += size_lies(sources)
    cases += jpeg_cases(sources) + png_cases(sources) + bmp_cases(sources) + tiff_cases(sources)
    cases += webp_cases(sources) + pnm_cases()
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def write_corpus(cases: list[Case], folder: Path) -> None:
    """Writes one file per case into `folder`, removing files of an earlier corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    for case in cases:
        (folder / case.name).write_bytes(case.data)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} FOLDER", file=sys.stderr)
        return 2
    from sightd.zoo import artifacts

    cases = build_corpus(artifacts.extract_folder("darknet", "usr/share/darknet/data"))
    write_corpus(cases, Path(argv[1]))
    counts = {kind: sum(c.expect == kind for c in cases) for kind in (ERROR, TOO_LARGE, OK, ANY)}
    print(f"corrupt corpus: {len(cases)} files in {argv[1]} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
