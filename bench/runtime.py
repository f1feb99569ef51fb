"""The in-process runtime under concurrent load: images per second, latency percentiles and the batches it
forms, with dynamic batching on (max_batch 8, the default) and off (max_batch 1), against the
Recognizer called directly (one request at a time, and whole batches of the largest max_batch) and
onnxruntime's Python API on a pre-made tensor (the inference limit: no decoding, no preprocessing), on
dog.jpg with the zoo's imagenet-mobilenet-v2. The runtime's other settings are its defaults unless swept
(--workers, --delays-us, --decode-threads, --intra-op-threads).

Every client is an asyncio task sending one-image requests back to back (closed loop), --concurrency of them
at once. Every variant, the direct ones included, produces the v0.7 result document (top 5); sessions do not
spin; the runtime's have the intra-op threads swept (default: the runtime's own, cores // workers), the
direct ones 2. Variants alternate round by round,
and the direct figures are taken next to each block of runtime figures, so that the noise of a shared
machine hits them alike; figures are medians over rounds. Prints the machine, versions, one line per variant
and concurrency with ratios, then one JSON line.

Usage: python bench/runtime.py [--rounds N] [--requests N] [--concurrency 1 4 8 32] [--workers 2...]
                               [--delays-us D...] [--max-batch 8...] [--decode-threads -1...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np
import onnxruntime as ort

from host import cpu_model
from loadgen import percentile
from sightd import engine
from sightd.recognition import DEFAULT_INTRA_OP_THREADS, Recognizer, SessionSettings, result_json
from sightd.runtime import ImageRequest, Runtime, RuntimeSettings, VersionDefinition
from sightd.runtime.definitions import DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_DELAY_US, DEFAULT_WORKERS
from sightd.zoo import artifacts, build, installed

MODEL = "imagenet-mobilenet-v2"
MALAMUTE = 249


def machine() -> dict[str, Any]:
    model = cpu_model()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "core_onnxruntime": engine.load_onnxruntime(),
        "numpy": np.__version__,
    }


async def drive(
    runtime: Runtime, version: VersionDefinition, data: bytes, clients: int, requests: int
) -> dict[str, Any]:
    """``requests`` one-image requests from ``clients`` tasks at once; throughput, latencies, batches."""
    metrics = runtime.metrics
    labels = {"kind": "recognition"}
    batches_before = metrics.value("sightd_runtime_batch_images_count", labels)
    images_before = metrics.value("sightd_runtime_batch_images_sum", labels)
    left = requests
    latencies: list[float] = []

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            (outcome,) = await runtime.recognize(version, [ImageRequest(data)], max_predictions=5)
            latencies.append(time.perf_counter() - started)
            assert outcome.result is not None, outcome.error

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    batches = metrics.value("sightd_runtime_batch_images_count", labels) - batches_before
    images = metrics.value("sightd_runtime_batch_images_sum", labels) - images_before
    return {
        "images_per_second": requests / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "average_batch": images / batches if batches else 0.0,
    }


def direct_rate(run: Any, images: int, iterations: int) -> float:
    run()  # warm: first calls of a batch size allocate
    started = time.perf_counter()
    for _ in range(iterations):
        run()
    return images * iterations / (time.perf_counter() - started)


async def measure(args: argparse.Namespace, zoo: installed.Zoo, dog: bytes) -> dict[str, Any]:
    version = VersionDefinition.from_zoo(MODEL, zoo)
    recognizer = Recognizer.from_zoo(MODEL, zoo)
    options = ort.SessionOptions()
    options.intra_op_num_threads = DEFAULT_INTRA_OP_THREADS
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(version.network_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    largest = max(args.max_batch)
    tensor = np.random.default_rng(0).standard_normal((largest, 3, 224, 224)).astype(np.float32)
    (check,) = recognizer.recognize([(dog, None)], max_predictions=5)
    assert result_json(check)["outputs"][0]["labels"]["predicted"][0]["label_id"] == MALAMUTE

    # (workers, max_batch, delay, decode threads, intra-op threads): batching off is max_batch 1 (the delay
    # then means nothing); intra-op threads 0 is the runtime's default.
    configurations = [
        (w, 1, 0, t, i) for w in args.workers for t in args.decode_threads for i in args.intra_op_threads
    ] + [
        (w, b, d, t, i)
        for w in args.workers
        for b in args.max_batch
        for d in args.delays_us
        for t in args.decode_threads
        for i in args.intra_op_threads
    ]
    runtimes = {
        c: Runtime(
            RuntimeSettings(
                workers=c[0],
                max_batch=c[1],
                max_batch_delay_us=c[2],
                decode_threads=None if c[3] < 0 else c[3],
                session=SessionSettings(intra_op_threads=c[4]) if c[4] else None,
            )
        )
        for c in configurations
    }
    for runtime in runtimes.values():
        await runtime.start()
        await runtime.recognize(version, [ImageRequest(dog)])  # load and warm up
    batch = [(dog, None)] * largest
    iterations = max(1, args.requests // largest)
    direct: dict[str, list[float]] = {"recognizer_one": [], "recognizer_batch": [], "onnxruntime_tensor": []}
    found: dict[tuple[tuple[int, int, int, int, int], int], list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for clients in args.concurrency:
            # The direct figures are taken next to each block of runtime figures: the load of a shared
            # machine drifts within a run.
            direct["recognizer_one"].append(
                direct_rate(
                    lambda: result_json(recognizer.recognize(batch[:1], max_predictions=5)[0]),
                    1,
                    args.requests,
                )
            )
            direct["recognizer_batch"].append(
                direct_rate(
                    lambda: [result_json(r) for r in recognizer.recognize(batch, max_predictions=5)],
                    largest,
                    iterations,
                )
            )
            direct["onnxruntime_tensor"].append(
                direct_rate(lambda: session.run(None, {input_name: tensor}), largest, iterations)
            )
            for configuration, runtime in runtimes.items():
                found.setdefault((configuration, clients), []).append(
                    await drive(runtime, version, dog, clients, args.requests)
                )
    for runtime in runtimes.values():
        await runtime.stop()
    baselines = {name: statistics.median(rates) for name, rates in direct.items()}
    rows = []
    for ((workers, max_batch, delay, decode, intra), clients), runs in found.items():
        row: dict[str, Any] = {
            "variant": "batching" if max_batch > 1 else "no_batching",
            "workers": workers,
            "max_batch": max_batch,
            "delay_us": delay,
            "decode_threads": "shared" if decode < 0 else decode,
            "intra_op_threads": runtimes[
                (workers, max_batch, delay, decode, intra)
            ].settings.session_settings.intra_op_threads,
            "concurrency": clients,
        }
        for field in ("images_per_second", "p50_ms", "p99_ms", "average_batch"):
            row[field] = round(statistics.median(run[field] for run in runs), 2)
        row["over_recognizer_one"] = round(row["images_per_second"] / baselines["recognizer_one"], 3)
        row["over_onnxruntime_tensor"] = round(row["images_per_second"] / baselines["onnxruntime_tensor"], 3)
        rows.append(row)
    return {"baselines": {k: round(v, 1) for k, v in baselines.items()}, "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--requests", type=int, default=96, help="requests per variant, concurrency and round"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 32])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[DEFAULT_WORKERS], help="runtime worker threads to compare"
    )
    parser.add_argument(
        "--delays-us", type=int, nargs="+", default=[DEFAULT_MAX_BATCH_DELAY_US], help="max batch delays"
    )
    parser.add_argument(
        "--max-batch", type=int, nargs="+", default=[DEFAULT_MAX_BATCH], help="max batch sizes to compare"
    )
    parser.add_argument(
        "--decode-threads",
        type=int,
        nargs="+",
        default=[-1],
        help="decoding threads per batch besides its worker (-1: the core's shared pool)",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        nargs="+",
        default=[0],
        help="ONNX Runtime threads per run of the runtime's sessions (0: the runtime's default)",
    )
    args = parser.parse_args(argv)

    build.build()
    zoo = installed.load()
    dog = (artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg").read_bytes()
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} CPUs, load average {info['load_average']}, "
        f"{platform.platform()}"
    )
    print(
        f"python {info['python']}, onnxruntime {info['onnxruntime']} (core: {info['core_onnxruntime']}), "
        f"numpy {info['numpy']}"
    )
    print(
        f"{MODEL} on dog.jpg, one-image requests, {args.requests} per measurement, {args.rounds} rounds; "
        f"sessions not spinning, the direct ones with {DEFAULT_INTRA_OP_THREADS} intra-op threads"
    )
    measured = asyncio.run(measure(args, zoo, dog))
    base = measured["baselines"]
    print(
        f"direct: Recognizer one image at a time {base['recognizer_one']:.1f} img/s, batches of "
        f"{max(args.max_batch)} {base['recognizer_batch']:.1f} img/s; onnxruntime on a tensor, batch "
        f"{max(args.max_batch)}: {base['onnxruntime_tensor']:.1f} img/s"
    )
    for row in measured["results"]:
        print(
            f"{row['variant']:>11} workers {row['workers']} max_batch {row['max_batch']:<2} delay "
            f"{row['delay_us']:>5} us decode {row['decode_threads']!s:>6} intra {row['intra_op_threads']}  "
            f"x{row['concurrency']:<3} "
            f"{row['images_per_second']:6.1f} img/s  "
            f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  batch {row['average_batch']:4.1f}  "
            f"/ Recognizer one-at-a-time {row['over_recognizer_one']:.2f}  "
            f"/ tensor limit {row['over_onnxruntime_tensor']:.2f}"
        )
    record = {
        "bench": "runtime",
        "model": MODEL,
        "direct_batch": max(args.max_batch),
        "requests": args.requests,
    }
    print(json.dumps({**record, "machine": info, **measured}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
