"""Hand-made hostile files, format by format: structures that lie (lengths, offsets, counts, sizes),
damaged metadata that must be shrugged off, bombs, and signatures of formats the core must refuse.

Shared by corrupt_corpus.py (which adds seeded mutations of valid files); the expectations are explained
there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from image_samples import Sample, exif_tiff, pillow_encode, png_chunk, with_jpeg_app1
from PIL import Image

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


# --- reading and patching the structures of valid files ------------------------------------------------


def jpeg_frame_offset(jpeg: bytes) -> int:
    """Offset of the first SOFn marker's FF byte (walking the marker segments)."""
    pos = 2
    while pos + 4 <= len(jpeg):
        marker = jpeg[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return pos
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    raise ValueError("no SOF")


def tiff_entries(tiff: bytes) -> tuple[str, dict[int, tuple[int, int]]]:
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


def set_tiff_value(tiff: bytearray, tag: int, value: int) -> None:
    order, entries = tiff_entries(bytes(tiff))
    at, kind = entries[tag]
    packed = struct.pack(order + ("HH" if kind == 3 else "I"), *((value, 0) if kind == 3 else (value,)))
    tiff[at + 8 : at + 12] = packed


# --- hand-made hostile structures --------------------------------------------------------------------


def _find(sources: list[Sample], name: str) -> bytes:
    return next(s.data for s in sources if s.name == name)


def jpeg_cases(sources: list[Sample]) -> list[Case]:
    jpeg = _find(sources, "baseline.jpg")
    frame = jpeg_frame_offset(jpeg)
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
    order, _ = tiff_entries(tiff)

    def with_value(tag: int, value: int) -> bytes:
        data = bytearray(tiff)
        set_tiff_value(data, tag, value)
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
