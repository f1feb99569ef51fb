"""The serving benchmark: sightd over gRPC, over REST and in-process, the peers a user would otherwise run,
and the limit of this machine, side by side in one run.

- **The limit**: the model through onnxruntime's Python API on a pre-made input tensor, in the best batch and
  thread layout (batch 1, 2, 8; one session of 2 intra-op threads, or two 1-thread sessions each run by a
  thread of its own; onnxruntime's other options at their defaults) gives the best inference rate R (img/s);
  the cost d of decoding and preprocessing one image on one core is the lower of sightd's core
  (``_core.BatchPreprocessor`` with the model's preprocessing, one thread) and OpenCV-Python + NumPy (the
  same recipe with ``cv2.resize`` INTER_LINEAR, one OpenCV thread). With C cores shared by both,
  limit = 1 / (1/R + d/C) img/s for JPEG in.
- **sightd**: a ``sightd serve`` process (default settings) over gRPC: unary ``Recognize`` (grpc_unary),
  ``Infer`` then ``WaitTask`` (grpc_infer_wait), one bidirectional ``RecognizeStream`` with as many requests
  in flight as clients (grpc_stream); over REST as the official client (deepomatic-api 1.0.0) does it
  (rest): the v0.7 ``POST /v0.7/recognition/public/{model}/inference`` with the image as a multipart file
  part, then ``GET /v0.7/tasks/{id}/`` at once and again on the client's schedule (50 ms, then 100 ms plus
  a random exponential back-off) until the task is done; the same on a server of its own with
  ``--rest-task-wait-seconds 1`` (rest_task_wait: a GET of a pending task waits for it); the same unary
  ``Recognize`` on a second server
  with ``--cpu-max-batch 8`` (grpc_unary_batching: dynamic batching up to 8 images on the CPU, which the
  service's defaults turn off there); in-process, in a process of its own: the core ``Recognizer`` called
  directly by one thread per client (inprocess_recognizer), and the ``Runtime`` (the service's settings)
  called by one asyncio task per client (inprocess_runtime).
- **The transport's reference** (grpc_bare): bench/bare_grpc.py, a bare grpc.aio server around the same
  core ``Recognizer`` (the runtime's worker threads and session layout, sightd's channel arguments, none of
  its layers), loaded with the same unary requests as grpc_unary. What it loses against the limit is
  grpc.aio's cost per call; what grpc_unary loses against it, sightd's own layers. grpc_bare_native is the
  same handler on the same event loop behind gRPC C++ instead of grpc.aio (``--transport native``,
  bench/native/grpc_bridge.cc); grpc_bare_native_threads the same again, run by the bridge's own worker
  threads without the event loop: what two designs of a native front end for sightd would reach.
- **The peers** of bench/peers/ (diy, diy_threadpool, bentoml), started with ``peers.launch``; a peer that is
  not available is skipped, with the reason printed and recorded.

Every request recognises one image (max_predictions 5). Load: a closed loop of N concurrent clients, for
--seconds per cell (at least 2 requests per client) or --requests; run by the native load generator
(bench/native/loadgen.cc, ``--client native``, the default) for the unary and stream gRPC variants (the
bare servers included) and the peers, so that the client takes as little as it can of the cores the servers
share with it, and by bench/loadgen.py for grpc_infer_wait and rest (their clients' logic) and with
``--client python``. Every answer is checked (dog.jpg: "malamute" top-1 for imagenet-mobilenet-v2, a "dog"
box for coco-yolov3-tiny): the label in the answer's bytes for each, a full parse of every --check-every'th.
Each server process (sightd, the bare servers, the peers, the in-process hosts) serves one model; all of one
model's run at once, idle but for the one under load. Variants take turns cell by cell (each round starting
one variant further), and the limit is measured at the start of each round, so that the noise of a shared
machine hits them alike; figures are medians over rounds. (A run of the default matrix takes most of an hour.)

Per cell: img/s; p50/p99 latency; server CPU time per image (utime + stime from /proc of the server process
and its descendants, delta over the cell; in-process hosts: ``time.process_time`` of the host process over
the cell, the client threads or tasks included since they are the in-process caller); client CPU per
request (the load generator's process: ``time.process_time`` of this one, or what the native one reports
of itself; nothing for in-process); peak RSS (VmHWM summed over the server's processes, reset at the start
of each cell through /proc/PID/clear_refs); for sightd the RSS at the end of the model's run too; the
average batch (sightd: ``sightd_runtime_batch_images`` sum/count deltas from its metrics endpoint;
in-process runtime: the same metric in its registry; the Recognizer: 1); ratios of img/s over the limit and
over grpc_bare and each peer at the same concurrency, and of p99 over theirs.

Usage: python bench/serving.py [--models M...] [--images dog dog4000] [--concurrency 1 4 8 32]
       [--variants V...] [--batching-on] [--rounds N] [--seconds S | --requests N] [--client native|python]
       [--json-out PATH]
Prints the machine, versions, R, d and the limit, one table per model and image, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import onnxruntime as ort

from host import cpu_model
from sightd import __version__, _core, engine
from sightd.preprocessing import parse_preprocessing
from sightd.v1 import common_pb2, inference_pb2, tasks_pb2
from sightd.zoo import artifacts, build, installed

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from loadgen import (  # noqa: E402  (bench/ is put on sys.path just above)
    NATIVE_LOADGEN,
    HttpConnection,
    Load,
    closed_loop,
    encode_bytes_field,
    http_get,
    http_request,
    native_loop,
    official_inference_post,
    official_task_wait,
    read_bytes_field,
    stream_window,
    threaded_closed_loop,
)

MODELS = ("imagenet-mobilenet-v2", "coco-yolov3-tiny")
IMAGES = ("dog", "dog4000")
INPROCESS = ("inprocess_recognizer", "inprocess_runtime")
SIGHTD = ("grpc_unary", "grpc_infer_wait", "grpc_stream", "rest", "rest_task_wait", "grpc_unary_batching")
# Variants served by a sightd of their own, with these flags (the others share one with the defaults).
OWN_SERVERS = {
    "grpc_unary_batching": ("sightd_batching", ["--cpu-max-batch", "8"]),
    "rest_task_wait": ("sightd_task_wait", ["--rest-task-wait-seconds", "1"]),
}
BARE = "grpc_bare"  # bench/bare_grpc.py: the gRPC transport's reference
BARE_NATIVE = "grpc_bare_native"  # the same handler behind gRPC C++ (bench/native/grpc_bridge.cc)
BARE_THREADS = "grpc_bare_native_threads"  # ... run by the bridge's threads, without the event loop
BARES = {BARE: "aio", BARE_NATIVE: "native", BARE_THREADS: "native-threads"}  # bench/bare_grpc.py --transport
PEERS = ("diy", "diy_threadpool", "bentoml")
VARIANTS = (*INPROCESS, *SIGHTD, *BARES, *PEERS)
# What every answer must hold: the top-1 label (classification) or one of the boxes' labels (detection).
EXPECTED = {"imagenet-mobilenet-v2": ("malamute", True), "coco-yolov3-tiny": ("dog", False)}
KEY = "bench-key-0123456789abcdef"
HOST = "127.0.0.1"
MAX_PREDICTIONS = 5
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 * MIB), ("grpc.max_receive_message_length", 64 * MIB)]
RECOGNIZE = "/sightd.v1.InferenceService/Recognize"
INFER = "/sightd.v1.InferenceService/Infer"
STREAM = "/sightd.v1.InferenceService/RecognizeStream"
WAIT_TASK = "/sightd.v1.TaskService/WaitTask"
# WaitTaskRequest.timeout: google.protobuf.Duration{seconds: 60} (field 2; inside it seconds is field 1).
WAIT_TIMEOUT = bytes([0x12, 0x02, 0x08, 60])


# --- machine and versions ---------------------------------------------------------------------------------


def peer_versions() -> dict[str, str]:
    """Versions of the peers' packages in .venv-peers (empty when it is not there)."""
    python = ROOT / ".venv-peers" / "bin" / "python"
    if not python.is_file():
        return {}
    names = ["bentoml", "fastapi", "uvicorn", "onnxruntime", "pillow", "numpy"]
    script = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", script, *names], capture_output=True, text=True, timeout=60, check=True
        )
        versions: dict[str, str] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    return versions


