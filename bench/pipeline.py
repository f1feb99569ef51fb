"""The serving hot path: sightd's Recognizer (one core call: decode -> preprocess -> ONNX Runtime ->
softmax -> top-5) against (a) onnxruntime's Python API on a pre-made input tensor, the inference limit, and
(b) a do-it-yourself Python pipeline (cv2 decode and resize, NumPy normalisation, onnxruntime, NumPy
softmax and top-5), on dog.jpg with the zoo's imagenet-mobilenet-v2 at batches of 1, 2, 4 and 8.

Every variant gets the same ONNX Runtime intra-op threads (--threads); the Recognizer decodes on the shared
pool (cores - 1 workers plus the calling thread). Variants alternate round by round so that the noise of a
shared machine hits them alike; figures are medians over rounds of the median per round. Also measured: the
Recognizer with each intra-op thread count of --sweep, the figures behind the default (docs/engine.md).
Prints the machine and versions, images per second and ratios, then one JSON line.

Usage: python bench/pipeline.py [--rounds N] [--iterations N] [--batches 1 2 4 8] [--threads T]
                                [--sweep 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from host import cpu_model
from sightd import engine
from sightd.recognition import DEFAULT_ALLOW_SPINNING, DEFAULT_INTRA_OP_THREADS, Recognizer, SessionSettings
from sightd.zoo import artifacts, build, installed

MODEL = "imagenet-mobilenet-v2"
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MALAMUTE = 249


def machine() -> dict[str, Any]:
    model = cpu_model()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "core_onnxruntime": engine.load_onnxruntime(),
        "numpy": np.__version__,
        "opencv_python": cv2.__version__,
    }


def diy_preprocess(data: bytes) -> np.ndarray:
    """The zoo's preprocessing by hand: shorter side to 256 (INTER_AREA), centre crop 224, RGB, ImageNet
    mean and std, CHW float32."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    height, width = bgr.shape[:2]
    scale = 256 / min(width, height)
    size = (max(224, round(width * scale)), max(224, round(height * scale)))
    resized = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    top, left = (size[1] - 224) // 2, (size[0] - 224) // 2
    rgb = resized[top : top + 224, left : left + 224, ::-1].astype(np.float32) / 255.0
    return ((rgb - MEAN) / STD).transpose(2, 0, 1)


def top5(logits: np.ndarray) -> list[list[tuple[int, float]]]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    best = np.argpartition(-probabilities, 5, axis=1)[:, :5]
    out = []
    for row, indices in zip(probabilities, best, strict=True):
        ordered = indices[np.argsort(-row[indices])]
        out.append([(int(i), float(row[i])) for i in ordered])
    return out


def median_seconds(run: Callable[[], object], iterations: int) -> float:
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ort_session(path: Path, threads: int, spinning: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=8, help="timed calls per variant and round")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, default=DEFAULT_INTRA_OP_THREADS, help="intra-op threads")
    parser.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_ALLOW_SPINNING,
        help="ONNX Runtime's intra-op workers spin between operators",
    )
    parser.add_argument(
        "--sweep",
        type=int,
        nargs="*",
        default=[1, 2],
        help="intra-op thread counts of the Recognizer to compare, each with and without spinning",
    )
    args = parser.parse_args(argv)

    build.build()
    zoo = installed.load()
    network = zoo.networks[MODEL].path
    dog = (artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg").read_bytes()
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} CPUs, {platform.platform()}")
    print(
        f"python {info['python']}, onnxruntime {info['onnxruntime']} (core: {info['core_onnxruntime']}), "
        f"numpy {info['numpy']}, opencv-python {info['opencv_python']}"
    )
    spin = "spinning" if args.spinning else "not spinning"
    print(f"{MODEL} on dog.jpg (768x576 JPEG); intra-op threads {args.threads}, {spin}; {args.rounds} rounds")

    def name(threads: int, spinning: bool) -> str:
        return f"sightd_t{threads}" + ("" if spinning else "_nospin")

    configurations = {(args.threads, args.spinning)} | {(t, s) for t in args.sweep for s in (True, False)}
    recognizers = {
        name(threads, spinning): Recognizer.from_zoo(
            MODEL, zoo, session=SessionSettings(intra_op_threads=threads, allow_spinning=spinning)
        )
        for threads, spinning in sorted(configurations)
    }
    main_variant = name(args.threads, args.spinning)
    recognizer = recognizers[main_variant]
    session = ort_session(network, args.threads, args.spinning)
    input_name = session.get_inputs()[0].name

    def diy(batch: list[bytes]) -> list[list[tuple[int, float]]]:
        tensor = np.stack([diy_preprocess(data) for data in batch])
        return top5(session.run(None, {input_name: tensor})[0])

    # The variants agree before they are timed.
    (result,) = recognizer.recognize([(dog, None)], max_predictions=5)
    assert result.ok, result.error
    assert result.outputs[0].predicted[0].label_id == MALAMUTE
    assert diy([dog])[0][0][0] == MALAMUTE

    rows: list[dict[str, Any]] = []
    for batch_size in args.batches:
        batch = [dog] * batch_size
        requests = [(dog, None)] * batch_size
        tensor = np.stack([diy_preprocess(dog)] * batch_size)
        variants: dict[str, Callable[[], object]] = {
            "onnxruntime_tensor": lambda t=tensor: session.run(None, {input_name: t}),
            "diy_python": lambda b=batch: diy(b),
        }
        for variant, r in recognizers.items():
            variants[variant] = lambda r=r, q=requests: r.recognize(q, max_predictions=5)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                run()  # warm: first calls of a batch size allocate
                times[name].append(median_seconds(run, args.iterations))
        per_second = {name: batch_size / statistics.median(t) for name, t in times.items()}
        ours = per_second[main_variant]
        row: dict[str, Any] = {
            "batch": batch_size,
            "images_per_second": {k: round(v, 1) for k, v in per_second.items()},
            "sightd_over_onnxruntime_tensor": ours / per_second["onnxruntime_tensor"],
            "sightd_over_diy_python": ours / per_second["diy_python"],
        }
        rows.append(row)
        sweep = ", ".join(f"{v[7:]} {per_second[v]:.1f}" for v in recognizers)
        print(
            f"batch {batch_size}: sightd {ours:6.1f} img/s, onnxruntime on a tensor "
            f"{per_second['onnxruntime_tensor']:6.1f}, DIY Python {per_second['diy_python']:6.1f}; "
            f"sightd / tensor-only {row['sightd_over_onnxruntime_tensor']:.2f}, "
            f"sightd / DIY {row['sightd_over_diy_python']:.2f}; sightd by threads: {sweep}"
        )
    record = {"bench": "pipeline", "model": MODEL, "threads": args.threads, "spinning": args.spinning}
    print(json.dumps({**record, "machine": info, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
