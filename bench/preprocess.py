"""Decode + preprocess: sightd's core (BatchPreprocessor) against Pillow + NumPy and OpenCV-Python + NumPy.

The recipe is MobileNet's / torchvision's: RGB, resize the shorter side to 256, centre crop 224x224, scale to
[0, 1], subtract the ImageNet mean, divide by its std, float32 NCHW. Every variant runs on the same encoded
bytes, interleaved round by round so that the noise of a shared machine hits them alike; the figures are
medians over rounds. The core runs it with OpenCV's bilinear resize (as the OpenCV-Python + NumPy peer) and
with `antialias` (Pillow's antialiased bilinear resize, as the Pillow + NumPy peer: the like-for-like
comparison for that variant). Also measured: the resize alone (dog.jpg to 341x256), two threads on a batch
against one, and reduced JPEG decoding (speed and pixel difference against exact mode) on a 4000x3000 JPEG
made here from a real photo.

Usage: python bench/preprocess.py [--rounds N] [--iterations N] [--batch N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

from host import cpu_model
from sightd import _core
from sightd.zoo import artifacts

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SHORTER = 256
CROP = 224


def debian_version(package: str) -> str:
    """Version of a Debian package the core links against (its OpenCV, its libjpeg-turbo), if known."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def machine() -> dict[str, object]:
    model = cpu_model()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv_python": cv2.__version__,
        "pillow": PIL.__version__,
        "core_opencv": debian_version("libopencv-imgcodecs406"),
        "core_libjpeg_turbo": debian_version("libjpeg62-turbo"),
    }


def resized_size(width: int, height: int) -> tuple[int, int]:
    """torchvision's Resize(256): the shorter side becomes 256, the longer follows, rounded down."""
    if width <= height:
        return SHORTER, SHORTER * height // width
    return SHORTER * width // height, SHORTER


def opencv_numpy(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    rw, rh = resized_size(w, h)
    resized = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
    top, left = (rh - CROP) // 2, (rw - CROP) // 2
    rgb = cv2.cvtColor(resized[top : top + CROP, left : left + CROP], cv2.COLOR_BGR2RGB)
    chw = (rgb.astype(np.float32) * (1 / 255) - MEAN) / STD
    return np.ascontiguousarray(chw.transpose(2, 0, 1))


def pillow_numpy(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    rw, rh = resized_size(*image.size)
    image = image.resize((rw, rh), Image.Resampling.BILINEAR)
    top, left = (rh - CROP) // 2, (rw - CROP) // 2
    rgb = np.asarray(image.crop((left, top, left + CROP, top + CROP)), dtype=np.float32)
    chw = (rgb * (1 / 255) - MEAN) / STD
    return np.ascontiguousarray(chw.transpose(2, 0, 1))


def core_spec(antialias: bool = False) -> _core.PreprocessingSpec:
    spec = _core.ImageInputSpec()
    spec.tensor_name = "input"
    spec.resize_type = _core.ResizeType.CROP
    spec.crop_ratio = CROP / SHORTER
    spec.target_width = spec.target_height = CROP
    spec.color_channels = _core.ColorChannels.RGB
    spec.pixel_scaling = 1.0
    spec.mean = MEAN.tolist()
    spec.std = STD.tolist()
    spec.antialias = antialias
    whole = _core.PreprocessingSpec()
    whole.image_inputs = [spec]
    return whole


def core_tensor(batch: _core.PreparedBatch, index: int = 0) -> np.ndarray:
    image = batch.images[index]
    assert image.ok, image.error_message
    return np.asarray(batch.groups[image.group].feeds["input"][image.row])


def large_jpeg(skimage_data: Path, darknet_data: Path) -> tuple[bytes, str]:
    """A 4000x3000 JPEG (quality 90) upscaled with INTER_CUBIC from the largest of the real test photos."""
    candidates = [*skimage_data.glob("*.jpg"), *skimage_data.glob("*.png"), *darknet_data.glob("*.jpg")]
    best: tuple[int, Path, np.ndarray] | None = None
    for path in candidates:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < 256:
            continue
        pixels = image.shape[0] * image.shape[1]
        if best is None or pixels > best[0]:
            best = (pixels, path, image)
    assert best is not None
    _, path, image = best
    big = cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    source = (
        f"{path.name} ({image.shape[1]}x{image.shape[0]}) resized to 4000x3000 with INTER_CUBIC, JPEG q90"
    )
    return encoded.tobytes(), source


def resize_only(image: np.ndarray, width: int, height: int) -> dict[str, Callable[[], object]]:
    """The resize alone, 8-bit BGR in and out: the core (SQUASH to UINT8 NHWC BGR gives the resized pixels),
    Pillow (on an RGB image already converted) and OpenCV-Python."""
    spec = _core.ImageInputSpec()
    spec.tensor_name = "image"
    spec.resize_type = _core.ResizeType.SQUASH
    spec.data_type = _core.DataType.UINT8
    spec.dimension_order = _core.DimensionOrder.NHWC
    spec.target_width, spec.target_height = width, height
    plain = _core.ImagePreprocessor(spec)
    spec.antialias = True
    antialiased = _core.ImagePreprocessor(spec)
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    return {
        "core_antialias": lambda: antialiased.write(image),
        "pillow_bilinear": lambda: rgb.resize((width, height), Image.Resampling.BILINEAR),
        "core_linear": lambda: plain.write(image),
        "opencv_linear": lambda: cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR),
        "opencv_area": lambda: cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA),
    }