def machine() -> dict[str, Any]:
    model = cpu_model()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "onnxruntime": ort.__version__,
        "core_onnxruntime": engine.load_onnxruntime(),
        "numpy": np.__version__,
        "opencv_python": cv2.__version__,
        "sightd": __version__,
        "bentoml": None,
        "peers_venv": peer_versions(),
    }


# --- images -----------------------------------------------------------------------------------------------


def prepare_images(folder: Path) -> dict[str, dict[str, Any]]:
    """dog.jpg (768x576) as it is, and a 4000x3000 JPEG made from it: upscaled with INTER_CUBIC (the same
    4:3 aspect, so the same answers are expected), encoded at quality 90. Written under ``folder``."""
    dog_path = artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg"
    dog = dog_path.read_bytes()
    pixels = cv2.imdecode(np.frombuffer(dog, np.uint8), cv2.IMREAD_COLOR)
    big = cv2.resize(pixels, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    images = {
        "dog": {"data": dog, "description": f"darknet dog.jpg {pixels.shape[1]}x{pixels.shape[0]}"},
        "dog4000": {
            "data": encoded.tobytes(),
            "description": (
                f"darknet dog.jpg {pixels.shape[1]}x{pixels.shape[0]} upscaled to 4000x3000 with OpenCV's "
                "INTER_CUBIC, JPEG quality 90"
            ),
        },
    }
    for name, image in images.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(image["data"])
        image["path"] = path
        image["bytes"] = len(image["data"])
    return images


# --- answers ----------------------------------------------------------------------------------------------


class Check:
    """The sanity check of every answer: a cheap look at its bytes, a full parse on a sample."""

    def __init__(self, model: str, every: int) -> None:
        self.label, self.top1 = EXPECTED[model]
        self.token = self.label.encode()
        self.every = max(1, every)

    def full(self, index: int) -> bool:
        return index % self.every == 0

    def names(self, names: list[str], what: str) -> None:
        good = bool(names) and names[0] == self.label if self.top1 else self.label in names
        if not good:
            expected = f"{self.label!r} top-1" if self.top1 else f"a {self.label!r} box"
            raise AssertionError(f"{what}: expected {expected}, got {names[:5]}")

    def raw(self, data: bytes, what: str) -> None:
        if self.token not in data:
            raise AssertionError(f"{what}: no {self.label!r} in the answer {data[:200]!r}")

    def document(self, result: dict[str, Any], what: str) -> None:
        """A v0.7 result document ``{"outputs": [{"labels": {"predicted": [...]}}]}``."""
        self.names([p["label_name"] for p in result["outputs"][0]["labels"]["predicted"]], what)

    def message(self, result: Any, what: str) -> None:
        """A sightd.v1.RecognitionResult."""
        self.names([p.label_name for p in result.outputs[0].labels.predicted], what)


# --- processes: CPU time and memory from /proc --------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root``, its descendants and the rest of its process group (the peers run in groups of their own)."""
    parents: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and fields[0] != "Z":
            parents[int(entry.name)] = (int(fields[1]), int(fields[2]))
    found = {root} if root in parents else set()
    found |= {pid for pid, (_, group) in parents.items() if group == root}
    while children := {pid for pid, (parent, _) in parents.items() if parent in found} - found:
        found |= children
    return sorted(found)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live process (all its threads)."""
    found = {}
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def _status_kib(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory_mib(pids: list[int], field: str) -> float:
    """VmHWM (peak) or VmRSS summed over the processes, MiB."""
    return sum(_status_kib(pid, field) for pid in pids) / 1024


def reset_peaks(pids: list[int]) -> bool:
    """Resets VmHWM to the current RSS (``5`` into /proc/PID/clear_refs); False where it is refused."""
    done = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def prometheus_value(text: str, name: str, labels: str) -> float:
    """The value of ``name{labels}`` in Prometheus' text format (0 when absent)."""
    prefix = f"{name}{{"
    for line in text.splitlines():
        if line.startswith(prefix) and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- the limit --------------------------------------------------------------------------------------------


def opencv_numpy(data: bytes, image: dict[str, Any]) -> np.ndarray:
    """The model's preprocessing (CROP or LETTERBOX, RGB, pixel scaling, mean/std, NCHW float32) as a user
    writes it with OpenCV-Python and NumPy (bilinear resize, no antialiasing)."""
    width, height = (int(v) for v in str(image["target_size"]).split("x"))
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    if image["resize_type"] == "CROP":
        ratio = float(image.get("crop_ratio", 1.0))
        short = min(width, height) / ratio
        scale = short / min(w, h)
        rw, rh = max(width, round(w * scale)), max(height, round(h * scale))
        resized = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
        top, left = (rh - height) // 2, (rw - width) // 2
        fitted = resized[top : top + height, left : left + width]
    elif image["resize_type"] == "LETTERBOX":
        scale = min(width / w, height / h)
        rw, rh = round(w * scale), round(h * scale)
        resized = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
        fitted = np.full((height, width, 3), int(image.get("pad_value", 0)), np.uint8)
        top, left = (height - rh) // 2, (width - rw) // 2
        fitted[top : top + rh, left : left + rw] = resized
    else:
        raise ValueError(f"resize_type {image['resize_type']} is not implemented here")
    rgb = cv2.cvtColor(fitted, cv2.COLOR_BGR2RGB).astype(np.float32)
    rgb *= float(image.get("pixel_scaling", 255.0)) / 255.0
    if "mean" in image:
        rgb -= np.asarray(image["mean"], np.float32)
    if "std" in image:
        rgb /= np.asarray(image["std"], np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


class Limit:
    """One model's inference layouts and decode+preprocess variants, measured once per round."""

    BATCHES = (1, 2, 8)

    def __init__(self, network: installed.InstalledNetwork, images: dict[str, dict[str, Any]]) -> None:
        self.images = images
        two = ort.SessionOptions()
        two.intra_op_num_threads = 2
        self.two_threads = ort.InferenceSession(str(network.path), two, providers=["CPUExecutionProvider"])
        single = ort.SessionOptions()
        single.intra_op_num_threads = 1
        self.single = [
            ort.InferenceSession(str(network.path), single, providers=["CPUExecutionProvider"])
            for _ in range(2)
        ]
        info = self.two_threads.get_inputs()[0]
        self.input_name = info.name
        shape = [d if isinstance(d, int) else 1 for d in info.shape[1:]]
        generator = np.random.default_rng(0)
        self.tensors = {b: generator.standard_normal((b, *shape)).astype(np.float32) for b in self.BATCHES}
        self.image_spec = network.preprocessing["inputs"][0]["image"]
        self.core = _core.BatchPreprocessor(parse_preprocessing(network.preprocessing), threads=1)
        self.inference: dict[str, list[float]] = {}
        self.decode: dict[str, dict[str, list[float]]] = {}
        self.difference: dict[str, float] = {}
        for name, image in images.items():
            # Same work: the core's tensor and OpenCV-Python's differ only by the resize's antialiasing.
            batch = self.core.prepare([(image["data"], None)])
            prepared = batch.images[0]
            assert prepared.ok, prepared.error_message
            core = np.asarray(batch.groups[prepared.group].feeds[self.input_name][prepared.row])
            self.difference[name] = float(np.abs(core - opencv_numpy(image["data"], self.image_spec)).mean())

    def _rate(self, run: Callable[[], object], images: int, seconds: float) -> float:
        run()  # the first run of a batch size allocates
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds or count < 2:
            run()
            count += 1
        return images * count / elapsed

    def _rate_two_sessions(self, batch: int, seconds: float) -> float:
        tensor = self.tensors[batch]
        counts = [0, 0]
        for session in self.single:
            session.run(None, {self.input_name: tensor})
        barrier = threading.Barrier(3)

        def loop(number: int) -> None:
            session = self.single[number]
            barrier.wait()
            end = time.perf_counter() + seconds
            while time.perf_counter() < end or counts[number] < 2:
                session.run(None, {self.input_name: tensor})
                counts[number] += 1

        threads = [threading.Thread(target=loop, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        return batch * sum(counts) / (time.perf_counter() - started)

    def measure(self, seconds: float) -> None:
        for batch in self.BATCHES:
            tensor = self.tensors[batch]
            rate = self._rate(
                lambda t=tensor: self.two_threads.run(None, {self.input_name: t}), batch, seconds
            )
            self.inference.setdefault(f"batch {batch}, 1 session x 2 threads", []).append(rate)
            self.inference.setdefault(f"batch {batch}, 2 sessions x 1 thread", []).append(
                self._rate_two_sessions(batch, seconds)
            )
        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for name, image in self.images.items():
                data = image["data"]
                variants: dict[str, Callable[[], object]] = {
                    "core": lambda d=data: self.core.prepare([(d, None)]),
                    "opencv_numpy": lambda d=data: opencv_numpy(d, self.image_spec),
                }
                for variant, function in variants.items():
                    rate = self._rate(function, 1, seconds / 2)
                    self.decode.setdefault(name, {}).setdefault(variant, []).append(1000 / rate)
        finally:
            cv2.setNumThreads(previous)

    def summary(self, cores: int) -> dict[str, Any]:
        inference = {name: statistics.median(rates) for name, rates in self.inference.items()}
        best = max(inference, key=lambda name: inference[name])
        rate = inference[best]
        decode = {
            image: {variant: statistics.median(ms) for variant, ms in variants.items()}
            for image, variants in self.decode.items()
        }
        d_ms = {image: min(variants.values()) for image, variants in decode.items()}
        limit = {image: 1 / (1 / rate + d_ms[image] / 1000 / cores) for image in decode}
        return {
            "inference_images_per_second": {k: round(v, 1) for k, v in inference.items()},
            "best_layout": best,
            "R": round(rate, 1),
            "decode_preprocess_ms": {
                image: {k: round(v, 3) for k, v in variants.items()} for image, variants in decode.items()
            },
            "d_ms": {image: round(ms, 3) for image, ms in d_ms.items()},
            "core_vs_opencv_mean_abs_diff": {k: round(v, 4) for k, v in self.difference.items()},
            "cores": cores,
            "images_per_second": {image: round(value, 1) for image, value in limit.items()},
        }


# --- targets: what a cell loads ---------------------------------------------------------------------------


def recognize_requests(model: str, images: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """Each image's serialised ``RecognizeRequest`` for the public model (its spec id), max_predictions 5."""
    return {
        image: inference_pb2.RecognizeRequest(
            spec_id=model,
            inputs=[common_pb2.Input(image=common_pb2.ImageInput(data=spec["data"]))],
            max_predictions=MAX_PREDICTIONS,
        ).SerializeToString()
        for image, spec in images.items()
    }


async def unary_recognize_load(
    name: str,
    address: str,
    channel: grpc.aio.Channel,
    payload: bytes,
    clients: int,
    *,
    check: Check,
    native: bool,
    metadata: tuple[tuple[str, str], ...] = (),
    requests: int | None,
    seconds: float | None,
) -> Load:
    """A closed loop of unary ``Recognize`` calls at ``address``: by the native load generator, or by
    bench/loadgen.py on ``channel``; every answer checked, a sample parsed in full."""
    if native:
        load, samples = await native_loop(
            "grpc-unary",
            address,
            payload,
            clients,
            expect=check.token,
            method=RECOGNIZE,
            metadata=metadata,
            sample_every=check.every,
            requests=requests,
            seconds=seconds,
        )
        for answer in samples.values():
            check.message(inference_pb2.RecognizeResponse.FromString(answer).result, name)
        return load
    recognize = channel.unary_unary(RECOGNIZE, request_serializer=None, response_deserializer=None)

    async def unary(_client: int, index: int) -> None:
        answer = await recognize(payload, metadata=metadata, timeout=600)
        check.raw(answer, name)
        if check.full(index):
            check.message(inference_pb2.RecognizeResponse.FromString(answer).result, name)

    return await closed_loop(unary, clients, requests=requests, seconds=seconds)


class Target:
    """One variant of one model: ``load`` runs a closed loop on an image; ``pids`` are the processes whose
    CPU time and memory count as the server's."""

    name: str
    root: int

    def pids(self) -> list[int]:
        return process_tree(self.root)

    async def batches(self) -> tuple[float, float] | None:
        """(images, batches) run so far, or None when the server does not tell."""
        return None

    async def load(
        self, image: str, clients: int, requests: int | None, seconds: float | None
    ) -> tuple[Load, dict[str, Any]]:
        raise NotImplementedError


async def stop_server(channel: grpc.aio.Channel, process: subprocess.Popen[bytes]) -> None:
    """Closes this side's channel, then stops the server process (SIGTERM: its graceful drain)."""
    await channel.close()
    process.terminate()
    process.wait(60)
    if process.stdout is not None:
        process.stdout.close()


class SightdServer:
    """A ``sightd serve`` process on loopback, every port picked by the system."""

    PATTERN = re.compile(
        r"serving gRPC on \S+:(\d+)(?:, REST \(v0\.7\) on https?://\S+:(\d+)/v0\.7/)?, "
        r"metrics on https?://\S+:(\d+)/metrics"
    )

    def __init__(self, name: str, folder: Path, extra: list[str]) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        data = folder / f"{name}-data"
        data.mkdir()
        env = {**os.environ, "SIGHTD_API_KEY": KEY}
        command = [sys.executable, "-m", "sightd.cli", "serve", "--data-dir", str(data), "--grpc-port", "0",
                   "--http-port", "0", "--metrics-port", "0", "--log-format", "json", "--log-level",
                   "WARNING", "--drain-seconds", "5", *extra]  # fmt: skip
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=handle, env=env)
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            if match := self.PATTERN.search(raw.decode()):
                self.grpc_port = int(match[1])
                self.http_port = int(match[2])
                self.metrics_port = int(match[3])
                break
        else:
            raise RuntimeError(f"sightd serve did not start:\n{self.log.read_text()[-4000:]}")
        self.channel = grpc.aio.insecure_channel(f"{HOST}:{self.grpc_port}", options=GRPC_OPTIONS)

    async def batches(self) -> tuple[float, float]:
        status, body = await http_get(HOST, self.metrics_port, "/metrics")
        assert status == 200, status
        text = body.decode()
        labels = 'kind="recognition"'
        return (
            prometheus_value(text, "sightd_runtime_batch_images_sum", labels),
            prometheus_value(text, "sightd_runtime_batch_images_count", labels),
        )

    async def stop(self) -> None:
        await stop_server(self.channel, self.process)


class SightdTarget(Target):
    METADATA = (("x-api-key", KEY),)

    def __init__(
        self,
        name: str,
        server: SightdServer,
        model: str,
        images: dict[str, dict[str, Any]],
        check: Check,
        *,
        native: bool,
    ) -> None:
        self.name = name
        self.server = server
        self.root = server.process.pid
        self.model = model
        self.check = check
        self.native = native  # unary and stream calls from the native load generator
        self.requests = recognize_requests(model, images)
        self.rest_posts = {image: self._rest_post(spec) for image, spec in images.items()}

    def _rest_post(self, image: dict[str, Any]) -> bytes:
        return official_inference_post(
            f"{HOST}:{self.server.http_port}",
            f"/v0.7/recognition/public/{self.model}/inference",
            KEY,
            (Path(image["path"]).name, image["data"]),
            max_predictions=MAX_PREDICTIONS,
        )

    async def batches(self) -> tuple[float, float]:
        return await self.server.batches()

    async def load(
        self, image: str, clients: int, requests: int | None, seconds: float | None
    ) -> tuple[Load, dict[str, Any]]:
        budget = {"requests": requests, "seconds": seconds}
        payload = self.requests[image]
        channel = self.server.channel
        check = self.check
        if self.name in ("grpc_unary", "grpc_unary_batching"):
            load = await unary_recognize_load(
                self.name,
                f"{HOST}:{self.server.grpc_port}",
                channel,
                payload,
                clients,
                check=check,
                native=self.native,
                metadata=self.METADATA,
                **budget,
            )
            return load, {}
        if self.native and self.name == "grpc_stream":
            load, samples = await native_loop(
                "grpc-stream",
                f"{HOST}:{self.server.grpc_port}",
                payload,
                clients,
                expect=check.token,
                method=STREAM,
                metadata=self.METADATA,
                sample_every=check.every,
                **budget,
            )
            for answer in samples.values():
                response = inference_pb2.RecognizeStreamResponse.FromString(answer)
                assert response.HasField("result"), response.error
                check.message(response.result, self.name)
            return load, {}
        if self.name == "grpc_infer_wait":
            infer = channel.unary_unary(INFER, request_serializer=None, response_deserializer=None)
            wait = channel.unary_unary(WAIT_TASK, request_serializer=None, response_deserializer=None)

            async def infer_wait(_client: int, index: int) -> None:
                answer = await infer(payload, metadata=self.METADATA, timeout=600)
                task_id = read_bytes_field(answer, 1)
                assert task_id, answer
                done = await wait(
                    encode_bytes_field(1, task_id) + WAIT_TIMEOUT, metadata=self.METADATA, timeout=600
                )
                check.raw(done, self.name)
                if check.full(index):
                    task = tasks_pb2.WaitTaskResponse.FromString(done).task
                    assert task.status == tasks_pb2.TASK_STATUS_SUCCESS, task
                    check.message(task.data.recognition, self.name)

            return await closed_loop(infer_wait, clients, **budget), {}
        if self.name == "grpc_stream":
            inner = encode_bytes_field(2, payload)

            def request(index: int) -> bytes:
                return encode_bytes_field(1, str(index).encode()) + inner

            def answer(message: bytes) -> int:
                identifier = read_bytes_field(message, 1)
                assert identifier is not None, message
                index = int(identifier)
                check.raw(message, self.name)
                if check.full(index):
                    response = inference_pb2.RecognizeStreamResponse.FromString(message)
                    assert response.HasField("result"), response.error
                    check.message(response.result, self.name)
                return index

            load = await stream_window(
                channel, STREAM, request, answer, clients, metadata=self.METADATA, **budget
            )
            return load, {}
        if self.name in ("rest", "rest_task_wait"):
            looks: collections.Counter[int] = collections.Counter()
            return await self._rest(image, clients, requests, seconds, looks), {"task_looks": looks}
        raise ValueError(self.name)

    async def _rest(
        self,
        image: str,
        clients: int,
        requests: int | None,
        seconds: float | None,
        looks: collections.Counter[int],
    ) -> Load:
        """The official client's closed loop; ``looks`` counts the images by how many GETs of their task
        it took to see it done."""
        post = self.rest_posts[image]
        host = f"{HOST}:{self.server.http_port}"
        connections = [HttpConnection(HOST, self.server.http_port) for _ in range(clients)]
        for connection in connections:
            await connection.connect()
        generators = [random.Random(number) for number in range(clients)]
        check = self.check

        async def rest(client: int, index: int) -> None:
            connection = connections[client]
            status, body = await connection.send(post)
            if status != 200:
                raise AssertionError(f"{self.name}: POST answered {status}: {body[:300]!r}")
            task_id = json.loads(body)["task_id"]
            count, task = await official_task_wait(connection, host, KEY, task_id, generators[client])
            if task["status"] != "success":
                raise AssertionError(f"{self.name}: task {task_id} {task['status']}: {task['error']}")
            check.document(task["data"], self.name)
            looks[count] += 1

        try:
            return await closed_loop(rest, clients, requests=requests, seconds=seconds)
        finally:
            for connection in connections:
                await connection.close()


class PeerTarget(Target):
    def __init__(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        port: int,
        images: dict[str, Any],
        check: Check,
        *,
        native: bool,
    ) -> None:
        self.name = name
        self.process = process
        self.root = process.pid
        self.port = port
        self.check = check
        self.native = native  # the posts from the native load generator
        self.posts = {
            image: http_request(
                "POST",
                "/predict",
                f"{HOST}:{port}",
                spec["data"],
                {"Content-Type": "application/octet-stream"},
            )
            for image, spec in images.items()
        }

    async def load(
        self, image: str, clients: int, requests: int | None, seconds: float | None
    ) -> tuple[Load, dict[str, Any]]:
        post = self.posts[image]
        check = self.check
        if self.native:
            load, samples = await native_loop(
                "http",
                f"{HOST}:{self.port}",
                post,
                clients,
                expect=check.token,
                sample_every=check.every,
                requests=requests,
                seconds=seconds,
            )
            for body in samples.values():
                check.names([p["label_name"] for p in json.loads(body)["predictions"]], self.name)
            return load, {}
        connections = [HttpConnection(HOST, self.port) for _ in range(clients)]
        for connection in connections:
            await connection.connect()

        async def predict(client: int, index: int) -> None:
            status, body = await connections[client].send(post)
            if status != 200:
                raise AssertionError(f"{self.name}: answered {status}: {body[:300]!r}")
            check.raw(body, self.name)
            if check.full(index):
                check.names([p["label_name"] for p in json.loads(body)["predictions"]], self.name)

        try:
            return await closed_loop(predict, clients, requests=requests, seconds=seconds), {}
        finally:
            for connection in connections:
                await connection.close()


class BareTarget(Target):
    """``grpc_bare`` and the ``grpc_bare_native`` variants: bench/bare_grpc.py in a process of its own, on
    one of its transports, loaded with sightd's unary requests by the same load generator as
    ``grpc_unary``."""

    def __init__(
        self,
        name: str,
        model: str,
        images: dict[str, dict[str, Any]],
        check: Check,
        log: Path,
        *,
        native: bool,
    ) -> None:
        self.name = name
        self.check = check
        self.native = native
        self.requests = recognize_requests(model, images)  # grpc_unary's, sent without the API key
        command = [sys.executable, str(BENCH / "bare_grpc.py"), model, "--transport", BARES[name]]
        with log.open("wb") as handle:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=handle)
        self.root = self.process.pid
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"bench/bare_grpc.py did not start:\n{log.read_text()[-4000:]}")
        self.target = line.split()[-1]
        self.channel = grpc.aio.insecure_channel(self.target, options=GRPC_OPTIONS)

    async def load(
        self, image: str, clients: int, requests: int | None, seconds: float | None
    ) -> tuple[Load, dict[str, Any]]:
        load = await unary_recognize_load(
            self.name,
            self.target,
            self.channel,
            self.requests[image],
            clients,
            check=self.check,
            native=self.native,
            requests=requests,
            seconds=seconds,
        )
        return load, {}

    async def stop(self) -> None:
        await stop_server(self.channel, self.process)


class InProcessTarget(Target):
    """A host process (this script, ``inprocess-host``) that runs the closed loop against the model in its
    own process and reports what it measured: its CPU time is the in-process server's, callers included."""

    @classmethod
    async def start(
        cls, name: str, model: str, images: dict[str, dict[str, Any]], check_every: int, log: Path
    ) -> InProcessTarget:
        arguments = [str(Path(__file__).resolve()), "inprocess-host", name, model, str(check_every)]
        arguments += [f"{image}={spec['path']}" for image, spec in images.items()]
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *arguments,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=handle,
                limit=64 * MIB,
            )
        target = cls(name, process, log)
        ready = await target._answer()
        assert ready.get("ready"), ready
        return target

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.root = process.pid
        self.log = log

    async def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} host exited:\n{self.log.read_text()[-4000:]}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name} host: {answer['error']}")
        return answer

    async def load(
        self, image: str, clients: int, requests: int | None, seconds: float | None
    ) -> tuple[Load, dict[str, Any]]:
        assert self.process.stdin is not None
        command = {"image": image, "clients": clients, "requests": requests, "seconds": seconds}
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        answer = await self._answer()
        load = Load(clients, answer["elapsed"], answer["latencies"], 0.0)
        return load, {"cpu_seconds": answer["cpu_seconds"], "batch": answer["batch"]}

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def inprocess_host(argv: list[str]) -> int:
    """The in-process variants' own process: reads one JSON command per line on stdin, runs that closed loop
    and answers one JSON line (latencies, elapsed, its own CPU time, the average batch)."""
    name, model, every, *pairs = argv
    images = {pair.split("=", 1)[0]: Path(pair.split("=", 1)[1]).read_bytes() for pair in pairs}
    check = Check(model, int(every))
    zoo = installed.load()

    def say(document: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(document) + "\n")
        sys.stdout.flush()

    if name == "inprocess_recognizer":
        from sightd.recognition import Recognizer, result_json

        recognizer = Recognizer.from_zoo(model, zoo)
        current: list[bytes] = []

        def recognize(_client: int, _index: int) -> None:
            (result,) = recognizer.recognize([(current[0], None)], max_predictions=MAX_PREDICTIONS)
            check.document(result_json(result), name)  # the v0.7 document, as the servers build it

        async def run(data: bytes, clients: int, budget: dict[str, Any]) -> tuple[Load, float]:
            current[:] = [data]
            return await asyncio.to_thread(threaded_closed_loop, recognize, clients, **budget), 1.0

        for data in images.values():
            current[:] = [data]
            recognize(0, 0)
    elif name == "inprocess_runtime":
        from sightd.config import load_settings
        from sightd.runtime import ImageRequest, Runtime, RuntimeSettings, VersionDefinition

        version = VersionDefinition.from_zoo(model, zoo)
        runtime = Runtime(RuntimeSettings.from_settings(load_settings(environ={})))
        await runtime.start()
        labels = {"kind": "recognition"}

        async def run(data: bytes, clients: int, budget: dict[str, Any]) -> tuple[Load, float]:
            request = [ImageRequest(data)]

            async def one(_client: int, _index: int) -> None:
                (outcome,) = await runtime.recognize(version, request, max_predictions=MAX_PREDICTIONS)
                assert outcome.result is not None, outcome.error
                check.document(outcome.result, name)

            images_before = runtime.metrics.value("sightd_runtime_batch_images_sum", labels)
            batches_before = runtime.metrics.value("sightd_runtime_batch_images_count", labels)
            load = await closed_loop(one, clients, **budget)
            images_run = runtime.metrics.value("sightd_runtime_batch_images_sum", labels) - images_before
            batches = runtime.metrics.value("sightd_runtime_batch_images_count", labels) - batches_before
            return load, images_run / batches if batches else 0.0

        for data in images.values():
            await run(data, 1, {"requests": 1})
    else:
        raise ValueError(f"unknown in-process variant {name!r}")

    say({"ready": True, "pid": os.getpid()})
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        try:
            cpu = time.process_time()
            load, batch = await run(
                images[command["image"]],
                command["clients"],
                {"requests": command["requests"], "seconds": command["seconds"]},
            )
            cpu = time.process_time() - cpu
        except Exception as error:
            say({"error": f"{type(error).__name__}: {error}"})
            continue
        say({"elapsed": load.elapsed, "latencies": load.latencies, "cpu_seconds": cpu, "batch": batch})
    if name == "inprocess_runtime":
        await runtime.stop()
    return 0


