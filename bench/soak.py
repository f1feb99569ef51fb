"""Does ``sightd serve`` keep its memory over a long run? RSS of a real server process under a closed loop of
concurrent gRPC ``Recognize`` calls (imagenet-mobilenet-v2 on the darknet dog.jpg) for a few minutes; with
``--calls infer_wait``, ``Infer`` then ``WaitTask`` instead (durable tasks: the store, the tasks kept in
memory); with ``--calls rest``, the official Deepomatic client's REST flow (a multipart inference POST, then
GETs of the task on its schedule; the gateway's calls served in-process).

The server is a real ``sightd serve`` process with default settings (bench/grpc_service.py's start-up).
``--concurrency`` grpc.aio clients on one channel (over REST, as many keep-alive HTTP connections) send
requests back to back for ``--seconds``; every ``--interval`` seconds the server's VmRSS (and its thread and
file descriptor counts) are read from /proc/<pid>/. With ``--mix-errors`` (the default), every
``--error-every``-th request is a bad one, alternately a truncated JPEG (INVALID_ARGUMENT) and an unknown
spec (NOT_FOUND), so that the error paths run as often as the rest and would show a leak as well; their
answers are counted by status code (a task that fails, by its error's code; over REST, HTTP_<status> for a
refused POST and TASK_ERROR for a failed task).

Reported: requests done, img/s, latency percentiles, RSS at the end of the warm-up (the first 30 s or 10%
of the run, whichever is shorter), at the end, the maximum, the least-squares slope of RSS over the samples
after the warm-up (MiB per minute) and a verdict: no growth when end - warm-up <= 2% or <= 8 MiB. The
verdict is printed, never asserted. Prints the machine, versions, the samples, then one JSON line.

Usage: python bench/soak.py [--seconds 300] [--interval 10] [--concurrency 32] [--no-mix-errors]
                            [--calls recognize|infer_wait|rest]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from grpc_service import KEY, MODEL, machine, start_server
from loadgen import HttpConnection, official_inference_post, official_task_wait, percentile
from sightd.v1 import common_pb2, inference_pb2, inference_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from sightd.zoo import artifacts, build

MiB = 1 << 20
CODES = {code.value[0]: code.value for code in grpc.StatusCode}  # google.rpc.Code number -> StatusCode value
METADATA = (("x-api-key", KEY),)
UNKNOWN_SPEC = "no-such-spec-for-the-soak"
GROWTH_FRACTION = 0.02
GROWTH_MIB = 8.0


def status_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (bytes), threads and open file descriptors of a process, from /proc."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) * 1024
        elif key == "Threads":
            values["threads"] = int(rest)
    values["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return values


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute; None under two points."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 60


def request_of(spec_id: str, data: bytes) -> inference_pb2.RecognizeRequest:
    return inference_pb2.RecognizeRequest(
        spec_id=spec_id, inputs=[common_pb2.Input(image=common_pb2.ImageInput(data=data))], max_predictions=5
    )


class Calls:
    """One request's round: ``Recognize``, or ``Infer`` then ``WaitTask``, or the official client's REST
    inference then its looks at the task. Answers the outcome (a status code name, or OK; over REST, the
    HTTP status of a refused POST, or TASK_ERROR) and the top label of a success."""

    def __init__(self, channel: grpc.aio.Channel, kind: str, http_port: int) -> None:
        self.kind = kind
        self.inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        self.http_host = f"127.0.0.1:{http_port}"
        self.http_port = http_port
        # REST: the official client's connection (keep-alive) and back-off of each concurrent caller
        self._idle: list[tuple[HttpConnection, random.Random]] = []
        self._callers = 0
        # REST: each request's POST, built at its first use (the soak sends the same few requests again and
        # again), by the request's id, with the request kept so that the id stays its own
        self._posts: dict[int, tuple[inference_pb2.RecognizeRequest, bytes]] = {}

    async def __call__(self, request: inference_pb2.RecognizeRequest) -> tuple[str, str | None]:
        if self.kind == "rest":
            return await self._rest(request)
        try:
            if self.kind == "recognize":
                answer = await self.inference.Recognize(request, metadata=METADATA, timeout=60)
                return "OK", answer.result.outputs[0].labels.predicted[0].label_name
            infer = inference_pb2.InferRequest(
                spec_id=request.spec_id, inputs=request.inputs, max_predictions=request.max_predictions
            )
            accepted = await self.inference.Infer(infer, metadata=METADATA, timeout=60)
            waited = await self.tasks.WaitTask(
                tasks_pb2.WaitTaskRequest(id=accepted.task_id), metadata=METADATA, timeout=60
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name, None
        task = waited.task
        if task.status == tasks_pb2.TASK_STATUS_ERROR:
            return grpc.StatusCode(CODES[task.error.code]).name, None
        if task.status != tasks_pb2.TASK_STATUS_SUCCESS:
            return tasks_pb2.TaskStatus.Name(task.status), None
        return "OK", task.data.recognition.outputs[0].labels.predicted[0].label_name

    async def _rest(self, request: inference_pb2.RecognizeRequest) -> tuple[str, str | None]:
        if self._idle:
            connection, generator = self._idle.pop()
        else:
            connection, generator = HttpConnection("127.0.0.1", self.http_port), random.Random(self._callers)
            self._callers += 1
        try:
            status, body = await connection.send(self._post(request))
            if status != 200:
                return f"HTTP_{status}", None
            task_id = json.loads(body)["task_id"]
            _, task = await official_task_wait(connection, self.http_host, KEY, task_id, generator)
        finally:
            self._idle.append((connection, generator))
        if task["status"] != "success":
            return "TASK_ERROR", None
        return "OK", task["data"]["outputs"][0]["labels"]["predicted"][0]["label_name"]

    def _post(self, request: inference_pb2.RecognizeRequest) -> bytes:
        kept = self._posts.get(id(request))
        if kept is None:
            post = official_inference_post(
                self.http_host,
                f"/v0.7/recognition/public/{request.spec_id}/inference",
                KEY,
                ("dog.jpg", request.inputs[0].image.data),
                max_predictions=request.max_predictions,
            )
            kept = self._posts[id(request)] = (request, post)
        return kept[1]

    async def close(self) -> None:
        for connection, _ in self._idle:
            await connection.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    build.build()
    dog = (artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg").read_bytes()
    good = request_of(MODEL, dog)
    bad = {
        "truncated_jpeg": request_of(MODEL, dog[: len(dog) // 2]),
        "unknown_spec": request_of(UNKNOWN_SPEC, dog),
    }
    warmup = args.warmup if args.warmup is not None else min(30.0, 0.1 * args.seconds)
    answers: dict[str, Counter[str]] = {"good": Counter(), **{kind: Counter() for kind in bad}}
    latencies: list[float] = []
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        process, port, _, http_port = start_server(Path(folder))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                first = await stub.Recognize(good, metadata=METADATA, timeout=120)  # loads the model
                top = first.result.outputs[0].labels.predicted[0].label_name
                if top != "malamute":
                    raise AssertionError(f"dog.jpg read as {top!r}")
                call = Calls(channel, args.calls, http_port)
                sent = 0
                start = time.monotonic()
                end = start + args.seconds

                def sample() -> None:
                    status = status_of(process.pid)
                    samples.append(
                        {
                            "t_s": time.monotonic() - start,
                            "rss_mib": status["VmRSS"] / MiB,
                            "hwm_mib": status["VmHWM"] / MiB,
                            "threads": status["threads"],
                            "fds": status["fds"],
                            "requests": sum(answers["good"].values()),
                        }
                    )

                async def client() -> None:
                    nonlocal sent
                    while time.monotonic() < end:
                        sent += 1
                        kind = "good"
                        if args.mix_errors and sent % args.error_every == 0:
                            kind = list(bad)[(sent // args.error_every) % len(bad)]
                        request = good if kind == "good" else bad[kind]
                        began = time.perf_counter()
                        outcome, label = await call(request)
                        answers[kind][outcome] += 1
                        if kind == "good" and outcome == "OK":
                            latencies.append(time.perf_counter() - began)
                            if label != "malamute":
                                answers[kind]["WRONG_LABEL"] += 1

                async def sampler() -> None:
                    while True:
                        sample()
                        await asyncio.sleep(args.interval)

                sampling = asyncio.create_task(sampler())
                try:
                    await asyncio.gather(*(client() for _ in range(args.concurrency)))
                finally:
                    await call.close()
                elapsed = time.monotonic() - start
                sampling.cancel()
                sample()  # the state at the end of the load, before the server stops
        finally:
            process.terminate()
            process.wait(60)
    after_warmup = [s for s in samples if s["t_s"] >= warmup] or samples[-1:]
    warm_rss = after_warmup[0]["rss_mib"]
    end_rss = samples[-1]["rss_mib"]
    growth = end_rss - warm_rss
    allowed = max(GROWTH_FRACTION * warm_rss, GROWTH_MIB)
    done = answers["good"]["OK"]
    return {
        "bench": "soak",
        "model": MODEL,
        "calls": args.calls,
        "machine": machine(),
        "seconds": args.seconds,
        "elapsed_s": elapsed,
        "interval_s": args.interval,
        "concurrency": args.concurrency,
        "mix_errors": args.mix_errors,
        "error_every": args.error_every if args.mix_errors else None,
        "warmup_s": warmup,
        "requests": done,
        "images_per_second": done / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000 if latencies else None,
        "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else None,
        "answers": {kind: dict(counter) for kind, counter in answers.items()},
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_after_warmup_mib": warm_rss,
        "rss_end_mib": end_rss,
        "rss_max_mib": max(s["rss_mib"] for s in samples),
        "hwm_end_mib": samples[-1]["hwm_mib"],
        "rss_growth_mib": growth,
        "rss_growth_allowed_mib": allowed,
        "rss_slope_mib_per_minute": slope_per_minute([(s["t_s"], s["rss_mib"]) for s in after_warmup]),
        "no_growth": growth <= allowed,
        "threads_after_warmup": after_warmup[0]["threads"],
        "threads_end": samples[-1]["threads"],
        "threads_max": max(s["threads"] for s in samples),
        "fds_after_warmup": after_warmup[0]["fds"],
        "fds_end": samples[-1]["fds"],
        "fds_max": max(s["fds"] for s in samples),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the load (default 300)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples (10)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients in the closed loop (32)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of warm-up (default: 30 s or 10%% of the run)"
    )
    parser.add_argument(
        "--mix-errors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send bad requests too: a truncated JPEG, an unknown spec (default on)",
    )
    parser.add_argument("--error-every", type=int, default=50, help="every N-th request is a bad one (50)")
    parser.add_argument(
        "--calls",
        choices=("recognize", "infer_wait", "rest"),
        default="recognize",
        help="each request: a unary Recognize (default), Infer then WaitTask (a durable task), or the "
        "official client's REST inference then its GETs of the task",
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.interval <= 0 or args.concurrency < 1 or args.error_every < 1:
        parser.error("--seconds, --interval, --concurrency and --error-every must be positive")
    record = asyncio.run(run(args))
    print(json.dumps(record["machine"]))
    for s in record["samples"]:
        print(
            f"t {s['t_s']:7.1f} s  RSS {s['rss_mib']:8.1f} MiB  HWM {s['hwm_mib']:8.1f} MiB  "
            f"threads {s['threads']:3.0f}  fds {s['fds']:4.0f}  requests {s['requests']:7.0f}"
        )
    latency = ""
    if record["p50_ms"] is not None:
        latency = f", p50 {record['p50_ms']:.1f} ms, p99 {record['p99_ms']:.1f} ms"
    print(
        f"{record['requests']} requests in {record['elapsed_s']:.1f} s "
        f"at concurrency {record['concurrency']}: {record['images_per_second']:.1f} img/s{latency}"
    )
    print(f"answers: {json.dumps(record['answers'])}")
    slope = record["rss_slope_mib_per_minute"]
    print(
        f"RSS: {record['rss_start_mib']:.1f} MiB at start, "
        f"{record['rss_after_warmup_mib']:.1f} MiB after the {record['warmup_s']:.1f} s warm-up, "
        f"{record['rss_end_mib']:.1f} MiB at the end, "
        f"max {record['rss_max_mib']:.1f} MiB; slope after warm-up "
        + (f"{slope:+.2f} MiB/min" if slope is not None else "n/a (under two samples)")
    )
    print(
        f"threads: {record['threads_after_warmup']} after the warm-up, {record['threads_end']} at the end, "
        f"max {record['threads_max']}; file descriptors: {record['fds_after_warmup']}, {record['fds_end']}, "
        f"max {record['fds_max']}"
    )
    print(
        f"verdict: {'no growth' if record['no_growth'] else 'RSS GREW'}: "
        f"{record['rss_growth_mib']:+.1f} MiB after the warm-up "
        f"(allowed {record['rss_growth_allowed_mib']:.1f} MiB: 2% or 8 MiB)"
    )
    print(json.dumps(record))


if __name__ == "__main__":
    main()
