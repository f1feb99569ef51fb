"""Decoding speed: sightd's decoder against OpenCV's own imdecode, and what reduced JPEG decoding saves.

Two measurements, each side by side in one process:

* native: cpp/tools/decode_bench.cpp, built here with -O2 against the same Debian OpenCV and libjpeg-turbo as
  the core, times sightd::decode_image and a bare cv::imdecode of the same bytes, interleaved, and counts the
  bytes where their outputs differ. For JPEG the core calls libjpeg-turbo itself (BGR straight into the
  output rows, same integer IDCT), so the ratio is its gain over OpenCV's JPEG path; for the other formats it
  is the core's overhead (header parsing, conversions). JPEG reductions are timed the same way.
* python: sightd._core.decode_image through the binding, next to the OpenCV-Python wheel's cv2.imdecode. The
  wheel bundles other codec versions (libjpeg-turbo 3.x against Debian's 2.1), so that ratio compares
  libraries as much as code: context, not a verdict.

Prints the machine, the versions, a table, then one JSON line. Not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from host import cpu_model
from sightd import _core
from sightd.zoo import artifacts

ROOT = Path(__file__).resolve().parent.parent
CORE_SOURCES = [
    "cpp/src/image_header.cpp",
    "cpp/src/image_header_raster.cpp",
    "cpp/src/image_decode.cpp",
    "cpp/src/jpeg_decode.cpp",
    "cpp/src/tiff_ifd.cpp",
]
DEBIAN_PACKAGES = ["libopencv-imgcodecs406", "libjpeg62-turbo", "libpng16-16", "libwebp7", "libtiff6"]


def machine() -> dict[str, object]:
    model = cpu_model()
    versions = {}
    for package in DEBIAN_PACKAGES:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
        )
        versions[package] = done.stdout.strip() or "?"
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv_python": cv2.__version__,
        "debian": versions,
    }


def images(folder: Path) -> list[Path]:
    """Real photos, plus a 12-megapixel JPEG (the retina photo enlarged) as a camera would send."""
    darknet = artifacts.extract_folder("darknet", "usr/share/darknet/data")
    skimage = artifacts.extract_folder("scikit-image", "skimage/data")
    folder.mkdir(parents=True, exist_ok=True)
    large = folder / "retina_12mp.jpg"
    if not large.exists():
        retina = cv2.imread(str(skimage / "retina.jpg"))
        big = cv2.resize(retina, (4000, 3000), interpolation=cv2.INTER_CUBIC)
        large.write_bytes(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    webp = folder / "astronaut.webp"
    if not webp.exists():
        astronaut = cv2.imread(str(skimage / "astronaut.png"))
        webp.write_bytes(cv2.imencode(".webp", astronaut, [cv2.IMWRITE_WEBP_QUALITY, 85])[1].tobytes())
    return [darknet / "dog.jpg", skimage / "retina.jpg", large, skimage / "astronaut.png", webp]


def build_native(folder: Path) -> Path | None:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        return None
    binary = folder / "decode_bench"
    sources = [ROOT / "cpp/tools/decode_bench.cpp", *(ROOT / s for s in CORE_SOURCES)]
    headers = [*(ROOT / "cpp/include/sightd").iterdir(), *(ROOT / "cpp/src").glob("*.hpp")]
    newest = max(p.stat().st_mtime for p in [*sources, *headers])
    if binary.exists() and binary.stat().st_mtime > newest:
        return binary
    multiarch = subprocess.run([compiler, "-print-multiarch"], capture_output=True, text=True, check=False)
    command = [compiler, "-O2", "-DNDEBUG", "-std=c++17", f"-I{ROOT / 'cpp/include'}"]
    opencv = ["/usr/include/opencv4", f"/usr/include/{multiarch.stdout.strip()}/opencv4"]
    command += ["-isystem", opencv[0], "-isystem", opencv[1]]
    command += [str(s) for s in sources]
    command += ["-lopencv_imgcodecs", "-lopencv_imgproc", "-lopencv_core", "-ljpeg", "-o", str(binary)]
    subprocess.run(command, check=True)
    return binary


def run_native(binary: Path, files: list[Path], iterations: int) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(binary), str(iterations), *map(str, files)], capture_output=True, text=True, check=True
    )
    rows = []
    for line in done.stdout.splitlines():
        path, case, size, *fields = line.split()
        row: dict[str, object] = {"image": Path(path).name, "case": case, "size": size}
        row.update({k: float(v) for k, v in (f.split("=") for f in fields)})
        rows.append(row)
    return rows


def median_ms(function: Callable[[], object], iterations: int) -> float:
    function()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run_python(files: list[Path], iterations: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in files:
        data = path.read_bytes()
        buffer = np.frombuffer(data, np.uint8)
        header = _core.read_image_header(data)
        flags = cv2.IMREAD_COLOR if header.format == _core.ImageFormat.JPEG else cv2.IMREAD_UNCHANGED
        core = median_ms(lambda data=data: _core.decode_image(data), iterations)
        wheel = median_ms(lambda buffer=buffer, flags=flags: cv2.imdecode(buffer, flags), iterations)
        row: dict[str, object] = {"image": path.name, "sightd_ms": core, "cv2_wheel_ms": wheel}
        if header.format == _core.ImageFormat.JPEG:
            side = min(header.width, header.height)
            for reduction in (2, 4, 8):
                minimum = -(-side // reduction)

                def reduced_decode(data: bytes = data, m: int = minimum) -> object:
                    return _core.decode_image(data, min_width=m, min_height=m)

                reduced = median_ms(reduced_decode, iterations)
                row[f"speedup_{reduction}"] = core / reduced
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build-bench")
    args = parser.parse_args(argv)

    info = machine()
    print("machine:", json.dumps(info))
    files = images(args.build_dir)
    binary = build_native(args.build_dir)
    native = run_native(binary, files, args.iterations) if binary else []
    if native:
        print("\nnative, the same Debian OpenCV: sightd::decode_image / cv::imdecode (medians, interleaved)")
        print("(ratio = sightd / imdecode time; differing: output bytes that differ, -1 for other shapes)")
        heads = ("sightd ms", "imdecode ms", "ratio", "ratio of fastest", "header ms", "differing")
        print(f"{'image':18} {'case':10} {'size':10} {heads[0]:>10} {heads[1]:>12} {heads[2]:>7}", end="")
        print(f" {heads[3]:>17} {heads[4]:>10} {heads[5]:>10}")
        for row in native:
            print(
                f"{row['image']:18} {row['case']:10} {row['size']:10} {row['sightd_ms']:10.3f} "
                f"{row['imdecode_ms']:12.3f} {row['ratio']:7.3f} {row['ratio_min']:17.3f} "
                f"{row['header_ms']:10.5f} {row['differing_bytes']:10.0f}"
            )
    else:
        print("\nnative: no C++ compiler, skipped")

    python = run_python(files, args.iterations)
    print("\npython: sightd._core.decode_image vs the OpenCV-Python wheel (other codecs: context only)")
    for row in python:
        speedups = " ".join(f"x{k[-1]}: {v:.2f}" for k, v in row.items() if k.startswith("speedup"))
        print(
            f"{row['image']:18} sightd {row['sightd_ms']:8.3f} ms  cv2 wheel {row['cv2_wheel_ms']:8.3f} ms"
            + (f"  reduced-decoding speed-up {speedups}" if speedups else "")
        )
    print(json.dumps({"bench": "decode", "machine": info, "native": native, "python": python}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
