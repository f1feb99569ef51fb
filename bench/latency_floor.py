"""The latency floor of ``sightd serve`` at concurrency 1: on a tiny model, is sightd's gRPC ``Recognize`` p50
within the in-process pipeline's p50 plus an empty grpc.aio call's p50 plus 300 µs (the server's own
queueing and result building)?

Measured side by side in one run, in interleaved rounds (the order rotates each round), figures being the
medians over rounds of each round's percentiles:

- **in process, core**: the version's core Recognizer (``sightd.runtime.models.build_version``, as the
  runtime builds it) called directly in this process, one image per call;
- **in process, runtime**: the same through ``sightd.runtime.Runtime`` (batcher, worker threads), to tell
  the runtime's queueing apart from the service's own cost (informative, not part of the bound);
- **empty gRPC**: a grpc.aio server in a subprocess whose one unary method answers an empty message to an
  empty request (generic handler, bytes, no proto); also the same call carrying as many bytes as the
  image's ``RecognizeRequest``, which is what moving the image costs (informative);
- **sightd gRPC**: ``Recognize`` on a real ``sightd serve`` process (bench/grpc_service.py's start-up), where
  the tiny model was uploaded and registered through the gRPC API exactly as a user would: a network
  (SQUASH to 32x32, FLOAT32, NCHW), a recognition spec of 10 exclusive labels, a version, made current.

The tiny model is built here with ``onnx``: input 1x3x32x32 float, GlobalAveragePool -> Flatten -> MatMul
(a fixed, seeded weight) -> Softmax over 10 classes. Images: the darknet dog.jpg resized to 64x48 with
OpenCV and encoded as a JPEG (the goal's image), and dog.jpg itself (768x576). Every client is the same
grpc.aio style: one channel, a call awaited at a time, the same metadata and deadline. The CPU time that
each server process spends per call comes from /proc/<pid>/stat.

Prints the machine, versions, one block per image, then one JSON line.

Usage: python bench/latency_floor.py [--rounds N] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import onnx
from google.protobuf import field_mask_pb2
from onnx import TensorProto, helper, numpy_helper

from grpc_service import KEY, machine, start_server
from loadgen import percentile
from sightd.app import documents
from sightd.runtime import ImageRequest, Runtime, RuntimeSettings, VersionDefinition, models
from sightd.v1 import (
    common_pb2,
    inference_pb2,
    inference_pb2_grpc,
    networks_pb2,
    networks_pb2_grpc,
    recognition_pb2,
    recognition_pb2_grpc,
)
from sightd.zoo import artifacts, build

SIDE = 32
CLASSES = 10
SERVER_OVERHEAD_US = 300.0  # the goal's allowance for the server's own queueing and result building
EMPTY_METHOD = "/bench.Empty/Call"
METADATA = (("x-api-key", KEY),)
DEADLINE_S = 60.0
MAX_PREDICTIONS = 5

PREPROCESSING: dict[str, Any] = {
    "inputs": [
        {
            "tensor_name": "image",
            "image": {
                "resize_type": "SQUASH",
                "data_type": "FLOAT32",
                "dimension_order": "NCHW",
                "pixel_scaling": 1.0,
                "target_size": f"{SIDE}x{SIDE}",
                "color_channels": "RGB",
            },
        }
    ],
    "batched_output": True,
}
SPEC_OUTPUTS: list[dict[str, Any]] = [
    {
        "labels": {
            "roi": "NONE",
            "exclusive": True,
            "labels": [{"id": index, "name": f"class {index}"} for index in range(CLASSES)],
        }
    }
]
POST_PROCESSINGS: list[dict[str, Any]] = [
    {"classification": {"output_tensor": "probabilities", "thresholds": [0.025] * CLASSES}}
]


def tiny_model() -> bytes:
    """image (N, 3, 32, 32) float -> GlobalAveragePool -> Flatten -> MatMul (3 x 10, seeded) -> Softmax."""
    weight = (np.random.default_rng(7).standard_normal((3, CLASSES)) * 4).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "weight"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "latency_floor_tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", CLASSES])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def small_jpeg(dog: bytes, width: int = 64, height: int = 48) -> bytes:
    decoded = cv2.imdecode(np.frombuffer(dog, np.uint8), cv2.IMREAD_COLOR)
    resized = cv2.resize(decoded, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode the small JPEG")
    return encoded.tobytes()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The empty grpc.aio server, run as `python bench/latency_floor.py --empty-server` in a subprocess.


async def serve_empty() -> None:
    async def empty(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return b""

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Empty", {"Call": grpc.unary_unary_rpc_method_handler(empty)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"port {port}", flush=True)
    await server.wait_for_termination()


def start_empty_server() -> tuple[subprocess.Popen[bytes], int]:
    command = [sys.executable, str(Path(__file__).resolve()), "--empty-server"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith("port "):
        process.kill()
        raise RuntimeError(f"the empty grpc.aio server did not start: {line!r}")
    return process, int(line.split()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Registering the tiny model on sightd through the gRPC API.


def upload(network: networks_pb2.Network, model: bytes) -> Iterator[networks_pb2.CreateNetworkRequest]:
    yield networks_pb2.CreateNetworkRequest(network=network)
    chunk = 1 << 20
    for start in range(0, len(model), chunk):
        part = networks_pb2.FileChunk(field_name="model.onnx", data=model[start : start + chunk])
        yield networks_pb2.CreateNetworkRequest(chunk=part)


async def register(channel: grpc.aio.Channel, model: bytes) -> str:
    """Network, spec, version and the spec's current version, as a user creates them; the spec's id."""
    networks = networks_pb2_grpc.NetworkServiceStub(channel)
    specs = recognition_pb2_grpc.RecognitionSpecServiceStub(channel)
    versions = recognition_pb2_grpc.RecognitionVersionServiceStub(channel)
    network_message = networks_pb2.Network(
        name="latency floor tiny",
        framework="onnx",
        preprocessing=documents.to_message(PREPROCESSING, networks_pb2.Preprocessing),
    )
    network = (await networks.CreateNetwork(upload(network_message, model), metadata=METADATA)).network
    spec = (
        await specs.CreateRecognitionSpec(
            recognition_pb2.CreateRecognitionSpecRequest(
                spec=recognition_pb2.RecognitionSpec(
                    name="latency floor tiny",
                    outputs=[
                        documents.to_message(o, recognition_pb2.RecognitionSpecOutput) for o in SPEC_OUTPUTS
                    ],
                )
            ),
            metadata=METADATA,
        )
    ).spec
    version = (
        await versions.CreateRecognitionVersion(
            recognition_pb2.CreateRecognitionVersionRequest(
                version=recognition_pb2.RecognitionVersion(
                    spec_id=spec.id,
                    network_id=network.id,
                    post_processings=[
                        documents.to_message(p, recognition_pb2.PostProcessing) for p in POST_PROCESSINGS
                    ],
                )
            ),
            metadata=METADATA,
        )
    ).version
    await specs.UpdateRecognitionSpec(
        recognition_pb2.UpdateRecognitionSpecRequest(
            spec=recognition_pb2.RecognitionSpec(id=spec.id, current_version_id=version.id),
            update_mask=field_mask_pb2.FieldMask(paths=["current_version_id"]),
        ),
        metadata=METADATA,
    )
    return str(spec.id)


# Measuring.

Call = Callable[[], Awaitable[str]]


async def timed(one: Call, requests: int) -> tuple[list[float], set[str]]:
    """``requests`` calls one after the other: their latencies (seconds) and the top labels answered."""
    latencies: list[float] = []
    labels: set[str] = set()
    for _ in range(requests):
        start = time.perf_counter()
        labels.add(await one())
        latencies.append(time.perf_counter() - start)
    return latencies, labels


def summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def percentiles_us(latencies: list[float]) -> dict[str, float]:
    return {"p50_us": percentile(latencies, 0.5) * 1e6, "p99_us": percentile(latencies, 0.99) * 1e6}


class Variant:
    """One way of recognising (or of making an empty call): its calls, and the server process it runs in."""

    def __init__(self, name: str, image: str | None, one: Call, pid: int | None) -> None:
        self.name, self.image, self.one, self.pid = name, image, one, pid
        self.rounds: list[dict[str, float]] = []
        self.labels: set[str] = set()
        self.calls = 0
        self.server_cpu = 0.0

    async def measure(self, requests: int) -> None:
        before = cpu_seconds(self.pid) if self.pid is not None else 0.0
        latencies, labels = await timed(self.one, requests)
        if self.pid is not None:
            self.server_cpu += cpu_seconds(self.pid) - before
        self.calls += requests
        self.labels |= labels
        self.rounds.append(percentiles_us(latencies))

    def result(self) -> dict[str, Any]:
        row: dict[str, Any] = {"variant": self.name, "image": self.image, **summary(self.rounds)}
        if self.pid is not None:
            row["server_cpu_us_per_call"] = self.server_cpu / self.calls * 1e6
        return row


def top_label(result: Any) -> str:
    if not result.ok:
        raise RuntimeError(f"in-process recognition failed: {result.error_message}")
    return str(result.outputs[0].predicted[0].label_name)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    build.build()
    dog = (artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg").read_bytes()
    images = {"dog_64x48": small_jpeg(dog), "dog_768x576": dog}
    model = tiny_model()
    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(folder) / "tiny.onnx"
        model_path.write_bytes(model)
        definition = VersionDefinition(
            key="latency-floor",
            network_path=model_path,
            preprocessing=PREPROCESSING,
            mean_files={},
            spec_outputs=SPEC_OUTPUTS,
            post_processings=POST_PROCESSINGS,
        )
        recognizer = models.build_version(definition, RuntimeSettings()).recognizer
        data_dir = Path(folder) / "data"
        data_dir.mkdir()
        process, port, _, _ = start_server(data_dir)
        empty_process, empty_port = start_empty_server()
        runtime = Runtime(RuntimeSettings())
        await runtime.start()
        try:
            async with (
                grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
                grpc.aio.insecure_channel(f"127.0.0.1:{empty_port}") as empty_channel,
            ):
                spec_id = await register(channel, model)
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                empty_call = empty_channel.unary_unary(EMPTY_METHOD)

                async def empty() -> str:
                    await empty_call(b"", metadata=METADATA, timeout=DEADLINE_S)
                    return ""

                variants = [Variant("empty_grpc", None, empty, empty_process.pid)]
                for image, data in images.items():
                    variants += variants_of(
                        image,
                        data,
                        spec_id=spec_id,
                        recognizer=recognizer,
                        runtime=runtime,
                        definition=definition,
                        stub=stub,
                        empty_call=empty_call,
                        sightd_pid=process.pid,
                        empty_pid=empty_process.pid,
                    )
                for variant in variants:  # loads the model on the server, warms every path up
                    await timed(variant.one, args.warmup)
                for index in range(args.rounds):
                    shift = index % len(variants)
                    for variant in variants[shift:] + variants[:shift]:
                        await variant.measure(args.requests)
        finally:
            await runtime.stop()
            stop(empty_process)
            stop(process)
    by_name = {(v.name, v.image): v for v in variants}
    for image in images:
        expected = by_name[("in_process_core", image)].labels
        for name in ("in_process_runtime", "sightd_grpc"):
            if by_name[(name, image)].labels != expected:
                raise AssertionError(
                    f"{name} read {image} as {by_name[(name, image)].labels}, not {expected}"
                )
    results = [v.result() for v in variants]
    rows = {(r["variant"], r["image"]): r for r in results}
    empty_p50 = rows[("empty_grpc", None)]["p50_us"]
    goals = []
    for image, data in images.items():
        core = rows[("in_process_core", image)]["p50_us"]
        sightd = rows[("sightd_grpc", image)]
        bound = core + empty_p50 + SERVER_OVERHEAD_US
        goals.append(
            {
                "image": image,
                "image_bytes": len(data),
                "top_label": next(iter(by_name[("in_process_core", image)].labels)),
                "in_process_p50_us": core,
                "empty_grpc_p50_us": empty_p50,
                "server_overhead_allowance_us": SERVER_OVERHEAD_US,
                "bound_p50_us": bound,
                "sightd_p50_us": sightd["p50_us"],
                "sightd_p99_us": sightd["p99_us"],
                "margin_us": bound - sightd["p50_us"],
                "holds": sightd["p50_us"] <= bound,
                "sightd_server_cpu_us_per_request": sightd["server_cpu_us_per_call"],
            }
        )
    return {
        "bench": "latency_floor",
        "goal": "sightd gRPC p50 <= in-process p50 + empty grpc.aio p50 + 300 us, tiny model, concurrency 1",
        "model": {"input": f"1x3x{SIDE}x{SIDE} float32", "classes": CLASSES, "bytes": len(model)},
        "machine": machine(),
        "rounds": args.rounds,
        "requests": args.requests,
        "results": results,
        "goals": goals,
        # the goal itself: the small JPEG (dog.jpg's row tells what a real image adds)
        "holds": goals[0]["holds"],
        "margin_us": goals[0]["margin_us"],
    }


def variants_of(
    image: str,
    data: bytes,
    *,
    spec_id: str,
    recognizer: Any,
    runtime: Runtime,
    definition: VersionDefinition,
    stub: inference_pb2_grpc.InferenceServiceStub,
    empty_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    sightd_pid: int,
    empty_pid: int,
) -> list[Variant]:
    request = inference_pb2.RecognizeRequest(
        spec_id=spec_id,
        inputs=[common_pb2.Input(image=common_pb2.ImageInput(data=data))],
        max_predictions=MAX_PREDICTIONS,
    )
    payload = request.SerializeToString()

    async def core() -> str:
        (result,) = recognizer.recognize([(data, None)], max_predictions=MAX_PREDICTIONS)
        return top_label(result)

    async def in_runtime() -> str:
        (outcome,) = await runtime.recognize(
            definition, [ImageRequest(data)], max_predictions=MAX_PREDICTIONS, deadline=time.monotonic() + 60
        )
        assert outcome.result is not None, outcome.error
        return str(outcome.result["outputs"][0]["labels"]["predicted"][0]["label_name"])

    async def carrying() -> str:
        await empty_call(payload, metadata=METADATA, timeout=DEADLINE_S)
        return ""

    async def sightd() -> str:
        answer = await stub.Recognize(request, metadata=METADATA, timeout=DEADLINE_S)
        return str(answer.result.outputs[0].labels.predicted[0].label_name)

    return [
        Variant("in_process_core", image, core, None),
        Variant("in_process_runtime", image, in_runtime, None),
        Variant("empty_grpc_same_bytes", image, carrying, empty_pid),
        Variant("sightd_grpc", image, sightd, sightd_pid),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--requests", type=int, default=200, help="calls per variant and round (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="calls per variant before the rounds")
    parser.add_argument("--empty-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.empty_server:
        asyncio.run(serve_empty())
        return
    record = asyncio.run(run(args))
    print(json.dumps(record["machine"]))
    for row in record["results"]:
        cpu = row.get("server_cpu_us_per_call")
        print(
            f"{row['variant']:<22} {row['image'] or '':<12} "
            f"p50 {row['p50_us']:8.0f} us  p99 {row['p99_us']:8.0f} us"
            + (f"  server CPU {cpu:6.0f} us/call" if cpu is not None else "")
        )
    for goal in record["goals"]:
        print(
            f"{goal['image']} ({goal['image_bytes']} bytes):"
            f" in-process p50 {goal['in_process_p50_us']:.0f} us"
            f" + empty gRPC p50 {goal['empty_grpc_p50_us']:.0f} us + {SERVER_OVERHEAD_US:.0f} us"
            f" = bound {goal['bound_p50_us']:.0f} us; sightd p50 {goal['sightd_p50_us']:.0f} us"
            f" (p99 {goal['sightd_p99_us']:.0f} us): margin {goal['margin_us']:+.0f} us,"
            f" {'holds' if goal['holds'] else 'DOES NOT HOLD'}; sightd server CPU"
            f" {goal['sightd_server_cpu_us_per_request']:.0f} us/request"
        )
    print(json.dumps(record))


if __name__ == "__main__":
    main()
