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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile_files import (
    ANY,
    ERROR,
    HUGE,
    OK,
    SEED,
    TOO_LARGE,
    Case,
    bmp_cases,
    generic_cases,
    jpeg_cases,
    jpeg_frame_offset,
    png_cases,
    pnm_cases,
    set_tiff_value,
    tiff_cases,
    webp_cases,
)
from image_samples import Sample, photo, samples

__all__ = ["ANY", "ERROR", "OK", "TOO_LARGE", "Case", "build_corpus", "write_corpus"]


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


def resized(sample: Sample, width: int, height: int) -> bytes:
    """The file with its header's size replaced (the pixel data left as it is)."""
    data = bytearray(sample.data)
    ext = _ext(sample)
    if ext == "jpg":
        at = jpeg_frame_offset(sample.data) + 5
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
        set_tiff_value(data, 256, width)
        set_tiff_value(data, 257, height)
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