def median_times(variants: dict[str, Callable[[], object]], rounds: int, iterations: int) -> dict[str, float]:
    """Median milliseconds per call; the variants take turns call by call, so that a burst of load from the
    machine's other users lands on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for function in variants.values():
        function()  # warm-up: first-call allocations, caches
    for _ in range(rounds * iterations):
        for name, function in variants.items():
            start = time.perf_counter()
            function()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def cores_used(function: Callable[[], object], calls: int = 3) -> float:
    """CPU time over wall time while `function` runs: how many cores the process actually got."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(calls):
        function()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu / wall


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16, help="images per batch for the two-thread measure")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)  # one thread means one thread for OpenCV-Python too
    darknet = artifacts.extract_folder("darknet", "usr/share/darknet/data")
    skimage = artifacts.extract_folder("scikit-image", "skimage/data")
    dog = (darknet / "dog.jpg").read_bytes()
    big, big_source = large_jpeg(skimage, darknet)
    spec = core_spec()
    one = _core.BatchPreprocessor(spec, threads=1)
    two = _core.BatchPreprocessor(spec, threads=2)
    reduced = _core.BatchPreprocessor(spec, threads=1, reduced_decoding=True)
    antialias = _core.BatchPreprocessor(core_spec(antialias=True), threads=1)

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores")
    print(
        f"versions: python {info['python']}, numpy {info['numpy']}, opencv-python {info['opencv_python']}, "
        f"pillow {info['pillow']}; the core: Debian OpenCV {info['core_opencv']}, libjpeg-turbo "
        f"{info['core_libjpeg_turbo']}"
    )
    print(f"recipe: RGB, shorter side {SHORTER}, centre crop {CROP}x{CROP}, ImageNet mean/std, float32 NCHW")
    print(f"large image: {big_source}")
    print(
        f"medians of {args.rounds} x {args.iterations} calls per variant, taking turns (large image: fewer)\n"
    )

    # Same results first: a benchmark of different work would be meaningless.
    reference = opencv_numpy(dog)
    core_result = core_tensor(one.prepare([(dog, None)]))
    exact_difference = float(np.abs(core_result - reference).max())
    antialias_difference = float(
        np.abs(core_tensor(antialias.prepare([(dog, None)])) - pillow_numpy(dog)).max()
    )

    results: dict[str, object] = {"machine": info, "large_image": big_source}
    for label, data, iterations in (
        ("dog.jpg 768x576", dog, args.iterations),
        ("4000x3000", big, max(2, args.iterations // 10)),
    ):
        variants: dict[str, Callable[[], object]] = {
            "core": lambda data=data: one.prepare([(data, None)]),
            "core_reduced": lambda data=data: reduced.prepare([(data, None)]),
            "core_antialias": lambda data=data: antialias.prepare([(data, None)]),
            "opencv_numpy": lambda data=data: opencv_numpy(data),
            "pillow_numpy": lambda data=data: pillow_numpy(data),
            # Decoding alone, to tell the decoder's share from the preprocessing's.
            "decode_core": lambda data=data: _core.decode_image(data),
            "decode_opencv": lambda data=data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
        }
        times = median_times(variants, args.rounds, iterations)
        print(f"{label}: one thread, ms per image (images/s)")
        for name, ms in times.items():
            print(f"  {name:14s} {ms:8.2f} ms  {1000 / ms:8.1f}/s")
        after_decode = {
            "core": times["core"] - times["decode_core"],
            "core_antialias": times["core_antialias"] - times["decode_core"],
            "opencv_numpy": times["opencv_numpy"] - times["decode_opencv"],
        }
        print(
            f"  after decoding: core {after_decode['core']:.2f} ms, core with antialias "
            f"{after_decode['core_antialias']:.2f} ms, "
            f"OpenCV-Python + NumPy {after_decode['opencv_numpy']:.2f} ms"
        )
        ratios = {
            "core_vs_opencv": times["opencv_numpy"] / times["core"],
            "core_vs_pillow": times["pillow_numpy"] / times["core"],
            "core_antialias_vs_pillow": times["pillow_numpy"] / times["core_antialias"],
            "core_reduced_vs_opencv": times["opencv_numpy"] / times["core_reduced"],
            "core_reduced_vs_core": times["core"] / times["core_reduced"],
            "decode_core_vs_opencv": times["decode_opencv"] / times["decode_core"],
        }
        for name, ratio in ratios.items():
            print(f"  {name:24s} {ratio:5.2f}x")
        exact = core_tensor(one.prepare([(data, None)]))
        approx = core_tensor(reduced.prepare([(data, None)]))
        difference = np.abs(exact - approx)
        # In pixel levels (0..255): output units times std * 255.
        levels = difference * STD[:, None, None] * 255
        print(
            f"  reduced decoding vs exact: mean |diff| {difference.mean():.4f} (max {difference.max():.3f})"
            f" in output units = {levels.mean():.2f} (max {levels.max():.1f}) pixel levels\n"
        )
        results[label] = {
            "ms": times,
            "ms_after_decode": after_decode,
            "ratios": ratios,
            "reduced_mean_abs_diff": float(difference.mean()),
            "reduced_max_abs_diff": float(difference.max()),
            "reduced_mean_abs_diff_levels": float(levels.mean()),
        }

    dog_pixels = cv2.imdecode(np.frombuffer(dog, np.uint8), cv2.IMREAD_COLOR)
    width, height = resized_size(dog_pixels.shape[1], dog_pixels.shape[0])
    resize_times = median_times(resize_only(dog_pixels, width, height), args.rounds, args.iterations)
    print(
        f"resize alone, dog.jpg {dog_pixels.shape[1]}x{dog_pixels.shape[0]} -> {width}x{height}, 8-bit BGR:"
    )
    for name, ms in resize_times.items():
        print(f"  {name:16s} {ms:7.3f} ms")
    resize_ratios = {
        "core_antialias_vs_pillow": resize_times["pillow_bilinear"] / resize_times["core_antialias"],
        "core_antialias_vs_opencv_area": resize_times["opencv_area"] / resize_times["core_antialias"],
        "core_antialias_vs_core_linear": resize_times["core_linear"] / resize_times["core_antialias"],
    }
    for name, ratio in resize_ratios.items():
        print(f"  {name:30s} {ratio:5.2f}x")
    results["resize_only"] = {"size": [width, height], "ms": resize_times, "ratios": resize_ratios}
    print()

    batch = [(dog, None)] * args.batch
    times = median_times(
        {"one_thread": lambda: one.prepare(batch), "two_threads": lambda: two.prepare(batch)},
        args.rounds,
        max(1, args.iterations // 8),
    )
    speedup = times["one_thread"] / times["two_threads"]
    cores = cores_used(lambda: two.prepare(batch))
    print(
        f"batch of {args.batch} x dog.jpg: one thread {times['one_thread']:.1f} ms, two threads "
        f"{times['two_threads']:.1f} ms, speed-up {speedup:.2f}x; the two-thread run got {cores:.2f} cores "
        "of CPU time (a busy shared machine gives less than 2)"
    )
    print(f"core vs OpenCV-Python + NumPy on dog.jpg: max |diff| {exact_difference:.2e} (same recipe)")
    print(
        f"core with antialias vs Pillow + NumPy on dog.jpg: max |diff| {antialias_difference:.2e} "
        "(same recipe)"
    )
    results["batch"] = {"size": args.batch, "ms": times, "two_thread_speedup": speedup, "cores_used": cores}
    results["core_vs_opencv_max_abs_diff"] = exact_difference
    results["core_antialias_vs_pillow_max_abs_diff"] = antialias_difference
    print(json.dumps({"bench": "preprocess", **results}))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
