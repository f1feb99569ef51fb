"""Session.run of sightd's core against onnxruntime's own Python API, side by side on the same models.

Two models built with onnx.helper: a tiny one (per-call overhead dominates) and a dense one (compute
dominates). Both engines get the same threads and graph optimisation; rounds alternate between them so that
machine noise hits both alike. Prints the machine, the versions, the median time per run of each and their
ratio, then one JSON line.

    .venv/bin/python bench/engine_run.py [--iterations 300]
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

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from sightd import engine


def tiny_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
    )
    return _serialise(graph)


def dense_model(size: int = 512, depth: int = 4) -> bytes:
    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for layer in range(depth):
        weights.append(
            numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32), f"w{layer}")
        )
        out = "y" if layer == depth - 1 else f"h{layer}"
        nodes += [
            helper.make_node("MatMul", [previous, f"w{layer}"], [f"m{layer}"]),
            helper.make_node("Tanh", [f"m{layer}"], [out]),
        ]
        previous = out
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", size])],
        initializer=weights,
    )
    return _serialise(graph)


def _serialise(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


def median_seconds(run: Callable[[], object], iterations: int) -> float:
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, model: bytes, x: np.ndarray, iterations: int, threads: int) -> dict[str, float | str]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    reference = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    ours = engine.create_session(model, intra_op_threads=threads, execution_provider="cpu")
    np.testing.assert_allclose(ours.run({"x": x})[0], reference.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
    rounds = 5
    per_round = max(1, iterations // rounds)
    ort_times, sightd_times = [], []
    for _ in range(rounds):
        ort_times.append(median_seconds(lambda: reference.run(None, {"x": x}), per_round))
        sightd_times.append(median_seconds(lambda: ours.run({"x": x}), per_round))
    ort_s, sightd_s = statistics.median(ort_times), statistics.median(sightd_times)
    return {
        "model": name,
        "batch": str(x.shape[0]),
        "onnxruntime_python_us": ort_s * 1e6,
        "sightd_us": sightd_s * 1e6,
        "ratio_sightd_over_onnxruntime": sightd_s / ort_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of both engines")
    args = parser.parse_args(argv)
    version = engine.load_onnxruntime()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    versions = f"onnxruntime {ort.__version__} (core: {version}), numpy {np.__version__}"
    print(f"python {platform.python_version()}, {versions}")
    rng = np.random.default_rng(1)
    results = [
        compare(
            "tiny",
            tiny_model(),
            rng.standard_normal((1, 16)).astype(np.float32),
            args.iterations,
            args.threads,
        ),
        compare(
            "dense",
            dense_model(),
            rng.standard_normal((8, 512)).astype(np.float32),
            max(1, args.iterations // 10),
            args.threads,
        ),
    ]
    for r in results:
        print(
            f"{r['model']:>6} batch {r['batch']}: onnxruntime python {r['onnxruntime_python_us']:9.1f} us, "
            f"sightd {r['sightd_us']:9.1f} us, ratio {r['ratio_sightd_over_onnxruntime']:.3f}"
        )
    print(json.dumps({"bench": "engine_run", "threads": args.threads, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
