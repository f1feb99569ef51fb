"""What the gRPC service adds to the runtime: images per second and latency percentiles of
imagenet-mobilenet-v2 on dog.jpg through ``sightd serve`` on loopback (unary ``Recognize``, and
``RecognizeStream`` with the same number of requests in flight), against the same runtime called in
this process (no gRPC, no store, no authentication), at several concurrencies.

The server is a real ``sightd serve`` process (default settings); the in-process runtime has the same
settings (the service's configuration with no overrides). Every client is an asyncio task sending
one-image requests back to back (closed loop). Variants alternate round by round so that the noise of a
shared machine hits them alike; figures are medians over rounds. Prints the machine, versions, one line
per variant and concurrency with its ratio to the in-process runtime, then one JSON line.

Usage: python bench/grpc_service.py [--rounds N] [--requests N] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import onnxruntime as ort

from host import cpu_model
from loadgen import percentile
from sightd import __version__
from sightd.config import load_settings
from sightd.runtime import ImageRequest, Runtime, RuntimeSettings, VersionDefinition
from sightd.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from sightd.zoo import artifacts, build, installed

MODEL = "imagenet-mobilenet-v2"
KEY = "bench-key-0123456789abcdef"


def machine() -> dict[str, Any]:
    model = cpu_model()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "onnxruntime": ort.__version__,
        "sightd": __version__,
    }


async def closed_loop(one: Callable[[], Awaitable[str]], clients: int, requests: int) -> dict[str, float]:
    """``requests`` calls of ``one`` from ``clients`` tasks at once; each answers the top label."""
    left = requests
    latencies: list[float] = []

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            label = await one()
            latencies.append(time.perf_counter() - start)
            if label != "malamute":
                raise AssertionError(f"dog.jpg read as {label!r}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "images_per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def stream_loop(stub: Any, request: Any, clients: int, requests: int) -> dict[str, float]:
    """One RecognizeStream with ``clients`` requests in flight at a time."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for _ in range(clients):
        queue.put_nowait(True)

    async def requests_out() -> Any:
        for index in range(requests):
            await queue.get()
            sent[str(index)] = time.perf_counter()
            yield inference_pb2.RecognizeStreamRequest(request_id=str(index), request=request)

    start = time.perf_counter()
    call = stub.RecognizeStream(requests_out(), metadata=[("x-api-key", KEY)])
    async for answer in call:
        latencies.append(time.perf_counter() - sent[answer.request_id])
        if answer.result.outputs[0].labels.predicted[0].label_name != "malamute":
            raise AssertionError("dog.jpg misread")
        queue.put_nowait(True)
    elapsed = time.perf_counter() - start
    return {
        "images_per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int, Path, int]:
    """A ``sightd serve`` process on loopback, every port picked by the system: the process, its gRPC port,
    its log and its REST port."""
    log = data_dir / "serve.log"
    env = {**os.environ, "SIGHTD_API_KEY": KEY}
    command = [sys.executable, "-m", "sightd.cli", "serve", "--data-dir", str(data_dir), "--grpc-port", "0",
               "--metrics-port", "0", "--http-port", "0", "--log-format", "json",
               "--log-level", "WARNING"]  # fmt: skip
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=handle, env=env)
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode()
        if line.startswith("sightd: serving gRPC on "):
            port = int(line.split()[4].rsplit(":", 1)[1].rstrip(","))
            rest = re.search(r"REST \(v0\.7\) on https?://\S+:(\d+)/", line)
            assert rest is not None, line
            return process, port, log, int(rest[1])
    raise RuntimeError(f"sightd serve did not start:\n{log.read_text()}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    build.build()
    zoo = installed.load()
    dog = (artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg").read_bytes()
    definition = VersionDefinition.from_zoo(MODEL, zoo)
    request = inference_pb2.RecognizeRequest(
        spec_id=MODEL, inputs=[common_pb2.Input(image=common_pb2.ImageInput(data=dog))], max_predictions=5
    )
    with tempfile.TemporaryDirectory() as folder:
        process, port, _, _ = start_server(Path(folder))
        runtime = Runtime(RuntimeSettings.from_settings(load_settings(environ={})))  # the server's settings
        await runtime.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)

                async def unary() -> str:
                    answer = await stub.Recognize(request, metadata=[("x-api-key", KEY)], timeout=60)
                    return str(answer.result.outputs[0].labels.predicted[0].label_name)

                async def direct() -> str:
                    (outcome,) = await runtime.recognize(
                        definition, [ImageRequest(dog)], max_predictions=5, deadline=time.monotonic() + 60
                    )
                    assert outcome.result is not None
                    return str(outcome.result["outputs"][0]["labels"]["predicted"][0]["label_name"])

                await unary()  # loads the model on the server
                await direct()
                variants: dict[str, Callable[[int], Awaitable[dict[str, float]]]] = {
                    "runtime_in_process": lambda c: closed_loop(direct, c, args.requests),
                    "grpc_recognize": lambda c: closed_loop(unary, c, args.requests),
                    "grpc_stream": lambda c: stream_loop(stub, request, c, args.requests),
                }
                rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
                for _ in range(args.rounds):
                    for concurrency in args.concurrency:
                        for name, variant in variants.items():
                            rounds.setdefault((name, concurrency), []).append(await variant(concurrency))
        finally:
            await runtime.stop()
            process.terminate()
            process.wait(60)
    results = []
    for (name, concurrency), measured in rounds.items():
        results.append(
            {
                "variant": name,
                "concurrency": concurrency,
                **{key: statistics.median(m[key] for m in measured) for key in measured[0]},
            }
        )
    baseline = {
        r["concurrency"]: r["images_per_second"] for r in results if r["variant"] == "runtime_in_process"
    }
    for row in results:
        row["over_runtime_in_process"] = row["images_per_second"] / baseline[row["concurrency"]]
    return {"bench": "grpc_service", "model": MODEL, "machine": machine(), "rounds": args.rounds,
            "requests": args.requests, "results": results}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    record = asyncio.run(run(args))
    print(json.dumps(record["machine"]))
    for row in record["results"]:
        print(
            f"{row['variant']:<20} concurrency {row['concurrency']:>3}: "
            f"{row['images_per_second']:7.1f} img/s  p50 {row['p50_ms']:7.1f} ms  "
            f"p99 {row['p99_ms']:7.1f} ms  x{row['over_runtime_in_process']:.2f} of the in-process runtime"
        )
    print(json.dumps(record))


if __name__ == "__main__":
    main()