# --- one cell ---------------------------------------------------------------------------------------------


async def measure_cell(target: Target, image: str, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    pids = target.pids()
    peaks_reset = reset_peaks(pids)
    cpu_before = cpu_seconds(pids)
    batches_before = await target.batches()
    timeout = (args.seconds or 0) + 600
    load, extra = await asyncio.wait_for(target.load(image, clients, args.requests, args.seconds), timeout)
    batches_after = await target.batches()
    pids = target.pids()
    cpu_after = cpu_seconds(pids)
    summary = load.summary()
    if "cpu_seconds" in extra:  # an in-process host: its own CPU time; no separate client
        server_cpu = extra["cpu_seconds"]
        client_cpu: float | None = None
    else:
        server_cpu = sum(value - cpu_before.get(pid, 0.0) for pid, value in cpu_after.items())
        client_cpu = summary["client_cpu_ms_per_request"]
    if "batch" in extra:
        batch: float | None = extra["batch"]
    elif batches_before is not None and batches_after is not None:
        images_run = batches_after[0] - batches_before[0]
        batches = batches_after[1] - batches_before[1]
        batch = images_run / batches if batches else None
    else:
        batch = None
    return {
        # rest: the images by how many GETs of their task the official client made to see it done
        **({"task_looks": dict(extra["task_looks"])} if extra.get("task_looks") else {}),
        "requests": summary["requests"],
        "seconds": summary["seconds"],
        "images_per_second": summary["images_per_second"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "server_cpu_ms_per_image": 1000 * server_cpu / summary["requests"],
        "client_cpu_ms_per_request": client_cpu,
        "peak_rss_mib": memory_mib(pids, "VmHWM"),
        "peak_rss_per_cell": peaks_reset,
        "average_batch": batch,
    }


# --- the run ----------------------------------------------------------------------------------------------


def sightd_server(variant: str) -> str:
    """Which sightd server a variant uses: batching on (the CPU) and the REST task wait have one of their
    own."""
    return OWN_SERVERS[variant][0] if variant in OWN_SERVERS else "sightd"


def load_peers() -> tuple[Any, str | None]:
    """bench/peers/launch.py (the module, or None and why not)."""
    try:
        from peers import launch
    except ImportError as error:
        return None, f"bench/peers/launch.py cannot be imported ({error})"
    for attribute in ("available", "start", "stop"):
        if not hasattr(launch, attribute):
            return None, f"bench/peers/launch.py has no {attribute}()"
    return launch, None


async def run_model(
    model: str,
    args: argparse.Namespace,
    zoo: installed.Zoo,
    images: dict[str, dict[str, Any]],
    *,
    folder: Path,
    skipped: dict[str, str],
) -> tuple[dict[str, Any], dict[tuple[str, str, int], list[dict[str, Any]]], dict[str, Any]]:
    check = Check(model, args.check_every)
    network = zoo.networks[zoo.models[model].network]
    used = {name: images[name] for name in args.images}
    targets: dict[str, Target] = {}
    servers: dict[str, SightdServer] = {}
    peers: dict[str, Any] = {}
    launch = None
    cores = len(os.sched_getaffinity(0))
    native = args.client == "native"  # the native load generator for the gRPC unary, stream and HTTP loads
    try:
        print(f"\n== {model}: starting the servers", flush=True)
        if any(v in SIGHTD for v in args.variants if v not in OWN_SERVERS):
            servers["sightd"] = SightdServer(f"sightd-{model}", folder, [])
        for variant, (name, flags) in OWN_SERVERS.items():
            if variant in args.variants:
                servers[name] = SightdServer(f"{name.replace('_', '-')}-{model}", folder, flags)
        for variant in args.variants:
            if variant in SIGHTD:
                server = servers[sightd_server(variant)]
                targets[variant] = SightdTarget(variant, server, model, used, check, native=native)
            elif variant in INPROCESS:
                targets[variant] = await InProcessTarget.start(
                    variant, model, used, args.check_every, folder / f"{variant}-{model}.log"
                )
            elif variant in BARES:
                targets[variant] = BareTarget(
                    variant, model, used, check, folder / f"{variant}-{model}.log", native=native
                )
        peer_variants = [v for v in args.variants if v in PEERS]
        if peer_variants:
            launch, why = load_peers()
            for peer in peer_variants:
                reason = why if launch is None else launch.available(peer)
                if reason is None:
                    port = free_port()
                    try:
                        process = await asyncio.to_thread(
                            launch.start, peer, model, port, folder / f"{peer}-{model}.log"
                        )
                    except (RuntimeError, OSError, ValueError) as error:
                        reason = f"did not start: {str(error)[-1500:]}"
                    else:
                        peers[peer] = process
                        targets[peer] = PeerTarget(peer, process, port, used, check, native=native)
                if reason is not None:
                    skipped[f"{peer}/{model}"] = reason
                    print(f"skipping {peer} for {model}: {reason}", flush=True)
        # Warm-up: the model loads on each server's first request; a few requests of each image.
        for target in targets.values():
            for image in used:
                await target.load(image, 2, 4, None)
        limit = Limit(network, used)
        cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for round_number in range(args.rounds):
            started = time.perf_counter()
            limit.measure(args.limit_seconds)
            # Each round starts the variants' turns one further, so that none always comes first.
            names = list(targets)
            shift = round_number % len(names) if names else 0
            order = names[shift:] + names[:shift]
            for image in used:
                for clients in args.concurrency:
                    for name in order:
                        row = await measure_cell(targets[name], image, clients, args)
                        cells.setdefault((image, name, clients), []).append(row)
            print(
                f"{model}: round {round_number + 1}/{args.rounds} done in "
                f"{time.perf_counter() - started:.0f} s (load average {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        ends = {}
        for name, server in servers.items():
            pids = process_tree(server.process.pid)
            # The peak since the last reset, and those of every cell before it.
            peaks = [memory_mib(pids, "VmHWM")] + [
                row["peak_rss_mib"]
                for (_, variant, _), rows in cells.items()
                if variant in SIGHTD and sightd_server(variant) == name
                for row in rows
            ]
            ends[name] = {
                "rss_end_mib": round(memory_mib(pids, "VmRSS"), 1),
                "peak_rss_mib": round(max(peaks), 1),
            }
        return limit.summary(cores), cells, ends
    finally:
        for target in targets.values():
            if isinstance(target, InProcessTarget | BareTarget):
                await target.stop()
        for server in servers.values():
            await server.stop()
        if launch is not None:
            for process in peers.values():
                await asyncio.to_thread(launch.stop, process)


def aggregate(
    model: str,
    cells: dict[tuple[str, str, int], list[dict[str, Any]]],
    limit: dict[str, Any],
    ends: dict[str, Any],
) -> list[dict[str, Any]]:
    rows = []
    for (image, variant, clients), runs in cells.items():
        row: dict[str, Any] = {"model": model, "image": image, "variant": variant, "concurrency": clients}
        for field in (
            "images_per_second",
            "p50_ms",
            "p99_ms",
            "server_cpu_ms_per_image",
            "client_cpu_ms_per_request",
            "average_batch",
        ):
            values = [run[field] for run in runs if run[field] is not None]
            row[field] = round(statistics.median(values), 3) if values else None
        row["requests"] = [run["requests"] for run in runs]
        row["peak_rss_mib"] = round(max(run["peak_rss_mib"] for run in runs), 1)
        row["peak_rss_per_cell"] = all(run["peak_rss_per_cell"] for run in runs)
        looks: collections.Counter[int] = collections.Counter()
        for run in runs:
            looks.update(run.get("task_looks", {}))
        if looks:
            # An image seen done at its second look came about 50 ms after the first, at its third 150 to
            # 200 ms after (the client's back-off): more than 1% of third looks set REST's p99.
            row["task_looks"] = {str(n): looks[n] for n in sorted(looks)}
            row["task_looks_per_image"] = round(sum(n * c for n, c in looks.items()) / sum(looks.values()), 3)
        if variant in SIGHTD:
            row["rss_end_mib"] = ends[sightd_server(variant)]["rss_end_mib"]
        row["over_limit"] = round(row["images_per_second"] / limit["images_per_second"][image], 3)
        rows.append(row)
    index = {(r["image"], r["variant"], r["concurrency"]): r for r in rows}
    for row in rows:
        for reference in (BARE, *PEERS):
            other = index.get((row["image"], reference, row["concurrency"]))
            row[f"over_{reference}"] = (
                round(row["images_per_second"] / other["images_per_second"], 3) if other else None
            )
            row[f"p99_over_{reference}"] = round(row["p99_ms"] / other["p99_ms"], 3) if other else None
    return rows


def print_table(rows: list[dict[str, Any]], model: str, image: str) -> None:
    def number(value: float | None, width: int, digits: int) -> str:
        return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    name_width = max(map(len, VARIANTS)) + 1
    print(f"\n{model} on {image}")
    print(
        f"{'variant':<{name_width}}{'conc':>5}{'img/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU':>9}"
        f"{'cli CPU':>9}{'peak MiB':>10}{'batch':>7}{'x limit':>9}{'x bare':>8}{'x diy':>7}{'x diy_tp':>9}"
        f"{'x bento':>8}"
    )
    for row in sorted(
        (r for r in rows if r["model"] == model and r["image"] == image),
        key=lambda r: (r["concurrency"], VARIANTS.index(r["variant"])),
    ):
        print(
            f"{row['variant']:<{name_width}}{row['concurrency']:>5}{number(row['images_per_second'], 9, 1)}"
            f"{number(row['p50_ms'], 9, 1)}{number(row['p99_ms'], 9, 1)}"
            f"{number(row['server_cpu_ms_per_image'], 9, 2)}{number(row['client_cpu_ms_per_request'], 9, 2)}"
            f"{number(row['peak_rss_mib'], 10, 0)}{number(row['average_batch'], 7, 2)}"
            f"{number(row['over_limit'], 9, 2)}{number(row['over_grpc_bare'], 8, 2)}"
            f"{number(row['over_diy'], 7, 2)}"
            f"{number(row['over_diy_threadpool'], 9, 2)}{number(row['over_bentoml'], 8, 2)}"
        )
    for row in rows:
        if row["model"] == model and row["image"] == image and "task_looks" in row:
            counts = ", ".join(f"{n}: {count}" for n, count in row["task_looks"].items())
            print(
                f"{row['variant']} at {row['concurrency']} clients: {row['task_looks_per_image']:.2f} GETs "
                f"of the task per image (images by GETs {counts})"
            )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    build.build()
    zoo = installed.load()
    info = machine()
    info["bentoml"] = info["peers_venv"].get("bentoml")
    print(
        f"machine: {info['cpu']}, {info['cores']} CPUs ({info['usable_cores']} usable), load average "
        f"{info['load_average']}, {info['platform']}"
    )
    print(
        f"python {info['python']}, sightd {info['sightd']}, grpcio {info['grpcio']}, onnxruntime "
        f"{info['onnxruntime']} (core: {info['core_onnxruntime']}), numpy {info['numpy']}, opencv-python "
        f"{info['opencv_python']}; peers: {info['peers_venv'] or 'no .venv-peers'}"
    )
    budget = f"{args.requests} requests" if args.requests else f"{args.seconds} s"
    if args.requests and args.seconds:
        budget = f"{args.requests} requests or {args.seconds} s"
    print(
        f"models {', '.join(args.models)}; images {', '.join(args.images)}; concurrency "
        f"{args.concurrency}; {args.rounds} rounds of {budget} per cell; variants "
        f"{', '.join(args.variants)}; {args.client} load generator"
    )
    limits: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    servers: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sightd-serving-") as name:
        folder = Path(name)
        images = prepare_images(folder)
        for image in args.images:
            print(f"image {image}: {images[image]['description']}, {images[image]['bytes']} bytes")
        for model in args.models:
            limit, cells, ends = await run_model(model, args, zoo, images, folder=folder, skipped=skipped)
            limits[model] = limit
            servers[model] = ends
            model_rows = aggregate(model, cells, limit, ends)
            rows += model_rows
            print(
                f"\n{model} limit: R = {limit['R']} img/s ({limit['best_layout']}; "
                + ", ".join(f"{k} {v}" for k, v in limit["inference_images_per_second"].items())
                + ")"
            )
            for image in args.images:
                print(
                    f"  {image}: d = {limit['d_ms'][image]:.2f} ms on one core (core "
                    f"{limit['decode_preprocess_ms'][image]['core']:.2f} ms, OpenCV-Python + NumPy "
                    f"{limit['decode_preprocess_ms'][image]['opencv_numpy']:.2f} ms); limit = 1 / (1/R + "
                    f"d/{limit['cores']}) = {limit['images_per_second'][image]:.1f} img/s"
                )
            for image in args.images:
                print_table(rows, model, image)
            for server, end in ends.items():
                print(
                    f"{server}: RSS at the end {end['rss_end_mib']:.0f} MiB, peak "
                    f"{end['peak_rss_mib']:.0f} MiB"
                )
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "bench": "serving",
        "machine": info,
        "settings": {
            "models": args.models,
            "images": args.images,
            "concurrency": args.concurrency,
            "variants": args.variants,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "requests": args.requests,
            "check_every": args.check_every,
            "client": args.client,
            "limit_seconds": args.limit_seconds,
            "max_predictions": MAX_PREDICTIONS,
        },
        "images": {name: images[name]["description"] for name in args.images},
        "limit": limits,
        "servers": servers,
        "skipped": skipped,
        "results": rows,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variants: " + ", ".join(VARIANTS),
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--images", nargs="+", choices=IMAGES, default=list(IMAGES))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 32])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--batching-on",
        action="store_true",
        help="add grpc_unary_batching (a second sightd with --cpu-max-batch 8) to the variants (it is in the "
        "default set)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=None, help="seconds per cell (default 4 unless --requests)"
    )
    parser.add_argument("--requests", type=int, default=None, help="requests per cell")
    parser.add_argument(
        "--check-every", type=int, default=16, help="parse every Nth answer fully (all are checked)"
    )
    parser.add_argument(
        "--limit-seconds", type=float, default=1.0, help="seconds per layout of the limit, per round"
    )
    parser.add_argument(
        "--client",
        choices=("native", "python"),
        default="native",
        help="the load generator of the gRPC unary and stream variants and of the peers: the native one "
        f"({NATIVE_LOADGEN.relative_to(ROOT)}, make bench-loadgen) or bench/loadgen.py's "
        "(grpc_infer_wait and rest always use the latter)",
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON line there")
    args = parser.parse_args(argv)
    if args.seconds is None and args.requests is None:
        args.seconds = 4.0
    if args.batching_on and "grpc_unary_batching" not in args.variants:
        args.variants.append("grpc_unary_batching")
    args.variants = [v for v in VARIANTS if v in args.variants]
    if min(args.concurrency) < 1 or args.rounds < 1:
        parser.error("concurrency and rounds must be at least 1")
    if args.client == "native" and not NATIVE_LOADGEN.is_file():
        parser.error(f"{NATIVE_LOADGEN} is not built: make bench-loadgen (or --client python)")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["inprocess-host"]:
        return asyncio.run(inprocess_host(argv[1:]))
    args = parse(argv)
    record = asyncio.run(run(args))
    line = json.dumps(record)
    if args.json_out is not None:
        args.json_out.write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
